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
//! The RFC 6960 structures are defined in [`asn1`] with der 0.8's derives, on the
//! same RustCrypto stack as the certificates (RustCrypto's `x509-ocsp` is only
//! published for the older x509-cert 0.2 / der 0.7 stack). CRLs are read with a
//! streaming reader rather than `x509_cert::crl::CertificateList`, which rejects v1
//! CRLs (no `version` field) and would hold every entry twice.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::time::{Duration, SystemTime};

use const_oid::db::{rfc5280, rfc5912, rfc6960};
use const_oid::ObjectIdentifier;
use der::asn1::{BitStringRef, GeneralizedTime, Int, OctetString, UintRef};
use der::{DateTime, Decode, Encode, Reader, SliceReader, Tag, TagMode, TagNumber};
use sha1::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::{ExtendedKeyUsage, FreshestCrl, KeyUsage};
use x509_cert::name::Name;
use x509_cert::time::Time;

use super::cert::{check_valid_at, distribution_point_uris, Certificate};
use super::signature::{verify_signed_by, verify_with_spki};
use super::time;
use super::PkiError;

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

/// One revoked serial of a CRL (RFC 5280 §5.1.2.6, §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// revocationDate.
    pub revoked_at: SystemTime,
    /// reasonCode; `None` when absent, or when the value is not one RFC 5280 lists
    /// (the serial is revoked all the same).
    pub reason: Option<CrlReason>,
    /// invalidityDate (RFC 5280 §5.3.2).
    pub invalidity_date: Option<SystemTime>,
}

