//! The verification engine (`pullgate::verify::engine`, NOTARY.md §3–§8) against
//! fixtures made at test time: an openssl PKI (root → intermediate → leaf, every key
//! type notation signs with), a real `openssl ts` TSA (root + leaf with critical
//! timeStamping EKU) stamping the envelope's raw signature bytes, and COSE / JWS
//! envelopes built by `support::envelope_builder` and signed with the fixture keys.
//! Trust policies are JSON parsed with `TrustPolicyDocument::parse`, stores are built
//! with `TrustStore::from_files`.
//!
//! Every case asserts the exact outcome: `Verdict::Verified` and the time source for
//! passes; the failing `Check`, the `SignatureFailure` variant and the key text of its
//! reason for failures; the `logged_failures()` for failures a level only logs.
//!
//! `openssl ts -reply` stamps with the current clock (no faketime here), so every
//! timestamp case puts the certificate windows relative to now and moves the
//! verification time (`Verifier::now`) instead of the token's genTime.

use pullgate_testkit as support;

use std::slice::from_ref;
use std::time::{Duration, SystemTime};

use pullgate::policy::{CheckAction, StoreType, TrustPolicyDocument, TrustStore};
use pullgate::verify::engine::{
    rfc3339, Check, CheckOutcome, CheckResult, SignatureFailure, SignatureReport, TimeSource,
    TimestampFailure, Verdict, VerificationError, VerifiedSignature, Verifier,
};
use pullgate::verify::oci::Descriptor;
use pullgate::verify::{Budgets, SignatureBlob};
use support::envelope_builder::{EnvelopeSpec, Format, JwsMember, Target};
use support::fixtures::{blob, descriptor, store};
use support::pki::{days_from_now, CertSpec, Chain, Issued, KeySpec, Pki, Tsa};

const REPOSITORY: &str = "registry.example.com/net-monitor";
const FORMATS: [Format; 2] = [Format::Cose, Format::Jws];
const LEAF_SUBJECT: &str = "CN=Test Leaf,O=Notary,L=Seattle,ST=WA,C=US";

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

fn epoch_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

fn whole_secs(t: SystemTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(epoch_secs(t) as u64)
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// One test's PKI: an RSA-3072 root → intermediate → leaf chain whose root is the
/// `ca:acme` store. Keys are cached per process by `support::pki`, so this costs only
/// a few openssl invocations per test.
struct Fx {
    pki: Pki,
    chain: Chain,
}

impl Fx {
    fn new() -> Fx {
        let pki = Pki::new();
        let chain = pki.chain(KeySpec::Rsa3072);
        Fx { pki, chain }
    }

    /// A leaf issued by the chain's intermediate.
    fn leaf(&self, spec: &CertSpec) -> Issued {
        self.pki.issue(spec, &self.chain.intermediate)
    }

    /// The standard leaf (RSA-3072, slot 2); adjust key, validity or extensions.
    fn leaf_spec(&self) -> CertSpec {
        CertSpec::leaf("/C=US/ST=WA/L=Seattle/O=Notary/CN=Test Leaf").key(KeySpec::Rsa3072)
    }

    /// leaf, intermediate, root as DER (the envelope's x5chain / x5c).
    fn chain_der(&self, leaf: &Issued) -> Vec<Vec<u8>> {
        vec![
            leaf.der.clone(),
            self.chain.intermediate.der.clone(),
            self.chain.root.der.clone(),
        ]
    }

    /// A spec signed now with header alg `PS384`, carrying the standard chain (its
    /// RSA-3072 leaf signs it).
    fn ps384_spec(&self) -> EnvelopeSpec {
        EnvelopeSpec {
            alg: "PS384".into(),
            certificate_chain: self.chain_der(&self.chain.leaf),
            ..spec_now()
        }
    }

    /// A TSA with an RSA-2048 root and leaf (critical timeStamping EKU).
    fn tsa(&self) -> Tsa {
        self.pki.tsa(KeySpec::Rsa2048)
    }

    /// `signingAuthority:acme-sa` with the chain's root.
    fn signing_authority_stores(&self) -> Vec<TrustStore> {
        vec![store(
            StoreType::SigningAuthority,
            "acme-sa",
            &[&self.chain.root],
        )]
    }

    /// `ca:acme` (the chain's root), plus `tsa:stamps` with `tsa`'s root.
    fn stores(&self, tsa: Option<&Tsa>) -> Vec<TrustStore> {
        let mut stores = vec![store(StoreType::Ca, "acme", &[&self.chain.root])];
        if let Some(tsa) = tsa {
            stores.push(store(StoreType::Tsa, "stamps", &[&tsa.root]));
        }
        stores
    }

    /// The standard chain's leaf signing `spec` (alg from the leaf key unless the
    /// spec says otherwise), with the 3-certificate chain.
    fn sign(&self, spec: EnvelopeSpec, format: Format) -> SignatureBlob {
        self.sign_with(
            &self.chain.leaf,
            self.chain_der(&self.chain.leaf),
            spec,
            format,
        )
    }

    /// `leaf` signs `spec` carrying `chain`; the header alg is the leaf key's.
    fn sign_with(
        &self,
        leaf: &Issued,
        chain: Vec<Vec<u8>>,
        spec: EnvelopeSpec,
        format: Format,
    ) -> SignatureBlob {
        let spec = EnvelopeSpec {
            alg: leaf.key.algorithm().to_string(),
            certificate_chain: chain,
            ..spec
        };
        let bytes = spec.build(format, &|tbs| {
            self.pki.sign(&leaf.key_path, leaf.key.algorithm(), tbs)
        });
        blob(format, bytes)
    }

    /// Like [`Fx::sign_with`], plus an RFC 3161 token from `tsa` over the raw
    /// signature bytes (COSE `signature`, decoded JWS `signature`), stamped now.
    fn sign_timestamped(
        &self,
        leaf: &Issued,
        chain: Vec<Vec<u8>>,
        spec: EnvelopeSpec,
        format: Format,
        tsa: &Tsa,
    ) -> SignatureBlob {
        let spec = EnvelopeSpec {
            alg: leaf.key.algorithm().to_string(),
            certificate_chain: chain,
            ..spec
        };
        let signature = self.pki.sign(
            &leaf.key_path,
            leaf.key.algorithm(),
            &spec.to_be_signed(format),
        );
        let token = self.pki.timestamp_token(tsa, &signature, "sha256");
        let spec = EnvelopeSpec {
            timestamp_token: Some(token),
            ..spec
        };
        blob(format, spec.build(format, &|_| signature.clone()))
    }
}

/// The artifact the default `Target` names.
fn target() -> Descriptor {
    descriptor(&Target::default())
}

fn reference() -> String {
    format!("{REPOSITORY}@{}", Target::default().digest)
}

/// A valid envelope spec signed now.
fn spec_now() -> EnvelopeSpec {
    EnvelopeSpec {
        signing_time: Some(epoch_secs(pullgate_testkit::time::now())),
        ..EnvelopeSpec::default()
    }
}

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// One trust policy statement for [`REPOSITORY`], written as JSON and parsed with
/// `TrustPolicyDocument::parse`.
#[derive(Clone)]
struct Policy {
    level: &'static str,
    overrides: Vec<(&'static str, &'static str)>,
    verify_timestamp: Option<&'static str>,
    stores: Vec<&'static str>,
    identities: Vec<&'static str>,
    budgets: Budgets,
}

impl Policy {
    fn strict() -> Policy {
        Policy {
            level: "strict",
            overrides: Vec::new(),
            verify_timestamp: None,
            stores: vec!["ca:acme"],
            identities: vec!["*"],
            budgets: Budgets::default(),
        }
    }

    fn level(self, level: &'static str) -> Policy {
        Policy { level, ..self }
    }

    fn set(mut self, check: &'static str, action: &'static str) -> Policy {
        self.overrides.push((check, action));
        self
    }

    fn with_tsa(mut self) -> Policy {
        self.stores.push("tsa:stamps");
        self
    }

    fn stores(self, stores: Vec<&'static str>) -> Policy {
        Policy { stores, ..self }
    }

    fn identities(self, identities: Vec<&'static str>) -> Policy {
        Policy { identities, ..self }
    }

    fn verify_timestamp(self, value: &'static str) -> Policy {
        Policy {
            verify_timestamp: Some(value),
            ..self
        }
    }

    fn max_signatures(self, n: usize) -> Policy {
        Policy {
            budgets: Budgets {
                max_signature_attempts: n,
                ..Budgets::default()
            },
            ..self
        }
    }

    fn json(&self) -> String {
        let mut verification = serde_json::json!({ "level": self.level });
        if !self.overrides.is_empty() {
            let overrides: serde_json::Map<_, _> = self
                .overrides
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect();
            verification["override"] = overrides.into();
        }
        if let Some(v) = self.verify_timestamp {
            verification["verifyTimestamp"] = v.into();
        }
        let mut statement = serde_json::json!({
            "name": "net-monitor",
            "registryScopes": [REPOSITORY],
            "signatureVerification": verification,
        });
        if self.level != "skip" {
            statement["trustStores"] = self.stores.clone().into();
            statement["trustedIdentities"] = self.identities.clone().into();
        }
        serde_json::json!({ "version": "1.0", "trustPolicies": [statement] }).to_string()
    }

    /// Decides over `blobs` (all of them listed) at `now`.
    fn decide_at(
        &self,
        stores: &[TrustStore],
        now: SystemTime,
        target: &Descriptor,
        blobs: &[SignatureBlob],
    ) -> Verdict {
        self.decide_listed(stores, now, target, blobs, blobs.len())
    }

    fn decide_listed(
        &self,
        stores: &[TrustStore],
        now: SystemTime,
        target: &Descriptor,
        blobs: &[SignatureBlob],
        total_listed: usize,
    ) -> Verdict {
        let json = self.json();
        let document = TrustPolicyDocument::parse(json.as_bytes())
            .unwrap_or_else(|e| panic!("fixture policy {json} is invalid: {e}"));
        let statement = document
            .statement_for(REPOSITORY)
            .expect("statement for the repository");
        Verifier {
            statement,
            stores,
            now,
            budgets: &self.budgets,
        }
        .decide(&reference(), target, blobs, total_listed)
    }

    fn decide(&self, stores: &[TrustStore], blobs: &[SignatureBlob]) -> Verdict {
        self.decide_at(stores, pullgate_testkit::time::now(), &target(), blobs)
    }
}

// ---------------------------------------------------------------------------
// Outcome assertions
// ---------------------------------------------------------------------------

#[track_caller]
fn verified(verdict: &Verdict) -> &VerifiedSignature {
    match verdict {
        Verdict::Verified(v) => v,
        other => panic!("expected Verified, got {other:#?}"),
    }
}

/// Asserts the verdict failed at `check` (both in the verdict's reason and in the
/// last signature's report) and returns the failure.
#[track_caller]
fn failed(verdict: &Verdict, check: Check) -> SignatureFailure {
    let Verdict::Failed {
        reason, signatures, ..
    } = verdict
    else {
        panic!("expected Failed at {check:?}, got {verdict:#?}");
    };
    let VerificationError::SignatureFailed {
        check: reason_check,
        failure,
    } = reason
    else {
        panic!("expected a SignatureFailed reason at {check:?}, got {reason:?}");
    };
    assert_eq!(*reason_check, check, "reason: {reason}");
    let (report_check, report_failure) = signatures
        .last()
        .and_then(SignatureReport::failed_check)
        .expect("a failed signature report");
    assert_eq!(*report_check, check, "report: {signatures:#?}");
    assert_eq!(report_failure, failure);
    failure.clone()
}

/// Asserts the verdict failed integrity for a certificate chain problem whose text
/// contains `needle` (`id` names the case); the failure.
#[track_caller]
fn chain_failure(verdict: &Verdict, id: &str, needle: &str) -> SignatureFailure {
    let failure = failed(verdict, Check::Integrity);
    assert!(
        matches!(failure, SignatureFailure::Chain(_)),
        "{id}: {failure:?}"
    );
    assert_text(&failure, needle);
    failure
}

/// The integrity failure of a signature that does not verify under its key.
fn bad_signature() -> SignatureFailure {
    SignatureFailure::Signature(std::sync::Arc::new(pullgate::pki::PkiError::BadSignature))
}

/// `failure` is the standard leaf not being valid at `when`, for a reason that
/// contains `needle`.
#[track_caller]
fn assert_leaf_time(failure: &SignatureFailure, when: SystemTime, needle: &str) {
    let SignatureFailure::CertificateTime {
        subject,
        at,
        reason,
    } = failure
    else {
        panic!("expected CertificateTime, got {failure:?}");
    };
    assert_eq!(subject, LEAF_SUBJECT);
    assert_eq!(rfc3339(*at), rfc3339(when));
    assert!(reason.to_string().contains(needle), "{reason}");
}

#[track_caller]
fn assert_text(failure: &SignatureFailure, needle: &str) {
    let text = failure.to_string();
    assert!(
        text.contains(needle),
        "failure text {text:?} does not contain {needle:?}"
    );
}

fn check_of(report: &SignatureReport, check: Check) -> &CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no {check:?} result in {:#?}", report.checks))
}

/// The report recorded `check` with `action` and `outcome`, and no error.
#[track_caller]
fn assert_check(
    report: &SignatureReport,
    check: Check,
    action: CheckAction,
    outcome: CheckOutcome,
) {
    assert_eq!(
        check_of(report, check),
        &CheckResult {
            check,
            action,
            outcome,
            error: None
        }
    );
}

/// `(check, action, outcome)` of every recorded check.
fn check_rows(report: &SignatureReport) -> Vec<(Check, &'static str, &'static str)> {
    report
        .checks
        .iter()
        .map(|c| (c.check, action_name(c.action), c.outcome.as_str()))
        .collect()
}

fn action_name(action: CheckAction) -> &'static str {
    match action {
        CheckAction::Enforce => "enforce",
        CheckAction::Log => "log",
        CheckAction::Skip => "skip",
    }
}

