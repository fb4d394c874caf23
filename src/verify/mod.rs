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
