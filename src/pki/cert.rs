//! X.509 certificates and the certificate rules of NOTARY.md §4 (chain structure,
//! code-signing leaf, CA, TSA leaf) and §5 (trust-store certificates).
//!
//! The rules mirror notation-core-go `x509/codesigning_cert_validations.go`,
//! `x509/timestamp_cert_validations.go` and `x509/helper.go`, which follow the spec
//! (SPEC signature-specification.md#certificate-requirements) except where noted.

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use const_oid::db::rfc5280;
use const_oid::AssociatedOid;
use der::{Decode, Encode, Reader, SliceReader, Tagged};
use sha2::Digest;
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage,
};

use super::signature::{signature_algorithm_for_key, verify_certificate_signature, PublicKey};
use super::{verify_signed_by, PkiError};

/// A parsed X.509 certificate (RFC 5280 §4.1) together with the exact DER it was
/// parsed from. Name comparisons and signature checks use the original bytes
/// (`RawSubject`/`RawIssuer`/`RawTBSCertificate` in Go terms), never a re-encoding.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    parsed: x509_cert::Certificate,
    tbs: Range<usize>,
    raw_issuer: Range<usize>,
    raw_subject: Range<usize>,
    key: Result<PublicKey, String>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_string())
            .field("issuer", &self.issuer_string())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    /// Byte equality of the DER, as notation uses for trust-store matching (NOTARY.md §4
    /// "Authenticity").
    fn eq(&self, other: &Certificate) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

/// The `tbsCertificate`, `issuer`, `subject` and `subjectPublicKeyInfo` TLVs of a
/// certificate, as byte ranges of `der` (which `x509_cert` has already validated as a
/// whole).
struct RawRanges {
    tbs: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    spki: Range<usize>,
}

fn raw_ranges(der: &[u8]) -> der::Result<RawRanges> {
    let mut outer = SliceReader::new(der)?;
    let tbs = outer.sequence(|cert| {
        let tbs = cert.tlv_bytes()?;
        cert.tlv_bytes()?; // signatureAlgorithm
        cert.tlv_bytes()?; // signatureValue
        Ok::<_, der::Error>(tbs)
    })?;
    let mut inner = SliceReader::new(tbs)?;
    let (issuer, subject, spki) = inner.sequence(|tbs| {
        // version [0] EXPLICIT, present for v2/v3 only.
        if tbs.peek_byte() == Some(0xA0) {
            tbs.tlv_bytes()?;
        }
        tbs.tlv_bytes()?; // serialNumber
        tbs.tlv_bytes()?; // signature
        let issuer = tbs.tlv_bytes()?;
        tbs.tlv_bytes()?; // validity
        let subject = tbs.tlv_bytes()?;
        let spki = tbs.tlv_bytes()?;
        while !tbs.is_finished() {
            tbs.tlv_bytes()?;
        }
        Ok::<_, der::Error>((issuer, subject, spki))
    })?;
    Ok(RawRanges {
        tbs: range_in(der, tbs),
        issuer: range_in(der, issuer),
        subject: range_in(der, subject),
        spki: range_in(der, spki),
    })
}

/// Where `inner` (a sub-slice returned by a reader over `outer`) sits in `outer`.
fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start + inner.len()
}

/// Go's `pkix.Name` short name of an attribute type (crypto/x509/pkix
/// `attributeTypeNames`): C, O, OU, CN, SERIALNUMBER, L, ST, STREET, POSTALCODE.
/// notation's identity matching knows exactly these (NOTARY.md §5); any other type
/// prints as `OID=#hex` there.
pub fn attribute_short_name(oid: &const_oid::ObjectIdentifier) -> Option<&'static str> {
    use const_oid::db::rfc4519;
    const NAMES: [(const_oid::ObjectIdentifier, &str); 9] = [
        (rfc4519::C, "C"),
        (rfc4519::O, "O"),
        (rfc4519::OU, "OU"),
        (rfc4519::CN, "CN"),
        (rfc4519::SERIAL_NUMBER, "SERIALNUMBER"),
        (rfc4519::L, "L"),
        (rfc4519::ST, "ST"),
        (rfc4519::STREET, "STREET"),
        (rfc4519::POSTAL_CODE, "POSTALCODE"),
    ];
    NAMES.iter().find(|(o, _)| o == oid).map(|(_, n)| *n)
}

