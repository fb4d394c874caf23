//! Signature algorithms and signature verification.
//!
//! Three kinds of signatures pass through here:
//! 1. The envelope signature (NOTARY.md §3 "Common envelope checks"): the algorithm is
//!    derived from the leaf key, must equal the envelope's `alg` header, RSASSA-PSS with
//!    MGF1 of the same hash, ECDSA as fixed-width `r||s`. [`verify_signature`].
//! 2. X.509 certificate signatures (RFC 5280 §4.1.1.2): PKCS#1 v1.5 and RSASSA-PSS with
//!    SHA-256/384/512, ECDSA with SHA-256/384/512 (DER `Ecdsa-Sig-Value`); SHA-1 and
//!    MD5 rejected. [`verify_signed_by`].
//! 3. CMS `SignerInfo` signatures of RFC 3161 tokens, which use the same algorithm
//!    identifiers as X.509. [`verify_with_spki`], with [`cms_signature_algorithm`] to
//!    normalise the bare `rsaEncryption` / `id-ecPublicKey` identifiers that CMS
//!    signers (OpenSSL among them) put in `signatureAlgorithm`.
//!
//! Each maps its algorithm identifier to one [`Scheme`] (the table: [`Scheme::envelope`],
//! [`Scheme::x509`], the CMS mapping in `timestamp`), and every check runs through the
//! one function [`verify`], backed by ring with RustCrypto for the few checks ring
//! has no algorithm for. Key-size rules are ours and are applied before ring is asked.

use std::fmt;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::UintRef;
use der::{Decode, Encode};
use ring::signature as ring_signature;
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};

use super::cert::Certificate;
use super::PkiError;

/// The envelope signature algorithms of the Notary Project (NOTARY.md §3): RSASSA-PSS
/// and ECDSA, each with SHA-256/384/512. The envelope names it in its `alg` header
/// (`envelope` parses it, this module checks it against the leaf key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 (RSA 2048). COSE −37.
    Ps256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384 (RSA 3072). COSE −38.
    Ps384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512 (RSA 4096). COSE −39.
    Ps512,
    /// ECDSA P-256 with SHA-256. COSE −7.
    Es256,
    /// ECDSA P-384 with SHA-384. COSE −35.
    Es384,
    /// ECDSA P-521 with SHA-512. COSE −36.
    Es512,
}

impl SignatureAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [SignatureAlgorithm; 6] = [
        SignatureAlgorithm::Ps256,
        SignatureAlgorithm::Ps384,
        SignatureAlgorithm::Ps512,
        SignatureAlgorithm::Es256,
        SignatureAlgorithm::Es384,
        SignatureAlgorithm::Es512,
    ];

    /// The JWS `alg` name (RFC 7518 §3.1), e.g. `PS256`.
    pub fn jws_name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ps256 => "PS256",
            SignatureAlgorithm::Ps384 => "PS384",
            SignatureAlgorithm::Ps512 => "PS512",
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::Es512 => "ES512",
        }
    }

    /// Parses a JWS `alg` name; `None` for anything notation does not sign with.
    pub fn from_jws_name(name: &str) -> Option<SignatureAlgorithm> {
        Self::ALL.into_iter().find(|alg| alg.jws_name() == name)
    }

    /// The COSE algorithm identifier (RFC 9053 §2.1, RFC 8230 §2), e.g. −37 for PS256.
    pub fn cose_id(self) -> i64 {
        match self {
            SignatureAlgorithm::Ps256 => -37,
            SignatureAlgorithm::Ps384 => -38,
            SignatureAlgorithm::Ps512 => -39,
            SignatureAlgorithm::Es256 => -7,
            SignatureAlgorithm::Es384 => -35,
            SignatureAlgorithm::Es512 => -36,
        }
    }

    /// Parses a COSE algorithm identifier; `None` for anything notation does not sign with.
    pub fn from_cose_id(id: i64) -> Option<SignatureAlgorithm> {
        Self::ALL.into_iter().find(|alg| alg.cose_id() == id)
    }

    /// The hash the algorithm signs with; RFC 3161 timestamps over the signature are
    /// requested with the same hash (NOTARY.md §6).
    pub fn hash(self) -> HashAlgorithm {
        match self {
            SignatureAlgorithm::Ps256 | SignatureAlgorithm::Es256 => HashAlgorithm::Sha256,
            SignatureAlgorithm::Ps384 | SignatureAlgorithm::Es384 => HashAlgorithm::Sha384,
            SignatureAlgorithm::Ps512 | SignatureAlgorithm::Es512 => HashAlgorithm::Sha512,
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.jws_name())
    }
}

