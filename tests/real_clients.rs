//! Real gRPC stacks other than ours against pullgate: a grpc-go CRI client (built
//! from Debian's grpc-go and cri-api by `integration/clients/go/build`, dialing as
//! the kubelet does, with the socket path or `localhost` as `:authority`) and a
//! grpcio (C-core) client (`integration/clients/python`). Each runs the same CRI
//! sequence once through pullgate and once straight against containerd; the two
//! runs must agree step by step except where the gate is meant to differ: the
//! unsigned pull is denied in the form the kubelet reports as
//! `SignatureValidationFailed`, and containerd's non-CRI services are not exposed.
//! A pull that containerd itself fails must reach them unchanged too.
//!
//! The clients print one JSON line per step (`{"step", "code", "message",
//! "result"}`), results normalised so that two runs compare equal.

use pullgate_testkit as support;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pullgate::cri::v1;
use serde::Deserialize;
use serde_json::json;
use support::envelope_builder::Format;
use support::pki::KeySpec;
use support::signing::{resolve, skopeo_copy, unique, ImageSigner};
use support::{CriClient, Harness, Pullgate};

/// One client run at a time: they share containerd, create the same pod (and
/// remove one with its metadata left by a run that died), and a run's pulls and
/// removals must not meet another's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The trust policy statement covering both test repositories.
const POLICY: &str = "real-clients";

/// A whole client run: 19 steps, two of them pulls from the loopback registry,
/// one a pod start. Far above what a run takes (a few seconds); reached only when
/// a client hangs, which fails the test instead of stalling it.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// The steps every run prints, in order (the client contract).
const STEPS: [&str; 19] = [
    "Version",
    "Status",
    "PullSigned",
    "PullUnsigned",
    "ImageStatus",
    "ListImages",
    "RunPodSandbox",
    "CreateContainer",
    "StartContainer",
    "ExecSync",
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
    "RemoveImage",
    "ImageStatusAfterRemove",
    "UnknownCriMethod",
    "NonCriService",
    "Concurrent64",
];

/// One line of a client's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Step {
    step: String,
    code: String,
    message: String,
    result: serde_json::Value,
}

/// How to start one client: a program and the arguments before the common ones.
struct ClientProgram {
    label: &'static str,
    /// `label` as a repository name component.
    slug: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
}

/// The `:authority` the grpc-go client sends.
#[derive(Clone, Copy)]
enum Dial {
    /// The socket path, as the kubelet up to 1.29 does (the dial target).
    Path,
    /// `localhost`, as the kubelet from 1.30 does (`grpc.WithAuthority`).
    Localhost,
}

impl ClientProgram {
    /// The grpc-go client.
    fn go(harness: &Harness, dial: Dial) -> Option<ClientProgram> {
        let (label, slug, dial) = match dial {
            Dial::Path => ("grpc-go --dial path", "go-path", "path"),
            Dial::Localhost => ("grpc-go --dial localhost", "go-localhost", "localhost"),
        };
        let program = harness.dir.join("bin/cri-go");
        present(label, &[&program], "integration/clients/go/build")?;
        Some(ClientProgram {
            label,
            slug,
            program,
            args: vec!["--dial".into(), dial.into()],
        })
    }

    /// The grpcio client in the venv `integration/clients/python/setup` makes.
    fn python(harness: &Harness) -> Option<ClientProgram> {
        let label = "grpcio (python)";
        let program = harness.dir.join("py/bin/python");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/clients/python/cri_client.py");
        present(
            label,
            &[&program, &script],
            "integration/clients/python/setup",
        )?;
        Some(ClientProgram {
            label,
            slug: "python",
            program,
            args: vec![script.into()],
        })
    }

