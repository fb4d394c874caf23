//! Trust policy documents, trust stores, trusted identities and verification levels
//! (NOTARY.md §5 and §8).
//!
//! Everything here is pure: no I/O and no clock. The directory loader that reads a
//! notation-layout policy directory lives in [`crate::policy_dir`].
//!
//! Where the Notary Project specification and notation-go disagree, this module
//! follows the specification when NOTARY.md marks the difference, and otherwise the
//! stricter of the two; each such choice is documented where it is made:
//! - level `skip` with the global scope `*` is accepted (notation-go; the spec forbids
//!   it), with a warning wherever it is loaded, see
//!   [`TrustPolicyDocument::global_skip`];
//! - a sub-directory inside a trust store is an error (notation-go; the spec says it
//!   is ignored), see [`crate::policy_dir`];
//! - store names `.` and `..` are rejected although the name pattern admits them.

mod document;
mod error;
mod identity;
mod level;
mod store;
#[cfg(test)]
pub(crate) mod test_pki;

pub use document::{
    StoreType, TrustPolicyDocument, TrustPolicyStatement, TrustStoreRef, TrustedIdentities,
    VerifyTimestamp,
};
pub use error::{DnError, PolicyError, StatementReason};
pub use identity::DistinguishedName;
pub use level::{CheckAction, LevelName, VerificationLevel};
pub use store::TrustStore;
