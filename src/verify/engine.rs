//! The verification of one signature and the decision over all of an artifact's
//! signatures (NOTARY.md §8), as numbered steps. Pure: the caller passes the
//! fetched envelopes, the loaded policy and the verification time.

use std::sync::Arc;
use std::time::SystemTime;

pub use crate::pki::time::rfc3339;

use serde::Serialize;

use super::oci::Descriptor;
use super::{Budgets, SignatureBlob};
use crate::envelope::{self, EnvelopeFormat, SignatureEnvelope, SigningScheme};
use crate::pki::timestamp::TimestampToken;
use crate::pki::{self, Certificate, PssSaltPolicy};
use crate::policy::{
    CheckAction, LevelName, StoreType, TrustPolicyStatement, TrustStore, VerifyTimestamp,
};
use crate::revocation::{CertCheck, ChainCheck, ChainQuery, Purpose, RevocationCheck};

/// The checks of NOTARY.md §8, in the order they run. Each has one name per
/// audience: [`Check::as_str`] for people (`trusted identity`), [`Check::label`]
/// for metrics and image labels (`trusted_identity`), and its serde name in JSON
/// (`trustedIdentity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    Integrity,
    Authenticity,
    TrustedIdentity,
    Expiry,
    AuthenticTimestamp,
    Revocation,
    TargetArtifact,
}

impl Check {
    /// The name in text a person reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Integrity => "integrity",
            Check::Authenticity => "authenticity",
            Check::TrustedIdentity => "trusted identity",
            Check::Expiry => "expiry",
            Check::AuthenticTimestamp => "authentic timestamp",
            Check::Revocation => "revocation",
            Check::TargetArtifact => "target artifact",
        }
    }

    /// The name in metrics labels and in the `io.pullgate.failed-checks` label.
    pub fn label(self) -> &'static str {
        match self {
            Check::Integrity => "integrity",
            Check::Authenticity => "authenticity",
            Check::TrustedIdentity => "trusted_identity",
            Check::Expiry => "expiry",
            Check::AuthenticTimestamp => "authentic_timestamp",
            Check::Revocation => "revocation",
            Check::TargetArtifact => "target_artifact",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Why one signature failed one check. Failures of the layers below keep their
/// typed error as the source (shared, so that a report can be cloned).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureFailure {
    #[error(
        "signature envelope media type {0:?} is not application/cose or application/jose+json"
    )]
    UnsupportedEnvelopeType(String),
    #[error("invalid signature envelope: {0}")]
    Envelope(#[source] Arc<envelope::EnvelopeError>),
    /// The worker verifying the signature ended without a report (it panicked).
    #[error(
        "invalid signature envelope: the verification of this signature did not complete: {why}"
    )]
    Incomplete { why: String },
    #[error("invalid certificate chain: {0}")]
    Chain(#[source] Arc<pki::PkiError>),
    #[error("invalid certificate chain: empty certificate chain")]
    EmptyChain,
    #[error("signature algorithm {header} in the envelope does not match the signing key ({key})")]
    AlgorithmMismatch { header: String, key: String },
    #[error("signature does not verify: {0}")]
    Signature(#[source] Arc<pki::PkiError>),
    #[error("the trust policy names no {store_type} trust store with certificates")]
    NoTrustedCertificates { store_type: StoreType },
    #[error("the signing certificate chain does not chain to any certificate in the {store_type} trust stores of the policy")]
    Untrusted { store_type: StoreType },
    #[error("{0}")]
    Identity(#[source] Arc<crate::policy::PolicyError>),
    #[error("signature expired at {}", rfc3339(*.expiry))]
    Expired { expiry: SystemTime },
    #[error("{0}")]
    Timestamp(#[source] TimestampFailure),
    /// A certificate is not valid at the time the chain is checked against.
    #[error("certificate {subject} is not valid at {}: {reason}", rfc3339(*.at))]
    CertificateTime {
        subject: String,
        at: SystemTime,
        #[source]
        reason: Arc<pki::PkiError>,
    },
    /// A signing certificate is not valid over the whole window of a timestamp
    /// (genTime ± accuracy).
    #[error(
        "certificate {subject} is not valid at {} ± {} ms (timestamp): valid only from {} to {}",
        rfc3339(*.gen_time),
        .accuracy.as_millis(),
        rfc3339(*.not_before),
        rfc3339(*.not_after)
    )]
    OutsideTimestamp {
        subject: String,
        gen_time: SystemTime,
        accuracy: std::time::Duration,
        not_before: SystemTime,
        not_after: SystemTime,
    },
    #[error("revocation checking not available: certificate {subject} names revocation endpoints and this verification has no revocation checker")]
    RevocationUnavailable { subject: String },
    /// A certificate is revoked, or its status is unknown (NOTARY.md §7).
    #[error("{}", .0.summary())]
    Revocation(Box<CertCheck>),
    #[error(
        "content descriptor mismatch: the signature is for {signed}, the artifact is {target}"
    )]
    TargetMismatch { signed: String, target: String },
}

