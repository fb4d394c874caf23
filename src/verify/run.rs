//! `pullgate verify --oci-layout …`: the engine over an OCI layout on disk, with
//! output like `notation verify` (text or JSON) and an exit status.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::engine::{rfc3339, SignatureReport, Verdict};
use super::layout::{LayoutError, LayoutReference, OciLayout};
use super::oci::Descriptor;
use super::{verify_signatures, Budgets, Judge, RegistrySource, VerifyError};
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

/// The machine-readable result (`--output json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub reference: String,
    /// `verified`, `failed` or `skipped`.
    pub result: &'static str,
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
        self.result != "failed"
    }

    /// Text like `notation verify`'s; `verbose` adds each signature's checks.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut out = String::new();
        match self.result {
            "skipped" => out.push_str(&format!(
                "Trust policy \"{}\" is configured to skip signature verification for {}\n",
                self.trust_policy, self.reference
            )),
            "verified" => {
                if let Some(signature) = &self.signature {
                    for check in signature.logged_failures() {
                        out.push_str(&format!(
                            "Warning: {} was set to \"log\" and failed with error: {}\n",
                            check.check.as_str(),
                            check.error.as_deref().unwrap_or("")
                        ));
                    }
                }
                out.push_str(&format!(
                    "Successfully verified signature for {}\n",
                    self.reference
                ));
            }
            _ => out.push_str(&format!(
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
                    out.push_str(&format!("  time source: {}\n", time_source_text(source)));
                }
                for check in &signature.checks {
                    out.push_str(&format!(
                        "  {:<20} {:<7} {}{}\n",
                        check.check.as_str(),
                        check.action,
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

fn time_source_text(source: &super::engine::TimeSource) -> String {
    match source {
        super::engine::TimeSource::TimestampAuthority {
            gen_time,
            accuracy_ms,
            tsa,
        } => format!("timestamp authority {tsa}, genTime {gen_time} ± {accuracy_ms} ms"),
        super::engine::TimeSource::SigningAuthority { time } => {
            format!("signing authority, authenticSigningTime {time}")
        }
        super::engine::TimeSource::LocalClock { time } => format!("local clock, {time}"),
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
    let statement = policy
        .document
        .statement_for(&scope)
        .map_err(|e| RunError::Scope(e.to_string()))?;
    let verification_time = rfc3339(request.now);
    let level = Some(format!("{:?}", statement.level.name).to_lowercase());

    let layout = OciLayout::open(&reference.dir)?;
    let target = layout.resolve(&reference.selector)?;
    let shown = format!("{}@{}", reference.dir.display(), target.digest);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let judge = Judge {
        statement: statement.name.clone(),
        policy: Arc::new(policy),
        now: request.now,
        budgets: request.budgets.clone(),
        revocation: Some(Arc::new(crate::revocation::Checker::new(
            request.revocation.clone(),
            runtime.handle().clone(),
        ))),
    };
    let verdict = runtime
        .block_on(verify_signatures(&layout, &judge, &shown, &target))
        .map_err(|e| match e {
            VerifyError::Source(e) => RunError::Layout(e),
            VerifyError::Statement(e) => RunError::Scope(e.to_string()),
        })?;
    Ok(outcome(verdict, shown, level, target, verification_time))
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
    let policy = load_policy_dir(&request.policy_dir)?;
    let statement = policy
        .document
        .statement_for(&reference.scope())
        .map_err(|e| RunError::Scope(e.to_string()))?;
    let verification_time = rfc3339(request.now);
    let level = Some(format!("{:?}", statement.level.name).to_lowercase());
    if statement.level.name == crate::policy::LevelName::Skip {
        return Ok(Outcome {
            reference: reference.to_string(),
            result: "skipped",
            trust_policy: statement.name.clone(),
            level,
            target: None,
            error: None,
            signature: None,
            failed_signatures: Vec::new(),
            verification_time,
        });
    }
    let deadline = std::time::Instant::now() + request.budget;
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
    let judge = Judge {
        statement: statement.name.clone(),
        policy: Arc::new(policy),
        now: request.now,
        budgets: request.budgets.clone(),
        revocation: Some(Arc::new(crate::revocation::Checker::new(
            request.revocation.clone(),
            tokio::runtime::Handle::current(),
        ))),
    };
    let verdict = verify_signatures(&source, &judge, &shown, &target)
        .await
        .map_err(|e| match e {
            VerifyError::Source(e) => RunError::Registry(e),
            VerifyError::Statement(e) => RunError::Scope(e.to_string()),
        })?;
    Ok(outcome(verdict, shown, level, target, verification_time))
}

fn outcome(
    verdict: Verdict,
    shown: String,
    level: Option<String>,
    target: Descriptor,
    verification_time: String,
) -> Outcome {
    match verdict {
        Verdict::Skipped { statement } => Outcome {
            reference: shown,
            result: "skipped",
            trust_policy: statement,
            level,
            target: Some(target),
            error: None,
            signature: None,
            failed_signatures: Vec::new(),
            verification_time,
        },
        Verdict::Verified(verified) => Outcome {
            reference: shown,
            result: "verified",
            trust_policy: verified.statement().to_owned(),
            level,
            target: Some(target),
            error: None,
            signature: Some(verified.report().clone()),
            failed_signatures: Vec::new(),
            verification_time,
        },
        Verdict::Failed {
            reason,
            statement,
            signatures,
        } => Outcome {
            reference: shown,
            result: "failed",
            trust_policy: statement,
            level,
            target: Some(target),
            error: Some(reason.to_string()),
            signature: None,
            failed_signatures: signatures,
            verification_time,
        },
    }
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
