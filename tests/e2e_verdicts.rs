//! Issue 12 end to end, against the real containerd and registry of
//! `integration/harness`: no container runs from an image without a current
//! verdict. Images that reach containerd around pullgate (`ctr images import`, a
//! pull before pullgate was there, an image let in at `audit`) are hidden from
//! `ImageStatus`, refused by `PullImage` when unsigned, and `CreateContainer` by
//! their ID is refused; verdicts survive a restart of pullgate without a registry
//! request and go stale with any policy edit; two namespaces with different
//! policies get different verdicts for one image.

use pullgate_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pullgate::cri::v1;
use pullgate::oci::Descriptor;
use support::envelope_builder::Format;
use support::pki::KeySpec;
use support::pod::{container_state, image_spec, image_status, pull, start_container, Pod};
use support::signing::{resolve, skopeo_copy, unique, ImageSigner};
use support::{CriClient, Harness, Pullgate};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The harness, a trusted signer and an untrusted one; without a harness the test
/// returns (skipped) here.
macro_rules! world_or_skip {
    ($test:literal) => {
        match Harness::from_env($test) {
            Some(harness) => {
                let serial = SERIAL.lock().await;
                // The harness's busybox shares its image ID with every image here
                // (they are copies of it), under a name no policy here covers.
                let direct = harness.direct_client();
                support::pod::pull(&direct, &harness.busybox)
                    .await
                    .expect("pull busybox directly");
                (World::new(harness), serial)
            }
            None => return,
        }
    };
}

struct World {
    harness: Harness,
    /// The signer `ca:acme` trusts.
    trusted: ImageSigner,
    /// A signer of another CA (`ca:team`).
    team: ImageSigner,
}

impl World {
    fn new(harness: Harness) -> World {
        World {
            harness,
            trusted: ImageSigner::new(KeySpec::P256),
            team: ImageSigner::new(KeySpec::P256),
        }
    }

    /// busybox copied to a fresh repository `verdicts/<name>-…:v1`: (repo, reference,
    /// target).
    async fn image(&self, name: &str) -> (String, String, Descriptor) {
        let repo = format!("verdicts/{}", unique(name));
        let reference = format!("{}/{repo}:v1", self.harness.registry);
        skopeo_copy(&self.harness.busybox, &reference);
        let target = resolve(&self.harness.registry, &reference).await;
        (repo, reference, target)
    }

    fn scope(&self, repo: &str) -> String {
        format!("{}/{repo}", self.harness.registry)
    }

    /// A policy directory at `dir`: `statements`, stores `ca:acme` (trusted
    /// signer) and `ca:team` (the team's signer).
    fn write_policy(&self, dir: &Path, statements: serde_json::Value) {
        let document = serde_json::json!({"version": "1.0", "trustPolicies": statements});
        std::fs::create_dir_all(dir).expect("policy dir");
        std::fs::write(dir.join("trustpolicy.oci.json"), document.to_string()).expect("policy");
        for (name, pem) in [
            ("acme", self.trusted.root_pem()),
            ("team", self.team.root_pem()),
        ] {
            let store = dir.join("truststore/x509/ca").join(name);
            std::fs::create_dir_all(&store).expect("store");
            std::fs::write(store.join("root.pem"), pem).expect("cert");
        }
    }

    /// pullgate with the policy in `dir` (and `extra` config lines after
    /// `[policy]`'s).
    fn pullgate(&self, policy: &Path, extra: &str) -> Pullgate {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "[log]\nlevel = \"pullgate=debug,info\"\n[policy]\ndir = {policy:?}\n\
             reload_interval = \"200ms\"\n{extra}\n[registry]\ninsecure = [{:?}]\ntimeout = \"10s\"\n",
            self.harness.registry
        );
        Pullgate::start_full(&self.harness.containerd_socket, dir, &config)
    }

    /// Puts `reference` into containerd's `k8s.io` namespace around pullgate, as
    /// an operator's `ctr -n k8s.io images import` of a saved image does.
    fn ctr_import(&self, reference: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("image.tar");
        run_ok(
            "skopeo copy to a docker archive",
            Command::new("skopeo")
                .args(["copy", "-q", "--src-tls-verify=false"])
                .arg(format!("docker://{reference}"))
                .arg(format!("docker-archive:{}:{reference}", archive.display())),
        );
        run_ok(
            "ctr images import",
            Command::new("ctr")
                .arg("--address")
                .arg(&self.harness.containerd_socket)
                .args(["-n", "k8s.io", "images", "import"])
                .arg(&archive),
        );
    }

    /// containerd's own answer for `image` (bypassing pullgate).
    async fn direct_status(&self, image: &str) -> Option<v1::Image> {
        image_status(&self.harness.direct_client(), image).await
    }

    fn registry_log_lines(&self) -> Vec<String> {
        let log = std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("registry log");
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Removes `image` from containerd (all its names), directly.
    async fn forget(&self, image: &str) {
        let direct = self.harness.direct_client();
        if image_status(&direct, image).await.is_some() {
            support::pod::remove_image(&direct, image).await;
        }
    }
}

