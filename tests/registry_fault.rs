//! The registry client against an in-process OCI distribution registry
//! (`pullgate_testkit::registry`): exact results, exact errors, request counts, and
//! that every failure comes back within the caller's deadline.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use pullgate::oci::{Descriptor, SignatureBlob};
use pullgate::reference::Reference;
use pullgate::registry::{
    Credentials, RegistryClient, RegistryConfig, RegistryError, SignatureLimits,
};
use pullgate_testkit::pki::{CertSpec, KeySpec, Pki};
use pullgate_testkit::registry::{Fault, TestRegistry};

/// Scheduling slack on top of a deadline (a bound check, not a timing).
const SLACK: Duration = Duration::from_millis(750);
/// notation's limits: 4 MiB manifests, 32 MiB envelopes.
const LIMITS: SignatureLimits = SignatureLimits {
    manifest_bytes: 4 * 1024 * 1024,
    envelope_bytes: 32 * 1024 * 1024,
};
const ENVELOPE: &[u8] = b"{\"payload\":\"not really a JWS\"}";

fn config(registry: &TestRegistry) -> RegistryConfig {
    RegistryConfig {
        hosts_dir: None,
        insecure_registries: vec![registry.host()],
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        ..RegistryConfig::default()
    }
}

fn client(registry: &TestRegistry) -> RegistryClient {
    RegistryClient::new(config(registry)).expect("client")
}

fn reference(registry: &TestRegistry, name: &str) -> Reference {
    format!("{}/{name}", registry.host())
        .parse()
        .expect("reference")
}

fn deadline(seconds: f64) -> Instant {
    pullgate_testkit::time::instant() + Duration::from_secs_f64(seconds)
}

fn assert_within(deadline: Instant) {
    let now = pullgate_testkit::time::instant();
    assert!(
        now < deadline + SLACK,
        "returned {:?} after the deadline",
        now - deadline
    );
}

/// An image `repo:v1` with one signature; returns (target, signature manifest).
fn signed_image(registry: &TestRegistry, repo: &str) -> (Descriptor, Descriptor) {
    let target = registry.push_image(repo, "v1");
    let signature = registry.push_signature(repo, &target, ENVELOPE);
    (target, signature)
}

async fn verify_flow(
    client: &RegistryClient,
    reference: &Reference,
    credentials: &Credentials,
    until: Instant,
) -> Result<(Descriptor, Vec<Descriptor>, Vec<u8>), RegistryError> {
    let target = client.resolve(reference, credentials, until).await?;
    let signatures = client
        .signature_manifests(reference, &target, credentials, until)
        .await?;
    let first = signatures.first().ok_or(RegistryError::NotFound {
        url: "no signature".into(),
    })?;
    let blob = client
        .signature(reference, first, LIMITS, credentials, until)
        .await?;
    Ok((target, signatures, blob.envelope))
}

/// `app:v1`'s signature `signature` fetched by a new client (manifest, then
/// envelope blob) with notation's limits.
async fn fetch_app_signature(
    registry: &TestRegistry,
    signature: &Descriptor,
    credentials: &Credentials,
    until: Instant,
) -> Result<SignatureBlob, RegistryError> {
    client(registry)
        .signature(
            &reference(registry, "app:v1"),
            signature,
            LIMITS,
            credentials,
            until,
        )
        .await
}

/// A registry with a signed `app:v1` whose blob requests get `fault` (the first
/// `times` of them); fetching the signature fails, within a deadline `seconds`
/// away. The registry (for its log) and the error.
async fn blob_fault(fault: Fault, times: usize, seconds: f64) -> (TestRegistry, RegistryError) {
    let registry = TestRegistry::start().await;
    let (_, signature) = signed_image(&registry, "app");
    registry.fault("/blobs/", fault, times);
    let until = deadline(seconds);
    let err = fetch_app_signature(&registry, &signature, &Credentials::None, until)
        .await
        .expect_err("the blob fault fails the fetch");
    assert_within(until);
    (registry, err)
}

