//! The gate's decision for one pull, as DESIGN.md's PullImage path describes:
//! reference → trust-policy statement → resolve → verdict (cached per digest and
//! policy generation, single-flight) → allow (pinned to the verified digest, with
//! the tag record to write) or refuse. No error path allows: anything that
//! prevents a verdict is a [`Refusal`].
//!
//! The decision reads the image and its signatures through an [`ImageSource`]
//! (the registry; a fake in tests) and the time through a [`Clock`], so tests
//! drive it without a registry and without waiting. What it concluded goes to the
//! audit log and the metrics in [`Gate::record`]; `intercept` does the transport.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::cache::{CacheKey, Cacheable, Lookup, VerdictCache};
use crate::metrics::{DecisionOutcome, DecisionReason, Metrics};
use crate::policy::LevelName;
use crate::reference::{Reference, ReferenceError};
use crate::verdict::{Fingerprint, Recorded, VerdictBook};
use crate::verify::engine::{Check, TimeSource, Verdict, VerificationError};
use crate::verify::SignatureSource;
use crate::verify::{verify_signatures, Budgets, Judge, LoadedPolicy, RegistrySource};

mod standing;
pub use standing::{ImageFacts, NotVerified, RecordLookup, RecordSource, Standing, StandingCall};

pub use crate::clock::{Clock, FixedClock, SystemClock};
pub use crate::oci::Descriptor;
pub use crate::registry::{Credentials, RegistryClient, RegistryError};

/// What the node does with an image that no trust policy statement covers
/// (`[policy] unmatched`). `deny` by default: a missing statement is never a
/// silent allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    Deny,
    Allow,
}

/// The gate's settings (from the config file).
#[derive(Debug, Clone)]
pub struct GateSettings {
    pub unmatched: Unmatched,
    /// Time for one verification's registry work.
    pub registry_timeout: Duration,
    pub budgets: Budgets,
    /// OCSP and CRL checks of the signing and timestamping chains.
    pub revocation: Option<Arc<dyn crate::revocation::RevocationCheck>>,
    /// How long an allow verdict is reused before a container runs without the
    /// image being verified again (`[policy] verdict_max_age`); `None`: until what
    /// the verdict rests on expires.
    pub verdict_max_age: Option<Duration>,
}

/// The config file's defaults: deny unmatched images, 30 s of registry work,
/// notation's budgets; no revocation checker (an endpoint-naming certificate then
/// fails an enforced revocation check).
impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            unmatched: Unmatched::Deny,
            registry_timeout: Duration::from_secs(30),
            budgets: Budgets::default(),
            revocation: None,
            verdict_max_age: None,
        }
    }
}

/// Where the gate finds an image and its signatures: the registry, with the
/// call's credentials, within a deadline.
pub trait ImageSource: Send + Sync {
    /// The signatures of one reference.
    type Signatures<'a>: SignatureSource<Error = RegistryError> + Send
    where
        Self: 'a;

    /// Resolves `reference` to its target descriptor (NOTARY.md §1.1).
    fn resolve(
        &self,
        reference: &Reference,
        credentials: &Credentials,
        deadline: Instant,
    ) -> impl Future<Output = Result<Descriptor, RegistryError>> + Send;

    /// The signatures of `reference`'s repository.
    fn signatures<'a>(
        &'a self,
        reference: &'a Reference,
        credentials: &'a Credentials,
        deadline: Instant,
    ) -> Self::Signatures<'a>;

    /// Requests made so far by HTTP status (and `transport_error`, `timeout`).
    fn request_totals(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}

impl ImageSource for RegistryClient {
    type Signatures<'a> = RegistrySource<'a>;

    async fn resolve(
        &self,
        reference: &Reference,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Descriptor, RegistryError> {
        RegistryClient::resolve(self, reference, credentials, deadline).await
    }

    fn signatures<'a>(
        &'a self,
        reference: &'a Reference,
        credentials: &'a Credentials,
        deadline: Instant,
    ) -> RegistrySource<'a> {
        RegistrySource {
            client: self,
            reference,
            credentials,
            deadline,
        }
    }

    fn request_totals(&self) -> Vec<(String, u64)> {
        let stats = self.stats();
        let mut totals: Vec<(String, u64)> = stats
            .by_status
            .iter()
            .map(|(status, count)| (status.to_string(), *count))
            .collect();
        totals.push(("transport_error".into(), stats.transport_errors));
        totals.push(("timeout".into(), stats.timeouts));
        totals
    }
}

