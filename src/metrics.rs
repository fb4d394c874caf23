//! Prometheus metrics (text format): decisions by outcome and reason,
//! verification latency by cache hit/miss, registry requests by status, cache
//! entries, policy generation and reload failures, the CRI clients that connect
//! (so an alert can fire on a node where the kubelet does not come through pullgate),
//! and revocation checks (by method and result, cache hits, fetch latency).

use std::fmt::Write;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cache::Lookup;
use crate::verify::engine::Check;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub outcome: DecisionOutcome,
    pub reason: DecisionReason,
}

/// What the gate did with a pull.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DecisionOutcome {
    Allowed,
    Denied,
    Unavailable,
    Skipped,
}

impl DecisionOutcome {
    /// The label value, and the audit line's `outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Allowed => "allowed",
            DecisionOutcome::Denied => "denied",
            DecisionOutcome::Unavailable => "unavailable",
            DecisionOutcome::Skipped => "skipped",
        }
    }
}

impl EncodeLabelValue for DecisionOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Why: a short, bounded class.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DecisionReason {
    /// A signature passed every check the level runs.
    Verified,
    /// A signature passed the enforced checks; others failed and were logged.
    LoggedFailures,
    LevelSkip,
    /// No trust policy statement covers the image.
    Unmatched,
    InvalidReference,
    NoSignature,
    SignatureLimit,
    /// The registry could not be asked.
    Registry,
    /// The enforced check that failed (its [`Check::label`]).
    Check(Check),
}

impl EncodeLabelValue for DecisionReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            DecisionReason::Verified => "verified",
            DecisionReason::LoggedFailures => "logged_failures",
            DecisionReason::LevelSkip => "level_skip",
            DecisionReason::Unmatched => "unmatched",
            DecisionReason::InvalidReference => "invalid_reference",
            DecisionReason::NoSignature => "no_signature",
            DecisionReason::SignatureLimit => "signature_limit",
            DecisionReason::Registry => "registry",
            DecisionReason::Check(check) => check.label(),
        })
    }
}

/// Which call asked whether an image on the node may be used (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandingCall {
    ImageStatus,
    CreateContainer,
    RunPodSandbox,
}

impl StandingCall {
    /// The CRI method's name: the label value and the audit line's `call`.
    pub fn as_str(self) -> &'static str {
        match self {
            StandingCall::ImageStatus => "ImageStatus",
            StandingCall::CreateContainer => "CreateContainer",
            StandingCall::RunPodSandbox => "RunPodSandbox",
        }
    }
}

impl EncodeLabelValue for StandingCall {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// What that check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandingOutcome {
    /// A current allow verdict.
    Verified,
    /// The policy does not enforce on the image (audit, skip, unmatched allowed).
    NotEnforced,
    /// No current verdict: hidden (`ImageStatus`) or refused.
    Refused,
}

impl EncodeLabelValue for StandingOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            StandingOutcome::Verified => "verified",
            StandingOutcome::NotEnforced => "not_enforced",
            StandingOutcome::Refused => "refused",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StandingLabels {
    pub call: StandingCall,
    pub outcome: StandingOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: Lookup,
}

impl EncodeLabelValue for Lookup {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub client: Client,
}

/// Who connected to the CRI socket: two values only, whatever connects.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Client {
    /// The peer's `/proc/<pid>/comm` is `kubelet`.
    Kubelet,
    Other,
}

impl EncodeLabelValue for Client {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Client::Kubelet => "kubelet",
            Client::Other => "other",
        })
    }
}

