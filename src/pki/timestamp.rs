//! RFC 3161 timestamp countersignatures (NOTARY.md §6): parse a `TimeStampToken` and
//! verify it over the envelope's raw signature bytes.
//!
//! Pure: no I/O, and the clock is never read. [`TimestampToken::verify`] checks what the
//! token proves on its own (message imprint, CMS signature, signed attributes, ESS
//! signing certificate); the caller then validates [`VerifiedTimestamp::signer_chain_der`]
//! against the `tsa` trust store at [`VerifiedTimestamp::gen_time`] (TSA certificate
//! rules of NOTARY.md §4) and checks every signing-chain certificate with
//! [`VerifiedTimestamp::within`].
//!
//! Parsing walks the CMS structure by hand rather than through `cms::SignedData`
//! because the `der` crate sorts every `SET OF` it decodes: re-encoding the decoded
//! signed attributes or certificates would not reproduce the signed bytes of a token
//! whose encoder did not sort them. The original TLVs are kept and used for the
//! signature and the certificate hash.

use std::time::{Duration, SystemTime};

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::signed_data::{SignerIdentifier, SignerInfo};
use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::{Int, OctetString, Uint};
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, TagMode, TagNumber};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attributes;
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::ext::Extension;
use x509_cert::Certificate;

use super::signature::{
    self, CheckError, EcdsaEncoding, HashAlgorithm, KeyFamily, PublicKey, Scheme,
};

/// Largest token accepted. Real tokens carrying a four-certificate chain are about
/// 6.6 KB (the GlobalSign vectors); 256 KiB leaves room for long chains while keeping
/// the parser's allocations bounded.
pub const MAX_TOKEN_LEN: usize = 256 * 1024;

/// Most certificates a token may carry. A TSA sends its leaf and at most a few
/// intermediates and roots; anything beyond this is not a chain worth building.
pub const MAX_CERTIFICATES: usize = 16;

/// id-signedData, RFC 5652 §5.1.
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo, RFC 3161 §2.4.2.
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-contentType, RFC 5652 §11.1.
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest, RFC 5652 §11.2.
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime, RFC 5652 §11.3.
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// id-aa-signingCertificateV2, RFC 5035 §3.
const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// The ETSI baseline timestamp policy (EN 319 422 §5.2.1, "itu-t(0) identified-organization(4)
/// etsi(0) time-stamp-policy(2023) policy-identifiers(1) baseline-ts-policy(1)"): a token
/// under it without an explicit accuracy is accurate to 1 s (NOTARY.md §6).
pub const BASELINE_TSA_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2023.1.1");

/// Why a timestamp token was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    /// The token exceeds [`MAX_TOKEN_LEN`].
    #[error("timestamp token is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },

    /// The bytes are not a DER `ContentInfo` holding a `SignedData` (RFC 5652 §3, §5)
    /// with a `TSTInfo` (RFC 3161 §2.4.2); `reason` names the structure that failed.
    #[error("malformed timestamp token: {reason}")]
    Malformed {
        reason: &'static str,
        #[source]
        source: Option<der::Error>,
    },

    /// RFC 3161 §2.4.2: the token is a `SignedData` whose `eContentType` is
    /// id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4); `oid` is what was found instead.
    #[error("unexpected content type {oid}; expected id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)")]
    WrongContentType { oid: ObjectIdentifier },

    /// RFC 3161 §2.4.2: a token carries exactly one `SignerInfo`, the TSA's.
    #[error("timestamp token has {count} signer infos; exactly one is required")]
    SignerCount { count: usize },

    /// The token carries more than [`MAX_CERTIFICATES`] certificates.
    #[error("timestamp token carries {count} certificates, over the limit of {max}")]
    TooManyCertificates { count: usize, max: usize },

    /// The token carries no certificates, so the TSA signer cannot be identified
    /// (notation requests tokens with `certReq=true`, RFC 3161 §2.4.1).
    #[error("signing certificate not found in the timestamp token: it carries no certificates")]
    NoCertificate,

    /// No certificate in the token matches the `SignerInfo` `sid` (RFC 5652 §5.3).
    #[error("signing certificate not found in the timestamp token")]
    SignerNotFound,

    /// A version this verifier does not accept: `TSTInfo` must be v1 (RFC 3161 §2.4.2),
    /// `SignerInfo` v1, i.e. identified by issuer and serial number (RFC 5652 §5.3,
    /// NOTARY.md §6).
    #[error("unsupported {structure} version {version}; expected 1")]
    UnsupportedVersion {
        structure: &'static str,
        version: u64,
    },

    /// A `TSTInfo` extension marked critical; none are understood (RFC 3161 §2.4.2,
    /// RFC 5280 §4.2 semantics for critical extensions).
    #[error("unsupported critical TSTInfo extension {oid}")]
    UnsupportedCriticalExtension { oid: ObjectIdentifier },

    /// RFC 5652 §5.3: signed attributes are required when the content is not id-data;
    /// content-type and message-digest (§11.1, §11.2) must be among them, and RFC 5035
    /// §3 / RFC 5816 require signingCertificateV2 (NOTARY.md §6).
    #[error("required signed attribute {name} is missing from the timestamp token")]
    MissingSignedAttribute { name: &'static str },

    /// A signed attribute is repeated, has other than one value, or the value does not
    /// decode (RFC 5652 §11: content-type, message-digest and signing-time are
    /// single-valued and occur once; so does signingCertificateV2, RFC 5035 §3).
    #[error("invalid signed attribute {name}: {reason}")]
    InvalidSignedAttribute {
        name: &'static str,
        reason: &'static str,
    },

    /// The content-type signed attribute differs from the `eContentType`
    /// (RFC 5652 §11.1).
    #[error("content-type attribute {oid} does not match the encapsulated content type")]
    ContentTypeMismatch { oid: ObjectIdentifier },

    /// The message-digest signed attribute is not the digest of the `TSTInfo`
    /// (RFC 5652 §5.4, §11.2): the content was altered.
    #[error("message-digest attribute does not match the digest of the TSTInfo")]
    MessageDigestMismatch,

    /// The `messageImprint` is not the hash of the bytes the caller expects the token
    /// to cover (RFC 3161 §2.4.2; notation: "mismatched message").
    #[error("timestamp message imprint does not match the signature bytes (mismatched message)")]
    MessageImprintMismatch,

    /// A hash other than SHA-256/384/512 (SHA-1 and MD5 are rejected on purpose), or
    /// an algorithm identifier with unexpected parameters.
    #[error("unsupported hash algorithm {oid}")]
    UnsupportedHashAlgorithm { oid: ObjectIdentifier },

    /// A signature algorithm other than RSA PKCS#1 v1.5 / RSASSA-PSS or ECDSA with
    /// SHA-256/384/512, or one whose hash disagrees with the `digestAlgorithm`.
    #[error("unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm { oid: ObjectIdentifier },

    /// The signer key is not an RSA (≥ 2048 bits) or P-256/384/521 key usable with the
    /// signature algorithm.
    #[error("unsupported TSA signer key: {reason}")]
    UnsupportedKey { reason: &'static str },

    /// The CMS signature over the signed attributes does not verify with the signer
    /// certificate's key (RFC 5652 §5.6).
    #[error("timestamp token signature does not verify")]
    BadSignature,

    /// The first ESSCertIDv2 of signingCertificateV2 does not identify the signer
    /// certificate (RFC 5035 §3; RFC 3161 §2.4.1 as updated by RFC 5816 §2.2.1).
    #[error("signingCertificateV2 does not match the TSA signing certificate")]
    SigningCertificateMismatch,
}

impl TimestampError {
    fn malformed(reason: &'static str) -> impl FnOnce(der::Error) -> TimestampError {
        move |source| TimestampError::Malformed {
            reason,
            source: Some(source),
        }
    }
}

/// The hash with this OID; RFC 3161 tokens may use SHA-256/384/512 here (NOTARY.md
/// §6), SHA-1 and MD5 are rejected on purpose.
fn hash_from_oid(oid: ObjectIdentifier) -> Result<HashAlgorithm, TimestampError> {
    HashAlgorithm::from_oid(&oid).ok_or(TimestampError::UnsupportedHashAlgorithm { oid })
}

/// RFC 5754 §2: SHA-2 identifiers have absent parameters, though NULL is accepted.
fn hash_from_identifier(id: &AlgorithmIdentifierOwned) -> Result<HashAlgorithm, TimestampError> {
    let hash = hash_from_oid(id.oid)?;
    match &id.parameters {
        None => Ok(hash),
        Some(p) if p.is_null() => Ok(hash),
        Some(_) => Err(TimestampError::UnsupportedHashAlgorithm { oid: id.oid }),
    }
}

/// `Accuracy` (RFC 3161 §2.4.2), each field as encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Accuracy {
    seconds: Option<u64>,
    millis: Option<u16>,
    micros: Option<u16>,
}

