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
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use super::{Gate, ImageSource, Unmatched};
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

/// Which call asked, for the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandingCall {
    ImageStatus,
    CreateContainer,
    RunPodSandbox,
}

impl StandingCall {
    pub fn as_str(self) -> &'static str {
        match self {
            StandingCall::ImageStatus => "ImageStatus",
            StandingCall::CreateContainer => "CreateContainer",
            StandingCall::RunPodSandbox => "RunPodSandbox",
        }
    }
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
        let result = self
            .judge_standing(&policy, requested, facts, records)
            .await;
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
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
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
                format!("{digest} was verified under another trust policy; the policy has changed since")
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