/// A trust policy for the pods of some Kubernetes namespaces (`[[policy.namespace]]`).
pub struct NamespacePolicy {
    /// Exact names, or `prefix-*` (a trailing `*` matches any rest).
    pub patterns: Vec<String>,
    pub policy: watch::Receiver<Arc<LoadedPolicy>>,
}

impl NamespacePolicy {
    pub fn matches(&self, namespace: &str) -> bool {
        self.patterns
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => namespace.starts_with(prefix),
                None => pattern == namespace,
            })
    }
}

/// One policy the gate applies, for a task that acts when it changes: `namespace`
/// is a Kubernetes namespace it applies to (`None`: the node's default policy).
pub struct PolicyWatch {
    pub namespace: Option<String>,
    pub policy: watch::Receiver<Arc<LoadedPolicy>>,
}

/// A cached verdict for one (digest, policy generation, statement + repository).
#[derive(Debug, Clone)]
pub enum Decision {
    Allow(Allowed),
    Deny {
        statement: String,
        reason: VerificationError,
    },
    /// No verdict could be reached (registry, timeout); never cached.
    Unavailable(Arc<RegistryError>),
}

/// An allow and what it rests on.
#[derive(Debug, Clone)]
pub struct Allowed {
    pub statement: String,
    pub time_source: Option<TimeSource>,
    pub outcome: AllowOutcome,
    /// Checks that failed but were only logged (audit / permissive / overrides),
    /// with their reasons.
    pub logged: Vec<(Check, String)>,
    /// How each certificate was checked for revocation (method, URL, status);
    /// empty when revocation was not checked.
    pub revocation: String,
    /// When the verification ran.
    pub verified_at: SystemTime,
    /// When what the allow rests on ends (a signature's expiry, a certificate's
    /// notAfter); `None`: nothing expires.
    pub valid_until: Option<SystemTime>,
}

/// Why an image was let through; the tag record is labelled with it, so only an
/// image that passed every check is ever labelled verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowOutcome {
    /// A signature passed every check the level runs.
    Verified,
    /// A signature passed the enforced checks; others failed and were only logged
    /// (`audit`, `permissive`, a `log` override).
    AllowedWithFailures,
    /// Level `skip`: nothing was verified.
    Skipped,
}

impl AllowOutcome {
    /// The value of the `io.pullgate.outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AllowOutcome::Verified => "verified",
            AllowOutcome::AllowedWithFailures => "allowed-with-failures",
            AllowOutcome::Skipped => "skipped",
        }
    }

    fn reason(self) -> DecisionReason {
        match self {
            AllowOutcome::Verified => DecisionReason::Verified,
            AllowOutcome::AllowedWithFailures => DecisionReason::LoggedFailures,
            AllowOutcome::Skipped => DecisionReason::LevelSkip,
        }
    }
}

/// The labels pullgate puts on a tag record it writes: `io.pullgate.verified` is
/// `true` only for [`AllowOutcome::Verified`] (and `false` otherwise, so a record
/// verified before and re-pulled under a weaker policy loses it);
/// `io.pullgate.outcome` says what happened and `io.pullgate.failed-checks` lists
/// the checks that failed but were only logged (`none` when none did). The image
/// store adds the CRI plugin's own label.
pub fn tag_labels(
    outcome: AllowOutcome,
    failed_checks: &[Check],
    statement: &str,
    digest: &str,
    at: SystemTime,
) -> BTreeMap<String, String> {
    let failed = if failed_checks.is_empty() {
        "none".to_owned()
    } else {
        failed_checks
            .iter()
            .map(|check| check.label())
            .collect::<Vec<_>>()
            .join(",")
    };
    BTreeMap::from([
        (
            "io.pullgate.verified".to_owned(),
            (outcome == AllowOutcome::Verified).to_string(),
        ),
        (
            "io.pullgate.outcome".to_owned(),
            outcome.as_str().to_owned(),
        ),
        ("io.pullgate.failed-checks".to_owned(), failed),
        ("io.pullgate.policy".to_owned(), statement.to_owned()),
        ("io.pullgate.digest".to_owned(), digest.to_owned()),
        (
            "io.pullgate.verified-at".to_owned(),
            crate::verify::engine::rfc3339(at),
        ),
    ])
}