/// Which RSASSA-PSS salt lengths the verifier accepts (NOTARY.md §3): go-cose requires
/// salt = hash length for COSE; the JWT library behind JWS accepts any salt length
/// (`PSSSaltLengthAuto`). Signers always use the hash length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PssSaltPolicy {
    /// Salt length must equal the hash length (COSE).
    HashLength,
    /// Any salt length the encoding allows (JWS).
    Any,
}

/// The SHA-2 hashes used by the supported algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    /// Hashes `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => sha2::Sha256::digest(message).to_vec(),
            HashAlgorithm::Sha384 => sha2::Sha384::digest(message).to_vec(),
            HashAlgorithm::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }

    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// The algorithm identifier OID (NIST, RFC 5758 §2).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => rfc5912::ID_SHA_256,
            HashAlgorithm::Sha384 => rfc5912::ID_SHA_384,
            HashAlgorithm::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// The hash with this OID, if it is one of SHA-256/384/512.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlgorithm> {
        [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ]
        .into_iter()
        .find(|h| h.oid() == *oid)
    }
}

/// The curves notation signs with (NOTARY.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

/// An RSA public key: the `RSAPublicKey` DER of the SPKI (RFC 8017 §A.1.1), which is
/// what ring verifies with, and its modulus size.
#[derive(Clone, Debug)]
pub(crate) struct RsaKey {
    der: Vec<u8>,
    bits: usize,
}

/// An EC public key: the uncompressed SEC1 point ring verifies with, and the
/// RustCrypto key for the curve/hash pairs ring lacks (see [`verify`]). Decoding the
/// RustCrypto key checks the point is on the curve, and decompresses a compressed one.
#[derive(Clone, Debug)]
pub(crate) struct EcKey {
    curve: Curve,
    point: Vec<u8>,
    fallback: EcFallbackKey,
}

#[derive(Clone, Debug)]
enum EcFallbackKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

/// A public key of a supported type, decoded once when the certificate is parsed.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    Rsa(RsaKey),
    Ec(EcKey),
}

/// Why a `SubjectPublicKeyInfo` is not a key this module verifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyError {
    MalformedSpki,
    MalformedRsa,
    EcWithoutNamedCurve,
    EcUnsupportedCurve(ObjectIdentifier),
    MalformedEc,
    UnsupportedAlgorithm(ObjectIdentifier),
}

impl KeyError {
    /// A fixed description, for errors that carry a `&'static str`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            KeyError::MalformedSpki => "public key does not decode",
            KeyError::MalformedRsa => "RSA public key does not decode",
            KeyError::EcWithoutNamedCurve => "EC key without a named curve",
            KeyError::EcUnsupportedCurve(_) => "EC curve other than P-256, P-384 or P-521",
            KeyError::MalformedEc => "EC public key does not decode",
            KeyError::UnsupportedAlgorithm(_) => "key algorithm other than RSA or EC",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::EcUnsupportedCurve(curve) => write!(f, "EC key on unsupported curve {curve}"),
            KeyError::UnsupportedAlgorithm(oid) => write!(f, "unsupported key algorithm {oid}"),
            other => f.write_str(other.reason()),
        }
    }
}

/// `RSAPublicKey` (RFC 8017 §A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKeyDer<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

