//! The gate end to end: PullImage through pullgate's socket against the real
//! containerd and docker-registry of `integration/harness`, with signatures made
//! here (openssl PKI, `openssl ts`) and pushed as notation does on a registry
//! without the referrers API. Each test asserts the outcome, the reason for a
//! denial, and whether containerd has the image afterwards.

use pullgate_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pullgate::cri::v1;
use pullgate::oci::Descriptor;
use support::envelope_builder::{EnvelopeSpec, Format, Target};
use support::pki::{CertSpec, Chain, Issued, KeySpec, Pki, Tsa};
use support::pod::{
    container_state, image_status, pull, pull_with_auth, sleep_container, start_container, Pod,
};
use support::signed_layout::{Layout, SignatureForm};
use support::signing::{resolve, skopeo_copy};
use support::{CriClient, Harness, Pullgate};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn now_secs() -> i64 {
    pullgate_testkit::time::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A repository name unique to this run, under `gate/`.
fn unique(name: &str) -> String {
    format!("gate/{}", support::signing::unique(name))
}

/// The [`World`] of the test named `$test` and the lock that serialises the tests
/// here; without an integration harness the test returns (skipped) here.
macro_rules! world_or_skip {
    ($test:literal) => {
        match World::serial($test).await {
            Some(world_and_lock) => world_and_lock,
            None => return,
        }
    };
}

/// The test's world: the harness, a PKI, pullgate with a policy written here.
struct World {
    harness: Harness,
    registry: String,
    pki: Pki,
    chain: Chain,
}

impl World {
    /// The world of `test`, and the lock that runs the tests here one at a time.
    async fn serial(test: &str) -> Option<(World, tokio::sync::MutexGuard<'static, ()>)> {
        let world = World::new(test)?;
        Some((world, SERIAL.lock().await))
    }

    fn new(test: &str) -> Option<World> {
        let harness = Harness::from_env(test)?;
        let registry = harness.registry.clone();
        let pki = Pki::new();
        let chain = pki.chain(KeySpec::Rsa3072);
        Some(World {
            harness,
            registry,
            pki,
            chain,
        })
    }

    /// containerd's record of the tag `reference` (its images API), which must exist.
    async fn tag_record(&self, reference: &str) -> pullgate::upstream::ImageRecord {
        pullgate::upstream::ImageStore::new(&self.harness.containerd_socket)
            .get(reference)
            .await
            .expect("images API")
            .expect("tag record")
    }

    /// `image`, signed by this world's leaf in `format`.
    async fn signed_image(&self, name: &str, format: Format) -> (String, String, Descriptor) {
        let (repo, reference, target) = self.image(name).await;
        self.sign(&repo, &target, format);
        (repo, reference, target)
    }

    /// pullgate with one `strict` statement `name` (trusting `ca:acme`) covering
    /// `repos` of this world's registry.
    fn strict_pullgate(&self, name: &str, repos: &[&str]) -> (Pullgate, PathBuf) {
        let scopes: Vec<String> = repos
            .iter()
            .map(|repo| scope(&self.registry, repo))
            .collect();
        self.pullgate(serde_json::json!([strict(name, &scopes)]), None)
    }

    /// busybox copied to a fresh repository, tagged `v1`; returns (repo, ref, target).
    async fn image(&self, name: &str) -> (String, String, Descriptor) {
        let repo = unique(name);
        let reference = format!("{}/{repo}:v1", self.registry);
        skopeo_copy(&self.harness.busybox, &reference);
        let target = resolve(&self.registry, &reference).await;
        (repo, reference, target)
    }

    fn chain_der(&self, leaf: &Issued) -> Vec<Vec<u8>> {
        vec![
            leaf.der.clone(),
            self.chain.intermediate.der.clone(),
            self.chain.root.der.clone(),
        ]
    }

    /// Signs `signed` (the envelope's target) with this world's leaf and pushes the
    /// signature as a referrer of `subject` in `repo`.
    fn sign_push(&self, repo: &str, subject: &Descriptor, signed: &Descriptor, format: Format) {
        let leaf = &self.chain.leaf;
        let registry = (self.registry.as_str(), None);
        self.sign_push_with(
            registry,
            repo,
            subject,
            signed,
            format,
            leaf,
            None,
            |spec| spec,
        );
    }

    /// `sign_push` with the envelope spec changed by `edit` before signing, to
    /// `registry` (host, `USER:PASS` for a registry with basic auth).
    #[allow(clippy::too_many_arguments)]
    fn sign_push_with(
        &self,
        registry: (&str, Option<&str>),
        repo: &str,
        subject: &Descriptor,
        signed: &Descriptor,
        format: Format,
        leaf: &Issued,
        tsa: Option<&Tsa>,
        edit: impl FnOnce(EnvelopeSpec) -> EnvelopeSpec,
    ) {
        let spec = EnvelopeSpec {
            alg: leaf.key.algorithm().to_string(),
            signing_time: Some(now_secs()),
            target: Target {
                media_type: signed.media_type.clone(),
                digest: signed.digest.to_string(),
                size: signed.size,
                annotations: Vec::new(),
                artifact_type: None,
            },
            certificate_chain: self.chain_der(leaf),
            ..EnvelopeSpec::default()
        };
        let spec = edit(spec);
        let signature = self.pki.sign(
            &leaf.key_path,
            leaf.key.algorithm(),
            &spec.to_be_signed(format),
        );
        let spec = EnvelopeSpec {
            timestamp_token: tsa.map(|tsa| self.pki.timestamp_token(tsa, &signature, "sha256")),
            ..spec
        };
        let envelope = spec.build(format, &|_| signature.clone());
        let subject_blob = support::signed_layout::Blob {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            bytes: Vec::new(),
        };
        let mut layout = Layout::new();
        let media_type = match format {
            Format::Cose => "application/cose",
            Format::Jws => "application/jose+json",
        };
        let subject_descriptor = SubjectBlob(subject_blob, subject.size);
        let signature_manifest = layout.signature(
            &subject_descriptor.blob(),
            media_type,
            envelope,
            SignatureForm::ArtifactType,
        );
        layout.referrers_index(&subject_descriptor.blob(), &[&signature_manifest]);
        let dir = tempfile::tempdir().expect("tempdir");
        layout.write(dir.path());
        run_ok(
            "push-layout",
            Command::new(&self.harness.script)
                .arg("push-layout")
                .arg(dir.path())
                .arg(registry.0)
                .arg(repo)
                .args(registry.1)
                .env("PULLGATE_IT_DIR", &self.harness.dir),
        );
    }

    fn sign(&self, repo: &str, target: &Descriptor, format: Format) {
        self.sign_push(repo, target, target, format);
    }

    /// pullgate with `statements` (JSON array) and stores `ca:acme` (this
    /// world's root), `ca:other` (an unrelated root), `tsa:stamps` (if given).
    fn pullgate(&self, statements: serde_json::Value, tsa: Option<&Tsa>) -> (Pullgate, PathBuf) {
        self.pullgate_with(statements, tsa, &[], "")
    }

    /// `pullgate` also trusting `insecure` hosts, with `registry_extra` lines
    /// added to its `[registry]` section.
    fn pullgate_with(
        &self,
        statements: serde_json::Value,
        tsa: Option<&Tsa>,
        insecure: &[&str],
        registry_extra: &str,
    ) -> (Pullgate, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let policy = dir.path().join("notation");
        write_policy(&policy, &statements);
        let store = |kind: &str, name: &str, pem: &str| {
            let path = policy.join("truststore/x509").join(kind).join(name);
            std::fs::create_dir_all(&path).expect("store");
            std::fs::write(path.join("root.pem"), pem).expect("cert");
        };
        store("ca", "acme", &self.chain.root.pem);
        let other = Pki::new().chain(KeySpec::P256);
        store("ca", "other", &other.root.pem);
        if let Some(tsa) = tsa {
            store("tsa", "stamps", &tsa.root.pem);
        }
        let config = format!(
            "[log]\nlevel = \"pullgate=debug,info\"\n[policy]\ndir = {policy:?}\nreload_interval = \"200ms\"\n[registry]\ninsecure = [{:?}, \"127.0.0.1:1\"{}]\ntimeout = \"10s\"\n{registry_extra}",
            self.registry,
            insecure
                .iter()
                .map(|host| format!(", {host:?}"))
                .collect::<String>()
        );
        let pullgate = Pullgate::start_full(&self.harness.containerd_socket, dir, &config);
        (pullgate, policy)
    }
}

/// A subject descriptor as a layout blob (only its descriptor is used).
struct SubjectBlob(support::signed_layout::Blob, u64);

impl SubjectBlob {
    fn blob(&self) -> support::signed_layout::Blob {
        // `Blob::size()` is the byte length; give it the real size's worth.
        support::signed_layout::Blob {
            bytes: vec![0; self.1 as usize],
            ..self.0.clone()
        }
    }
}

/// Runs `command`, which must succeed; panics with `what` and its stderr.
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

fn write_policy(dir: &Path, statements: &serde_json::Value) {
    std::fs::create_dir_all(dir).expect("policy dir");
    let document = serde_json::json!({"version": "1.0", "trustPolicies": statements});
    std::fs::write(dir.join("trustpolicy.oci.json"), document.to_string()).expect("policy");
}

fn statement(
    name: &str,
    scopes: &[String],
    level: &str,
    stores: &[&str],
    identities: &[&str],
) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "registryScopes": scopes,
        "signatureVerification": {"level": level},
        "trustStores": stores,
        "trustedIdentities": identities,
    })
}

