//! The checks before a container runs (issue 12): does an image that is already on
//! the node have a current allow verdict under the policy that applies?
//!
//! `ImageStatus`, `CreateContainer` and `RunPodSandbox` ask this of an image
//! containerd already has. The answer never reaches the registry: it comes from the
//! gate's [`VerdictBook`](crate::verdict::VerdictBook) (what this process verified)
//! or from the verdict label on the image's record in containerd (what an earlier
//! process verified under the same policy fingerprint). An image covered by an
//! enforcing statement (`strict`, `permissive`) without such a verdict has no
//! standing: `ImageStatus` hides it, so the kubelet pulls it through the gate;
//! `CreateContainer` and `RunPodSandbox` refuse it. Images under `audit` or `skip`
//! statements, and unmatched images on a node that allows them, stand as they are:
//! a pull of them would not be refused either.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use super::{Gate, ImageSource, Unmatched};
pub use crate::metrics::StandingCall;
use crate::metrics::StandingOutcome;
use crate::policy::LevelName;
use crate::reference::{Digest, Reference};
use crate::verdict::{is_image_id, Recorded};
use crate::verify::LoadedPolicy;

/// What containerd says about an image (CRI `Image`): its ID and its names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    /// `registry/repo:tag` names.
    pub repo_tags: Vec<String>,
    /// `registry/repo@sha256:…` names: the manifest digests the image has.
    pub repo_digests: Vec<String>,
}

/// A record's target digest and labels (`None`: no such record), or why it could
/// not be read.
pub type RecordLookup = Result<Option<(Digest, BTreeMap<String, String>)>, String>;

/// Where recorded verdicts are read from: containerd's image records.
pub trait RecordSource: Send + Sync {
    /// The record `name`: its target digest and labels; `None` when there is none.
    fn record<'a>(&'a self, name: &'a str) -> BoxFuture<'a, RecordLookup>;
}

/// Why an image may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A current allow verdict under the statement that covers `name`.
    Verified {
        name: String,
        statement: String,
        verdict: Recorded,
    },
    /// The policy does not enforce on `name` (level `audit`/`skip`, or unmatched on
    /// a node that allows unmatched images).
    NotEnforced { name: String, why: String },
}

/// Why an image may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotVerified {
    #[error("{image}: not verified under trust policy \"{statement}\" ({why})")]
    Unverified {
        image: String,
        statement: String,
        why: String,
    },
    #[error(
        "{image}: no trust policy statement applies to {scope} (this node denies unmatched images)"
    )]
    Unmatched { image: String, scope: String },
}

impl<S: ImageSource> Gate<S> {
    /// Whether `requested` (a name, `repo@digest` or an image ID), which containerd
    /// has as `facts`, may be used by a pod in `namespace`; the refusal is logged as
    /// an audit line.
    pub async fn standing(
        &self,
        call: StandingCall,
        requested: &str,
        facts: &ImageFacts,
        namespace: Option<&str>,
        records: &dyn RecordSource,
    ) -> Result<Standing, NotVerified> {
        let policy = self.policy_for(namespace);
        let mut result = self
            .judge_standing(&policy, requested, facts, records)
            .await;
        // `ImageStatus` carries no namespace. An image with standing under any
        // namespace's policy is shown, so a pod of that namespace need not pull it
        // again; `CreateContainer`, which carries the namespace, decides finally.
        if result.is_err() && namespace.is_none() {
            for other in &self.namespaces {
                let policy = Arc::clone(&other.policy.borrow());
                if let Ok(standing) = self
                    .judge_standing(&policy, requested, facts, records)
                    .await
                {
                    result = Ok(standing);
                    break;
                }
            }
        }
        self.metrics.standing(
            call,
            match &result {
                Ok(Standing::Verified { .. }) => StandingOutcome::Verified,
                Ok(Standing::NotEnforced { .. }) => StandingOutcome::NotEnforced,
                Err(_) => StandingOutcome::Refused,
            },
        );
        match &result {
            Ok(standing) => tracing::debug!(
                call = call.as_str(),
                image = requested,
                namespace = namespace.unwrap_or("-"),
                ?standing,
                "image may be used"
            ),
            Err(refusal) => tracing::info!(
                target: "pullgate::audit",
                call = call.as_str(),
                image = requested,
                id = facts.id.as_str(),
                namespace = namespace.unwrap_or("-"),
                outcome = "denied",
                reason = %refusal,
                "no current verdict"
            ),
        }
        result
    }