/// Two failures are equal when they are of the same kind and say the same: typed
/// sources compare by their messages.
impl PartialEq for SignatureFailure {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for SignatureFailure {}

/// Why the authentic-timestamp check failed (NOTARY.md §6).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampFailure {
    #[error("authenticSigningTime is missing")]
    SigningTimeMissing,
    #[error("no timestamp countersignature was found in the signature envelope")]
    NoCountersignature,
    #[error("failed to parse timestamp countersignature: {0}")]
    Parse(#[source] Arc<pki::timestamp::TimestampError>),
    #[error("timestamp countersignature does not verify: {0}")]
    Verify(#[source] Arc<pki::timestamp::TimestampError>),
    #[error("timestamp certificate: {0}")]
    Certificate(#[source] Arc<pki::PkiError>),
    #[error(
        "the timestamp's certificate chain does not end in a certificate of the tsa trust stores"
    )]
    UntrustedChain,
    #[error("invalid timestamp certificate chain: {0}")]
    Chain(#[source] Arc<pki::PkiError>),
    #[error("timestamp certificate not valid at the timestamp's genTime: {0}")]
    NotValidAtGenTime(#[source] Arc<pki::PkiError>),
    #[error("timestamp signingTime is outside the TSA certificate's validity: {0}")]
    SigningTimeOutsideTsa(#[source] Arc<pki::PkiError>),
    /// A certificate of the timestamping authority's chain is revoked or unknown.
    #[error("timestamping authority chain: {}", .0.summary())]
    Revocation(Box<CertCheck>),
}

/// How a check ended for one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckOutcome {
    Passed,
    Failed,
    Skipped,
    NotApplicable,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Passed => "passed",
            CheckOutcome::Failed => "failed",
            CheckOutcome::Skipped => "skipped",
            CheckOutcome::NotApplicable => "notApplicable",
        }
    }
}

impl std::fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How a check ended for one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub check: Check,
    /// What the policy's level does with a failure of this check.
    #[serde(serialize_with = "serialize_display")]
    pub action: CheckAction,
    pub outcome: CheckOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn serialize_display<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn serialize_rfc3339<S: serde::Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*time))
}

/// Which clock the certificate validity checks used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TimeSource {
    /// An RFC 3161 timestamp countersignature, checked against the `tsa` store.
    TimestampAuthority {
        #[serde(serialize_with = "serialize_rfc3339")]
        gen_time: SystemTime,
        accuracy_ms: u64,
        tsa: String,
    },
    /// The signing authority's authenticSigningTime.
    SigningAuthority {
        #[serde(serialize_with = "serialize_rfc3339")]
        time: SystemTime,
    },
    /// The verification time (the local clock, or the time given to the verifier).
    LocalClock {
        #[serde(serialize_with = "serialize_rfc3339")]
        time: SystemTime,
    },
}

impl TimeSource {
    /// The short form in the gate's audit line: `timestamp authority (<genTime>)`.
    pub fn brief(&self) -> String {
        match self {
            TimeSource::TimestampAuthority { gen_time, .. } => {
                format!("timestamp authority ({})", rfc3339(*gen_time))
            }
            TimeSource::SigningAuthority { time } => {
                format!("signing authority ({})", rfc3339(*time))
            }
            TimeSource::LocalClock { time } => format!("local clock ({})", rfc3339(*time)),
        }
    }
}

/// The long form, in `pullgate verify --verbose`.
impl std::fmt::Display for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeSource::TimestampAuthority {
                gen_time,
                accuracy_ms,
                tsa,
            } => write!(
                f,
                "timestamp authority {tsa}, genTime {} ± {accuracy_ms} ms",
                rfc3339(*gen_time)
            ),
            TimeSource::SigningAuthority { time } => {
                write!(
                    f,
                    "signing authority, authenticSigningTime {}",
                    rfc3339(*time)
                )
            }
            TimeSource::LocalClock { time } => write!(f, "local clock, {}", rfc3339(*time)),
        }
    }
}