/// A `strict` statement trusting `ca:acme` for any identity.
fn strict(name: &str, scopes: &[String]) -> serde_json::Value {
    statement(name, scopes, "strict", &["ca:acme"], &["*"])
}

fn scope(registry: &str, repo: &str) -> String {
    format!("{registry}/{repo}")
}

/// ImageStatus for a tag recorded through containerd's events: poll briefly.
async fn present_soon(client: &CriClient, image: &str) -> Option<v1::Image> {
    for _ in 0..50 {
        if let Some(image) = image_status(client, image).await {
            return Some(image);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// Asserts the tag record's `labels`: each (key, value) of `expected` is there.
fn assert_labels(record: &pullgate::upstream::ImageRecord, expected: &[(&str, &str)]) {
    for (key, value) in expected {
        assert_eq!(
            record.labels.get(*key).map(String::as_str),
            Some(*value),
            "{key} in {record:?}"
        );
    }
}

/// Audit lines of decisions that ran a verification (cache misses).
fn audit_misses(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("pullgate::audit") && l.contains("cache=\"miss\""))
        .count()
}

/// A denial in the form the kubelet (≥ 1.28) turns into the container reason
/// `SignatureValidationFailed`: status `Unknown`, message starting with that name.
fn denied(status: &tonic::Status, image: &str, reason: &str, policy: &str) {
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    let message = status.message();
    assert!(
        message.starts_with(&format!("SignatureValidationFailed: pullgate: {image}: ")),
        "{message}"
    );
    assert!(message.contains(reason), "{message}");
    assert!(
        message.ends_with(&format!("(trust policy \"{policy}\")")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_images_are_pulled_pinned_and_tagged() {
    let (world, _serial) = world_or_skip!("signed_images_are_pulled_pinned_and_tagged");
    let (cose_repo, cose_ref, target) = world.signed_image("cose", Format::Cose).await;
    let (jws_repo, jws_ref, _) = world.image("jws").await;
    world.sign(&jws_repo, &target, Format::Jws);
    let scopes = vec![
        scope(&world.registry, &cose_repo),
        scope(&world.registry, &jws_repo),
    ];
    let (pullgate, _) = world.pullgate(serde_json::json!([strict("signed", &scopes)]), None);
    let client = pullgate.client();
    let direct = world.harness.direct_client();
    for (repo, reference) in [(&cose_repo, &cose_ref), (&jws_repo, &jws_ref)] {
        let image_ref = pull(&client, reference)
            .await
            .expect("signed image allowed");
        let status = present_soon(&client, reference)
            .await
            .expect("ImageStatus(tag) finds it");
        assert_eq!(status.id, image_ref);
        let pinned = format!("{}/{repo}@{}", world.registry, target.digest);
        assert!(status.repo_digests.contains(&pinned), "{status:?}");
        assert!(status.repo_tags.contains(reference), "{status:?}");
        // The tag record says it was verified, by which policy, for which digest.
        let record = world.tag_record(reference).await;
        assert_eq!(record.target.digest, target.digest);
        assert_labels(
            &record,
            &[
                ("io.pullgate.verified", "true"),
                ("io.pullgate.outcome", "verified"),
                ("io.pullgate.failed-checks", "none"),
                ("io.pullgate.policy", "signed"),
                ("io.pullgate.digest", &target.digest.to_string()),
            ],
        );
        // Directly, containerd agrees.
        assert_eq!(
            image_status(&direct, reference).await.map(|i| i.id),
            Some(image_ref)
        );
    }
    let log = pullgate.log_text();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("pullgate::audit") && l.contains("outcome=\"allowed\""))
            .count(),
        2,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_untrusted_mismatched_and_unmatched_images_are_denied() {
    let (world, _serial) =
        world_or_skip!("unsigned_untrusted_mismatched_and_unmatched_images_are_denied");
    let (unsigned_repo, unsigned_ref, _) = world.image("unsigned").await;
    let (untrusted_repo, untrusted_ref, target) =
        world.signed_image("untrusted", Format::Jws).await;
    let (identity_repo, identity_ref, _) = world.image("identity").await;
    world.sign(&identity_repo, &target, Format::Cose);
    // A genuine signature, made for the pause image, attached to busybox.
    let (other_repo, other_ref, _) = world.image("other-digest").await;
    let pause_ref = format!("{}/{}:pause", world.registry, unique("pause-src"));
    skopeo_copy(&world.harness.pause, &pause_ref);
    let pause = resolve(&world.registry, &pause_ref).await;
    assert_ne!(pause.digest, target.digest);
    world.sign_push(&other_repo, &target, &pause, Format::Jws);
    let (unmatched_repo, unmatched_ref, _) = world.image("unmatched").await;

    let r = |repo: &str| vec![scope(&world.registry, repo)];
    let (pullgate, _) = world.pullgate(
        serde_json::json!([
            strict("unsigned", &r(&unsigned_repo)),
            statement(
                "untrusted",
                &r(&untrusted_repo),
                "strict",
                &["ca:other"],
                &["*"]
            ),
            statement(
                "identity",
                &r(&identity_repo),
                "strict",
                &["ca:acme"],
                &["x509.subject:C=US,ST=WA,O=Someone Else"]
            ),
            strict("mismatch", &r(&other_repo)),
        ]),
        None,
    );
    let client = pullgate.client();

    for (reference, reason, policy) in [
        (&unsigned_ref, "no signature is associated with", "unsigned"),
        (&untrusted_ref, "authenticity check failed", "untrusted"),
        (&identity_ref, "trusted identity check failed", "identity"),
        (&other_ref, "content descriptor mismatch", "mismatch"),
    ] {
        let status = pull(&client, reference).await.expect_err(policy);
        denied(&status, reference, reason, policy);
    }
    // runtime.v1alpha2 goes through the same gate.
    let status = client
        .image_v1alpha2
        .clone()
        .pull_image(pullgate::cri::v1alpha2::PullImageRequest {
            image: Some(pullgate::cri::v1alpha2::ImageSpec {
                image: unsigned_ref.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("unsigned via v1alpha2");
    denied(
        &status,
        &unsigned_ref,
        "no signature is associated with",
        "unsigned",
    );

    let status = pull(&client, &unmatched_ref).await.expect_err("unmatched");
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "SignatureValidationFailed: pullgate: {unmatched_ref}: no trust policy statement applies to {}",
            scope(&world.registry, &unmatched_repo)
        )),
        "{status:?}"
    );
    // None of them reached containerd.
    let direct = world.harness.direct_client();
    for reference in [
        &unsigned_ref,
        &untrusted_ref,
        &identity_ref,
        &other_ref,
        &unmatched_ref,
    ] {
        assert!(
            image_status(&direct, reference).await.is_none(),
            "{reference} was pulled"
        );
    }
}

// `expired_leaf_passes_only_with_a_timestamp` is a gate-level test with a clock
// set past the leaf's expiry (`tests/gate_clock.rs`): it waited here 8 s for a
// certificate to expire.

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_moved_to_an_unsigned_image_is_denied() {
    let (world, _serial) = world_or_skip!("a_tag_moved_to_an_unsigned_image_is_denied");
    let (repo, reference, _) = world.signed_image("moving", Format::Jws).await;
    let (pullgate, _) = world.strict_pullgate("moving", &[&repo]);
    let client = pullgate.client();
    let first = pull(&client, &reference).await.expect("signed");
    // Re-pulling the tag finds the verified digest.
    let status = present_soon(&client, &reference)
        .await
        .expect("tag present");
    assert_eq!(status.id, first);
    // The tag now names the (unsigned) pause image.
    skopeo_copy(&world.harness.pause, &reference);
    let status = pull(&client, &reference).await.expect_err("moved tag");
    denied(
        &status,
        &reference,
        "no signature is associated with",
        "moving",
    );
    // containerd still maps the tag to what was verified.
    let status = image_status(&client, &reference)
        .await
        .expect("still the verified image");
    assert_eq!(status.id, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_allows_skip_never_asks_and_unreachable_registry_is_unavailable() {
    let (world, _serial) =
        world_or_skip!("audit_allows_skip_never_asks_and_unreachable_registry_is_unavailable");
    // Signed by this world's CA, which the audit statement does not trust: at
    // `audit` authenticity is only logged, so notation passes it.
    let (audit_repo, audit_ref, _) = world.signed_image("audit", Format::Cose).await;
    // Unsigned under the same statement: no signature fails at every level.
    let (unsigned_repo, unsigned_ref, _) = world.image("audit-unsigned").await;
    let (skip_repo, skip_ref, _) = world.image("skip").await;
    let unreachable = format!("127.0.0.1:1/{}:v1", unique("down"));
    let mut skip = statement(
        "skip",
        &[scope(&world.registry, &skip_repo)],
        "skip",
        &[],
        &[],
    );
    skip.as_object_mut().expect("object").remove("trustStores");
    skip.as_object_mut()
        .expect("object")
        .remove("trustedIdentities");
    let down_scope = unreachable.rsplit_once(':').expect("tag").0.to_owned();
    let (pullgate, _) = world.pullgate(
        serde_json::json!([
            statement(
                "audit",
                &[
                    scope(&world.registry, &audit_repo),
                    scope(&world.registry, &unsigned_repo)
                ],
                "audit",
                &["ca:other"],
                &["*"]
            ),
            skip,
            strict("down", &[down_scope]),
        ]),
        None,
    );
    let client = pullgate.client();
    let log_before =
        std::fs::read_to_string(std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("log"))
            .unwrap_or_default()
            .lines()
            .count();

    pull(&client, &audit_ref)
        .await
        .expect("audit lets an untrusted signature through");
    let log = pullgate.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("pullgate::audit") && l.contains(&audit_ref))
        .expect("audit line");
    assert!(line.contains("outcome=\"allowed\""), "{line}");
    assert!(line.contains("authenticity"), "{line}");

    // As `pullgate verify` and notation: no signature is a failure at `audit` too.
    let status = pull(&client, &unsigned_ref)
        .await
        .expect_err("audit does not let an unsigned image through");
    denied(
        &status,
        &unsigned_ref,
        "no signature is associated with",
        "audit",
    );
    assert!(image_status(&world.harness.direct_client(), &unsigned_ref)
        .await
        .is_none());

    pull(&client, &skip_ref).await.expect("skip forwards");
    let registry_log =
        std::fs::read_to_string(std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("log"))
            .unwrap_or_default();
    let signature_lookups = registry_log
        .lines()
        .skip(log_before)
        .filter(|l| {
            l.contains(&format!("/v2/{skip_repo}/"))
                && (l.contains("/referrers/") || l.contains("/manifests/sha256-"))
        })
        .count();
    assert_eq!(signature_lookups, 0, "skip looked for signatures");

    let status = pull(&client, &unreachable)
        .await
        .expect_err("registry down");
    // RegistryUnavailable: the kubelet's (≥ 1.28) reason for a registry it cannot reach.
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    assert!(
        status
            .message()
            .starts_with(&format!("RegistryUnavailable: pullgate: {unreachable}: ")),
        "{status:?}"
    );
    assert!(image_status(&world.harness.direct_client(), &unreachable)
        .await
        .is_none());
}

/// Issue 9 item 9: a pod without credentials got a private image through the node
/// credentials file plus the "already present" shortcut, even with
/// `imagePullPolicy: Always`, where containerd would have asked the registry with
/// the pod's own (no) credentials and been refused.
#[tokio::test(flavor = "multi_thread")]
async fn pod_without_credentials_does_not_get_a_private_image_already_present() {
    let (world, _serial) =
        world_or_skip!("pod_without_credentials_does_not_get_a_private_image_already_present");
    let auth_registry = std::env::var("PULLGATE_IT_AUTH_REGISTRY").expect("auth registry");
    let user = std::env::var("PULLGATE_IT_AUTH_USER").expect("user");
    let password = std::env::var("PULLGATE_IT_AUTH_PASSWORD").expect("password");
    let repo = unique("private");
    let reference = format!("{auth_registry}/{repo}:v1");
    run_ok(
        "skopeo copy",
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("--dest-creds={user}:{password}"))
            .arg(format!("docker://{}", world.harness.busybox))
            .arg(format!("docker://{reference}")),
    );
    let target = pullgate::registry::RegistryClient::new(pullgate::registry::RegistryConfig {
        hosts_dir: None,
        insecure_registries: vec![auth_registry.clone()],
        ..Default::default()
    })
    .expect("registry client")
    .resolve(
        &reference.parse().expect("reference"),
        &pullgate::registry::Credentials::Basic {
            username: user.clone(),
            password: password.clone(),
        },
        pullgate_testkit::time::instant() + Duration::from_secs(10),
    )
    .await
    .expect("resolve with credentials");
    world.sign_push_with(
        (&auth_registry, Some(&format!("{user}:{password}"))),
        &repo,
        &target,
        &target,
        Format::Cose,
        &world.chain.leaf,
        None,
        |spec| spec,
    );
    // The node's credentials file holds the private registry's credentials.
    let credentials = tempfile::tempdir().expect("tempdir");
    let file = credentials.path().join("config.json");
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{user}:{password}"),
    );
    std::fs::write(
        &file,
        format!(r#"{{"auths":{{"{auth_registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("credentials file");
    let (pullgate, _) = world.pullgate_with(
        serde_json::json!([strict("private", &[scope(&auth_registry, &repo)])]),
        None,
        &[&auth_registry],
        &format!("credentials_file = {file:?}\n"),
    );
    let client = pullgate.client();
    let pull_as = |auth| pull_with_auth(&client, &reference, auth);
    let pod_credentials = v1::AuthConfig {
        username: user.clone(),
        password: password.clone(),
        ..Default::default()
    };
    // The pod with credentials pulls it: now it is on the node.
    let image_ref = pull_as(Some(pod_credentials.clone()))
        .await
        .expect("the pod's own credentials pull it");
    // A pod without credentials: containerd would ask the registry and be refused.
    let status = pull_as(None)
        .await
        .expect_err("a pod without credentials must not get the private image");
    assert_refused_for_authorization(&status);
    // With its own credentials the shortcut still answers.
    assert_eq!(
        pull_as(Some(pod_credentials.clone()))
            .await
            .expect("still allowed"),
        image_ref
    );
    // Issue 9 item 8: credentials the kubelet names another server for are not this
    // registry's (containerd's ParseAuth): refused as without credentials; named
    // for this registry, they are used.
    let status = pull_as(Some(v1::AuthConfig {
        server_address: "https://registry.other.example".to_owned(),
        ..pod_credentials.clone()
    }))
    .await
    .expect_err("credentials for another server must not be sent here");
    assert_refused_for_authorization(&status);
    assert_eq!(
        pull_as(Some(v1::AuthConfig {
            server_address: format!("http://{auth_registry}"),
            ..pod_credentials
        }))
        .await
        .expect("credentials named for this registry are used"),
        image_ref
    );
}

/// A pull the registry refused for want of credentials, as pullgate or containerd
/// words it: pullgate and containerd 1.6 name the 401, containerd 1.7 says
/// "authorization failed: no basic auth credentials".
fn assert_refused_for_authorization(status: &tonic::Status) {
    let message = status.message().to_lowercase();
    assert!(
        ["401", "unauthorized", "authorization failed"]
            .iter()
            .any(|words| message.contains(words)),
        "{status:?}"
    );
}

/// Issue 9 item 2: an image let through at `audit` or under a `log` override had a
/// signature that failed a check, yet its tag record said `io.pullgate.verified=true`.
#[tokio::test(flavor = "multi_thread")]
async fn image_let_through_at_audit_or_log_override_is_not_labelled_verified() {
    let (world, _serial) =
        world_or_skip!("image_let_through_at_audit_or_log_override_is_not_labelled_verified");
    // Both signed by this world's CA; both statements trust only `ca:other`, so
    // authenticity fails and is only logged.
    let (audit_repo, audit_ref, target) = world.signed_image("label-audit", Format::Cose).await;
    let (log_repo, log_ref, _) = world.image("label-log").await;
    world.sign(&log_repo, &target, Format::Jws);
    let mut log_override = statement(
        "log-override",
        &[scope(&world.registry, &log_repo)],
        "strict",
        &["ca:other"],
        &["*"],
    );
    log_override["signatureVerification"]["override"] = serde_json::json!({"authenticity": "log"});
    let (pullgate, _) = world.pullgate(
        serde_json::json!([
            statement(
                "audit",
                &[scope(&world.registry, &audit_repo)],
                "audit",
                &["ca:other"],
                &["*"]
            ),
            log_override,
        ]),
        None,
    );
    let client = pullgate.client();
    for (reference, policy) in [(&audit_ref, "audit"), (&log_ref, "log-override")] {
        pull(&client, reference)
            .await
            .expect("authenticity is only logged");
        let record = world.tag_record(reference).await;
        assert_labels(
            &record,
            &[
                ("io.pullgate.verified", "false"),
                ("io.pullgate.outcome", "allowed-with-failures"),
                ("io.pullgate.failed-checks", "authenticity"),
                ("io.pullgate.policy", policy),
            ],
        );
        assert_eq!(record.target.digest, target.digest);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_reload_takes_effect_and_a_broken_one_is_refused() {
    let (world, _serial) = world_or_skip!("policy_reload_takes_effect_and_a_broken_one_is_refused");
    let (repo, reference, _) = world.signed_image("reload", Format::Cose).await;
    let scopes = vec![scope(&world.registry, &repo)];
    let (pullgate, policy) = world.pullgate(serde_json::json!([strict("reload", &scopes)]), None);
    let client = pullgate.client();
    pull(&client, &reference).await.expect("trusted");

    // A broken policy is refused; the last good one stays (same digest still allowed).
    std::fs::write(policy.join("trustpolicy.oci.json"), b"{ not json").expect("write");
    pullgate.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    pull(&client, &reference)
        .await
        .expect("old policy still in force");
    assert!(
        pullgate.log_text().contains("trust policy reload rejected"),
        "{}",
        pullgate.log_text()
    );

    // Distrust the CA, without a signal: the file change is noticed (the test's
    // reload_interval is 200 ms) and the next pull of the same digest is denied.
    write_policy(
        &policy,
        &serde_json::json!([statement(
            "reload",
            &scopes,
            "strict",
            &["ca:other"],
            &["*"]
        )]),
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let status = pull(&client, &reference).await.expect_err("CA distrusted");
    denied(&status, &reference, "authenticity check failed", "reload");
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_pulls_share_one_verification() {
    let (world, _serial) = world_or_skip!("fifty_concurrent_pulls_share_one_verification");
    let (repo, reference, target) = world.signed_image("concurrent", Format::Jws).await;
    let (pullgate, _) = world.strict_pullgate("concurrent", &[&repo]);
    let registry_log = PathBuf::from(std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("log"));
    let before = std::fs::read_to_string(&registry_log)
        .unwrap_or_default()
        .lines()
        .count();
    let client = pullgate.client();
    let mut pulls = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let reference = reference.clone();
        pulls.push(tokio::spawn(async move { pull(&client, &reference).await }));
    }
    let mut refs = Vec::new();
    for p in pulls {
        refs.push(p.await.expect("join").expect("every pull succeeds"));
    }
    assert!(refs.windows(2).all(|w| w[0] == w[1]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One verification: the signature envelope was fetched once.
    let log = std::fs::read_to_string(&registry_log).unwrap_or_default();
    // Only pullgate's own requests (containerd's user agent differs), from the
    // access-log lines.
    let by_pullgate: Vec<&str> = log
        .lines()
        .skip(before)
        .filter(|l| l.starts_with("127.0.0.1 - ") && l.contains("\"pullgate/"))
        .collect();
    let envelope_fetches = by_pullgate
        .iter()
        .filter(|l| l.contains(&format!("\"GET /v2/{repo}/blobs/")))
        .count();
    let tag_index_fetches = by_pullgate
        .iter()
        .filter(|l| {
            l.contains(&format!(
                "\"GET /v2/{repo}/manifests/{}",
                target.digest.referrers_tag()
            ))
        })
        .count();
    assert_eq!(
        tag_index_fetches, 1,
        "signature listings for 50 pulls: {by_pullgate:#?}"
    );
    assert_eq!(
        envelope_fetches, 1,
        "envelope fetches for 50 pulls: {by_pullgate:#?}"
    );
    let audit_misses = audit_misses(&pullgate.log_text());
    assert_eq!(audit_misses, 1, "{}", pullgate.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_flow_runs_the_verified_image() {
    let (world, _serial) = world_or_skip!("kubelet_flow_runs_the_verified_image");
    let (repo, reference, _) = world.signed_image("kubelet", Format::Cose).await;
    let (pullgate, _) = world.strict_pullgate("kubelet", &[&repo]);
    let client = pullgate.client();
    let image_ref = pull(&client, &reference).await.expect("pull");
    let name = format!("gate-{}", std::process::id());
    let pod = Pod::run(&client, &name).await;
    let container = pod
        .create_container(&client, sleep_container(&image_ref))
        .await;
    start_container(&client, &container).await;
    assert_eq!(
        container_state(&client, &container).await,
        v1::ContainerState::ContainerRunning as i32
    );
    pod.stop(&client).await;
    pod.remove(&client).await;
}

/// Issue 11: a signer revoked in its CA's CRL is refused with the reason the
/// kubelet shows; a restarted pullgate answers from its disk cache of CRLs
/// without fetching (the CRL server is gone by then), and a signer still good is
/// let in with the revocation result in the audit line.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_signer_is_refused_and_a_restart_reuses_the_crl_cache() {
    use support::responders::{free_port, CrlServer};
    use support::revocation::{Ca, CrlSpec, Revocation};
    let (world, _serial) =
        world_or_skip!("a_revoked_signer_is_refused_and_a_restart_reuses_the_crl_cache");
    // root (this world's, trusted as ca:acme) → intermediate → two leaves, each
    // naming the CRL of its issuer on a CRL server on 127.0.0.1.
    let crl_port = free_port();
    let crl_url =
        |name: &str| format!("crlDistributionPoints = URI:http://127.0.0.1:{crl_port}/{name}");
    let mut root = Ca::new(&world.pki, world.chain.root.clone());
    let intermediate = root.issue(
        &world.pki,
        &CertSpec::ca("/C=US/O=Notary/CN=Gate Revocation CA")
            .slot(1)
            .extra(&crl_url("root.crl")),
    );
    let mut ca = Ca::new(&world.pki, intermediate.clone());
    let revoked = ca.issue(
        &world.pki,
        &CertSpec::leaf("/C=US/O=Notary/CN=Revoked Signer").extra(&crl_url("ca.crl")),
    );
    let good = ca.issue(
        &world.pki,
        &CertSpec::leaf("/C=US/O=Notary/CN=Good Signer").extra(&crl_url("ca.crl")),
    );
    ca.revoke(
        &revoked,
        pullgate_testkit::time::now() - Duration::from_secs(600),
        Revocation::Reason("keyCompromise"),
    );
    let served = world.pki.dir().join("served-crls");
    let server = CrlServer::start(crl_port, &served);
    std::fs::write(served.join("root.crl"), root.crl(&CrlSpec::default()).der).expect("CRL");
    std::fs::write(served.join("ca.crl"), ca.crl(&CrlSpec::default()).der).expect("CRL");

    let (revoked_repo, revoked_ref, revoked_target) = world.image("revoked-signer").await;
    let (good_repo, good_ref, good_target) = world.image("good-signer").await;
    for (repo, target, leaf) in [
        (&revoked_repo, &revoked_target, &revoked),
        (&good_repo, &good_target, &good),
    ] {
        let chain = vec![
            leaf.der.clone(),
            intermediate.der.clone(),
            world.chain.root.der.clone(),
        ];
        world.sign_push_with(
            (&world.registry, None),
            repo,
            target,
            target,
            Format::Cose,
            leaf,
            None,
            |spec| EnvelopeSpec {
                certificate_chain: chain,
                ..spec
            },
        );
    }
    let scopes = vec![
        scope(&world.registry, &revoked_repo),
        scope(&world.registry, &good_repo),
    ];
    let statements = serde_json::json!([strict("revocation", &scopes)]);
    let cache = tempfile::tempdir().expect("cache dir");
    let revocation = format!(
        "\n[revocation]\ncache_dir = {:?}\n",
        cache.path().display().to_string()
    );
    let reason = format!(
        "revocation check failed: certificate CN=Revoked Signer,O=Notary,C=US: CRL http://127.0.0.1:{crl_port}/ca.crl: revoked at "
    );

    let (pullgate, _) = world.pullgate_with(statements.clone(), None, &[], &revocation);
    let client = pullgate.client();
    let status = pull(&client, &revoked_ref)
        .await
        .expect_err("a revoked signer");
    denied(&status, &revoked_ref, &reason, "revocation");
    assert!(
        status.message().contains("(KeyCompromise)"),
        "{}",
        status.message()
    );
    pull(&client, &good_ref).await.expect("a good signer");
    let log = pullgate.log_text();
    let allowed = log
        .lines()
        .find(|l| l.contains("pullgate::audit") && l.contains("outcome=\"allowed\""))
        .unwrap_or_else(|| panic!("no allowed audit line in\n{log}"));
    assert!(
        allowed.contains(&format!("certificate CN=Good Signer,O=Notary,C=US: CRL http://127.0.0.1:{crl_port}/ca.crl: good")),
        "{allowed}"
    );
    drop(pullgate);

    // The CRL server goes away; a new pullgate (empty verdict cache, same disk
    // cache) still knows the signer is revoked, and the good one good.
    drop(server);
    let (pullgate, _) = world.pullgate_with(statements, None, &[], &revocation);
    let client = pullgate.client();
    let status = pull(&client, &revoked_ref)
        .await
        .expect_err("still revoked");
    denied(&status, &revoked_ref, &reason, "revocation");
    pull(&client, &good_ref)
        .await
        .expect("still good, from the disk cache");
}