/// Asserts the verdict passed with `failure` at `check` its one logged failure;
/// its report.
#[track_caller]
fn verified_logging<'a>(
    verdict: &'a Verdict,
    check: Check,
    failure: &SignatureFailure,
) -> &'a SignatureReport {
    let report = verified(verdict).report();
    assert_eq!(logged(report), vec![(check, failure.to_string())]);
    report
}

/// The logged failures as `(check, error text)`.
fn logged(report: &SignatureReport) -> Vec<(Check, String)> {
    report
        .logged_failures()
        .map(|c| (c.check, c.error.clone().unwrap_or_default()))
        .collect()
}

#[track_caller]
fn assert_local_clock(report: &SignatureReport, now: SystemTime) {
    assert_eq!(
        report.time_source,
        Some(TimeSource::LocalClock { time: now })
    );
}

/// The report's time source is the fixture TSA, with genTime within
/// [`before`, `after`] and openssl's configured accuracy (1 s 500 ms 100 µs).
#[track_caller]
fn assert_tsa_time(report: &SignatureReport, before: SystemTime, after: SystemTime) {
    let Some(TimeSource::TimestampAuthority {
        gen_time,
        accuracy_ms,
        tsa,
    }) = &report.time_source
    else {
        panic!("expected a TSA time source, got {:?}", report.time_source);
    };
    let gen = *gen_time;
    // genTime has whole seconds (clock_precision_digits = 0).
    assert!(
        gen + Duration::from_secs(1) >= before && gen <= after,
        "genTime {} not between {} and {}",
        rfc3339(gen),
        rfc3339(before),
        rfc3339(after)
    );
    assert_eq!(*accuracy_ms, 1500);
    assert!(tsa.contains("CN=Test TSA"), "tsa {tsa}");
}

const ALL_PASSED_STRICT: [(Check, &str, &str); 7] = [
    (Check::Integrity, "enforce", "passed"),
    (Check::Authenticity, "enforce", "passed"),
    (Check::TrustedIdentity, "enforce", "passed"),
    (Check::Expiry, "enforce", "passed"),
    (Check::AuthenticTimestamp, "enforce", "passed"),
    (Check::Revocation, "enforce", "passed"),
    (Check::TargetArtifact, "enforce", "passed"),
];

// ---------------------------------------------------------------------------
// Valid signatures
// ---------------------------------------------------------------------------

#[test]
fn valid_cose_and_jws_with_three_certificate_chain() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    for format in FORMATS {
        let blob = fx.sign(spec_now(), format);
        let now = pullgate_testkit::time::now();
        let verdict = Policy::strict().decide_at(&stores, now, &target(), from_ref(&blob));
        let v = verified(&verdict);
        assert_eq!(v.statement(), "net-monitor");
        assert_eq!(v.level(), pullgate::policy::LevelName::Strict);
        let report = v.report();
        assert_eq!(report.manifest_digest, blob.manifest.digest.to_string());
        let expected_format = match format {
            Format::Cose => "cose",
            Format::Jws => "jws",
        };
        assert_eq!(report.format, Some(expected_format));
        assert_eq!(report.algorithm.as_deref(), Some("PS384"));
        assert_eq!(report.signing_scheme, Some("notary.x509"));
        assert_eq!(report.signer.as_deref(), Some(LEAF_SUBJECT));
        assert_eq!(check_rows(report), ALL_PASSED_STRICT);
        assert!(report.failed_check().is_none());
        assert_eq!(logged(report), vec![]);
        assert_local_clock(report, now);
    }
}

#[test]
fn valid_signing_authority() {
    let fx = Fx::new();
    let stores = fx.signing_authority_stores();
    let signed_at = epoch_secs(pullgate_testkit::time::now());
    for format in FORMATS {
        let spec = EnvelopeSpec {
            authentic_signing_time: Some(signed_at),
            ..EnvelopeSpec::signing_authority()
        };
        let blob = fx.sign(spec, format);
        let policy = Policy::strict().stores(vec!["signingAuthority:acme-sa"]);
        let verdict = policy.decide(&stores, from_ref(&blob));
        let report = verified(&verdict).report();
        assert_eq!(report.signing_scheme, Some("notary.x509.signingAuthority"));
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(signed_at as u64);
        assert_eq!(
            report.time_source,
            Some(TimeSource::SigningAuthority { time })
        );
        assert_eq!(check_rows(report), ALL_PASSED_STRICT);

        // The same envelope under a policy with only a `ca` store: the scheme
        // selects `signingAuthority` stores and finds none.
        let verdict = Policy::strict().decide(&fx.stores(None), from_ref(&blob));
        let failure = failed(&verdict, Check::Authenticity);
        assert_eq!(
            failure,
            SignatureFailure::NoTrustedCertificates {
                store_type: StoreType::SigningAuthority
            }
        );

        // A notary.x509 signature is not trusted through a signingAuthority store.
        let x509 = fx.sign(spec_now(), format);
        let verdict = policy.decide(&stores, &[x509]);
        assert_eq!(
            failed(&verdict, Check::Authenticity),
            SignatureFailure::NoTrustedCertificates {
                store_type: StoreType::Ca
            }
        );
    }
}

