//! containerd's sandbox (pause) image end to end (issue 12): pullgate learns it
//! from containerd (`$PULLGATE_IT_REGISTRY/pause:3.9` in the harness config),
//! verifies it at start, pulls it pinned, and refuses `RunPodSandbox` while an
//! enforcing statement covers it and it is not verified. Against the real
//! containerd and docker-registry of `integration/harness`.
//!
//! The harness's pause image is what every other end-to-end test's pods run: each
//! test here leaves it present in containerd and unsigned in the registry.

use pullgate_testkit as support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pullgate::cri::{v1, v1alpha2};
use support::envelope_builder::Format;
use support::pki::KeySpec;
use support::pod::{image_status, remove_image, Pod};
use support::signing::{resolve, ImageSigner};
use support::{pod_config, CriClient, Harness, Pullgate};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The harness, and the lock that runs the tests here one at a time; without an
/// integration harness the test returns (skipped) here.
macro_rules! harness_or_skip {
    ($test:literal) => {
        match Harness::from_env($test) {
            Some(harness) => (harness, SERIAL.lock().await),
            None => return,
        }
    };
}

/// pullgate with `statements` (a JSON array) and the trust store `ca:acme` holding
/// `root_pem`; `[policy] unmatched` is left at its default (`deny`).
fn pullgate(harness: &Harness, statements: serde_json::Value, root_pem: &str) -> Pullgate {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("notation");
    let store = policy.join("truststore/x509/ca/acme");
    std::fs::create_dir_all(&store).expect("trust store");
    std::fs::write(store.join("root.pem"), root_pem).expect("root");
    let document = serde_json::json!({"version": "1.0", "trustPolicies": statements});
    std::fs::write(policy.join("trustpolicy.oci.json"), document.to_string()).expect("policy");
    let config = format!(
        "[log]\nlevel = \"pullgate=debug,info\"\n[policy]\ndir = {policy:?}\nreload_interval = \"200ms\"\n[registry]\ninsecure = [{:?}]\ntimeout = \"10s\"\n",
        harness.registry
    );
    Pullgate::start_full(&harness.containerd_socket, dir, &config)
}

/// A `strict` statement `name` trusting `ca:acme` for any identity.
fn strict(name: &str, scope: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "registryScopes": [scope],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["*"],
    })
}

fn pause_scope(harness: &Harness) -> String {
    format!("{}/pause", harness.registry)
}

/// The registry's access log (`PULLGATE_IT_REGISTRY_LOG`).
fn registry_log() -> PathBuf {
    PathBuf::from(std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("PULLGATE_IT_REGISTRY_LOG"))
}

/// The registry's access-log lines for the pause repository written after `from`
/// bytes of its log.
fn pause_requests(from: u64) -> Vec<String> {
    let log = std::fs::read(registry_log()).expect("registry log");
    let start = usize::try_from(from).expect("offset").min(log.len());
    String::from_utf8_lossy(&log[start..])
        .lines()
        .filter(|line| line.starts_with("127.0.0.1 - - [") && line.contains(" /v2/pause/"))
        .map(str::to_owned)
        .collect()
}

fn registry_log_len() -> u64 {
    std::fs::metadata(registry_log())
        .map(|meta| meta.len())
        .unwrap_or(0)
}

/// RunPodSandbox of [`pod_config`]`(name)` through `client`: the status it got.
async fn run_pod(client: &CriClient, name: &str) -> Result<String, tonic::Status> {
    client
        .runtime
        .clone()
        .run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(pod_config(name)),
            runtime_handler: String::new(),
        })
        .await
        .map(|answer| answer.into_inner().pod_sandbox_id)
}

/// Whether containerd has a sandbox named `name`.
async fn sandbox_exists(direct: &CriClient, name: &str) -> bool {
    direct
        .runtime
        .clone()
        .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items
        .iter()
        .any(|sandbox| sandbox.metadata.as_ref().is_some_and(|m| m.name == name))
}

/// Puts the pause image back as the harness left it, also when a test fails:
/// unsigned in the registry (its signature index deleted), present in containerd.
struct RestorePause {
    harness_registry: String,
    pause: String,
    containerd: PathBuf,
    /// The manifest digest whose referrers tag (`sha256-<hex>`) a test pushed.
    signed: Option<String>,
}

