//! `pullgate images`: every image in containerd's `k8s.io` namespace with its
//! verdict under the trust policy in force, and what a `strict` policy would do
//! with it: the check an operator runs before switching a node from `audit` to
//! `strict` (issue 12).
//!
//! For each image name (tags and `repo@digest` names; the CRI plugin's image-ID
//! records, `sha256:…`, are names of the same images and are left out):
//! 1. the trust policy statement that covers its repository, and its level;
//! 2. a current verdict recorded on the image's records in containerd under the
//!    policy's fingerprint ([`crate::verdict`]), read as the checks before a
//!    container runs read it;
//! 3. without one, a verification now against the registry, of the digest the
//!    record points at, through the engine and [`crate::gate::classify`] as the
//!    gate verifies a pull (`--no-verify` leaves it out);
//! 4. what `strict` would do: an allow with failures that were only logged (at
//!    `audit` or `permissive`) is what `strict` refuses; a denial is refused at
//!    every level; an image no statement covers is refused when the node denies
//!    unmatched images. An image that could not be verified (registry unreachable)
//!    is never counted as passing.
//!
//! Exit status: 0 when every image would pass under `strict`, 1 when some would be
//! refused or could not be checked, 2 when no report could be made (arguments,
//! config, policy, containerd).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cache::Cacheable;
use crate::config::Config;
use crate::gate::{classify, AllowOutcome, Decision, Unmatched};
use crate::oci::Descriptor;
use crate::pki::time::rfc3339;
use crate::policy::{LevelName, TrustPolicyStatement};
use crate::policy_dir::PolicyDir;
use crate::reference::Reference;
use crate::registry::{Credentials, RegistryClient, RegistryError};
use crate::upstream::{ImageRecord, ImageStore};
use crate::verdict::{is_image_id, Recorded};
use crate::verify::{verify_signatures, Budgets, Judge, RegistrySource};

/// Exit status when some image would be refused under `strict` or could not be checked.
pub const EXIT_WOULD_REFUSE: u8 = 1;
/// Exit status when no report could be made.
pub const EXIT_ERROR: u8 = 2;

/// The label the gate puts on a tag record it writes, listing the checks that
/// failed but were only logged ([`crate::gate::tag_labels`]).
const FAILED_CHECKS_LABEL: &str = "io.pullgate.failed-checks";

/// `pullgate images` arguments.
#[derive(Debug, clap::Args)]
pub struct ImagesArgs {
    /// pullgate's config file (as for `serve`): the policy directory, the namespace
    /// policies, containerd's socket, the registry settings. Default:
    /// /etc/pullgate/config.toml if it exists, else built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Judge the images under the policy for pods of this Kubernetes namespace
    /// (the first `[[policy.namespace]]` that matches it, else the default policy).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ImagesOutput::Table)]
    pub output: ImagesOutput,
    /// Do not contact registries: an image without a current recorded verdict is
    /// reported as not checked (and counts as not passing).
    #[arg(long)]
    pub no_verify: bool,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImagesOutput {
    Table,
    Json,
}

/// One image name and its verdict (an element of `--output json`'s array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageReport {
    /// The record's name: `registry/repo:tag` or `registry/repo@sha256:…`.
    pub name: String,
    /// The manifest (or index) digest the record points at.
    pub digest: String,
    /// The trust policy statement that covers the name; `null`: none does.
    pub statement: Option<String>,
    /// That statement's level.
    pub level: Option<String>,
    pub verdict: VerdictReport,
    /// What a `strict` level would do with the image.
    pub strict: StrictOutcome,
}

/// The verdict part of an [`ImageReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictReport {
    pub state: VerdictState,
    /// Where the verdict comes from; `null` when there is none.
    pub source: Option<VerdictSource>,
    /// RFC 3339; `null`: no verdict, or nothing it rests on expires.
    pub valid_until: Option<String>,
    /// Why the image is refused, not checked, or allowed only with failures.
    pub reason: Option<String>,
}

/// What is known about the image under the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictState {
    /// A signature passed every check.
    Verified,
    /// A signature passed the enforced checks; others failed and were only logged.
    AllowedWithFailures,
    /// Level `skip`: nothing is verified.
    Skipped,
    /// No signature passed (or there is none): the gate refuses it at every level.
    Refused,
    /// No trust policy statement covers the repository.
    Unmatched,
    /// No verdict: the registry could not be asked (unreachable, error, timeout).
    Unavailable,
    /// No current recorded verdict, and `--no-verify` was given.
    NotChecked,
    /// The record's name is not an image reference.
    InvalidName,
}