#[test]
fn signing_authority_time_outside_certificate_validity() {
    // authenticSigningTime before the leaf's notBefore (now − 1 h): the authentic
    // timestamp check fails with the signing-authority time named.
    let fx = Fx::new();
    let stores = fx.signing_authority_stores();
    let policy = Policy::strict().stores(vec!["signingAuthority:acme-sa"]);
    let early = pullgate_testkit::time::now() - hours(24 * 3);
    for format in FORMATS {
        let spec = EnvelopeSpec {
            authentic_signing_time: Some(epoch_secs(early)),
            ..EnvelopeSpec::signing_authority()
        };
        let verdict = policy.decide(&stores, &[fx.sign(spec, format)]);
        let failure = failed(&verdict, Check::AuthenticTimestamp);
        assert_leaf_time(&failure, early, "not valid before");
    }
}

#[test]
fn two_and_one_certificate_chains_and_trust_through_the_intermediate() {
    let fx = Fx::new();
    // root → leaf (2 certificates).
    let leaf = fx.pki.issue(&fx.leaf_spec(), &fx.chain.root);
    // A self-signed code-signing leaf (1 certificate) trusted as itself.
    let selfsigned = fx.pki.self_signed(&fx.leaf_spec().slot(6));
    let stores = vec![
        store(StoreType::Ca, "acme", &[&fx.chain.root]),
        store(StoreType::Ca, "self", &[&selfsigned]),
        store(StoreType::Ca, "mid", &[&fx.chain.intermediate]),
    ];
    for format in FORMATS {
        let two = fx.sign_with(
            &leaf,
            vec![leaf.der.clone(), fx.chain.root.der.clone()],
            spec_now(),
            format,
        );
        let verdict = Policy::strict().decide(&stores, &[two]);
        assert_eq!(check_rows(verified(&verdict).report()), ALL_PASSED_STRICT);

        let one = fx.sign_with(
            &selfsigned,
            vec![selfsigned.der.clone()],
            spec_now(),
            format,
        );
        let policy = Policy::strict().stores(vec!["ca:self"]);
        let verdict = policy.decide(&stores, from_ref(&one));
        assert_eq!(check_rows(verified(&verdict).report()), ALL_PASSED_STRICT);
        // ... and untrusted by the acme store.
        let verdict = Policy::strict().decide(&stores, &[one]);
        assert_eq!(
            failed(&verdict, Check::Authenticity),
            SignatureFailure::Untrusted {
                store_type: StoreType::Ca
            }
        );

        // A store holding only the intermediate trusts the 3-certificate chain
        // (any certificate of the chain in the store, NOTARY.md §4).
        let three = fx.sign(spec_now(), format);
        let policy = Policy::strict().stores(vec!["ca:mid"]);
        verified(&policy.decide(&stores, &[three]));
    }
}

#[test]
fn two_certificate_chain_missing_its_root_is_an_integrity_failure() {
    // leaf + intermediate without the root: the last certificate is not self-signed.
    let fx = Fx::new();
    let stores = fx.stores(None);
    for format in FORMATS {
        let blob = fx.sign_with(
            &fx.chain.leaf,
            vec![fx.chain.leaf.der.clone(), fx.chain.intermediate.der.clone()],
            spec_now(),
            format,
        );
        let failure = failed(&Policy::strict().decide(&stores, &[blob]), Check::Integrity);
        assert!(matches!(failure, SignatureFailure::Chain(_)), "{failure:?}");
        assert_text(&failure, "root certificate");
        assert_text(&failure, "Test Intermediate");
    }
}

#[test]
fn every_algorithm_and_key_size_in_both_formats() {
    let fx = Fx::new();
    // EC leaves under an EC CA (P-384 root → P-256 intermediate), RSA leaves under
    // the RSA-3072 chain: certificate signatures of both families are checked too.
    let ec_root = fx.pki.self_signed(
        &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=EC Root")
            .key(KeySpec::P384)
            .slot(0),
    );
    let ec_mid = fx.pki.issue(
        &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=EC Intermediate")
            .key(KeySpec::P256)
            .slot(1),
        &ec_root,
    );
    let stores = vec![store(StoreType::Ca, "acme", &[&fx.chain.root, &ec_root])];
    for key in KeySpec::ALL {
        let (issuer, root) = if key.is_rsa() {
            (&fx.chain.intermediate, &fx.chain.root)
        } else {
            (&ec_mid, &ec_root)
        };
        let leaf = fx.pki.issue(&fx.leaf_spec().key(key), issuer);
        let chain = vec![leaf.der.clone(), issuer.der.clone(), root.der.clone()];
        for format in FORMATS {
            let blob = fx.sign_with(&leaf, chain.clone(), spec_now(), format);
            let verdict = Policy::strict().decide(&stores, &[blob]);
            let report = verified(&verdict).report();
            assert_eq!(
                report.algorithm.as_deref(),
                Some(key.algorithm().to_string().as_str()),
                "{key:?} {format:?}"
            );
            assert_eq!(check_rows(report), ALL_PASSED_STRICT, "{key:?} {format:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Integrity
// ---------------------------------------------------------------------------

#[test]
fn wrong_alg_header_is_an_algorithm_mismatch() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let p256 = fx.leaf(&fx.leaf_spec().key(KeySpec::P256));
    let rsa2048 = fx.leaf(&fx.leaf_spec().key(KeySpec::Rsa2048));
    // (leaf, header alg, algorithm the leaf key implies). The signature itself is
    // made with the key's algorithm: the header/key check must catch it regardless.
    let cases: [(&Issued, &str, &str); 4] = [
        (&fx.chain.leaf, "PS256", "PS384"),
        (&fx.chain.leaf, "PS512", "PS384"),
        (&p256, "ES384", "ES256"),
        (&rsa2048, "ES256", "PS256"),
    ];
    for (leaf, header, key) in cases {
        for format in FORMATS {
            let spec = EnvelopeSpec {
                alg: header.into(),
                certificate_chain: fx.chain_der(leaf),
                ..spec_now()
            };
            let bytes = spec.build(format, &|tbs| {
                fx.pki.sign(&leaf.key_path, leaf.key.algorithm(), tbs)
            });
            let verdict = Policy::strict().decide(&stores, &[blob(format, bytes)]);
            let failure = failed(&verdict, Check::Integrity);
            assert_eq!(
                failure,
                SignatureFailure::AlgorithmMismatch {
                    header: header.into(),
                    key: key.into()
                },
                "{header} with {key} key, {format:?}"
            );
        }
    }
}

#[test]
fn tampered_payload_does_not_verify() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let leaf = &fx.chain.leaf;
    for format in FORMATS {
        let signed = fx.ps384_spec();
        // The payload names another digest; the signature is over the original.
        let tampered = EnvelopeSpec {
            target: Target {
                digest: format!("sha256:{}", "ab".repeat(32)),
                ..Target::default()
            },
            ..signed.clone()
        };
        let signature = fx.pki.sign(
            &leaf.key_path,
            leaf.key.algorithm(),
            &signed.to_be_signed(format),
        );
        let bytes = tampered.build(format, &|_| signature.clone());
        let verdict = Policy::strict().decide(&stores, &[blob(format, bytes)]);
        let failure = failed(&verdict, Check::Integrity);
        assert_eq!(failure, bad_signature());
    }
}

#[test]
fn tampered_signature_does_not_verify() {
    let fx = Fx::new();
    let stores = vec![store(StoreType::Ca, "acme", &[&fx.chain.root])];
    let p384 = fx.leaf(&fx.leaf_spec().key(KeySpec::P384));
    for leaf in [&fx.chain.leaf, &p384] {
        for format in FORMATS {
            let verdict = Policy::strict().decide(&stores, &[tampered_by(&fx, leaf, format)]);
            assert_eq!(
                failed(&verdict, Check::Integrity),
                bad_signature(),
                "{:?} {format:?}",
                leaf.key
            );
        }
    }
}

#[test]
fn pss_salt_length_cose_requires_hash_length_jws_accepts_any() {
    // go-cose verifies RSASSA-PSS with salt = hash length only; the JWT library
    // behind JWS accepts any salt (NOTARY.md §3).
    let fx = Fx::new();
    let stores = fx.stores(None);
    let leaf = &fx.chain.leaf;
    for format in FORMATS {
        let bytes = fx.ps384_spec().build(format, &|tbs| {
            fx.pki
                .sign_with_salt(&leaf.key_path, leaf.key.algorithm(), tbs, "max")
        });
        let verdict = Policy::strict().decide(&stores, &[blob(format, bytes)]);
        match format {
            Format::Cose => assert_eq!(failed(&verdict, Check::Integrity), bad_signature()),
            Format::Jws => assert_eq!(check_rows(verified(&verdict).report()), ALL_PASSED_STRICT),
        }
    }
}

#[test]
fn untagged_cose_is_rejected() {
    let fx = Fx::new();
    let spec = EnvelopeSpec {
        untagged_cose: true,
        ..spec_now()
    };
    let verdict = Policy::strict().decide(&fx.stores(None), &[fx.sign(spec, Format::Cose)]);
    let failure = failed(&verdict, Check::Integrity);
    assert!(
        matches!(failure, SignatureFailure::Envelope(_)),
        "{failure:?}"
    );
    assert_text(&failure, "not a tagged COSE_Sign1 (CBOR tag 18)");
}

#[test]
fn padded_jws_members_are_rejected() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    for (member, name) in [
        (JwsMember::Protected, "protected"),
        (JwsMember::Payload, "payload"),
        (JwsMember::Signature, "signature"),
    ] {
        // Padding is only written when the member's length is not a multiple of
        // 3 bytes. The RSA-3072 signature is 384 bytes, so the signature case uses a
        // P-256 leaf (64 bytes); the header and payload grow until they need it.
        let leaf = if member == JwsMember::Signature {
            fx.leaf(&fx.leaf_spec().key(KeySpec::P256))
        } else {
            fx.chain.leaf.clone()
        };
        let mut spec = EnvelopeSpec {
            alg: leaf.key.algorithm().to_string(),
            jws_padded: Some(member),
            ..spec_now()
        };
        let mut pad = String::new();
        while (member == JwsMember::Protected && spec.jws_protected_json().len() % 3 == 0)
            || (member == JwsMember::Payload && spec.target.payload_json().len() % 3 == 0)
        {
            pad.push('x');
            spec.extended_attributes = vec![("io.example.pad".into(), pad.clone())];
            spec.target.annotations = vec![("pad".into(), pad.clone())];
        }
        let chain = fx.chain_der(&leaf);
        let blob = fx.sign_with(&leaf, chain, spec, Format::Jws);
        let verdict = Policy::strict().decide(&stores, &[blob]);
        let failure = failed(&verdict, Check::Integrity);
        assert!(
            matches!(failure, SignatureFailure::Envelope(_)),
            "{failure:?}"
        );
        assert_text(&failure, "padded base64url");
        assert_text(&failure, name);
    }
}

#[test]
fn unknown_critical_header_is_rejected_and_unknown_non_critical_is_ignored() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    for format in FORMATS {
        let critical = EnvelopeSpec {
            extended_attributes: vec![("io.example.policy".into(), "v1".into())],
            critical_attributes: vec!["io.example.policy".into()],
            ..spec_now()
        };
        let verdict = Policy::strict().decide(&stores, &[fx.sign(critical, format)]);
        let failure = failed(&verdict, Check::Integrity);
        assert_eq!(
            failure.to_string(),
            "invalid signature envelope: unknown critical extended attribute \"io.example.policy\""
        );

        let informational = EnvelopeSpec {
            extended_attributes: vec![("io.example.policy".into(), "v1".into())],
            ..spec_now()
        };
        verified(&Policy::strict().decide(&stores, &[fx.sign(informational, format)]));
    }
}