/// A name in RFC 4514 form exactly as x509-cert's `Display` writes it, without
/// its cost where that is safe: x509-cert looks every attribute type up in the
/// whole OID name database (~10 µs per name). Names made only of single-valued
/// CN, O, OU, C, L, ST attributes whose values are plain printable ASCII (nothing
/// RFC 4514 escapes) are written here; any other name by x509-cert.
pub fn name_string(name: &x509_cert::name::Name) -> String {
    use const_oid::db::rfc4519;
    const PLAIN: [(const_oid::ObjectIdentifier, &str); 6] = [
        (rfc4519::CN, "CN"),
        (rfc4519::O, "O"),
        (rfc4519::OU, "OU"),
        (rfc4519::C, "C"),
        (rfc4519::L, "L"),
        (rfc4519::ST, "ST"),
    ];
    fn plain_value(value: &der::Any) -> Option<&str> {
        if !matches!(
            value.tag(),
            der::Tag::PrintableString | der::Tag::Utf8String
        ) {
            return None;
        }
        let text = std::str::from_utf8(value.value()).ok()?;
        // Letters, digits, space and PrintableString's punctuation that RFC 4514
        // does not escape: valid in both string types, written as is.
        let plain_char = |c: char| c.is_ascii_alphanumeric() || " '()-./:?".contains(c);
        let plain = !text.is_empty()
            && !text.starts_with(' ')
            && !text.ends_with(' ')
            && text.chars().all(plain_char);
        plain.then_some(text)
    }
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut parts = Vec::with_capacity(rdns.len());
    for rdn in rdns.into_iter().rev() {
        let mut atvs = rdn.iter();
        let (Some(atv), None) = (atvs.next(), atvs.next()) else {
            return name.to_string();
        };
        let Some((_, key)) = PLAIN.iter().find(|(oid, _)| *oid == atv.oid) else {
            return name.to_string();
        };
        let Some(value) = plain_value(&atv.value) else {
            return name.to_string();
        };
        parts.push(format!("{key}={value}"));
    }
    parts.join(",")
}