impl Drop for RestorePause {
    fn drop(&mut self) {
        if let Some(digest) = &self.signed {
            let tag = digest.replace(':', "-");
            let base = format!("http://{}/v2/pause/manifests", self.harness_registry);
            let accept = "Accept: application/vnd.oci.image.index.v1+json";
            let head = Command::new("curl")
                .args(["-sS", "-I", "-H", accept])
                .arg(format!("{base}/{tag}"))
                .output()
                .expect("curl HEAD");
            let headers = String::from_utf8_lossy(&head.stdout).to_string();
            let index = headers.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("docker-content-digest")
                    .then(|| value.trim().to_owned())
            });
            if let Some(index) = index {
                let status = Command::new("curl")
                    .args([
                        "-sS",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "-X",
                        "DELETE",
                    ])
                    .arg(format!("{base}/{index}"))
                    .output()
                    .expect("curl DELETE");
                let code = String::from_utf8_lossy(&status.stdout).to_string();
                if code != "202" {
                    eprintln!("deleting the pause signature index {index}: HTTP {code}");
                }
            }
        }
        // Back in containerd, pulled directly (a fresh runtime: this may run while
        // a test's runtime unwinds).
        let pause = self.pause.clone();
        let containerd = self.containerd.clone();
        let pulled = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let direct = CriClient::connect(&containerd).expect("client");
                support::pod::pull(&direct, &pause).await
            })
        })
        .join();
        if !matches!(pulled, Ok(Ok(_))) {
            eprintln!(
                "could not pull {} back into containerd: {pulled:?}",
                self.pause
            );
        }
    }
}

