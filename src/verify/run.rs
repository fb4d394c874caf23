//! `pullgate verify --oci-layout …`: the engine over an OCI layout on disk, with
//! output like `notation verify` (text or JSON) and an exit status.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::engine::{rfc3339, SignatureReport, Verdict};
use super::layout::{LayoutError, LayoutReference, OciLayout};
use super::oci::Descriptor;
use super::{verify_signatures, Budgets, Judge, RegistrySource};
pub use crate::pki::time::parse_rfc3339;
use crate::policy_dir::{load_policy_dir, PolicyDirError};
use std::sync::Arc;

/// What the command was asked to do.
pub struct LayoutVerification {
    pub reference: String,
    pub policy_dir: PathBuf,
    /// The repository the trust policy's registryScopes are matched against;
    /// default `local/<layout directory name>`.
    pub scope: Option<String>,
    pub now: SystemTime,
    pub budgets: Budgets,
    /// Where CRLs are cached and found (NOTARY.md §7).
    pub revocation: crate::revocation::RevocationSettings,
}

/// Why the command could not reach a verdict (distinct from a failed
/// verification, which is a verdict).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Policy(#[from] PolicyDirError),
    #[error("{0}")]
    Scope(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What the verification concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VerificationResult {
    Verified,
    Failed,
    Skipped,
}

/// The machine-readable result (`--output json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub reference: String,
    pub result: VerificationResult,
    pub trust_policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_signatures: Vec<SignatureReport>,
    pub verification_time: String,
}

impl Outcome {
    pub fn verified(&self) -> bool {
        self.result != VerificationResult::Failed
    }

