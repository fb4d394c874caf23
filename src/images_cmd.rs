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

/// Runs `pullgate images`.
pub fn main(args: &ImagesArgs) -> ExitCode {
    let reports = match run(args) {
        Ok(reports) => reports,
        Err(message) => {
            eprintln!("Error: {message}");
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

/// Loads what the report needs and makes it; `Err` is the message of a run that
/// made no report.
fn run(args: &ImagesArgs) -> Result<Vec<ImageReport>, String> {
    let config = Config::load_or_default(args.config.as_deref()).map_err(|e| e.to_string())?;
    let policy = policy_for(&config, args.namespace.as_deref())?;
    let registry = RegistryClient::new(crate::registry::RegistryConfig {
        hosts_dir: Some(config.registry.hosts_dir.clone()),
        credentials_file: config.registry.credentials_file.clone(),
        insecure_registries: config.registry.insecure.clone(),
        ..Default::default()
    })
    .map_err(|error| error.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    let revocation = crate::revocation::Checker::new(
        crate::revocation::RevocationSettings {
            cache_dir: config.revocation.cache_dir.clone(),
            max_cache_bytes: config.revocation.max_cache_bytes,
            crl_dir: config.revocation.crl_dir.clone(),
            ..Default::default()
        },
        runtime.handle().clone(),
    );
    let store = ImageStore::new(&config.upstream.containerd_socket);
    let records = runtime
        .block_on(store.list())
        .map_err(|error| error_chain(&error))?;
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
fn policy_for(config: &Config, namespace: Option<&str>) -> Result<Arc<PolicyDir>, String> {
    let load = |dir: &std::path::Path| {
        crate::policy_dir::load_policy_dir(dir).map_err(|error| error.to_string())
    };
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
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
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
        let mut verified: HashMap<(String, String), VerdictReport> = HashMap::new();
        let mut reports = Vec::new();
        let mut named: Vec<&ImageRecord> =
            records.iter().filter(|r| !is_image_id(&r.name)).collect();
        named.sort_by(|a, b| a.name.cmp(&b.name));
        for record in named {
            reports.push(self.report(record, &by_name, &mut verified).await);
        }
        reports
    }

    async fn report(
        &self,
        record: &ImageRecord,
        by_name: &HashMap<&str, &ImageRecord>,
        verified: &mut HashMap<(String, String), VerdictReport>,
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
                Err(why) => {
                    let key = (reference.pinned(digest), statement.name.clone());
                    match verified.get(&key) {
                        Some(verdict) => verdict.clone(),
                        None => {
                            let verdict = self.verify_now(&reference, &record.target, why).await;
                            verified.insert(key, verdict.clone());
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
    /// engine, [`classify`].
    async fn verify_now(
        &self,
        reference: &Reference,
        target: &Descriptor,
        no_record: String,
    ) -> VerdictReport {
        let Some(verifier) = &self.verifier else {
            return VerdictReport::new(VerdictState::NotChecked, Some(no_record));
        };
        let pinned: Reference = match reference.pinned(&target.digest).parse() {
            Ok(pinned) => pinned,
            Err(error) => {
                return VerdictReport::new(VerdictState::InvalidName, Some(error.to_string()))
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
                return VerdictReport::new(VerdictState::Unmatched, Some(error.to_string()))
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
        report
    }
}

/// The report of a registry error: no verdict, and why.
fn unavailable(error: &RegistryError) -> VerdictReport {
    let what = if error.is_transient() {
        "registry unreachable"
    } else {
        "registry error"
    };
    VerdictReport::new(
        VerdictState::Unavailable,
        Some(format!("{what}: {}", error_chain(error))),
    )
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