#[test]
fn unsupported_envelope_media_type() {
    let fx = Fx::new();
    let mut blob = fx.sign(spec_now(), Format::Jws);
    blob.media_type = "application/json".into();
    let verdict = Policy::strict().decide(&fx.stores(None), &[blob]);
    assert_eq!(
        failed(&verdict, Check::Integrity),
        SignatureFailure::UnsupportedEnvelopeType("application/json".into())
    );
}

// ---------------------------------------------------------------------------
// Certificate rules on the leaf / CA (integrity)
// ---------------------------------------------------------------------------

#[test]
fn bad_leaf_key_usage_eku_and_basic_constraints() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let base = fx.leaf_spec();
    let cases: Vec<(&str, CertSpec, &str)> = vec![
        (
            "keyUsage not critical",
            base.clone().key_usage(Some("digitalSignature")),
            "keyUsage must be critical",
        ),
        (
            "keyUsage missing",
            base.clone().key_usage(None),
            "has no keyUsage extension",
        ),
        (
            "keyUsage without digitalSignature",
            base.clone().key_usage(Some("critical,nonRepudiation")),
            "keyUsage must include digitalSignature",
        ),
        (
            "keyUsage keyEncipherment",
            base.clone()
                .key_usage(Some("critical,digitalSignature,keyEncipherment")),
            "keyUsage must not include keyEncipherment",
        ),
        (
            "keyUsage keyCertSign",
            base.clone()
                .key_usage(Some("critical,digitalSignature,keyCertSign")),
            "keyUsage must not include keyCertSign",
        ),
        (
            "EKU serverAuth",
            base.clone().eku(Some("codeSigning,serverAuth")),
            "extended key usage must not contain",
        ),
        (
            "EKU timeStamping",
            base.clone().eku(Some("timeStamping")),
            "extended key usage must not contain",
        ),
        (
            "basicConstraints CA:TRUE",
            base.clone().basic_constraints(Some("critical,CA:TRUE")),
            "has basicConstraints cA=true",
        ),
    ];
    for (id, spec, needle) in cases {
        let leaf = fx.leaf(&spec);
        for format in FORMATS {
            let blob = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), format);
            let verdict = Policy::strict().decide(&stores, &[blob]);
            let failure = chain_failure(&verdict, id, needle);
            assert_text(&failure, "Test Leaf");
        }
    }
    // contentCommitment next to digitalSignature and an unknown EKU are allowed.
    let leaf = fx.leaf(
        &base
            .clone()
            .key_usage(Some("critical,digitalSignature,nonRepudiation"))
            .eku(Some("codeSigning,1.3.6.1.4.1.55555.9")),
    );
    for format in FORMATS {
        let blob = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), format);
        verified(&Policy::strict().decide(&stores, &[blob]));
    }
}

#[test]
fn bad_intermediate_basic_constraints_and_key_usage() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let bad = || {
        CertSpec::ca("/C=US/ST=WA/O=Notary/CN=Bad Intermediate")
            .key(KeySpec::Rsa3072)
            .slot(1)
    };
    let cases: Vec<(&str, CertSpec, &str)> = vec![
        (
            "intermediate CA:FALSE",
            bad().basic_constraints(Some("critical,CA:FALSE")),
            "not allowed to sign certificates",
        ),
        (
            "intermediate pathlen:0 above another intermediate",
            bad().basic_constraints(Some("critical,CA:TRUE,pathlen:0")),
            "pathLenConstraint 0",
        ),
        (
            "intermediate keyUsage without keyCertSign",
            bad().key_usage(Some("critical,cRLSign")),
            "\"CN=Bad Intermediate,O=Notary,ST=WA,C=US\" is not allowed to sign certificates",
        ),
    ];
    for (id, spec, needle) in cases {
        let bad = fx.pki.issue(&spec, &fx.chain.root);
        // For the pathlen case a second intermediate sits under the bad one.
        let (issuer, mut chain) = if id.contains("pathlen") {
            let lower = fx.pki.issue(
                &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=Lower Intermediate")
                    .key(KeySpec::Rsa3072)
                    .slot(7),
                &bad,
            );
            let chain = vec![lower.der.clone(), bad.der.clone()];
            (lower, chain)
        } else {
            (bad.clone(), vec![bad.der.clone()])
        };
        let leaf = fx.pki.issue(&fx.leaf_spec(), &issuer);
        chain.insert(0, leaf.der.clone());
        chain.push(fx.chain.root.der.clone());
        for format in FORMATS {
            let blob = fx.sign_with(&leaf, chain.clone(), spec_now(), format);
            let verdict = Policy::strict().decide(&stores, &[blob]);
            chain_failure(&verdict, id, needle);
        }
    }
}

// ---------------------------------------------------------------------------
// Target artifact
// ---------------------------------------------------------------------------

#[test]
fn target_digest_size_and_media_type_mismatch_fail_at_strict_and_audit() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let signed = Target::default();
    let other_digest = Target {
        digest: format!("sha256:{}", "cd".repeat(32)),
        ..Target::default()
    };
    let other_size = Target {
        size: signed.size + 1,
        ..Target::default()
    };
    let other_type = Target {
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        ..Target::default()
    };
    for format in FORMATS {
        let blob = fx.sign(spec_now(), format);
        for (id, artifact) in [
            ("digest", &other_digest),
            ("size", &other_size),
            ("mediaType", &other_type),
        ] {
            for level in ["strict", "audit"] {
                let verdict = Policy::strict().level(level).decide_at(
                    &stores,
                    pullgate_testkit::time::now(),
                    &descriptor(artifact),
                    from_ref(&blob),
                );
                let failure = failed(&verdict, Check::TargetArtifact);
                assert_eq!(
                    failure,
                    SignatureFailure::TargetMismatch {
                        signed: format!(
                            "{} {} ({} bytes)",
                            signed.media_type, signed.digest, signed.size
                        ),
                        target: format!(
                            "{} {} ({} bytes)",
                            artifact.media_type, artifact.digest, artifact.size
                        ),
                    },
                    "{id} at {level}, {format:?}"
                );
                assert_text(&failure, "content descriptor mismatch");
            }
        }
        // Annotations and artifactType of the signed descriptor are not compared.
        let annotated = EnvelopeSpec {
            target: Target {
                annotations: vec![("io.example.build".into(), "42".into())],
                artifact_type: Some("application/vnd.example".into()),
                ..Target::default()
            },
            ..spec_now()
        };
        verified(&Policy::strict().decide(&stores, &[fx.sign(annotated, format)]));
    }
}

// ---------------------------------------------------------------------------
// Authenticity and identity
// ---------------------------------------------------------------------------

#[test]
fn untrusted_root_fails_at_strict_and_is_logged_at_audit() {
    let fx = Fx::new();
    let other_root = fx
        .pki
        .self_signed(&CertSpec::ca("/C=US/ST=WA/O=Other/CN=Other Root").slot(5));
    let stores = vec![store(StoreType::Ca, "acme", &[&other_root])];
    for format in FORMATS {
        let blob = fx.sign(spec_now(), format);
        let verdict = Policy::strict().decide(&stores, from_ref(&blob));
        let failure = failed(&verdict, Check::Authenticity);
        assert_eq!(
            failure,
            SignatureFailure::Untrusted {
                store_type: StoreType::Ca
            }
        );
        assert_text(
            &failure,
            "does not chain to any certificate in the ca trust stores",
        );

        let verdict = Policy::strict().level("audit").decide(&stores, &[blob]);
        let report = verified_logging(&verdict, Check::Authenticity, &failure);
        assert_check(
            report,
            Check::TrustedIdentity,
            CheckAction::Log,
            CheckOutcome::Passed,
        );
    }
}

