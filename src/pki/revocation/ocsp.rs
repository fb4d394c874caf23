//! OCSP (RFC 6960): the request notation sends, and the judging of a response for
//! one certificate at a given time (NOTARY.md §7).

use std::time::SystemTime;

use const_oid::db::{rfc5280, rfc5912, rfc6960};
use const_oid::ObjectIdentifier;
use der::asn1::{BitStringRef, GeneralizedTime, Int, OctetString};
use der::{Decode, Encode, Reader, SliceReader, TagMode, TagNumber};
use sha1::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_cert::name::Name;

use super::super::cert::{check_valid_at, Certificate};
use super::super::signature::{verify_signed_by, verify_with_spki};
use super::super::PkiError;
use super::{
    asn1, serial_hex, serial_magnitude, CrlReason, RevocationError, MAX_OCSP_RESPONSE_BYTES,
    OCSP_CLOCK_SKEW,
};

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

/// Step 6 of [`judge_ocsp_response`]: no unknown critical single extension; the
/// invalidityDate (RFC 5280 §5.3.2), if any.
fn invalidity_date(
    single: &asn1::SingleResponse<'_>,
) -> Result<Option<SystemTime>, RevocationError> {
    let extensions = single.single_extensions.as_deref().unwrap_or_default();
    unknown_critical(extensions, &[rfc5280::ID_CE_INVALIDITY_DATE])?;
    let Some(ext) = extensions
        .iter()
        .find(|ext| ext.extn_id == rfc5280::ID_CE_INVALIDITY_DATE)
    else {
        return Ok(None);
    };
    let date = GeneralizedTime::from_der(ext.extn_value.as_bytes()).map_err(|_| {
        RevocationError::MalformedOcspExtension {
            extension: "invalidityDate",
        }
    })?;
    Ok(Some(date.to_system_time()))
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
    let invalidity_date = invalidity_date(single)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsuccessful_ocsp_statuses_are_named() {
        // OCSPResponse { responseStatus tryLater } with no responseBytes.
        let try_later = [0x30, 0x03, 0x0a, 0x01, 0x03];
        let parsed = asn1::OcspResponse::from_der(&try_later).expect("minimal response decodes");
        assert_eq!(parsed.response_status.0, 3);
        assert_eq!(response_status_name(3), "tryLater");
        assert_eq!(response_status_name(4), "(undefined)");
    }
}