impl PublicKey {
    /// Decodes a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7): `rsaEncryption` with
    /// an `RSAPublicKey` (RFC 3279 §2.3.1), or `id-ecPublicKey` on a named curve with
    /// a SEC1 point (RFC 5480 §2). Sizes are judged where the key is used.
    pub(crate) fn from_spki_der(spki_der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki =
            SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|_| KeyError::MalformedSpki)?;
        let oid = spki.algorithm.oid;
        let key_bytes = spki.subject_public_key.as_bytes();
        if oid == rfc5912::RSA_ENCRYPTION {
            let der = key_bytes.ok_or(KeyError::MalformedRsa)?;
            let parsed = RsaPublicKeyDer::from_der(der).map_err(|_| KeyError::MalformedRsa)?;
            let modulus = parsed.modulus.as_bytes();
            let bits = match modulus.first() {
                Some(&top) => (modulus.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
                None => return Err(KeyError::MalformedRsa),
            };
            return Ok(PublicKey::Rsa(RsaKey {
                der: der.to_vec(),
                bits,
            }));
        }
        if oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::EcWithoutNamedCurve)?;
            let point = key_bytes.ok_or(KeyError::MalformedEc)?;
            let bad = |_| KeyError::MalformedEc;
            let (curve, fallback, uncompressed) = if curve == rfc5912::SECP_256_R_1 {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?;
                let uncompressed = key.to_sec1_point(false).as_bytes().to_vec();
                (Curve::P256, EcFallbackKey::P256(key), uncompressed)
            } else if curve == rfc5912::SECP_384_R_1 {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?;
                let uncompressed = key.to_sec1_point(false).as_bytes().to_vec();
                (Curve::P384, EcFallbackKey::P384(key), uncompressed)
            } else if curve == rfc5912::SECP_521_R_1 {
                let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad)?;
                let uncompressed = key.to_sec1_point(false).as_bytes().to_vec();
                (Curve::P521, EcFallbackKey::P521(key), uncompressed)
            } else {
                return Err(KeyError::EcUnsupportedCurve(curve));
            };
            return Ok(PublicKey::Ec(EcKey {
                curve,
                point: uncompressed,
                fallback,
            }));
        }
        Err(KeyError::UnsupportedAlgorithm(oid))
    }

    fn family(&self) -> KeyFamily {
        match self {
            PublicKey::Rsa(_) => KeyFamily::Rsa,
            PublicKey::Ec(_) => KeyFamily::Ec,
        }
    }

    fn kind(&self) -> &'static str {
        match self.family() {
            KeyFamily::Rsa => "RSA",
            KeyFamily::Ec => "EC",
        }
    }
}

/// The envelope algorithm a leaf key signs with (NOTARY.md §3): RSA 2048 → PS256,
/// 3072 → PS384, 4096 → PS512; EC P-256 → ES256, P-384 → ES384, P-521 → ES512. Any
/// other key is [`PkiError::UnsupportedKey`].
pub fn signature_algorithm_for_key(leaf: &Certificate) -> Result<SignatureAlgorithm, PkiError> {
    let unsupported = |key: String| PkiError::UnsupportedKey {
        subject: leaf.subject_string(),
        key,
    };
    match leaf.public_key().map_err(unsupported)? {
        PublicKey::Rsa(key) => match key.bits {
            2048 => Ok(SignatureAlgorithm::Ps256),
            3072 => Ok(SignatureAlgorithm::Ps384),
            4096 => Ok(SignatureAlgorithm::Ps512),
            bits => Err(unsupported(format!("RSA {bits}"))),
        },
        PublicKey::Ec(key) => Ok(match key.curve {
            Curve::P256 => SignatureAlgorithm::Es256,
            Curve::P384 => SignatureAlgorithm::Es384,
            Curve::P521 => SignatureAlgorithm::Es512,
        }),
    }
}

/// Verifies an envelope signature (NOTARY.md §3 "Common envelope checks").
///
/// 1. Derive the algorithm from the leaf key; it must equal `alg` (the envelope's
///    header), else [`PkiError::AlgorithmMismatch`].
/// 2. RSA: RSASSA-PSS, MGF1 with the same hash, salt per `salt`.
///    ECDSA: `signature` is fixed-width `r||s` (RFC 7518 §3.4, RFC 9053 §2.1).
pub fn verify_signature(
    leaf: &Certificate,
    alg: SignatureAlgorithm,
    salt: PssSaltPolicy,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let key_alg = signature_algorithm_for_key(leaf)?;
    if key_alg != alg {
        return Err(PkiError::AlgorithmMismatch {
            header: alg,
            key: key_alg,
        });
    }
    let key = leaf.public_key().map_err(|key| PkiError::UnsupportedKey {
        subject: leaf.subject_string(),
        key,
    })?;
    verify(key, Scheme::envelope(alg, salt), message, signature)
        .map_err(|e| e.into_pki(leaf, key, alg.jws_name()))
}

