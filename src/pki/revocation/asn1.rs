//! The ASN.1 of RFC 6960 §4 (OCSP, EXPLICIT TAGS module) and the CRL pieces read
//! in this module, field by field, on der 0.8. Only what the revocation module needs
//! is public to it.

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
/// DER for `Certificate::from_der`, CRL entries decoded one by one).
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

/// BasicOCSPResponse is read by hand (`super::ocsp::parse_basic_response`) to keep the
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
