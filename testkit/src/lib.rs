//! pullgate's test kit, shared by its tests, benches and examples (and, for the
//! envelope builder, its unit tests): start the real `pullgate` binary, find the
//! integration harness (real containerd + registry), a CRI client on real sockets,
//! an in-process OCI registry with fault injection, PKI / TSA / revocation fixtures
//! made with the real `openssl` CLI, and Notary envelope and OCI layout builders.

pub mod cli;
pub mod envelope_builder;
pub mod fixtures;
pub mod latency;
pub mod pod;
pub mod signer;
pub mod time;
pub mod tsa;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use pullgate::cri::client::CriClient;

pub mod pki;
pub mod registry;
pub mod responders;
pub mod revocation;
pub mod signed_layout;
pub mod signing;

/// The containerd + registry started by `integration/harness up`, described by the
/// environment it writes. `None` (skip) outside the harness, except under `CI=true`
/// where a missing harness is a failure: CI must never pass by skipping.
pub struct Harness {
    pub dir: PathBuf,
    pub containerd_socket: PathBuf,
    pub registry: String,
    pub busybox: String,
    pub busybox_digest: String,
    pub pause: String,
    pub script: PathBuf,
}

impl Harness {
    pub fn from_env(test: &str) -> Option<Harness> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let Some(dir) = var("PULLGATE_IT_DIR") else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{test}: PULLGATE_IT_DIR is not set under CI=true; run the tests with \
                     integration/run-tests, which starts containerd and the registry"
                );
            }
            eprintln!(
                "SKIPPED {test}: no integration harness (run integration/run-tests to start \
                 containerd and a registry)"
            );
            return None;
        };
        let need = |name: &str| {
            var(name).unwrap_or_else(|| panic!("{name} missing from the harness environment"))
        };
        Some(Harness {
            dir: PathBuf::from(dir),
            containerd_socket: PathBuf::from(need("PULLGATE_IT_CONTAINERD_SOCK")),
            registry: need("PULLGATE_IT_REGISTRY"),
            busybox: need("PULLGATE_IT_BUSYBOX"),
            busybox_digest: need("PULLGATE_IT_BUSYBOX_DIGEST"),
            pause: need("PULLGATE_IT_PAUSE"),
            script: PathBuf::from(need("PULLGATE_IT_HARNESS")),
        })
    }

    /// Runs `integration/harness <verb>` (e.g. `stop-containerd`) and checks it worked.
    pub fn run(&self, verb: &str) {
        let status = Command::new(&self.script)
            .arg(verb)
            .env("PULLGATE_IT_DIR", &self.dir)
            .status()
            .unwrap_or_else(|e| panic!("running {} {verb}: {e}", self.script.display()));
        assert!(status.success(), "harness {verb} failed: {status}");
    }

    pub fn direct_client(&self) -> CriClient {
        CriClient::connect(&self.containerd_socket).expect("client for containerd")
    }
}

/// A running `pullgate serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Pullgate {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Pullgate {
    /// Writes a config for `containerd_socket` (plus `extra` TOML appended to its
    /// `[server]` section) and starts the binary; waits until the socket is bound.
    pub fn start(containerd_socket: &Path, extra_server: &str) -> Pullgate {
        Pullgate::start_with_log(containerd_socket, extra_server, "text")
    }

    pub fn start_with_log(containerd_socket: &Path, extra_server: &str, format: &str) -> Pullgate {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy_dir = dir.path().join("notation");
        std::fs::create_dir_all(&policy_dir).expect("policy dir");
        std::fs::write(
            policy_dir.join("trustpolicy.oci.json"),
            pass_through_policy(),
        )
        .expect("policy");
        Pullgate::start_full(
            containerd_socket,
            dir,
            &format!("[server]\n{extra_server}\n[log]\nformat = {format:?}\nlevel = \"pullgate=debug,info\"\n[policy]\ndir = {policy_dir:?}\n"),
        )
    }

    /// Starts pullgate with `config` (TOML sections other than `[server] socket` and
    /// `[upstream] containerd_socket`, which are set here) in `dir`.
    pub fn start_full(
        containerd_socket: &Path,
        dir: tempfile::TempDir,
        config_text: &str,
    ) -> Pullgate {
        let socket = dir.path().join("pullgate.sock");
        let config = dir.path().join("config.toml");
        // `[server] socket` goes first so that a `[server]` section in `config_text`
        // can add to it.
        let config_text = if config_text.contains("[server]") {
            config_text.replacen("[server]\n", &format!("[server]\nsocket = {socket:?}\n"), 1)
        } else {
            format!("[server]\nsocket = {socket:?}\n{config_text}")
        };
        std::fs::write(
            &config,
            format!("{config_text}\n[upstream]\ncontainerd_socket = {containerd_socket:?}\n"),
        )
        .expect("write config");
        let log = dir.path().join("pullgate.log");
        let child = Command::new(pullgate_binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn pullgate");
        let mut pullgate = Pullgate {
            child,
            socket,
            log,
            dir,
        };
        pullgate.wait_for_socket();
        pullgate
    }

    fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "pullgate exited early ({status}); log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("pullgate did not bind {} in 20s", self.socket.display());
    }

    pub fn client(&self) -> CriClient {
        CriClient::connect(&self.socket).expect("client for pullgate")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("pullgate still running after {limit:?}");
    }
}