    async fn judge_standing(
        &self,
        policy: &LoadedPolicy,
        requested: &str,
        facts: &ImageFacts,
        records: &dyn RecordSource,
    ) -> Result<Standing, NotVerified> {
        // A name decides by itself; an image ID stands if any of its names does.
        let named = (!is_image_id(requested))
            .then(|| requested.parse::<Reference>().ok())
            .flatten();
        let candidates: Vec<Reference> = match named {
            Some(reference) => vec![reference],
            None => facts
                .repo_tags
                .iter()
                .chain(&facts.repo_digests)
                .filter_map(|name| name.parse().ok())
                .collect(),
        };
        let mut first_refusal = None;
        for reference in &candidates {
            match self
                .name_standing(policy, requested, reference, facts, records)
                .await
            {
                Ok(standing) => return Ok(standing),
                // Say why an enforcing statement refused it, rather than that
                // some other name of the image is unmatched.
                Err(refusal) => match (&first_refusal, &refusal) {
                    (None, _)
                    | (Some(NotVerified::Unmatched { .. }), NotVerified::Unverified { .. }) => {
                        first_refusal = Some(refusal);
                    }
                    _ => {}
                },
            }
        }
        Err(first_refusal.unwrap_or_else(|| NotVerified::Unmatched {
            image: requested.to_owned(),
            scope: format!("an image without names ({})", facts.id),
        }))
        .or_else(|refusal| match (&refusal, self.settings.unmatched) {
            (NotVerified::Unmatched { .. }, Unmatched::Allow) if candidates.is_empty() => {
                Ok(Standing::NotEnforced {
                    name: requested.to_owned(),
                    why: "an image without names; node allows unmatched images".into(),
                })
            }
            _ => Err(refusal),
        })
    }

    /// The standing of the image under one of its names.
    async fn name_standing(
        &self,
        policy: &LoadedPolicy,
        requested: &str,
        reference: &Reference,
        facts: &ImageFacts,
        records: &dyn RecordSource,
    ) -> Result<Standing, NotVerified> {
        let name = reference.to_string();
        let scope = reference.scope();
        let Ok(statement) = policy.dir.document.statement_for(&scope) else {
            return match self.settings.unmatched {
                Unmatched::Allow => Ok(Standing::NotEnforced {
                    name,
                    why: "no trust policy statement; node allows unmatched images".into(),
                }),
                Unmatched::Deny => Err(NotVerified::Unmatched {
                    image: requested.to_owned(),
                    scope,
                }),
            };
        };
        if matches!(statement.level.name, LevelName::Skip | LevelName::Audit) {
            let why = format!("level {} does not enforce", statement.level.name);
            return Ok(Standing::NotEnforced { name, why });
        }
        let unverified = |why: String| NotVerified::Unverified {
            image: requested.to_owned(),
            statement: statement.name.clone(),
            why,
        };
        let digests = self
            .digests_of(reference, facts, records)
            .await
            .map_err(unverified)?;
        let fingerprint = &policy.dir.fingerprint;
        let now = self.clock.now();
        for digest in &digests {
            if let Some(verdict) = self.book.current(fingerprint, digest, &statement.name, now) {
                return Ok(Standing::Verified {
                    name,
                    statement: statement.name.clone(),
                    verdict,
                });
            }
        }
        let mut why = None;
        for digest in &digests {
            match recorded(
                records,
                fingerprint,
                reference,
                digest,
                &statement.name,
                now,
            )
            .await
            {
                Ok(verdict) => {
                    self.book.insert(fingerprint, verdict.clone());
                    return Ok(Standing::Verified {
                        name,
                        statement: statement.name.clone(),
                        verdict,
                    });
                }
                Err(reason) => {
                    why.get_or_insert(reason);
                }
            }
        }
        Err(unverified(why.unwrap_or_else(|| {
            "containerd knows no manifest digest for it".to_owned()
        })))
    }