/// `TSTInfo` (RFC 3161 §2.4.2).
///
/// ```text
/// TSTInfo ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    policy                       TSAPolicyId,
///    messageImprint               MessageImprint,
///    serialNumber                 INTEGER,
///    genTime                      GeneralizedTime,
///    accuracy                     Accuracy                 OPTIONAL,
///    ordering                     BOOLEAN             DEFAULT FALSE,
///    nonce                        INTEGER                  OPTIONAL,
///    tsa                          [0] GeneralName          OPTIONAL,
///    extensions                   [1] IMPLICIT Extensions   OPTIONAL  }
/// ```
#[derive(Clone, Debug)]
struct TstInfo {
    version: u64,
    policy: ObjectIdentifier,
    /// `MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }`
    imprint_algorithm: AlgorithmIdentifierOwned,
    imprint: Vec<u8>,
    serial_number: Vec<u8>,
    gen_time: SystemTime,
    accuracy: Option<Accuracy>,
    extensions: Vec<Extension>,
}

/// A parsed, not yet verified, RFC 3161 `TimeStampToken` (RFC 3161 §2.4.2): the CMS
/// `SignedData`'s single `SignerInfo`, its `TSTInfo`, and the certificates it carries.
#[derive(Clone, Debug)]
pub struct TimestampToken {
    tst_info: TstInfo,
    /// The DER `TSTInfo`, i.e. the eContent octets the message-digest attribute covers.
    econtent: Vec<u8>,
    signer_info: SignerInfo,
    /// The signed attributes exactly as encoded, re-tagged as `SET OF` (RFC 5652 §5.4).
    signed_attrs_der: Option<Vec<u8>>,
    /// Certificates from `SignedData.certificates`, in token order, with their DER.
    certificates: Vec<(Certificate, Vec<u8>)>,
}

/// A timestamp token that verified over the caller's bytes. Only
/// [`TimestampToken::verify`] constructs one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedTimestamp {
    /// `TSTInfo.genTime`.
    pub gen_time: SystemTime,
    /// seconds + millis + micros of `TSTInfo.accuracy`; if absent, 1 s under the
    /// baseline policy 0.4.0.2023.1.1, else 0 (NOTARY.md §6).
    pub accuracy: Duration,
    /// The TSA signer certificate first, then the other certificates the token
    /// carries, in token order; the caller builds and validates the chain against the
    /// `tsa` store at `gen_time`.
    pub signer_chain_der: Vec<Vec<u8>>,
    /// `TSTInfo.policy`, dotted.
    pub policy: String,
    /// `TSTInfo.serialNumber`, big-endian magnitude (no sign byte).
    pub serial_number: Vec<u8>,
    /// The signing-time signed attribute, if present (RFC 5652 §11.3); NOTARY.md §6
    /// wants it inside the TSA certificate's validity, which the caller checks.
    pub signing_time: Option<SystemTime>,
}