#[test]
fn identity_mismatch_and_match() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    for format in FORMATS {
        let blob = fx.sign(spec_now(), format);
        let policy = Policy::strict().identities(vec![
            "x509.subject: C=US, ST=WA, O=Wabbit Networks, CN=Test Leaf",
        ]);
        let verdict = policy.decide(&stores, from_ref(&blob));
        let failure = failed(&verdict, Check::TrustedIdentity);
        assert!(
            matches!(failure, SignatureFailure::Identity(_)),
            "{failure:?}"
        );
        assert_text(&failure, "does not match the X.509 trusted identities");
        assert_text(&failure, "O=Wabbit Networks");

        // Logged at audit.
        let verdict = policy
            .clone()
            .level("audit")
            .decide(&stores, from_ref(&blob));
        verified_logging(&verdict, Check::TrustedIdentity, &failure);

        // A subset of the leaf DN, in another order, matches.
        let policy = Policy::strict().identities(vec![
            "x509.subject: O=Wabbit Networks, ST=WA, C=US",
            "x509.subject: CN=Test Leaf, O=Notary, ST=WA, C=US",
        ]);
        verified(&policy.decide(&stores, &[blob]));
    }
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

/// A signature of `format` made two minutes before `now` whose envelope expired a
/// minute before `now`, and that expiry. Whole seconds, as the envelope carries
/// it; recent enough that the certificates (valid from now − 1 h) are valid a
/// second before it.
fn expired_a_minute_before(
    fx: &Fx,
    now: SystemTime,
    format: Format,
) -> (SignatureBlob, SystemTime) {
    let expiry = whole_secs(now - Duration::from_secs(60));
    let spec = EnvelopeSpec {
        signing_time: Some(epoch_secs(now - Duration::from_secs(120))),
        expiry: Some(epoch_secs(expiry)),
        ..EnvelopeSpec::default()
    };
    (fx.sign(spec, format), expiry)
}

#[test]
fn expired_envelope_fails_at_strict_and_is_logged_at_permissive() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let now = pullgate_testkit::time::now();
    for format in FORMATS {
        let (blob, expiry) = expired_a_minute_before(&fx, now, format);
        let verdict = Policy::strict().decide_at(&stores, now, &target(), from_ref(&blob));
        let failure = failed(&verdict, Check::Expiry);
        assert_eq!(failure, SignatureFailure::Expired { expiry });
        let verdict = Policy::strict().level("permissive").decide_at(
            &stores,
            now,
            &target(),
            from_ref(&blob),
        );
        verified_logging(&verdict, Check::Expiry, &failure);
        // Verified just before the expiry instant; expired exactly at it.
        let before = expiry - Duration::from_secs(1);
        verified(&Policy::strict().decide_at(&stores, before, &target(), from_ref(&blob)));
        failed(
            &Policy::strict().decide_at(&stores, expiry, &target(), &[blob]),
            Check::Expiry,
        );
    }
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// A leaf valid from now − 1 d to now + 1 h, issued by the chain's intermediate.
fn short_lived_leaf(fx: &Fx) -> Issued {
    fx.leaf(
        &fx.leaf_spec()
            .validity(days_from_now(-1), pullgate_testkit::time::now() + hours(1)),
    )
}

#[test]
fn expired_leaf_with_valid_timestamp_is_allowed() {
    let fx = Fx::new();
    let tsa = fx.tsa();
    let stores = fx.stores(Some(&tsa));
    let leaf = short_lived_leaf(&fx);
    for format in FORMATS {
        let before = pullgate_testkit::time::now();
        let blob = fx.sign_timestamped(&leaf, fx.chain_der(&leaf), spec_now(), format, &tsa);
        let after = pullgate_testkit::time::now();
        let later = pullgate_testkit::time::now() + hours(2);
        let verdict = Policy::strict()
            .with_tsa()
            .decide_at(&stores, later, &target(), &[blob]);
        let report = verified(&verdict).report();
        assert_eq!(check_rows(report), ALL_PASSED_STRICT);
        assert_tsa_time(report, before, after);
    }
}

#[test]
fn expired_leaf_without_timestamp_is_denied() {
    let fx = Fx::new();
    let tsa = fx.tsa();
    let stores = fx.stores(Some(&tsa));
    let leaf = short_lived_leaf(&fx);
    let later = pullgate_testkit::time::now() + hours(2);
    for format in FORMATS {
        // No token, tsa store in the policy: the timestamp is required.
        let blob = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), format);
        let verdict = Policy::strict()
            .with_tsa()
            .decide_at(&stores, later, &target(), &[blob]);
        assert_eq!(
            failed(&verdict, Check::AuthenticTimestamp),
            SignatureFailure::Timestamp(TimestampFailure::NoCountersignature)
        );

        // A valid token, but no tsa store in the policy: the token is not used and
        // the leaf must be valid now.
        let blob = fx.sign_timestamped(&leaf, fx.chain_der(&leaf), spec_now(), format, &tsa);
        let verdict = Policy::strict().decide_at(&stores, later, &target(), from_ref(&blob));
        let failure = failed(&verdict, Check::AuthenticTimestamp);
        assert_leaf_time(&failure, later, "expired at");
        // Logged under permissive, with the local clock as time source.
        let verdict =
            Policy::strict()
                .level("permissive")
                .decide_at(&stores, later, &target(), &[blob]);
        let report = verified_logging(&verdict, Check::AuthenticTimestamp, &failure);
        assert_local_clock(report, later);
    }
}

#[test]
fn timestamp_from_an_untrusted_tsa() {
    let fx = Fx::new();
    let tsa = fx.tsa();
    // The tsa store holds a different TSA root.
    let other = fx
        .pki
        .self_signed(&CertSpec::ca("/C=US/O=Other TSA/CN=Other TSA Root").slot(5));
    let stores = vec![
        store(StoreType::Ca, "acme", &[&fx.chain.root]),
        store(StoreType::Tsa, "stamps", &[&other]),
    ];
    for format in FORMATS {
        let blob = fx.sign_timestamped(
            &fx.chain.leaf,
            fx.chain_der(&fx.chain.leaf),
            spec_now(),
            format,
            &tsa,
        );
        let verdict = Policy::strict().with_tsa().decide(&stores, &[blob]);
        assert_eq!(
            failed(&verdict, Check::AuthenticTimestamp),
            SignatureFailure::Timestamp(TimestampFailure::UntrustedChain)
        );
    }
}

#[test]
fn timestamp_over_other_bytes() {
    let fx = Fx::new();
    let tsa = fx.tsa();
    let stores = fx.stores(Some(&tsa));
    let leaf = &fx.chain.leaf;
    for format in FORMATS {
        // A genuine token from the trusted TSA, but over other data, spliced in.
        let token = fx
            .pki
            .timestamp_token(&tsa, b"some other signature bytes", "sha256");
        let spec = EnvelopeSpec {
            timestamp_token: Some(token),
            ..spec_now()
        };
        let blob = fx.sign_with(leaf, fx.chain_der(leaf), spec, format);
        let verdict = Policy::strict().with_tsa().decide(&stores, &[blob]);
        let failure = failed(&verdict, Check::AuthenticTimestamp);
        assert!(
            matches!(failure, SignatureFailure::Timestamp(_)),
            "{failure:?}"
        );
        assert_text(
            &failure,
            "message imprint does not match the signature bytes",
        );
    }
}

#[test]
fn timestamp_outside_the_leaf_validity() {
    let fx = Fx::new();
    let tsa = fx.tsa();
    let stores = fx.stores(Some(&tsa));
    // genTime is now (openssl stamps with the current clock), so the windows are
    // relative to now: one leaf not yet valid, one already expired at genTime.
    let not_yet = fx.leaf(&fx.leaf_spec().validity(days_from_now(1), days_from_now(10)));
    let expired = fx.leaf(
        &fx.leaf_spec()
            .validity(days_from_now(-10), days_from_now(-1)),
    );
    for (id, leaf, verify_at) in [
        ("not yet valid", &not_yet, days_from_now(2)),
        ("expired", &expired, pullgate_testkit::time::now()),
    ] {
        for format in FORMATS {
            let blob = fx.sign_timestamped(leaf, fx.chain_der(leaf), spec_now(), format, &tsa);
            let verdict =
                Policy::strict()
                    .with_tsa()
                    .decide_at(&stores, verify_at, &target(), &[blob]);
            let failure = failed(&verdict, Check::AuthenticTimestamp);
            let SignatureFailure::OutsideTimestamp {
                subject,
                accuracy,
                not_before,
                not_after,
                ..
            } = &failure
            else {
                panic!("{id}: expected OutsideTimestamp, got {failure:?}");
            };
            assert_eq!(subject, LEAF_SUBJECT, "{id}");
            assert_eq!(accuracy.as_millis(), 1500, "{id}");
            assert!(
                failure.to_string().contains("± 1500 ms (timestamp)"),
                "{id}: {failure}"
            );
            let cert = leaf.cert();
            assert_eq!(
                (*not_before, *not_after),
                (cert.not_before(), cert.not_after()),
                "{id}"
            );
        }
    }
}