/// The `pullgate` binary cargo built beside the running test or bench
/// (`target/<profile>/pullgate`; the test itself runs from `target/<profile>/deps`).
/// `CARGO_BIN_EXE_pullgate` exists only while compiling pullgate's own tests, not
/// this library, hence the lookup; `PULLGATE_BIN` overrides it.
pub fn pullgate_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PULLGATE_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("path of the running test");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join("pullgate");
    assert!(
        bin.is_file(),
        "{} not found: run through `cargo test`/`cargo bench` in pullgate's package, \
         which builds the binary, or set PULLGATE_BIN",
        bin.display()
    );
    bin
}

/// A trust policy that lets the proxy tests' images through unverified (level
/// `skip`, named scopes): those tests are about forwarding, not verification.
pub fn pass_through_policy() -> String {
    let mut scopes = vec![
        "docker.io/library/busybox".to_owned(),
        "registry.test/app".to_owned(),
        "example.test/app".to_owned(),
    ];
    if let Ok(registry) = std::env::var("PULLGATE_IT_REGISTRY") {
        for repo in ["library/busybox", "library/does-not-exist", "pause"] {
            scopes.push(format!("{registry}/{repo}"));
        }
    }
    serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "proxy-tests",
            "registryScopes": scopes,
            "signatureVerification": {"level": "skip"},
        }]
    })
    .to_string()
}

impl Drop for Pullgate {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `../shared/vectors/<name>` (the team's signature vectors beside the repo), or
/// `None` with a note when they are absent (a clone outside the team). Under
/// `CI=true` their absence is a failure: CI must not pass by skipping.
pub fn vectors_dir(name: &str, test: &str) -> Option<PathBuf> {
    // This crate sits in `testkit/` of the repo; the vectors beside the repo.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {} is missing under CI=true", dir.display());
    }
    eprintln!(
        "SKIPPED {test}: {} not found (vectors live beside the repo)",
        dir.display()
    );
    None
}

/// A host-network pod sandbox named `name` in namespace `pullgate-e2e`.
pub fn pod_config(name: &str) -> pullgate::cri::v1::PodSandboxConfig {
    pullgate::cri::v1::PodSandboxConfig {
        metadata: Some(pullgate::cri::v1::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("{name}-uid"),
            namespace: "pullgate-e2e".to_owned(),
            attempt: 0,
        }),
        // Host network: no CNI on these machines. No hostname: runc refuses it there.
        linux: Some(pullgate::cri::v1::LinuxPodSandboxConfig {
            security_context: Some(pullgate::cri::v1::LinuxSandboxSecurityContext {
                namespace_options: Some(pullgate::cri::v1::NamespaceOption {
                    network: pullgate::cri::v1::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Signs `subject` with `chain`'s leaf in `format` as notation would: signing time
/// now, the three-certificate chain, the header algorithm of the leaf's key.
pub fn sign_subject(
    pki: &pki::Pki,
    chain: &pki::Chain,
    subject: &signed_layout::Blob,
    format: envelope_builder::Format,
) -> Vec<u8> {
    use envelope_builder::{EnvelopeSpec, Target};
    let spec = EnvelopeSpec {
        alg: chain.leaf.key.algorithm().to_string(),
        signing_time: Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs() as i64,
        ),
        target: Target {
            media_type: subject.media_type.clone(),
            digest: subject.digest.to_string(),
            size: subject.size(),
            annotations: Vec::new(),
            artifact_type: None,
        },
        certificate_chain: vec![
            chain.leaf.der.clone(),
            chain.intermediate.der.clone(),
            chain.root.der.clone(),
        ],
        ..EnvelopeSpec::default()
    };
    spec.build(format, &|tbs| {
        pki.sign(&chain.leaf.key_path, chain.leaf.key.algorithm(), tbs)
    })
}