impl VerifiedTimestamp {
    /// True iff `[gen_time - accuracy, gen_time + accuracy]` lies within
    /// `[not_before, not_after]` (NOTARY.md §6, bounds inclusive).
    pub fn within(&self, not_before: SystemTime, not_after: SystemTime) -> bool {
        match (
            self.gen_time.checked_sub(self.accuracy),
            self.gen_time.checked_add(self.accuracy),
        ) {
            (Some(earliest), Some(latest)) => earliest >= not_before && latest <= not_after,
            _ => false,
        }
    }
}

impl TimestampToken {
    /// Parses a DER `TimeStampToken` (RFC 3161 §2.4.2: a `ContentInfo` with a
    /// `SignedData` whose eContent is a `TSTInfo`). Structure only; nothing is verified.
    pub fn parse(der: &[u8]) -> Result<TimestampToken, TimestampError> {
        if der.len() > MAX_TOKEN_LEN {
            return Err(TimestampError::TooLarge {
                len: der.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        // 1. ContentInfo (RFC 5652 §3): content type id-signedData.
        let (content_type, signed_data) =
            parse_content_info(der).map_err(TimestampError::malformed("ContentInfo"))?;
        if content_type != ID_SIGNED_DATA {
            return Err(TimestampError::WrongContentType { oid: content_type });
        }
        // 2. SignedData (RFC 5652 §5.1), keeping the original certificate and
        //    SignerInfo TLVs.
        let raw =
            parse_signed_data(signed_data).map_err(TimestampError::malformed("SignedData"))?;
        if raw.econtent_type != ID_CT_TST_INFO {
            return Err(TimestampError::WrongContentType {
                oid: raw.econtent_type,
            });
        }
        let econtent = raw.econtent.ok_or(TimestampError::Malformed {
            reason: "SignedData has no encapsulated TSTInfo",
            source: None,
        })?;
        if raw.signer_infos.len() != 1 {
            return Err(TimestampError::SignerCount {
                count: raw.signer_infos.len(),
            });
        }
        if raw.certificates.len() > MAX_CERTIFICATES {
            return Err(TimestampError::TooManyCertificates {
                count: raw.certificates.len(),
                max: MAX_CERTIFICATES,
            });
        }
        // 3. TSTInfo (RFC 3161 §2.4.2).
        let tst_info = parse_tst_info(econtent).map_err(TimestampError::malformed("TSTInfo"))?;
        // 4. The SignerInfo (RFC 5652 §5.3) and its signed attributes as encoded.
        let signer_tlv = raw.signer_infos[0];
        let signer_info =
            SignerInfo::from_der(signer_tlv).map_err(TimestampError::malformed("SignerInfo"))?;
        let signed_attrs_der =
            raw_signed_attributes(signer_tlv).map_err(TimestampError::malformed("SignerInfo"))?;
        // 5. Certificates (RFC 5652 §10.2.3); other certificate formats are skipped.
        let certificates = raw
            .certificates
            .into_iter()
            .filter(|tlv| tlv.first() == Some(&0x30))
            .map(|tlv| {
                Certificate::from_der(tlv)
                    .map(|cert| (cert, tlv.to_vec()))
                    .map_err(TimestampError::malformed("certificate in the token"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TimestampToken {
            tst_info,
            econtent: econtent.to_vec(),
            signer_info,
            signed_attrs_der,
            certificates,
        })
    }

    /// Verifies the token over `signature_bytes` (the envelope's raw signature).
    ///
    /// Checks the token on its own; the caller still validates the TSA chain against
    /// the `tsa` store at `gen_time` and every signing-chain certificate with
    /// [`VerifiedTimestamp::within`] (NOTARY.md §6).
    pub fn verify(&self, signature_bytes: &[u8]) -> Result<VerifiedTimestamp, TimestampError> {
        let tst = &self.tst_info;
        let si = &self.signer_info;

        // 1. Versions: TSTInfo v1 (RFC 3161 §2.4.2); SignerInfo v1 (NOTARY.md §6).
        if tst.version != 1 {
            return Err(TimestampError::UnsupportedVersion {
                structure: "TSTInfo",
                version: tst.version,
            });
        }
        if si.version != CmsVersion::V1 {
            return Err(TimestampError::UnsupportedVersion {
                structure: "SignerInfo",
                version: si.version as u64,
            });
        }
        // 2. No critical TSTInfo extension is understood.
        if let Some(ext) = tst.extensions.iter().find(|e| e.critical) {
            return Err(TimestampError::UnsupportedCriticalExtension { oid: ext.extn_id });
        }

        // 3. messageImprint = hash of the raw signature bytes (RFC 3161 §2.4.2,
        //    NOTARY.md §6).
        let imprint_hash = hash_from_identifier(&tst.imprint_algorithm)?;
        if imprint_hash.digest(signature_bytes) != tst.imprint {
            return Err(TimestampError::MessageImprintMismatch);
        }

        // 4. The signer certificate, identified by sid among the token's certificates
        //    (RFC 5652 §5.3).
        if self.certificates.is_empty() {
            return Err(TimestampError::NoCertificate);
        }
        let signer_index = self
            .certificates
            .iter()
            .position(|(cert, _)| signer_matches(&si.sid, cert))
            .ok_or(TimestampError::SignerNotFound)?;
        let (signer_cert, signer_der) = &self.certificates[signer_index];

        // 5. The CMS signature over the DER signed attributes (RFC 5652 §5.3: required
        //    since the content is not id-data; §5.4: signed as a SET OF), with the
        //    signer certificate's key. Checked before the attributes are read, so a
        //    tampered attribute reports as a bad signature.
        let attrs_der =
            self.signed_attrs_der
                .as_deref()
                .ok_or(TimestampError::MissingSignedAttribute {
                    name: "signedAttrs",
                })?;
        verify_signer_signature(
            signer_cert.tbs_certificate().subject_public_key_info(),
            &si.signature_algorithm,
            &si.digest_alg,
            attrs_der,
            si.signature.as_bytes(),
        )?;

        // 6. The signed attributes (RFC 5652 §11, RFC 5035 §3).
        let attrs = SignedAttrs::parse(attrs_der)?;
        // 6a. content-type = id-ct-TSTInfo (RFC 5652 §11.1).
        let content_type = attrs
            .content_type
            .ok_or(TimestampError::MissingSignedAttribute {
                name: "content-type",
            })?;
        if content_type != ID_CT_TST_INFO {
            return Err(TimestampError::ContentTypeMismatch { oid: content_type });
        }
        // 6b. message-digest = digest of the eContent octets (RFC 5652 §11.2).
        let message_digest =
            attrs
                .message_digest
                .as_deref()
                .ok_or(TimestampError::MissingSignedAttribute {
                    name: "message-digest",
                })?;
        let digest_hash = hash_from_identifier(&si.digest_alg)?;
        if digest_hash.digest(&self.econtent) != message_digest {
            return Err(TimestampError::MessageDigestMismatch);
        }
        // 6c. signingCertificateV2 identifies the signer certificate (RFC 5035 §3).
        let ess = attrs.signing_certificate_v2.as_ref().ok_or(
            TimestampError::MissingSignedAttribute {
                name: "signingCertificateV2",
            },
        )?;
        ess.check(signer_cert, signer_der)?;

        // 7. What the caller needs to finish (NOTARY.md §6).
        let mut signer_chain_der = Vec::with_capacity(self.certificates.len());
        signer_chain_der.push(signer_der.clone());
        signer_chain_der.extend(
            self.certificates
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != signer_index)
                .map(|(_, (_, der))| der.clone()),
        );
        Ok(VerifiedTimestamp {
            gen_time: tst.gen_time,
            accuracy: accuracy(tst.accuracy.as_ref(), tst.policy),
            signer_chain_der,
            policy: tst.policy.to_string(),
            serial_number: tst.serial_number.clone(),
            signing_time: attrs.signing_time,
        })
    }
}

/// NOTARY.md §6: seconds + millis + micros; if absent, 1 s under the baseline policy,
/// else 0.
fn accuracy(accuracy: Option<&Accuracy>, policy: ObjectIdentifier) -> Duration {
    match accuracy {
        Some(a) => {
            Duration::from_secs(a.seconds.unwrap_or(0))
                + Duration::from_millis(u64::from(a.millis.unwrap_or(0)))
                + Duration::from_micros(u64::from(a.micros.unwrap_or(0)))
        }
        None if policy == BASELINE_TSA_POLICY => Duration::from_secs(1),
        None => Duration::ZERO,
    }
}

fn signer_matches(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer,
            serial_number,
        }) => tbs.issuer() == issuer && tbs.serial_number().as_bytes() == serial_number.as_bytes(),
        SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
            tbs.get_extension::<SubjectKeyIdentifier>(),
            Ok(Some((_, cert_ski))) if cert_ski == *ski
        ),
    }
}

/// The signed attributes this verifier reads (RFC 5652 §11, RFC 5035 §3).
#[derive(Default)]
struct SignedAttrs {
    content_type: Option<ObjectIdentifier>,
    message_digest: Option<Vec<u8>>,
    signing_time: Option<SystemTime>,
    signing_certificate_v2: Option<EssCertIdV2>,
}

impl SignedAttrs {
    fn parse(der: &[u8]) -> Result<SignedAttrs, TimestampError> {
        let attrs = Attributes::from_der(der).map_err(TimestampError::malformed("signedAttrs"))?;
        let mut out = SignedAttrs::default();
        for attr in attrs.iter() {
            let name = match attr.oid {
                ID_CONTENT_TYPE => "content-type",
                ID_MESSAGE_DIGEST => "message-digest",
                ID_SIGNING_TIME => "signing-time",
                ID_AA_SIGNING_CERTIFICATE_V2 => "signingCertificateV2",
                _ => continue,
            };
            let invalid = |reason| TimestampError::InvalidSignedAttribute { name, reason };
            if attr.values.len() != 1 {
                return Err(invalid("must have exactly one value"));
            }
            let Some(value) = attr.values.iter().next() else {
                return Err(invalid("must have exactly one value"));
            };
            let undecodable = |_| invalid("value does not decode");
            let repeated = invalid("occurs more than once");
            match attr.oid {
                ID_CONTENT_TYPE => {
                    let oid = value.decode_as::<ObjectIdentifier>().map_err(undecodable)?;
                    if out.content_type.replace(oid).is_some() {
                        return Err(repeated);
                    }
                }
                ID_MESSAGE_DIGEST => {
                    let digest = value.decode_as::<OctetString>().map_err(undecodable)?;
                    if out
                        .message_digest
                        .replace(digest.into_bytes().into_vec())
                        .is_some()
                    {
                        return Err(repeated);
                    }
                }
                ID_SIGNING_TIME => {
                    let tlv = value.to_der().map_err(undecodable)?;
                    let time = x509_cert::time::Time::from_der(&tlv).map_err(undecodable)?;
                    if out.signing_time.replace(time.to_system_time()).is_some() {
                        return Err(repeated);
                    }
                }
                _ => {
                    let tlv = value.to_der().map_err(undecodable)?;
                    let ess =
                        EssCertIdV2::parse_signing_certificate_v2(&tlv).map_err(undecodable)?;
                    if out.signing_certificate_v2.replace(ess).is_some() {
                        return Err(repeated);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The first `ESSCertIDv2` of a `SigningCertificateV2` (RFC 5035 §3), which
/// identifies the signing certificate.
///
/// ```text
/// SigningCertificateV2 ::=  SEQUENCE {
///     certs        SEQUENCE OF ESSCertIDv2,
///     policies     SEQUENCE OF PolicyInformation OPTIONAL }
/// ESSCertIDv2 ::=  SEQUENCE {
///     hashAlgorithm           AlgorithmIdentifier DEFAULT {algorithm id-sha256},
///     certHash                Hash,
///     issuerSerial            IssuerSerial OPTIONAL }
/// IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }
/// ```
struct EssCertIdV2 {
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: Vec<u8>,
    issuer_serial: Option<(GeneralNames, Int)>,
}

impl EssCertIdV2 {
    fn parse_signing_certificate_v2(der: &[u8]) -> der::Result<EssCertIdV2> {
        let mut reader = SliceReader::new(der)?;
        let first = reader.sequence(|r| -> der::Result<_> {
            let first = r.sequence(|certs| -> der::Result<_> {
                let first = certs.sequence(|id| -> der::Result<_> {
                    let hash_algorithm = id.decode::<Option<AlgorithmIdentifierOwned>>()?;
                    let cert_hash = id.decode::<OctetString>()?.into_bytes().into_vec();
                    let issuer_serial = id
                        .decode::<Option<IssuerSerial>>()?
                        .map(|s| (s.issuer, s.serial_number));
                    Ok(EssCertIdV2 {
                        hash_algorithm,
                        cert_hash,
                        issuer_serial,
                    })
                })?;
                // Further ESSCertIDv2s identify other certificates (RFC 5035 §3); skip.
                while !certs.is_finished() {
                    certs.tlv_bytes()?;
                }
                Ok(first)
            })?;
            // policies: not used (RFC 5035 §3 leaves them to the relying party).
            while !r.is_finished() {
                r.tlv_bytes()?;
            }
            Ok(first)
        })?;
        reader.finish()?;
        Ok(first)
    }

    fn check(&self, cert: &Certificate, cert_der: &[u8]) -> Result<(), TimestampError> {
        let hash = match &self.hash_algorithm {
            None => HashAlgorithm::Sha256,
            Some(id) => hash_from_identifier(id)?,
        };
        if hash.digest(cert_der) != self.cert_hash {
            return Err(TimestampError::SigningCertificateMismatch);
        }
        if let Some((issuer, serial)) = &self.issuer_serial {
            let tbs = cert.tbs_certificate();
            let issuer_named = issuer
                .iter()
                .any(|n| matches!(n, GeneralName::DirectoryName(name) if name == tbs.issuer()));
            if !issuer_named || serial.as_bytes() != tbs.serial_number().as_bytes() {
                return Err(TimestampError::SigningCertificateMismatch);
            }
        }
        Ok(())
    }
}

/// `IssuerSerial` (RFC 5035 §4).
#[derive(Clone, Debug, Eq, PartialEq, der::Sequence)]
struct IssuerSerial {
    issuer: GeneralNames,
    serial_number: Int,
}

/// Verifies a CMS `SignerInfo` signature (RFC 5652 §5.6) over `message` (the DER
/// signed attributes): RSA PKCS#1 v1.5 or RSASSA-PSS, or ECDSA P-256/384/521 with a
/// DER signature, hashing with `digest_algorithm` (SHA-256/384/512 only). A signature
/// algorithm that names its own hash must name the digest algorithm's; the bare key
/// algorithms (`rsaEncryption`, RFC 3370 §3.2; `id-ecPublicKey`) that CMS signers
/// (OpenSSL among them) write take the digest algorithm's hash. RSA keys must have
/// 2048 to 8192 bits (NOTARY.md §4 key sizes; [`signature::RSA_BITS`]).
///
/// The one CMS signer-signature check: [`TimestampToken::verify`] uses it for the
/// TSA's signature. The check itself is [`signature::verify`], the one every
/// signature goes through.
pub fn verify_signer_signature(
    spki: &SubjectPublicKeyInfoOwned,
    signature_algorithm: &AlgorithmIdentifierOwned,
    digest_algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), TimestampError> {
    let hash = hash_from_identifier(digest_algorithm)?;
    let scheme = signer_scheme(signature_algorithm, hash)?;
    let key = signer_key(spki, scheme)?;
    signature::verify(&key, scheme, message, signature).map_err(|e| match e {
        CheckError::BadSignature => TimestampError::BadSignature,
        CheckError::KeyMismatch => TimestampError::UnsupportedKey {
            reason: mismatch_reason(scheme),
        },
        CheckError::RsaKeySize { bits } => TimestampError::UnsupportedKey {
            reason: if bits < *signature::RSA_BITS.start() {
                "RSA key smaller than 2048 bits"
            } else {
                "RSA key larger than 8192 bits"
            },
        },
    })
}

/// The scheme of `signature_algorithm` (RFC 5652 §5.3), whose own hash (if it names
/// one) must be `hash`, the `digestAlgorithm`'s. Named algorithms go through the
/// X.509 table ([`Scheme::x509`]); the bare key algorithms take `hash`.
fn signer_scheme(
    signature_algorithm: &AlgorithmIdentifierOwned,
    hash: HashAlgorithm,
) -> Result<Scheme, TimestampError> {
    let oid = signature_algorithm.oid;
    let unsupported = || TimestampError::UnsupportedSignatureAlgorithm { oid };
    // Some CMS producers name the key algorithm instead of a signature algorithm.
    if oid == rfc5912::RSA_ENCRYPTION {
        return Ok(Scheme::Pkcs1v15(hash));
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        return Ok(Scheme::Ecdsa(hash, EcdsaEncoding::Der));
    }
    let family = match signature::sha2_signature_algorithm(&oid) {
        Some((family, _)) => family,
        None if oid == rfc5912::ID_RSASSA_PSS => KeyFamily::Rsa,
        None => return Err(unsupported()),
    };
    let scheme = Scheme::x509(signature_algorithm, family).map_err(|_| unsupported())?;
    if scheme.hash() != hash {
        return Err(unsupported());
    }
    Ok(scheme)
}

/// The TSA's key, of the family `scheme` needs.
fn signer_key(
    spki: &SubjectPublicKeyInfoOwned,
    scheme: Scheme,
) -> Result<PublicKey, TimestampError> {
    let key_algorithm = match scheme.family() {
        KeyFamily::Rsa => rfc5912::RSA_ENCRYPTION,
        KeyFamily::Ec => rfc5912::ID_EC_PUBLIC_KEY,
    };
    if spki.algorithm.oid != key_algorithm {
        return Err(TimestampError::UnsupportedKey {
            reason: mismatch_reason(scheme),
        });
    }
    let spki_der = spki.to_der().map_err(|_| TimestampError::UnsupportedKey {
        reason: "public key does not encode",
    })?;
    PublicKey::from_spki_der(&spki_der)
        .map_err(|e| TimestampError::UnsupportedKey { reason: e.reason() })
}

fn mismatch_reason(scheme: Scheme) -> &'static str {
    match scheme.family() {
        KeyFamily::Rsa => "RSA signature algorithm with a non-RSA key",
        KeyFamily::Ec => "ECDSA signature algorithm with a non-EC key",
    }
}

/// `ContentInfo` (RFC 5652 §3) → (contentType, the content TLV).
fn parse_content_info(der: &[u8]) -> der::Result<(ObjectIdentifier, &[u8])> {
    let mut reader = SliceReader::new(der)?;
    let out = reader.sequence(|r| -> der::Result<_> {
        let content_type = r.decode::<ObjectIdentifier>()?;
        let content = explicit(r, 0)?;
        Ok((content_type, content))
    })?;
    reader.finish()?;
    Ok(out)
}

/// The content of an `[n] EXPLICIT` field, which must be a single TLV.
fn explicit<'a>(r: &mut SliceReader<'a>, number: u32) -> der::Result<&'a [u8]> {
    let header = Header::decode(r)?;
    header.tag().assert_eq(Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(number),
    })?;
    r.read_nested(header.length(), |inner| -> der::Result<_> {
        let tlv = inner.tlv_bytes()?;
        Ok(tlv)
    })
}

/// The parts of a `SignedData` (RFC 5652 §5.1) this module needs, as encoded.
///
/// ```text
/// SignedData ::= SEQUENCE {
///     version CMSVersion,
///     digestAlgorithms SET OF DigestAlgorithmIdentifier,
///     encapContentInfo EncapsulatedContentInfo,
///     certificates [0] IMPLICIT CertificateSet OPTIONAL,
///     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
///     signerInfos SET OF SignerInfo }
/// EncapsulatedContentInfo ::= SEQUENCE {
///     eContentType ContentType,
///     eContent [0] EXPLICIT OCTET STRING OPTIONAL }
/// ```
struct RawSignedData<'a> {
    econtent_type: ObjectIdentifier,
    econtent: Option<&'a [u8]>,
    certificates: Vec<&'a [u8]>,
    signer_infos: Vec<&'a [u8]>,
}

fn parse_signed_data(tlv: &[u8]) -> der::Result<RawSignedData<'_>> {
    let mut reader = SliceReader::new(tlv)?;
    let out = reader.sequence(|r| -> der::Result<_> {
        let _version = r.decode::<CmsVersion>()?;
        let digest_algorithms = Header::peek(r)?;
        digest_algorithms.tag().assert_eq(Tag::Set)?;
        r.tlv_bytes()?;
        let (econtent_type, econtent) = r.sequence(|eci| -> der::Result<_> {
            let econtent_type = eci.decode::<ObjectIdentifier>()?;
            let econtent = if eci.is_finished() {
                None
            } else {
                let octets = explicit(eci, 0)?;
                let mut inner = SliceReader::new(octets)?;
                let header = Header::decode(&mut inner)?;
                header.tag().assert_eq(Tag::OctetString)?;
                Some(inner.read_slice(header.length())?)
            };
            Ok((econtent_type, econtent))
        })?;
        let certificates = if Header::peek(r)?.tag()
            == (Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            }) {
            set_elements(r, None)?
        } else {
            Vec::new()
        };
        if Header::peek(r)?.tag()
            == (Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(1),
            })
        {
            r.tlv_bytes()?;
        }
        let signer_infos = set_elements(r, Some(Tag::Set))?;
        Ok(RawSignedData {
            econtent_type,
            econtent,
            certificates,
            signer_infos,
        })
    })?;
    reader.finish()?;
    Ok(out)
}