/// What the gate lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// Forward unchanged (level `skip`, or an unmatched image on an `allow` node).
    Forward,
    /// Verified: forward pinned to `repo@sha256:…`, and record `tag` (if the user
    /// asked for one) pointing at `target`.
    Pinned {
        pinned: String,
        tag: Option<TagRecord>,
        target: Box<Descriptor>,
        /// The verdict label (`crate::verdict`) to put on the pinned record and the
        /// tag record once the pull is done.
        verdict: (String, String),
    },
}

/// The tag the user asked for, to record in containerd once the pull is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Why a pull is refused. `intercept::status` turns it into the gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    InvalidReference(#[source] ReferenceError),
    #[error(
        "{image}: no trust policy statement applies to {scope} (this node denies unmatched images)"
    )]
    Unmatched { image: String, scope: String },
    /// No signature passed (or the artifact is unsigned).
    #[error("{image}: {reason} (trust policy \"{statement}\")")]
    Denied {
        image: String,
        statement: String,
        #[source]
        reason: Box<VerificationError>,
    },
    /// The reference could not be resolved.
    #[error("{image}: {error}")]
    Unresolved {
        image: String,
        #[source]
        error: Arc<RegistryError>,
    },
    /// The signatures could not be listed or fetched.
    #[error("{image}: {error}")]
    Unavailable {
        image: String,
        #[source]
        error: Arc<RegistryError>,
    },
}

/// The gate: the policy in force, the verdict cache, the image source and the
/// clock, shared by every pull.
pub struct Gate<S = RegistryClient> {
    source: S,
    policy: watch::Receiver<Arc<LoadedPolicy>>,
    /// Policies for Kubernetes namespaces, in config order; the first that matches
    /// a call's namespace applies, else `policy`.
    namespaces: Vec<NamespacePolicy>,
    book: VerdictBook,
    cache: VerdictCache<Decision>,
    settings: GateSettings,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

/// One decision and what the audit line and the metrics say about it.
struct Ruling {
    result: Result<Pass, Refusal>,
    outcome: DecisionOutcome,
    reason: DecisionReason,
    audit: Option<Audit>,
    /// Where the verdict came from and how long it took.
    lookup: Option<(Lookup, Duration)>,
}

/// The fields of the audit line of one decision.
struct Audit {
    digest: Option<String>,
    policy: String,
    reason: String,
    time_source: String,
}

/// The pull being decided, once its statement is known.
struct Selected<'a> {
    image: &'a str,
    reference: Reference,
    scope: String,
    generation: u64,
    fingerprint: Fingerprint,
    judge: Judge,
    credentials: &'a Credentials,
}

