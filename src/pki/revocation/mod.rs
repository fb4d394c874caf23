//! Revocation judging (NOTARY.md §7): CRLs (RFC 5280 §5) and OCSP responses
//! (RFC 6960) checked against a certificate and its issuer at a given time.
//!
//! Pure like the rest of `pki`: bytes and `now` in, a status or the most specific
//! error out. Fetching, caching, timeouts and the per-chain aggregation of §7 are the
//! caller's (`src/revocation/`), which uses:
//! * [`Crl::from_der`] / [`Crl::from_pem_or_der`], [`Crl::validate`] on the base CRL
//!   (and on the delta CRL, if any), then [`crl_status`];
//! * [`ocsp_request_der`] for the request body, then [`judge_ocsp_response`].
//!
//! Layout: `crl` reads and validates one CRL (`crl/entry.rs` its revoked serials,
//! `crl/status.rs` a certificate's status per base and delta CRL), `ocsp` builds the
//! request and judges the response, `asn1` holds the structures both read.
//!
//! The RFC 6960 structures are defined in `asn1` with der 0.8's derives, on the
//! same RustCrypto stack as the certificates (RustCrypto's `x509-ocsp` is only
//! published for the older x509-cert 0.2 / der 0.7 stack). CRLs are read with a
//! streaming reader rather than `x509_cert::crl::CertificateList`, which rejects v1
//! CRLs (no `version` field) and would hold every entry twice.

mod asn1;
mod crl;
mod ocsp;

use std::fmt;
use std::time::{Duration, SystemTime};

use super::{time, PkiError};

pub use crl::{crl_status, CertStatus, Crl, CrlEntry};
pub use ocsp::{judge_ocsp_response, ocsp_request_der, OcspAnswer, OcspStatus};

/// The largest OCSP response judged (NOTARY.md §7: notation reads at most 20 480
/// bytes). The caller caps its read too; this keeps the parser's input bounded on
/// its own.
pub const MAX_OCSP_RESPONSE_BYTES: usize = 20_480;

/// The largest CRL parsed (NOTARY.md §7: notation downloads at most 32 MiB, CORE
/// `revocation/crl/fetcher.go` `maxCRLSize`: "even the largest CRLs are less than
/// 16 MiB").
pub const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;