/// What happened to one signature.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureReport {
    pub manifest_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_scheme: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_source: Option<TimeSource>,
    /// How each certificate of the signing chain was checked for revocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation: Option<ChainCheck>,
    /// The same for the timestamping authority's chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_revocation: Option<ChainCheck>,
    pub checks: Vec<CheckResult>,
    /// The enforced failure that rejected this signature, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(skip)]
    failed: Option<(Check, SignatureFailure)>,
    /// The first instant after the verification time at which this report's
    /// outcome may change: the signature's expiry, or the earliest notAfter of the
    /// signing chain when the certificates were checked against the clock (no
    /// timestamp or signing authority time covers them). `None`: no such instant.
    #[serde(skip)]
    valid_until: Option<SystemTime>,
}

impl SignatureReport {
    /// A report for a signature whose verification did not complete (the
    /// worker running it panicked): a failed integrity check, so it never passes.
    pub fn incomplete(manifest: &Descriptor, why: String) -> SignatureReport {
        let mut report = SignatureReport::new(manifest);
        record(
            &mut report,
            Check::Integrity,
            CheckAction::Enforce,
            Err(SignatureFailure::Incomplete { why }),
        );
        report
    }

    fn new(manifest: &Descriptor) -> SignatureReport {
        SignatureReport {
            manifest_digest: manifest.digest.to_string(),
            format: None,
            algorithm: None,
            signing_scheme: None,
            signer: None,
            time_source: None,
            revocation: None,
            timestamp_revocation: None,
            checks: Vec::new(),
            failure: None,
            failed: None,
            valid_until: None,
        }
    }

    /// The enforced failure, with the check it failed.
    pub fn failed_check(&self) -> Option<&(Check, SignatureFailure)> {
        self.failed.as_ref()
    }

    /// The first instant after the verification time at which this outcome may
    /// change (see the field); a verdict based on it must not be reused past it.
    pub fn valid_until(&self) -> Option<SystemTime> {
        self.valid_until
    }

    /// Checks that failed but were only logged (audit/permissive, overrides).
    pub fn logged_failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Failed && c.action == CheckAction::Log)
    }
}

/// A signature that passed every enforced check. Only this module constructs it,
/// so nothing unverified can be taken for verified.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    report: SignatureReport,
    statement: String,
    level: LevelName,
}

impl VerifiedSignature {
    pub fn report(&self) -> &SignatureReport {
        &self.report
    }
    pub fn statement(&self) -> &str {
        &self.statement
    }
    pub fn level(&self) -> LevelName {
        self.level
    }
}

/// Why an artifact as a whole was not verified.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationError {
    #[error("no signature is associated with {reference}, make sure the artifact was signed successfully")]
    NoSignature { reference: String },
    #[error("{check} check failed: {failure}")]
    SignatureFailed {
        check: Check,
        #[source]
        failure: SignatureFailure,
    },
    #[error("signature evaluation stopped. The configured limit of {limit} signatures to verify was reached; none of those passed")]
    SignatureLimit { limit: usize },
}

/// The decision over all of an artifact's signatures.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The policy's level is `skip`: nothing was verified (NOTARY.md §5 levels).
    Skipped {
        statement: String,
    },
    Verified(Box<VerifiedSignature>),
    Failed {
        reason: VerificationError,
        statement: String,
        signatures: Vec<SignatureReport>,
    },
}

/// Everything one verification needs besides the signatures.
pub struct Verifier<'a> {
    pub statement: &'a TrustPolicyStatement,
    /// The loaded trust stores (at least those the statement names).
    pub stores: &'a [TrustStore],
    /// The verification time: certificate validity, expiry and timestamp
    /// decisions are made as of this instant.
    pub now: SystemTime,
    pub budgets: &'a Budgets,
}