impl CrlEntry {
    fn is_temporary(&self) -> bool {
        self.reason.is_some_and(CrlReason::is_temporary)
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

/// A CRL number for messages: `0x` and hex, since it may exceed any integer type.
fn crl_number_text(number: &[u8]) -> String {
    format!("0x{}", serial_hex(number))
}

/// Compares two magnitudes (no leading zeros) as unsigned integers.
fn cmp_magnitude(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (a, b) = (serial_magnitude(a), serial_magnitude(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The first thing found at parse time that makes the CRL unusable (RFC 5280 §5.2,
/// §5.3: a CRL with a critical extension the application cannot process must not be
/// used for any certificate); reported by [`Crl::validate`].
#[derive(Debug, Clone)]
enum Unsupported {
    CriticalExtension(ObjectIdentifier),
    IndirectCrl,
    EntryCriticalExtension {
        serial: Vec<u8>,
        oid: ObjectIdentifier,
    },
    EntryCertificateIssuer {
        serial: Vec<u8>,
    },
}

/// A parsed CRL (RFC 5280 §5) that keeps its DER. Revoked serials are indexed once by
/// magnitude ([`Certificate::serial_bytes`] form), so [`Crl::entry`] is O(1): CRLs of
/// 20,000 entries are common.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Range<usize>,
    issuer_name: Name,
    signature_algorithm: AlgorithmIdentifierOwned,
    /// `None` when the BIT STRING has unused bits: no signature can match.
    signature: Option<Vec<u8>>,
    this_update: SystemTime,
    next_update: Option<SystemTime>,
    crl_number: Option<Vec<u8>>,
    delta_base: Option<Vec<u8>>,
    has_freshest_crl: bool,
    freshest_crl_urls: Vec<String>,
    entries: HashMap<SerialKey, CrlEntry>,
    unsupported: Option<Unsupported>,
}

/// A serial magnitude as an index key, inline (no allocation per entry) for every
/// serial RFC 5280 §4.1.2.2 allows (at most 20 octets), boxed past that.
#[derive(Clone)]
enum SerialKey {
    Inline {
        len: u8,
        bytes: [u8; SerialKey::INLINE],
    },
    Boxed(Box<[u8]>),
}

impl SerialKey {
    const INLINE: usize = 23;

    fn new(serial: &[u8]) -> SerialKey {
        match u8::try_from(serial.len()) {
            Ok(len) if serial.len() <= SerialKey::INLINE => {
                let mut bytes = [0; SerialKey::INLINE];
                bytes[..serial.len()].copy_from_slice(serial);
                SerialKey::Inline { len, bytes }
            }
            _ => SerialKey::Boxed(serial.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            SerialKey::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            SerialKey::Boxed(bytes) => bytes,
        }
    }
}

// Hashed and compared as its bytes, as `Borrow<[u8]>` (lookups by `&[u8]`) requires.
impl Borrow<[u8]> for SerialKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for SerialKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for SerialKey {
    fn eq(&self, other: &SerialKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SerialKey {}

/// One revokedCertificates element as read (RFC 5280 §5.1.2.6, §5.3).
struct ReadEntry<'a> {
    /// The serial's magnitude, borrowed from the CRL's DER.
    serial: &'a [u8],
    entry: CrlEntry,
    /// The first entry extension that makes the CRL unusable.
    unsupported: Option<Unsupported>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer_string())
            .field("this_update", &time::rfc3339(self.this_update))
            .field("next_update", &self.next_update.map(time::rfc3339))
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The fields of a TBSCertList (RFC 5280 §5.1), borrowed from the DER.
struct RawTbsCertList<'a> {
    signature: AlgorithmIdentifierOwned,
    issuer: &'a [u8],
    this_update: Time,
    next_update: Option<Time>,
    revoked: Vec<&'a [u8]>,
    extensions: Vec<asn1::ExtensionRef<'a>>,
}

/// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }.
fn split_certificate_list(
    der: &[u8],
) -> der::Result<(&[u8], AlgorithmIdentifierOwned, BitStringRef<'_>)> {
    let mut reader = SliceReader::new(der)?;
    let parts = reader.sequence(|list| {
        let tbs = list.tlv_bytes()?;
        let algorithm = list.decode()?;
        let signature = list.decode()?;
        Ok::<_, der::Error>((tbs, algorithm, signature))
    })?;
    reader.finish()?;
    Ok(parts)
}

/// TBSCertList ::= SEQUENCE { version OPTIONAL (v2), signature, issuer, thisUpdate,
/// nextUpdate OPTIONAL, revokedCertificates OPTIONAL, [0] EXPLICIT crlExtensions
/// OPTIONAL }.
fn parse_tbs_cert_list(tbs: &[u8]) -> der::Result<RawTbsCertList<'_>> {
    let mut reader = SliceReader::new(tbs)?;
    let parsed = reader.sequence(|list| {
        // version INTEGER (0x02), present for v2.
        if list.peek_byte() == Some(0x02) {
            // Only v2 (1) is ever written; v1 CRLs omit the field.
            let version: u8 = list.decode()?;
            if version != 1 {
                return Err(list.error(Tag::Integer.value_error()));
            }
        }
        let signature = list.decode()?;
        let issuer = list.tlv_bytes()?;
        let this_update = list.decode()?;
        // UTCTime (0x17) or GeneralizedTime (0x18).
        let next_update = if matches!(list.peek_byte(), Some(0x17 | 0x18)) {
            Some(list.decode()?)
        } else {
            None
        };
        let revoked = if list.peek_byte() == Some(0x30) {
            list.decode::<asn1::RawSequenceOf<'_>>()?.0
        } else {
            Vec::new()
        };
        let extensions = list
            .context_specific::<Vec<asn1::ExtensionRef<'_>>>(TagNumber(0), TagMode::Explicit)?
            .unwrap_or_default();
        Ok::<_, der::Error>(RawTbsCertList {
            signature,
            issuer,
            this_update,
            next_update,
            revoked,
            extensions,
        })
    })?;
    reader.finish()?;
    Ok(parsed)
}

/// The first repeated extension OID, if any (RFC 5280 §4.2: at most one instance).
fn duplicate_extension(extensions: &[asn1::ExtensionRef<'_>]) -> Option<ObjectIdentifier> {
    extensions.iter().enumerate().find_map(|(i, ext)| {
        extensions[..i]
            .iter()
            .any(|earlier| earlier.extn_id == ext.extn_id)
            .then_some(ext.extn_id)
    })
}

/// Where `inner` (a sub-slice of `outer`) sits in `outer`.
fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start + inner.len()
}

/// Decodes a CRLReason ENUMERATED (RFC 5280 §5.3.1).
fn decode_reason(value: &[u8]) -> der::Result<Option<CrlReason>> {
    Ok(CrlReason::from_code(
        asn1::RawEnumerated::from_der(value)?.0,
    ))
}

/// The most extensions a revokedCertificates element may have for
/// [`read_entry_fast`] (CAs write one or two).
const FAST_ENTRY_EXTENSIONS: usize = 4;

/// Reads one revokedCertificates element (RFC 5280 §5.1) without der's reader, whose
/// per-element cost made most of the parse of a large CRL: only the plain DER CAs
/// write (one-byte tags, lengths of at most two bytes, a UTCTime or GeneralizedTime
/// revocationDate, at most [`FAST_ENTRY_EXTENSIONS`] distinct extensions, a one-byte
/// reasonCode). `None` for anything else, malformed or not, which
/// [`Crl::decode_entry`] then reads, or refuses with its error, as it always did:
/// whatever this accepts, der's decoder accepts with the same result.
fn read_entry_fast(raw_entry: &[u8]) -> Option<ReadEntry<'_>> {
    let (0x30, body, []) = split_tlv(raw_entry)? else {
        return None;
    };
    let (0x02, serial, body) = split_tlv(body)? else {
        return None;
    };
    // INTEGER in DER (der's IntRef): not empty, no redundant 00 or FF byte in front.
    if matches!(
        serial,
        [] | [0x00, 0x00..=0x7f, ..] | [0xff, 0x80..=0xff, ..]
    ) {
        return None;
    }
    let (time_tag, time, extensions) = split_tlv(body)?;
    let revoked_at = match time_tag {
        0x17 => utc_time_fast(time)?,
        0x18 => Time::from_der(&body[..body.len() - extensions.len()])
            .ok()?
            .to_system_time(),
        _ => return None,
    };
    let mut read = ReadEntry {
        serial: serial_magnitude(serial),
        entry: CrlEntry {
            revoked_at,
            reason: None,
            invalidity_date: None,
        },
        unsupported: None,
    };
    if !extensions.is_empty() {
        let (0x30, extensions, []) = split_tlv(extensions)? else {
            return None;
        };
        read_entry_extensions_fast(extensions, &mut read)?;
    }
    Some(read)
}

/// The crlEntryExtensions (RFC 5280 §5.3) of [`read_entry_fast`], recorded in `read`
/// as [`Crl::decode_entry`] does; `None` where that one is left to judge.
fn read_entry_extensions_fast(mut list: &[u8], read: &mut ReadEntry<'_>) -> Option<()> {
    let mut seen = [&[][..]; FAST_ENTRY_EXTENSIONS];
    let mut count = 0;
    while !list.is_empty() {
        let (0x30, extension, rest) = split_tlv(list)? else {
            return None;
        };
        list = rest;
        let (0x06, oid, extension) = split_tlv(extension)? else {
            return None;
        };
        // critical BOOLEAN DEFAULT FALSE, then extnValue OCTET STRING.
        let (critical, extension) = match extension {
            [0x01, 0x01, 0x00, rest @ ..] => (false, rest),
            [0x01, 0x01, 0xff, rest @ ..] => (true, rest),
            _ => (false, extension),
        };
        let (0x04, value, []) = split_tlv(extension)? else {
            return None;
        };
        // A repeated extension is an error, reported by `Crl::decode_entry`.
        if count == FAST_ENTRY_EXTENSIONS || seen[..count].contains(&oid) {
            return None;
        }
        seen[count] = oid;
        count += 1;
        match ObjectIdentifier::from_bytes(oid).ok()? {
            rfc5280::ID_CE_CRL_REASONS => {
                // ENUMERATED with one content byte: 0 to 127.
                let [0x0a, 0x01, code @ 0x00..=0x7f] = *value else {
                    return None;
                };
                read.entry.reason = CrlReason::from_code(u32::from(code));
            }
            rfc5280::ID_CE_INVALIDITY_DATE => {
                let date = GeneralizedTime::from_der(value).ok()?;
                read.entry.invalidity_date = Some(date.to_system_time());
            }
            rfc5280::ID_CE_CERTIFICATE_ISSUER => {
                read.unsupported
                    .get_or_insert_with(|| Unsupported::EntryCertificateIssuer {
                        serial: read.serial.to_vec(),
                    });
            }
            oid if critical => {
                read.unsupported
                    .get_or_insert_with(|| Unsupported::EntryCriticalExtension {
                        serial: read.serial.to_vec(),
                        oid,
                    });
            }
            _ => {}
        }
    }
    Some(())
}

/// Splits one DER element off the front of `input` for [`read_entry_fast`]:
/// `(tag, value, rest)`, for a one-byte tag and a definite length in its shortest
/// form of at most two bytes that fits in `input`; `None` for anything else.
fn split_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (len, rest) = match rest {
        [len @ 0x00..=0x7f, rest @ ..] => (usize::from(*len), rest),
        [0x81, len @ 0x80..=0xff, rest @ ..] => (usize::from(*len), rest),
        [0x82, high @ 0x01..=0xff, low, rest @ ..] => {
            (usize::from(*high) << 8 | usize::from(*low), rest)
        }
        _ => return None,
    };
    let value = rest.get(..len)?;
    Some((tag, value, &rest[len..]))
}

/// A UTCTime value `YYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.1) read as der reads it: years
/// 50 to 99 are 19xx, and der's [`DateTime::new`] checks the fields.
fn utc_time_fast(value: &[u8]) -> Option<SystemTime> {
    let [digits @ .., b'Z'] = value else {
        return None;
    };
    let digits: &[u8; 12] = digits.try_into().ok()?;
    let mut fields = [0u8; 6];
    for (field, pair) in fields.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (pair[0], pair[1]);
        if !high.is_ascii_digit() || !low.is_ascii_digit() {
            return None;
        }
        *field = (high - b'0') * 10 + (low - b'0');
    }
    let [year, month, day, hour, minute, second] = fields;
    let year = u16::from(year) + if year >= 50 { 1900 } else { 2000 };
    let date = DateTime::new(year, month, day, hour, minute, second).ok()?;
    Some(date.to_system_time())
}

impl Crl {
    /// Parses one DER CertificateList (RFC 5280 §5.1, v1 or v2); trailing bytes are an
    /// error. Extensions are read here; what makes the CRL unusable is reported by
    /// [`Crl::validate`].
    pub fn from_der(der: &[u8]) -> Result<Crl, RevocationError> {
        if der.len() > MAX_CRL_BYTES {
            return Err(RevocationError::CrlTooLarge {
                len: der.len(),
                limit: MAX_CRL_BYTES,
            });
        }
        let malformed = |source| RevocationError::MalformedCrl { source };
        let (tbs, signature_algorithm, signature) =
            split_certificate_list(der).map_err(malformed)?;
        let raw = parse_tbs_cert_list(tbs).map_err(malformed)?;
        let issuer_name = Name::from_der(raw.issuer).map_err(malformed)?;
        if raw.signature != signature_algorithm {
            return Err(RevocationError::CrlAlgorithmMismatch {
                issuer: issuer_name.to_string(),
            });
        }
        if let Some(oid) = duplicate_extension(&raw.extensions) {
            return Err(RevocationError::DuplicateCrlExtension {
                issuer: issuer_name.to_string(),
                oid: oid.to_string(),
            });
        }

        let mut crl = Crl {
            issuer_name,
            der: der.to_vec(),
            tbs: range_in(der, tbs),
            issuer: range_in(der, raw.issuer),
            signature_algorithm,
            signature: signature.as_bytes().map(<[u8]>::to_vec),
            this_update: raw.this_update.to_system_time(),
            next_update: raw.next_update.map(|t| t.to_system_time()),
            crl_number: None,
            delta_base: None,
            has_freshest_crl: false,
            freshest_crl_urls: Vec::new(),
            entries: HashMap::with_capacity(raw.revoked.len()),
            unsupported: None,
        };

        for ext in &raw.extensions {
            crl.read_extension(ext)?;
        }
        for raw_entry in raw.revoked {
            let read = match read_entry_fast(raw_entry) {
                Some(read) => read,
                None => crl.decode_entry(raw_entry)?,
            };
            crl.add_entry(read);
        }
        Ok(crl)
    }

    /// Records one CRL extension (RFC 5280 §5.2): the numbers, FreshestCRL, and what
    /// makes the CRL unusable.
    fn read_extension(&mut self, ext: &asn1::ExtensionRef<'_>) -> Result<(), RevocationError> {
        let bad = |extension| RevocationError::MalformedCrlExtension {
            issuer: self.issuer_string(),
            extension,
        };
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            rfc5280::ID_CE_CRL_NUMBER => {
                let number = UintRef::from_der(value).map_err(|_| bad("CRLNumber"))?;
                self.crl_number = Some(number.as_bytes().to_vec());
            }
            rfc5280::ID_CE_DELTA_CRL_INDICATOR => {
                let base = UintRef::from_der(value).map_err(|_| bad("DeltaCRLIndicator"))?;
                self.delta_base = Some(base.as_bytes().to_vec());
            }
            rfc5280::ID_CE_FRESHEST_CRL => {
                let points = FreshestCrl::from_der(value).map_err(|_| bad("FreshestCRL"))?;
                self.has_freshest_crl = true;
                self.freshest_crl_urls = distribution_point_uris(&points.0)
                    .into_iter()
                    .filter(|url| is_http_url(url))
                    .collect();
            }
            rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT => {
                // Decoded by OID here: x509-cert 0.3.0 gives IssuingDistributionPoint
                // the wrong AssociatedOid (id-pe-subjectInfoAccess), so
                // `get_extension` would never find it. The scope fields are not
                // checked, as in notation (every CDP URL is checked); only indirect
                // CRLs are refused.
                let idp = IssuingDistributionPoint::from_der(value)
                    .map_err(|_| bad("IssuingDistributionPoint"))?;
                if idp.indirect_crl {
                    self.unsupported.get_or_insert(Unsupported::IndirectCrl);
                }
            }
            rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER => {}
            oid if ext.critical => {
                self.unsupported
                    .get_or_insert(Unsupported::CriticalExtension(oid));
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads one revokedCertificates element (RFC 5280 §5.1.2.6, §5.3) with der's
    /// decoder: every element [`read_entry_fast`] leaves, and the errors.
    fn decode_entry<'a>(&self, raw_entry: &'a [u8]) -> Result<ReadEntry<'a>, RevocationError> {
        let entry = asn1::RevokedCertRef::from_der(raw_entry)
            .map_err(|source| RevocationError::MalformedCrl { source })?;
        let serial = serial_magnitude(entry.user_certificate.as_bytes());
        let extensions = entry.crl_entry_extensions.unwrap_or_default();
        let bad = |extension| RevocationError::MalformedCrlEntryExtension {
            issuer: self.issuer_string(),
            serial: serial_hex(serial),
            extension,
        };
        if duplicate_extension(&extensions).is_some() {
            return Err(bad("duplicated"));
        }
        let mut reason = None;
        let mut invalidity_date = None;
        let mut unsupported = None;
        for ext in &extensions {
            let value = ext.extn_value.as_bytes();
            match ext.extn_id {
                rfc5280::ID_CE_CRL_REASONS => {
                    reason = decode_reason(value).map_err(|_| bad("reasonCode"))?;
                }
                rfc5280::ID_CE_INVALIDITY_DATE => {
                    let date =
                        GeneralizedTime::from_der(value).map_err(|_| bad("invalidityDate"))?;
                    invalidity_date = Some(date.to_system_time());
                }
                rfc5280::ID_CE_CERTIFICATE_ISSUER => {
                    unsupported.get_or_insert(Unsupported::EntryCertificateIssuer {
                        serial: serial.to_vec(),
                    });
                }
                oid if ext.critical => {
                    unsupported.get_or_insert(Unsupported::EntryCriticalExtension {
                        serial: serial.to_vec(),
                        oid,
                    });
                }
                _ => {}
            }
        }
        Ok(ReadEntry {
            serial,
            entry: CrlEntry {
                revoked_at: entry.revocation_date.to_system_time(),
                reason,
                invalidity_date,
            },
            unsupported,
        })
    }

    /// Indexes one revokedCertificates element.
    fn add_entry(&mut self, read: ReadEntry<'_>) {
        if self.unsupported.is_none() {
            self.unsupported = read.unsupported;
        }
        match self.entries.entry(SerialKey::new(read.serial)) {
            Entry::Vacant(slot) => {
                slot.insert(read.entry);
            }
            // A serial listed twice (a CA bug): keep a permanent revocation over a
            // hold/removal, else the latest, so a lookup never reads less revoked than
            // a scan of every entry would.
            Entry::Occupied(mut slot) => {
                let (kept, entry) = (slot.get(), read.entry);
                if kept.is_temporary()
                    && (!entry.is_temporary() || entry.revoked_at > kept.revoked_at)
                {
                    slot.insert(entry);
                }
            }
        }
    }

    /// Parses a CRL file: the first PEM `X509 CRL` block (RFC 7468 §5) when the bytes
    /// hold PEM, else one DER CertificateList.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Crl, RevocationError> {
        const BEGIN: &[u8] = b"-----BEGIN ";
        const END: &[u8] = b"-----END ";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        if find(bytes, BEGIN).is_none() {
            return Crl::from_der(bytes);
        }
        let unterminated = || RevocationError::MalformedCrlPem {
            source: der::Error::from(der::ErrorKind::Failed),
        };
        let mut rest = bytes;
        while let Some(begin) = find(rest, BEGIN) {
            let block = &rest[begin..];
            let end = find(block, END).ok_or_else(unterminated)?;
            let after_end = &block[end + END.len()..];
            let close = find(after_end, b"-----").ok_or_else(unterminated)?;
            let block_len = end + END.len() + close + 5;
            let (label, body) = der::pem::decode_vec(&block[..block_len])
                .map_err(|e| RevocationError::MalformedCrlPem { source: e.into() })?;
            if label == "X509 CRL" {
                return Crl::from_der(&body);
            }
            rest = &block[block_len..];
        }
        Err(RevocationError::NoCrlInPem)
    }

    /// The DER this CRL was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer Name exactly as encoded in the CRL.
    pub fn issuer_der(&self) -> &[u8] {
        self.der.get(self.issuer.clone()).unwrap_or_default()
    }

    /// The issuer DN in RFC 4514 form, for messages.
    pub fn issuer_string(&self) -> String {
        self.issuer_name.to_string()
    }

    /// thisUpdate (RFC 5280 §5.1.2.4).
    pub fn this_update(&self) -> SystemTime {
        self.this_update
    }

    /// nextUpdate (RFC 5280 §5.1.2.5), if present.
    pub fn next_update(&self) -> Option<SystemTime> {
        self.next_update
    }

    /// The CRLNumber (RFC 5280 §5.2.3) magnitude, big-endian without leading zeros.
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.crl_number.as_deref()
    }

