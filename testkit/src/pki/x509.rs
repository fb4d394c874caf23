//! One X.509 v3 certificate (RFC 5280 §4.1) built in process: the TBSCertificate
//! from x509-cert's component types, DER-encoded, signed with the issuer's key
//! (RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA) and wrapped, byte for byte the shape
//! `openssl ca -preserveDN` gave the same [`CertSpec`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use const_oid::db::rfc5280::{ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_SUBJECT_KEY_IDENTIFIER};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_MGF_1, ID_RSASSA_PSS,
    ID_SHA_256, ID_SHA_384, ID_SHA_512, SHA_1_WITH_RSA_ENCRYPTION, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, GeneralizedTime, OctetString, UtcTime};
use der::{Decode, Encode, Sequence, Tag};
use ecdsa::signature::hazmat::PrehashSigner;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, EncodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::Extension;
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::{extensions, CertSpec};

/// ecdsa-with-SHA1 (RFC 3279 §2.2.3), not in const-oid's RFC 5912 module.
const ECDSA_WITH_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");

/// TBSCertificate (RFC 5280 §4.1), field by field, with the fields this kit sets:
///
/// ```text
/// TBSCertificate  ::=  SEQUENCE  {
///      version         [0]  EXPLICIT Version DEFAULT v1,
///      serialNumber         CertificateSerialNumber,
///      signature            AlgorithmIdentifier,
///      issuer               Name,
///      validity             Validity,
///      subject              Name,
///      subjectPublicKeyInfo SubjectPublicKeyInfo,
///      extensions      [3]  EXPLICIT Extensions OPTIONAL }
/// ```
#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: RdnSequence,
    validity: Validity,
    subject: RdnSequence,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// Certificate (RFC 5280 §4.1.1): the encoded TBSCertificate, its algorithm, the
/// signature.
#[derive(Sequence)]
struct Certificate {
    tbs_certificate: Any,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// A private key of the kit (PKCS#8 PEM), ready to sign.
pub(super) enum SigningKey {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

/// The digests certificates and envelopes are signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// `sha256` etc., the `-md` names of openssl.
    pub(super) fn named(name: &str) -> Hash {
        match name {
            "sha1" => Hash::Sha1,
            "sha256" => Hash::Sha256,
            "sha384" => Hash::Sha384,
            "sha512" => Hash::Sha512,
            other => panic!("digest {other:?} is not supported (sha1, sha256, sha384, sha512)"),
        }
    }

