//! Certificates and signatures for Notary Project verification (NOTARY.md §3
//! "Common envelope checks", §4 "Certificates", the store rules of §5).
//!
//! Pure: no I/O, never reads the clock (the caller passes the time), imports no
//! other pullgate module. Chains are given leaf first, exactly as the envelope
//! carries them; no path building happens here.
//!
//! * [`Certificate`]: a parsed X.509 certificate that keeps its DER bytes.
//! * [`signature`]: the envelope signature (PS256..ES512, derived from the leaf key),
//!   X.509 certificate, CRL and OCSP signatures, the one signature and hash algorithm
//!   enums, and the one table from algorithm identifier to verifier (ring, with
//!   RustCrypto where ring has no algorithm).
//! * [`timestamp`]: RFC 3161 tokens, with the one CMS signer-signature check.
//! * [`time`]: RFC 3339 text, formatted and parsed.
//! * [`cert`]: the chain-structure, code-signing, CA, TSA and trust-store rules.
//! * [`revocation`]: CRL and OCSP judging (NOTARY.md §7); fetching is the caller's.

pub mod cert;
pub mod revocation;
pub mod signature;
pub mod time;
pub mod timestamp;

use std::time::SystemTime;

pub use cert::{
    attribute_short_name, check_trust_store_certificate, check_valid_at, directory_string,
    validate_signing_chain, validate_tsa_chain, Certificate, StoreType,
};
pub use signature::{
    signature_algorithm_for_key, verify_signature, verify_signed_by, verify_with_spki,
    PssSaltPolicy, SignatureAlgorithm,
};