impl Verifier<'_> {
    /// Decides over `signatures` (already listed and fetched, in order) for the
    /// artifact `target`. A level of `skip` is decided by the caller before any
    /// fetch; it is honoured here too. `super::verify_signatures` makes the same
    /// decision fetching one signature at a time.
    pub fn decide(
        &self,
        reference: &str,
        target: &Descriptor,
        signatures: &[SignatureBlob],
        total_listed: usize,
    ) -> Verdict {
        if let Some(verdict) = self.before_signatures(reference, total_listed) {
            return verdict;
        }
        let mut reports = Vec::new();
        for blob in signatures.iter().take(self.budgets.max_signature_attempts) {
            if let Some(verdict) = self.accept(self.verify_one(target, blob), &mut reports) {
                return verdict;
            }
        }
        self.conclude(reports, total_listed)
    }

    /// The verdict that needs no signature: `skip`, or none listed. `None`: the
    /// listed signatures must be judged, in order, each with `accept`.
    pub fn before_signatures(&self, reference: &str, total_listed: usize) -> Option<Verdict> {
        let statement = self.statement.name.clone();
        if self.statement.level.name == LevelName::Skip {
            return Some(Verdict::Skipped { statement });
        }
        (total_listed == 0).then(|| Verdict::Failed {
            reason: VerificationError::NoSignature {
                reference: reference.to_owned(),
            },
            statement,
            signatures: Vec::new(),
        })
    }

    /// The first signature that passed every enforced check decides (NOTARY.md
    /// §8, as notation stops at the first); a failed one is kept in `failed` for
    /// `conclude`.
    pub fn accept(
        &self,
        report: SignatureReport,
        failed: &mut Vec<SignatureReport>,
    ) -> Option<Verdict> {
        if report.failed.is_some() {
            failed.push(report);
            return None;
        }
        Some(Verdict::Verified(Box::new(VerifiedSignature {
            report,
            statement: self.statement.name.clone(),
            level: self.statement.level.name,
        })))
    }

    /// The verdict when none of the signatures tried (`reports`, out of
    /// `total_listed`) passed.
    pub fn conclude(&self, reports: Vec<SignatureReport>, total_listed: usize) -> Verdict {
        let reason = if total_listed > self.budgets.max_signature_attempts {
            VerificationError::SignatureLimit {
                limit: self.budgets.max_signature_attempts,
            }
        } else {
            most_specific(&reports)
        };
        Verdict::Failed {
            reason,
            statement: self.statement.name.clone(),
            signatures: reports,
        }
    }

    /// Verifies one signature through every check of NOTARY.md §8, without a
    /// revocation checker: a certificate that names a revocation endpoint then
    /// fails an enforced revocation check (it cannot be checked).
    pub fn verify_one(&self, target: &Descriptor, blob: &SignatureBlob) -> SignatureReport {
        self.verify_one_with(target, blob, None)
    }

    /// Verifies one signature through every check of NOTARY.md §8, checking
    /// revocation (NOTARY.md §7) with `revocation` when given.
    pub fn verify_one_with(
        &self,
        target: &Descriptor,
        blob: &SignatureBlob,
        revocation: Option<&dyn RevocationCheck>,
    ) -> SignatureReport {
        let mut report = SignatureReport::new(&blob.manifest);
        let level = &self.statement.level;

        // 1. Integrity (never overridable): parse, chain shape, key ↔ alg, signature.
        let (parsed, chain) = match integrity(blob) {
            Ok(ok) => ok,
            Err(failure) => {
                record(
                    &mut report,
                    Check::Integrity,
                    CheckAction::Enforce,
                    Err(failure),
                );
                return report;
            }
        };
        report.describe(&parsed, &chain);
        record(&mut report, Check::Integrity, CheckAction::Enforce, Ok(()));

        // 2. Authenticity: some certificate of the chain is in a store of the
        //    scheme's type (NOTARY.md §4 "Authenticity").
        let store_type = match parsed.signing_scheme {
            SigningScheme::X509 => StoreType::Ca,
            SigningScheme::X509SigningAuthority => StoreType::SigningAuthority,
        };
        let authenticity = self.authenticity(&chain, store_type);
        if !record(
            &mut report,
            Check::Authenticity,
            level.authenticity,
            authenticity,
        ) {
            return report;
        }
        // 3. Trusted identity, enforced as authenticity is (NOTARY.md §5).
        let identity = match chain.first() {
            Some(leaf) => self
                .statement
                .trusted_identities
                .matches_leaf(leaf.der())
                .map_err(|e| SignatureFailure::Identity(Arc::new(e))),
            None => Err(SignatureFailure::EmptyChain),
        };
        if !record(
            &mut report,
            Check::TrustedIdentity,
            level.authenticity,
            identity,
        ) {
            return report;
        }

        // 4. Expiry.
        let expiry = match parsed.expiry {
            Some(expiry) if self.now >= expiry => Err(SignatureFailure::Expired { expiry }),
            _ => Ok(()),
        };
        if !record(&mut report, Check::Expiry, level.expiry, expiry) {
            return report;
        }

        // 5. Authentic timestamp (NOTARY.md §6).
        let (timestamp, tsa_chain) = self.timestamp_step(&mut report, &parsed, &chain, revocation);
        if !record(
            &mut report,
            Check::AuthenticTimestamp,
            level.authentic_timestamp,
            timestamp,
        ) {
            return report;
        }

        // 6. Revocation (NOTARY.md §7): every certificate but the root, against
        //    its issuer. Without a checker a certificate that names an endpoint
        //    cannot be checked and fails (fail closed when enforced).
        if level.revocation == CheckAction::Skip {
            skip(&mut report, Check::Revocation);
        } else {
            let revocation = match revocation {
                Some(checker) => self.revocation_step(&mut report, &parsed, &chain, checker),
                None => unchecked_revocation(&chain, &tsa_chain),
            };
            if !record(&mut report, Check::Revocation, level.revocation, revocation) {
                return report;
            }
        }

        // 7. The signed descriptor must be the artifact (at every level).
        record(
            &mut report,
            Check::TargetArtifact,
            CheckAction::Enforce,
            target_artifact(&parsed.target_artifact, target),
        );
        report
    }

    /// Step 5: the authentic timestamp, the timestamping authority's chain checked
    /// for revocation too (CRLs, as notation does; a failure there fails
    /// authenticTimestamp), and what the outcome rests on that the clock will end.
    /// Returns the check's result and the TSA chain.
    fn timestamp_step(
        &self,
        report: &mut SignatureReport,
        parsed: &SignatureEnvelope,
        chain: &[Certificate],
        revocation: Option<&dyn RevocationCheck>,
    ) -> (Result<(), SignatureFailure>, Vec<Certificate>) {
        let (mut timestamp, source, tsa_chain) = self.authentic_timestamp(parsed, chain);
        let mut tsa_revocation = None;
        if let (Some(checker), Ok(()), false) = (
            revocation,
            &timestamp,
            self.statement.level.revocation == CheckAction::Skip || tsa_chain.is_empty(),
        ) {
            let check = checker.check(ChainQuery {
                chain: &tsa_chain,
                purpose: Purpose::Timestamping,
                signing_time: None,
                now: self.now,
            });
            if let Some(failed) = check.failure() {
                timestamp = Err(SignatureFailure::Timestamp(TimestampFailure::Revocation(
                    Box::new(failed.clone()),
                )));
            }
            tsa_revocation = Some(check);
        }
        // What this outcome rests on that the clock will end: the expiry, and the
        // certificates' notAfter when they were checked against the clock. Instants
        // already past are reflected in the outcome and bound nothing.
        let clock_checked = matches!(source, Some(TimeSource::LocalClock { .. }));
        report.valid_until = parsed
            .expiry
            .into_iter()
            .chain(
                chain
                    .iter()
                    .filter(|_| clock_checked)
                    .map(Certificate::not_after),
            )
            .chain(tsa_revocation.as_ref().and_then(ChainCheck::valid_until))
            .filter(|instant| *instant > self.now)
            .min();
        report.time_source = source;
        report.timestamp_revocation = tsa_revocation;
        (timestamp, tsa_chain)
    }

    /// Step 6 with a checker: every certificate but the root, against its issuer.
    fn revocation_step(
        &self,
        report: &mut SignatureReport,
        parsed: &SignatureEnvelope,
        chain: &[Certificate],
        checker: &dyn RevocationCheck,
    ) -> Result<(), SignatureFailure> {
        let signing_time = match parsed.signing_scheme {
            SigningScheme::X509SigningAuthority => parsed.authentic_signing_time,
            SigningScheme::X509 => None,
        };
        let check = checker.check(ChainQuery {
            chain,
            purpose: Purpose::Signing,
            signing_time,
            now: self.now,
        });
        let result = match check.failure() {
            Some(failed) => Err(SignatureFailure::Revocation(Box::new(failed.clone()))),
            None => Ok(()),
        };
        report.valid_until = report
            .valid_until
            .into_iter()
            .chain(check.valid_until())
            .filter(|instant| *instant > self.now)
            .min();
        report.revocation = Some(check);
        result
    }

    fn trusted_certificates(&self, store_type: StoreType) -> Vec<&[u8]> {
        self.statement
            .trust_stores
            .iter()
            .filter(|r| r.store_type == store_type)
            .flat_map(|r| {
                self.stores
                    .iter()
                    .filter(move |s| s.store_type == r.store_type && s.name == r.name)
            })
            .flat_map(|s| s.certificates_der.iter().map(Vec::as_slice))
            .collect()
    }

    fn authenticity(
        &self,
        chain: &[Certificate],
        store_type: StoreType,
    ) -> Result<(), SignatureFailure> {
        let trusted = self.trusted_certificates(store_type);
        if trusted.is_empty() {
            return Err(SignatureFailure::NoTrustedCertificates { store_type });
        }
        if chain.iter().any(|cert| trusted.contains(&cert.der())) {
            Ok(())
        } else {
            Err(SignatureFailure::Untrusted { store_type })
        }
    }

    fn authentic_timestamp(
        &self,
        parsed: &SignatureEnvelope,
        chain: &[Certificate],
    ) -> (
        Result<(), SignatureFailure>,
        Option<TimeSource>,
        Vec<Certificate>,
    ) {
        // Signing authority: authenticSigningTime within every certificate.
        if parsed.signing_scheme == SigningScheme::X509SigningAuthority {
            let Some(time) = parsed.authentic_signing_time else {
                return (
                    Err(SignatureFailure::Timestamp(
                        TimestampFailure::SigningTimeMissing,
                    )),
                    None,
                    Vec::new(),
                );
            };
            let source = TimeSource::SigningAuthority { time };
            return (all_valid_at(chain, time), Some(source), Vec::new());
        }
        // notary.x509: a timestamp is required when the policy has a tsa store and
        // verifyTimestamp is `always`, or `afterCertExpiry` and a certificate has
        // expired; otherwise every certificate must be valid now.
        let has_tsa = self
            .statement
            .trust_stores
            .iter()
            .any(|r| r.store_type == StoreType::Tsa);
        let expired = chain.iter().any(|c| c.not_after() < self.now);
        let use_timestamp = has_tsa
            && match self.statement.verify_timestamp {
                VerifyTimestamp::Always => true,
                VerifyTimestamp::AfterCertExpiry => expired,
            };
        if !use_timestamp {
            let source = TimeSource::LocalClock { time: self.now };
            return (all_valid_at(chain, self.now), Some(source), Vec::new());
        }
        match self.verify_timestamp(parsed, chain) {
            Ok((source, tsa_chain)) => (Ok(()), Some(source), tsa_chain),
            Err(failure) => (Err(failure), None, Vec::new()),
        }
    }

    fn verify_timestamp(
        &self,
        parsed: &SignatureEnvelope,
        chain: &[Certificate],
    ) -> Result<(TimeSource, Vec<Certificate>), SignatureFailure> {
        let failure = SignatureFailure::Timestamp;
        let token = parsed
            .timestamp_token
            .as_deref()
            .ok_or(failure(TimestampFailure::NoCountersignature))?;
        let token = TimestampToken::parse(token)
            .map_err(|e| failure(TimestampFailure::Parse(Arc::new(e))))?;
        let stamp = token
            .verify(&parsed.signature)
            .map_err(|e| failure(TimestampFailure::Verify(Arc::new(e))))?;

        // The TSA chain: the token's signer and its certificates, ending in (or
        // issued by) a certificate of the policy's tsa stores, valid at genTime.
        let tsa_certs = stamp
            .signer_chain_der
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failure(TimestampFailure::Certificate(Arc::new(e))))?;
        let roots = self.trusted_certificates(StoreType::Tsa);
        // Linking by names costs no signature check, and validate_tsa_chain verifies
        // every link anyway (one RSA-3072 check fewer, ~9% of a verification:
        // benches/verify.rs). Only when that chain does not validate (say two
        // certificates share a name) are links searched by signature.
        let tsa_chain = match order_tsa_chain(&tsa_certs, &roots, Link::Name) {
            Some(chain) if pki::validate_tsa_chain(&chain).is_ok() => chain,
            _ => {
                let chain = order_tsa_chain(&tsa_certs, &roots, Link::Signature)
                    .ok_or(failure(TimestampFailure::UntrustedChain))?;
                pki::validate_tsa_chain(&chain)
                    .map_err(|e| failure(TimestampFailure::Chain(Arc::new(e))))?;
                chain
            }
        };
        for cert in &tsa_chain {
            pki::check_valid_at(cert, stamp.gen_time)
                .map_err(|e| failure(TimestampFailure::NotValidAtGenTime(Arc::new(e))))?;
        }
        if let (Some(signing_time), Some(tsa_leaf)) = (stamp.signing_time, tsa_chain.first()) {
            pki::check_valid_at(tsa_leaf, signing_time)
                .map_err(|e| failure(TimestampFailure::SigningTimeOutsideTsa(Arc::new(e))))?;
        }
        // Every signing certificate valid over [genTime − accuracy, genTime + accuracy].
        for cert in chain {
            if !stamp.within(cert.not_before(), cert.not_after()) {
                return Err(SignatureFailure::OutsideTimestamp {
                    subject: cert.subject_string(),
                    gen_time: stamp.gen_time,
                    accuracy: stamp.accuracy,
                    not_before: cert.not_before(),
                    not_after: cert.not_after(),
                });
            }
        }
        let source = TimeSource::TimestampAuthority {
            gen_time: stamp.gen_time,
            accuracy_ms: stamp.accuracy.as_millis() as u64,
            tsa: tsa_chain
                .first()
                .map(Certificate::subject_string)
                .unwrap_or_default(),
        };
        Ok((source, tsa_chain))
    }
}