/// `reference` resolved by `client` without credentials, within 10 s.
async fn resolve_anonymously(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<Descriptor, RegistryError> {
    client
        .resolve(reference, &Credentials::None, deadline(10.0))
        .await
}

/// `app:v1` resolved by a new client.
async fn resolve_app(
    registry: &TestRegistry,
    credentials: &Credentials,
    until: Instant,
) -> Result<Descriptor, RegistryError> {
    client(registry)
        .resolve(&reference(registry, "app:v1"), credentials, until)
        .await
}

/// The requests of a cold verification with the referrers API: resolve, list,
/// signature manifest, envelope blob.
const COLD_FLOW: [&str; 4] = ["HEAD manifest", "GET referrers", "GET manifest", "GET blob"];

/// Verifies `reference` with `client` (the flow must succeed) and checks it found
/// `app:v1`'s one signature: the target, that signature, its envelope; then that
/// the registry saw exactly [`COLD_FLOW`].
async fn assert_cold_flow(
    client: &RegistryClient,
    registry: &TestRegistry,
    reference: &Reference,
    (target, signature): (&Descriptor, &Descriptor),
) {
    let (resolved, signatures, envelope) =
        verify_flow(client, reference, &Credentials::None, deadline(10.0))
            .await
            .expect("verification flow");
    assert_eq!(&resolved, target);
    assert_eq!(signatures, std::slice::from_ref(signature));
    assert_eq!(envelope, ENVELOPE);
    assert_eq!(requests(registry), COLD_FLOW);
}

/// The requests one anonymous verification flow of `name` (it must succeed)
/// costs on `registry`; the registry's log is cleared for the next.
async fn flow_requests(
    client: &RegistryClient,
    registry: &TestRegistry,
    name: &str,
    until: Instant,
) -> Vec<String> {
    verify_flow(
        client,
        &reference(registry, name),
        &Credentials::None,
        until,
    )
    .await
    .unwrap_or_else(|e| panic!("verification flow of {name}: {e:?}"));
    let seen = requests(registry);
    registry.clear_log();
    seen
}

fn requests(registry: &TestRegistry) -> Vec<String> {
    registry
        .log()
        .iter()
        .map(|l| {
            let path = l.path.split('?').next().unwrap_or(&l.path);
            let kind = if path.contains("/referrers/") {
                "referrers"
            } else if path.contains("/manifests/") {
                "manifest"
            } else if path.contains("/blobs/") {
                "blob"
            } else if path.starts_with("/token") {
                "token"
            } else {
                "other"
            };
            format!("{} {kind}", l.method)
        })
        .collect()
}

#[tokio::test]
async fn cold_verification_is_four_requests_over_one_connection() {
    let registry = TestRegistry::start().await;
    let (target, signature) = signed_image(&registry, "app");
    let client = client(&registry);
    let reference = reference(&registry, "app:v1");
    assert_cold_flow(&client, &registry, &reference, (&target, &signature)).await;
    assert_eq!(registry.connections(), 1);
    assert_eq!(client.stats().total(), 4);
    assert_eq!(client.stats().by_status.get(&200), Some(&4));
}

#[tokio::test]
async fn bearer_auth_costs_one_challenge_and_one_token_then_only_a_token_per_repository() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(None);
    signed_image(&registry, "app");
    signed_image(&registry, "other");
    let client = client(&registry);
    let until = deadline(10.0);
    // The first repository: challenge, token, then the cold flow.
    assert_eq!(
        flow_requests(&client, &registry, "app:v1", until).await,
        [&["HEAD manifest", "GET token"][..], &COLD_FLOW].concat()
    );
    // The challenge is remembered per registry: a new repository scope needs only
    // its token.
    assert_eq!(
        flow_requests(&client, &registry, "other:v1", until).await,
        [&["GET token"][..], &COLD_FLOW].concat()
    );
    // Cached token: the same repository again is four requests.
    assert_eq!(
        flow_requests(&client, &registry, "other:v1", until)
            .await
            .len(),
        4
    );
    assert_eq!(registry.connections(), 1);
}

#[tokio::test]
async fn token_service_gets_basic_credentials_and_wrong_ones_are_unauthorized() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(Some(("alice", "secret")));
    signed_image(&registry, "app");
    let reference = reference(&registry, "app:v1");
    let until = deadline(10.0);
    let good = Credentials::Basic {
        username: "alice".into(),
        password: "secret".into(),
    };
    verify_flow(&client(&registry), &reference, &good, until)
        .await
        .expect("good credentials");
    let token_request = registry
        .log()
        .into_iter()
        .find(|l| l.path.starts_with("/token"))
        .expect("token request");
    assert!(token_request.path.contains("scope=repository%3Aapp%3Apull"));
    assert!(token_request.path.contains("service=test-registry"));
    // `auth` (base64 user:pass) works the same way.
    verify_flow(
        &client(&registry),
        &reference,
        &Credentials::Auth("YWxpY2U6c2VjcmV0".into()),
        until,
    )
    .await
    .expect("auth form");
    for wrong in [
        Credentials::None,
        Credentials::Basic {
            username: "alice".into(),
            password: "wrong".into(),
        },
    ] {
        let err = client(&registry)
            .resolve(&reference, &wrong, until)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, RegistryError::Unauthorized { registry: r, .. } if *r == registry.host()),
            "{err:?}"
        );
        assert!(!err.is_transient());
    }
}

#[tokio::test]
async fn node_credentials_file_is_used_when_the_call_has_none() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(Some(("node", "pw")));
    signed_image(&registry, "app");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"auths":{{"{}":{{"username":"node","password":"pw"}}}}}}"#,
            registry.host()
        ),
    )
    .expect("write");
    let client = RegistryClient::new(RegistryConfig {
        credentials_file: Some(path.clone()),
        ..config(&registry)
    })
    .expect("client");
    verify_flow(
        &client,
        &reference(&registry, "app:v1"),
        &Credentials::None,
        deadline(10.0),
    )
    .await
    .expect("node credentials");
    std::fs::write(&path, "{not json").expect("write");
    assert!(matches!(
        RegistryClient::new(RegistryConfig {
            credentials_file: Some(path.clone()),
            ..config(&registry)
        }),
        Err(RegistryError::Credentials { path: p, .. }) if p == path
    ));
}