/// Verifies that `child`'s signature was made by `issuer`'s key (RFC 5280 §6.1.3
/// (a)(1)), with Go's `CheckSignatureFrom` constraints on the issuer: a v3 issuer must
/// carry basicConstraints with cA=true, and a keyUsage, if present, must include
/// keyCertSign (RFC 5280 §4.2.1.9, §4.2.1.3). Names are not compared here.
pub fn verify_signed_by(child: &Certificate, issuer: &Certificate) -> Result<(), PkiError> {
    if let Some(constraint) = issuer.certificate_signing_violation()? {
        return Err(PkiError::IssuerNotCa {
            subject: issuer.subject_string(),
            constraint,
        });
    }
    verify_certificate_signature(child, issuer)
}

/// Checks `child`'s signature against `issuer`'s key without any constraint on the
/// issuer (Go `CheckSignature`); used for "self-signed" in the 1-certificate chain and
/// trust-store rules.
pub(crate) fn verify_certificate_signature(
    child: &Certificate,
    issuer: &Certificate,
) -> Result<(), PkiError> {
    let signature = child.signature_bytes().ok_or(PkiError::BadSignature)?;
    verify_with_spki(
        issuer,
        child.signature_algorithm(),
        child.tbs_der(),
        signature,
    )
}

/// Verifies `signature` over `message` with the key of `cert`, for an X.509/CMS
/// signature algorithm identifier: sha{256,384,512}WithRSAEncryption (PKCS#1 v1.5,
/// RFC 8017 §8.2), id-RSASSA-PSS (RFC 4055 §3.1; hash SHA-256/384/512, MGF1 with the
/// same hash, the declared salt length), ecdsa-with-SHA{256,384,512} (RFC 5758 §3.2,
/// DER `Ecdsa-Sig-Value`). SHA-1 and MD5 are [`PkiError::InsecureSignatureAlgorithm`].
/// A CMS `SignerInfo` signature is checked by
/// [`verify_signer_signature`](super::timestamp::verify_signer_signature).
pub fn verify_with_spki(
    cert: &Certificate,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let key = cert.public_key().map_err(|key| PkiError::UnsupportedKey {
        subject: cert.subject_string(),
        key,
    })?;
    let scheme = Scheme::x509(algorithm, key.family()).map_err(|e| match e {
        SchemeError::Pki(e) => e,
        SchemeError::KeyMismatch => PkiError::KeyAlgorithmMismatch {
            oid: algorithm.oid.to_string(),
            key: key.kind().to_string(),
        },
    })?;
    verify(key, scheme, message, signature)
        .map_err(|e| e.into_pki(cert, key, &algorithm.oid.to_string()))
}

/// The key type a signature algorithm identifier needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    Ec,
}

/// The RSASSA-PSS salt lengths a check accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PssSalt {
    /// Exactly this many bytes (X.509/CMS: the declared `saltLength`; COSE: the hash
    /// length).
    Exactly(usize),
    /// Any length the encoding allows (JWS, NOTARY.md §3).
    Any,
}

/// How a signature is checked: one row of the table every signature goes through
/// (envelope `alg`, X.509 `signatureAlgorithm`, CMS `signatureAlgorithm` +
/// `digestAlgorithm` all map to one), executed by [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2).
    Pkcs1v15(HashAlgorithm),
    /// RSASSA-PSS (RFC 8017 §8.1), MGF1 with the same hash.
    Pss(HashAlgorithm, PssSalt),
    /// ECDSA (FIPS 186-5 §6.4.2), the hash truncated to the curve order as usual.
    Ecdsa(HashAlgorithm, EcdsaEncoding),
}

/// Why an algorithm identifier yields no [`Scheme`] for a key.
#[derive(Debug)]
pub(crate) enum SchemeError {
    /// The algorithm is known but needs the other key family.
    KeyMismatch,
    /// Insecure, unsupported, or RSASSA-PSS parameters out of bounds.
    Pki(PkiError),
}

impl Scheme {
    /// The envelope algorithms (NOTARY.md §3): PS* with the salt policy of the
    /// envelope format, ES* with fixed-width `r||s`.
    pub(crate) fn envelope(alg: SignatureAlgorithm, salt: PssSaltPolicy) -> Scheme {
        let hash = alg.hash();
        match alg {
            SignatureAlgorithm::Ps256 | SignatureAlgorithm::Ps384 | SignatureAlgorithm::Ps512 => {
                Scheme::Pss(
                    hash,
                    match salt {
                        PssSaltPolicy::HashLength => PssSalt::Exactly(hash.output_len()),
                        PssSaltPolicy::Any => PssSalt::Any,
                    },
                )
            }
            SignatureAlgorithm::Es256 | SignatureAlgorithm::Es384 | SignatureAlgorithm::Es512 => {
                Scheme::Ecdsa(hash, EcdsaEncoding::Fixed)
            }
        }
    }