impl ClientLabels {
    fn of(kubelet: bool) -> ClientLabels {
        ClientLabels {
            client: if kubelet {
                Client::Kubelet
            } else {
                Client::Other
            },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevocationLabels {
    /// `ocsp`, `crl` or `non_revocable`.
    pub method: &'static str,
    /// `good`, `revoked` or `unknown`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// Where cached revocation data came from: `ocsp_memory`, `crl_memory`,
    /// `crl_disk`, `crl_dir`.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    /// `ocsp` or `crl`.
    pub kind: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// The metrics pullgate exports, registered once.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    standing: Family<StandingLabels, Counter>,
    verification_seconds: Family<CacheLabels, Histogram>,
    registry_requests: Family<StatusLabels, Counter>,
    cache_entries: Gauge,
    policy_generation: Gauge,
    pub reload_failures: Counter,
    cri_connections: Family<ClientLabels, Counter>,
    cri_open_connections: Family<ClientLabels, Gauge>,
    cri_last_connect: Family<ClientLabels, Gauge>,
    revocation_checks: Family<RevocationLabels, Counter>,
    revocation_cache_hits: Family<SourceLabels, Counter>,
    revocation_fetch_seconds: Family<FetchLabels, Histogram>,
    /// Last registry totals seen, to add only the difference at each scrape.
    seen_requests: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// Registers `metric` under `name` and returns it (a shared handle).
fn register<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

/// The CRI client metrics: connections accepted, open now, last connect time.
type ClientMetrics = (
    Family<ClientLabels, Counter>,
    Family<ClientLabels, Gauge>,
    Family<ClientLabels, Gauge>,
);

fn register_clients(registry: &mut Registry) -> ClientMetrics {
    let cri_connections = register(
        registry,
        "cri_connections",
        "CRI connections accepted on pullgate's socket, by client (kubelet or other)",
        Family::<ClientLabels, Counter>::default(),
    );
    let cri_open_connections = register(
        registry,
        "cri_client_connections",
        "CRI connections open now, by client (kubelet or other)",
        Family::<ClientLabels, Gauge>::default(),
    );
    let cri_last_connect = register(
        registry,
        "cri_client_last_connect_timestamp_seconds",
        "Unix time of the last CRI connection accepted, by client (0: none yet)",
        Family::<ClientLabels, Gauge>::default(),
    );
    // Both label values exist from the start, so `== 0` alerts work before the
    // first connection (no `absent()` needed).
    for kubelet in [true, false] {
        let labels = ClientLabels::of(kubelet);
        drop(cri_connections.get_or_create(&labels));
        drop(cri_open_connections.get_or_create(&labels));
        drop(cri_last_connect.get_or_create(&labels));
    }
    (cri_connections, cri_open_connections, cri_last_connect)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pullgate");
        let decisions = register(
            &mut registry,
            "decisions",
            "PullImage decisions by outcome and reason",
            Family::<DecisionLabels, Counter>::default(),
        );
        let standing = register(
            &mut registry,
            "image_standing_checks",
            "Checks of an image on the node before it is used, by call and outcome",
            Family::<StandingLabels, Counter>::default(),
        );
        // 100 µs .. ~100 s
        let verification_seconds = register(
            &mut registry,
            "verification_seconds",
            "Time to a verdict, by verdict cache hit or miss",
            Family::<CacheLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 3.0, 13))
            }),
        );
        let registry_requests = register(
            &mut registry,
            "registry_requests",
            "Registry requests by HTTP status (or transport_error, timeout)",
            Family::<StatusLabels, Counter>::default(),
        );
        let cache_entries: Gauge = register(
            &mut registry,
            "cache_entries",
            "Verdicts in the cache",
            Gauge::default(),
        );
        let policy_generation: Gauge = register(
            &mut registry,
            "policy_generation",
            "Generation of the trust policy in force (1 = as started)",
            Gauge::default(),
        );
        let reload_failures: Counter = register(
            &mut registry,
            "policy_reload_failures",
            "Policy reloads rejected (the last good policy stays)",
            Counter::default(),
        );
        let (cri_connections, cri_open_connections, cri_last_connect) =
            register_clients(&mut registry);
        let revocation_checks = register(
            &mut registry,
            "revocation_checks",
            "Certificates checked for revocation, by method and result",
            Family::<RevocationLabels, Counter>::default(),
        );
        let revocation_cache_hits = register(
            &mut registry,
            "revocation_cache_hits",
            "OCSP answers and CRLs used without fetching, by where they came from",
            Family::<SourceLabels, Counter>::default(),
        );
        // 1 ms .. ~20 s
        let revocation_fetch_seconds = register(
            &mut registry,
            "revocation_fetch_seconds",
            "OCSP requests and CRL downloads, by kind and outcome",
            Family::<FetchLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 3.0, 10))
            }),
        );
        Metrics {
            registry,
            decisions,
            standing,
            verification_seconds,
            registry_requests,
            cache_entries,
            policy_generation,
            reload_failures,
            cri_connections,
            cri_open_connections,
            revocation_checks,
            revocation_cache_hits,
            revocation_fetch_seconds,
            cri_last_connect,
            seen_requests: Mutex::new(Default::default()),
        }
    }

    pub fn decision(&self, outcome: DecisionOutcome, reason: DecisionReason) {
        self.decisions
            .get_or_create(&DecisionLabels { outcome, reason })
            .inc();
    }

    /// One check of an image on the node before it is used.
    pub fn standing(&self, call: StandingCall, outcome: StandingOutcome) {
        self.standing
            .get_or_create(&StandingLabels { call, outcome })
            .inc();
    }

    /// How long a verdict took to reach, by where it came from.
    pub fn verification(&self, cache: Lookup, seconds: f64) {
        self.verification_seconds
            .get_or_create(&CacheLabels { cache })
            .observe(seconds);
    }

    pub fn set_policy_generation(&self, generation: u64) {
        self.policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    pub fn set_cache_entries(&self, entries: usize) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// A CRI connection was accepted at `now` (unix seconds).
    pub fn cri_client_connected(&self, kubelet: bool, now: u64) {
        let labels = ClientLabels::of(kubelet);
        self.cri_connections.get_or_create(&labels).inc();
        self.cri_open_connections.get_or_create(&labels).inc();
        self.cri_last_connect
            .get_or_create(&labels)
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// A CRI connection counted by [`Metrics::cri_client_connected`] ended.
    pub fn cri_client_disconnected(&self, kubelet: bool) {
        self.cri_open_connections
            .get_or_create(&ClientLabels::of(kubelet))
            .dec();
    }

    /// Brings the registry request counters up to `totals` (status → count since start).
    pub fn observe_registry_totals(&self, totals: &[(String, u64)]) {
        let mut seen = self
            .seen_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (status, total) in totals {
            let before = seen.entry(status.clone()).or_insert(0);
            if *total > *before {
                self.registry_requests
                    .get_or_create(&StatusLabels {
                        status: status.clone(),
                    })
                    .inc_by(*total - *before);
                *before = *total;
            }
        }
    }

    /// One certificate checked for revocation.
    pub fn revocation_checked(&self, method: &'static str, result: &'static str) {
        self.revocation_checks
            .get_or_create(&RevocationLabels { method, result })
            .inc();
    }

    /// Revocation data used from a cache or the operator's CRL directory.
    pub fn revocation_cache_hit(&self, source: &'static str) {
        self.revocation_cache_hits
            .get_or_create(&SourceLabels { source })
            .inc();
    }

    /// One OCSP request or CRL download and how long it took.
    pub fn revocation_fetched(&self, kind: &'static str, ok: bool, seconds: f64) {
        self.revocation_fetch_seconds
            .get_or_create(&FetchLabels {
                kind,
                outcome: if ok { "ok" } else { "error" },
            })
            .observe(seconds);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_metrics_are_exported() {
        let metrics = Metrics::new();
        metrics.revocation_checked("ocsp", "good");
        metrics.revocation_checked("crl", "revoked");
        metrics.revocation_cache_hit("crl_disk");
        metrics.revocation_fetched("ocsp", true, 0.002);
        let text = metrics.encode();
        for line in [
            "pullgate_revocation_checks_total{method=\"ocsp\",result=\"good\"} 1",
            "pullgate_revocation_checks_total{method=\"crl\",result=\"revoked\"} 1",
            "pullgate_revocation_cache_hits_total{source=\"crl_disk\"} 1",
            "pullgate_revocation_fetch_seconds_count{kind=\"ocsp\",outcome=\"ok\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn exposition_has_every_family() {
        let metrics = Metrics::new();
        metrics.decision(DecisionOutcome::Denied, DecisionReason::NoSignature);
        metrics.decision(DecisionOutcome::Allowed, DecisionReason::Verified);
        metrics.decision(DecisionOutcome::Allowed, DecisionReason::Verified);
        metrics.decision(
            DecisionOutcome::Denied,
            DecisionReason::Check(Check::TrustedIdentity),
        );
        metrics.verification(Lookup::Miss, 0.02);
        metrics.observe_registry_totals(&[("200".into(), 4), ("404".into(), 1)]);
        metrics.observe_registry_totals(&[("200".into(), 6), ("404".into(), 1)]);
        metrics.set_cache_entries(3);
        metrics.set_policy_generation(2);
        metrics.reload_failures.inc();
        metrics.cri_client_connected(true, 1_767_225_600);
        metrics.cri_client_connected(true, 1_767_225_601);
        metrics.cri_client_connected(false, 1_767_225_700);
        metrics.cri_client_disconnected(false);
        metrics.standing(StandingCall::CreateContainer, StandingOutcome::Refused);
        metrics.standing(StandingCall::ImageStatus, StandingOutcome::Verified);
        metrics.standing(StandingCall::ImageStatus, StandingOutcome::Verified);
        let text = metrics.encode();
        for line in [
            "pullgate_image_standing_checks_total{call=\"CreateContainer\",outcome=\"refused\"} 1",
            "pullgate_image_standing_checks_total{call=\"ImageStatus\",outcome=\"verified\"} 2",
            "pullgate_decisions_total{outcome=\"allowed\",reason=\"verified\"} 2",
            "pullgate_decisions_total{outcome=\"denied\",reason=\"no_signature\"} 1",
            "pullgate_decisions_total{outcome=\"denied\",reason=\"trusted_identity\"} 1",
            "pullgate_verification_seconds_count{cache=\"miss\"} 1",
            "pullgate_registry_requests_total{status=\"200\"} 6",
            "pullgate_registry_requests_total{status=\"404\"} 1",
            "pullgate_cache_entries 3",
            "pullgate_policy_generation 2",
            "pullgate_policy_reload_failures_total 1",
            "pullgate_cri_connections_total{client=\"kubelet\"} 2",
            "pullgate_cri_connections_total{client=\"other\"} 1",
            "pullgate_cri_client_connections{client=\"kubelet\"} 2",
            "pullgate_cri_client_connections{client=\"other\"} 0",
            "pullgate_cri_client_last_connect_timestamp_seconds{client=\"kubelet\"} 1767225601",
            "pullgate_cri_client_last_connect_timestamp_seconds{client=\"other\"} 1767225700",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn client_families_exist_before_any_connection() {
        let text = Metrics::new().encode();
        for line in [
            "pullgate_cri_connections_total{client=\"kubelet\"} 0",
            "pullgate_cri_client_connections{client=\"kubelet\"} 0",
            "pullgate_cri_client_last_connect_timestamp_seconds{client=\"kubelet\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