#[test]
fn verify_timestamp_after_cert_expiry() {
    let fx = Fx::new();
    let tsa = fx.tsa();
    let stores = fx.stores(Some(&tsa));
    let leaf = short_lived_leaf(&fx);
    let policy = Policy::strict()
        .with_tsa()
        .verify_timestamp("afterCertExpiry");
    let garbage = EnvelopeSpec {
        timestamp_token: Some(b"not a timestamp token".to_vec()),
        ..spec_now()
    };
    for format in FORMATS {
        let bad = fx.sign_with(&leaf, fx.chain_der(&leaf), garbage.clone(), format);
        let missing = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), format);
        let before = pullgate_testkit::time::now();
        let good = fx.sign_timestamped(&leaf, fx.chain_der(&leaf), spec_now(), format, &tsa);
        let after = pullgate_testkit::time::now();

        // Chain not expired: the token is not looked at, the local clock decides.
        let now = pullgate_testkit::time::now();
        for blob in [&bad, &missing] {
            let verdict = policy.decide_at(&stores, now, &target(), from_ref(blob));
            let report = verified(&verdict).report();
            assert_eq!(check_rows(report), ALL_PASSED_STRICT);
            assert_local_clock(report, now);
        }
        // ... whereas `always` checks it even then.
        let verdict =
            Policy::strict()
                .with_tsa()
                .decide_at(&stores, now, &target(), from_ref(&bad));
        let failure = failed(&verdict, Check::AuthenticTimestamp);
        assert_text(&failure, "failed to parse timestamp countersignature");

        // Chain expired: the token is checked.
        let later = pullgate_testkit::time::now() + hours(2);
        let verdict = policy.decide_at(&stores, later, &target(), &[bad]);
        let failure = failed(&verdict, Check::AuthenticTimestamp);
        assert!(
            matches!(failure, SignatureFailure::Timestamp(_)),
            "{failure:?}"
        );
        assert_text(&failure, "failed to parse timestamp countersignature");
        let verdict = policy.decide_at(&stores, later, &target(), &[missing]);
        assert_eq!(
            failed(&verdict, Check::AuthenticTimestamp),
            SignatureFailure::Timestamp(TimestampFailure::NoCountersignature)
        );
        let verdict = policy.decide_at(&stores, later, &target(), &[good]);
        assert_tsa_time(verified(&verdict).report(), before, after);
    }
}

#[test]
fn tsa_certificates_are_judged_at_gen_time_and_by_the_tsa_rules() {
    let fx = Fx::new();
    let leaf = short_lived_leaf(&fx);
    let later = pullgate_testkit::time::now() + hours(2);
    let tsa_root = fx.pki.self_signed(
        &CertSpec::ca("/C=US/O=Test TSA/CN=Test TSA Root")
            .key(KeySpec::Rsa2048)
            .slot(3),
    );
    let tsa_leaf = |spec: CertSpec| fx.pki.issue(&spec.key(KeySpec::Rsa2048), &tsa_root);
    let base = CertSpec::tsa_leaf("/C=US/O=Test TSA/CN=Test TSA");
    // (id, TSA leaf, expected failure text; None = verified)
    let cases: Vec<(&str, Issued, Option<&str>)> = vec![
        (
            // Valid at genTime (now), expired at the verification time: fine.
            "TSA leaf expired since",
            tsa_leaf(
                base.clone()
                    .validity(days_from_now(-1), pullgate_testkit::time::now() + hours(1)),
            ),
            None,
        ),
        (
            "TSA leaf not yet valid at genTime",
            tsa_leaf(base.clone().validity(days_from_now(1), days_from_now(10))),
            Some("timestamp certificate not valid at the timestamp's genTime"),
        ),
        // A TSA leaf breaking the EKU rules cannot sign here: `openssl ts -reply`
        // refuses a signer without a critical timeStamping EKU ("invalid signer
        // certificate purpose"); tests/timestamp.rs covers those rules.
    ];
    let stores = vec![
        store(StoreType::Ca, "acme", &[&fx.chain.root]),
        store(StoreType::Tsa, "stamps", &[&tsa_root]),
    ];
    for (id, tsa_leaf, expected) in cases {
        let tsa = fx.pki.tsa_from(tsa_root.clone(), tsa_leaf);
        for format in FORMATS {
            let before = pullgate_testkit::time::now();
            let blob = fx.sign_timestamped(&leaf, fx.chain_der(&leaf), spec_now(), format, &tsa);
            let after = pullgate_testkit::time::now();
            let verdict = Policy::strict()
                .with_tsa()
                .decide_at(&stores, later, &target(), &[blob]);
            match expected {
                None => assert_tsa_time(verified(&verdict).report(), before, after),
                Some(needle) => {
                    let failure = failed(&verdict, Check::AuthenticTimestamp);
                    assert!(
                        matches!(failure, SignatureFailure::Timestamp(_)),
                        "{id}: {failure:?}"
                    );
                    assert_text(&failure, needle);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Revocation
// ---------------------------------------------------------------------------

const CRL_DP: &str = "crlDistributionPoints = URI:http://127.0.0.1:9/x.crl";

#[test]
fn revocation_endpoints_fail_closed_when_enforced() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let leaf = fx.leaf(&fx.leaf_spec().extra(CRL_DP));
    for format in FORMATS {
        let blob = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), format);

        let verdict = Policy::strict().decide(&stores, from_ref(&blob));
        let failure = failed(&verdict, Check::Revocation);
        assert_eq!(
            failure,
            SignatureFailure::RevocationUnavailable {
                subject: LEAF_SUBJECT.into()
            }
        );
        assert_text(&failure, "revocation checking not available");

        // Logged by override (and by the permissive level).
        for policy in [
            Policy::strict().set("revocation", "log"),
            Policy::strict().level("permissive"),
        ] {
            let verdict = policy.decide(&stores, from_ref(&blob));
            let report = verified_logging(&verdict, Check::Revocation, &failure);
            assert_eq!(
                check_of(report, Check::Revocation).outcome,
                CheckOutcome::Failed
            );
        }

        // Skipped by override: recorded as skipped, never as passed.
        let verdict = Policy::strict()
            .set("revocation", "skip")
            .decide(&stores, &[blob]);
        let report = verified(&verdict).report();
        assert_check(
            report,
            Check::Revocation,
            CheckAction::Skip,
            CheckOutcome::Skipped,
        );
        assert_eq!(logged(report), vec![]);
    }
}

#[test]
fn revocation_endpoints_on_the_intermediate_and_the_root() {
    let fx = Fx::new();
    // An intermediate naming an OCSP responder makes the chain revocable.
    let ocsp_mid = fx.pki.issue(
        &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=OCSP Intermediate")
            .key(KeySpec::Rsa3072)
            .slot(1)
            .extra("authorityInfoAccess = OCSP;URI:http://127.0.0.1:9/ocsp"),
        &fx.chain.root,
    );
    let leaf = fx.pki.issue(&fx.leaf_spec(), &ocsp_mid);
    // A root with a CRL distribution point: the root is never checked (NOTARY.md §7).
    let crl_root = fx.pki.self_signed(
        &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=CRL Root")
            .slot(5)
            .extra(CRL_DP),
    );
    let crl_root_leaf = fx.pki.issue(&fx.leaf_spec(), &crl_root);
    let stores = vec![store(StoreType::Ca, "acme", &[&fx.chain.root, &crl_root])];
    for format in FORMATS {
        let blob = fx.sign_with(
            &leaf,
            vec![
                leaf.der.clone(),
                ocsp_mid.der.clone(),
                fx.chain.root.der.clone(),
            ],
            spec_now(),
            format,
        );
        let verdict = Policy::strict().decide(&stores, &[blob]);
        assert_eq!(
            failed(&verdict, Check::Revocation),
            SignatureFailure::RevocationUnavailable {
                subject: "CN=OCSP Intermediate,O=Notary,ST=WA,C=US".into()
            }
        );

        let blob = fx.sign_with(
            &crl_root_leaf,
            vec![crl_root_leaf.der.clone(), crl_root.der.clone()],
            spec_now(),
            format,
        );
        let verdict = Policy::strict().decide(&stores, &[blob]);
        assert_check(
            verified(&verdict).report(),
            Check::Revocation,
            CheckAction::Enforce,
            CheckOutcome::Passed,
        );
    }
}

// ---------------------------------------------------------------------------
// Levels and overrides
// ---------------------------------------------------------------------------

#[test]
fn each_level_records_its_actions() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let blob = fx.sign(spec_now(), Format::Cose);
    let rows = |a: [&'static str; 7]| -> Vec<(Check, &'static str, &'static str)> {
        [
            Check::Integrity,
            Check::Authenticity,
            Check::TrustedIdentity,
            Check::Expiry,
            Check::AuthenticTimestamp,
            Check::Revocation,
            Check::TargetArtifact,
        ]
        .into_iter()
        .zip(a)
        .map(|(c, action)| (c, action, "passed"))
        .collect()
    };
    let (e, l) = ("enforce", "log");
    for (level, name, actions) in [
        (
            "strict",
            pullgate::policy::LevelName::Strict,
            [e, e, e, e, e, e, e],
        ),
        (
            "permissive",
            pullgate::policy::LevelName::Permissive,
            [e, e, e, l, l, l, e],
        ),
        (
            "audit",
            pullgate::policy::LevelName::Audit,
            [e, l, l, l, l, l, e],
        ),
    ] {
        let verdict = Policy::strict()
            .level(level)
            .decide(&stores, from_ref(&blob));
        let v = verified(&verdict);
        assert_eq!(v.level(), name);
        assert_eq!(check_rows(v.report()), rows(actions), "{level}");
    }

    // skip: nothing is verified, not even a signature that would fail integrity or
    // the absence of signatures.
    let mut broken = blob.clone();
    broken.envelope.truncate(10);
    for (blobs, listed) in [(vec![broken], 1), (vec![], 0)] {
        let verdict = Policy::strict().level("skip").decide_listed(
            &stores,
            pullgate_testkit::time::now(),
            &target(),
            &blobs,
            listed,
        );
        let Verdict::Skipped { statement } = verdict else {
            panic!("expected Skipped, got {verdict:?}");
        };
        assert_eq!(statement, "net-monitor");
    }
}

#[test]
fn integrity_is_enforced_at_every_level() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let mut broken = fx.sign(spec_now(), Format::Jws);
    broken.envelope.truncate(broken.envelope.len() / 2);
    for level in ["strict", "permissive", "audit"] {
        let verdict = Policy::strict()
            .level(level)
            .decide(&stores, from_ref(&broken));
        let failure = failed(&verdict, Check::Integrity);
        assert!(
            matches!(failure, SignatureFailure::Envelope(_)),
            "{level}: {failure:?}"
        );
    }
}