    /// The DeltaCRLIndicator's base CRL number (RFC 5280 §5.2.4); `Some` means this is
    /// a delta CRL.
    pub fn delta_base(&self) -> Option<&[u8]> {
        self.delta_base.as_deref()
    }

    /// Whether the CRL has a FreshestCRL extension (RFC 5280 §5.2.6): a delta CRL
    /// must then be given to [`crl_status`].
    pub fn has_freshest_crl(&self) -> bool {
        self.has_freshest_crl
    }

    /// The `http://` and `https://` fullName URIs of the FreshestCRL extension, in
    /// order (other schemes are left out).
    pub fn freshest_crl_urls(&self) -> &[String] {
        &self.freshest_crl_urls
    }

    /// Number of distinct revoked serials.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No serial is revoked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for a serial, in [`Certificate::serial_bytes`] form (leading zero
    /// bytes are ignored).
    pub fn entry(&self, serial: &[u8]) -> Option<&CrlEntry> {
        self.entries.get(serial_magnitude(serial))
    }

    /// The signed bytes: tbsCertList exactly as it appears in the DER.
    fn tbs_der(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }

    /// The checks of NOTARY.md §7 on a CRL (base or delta) from `issuer` at `now`:
    ///
    /// 1. The CRL issuer Name is byte-equal to `issuer`'s subject (RFC 5280 §6.3.3 (b)).
    /// 2. `issuer`'s keyUsage, if present, asserts cRLSign (RFC 5280 §6.3.3 (f)).
    /// 3. The signature over the raw tbsCertList verifies under `issuer`'s key
    ///    (RFC 5280 §6.3.3 (g)); SHA-1/MD5 signatures are refused as for certificates.
    /// 4. thisUpdate ≤ `now`.
    /// 5. nextUpdate is present and after `now` (notation refuses CRLs without it).
    /// 6. No critical CRL or entry extension other than those processed here
    ///    (CRLNumber, DeltaCRLIndicator, AuthorityKeyIdentifier,
    ///    IssuingDistributionPoint, FreshestCRL; reasonCode, invalidityDate), no indirect
    ///    CRL and no certificateIssuer entry (RFC 5280 §5.2, §5.3).
    pub fn validate(&self, issuer: &Certificate, now: SystemTime) -> Result<(), RevocationError> {
        let crl_issuer = || self.issuer_string();
        // Step 1.
        if self.issuer_der() != issuer.raw_subject_der() {
            return Err(RevocationError::CrlIssuerMismatch {
                crl_issuer: crl_issuer(),
                issuer: issuer.subject_string(),
            });
        }
        // Step 2.
        match issuer.x509().tbs_certificate().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) if !ku.crl_sign() => {
                return Err(RevocationError::IssuerCannotSignCrls {
                    issuer: issuer.subject_string(),
                })
            }
            Err(_) => {
                return Err(RevocationError::MalformedIssuerKeyUsage {
                    issuer: issuer.subject_string(),
                })
            }
            _ => {}
        }
        // Step 3.
        let signature = self.signature.as_deref().ok_or(PkiError::BadSignature);
        signature
            .and_then(|signature| {
                verify_with_spki(issuer, &self.signature_algorithm, self.tbs_der(), signature)
            })
            .map_err(|source| RevocationError::CrlSignature {
                issuer: issuer.subject_string(),
                source: Box::new(source),
            })?;
        // Step 4.
        if self.this_update > now {
            return Err(RevocationError::CrlNotYetValid {
                issuer: crl_issuer(),
                this_update: self.this_update,
                at: now,
            });
        }
        // Step 5.
        let Some(next_update) = self.next_update else {
            return Err(RevocationError::CrlNoNextUpdate {
                issuer: crl_issuer(),
            });
        };
        if next_update <= now {
            return Err(RevocationError::CrlExpired {
                issuer: crl_issuer(),
                next_update,
                at: now,
            });
        }
        // Step 6.
        match &self.unsupported {
            None => Ok(()),
            Some(Unsupported::CriticalExtension(oid)) => {
                Err(RevocationError::CrlUnknownCriticalExtension {
                    issuer: crl_issuer(),
                    oid: oid.to_string(),
                })
            }
            Some(Unsupported::IndirectCrl) => Err(RevocationError::IndirectCrl {
                issuer: crl_issuer(),
            }),
            Some(Unsupported::EntryCriticalExtension { serial, oid }) => {
                Err(RevocationError::CrlEntryUnknownCriticalExtension {
                    issuer: crl_issuer(),
                    serial: serial_hex(serial),
                    oid: oid.to_string(),
                })
            }
            Some(Unsupported::EntryCertificateIssuer { serial }) => {
                Err(RevocationError::CrlEntryCertificateIssuer {
                    issuer: crl_issuer(),
                    serial: serial_hex(serial),
                })
            }
        }
    }
}

fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether `cert` carries a FreshestCRL extension (RFC 5280 §4.2.1.15).
fn has_freshest_crl_extension(cert: &Certificate) -> bool {
    cert.x509()
        .tbs_certificate()
        .extensions()
        .is_some_and(|exts| {
            exts.iter()
                .any(|e| e.extn_id == rfc5280::ID_CE_FRESHEST_CRL)
        })
}

/// A certificate's revocation status per CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        revoked_at: SystemTime,
        reason: Option<CrlReason>,
    },
}

/// The status of `cert` per a base CRL and an optional delta CRL, both already
/// checked with [`Crl::validate`] against `cert`'s issuer (NOTARY.md §7; CORE
/// `revocation/internal/crl/crl.go` checkRevocation).
///
/// 1. The base CRL is from `cert`'s issuer (raw Name) and is not itself a delta CRL.
/// 2. A FreshestCRL in the certificate without one in the base CRL is unsupported.
/// 3. A delta CRL is used exactly when the base CRL has FreshestCRL (one must then
///    be given): it must be a delta CRL from the same issuer, the base must have a
///    CRLNumber, the delta's CRLNumber must be greater than it and its
///    DeltaCRLIndicator not greater (RFC 5280 §5.2.4).
/// 4. The entries for `cert`'s serial, base first: an entry whose invalidityDate is
///    after `signing_time` (given only for the signingAuthority scheme) ends the scan;
///    certificateHold/removeFromCRL entries are temporary and the latest by
///    revocationDate wins; any other entry is a permanent revocation.
/// 5. The latest temporary entry, if certificateHold, revokes; otherwise Good.
pub fn crl_status(
    cert: &Certificate,
    base: &Crl,
    delta: Option<&Crl>,
    signing_time: Option<SystemTime>,
) -> Result<CertStatus, RevocationError> {
    // Step 1.
    if base.issuer_der() != cert.raw_issuer_der() {
        return Err(RevocationError::CrlNotForCertificate {
            subject: cert.subject_string(),
            issuer: cert.issuer_string(),
            crl_issuer: base.issuer_string(),
        });
    }
    if base.delta_base.is_some() {
        return Err(RevocationError::BaseCrlIsDelta {
            issuer: base.issuer_string(),
        });
    }
    // Step 2.
    if has_freshest_crl_extension(cert) && !base.has_freshest_crl {
        return Err(RevocationError::DeltaCrlOnlyInCertificate {
            subject: cert.subject_string(),
            issuer: base.issuer_string(),
        });
    }
    // Step 3.
    let delta = match (base.has_freshest_crl, delta) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(RevocationError::UnexpectedDeltaCrl {
                issuer: base.issuer_string(),
            })
        }
        (true, None) => {
            return Err(RevocationError::DeltaCrlMissing {
                issuer: base.issuer_string(),
            })
        }
        (true, Some(delta)) => {
            check_delta(base, delta)?;
            Some(delta)
        }
    };
    // Step 4.
    let serial = cert.serial_bytes();
    let mut latest_temporary: Option<&CrlEntry> = None;
    for entry in [Some(base), delta]
        .into_iter()
        .flatten()
        .filter_map(|crl| crl.entry(serial))
    {
        if let (Some(signed), Some(invalid)) = (signing_time, entry.invalidity_date) {
            if signed < invalid {
                break;
            }
        }
        if entry.is_temporary() {
            if latest_temporary.is_none_or(|latest| latest.revoked_at < entry.revoked_at) {
                latest_temporary = Some(entry);
            }
        } else {
            return Ok(CertStatus::Revoked {
                revoked_at: entry.revoked_at,
                reason: entry.reason,
            });
        }
    }
    // Step 5.
    match latest_temporary {
        Some(entry) if entry.reason == Some(CrlReason::CertificateHold) => {
            Ok(CertStatus::Revoked {
                revoked_at: entry.revoked_at,
                reason: entry.reason,
            })
        }
        _ => Ok(CertStatus::Good),
    }
}

/// Step 3 of [`crl_status`]: `delta` is a delta CRL for `base`.
fn check_delta(base: &Crl, delta: &Crl) -> Result<(), RevocationError> {
    let issuer = || base.issuer_string();
    let Some(delta_base) = delta.delta_base() else {
        return Err(RevocationError::NotADeltaCrl {
            issuer: delta.issuer_string(),
        });
    };
    if delta.issuer_der() != base.issuer_der() {
        return Err(RevocationError::DeltaCrlIssuerMismatch {
            issuer: issuer(),
            delta_issuer: delta.issuer_string(),
        });
    }
    let Some(base_number) = base.crl_number() else {
        return Err(RevocationError::CrlNumberMissing { issuer: issuer() });
    };
    let delta_number = delta.crl_number();
    if !delta_number.is_some_and(|number| cmp_magnitude(number, base_number).is_gt()) {
        return Err(RevocationError::DeltaCrlNotNewer {
            issuer: issuer(),
            base: crl_number_text(base_number),
            delta: delta_number.map_or_else(|| "(none)".to_string(), crl_number_text),
        });
    }
    if cmp_magnitude(delta_base, base_number).is_gt() {
        return Err(RevocationError::DeltaCrlBaseTooNew {
            issuer: issuer(),
            base: crl_number_text(base_number),
            delta_base: crl_number_text(delta_base),
        });
    }
    Ok(())
}

/// The hashes a CertID may use: SHA-1 (what notation asks with) and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertIdHash {
    Sha1,
    Sha256,
}

impl CertIdHash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<CertIdHash> {
        match *oid {
            rfc5912::ID_SHA_1 => Some(CertIdHash::Sha1),
            rfc5912::ID_SHA_256 => Some(CertIdHash::Sha256),
            _ => None,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            CertIdHash::Sha1 => rfc5912::ID_SHA_1,
            CertIdHash::Sha256 => rfc5912::ID_SHA_256,
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            CertIdHash::Sha1 => sha1::Sha1::digest(bytes).to_vec(),
            CertIdHash::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
        }
    }
}