#[tokio::test]
async fn referrers_pages_are_followed_and_other_artifact_types_dropped() {
    let registry = TestRegistry::start().await;
    let target = registry.push_image("app", "v1");
    let signatures: Vec<_> = (0..5)
        .map(|i| registry.push_signature("app", &target, format!("envelope {i}").as_bytes()))
        .collect();
    registry.set_page_size(2);
    let client = client(&registry);
    let reference = reference(&registry, "app:v1");
    let found = client
        .signature_manifests(&reference, &target, &Credentials::None, deadline(10.0))
        .await
        .expect("listing");
    assert_eq!(found, signatures);
    // 5 signatures + 1 SBOM in pages of 2.
    assert_eq!(
        requests(&registry),
        ["GET referrers", "GET referrers", "GET referrers"]
    );
    // A registry that filtered says so; its list is taken as is.
    registry.set_filter_referrers(true);
    let found = client
        .signature_manifests(&reference, &target, &Credentials::None, deadline(10.0))
        .await
        .expect("filtered listing");
    assert_eq!(found, signatures);
}

#[tokio::test]
async fn without_the_referrers_api_the_tag_schema_is_used_and_remembered() {
    let registry = TestRegistry::start().await;
    registry.set_referrers_api(false);
    let (target, signature) = signed_image(&registry, "app");
    let unsigned = registry.push_image("app", "unsigned");
    registry.push_referrers_tag("app", &target, std::slice::from_ref(&signature));
    let client = client(&registry);
    let reference = reference(&registry, "app:v1");
    let found = client
        .signature_manifests(&reference, &target, &Credentials::None, deadline(10.0))
        .await
        .expect("tag schema");
    assert_eq!(found, vec![signature]);
    assert_eq!(requests(&registry), ["GET referrers", "GET manifest"]);
    registry.clear_log();
    // Remembered: no second referrers attempt; a missing tag is no signatures.
    let found = client
        .signature_manifests(&reference, &unsigned, &Credentials::None, deadline(10.0))
        .await
        .expect("no tag");
    assert!(found.is_empty());
    assert_eq!(requests(&registry), ["GET manifest"]);
}

#[tokio::test]
async fn a_referrers_answer_that_is_not_an_index_falls_back_to_the_tag_schema() {
    let registry = TestRegistry::start().await;
    let (target, signature) = signed_image(&registry, "app");
    registry.push_referrers_tag("app", &target, std::slice::from_ref(&signature));
    registry.fault("/referrers/", Fault::ContentType("text/html".into()), 1);
    let found = client(&registry)
        .signature_manifests(
            &reference(&registry, "app:v1"),
            &target,
            &Credentials::None,
            deadline(10.0),
        )
        .await
        .expect("fallback");
    assert_eq!(found, vec![signature]);
    assert_eq!(requests(&registry), ["GET referrers", "GET manifest"]);
}