    /// Text like `notation verify`'s; `verbose` adds each signature's checks.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut out = String::new();
        match self.result {
            VerificationResult::Skipped => out.push_str(&format!(
                "Trust policy \"{}\" is configured to skip signature verification for {}\n",
                self.trust_policy, self.reference
            )),
            VerificationResult::Verified => {
                if let Some(signature) = &self.signature {
                    for check in signature.logged_failures() {
                        out.push_str(&format!(
                            "Warning: {} was set to \"log\" and failed with error: {}\n",
                            check.check,
                            check.error.as_deref().unwrap_or("")
                        ));
                    }
                }
                out.push_str(&format!(
                    "Successfully verified signature for {}\n",
                    self.reference
                ));
            }
            VerificationResult::Failed => out.push_str(&format!(
                "Error: signature verification failed for {}: {}\n",
                self.reference,
                self.error.as_deref().unwrap_or("unknown error")
            )),
        }
        if verbose {
            for signature in self.signature.iter().chain(&self.failed_signatures) {
                out.push_str(&format!("\nSignature {}\n", signature.manifest_digest));
                if let Some(format) = signature.format {
                    out.push_str(&format!(
                        "  envelope: {format} {} {}\n",
                        signature.algorithm.as_deref().unwrap_or("-"),
                        signature.signing_scheme.unwrap_or("-")
                    ));
                }
                if let Some(signer) = &signature.signer {
                    out.push_str(&format!("  signer: {signer}\n"));
                }
                if let Some(source) = &signature.time_source {
                    out.push_str(&format!("  time source: {source}\n"));
                }
                for check in &signature.checks {
                    out.push_str(&format!(
                        "  {:<20} {:<7} {}{}\n",
                        check.check,
                        check.action.to_string(),
                        check.outcome,
                        check
                            .error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        out
    }
}

/// Runs a verification of an OCI layout reference.
pub fn verify_layout(request: &LayoutVerification) -> Result<Outcome, RunError> {
    let reference = LayoutReference::parse(&request.reference)?;
    let policy = load_policy_dir(&request.policy_dir)?;
    let scope = match &request.scope {
        Some(scope) => scope.clone(),
        None => default_scope(&reference.dir)?,
    };
    let judge = judge(policy, &scope, request.now, &request.budgets)?;
    let layout = OciLayout::open(&reference.dir)?;
    let target = layout.resolve(&reference.selector)?;
    let shown = format!("{}@{}", reference.dir.display(), target.digest);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let judge = judge.with_revocation(revocation(&request.revocation, runtime.handle()));
    let verdict = runtime.block_on(verify_signatures(&layout, &judge, &shown, &target))?;
    Ok(outcome(verdict, shown, &judge, target))
}

/// What `pullgate verify <reference>` was asked to do.
pub struct RemoteVerification {
    pub reference: String,
    pub policy_dir: PathBuf,
    pub credentials: crate::registry::Credentials,
    pub registry: crate::registry::RegistryConfig,
    /// The whole verification (resolve, listing, fetches) must end within this.
    pub budget: std::time::Duration,
    pub now: SystemTime,
    pub budgets: Budgets,
    /// Where CRLs are cached and found (NOTARY.md §7).
    pub revocation: crate::revocation::RevocationSettings,
}

/// Runs a verification of a registry reference: the trust policy statement is
/// selected first (a `skip` level never contacts the registry), then the reference
/// is resolved, its signatures listed and fetched within the budgets, and judged.
pub async fn verify_remote(request: &RemoteVerification) -> Result<Outcome, RunError> {
    let reference: crate::reference::Reference = request.reference.parse()?;
    let judge = judge(
        load_policy_dir(&request.policy_dir)?,
        &reference.scope(),
        request.now,
        &request.budgets,
    )?;
    if judge.statement().level.name == crate::policy::LevelName::Skip {
        return Ok(Outcome {
            reference: reference.to_string(),
            result: VerificationResult::Skipped,
            trust_policy: judge.statement().name.clone(),
            level: Some(level_name(&judge)),
            target: None,
            error: None,
            signature: None,
            failed_signatures: Vec::new(),
            verification_time: rfc3339(judge.now),
        });
    }
    let deadline = crate::clock::monotonic_now() + request.budget;
    let client = crate::registry::RegistryClient::new(request.registry.clone())?;
    let credentials = &request.credentials;
    let target = client.resolve(&reference, credentials, deadline).await?;
    let shown = reference.pinned(&target.digest);
    let source = RegistrySource {
        client: &client,
        reference: &reference,
        credentials,
        deadline,
    };
    let judge = judge.with_revocation(revocation(
        &request.revocation,
        &tokio::runtime::Handle::current(),
    ));
    let verdict = verify_signatures(&source, &judge, &shown, &target).await?;
    Ok(outcome(verdict, shown, &judge, target))
}

/// The judge for `scope` under `policy`.
fn judge(
    policy: crate::policy_dir::PolicyDir,
    scope: &str,
    now: SystemTime,
    budgets: &Budgets,
) -> Result<Judge, RunError> {
    Judge::for_scope(Arc::new(policy), scope, now, budgets.clone())
        .map_err(|e| RunError::Scope(e.to_string()))
}

fn revocation(
    settings: &crate::revocation::RevocationSettings,
    runtime: &tokio::runtime::Handle,
) -> Option<Arc<dyn crate::revocation::RevocationCheck>> {
    Some(Arc::new(crate::revocation::Checker::new(
        settings.clone(),
        runtime.clone(),
    )))
}

fn level_name(judge: &Judge) -> String {
    judge.statement().level.name.to_string()
}

fn outcome(verdict: Verdict, reference: String, judge: &Judge, target: Descriptor) -> Outcome {
    let mut outcome = Outcome {
        reference,
        result: VerificationResult::Skipped,
        trust_policy: judge.statement().name.clone(),
        level: Some(level_name(judge)),
        target: Some(target),
        error: None,
        signature: None,
        failed_signatures: Vec::new(),
        verification_time: rfc3339(judge.now),
    };
    match verdict {
        Verdict::Skipped { statement } => outcome.trust_policy = statement,
        Verdict::Verified(verified) => {
            outcome.result = VerificationResult::Verified;
            outcome.trust_policy = verified.statement().to_owned();
            outcome.signature = Some(verified.report().clone());
        }
        Verdict::Failed {
            reason,
            statement,
            signatures,
        } => {
            outcome.result = VerificationResult::Failed;
            outcome.trust_policy = statement;
            outcome.error = Some(reason.to_string());
            outcome.failed_signatures = signatures;
        }
    }
    outcome
}

fn default_scope(dir: &Path) -> Result<String, RunError> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            RunError::Scope(format!(
                "cannot derive a scope from {}; pass --scope REPOSITORY",
                dir.display()
            ))
        })?;
    Ok(format!("local/{name}"))
}