impl<S: ImageSource> Gate<S> {
    /// A gate on the system clock, with metrics of its own until
    /// [`Gate::with_metrics`] says where they go.
    pub fn new(
        source: S,
        policy: watch::Receiver<Arc<LoadedPolicy>>,
        cache: VerdictCache<Decision>,
        settings: GateSettings,
    ) -> Gate<S> {
        Gate {
            source,
            policy,
            namespaces: Vec::new(),
            book: VerdictBook::new(16 * 1024),
            cache,
            settings,
            clock: Arc::new(SystemClock),
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Reads the time from `clock` (tests set it instead of waiting).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Gate<S> {
        Gate { clock, ..self }
    }

    /// Records decisions in `metrics`.
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Gate<S> {
        Gate { metrics, ..self }
    }

    /// Uses `namespaces` for pods in the Kubernetes namespaces they name.
    pub fn with_namespace_policies(self, namespaces: Vec<NamespacePolicy>) -> Gate<S> {
        Gate { namespaces, ..self }
    }

    /// The allow verdicts this gate reached or read back.
    pub fn book(&self) -> &VerdictBook {
        &self.book
    }

    /// The policy for a pod in Kubernetes `namespace` (`None`: not known, as for
    /// `ImageStatus`, or a pull without a sandbox config): the first namespace
    /// policy whose patterns match, else the node's default.
    pub fn policy_for(&self, namespace: Option<&str>) -> Arc<LoadedPolicy> {
        let chosen = namespace.and_then(|namespace| {
            self.namespaces
                .iter()
                .find(|policy| policy.matches(namespace))
        });
        match chosen {
            Some(policy) => Arc::clone(&policy.policy.borrow()),
            None => Arc::clone(&self.policy.borrow()),
        }
    }

    /// Every policy this gate applies: the node's default, then each namespace
    /// policy with a namespace its first pattern matches (`team-*` → `team-`), so
    /// [`Gate::policy_for`] of that namespace reaches it (unless an earlier
    /// namespace policy matches it too).
    pub fn policy_watches(&self) -> Vec<PolicyWatch> {
        let default = PolicyWatch {
            namespace: None,
            policy: self.policy.clone(),
        };
        let namespaces = self.namespaces.iter().filter_map(|namespace| {
            let pattern = namespace.patterns.first()?;
            Some(PolicyWatch {
                namespace: Some(pattern.strip_suffix('*').unwrap_or(pattern).to_owned()),
                policy: namespace.policy.clone(),
            })
        });
        std::iter::once(default).chain(namespaces).collect()
    }

    /// Decides one pull of `image` with the call's `credentials` (else the node's
    /// file, else anonymous) under the node's default policy, and records the
    /// decision (audit line, metrics).
    pub async fn decide(&self, image: &str, credentials: &Credentials) -> Result<Pass, Refusal> {
        self.decide_in(image, credentials, None).await
    }

    /// [`Gate::decide`] for a pod in Kubernetes `namespace`, under its policy.
    pub async fn decide_in(
        &self,
        image: &str,
        credentials: &Credentials,
        namespace: Option<&str>,
    ) -> Result<Pass, Refusal> {
        let ruling = self.rule(image, credentials, namespace).await;
        self.record(image, &ruling);
        ruling.result
    }

    async fn rule(
        &self,
        image: &str,
        credentials: &Credentials,
        namespace: Option<&str>,
    ) -> Ruling {
        // Step 1: the reference.
        let reference: Reference = match image.parse() {
            Ok(reference) => reference,
            Err(error) => {
                return Ruling::new(Err(Refusal::InvalidReference(error)), None)
                    .labelled(DecisionOutcome::Denied, DecisionReason::InvalidReference)
            }
        };
        // Step 2: the statement, from the policy in force now.
        let policy = self.policy_for(namespace);
        let scope = reference.scope();
        let budgets = self.settings.budgets.clone();
        // The verification time is read from the clock when a verification runs.
        let now = SystemTime::UNIX_EPOCH;
        let judge = match Judge::for_scope(Arc::clone(&policy.dir), &scope, now, budgets) {
            Ok(judge) => judge.with_revocation(self.settings.revocation.clone()),
            Err(_) => return self.unmatched(image, scope),
        };
        // Step 3: skip never contacts the registry.
        let statement = judge.statement().name.clone();
        if judge.statement().level.name == LevelName::Skip {
            return Ruling::new(Ok(Pass::Forward), Some(Audit::of(&statement, "level skip")))
                .labelled(DecisionOutcome::Skipped, DecisionReason::LevelSkip);
        }
        let selected = Selected {
            image,
            reference,
            scope,
            generation: policy.generation,
            fingerprint: policy.dir.fingerprint.clone(),
            judge,
            credentials,
        };
        self.verified(selected).await
    }

    /// No statement covers the image: the node's `unmatched` setting decides.
    fn unmatched(&self, image: &str, scope: String) -> Ruling {
        let (result, reason, outcome) = match self.settings.unmatched {
            Unmatched::Deny => (
                Err(Refusal::Unmatched {
                    image: image.to_owned(),
                    scope,
                }),
                "no trust policy statement",
                DecisionOutcome::Denied,
            ),
            Unmatched::Allow => (
                Ok(Pass::Forward),
                "no trust policy statement; node allows unmatched images",
                DecisionOutcome::Allowed,
            ),
        };
        Ruling::new(result, Some(Audit::of("-", reason)))
            .labelled(outcome, DecisionReason::Unmatched)
    }

    /// Steps 4–7: resolve, then the verdict, cached and shared between
    /// concurrent pulls.
    async fn verified(&self, pull: Selected<'_>) -> Ruling {
        let Selected {
            image,
            reference,
            credentials,
            ..
        } = &pull;
        let statement = pull.judge.statement().name.clone();
        let deadline = crate::clock::monotonic_now() + self.settings.registry_timeout;
        let target = match self.source.resolve(reference, credentials, deadline).await {
            Ok(target) => target,
            Err(error) => {
                let audit = Audit::of(&statement, &error.to_string());
                let refusal = Refusal::Unresolved {
                    image: image.to_string(),
                    error: Arc::new(error),
                };
                return Ruling::new(Err(refusal), Some(audit))
                    .labelled(DecisionOutcome::Unavailable, DecisionReason::Registry);
            }
        };
        let key = CacheKey {
            digest: target.digest.clone(),
            policy_generation: pull.generation,
            statement: format!("{}\u{0}{statement}\u{0}{}", pull.fingerprint, pull.scope),
        };
        let started = crate::clock::monotonic_now();
        let verify = || async {
            let mut judge = pull.judge.clone();
            judge.now = self.clock.now();
            let signatures = self.source.signatures(reference, credentials, deadline);
            let shown = reference.pinned(&target.digest);
            let verdict = verify_signatures(&signatures, &judge, &shown, &target).await;
            classify(verdict, self.clock.now(), self.settings.verdict_max_age)
        };
        let (decision, lookup) = self.cache.get_or_verify(key, verify).await;
        let mut ruling = self.conclude(&pull, &statement, decision, target);
        ruling.lookup = Some((lookup, started.elapsed()));
        ruling
    }

    /// What a verdict means for this pull.
    fn conclude(
        &self,
        pull: &Selected<'_>,
        current_statement: &str,
        decision: Decision,
        target: Descriptor,
    ) -> Ruling {
        let image = pull.image.to_owned();
        let digest = target.digest.to_string();
        let (result, audit, outcome, reason) = match decision {
            Decision::Allow(allowed) => {
                let audit = Audit {
                    digest: None,
                    policy: allowed.statement.clone(),
                    reason: allowed.audit_reason(),
                    time_source: allowed
                        .time_source
                        .as_ref()
                        .map_or_else(|| "-".into(), TimeSource::brief),
                };
                let verdict = self.remember(&pull.fingerprint, &allowed, &target);
                let pass = self.pinned(&pull.reference, &allowed, target, verdict);
                let reason = allowed.outcome.reason();
                (Ok(pass), audit, DecisionOutcome::Allowed, reason)
            }
            Decision::Deny { statement, reason } => {
                let class = reason_class(&reason);
                let audit = Audit::of(&statement, &reason.to_string());
                let refusal = Refusal::Denied {
                    image,
                    statement,
                    reason: Box::new(reason),
                };
                (Err(refusal), audit, DecisionOutcome::Denied, class)
            }
            Decision::Unavailable(error) => {
                let audit = Audit::of(current_statement, &error.to_string());
                let refusal = Refusal::Unavailable { image, error };
                let (outcome, reason) = (DecisionOutcome::Unavailable, DecisionReason::Registry);
                (Err(refusal), audit, outcome, reason)
            }
        };
        let audit = Audit {
            digest: Some(digest),
            ..audit
        };
        Ruling::new(result, Some(audit)).labelled(outcome, reason)
    }

    /// Keeps an allow verdict in the book; returns its label for containerd.
    fn remember(
        &self,
        fingerprint: &Fingerprint,
        allowed: &Allowed,
        target: &Descriptor,
    ) -> (String, String) {
        let recorded = Recorded {
            outcome: allowed.outcome.as_str().to_owned(),
            digest: target.digest.clone(),
            verified_at: allowed.verified_at,
            valid_until: allowed.valid_until,
            statement: allowed.statement.clone(),
        };
        let label = (fingerprint.label_key(), recorded.to_label());
        self.book.insert(fingerprint, recorded);
        label
    }

    /// An allowed pull, pinned to the verified digest, with the tag to record.
    fn pinned(
        &self,
        reference: &Reference,
        allowed: &Allowed,
        target: Descriptor,
        verdict: (String, String),
    ) -> Pass {
        let failed: Vec<Check> = allowed.logged.iter().map(|(check, _)| *check).collect();
        let tag = reference
            .tag()
            .filter(|_| reference.digest().is_none())
            .map(|tag| {
                let mut labels = tag_labels(
                    allowed.outcome,
                    &failed,
                    &allowed.statement,
                    &target.digest.to_string(),
                    self.clock.now(),
                );
                labels.insert(verdict.0.clone(), verdict.1.clone());
                TagRecord {
                    name: format!("{}/{}:{tag}", reference.registry(), reference.repository()),
                    labels,
                }
            });
        Pass::Pinned {
            pinned: reference.pinned(&target.digest),
            tag,
            target: Box::new(target),
            verdict,
        }
    }

    /// The audit line and the metrics of one decision.
    fn record(&self, image: &str, ruling: &Ruling) {
        let metrics = &self.metrics;
        if let Some((lookup, elapsed)) = ruling.lookup {
            metrics.verification(lookup, elapsed.as_secs_f64());
            metrics.set_cache_entries(self.cache.len());
            metrics.observe_registry_totals(&self.source.request_totals());
        }
        if let Some(audit) = &ruling.audit {
            tracing::info!(
                target: "pullgate::audit",
                image,
                digest = audit.digest.as_deref().unwrap_or("-"),
                policy = audit.policy.as_str(),
                outcome = ruling.outcome.as_str(),
                reason = audit.reason.as_str(),
                time_source = audit.time_source.as_str(),
                cache = ruling.lookup.map_or("-", |(lookup, _)| lookup.as_str()),
                "decision"
            );
        }
        metrics.decision(ruling.outcome, ruling.reason);
    }
}

impl Ruling {
    fn new(result: Result<Pass, Refusal>, audit: Option<Audit>) -> Ruling {
        Ruling {
            result,
            outcome: DecisionOutcome::Denied,
            reason: DecisionReason::Registry,
            audit,
            lookup: None,
        }
    }

    fn labelled(self, outcome: DecisionOutcome, reason: DecisionReason) -> Ruling {
        Ruling {
            outcome,
            reason,
            ..self
        }
    }
}

impl Audit {
    fn of(policy: &str, reason: &str) -> Audit {
        Audit {
            digest: None,
            policy: policy.to_owned(),
            reason: reason.to_owned(),
            time_source: "-".to_owned(),
        }
    }
}

impl Allowed {
    /// The audit line's reason: the outcome, the logged failures, revocation.
    fn audit_reason(&self) -> String {
        let mut reason = self.outcome.as_str().to_owned();
        if !self.logged.is_empty() {
            let logged: Vec<String> = self
                .logged
                .iter()
                .map(|(check, error)| format!("{check}: {error}"))
                .collect();
            reason = format!("{reason}; logged: {}", logged.join("; "));
        }
        if !self.revocation.is_empty() {
            reason = format!("{reason}; revocation: {}", self.revocation);
        }
        reason
    }
}

/// The metrics' reason for a denial.
fn reason_class(reason: &VerificationError) -> DecisionReason {
    match reason {
        VerificationError::NoSignature { .. } => DecisionReason::NoSignature,
        VerificationError::SignatureLimit { .. } => DecisionReason::SignatureLimit,
        VerificationError::SignatureFailed { check, .. } => DecisionReason::Check(*check),
    }
}

/// Turns the engine's verdict into what the gate does and the cache keeps. The
/// verdict alone decides, exactly as it decides `pullgate verify`'s exit status
/// (`verify::run`): `Verified` and `Skipped` allow, `Failed` denies, whatever the
/// level is called. Nothing here looks at the policy's levels or overrides, so the
/// gate and the CLI cannot disagree on an image (issue 9: a gate that let unsigned
/// images through whenever the level was *named* `audit` allowed what `pullgate
/// verify` refused under `audit` with every check overridden to `enforce`).
///
/// An allow is reused only until what it rests on ends (`valid_until`: the
/// signature's expiry, a certificate's notAfter checked against the clock), counted
/// from `now`, the time the verdict is handed to the cache.
///
/// `max_age` bounds how long the allow is recorded as valid for the checks before
/// a container runs (`valid_until`); the cache's own TTLs are separate.
pub fn classify(
    verdict: Result<Verdict, RegistryError>,
    now: SystemTime,
    max_age: Option<Duration>,
) -> Cacheable<Decision> {
    let aged = max_age.map(|age| now + age);
    let earliest = |until: Option<SystemTime>| match (until, aged) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match verdict {
        Ok(Verdict::Verified(verified)) => {
            let report = verified.report();
            let valid_until = earliest(report.valid_until());
            // The cache keeps the allow no longer than it is recorded as valid.
            let valid_for =
                valid_until.map(|until| until.duration_since(now).unwrap_or(Duration::ZERO));
            let logged: Vec<(Check, String)> = report
                .logged_failures()
                .map(|c| (c.check, c.error.clone().unwrap_or_default()))
                .collect();
            let revocation = report
                .revocation
                .iter()
                .chain(&report.timestamp_revocation)
                .map(|check| check.summary())
                .filter(|summary| !summary.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            let decision = Decision::Allow(Allowed {
                revocation,
                statement: verified.statement().to_owned(),
                time_source: report.time_source.clone(),
                outcome: if logged.is_empty() {
                    AllowOutcome::Verified
                } else {
                    AllowOutcome::AllowedWithFailures
                },
                logged,
                verified_at: now,
                valid_until,
            });
            match valid_for {
                Some(left) => Cacheable::AllowUntil(decision, left),
                None => Cacheable::Allow(decision),
            }
        }
        Ok(Verdict::Skipped { statement }) => Cacheable::Allow(Decision::Allow(Allowed {
            statement,
            time_source: None,
            outcome: AllowOutcome::Skipped,
            logged: Vec::new(),
            revocation: String::new(),
            verified_at: now,
            valid_until: aged,
        })),
        Ok(Verdict::Failed {
            reason, statement, ..
        }) => Cacheable::Deny(Decision::Deny { statement, reason }),
        // No verdict: a registry error is never cached, and never allows.
        Err(error) => Cacheable::Transient(Decision::Unavailable(Arc::new(error))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cache::CacheConfig;
    use crate::oci::SignatureBlob;
    use crate::policy::TrustPolicyDocument;

    const DIGEST: &str = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0";

    /// An image with no signatures; counts what the gate asks.
    #[derive(Default)]
    struct Unsigned {
        resolved: AtomicUsize,
        listed: AtomicUsize,
    }

    impl SignatureSource for &Unsigned {
        type Error = RegistryError;

        async fn signature_manifests(
            &self,
            _target: &Descriptor,
        ) -> Result<Vec<Descriptor>, RegistryError> {
            self.listed.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }

        async fn signature(
            &self,
            manifest: &Descriptor,
            _budgets: &Budgets,
        ) -> Result<SignatureBlob, RegistryError> {
            Err(RegistryError::NotFound {
                url: manifest.digest.to_string(),
            })
        }
    }

    impl ImageSource for Unsigned {
        type Signatures<'a> = &'a Unsigned;

        async fn resolve(
            &self,
            _reference: &Reference,
            _credentials: &Credentials,
            _deadline: Instant,
        ) -> Result<Descriptor, RegistryError> {
            self.resolved.fetch_add(1, Ordering::SeqCst);
            Ok(Descriptor {
                media_type: crate::oci::MEDIA_TYPE_IMAGE_MANIFEST.into(),
                digest: DIGEST.parse().expect("digest"),
                size: 1024,
                annotations: BTreeMap::new(),
                artifact_type: None,
            })
        }

        fn signatures<'a>(
            &'a self,
            _reference: &'a Reference,
            _credentials: &'a Credentials,
            _deadline: Instant,
        ) -> &'a Unsigned {
            self
        }
    }

    /// `audit` for `r.test/audited`, `skip` for `r.test/skipped`, nothing else.
    fn gate(unmatched: Unmatched) -> Gate<Unsigned> {
        let policy = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [
                {
                    "name": "audited",
                    "registryScopes": ["r.test/audited"],
                    "signatureVerification": {"level": "audit"},
                    "trustStores": ["ca:acme"],
                    "trustedIdentities": ["*"],
                },
                {
                    "name": "skipped",
                    "registryScopes": ["r.test/skipped"],
                    "signatureVerification": {"level": "skip"},
                },
            ],
        });
        let document = TrustPolicyDocument::parse(policy.to_string().as_bytes()).expect("policy");
        let dir = crate::policy_dir::PolicyDir {
            document,
            stores: Vec::new(),
            policy_file: "trustpolicy.json".into(),
            fingerprint: crate::verdict::Fingerprint::from_hex("0123456789abcdef"),
        };
        let (_tx, rx) = watch::channel(Arc::new(LoadedPolicy {
            generation: 1,
            dir: Arc::new(dir),
        }));
        let settings = GateSettings {
            unmatched,
            ..GateSettings::default()
        };
        let clock = FixedClock(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600));
        Gate::new(
            Unsigned::default(),
            rx,
            VerdictCache::new(CacheConfig::default()),
            settings,
        )
        .with_clock(Arc::new(clock))
    }