    pub(super) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

impl SigningKey {
    pub(super) fn from_pem(pem: &str) -> SigningKey {
        use rsa::pkcs8::DecodePrivateKey as _;
        if let Ok(key) = rsa::PrivateKey::from_pkcs8_pem(pem) {
            return SigningKey::Rsa(Box::new(key));
        }
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return SigningKey::P256(key);
        }
        if let Ok(key) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return SigningKey::P384(key);
        }
        if let Ok(key) = p521::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return SigningKey::P521(key);
        }
        panic!("not a PKCS#8 RSA or P-256/384/521 private key:\n{pem}")
    }

    fn public_key_info(&self) -> SubjectPublicKeyInfoOwned {
        let der = match self {
            SigningKey::Rsa(key) => key.to_public_key().to_public_key_der(),
            SigningKey::P256(key) => key.verifying_key().to_public_key_der(),
            SigningKey::P384(key) => key.verifying_key().to_public_key_der(),
            SigningKey::P521(key) => key.verifying_key().to_public_key_der(),
        }
        .expect("SPKI of a kit key");
        SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).expect("SPKI parses")
    }

    /// RSASSA-PSS over `hash` (the message's digest), MGF1 with the same hash, a
    /// `salt_len`-byte salt.
    pub(super) fn rsa_pss(&self, hash: Hash, digest: &[u8], salt_len: usize) -> Vec<u8> {
        let SigningKey::Rsa(key) = self else {
            panic!("RSASSA-PSS needs an RSA key")
        };
        let signed = match hash {
            Hash::Sha1 => key.sign(rsa::pss::Pss::<sha1::Sha1>::new_with_salt(salt_len), digest),
            Hash::Sha256 => key.sign(
                rsa::pss::Pss::<sha2::Sha256>::new_with_salt(salt_len),
                digest,
            ),
            Hash::Sha384 => key.sign(
                rsa::pss::Pss::<sha2::Sha384>::new_with_salt(salt_len),
                digest,
            ),
            Hash::Sha512 => key.sign(
                rsa::pss::Pss::<sha2::Sha512>::new_with_salt(salt_len),
                digest,
            ),
        };
        signed.expect("RSASSA-PSS signature")
    }

    /// The largest PSS salt for `hash` (openssl's `rsa_pss_saltlen:max`):
    /// emLen - hLen - 2, emLen = ceil((modBits - 1) / 8) (RFC 8017 §9.1.1).
    pub(super) fn max_pss_salt(&self, hash: Hash) -> usize {
        use rsa::traits::PublicKeyParts as _;
        let SigningKey::Rsa(key) = self else {
            panic!("a PSS salt needs an RSA key")
        };
        let em_len = (key.n().bit_width() as usize - 1).div_ceil(8);
        em_len - hash.len() - 2
    }

    /// ECDSA over `digest` as DER `Ecdsa-Sig-Value`. A digest shorter than the
    /// curve's order (SHA-256 on P-521) is its integer value, so it is left-padded.
    fn ecdsa_der(&self, digest: &[u8]) -> Vec<u8> {
        fn padded(digest: &[u8], len: usize) -> Vec<u8> {
            let mut out = vec![0; len.saturating_sub(digest.len())];
            out.extend_from_slice(digest);
            out
        }
        match self {
            SigningKey::P256(key) => {
                let sig: p256::ecdsa::Signature =
                    key.sign_prehash(&padded(digest, 32)).expect("ECDSA P-256");
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::P384(key) => {
                let sig: p384::ecdsa::Signature =
                    key.sign_prehash(&padded(digest, 48)).expect("ECDSA P-384");
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::P521(key) => {
                let sig: p521::ecdsa::Signature =
                    key.sign_prehash(&padded(digest, 66)).expect("ECDSA P-521");
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::Rsa(_) => panic!("ECDSA needs an EC key"),
        }
    }

    /// ECDSA over `digest` as fixed-width r||s (JWS/COSE form).
    pub(super) fn ecdsa_fixed(&self, digest: &[u8]) -> Vec<u8> {
        let der = self.ecdsa_der(digest);
        match self {
            SigningKey::P256(_) => {
                p256::ecdsa::Signature::from_der(&der).map(|s| s.to_bytes().to_vec())
            }
            SigningKey::P384(_) => {
                p384::ecdsa::Signature::from_der(&der).map(|s| s.to_bytes().to_vec())
            }
            SigningKey::P521(_) => {
                p521::ecdsa::Signature::from_der(&der).map(|s| s.to_bytes().to_vec())
            }
            SigningKey::Rsa(_) => unreachable!("ecdsa_der refused an RSA key"),
        }
        .expect("our own ECDSA DER")
    }

    /// The signatureAlgorithm this key signs a certificate with: `hash` with
    /// PKCS#1 v1.5 or (`pss`) RSASSA-PSS for RSA, ecdsa-with-`hash` for EC.
    fn certificate_algorithm(&self, hash: Hash, pss: bool) -> AlgorithmIdentifierOwned {
        match self {
            SigningKey::Rsa(_) if pss => pss_algorithm(hash),
            SigningKey::Rsa(_) => AlgorithmIdentifierOwned {
                oid: match hash {
                    Hash::Sha1 => SHA_1_WITH_RSA_ENCRYPTION,
                    Hash::Sha256 => SHA_256_WITH_RSA_ENCRYPTION,
                    Hash::Sha384 => SHA_384_WITH_RSA_ENCRYPTION,
                    Hash::Sha512 => SHA_512_WITH_RSA_ENCRYPTION,
                },
                parameters: Some(Any::null()),
            },
            _ if pss => panic!("pss() needs an RSA issuer"),
            _ => AlgorithmIdentifierOwned {
                oid: match hash {
                    Hash::Sha1 => ECDSA_WITH_SHA_1,
                    Hash::Sha256 => ECDSA_WITH_SHA_256,
                    Hash::Sha384 => ECDSA_WITH_SHA_384,
                    Hash::Sha512 => ECDSA_WITH_SHA_512,
                },
                parameters: None,
            },
        }
    }

    /// The signature over `tbs` for [`SigningKey::certificate_algorithm`].
    fn sign_certificate(&self, hash: Hash, pss: bool, tbs: &[u8]) -> Vec<u8> {
        let digest = hash.digest(tbs);
        match self {
            SigningKey::Rsa(_) if pss => self.rsa_pss(hash, &digest, hash.len()),
            SigningKey::Rsa(key) => {
                let scheme = match hash {
                    Hash::Sha1 => rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                    Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                };
                key.sign(scheme, &digest).expect("PKCS#1 v1.5 signature")
            }
            _ => self.ecdsa_der(&digest),
        }
    }
}

/// id-RSASSA-PSS with the RSASSA-PSS-params openssl writes (RFC 4055 §3.1): the
/// hash (with NULL parameters), MGF1 with the same hash, salt = digest length, the
/// trailer field left at its default; for SHA-1 every field is its default, so the
/// parameters are an empty SEQUENCE.
fn pss_algorithm(hash: Hash) -> AlgorithmIdentifierOwned {
    #[derive(Sequence)]
    struct RsassaPssParams {
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
        hash_algorithm: Option<AlgorithmIdentifierOwned>,
        #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
        mask_gen_algorithm: Option<AlgorithmIdentifierOwned>,
        #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
        salt_length: Option<u32>,
    }
    let hash_oid = match hash {
        Hash::Sha1 => None,
        Hash::Sha256 => Some(ID_SHA_256),
        Hash::Sha384 => Some(ID_SHA_384),
        Hash::Sha512 => Some(ID_SHA_512),
    };
    let params = match hash_oid {
        None => RsassaPssParams {
            hash_algorithm: None,
            mask_gen_algorithm: None,
            salt_length: None,
        },
        Some(oid) => {
            let hash_alg = AlgorithmIdentifierOwned {
                oid,
                parameters: Some(Any::null()),
            };
            RsassaPssParams {
                hash_algorithm: Some(hash_alg.clone()),
                mask_gen_algorithm: Some(AlgorithmIdentifierOwned {
                    oid: ID_MGF_1,
                    parameters: Some(Any::encode_from(&hash_alg).expect("MGF1 parameters")),
                }),
                salt_length: Some(hash.len() as u32),
            }
        }
    };
    AlgorithmIdentifierOwned {
        oid: ID_RSASSA_PSS,
        parameters: Some(Any::encode_from(&params).expect("RSASSA-PSS-params")),
    }
}

/// An `openssl -subj` string (`/C=US/ST=WA/O=Notary/CN=leaf`) as a Name in the
/// order written (`-preserveDN`), a `+` joining attributes into one multi-valued RDN
/// (always on in OpenSSL 3.0), with the string types openssl's default `utf8only`
/// mask gives: PrintableString for countryName and serialNumber, IA5String for
/// emailAddress and domainComponent, UTF8String for the rest.
fn subject_name(subject: &str) -> RdnSequence {
    let mut name = RdnSequence::default();
    for part in subject.split('/').filter(|p| !p.is_empty()) {
        assert!(
            !part.contains('\\'),
            "escapes in subject {subject:?} are not supported"
        );
        let attributes: Vec<AttributeTypeAndValue> = part
            .split('+')
            .map(|attribute| attribute_value(subject, attribute))
            .collect();
        // A SET OF: x509-cert sorts it into DER order, as openssl does.
        name.push(RelativeDistinguishedName::try_from(attributes).expect("RDN"));
    }
    name
}

/// One `KEY=value` of a subject string.
fn attribute_value(subject: &str, attribute: &str) -> AttributeTypeAndValue {
    let (key, value) = attribute
        .split_once('=')
        .unwrap_or_else(|| panic!("{attribute:?} of subject {subject:?} is not KEY=value"));
    let (oid, tag) = match key {
        "C" => ("2.5.4.6", Tag::PrintableString),
        "ST" => ("2.5.4.8", Tag::Utf8String),
        "L" => ("2.5.4.7", Tag::Utf8String),
        "O" => ("2.5.4.10", Tag::Utf8String),
        "OU" => ("2.5.4.11", Tag::Utf8String),
        "CN" => ("2.5.4.3", Tag::Utf8String),
        "serialNumber" => ("2.5.4.5", Tag::PrintableString),
        "UID" => ("0.9.2342.19200300.100.1.1", Tag::Utf8String),
        "DC" => ("0.9.2342.19200300.100.1.25", Tag::Ia5String),
        "emailAddress" => ("1.2.840.113549.1.9.1", Tag::Ia5String),
        other => panic!("subject attribute {other:?} of {subject:?} is not supported"),
    };
    AttributeTypeAndValue {
        oid: ObjectIdentifier::new_unwrap(oid),
        value: Any::new(tag, value.as_bytes()).expect("attribute value"),
    }
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), to the
/// whole second as openssl's `-startdate`/`-enddate` take it.
fn time(t: SystemTime) -> Time {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("fixture dates are after 1970")
        .as_secs();
    let whole = Duration::from_secs(secs);
    if super::civil(t).0 < 2050 {
        Time::UtcTime(UtcTime::from_unix_duration(whole).expect("UTCTime"))
    } else {
        Time::GeneralTime(GeneralizedTime::from_unix_duration(whole).expect("GeneralizedTime"))
    }
}

/// The key identifier openssl's `subjectKeyIdentifier = hash` computes: SHA-1 of
/// the subjectPublicKey BIT STRING's bytes (RFC 5280 §4.2.1.2, method 1).
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Hash::Sha1.digest(spki.subject_public_key.raw_bytes())
}

/// The issuer of a certificate being made: its certificate (for its subject and
/// key identifier) and its private key.
pub(super) struct IssuerParts<'a> {
    pub(super) cert_der: &'a [u8],
    pub(super) key: &'a SigningKey,
}