    /// Runs the client against `endpoint` (`--run-image` is `signed`) and returns
    /// its steps; panics (with the client's stderr) when it fails to run or prints
    /// something else.
    fn run(&self, endpoint: &Path, signed: &str, unsigned: &str) -> Vec<Step> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg("--endpoint")
            .arg(endpoint)
            .args(["--signed", signed, "--unsigned", unsigned])
            // The image PullSigned pulled: the clients do not pull it themselves.
            .args(["--run-image", signed])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: spawn {}: {e}", self.label, self.program.display()));
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
        let deadline = pullgate_testkit::time::instant() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the client") {
                break Some(status);
            }
            if pullgate_testkit::time::instant() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            pullgate_testkit::time::pause(Duration::from_millis(50));
        };
        let stdout = stdout.join().expect("stdout reader");
        let stderr = stderr.join().expect("stderr reader");
        let context = format!(
            "{} against {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            self.label,
            endpoint.display()
        );
        let Some(status) = status else {
            panic!("client still running after {RUN_LIMIT:?}: {context}");
        };
        assert!(
            status.success(),
            "client failed to run ({status}): {context}"
        );
        let steps: Vec<Step> = stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a step line ({e}): {line:?}\n{context}"))
            })
            .collect();
        let names: Vec<&str> = steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(names, STEPS, "steps out of contract: {context}");
        steps
    }
}

/// `None` (skip) when one of `paths` is missing outside CI; a failure under
/// `CI=true`, where the clients must have been built.
fn present(label: &str, paths: &[&Path], builder: &str) -> Option<()> {
    let Some(missing) = paths.iter().find(|p| !p.exists()) else {
        return Some(());
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{label}: {} is missing under CI=true; {builder} must run before the tests",
            missing.display()
        );
    }
    eprintln!(
        "SKIPPED {label}: {} not found (run {builder})",
        missing.display()
    );
    None
}

/// The two images of one test: busybox in two fresh repositories, one signed.
struct Images {
    signed: String,
    unsigned: String,
    signed_repo: String,
    unsigned_repo: String,
}

impl Images {
    async fn new(harness: &Harness, signer: &ImageSigner, label: &str) -> Images {
        let suffix = unique(label);
        let signed_repo = format!("real-clients/signed-{suffix}");
        let unsigned_repo = format!("real-clients/unsigned-{suffix}");
        let signed = format!("{}/{signed_repo}:v1", harness.registry);
        let unsigned = format!("{}/{unsigned_repo}:v1", harness.registry);
        skopeo_copy(&harness.busybox, &signed);
        skopeo_copy(&harness.busybox, &unsigned);
        let subject = resolve(&harness.registry, &signed).await;
        signer.sign_and_push(harness, &signed_repo, &subject, Format::Cose);
        Images {
            signed,
            unsigned,
            signed_repo,
            unsigned_repo,
        }
    }