/// The element TLVs of a `SET OF` (or an implicitly tagged one when `tag` is `None`).
fn set_elements<'a>(r: &mut SliceReader<'a>, tag: Option<Tag>) -> der::Result<Vec<&'a [u8]>> {
    let header = Header::decode(r)?;
    if let Some(tag) = tag {
        header.tag().assert_eq(tag)?;
    }
    r.read_nested(header.length(), |inner| -> der::Result<_> {
        let mut elements = Vec::new();
        while !inner.is_finished() {
            elements.push(inner.tlv_bytes()?);
        }
        Ok(elements)
    })
}

/// The `[0] IMPLICIT SignedAttributes` of a `SignerInfo`, re-tagged as the
/// `SET OF Attribute` the signature covers (RFC 5652 §5.4).
fn raw_signed_attributes(signer_info: &[u8]) -> der::Result<Option<Vec<u8>>> {
    let mut reader = SliceReader::new(signer_info)?;
    reader.sequence(|r| -> der::Result<_> {
        r.tlv_bytes()?; // version
        r.tlv_bytes()?; // sid
        r.tlv_bytes()?; // digestAlgorithm
        let signed_attrs_tag = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        };
        let attrs = if Header::peek(r)?.tag() == signed_attrs_tag {
            let mut tlv = r.tlv_bytes()?.to_vec();
            // The identifier octet of a low-number tag is the first byte: [0]
            // constructed (0xA0) becomes SET (0x31); length and content are unchanged.
            if let Some(first) = tlv.first_mut() {
                *first = 0x31;
            }
            Some(tlv)
        } else {
            None
        };
        // The rest is decoded by `SignerInfo::from_der`.
        while !r.is_finished() {
            r.tlv_bytes()?;
        }
        Ok(attrs)
    })
}

