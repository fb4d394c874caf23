//! `pullgate doctor` against real file shapes and real processes:
//! - the kubelet command line systemd builds from kubelet.service, kubeadm's
//!   10-kubeadm.conf, /var/lib/kubelet/kubeadm-flags.env, /etc/default/kubelet and our
//!   drop-in (expanded here as systemd does: Environment=, EnvironmentFile= overriding
//!   it, `ExecStart=` resetting, `$VAR` split into words);
//! - KubeletConfiguration files as kubeadm writes them, and our `--config-dir` drop-in;
//! - a fake node's /proc (cmdline, and `root` pointing at a directory holding the
//!   node's /etc and /var/lib files), and a real process whose argv is a kubelet
//!   command line (a tiny C program named `kubelet`, compiled here) that connects to a
//!   real `pullgate serve`, so the peer credentials pullgate records are its own.

use pullgate_testkit as support;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// kubelet.service as the deb/rpm packages ship it (kubernetes/release).
const KUBELET_SERVICE: &str = "[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
";

/// kubeadm's drop-in as the deb packages ship it (`/etc/sysconfig/kubelet` on RPM).
const KUBEADM_DROPIN: &str = "# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"
Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"
# This is a file that \"kubeadm init\" and \"kubeadm join\" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
";

/// /var/lib/kubelet/kubeadm-flags.env as `kubeadm join` writes it with containerd.
const KUBEADM_FLAGS_ENV: &str = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n";

/// /etc/default/kubelet as the kubelet deb ships it.
const ETC_DEFAULT_KUBELET_PACKAGED: &str = "KUBELET_EXTRA_ARGS=\n";
/// ... and as an operator set it.
const ETC_DEFAULT_KUBELET_OPERATOR: &str = "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.5 --max-pods=50\n";

/// The drop-in this repository shipped before: endpoints in KUBELET_EXTRA_ARGS.
const OLD_EXTRA_ARGS_DROPIN: &str = "[Unit]
After=pullgate.service
Requires=pullgate.service

[Service]
Environment=\"KUBELET_EXTRA_ARGS=--container-runtime-endpoint=unix:///run/pullgate/pullgate.sock --image-service-endpoint=unix:///run/pullgate/pullgate.sock\"
";

/// /var/lib/kubelet/config.yaml as kubeadm 1.30 writes it: the endpoint is left to
/// the kubeadm-flags.env flag. One copy, shared with src/doctor.rs's unit tests.
const KUBEADM_CONFIG_YAML: &str = include_str!("data/kubeadm-config.yaml");

fn shipped(path: &str) -> String {
    std::fs::read_to_string(Path::new(REPO).join(path)).expect("shipped file")
}

// ---------------------------------------------------------------------------
// systemd, as far as building the kubelet's command line goes