impl SignatureReport {
    /// What the integrity step learnt about the envelope.
    fn describe(&mut self, parsed: &SignatureEnvelope, chain: &[Certificate]) {
        self.format = Some(match parsed.format {
            EnvelopeFormat::Cose => "cose",
            EnvelopeFormat::Jws => "jws",
        });
        self.algorithm = Some(format!("{:?}", parsed.algorithm).to_uppercase());
        self.signing_scheme = Some(match parsed.signing_scheme {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        });
        self.signer = chain.first().map(Certificate::subject_string);
    }
}

/// Step 6 without a checker: a certificate that names an endpoint cannot be
/// checked and fails (fail closed when enforced).
fn unchecked_revocation(
    chain: &[Certificate],
    tsa_chain: &[Certificate],
) -> Result<(), SignatureFailure> {
    let below_root = |c: &[Certificate]| c.len().saturating_sub(1);
    chain
        .iter()
        .take(below_root(chain))
        .chain(tsa_chain.iter().take(below_root(tsa_chain)))
        .find(|cert| cert.has_revocation_endpoints())
        .map_or(Ok(()), |cert| {
            Err(SignatureFailure::RevocationUnavailable {
                subject: cert.subject_string(),
            })
        })
}

/// Step 7: the signed descriptor is the artifact (mediaType, digest, size).
fn target_artifact(signed: &Descriptor, target: &Descriptor) -> Result<(), SignatureFailure> {
    if signed.same_content(target) {
        return Ok(());
    }
    Err(SignatureFailure::TargetMismatch {
        signed: format!(
            "{} {} ({} bytes)",
            signed.media_type, signed.digest, signed.size
        ),
        target: format!(
            "{} {} ({} bytes)",
            target.media_type, target.digest, target.size
        ),
    })
}