impl RestorePause {
    fn new(harness: &Harness) -> RestorePause {
        RestorePause {
            harness_registry: harness.registry.clone(),
            pause: harness.pause.clone(),
            containerd: harness.containerd_socket.clone(),
            signed: None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unverified_sandbox_image_under_strict_refuses_run_pod_sandbox() {
    let (harness, _serial) =
        harness_or_skip!("an_unverified_sandbox_image_under_strict_refuses_run_pod_sandbox");
    let _restore = RestorePause::new(&harness);
    // The trusted CA never signed the pause image (which is unsigned).
    let signer = ImageSigner::new(KeySpec::P256);
    let pullgate = pullgate(
        &harness,
        serde_json::json!([strict("pause-strict", &pause_scope(&harness))]),
        signer.root_pem(),
    );
    let client = pullgate.client();
    let direct = harness.direct_client();
    let name = support::signing::unique("refused");

    let status = run_pod(&client, &name).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let prefix = format!(
        "pullgate: {}: not verified under trust policy \"pause-strict\" (",
        harness.pause
    );
    let message = status.message();
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.contains("no signature is associated with"),
        "{message}"
    );
    assert!(message.ends_with(')'), "{message}");
    // runtime.v1alpha2 is refused alike.
    let status = client
        .runtime_v1alpha2
        .clone()
        .run_pod_sandbox(v1alpha2::RunPodSandboxRequest {
            config: Some(v1alpha2::PodSandboxConfig {
                metadata: Some(v1alpha2::PodSandboxMetadata {
                    name: name.clone(),
                    uid: format!("{name}-uid"),
                    namespace: "pullgate-e2e".into(),
                    attempt: 0,
                }),
                ..Default::default()
            }),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("refused via v1alpha2");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(status.message().starts_with(&prefix), "{status:?}");
    // No sandbox was made.
    assert!(!sandbox_exists(&direct, &name).await);
    let log = pullgate.log_text();
    assert!(
        log.lines().any(|line| line.contains("pullgate::audit")
            && line.contains("call=\"RunPodSandbox\"")
            && line.contains("outcome=\"denied\"")
            && line.contains("sandbox image not verified")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_sandbox_image_is_verified_at_start_and_never_fetched_by_containerd() {
    let (harness, _serial) = harness_or_skip!(
        "a_signed_sandbox_image_is_verified_at_start_and_never_fetched_by_containerd"
    );
    let mut restore = RestorePause::new(&harness);
    let signer = ImageSigner::new(KeySpec::P256);
    let target = resolve(&harness.registry, &harness.pause).await;
    restore.signed = Some(target.digest.to_string());
    signer.sign_and_push(&harness, "pause", &target, Format::Jws);
    // containerd without the pause image: the only fetch is pullgate's pinned pull.
    let direct = harness.direct_client();
    if image_status(&direct, &harness.pause).await.is_some() {
        remove_image(&direct, &harness.pause).await;
    }
    assert!(image_status(&direct, &harness.pause).await.is_none());
    let from = registry_log_len();

    let pullgate = pullgate(
        &harness,
        serde_json::json!([strict("pause-signed", &pause_scope(&harness))]),
        signer.root_pem(),
    );
    // Verified at start, without any RunPodSandbox: the name record points at the
    // verified digest and carries the verdict.
    let store = pullgate::upstream::ImageStore::new(&harness.containerd_socket);
    let mut record = None;
    for _ in 0..500 {
        if let Some(found) = store.get(&harness.pause).await.expect("images API") {
            if found
                .labels
                .keys()
                .any(|k| k.starts_with("io.pullgate.verdict."))
            {
                record = Some(found);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let record = record.unwrap_or_else(|| panic!("no verdict recorded:\n{}", pullgate.log_text()));
    assert_eq!(record.target.digest, target.digest);
    assert_eq!(
        record
            .labels
            .get("io.pullgate.verified")
            .map(String::as_str),
        Some("true"),
        "{record:?}"
    );
    assert_eq!(
        record.labels.get("io.pullgate.policy").map(String::as_str),
        Some("pause-signed")
    );
    let pinned = format!("{}/pause@{}", harness.registry, target.digest);
    let pinned_record = store.get(&pinned).await.expect("images API");
    assert!(
        pinned_record.is_some_and(|r| r
            .labels
            .keys()
            .any(|k| k.starts_with("io.pullgate.verdict."))),
        "pinned record without a verdict"
    );
    // containerd fetched it by digest only (pullgate resolved the tag).
    let fetched = pause_requests(from);
    let by_containerd: Vec<&String> = fetched
        .iter()
        .filter(|line| line.contains("\"containerd/"))
        .collect();
    assert!(!by_containerd.is_empty(), "{fetched:#?}");
    assert!(
        by_containerd
            .iter()
            .all(|line| !line.contains("/v2/pause/manifests/3.9")),
        "{by_containerd:#?}"
    );

    // A pod runs, and nobody asks the registry for the pause image again.
    let before_pod = registry_log_len();
    let client = pullgate.client();
    let pod = Pod::run(&client, &support::signing::unique("signed")).await;
    let status = direct
        .runtime
        .clone()
        .pod_sandbox_status(v1::PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .expect("status");
    assert_eq!(status.state, v1::PodSandboxState::SandboxReady as i32);
    assert_eq!(pause_requests(before_pod), Vec::<String>::new());
    pod.stop(&client).await;
    pod.remove(&client).await;
    let log = pullgate.log_text();
    assert!(
        log.contains("sandbox image verified and pulled pinned"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_image_no_statement_covers_runs_even_on_a_deny_node() {
    let (harness, _serial) =
        harness_or_skip!("a_sandbox_image_no_statement_covers_runs_even_on_a_deny_node");
    let _restore = RestorePause::new(&harness);
    let signer = ImageSigner::new(KeySpec::P256);
    let other = format!("{}/not-the-pause-image", harness.registry);
    let pullgate = pullgate(
        &harness,
        serde_json::json!([strict("other", &other)]),
        signer.root_pem(),
    );
    let client = pullgate.client();
    let pod = Pod::run(&client, &support::signing::unique("unmatched")).await;
    pod.stop(&client).await;
    pod.remove(&client).await;
    let log = pullgate.log_text();
    assert_eq!(
        log.matches("no trust policy statement covers containerd's sandbox image")
            .count(),
        1,
        "{log}"
    );
}

/// The `io.pullgate.verdict.*` label keys on containerd's record `name`.
async fn verdict_keys(store: &pullgate::upstream::ImageStore, name: &str) -> Vec<String> {
    store
        .get(name)
        .await
        .expect("images API")
        .map(|record| {
            record
                .labels
                .into_keys()
                .filter(|key| key.starts_with("io.pullgate.verdict."))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_reload_verifies_the_sandbox_image_again_without_a_pod() {
    let (harness, _serial) =
        harness_or_skip!("a_policy_reload_verifies_the_sandbox_image_again_without_a_pod");
    let mut restore = RestorePause::new(&harness);
    let signer = ImageSigner::new(KeySpec::P256);
    let target = resolve(&harness.registry, &harness.pause).await;
    restore.signed = Some(target.digest.to_string());
    signer.sign_and_push(&harness, "pause", &target, Format::Jws);
    // At start the trust store holds another root: the signature does not verify.
    let stranger = ImageSigner::new(KeySpec::P256);
    let pullgate = pullgate(
        &harness,
        serde_json::json!([strict("pause-reloaded", &pause_scope(&harness))]),
        stranger.root_pem(),
    );
    let client = pullgate.client();
    let status = run_pod(&client, &support::signing::unique("before-reload"))
        .await
        .expect_err("not trusted yet");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("not verified under trust policy \"pause-reloaded\""),
        "{status:?}"
    );
    let store = pullgate::upstream::ImageStore::new(&harness.containerd_socket);
    let before = verdict_keys(&store, &harness.pause).await;

    // The store now trusts the signer (replaced by rename, as an operator would).
    let root = pullgate
        .dir
        .path()
        .join("notation/truststore/x509/ca/acme/root.pem");
    let staged = root.with_extension("new");
    std::fs::write(&staged, signer.root_pem()).expect("new root");
    std::fs::rename(&staged, &root).expect("replace root");
    // The reload alone verifies it and records the verdict: no RunPodSandbox asks.
    let mut added = Vec::new();
    for _ in 0..500 {
        added = verdict_keys(&store, &harness.pause)
            .await
            .into_iter()
            .filter(|key| !before.contains(key))
            .collect();
        if !added.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(added.len(), 1, "{}", pullgate.log_text());
    let pod = Pod::run(&client, &support::signing::unique("after-reload")).await;
    pod.stop(&client).await;
    pod.remove(&client).await;
}