/// The subjectPublicKey BIT STRING contents (RFC 6960 §4.1.1 issuerKeyHash input).
fn public_key_bits(cert: &Certificate) -> &[u8] {
    cert.x509()
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
}

/// A CertID (RFC 6960 §4.1.1) for `cert`: hashes of `issuer`'s raw subject Name and
/// of its public key bits, and `cert`'s serial as encoded.
fn cert_id(
    hash: CertIdHash,
    cert: &Certificate,
    issuer: &Certificate,
) -> der::Result<asn1::CertId> {
    Ok(asn1::CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: hash.oid(),
            // openssl and Go both write an explicit NULL.
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: OctetString::new(hash.digest(issuer.raw_subject_der()))?,
        issuer_key_hash: OctetString::new(hash.digest(public_key_bits(issuer)))?,
        serial_number: Int::new(cert.x509().tbs_certificate().serial_number().as_bytes())?,
    })
}

fn cert_id_matches(id: &asn1::CertId, cert: &Certificate, issuer: &Certificate) -> bool {
    let Some(hash) = CertIdHash::from_oid(&id.hash_algorithm.oid) else {
        return false;
    };
    serial_magnitude(id.serial_number.as_bytes()) == cert.serial_bytes()
        && id.issuer_name_hash.as_bytes() == hash.digest(issuer.raw_subject_der())
        && id.issuer_key_hash.as_bytes() == hash.digest(public_key_bits(issuer))
}

/// The DER OCSPRequest (RFC 6960 §4.1.1) notation sends for `cert`: one Request with a
/// SHA-1 CertID, no nonce, no requestorName, no signature.
pub fn ocsp_request_der(
    cert: &Certificate,
    issuer: &Certificate,
) -> Result<Vec<u8>, RevocationError> {
    let encoding = |source| RevocationError::OcspRequestEncoding { source };
    let request = asn1::OcspRequest {
        tbs_request: asn1::TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: vec![asn1::Request {
                req_cert: cert_id(CertIdHash::Sha1, cert, issuer).map_err(encoding)?,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    request.to_der().map_err(encoding)
}

/// The outcome of one OCSP SingleResponse (RFC 6960 §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcspStatus {
    Good,
    Revoked {
        revoked_at: SystemTime,
        reason: Option<CrlReason>,
    },
    Unknown,
}

/// A checked OCSP answer for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    pub status: OcspStatus,
    pub this_update: SystemTime,
    pub next_update: SystemTime,
}

/// The name of an OCSPResponseStatus value (RFC 6960 §4.2.1).
fn response_status_name(code: u32) -> &'static str {
    match code {
        0 => "successful",
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "(undefined)",
    }
}

/// A BasicOCSPResponse (RFC 6960 §4.2.1) with its signed bytes.
struct BasicResponse<'a> {
    /// tbsResponseData exactly as it appears in the DER.
    tbs: &'a [u8],
    data: asn1::ResponseData<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitStringRef<'a>,
    certs: Vec<&'a [u8]>,
}

fn parse_basic_response(bytes: &[u8]) -> der::Result<BasicResponse<'_>> {
    let mut reader = SliceReader::new(bytes)?;
    let (tbs, signature_algorithm, signature, certs) = reader.sequence(|basic| {
        let tbs = basic.tlv_bytes()?;
        let signature_algorithm = basic.decode()?;
        let signature = basic.decode()?;
        let certs = basic
            .context_specific::<asn1::RawSequenceOf<'_>>(TagNumber(0), TagMode::Explicit)?
            .map(|certs| certs.0)
            .unwrap_or_default();
        Ok::<_, der::Error>((tbs, signature_algorithm, signature, certs))
    })?;
    reader.finish()?;
    Ok(BasicResponse {
        tbs,
        data: asn1::ResponseData::from_der(tbs)?,
        signature_algorithm,
        signature,
        certs,
    })
}

impl asn1::ResponderId<'_> {
    /// Whether this ResponderID (RFC 6960 §4.2.2.3) names `cert`: byName is its raw
    /// subject, byKey the SHA-1 of its public key bits.
    fn names(&self, cert: &Certificate) -> bool {
        match self {
            asn1::ResponderId::ByName(name) => {
                name.to_der().is_ok_and(|der| der == cert.raw_subject_der())
            }
            asn1::ResponderId::ByKey(hash) => {
                hash.as_bytes() == CertIdHash::Sha1.digest(public_key_bits(cert))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            asn1::ResponderId::ByName(name) => name
                .to_der()
                .ok()
                .and_then(|der| Name::from_der(&der).ok())
                .map_or_else(
                    || "(malformed name)".to_string(),
                    |n| format!("{:?}", n.to_string()),
                ),
            asn1::ResponderId::ByKey(hash) => {
                format!("with key hash {}", serial_hex(hash.as_bytes()))
            }
        }
    }
}

/// RFC 6960 §4.2.2.2: the response is signed by `issuer` itself, or by the first
/// certificate in `certs` that the ResponderID names (responders send one, as Go's
/// `ocsp.ParseResponseForCert` assumes), which `issuer` signed, which carries
/// id-kp-OCSPSigning and is valid at `now`.
fn check_ocsp_signer(
    basic: &BasicResponse<'_>,
    issuer: &Certificate,
    now: SystemTime,
) -> Result<(), RevocationError> {
    let verify = |signer: &Certificate| {
        let signature = basic.signature.as_bytes().ok_or(PkiError::BadSignature)?;
        verify_with_spki(signer, &basic.signature_algorithm, basic.tbs, signature)
    };
    let responder_id = &basic.data.responder_id;
    if responder_id.names(issuer) {
        return verify(issuer).map_err(|source| RevocationError::OcspNotSignedByIssuer {
            issuer: issuer.subject_string(),
            source: Box::new(source),
        });
    }
    let mut named = None;
    for raw in &basic.certs {
        let cert = Certificate::from_der(raw).map_err(|source| {
            RevocationError::MalformedOcspCertificate {
                source: Box::new(source),
            }
        })?;
        if responder_id.names(&cert) {
            named = Some(cert);
            break;
        }
    }
    let Some(responder) = named else {
        return Err(RevocationError::OcspResponderUnknown {
            issuer: issuer.subject_string(),
            responder: responder_id.describe(),
        });
    };
    let name = || responder.subject_string();
    verify(&responder).map_err(|source| RevocationError::OcspNotSignedByResponder {
        responder: name(),
        source: Box::new(source),
    })?;
    verify_signed_by(&responder, issuer).map_err(|source| {
        RevocationError::OcspResponderNotAuthorised {
            responder: name(),
            issuer: issuer.subject_string(),
            source: Box::new(source),
        }
    })?;
    let eku = responder
        .x509()
        .tbs_certificate()
        .get_extension::<ExtendedKeyUsage>()
        .map_err(|_| RevocationError::OcspResponderInvalid {
            responder: name(),
            source: Box::new(PkiError::MalformedExtension {
                subject: name(),
                extension: "extendedKeyUsage",
            }),
        })?;
    if !eku.is_some_and(|(_, eku)| eku.0.contains(&rfc5280::ID_KP_OCSP_SIGNING)) {
        return Err(RevocationError::OcspResponderNotOcspSigning { responder: name() });
    }
    check_valid_at(&responder, now).map_err(|source| RevocationError::OcspResponderInvalid {
        responder: name(),
        source: Box::new(source),
    })
}