/// `KEY=value` assignments of one `Environment=` line (double-quoted words).
fn environment_assignments(value: &str) -> Vec<(String, String)> {
    split_words(value)
        .into_iter()
        .filter_map(|word| {
            let (k, v) = word.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Splits on whitespace outside double quotes, removing the quotes.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// An EnvironmentFile: `KEY=value` lines, `#` comments, optional double quotes.
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

/// The kubelet's argv as systemd starts it from `unit` plus `dropins` (in the order
/// systemd applies them), reading EnvironmentFile= paths from `files`.
/// systemd.exec(5): variables from EnvironmentFile= override Environment=; the last
/// `ExecStart=` after an empty one wins; `$VAR` expands to the value split at
/// whitespace (zero words when empty).
fn systemd_argv(unit: &str, dropins: &[&str], files: &BTreeMap<&str, &str>) -> Vec<String> {
    let mut environment = BTreeMap::new();
    let mut environment_files = Vec::new();
    let mut exec_start = Vec::new();
    for text in std::iter::once(unit).chain(dropins.iter().copied()) {
        for line in text.lines().map(str::trim) {
            if let Some(value) = line.strip_prefix("Environment=") {
                environment.extend(environment_assignments(value));
            } else if let Some(value) = line.strip_prefix("EnvironmentFile=") {
                environment_files.push(value.trim_start_matches('-').to_owned());
            } else if let Some(value) = line.strip_prefix("ExecStart=") {
                if value.is_empty() {
                    exec_start.clear();
                } else {
                    exec_start.push(value.to_owned());
                }
            }
        }
    }
    for path in environment_files {
        if let Some(text) = files.get(path.as_str()) {
            environment.extend(environment_file(text));
        }
    }
    assert_eq!(exec_start.len(), 1, "one ExecStart for a simple service");
    let mut argv = Vec::new();
    for word in split_words(&exec_start[0]) {
        match word.strip_prefix('$') {
            Some(name) => argv.extend(
                environment
                    .get(name)
                    .map(|v| split_words(v))
                    .unwrap_or_default(),
            ),
            None => argv.push(word),
        }
    }
    argv
}

fn node_files(etc_default_kubelet: &str) -> BTreeMap<&'static str, &str> {
    BTreeMap::from([
        ("/var/lib/kubelet/kubeadm-flags.env", KUBEADM_FLAGS_ENV),
        ("/etc/default/kubelet", etc_default_kubelet),
    ])
}

// ---------------------------------------------------------------------------
// A fake node: /proc with cmdline files, `root` pointing at the node's files

struct FakeNode {
    dir: tempfile::TempDir,
}

struct Doctor {
    code: Option<i32>,
    stdout: String,
}

impl Doctor {
    /// The runtime and image endpoint lines are `runtime` and `image`.
    #[track_caller]
    fn assert_endpoints(&self, runtime: &str, image: &str) {
        assert_eq!(self.line("runtime endpoint"), runtime);
        assert_eq!(self.line("image endpoint"), image);
    }

    fn line(&self, check: &str) -> &str {
        let found: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| {
                l.split_once(' ')
                    .is_some_and(|(_, rest)| rest.starts_with(&format!("{check}:")))
            })
            .collect();
        assert_eq!(found.len(), 1, "one {check} line in:\n{}", self.stdout);
        found[0]
    }
}

impl FakeNode {
    /// The kubelet's config file, at kubeadm's path.
    fn kubelet_config(&self, text: &str) {
        self.file("/var/lib/kubelet/config.yaml", text);
    }

    /// Our `--config-dir` drop-in, installed where kubeadm nodes keep them.
    fn config_dir_dropin(&self) {
        self.file(
            "/etc/kubernetes/kubelet.conf.d/50-pullgate.conf",
            &shipped("systemd/kubelet.conf.d/50-pullgate.conf"),
        );
    }

    /// A process `pid` running the command line `line`.
    fn run(&self, pid: u32, line: &str) {
        self.process(pid, &argv(line));
    }

    fn new() -> FakeNode {
        let node = FakeNode {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(node.proc()).expect("proc");
        std::fs::create_dir_all(node.rootfs()).expect("rootfs");
        let policy = support::cli::pass_through_policy_dir(node.dir.path());
        // pullgate's defaults for the sockets, as on a node.
        std::fs::write(node.config(), format!("[policy]\ndir = {policy:?}\n")).expect("config");
        node
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// A file of the node, at its absolute path `path`.
    fn file(&self, path: &str, text: &str) {
        let real = self.rootfs().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(real.parent().expect("parent")).expect("mkdir");
        std::fs::write(real, text).expect("write node file");
    }

    /// A process `pid` running `argv`, its root and cwd the node's root.
    fn process(&self, pid: u32, argv: &[String]) {
        let dir = self.proc().join(pid.to_string());
        std::fs::create_dir_all(&dir).expect("pid dir");
        let mut cmdline = Vec::new();
        for arg in argv {
            cmdline.extend_from_slice(arg.as_bytes());
            cmdline.push(0);
        }
        std::fs::write(dir.join("cmdline"), cmdline).expect("cmdline");
        std::os::unix::fs::symlink(self.rootfs(), dir.join("root")).expect("root link");
        std::os::unix::fs::symlink(self.rootfs(), dir.join("cwd")).expect("cwd link");
    }

    fn doctor(&self, extra: &[&str]) -> Doctor {
        doctor(&self.config(), &self.proc(), extra)
    }
}

fn doctor(config: &Path, proc_root: &Path, extra: &[&str]) -> Doctor {
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .arg("doctor")
        .arg("--config")
        .arg(config)
        .arg("--proc-root")
        .arg(proc_root)
        .args(extra)
        .output()
        .expect("run pullgate doctor");
    Doctor {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

const TO_PULLGATE: &str = "point the kubelet at unix:///run/pullgate/pullgate.sock with the pullgate kubelet drop-in (its flags come last and override the rest) and restart the kubelet";

// ---------------------------------------------------------------------------
// The systemd drop-in

#[test]
fn dropin_command_line_keeps_every_kubeadm_and_operator_flag_and_ends_with_pullgate() {
    let dropin = shipped("systemd/kubelet-pullgate.conf");
    let argv = systemd_argv(
        KUBELET_SERVICE,
        &[KUBEADM_DROPIN, &dropin],
        &node_files(ETC_DEFAULT_KUBELET_OPERATOR),
    );
    assert_eq!(
        argv,
        [
            "/usr/bin/kubelet",
            "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
            "--kubeconfig=/etc/kubernetes/kubelet.conf",
            "--config=/var/lib/kubelet/config.yaml",
            "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock",
            "--pod-infra-container-image=registry.k8s.io/pause:3.10",
            "--node-ip=10.0.0.5",
            "--max-pods=50",
            "--container-runtime-endpoint=unix:///run/pullgate/pullgate.sock",
            "--image-service-endpoint=unix:///run/pullgate/pullgate.sock",
        ]
    );

    // The kubelet started with it: the last flag wins over kubeadm's.
    let node = FakeNode::new();
    node.kubelet_config(KUBEADM_CONFIG_YAML);
    node.process(812, &argv);
    let report = node.doctor(&[]);
    assert_eq!(
        report.line("kubelet"),
        "ok kubelet: pid 812: /usr/bin/kubelet"
    );
    report.assert_endpoints(
        "ok runtime endpoint: unix:///run/pullgate/pullgate.sock (flag --container-runtime-endpoint)",
        "ok image endpoint: unix:///run/pullgate/pullgate.sock (flag --image-service-endpoint)",
    );
    assert_eq!(
        report.line("containerd socket"),
        "ok containerd socket: the kubelet does not use containerd's socket /run/containerd/containerd.sock directly"
    );
}

#[test]
fn dropin_works_whatever_etc_default_kubelet_holds() {
    let dropin = shipped("systemd/kubelet-pullgate.conf");
    for etc_default in [
        ETC_DEFAULT_KUBELET_PACKAGED,
        ETC_DEFAULT_KUBELET_OPERATOR,
        "",
    ] {
        let argv = systemd_argv(
            KUBELET_SERVICE,
            &[KUBEADM_DROPIN, &dropin],
            &node_files(etc_default),
        );
        assert_eq!(
            argv[argv.len() - 2..],
            [
                "--container-runtime-endpoint=unix:///run/pullgate/pullgate.sock",
                "--image-service-endpoint=unix:///run/pullgate/pullgate.sock",
            ],
            "{etc_default}"
        );
    }
}

/// The bug this drop-in replaces: `KUBELET_EXTRA_ARGS=` from the packaged
/// /etc/default/kubelet overrides the drop-in's Environment=, and the kubelet keeps
/// talking to containerd. The doctor says so.
#[test]
fn extra_args_dropin_is_silently_overridden_and_doctor_fails_it() {
    let argv = systemd_argv(
        KUBELET_SERVICE,
        &[KUBEADM_DROPIN, OLD_EXTRA_ARGS_DROPIN],
        &node_files(ETC_DEFAULT_KUBELET_PACKAGED),
    );
    assert!(
        !argv.iter().any(|a| a.contains("pullgate")),
        "the packaged /etc/default/kubelet wins: {argv:?}"
    );
    let node = FakeNode::new();
    node.kubelet_config(KUBEADM_CONFIG_YAML);
    node.process(812, &argv);
    let report = node.doctor(&[]);
    assert_eq!(report.code, Some(1), "{}", report.stdout);
    report.assert_endpoints(
        &format!("FAIL runtime endpoint: unix:///var/run/containerd/containerd.sock (flag --container-runtime-endpoint), not pullgate's socket /run/pullgate/pullgate.sock — {TO_PULLGATE}"),
        &format!("FAIL image endpoint: unix:///var/run/containerd/containerd.sock (unset, so the runtime endpoint), not pullgate's socket /run/pullgate/pullgate.sock — {TO_PULLGATE}"),
    );
    assert_eq!(
        report.line("containerd socket"),
        format!("FAIL containerd socket: runtime endpoint is unix:///var/run/containerd/containerd.sock, image endpoint is unix:///var/run/containerd/containerd.sock: the kubelet talks to containerd (/run/containerd/containerd.sock) directly and its pulls skip the gate — {TO_PULLGATE}")
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("systemd-analyze is missing under CI=true");
        }
        eprintln!(
            "SKIPPED systemd_analyze_verify_accepts_the_units: systemd-analyze is not installed"
        );
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let units = dir.path();
    std::fs::create_dir_all(units.join("kubelet.service.d")).expect("mkdir");
    // `verify` also checks that each ExecStart= program exists: point them at real ones.
    let kubelet = "/bin/true";
    let write = |path: &str, text: String| {
        std::fs::write(
            units.join(path),
            text.replace("/usr/bin/kubelet", kubelet)
                .replace("/usr/local/bin/pullgate", env!("CARGO_BIN_EXE_pullgate")),
        )
        .expect("write unit");
    };
    write("kubelet.service", KUBELET_SERVICE.to_owned());
    write(
        "kubelet.service.d/10-kubeadm.conf",
        KUBEADM_DROPIN.to_owned(),
    );
    write(
        "kubelet.service.d/90-pullgate.conf",
        shipped("systemd/kubelet-pullgate.conf"),
    );
    write("pullgate.service", shipped("systemd/pullgate.service"));
    write(
        "containerd.service",
        "[Unit]\nDescription=containerd\n[Service]\nExecStart=/bin/true\n".to_owned(),
    );
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.join("kubelet.service"))
        .arg(units.join("pullgate.service"))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Unknown keys and bad values are only warnings: there must be none about our files.
    assert!(
        !stderr.contains("pullgate"),
        "systemd-analyze complained:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------
// KubeletConfiguration and --config-dir

#[test]
fn config_dir_dropin_sets_both_endpoints_when_no_flag_does() {
    let node = FakeNode::new();
    node.kubelet_config(KUBEADM_CONFIG_YAML);
    node.config_dir_dropin();
    // Not a *.conf file: the kubelet ignores it, and so does the doctor.
    node.file(
        "/etc/kubernetes/kubelet.conf.d/99-ignored.yaml",
        "containerRuntimeEndpoint: unix:///run/containerd/containerd.sock\n",
    );
    node.process(
        4242,
        &argv(
            "/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf \
             --config=/var/lib/kubelet/config.yaml --config-dir=/etc/kubernetes/kubelet.conf.d",
        ),
    );
    let report = node.doctor(&[]);
    let dropin = "/etc/kubernetes/kubelet.conf.d/50-pullgate.conf";
    report.assert_endpoints(
        &format!("ok runtime endpoint: unix:///run/pullgate/pullgate.sock (--config-dir drop-in {dropin})"),
        &format!("ok image endpoint: unix:///run/pullgate/pullgate.sock (--config-dir drop-in {dropin})"),
    );
}

/// kubeadm's flag in kubeadm-flags.env beats the config-dir drop-in.
#[test]
fn config_dir_dropin_is_overridden_by_the_kubeadm_flag() {
    let node = FakeNode::new();
    node.kubelet_config(KUBEADM_CONFIG_YAML);
    node.config_dir_dropin();
    let mut command = systemd_argv(
        KUBELET_SERVICE,
        &[KUBEADM_DROPIN],
        &node_files(ETC_DEFAULT_KUBELET_PACKAGED),
    );
    command.push("--config-dir=/etc/kubernetes/kubelet.conf.d".into());
    node.process(4242, &command);
    let report = node.doctor(&[]);
    assert_eq!(report.code, Some(1));
    // The image endpoint has no flag: the drop-in's value stands.
    report.assert_endpoints(
        &format!("FAIL runtime endpoint: unix:///var/run/containerd/containerd.sock (flag --container-runtime-endpoint), not pullgate's socket /run/pullgate/pullgate.sock — {TO_PULLGATE}"),
        "ok image endpoint: unix:///run/pullgate/pullgate.sock (--config-dir drop-in /etc/kubernetes/kubelet.conf.d/50-pullgate.conf)",
    );
}

#[test]
fn config_file_endpoint_is_read_and_unset_means_the_kubelet_default() {
    let node = FakeNode::new();
    node.kubelet_config(&KUBEADM_CONFIG_YAML.replace(
        "containerRuntimeEndpoint: \"\"",
        "containerRuntimeEndpoint: unix:///run/pullgate/pullgate.sock",
    ));
    node.run(7, "/usr/bin/kubelet --config /var/lib/kubelet/config.yaml");
    let report = node.doctor(&[]);
    assert_eq!(
        report.line("runtime endpoint"),
        "ok runtime endpoint: unix:///run/pullgate/pullgate.sock (--config /var/lib/kubelet/config.yaml)", "ok image endpoint: unix:///run/pullgate/pullgate.sock (unset, so the runtime endpoint)");

    // kubeadm's file without the flag: the kubelet's own default, containerd.
    let node = FakeNode::new();
    node.kubelet_config(KUBEADM_CONFIG_YAML);
    node.run(7, "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml");
    let report = node.doctor(&[]);
    assert_eq!(report.code, Some(1));
    assert_eq!(
        report.line("runtime endpoint"),
        format!("FAIL runtime endpoint: unix:///run/containerd/containerd.sock (set nowhere, so the kubelet's default), not pullgate's socket /run/pullgate/pullgate.sock — {TO_PULLGATE}")
    );
    assert_eq!(
        report.line("containerd socket"),
        format!("FAIL containerd socket: runtime endpoint is unix:///run/containerd/containerd.sock, image endpoint is unix:///run/containerd/containerd.sock: the kubelet talks to containerd (/run/containerd/containerd.sock) directly and its pulls skip the gate — {TO_PULLGATE}")
    );
}

#[test]
fn a_kubelet_config_the_doctor_cannot_read_is_a_failure_not_a_guess() {
    let node = FakeNode::new();
    node.kubelet_config(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncontainerRuntimeEndpoint: >-\n  unix:///run/pullgate/pullgate.sock\n",
    );
    node.run(9, "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml");
    let report = node.doctor(&[]);
    assert_eq!(report.code, Some(1));
    assert_eq!(
        report.line("runtime endpoint"),
        format!("FAIL runtime endpoint: cannot tell: /var/lib/kubelet/config.yaml: line 3: containerRuntimeEndpoint is not a one-line value (block scalar, flow collection, anchor, alias or tag); write it as key: value — {TO_PULLGATE}")
    );

    // A missing config file likewise.
    let node = FakeNode::new();
    node.run(9, "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml");
    let report = node.doctor(&[]);
    assert_eq!(
        report.line("runtime endpoint"),
        format!("FAIL runtime endpoint: cannot tell: /var/lib/kubelet/config.yaml: No such file or directory (os error 2) — {TO_PULLGATE}")
    );
}

#[test]
fn tcp_endpoint_is_not_pullgate() {
    let node = FakeNode::new();
    node.run(
        9,
        "/usr/bin/kubelet --container-runtime-endpoint=tcp://127.0.0.1:10010",
    );
    let report = node.doctor(&[]);
    assert_eq!(
        report.line("runtime endpoint"),
        format!("FAIL runtime endpoint: tcp://127.0.0.1:10010 (flag --container-runtime-endpoint), not pullgate's socket /run/pullgate/pullgate.sock — {TO_PULLGATE}")
    );
    assert_eq!(
        report.line("containerd socket"),
        "ok containerd socket: the kubelet does not use containerd's socket /run/containerd/containerd.sock directly"
    );
}

// ---------------------------------------------------------------------------
// No kubelet, policy, pullgate not running

#[test]
fn no_kubelet_running_exits_3_with_a_clear_line() {
    let node = FakeNode::new();
    node.run(1, "/sbin/init");
    node.run(300, "/usr/bin/containerd");
    // A process whose name merely contains "kubelet" is not the kubelet.
    node.run(301, "/usr/local/bin/kubelet-wrapper --config=/x");
    let report = node.doctor(&[]);
    let proc_root = node.proc().display().to_string();
    assert_eq!(
        report.line("kubelet"),
        format!("FAIL kubelet: no kubelet process is running (no {proc_root}/*/cmdline names a program kubelet) — start the kubelet (systemctl start kubelet) and run pullgate doctor again")
    );
    // The policy loads; the socket at /run/pullgate is not there on a test machine, so
    // that fails too and the exit status is 1. Without that failure it is 3:
    let pullgate = support::Pullgate::start(&node.dir.path().join("containerd.sock"), "");
    let report = doctor(&pullgate.dir.path().join("config.toml"), &node.proc(), &[]);
    assert_eq!(report.code, Some(3), "{}", report.stdout);
    assert!(report
        .stdout
        .lines()
        .all(|l| l.starts_with("ok ") || l.starts_with("FAIL kubelet:")));
}

#[test]
fn a_policy_that_does_not_load_fails() {
    let node = FakeNode::new();
    let empty = node.dir.path().join("empty-policy");
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::fs::write(node.config(), format!("[policy]\ndir = {empty:?}\n")).expect("config");
    let report = node.doctor(&[]);
    assert_eq!(report.code, Some(1));
    let dir = empty.display();
    assert_eq!(
        report.line("policy"),
        format!("FAIL policy: {dir}: no trust policy file (trustpolicy.oci.json or trustpolicy.json) — pullgate refuses to start (and to reload) with it; see pullgate policy check --policy-dir {dir}")
    );
}

#[test]
fn a_config_that_does_not_load_stops_the_doctor() {
    let node = FakeNode::new();
    std::fs::write(node.config(), "[server]\nsocket_mode = \"abc\"\n").expect("config");
    let report = node.doctor(&[]);
    assert_eq!(report.code, Some(1));
    let config = node.config().display().to_string();
    assert_eq!(
        report.stdout,
        format!("FAIL config: config file {config}: field `server.socket_mode`: \"abc\" is not an octal permission mode between 0000 and 0777 (e.g. \"0660\") — fix the file (pullgate check-config --config {config})\n")
    );
}

// ---------------------------------------------------------------------------
// A real kubelet-shaped process and a real pullgate

/// A tiny program named `kubelet`: optionally connects twice to the socket in
/// $FAKE_KUBELET_CONNECT (runtime and image service, as the kubelet does), sends the
/// HTTP/2 client preface on each, prints `ready` and waits. Its argv is whatever
/// the test gives it, so /proc/<pid>/cmdline is a real kubelet command line.
fn fake_kubelet_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // Under cargo's per-target scratch directory, one build per test run: the
        // binary's file name must be `kubelet` (the kernel names the process after it).
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("doctor-fake-kubelet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let source = dir.join("kubelet.c");
        std::fs::write(
            &source,
            r#"#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
    const char *path = getenv("FAKE_KUBELET_CONNECT");
    for (int i = 0; path && *path && i < 2; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un addr;
        memset(&addr, 0, sizeof addr);
        addr.sun_family = AF_UNIX;
        strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            perror("connect");
            return 2;
        }
        /* client preface and an empty SETTINGS frame */
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
        if (write(fd, preface, sizeof preface - 1) < 0) {
            perror("write");
            return 2;
        }
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
}
"#,
        )
        .expect("write source");
        let binary = dir.join("kubelet");
        let output = Command::new("cc")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .output()
            .expect("cc (a C compiler is needed to build the fake kubelet)");
        assert!(
            output.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        binary
    })
}

/// The running fake kubelet, killed (by its pid) when dropped.
struct FakeKubelet {
    child: Child,
}

impl FakeKubelet {
    fn start(argv: &[String], connect_to: Option<&Path>) -> FakeKubelet {
        use std::io::BufRead;
        let mut command = Command::new(fake_kubelet_binary());
        command
            .arg0(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(socket) = connect_to {
            command.env("FAKE_KUBELET_CONNECT", socket);
        }
        let mut child = command.spawn().expect("start the fake kubelet");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line, "ready\n", "the fake kubelet did not start");
        FakeKubelet { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn argv(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// The kubelet command line systemd builds with our drop-in, for a node whose files
/// live under `root` and whose pullgate listens on `socket`.
fn kubeadm_argv_with_dropin(root: &Path, socket: &Path) -> Vec<String> {
    let config = root.join("var/lib/kubelet/config.yaml");
    std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
    std::fs::write(&config, KUBEADM_CONFIG_YAML).expect("config.yaml");
    let kubeadm = KUBEADM_DROPIN.replace(
        "/var/lib/kubelet/config.yaml",
        &config.display().to_string(),
    );
    let dropin = shipped("systemd/kubelet-pullgate.conf")
        .replace("/run/pullgate/pullgate.sock", &socket.display().to_string());
    systemd_argv(
        KUBELET_SERVICE,
        &[&kubeadm, &dropin],
        &node_files(ETC_DEFAULT_KUBELET_OPERATOR),
    )
}

/// Waits until pullgate's client record lists `connections` connections from `pid`.
fn wait_for_client(socket: &Path, pid: u32, connections: u64) {
    let path = pullgate::clients::state_file_path(socket);
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(10);
    while pullgate_testkit::time::instant() < deadline {
        if let Ok(file) = pullgate::clients::ClientsFile::read(&path) {
            if file
                .clients
                .iter()
                .any(|c| c.pid == pid && c.connections >= connections)
            {
                return;
            }
        }
        pullgate_testkit::time::pause(Duration::from_millis(20));
    }
    panic!(
        "{} never listed {connections} connections from pid {pid}",
        path.display()
    );
}

/// Replaces `dddd-dd-ddTdd:dd:ddZ` with TIME.
fn mask_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        let fits = bytes.len() >= i + shape.len()
            && shape.iter().zip(&bytes[i..]).all(|(s, b)| match s {
                b'd' => b.is_ascii_digit(),
                s => s == b,
            });
        if fits {
            out.push_str("TIME");
            i += shape.len();
        } else {
            let c = text[i..].chars().next().expect("char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn scrape(metrics_socket: &Path) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(metrics_socket).expect("metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: pullgate\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

fn start_pullgate_with_metrics() -> (support::Pullgate, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = dir.path().join("metrics.sock");
    let containerd = dir.path().join("containerd.sock");
    let pullgate = support::cli::start_pass_through_with_metrics(
        &containerd,
        dir,
        &format!("unix:{}", metrics.display()),
    );
    (pullgate, metrics)
}

#[test]
fn a_kubelet_connected_through_pullgate_passes_every_check() {
    let (pullgate, metrics) = start_pullgate_with_metrics();
    let root = tempfile::tempdir().expect("tempdir");
    let command = kubeadm_argv_with_dropin(root.path(), &pullgate.socket);
    let kubelet = FakeKubelet::start(&command, Some(&pullgate.socket));
    let pid = kubelet.pid();
    // The fake kubelet connects twice (runtime and image service).
    wait_for_client(&pullgate.socket, pid, 2);

    let config = pullgate.dir.path().join("config.toml");
    let report = doctor(
        &config,
        Path::new("/proc"),
        &["--kubelet-pid", &pid.to_string()],
    );
    let dir = pullgate.dir.path().display().to_string();
    let socket = pullgate.socket.display().to_string();
    assert_eq!(
        mask_times(&report.stdout).replace(&dir, "DIR").replace(&pid.to_string(), "PID"),
        "ok config: DIR/config.toml: pullgate listens on DIR/pullgate.sock, forwards to containerd at DIR/containerd.sock
ok policy: DIR/notation/trustpolicy.oci.json loads: 1 statement(s), 0 trust store(s)
ok pullgate socket: DIR/pullgate.sock accepts connections
ok kubelet: pid PID: /usr/bin/kubelet
ok runtime endpoint: unix://DIR/pullgate.sock (flag --container-runtime-endpoint)
ok image endpoint: unix://DIR/pullgate.sock (flag --image-service-endpoint)
ok containerd socket: the kubelet does not use containerd's socket DIR/containerd.sock directly
ok kubelet connected: pid PID connected to pullgate 2 time(s), first TIME, last TIME
",
        "socket {socket}"
    );
    assert_eq!(report.code, Some(0));

    // The process really has the kubelet's command line, and pullgate saw its name.
    let record =
        pullgate::clients::ClientsFile::read(&pullgate::clients::state_file_path(&pullgate.socket))
            .expect("client record");
    let kubelet_record = record.find(pid, None).expect("kubelet record");
    assert_eq!(kubelet_record.comm.as_deref(), Some("kubelet"));
    assert_eq!(kubelet_record.connections, 2);
    assert_eq!(kubelet_record.uid, own_uid());

    // The metrics count it as the kubelet while its connections are open...
    let text = scrape(&metrics);
    for line in [
        "pullgate_cri_connections_total{client=\"kubelet\"} 2",
        "pullgate_cri_client_connections{client=\"kubelet\"} 2",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    // ... and not once it is gone.
    drop(kubelet);
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(10);
    loop {
        let text = scrape(&metrics);
        if text.contains("pullgate_cri_client_connections{client=\"kubelet\"} 0") {
            assert!(text.contains("pullgate_cri_connections_total{client=\"kubelet\"} 2"));
            break;
        }
        assert!(
            pullgate_testkit::time::instant() < deadline,
            "kubelet connections still open:\n{text}"
        );
        pullgate_testkit::time::pause(Duration::from_millis(20));
    }
}

/// The uid the test runs as (the fake kubelet's), from /proc without libc.
fn own_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("Uid line")
}

#[test]
fn a_kubelet_that_never_connected_fails_even_with_the_right_endpoints() {
    let (pullgate, _metrics) = start_pullgate_with_metrics();
    let root = tempfile::tempdir().expect("tempdir");
    let command = kubeadm_argv_with_dropin(root.path(), &pullgate.socket);
    // Other clients did connect (this test, waiting for the socket, and a crictl): a
    // record exists, just not this kubelet's.
    let other = FakeKubelet::start(&argv("/usr/bin/crictl images"), Some(&pullgate.socket));
    wait_for_client(&pullgate.socket, other.pid(), 2);
    let kubelet = FakeKubelet::start(&command, None);
    let pid = kubelet.pid();

    let config = pullgate.dir.path().join("config.toml");
    let report = doctor(
        &config,
        Path::new("/proc"),
        &["--kubelet-pid", &pid.to_string()],
    );
    assert_eq!(report.code, Some(1), "{}", report.stdout);
    assert!(report.line("runtime endpoint").starts_with("ok "));
    assert!(report.line("image endpoint").starts_with("ok "));
    assert_eq!(
        report.line("kubelet connected"),
        format!("FAIL kubelet connected: pullgate has accepted no connection from pid {pid} (2 client process(es) on record) — the kubelet is not talking to pullgate: fix the endpoints and restart the kubelet (systemctl restart kubelet)")
    );
}

#[test]
fn without_pullgate_running_the_socket_and_the_connection_fail() {
    let root = tempfile::tempdir().expect("tempdir");
    let socket = root.path().join("pullgate.sock");
    let policy = support::cli::pass_through_policy_dir(root.path());
    let config = root.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[server]\nsocket = {socket:?}\n[policy]\ndir = {policy:?}\n"),
    )
    .expect("config");
    let kubelet = FakeKubelet::start(&kubeadm_argv_with_dropin(root.path(), &socket), None);
    let pid = kubelet.pid().to_string();
    let report = doctor(&config, Path::new("/proc"), &["--kubelet-pid", &pid]);
    assert_eq!(report.code, Some(1));
    let socket = socket.display();
    assert_eq!(
        report.line("pullgate socket"),
        format!("FAIL pullgate socket: {socket}: No such file or directory (os error 2) — start pullgate (systemctl enable --now pullgate), then restart the kubelet")
    );
    let record = root.path().join("pullgate.clients.json");
    assert_eq!(
        report.line("kubelet connected"),
        format!("FAIL kubelet connected: no record of pullgate's clients: {}: No such file or directory (os error 2) — start pullgate (it writes the record beside its socket), then restart the kubelet", record.display())
    );
}

/// Discovery reads the real /proc files of a real process: a proc root holding only
/// a link to it, so other tests' processes do not interfere.
#[test]
fn discovery_finds_a_real_kubelet_process_by_its_argv0() {
    let root = tempfile::tempdir().expect("tempdir");
    let kubelet = FakeKubelet::start(
        &argv("/usr/bin/kubelet --container-runtime-endpoint unix:///run/pullgate/pullgate.sock"),
        None,
    );
    let not_kubelet = FakeKubelet::start(&argv("/usr/bin/containerd --config x"), None);
    let proc_root = root.path().join("proc");
    std::fs::create_dir_all(&proc_root).expect("mkdir");
    for pid in [kubelet.pid(), not_kubelet.pid()] {
        std::os::unix::fs::symlink(format!("/proc/{pid}"), proc_root.join(pid.to_string()))
            .expect("link");
    }
    let found = pullgate::doctor::find_kubelets(&proc_root).expect("scan");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pid, kubelet.pid());
    assert_eq!(
        found[0].argv,
        argv("/usr/bin/kubelet --container-runtime-endpoint unix:///run/pullgate/pullgate.sock")
    );
    assert!(found[0].start_ticks.is_some());

    let report = doctor(&root.path().join("absent.toml"), &proc_root, &[]);
    // An explicitly named config that does not exist stops the doctor.
    assert_eq!(report.code, Some(1));
    assert!(
        report.stdout.starts_with("FAIL config: config file "),
        "{}",
        report.stdout
    );
}
