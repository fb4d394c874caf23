//! Verification: signature source → envelope → pki → policy → verdict. This module
//! owns the budgets.

pub mod engine;
pub mod layout;
pub mod run;

/// The OCI content model lives beside `registry`, which needs it too.
pub use crate::oci;
pub use crate::oci::SignatureBlob;

/// notation's `--max-signatures` default: signatures tried per verification.
pub const MAX_SIGNATURE_ATTEMPTS: usize = 100;
/// notation/ORAS's limit on manifests and referrers indexes (4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// notation's limit on one signature envelope blob (32 MiB).
pub const MAX_ENVELOPE_BYTES: u64 = 32 * 1024 * 1024;

/// The limits one verification works within. Lower values may be configured; the
/// defaults are notation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgets {
    pub max_signature_attempts: usize,
    pub max_manifest_bytes: u64,
    pub max_envelope_bytes: u64,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            max_signature_attempts: MAX_SIGNATURE_ATTEMPTS,
            max_manifest_bytes: MAX_MANIFEST_BYTES,
            max_envelope_bytes: MAX_ENVELOPE_BYTES,
        }
    }
}

/// A trust policy in force: what the policy directory held when it was loaded,
/// and its generation (1 at start, +1 for every successful reload). Verdicts are
/// cached per generation, so a changed policy never reuses old ones.
pub struct LoadedPolicy {
    pub generation: u64,
    pub dir: crate::policy_dir::PolicyDir,
}

/// Lists and fetches `target`'s signatures from the registry within `budgets` and
/// `deadline`, and judges them under `statement` (NOTARY.md §1, §8). A fetch error
/// ends the verification with that error; it never skips a signature.
#[allow(clippy::too_many_arguments)]
pub async fn verify_target(
    client: &crate::registry::RegistryClient,
    reference: &crate::reference::Reference,
    target: &oci::Descriptor,
    statement: &crate::policy::TrustPolicyStatement,
    stores: &[crate::policy::TrustStore],
    credentials: &crate::registry::Credentials,
    deadline: std::time::Instant,
    budgets: &Budgets,
    now: std::time::SystemTime,
) -> Result<engine::Verdict, crate::registry::RegistryError> {
    let verifier = engine::Verifier {
        statement,
        stores,
        now,
        budgets,
    };
    let shown = reference.pinned(&target.digest);
    if statement.level.name == crate::policy::LevelName::Skip {
        return Ok(verifier.decide(&shown, target, &[], 0));
    }
    let listed = client
        .signature_manifests(reference, target, credentials, deadline)
        .await?;
    let mut blobs = Vec::new();
    for manifest in listed.iter().take(budgets.max_signature_attempts) {
        blobs.push(
            client
                .signature(
                    reference,
                    manifest,
                    budgets.max_manifest_bytes,
                    budgets.max_envelope_bytes,
                    credentials,
                    deadline,
                )
                .await?,
        );
    }
    Ok(verifier.decide(&shown, target, &blobs, listed.len()))
}