/// Where a verdict comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictSource {
    /// The label on containerd's record, under the current policy fingerprint.
    Recorded,
    /// A verification run by this command.
    VerifiedNow,
}

/// What `strict` would do with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrictOutcome {
    Pass,
    Refuse,
    /// Not known (not verified): never counted as passing.
    Unknown,
}

impl VerdictReport {
    fn new(state: VerdictState, reason: Option<String>) -> VerdictReport {
        VerdictReport {
            state,
            source: None,
            valid_until: None,
            reason,
        }
    }
}

/// What `strict` would do with an image in `state` under a statement at `level`,
/// on a node whose unmatched images are `unmatched`.
pub fn strict_outcome(
    state: VerdictState,
    level: Option<LevelName>,
    unmatched: Unmatched,
) -> StrictOutcome {
    match state {
        VerdictState::Verified | VerdictState::Skipped => StrictOutcome::Pass,
        // At `strict` the failures were let through by the statement's own `log`
        // overrides, which a strict statement keeps; at any other level they are
        // what strict enforces.
        VerdictState::AllowedWithFailures if level == Some(LevelName::Strict) => {
            StrictOutcome::Pass
        }
        VerdictState::AllowedWithFailures | VerdictState::Refused | VerdictState::InvalidName => {
            StrictOutcome::Refuse
        }
        VerdictState::Unmatched => match unmatched {
            Unmatched::Deny => StrictOutcome::Refuse,
            Unmatched::Allow => StrictOutcome::Pass,
        },
        VerdictState::Unavailable | VerdictState::NotChecked => StrictOutcome::Unknown,
    }
}

impl ImageReport {
    /// The VERDICT column.
    pub fn verdict_text(&self) -> String {
        let verdict = &self.verdict;
        let reason = verdict.reason.as_deref().unwrap_or("no reason given");
        let source = match verdict.source {
            Some(VerdictSource::Recorded) => " (recorded)",
            Some(VerdictSource::VerifiedNow) => " (verified now)",
            None => "",
        };
        match verdict.state {
            VerdictState::Verified => match &verdict.valid_until {
                Some(until) => format!("verified until {until}{source}"),
                None => format!("verified, no expiry{source}"),
            },
            VerdictState::AllowedWithFailures if self.strict == StrictOutcome::Pass => {
                format!(
                    "allowed with failures (logged by the statement's overrides): {reason}{source}"
                )
            }
            VerdictState::AllowedWithFailures => format!(
                "strict would refuse: {reason} (allowed with failures at {}){source}",
                self.level.as_deref().unwrap_or("-")
            ),
            VerdictState::Skipped => "not verified (level skip)".to_owned(),
            VerdictState::Refused | VerdictState::InvalidName => {
                format!("strict would refuse: {reason}{source}")
            }
            VerdictState::Unmatched if self.strict == StrictOutcome::Pass => {
                "no statement (allowed: unmatched=allow; unmatched=deny would refuse)".to_owned()
            }
            VerdictState::Unmatched => "no statement (unmatched=deny would refuse)".to_owned(),
            VerdictState::Unavailable => format!("not verified: {reason}"),
            VerdictState::NotChecked => format!("not checked (--no-verify): {reason}"),
        }
    }
}