/// An attribute value as the Go string notation compares (Go `encoding/asn1` decodes
/// PrintableString, UTF8String, IA5String, T61String, NumericString and BMPString
/// into a string; T.61 bytes are taken as they are, so only UTF-8 ones can equal a
/// policy's text), or `None` for any other ASN.1 type.
pub fn directory_string(value: &der::Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        der::Tag::PrintableString
        | der::Tag::Utf8String
        | der::Tag::Ia5String
        | der::Tag::TeletexString
        | der::Tag::NumericString => String::from_utf8(bytes.to_vec()).ok(),
        der::Tag::BmpString => {
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The text of a uniformResourceIdentifier general name.
fn uri(name: &x509_cert::ext::pkix::name::GeneralName) -> Option<String> {
    match name {
        x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(uri) => {
            Some(uri.to_string())
        }
        _ => None,
    }
}

/// The fullName URIs of distribution points (CRLDistributionPoints, FreshestCRL), in
/// order; nameRelativeToCRLIssuer names no location and is skipped.
pub(crate) fn distribution_point_uris(
    points: &[x509_cert::ext::pkix::crl::dp::DistributionPoint],
) -> Vec<String> {
    use x509_cert::ext::pkix::name::DistributionPointName;
    points
        .iter()
        .filter_map(|dp| match &dp.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(uri)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Certificate {
    /// Parses one DER certificate; trailing bytes are an error.
    pub fn from_der(der: &[u8]) -> Result<Certificate, PkiError> {
        let malformed = |source| PkiError::MalformedCertificate { source };
        let parsed = x509_cert::Certificate::from_der(der).map_err(malformed)?;
        let ranges = raw_ranges(der).map_err(malformed)?;
        let tbs_cert = parsed.tbs_certificate();
        // The key from the SPKI bytes as encoded (no re-encoding of the parsed one).
        let key = PublicKey::from_spki_der(&der[ranges.spki.clone()]).map_err(|e| e.to_string());
        let validity = tbs_cert.validity();
        Ok(Certificate {
            der: der.to_vec(),
            not_before: validity.not_before.to_system_time(),
            not_after: validity.not_after.to_system_time(),
            parsed,
            tbs: ranges.tbs,
            raw_issuer: ranges.issuer,
            raw_subject: ranges.subject,
            key,
        })
    }

    /// Parses a certificate file as notation does (NOTARY.md §5; CORE `x509/cert.go`):
    /// PEM with one or more `CERTIFICATE` blocks (other block types are skipped), or,
    /// when the bytes hold no PEM block, one or more concatenated DER certificates.
    /// No certificate at all is [`PkiError::NoCertificates`].
    pub fn parse_pem_or_der_bundle(bytes: &[u8]) -> Result<Vec<Certificate>, PkiError> {
        const BEGIN: &[u8] = b"-----BEGIN ";
        const END: &[u8] = b"-----END ";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let mut certs = Vec::new();
        if find(bytes, BEGIN).is_some() {
            let mut rest = bytes;
            while let Some(begin) = find(rest, BEGIN) {
                let block = &rest[begin..];
                let Some(end) = find(block, END) else {
                    return Err(PkiError::MalformedPem {
                        source: der::Error::from(der::ErrorKind::Failed),
                    });
                };
                // The END line runs to the next "-----" after "-----END ".
                let after_end = &block[end + END.len()..];
                let Some(close) = find(after_end, b"-----") else {
                    return Err(PkiError::MalformedPem {
                        source: der::Error::from(der::ErrorKind::Failed),
                    });
                };
                let block_len = end + END.len() + close + 5;
                let (label, body) = der::pem::decode_vec(&block[..block_len])
                    .map_err(|e| PkiError::MalformedPem { source: e.into() })?;
                if label == "CERTIFICATE" {
                    certs.push(Certificate::from_der(&body)?);
                }
                rest = &block[block_len..];
            }
        } else {
            let mut rest = bytes;
            while !rest.is_empty() {
                let mut reader = SliceReader::new(rest)
                    .map_err(|source| PkiError::MalformedCertificate { source })?;
                let tlv = reader
                    .tlv_bytes()
                    .map_err(|source| PkiError::MalformedCertificate { source })?;
                certs.push(Certificate::from_der(tlv)?);
                rest = &rest[tlv.len()..];
            }
        }
        if certs.is_empty() {
            return Err(PkiError::NoCertificates);
        }
        Ok(certs)
    }

    /// The DER bytes this certificate was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER: the `io.cncf.notary.x509chain.thumbprint#S256` entries
    /// (NOTARY.md §1) and RFC 5035 `ESSCertIDv2` hashes.
    pub fn sha256_thumbprint(&self) -> [u8; 32] {
        let digest = sha2::Sha256::digest(&self.der);
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest);
        out
    }

    /// The subject's attributes in DER order, multi-valued RDNs flattened, as
    /// (short name, value): Go's short names (C, O, OU, CN, SERIALNUMBER, L, ST,
    /// STREET, POSTALCODE) or, for any other attribute type, its dotted OID. Values are
    /// unescaped strings; a value that is not a directory string is `#` + hex of its
    /// DER, as RFC 4514 §2.4 prints it.
    pub fn subject_rdns(&self) -> Vec<(String, String)> {
        self.parsed
            .tbs_certificate()
            .subject()
            .iter()
            .map(|atv| {
                let key = attribute_short_name(&atv.oid)
                    .map_or_else(|| atv.oid.to_string(), str::to_string);
                let value = directory_string(&atv.value).unwrap_or_else(|| {
                    format!("#{}", hex(&atv.value.to_der().unwrap_or_default()))
                });
                (key, value)
            })
            .collect()
    }

    /// The subject DN in RFC 4514 form (last RDN first), for messages. Formatted on
    /// each call, not at parse time: formatting looks every attribute type up in the
    /// OID name database, which cost ~10% of a verification while only error paths
    /// and the report's signer line read it (benches/verify.rs).
    pub fn subject_string(&self) -> String {
        name_string(self.parsed.tbs_certificate().subject())
    }

    /// The issuer DN in RFC 4514 form, for messages; formatted on each call.
    pub fn issuer_string(&self) -> String {
        name_string(self.parsed.tbs_certificate().issuer())
    }

    /// notBefore (RFC 5280 §4.1.2.5).
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// notAfter (RFC 5280 §4.1.2.5).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Self-issued (issuer DN bytes == subject DN bytes, RFC 5280 §3.2) and the
    /// certificate's own signature verifies under its own key (Go `CheckSignature`,
    /// no CA constraint): the "self-signed" of NOTARY.md §4 (1-certificate chains) and
    /// §5 (`ca`/`signingAuthority` store certificates).
    pub fn is_self_signed(&self) -> bool {
        self.is_self_issued() && verify_certificate_signature(self, self).is_ok()
    }

    /// An Authority Information Access OCSP entry or a CRL distribution point is
    /// present (NOTARY.md §7: without either the certificate is non-revocable). A
    /// malformed extension counts as present, so revocation checking is not skipped.
    pub fn has_revocation_endpoints(&self) -> bool {
        let tbs = self.parsed.tbs_certificate();
        let ocsp = match tbs.get_extension::<AuthorityInfoAccessSyntax>() {
            Ok(Some((_, aia))) => aia
                .0
                .iter()
                .any(|ad| ad.access_method == rfc5280::ID_AD_OCSP),
            Ok(None) => false,
            Err(_) => true,
        };
        let crl = match tbs.get_extension::<CrlDistributionPoints>() {
            Ok(Some((_, dps))) => !dps.0.is_empty(),
            Ok(None) => false,
            Err(_) => true,
        };
        ocsp || crl
    }

    /// The Authority Information Access id-ad-ocsp URIs (RFC 5280 §4.2.2.1), every
    /// scheme, in certificate order; the caller applies NOTARY.md §7's `http://` rule.
    /// A malformed extension yields none, while [`Certificate::has_revocation_endpoints`]
    /// still reports it: a caller that finds endpoints but no URL must fail closed.
    pub fn ocsp_urls(&self) -> Vec<String> {
        match self
            .parsed
            .tbs_certificate()
            .get_extension::<AuthorityInfoAccessSyntax>()
        {
            Ok(Some((_, aia))) => aia
                .0
                .iter()
                .filter(|ad| ad.access_method == rfc5280::ID_AD_OCSP)
                .filter_map(|ad| uri(&ad.access_location))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The fullName URIs of the CRL distribution points (RFC 5280 §4.2.1.13), every
    /// scheme, in certificate order. A malformed extension yields none (see
    /// [`Certificate::ocsp_urls`]).
    pub fn crl_urls(&self) -> Vec<String> {
        match self
            .parsed
            .tbs_certificate()
            .get_extension::<CrlDistributionPoints>()
        {
            Ok(Some((_, dps))) => distribution_point_uris(&dps.0),
            _ => Vec::new(),
        }
    }

    /// The serial number's magnitude: big-endian, without leading zero bytes, the form
    /// CRL entries and OCSP CertIDs are matched in (RFC 5280 §4.1.2.2).
    pub fn serial_bytes(&self) -> &[u8] {
        super::revocation::serial_magnitude(
            self.parsed.tbs_certificate().serial_number().as_bytes(),
        )
    }

    /// The subject Name exactly as encoded in the certificate (Go's `RawSubject`).
    pub fn raw_subject_der(&self) -> &[u8] {
        self.raw_subject()
    }

    /// The issuer Name exactly as encoded in the certificate (Go's `RawIssuer`).
    pub fn raw_issuer_der(&self) -> &[u8] {
        self.raw_issuer()
    }

    /// The parsed certificate, for callers needing fields not exposed here.
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.parsed
    }

    pub(crate) fn public_key(&self) -> Result<&PublicKey, String> {
        self.key.as_ref().map_err(Clone::clone)
    }

    pub(crate) fn tbs_der(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }

    pub(crate) fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        self.parsed.signature_algorithm()
    }

    pub(crate) fn signature_bytes(&self) -> Option<&[u8]> {
        self.parsed.signature().as_bytes()
    }

    fn raw_issuer(&self) -> &[u8] {
        self.der.get(self.raw_issuer.clone()).unwrap_or_default()
    }

    fn raw_subject(&self) -> &[u8] {
        self.der.get(self.raw_subject.clone()).unwrap_or_default()
    }

    fn is_self_issued(&self) -> bool {
        self.raw_issuer() == self.raw_subject()
    }

    /// One decoded extension with its criticality; a malformed or duplicated
    /// extension is an error (RFC 5280 §4.2).
    fn extension<'a, T>(&'a self, name: &'static str) -> Result<Option<(bool, T)>, PkiError>
    where
        T: Decode<'a, Error = der::Error> + AssociatedOid,
    {
        self.parsed
            .tbs_certificate()
            .get_extension::<T>()
            .map_err(|_| PkiError::MalformedExtension {
                subject: self.subject_string(),
                extension: name,
            })
    }

    fn basic_constraints(&self) -> Result<Option<BasicConstraints>, PkiError> {
        Ok(self
            .extension::<BasicConstraints>("basicConstraints")?
            .map(|(_, bc)| bc))
    }

    fn key_usage(&self) -> Result<Option<(bool, KeyUsage)>, PkiError> {
        self.extension::<KeyUsage>("keyUsage")
    }

    fn extended_key_usage(&self) -> Result<Option<(bool, ExtendedKeyUsage)>, PkiError> {
        self.extension::<ExtendedKeyUsage>("extendedKeyUsage")
    }

    /// Go `CheckSignatureFrom`'s issuer constraints (RFC 5280 §4.2.1.9: a v3 issuer
    /// needs basicConstraints with cA; §4.2.1.3: keyUsage, if present, keyCertSign):
    /// the constraint this certificate violates as an issuer, if any.
    pub(crate) fn certificate_signing_violation(&self) -> Result<Option<&'static str>, PkiError> {
        let is_v3 = self.parsed.tbs_certificate().version() == x509_cert::certificate::Version::V3;
        match self.basic_constraints()? {
            Some(bc) if !bc.ca => return Ok(Some("basicConstraints cA=false")),
            None if is_v3 => return Ok(Some("no basicConstraints")),
            _ => {}
        }
        match self.key_usage()? {
            Some((_, ku)) if !ku.key_cert_sign() => Ok(Some("keyUsage lacks keyCertSign")),
            _ => Ok(None),
        }
    }

    /// Self-issued and its signature verifies under its own key with the issuer
    /// constraints applied: the root of a chain of ≥ 2 certificates, and a `tsa` store
    /// certificate.
    fn check_self_signed_root(&self) -> Result<(), PkiError> {
        if !self.is_self_issued() {
            return Err(PkiError::RootNotSelfIssued {
                subject: self.subject_string(),
                issuer: self.issuer_string(),
            });
        }
        verify_signed_by(self, self).map_err(|source| PkiError::RootNotSelfSigned {
            subject: self.subject_string(),
            source: Box::new(source),
        })
    }
}

/// Which leaf/CA rule set applies (NOTARY.md §4).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Profile {
    CodeSigning,
    Timestamping,
}

/// Validates a signing chain, leaf first (NOTARY.md §4; CORE
/// `ValidateCodeSigningCertChain`). Time is ignored (checked separately, see
/// [`check_valid_at`]).
///
/// 1. A 1-certificate chain must be self-signed (own signature, no CA constraint) and
///    self-issued, then the code-signing leaf rules apply.
/// 2. Otherwise, for each certificate in order: the last must be a self-issued root
///    whose signature verifies under its own key as a CA; any other must not be such
///    a root, must be signed by the next certificate (which must be allowed to sign
///    certificates) and name it as issuer (byte-equal DN). Then the leaf rules apply
///    to certificate 0 and the CA rules to the others.
pub fn validate_signing_chain(chain: &[Certificate]) -> Result<(), PkiError> {
    validate_chain(chain, Profile::CodeSigning)
}

/// Validates a TSA chain, leaf first (NOTARY.md §4 "TSA certs"; CORE
/// `ValidateTimestampingCertChain`): the structure of [`validate_signing_chain`], the
/// TSA leaf rules (EKU exactly id-kp-timeStamping and critical, RFC 3161 §2.3; keyUsage
/// present, criticality not required) and the CA rules (keyUsage criticality not
/// required). Time is ignored.
pub fn validate_tsa_chain(chain: &[Certificate]) -> Result<(), PkiError> {
    validate_chain(chain, Profile::Timestamping)
}

fn validate_chain(chain: &[Certificate], profile: Profile) -> Result<(), PkiError> {
    let Some(last_index) = chain.len().checked_sub(1) else {
        return Err(PkiError::EmptyChain);
    };
    if let [only] = chain {
        // Step 1: self-signed leaf. A key the signature table refuses (an RSA modulus
        // under 2048 bits) is reported as the key problem the leaf rule names.
        verify_certificate_signature(only, only).map_err(|source| match source {
            PkiError::UnsupportedKey { .. } => source,
            source => PkiError::RootNotSelfSigned {
                subject: only.subject_string(),
                source: Box::new(source),
            },
        })?;
        if !only.is_self_issued() {
            return Err(PkiError::RootNotSelfIssued {
                subject: only.subject_string(),
                issuer: only.issuer_string(),
            });
        }
        return check_leaf(only, profile);
    }
    // Step 2.
    for (index, cert) in chain.iter().enumerate() {
        match chain.get(index + 1) {
            None => cert.check_self_signed_root()?,
            Some(next) => {
                if cert.check_self_signed_root().is_ok() {
                    return Err(PkiError::UnexpectedSelfSigned {
                        index,
                        subject: cert.subject_string(),
                    });
                }
                verify_signed_by(cert, next).map_err(|source| PkiError::NotSignedByNext {
                    index,
                    subject: cert.subject_string(),
                    issuer: next.subject_string(),
                    source: Box::new(source),
                })?;
                if cert.raw_issuer() != next.raw_subject() {
                    return Err(PkiError::IssuerMismatch {
                        index,
                        subject: cert.subject_string(),
                        issuer: cert.issuer_string(),
                        next_subject: next.subject_string(),
                    });
                }
            }
        }
        if index == 0 {
            check_leaf(cert, profile)?;
        } else {
            // Intermediates between the leaf and this certificate.
            check_ca(cert, index, index - 1, profile)?;
        }
    }
    debug_assert!(last_index > 0);
    Ok(())
}

/// Leaf rules (NOTARY.md §4): basicConstraints cA=false if present; keyUsage present
/// (critical for code signing), digitalSignature set, nothing but digitalSignature and
/// contentCommitment; EKU rules per profile; key RSA 2048/3072/4096 or EC
/// P-256/384/521.
fn check_leaf(cert: &Certificate, profile: Profile) -> Result<(), PkiError> {
    let subject = || cert.subject_string();
    if cert.basic_constraints()?.is_some_and(|bc| bc.ca) {
        return Err(PkiError::LeafIsCa { subject: subject() });
    }
    let Some((critical, ku)) = cert.key_usage()? else {
        return Err(PkiError::LeafKeyUsageMissing { subject: subject() });
    };
    if profile == Profile::CodeSigning && !critical {
        return Err(PkiError::LeafKeyUsageNotCritical { subject: subject() });
    }
    if !ku.digital_signature() {
        return Err(PkiError::LeafKeyUsageNoDigitalSignature { subject: subject() });
    }
    let forbidden = [
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    if let Some((_, usage)) = forbidden.into_iter().find(|(set, _)| *set) {
        return Err(PkiError::LeafKeyUsageForbidden {
            subject: subject(),
            usage,
        });
    }
    let eku = cert.extended_key_usage()?;
    match profile {
        Profile::CodeSigning => {
            // The spec also forbids anyExtendedKeyUsage; notation-core-go does not
            // check it. We follow the spec.
            let forbidden = [
                (rfc5280::ID_KP_SERVER_AUTH, "serverAuth"),
                (rfc5280::ID_KP_CLIENT_AUTH, "clientAuth"),
                (rfc5280::ID_KP_EMAIL_PROTECTION, "emailProtection"),
                (rfc5280::ID_KP_TIME_STAMPING, "timeStamping"),
                (rfc5280::ID_KP_OCSP_SIGNING, "OCSPSigning"),
                (rfc5280::ANY_EXTENDED_KEY_USAGE, "anyExtendedKeyUsage"),
            ];
            if let Some((_, eku)) = eku
                .iter()
                .flat_map(|(_, eku)| eku.0.iter())
                .find_map(|oid| forbidden.iter().find(|(forbidden, _)| forbidden == oid))
            {
                return Err(PkiError::ForbiddenExtendedKeyUsage {
                    subject: subject(),
                    eku: eku.to_string(),
                });
            }
        }
        Profile::Timestamping => match eku {
            Some((critical, eku)) if eku.0 == [rfc5280::ID_KP_TIME_STAMPING] => {
                if !critical {
                    return Err(PkiError::TsaEkuNotCritical { subject: subject() });
                }
            }
            _ => return Err(PkiError::TsaEkuNotTimeStamping { subject: subject() }),
        },
    }
    signature_algorithm_for_key(cert)?;
    Ok(())
}

/// CA rules (NOTARY.md §4): basicConstraints cA=true; pathLenConstraint, if present,
/// ≥ the number of intermediates below (RFC 5280 §4.2.1.9); keyUsage present (critical
/// for code signing) with keyCertSign.
fn check_ca(
    cert: &Certificate,
    index: usize,
    below: usize,
    profile: Profile,
) -> Result<(), PkiError> {
    let subject = || cert.subject_string();
    let Some(bc) = cert.basic_constraints()?.filter(|bc| bc.ca) else {
        return Err(PkiError::CaBasicConstraints {
            index,
            subject: subject(),
        });
    };
    if let Some(path_len) = bc.path_len_constraint {
        if usize::from(path_len) < below {
            return Err(PkiError::PathLenExceeded {
                index,
                subject: subject(),
                path_len,
                below,
            });
        }
    }
    let Some((critical, ku)) = cert.key_usage()? else {
        return Err(PkiError::CaKeyUsageMissing {
            index,
            subject: subject(),
        });
    };
    if profile == Profile::CodeSigning && !critical {
        return Err(PkiError::CaKeyUsageNotCritical {
            index,
            subject: subject(),
        });
    }
    if !ku.key_cert_sign() {
        return Err(PkiError::CaKeyUsageNoCertSign {
            index,
            subject: subject(),
        });
    }
    Ok(())
}

/// `at` must lie in [notBefore, notAfter], both inclusive (RFC 5280 §4.1.2.5).
pub fn check_valid_at(cert: &Certificate, at: SystemTime) -> Result<(), PkiError> {
    if at < cert.not_before {
        return Err(PkiError::CertNotYetValid {
            subject: cert.subject_string(),
            not_before: cert.not_before,
            at,
        });
    }
    if at > cert.not_after {
        return Err(PkiError::CertExpired {
            subject: cert.subject_string(),
            not_after: cert.not_after,
            at,
        });
    }
    Ok(())
}

/// The trust-store types of NOTARY.md §5 (`truststore/x509/{ca,signingAuthority,tsa}`);
/// the `Display` form is the trust policy prefix and the directory name under
/// `truststore/x509/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreType {
    /// `ca`: roots for the `notary.x509` scheme.
    Ca,
    /// `signingAuthority`: roots for `notary.x509.signingAuthority`.
    SigningAuthority,
    /// `tsa`: RFC 3161 timestamping roots.
    Tsa,
}

impl StoreType {
    /// The policy prefix and directory name: `ca`, `signingAuthority`, `tsa`.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }

    /// The store type named exactly (case-sensitive) by `s`.
    pub fn parse(s: &str) -> Option<StoreType> {
        [StoreType::Ca, StoreType::SigningAuthority, StoreType::Tsa]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for StoreType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The per-certificate rule of a trust store (NOTARY.md §5; NGO
/// `verifier/truststore/truststore.go`): `ca` and `signingAuthority` certificates must
/// be CA certificates (basicConstraints cA=true) or self-signed; `tsa` certificates
/// must be self-issued roots whose signature verifies under their own key as a CA.
pub fn check_trust_store_certificate(
    cert: &Certificate,
    store_type: StoreType,
) -> Result<(), PkiError> {
    match store_type {
        StoreType::Ca | StoreType::SigningAuthority => {
            let is_ca = cert.basic_constraints()?.is_some_and(|bc| bc.ca);
            if is_ca || cert.is_self_signed() {
                Ok(())
            } else {
                Err(PkiError::StoreCertNotCaOrSelfSigned {
                    subject: cert.subject_string(),
                })
            }
        }
        StoreType::Tsa => {
            cert.check_self_signed_root()
                .map_err(|source| PkiError::TsaStoreCertNotRoot {
                    subject: cert.subject_string(),
                    source: Box::new(source),
                })
        }
    }
}

/// Inputs no DER parser may accept or panic on: empty, a lone SEQUENCE tag, an
/// empty SEQUENCE, `text`, and a SEQUENCE whose length runs past the end. For the
/// "garbage is a parse error" tests of every DER type here.
#[cfg(test)]
pub(crate) fn garbage_der(text: &'static [u8]) -> [&'static [u8]; 5] {
    [b"", b"\x30", b"\x30\x00", text, b"\x30\x82\xff\xff"]
}

#[cfg(test)]
mod tests {

    #[test]
    fn name_string_writes_what_x509_cert_writes() {
        use std::str::FromStr;
        for text in [
            "CN=Test Leaf,O=Notary,L=Seattle,ST=WA,C=US",
            "CN=a.example.com,OU=Ops (east),O=Acme Inc.,C=US",
            "CN=Comma\\, Inc,O=x",
            "CN=Plus\\+Sign",
            "CN=\\#hash",
            "CN=quote\\\"d",
            "CN=semi\\;colon,O=less\\<more\\>",
            "CN=equals=sign",
            "CN=at@sign,O=x",
            "CN=multi+O=valued,C=US",
            "UID=jdoe,CN=x",
            "SERIALNUMBER=123,CN=x",
            "STREET=1 Main St,POSTALCODE=98101",
            "CN=",
            "C=US",
        ] {
            let name =
                x509_cert::name::Name::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(name_string(&name), name.to_string(), "{text}");
        }
        // Types other than PrintableString and UTF8String, and non-ASCII text.
        let mut name = x509_cert::name::RdnSequence::default();
        for (oid, value) in [
            (
                const_oid::db::rfc4519::CN,
                der::Any::new(der::Tag::Ia5String, b"ia5".to_vec()).expect("any"),
            ),
            (
                const_oid::db::rfc4519::O,
                der::Any::new(der::Tag::Utf8String, "Zürich".as_bytes().to_vec()).expect("any"),
            ),
            (
                const_oid::db::rfc4519::OU,
                der::Any::new(der::Tag::Utf8String, b" padded ".to_vec()).expect("any"),
            ),
        ] {
            let mut rdn = x509_cert::name::RelativeDistinguishedName::default();
            rdn.insert(x509_cert::attr::AttributeTypeAndValue { oid, value })
                .expect("insert");
            name.push(rdn);
        }
        let name =
            x509_cert::name::Name::from_der(&name.to_der().expect("encode")).expect("decode");
        assert_eq!(name_string(&name), name.to_string());
    }
    use super::*;

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        for bytes in garbage_der(b"not a cert") {
            assert!(matches!(
                Certificate::from_der(bytes),
                Err(PkiError::MalformedCertificate { .. })
            ));
        }
    }

    #[test]
    fn empty_bundle_has_no_certificates() {
        assert!(matches!(
            Certificate::parse_pem_or_der_bundle(b""),
            Err(PkiError::NoCertificates)
        ));
        assert!(matches!(
            Certificate::parse_pem_or_der_bundle(
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
            Err(PkiError::NoCertificates)
        ));
    }

    #[test]
    fn unterminated_pem_is_malformed() {
        assert!(matches!(
            Certificate::parse_pem_or_der_bundle(b"-----BEGIN CERTIFICATE-----\nAAAA\n"),
            Err(PkiError::MalformedPem { .. })
        ));
    }

    #[test]
    fn empty_chain_is_rejected() {
        assert!(matches!(
            validate_signing_chain(&[]),
            Err(PkiError::EmptyChain)
        ));
        assert!(matches!(validate_tsa_chain(&[]), Err(PkiError::EmptyChain)));
    }
}
