//! `pullgate verify --oci-layout …`: the engine over an OCI layout on disk, with
//! output like `notation verify` (text or JSON) and an exit status.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::engine::{rfc3339, SignatureReport, Verdict, Verifier};
use super::layout::{LayoutError, LayoutReference, OciLayout};
use super::oci::Descriptor;
use super::Budgets;
use crate::policy_dir::{load_policy_dir, PolicyDirError};

/// What the command was asked to do.
pub struct LayoutVerification {
    pub reference: String,
    pub policy_dir: PathBuf,
    /// The repository the trust policy's registryScopes are matched against;
    /// default `local/<layout directory name>`.
    pub scope: Option<String>,
    pub now: SystemTime,
    pub budgets: Budgets,
}

/// Why the command could not reach a verdict (distinct from a failed
/// verification, which is a verdict).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Policy(#[from] PolicyDirError),
    #[error("{0}")]
    Scope(String),
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

    let layout = OciLayout::open(&reference.dir)?;
    let target = layout.resolve(&reference.selector)?;
    let shown = format!("{}@{}", reference.dir.display(), target.digest);
    let verifier = Verifier {
        statement,
        stores: &policy.stores,
        now: request.now,
        budgets: &request.budgets,
    };
    // A skip level never reads signatures.
    let (listed, blobs) = if statement.level.name == crate::policy::LevelName::Skip {
        (0, Vec::new())
    } else {
        let listed = layout.signature_manifests(&target)?;
        let blobs = listed
            .iter()
            .take(request.budgets.max_signature_attempts)
            .map(|d| layout.signature(d, &request.budgets))
            .collect::<Result<Vec<_>, _>>()?;
        (listed.len(), blobs)
    };
    let verdict = verifier.decide(&shown, &target, &blobs, listed);
    let level = Some(format!("{:?}", statement.level.name).to_lowercase());
    Ok(match verdict {
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
    })
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

/// Parses an RFC 3339 UTC time such as `2024-06-18T07:00:00Z` (fractional seconds
/// and numeric offsets accepted) for `--at`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't')
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-06-18T07:20:00Z",
            "2123-08-29T00:00:00Z",
        ] {
            let time = parse_rfc3339(text).expect(text);
            assert_eq!(rfc3339(time), text);
        }
        assert_eq!(
            parse_rfc3339("2023-06-27T13:30:33+08:00").map(rfc3339),
            Some("2023-06-27T05:30:33Z".to_owned())
        );
        assert_eq!(
            parse_rfc3339("2025-01-21T09:17:46.641Z"),
            parse_rfc3339("2025-01-21T09:17:46Z")
                .map(|t| t + std::time::Duration::from_millis(641))
        );
        for bad in [
            "2024-13-01T00:00:00Z",
            "2024-06-18 07:20:00Z",
            "2024-06-18T07:20:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