/// `TSTInfo` (RFC 3161 §2.4.2) from its DER.
fn parse_tst_info(der: &[u8]) -> der::Result<TstInfo> {
    let mut reader = SliceReader::new(der)?;
    let info = reader.sequence(|r| -> der::Result<_> {
        let version = r.decode::<u64>()?;
        let policy = r.decode::<ObjectIdentifier>()?;
        let (imprint_algorithm, imprint) = r.sequence(|mi| -> der::Result<_> {
            let algorithm = mi.decode::<AlgorithmIdentifierOwned>()?;
            let hashed = mi.decode::<OctetString>()?.into_bytes().into_vec();
            Ok((algorithm, hashed))
        })?;
        let serial_number = r.decode::<Uint>()?.as_bytes().to_vec();
        let gen_time = decode_generalized_time(r)?;
        let accuracy = if !r.is_finished() && Header::peek(r)?.tag() == Tag::Sequence {
            Some(r.sequence(|a| -> der::Result<_> {
                Ok(Accuracy {
                    seconds: a.decode::<Option<u64>>()?,
                    // RFC 3161's module uses IMPLICIT TAGS; millis/micros are 1..999
                    // (0 is tolerated: it changes nothing).
                    millis: bounded_millis(
                        a.context_specific::<u16>(TagNumber(0), TagMode::Implicit)?,
                    )?,
                    micros: bounded_millis(
                        a.context_specific::<u16>(TagNumber(1), TagMode::Implicit)?,
                    )?,
                })
            })?)
        } else {
            None
        };
        let _ordering = r.decode::<Option<bool>>()?;
        let _nonce = r.decode::<Option<Int>>()?;
        // tsa [0] GeneralName: an explicit tag since GeneralName is a CHOICE; unused.
        if !r.is_finished()
            && Header::peek(r)?.tag()
                == (Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber(0),
                })
        {
            r.tlv_bytes()?;
        }
        let extensions = r
            .context_specific::<Vec<Extension>>(TagNumber(1), TagMode::Implicit)?
            .unwrap_or_default();
        Ok(TstInfo {
            version,
            policy,
            imprint_algorithm,
            imprint,
            serial_number,
            gen_time,
            accuracy,
            extensions,
        })
    })?;
    reader.finish()?;
    Ok(info)
}