#[test]
fn authenticity_override() {
    let fx = Fx::new();
    let other_root = fx
        .pki
        .self_signed(&CertSpec::ca("/C=US/ST=WA/O=Other/CN=Other Root").slot(5));
    let stores = vec![store(StoreType::Ca, "acme", &[&other_root])];
    let blob = fx.sign(spec_now(), Format::Cose);
    let untrusted = SignatureFailure::Untrusted {
        store_type: StoreType::Ca,
    };

    let verdict = Policy::strict()
        .set("authenticity", "log")
        .decide(&stores, from_ref(&blob));
    let report = verified_logging(&verdict, Check::Authenticity, &untrusted);
    assert_eq!(
        check_of(report, Check::TrustedIdentity).action,
        CheckAction::Log
    );

    let verdict = Policy::strict()
        .level("audit")
        .set("authenticity", "enforce")
        .decide(&stores, &[blob]);
    assert_eq!(failed(&verdict, Check::Authenticity), untrusted);
}

#[test]
fn authentic_timestamp_override() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let leaf = short_lived_leaf(&fx);
    let later = pullgate_testkit::time::now() + hours(2);
    let blob = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), Format::Jws);

    let verdict = Policy::strict().set("authenticTimestamp", "log").decide_at(
        &stores,
        later,
        &target(),
        from_ref(&blob),
    );
    let report = verified(&verdict).report();
    let entries = logged(report);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, Check::AuthenticTimestamp);
    assert!(entries[0].1.contains("expired at"), "{}", entries[0].1);

    let verdict = Policy::strict()
        .level("permissive")
        .set("authenticTimestamp", "enforce")
        .decide_at(&stores, later, &target(), &[blob]);
    let failure = failed(&verdict, Check::AuthenticTimestamp);
    assert!(
        matches!(failure, SignatureFailure::CertificateTime { .. }),
        "{failure:?}"
    );
}

#[test]
fn expiry_override() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let now = pullgate_testkit::time::now();
    let (blob, expiry) = expired_a_minute_before(&fx, now, Format::Cose);
    let expired = SignatureFailure::Expired { expiry };

    let verdict =
        Policy::strict()
            .set("expiry", "log")
            .decide_at(&stores, now, &target(), from_ref(&blob));
    verified_logging(&verdict, Check::Expiry, &expired);

    let verdict = Policy::strict()
        .level("audit")
        .set("expiry", "enforce")
        .decide_at(&stores, now, &target(), &[blob]);
    assert_eq!(failed(&verdict, Check::Expiry), expired);
}

#[test]
fn revocation_override_enforce_at_audit() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let leaf = fx.leaf(&fx.leaf_spec().extra(CRL_DP));
    let blob = fx.sign_with(&leaf, fx.chain_der(&leaf), spec_now(), Format::Cose);
    let verdict = Policy::strict()
        .level("audit")
        .set("revocation", "enforce")
        .decide(&stores, &[blob]);
    assert_eq!(
        failed(&verdict, Check::Revocation),
        SignatureFailure::RevocationUnavailable {
            subject: LEAF_SUBJECT.into()
        }
    );
}

// ---------------------------------------------------------------------------
// Several signatures
// ---------------------------------------------------------------------------

/// A signature that fails integrity (one flipped signature bit).
fn tampered(fx: &Fx, format: Format) -> SignatureBlob {
    tampered_by(fx, &fx.chain.leaf, format)
}

/// A signature by `leaf` (with the standard chain) with one signature bit
/// flipped, so it fails integrity.
fn tampered_by(fx: &Fx, leaf: &Issued, format: Format) -> SignatureBlob {
    let spec = EnvelopeSpec {
        alg: leaf.key.algorithm().to_string(),
        certificate_chain: fx.chain_der(leaf),
        ..spec_now()
    };
    let bytes = spec.build(format, &|tbs| {
        let mut sig = fx.pki.sign(&leaf.key_path, leaf.key.algorithm(), tbs);
        // The low byte of r (ECDSA) / a middle byte (RSA): stays in range.
        let mid = sig.len() / 2 - 1;
        sig[mid] ^= 0x01;
        sig
    });
    blob(format, bytes)
}

/// An intact, trusted, current signature for another digest.
fn for_other_digest(fx: &Fx, format: Format) -> SignatureBlob {
    let spec = EnvelopeSpec {
        target: Target {
            digest: format!("sha256:{}", "ef".repeat(32)),
            ..Target::default()
        },
        ..spec_now()
    };
    fx.sign(spec, format)
}

#[test]
fn only_the_last_of_several_signatures_is_good() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let good = fx.sign(spec_now(), Format::Jws);
    let blobs = vec![
        tampered(&fx, Format::Cose),
        for_other_digest(&fx, Format::Jws),
        good.clone(),
    ];
    let verdict = Policy::strict().decide(&stores, &blobs);
    let report = verified(&verdict).report();
    assert_eq!(report.manifest_digest, good.manifest.digest.to_string());
    assert_eq!(report.format, Some("jws"));

    // With two good signatures the first wins.
    let first = fx.sign(spec_now(), Format::Cose);
    let verdict = Policy::strict().decide(&stores, &[first.clone(), good]);
    assert_eq!(
        verified(&verdict).report().manifest_digest,
        first.manifest.digest.to_string()
    );
}

#[test]
fn signature_budget_exceeded() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let bad = vec![
        tampered(&fx, Format::Cose),
        tampered(&fx, Format::Jws),
        tampered(&fx, Format::Cose),
    ];
    let policy = Policy::strict().max_signatures(2);
    let verdict = policy.decide(&stores, &bad);
    let Verdict::Failed {
        reason, signatures, ..
    } = &verdict
    else {
        panic!("expected Failed, got {verdict:?}");
    };
    assert!(
        matches!(reason, VerificationError::SignatureLimit { limit: 2 }),
        "{reason:?}"
    );
    assert_eq!(
        reason.to_string(),
        "signature evaluation stopped. The configured limit of 2 signatures to verify was reached; none of those passed"
    );
    assert_eq!(signatures.len(), 2, "only the budget's worth was tried");
    for (report, blob) in signatures.iter().zip(&bad) {
        assert_eq!(report.manifest_digest, blob.manifest.digest.to_string());
        assert_eq!(report.failed_check().map(|f| f.0), Some(Check::Integrity));
    }

    // A good third signature beyond the budget is never tried.
    let mut with_good = bad[..2].to_vec();
    with_good.push(fx.sign(spec_now(), Format::Cose));
    let verdict = policy.decide(&stores, &with_good);
    assert!(
        matches!(
            verdict,
            Verdict::Failed {
                reason: VerificationError::SignatureLimit { limit: 2 },
                ..
            }
        ),
        "{verdict:?}"
    );
    // Within the budget the ordinary reason is given.
    let verdict = policy.decide(&stores, &bad[..2]);
    failed(&verdict, Check::Integrity);
}

#[test]
fn no_signatures() {
    let fx = Fx::new();
    let verdict = Policy::strict().decide(&fx.stores(None), &[]);
    let Verdict::Failed {
        reason,
        statement,
        signatures,
    } = &verdict
    else {
        panic!("expected Failed, got {verdict:?}");
    };
    assert!(
        matches!(reason, VerificationError::NoSignature { reference } if *reference == self::reference()),
        "{reason:?}"
    );
    assert_text_error(
        reason,
        "no signature is associated with registry.example.com/net-monitor@sha256:",
    );
    assert_eq!(statement, "net-monitor");
    assert!(signatures.is_empty());
}

#[track_caller]
fn assert_text_error(error: &VerificationError, needle: &str) {
    let text = error.to_string();
    assert!(
        text.contains(needle),
        "{text:?} does not contain {needle:?}"
    );
}