    /// An X.509 (RFC 5280 §4.1.1.2) or CMS signature algorithm identifier, for a key
    /// of `family`: SHA-1/MD5-based ones are refused as insecure, PSS parameters are
    /// checked (after the key family, as Go does).
    pub(crate) fn x509(
        algorithm: &AlgorithmIdentifierOwned,
        family: KeyFamily,
    ) -> Result<Scheme, SchemeError> {
        let oid = algorithm.oid;
        if let Some(name) = insecure_algorithm_name(&oid) {
            return Err(SchemeError::Pki(PkiError::InsecureSignatureAlgorithm {
                oid: oid.to_string(),
                name,
            }));
        }
        if let Some((needed, hash)) = sha2_signature_algorithm(&oid) {
            if needed != family {
                return Err(SchemeError::KeyMismatch);
            }
            return Ok(match needed {
                KeyFamily::Rsa => Scheme::Pkcs1v15(hash),
                KeyFamily::Ec => Scheme::Ecdsa(hash, EcdsaEncoding::Der),
            });
        }
        if oid == rfc5912::ID_RSASSA_PSS {
            if family != KeyFamily::Rsa {
                return Err(SchemeError::KeyMismatch);
            }
            let (hash, salt_len) = pss_parameters(algorithm).map_err(SchemeError::Pki)?;
            return Ok(Scheme::Pss(hash, PssSalt::Exactly(salt_len)));
        }
        Err(SchemeError::Pki(PkiError::UnsupportedSignatureAlgorithm {
            oid: oid.to_string(),
        }))
    }

    /// The key type the scheme needs.
    pub(crate) fn family(self) -> KeyFamily {
        match self {
            Scheme::Pkcs1v15(_) | Scheme::Pss(..) => KeyFamily::Rsa,
            Scheme::Ecdsa(..) => KeyFamily::Ec,
        }
    }

    /// The hash the scheme signs with.
    pub(crate) fn hash(self) -> HashAlgorithm {
        match self {
            Scheme::Pkcs1v15(hash) | Scheme::Pss(hash, _) | Scheme::Ecdsa(hash, _) => hash,
        }
    }
}

/// RSA moduli accepted for any signature: at least 2048 bits (NOTARY.md §4, the
/// spec's minimum; TSA signers likewise), at most 8192 (the largest ring verifies and
/// the largest the earlier `rsa`-crate path decoded). The envelope's leaf is held to
/// exactly 2048/3072/4096 by [`signature_algorithm_for_key`] before this.
pub(crate) const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// Why [`verify`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckError {
    /// The scheme needs the other key family.
    KeyMismatch,
    /// An RSA modulus outside [`RSA_BITS`].
    RsaKeySize { bits: usize },
    /// The signature does not verify.
    BadSignature,
}

impl CheckError {
    /// The [`PkiError`] for a check of `cert`'s key with the algorithm named `algorithm`.
    fn into_pki(self, cert: &Certificate, key: &PublicKey, algorithm: &str) -> PkiError {
        match self {
            CheckError::BadSignature => PkiError::BadSignature,
            CheckError::RsaKeySize { bits } => PkiError::UnsupportedKey {
                subject: cert.subject_string(),
                key: format!("RSA {bits}"),
            },
            CheckError::KeyMismatch => PkiError::KeyAlgorithmMismatch {
                oid: algorithm.to_string(),
                key: key.kind().to_string(),
            },
        }
    }
}