#[tokio::test]
async fn ten_thousand_referrers_are_listed_and_one_more_is_refused() {
    let registry = TestRegistry::start().await;
    let target = registry.push_image("app", "v1");
    let real = registry.push_signature("app", &target, ENVELOPE);
    // 1 real + 9,998 synthetic signatures + 1 SBOM = 10,000 entries.
    registry.set_synthetic_referrers(9_998);
    let client = client(&registry);
    let reference = reference(&registry, "app:v1");
    let until = deadline(20.0);
    let found = client
        .signature_manifests(&reference, &target, &Credentials::None, until)
        .await
        .expect("10,000 entries");
    assert_within(until);
    assert_eq!(found.len(), 9_999);
    assert_eq!(found[0], real);
    assert_eq!(requests(&registry).len(), 10);
    registry.set_synthetic_referrers(9_999);
    let until = deadline(20.0);
    let err = client
        .signature_manifests(&reference, &target, &Credentials::None, until)
        .await
        .expect_err("10,001 entries");
    assert_within(until);
    assert!(
        matches!(
            err,
            RegistryError::TooMany {
                what: "referrers",
                limit: 10_000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let registry = TestRegistry::start().await;
    let (target, _) = signed_image(&registry, "app");
    registry.fault("/manifests/v1", Fault::TooManyRequests("1".into()), 1);
    let start = pullgate_testkit::time::instant();
    let until = deadline(10.0);
    let resolved = resolve_app(&registry, &Credentials::None, until)
        .await
        .expect("retried");
    assert_eq!(resolved, target);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(requests(&registry), ["HEAD manifest", "HEAD manifest"]);
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_fails_at_once_as_transient() {
    let registry = retry_after_beyond_the_deadline("30".into(), 2.0).await;
    assert_eq!(requests(&registry).len(), 1);
}

/// A registry with a signed `app:v1` whose manifest requests get 429 with
/// `Retry-After: retry_after`, a wait beyond the deadline `seconds` away: resolving
/// gives up at once (before the deadline) with a transient 429. The registry, for
/// its log.
async fn retry_after_beyond_the_deadline(retry_after: String, seconds: f64) -> TestRegistry {
    let registry = TestRegistry::start().await;
    signed_image(&registry, "app");
    registry.fault("/manifests/v1", Fault::TooManyRequests(retry_after), 10);
    let until = deadline(seconds);
    let err = resolve_app(&registry, &Credentials::None, until)
        .await
        .expect_err("gave up");
    assert!(
        pullgate_testkit::time::instant() < until,
        "did not wait for Retry-After"
    );
    assert!(
        matches!(err, RegistryError::Http { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    registry
}

#[tokio::test]
async fn a_500_is_not_retried_and_503_only_max_attempts_times() {
    let registry = TestRegistry::start().await;
    signed_image(&registry, "app");
    registry.fault("/manifests/v1", Fault::Status(500), 100);
    let until = deadline(10.0);
    let err = resolve_app(&registry, &Credentials::None, until)
        .await
        .expect_err("500");
    assert_within(until);
    // HEAD got 500, so the GET fallback ran and got 500 too; neither retried.
    assert!(
        matches!(err, RegistryError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(requests(&registry), ["HEAD manifest", "GET manifest"]);

    let (registry, err) = blob_fault(Fault::Status(503), 100, 10.0).await;
    assert!(
        matches!(err, RegistryError::Http { status: 503, .. }),
        "{err:?}"
    );
    // 1 manifest + 4 attempts at the blob (backoff 200, 400, 800 ms).
    assert_eq!(
        requests(&registry),
        [
            "GET manifest",
            "GET blob",
            "GET blob",
            "GET blob",
            "GET blob"
        ]
    );
}

#[tokio::test]
async fn a_stalled_body_times_out_at_the_deadline() {
    let (registry, err) = blob_fault(Fault::Stall, 1, 1.0).await;
    // Within the deadline (blob_fault asserts it), and not undercut: the one thing
    // that ends a body read early is its deadline (the caller's, well before the
    // 10 s request timeout), and the error is that read's timeout on the stalled
    // blob, sent once (a timeout is not retried).
    assert!(
        matches!(&err, RegistryError::Timeout { what, .. }
            if what.starts_with("reading ") && what.contains("/blobs/sha256:")),
        "{err:?}"
    );
    assert_eq!(requests(&registry), ["GET manifest", "GET blob"]);
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_body_larger_than_its_descriptor_is_refused() {
    for chunked in [false, true] {
        let registry = TestRegistry::start().await;
        let (_, signature) = signed_image(&registry, "app");
        registry.fault(
            "/blobs/",
            Fault::ExtraBytes {
                bytes: 1_000_000,
                chunked,
            },
            1,
        );
        let until = deadline(10.0);
        let err = fetch_app_signature(&registry, &signature, &Credentials::None, until)
            .await
            .expect_err("oversize");
        assert_within(until);
        // Content-Length is checked before reading; a chunked body is cut off at
        // the declared size.
        assert!(
            matches!(err, RegistryError::TooLarge { what: "a signature envelope", limit, size, .. }
                if limit == ENVELOPE.len() as u64 && size > limit),
            "chunked={chunked}: {err:?}"
        );
    }
}

#[tokio::test]
async fn declared_sizes_over_the_budget_are_refused_before_any_request() {
    let registry = TestRegistry::start().await;
    let (_, signature) = signed_image(&registry, "app");
    // (limits, what is refused, its limit, the requests sent by then)
    let cases: [(SignatureLimits, &str, u64, &[&str]); 2] = [
        (
            SignatureLimits {
                manifest_bytes: 10,
                ..LIMITS
            },
            "a signature manifest",
            10,
            &[],
        ),
        (
            SignatureLimits {
                envelope_bytes: 5,
                ..LIMITS
            },
            "a signature envelope",
            5,
            &["GET manifest"],
        ),
    ];
    for (limits, budget, budget_limit, sent) in cases {
        let err = client(&registry)
            .signature(
                &reference(&registry, "app:v1"),
                &signature,
                limits,
                &Credentials::None,
                deadline(10.0),
            )
            .await
            .expect_err(budget);
        assert!(
            matches!(
                err,
                RegistryError::TooLarge { what, limit, .. }
                    if what == budget && limit == budget_limit
            ),
            "{err:?}"
        );
        assert_eq!(requests(&registry), sent, "{budget}");
    }
}

#[tokio::test]
async fn content_that_does_not_match_its_digest_is_refused() {
    let registry = TestRegistry::start().await;
    let (_, signature) = signed_image(&registry, "app");
    registry.fault("/blobs/", Fault::Corrupt, 1);
    let err = fetch_app_signature(&registry, &signature, &Credentials::None, deadline(10.0))
        .await
        .expect_err("corrupt blob");
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if expected.to_string().len() == 71),
        "{err:?}"
    );
    registry.fault(
        &format!("/manifests/{}", signature.digest),
        Fault::Corrupt,
        1,
    );
    let err = fetch_app_signature(&registry, &signature, &Credentials::None, deadline(10.0))
        .await
        .expect_err("corrupt manifest");
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == signature.digest),
        "{err:?}"
    );
}

#[tokio::test]
async fn resolve_falls_back_to_get_and_checks_the_body_against_the_header() {
    let registry = TestRegistry::start().await;
    let (target, _) = signed_image(&registry, "app");
    let reference = reference(&registry, "app:v1");
    registry.fault("/manifests/v1", Fault::Status(405), 1);
    let resolved = resolve_anonymously(&client(&registry), &reference)
        .await
        .expect("GET fallback");
    assert_eq!(resolved, target);
    assert_eq!(requests(&registry), ["HEAD manifest", "GET manifest"]);
    // A body that does not hash to the Docker-Content-Digest it came with.
    registry.fault("/manifests/v1", Fault::Status(405), 1);
    registry.fault("/manifests/v1", Fault::Corrupt, 1);
    let err = resolve_anonymously(&client(&registry), &reference)
        .await
        .expect_err("corrupt");
    assert!(
        matches!(&err, RegistryError::DigestMismatch { expected, .. } if *expected == target.digest),
        "{err:?}"
    );
    // A digest reference resolves to itself; an unknown one is NotFound.
    let pinned: Reference = format!("{}/app@{}", registry.host(), target.digest)
        .parse()
        .expect("pinned");
    assert_eq!(
        resolve_anonymously(&client(&registry), &pinned)
            .await
            .expect("pinned"),
        target
    );
    let missing = reference_with(&registry, "app:nope");
    assert!(matches!(
        resolve_anonymously(&client(&registry), &missing).await,
        Err(RegistryError::NotFound { .. })
    ));
}

fn reference_with(registry: &TestRegistry, name: &str) -> Reference {
    reference(registry, name)
}

/// Writes `<hosts>/<host>/hosts.toml` (containerd's certs.d layout) with `text`;
/// returns its directory.
fn write_hosts_toml(hosts: &Path, host: &str, text: &str) -> PathBuf {
    let dir = hosts.join(host);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("hosts.toml"), text).expect("hosts.toml");
    dir
}

/// A client that reaches the registry only as the hosts directory `hosts` says
/// (no plain-HTTP exemption of its own).
fn hosts_client(registry: &TestRegistry, hosts: &Path) -> RegistryClient {
    RegistryClient::new(RegistryConfig {
        hosts_dir: Some(hosts.to_owned()),
        insecure_registries: Vec::new(),
        ..config(registry)
    })
    .expect("client")
}

#[tokio::test]
async fn a_redirect_loop_stops_after_five_hops() {
    let (registry, err) = blob_fault(Fault::RedirectLoop, 100, 10.0).await;
    assert!(
        matches!(err, RegistryError::RedirectLimit { limit: 5, .. }),
        "{err:?}"
    );
    // The manifest, then the blob request and its five redirects.
    assert_eq!(requests(&registry).len(), 1 + 6);
}

#[tokio::test]
async fn a_redirect_to_another_host_carries_no_credentials() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(Some(("alice", "secret")));
    let storage = TestRegistry::start().await;
    let (_, signature) = signed_image(&registry, "app");
    storage.push_blob(ENVELOPE);
    registry.fault(
        "/blobs/",
        Fault::RedirectTo(format!("http://{}", storage.host())),
        1,
    );
    let credentials = Credentials::Basic {
        username: "alice".into(),
        password: "secret".into(),
    };
    let blob = fetch_app_signature(&registry, &signature, &credentials, deadline(10.0))
        .await
        .expect("via blob storage");
    assert_eq!(blob.envelope, ENVELOPE);
    let at_storage = storage.log();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].method, Method::GET);
    assert!(at_storage[0].path.contains("/blobs/"));
    assert_eq!(at_storage[0].authorization, None, "credentials leaked");
    // The registry itself did get the token.
    let blob_at_registry = registry
        .log()
        .into_iter()
        .find(|l| l.path.contains("/blobs/"))
        .expect("blob request");
    assert!(blob_at_registry
        .authorization
        .is_some_and(|a| a.starts_with("Bearer ")));
}

#[tokio::test]
async fn hosts_toml_mirrors_are_tried_first_and_never_see_the_callers_credentials() {
    let registry = TestRegistry::start().await;
    let mirror = TestRegistry::start().await;
    let (target, _) = signed_image(&registry, "app");
    let dir = tempfile::tempdir().expect("tmp");
    let host_dir = write_hosts_toml(
        dir.path(),
        &registry.host(),
        &format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            registry.host(),
            mirror.host()
        ),
    );
    let client = hosts_client(&registry, dir.path());
    let credentials = Credentials::RegistryToken("for-the-registry-only".into());
    let resolved = client
        .resolve(
            &reference(&registry, "app:v1"),
            &credentials,
            deadline(10.0),
        )
        .await
        .expect("resolved at the server after the mirror's 404");
    assert_eq!(resolved, target);
    let at_mirror = mirror.log();
    assert_eq!(at_mirror.len(), 1);
    assert_eq!(at_mirror[0].authorization, None);
    assert_eq!(
        registry.log()[0].authorization.as_deref(),
        Some("Bearer for-the-registry-only")
    );
    // A broken hosts.toml is a configuration error, not a network one.
    std::fs::write(host_dir.join("hosts.toml"), "server = 5").expect("write");
    let client = RegistryClient::new(RegistryConfig {
        hosts_dir: Some(dir.path().to_owned()),
        ..config(&registry)
    })
    .expect("client");
    let err = client
        .resolve(
            &reference(&registry, "app:v1"),
            &credentials,
            deadline(10.0),
        )
        .await
        .expect_err("bad hosts.toml");
    assert!(matches!(err, RegistryError::HostsConfig { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn an_unreachable_registry_is_a_transient_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let client = RegistryClient::new(RegistryConfig {
        hosts_dir: None,
        insecure_registries: vec![host.clone()],
        ..RegistryConfig::default()
    })
    .expect("client");
    let reference: Reference = format!("{host}/app:v1").parse().expect("reference");
    let until = deadline(5.0);
    let err = client
        .resolve(&reference, &Credentials::None, until)
        .await
        .expect_err("refused");
    assert_within(until);
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_identity_token_is_exchanged_at_the_realm_with_one_refresh_token_post() {
    let registry = TestRegistry::start().await;
    registry.set_bearer_refresh("refresh-me");
    let (target, signature) = signed_image(&registry, "app");
    let reference = reference(&registry, "app:v1");
    let until = deadline(10.0);
    let (resolved, signatures, envelope) = verify_flow(
        &client(&registry),
        &reference,
        &Credentials::IdentityToken("refresh-me".into()),
        until,
    )
    .await
    .expect("identity token flow");
    assert_eq!(resolved, target);
    assert_eq!(signatures, vec![signature]);
    assert_eq!(envelope, ENVELOPE);
    assert_eq!(
        requests(&registry),
        [
            "HEAD manifest",
            "POST token",
            "HEAD manifest",
            "GET referrers",
            "GET manifest",
            "GET blob"
        ]
    );
    let expected_form: std::collections::HashMap<String, String> = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "refresh-me"),
        ("service", "test-registry"),
        ("scope", "repository:app:pull"),
        ("client_id", "pullgate"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(registry.token_forms(), vec![expected_form]);
    // The access token, not the refresh token, goes to the registry.
    let at_registry: Vec<Option<String>> = registry
        .log()
        .into_iter()
        .filter(|l| l.path.starts_with("/v2/"))
        .map(|l| l.authorization)
        .collect();
    let bearer = Some("Bearer token-1".to_owned());
    assert_eq!(
        at_registry,
        [None, bearer.clone(), bearer.clone(), bearer.clone(), bearer]
    );

    let err = client(&registry)
        .resolve(
            &reference,
            &Credentials::IdentityToken("wrong".into()),
            until,
        )
        .await
        .expect_err("wrong refresh token");
    match &err {
        RegistryError::Unauthorized { registry: r, url } => {
            assert_eq!(*r, registry.host());
            assert_eq!(*url, format!("http://{}/token", registry.host()));
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(registry.token_forms().len(), 2);
}

/// A CA and a server certificate for 127.0.0.1 (subjectAltName IP:127.0.0.1,
/// EKU serverAuth; EC P-256), made by the test kit's PKI and written to `dir`:
/// (ca.pem, server.pem, server.key).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    // Two key slots of the kit's per call: every call's CA and server keys are its
    // own, so two calls make two CAs of the same name that do not verify each
    // other's certificates.
    static NEXT_SLOT: AtomicU8 = AtomicU8::new(32);
    let slot = NEXT_SLOT.fetch_add(2, Ordering::SeqCst);
    assert!(slot < 250, "out of key slots");
    let pki = Pki::new();
    let ca = pki.self_signed(
        &CertSpec::ca("/CN=pullgate test CA")
            .key(KeySpec::P256)
            .slot(slot),
    );
    let server = pki.issue(
        &CertSpec::leaf("/CN=127.0.0.1")
            .key(KeySpec::P256)
            .slot(slot + 1)
            .eku(Some("serverAuth"))
            .extra("subjectAltName = IP:127.0.0.1"),
        &ca,
    );
    // The kit's files live as long as its `Pki`; the caller's `dir` outlives this.
    let (ca_pem, server_pem, server_key) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca_pem, &ca.pem).expect("ca.pem");
    std::fs::write(&server_pem, &server.pem).expect("server.pem");
    std::fs::copy(&server.key_path, &server_key).expect("server.key");
    (ca_pem, server_pem, server_key)
}

#[tokio::test]
async fn https_with_the_hosts_toml_ca_verifies_and_without_it_fails_the_handshake() {
    let certs = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = make_certificates(certs.path());
    let registry = TestRegistry::start_tls(&cert, &key).await;
    let (target, signature) = signed_image(&registry, "app");
    let hosts = tempfile::tempdir().expect("tmp");
    let https_client = |hosts_toml: String| {
        write_hosts_toml(hosts.path(), &registry.host(), &hosts_toml);
        hosts_client(&registry, hosts.path())
    };
    let reference = reference(&registry, "app:v1");

    // The server's own CA, from hosts.toml (top-level `ca` applies to `server`).
    let client = https_client(format!(
        "server = \"https://{}\"\nca = {:?}\n",
        registry.host(),
        ca.display().to_string()
    ));
    assert_cold_flow(&client, &registry, &reference, (&target, &signature)).await;
    assert_eq!(registry.connections(), 1);
    assert_eq!(registry.plain_http_attempts(), 0);

    // Without the CA the handshake fails: a transport error, no request reaches
    // the registry, and nothing is tried over plain http.
    registry.clear_log();
    let client = https_client(format!("server = \"https://{}\"\n", registry.host()));
    let until = deadline(5.0);
    let err = client
        .resolve(&reference, &Credentials::None, until)
        .await
        .expect_err("unknown issuer");
    assert_within(until);
    let RegistryError::Transport { url, source } = &err else {
        panic!("expected Transport, got {err:?}");
    };
    assert_eq!(
        *url,
        format!("https://{}/v2/app/manifests/v1", registry.host())
    );
    assert_eq!(
        rustls_error(source.as_ref()),
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "{err:?}"
    );
    // One new connection, one handshake: not retried, not downgraded.
    assert_eq!(registry.connections(), 2);
    assert_eq!(registry.log().len(), 0);
    assert_eq!(registry.plain_http_attempts(), 0);
}

/// The rustls error under a transport error (hyper-util and io errors wrap it;
/// `io::Error::source` skips its payload, so look inside with `get_ref`).
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(e) = err.downcast_ref::<rustls::Error>() {
        return Some(e);
    }
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return rustls_error(inner);
    }
    err.source().and_then(rustls_error)
}

// --- issue 9: a hostile registry ---------------------------------------------

/// Issue 9 item 6: `Retry-After: u64::MAX` seconds once overflowed `Instant + Duration`
/// and panicked the task; now it is a wait far beyond the deadline, so the call gives
/// up at once with the 429.
#[tokio::test]
async fn retry_after_u64_max_seconds_is_a_transient_429_not_a_panic() {
    let registry = retry_after_beyond_the_deadline(u64::MAX.to_string(), 5.0).await;
    assert_eq!(requests(&registry), ["HEAD manifest"]);
}

/// Issue 9 item 6: a token with `expires_in: u64::MAX` once overflowed
/// `Instant + Duration` while the token lock was held. The lifetime is capped: the
/// flow succeeds and the token is reused for the next call.
#[tokio::test]
async fn token_expires_in_u64_max_is_capped_not_a_panic() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(None);
    registry.set_token_expires_in(u64::MAX);
    signed_image(&registry, "app");
    let client = client(&registry);
    let reference = reference(&registry, "app:v1");
    for _ in 0..2 {
        verify_flow(&client, &reference, &Credentials::None, deadline(10.0))
            .await
            .expect("verification flow");
    }
    let tokens = requests(&registry)
        .iter()
        .filter(|r| r.ends_with("token"))
        .count();
    assert_eq!(tokens, 1, "{:?}", requests(&registry));
}

/// Issue 9 item 7: a challenge naming a plain-http token service on another host
/// with an upper-case scheme (`HTTP://`) must not get the caller's Basic
/// credentials; the scheme is compared case-insensitively (RFC 3986 §3.1).
#[tokio::test]
async fn upper_case_http_realm_on_another_host_gets_no_basic_credentials() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(Some(("alice", "secret")));
    let thief = TestRegistry::start().await;
    registry.set_realm(&format!("HTTP://{}/token", thief.host()));
    signed_image(&registry, "app");
    let credentials = Credentials::Basic {
        username: "alice".into(),
        password: "secret".into(),
    };
    let err = client(&registry)
        .resolve(
            &reference(&registry, "app:v1"),
            &credentials,
            deadline(10.0),
        )
        .await
        .expect_err("refused");
    assert!(matches!(err, RegistryError::Token { .. }), "{err:?}");
    assert!(
        thief.log().is_empty(),
        "credentials went to the plain-http realm: {:?}",
        thief.log()
    );
}

/// Issue 9 item 8: credentials the kubelet passed for one host
/// (`AuthConfig.server_address`) are not sent to the server a `_default` hosts.toml
/// names for an image on another registry, as containerd's CRI `ParseAuth` withholds
/// them; when `server_address` names the endpoint's host they are sent.
#[tokio::test]
async fn kubelet_credentials_for_another_host_are_not_sent_to_the_default_hosts_toml_server() {
    let registry = TestRegistry::start().await;
    registry.set_bearer(Some(("alice", "secret")));
    let (target, _) = signed_image(&registry, "app");
    let dir = tempfile::tempdir().expect("tmp");
    write_hosts_toml(
        dir.path(),
        "_default",
        &format!("server = \"http://{}\"\n", registry.host()),
    );
    let client = hosts_client(&registry, dir.path());
    let reference: Reference = "private.example/app:v1".parse().expect("reference");
    let alice = || Credentials::Basic {
        username: "alice".into(),
        password: "secret".into(),
    };
    let err = client
        .resolve(
            &reference,
            &alice().for_server_address("https://private.example"),
            deadline(10.0),
        )
        .await
        .expect_err("no credentials at the _default server");
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let leaked: Vec<_> = registry
        .log()
        .into_iter()
        .filter(|l| {
            l.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        })
        .collect();
    assert!(leaked.is_empty(), "credentials sent: {leaked:?}");

    let resolved = client
        .resolve(
            &reference,
            &alice().for_server_address(&format!("http://{}", registry.host())),
            deadline(10.0),
        )
        .await
        .expect("credentials for the endpoint's host are sent");
    assert_eq!(resolved, target);
}

/// Issue 9 item 10: hosts.toml is re-read when it changes, as containerd does; a
/// mirror taken out of it (say, found compromised) gets no further requests
/// without a restart of pullgate.
#[tokio::test]
async fn a_mirror_removed_from_hosts_toml_gets_no_more_requests() {
    let registry = TestRegistry::start().await;
    let mirror = TestRegistry::start().await;
    let (target, _) = signed_image(&registry, "app");
    signed_image(&mirror, "app");
    let dir = tempfile::tempdir().expect("tmp");
    let server = format!("server = \"http://{}\"\n", registry.host());
    let host_dir = write_hosts_toml(
        dir.path(),
        &registry.host(),
        &format!(
            "{server}[host.\"http://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            mirror.host()
        ),
    );
    let client = hosts_client(&registry, dir.path());
    let reference = reference(&registry, "app:v1");
    let resolved = resolve_anonymously(&client, &reference)
        .await
        .expect("resolved at the mirror");
    assert_eq!(resolved, target);
    assert_eq!(mirror.log().len(), 1);
    assert!(registry.log().is_empty());

    std::fs::write(host_dir.join("hosts.toml"), &server).expect("mirror removed");
    let resolved = resolve_anonymously(&client, &reference)
        .await
        .expect("resolved at the server");
    assert_eq!(resolved, target);
    assert_eq!(mirror.log().len(), 1, "the removed mirror was asked again");
    assert_eq!(registry.log().len(), 1);

    // A file that appears later (here `_default`) is picked up as well.
    std::fs::remove_file(host_dir.join("hosts.toml")).expect("rm");
    write_hosts_toml(dir.path(), "_default", "server = 5");
    let err = resolve_anonymously(&client, &reference)
        .await
        .expect_err("the broken _default file is read");
    assert!(matches!(err, RegistryError::HostsConfig { .. }), "{err:?}");
}

/// Issue 9 item 10: the CA file a hosts.toml names is read again when it changes,
/// as containerd does on every pull; a CA rotated out of the hosts directory is no
/// longer trusted for new connections without a restart of pullgate.
#[tokio::test]
async fn a_ca_file_replaced_in_the_hosts_directory_is_trusted_no_more() {
    let certs = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = make_certificates(certs.path());
    let other = tempfile::tempdir().expect("tmp");
    let (other_ca, _, _) = make_certificates(other.path());
    let registry = TestRegistry::start_tls(&cert, &key).await;
    let (target, _) = signed_image(&registry, "app");
    let hosts = tempfile::tempdir().expect("tmp");
    // The CA is in place before hosts.toml names it.
    let trusted = hosts.path().join(registry.host()).join("ca.pem");
    std::fs::create_dir_all(trusted.parent().expect("host dir")).expect("mkdir");
    std::fs::copy(&ca, &trusted).expect("ca");
    let host_dir = write_hosts_toml(
        hosts.path(),
        &registry.host(),
        &format!(
            "server = \"https://{}\"\nca = \"ca.pem\"\n",
            registry.host()
        ),
    );
    let client = hosts_client(&registry, hosts.path());
    let reference = reference(&registry, "app:v1");
    let resolved = resolve_anonymously(&client, &reference)
        .await
        .expect("trusted CA");
    assert_eq!(resolved, target);

    // Replaced the way tools do it (write, then rename over): a new file.
    let staged = host_dir.join("ca.pem.new");
    std::fs::copy(&other_ca, &staged).expect("stage the new CA");
    std::fs::rename(&staged, &trusted).expect("rotate the CA");
    let err = resolve_anonymously(&client, &reference)
        .await
        .expect_err("the old CA is no longer trusted");
    let RegistryError::Transport { source, .. } = &err else {
        panic!("expected Transport, got {err:?}");
    };
    // Both test CAs have the same name: the chain fails on its signature.
    assert_eq!(
        rustls_error(source.as_ref()),
        Some(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature
        )),
        "{err:?}"
    );
}