    /// The manifest digests `reference` has on the node: its own, else those of its
    /// repository among the image's names, else the target of its tag record.
    async fn digests_of(
        &self,
        reference: &Reference,
        facts: &ImageFacts,
        records: &dyn RecordSource,
    ) -> Result<Vec<Digest>, String> {
        if let Some(digest) = reference.digest() {
            return Ok(vec![digest.clone()]);
        }
        let same_repository: Vec<Digest> = facts
            .repo_digests
            .iter()
            .filter_map(|name| name.parse::<Reference>().ok())
            .filter(|named| {
                named.registry() == reference.registry()
                    && named.repository() == reference.repository()
            })
            .filter_map(|named| named.digest().cloned())
            .collect();
        if !same_repository.is_empty() {
            return Ok(same_repository);
        }
        match records.record(&reference.to_string()).await {
            Ok(Some((digest, _))) => Ok(vec![digest]),
            Ok(None) => Ok(Vec::new()),
            Err(error) => Err(format!("containerd's record could not be read: {error}")),
        }
    }
}

/// The verdict recorded on `reference@digest`'s record in containerd under
/// `fingerprint`, if it holds for `statement` at `now`; else why not.
async fn recorded(
    records: &dyn RecordSource,
    fingerprint: &crate::verdict::Fingerprint,
    reference: &Reference,
    digest: &Digest,
    statement: &str,
    now: SystemTime,
) -> Result<Recorded, String> {
    let pinned = reference.pinned(digest);
    let labels = match records.record(&pinned).await {
        Ok(Some((_, labels))) => labels,
        Ok(None) => return Err(format!("no verdict recorded for {digest}")),
        Err(error) => return Err(format!("containerd's record could not be read: {error}")),
    };
    let Some(value) = labels.get(&fingerprint.label_key()) else {
        return Err(
            if labels
                .keys()
                .any(|k| k.starts_with(crate::verdict::LABEL_PREFIX))
            {
                format!("{digest} has a verdict only under another trust policy: an earlier version of this one, or another namespace's")
            } else {
                format!("no verdict recorded for {digest}")
            },
        );
    };
    let verdict = Recorded::from_label(value).map_err(|error| error.to_string())?;
    verdict
        .standing(digest, statement, now)
        .map_err(|stale| format!("{digest}: {stale}"))?;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use tokio::sync::watch;

    use super::*;
    use crate::cache::{CacheConfig, VerdictCache};
    use crate::gate::{
        Credentials, Descriptor, FixedClock, GateSettings, NamespacePolicy, RegistryError,
    };
    use crate::policy::TrustPolicyDocument;
    use crate::verdict::Fingerprint;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const ID: &str = "sha256:9999999999999999999999999999999999999999999999999999999999999999";
    const NOW: u64 = 1_767_225_600;

    /// A source the standing checks must never reach.
    struct NoRegistry;

    impl ImageSource for NoRegistry {
        type Signatures<'a> = crate::verify::RegistrySource<'a>;

        async fn resolve(
            &self,
            reference: &Reference,
            _: &Credentials,
            _: Instant,
        ) -> Result<Descriptor, RegistryError> {
            panic!("the registry was asked to resolve {reference}")
        }

        fn signatures<'a>(
            &'a self,
            reference: &'a Reference,
            _: &'a Credentials,
            _: Instant,
        ) -> Self::Signatures<'a> {
            panic!("the registry was asked for signatures of {reference}")
        }
    }

    /// A record's target and labels.
    type Entry = (Digest, BTreeMap<String, String>);

    /// containerd's records, counting lookups.
    #[derive(Default)]
    struct Records {
        records: Mutex<BTreeMap<String, Entry>>,
        lookups: AtomicUsize,
    }

    impl Records {
        fn put(&self, name: &str, digest: &str, labels: &[(String, String)]) {
            let labels = labels.iter().cloned().collect();
            let digest = digest.parse().expect("digest");
            self.records
                .lock()
                .expect("lock")
                .insert(name.to_owned(), (digest, labels));
        }
    }

    impl RecordSource for Records {
        fn record<'a>(&'a self, name: &'a str) -> BoxFuture<'a, RecordLookup> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            let found = self.records.lock().expect("lock").get(name).cloned();
            Box::pin(async move { Ok(found) })
        }
    }

    fn loaded(statements: serde_json::Value, fingerprint: &str) -> Arc<LoadedPolicy> {
        let json = serde_json::json!({"version": "1.0", "trustPolicies": statements});
        let document = TrustPolicyDocument::parse(json.to_string().as_bytes()).expect("policy");
        Arc::new(LoadedPolicy {
            generation: 1,
            dir: Arc::new(crate::policy_dir::PolicyDir {
                document,
                stores: Vec::new(),
                policy_file: "trustpolicy.json".into(),
                fingerprint: Fingerprint::from_hex(fingerprint),
            }),
        })
    }

    fn statement(name: &str, scope: &str, level: &str) -> serde_json::Value {
        if level == "skip" {
            return serde_json::json!({
                "name": name, "registryScopes": [scope],
                "signatureVerification": {"level": "skip"},
            });
        }
        serde_json::json!({
            "name": name, "registryScopes": [scope],
            "signatureVerification": {"level": level},
            "trustStores": ["ca:acme"], "trustedIdentities": ["*"],
        })
    }

    const NODE_FP: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const TEAM_FP: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// The node's policy: strict `r.test/app`, audit `r.test/audited`, skip
    /// `r.test/skipped`; namespaces `team-a-*` trust `r.test/app` under their own
    /// policy (another fingerprint).
    fn gate(unmatched: Unmatched) -> Gate<NoRegistry> {
        let node = loaded(
            serde_json::json!([
                statement("prod", "r.test/app", "strict"),
                statement("audited", "r.test/audited", "audit"),
                statement("skipped", "r.test/skipped", "skip"),
            ]),
            NODE_FP,
        );
        let team = loaded(
            serde_json::json!([statement("team-a", "r.test/app", "strict")]),
            TEAM_FP,
        );
        let (_node_tx, node_rx) = watch::channel(node);
        let (_team_tx, team_rx) = watch::channel(team);
        let settings = GateSettings {
            unmatched,
            ..GateSettings::default()
        };
        let clock = FixedClock(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW));
        Gate::new(
            NoRegistry,
            node_rx,
            VerdictCache::new(CacheConfig::default()),
            settings,
        )
        .with_clock(Arc::new(clock))
        .with_namespace_policies(vec![NamespacePolicy {
            patterns: vec!["team-a-*".into()],
            policy: team_rx,
        }])
    }

    fn facts(repo_digests: &[&str]) -> ImageFacts {
        ImageFacts {
            id: ID.into(),
            repo_tags: vec!["r.test/app:1".into()],
            repo_digests: repo_digests.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn verdict(digest: &str, statement: &str, until: Option<u64>) -> Recorded {
        Recorded {
            outcome: "verified".into(),
            digest: digest.parse().expect("digest"),
            verified_at: SystemTime::UNIX_EPOCH + Duration::from_secs(NOW - 60),
            valid_until: until.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s)),
            statement: statement.into(),
        }
    }

    fn label(fingerprint: &str, verdict: &Recorded) -> (String, String) {
        (
            Fingerprint::from_hex(fingerprint).label_key(),
            verdict.to_label(),
        )
    }

    async fn judge(
        gate: &Gate<NoRegistry>,
        requested: &str,
        facts: &ImageFacts,
        namespace: Option<&str>,
        records: &Records,
    ) -> Result<Standing, NotVerified> {
        gate.standing(
            StandingCall::ImageStatus,
            requested,
            facts,
            namespace,
            records,
        )
        .await
    }

    fn why(result: Result<Standing, NotVerified>) -> String {
        match result {
            Err(NotVerified::Unverified { why, statement, .. }) => format!("{statement}: {why}"),
            other => panic!("expected Unverified, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_enforced_image_without_a_verdict_has_no_standing() {
        let gate = gate(Unmatched::Deny);
        let records = Records::default();
        let pinned = format!("r.test/app@{D1}");
        let result = judge(&gate, "r.test/app:1", &facts(&[&pinned]), None, &records).await;
        assert_eq!(why(result), format!("prod: no verdict recorded for {D1}"));
        let error = judge(&gate, "r.test/app:1", &facts(&[&pinned]), None, &records)
            .await
            .expect_err("no standing");
        assert_eq!(
            error.to_string(),
            format!("r.test/app:1: not verified under trust policy \"prod\" (no verdict recorded for {D1})")
        );
    }

    #[tokio::test]
    async fn a_verdict_in_the_book_stands_without_asking_containerd() {
        let gate = gate(Unmatched::Deny);
        gate.book()
            .insert(&Fingerprint::from_hex(NODE_FP), verdict(D1, "prod", None));
        let records = Records::default();
        let pinned = format!("r.test/app@{D1}");
        let standing = judge(&gate, "r.test/app:1", &facts(&[&pinned]), None, &records)
            .await
            .expect("standing");
        assert!(
            matches!(&standing, Standing::Verified { statement, verdict, .. }
                if statement == "prod" && verdict.digest.to_string() == D1),
            "{standing:?}"
        );
        assert_eq!(records.lookups.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_recorded_label_stands_once_and_is_then_remembered() {
        let gate = gate(Unmatched::Deny);
        let records = Records::default();
        let pinned = format!("r.test/app@{D1}");
        records.put(
            &pinned,
            D1,
            &[label(NODE_FP, &verdict(D1, "prod", Some(NOW + 3600)))],
        );
        for _ in 0..2 {
            let standing = judge(&gate, "r.test/app:1", &facts(&[&pinned]), None, &records).await;
            assert!(
                matches!(standing, Ok(Standing::Verified { .. })),
                "{standing:?}"
            );
        }
        assert_eq!(
            records.lookups.load(Ordering::SeqCst),
            1,
            "read once, then from memory"
        );
    }

    #[tokio::test]
    async fn stale_labels_give_no_standing_and_say_why() {
        let gate = gate(Unmatched::Deny);
        let pinned = format!("r.test/app@{D1}");
        let cases = [
            (
                label(TEAM_FP, &verdict(D1, "prod", None)),
                format!("prod: {D1} has a verdict only under another trust policy: an earlier version of this one, or another namespace's"),
            ),
            (
                label(NODE_FP, &verdict(D1, "prod", Some(NOW))),
                format!("prod: {D1}: the verdict expired at 2026-01-01T00:00:00Z"),
            ),
            (
                label(NODE_FP, &verdict(D2, "prod", None)),
                format!("prod: {D1}: the recorded verdict is for {D2}"),
            ),
            (
                label(NODE_FP, &verdict(D1, "older", None)),
                format!("prod: {D1}: the recorded verdict is under statement \"older\""),
            ),
            (
                (Fingerprint::from_hex(NODE_FP).label_key(), "v1;verified".into()),
                "prod: verdict label \"v1;verified\" is malformed: no digest".into(),
            ),
        ];
        for (label, expected) in cases {
            let records = Records::default();
            records.put(&pinned, D1, &[label]);
            let result = judge(&gate, "r.test/app:1", &facts(&[&pinned]), None, &records).await;
            assert_eq!(why(result), expected);
        }
    }

    #[tokio::test]
    async fn a_tag_without_repo_digests_is_judged_by_its_record() {
        // `ctr images import` makes only the tag record: no repo digest.
        let gate = gate(Unmatched::Deny);
        let records = Records::default();
        records.put("r.test/app:1", D2, &[]);
        let result = judge(&gate, "r.test/app:1", &facts(&[]), None, &records).await;
        assert_eq!(why(result), format!("prod: no verdict recorded for {D2}"));
        gate.book()
            .insert(&Fingerprint::from_hex(NODE_FP), verdict(D2, "prod", None));
        let result = judge(&gate, "r.test/app:1", &facts(&[]), None, &records).await;
        assert!(
            matches!(result, Ok(Standing::Verified { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn audit_skip_and_unmatched_are_not_enforced_here() {
        let records = Records::default();
        let allow = gate(Unmatched::Allow);
        let deny = gate(Unmatched::Deny);
        for (image, why) in [
            ("r.test/audited:1", "level audit does not enforce"),
            ("r.test/skipped:1", "level skip does not enforce"),
        ] {
            let standing = judge(&deny, image, &facts(&[]), None, &records).await;
            assert!(
                matches!(&standing, Ok(Standing::NotEnforced { why: w, .. }) if w == why),
                "{standing:?}"
            );
        }
        let standing = judge(&allow, "r.test/other:1", &facts(&[]), None, &records).await;
        assert!(
            matches!(standing, Ok(Standing::NotEnforced { .. })),
            "{standing:?}"
        );
        let refused = judge(&deny, "r.test/other:1", &facts(&[]), None, &records).await;
        assert_eq!(
            refused,
            Err(NotVerified::Unmatched {
                image: "r.test/other:1".into(),
                scope: "r.test/other".into()
            })
        );
        assert_eq!(records.lookups.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_image_id_stands_when_one_of_its_names_does() {
        let gate = gate(Unmatched::Deny);
        let records = Records::default();
        let strict_only = ImageFacts {
            id: ID.into(),
            repo_tags: vec!["r.test/app:1".into()],
            repo_digests: vec![format!("r.test/app@{D1}")],
        };
        let result = judge(&gate, ID, &strict_only, None, &records).await;
        assert_eq!(why(result), format!("prod: no verdict recorded for {D1}"));
        // A name no statement covers does not hide why the enforced one failed.
        let also_unmatched = ImageFacts {
            repo_tags: vec!["r.test/other:1".into(), "r.test/app:1".into()],
            ..strict_only.clone()
        };
        let result = judge(&gate, ID, &also_unmatched, None, &records).await;
        assert_eq!(why(result), format!("prod: no verdict recorded for {D1}"));
        let also_skipped = ImageFacts {
            repo_tags: vec!["r.test/app:1".into(), "r.test/skipped:1".into()],
            ..strict_only.clone()
        };
        let result = judge(&gate, ID, &also_skipped, None, &records).await;
        assert!(
            matches!(result, Ok(Standing::NotEnforced { .. })),
            "{result:?}"
        );
        gate.book()
            .insert(&Fingerprint::from_hex(NODE_FP), verdict(D1, "prod", None));
        let result = judge(&gate, ID, &strict_only, None, &records).await;
        assert!(
            matches!(result, Ok(Standing::Verified { .. })),
            "{result:?}"
        );
        let nameless = ImageFacts {
            id: ID.into(),
            ..ImageFacts::default()
        };
        let refused = judge(&gate, ID, &nameless, None, &records).await;
        assert!(
            matches!(refused, Err(NotVerified::Unmatched { .. })),
            "{refused:?}"
        );
        let allowed = judge(&self::gate(Unmatched::Allow), ID, &nameless, None, &records).await;
        assert!(
            matches!(allowed, Ok(Standing::NotEnforced { .. })),
            "{allowed:?}"
        );
    }

    #[tokio::test]
    async fn a_verdict_under_one_namespace_policy_does_not_count_under_another() {
        let gate = gate(Unmatched::Deny);
        let records = Records::default();
        let pinned = format!("r.test/app@{D1}");
        gate.book()
            .insert(&Fingerprint::from_hex(TEAM_FP), verdict(D1, "team-a", None));
        let team = judge(
            &gate,
            "r.test/app:1",
            &facts(&[&pinned]),
            Some("team-a-web"),
            &records,
        )
        .await;
        assert!(matches!(team, Ok(Standing::Verified { .. })), "{team:?}");
        // ImageStatus (no namespace) shows an image any namespace's policy verified.
        let shown = judge(&gate, "r.test/app:1", &facts(&[&pinned]), None, &records).await;
        assert!(matches!(shown, Ok(Standing::Verified { .. })), "{shown:?}");
        for namespace in [Some("kube-system"), Some("team-b")] {
            let other = judge(
                &gate,
                "r.test/app:1",
                &facts(&[&pinned]),
                namespace,
                &records,
            )
            .await;
            assert_eq!(why(other), format!("prod: no verdict recorded for {D1}"));
        }
    }
}
