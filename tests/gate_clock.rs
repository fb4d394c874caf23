//! The gate's decision driven through `gate::Gate` with an in-memory image source
//! and a fixed clock: real envelopes signed by the test PKI (openssl keys, `openssl
//! ts` tokens), no registry, no containerd, and no waiting for a certificate to
//! expire (it replaces an end-to-end test that slept 8 s for that).

use pullgate_testkit as support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use pullgate::cache::{CacheConfig, VerdictCache};
use pullgate::gate::{
    Credentials, FixedClock, Gate, GateSettings, ImageSource, Pass, Refusal, RegistryError,
};
use pullgate::intercept::{status, CallError};
use pullgate::oci::Descriptor;
use pullgate::policy::{StoreType, TrustPolicyDocument};
use pullgate::reference::Reference;
use pullgate::verify::{Budgets, LoadedPolicy, SignatureBlob, SignatureSource};
use support::envelope_builder::{EnvelopeSpec, Format, Target};
use support::fixtures::{blob, descriptor, store};
use support::pki::{CertSpec, KeySpec, Pki};

const REGISTRY: &str = "registry.test";

/// Repositories (`REGISTRY/<name>`) and the signatures of their one image.
struct FakeRegistry {
    target: Descriptor,
    signatures: BTreeMap<String, Vec<SignatureBlob>>,
}

/// One repository's signatures.
struct FakeSignatures<'a>(&'a [SignatureBlob]);

impl SignatureSource for FakeSignatures<'_> {
    type Error = RegistryError;

    async fn signature_manifests(
        &self,
        _target: &Descriptor,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        Ok(self.0.iter().map(|blob| blob.manifest.clone()).collect())
    }

    async fn signature(
        &self,
        manifest: &Descriptor,
        _budgets: &Budgets,
    ) -> Result<SignatureBlob, RegistryError> {
        let blob = self.0.iter().find(|blob| blob.manifest == *manifest);
        Ok(blob.expect("a listed signature").clone())
    }
}

impl ImageSource for FakeRegistry {
    type Signatures<'a> = FakeSignatures<'a>;

    async fn resolve(
        &self,
        _reference: &Reference,
        _credentials: &Credentials,
        _deadline: Instant,
    ) -> Result<Descriptor, RegistryError> {
        Ok(self.target.clone())
    }

    fn signatures<'a>(
        &'a self,
        reference: &'a Reference,
        _credentials: &'a Credentials,
        _deadline: Instant,
    ) -> FakeSignatures<'a> {
        let repository = reference.repository();
        FakeSignatures(self.signatures.get(repository).map_or(&[], Vec::as_slice))
    }
}

/// The audit lines written while a test runs.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log")).into_owned()
    }
}

/// A PKI with a TSA and a leaf valid until `expires`, and two repositories of one
/// image signed by that leaf: `stamped` (with an RFC 3161 timestamp from the TSA)
/// and `unstamped`. Returns the registry and the policy (`stamped`: strict,
/// `verifyTimestamp: afterCertExpiry`, stores `ca:acme` and `tsa:stamps`).
fn short_lived_signer(signed_at: SystemTime, expires: SystemTime) -> (FakeRegistry, LoadedPolicy) {
    signer(signed_at, expires, None, "afterCertExpiry")
}