#[test]
fn most_specific_failure_across_signatures() {
    let fx = Fx::new();
    let stores = fx.stores(None);
    let other_root = fx
        .pki
        .self_signed(&CertSpec::ca("/C=US/ST=WA/O=Other/CN=Other Root").slot(5));
    let untrusted_leaf = fx.pki.issue(&fx.leaf_spec(), &other_root);
    let untrusted = fx.sign_with(
        &untrusted_leaf,
        vec![untrusted_leaf.der.clone(), other_root.der.clone()],
        spec_now(),
        Format::Jws,
    );
    let mismatch = for_other_digest(&fx, Format::Cose);
    let broken = tampered(&fx, Format::Jws);

    // Integrity failure first or last, the target mismatch is the reason.
    for blobs in [
        vec![broken.clone(), mismatch.clone()],
        vec![mismatch.clone(), broken.clone()],
        vec![untrusted.clone(), mismatch.clone(), broken.clone()],
    ] {
        let verdict = Policy::strict().decide(&stores, &blobs);
        let Verdict::Failed {
            reason, signatures, ..
        } = &verdict
        else {
            panic!("expected Failed, got {verdict:?}");
        };
        let VerificationError::SignatureFailed { check, failure } = reason else {
            panic!("expected SignatureFailed, got {reason:?}");
        };
        assert_eq!(*check, Check::TargetArtifact);
        assert!(
            matches!(failure, SignatureFailure::TargetMismatch { .. }),
            "{failure:?}"
        );
        assert!(reason
            .to_string()
            .starts_with("target artifact check failed: content descriptor mismatch"));
        // Every signature's own failure is kept, in order.
        assert_eq!(signatures.len(), blobs.len());
        for (report, blob) in signatures.iter().zip(&blobs) {
            assert_eq!(report.manifest_digest, blob.manifest.digest.to_string());
            assert!(report.failed_check().is_some());
        }
    }

    // Untrusted beats broken.
    let verdict = Policy::strict().decide(&stores, &[broken.clone(), untrusted]);
    let Verdict::Failed { reason, .. } = &verdict else {
        panic!("expected Failed, got {verdict:?}");
    };
    assert!(
        matches!(
            reason,
            VerificationError::SignatureFailed {
                check: Check::Authenticity,
                failure: SignatureFailure::Untrusted {
                    store_type: StoreType::Ca
                }
            }
        ),
        "{reason:?}"
    );

    // Equally specific failures (both integrity): the first one is reported.
    let untagged = fx.sign(
        EnvelopeSpec {
            untagged_cose: true,
            ..spec_now()
        },
        Format::Cose,
    );
    let bad_signature = bad_signature();
    for (blobs, first_is_signature) in [
        (vec![broken.clone(), untagged.clone()], true),
        (vec![untagged, broken], false),
    ] {
        let verdict = Policy::strict().decide(&stores, &blobs);
        let failure = match &verdict {
            Verdict::Failed {
                reason: VerificationError::SignatureFailed { check, failure },
                ..
            } => {
                assert_eq!(*check, Check::Integrity);
                failure
            }
            other => panic!("expected an integrity failure, got {other:?}"),
        };
        if first_is_signature {
            assert_eq!(*failure, bad_signature);
        } else {
            assert!(
                matches!(failure, SignatureFailure::Envelope(_) if failure.to_string().contains("CBOR tag 18")),
                "{failure:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// One signature at a time (`verify::verify_signatures` over a `SignatureSource`)
// ---------------------------------------------------------------------------

/// A signature source over blobs in memory that records every fetch, and can
/// fail the fetch of one index.
struct CountingSource {
    blobs: Vec<SignatureBlob>,
    fail_at: Option<usize>,
    listings: std::sync::Mutex<usize>,
    fetched: std::sync::Mutex<Vec<usize>>,
}

impl CountingSource {
    fn new(blobs: Vec<SignatureBlob>) -> CountingSource {
        CountingSource {
            blobs,
            fail_at: None,
            listings: Default::default(),
            fetched: Default::default(),
        }
    }

    fn fetched(&self) -> Vec<usize> {
        self.fetched.lock().unwrap().clone()
    }
}

impl pullgate::verify::SignatureSource for CountingSource {
    type Error = String;

    async fn signature_manifests(&self, _target: &Descriptor) -> Result<Vec<Descriptor>, String> {
        *self.listings.lock().unwrap() += 1;
        Ok(self.blobs.iter().map(|b| b.manifest.clone()).collect())
    }

    async fn signature(
        &self,
        manifest: &Descriptor,
        _budgets: &Budgets,
    ) -> Result<SignatureBlob, String> {
        let index = self
            .blobs
            .iter()
            .position(|b| b.manifest.digest == manifest.digest)
            .expect("a listed manifest");
        self.fetched.lock().unwrap().push(index);
        if self.fail_at == Some(index) {
            return Err(format!("fetching signature {index} failed"));
        }
        Ok(self.blobs[index].clone())
    }
}

impl Policy {
    /// A judge over this policy (its stores `stores`), as the gate and the CLI
    /// build one.
    fn judge(&self, stores: Vec<TrustStore>) -> pullgate::verify::Judge {
        self.judge_named(stores, "net-monitor")
            .expect("the fixture policy names net-monitor")
    }

    /// A judge under the statement called `name`, if the policy has one.
    fn judge_named(
        &self,
        stores: Vec<TrustStore>,
        name: &str,
    ) -> Result<pullgate::verify::Judge, pullgate::verify::NoSuchStatement> {
        let json = self.json();
        let document = TrustPolicyDocument::parse(json.as_bytes()).expect("fixture policy");
        let policy = std::sync::Arc::new(pullgate::policy_dir::PolicyDir {
            document,
            stores,
            policy_file: "trustpolicy.json".into(),
            fingerprint: pullgate::verdict::Fingerprint::from_hex("0123456789abcdef"),
        });
        pullgate::verify::Judge::new(
            policy,
            name,
            pullgate_testkit::time::now(),
            self.budgets.clone(),
        )
    }
}

fn run_source(source: &CountingSource, judge: &pullgate::verify::Judge) -> Result<Verdict, String> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(pullgate::verify::verify_signatures(
            source,
            judge,
            &reference(),
            &target(),
        ))
}

/// Valid signatures for another artifact (they fail the target artifact check),
/// alternating formats, each distinct.
fn for_another_artifact(fx: &Fx, n: usize) -> Vec<SignatureBlob> {
    (0..n)
        .map(|i| {
            let spec = EnvelopeSpec {
                target: Target {
                    size: Target::default().size + 1 + i as u64,
                    ..Target::default()
                },
                ..spec_now()
            };
            fx.sign(spec, FORMATS[i % 2])
        })
        .collect()
}

#[test]
fn one_at_a_time_stops_at_the_first_signature_that_passes() {
    let fx = Fx::new();
    let mut blobs = for_another_artifact(&fx, 2);
    blobs.push(fx.sign(spec_now(), Format::Jws));
    blobs.extend(for_another_artifact(&fx, 3));
    let source = CountingSource::new(blobs.clone());
    let verdict = run_source(&source, &Policy::strict().judge(fx.stores(None))).unwrap();
    assert_eq!(
        verified(&verdict).report().manifest_digest,
        blobs[2].manifest.digest.to_string()
    );
    // The two before it were fetched and judged; none after it was fetched.
    assert_eq!(source.fetched(), vec![0, 1, 2]);
    assert_eq!(*source.listings.lock().unwrap(), 1);
    // The same decision as the engine's over everything fetched up front.
    verified(&Policy::strict().decide(&fx.stores(None), &blobs));
}

#[test]
fn one_at_a_time_reports_every_failed_signature_like_decide() {
    let fx = Fx::new();
    let blobs = for_another_artifact(&fx, 3);
    let source = CountingSource::new(blobs.clone());
    let verdict = run_source(&source, &Policy::strict().judge(fx.stores(None))).unwrap();
    let Verdict::Failed {
        reason, signatures, ..
    } = &verdict
    else {
        panic!("expected Failed, got {verdict:?}")
    };
    // The most specific failure among them, as `decide` chooses it: the first's.
    assert_eq!(
        reason.to_string(),
        format!(
            "target artifact check failed: content descriptor mismatch: the signature is for \
             {media} {digest} ({} bytes), the artifact is {media} {digest} ({} bytes)",
            Target::default().size + 1,
            Target::default().size,
            media = Target::default().media_type,
            digest = Target::default().digest,
        )
    );
    let digests: Vec<_> = signatures
        .iter()
        .map(|s| s.manifest_digest.clone())
        .collect();
    let expected: Vec<_> = blobs
        .iter()
        .map(|b| b.manifest.digest.to_string())
        .collect();
    assert_eq!(digests, expected);
    assert_eq!(source.fetched(), vec![0, 1, 2]);
    let Verdict::Failed {
        reason: up_front, ..
    } = Policy::strict().decide(&fx.stores(None), &blobs)
    else {
        panic!("decide must fail too")
    };
    assert_eq!(up_front.to_string(), reason.to_string());
}

#[test]
fn one_at_a_time_a_fetch_error_ends_the_verification_and_skips_nothing() {
    let fx = Fx::new();
    let mut blobs = for_another_artifact(&fx, 1);
    blobs.push(fx.sign(spec_now(), Format::Cose));
    blobs.push(fx.sign(spec_now(), Format::Jws));
    let mut source = CountingSource::new(blobs);
    source.fail_at = Some(1);
    let error = run_source(&source, &Policy::strict().judge(fx.stores(None)))
        .expect_err("a failed fetch is no verdict");
    assert!(error == "fetching signature 1 failed", "{error:?}");
    // The valid signature after the failed fetch was not tried instead.
    assert_eq!(source.fetched(), vec![0, 1]);
}

#[test]
fn one_at_a_time_fetches_no_more_than_the_attempt_limit() {
    let fx = Fx::new();
    let mut blobs = for_another_artifact(&fx, 3);
    blobs.push(fx.sign(spec_now(), Format::Cose));
    let mut policy = Policy::strict();
    policy.budgets.max_signature_attempts = 2;
    let source = CountingSource::new(blobs);
    let verdict = run_source(&source, &policy.judge(fx.stores(None))).unwrap();
    assert!(
        matches!(
            &verdict,
            Verdict::Failed {
                reason: VerificationError::SignatureLimit { limit: 2 },
                ..
            }
        ),
        "{verdict:?}"
    );
    assert_eq!(source.fetched(), vec![0, 1]);
}

#[test]
fn one_at_a_time_skip_lists_nothing_and_none_listed_is_no_signature() {
    let fx = Fx::new();
    let source = CountingSource::new(vec![fx.sign(spec_now(), Format::Cose)]);
    let verdict = run_source(&source, &Policy::strict().level("skip").judge(Vec::new())).unwrap();
    assert!(matches!(&verdict, Verdict::Skipped { statement } if statement == "net-monitor"));
    assert_eq!(*source.listings.lock().unwrap(), 0);
    assert!(source.fetched().is_empty());

    let empty = CountingSource::new(Vec::new());
    let verdict = run_source(&empty, &Policy::strict().judge(fx.stores(None))).unwrap();
    assert!(
        matches!(
            &verdict,
            Verdict::Failed {
                reason: VerificationError::NoSignature { .. },
                ..
            }
        ),
        "{verdict:?}"
    );
    assert_eq!(*empty.listings.lock().unwrap(), 1);
}

#[test]
fn one_at_a_time_a_statement_missing_from_the_policy_is_no_verdict() {
    let fx = Fx::new();
    let source = CountingSource::new(vec![fx.sign(spec_now(), Format::Cose)]);
    let error = Policy::strict()
        .judge_named(fx.stores(None), "gone")
        .err()
        .expect("no such statement");
    assert_eq!(
        error.to_string(),
        "the trust policy has no statement named \"gone\""
    );
    assert_eq!(*source.listings.lock().unwrap(), 0);
}