    /// Removes both images from containerd (an absent image removes fine), so the
    /// next run pulls for real.
    async fn remove_from(&self, containerd: &CriClient) {
        for image in [&self.signed, &self.unsigned] {
            containerd
                .image
                .clone()
                .remove_image(v1::RemoveImageRequest {
                    image: Some(v1::ImageSpec {
                        image: image.clone(),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap_or_else(|e| panic!("RemoveImage {image}: {e:?}"));
        }
    }
}

/// pullgate with `statements` plus one for the pause image (skipped: containerd
/// pulls its sandbox image itself, but a policy for every image a node runs is
/// what an operator writes), trusting `signer`'s root as `ca:acme` if given.
fn start_pullgate(
    harness: &Harness,
    signer: Option<&ImageSigner>,
    mut statements: Vec<serde_json::Value>,
) -> Pullgate {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("notation");
    if let Some(signer) = signer {
        let store = policy.join("truststore/x509/ca/acme");
        std::fs::create_dir_all(&store).expect("trust store dir");
        std::fs::write(store.join("root.pem"), signer.root_pem()).expect("root.pem");
    }
    std::fs::create_dir_all(&policy).expect("policy dir");
    statements.push(json!({
        "name": "pause",
        "registryScopes": [scope(harness, "pause")],
        "signatureVerification": {"level": "skip"},
    }));
    let document = json!({"version": "1.0", "trustPolicies": statements});
    std::fs::write(policy.join("trustpolicy.oci.json"), document.to_string()).expect("policy");
    let config = format!(
        "[log]\nlevel = \"pullgate=debug,info\"\n[policy]\ndir = {policy:?}\n[registry]\ninsecure = [{:?}]\ntimeout = \"10s\"\n",
        harness.registry
    );
    Pullgate::start_full(&harness.containerd_socket, dir, &config)
}

fn scope(harness: &Harness, repo: &str) -> String {
    format!("{}/{repo}", harness.registry)
}

/// What every run through pullgate prints, step by step: (code, result). The
/// messages are checked separately (empty on OK, the denial's form, containerd's
/// own text for the unknown method).
fn expected_through_pullgate(step: &str) -> (&'static str, Option<serde_json::Value>) {
    let (code, result) = match step {
        "Version" => (
            "OK",
            json!({"runtime_name": "containerd", "runtime_api_version": "v1"}),
        ),
        // Readiness is containerd's (no CNI here): only compared with direct.
        "Status" => return ("OK", None),
        "PullSigned" => ("OK", json!({"image_ref_is_digest": true})),
        "PullUnsigned" => ("Unknown", json!({})),
        "ImageStatus" => ("OK", json!({"present": true})),
        "ListImages" => ("OK", json!({"contains_signed": true})),
        "ExecSync" => ("OK", json!({"stdout": "hello\n", "exit_code": 0})),
        "ImageStatusAfterRemove" => ("OK", json!({"present": false})),
        "UnknownCriMethod" | "NonCriService" => ("Unimplemented", json!({})),
        "Concurrent64" => ("OK", json!({"ok": 64})),
        _ => ("OK", json!({})),
    };
    (code, Some(result))
}

/// Checks a proxied run against the contract and against the direct run; `log`
/// (pullgate's) goes into every failure message.
fn compare(label: &str, log: &str, images: &Images, proxied: &[Step], direct: &[Step]) {
    let context = |step: &Step| {
        format!(
            "{label}: step {} through pullgate: {step:?}\n--- both runs\nthrough pullgate: \
             {proxied:#?}\ndirect: {direct:#?}\n--- pullgate log\n{log}",
            step.step
        )
    };
    for (p, d) in proxied.iter().zip(direct) {
        let (code, result) = expected_through_pullgate(&p.step);
        assert_eq!(p.code, code, "{}", context(p));
        if let Some(result) = result {
            assert_eq!(p.result, result, "{}", context(p));
        }
        if code == "OK" {
            assert_eq!(p.message, "", "{}", context(p));
        }
        match p.step.as_str() {
            // The gate's denial, in the form Kubernetes >= 1.28 turns into the
            // container reason SignatureValidationFailed (status Unknown, prefix).
            "PullUnsigned" => {
                let prefix = format!("SignatureValidationFailed: pullgate: {}: ", images.unsigned);
                let suffix = format!("(trust policy \"{POLICY}\")");
                assert!(
                    p.message.starts_with(&prefix) && p.message.ends_with(&suffix),
                    "want {prefix}…{suffix}; {}",
                    context(p)
                );
                assert_eq!(
                    (d.code.as_str(), d.message.as_str()),
                    ("OK", ""),
                    "{}",
                    context(p)
                );
            }
            // containerd's other services are not part of what pullgate serves.
            "NonCriService" => {
                assert_eq!(
                    (d.code.as_str(), d.message.as_str()),
                    ("OK", ""),
                    "{}",
                    context(p)
                );
            }
            // Everything else, the unknown CRI method's message included, is
            // containerd's answer passed through unchanged.
            _ => assert_eq!(p, d, "direct differs; {}", context(p)),
        }
    }
}

/// The whole check for one client: images, pullgate, a run through pullgate and
/// one straight against containerd, then the comparison.
async fn client_agrees_through_pullgate(
    test: &str,
    client: impl FnOnce(&Harness) -> Option<ClientProgram>,
) {
    let Some(harness) = Harness::from_env(test) else {
        return;
    };
    let Some(client) = client(&harness) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let started = pullgate_testkit::time::instant();
    let signer = ImageSigner::new(KeySpec::Rsa3072);
    let images = Images::new(&harness, &signer, client.slug).await;
    let pullgate = start_pullgate(
        &harness,
        Some(&signer),
        vec![json!({
            "name": POLICY,
            "registryScopes": [
                scope(&harness, &images.signed_repo),
                scope(&harness, &images.unsigned_repo),
            ],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["*"],
        })],
    );
    let containerd = harness.direct_client();

    // Through pullgate first, on fresh repositories: its signed pull is a real
    // pull (and verification), not an answer from containerd's store.
    let socket = pullgate.socket.clone();
    let (client, images, proxied) = tokio::task::spawn_blocking(move || {
        let steps = client.run(&socket, &images.signed, &images.unsigned);
        (client, images, steps)
    })
    .await
    .expect("proxied run");
    images.remove_from(&containerd).await;
    let (client, images, direct) = tokio::task::spawn_blocking(move || {
        let steps = client.run(&harness.containerd_socket, &images.signed, &images.unsigned);
        (client, images, steps)
    })
    .await
    .expect("direct run");
    // The direct run pulled the unsigned image; leave containerd as found.
    images.remove_from(&containerd).await;

    compare(
        client.label,
        &pullgate.log_text(),
        &images,
        &proxied,
        &direct,
    );
    eprintln!(
        "{test}: {} steps, 2 runs agree in {:.1}s; the unsigned pull through pullgate: {}",
        STEPS.len(),
        started.elapsed().as_secs_f64(),
        proxied
            .iter()
            .find(|s| s.step == "PullUnsigned")
            .map_or("", |s| s.message.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_go_with_the_socket_path_as_authority() {
    client_agrees_through_pullgate("grpc_go_with_the_socket_path_as_authority", |h| {
        ClientProgram::go(h, Dial::Path)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_go_with_localhost_as_authority() {
    client_agrees_through_pullgate("grpc_go_with_localhost_as_authority", |h| {
        ClientProgram::go(h, Dial::Localhost)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcio_python() {
    client_agrees_through_pullgate("grpcio_python", ClientProgram::python).await;
}

/// A pull that containerd itself fails (a tag the registry does not have, in a
/// repository the policy skips, so pullgate forwards the call) reaches every real
/// client with containerd's own status and message, exactly as it does directly:
/// the kubelet reports an image pull error from what its client decoded.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_containerd_fails_reaches_real_clients_unchanged() {
    let test = "a_pull_containerd_fails_reaches_real_clients_unchanged";
    let Some(harness) = Harness::from_env(test) else {
        return;
    };
    let clients: Vec<ClientProgram> = [
        ClientProgram::go(&harness, Dial::Path),
        ClientProgram::go(&harness, Dial::Localhost),
        ClientProgram::python(&harness),
    ]
    .into_iter()
    .flatten()
    .collect();
    let _serial = SERIAL.lock().await;
    let repo = format!("real-clients/{}", unique("missing"));
    let missing = format!("{}/{repo}:absent", harness.registry);
    let pullgate = start_pullgate(
        &harness,
        None,
        vec![json!({
            "name": "forwarded",
            "registryScopes": [scope(&harness, &repo)],
            "signatureVerification": {"level": "skip"},
        })],
    );
    let socket = pullgate.socket.clone();
    let containerd_socket = harness.containerd_socket.clone();
    let runs = tokio::task::spawn_blocking(move || {
        clients
            .into_iter()
            .map(|client| {
                let proxied = client.run(&socket, &missing, &missing);
                let direct = client.run(&containerd_socket, &missing, &missing);
                (client.label, proxied, direct)
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("client runs");
    let log = pullgate.log_text();
    for (label, proxied, direct) in &runs {
        for step in ["PullSigned", "PullUnsigned"] {
            let find = |steps: &[Step]| {
                steps
                    .iter()
                    .find(|s| s.step == step)
                    .cloned()
                    .expect("run() checked every step is there")
            };
            let (p, d) = (find(proxied), find(direct));
            assert_eq!(d.code, "NotFound", "{label}: {step} direct: {d:?}");
            assert_eq!(
                p, d,
                "{label}: {step} through pullgate differs from direct\n--- pullgate log\n{log}"
            );
        }
    }
    eprintln!("{test}: {} clients agree", runs.len());
}