/// The fixture behind [`short_lived_signer`]: `envelope_expiry` sets the
/// envelope's own expiry (seconds since 1970), `verify_timestamp` the policy's
/// `verifyTimestamp`.
fn signer(
    signed_at: SystemTime,
    expires: SystemTime,
    envelope_expiry: Option<i64>,
    verify_timestamp: &str,
) -> (FakeRegistry, LoadedPolicy) {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::Rsa3072);
    let tsa = pki.tsa(KeySpec::Rsa2048);
    let leaf = pki.issue(
        &CertSpec::leaf("/C=US/ST=WA/O=Pullgate Tests/CN=Short Lived")
            .key(KeySpec::Rsa3072)
            .validity(signed_at - Duration::from_secs(3600), expires),
        &chain.intermediate,
    );
    let spec = EnvelopeSpec {
        alg: leaf.key.algorithm().to_string(),
        signing_time: Some(
            signed_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs() as i64,
        ),
        certificate_chain: vec![
            leaf.der.clone(),
            chain.intermediate.der.clone(),
            chain.root.der.clone(),
        ],
        expiry: envelope_expiry,
        ..EnvelopeSpec::default()
    };
    let signature = pki.sign(
        &leaf.key_path,
        leaf.key.algorithm(),
        &spec.to_be_signed(Format::Cose),
    );
    let stamped = EnvelopeSpec {
        timestamp_token: Some(pki.timestamp_token(&tsa, &signature, "sha256")),
        ..spec.clone()
    };
    let envelope = |spec: &EnvelopeSpec| {
        vec![blob(
            Format::Cose,
            spec.build(Format::Cose, &|_| signature.clone()),
        )]
    };
    let target = Target::default();
    let registry = FakeRegistry {
        target: descriptor(&target),
        signatures: BTreeMap::from([
            ("stamped".to_owned(), envelope(&stamped)),
            ("unstamped".to_owned(), envelope(&spec)),
        ]),
    };
    let policy = serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "stamped",
            "registryScopes": [format!("{REGISTRY}/stamped"), format!("{REGISTRY}/unstamped")],
            "signatureVerification": {"level": "strict", "verifyTimestamp": verify_timestamp},
            "trustStores": ["ca:acme", "tsa:stamps"],
            "trustedIdentities": ["*"],
        }],
    });
    let document =
        TrustPolicyDocument::parse(policy.to_string().as_bytes()).expect("fixture policy");
    let dir = pullgate::policy_dir::PolicyDir {
        document,
        stores: vec![
            store(StoreType::Ca, "acme", &[&chain.root]),
            store(StoreType::Tsa, "stamps", &[&tsa.root]),
        ],
        policy_file: "trustpolicy.json".into(),
        fingerprint: pullgate::verdict::Fingerprint::from_hex("0123456789abcdef"),
    };
    let policy = LoadedPolicy {
        generation: 1,
        dir: Arc::new(dir),
    };
    (registry, policy)
}

/// The gate's decisions on `images`, in order, and the log lines they wrote.
fn decide_logged(
    gate: &Gate<FakeRegistry>,
    images: &[&str],
) -> (Vec<Result<Pass, Refusal>>, String) {
    decide_logged_at(gate, &[(Duration::ZERO, images)])
}

/// Like [`decide_logged`] on a runtime whose clock starts paused: before each
/// batch of images the clock moves on by the batch's duration (tokio's clock, so
/// the verdict cache's lifetimes and a [`TokioClock`] move together).
fn decide_logged_at(
    gate: &Gate<FakeRegistry>,
    batches: &[(Duration, &[&str])],
) -> (Vec<Result<Pass, Refusal>>, String) {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let decisions = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let mut decisions = Vec::new();
            for (later, images) in batches {
                tokio::time::advance(*later).await;
                for image in *images {
                    decisions.push(gate.decide(image, &Credentials::None).await);
                }
            }
            decisions
        })
    });
    (decisions, log.text())
}