/// Checks `signature` over `message` under `key` with `scheme`: the one place a
/// signature is verified.
///
/// ring (already linked for rustls) does every check it has an algorithm for: RSA
/// PKCS#1 v1.5 and PSS with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384 in
/// fixed and ASN.1 form. ring has no P-521, no ECDSA with SHA-512 on P-256/P-384, and
/// verifies PSS with salt = hash length only; those (P-521 envelopes and chains,
/// `ecdsa-with-SHA512` on the smaller curves, a PSS salt other than the hash length
/// that X.509/CMS parameters declare or JWS allows) go to the RustCrypto crates, the
/// same verifiers this module used before it moved to ring.
pub(crate) fn verify(
    key: &PublicKey,
    scheme: Scheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CheckError> {
    match (scheme, key) {
        (Scheme::Pkcs1v15(hash), PublicKey::Rsa(key)) => {
            key.check_size()?;
            let alg = match hash {
                HashAlgorithm::Sha256 => &ring_signature::RSA_PKCS1_2048_8192_SHA256,
                HashAlgorithm::Sha384 => &ring_signature::RSA_PKCS1_2048_8192_SHA384,
                HashAlgorithm::Sha512 => &ring_signature::RSA_PKCS1_2048_8192_SHA512,
            };
            ring_verify(alg, &key.der, message, signature)
        }
        (Scheme::Pss(hash, salt), PublicKey::Rsa(key)) => {
            key.check_size()?;
            let alg = match hash {
                HashAlgorithm::Sha256 => &ring_signature::RSA_PSS_2048_8192_SHA256,
                HashAlgorithm::Sha384 => &ring_signature::RSA_PSS_2048_8192_SHA384,
                HashAlgorithm::Sha512 => &ring_signature::RSA_PSS_2048_8192_SHA512,
            };
            match salt {
                PssSalt::Exactly(len) if len == hash.output_len() => {
                    ring_verify(alg, &key.der, message, signature)
                }
                PssSalt::Exactly(len) => {
                    fallback::rsa_pss(key, hash, Some(len), message, signature)
                }
                // Signers use the hash length: ring first, any other salt after.
                PssSalt::Any => ring_verify(alg, &key.der, message, signature)
                    .or_else(|_| fallback::rsa_pss(key, hash, None, message, signature)),
            }
        }
        (Scheme::Ecdsa(hash, encoding), PublicKey::Ec(key)) => {
            match ring_ecdsa_algorithm(key.curve, hash, encoding) {
                Some(alg) => ring_verify(alg, &key.point, message, signature),
                None => fallback::ecdsa(&key.fallback, hash, encoding, message, signature),
            }
        }
        _ => Err(CheckError::KeyMismatch),
    }
}

impl RsaKey {
    fn check_size(&self) -> Result<(), CheckError> {
        if RSA_BITS.contains(&self.bits) {
            Ok(())
        } else {
            Err(CheckError::RsaKeySize { bits: self.bits })
        }
    }
}

fn ring_verify(
    alg: &'static dyn ring_signature::VerificationAlgorithm,
    key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CheckError> {
    ring_signature::UnparsedPublicKey::new(alg, key)
        .verify(message, signature)
        .map_err(|_| CheckError::BadSignature)
}

/// ring's ECDSA algorithm for a curve/hash/encoding, if it has one.
fn ring_ecdsa_algorithm(
    curve: Curve,
    hash: HashAlgorithm,
    encoding: EcdsaEncoding,
) -> Option<&'static dyn ring_signature::VerificationAlgorithm> {
    use EcdsaEncoding::{Der, Fixed};
    use HashAlgorithm::{Sha256, Sha384};
    let alg: &'static ring_signature::EcdsaVerificationAlgorithm = match (curve, hash, encoding) {
        (Curve::P256, Sha256, Fixed) => &ring_signature::ECDSA_P256_SHA256_FIXED,
        (Curve::P256, Sha256, Der) => &ring_signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, Sha384, Der) => &ring_signature::ECDSA_P256_SHA384_ASN1,
        (Curve::P384, Sha384, Fixed) => &ring_signature::ECDSA_P384_SHA384_FIXED,
        (Curve::P384, Sha384, Der) => &ring_signature::ECDSA_P384_SHA384_ASN1,
        (Curve::P384, Sha256, Der) => &ring_signature::ECDSA_P384_SHA256_ASN1,
        _ => return None,
    };
    Some(alg)
}

/// The checks ring has no algorithm for (see [`verify`]), with RustCrypto.
mod fallback {
    use ecdsa::signature::hazmat::PrehashVerifier;

    use super::{CheckError, EcFallbackKey, EcdsaEncoding, HashAlgorithm, RsaKey};