/// The DER certificate for `spec` with subject key `subject_key`, issued by
/// `issuer` (self-signed when `None`), with serial `serial`.
pub(super) fn certificate(
    spec: &CertSpec,
    subject_key: &SigningKey,
    issuer: Option<IssuerParts<'_>>,
    serial: u64,
) -> Vec<u8> {
    let spki = subject_key.public_key_info();
    let subject = subject_name(&spec.subject);
    // openssl's order: the config's lines as written, the key identifiers, then the
    // `extra` lines.
    let mut exts = Vec::new();
    exts.extend(
        spec.basic_constraints
            .as_deref()
            .map(extensions::basic_constraints),
    );
    exts.extend(spec.key_usage.as_deref().map(extensions::key_usage));
    exts.extend(spec.eku.as_deref().map(extensions::extended_key_usage));
    exts.push(Extension {
        extn_id: ID_CE_SUBJECT_KEY_IDENTIFIER,
        critical: false,
        extn_value: OctetString::new(
            OctetString::new(key_identifier(&spki))
                .and_then(|ski| ski.to_der())
                .expect("SKI"),
        )
        .expect("SKI"),
    });
    let (issuer_name, signing_key) = match &issuer {
        None => (subject.clone(), subject_key),
        Some(parts) => {
            let cert = x509_cert::Certificate::from_der(parts.cert_der).expect("issuer parses");
            let tbs = cert.tbs_certificate();
            // `authorityKeyIdentifier = keyid`: the issuer's own subjectKeyIdentifier.
            let key_id = tbs
                .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                .expect("issuer extensions parse")
                .map(|(_, ski)| ski.0.as_bytes().to_vec())
                .unwrap_or_else(|| key_identifier(tbs.subject_public_key_info()));
            let aki = AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id).expect("AKI")),
                ..Default::default()
            };
            exts.push(Extension {
                extn_id: ID_CE_AUTHORITY_KEY_IDENTIFIER,
                critical: false,
                extn_value: OctetString::new(aki.to_der().expect("AKI")).expect("AKI"),
            });
            let name = RdnSequence::from_der(&tbs.subject().to_der().expect("issuer name"))
                .expect("issuer name");
            (name, parts.key)
        }
    };
    exts.extend(spec.extra.iter().map(|line| extensions::extra(line)));

    let hash = Hash::named(&spec.digest);
    let algorithm = signing_key.certificate_algorithm(hash, spec.pss);
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial.to_be_bytes()).expect("serial"),
        signature: algorithm.clone(),
        issuer: issuer_name,
        validity: Validity::new(time(spec.not_before), time(spec.not_after)),
        subject,
        subject_public_key_info: spki,
        extensions: exts,
    }
    .to_der()
    .expect("TBSCertificate DER");
    let signature = signing_key.sign_certificate(hash, spec.pss, &tbs);
    Certificate {
        tbs_certificate: Any::from_der(&tbs).expect("TBS as ANY"),
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature).expect("signature BIT STRING"),
    }
    .to_der()
    .expect("Certificate DER")
}