/// The table: one row per image name, then a summary line.
pub fn render_table(reports: &[ImageReport]) -> String {
    let header = ["NAME", "DIGEST", "STATEMENT", "LEVEL", "VERDICT"];
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|report| {
            [
                report.name.clone(),
                short_digest(&report.digest),
                report.statement.clone().unwrap_or_else(|| "-".to_owned()),
                report.level.clone().unwrap_or_else(|| "-".to_owned()),
                report.verdict_text(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out.push_str(&summary(reports));
    out
}

/// `N image name(s): P would pass under strict, R would be refused, U not verified.`
pub fn summary(reports: &[ImageReport]) -> String {
    let count = |outcome| reports.iter().filter(|r| r.strict == outcome).count();
    format!(
        "{} image name(s): {} would pass under strict, {} would be refused, {} not verified\n",
        reports.len(),
        count(StrictOutcome::Pass),
        count(StrictOutcome::Refuse),
        count(StrictOutcome::Unknown)
    )
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_owned(),
    }
}

/// The exit status for `reports`.
pub fn exit_status(reports: &[ImageReport]) -> u8 {
    if reports.iter().all(|r| r.strict == StrictOutcome::Pass) {
        0
    } else {
        EXIT_WOULD_REFUSE
    }
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImagesError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Policy(#[from] crate::policy_dir::PolicyDirError),
    /// The registry settings (hosts directory, credentials file) do not load.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// containerd's images could not be listed.
    #[error("{error}{}", error.status_message().map(|m| format!(": {m}")).unwrap_or_default())]
    Containerd {
        error: crate::upstream::ImageStoreError,
    },
}

/// Runs `pullgate images`.
pub fn main(args: &ImagesArgs) -> ExitCode {
    let reports = match run(args) {
        Ok(reports) => reports,
        Err(error) => {
            eprintln!("Error: {}", error_chain(&error));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let text = match args.output {
        ImagesOutput::Table => render_table(&reports),
        ImagesOutput::Json => match serde_json::to_string_pretty(&reports) {
            Ok(json) => json + "\n",
            Err(error) => {
                eprintln!("Error: cannot encode the report: {error}");
                return ExitCode::from(EXIT_ERROR);
            }
        },
    };
    use std::io::Write;
    // A closed stdout (`| head`) is not worth a panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::from(exit_status(&reports))
}

/// Loads what the report needs and makes it.
fn run(args: &ImagesArgs) -> Result<Vec<ImageReport>, ImagesError> {
    let config = Config::load_or_default(args.config.as_deref())?;
    let policy = policy_for(&config, args.namespace.as_deref())?;
    let registry = RegistryClient::new(crate::registry::RegistryConfig {
        hosts_dir: Some(config.registry.hosts_dir.clone()),
        credentials_file: config.registry.credentials_file.clone(),
        insecure_registries: config.registry.insecure.clone(),
        ..Default::default()
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ImagesError::Runtime)?;
    let revocation =
        crate::revocation::Checker::new(config.revocation.settings(), runtime.handle().clone());
    let store = ImageStore::new(&config.upstream.containerd_socket);
    let records = runtime
        .block_on(store.list())
        .map_err(|error| ImagesError::Containerd { error })?;
    let judge = Judging {
        policy,
        unmatched: config.policy.unmatched,
        now: crate::clock::wall_now(),
        verifier: (!args.no_verify).then_some(Verifier {
            registry,
            timeout: config.registry.timeout,
            budgets: Budgets {
                max_signature_attempts: config.verify.max_signatures,
                ..Default::default()
            },
            revocation: Some(Arc::new(revocation)),
            max_age: config.policy.verdict_max_age,
        }),
    };
    Ok(runtime.block_on(judge.reports(&records)))
}

/// The policy for pods of `namespace`, chosen as the gate chooses it (the first
/// `[[policy.namespace]]` whose patterns match, else the default). Every policy
/// the config names is loaded, as `serve` loads them before it starts, so a
/// broken one is an error here too.
fn policy_for(
    config: &Config,
    namespace: Option<&str>,
) -> Result<Arc<PolicyDir>, crate::policy_dir::PolicyDirError> {
    let load = crate::policy_dir::load_policy_dir;
    let default = load(&config.policy.dir)?;
    let mut tables = Vec::new();
    for table in &config.policy.namespaces {
        let (_, policy) = tokio::sync::watch::channel(Arc::new(crate::verify::LoadedPolicy {
            generation: 1,
            dir: Arc::new(load(&table.dir)?),
        }));
        tables.push(crate::gate::NamespacePolicy {
            patterns: table.namespaces.clone(),
            policy,
        });
    }
    let chosen = namespace.and_then(|namespace| tables.iter().find(|t| t.matches(namespace)));
    Ok(match chosen {
        Some(table) => Arc::clone(&table.policy.borrow().dir),
        None => Arc::new(default),
    })
}

/// An error and its sources, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Many errors already show their source in their own text.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// What this run learnt from registries: verdicts by (`repo@digest`, statement),
/// and the registries that could not be reached, by name, each with the report of
/// the first failure: a registry that is down costs one timeout, not one per image.
#[derive(Default)]
struct Asked {
    verdicts: HashMap<(String, String), VerdictReport>,
    unreachable: HashMap<String, VerdictReport>,
}

/// How images are verified now when they have no current recorded verdict.
struct Verifier {
    registry: RegistryClient,
    /// One verification's registry work (`[registry] timeout`).
    timeout: Duration,
    budgets: Budgets,
    revocation: Option<Arc<dyn crate::revocation::RevocationCheck>>,
    max_age: Option<Duration>,
}

/// What the images are judged under.
struct Judging {
    policy: Arc<PolicyDir>,
    unmatched: Unmatched,
    now: SystemTime,
    /// `None`: `--no-verify`.
    verifier: Option<Verifier>,
}

impl Judging {
    /// A report per image name in `records`, sorted by name; image-ID records are
    /// left out. Each (repository, digest, statement) is verified at most once.
    async fn reports(&self, records: &[ImageRecord]) -> Vec<ImageReport> {
        let by_name: HashMap<&str, &ImageRecord> =
            records.iter().map(|r| (r.name.as_str(), r)).collect();
        let mut asked = Asked::default();
        let mut reports = Vec::new();
        let mut named: Vec<&ImageRecord> =
            records.iter().filter(|r| !is_image_id(&r.name)).collect();
        named.sort_by(|a, b| a.name.cmp(&b.name));
        for record in named {
            reports.push(self.report(record, &by_name, &mut asked).await);
        }
        reports
    }

    async fn report(
        &self,
        record: &ImageRecord,
        by_name: &HashMap<&str, &ImageRecord>,
        asked: &mut Asked,
    ) -> ImageReport {
        let mut report = ImageReport {
            name: record.name.clone(),
            digest: record.target.digest.to_string(),
            statement: None,
            level: None,
            verdict: VerdictReport::new(VerdictState::Unmatched, None),
            strict: StrictOutcome::Unknown,
        };
        let reference: Reference = match record.name.parse() {
            Ok(reference) => reference,
            Err(error) => {
                report.verdict = VerdictReport::new(
                    VerdictState::InvalidName,
                    Some(format!("not an image reference: {error}")),
                );
                report.strict = strict_outcome(report.verdict.state, None, self.unmatched);
                return report;
            }
        };
        let Ok(statement) = self.policy.document.statement_for(&reference.scope()) else {
            report.strict = strict_outcome(VerdictState::Unmatched, None, self.unmatched);
            return report;
        };
        let level = statement.level.name;
        report.statement = Some(statement.name.clone());
        report.level = Some(level.to_string());
        report.verdict = if level == LevelName::Skip {
            VerdictReport::new(VerdictState::Skipped, None)
        } else {
            let digest = &record.target.digest;
            match self.recorded(&reference, record, by_name, statement) {
                Ok(verdict) => verdict,
                // Why this name has no current verdict is its own; only what the
                // registry says is shared between the names of one digest.
                Err(why) if self.verifier.is_none() => {
                    VerdictReport::new(VerdictState::NotChecked, Some(why))
                }
                Err(_) => {
                    let key = (reference.pinned(digest), statement.name.clone());
                    let registry = reference.registry();
                    match (asked.verdicts.get(&key), asked.unreachable.get(registry)) {
                        (Some(verdict), _) | (None, Some(verdict)) => verdict.clone(),
                        (None, None) => {
                            let (verdict, reached) =
                                self.verify_now(&reference, &record.target).await;
                            if !reached {
                                asked
                                    .unreachable
                                    .insert(registry.to_owned(), verdict.clone());
                            }
                            asked.verdicts.insert(key, verdict.clone());
                            verdict
                        }
                    }
                }
            }
        };
        report.strict = strict_outcome(report.verdict.state, Some(level), self.unmatched);
        report
    }

    /// The current verdict recorded on `record` or on its `repo@digest` record
    /// under this policy's fingerprint; else why there is none.
    fn recorded(
        &self,
        reference: &Reference,
        record: &ImageRecord,
        by_name: &HashMap<&str, &ImageRecord>,
        statement: &TrustPolicyStatement,
    ) -> Result<VerdictReport, String> {
        let digest = &record.target.digest;
        let pinned = reference.pinned(digest);
        let holders: Vec<&ImageRecord> = std::iter::once(record)
            .chain(by_name.get(pinned.as_str()).copied())
            .collect();
        let key = self.policy.fingerprint.label_key();
        let mut why = None;
        for holder in &holders {
            let Some(value) = holder.labels.get(&key) else {
                continue;
            };
            let standing = Recorded::from_label(value)
                .map_err(|error| error.to_string())
                .and_then(|verdict| {
                    verdict
                        .standing(digest, &statement.name, self.now)
                        .map(|()| verdict)
                        .map_err(|stale| format!("recorded verdict: {stale}"))
                });
            match standing {
                Ok(verdict) => return Ok(recorded_report(&verdict, &holders)),
                Err(reason) => {
                    why.get_or_insert(reason);
                }
            }
        }
        Err(why.unwrap_or_else(|| {
            let other_policy = holders.iter().any(|holder| {
                holder
                    .labels
                    .keys()
                    .any(|k| k.starts_with(crate::verdict::LABEL_PREFIX))
            });
            if other_policy {
                "verified under another trust policy only".to_owned()
            } else {
                "no verdict recorded".to_owned()
            }
        }))
    }

    /// Verifies `reference`'s `target` against the registry now, as the gate
    /// verifies a pull: the statement's judge, the registry's signatures, the
    /// engine, [`classify`]. `false`: the registry could not be reached (or was
    /// overloaded), and is not worth asking again in this run.
    async fn verify_now(
        &self,
        reference: &Reference,
        target: &Descriptor,
    ) -> (VerdictReport, bool) {
        let Some(verifier) = &self.verifier else {
            return (VerdictReport::new(VerdictState::NotChecked, None), true);
        };
        let pinned: Reference = match reference.pinned(&target.digest).parse() {
            Ok(pinned) => pinned,
            Err(error) => {
                let report = VerdictReport::new(VerdictState::InvalidName, Some(error.to_string()));
                return (report, true);
            }
        };
        let judge = match Judge::for_scope(
            Arc::clone(&self.policy),
            &pinned.scope(),
            self.now,
            verifier.budgets.clone(),
        ) {
            Ok(judge) => judge.with_revocation(verifier.revocation.clone()),
            Err(error) => {
                let report = VerdictReport::new(VerdictState::Unmatched, Some(error.to_string()));
                return (report, true);
            }
        };
        let deadline = crate::clock::monotonic_now() + verifier.timeout;
        let credentials = Credentials::None;
        let resolved = match verifier
            .registry
            .resolve(&pinned, &credentials, deadline)
            .await
        {
            Ok(resolved) => resolved,
            Err(error) => return unavailable(&error),
        };
        let source = RegistrySource {
            client: &verifier.registry,
            reference: &pinned,
            credentials: &credentials,
            deadline,
        };
        let shown = pinned.to_string();
        let verdict = verify_signatures(&source, &judge, &shown, &resolved).await;
        let decision = match classify(verdict, self.now, verifier.max_age) {
            Cacheable::Allow(decision)
            | Cacheable::AllowUntil(decision, _)
            | Cacheable::Deny(decision)
            | Cacheable::Transient(decision) => decision,
        };
        let mut report = match decision {
            Decision::Allow(allowed) => {
                let reason = (!allowed.logged.is_empty()).then(|| {
                    allowed
                        .logged
                        .iter()
                        .map(|(check, error)| format!("{check}: {error}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                });
                VerdictReport {
                    state: allow_state(allowed.outcome),
                    source: None,
                    valid_until: allowed.valid_until.map(rfc3339),
                    reason,
                }
            }
            Decision::Deny { reason, .. } => {
                VerdictReport::new(VerdictState::Refused, Some(reason.to_string()))
            }
            Decision::Unavailable(error) => return unavailable(&error),
        };
        report.source = Some(VerdictSource::VerifiedNow);
        (report, true)
    }
}

/// The report of a registry error: no verdict, and why; `false` when the error
/// says the registry cannot be reached now ([`RegistryError::is_transient`]).
fn unavailable(error: &RegistryError) -> (VerdictReport, bool) {
    let what = if error.is_transient() {
        "registry unreachable"
    } else {
        "registry error"
    };
    let report = VerdictReport::new(
        VerdictState::Unavailable,
        Some(format!("{what}: {}", error_chain(error))),
    );
    (report, !error.is_transient())
}

fn allow_state(outcome: AllowOutcome) -> VerdictState {
    match outcome {
        AllowOutcome::Verified => VerdictState::Verified,
        AllowOutcome::AllowedWithFailures => VerdictState::AllowedWithFailures,
        AllowOutcome::Skipped => VerdictState::Skipped,
    }
}

/// The report of a current recorded verdict; for an allow with failures, the
/// checks that failed as the gate labelled them on the tag record.
fn recorded_report(verdict: &Recorded, holders: &[&ImageRecord]) -> VerdictReport {
    let state = match verdict.outcome.as_str() {
        "verified" => VerdictState::Verified,
        "skipped" => VerdictState::Skipped,
        _ => VerdictState::AllowedWithFailures,
    };
    let reason = (state == VerdictState::AllowedWithFailures).then(|| {
        let failed = holders
            .iter()
            .find_map(|holder| holder.labels.get(FAILED_CHECKS_LABEL))
            .map_or("not recorded", String::as_str);
        format!("failed checks: {}", failed_checks_text(failed))
    });
    VerdictReport {
        state,
        source: Some(VerdictSource::Recorded),
        valid_until: verdict.valid_until.map(rfc3339),
        reason,
    }
}

/// `authenticity,trusted_identity` (the label's form, [`Check::label`]) as
/// `authenticity, trusted identity` ([`Check::as_str`]).
fn failed_checks_text(label: &str) -> String {
    label.replace('_', " ").replace(',', ", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::policy::TrustPolicyDocument;
    use crate::verdict::Fingerprint;

    const HEX_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const HEX_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// `audited` (audit) for r.test/audited, `enforced` (strict) for r.test/strict,
    /// `skipped` (skip) for r.test/skipped; nothing else.
    fn policy() -> Arc<PolicyDir> {
        let statement = |name: &str, level: &str| {
            serde_json::json!({
                "name": name,
                "registryScopes": [format!("r.test/{name}")],
                "signatureVerification": {"level": level},
                "trustStores": ["ca:acme"],
                "trustedIdentities": ["*"],
            })
        };
        let mut skipped = statement("skipped", "skip");
        let skipped_map = skipped.as_object_mut().expect("object");
        skipped_map.remove("trustStores");
        skipped_map.remove("trustedIdentities");
        let document = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [
                statement("audited", "audit"),
                statement("strict", "strict"),
                skipped,
            ],
        });
        let document = TrustPolicyDocument::parse(document.to_string().as_bytes()).expect("policy");
        Arc::new(PolicyDir {
            document,
            stores: Vec::new(),
            policy_file: "trustpolicy.json".into(),
            fingerprint: Fingerprint::from_hex("0123456789abcdef0123"),
        })
    }

    fn judging(unmatched: Unmatched) -> Judging {
        Judging {
            policy: policy(),
            unmatched,
            now: at(2_000_000_000),
            verifier: None,
        }
    }

    fn record(name: &str, hex: &str, labels: &[(&str, &str)]) -> ImageRecord {
        ImageRecord {
            name: name.to_owned(),
            target: Descriptor {
                media_type: crate::oci::MEDIA_TYPE_IMAGE_MANIFEST.into(),
                digest: format!("sha256:{hex}").parse().expect("digest"),
                size: 100,
                annotations: BTreeMap::new(),
                artifact_type: None,
            },
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The verdict label value for `hex` under `statement`.
    fn label(outcome: &str, hex: &str, statement: &str, until: Option<u64>) -> String {
        Recorded {
            outcome: outcome.into(),
            digest: format!("sha256:{hex}").parse().expect("digest"),
            verified_at: at(1_900_000_000),
            valid_until: until.map(at),
            statement: statement.into(),
        }
        .to_label()
    }

    fn reports(judging: &Judging, records: &[ImageRecord]) -> Vec<ImageReport> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(judging.reports(records))
    }

    #[test]
    fn a_current_recorded_verdict_is_reported_with_its_end_and_the_id_record_is_left_out() {
        let judging = judging(Unmatched::Deny);
        let key = judging.policy.fingerprint.label_key();
        let value = label("verified", HEX_A, "strict", Some(2_100_000_000));
        let records = [
            // The verdict sits on the pinned record only; the tag finds it there.
            record(
                &format!("r.test/strict@sha256:{HEX_A}"),
                HEX_A,
                &[(&key, &value)],
            ),
            record("r.test/strict:v1", HEX_A, &[]),
            record(&format!("sha256:{HEX_B}"), HEX_A, &[]),
        ];
        let reports = reports(&judging, &records);
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "r.test/strict:v1",
                &*format!("r.test/strict@sha256:{HEX_A}")
            ]
        );
        for report in &reports {
            assert_eq!(report.statement.as_deref(), Some("strict"));
            assert_eq!(report.level.as_deref(), Some("strict"));
            assert_eq!(
                report.verdict,
                VerdictReport {
                    state: VerdictState::Verified,
                    source: Some(VerdictSource::Recorded),
                    valid_until: Some("2036-07-18T13:20:00Z".into()),
                    reason: None,
                }
            );
            assert_eq!(report.strict, StrictOutcome::Pass);
            assert_eq!(
                report.verdict_text(),
                "verified until 2036-07-18T13:20:00Z (recorded)"
            );
        }
        assert_eq!(exit_status(&reports), 0);
    }

    #[test]
    fn stale_or_foreign_verdicts_do_not_count() {
        let judging = judging(Unmatched::Deny);
        let key = judging.policy.fingerprint.label_key();
        let expired = label("verified", HEX_A, "strict", Some(1_999_999_999));
        let retargeted = label("verified", HEX_B, "strict", None);
        let records = [
            record("r.test/strict:expired", HEX_A, &[(&key, &expired)]),
            record("r.test/strict:moved", HEX_A, &[(&key, &retargeted)]),
            record(
                "r.test/strict:old-policy",
                HEX_A,
                &[("io.pullgate.verdict.ffffffffffffffff", &retargeted)],
            ),
            record("r.test/strict:never", HEX_A, &[]),
        ];
        let reasons: Vec<(String, Option<String>)> = reports(&judging, &records)
            .into_iter()
            .map(|report| {
                assert_eq!(report.verdict.state, VerdictState::NotChecked);
                assert_eq!(report.strict, StrictOutcome::Unknown);
                (report.name, report.verdict.reason)
            })
            .collect();
        let expected = [
            (
                "r.test/strict:expired",
                "recorded verdict: the verdict expired at 2033-05-18T03:33:19Z",
            ),
            (
                "r.test/strict:moved",
                &*format!("recorded verdict: the recorded verdict is for sha256:{HEX_B}"),
            ),
            ("r.test/strict:never", "no verdict recorded"),
            (
                "r.test/strict:old-policy",
                "verified under another trust policy only",
            ),
        ];
        let expected: Vec<(String, Option<String>)> = expected
            .iter()
            .map(|(name, why)| ((*name).to_owned(), Some((*why).to_owned())))
            .collect();
        assert_eq!(reasons, expected);
    }

    #[test]
    fn logged_failures_at_audit_are_what_strict_refuses() {
        let judging = judging(Unmatched::Deny);
        let key = judging.policy.fingerprint.label_key();
        let value = label("allowed-with-failures", HEX_A, "audited", None);
        let records = [record(
            "r.test/audited:v1",
            HEX_A,
            &[
                (&key, &value),
                (FAILED_CHECKS_LABEL, "authenticity,trusted_identity"),
            ],
        )];
        let report = &reports(&judging, &records)[0];
        assert_eq!(report.verdict.state, VerdictState::AllowedWithFailures);
        assert_eq!(report.strict, StrictOutcome::Refuse);
        assert_eq!(
            report.verdict_text(),
            "strict would refuse: failed checks: authenticity, trusted identity \
             (allowed with failures at audit) (recorded)"
        );
        assert_eq!(exit_status(std::slice::from_ref(report)), EXIT_WOULD_REFUSE);
    }

    #[test]
    fn unmatched_skipped_and_invalid_names_follow_the_node_setting() {
        let records = [
            record("r.test/other:v1", HEX_A, &[]),
            record("r.test/skipped:v1", HEX_A, &[]),
            record("Not A Reference", HEX_A, &[]),
        ];
        let deny = reports(&judging(Unmatched::Deny), &records);
        let outcome: Vec<(&str, VerdictState, StrictOutcome)> = deny
            .iter()
            .map(|r| (r.name.as_str(), r.verdict.state, r.strict))
            .collect();
        assert_eq!(
            outcome,
            [
                (
                    "Not A Reference",
                    VerdictState::InvalidName,
                    StrictOutcome::Refuse
                ),
                (
                    "r.test/other:v1",
                    VerdictState::Unmatched,
                    StrictOutcome::Refuse
                ),
                (
                    "r.test/skipped:v1",
                    VerdictState::Skipped,
                    StrictOutcome::Pass
                ),
            ]
        );
        assert_eq!(
            deny[1].verdict_text(),
            "no statement (unmatched=deny would refuse)"
        );
        assert_eq!(deny[2].verdict_text(), "not verified (level skip)");
        let allow = reports(&judging(Unmatched::Allow), &records[..1]);
        assert_eq!(allow[0].strict, StrictOutcome::Pass);
        assert_eq!(
            allow[0].verdict_text(),
            "no statement (allowed: unmatched=allow; unmatched=deny would refuse)"
        );
    }

    #[test]
    fn strict_outcomes_by_state_and_level() {
        use LevelName::{Audit, Permissive, Strict};
        use StrictOutcome::{Pass, Refuse, Unknown};
        use VerdictState::*;
        let deny = crate::gate::Unmatched::Deny;
        let cases = [
            (Verified, Some(Audit), Pass),
            (Skipped, None, Pass),
            (AllowedWithFailures, Some(Audit), Refuse),
            (AllowedWithFailures, Some(Permissive), Refuse),
            (AllowedWithFailures, Some(Strict), Pass),
            (Refused, Some(Strict), Refuse),
            (Refused, Some(Audit), Refuse),
            (InvalidName, None, Refuse),
            (Unmatched, None, Refuse),
            (Unavailable, Some(Audit), Unknown),
            (NotChecked, Some(Strict), Unknown),
        ];
        for (state, level, expected) in cases {
            assert_eq!(strict_outcome(state, level, deny), expected, "{state:?}");
        }
    }

    fn sample() -> Vec<ImageReport> {
        vec![
            ImageReport {
                name: "r.test/audited:v1".into(),
                digest: format!("sha256:{HEX_A}"),
                statement: Some("audited".into()),
                level: Some("audit".into()),
                verdict: VerdictReport {
                    state: VerdictState::Refused,
                    source: Some(VerdictSource::VerifiedNow),
                    valid_until: None,
                    reason: Some("no signature is associated with r.test/audited@…".into()),
                },
                strict: StrictOutcome::Refuse,
            },
            ImageReport {
                name: "unreachable.test/app:v1".into(),
                digest: format!("sha256:{HEX_B}"),
                statement: Some("all".into()),
                level: Some("strict".into()),
                verdict: VerdictReport::new(
                    VerdictState::Unavailable,
                    Some("registry unreachable: connection refused".into()),
                ),
                strict: StrictOutcome::Unknown,
            },
        ]
    }

    #[test]
    fn the_table_aligns_columns_and_ends_with_a_summary() {
        let table = render_table(&sample());
        let expected = "\
NAME                     DIGEST               STATEMENT  LEVEL   VERDICT
r.test/audited:v1        sha256:aaaaaaaaaaaa  audited    audit   strict would refuse: no signature is associated with r.test/audited@… (verified now)
unreachable.test/app:v1  sha256:bbbbbbbbbbbb  all        strict  not verified: registry unreachable: connection refused
2 image name(s): 0 would pass under strict, 1 would be refused, 1 not verified
";
        assert_eq!(table, expected);
        assert_eq!(exit_status(&sample()), EXIT_WOULD_REFUSE);
        assert_eq!(exit_status(&[]), 0, "an empty node passes");
    }

    #[test]
    fn json_is_an_array_of_objects_with_every_field() {
        let json = serde_json::to_value(sample()).expect("json");
        assert_eq!(
            json[0],
            serde_json::json!({
                "name": "r.test/audited:v1",
                "digest": format!("sha256:{HEX_A}"),
                "statement": "audited",
                "level": "audit",
                "verdict": {
                    "state": "refused",
                    "source": "verified-now",
                    "valid_until": null,
                    "reason": "no signature is associated with r.test/audited@…",
                },
                "strict": "refuse",
            })
        );
        assert_eq!(json[1]["verdict"]["state"], "unavailable");
        assert_eq!(json[1]["verdict"]["source"], serde_json::Value::Null);
        assert_eq!(json[1]["strict"], "unknown");
        let states = [
            (VerdictState::AllowedWithFailures, "allowed-with-failures"),
            (VerdictState::NotChecked, "not-checked"),
            (VerdictState::InvalidName, "invalid-name"),
        ];
        for (state, text) in states {
            assert_eq!(serde_json::to_value(state).expect("json"), text);
        }
    }

    #[test]
    fn a_namespace_is_judged_under_the_first_policy_that_matches_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let write = |name: &str| {
            let dir = root.path().join(name);
            std::fs::create_dir_all(&dir).expect("dir");
            let policy = serde_json::json!({
                "version": "1.0",
                "trustPolicies": [{
                    "name": name,
                    "registryScopes": ["*"],
                    "signatureVerification": {"level": "skip"},
                }],
            });
            std::fs::write(dir.join("trustpolicy.json"), policy.to_string()).expect("policy");
            dir
        };
        let (default, teams, team_a) = (write("default"), write("teams"), write("team-a"));
        let text = format!(
            "[policy]\ndir = {default:?}\n\
             [[policy.namespace]]\nnamespaces = [\"team-*\"]\ndir = {teams:?}\n\
             [[policy.namespace]]\nnamespaces = [\"team-a\"]\ndir = {team_a:?}\n"
        );
        let config = Config::parse(&root.path().join("config.toml"), &text).expect("config");
        let statement = |namespace: Option<&str>| {
            let policy = policy_for(&config, namespace).expect("policy");
            policy.document.statements[0].name.clone()
        };
        assert_eq!(statement(None), "default");
        assert_eq!(statement(Some("kube-system")), "default");
        assert_eq!(statement(Some("team-b")), "teams");
        assert_eq!(statement(Some("team-a")), "teams", "the first match wins");
    }
}