/// How far an OCSP response's thisUpdate may lie ahead of `now`: responder and
/// verifier clocks differ by seconds to minutes, and a fresh response must not be
/// refused for it (5 minutes, as the issue asks; RFC 6960 §4.2.2.1 leaves it local).
pub const OCSP_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Everything that makes a CRL or OCSP response unusable. Every variant names what
/// failed (the CRL issuer, the certificate serial, the responder...); the caller
/// treats any of them as "revocation status unknown" (NOTARY.md §7).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    // ---- CRL parsing (RFC 5280 §5.1) ----
    /// The bytes are not a DER CertificateList.
    #[error("malformed CRL: {source}")]
    MalformedCrl {
        #[source]
        source: der::Error,
    },
    /// A PEM `X509 CRL` block could not be decoded (RFC 7468 §5).
    #[error("malformed PEM X509 CRL block: {source}")]
    MalformedCrlPem {
        #[source]
        source: der::Error,
    },
    /// PEM input without an `X509 CRL` block.
    #[error("no X509 CRL block found in the PEM input")]
    NoCrlInPem,
    /// Larger than [`MAX_CRL_BYTES`].
    #[error("CRL is {len} bytes, more than the {limit}-byte limit")]
    CrlTooLarge { len: usize, limit: usize },
    /// signatureAlgorithm differs from tbsCertList.signature (RFC 5280 §5.1.1.2).
    #[error("CRL from {issuer:?}: signatureAlgorithm differs from the one inside the signed list")]
    CrlAlgorithmMismatch { issuer: String },
    /// A CRL extension appears twice (RFC 5280 §5.2, §4.2).
    #[error("CRL from {issuer:?} has extension {oid} more than once")]
    DuplicateCrlExtension { issuer: String, oid: String },
    /// A CRL extension this module reads could not be decoded.
    #[error("CRL from {issuer:?} has a malformed {extension} extension")]
    MalformedCrlExtension {
        issuer: String,
        extension: &'static str,
    },
    /// A CRL entry extension this module reads could not be decoded, or appears twice.
    #[error(
        "CRL from {issuer:?}: entry for serial {serial} has a malformed {extension} extension"
    )]
    MalformedCrlEntryExtension {
        issuer: String,
        serial: String,
        extension: &'static str,
    },

    // ---- base CRL checks (NOTARY.md §7, RFC 5280 §6.3.3) ----
    /// The CRL's issuer Name is not byte-equal to the issuer certificate's subject.
    #[error("CRL is issued by {crl_issuer:?}, not by {issuer:?}")]
    CrlIssuerMismatch { crl_issuer: String, issuer: String },
    /// The issuer certificate has a keyUsage without cRLSign (RFC 5280 §4.2.1.3).
    #[error("{issuer:?} may not sign CRLs: its keyUsage lacks cRLSign")]
    IssuerCannotSignCrls { issuer: String },
    /// The issuer certificate's keyUsage extension is malformed.
    #[error("{issuer:?} has a malformed keyUsage extension")]
    MalformedIssuerKeyUsage { issuer: String },
    /// The CRL signature does not verify under the issuer key.
    #[error("CRL is not signed by {issuer:?}: {source}")]
    CrlSignature {
        issuer: String,
        #[source]
        source: Box<PkiError>,
    },
    /// thisUpdate is after `at`.
    #[error("CRL from {issuer:?} is not valid before {} (checked at {})", time::show(.this_update), time::show(.at))]
    CrlNotYetValid {
        issuer: String,
        this_update: SystemTime,
        at: SystemTime,
    },
    /// nextUpdate is absent (NOTARY.md §7: required).
    #[error("CRL from {issuer:?} has no nextUpdate")]
    CrlNoNextUpdate { issuer: String },
    /// nextUpdate is not after `at`.
    #[error("CRL from {issuer:?} expired at {} (checked at {})", time::show(.next_update), time::show(.at))]
    CrlExpired {
        issuer: String,
        next_update: SystemTime,
        at: SystemTime,
    },
    /// A critical CRL extension this module does not process (RFC 5280 §5.2).
    #[error("CRL from {issuer:?} has an unknown critical extension {oid}")]
    CrlUnknownCriticalExtension { issuer: String, oid: String },
    /// An IssuingDistributionPoint with indirectCRL (RFC 5280 §5.2.5): not supported.
    #[error("CRL from {issuer:?} is an indirect CRL, which is not supported")]
    IndirectCrl { issuer: String },
    /// A critical CRL entry extension this module does not process (RFC 5280 §5.3).
    #[error(
        "CRL from {issuer:?}: entry for serial {serial} has an unknown critical extension {oid}"
    )]
    CrlEntryUnknownCriticalExtension {
        issuer: String,
        serial: String,
        oid: String,
    },
    /// A certificateIssuer entry extension (indirect CRLs, RFC 5280 §5.3.3).
    #[error("CRL from {issuer:?}: entry for serial {serial} has a certificateIssuer extension (indirect CRLs are not supported)")]
    CrlEntryCertificateIssuer { issuer: String, serial: String },

    // ---- status from base + delta CRL (NOTARY.md §7) ----
    /// The CRL is not from the certificate's issuer.
    #[error("CRL from {crl_issuer:?} does not cover certificate {subject:?} issued by {issuer:?}")]
    CrlNotForCertificate {
        subject: String,
        issuer: String,
        crl_issuer: String,
    },
    /// The CRL given as base is a delta CRL (it has a DeltaCRLIndicator).
    #[error("CRL from {issuer:?} given as the base CRL is a delta CRL")]
    BaseCrlIsDelta { issuer: String },
    /// The certificate has a FreshestCRL extension but the base CRL does not: notation
    /// does not follow delta CRLs named only in the certificate.
    #[error("certificate {subject:?} names a delta CRL (FreshestCRL) that its base CRL from {issuer:?} does not; this is not supported")]
    DeltaCrlOnlyInCertificate { subject: String, issuer: String },
    /// The base CRL has a FreshestCRL extension but no delta CRL was given.
    #[error("CRL from {issuer:?} refers to a delta CRL (FreshestCRL), which was not given")]
    DeltaCrlMissing { issuer: String },
    /// A delta CRL was given but the base CRL has no FreshestCRL extension.
    #[error("CRL from {issuer:?} has no FreshestCRL extension, so no delta CRL applies to it")]
    UnexpectedDeltaCrl { issuer: String },
    /// The CRL given as delta has no DeltaCRLIndicator.
    #[error("CRL from {issuer:?} given as the delta CRL has no DeltaCRLIndicator")]
    NotADeltaCrl { issuer: String },
    /// The delta CRL is from another issuer than the base CRL.
    #[error("delta CRL from {delta_issuer:?} does not belong to the base CRL from {issuer:?}")]
    DeltaCrlIssuerMismatch {
        issuer: String,
        delta_issuer: String,
    },
    /// A CRL with a FreshestCRL extension must carry a CRLNumber (RFC 5280 §5.2.3).
    #[error("CRL from {issuer:?} has no CRLNumber to match a delta CRL against")]
    CrlNumberMissing { issuer: String },
    /// The delta CRL's number is not greater than the base CRL's (RFC 5280 §5.2.4).
    #[error(
        "delta CRL from {issuer:?} has number {delta}, not greater than the base CRL's {base}"
    )]
    DeltaCrlNotNewer {
        issuer: String,
        base: String,
        delta: String,
    },
    /// The delta CRL's DeltaCRLIndicator is greater than the base CRL's number: it
    /// builds on a newer base (RFC 5280 §5.2.4, §6.3.3 (c)(2)).
    #[error("delta CRL from {issuer:?} builds on base CRL number {delta_base}, newer than the given base CRL's {base}")]
    DeltaCrlBaseTooNew {
        issuer: String,
        base: String,
        delta_base: String,
    },

    // ---- OCSP (RFC 6960, NOTARY.md §7) ----
    /// The OCSP request could not be encoded.
    #[error("cannot encode the OCSP request: {source}")]
    OcspRequestEncoding {
        #[source]
        source: der::Error,
    },
    /// Larger than [`MAX_OCSP_RESPONSE_BYTES`].
    #[error("OCSP response is {len} bytes, more than the {limit}-byte limit")]
    OcspResponseTooLarge { len: usize, limit: usize },
    /// The bytes are not a DER OCSPResponse / BasicOCSPResponse.
    #[error("malformed OCSP response: {source}")]
    MalformedOcspResponse {
        #[source]
        source: der::Error,
    },
    /// responseStatus is not successful (RFC 6960 §4.2.1).
    #[error("OCSP response status {status}")]
    OcspUnsuccessful { status: &'static str, code: u32 },
    /// A successful response without responseBytes.
    #[error("OCSP response is successful but has no response bytes")]
    OcspNoResponseBytes,
    /// responseType is not id-pkix-ocsp-basic (RFC 6960 §4.2.1).
    #[error("OCSP response type {oid} is not id-pkix-ocsp-basic")]
    OcspNotBasic { oid: String },
    /// A certificate in the response's `certs` is not a certificate.
    #[error("OCSP response carries a malformed certificate: {source}")]
    MalformedOcspCertificate {
        #[source]
        source: Box<PkiError>,
    },
    /// The responder is the issuer but the signature does not verify under its key.
    #[error("OCSP response is not signed by the issuer {issuer:?} or a responder it authorised: {source}")]
    OcspNotSignedByIssuer {
        issuer: String,
        #[source]
        source: Box<PkiError>,
    },
    /// The ResponderID names neither the issuer nor a certificate in the response.
    #[error("OCSP response is not signed by the issuer {issuer:?} or a responder it authorised: responder {responder} is not included in the response")]
    OcspResponderUnknown { issuer: String, responder: String },
    /// The delegated responder's key does not verify the response signature.
    #[error("OCSP response is not signed by the responder {responder:?} it names: {source}")]
    OcspNotSignedByResponder {
        responder: String,
        #[source]
        source: Box<PkiError>,
    },
    /// The delegated responder certificate is not signed by the issuer (RFC 6960 §4.2.2.2).
    #[error("OCSP response is not signed by the issuer or a responder it authorised: responder {responder:?} is not signed by {issuer:?}: {source}")]
    OcspResponderNotAuthorised {
        responder: String,
        issuer: String,
        #[source]
        source: Box<PkiError>,
    },
    /// The delegated responder certificate lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2).
    #[error("OCSP response is not signed by the issuer or a responder it authorised: responder {responder:?} lacks the OCSPSigning extended key usage")]
    OcspResponderNotOcspSigning { responder: String },
    /// The delegated responder certificate is expired / not yet valid, or its
    /// extendedKeyUsage is malformed.
    #[error("OCSP responder certificate {responder:?} is not usable: {source}")]
    OcspResponderInvalid {
        responder: String,
        #[source]
        source: Box<PkiError>,
    },
    /// A critical response or single extension this module does not process.
    #[error("OCSP response has an unknown critical extension {oid}")]
    OcspUnknownCriticalExtension { oid: String },
    /// An extension this module reads (invalidityDate) could not be decoded.
    #[error("OCSP response has a malformed {extension} extension")]
    MalformedOcspExtension { extension: &'static str },
    /// No SingleResponse's CertID matches the certificate (RFC 6960 §3.2 (1)).
    #[error("OCSP response has no answer for serial {serial} issued by {issuer:?}")]
    OcspNoMatchingResponse { serial: String, issuer: String },
    /// thisUpdate is more than [`OCSP_CLOCK_SKEW`] after `at` (RFC 6960 §3.2 (4)).
    #[error("OCSP response is not valid before {} (checked at {})", time::show(.this_update), time::show(.at))]
    OcspNotYetValid {
        this_update: SystemTime,
        at: SystemTime,
    },
    /// nextUpdate is absent (NOTARY.md §7: treated as unknown).
    #[error("OCSP response has no nextUpdate")]
    OcspNoNextUpdate,
    /// nextUpdate is not after `at` (RFC 6960 §3.2 (5)).
    #[error("OCSP response expired at {} (checked at {})", time::show(.next_update), time::show(.at))]
    OcspExpired {
        next_update: SystemTime,
        at: SystemTime,
    },
}

/// CRLReason (RFC 5280 §5.3.1); value 7 is unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    RemoveFromCrl,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl CrlReason {
    const ALL: [CrlReason; 10] = [
        CrlReason::Unspecified,
        CrlReason::KeyCompromise,
        CrlReason::CaCompromise,
        CrlReason::AffiliationChanged,
        CrlReason::Superseded,
        CrlReason::CessationOfOperation,
        CrlReason::CertificateHold,
        CrlReason::RemoveFromCrl,
        CrlReason::PrivilegeWithdrawn,
        CrlReason::AaCompromise,
    ];

    /// The ENUMERATED value.
    pub fn code(self) -> u32 {
        match self {
            CrlReason::Unspecified => 0,
            CrlReason::KeyCompromise => 1,
            CrlReason::CaCompromise => 2,
            CrlReason::AffiliationChanged => 3,
            CrlReason::Superseded => 4,
            CrlReason::CessationOfOperation => 5,
            CrlReason::CertificateHold => 6,
            CrlReason::RemoveFromCrl => 8,
            CrlReason::PrivilegeWithdrawn => 9,
            CrlReason::AaCompromise => 10,
        }
    }

    /// The reason with this ENUMERATED value; `None` for 7 and values past 10.
    pub fn from_code(code: u32) -> Option<CrlReason> {
        CrlReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            CrlReason::Unspecified => "unspecified",
            CrlReason::KeyCompromise => "keyCompromise",
            CrlReason::CaCompromise => "cACompromise",
            CrlReason::AffiliationChanged => "affiliationChanged",
            CrlReason::Superseded => "superseded",
            CrlReason::CessationOfOperation => "cessationOfOperation",
            CrlReason::CertificateHold => "certificateHold",
            CrlReason::RemoveFromCrl => "removeFromCRL",
            CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            CrlReason::AaCompromise => "aACompromise",
        }
    }

    /// certificateHold and removeFromCRL: the entry may be undone by a later one.
    fn is_temporary(self) -> bool {
        matches!(self, CrlReason::CertificateHold | CrlReason::RemoveFromCrl)
    }
}