/// Everything that can go wrong in this module. Each variant names the rule that
/// failed and the certificate it failed on (by chain index and/or subject DN in
/// RFC 4514 form), so the caller can report the most specific reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    // ---- parsing ----
    /// The bytes are not a DER X.509 certificate (RFC 5280 §4.1).
    #[error("malformed certificate: {source}")]
    MalformedCertificate {
        #[source]
        source: der::Error,
    },
    /// A PEM `CERTIFICATE` block could not be decoded (RFC 7468).
    #[error("malformed PEM certificate block: {source}")]
    MalformedPem {
        #[source]
        source: der::Error,
    },
    /// A PEM or DER bundle held no certificate at all (NOTARY.md §5: every store
    /// file must hold at least one certificate).
    #[error("no certificate found in the given bytes")]
    NoCertificates,

    // ---- keys and signatures (NOTARY.md §3 "Common envelope checks") ----
    /// The key is not one notation signs with: RSA 2048/3072/4096 or EC
    /// P-256/P-384/P-521 (NOTARY.md §3, §4 leaf key rule).
    #[error("certificate with subject {subject:?}: unsupported public key ({key})")]
    UnsupportedKey { subject: String, key: String },
    /// The envelope's `alg` header differs from the algorithm derived from the leaf key
    /// (NOTARY.md §3).
    #[error("signature algorithm {header} in the envelope does not match the signing key ({key})")]
    AlgorithmMismatch {
        header: SignatureAlgorithm,
        key: SignatureAlgorithm,
    },
    /// The signature value does not verify under the key.
    #[error("signature verification failed")]
    BadSignature,
    /// A certificate/CMS signature algorithm this verifier does not accept.
    #[error("unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm { oid: String },
    /// SHA-1 and MD5 based signatures are rejected (Go `CheckSignature` rejects them
    /// too; RFC 6194, RFC 6151).
    #[error("insecure signature algorithm {oid} ({name}) is not accepted")]
    InsecureSignatureAlgorithm { oid: String, name: &'static str },
    /// RSASSA-PSS parameters that are malformed or not of the form hash ∈ SHA-256/384/512,
    /// MGF1 with the same hash (RFC 8017 §A.2.3, RFC 4055 §3.1).
    #[error("invalid RSASSA-PSS parameters: {reason}")]
    InvalidPssParameters { reason: &'static str },
    /// The signature algorithm does not fit the kind of key (e.g. ECDSA with an RSA key).
    #[error("signature algorithm {oid} cannot be used with a {key} key")]
    KeyAlgorithmMismatch { oid: String, key: String },

    // ---- chain structure (NOTARY.md §4, RFC 5280 §6.1) ----
    /// A chain must contain at least one certificate.
    #[error("certificate chain must contain at least one certificate")]
    EmptyChain,
    /// The last certificate (the only one of a 1-certificate chain) must have
    /// issuer == subject (RFC 5280 §3.2 "self-issued").
    #[error("root certificate with subject {subject:?} is not self-issued (issuer {issuer:?})")]
    RootNotSelfIssued { subject: String, issuer: String },
    /// The last certificate's signature does not verify under its own key (for chains
    /// of ≥ 2, with the CA constraints of RFC 5280 §4.2.1.9 applied to it as issuer).
    #[error("root certificate with subject {subject:?} is not self-signed: {source}")]
    RootNotSelfSigned {
        subject: String,
        #[source]
        source: Box<PkiError>,
    },
    /// A non-last certificate is itself a self-signed root (NOTARY.md §4: extra or
    /// misplaced roots are rejected).
    #[error("certificate {index} with subject {subject:?} is self-signed but is not the last certificate of the chain")]
    UnexpectedSelfSigned { index: usize, subject: String },
    /// Certificate `index` is not signed by certificate `index + 1`.
    #[error("certificate {index} with subject {subject:?} is not signed by the next certificate {issuer:?}: {source}")]
    NotSignedByNext {
        index: usize,
        subject: String,
        issuer: String,
        #[source]
        source: Box<PkiError>,
    },
    /// Certificate `index`'s issuer DN is not byte-equal to certificate `index + 1`'s
    /// subject DN (RFC 5280 §6.1.3 (a)(4)).
    #[error("certificate {index} with subject {subject:?} names issuer {issuer:?}, but the next certificate is {next_subject:?}")]
    IssuerMismatch {
        index: usize,
        subject: String,
        issuer: String,
        next_subject: String,
    },
    /// The issuing certificate may not sign certificates: basicConstraints absent on a
    /// v3 certificate or cA=false, or keyUsage without keyCertSign (RFC 5280 §4.2.1.9,
    /// §4.2.1.3; Go `CheckSignatureFrom`). `constraint` names the one violated.
    #[error(
        "certificate with subject {subject:?} is not allowed to sign certificates ({constraint})"
    )]
    IssuerNotCa {
        subject: String,
        constraint: &'static str,
    },

    // ---- leaf rules (NOTARY.md §4) ----
    /// Leaf basicConstraints, if present, must have cA=false.
    #[error("leaf certificate with subject {subject:?} has basicConstraints cA=true")]
    LeafIsCa { subject: String },
    /// Leaf keyUsage must be present.
    #[error("leaf certificate with subject {subject:?} has no keyUsage extension")]
    LeafKeyUsageMissing { subject: String },
    /// Code-signing leaf keyUsage must be marked critical.
    #[error("leaf certificate with subject {subject:?}: keyUsage must be critical")]
    LeafKeyUsageNotCritical { subject: String },
    /// Leaf keyUsage must assert digitalSignature.
    #[error("leaf certificate with subject {subject:?}: keyUsage must include digitalSignature")]
    LeafKeyUsageNoDigitalSignature { subject: String },
    /// Leaf keyUsage asserts a bit other than digitalSignature / contentCommitment.
    #[error("leaf certificate with subject {subject:?}: keyUsage must not include {usage}")]
    LeafKeyUsageForbidden {
        subject: String,
        usage: &'static str,
    },
    /// Code-signing leaf EKU must not contain serverAuth, clientAuth, emailProtection,
    /// timeStamping, OCSPSigning, or (spec only) anyExtendedKeyUsage.
    #[error(
        "leaf certificate with subject {subject:?}: extended key usage must not contain {eku}"
    )]
    ForbiddenExtendedKeyUsage { subject: String, eku: String },

    // ---- CA rules (NOTARY.md §4) ----
    /// CA certificates need basicConstraints with cA=true.
    #[error("CA certificate {index} with subject {subject:?}: basicConstraints must be present with cA=true")]
    CaBasicConstraints { index: usize, subject: String },
    /// pathLenConstraint smaller than the number of intermediates below (RFC 5280 §4.2.1.9).
    #[error("CA certificate {index} with subject {subject:?}: pathLenConstraint {path_len} but {below} intermediate certificate(s) below it")]
    PathLenExceeded {
        index: usize,
        subject: String,
        path_len: u8,
        below: usize,
    },
    /// CA keyUsage must be present.
    #[error("CA certificate {index} with subject {subject:?} has no keyUsage extension")]
    CaKeyUsageMissing { index: usize, subject: String },
    /// Code-signing CA keyUsage must be critical.
    #[error("CA certificate {index} with subject {subject:?}: keyUsage must be critical")]
    CaKeyUsageNotCritical { index: usize, subject: String },
    /// CA keyUsage must assert keyCertSign.
    #[error("CA certificate {index} with subject {subject:?}: keyUsage must include keyCertSign")]
    CaKeyUsageNoCertSign { index: usize, subject: String },

    // ---- TSA leaf (NOTARY.md §4, RFC 3161 §2.3) ----
    /// The TSA leaf's EKU must be exactly `{id-kp-timeStamping}`.
    #[error("timestamping certificate with subject {subject:?} must have exactly the timeStamping extended key usage")]
    TsaEkuNotTimeStamping { subject: String },
    /// The TSA leaf's EKU extension must be critical.
    #[error(
        "timestamping certificate with subject {subject:?}: extended key usage must be critical"
    )]
    TsaEkuNotCritical { subject: String },

    // ---- extension decoding ----
    /// A known extension could not be decoded, or appears twice (RFC 5280 §4.2).
    #[error("certificate with subject {subject:?}: malformed {extension} extension")]
    MalformedExtension {
        subject: String,
        extension: &'static str,
    },

    // ---- time (RFC 5280 §4.1.2.5) ----
    /// `at` is after the certificate's notAfter.
    #[error("certificate with subject {subject:?} expired at {} (checked at {})", time::show(.not_after), time::show(.at))]
    CertExpired {
        subject: String,
        not_after: SystemTime,
        at: SystemTime,
    },
    /// `at` is before the certificate's notBefore.
    #[error("certificate with subject {subject:?} is not valid before {} (checked at {})", time::show(.not_before), time::show(.at))]
    CertNotYetValid {
        subject: String,
        not_before: SystemTime,
        at: SystemTime,
    },

    // ---- trust store (NOTARY.md §5) ----
    /// `ca` / `signingAuthority` store certificates must be CA certificates or self-signed.
    #[error("trust store certificate with subject {subject:?} is neither a CA certificate nor self-signed")]
    StoreCertNotCaOrSelfSigned { subject: String },
    /// `tsa` store certificates must be self-issued, self-signed root CA certificates.
    #[error("tsa trust store certificate with subject {subject:?} is not a root CA certificate: {source}")]
    TsaStoreCertNotRoot {
        subject: String,
        #[source]
        source: Box<PkiError>,
    },
}