/// Step 1 of NOTARY.md §8: everything that needs no policy.
fn integrity(
    blob: &SignatureBlob,
) -> Result<(SignatureEnvelope, Vec<Certificate>), SignatureFailure> {
    if blob.media_type != envelope::COSE_MEDIA_TYPE && blob.media_type != envelope::JWS_MEDIA_TYPE {
        return Err(SignatureFailure::UnsupportedEnvelopeType(
            blob.media_type.clone(),
        ));
    }
    let parsed = envelope::parse(&blob.media_type, &blob.envelope)
        .map_err(|e| SignatureFailure::Envelope(Arc::new(e)))?;
    let chain = parsed
        .certificate_chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(chain_failure)?;
    pki::validate_signing_chain(&chain).map_err(chain_failure)?;
    let leaf = chain.first().ok_or(SignatureFailure::EmptyChain)?;
    let key_algorithm = pki::signature_algorithm_for_key(leaf).map_err(chain_failure)?;
    let header_algorithm = parsed.algorithm;
    if key_algorithm != header_algorithm {
        return Err(SignatureFailure::AlgorithmMismatch {
            header: format!("{header_algorithm:?}").to_uppercase(),
            key: format!("{key_algorithm:?}").to_uppercase(),
        });
    }
    // go-cose requires the PSS salt to equal the hash length; JWS accepts any.
    let salt = match parsed.format {
        EnvelopeFormat::Cose => PssSaltPolicy::HashLength,
        EnvelopeFormat::Jws => PssSaltPolicy::Any,
    };
    pki::verify_signature(
        leaf,
        header_algorithm,
        salt,
        &parsed.signed_bytes,
        &parsed.signature,
    )
    .map_err(|e| SignatureFailure::Signature(Arc::new(e)))?;
    Ok((parsed, chain))
}