impl fmt::Display for CrlReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A serial number's magnitude: the INTEGER content octets without leading zero
/// bytes, so `00 8F` (positive, sign-padded) and `8F` compare equal. A negative serial
/// (non-conforming, RFC 5280 §4.1.2.2) keeps its two's complement bytes; it can only
/// collide with a positive one, which makes a lookup report revoked, never good.
pub(crate) fn serial_magnitude(content: &[u8]) -> &[u8] {
    let zeros = content.iter().take_while(|b| **b == 0).count();
    &content[zeros..]
}

/// A serial in upper-case hex, as openssl prints it (`00` for zero).
fn serial_hex(serial: &[u8]) -> String {
    if serial.is_empty() {
        return "00".to_string();
    }
    serial.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_magnitude_drops_leading_zeros_only() {
        assert_eq!(serial_magnitude(&[0x00, 0x8f, 0x01]), &[0x8f, 0x01]);
        assert_eq!(serial_magnitude(&[0x00, 0x00, 0x12]), &[0x12]);
        assert_eq!(serial_magnitude(&[0x12, 0x00]), &[0x12, 0x00]);
        assert_eq!(serial_magnitude(&[0x00]), &[] as &[u8]);
        assert_eq!(serial_magnitude(&[0xff, 0x7f]), &[0xff, 0x7f]);
        assert_eq!(serial_hex(&[]), "00");
        assert_eq!(serial_hex(&[0x0a, 0xbc]), "0ABC");
    }

    #[test]
    fn reason_codes_map_both_ways() {
        for reason in CrlReason::ALL {
            assert_eq!(CrlReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(CrlReason::from_code(7), None);
        assert_eq!(CrlReason::from_code(11), None);
        assert_eq!(CrlReason::from_code(1), Some(CrlReason::KeyCompromise));
        assert_eq!(CrlReason::from_code(8), Some(CrlReason::RemoveFromCrl));
        assert_eq!(CrlReason::CaCompromise.to_string(), "cACompromise");
        assert!(CrlReason::CertificateHold.is_temporary());
        assert!(!CrlReason::KeyCompromise.is_temporary());
    }
}
