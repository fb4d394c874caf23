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

use std::fmt;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use ecdsa::signature::hazmat::PrehashVerifier;
use rsa::traits::PublicKeyParts;
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

/// A public key of a supported type, decoded once when the certificate is parsed.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    Rsa(rsa::PublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Decodes a DER `SubjectPublicKeyInfo`. The error is a short description of the
    /// key for [`PkiError::UnsupportedKey`].
    pub(crate) fn from_spki_der(spki_der: &[u8]) -> Result<PublicKey, String> {
        let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|e| format!("malformed subjectPublicKeyInfo: {e}"))?;
        let oid = spki.algorithm.oid;
        if oid == rfc5912::RSA_ENCRYPTION {
            return rsa::PublicKey::try_from(spki)
                .map(PublicKey::Rsa)
                .map_err(|e| format!("RSA key not usable: {e}"));
        }
        if oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters_oid()
                .map_err(|_| "EC key without a named curve".to_string())?;
            let bad = |e: spki::Error| format!("EC key on {curve} not usable: {e}");
            return if curve == rfc5912::SECP_256_R_1 {
                p256::ecdsa::VerifyingKey::try_from(spki)
                    .map(PublicKey::P256)
                    .map_err(bad)
            } else if curve == rfc5912::SECP_384_R_1 {
                p384::ecdsa::VerifyingKey::try_from(spki)
                    .map(PublicKey::P384)
                    .map_err(bad)
            } else if curve == rfc5912::SECP_521_R_1 {
                p521::ecdsa::VerifyingKey::try_from(spki)
                    .map(PublicKey::P521)
                    .map_err(bad)
            } else {
                Err(format!("EC key on unsupported curve {curve}"))
            };
        }
        Err(format!("unsupported key algorithm {oid}"))
    }

    fn kind(&self) -> &'static str {
        match self {
            PublicKey::Rsa(_) => "RSA",
            _ => "EC",
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
        PublicKey::Rsa(key) => match key.n().as_ref().bit_width() {
            2048 => Ok(SignatureAlgorithm::Ps256),
            3072 => Ok(SignatureAlgorithm::Ps384),
            4096 => Ok(SignatureAlgorithm::Ps512),
            bits => Err(unsupported(format!("RSA {bits}"))),
        },
        PublicKey::P256(_) => Ok(SignatureAlgorithm::Es256),
        PublicKey::P384(_) => Ok(SignatureAlgorithm::Es384),
        PublicKey::P521(_) => Ok(SignatureAlgorithm::Es512),
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
    let hash = alg.hash();
    let hashed = hash.digest(message);
    let key = leaf.public_key().map_err(|key| PkiError::UnsupportedKey {
        subject: leaf.subject_string(),
        key,
    })?;
    match key {
        PublicKey::Rsa(key) => {
            let salt_len = match salt {
                PssSaltPolicy::HashLength => Some(hash.output_len()),
                PssSaltPolicy::Any => None,
            };
            rsa_pss(key, hash, salt_len, &hashed, signature)
        }
        _ => ecdsa_prehash(key, &hashed, signature, EcdsaEncoding::Fixed),
    }
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
    let oid = algorithm.oid;
    let mismatch = || PkiError::KeyAlgorithmMismatch {
        oid: oid.to_string(),
        key: key.kind().to_string(),
    };
    if let Some(name) = insecure_algorithm_name(&oid) {
        return Err(PkiError::InsecureSignatureAlgorithm {
            oid: oid.to_string(),
            name,
        });
    }
    match (sha2_signature_algorithm(&oid), key) {
        (Some((KeyFamily::Rsa, hash)), PublicKey::Rsa(rsa_key)) => {
            return rsa_pkcs1v15(rsa_key, hash, message, signature)
        }
        (Some((KeyFamily::Rsa, _)), _) | (Some((KeyFamily::Ec, _)), PublicKey::Rsa(_)) => {
            return Err(mismatch())
        }
        (Some((KeyFamily::Ec, hash)), _) => {
            return ecdsa_prehash(key, &hash.digest(message), signature, EcdsaEncoding::Der)
        }
        (None, _) => {}
    }
    if oid == rfc5912::ID_RSASSA_PSS {
        let PublicKey::Rsa(rsa_key) = key else {
            return Err(mismatch());
        };
        let (hash, salt_len) = pss_parameters(algorithm)?;
        return rsa_pss(
            rsa_key,
            hash,
            Some(salt_len),
            &hash.digest(message),
            signature,
        );
    }
    Err(PkiError::UnsupportedSignatureAlgorithm {
        oid: oid.to_string(),
    })
}

/// The key type a signature algorithm identifier needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    Ec,
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
fn pss_parameters(
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
    Ok((hash, usize::from(params.salt_len)))
}

pub(crate) fn rsa_pkcs1v15(
    key: &rsa::PublicKey,
    hash: HashAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let result = match hash {
        HashAlgorithm::Sha256 => key.pkcs1v15_verify::<sha2::Sha256>(message, signature),
        HashAlgorithm::Sha384 => key.pkcs1v15_verify::<sha2::Sha384>(message, signature),
        HashAlgorithm::Sha512 => key.pkcs1v15_verify::<sha2::Sha512>(message, signature),
    };
    result.map_err(|_| PkiError::BadSignature)
}

/// RSASSA-PSS (RFC 8017 §8.1.2) over an already computed hash; `salt_len: None`
/// accepts any salt length.
pub(crate) fn rsa_pss(
    key: &rsa::PublicKey,
    hash: HashAlgorithm,
    salt_len: Option<usize>,
    hashed: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    fn scheme<D: Digest>(salt_len: Option<usize>) -> rsa::pss::Pss<D> {
        let mut pss = rsa::pss::Pss::<D>::new();
        pss.salt_len = salt_len;
        pss
    }
    let result = match hash {
        HashAlgorithm::Sha256 => key.verify(scheme::<sha2::Sha256>(salt_len), hashed, signature),
        HashAlgorithm::Sha384 => key.verify(scheme::<sha2::Sha384>(salt_len), hashed, signature),
        HashAlgorithm::Sha512 => key.verify(scheme::<sha2::Sha512>(salt_len), hashed, signature),
    };
    result.map_err(|_| PkiError::BadSignature)
}

#[derive(Clone, Copy)]
pub(crate) enum EcdsaEncoding {
    /// `r||s`, each left-padded to the field size (JWS, COSE).
    Fixed,
    /// DER `Ecdsa-Sig-Value` (X.509, CMS; RFC 5480 §2.2... RFC 5758 §3.2).
    Der,
}

pub(crate) fn ecdsa_prehash(
    key: &PublicKey,
    hashed: &[u8],
    signature: &[u8],
    encoding: EcdsaEncoding,
) -> Result<(), PkiError> {
    macro_rules! verify {
        ($curve:ident, $vk:expr) => {{
            let sig = match encoding {
                EcdsaEncoding::Fixed => $curve::ecdsa::Signature::from_slice(signature),
                EcdsaEncoding::Der => $curve::ecdsa::Signature::from_der(signature),
            }
            .map_err(|_| PkiError::BadSignature)?;
            $vk.verify_prehash(hashed, &sig)
                .map_err(|_| PkiError::BadSignature)
        }};
    }
    match key {
        PublicKey::P256(vk) => verify!(p256, vk),
        PublicKey::P384(vk) => verify!(p384, vk),
        PublicKey::P521(vk) => verify!(p521, vk),
        PublicKey::Rsa(_) => Err(PkiError::BadSignature),
    }
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
}