    fn decide(gate: &Gate<Unsigned>, image: &str) -> Result<Pass, Refusal> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(gate.decide(image, &Credentials::None))
    }

    #[test]
    fn an_invalid_reference_is_refused_before_any_lookup() {
        let gate = gate(Unmatched::Allow);
        let refusal = decide(&gate, "UPPER/Case:bad tag").expect_err("invalid");
        assert!(
            matches!(refusal, Refusal::InvalidReference(_)),
            "{refusal:?}"
        );
        assert_eq!(gate.source.resolved.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn unmatched_images_follow_the_node_setting() {
        let refusal = decide(&gate(Unmatched::Deny), "r.test/other:1").expect_err("denied");
        assert_eq!(
            refusal.to_string(),
            "r.test/other:1: no trust policy statement applies to r.test/other \
             (this node denies unmatched images)"
        );
        let allowed = decide(&gate(Unmatched::Allow), "r.test/other:1").expect("allowed");
        assert_eq!(allowed, Pass::Forward);
    }

    #[test]
    fn skip_forwards_without_asking_the_registry() {
        let gate = gate(Unmatched::Deny);
        assert_eq!(decide(&gate, "r.test/skipped:1").ok(), Some(Pass::Forward));
        assert_eq!(gate.source.resolved.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_unsigned_image_is_denied_at_audit_and_the_denial_is_cached() {
        let gate = gate(Unmatched::Deny);
        for _ in 0..2 {
            let refusal = decide(&gate, "r.test/audited:1").expect_err("unsigned");
            let Refusal::Denied {
                statement, reason, ..
            } = &refusal
            else {
                panic!("expected a denial, got {refusal:?}");
            };
            assert_eq!(statement, "audited");
            assert!(
                matches!(&**reason, VerificationError::NoSignature { reference }
                    if *reference == format!("r.test/audited@{DIGEST}")),
                "{reason:?}"
            );
        }
        assert_eq!(gate.source.resolved.load(Ordering::SeqCst), 2);
        assert_eq!(gate.source.listed.load(Ordering::SeqCst), 1, "cached");
    }
}