/// The first critical extension in `extensions` other than `known`.
fn unknown_critical(
    extensions: &[asn1::ExtensionRef<'_>],
    known: &[ObjectIdentifier],
) -> Result<(), RevocationError> {
    match extensions
        .iter()
        .find(|ext| ext.critical && !known.contains(&ext.extn_id))
    {
        Some(ext) => Err(RevocationError::OcspUnknownCriticalExtension {
            oid: ext.extn_id.to_string(),
        }),
        None => Ok(()),
    }
}

/// Judges an OCSP response for `cert` issued by `issuer` at `now` (RFC 6960 §3.2,
/// NOTARY.md §7; CORE `revocation/internal/ocsp/ocsp.go`):
///
/// 1. At most [`MAX_OCSP_RESPONSE_BYTES`] bytes of DER OCSPResponse.
/// 2. responseStatus successful, responseType id-pkix-ocsp-basic.
/// 3. Signed by `issuer`, or by a responder certificate in the response that `issuer`
///    signed, with id-kp-OCSPSigning, valid at `now` (RFC 6960 §4.2.2.2).
/// 4. No unknown critical response extension.
/// 5. The first SingleResponse whose CertID (SHA-1 or SHA-256) matches `cert`.
/// 6. No unknown critical single extension (invalidityDate is read).
/// 7. thisUpdate ≤ `now` + [`OCSP_CLOCK_SKEW`]; nextUpdate present and after `now`
///    (notation treats an absent or past nextUpdate as unknown).
/// 8. good / revoked / unknown; revoked with an invalidityDate (2.5.29.24) after
///    `signing_time` (given only for the signingAuthority scheme) is good.
pub fn judge_ocsp_response(
    der: &[u8],
    cert: &Certificate,
    issuer: &Certificate,
    now: SystemTime,
    signing_time: Option<SystemTime>,
) -> Result<OcspAnswer, RevocationError> {
    let malformed = |source| RevocationError::MalformedOcspResponse { source };
    // Step 1.
    if der.len() > MAX_OCSP_RESPONSE_BYTES {
        return Err(RevocationError::OcspResponseTooLarge {
            len: der.len(),
            limit: MAX_OCSP_RESPONSE_BYTES,
        });
    }
    let response = asn1::OcspResponse::from_der(der).map_err(malformed)?;
    // Step 2.
    let code = response.response_status.0;
    if code != 0 {
        return Err(RevocationError::OcspUnsuccessful {
            status: response_status_name(code),
            code,
        });
    }
    let bytes = response
        .response_bytes
        .ok_or(RevocationError::OcspNoResponseBytes)?;
    if bytes.response_type != rfc6960::ID_PKIX_OCSP_BASIC {
        return Err(RevocationError::OcspNotBasic {
            oid: bytes.response_type.to_string(),
        });
    }
    let basic = parse_basic_response(bytes.response.as_bytes()).map_err(malformed)?;
    // Step 3.
    check_ocsp_signer(&basic, issuer, now)?;
    // Step 4.
    unknown_critical(
        basic
            .data
            .response_extensions
            .as_deref()
            .unwrap_or_default(),
        &[],
    )?;
    // Step 5.
    let Some(single) = basic
        .data
        .responses
        .iter()
        .find(|single| cert_id_matches(&single.cert_id, cert, issuer))
    else {
        return Err(RevocationError::OcspNoMatchingResponse {
            serial: serial_hex(cert.serial_bytes()),
            issuer: issuer.subject_string(),
        });
    };
    // Step 6.
    let single_extensions = single.single_extensions.as_deref().unwrap_or_default();
    unknown_critical(single_extensions, &[rfc5280::ID_CE_INVALIDITY_DATE])?;
    let invalidity_date = match single_extensions
        .iter()
        .find(|ext| ext.extn_id == rfc5280::ID_CE_INVALIDITY_DATE)
    {
        Some(ext) => Some(
            GeneralizedTime::from_der(ext.extn_value.as_bytes())
                .map_err(|_| RevocationError::MalformedOcspExtension {
                    extension: "invalidityDate",
                })?
                .to_system_time(),
        ),
        None => None,
    };
    // Step 7.
    let this_update = single.this_update.to_system_time();
    if this_update > now + OCSP_CLOCK_SKEW {
        return Err(RevocationError::OcspNotYetValid {
            this_update,
            at: now,
        });
    }
    let next_update = single
        .next_update
        .ok_or(RevocationError::OcspNoNextUpdate)?
        .to_system_time();
    if next_update <= now {
        return Err(RevocationError::OcspExpired {
            next_update,
            at: now,
        });
    }
    // Step 8.
    let status = match &single.cert_status {
        asn1::CertStatus::Good(_) => OcspStatus::Good,
        asn1::CertStatus::Unknown(_) => OcspStatus::Unknown,
        asn1::CertStatus::Revoked(info) => match (signing_time, invalidity_date) {
            (Some(signed), Some(invalid)) if signed < invalid => OcspStatus::Good,
            _ => OcspStatus::Revoked {
                revoked_at: info.revocation_time.to_system_time(),
                reason: info
                    .revocation_reason
                    .and_then(|reason| CrlReason::from_code(reason.0)),
            },
        },
    };
    Ok(OcspAnswer {
        status,
        this_update,
        next_update,
    })
}

/// The ASN.1 of RFC 6960 §4 (OCSP, EXPLICIT TAGS module) and the CRL pieces read
/// here, field by field, on der 0.8. Only what this module needs is public to it.
mod asn1 {
    use const_oid::ObjectIdentifier;
    use der::asn1::{
        AnyRef, BitString, GeneralizedTime, Int, IntRef, Null, OctetString, OctetStringRef,
    };
    use der::{
        Choice, DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer,
    };
    use spki::AlgorithmIdentifierOwned;
    use x509_cert::certificate::Version;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::Extensions;
    use x509_cert::time::Time;

    /// Extension (RFC 5280 §4.1) borrowing its value from the input.
    ///
    /// ```text
    /// Extension  ::=  SEQUENCE  {
    ///      extnID      OBJECT IDENTIFIER,
    ///      critical    BOOLEAN DEFAULT FALSE,
    ///      extnValue   OCTET STRING }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct ExtensionRef<'a> {
        pub extn_id: ObjectIdentifier,
        #[asn1(default = "Default::default")]
        pub critical: bool,
        pub extn_value: &'a OctetStringRef,
    }

    /// One element of TBSCertList.revokedCertificates (RFC 5280 §5.1).
    ///
    /// ```text
    /// SEQUENCE  {
    ///      userCertificate         CertificateSerialNumber,
    ///      revocationDate          Time,
    ///      crlEntryExtensions      Extensions OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct RevokedCertRef<'a> {
        pub user_certificate: IntRef<'a>,
        pub revocation_date: Time,
        pub crl_entry_extensions: Option<Vec<ExtensionRef<'a>>>,
    }

    /// A SEQUENCE OF read as the raw TLVs of its elements (certificates kept as
    /// DER for [`super::Certificate::from_der`], CRL entries decoded one by one).
    pub(super) struct RawSequenceOf<'a>(pub Vec<&'a [u8]>);

    impl<'a> DecodeValue<'a> for RawSequenceOf<'a> {
        type Error = der::Error;

        fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
            let mut items = Vec::new();
            while !reader.is_finished() {
                items.push(reader.tlv_bytes()?);
            }
            Ok(RawSequenceOf(items))
        }
    }

    impl FixedTag for RawSequenceOf<'_> {
        const TAG: Tag = Tag::Sequence;
    }

    /// An ENUMERATED read as its value, so that a value outside the listed ones
    /// (CRLReason 7, a future OCSPResponseStatus) is not a decoding error.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct RawEnumerated(pub u32);

    impl<'a> DecodeValue<'a> for RawEnumerated {
        type Error = der::Error;

        fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
            u32::decode_value(reader, header).map(RawEnumerated)
        }
    }

    impl EncodeValue for RawEnumerated {
        fn value_len(&self) -> der::Result<Length> {
            self.0.value_len()
        }

        fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
            self.0.encode_value(writer)
        }
    }

    impl FixedTag for RawEnumerated {
        const TAG: Tag = Tag::Enumerated;
    }

    /// ```text
    /// OCSPRequest ::= SEQUENCE {
    ///     tbsRequest                  TBSRequest,
    ///     optionalSignature   [0]     EXPLICIT Signature OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct OcspRequest {
        pub tbs_request: TbsRequest,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        pub optional_signature: Option<Signature>,
    }

    /// ```text
    /// TBSRequest ::= SEQUENCE {
    ///     version             [0]     EXPLICIT Version DEFAULT v1,
    ///     requestorName       [1]     EXPLICIT GeneralName OPTIONAL,
    ///     requestList                 SEQUENCE OF Request,
    ///     requestExtensions   [2]     EXPLICIT Extensions OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct TbsRequest {
        #[asn1(
            context_specific = "0",
            tag_mode = "EXPLICIT",
            default = "Default::default"
        )]
        pub version: Version,
        #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
        pub requestor_name: Option<GeneralName>,
        pub request_list: Vec<Request>,
        #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
        pub request_extensions: Option<Extensions>,
    }

    /// ```text
    /// Signature ::= SEQUENCE {
    ///     signatureAlgorithm      AlgorithmIdentifier,
    ///     signature               BIT STRING,
    ///     certs               [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct Signature {
        pub signature_algorithm: AlgorithmIdentifierOwned,
        pub signature: BitString,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        pub certs: Option<Vec<x509_cert::Certificate>>,
    }

    /// ```text
    /// Request ::= SEQUENCE {
    ///     reqCert                     CertID,
    ///     singleRequestExtensions     [0] EXPLICIT Extensions OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct Request {
        pub req_cert: CertId,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        pub single_request_extensions: Option<Extensions>,
    }

    /// ```text
    /// CertID ::= SEQUENCE {
    ///     hashAlgorithm       AlgorithmIdentifier,
    ///     issuerNameHash      OCTET STRING, -- Hash of issuer's DN
    ///     issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
    ///     serialNumber        CertificateSerialNumber }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct CertId {
        pub hash_algorithm: AlgorithmIdentifierOwned,
        pub issuer_name_hash: OctetString,
        pub issuer_key_hash: OctetString,
        pub serial_number: Int,
    }

    /// ```text
    /// OCSPResponse ::= SEQUENCE {
    ///    responseStatus         OCSPResponseStatus,
    ///    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
    /// OCSPResponseStatus ::= ENUMERATED { successful (0), malformedRequest (1),
    ///    internalError (2), tryLater (3), sigRequired (5), unauthorized (6) }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct OcspResponse<'a> {
        pub response_status: RawEnumerated,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        pub response_bytes: Option<ResponseBytes<'a>>,
    }

    /// ```text
    /// ResponseBytes ::=       SEQUENCE {
    ///     responseType   OBJECT IDENTIFIER,
    ///     response       OCTET STRING }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct ResponseBytes<'a> {
        pub response_type: ObjectIdentifier,
        pub response: &'a OctetStringRef,
    }

    /// BasicOCSPResponse is read by hand (`super::parse_basic_response`) to keep the
    /// signed tbsResponseData bytes:
    ///
    /// ```text
    /// ResponseData ::= SEQUENCE {
    ///    version              [0] EXPLICIT Version DEFAULT v1,
    ///    responderID              ResponderID,
    ///    producedAt               GeneralizedTime,
    ///    responses                SEQUENCE OF SingleResponse,
    ///    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct ResponseData<'a> {
        #[asn1(
            context_specific = "0",
            tag_mode = "EXPLICIT",
            default = "Default::default"
        )]
        pub version: Version,
        pub responder_id: ResponderId<'a>,
        pub produced_at: GeneralizedTime,
        pub responses: Vec<SingleResponse<'a>>,
        #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
        pub response_extensions: Option<Vec<ExtensionRef<'a>>>,
    }

    /// ```text
    /// ResponderID ::= CHOICE {
    ///    byName   [1] Name,
    ///    byKey    [2] KeyHash }   -- SHA-1 of the responder's public key bits
    /// ```
    #[derive(Clone, Debug, Choice)]
    pub(super) enum ResponderId<'a> {
        #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
        ByName(AnyRef<'a>),
        #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
        ByKey(&'a OctetStringRef),
    }

    /// ```text
    /// SingleResponse ::= SEQUENCE {
    ///    certID                       CertID,
    ///    certStatus                   CertStatus,
    ///    thisUpdate                   GeneralizedTime,
    ///    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
    ///    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct SingleResponse<'a> {
        pub cert_id: CertId,
        pub cert_status: CertStatus,
        pub this_update: GeneralizedTime,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        pub next_update: Option<GeneralizedTime>,
        #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
        pub single_extensions: Option<Vec<ExtensionRef<'a>>>,
    }

    /// ```text
    /// CertStatus ::= CHOICE {
    ///     good                [0]     IMPLICIT NULL,
    ///     revoked             [1]     IMPLICIT RevokedInfo,
    ///     unknown             [2]     IMPLICIT UnknownInfo }
    /// ```
    #[derive(Clone, Debug, Choice)]
    pub(super) enum CertStatus {
        #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
        Good(Null),
        #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
        Revoked(RevokedInfo),
        #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
        Unknown(Null),
    }

    /// ```text
    /// RevokedInfo ::= SEQUENCE {
    ///     revocationTime              GeneralizedTime,
    ///     revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
    /// ```
    #[derive(Clone, Debug, Sequence)]
    pub(super) struct RevokedInfo {
        pub revocation_time: GeneralizedTime,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        pub revocation_reason: Option<RawEnumerated>,
    }
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
    fn magnitudes_compare_as_integers() {
        use std::cmp::Ordering;
        assert_eq!(cmp_magnitude(&[0x01, 0x00], &[0xff]), Ordering::Greater);
        assert_eq!(cmp_magnitude(&[0x00, 0x10], &[0x10]), Ordering::Equal);
        assert_eq!(cmp_magnitude(&[0x0f], &[0x10]), Ordering::Less);
        assert_eq!(cmp_magnitude(&[], &[0x01]), Ordering::Less);
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

    #[test]
    fn reason_enumerated_decodes_including_undefined_values() {
        // ENUMERATED 1 (keyCompromise), 7 (unused), 6 (certificateHold).
        assert_eq!(
            decode_reason(&[0x0a, 0x01, 0x01]).ok(),
            Some(Some(CrlReason::KeyCompromise))
        );
        assert_eq!(decode_reason(&[0x0a, 0x01, 0x07]).ok(), Some(None));
        assert_eq!(
            decode_reason(&[0x0a, 0x01, 0x06]).ok(),
            Some(Some(CrlReason::CertificateHold))
        );
        // An INTEGER is not an ENUMERATED; a negative value is not a reason.
        assert!(decode_reason(&[0x02, 0x01, 0x01]).is_err());
        assert!(decode_reason(&[0x0a, 0x01, 0xff]).is_err());
    }

    #[test]
    fn only_http_urls_count_for_freshest_crl() {
        assert!(is_http_url("http://example.test/delta.crl"));
        assert!(is_http_url("HTTPS://example.test/delta.crl"));
        assert!(!is_http_url("ldap://example.test/cn=delta"));
        assert!(!is_http_url("http"));
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x00",
            b"not a crl",
            b"\x30\x82\xff\xff",
        ] {
            assert!(matches!(
                Crl::from_der(bytes),
                Err(RevocationError::MalformedCrl { .. })
            ));
        }
        assert!(matches!(
            Crl::from_pem_or_der(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(RevocationError::NoCrlInPem)
        ));
    }

    #[test]
    fn unsuccessful_ocsp_statuses_are_named() {
        // OCSPResponse { responseStatus tryLater } with no responseBytes.
        let try_later = [0x30, 0x03, 0x0a, 0x01, 0x03];
        let parsed = asn1::OcspResponse::from_der(&try_later).expect("minimal response decodes");
        assert_eq!(parsed.response_status.0, 3);
        assert_eq!(response_status_name(3), "tryLater");
        assert_eq!(response_status_name(4), "(undefined)");
    }

    /// A DER TLV, its length in the shortest form unless `long_form`.
    fn tlv_with(tag: u8, value: &[u8], long_form: bool) -> Vec<u8> {
        let len = value.len().to_be_bytes();
        let len = &len[len.iter().take_while(|b| **b == 0).count()..];
        let mut out = vec![tag];
        match len {
            [] => out.push(0),
            [short @ 0x00..=0x7f] if !long_form => out.push(*short),
            _ => {
                out.push(0x80 | len.len() as u8);
                out.extend_from_slice(len);
            }
        }
        out.extend_from_slice(value);
        out
    }

    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        tlv_with(tag, value, false)
    }

    /// xorshift64: the same sequence on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn byte(&mut self) -> u8 {
            self.below(256) as u8
        }
    }

    /// A v1 CRL with the given revokedCertificates elements (none: no field).
    fn crl_der(entries: &[Vec<u8>]) -> Vec<u8> {
        let oid = tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        );
        let algorithm = tlv(0x30, &[&oid[..], &[0x05, 0x00]].concat());
        let mut tbs = [
            &algorithm[..],
            &tlv(0x30, &[]),
            &tlv(0x17, b"240101000000Z"),
        ]
        .concat();
        if !entries.is_empty() {
            tbs.extend(tlv(0x30, &entries.concat()));
        }
        let signature = [0x03, 0x01, 0x00];
        tlv(
            0x30,
            &[&tlv(0x30, &tbs)[..], &algorithm, &signature].concat(),
        )
    }

    /// `YYMMDDHHMMSS` or `YYYYMMDDHHMMSS`: mostly a date from 1970 on, at times not.
    fn time_digits(rng: &mut Rng, four_digit_year: bool) -> Vec<u8> {
        let year = match four_digit_year {
            true => format!("{:04}", 1965 + rng.below(200)),
            false => format!("{:02}", (65 + rng.below(85)) % 100),
        };
        let mut digits = format!(
            "{year}{:02}{:02}{:02}{:02}{:02}",
            1 + rng.below(12),
            1 + [rng.below(28), rng.below(31)][rng.below(2)],
            rng.below(24),
            rng.below(60),
            rng.below(60)
        )
        .into_bytes();
        if rng.below(20) == 0 {
            let at = rng.below(digits.len());
            digits[at] = rng.byte();
        }
        digits
    }

    /// A revokedCertificates element as CAs write it or close to it (serials of any
    /// length, UTCTime or GeneralizedTime, up to five extensions among reasonCode,
    /// invalidityDate, certificateIssuer, unknown ones and a malformed OID, at times
    /// long or non-minimal lengths), then at times a few random byte edits.
    fn random_entry(rng: &mut Rng) -> Vec<u8> {
        let serial_len = [1 + rng.below(4), rng.below(24), rng.below(140)][rng.below(3)];
        let mut serial: Vec<u8> = (0..serial_len).map(|_| rng.byte()).collect();
        // Mostly a DER INTEGER: a 00 in front of a top bit, at times a redundant byte.
        match (rng.below(16), serial.first()) {
            (0, _) => serial.insert(0, 0x00),
            (1, _) => serial.insert(0, 0xff),
            (_, Some(0x80..=0xff)) => serial.insert(0, 0x00),
            _ => {}
        }
        let time = match rng.below(16) {
            0 | 1 => tlv(0x18, &[&time_digits(rng, true)[..], b"Z"].concat()),
            2 => tlv(0x17, &time_digits(rng, false)),
            _ => tlv(0x17, &[&time_digits(rng, false)[..], b"Z"].concat()),
        };
        let oids: [&[u8]; 5] = [
            &[0x55, 0x1d, 0x15],
            &[0x55, 0x1d, 0x18],
            &[0x55, 0x1d, 0x1d],
            &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x15, 0x01],
            [&[0x55, 0x1d, 0x63][..], &[0x80, 0x01], &[]][rng.below(16).saturating_sub(13)],
        ];
        // Mostly distinct extensions, at times one twice.
        let mut kinds = [0, 1, 2, 3, 4, rng.below(5)];
        for i in (1..kinds.len()).rev() {
            kinds.swap(i, rng.below(i + 1));
        }
        let mut extensions = Vec::new();
        for &which in &kinds[..rng.below(5)] {
            let mut extension = tlv(0x06, oids[which]);
            match rng.below(32) {
                0..=4 => extension.extend([0x01, 0x01, 0xff]),
                5 => extension.extend([0x01, 0x01, 0x00]),
                6 => extension.extend([0x01, 0x01, rng.byte()]),
                _ => {}
            }
            let value = match which {
                0 if rng.below(4) == 0 => tlv(0x0a, &[0x00, rng.byte()]),
                0 => tlv(0x0a, &[rng.byte() % 12]),
                1 => tlv(0x18, &[&time_digits(rng, true)[..], b"Z"].concat()),
                _ => tlv(0x30, &vec![0x55; [1, 200, 300][rng.below(3)]]),
            };
            extension.extend(tlv(0x04, &value));
            extensions.extend(tlv(0x30, &extension));
        }
        let mut body = tlv(0x02, &serial);
        body.extend(time);
        if !extensions.is_empty() || rng.below(8) == 0 {
            body.extend(tlv(0x30, &extensions));
        }
        let mut entry = tlv_with(0x30, &body, rng.below(20) == 0);
        for _ in 0..rng.below(8).saturating_sub(5) {
            let at = rng.below(entry.len());
            match rng.below(5) {
                0 => entry[at] = rng.byte(),
                1 => entry[at] ^= 1 << rng.below(8),
                2 => {
                    entry.remove(at);
                }
                3 => entry.insert(at, rng.byte()),
                _ => entry.truncate(at.max(1)),
            }
        }
        entry
    }

    #[test]
    fn entry_fast_path_reads_what_der_reads() {
        // 02 03 00 80 01, UTCTime 2024-01-01, reasonCode keyCompromise.
        let entry = [
            &[0x30, 0x22, 0x02, 0x03, 0x00, 0x80, 0x01, 0x17, 0x0d][..],
            b"240101000000Z",
            &[0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15],
            &[0x04, 0x03, 0x0a, 0x01, 0x01],
        ]
        .concat();
        let read = read_entry_fast(&entry).expect("a plain entry takes the fast path");
        assert_eq!(read.serial, &[0x80, 0x01]);
        assert_eq!(read.entry.reason, Some(CrlReason::KeyCompromise));

        // Whatever the fast path accepts, der's decoder accepts with the same result.
        let crl = Crl::from_der(&crl_der(&[])).expect("empty CRL");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut by_der, mut by_fast_path) = (0, 0);
        for _ in 0..30_000 {
            let raw = random_entry(&mut rng);
            let decoded = crl.decode_entry(&raw);
            by_der += usize::from(decoded.is_ok());
            let Some(fast) = read_entry_fast(&raw) else {
                continue;
            };
            by_fast_path += 1;
            let decoded = decoded.unwrap_or_else(|e| panic!("{raw:02x?}: only der refuses: {e}"));
            assert_eq!(fast.serial, decoded.serial, "{raw:02x?}");
            assert_eq!(fast.entry, decoded.entry, "{raw:02x?}");
            let unsupported = |read: &ReadEntry<'_>| format!("{:?}", read.unsupported);
            assert_eq!(unsupported(&fast), unsupported(&decoded), "{raw:02x?}");
        }
        // The fast path leaves der only the rare encodings.
        assert!(by_der > 10_000, "{by_der}");
        assert!(by_fast_path * 10 > by_der * 9, "{by_fast_path} of {by_der}");
    }

    #[test]
    fn serial_keys_find_serials_inline_or_boxed() {
        let serials: [&[u8]; 6] = [
            &[],
            &[0x01],
            &[0x80, 0x00],
            &[0x22; 23],
            &[0x22; 24],
            &[0x22; 40],
        ];
        let map: HashMap<SerialKey, usize> = serials
            .iter()
            .map(|serial| (SerialKey::new(serial), serial.len()))
            .collect();
        for serial in serials {
            assert_eq!(map.get(serial), Some(&serial.len()));
        }
        for absent in [&[0x00][..], &[0x80], &[0x22; 22], &[0x22; 25]] {
            assert_eq!(map.get(absent), None);
        }
        assert!(matches!(
            SerialKey::new(&[0x22; 23]),
            SerialKey::Inline { .. }
        ));
        assert!(matches!(SerialKey::new(&[0x22; 24]), SerialKey::Boxed(_)));
    }

    #[test]
    fn repeated_serials_keep_the_most_revoked_entry() {
        // Entries of serial 05: a hold on day 2, keyCompromise on day 1, a hold on day 3.
        let entry = |day: u8, reason: u8| {
            let date = format!("2401{day:02}000000Z");
            let reason = tlv(0x04, &tlv(0x0a, &[reason]));
            let extension = tlv(
                0x30,
                &[&tlv(0x06, &[0x55, 0x1d, 0x15])[..], &reason].concat(),
            );
            let serial = tlv(0x02, &[0x05]);
            tlv(
                0x30,
                &[
                    &serial[..],
                    &tlv(0x17, date.as_bytes()),
                    &tlv(0x30, &extension),
                ]
                .concat(),
            )
        };
        let day = |day: u64| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200 + (day - 1) * 86_400)
        };
        let held = |on: u64| CrlEntry {
            revoked_at: day(on),
            reason: Some(CrlReason::CertificateHold),
            invalidity_date: None,
        };
        let crl = Crl::from_der(&crl_der(&[entry(2, 6), entry(3, 6)])).expect("parses");
        assert_eq!((crl.len(), crl.entry(&[0x00, 0x05])), (1, Some(&held(3))));
        let crl = Crl::from_der(&crl_der(&[entry(3, 6), entry(2, 6)])).expect("parses");
        assert_eq!(crl.entry(&[0x05]), Some(&held(3)));
        let crl =
            Crl::from_der(&crl_der(&[entry(2, 6), entry(1, 1), entry(3, 6)])).expect("parses");
        let compromised = CrlEntry {
            revoked_at: day(1),
            reason: Some(CrlReason::KeyCompromise),
            invalidity_date: None,
        };
        assert_eq!(crl.entry(&[0x05]), Some(&compromised));
    }
}