/// What `gate_e2e` checked with a 6 s leaf and an 8 s sleep: under
/// `verifyTimestamp: afterCertExpiry`, a signature whose leaf has expired passes
/// with a valid RFC 3161 timestamp from the policy's TSA, and one without a
/// timestamp is refused for it. Here the clock is set past the leaf's expiry.
#[test]
fn expired_leaf_passes_only_with_a_timestamp() {
    // The timestamp's genTime is the real time of stamping, which must fall within
    // the leaf's validity: ten minutes leave room for a slow machine.
    let signed_at = pullgate_testkit::time::now();
    let expires = signed_at + Duration::from_secs(600);
    let (registry, policy) = short_lived_signer(signed_at, expires);
    let (_policy_tx, policy_rx) = tokio::sync::watch::channel(Arc::new(policy));
    let gate = Gate::new(
        registry,
        policy_rx,
        VerdictCache::new(CacheConfig::default()),
        GateSettings::default(),
    )
    .with_clock(Arc::new(FixedClock(expires + Duration::from_secs(2))));
    let stamped = format!("{REGISTRY}/stamped:v1");
    let unstamped = format!("{REGISTRY}/unstamped:v1");
    let (mut decisions, log) = decide_logged(&gate, &[&stamped, &unstamped]);

    let refusal = decisions.pop().expect("two").expect_err("no timestamp");
    let pass = decisions.pop().expect("two");
    let pass = pass.expect("expired leaf with a valid timestamp is allowed");
    let digest = &Target::default().digest;
    assert!(
        matches!(&pass, Pass::Pinned { pinned, .. } if pinned.ends_with(digest.as_str())),
        "{pass:?}"
    );
    assert!(matches!(refusal, Refusal::Denied { .. }), "{refusal:?}");
    let status = status(&CallError::Refused(refusal));
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    let message = status.message();
    assert!(
        message.starts_with(&format!(
            "SignatureValidationFailed: pullgate: {unstamped}: "
        )),
        "{message}"
    );
    assert!(
        message.contains("no timestamp countersignature"),
        "{message}"
    );
    assert!(message.ends_with("(trust policy \"stamped\")"), "{message}");
    assert!(log.contains("timestamp authority"), "{log}");
}

/// Wall time that moves with tokio's (paused) clock: `base` plus the tokio time
/// since the clock was made, read inside the runtime.
struct TokioClock {
    base: SystemTime,
    start: std::sync::OnceLock<tokio::time::Instant>,
}

impl pullgate::gate::Clock for TokioClock {
    fn now(&self) -> SystemTime {
        let start = self.start.get_or_init(tokio::time::Instant::now);
        self.base + start.elapsed()
    }
}

/// Issue 9 item 3, which `gate_e2e` checked by waiting for a real envelope to
/// expire: a cached
/// allow is not reused once the signature it rests on has expired. The envelope
/// (timestamped) expires a minute after signing, well inside the cache's one-hour
/// allow lifetime; the second pull comes 61 s later (on a paused clock), finds no cached allow and is refused for the
/// expiry, after a second verification.
#[test]
fn cached_allow_does_not_outlive_the_signature_expiry() {
    let signed_at = pullgate_testkit::time::now();
    // Well inside the cache's one-hour allow lifetime, so only the expiry can
    // end the cached allow.
    let expiry = signed_at + Duration::from_secs(60);
    let expiry_secs = expiry
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let leaf_expires = signed_at + Duration::from_secs(30 * 86_400);
    let (registry, policy) = signer(signed_at, leaf_expires, Some(expiry_secs), "always");
    let (_policy_tx, policy_rx) = tokio::sync::watch::channel(Arc::new(policy));
    let clock = TokioClock {
        base: signed_at,
        start: std::sync::OnceLock::new(),
    };
    let gate = Gate::new(
        registry,
        policy_rx,
        VerdictCache::new(CacheConfig::default()),
        GateSettings::default(),
    )
    .with_clock(Arc::new(clock));
    let image = format!("{REGISTRY}/stamped:v1");
    let (decisions, log) = decide_logged_at(
        &gate,
        &[
            (Duration::ZERO, &[&image]),
            (Duration::from_secs(61), &[&image]),
        ],
    );
    let [first, second] = <[_; 2]>::try_from(decisions).expect("two decisions");
    first.expect("signature not expired yet");
    let refusal = second.expect_err("the signature has expired; the cached allow must not answer");
    let status = status(&CallError::Refused(refusal));
    let message = status.message();
    assert!(message.contains("expiry check failed"), "{message}");
    assert!(message.ends_with("(trust policy \"stamped\")"), "{message}");
    let misses = log
        .lines()
        .filter(|l| l.contains("pullgate::audit") && l.contains("cache=\"miss\""))
        .count();
    assert_eq!(misses, 2, "{log}");
}
