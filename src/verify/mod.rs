//! Verification: signature source → envelope → pki → policy → verdict. This module
//! owns the budgets.

pub mod engine;
pub mod layout;
pub mod run;

/// The OCI content model lives beside `registry`, which needs it too.
pub use crate::oci;
pub use crate::oci::SignatureBlob;

use std::future::Future;
use std::sync::Arc;

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
    pub dir: Arc<crate::policy_dir::PolicyDir>,
}

/// Where an artifact's signatures come from: a registry (`RegistrySource`) or an
/// OCI layout on disk (`layout::OciLayout`). The gate and both forms of
/// `pullgate verify` judge through `verify_signatures` over one of these.
pub trait SignatureSource: Sync {
    type Error: Send;

    /// The Notary signature manifests whose subject is `target`, in the source's
    /// order (NOTARY.md §1.2). Only descriptors: no envelope is read here.
    fn signature_manifests(
        &self,
        target: &oci::Descriptor,
    ) -> impl Future<Output = Result<Vec<oci::Descriptor>, Self::Error>> + Send;

    /// One signature manifest and its single envelope blob, within `budgets`
    /// (NOTARY.md §1.3).
    fn signature(
        &self,
        manifest: &oci::Descriptor,
        budgets: &Budgets,
    ) -> impl Future<Output = Result<SignatureBlob, Self::Error>> + Send;
}

/// A registry repository as a signature source, for one reference's credentials
/// and deadline.
pub struct RegistrySource<'a> {
    pub client: &'a crate::registry::RegistryClient,
    pub reference: &'a crate::reference::Reference,
    pub credentials: &'a crate::registry::Credentials,
    pub deadline: std::time::Instant,
}

impl SignatureSource for RegistrySource<'_> {
    type Error = crate::registry::RegistryError;

    async fn signature_manifests(
        &self,
        target: &oci::Descriptor,
    ) -> Result<Vec<oci::Descriptor>, Self::Error> {
        self.client
            .signature_manifests(self.reference, target, self.credentials, self.deadline)
            .await
    }

    async fn signature(
        &self,
        manifest: &oci::Descriptor,
        budgets: &Budgets,
    ) -> Result<SignatureBlob, Self::Error> {
        self.client
            .signature(
                self.reference,
                manifest,
                crate::registry::SignatureLimits {
                    manifest_bytes: budgets.max_manifest_bytes,
                    envelope_bytes: budgets.max_envelope_bytes,
                },
                self.credentials,
                self.deadline,
            )
            .await
    }
}

/// What signatures are judged against, owned (the policy behind an `Arc`) so
/// that each signature's verification can run on the blocking pool, off the
/// thread that forwards CRI calls. The statement is found once, when the judge is
/// made, so a verification never looks for a statement that is not there.
#[derive(Clone)]
pub struct Judge {
    policy: Arc<crate::policy_dir::PolicyDir>,
    /// The index of the statement that covers the artifact in `policy`'s document.
    statement: usize,
    /// The verification time.
    pub now: std::time::SystemTime,
    pub budgets: Budgets,
    /// Checks certificates for revocation (NOTARY.md §7); `None`: a certificate
    /// that names an OCSP or CRL endpoint fails an enforced revocation check.
    pub revocation: Option<Arc<dyn crate::revocation::RevocationCheck>>,
}

/// Why a judge could not be made: the statement is not in the policy.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the trust policy has no statement named {0:?}")]
pub struct NoSuchStatement(pub String);

impl Judge {
    /// A judge under the statement named `statement`.
    pub fn new(
        policy: Arc<crate::policy_dir::PolicyDir>,
        statement: &str,
        now: std::time::SystemTime,
        budgets: Budgets,
    ) -> Result<Judge, NoSuchStatement> {
        let index = policy
            .document
            .statements
            .iter()
            .position(|s| s.name == statement)
            .ok_or_else(|| NoSuchStatement(statement.to_owned()))?;
        Ok(Judge::at(policy, index, now, budgets))
    }

    /// A judge under the statement that covers `repository` (exact scope, else
    /// `*`: `TrustPolicyDocument::statement_for`).
    pub fn for_scope(
        policy: Arc<crate::policy_dir::PolicyDir>,
        repository: &str,
        now: std::time::SystemTime,
        budgets: Budgets,
    ) -> Result<Judge, crate::policy::PolicyError> {
        let statement = policy.document.statement_for(repository)?;
        let index = policy
            .document
            .statements
            .iter()
            .position(|s| std::ptr::eq(s, statement))
            // statement_for returns a reference into this same list.
            .expect("statement_for returns one of the document's statements");
        Ok(Judge::at(policy, index, now, budgets))
    }

    fn at(
        policy: Arc<crate::policy_dir::PolicyDir>,
        statement: usize,
        now: std::time::SystemTime,
        budgets: Budgets,
    ) -> Judge {
        Judge {
            policy,
            statement,
            now,
            budgets,
            revocation: None,
        }
    }

    /// With `revocation` checking certificates (NOTARY.md §7).
    pub fn with_revocation(
        mut self,
        revocation: Option<Arc<dyn crate::revocation::RevocationCheck>>,
    ) -> Judge {
        self.revocation = revocation;
        self
    }

    /// The statement this judge applies.
    pub fn statement(&self) -> &crate::policy::TrustPolicyStatement {
        // The index was found in this same document (behind an `Arc`, never
        // changed) when the judge was made.
        &self.policy.document.statements[self.statement]
    }

    fn verifier(&self) -> engine::Verifier<'_> {
        engine::Verifier {
            statement: self.statement(),
            stores: &self.policy.stores,
            now: self.now,
            budgets: &self.budgets,
        }
    }

    /// Verifies one signature on the blocking pool; the envelope is dropped
    /// there when its report is made. A verification that does not complete
    /// (a panic) is a failed signature, never a passed one.
    async fn verify_one(
        &self,
        target: &oci::Descriptor,
        blob: SignatureBlob,
    ) -> engine::SignatureReport {
        let judge = self.clone();
        let manifest = blob.manifest.clone();
        let target_owned = target.clone();
        let run = tokio::task::spawn_blocking(move || {
            let revocation = judge.revocation.as_deref();
            judge
                .verifier()
                .verify_one_with(&target_owned, &blob, revocation)
        });
        run.await
            .unwrap_or_else(|join| engine::SignatureReport::incomplete(&manifest, join.to_string()))
    }
}

/// Judges `target`'s signatures from `source` (NOTARY.md §1, §8), as notation
/// does: list them, then fetch and verify one at a time, in order, stopping at
/// the first that passes, within `budgets.max_signature_attempts`. At most one
/// envelope is held at a time, and each is verified on the blocking pool. A
/// fetch error ends the verification with that error.
pub async fn verify_signatures<S: SignatureSource>(
    source: &S,
    judge: &Judge,
    shown: &str,
    target: &oci::Descriptor,
) -> Result<engine::Verdict, S::Error> {
    let verifier = judge.verifier();
    if let Some(verdict) = verifier.before_signatures(shown, 1) {
        return Ok(verdict);
    }
    let listed = source.signature_manifests(target).await?;
    if let Some(verdict) = verifier.before_signatures(shown, listed.len()) {
        return Ok(verdict);
    }
    let mut reports = Vec::new();
    for manifest in listed.iter().take(judge.budgets.max_signature_attempts) {
        let blob = source.signature(manifest, &judge.budgets).await?;
        if let Some(verdict) = verifier.accept(judge.verify_one(target, blob).await, &mut reports) {
            return Ok(verdict);
        }
    }
    Ok(verifier.conclude(reports, listed.len()))
}