fn chain_failure(error: pki::PkiError) -> SignatureFailure {
    SignatureFailure::Chain(Arc::new(error))
}

/// How [`order_tsa_chain`] decides that a certificate issued the previous one.
#[derive(Clone, Copy)]
enum Link {
    /// The issuer DN equals the candidate's subject DN (no signature check).
    Name,
    /// The candidate's key verifies the signature (and it may sign certificates).
    Signature,
}

impl Link {
    fn issued(self, child: &Certificate, issuer: &Certificate) -> bool {
        match self {
            Link::Name => {
                child.x509().tbs_certificate().issuer() == issuer.x509().tbs_certificate().subject()
            }
            Link::Signature => pki::verify_signed_by(child, issuer).is_ok(),
        }
    }
}

/// Orders the token's certificates (signer first) leaf-first by issuer links and
/// appends the trusted root (DER from the `tsa` stores) they chain to; `None` if
/// they reach no trusted certificate. Roots are parsed only when the token does not
/// carry the root itself: TSAs usually include it, and parsing builds an RSA key.
fn order_tsa_chain(certs: &[Certificate], roots: &[&[u8]], link: Link) -> Option<Vec<Certificate>> {
    let mut ordered: Vec<&Certificate> = vec![certs.first()?];
    let mut used = vec![false; certs.len()];
    used[0] = true;
    // Bounded: each round takes one unused certificate or stops.
    loop {
        let last = *ordered.last()?;
        if roots.contains(&last.der()) {
            return Some(ordered.into_iter().cloned().collect());
        }
        if let Some(i) = (0..certs.len())
            .find(|&i| !used[i] && certs[i].der() != last.der() && link.issued(last, &certs[i]))
        {
            used[i] = true;
            ordered.push(&certs[i]);
            continue;
        }
        let root = roots
            .iter()
            .filter_map(|der| Certificate::from_der(der).ok())
            .find(|r| link.issued(last, r))?;
        let mut chain: Vec<Certificate> = ordered.into_iter().cloned().collect();
        chain.push(root);
        return Some(chain);
    }
}