/// Issue 9 item 7: the https → http downgrade check on redirects sees an upper-case
/// `HTTP://` target as plain http; the redirect is refused as a downgrade and
/// blob storage gets no request.
#[tokio::test]
async fn an_https_redirect_to_upper_case_http_is_refused_as_a_downgrade() {
    let certs = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = make_certificates(certs.path());
    let registry = TestRegistry::start_tls(&cert, &key).await;
    let storage = TestRegistry::start().await;
    let (_, signature) = signed_image(&registry, "app");
    storage.push_blob(ENVELOPE);
    registry.fault(
        "/blobs/",
        Fault::RedirectTo(format!("HTTP://{}", storage.host())),
        1,
    );
    let hosts = tempfile::tempdir().expect("tmp");
    write_hosts_toml(
        hosts.path(),
        &registry.host(),
        &format!(
            "server = \"https://{}\"\nca = {:?}\n",
            registry.host(),
            ca.display().to_string()
        ),
    );
    let client = hosts_client(&registry, hosts.path());
    let err = client
        .signature(
            &reference(&registry, "app:v1"),
            &signature,
            LIMITS,
            &Credentials::None,
            deadline(10.0),
        )
        .await
        .expect_err("downgrade");
    assert!(
        matches!(
            err,
            RegistryError::RedirectRefused {
                reason: "downgrade from https to http",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(storage.log().is_empty());
}