    /// RSASSA-PSS (RFC 8017 §8.1.2) with a salt length other than the hash length;
    /// `salt_len: None` accepts any.
    pub(super) fn rsa_pss(
        key: &RsaKey,
        hash: HashAlgorithm,
        salt_len: Option<usize>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CheckError> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        fn scheme<D: sha2::Digest>(salt_len: Option<usize>) -> rsa::pss::Pss<D> {
            let mut pss = rsa::pss::Pss::<D>::new();
            pss.salt_len = salt_len;
            pss
        }
        let key = rsa::PublicKey::from_pkcs1_der(&key.der).map_err(|_| CheckError::BadSignature)?;
        let hashed = hash.digest(message);
        let result = match hash {
            HashAlgorithm::Sha256 => {
                key.verify(scheme::<sha2::Sha256>(salt_len), &hashed, signature)
            }
            HashAlgorithm::Sha384 => {
                key.verify(scheme::<sha2::Sha384>(salt_len), &hashed, signature)
            }
            HashAlgorithm::Sha512 => {
                key.verify(scheme::<sha2::Sha512>(salt_len), &hashed, signature)
            }
        };
        result.map_err(|_| CheckError::BadSignature)
    }

    /// ECDSA over a prehashed message: P-521 (any hash), and SHA-512 on P-256/P-384.
    pub(super) fn ecdsa(
        key: &EcFallbackKey,
        hash: HashAlgorithm,
        encoding: EcdsaEncoding,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CheckError> {
        let hashed = hash.digest(message);
        macro_rules! verify {
            ($curve:ident, $vk:expr) => {{
                let sig = match encoding {
                    EcdsaEncoding::Fixed => $curve::ecdsa::Signature::from_slice(signature),
                    EcdsaEncoding::Der => $curve::ecdsa::Signature::from_der(signature),
                }
                .map_err(|_| CheckError::BadSignature)?;
                $vk.verify_prehash(&hashed, &sig)
                    .map_err(|_| CheckError::BadSignature)
            }};
        }
        match key {
            EcFallbackKey::P256(vk) => verify!(p256, vk),
            EcFallbackKey::P384(vk) => verify!(p384, vk),
            EcFallbackKey::P521(vk) => verify!(p521, vk),
        }
    }
}

/// The one table of X.509/CMS signature algorithm identifiers that name their hash:
/// sha{256,384,512}WithRSAEncryption (PKCS#1 v1.5, RFC 4055 §5) and
/// ecdsa-with-SHA{256,384,512} (RFC 5758 §3.2). RSASSA-PSS names its hash in its
/// parameters instead.
pub(crate) fn sha2_signature_algorithm(
    oid: &ObjectIdentifier,
) -> Option<(KeyFamily, HashAlgorithm)> {
    [
        (
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            KeyFamily::Rsa,
            HashAlgorithm::Sha256,
        ),
        (
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            KeyFamily::Rsa,
            HashAlgorithm::Sha384,
        ),
        (
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            KeyFamily::Rsa,
            HashAlgorithm::Sha512,
        ),
        (
            rfc5912::ECDSA_WITH_SHA_256,
            KeyFamily::Ec,
            HashAlgorithm::Sha256,
        ),
        (
            rfc5912::ECDSA_WITH_SHA_384,
            KeyFamily::Ec,
            HashAlgorithm::Sha384,
        ),
        (
            rfc5912::ECDSA_WITH_SHA_512,
            KeyFamily::Ec,
            HashAlgorithm::Sha512,
        ),
    ]
    .into_iter()
    .find(|(o, _, _)| o == oid)
    .map(|(_, family, hash)| (family, hash))
}

/// ecdsa-with-SHA1 (RFC 3279 §2.2.3), absent from `const_oid::db`.
const ECDSA_WITH_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");

fn insecure_algorithm_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    [
        (rfc5912::SHA_1_WITH_RSA_ENCRYPTION, "sha1WithRSAEncryption"),
        (rfc5912::MD_5_WITH_RSA_ENCRYPTION, "md5WithRSAEncryption"),
        (rfc5912::MD_2_WITH_RSA_ENCRYPTION, "md2WithRSAEncryption"),
        (ECDSA_WITH_SHA_1, "ecdsa-with-SHA1"),
        (rfc5912::DSA_WITH_SHA_1, "dsa-with-sha1"),
    ]
    .into_iter()
    .find(|(o, _)| o == oid)
    .map(|(_, name)| name)
}