fn bounded_millis(value: Option<u16>) -> der::Result<Option<u16>> {
    match value {
        Some(v) if v > 999 => Err(Tag::Integer.value_error().into()),
        v => Ok(v),
    }
}

/// Longest accepted GeneralizedTime: `YYYYMMDDHHMMSS.fffffffffZ` (nanoseconds).
const MAX_GENERALIZED_TIME_LEN: usize = 25;

/// `GeneralizedTime` as RFC 3161 §2.4.2 allows it in genTime: `YYYYMMDDHHMMSS[.f+]Z`.
/// The `der` crate's type rejects fractional seconds, which real TSAs send.
fn decode_generalized_time(r: &mut SliceReader<'_>) -> der::Result<SystemTime> {
    let header = Header::decode(r)?;
    header.tag().assert_eq(Tag::GeneralizedTime)?;
    let bytes = r.read_slice(header.length())?;
    parse_generalized_time(bytes).ok_or_else(|| Tag::GeneralizedTime.value_error().into())
}

fn parse_generalized_time(bytes: &[u8]) -> Option<SystemTime> {
    if bytes.len() < 15 || bytes.len() > MAX_GENERALIZED_TIME_LEN || bytes.last() != Some(&b'Z') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u16> {
        bytes.get(range)?.iter().try_fold(0u16, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u16::from(b - b'0'))
        })
    };
    let year = digits(0..4)?;
    let field = |range| digits(range).and_then(|v| u8::try_from(v).ok());
    let (month, day, hour, minute, second) = (
        field(4..6)?,
        field(6..8)?,
        field(8..10)?,
        field(10..12)?,
        field(12..14)?,
    );
    let fraction = &bytes[14..bytes.len() - 1];
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if !digits.is_empty() && digits.len() <= 9 => {
            let mut nanos = 0u32;
            for (i, d) in digits.iter().enumerate() {
                if !d.is_ascii_digit() {
                    return None;
                }
                nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
            }
            nanos
        }
        _ => return None,
    };
    let datetime = der::DateTime::new(year, month, day, hour, minute, second).ok()?;
    datetime
        .to_system_time()
        .checked_add(Duration::from_nanos(u64::from(nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn verified(gen_secs: u64, accuracy: Duration) -> VerifiedTimestamp {
        VerifiedTimestamp {
            gen_time: at(gen_secs),
            accuracy,
            signer_chain_der: Vec::new(),
            policy: "1.2.3".into(),
            serial_number: vec![1],
            signing_time: None,
        }
    }

    #[test]
    fn accuracy_sums_seconds_millis_micros() {
        let a = Accuracy {
            seconds: Some(2),
            millis: Some(500),
            micros: Some(7),
        };
        assert_eq!(
            accuracy(Some(&a), rfc5912::ID_SHA_256),
            Duration::from_micros(2_500_007)
        );
        let only_millis = Accuracy {
            seconds: None,
            millis: Some(500),
            micros: None,
        };
        assert_eq!(
            accuracy(Some(&only_millis), BASELINE_TSA_POLICY),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn absent_accuracy_is_one_second_only_under_the_baseline_policy() {
        assert_eq!(accuracy(None, BASELINE_TSA_POLICY), Duration::from_secs(1));
        let other = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.4146.2.3");
        assert_eq!(accuracy(None, other), Duration::ZERO);
    }

    #[test]
    fn within_is_inclusive_at_both_ends() {
        let v = verified(1_000, Duration::from_secs(1));
        assert!(v.within(at(999), at(1_001)));
        assert!(!v.within(at(1_000), at(1_001)));
        assert!(!v.within(at(999), at(1_000)));
        assert!(verified(1_000, Duration::ZERO).within(at(1_000), at(1_000)));
        // gen_time - accuracy before the representable range is never within.
        assert!(!verified(0, Duration::MAX).within(at(0), at(1)));
    }

    #[test]
    fn generalized_time_with_and_without_fractions() {
        assert_eq!(
            parse_generalized_time(b"20210917140910Z"),
            Some(at(1_631_887_750))
        );
        assert_eq!(
            parse_generalized_time(b"20241231080530.009Z"),
            Some(at(1_735_632_330) + Duration::from_millis(9))
        );
        for bad in [
            &b"20210917140910"[..],
            b"2021091714091Z",
            b"20210917140910.Z",
            b"20210917140910.1234567890Z",
            b"20211317140910Z",
            b"20210917140960Z",
            b"2021091714091aZ",
            b"20210917140910+0100",
        ] {
            assert_eq!(parse_generalized_time(bad), None, "{bad:?}");
        }
    }

    /// A TSTInfo built field by field, so each version check sees exactly one change.
    fn tst_info_der(version: u8, extensions: &[u8]) -> Vec<u8> {
        let mut body = vec![0x02, 0x01, version];
        body.extend([0x06, 0x03, 0x2a, 0x03, 0x04]); // policy 1.2.3.4
                                                     // MessageImprint { AlgorithmIdentifier { sha256 }, OCTET STRING (32 zeros) }
        let mut imprint = vec![0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09];
        imprint.extend(rfc5912::ID_SHA_256.as_bytes());
        imprint.extend([0x04, 0x20]);
        imprint.extend([0u8; 32]);
        body.extend(imprint);
        body.extend([0x02, 0x01, 0x05]); // serial 5
        body.push(0x18);
        body.push(15);
        body.extend(b"20210917140910Z");
        body.extend(extensions);
        let mut der = vec![0x30, body.len() as u8];
        der.extend(body);
        der
    }

    #[test]
    fn tst_info_fields_decode() {
        let info = parse_tst_info(&tst_info_der(1, &[])).expect("TSTInfo decodes");
        assert_eq!(info.version, 1);
        assert_eq!(info.policy.to_string(), "1.2.3.4");
        assert_eq!(info.serial_number, vec![5]);
        assert_eq!(info.gen_time, at(1_631_887_750));
        assert_eq!(info.accuracy, None);
        assert!(info.extensions.is_empty());
    }

    #[test]
    fn tst_info_version_and_critical_extensions_are_checked_by_verify() {
        let v2 = parse_tst_info(&tst_info_der(2, &[])).expect("a v2 TSTInfo still parses");
        assert_eq!(v2.version, 2);
        // [1] IMPLICIT Extensions with one critical extension 1.2.3.5.
        let ext = [
            0xa1, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x2a, 0x03, 0x05, 0x01, 0x01, 0xff, 0x04, 0x00,
        ];
        let info = parse_tst_info(&tst_info_der(1, &ext)).expect("extensions decode");
        assert_eq!(info.extensions.len(), 1);
        assert!(info.extensions[0].critical);
    }

    #[test]
    fn hash_algorithms_are_sha2_only() {
        let sha1 = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
        assert!(matches!(
            hash_from_oid(sha1),
            Err(TimestampError::UnsupportedHashAlgorithm { oid }) if oid == sha1
        ));
        let md5 = ObjectIdentifier::new_unwrap("1.2.840.113549.2.5");
        assert!(hash_from_oid(md5).is_err());
        assert_eq!(
            hash_from_oid(rfc5912::ID_SHA_384).ok(),
            Some(HashAlgorithm::Sha384)
        );
    }

    #[test]
    fn signer_scheme_takes_the_digest_algorithm_hash() {
        let alg = |oid| AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        };
        // The bare key algorithms CMS signers write take the digest's hash.
        for bare in [rfc5912::RSA_ENCRYPTION, rfc5912::ID_EC_PUBLIC_KEY] {
            assert!(signer_scheme(&alg(bare), HashAlgorithm::Sha384).is_ok());
        }
        assert!(matches!(
            signer_scheme(
                &alg(rfc5912::SHA_384_WITH_RSA_ENCRYPTION),
                HashAlgorithm::Sha384
            ),
            Ok(Scheme::Pkcs1v15(HashAlgorithm::Sha384))
        ));
        // A signature algorithm naming another hash than the digest's is refused.
        assert!(matches!(
            signer_scheme(&alg(rfc5912::ECDSA_WITH_SHA_256), HashAlgorithm::Sha384),
            Err(TimestampError::UnsupportedSignatureAlgorithm { .. })
        ));
        // A SHA-1 digest algorithm is refused before any key is looked at.
        assert!(matches!(
            hash_from_identifier(&alg(rfc5912::ID_SHA_1)),
            Err(TimestampError::UnsupportedHashAlgorithm { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert!(TimestampToken::parse(&bytes).is_err());
        }
        assert!(matches!(
            TimestampToken::parse(&vec![0x30; MAX_TOKEN_LEN + 1]),
            Err(TimestampError::TooLarge { .. })
        ));
    }
}