fn run_ok(what: &str, command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn statement(name: &str, scopes: &[String], level: &str, stores: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "registryScopes": scopes,
        "signatureVerification": {"level": level},
        "trustStores": stores,
        "trustedIdentities": ["*"],
    })
}

/// A container running `sleep` from `image` (an ID, as the kubelet sends).
fn container(image: &str) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "main".to_owned(),
            attempt: 0,
        }),
        image: image_spec(image),
        command: vec!["/bin/sleep".to_owned(), "3600".to_owned()],
        ..Default::default()
    }
}

/// PullImage of `image` for a pod in `namespace`, as the kubelet sends it.
async fn pull_in(
    client: &CriClient,
    image: &str,
    namespace: &str,
) -> Result<String, tonic::Status> {
    let mut sandbox = support::pod_config("verdicts");
    if let Some(metadata) = sandbox.metadata.as_mut() {
        metadata.namespace = namespace.to_owned();
    }
    client
        .image
        .clone()
        .pull_image(v1::PullImageRequest {
            image: image_spec(image),
            auth: None,
            sandbox_config: Some(sandbox),
        })
        .await
        .map(|answer| answer.into_inner().image_ref)
}

/// Asserts that CreateContainer of `image` in `pod` is refused as not verified
/// under `policy`, with `why` in the message.
async fn refused_to_create(client: &CriClient, pod: &Pod, image: &str, policy: &str, why: &str) {
    let status = pod
        .try_create_container(client, container(image))
        .await
        .expect_err("CreateContainer refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let message = status.message();
    assert!(
        message.starts_with(&format!(
            "pullgate: {image}: not verified under trust policy \"{policy}\" ("
        )),
        "{message}"
    );
    assert!(message.contains(why), "{message}");
}

/// Waits until pullgate has loaded a changed policy (its log says so).
async fn reloaded(pullgate: &Pullgate, times: usize) {
    for _ in 0..100 {
        if pullgate.log_text().matches("trust policy reloaded").count() >= times {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("policy not reloaded:\n{}", pullgate.log_text());
}

async fn remove_pod(client: &CriClient, pod: &Pod) {
    pod.stop(client).await;
    pod.remove(client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_image_imported_with_ctr_is_hidden_refused_and_cannot_run() {
    let (world, _serial) =
        world_or_skip!("an_unsigned_image_imported_with_ctr_is_hidden_refused_and_cannot_run");
    let (repo, reference, _) = world.image("imported").await;
    world.ctr_import(&reference);
    let id = world
        .direct_status(&reference)
        .await
        .expect("containerd has the imported image")
        .id;
    let policy = tempfile::tempdir().expect("tempdir");
    world.write_policy(
        policy.path(),
        serde_json::json!([statement(
            "prod",
            &[world.scope(&repo)],
            "strict",
            &["ca:acme"]
        )]),
    );
    let pullgate = world.pullgate(policy.path(), "");
    let client = pullgate.client();

    // ImageStatus through pullgate: not there, so the kubelet would pull.
    assert_eq!(image_status(&client, &reference).await, None);
    assert_eq!(image_status(&client, &id).await, None, "by ID neither");
    // The pull is refused: it has no signature.
    let status = pull(&client, &reference).await.expect_err("unsigned");
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    assert!(status.message().contains("no signature"), "{status:?}");
    // A pod naming it by ID cannot run it.
    let pod = Pod::run(&client, &format!("imported-{}", std::process::id())).await;
    refused_to_create(&client, &pod, &id, "prod", "no verdict recorded").await;
    let log = pullgate.log_text();
    assert!(
        log.lines().any(|l| l.contains("pullgate::audit")
            && l.contains("call=\"ImageStatus\"")
            && l.contains("not verified under trust policy")),
        "the audit line says why ImageStatus hid it:\n{log}"
    );
    remove_pod(&client, &pod).await;
    world.forget(&reference).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_let_in_at_audit_loses_its_standing_when_the_policy_becomes_strict() {
    let (world, _serial) = world_or_skip!(
        "an_image_let_in_at_audit_loses_its_standing_when_the_policy_becomes_strict"
    );
    // Signed, but by a CA the policy does not trust: audit logs that and lets it in.
    let (repo, reference, target) = world.image("audited").await;
    world
        .team
        .sign_and_push(&world.harness, &repo, &target, Format::Cose);
    let scopes = [world.scope(&repo)];
    let policy = tempfile::tempdir().expect("tempdir");
    world.write_policy(
        policy.path(),
        serde_json::json!([statement("prod", &scopes, "audit", &["ca:acme"])]),
    );
    let pullgate = world.pullgate(policy.path(), "");
    let client = pullgate.client();
    let id = pull(&client, &reference).await.expect("audit lets it in");
    assert!(image_status(&client, &reference).await.is_some());
    let pod = Pod::run(&client, &format!("audited-{}", std::process::id())).await;
    let running = pod.create_container(&client, container(&id)).await;

    world.write_policy(
        policy.path(),
        serde_json::json!([statement("prod", &scopes, "strict", &["ca:acme"])]),
    );
    reloaded(&pullgate, 1).await;
    assert_eq!(
        image_status(&client, &reference).await,
        None,
        "hidden at strict"
    );
    let status = pull(&client, &reference)
        .await
        .expect_err("strict refuses it");
    assert!(status.message().contains("authenticity"), "{status:?}");
    refused_to_create(
        &client,
        &pod,
        &id,
        "prod",
        "only under another trust policy",
    )
    .await;
    support::pod::remove_container(&client, &running).await;
    remove_pod(&client, &pod).await;
    world.forget(&reference).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_image_imported_ahead_is_verified_on_first_use_and_runs() {
    let (world, _serial) =
        world_or_skip!("a_signed_image_imported_ahead_is_verified_on_first_use_and_runs");
    let (repo, reference, target) = world.image("ahead").await;
    world
        .trusted
        .sign_and_push(&world.harness, &repo, &target, Format::Jws);
    world.ctr_import(&reference);
    let policy = tempfile::tempdir().expect("tempdir");
    world.write_policy(
        policy.path(),
        serde_json::json!([statement(
            "prod",
            &[world.scope(&repo)],
            "strict",
            &["ca:acme"]
        )]),
    );
    let pullgate = world.pullgate(policy.path(), "");
    let client = pullgate.client();
    // As the kubelet does: ImageStatus says absent, so PullImage, then run it.
    assert_eq!(image_status(&client, &reference).await, None);
    let id = pull(&client, &reference)
        .await
        .expect("verified on first use");
    let status = image_status(&client, &reference)
        .await
        .expect("shown once verified");
    let pinned = format!("{}@{}", world.scope(&repo), target.digest);
    assert!(status.repo_digests.contains(&pinned), "{status:?}");
    let pod = Pod::run(&client, &format!("ahead-{}", std::process::id())).await;
    let container = pod.create_container(&client, container(&id)).await;
    start_container(&client, &container).await;
    assert_eq!(
        container_state(&client, &container).await,
        v1::ContainerState::ContainerRunning as i32
    );
    remove_pod(&client, &pod).await;
    world.forget(&reference).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verdicts_survive_a_restart_without_registry_requests_and_a_policy_edit_ends_them() {
    let (world, _serial) = world_or_skip!(
        "verdicts_survive_a_restart_without_registry_requests_and_a_policy_edit_ends_them"
    );
    let (repo, reference, target) = world.image("restart").await;
    world
        .trusted
        .sign_and_push(&world.harness, &repo, &target, Format::Cose);
    let policy = tempfile::tempdir().expect("tempdir");
    let scopes = [world.scope(&repo)];
    world.write_policy(
        policy.path(),
        serde_json::json!([statement("prod", &scopes, "strict", &["ca:acme"])]),
    );
    let id = {
        let first = world.pullgate(policy.path(), "");
        pull(&first.client(), &reference).await.expect("verified")
    };
    // The verdict is on the records in containerd, under the policy's fingerprint.
    let pinned = format!("{}@{}", world.scope(&repo), target.digest);
    let record = pullgate::upstream::ImageStore::new(&world.harness.containerd_socket)
        .get(&pinned)
        .await
        .expect("images API")
        .expect("pinned record");
    let verdict = record
        .labels
        .iter()
        .find(|(key, _)| key.starts_with(pullgate::verdict::LABEL_PREFIX))
        .map(|(_, value)| value.clone())
        .expect("verdict label");
    assert!(
        verdict.starts_with(&format!("v1;verified;{};", target.digest)),
        "{verdict}"
    );
    assert!(verdict.ends_with(";prod"), "{verdict}");

    // A new process: ImageStatus and CreateContainer answer from the label.
    let before = world.registry_log_lines().len();
    let second = world.pullgate(policy.path(), "");
    let client = second.client();
    assert!(image_status(&client, &reference).await.is_some());
    let pod = Pod::run(&client, &format!("restart-{}", std::process::id())).await;
    let created = pod.create_container(&client, container(&id)).await;
    let asked: Vec<String> = world.registry_log_lines()[before..]
        .iter()
        .filter(|line| line.contains(&format!("/v2/{repo}/")))
        .cloned()
        .collect();
    assert!(
        asked.is_empty(),
        "registry requests after the restart: {asked:?}"
    );

    // Any edit of the policy makes the recorded verdict stale at once.
    world.write_policy(
        policy.path(),
        serde_json::json!([statement(
            "prod",
            &scopes,
            "strict",
            &["ca:acme", "ca:team"]
        )]),
    );
    reloaded(&second, 1).await;
    assert_eq!(image_status(&client, &reference).await, None);
    refused_to_create(
        &client,
        &pod,
        &id,
        "prod",
        "has a verdict only under another trust policy",
    )
    .await;
    support::pod::remove_container(&client, &created).await;
    remove_pod(&client, &pod).await;
    world.forget(&reference).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_namespaces_with_different_policies_get_different_verdicts() {
    let (world, _serial) =
        world_or_skip!("two_namespaces_with_different_policies_get_different_verdicts");
    // Signed by team A's CA only: the node's default policy trusts the platform
    // CA (`ca:acme`); team A's namespaces also trust `ca:team`.
    let (repo, reference, target) = world.image("team-a").await;
    world
        .team
        .sign_and_push(&world.harness, &repo, &target, Format::Cose);
    let scopes = [world.scope(&repo)];
    let node = tempfile::tempdir().expect("tempdir");
    world.write_policy(
        node.path(),
        serde_json::json!([statement("platform", &scopes, "strict", &["ca:acme"])]),
    );
    let team_dir = tempfile::tempdir().expect("tempdir");
    let team: PathBuf = team_dir.path().to_owned();
    world.write_policy(
        &team,
        serde_json::json!([statement(
            "team-a",
            &scopes,
            "strict",
            &["ca:acme", "ca:team"]
        )]),
    );
    let pullgate = world.pullgate(
        node.path(),
        &format!("[[policy.namespace]]\nnamespaces = [\"team-a-*\"]\ndir = {team:?}\n"),
    );
    let client = pullgate.client();

    let status = pull_in(&client, &reference, "kube-system")
        .await
        .expect_err("the platform policy does not trust team A's CA");
    assert!(
        status.message().contains("(trust policy \"platform\")"),
        "{status:?}"
    );
    let id = pull_in(&client, &reference, "team-a-web")
        .await
        .expect("team A's policy trusts it");

    let team_pod = Pod::run_in(
        &client,
        &format!("team-{}", std::process::id()),
        "team-a-web",
    )
    .await;
    team_pod.create_container(&client, container(&id)).await;
    let system_pod = Pod::run_in(
        &client,
        &format!("system-{}", std::process::id()),
        "kube-system",
    )
    .await;
    refused_to_create(
        &client,
        &system_pod,
        &id,
        "platform",
        "only under another trust policy",
    )
    .await;
    remove_pod(&client, &team_pod).await;
    remove_pod(&client, &system_pod).await;
    world.forget(&reference).await;
}