/// RSASSA-PSS-params (RFC 4055 §3.1) restricted to what Go and notation accept: hash
/// SHA-256/384/512 (the SHA-1 default is refused), MGF1 with the same hash, trailer 1.
/// Returns the hash and the declared salt length.
pub(crate) fn pss_parameters(
    algorithm: &AlgorithmIdentifierOwned,
) -> Result<(HashAlgorithm, usize), PkiError> {
    let invalid = |reason| PkiError::InvalidPssParameters { reason };
    let params = algorithm.parameters.as_ref().ok_or(invalid(
        "parameters absent (SHA-1 defaults are not accepted)",
    ))?;
    let params_der = params
        .to_der()
        .map_err(|_| invalid("parameters cannot be encoded"))?;
    let params = rsa::pkcs1::RsaPssParams::<der::Any>::from_der(&params_der)
        .map_err(|_| invalid("malformed parameters"))?;
    let hash = HashAlgorithm::from_oid(&params.hash.oid)
        .ok_or(invalid("hash is not SHA-256, SHA-384 or SHA-512"))?;
    if params.mask_gen.oid != rfc5912::ID_MGF_1 {
        return Err(invalid("mask generation function is not MGF1"));
    }
    let mgf_hash = params
        .mask_gen
        .parameters
        .as_ref()
        .ok_or(invalid("MGF1 hash absent"))?;
    if mgf_hash.oid != hash.oid() {
        return Err(invalid("MGF1 hash differs from the message hash"));
    }
    if params.trailer_field != rsa::pkcs1::TrailerField::BC {
        return Err(invalid("trailer field is not 1"));
    }
    Ok((hash, usize::from(params.salt_len)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcdsaEncoding {
    /// `r||s`, each left-padded to the field size (JWS, COSE).
    Fixed,
    /// DER `Ecdsa-Sig-Value` (X.509, CMS; RFC 5480 §2.2... RFC 5758 §3.2).
    Der,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip() {
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_jws_name(alg.jws_name()), Some(alg));
            assert_eq!(SignatureAlgorithm::from_cose_id(alg.cose_id()), Some(alg));
        }
        assert_eq!(SignatureAlgorithm::from_jws_name("RS256"), None);
        assert_eq!(SignatureAlgorithm::from_cose_id(-257), None);
        assert_eq!(SignatureAlgorithm::Es512.hash(), HashAlgorithm::Sha512);
    }

    #[test]
    fn garbage_spki_is_described_not_panicking() {
        assert!(PublicKey::from_spki_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!(PublicKey::from_spki_der(&[]).is_err());
    }

    #[test]
    fn envelope_algorithms_map_to_their_scheme() {
        assert_eq!(
            Scheme::envelope(SignatureAlgorithm::Ps384, PssSaltPolicy::HashLength),
            Scheme::Pss(HashAlgorithm::Sha384, PssSalt::Exactly(48))
        );
        assert_eq!(
            Scheme::envelope(SignatureAlgorithm::Ps256, PssSaltPolicy::Any),
            Scheme::Pss(HashAlgorithm::Sha256, PssSalt::Any)
        );
        assert_eq!(
            Scheme::envelope(SignatureAlgorithm::Es512, PssSaltPolicy::HashLength),
            Scheme::Ecdsa(HashAlgorithm::Sha512, EcdsaEncoding::Fixed)
        );
    }

    #[test]
    fn rsa_keys_outside_the_size_rule_are_refused_before_ring() {
        use pullgate_testkit::pki::{CertSpec, Pki};
        let pki = Pki::new();
        let root = pki.self_signed(&CertSpec::ca("/CN=Small Root").odd_rsa(1024));
        let leaf = pki.issue(&CertSpec::leaf("/CN=Leaf"), &root);
        let parse = |der: &[u8]| Certificate::from_der(der).expect("openssl-made certificate");
        match verify_signed_by(&parse(&leaf.der), &parse(&root.der)) {
            Err(PkiError::UnsupportedKey { key, .. }) => assert_eq!(key, "RSA 1024"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ring_covers_the_envelope_curves_but_not_p521() {
        for (curve, hash) in [
            (Curve::P256, HashAlgorithm::Sha256),
            (Curve::P384, HashAlgorithm::Sha384),
        ] {
            assert!(ring_ecdsa_algorithm(curve, hash, EcdsaEncoding::Fixed).is_some());
            assert!(ring_ecdsa_algorithm(curve, hash, EcdsaEncoding::Der).is_some());
        }
        assert!(
            ring_ecdsa_algorithm(Curve::P521, HashAlgorithm::Sha512, EcdsaEncoding::Fixed)
                .is_none()
        );
    }
}