fn all_valid_at(chain: &[Certificate], at: SystemTime) -> Result<(), SignatureFailure> {
    for cert in chain {
        pki::check_valid_at(cert, at).map_err(|e| SignatureFailure::CertificateTime {
            subject: cert.subject_string(),
            at,
            reason: Arc::new(e),
        })?;
    }
    Ok(())
}

/// Records a check's result; returns false when an enforced failure ends the
/// signature's verification.
fn record(
    report: &mut SignatureReport,
    check: Check,
    action: CheckAction,
    result: Result<(), SignatureFailure>,
) -> bool {
    let (outcome, failure) = match (action, result) {
        (CheckAction::Skip, _) => {
            skip(report, check);
            return true;
        }
        (_, Ok(())) => (CheckOutcome::Passed, None),
        (_, Err(failure)) => (CheckOutcome::Failed, Some(failure)),
    };
    report.checks.push(CheckResult {
        check,
        action,
        outcome,
        error: failure.as_ref().map(ToString::to_string),
    });
    match failure {
        Some(failure) if action == CheckAction::Enforce => {
            report.failure = Some(format!("{check} check failed: {failure}"));
            report.failed = Some((check, failure));
            false
        }
        _ => true,
    }
}

fn skip(report: &mut SignatureReport, check: Check) {
    report.checks.push(CheckResult {
        check,
        action: CheckAction::Skip,
        outcome: CheckOutcome::Skipped,
        error: None,
    });
}

/// The failure that got furthest through the checks: a signature that was
/// intact, trusted and current but signed another digest says more than one that
/// did not parse (rustls/webpki's "most specific error").
fn most_specific(reports: &[SignatureReport]) -> VerificationError {
    reports
        .iter()
        .filter_map(|r| r.failed.as_ref())
        .enumerate()
        .max_by_key(|(i, (check, _))| (*check, std::cmp::Reverse(*i)))
        .map(|(_, (check, failure))| VerificationError::SignatureFailed {
            check: *check,
            failure: failure.clone(),
        })
        .unwrap_or(VerificationError::SignatureLimit { limit: 0 })
}
