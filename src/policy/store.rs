//! Named trust stores (NOTARY.md §5 "Store"), built from file contents the caller has
//! read: no I/O here. [`crate::policy_dir`] does the directory walking.

use der::{Decode, Encode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

use super::document::{valid_store_name, StoreType, TrustStoreRef};
use super::error::PolicyError;

/// The certificates of one named store, in file order, each as DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStore {
    pub store_type: StoreType,
    pub name: String,
    pub certificates_der: Vec<Vec<u8>>,
}

impl TrustStore {
    /// Builds a store from `(file name, contents)` pairs with notation's rules:
    /// - the name matches `^[a-zA-Z0-9_.-]+$` (and is not `.`/`..`);
    /// - each file is PEM (one or more `CERTIFICATE` blocks) or DER (one or more
    ///   concatenated certificates), whatever its extension, and holds at least one;
    /// - in `ca` and `signingAuthority` stores each certificate is a CA
    ///   (basicConstraints cA=true) or self-signed (subject == issuer and its own key
    ///   verifies its signature); validity dates are not checked here;
    /// - in `tsa` stores each certificate is a root: self-issued, allowed to sign
    ///   certificates (as Go's `CheckSignatureFrom` requires) and self-signed;
    /// - a store without certificates is an error.
    ///
    /// Self-signatures are checked for RSA PKCS #1 v1.5 and ECDSA (P-256/384/521) with
    /// SHA-256/384/512. Other algorithms (SHA-1, RSASSA-PSS-signed certificates) count
    /// as "not self-signed", which fails closed: such a certificate is admitted only as
    /// a CA in a `ca`/`signingAuthority` store.
    pub fn from_files(
        store_type: StoreType,
        name: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<TrustStore, PolicyError> {
        if !valid_store_name(name) {
            return Err(PolicyError::InvalidStoreName {
                name: name.to_owned(),
            });
        }
        let mut certificates_der = Vec::new();
        for (file, bytes) in files {
            let unreadable = |reason: String| PolicyError::UnreadableCertificate {
                store_type,
                name: name.to_owned(),
                file: file.clone(),
                reason,
            };
            let certs = read_certificates(&bytes).map_err(unreadable)?;
            for (cert, der) in certs {
                let subject = cert.tbs_certificate().subject().to_string();
                match store_type {
                    StoreType::Ca | StoreType::SigningAuthority => {
                        if !is_ca(&cert) && !is_self_signed(&cert) {
                            return Err(PolicyError::NotCaOrSelfSigned {
                                store_type,
                                name: name.to_owned(),
                                file,
                                subject,
                            });
                        }
                    }
                    StoreType::Tsa => {
                        if let Err(reason) = check_root(&cert) {
                            return Err(PolicyError::TsaNotRoot {
                                name: name.to_owned(),
                                file,
                                subject,
                                reason,
                            });
                        }
                    }
                }
                certificates_der.push(der);
            }
        }
        if certificates_der.is_empty() {
            return Err(PolicyError::EmptyStore {
                store_type,
                name: name.to_owned(),
            });
        }
        Ok(TrustStore {
            store_type,
            name: name.to_owned(),
            certificates_der,
        })
    }

    /// The `type:name` a policy uses for this store.
    pub fn reference(&self) -> TrustStoreRef {
        TrustStoreRef {
            store_type: self.store_type,
            name: self.name.clone(),
        }
    }
}

/// Parses a PEM or DER certificate file into certificates with their DER bytes.
fn read_certificates(bytes: &[u8]) -> Result<Vec<(Certificate, Vec<u8>)>, String> {
    // Like Go's `pem.Decode`, a PEM block anywhere makes the file PEM.
    let is_pem = bytes
        .windows(PEM_BEGIN.len())
        .any(|w| w == PEM_BEGIN.as_bytes());
    let der_blobs: Vec<Vec<u8>> = if is_pem {
        pem_blocks(bytes)?
    } else {
        split_der(bytes)?
    };
    if der_blobs.is_empty() {
        return Err("the file holds no certificate".to_owned());
    }
    der_blobs
        .into_iter()
        .map(|der| {
            Certificate::from_der(&der)
                .map(|cert| (cert, der))
                .map_err(|e| format!("malformed certificate: {e}"))
        })
        .collect()
}

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";

/// Every PEM block of the file, which must all be `CERTIFICATE`s; text between blocks
/// is ignored as Go's `pem.Decode` does.
fn pem_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "PEM file is not UTF-8".to_owned())?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(begin) = rest.find(PEM_BEGIN) {
        let block_start = &rest[begin..];
        let end = block_start
            .find(PEM_END)
            .ok_or_else(|| "a PEM block has no END line".to_owned())?;
        let after_end = &block_start[end + PEM_END.len()..];
        let close = after_end
            .find("-----")
            .ok_or_else(|| "a PEM END line is not terminated".to_owned())?;
        let block_len = end + PEM_END.len() + close + "-----".len();
        let block = &block_start[..block_len];
        let (label, der) = der::pem::decode_vec(block.as_bytes())
            .map_err(|e| format!("invalid PEM block: {e}"))?;
        if label != "CERTIFICATE" {
            return Err(format!("PEM block {label:?} is not a CERTIFICATE"));
        }
        out.push(der);
        rest = &block_start[block_len..];
    }
    Ok(out)
}

/// Splits concatenated DER certificates.
fn split_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut reader = SliceReader::new(bytes).map_err(|e| format!("malformed certificate: {e}"))?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        let tlv = reader
            .tlv_bytes()
            .map_err(|e| format!("malformed certificate: {e}"))?;
        out.push(tlv.to_vec());
    }
    Ok(out)
}

/// Go's `IsCA`: basicConstraints present with cA=true.
fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

fn self_issued(cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match (tbs.subject().to_der(), tbs.issuer().to_der()) {
        (Ok(s), Ok(i)) => s == i,
        _ => false,
    }
}

/// notation-core-go `isSelfSigned`: subject == issuer and the certificate's own key
/// verifies its signature.
fn is_self_signed(cert: &Certificate) -> bool {
    self_issued(cert) && self_signature_verifies(cert)
}

/// notation-go's TSA root check: self-issued, then Go's `CheckSignatureFrom(cert)`
/// with the certificate as its own parent (a v3 parent needs basicConstraints
/// cA=true; a keyUsage, if present, needs keyCertSign), then the signature.
fn check_root(cert: &Certificate) -> Result<(), &'static str> {
    if !self_issued(cert) {
        return Err("issuer and subject are not the same");
    }
    let tbs = cert.tbs_certificate();
    let bc = tbs.get_extension::<BasicConstraints>().ok().flatten();
    let v3 = tbs.version() == x509_cert::certificate::Version::V3;
    match bc {
        Some((_, bc)) if !bc.ca => return Err(
            "parent certificate cannot sign this kind of certificate (basicConstraints cA=false)",
        ),
        None if v3 => {
            return Err(
                "parent certificate cannot sign this kind of certificate (no basicConstraints)",
            )
        }
        _ => {}
    }
    if let Ok(Some((_, ku))) = tbs.get_extension::<KeyUsage>() {
        if !ku.key_cert_sign() {
            return Err("parent certificate cannot sign this kind of certificate (keyUsage lacks keyCertSign)");
        }
    }
    if !self_signature_verifies(cert) {
        return Err("its own key does not verify its signature");
    }
    Ok(())
}

fn self_signature_verifies(cert: &Certificate) -> bool {
    self_signature::verify(cert).unwrap_or(false)
}

/// Just enough signature verification to tell a self-signed certificate; the `pki`
/// module owns real chain validation (this will be unified with it).
mod self_signature {
    use const_oid::db::rfc5912;
    use const_oid::ObjectIdentifier;
    use der::Encode;
    use ecdsa::signature::hazmat::PrehashVerifier;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use sha2::{Digest, Sha256, Sha384, Sha512};
    use x509_cert::Certificate;

    #[derive(Clone, Copy)]
    enum Hash {
        Sha256,
        Sha384,
        Sha512,
    }

    impl Hash {
        fn digest(self, msg: &[u8]) -> Vec<u8> {
            match self {
                Hash::Sha256 => Sha256::digest(msg).to_vec(),
                Hash::Sha384 => Sha384::digest(msg).to_vec(),
                Hash::Sha512 => Sha512::digest(msg).to_vec(),
            }
        }
    }

    /// `Some(true)` if the signature verifies under the certificate's own key,
    /// `Some(false)`/`None` otherwise (unsupported algorithms included).
    pub(super) fn verify(cert: &Certificate) -> Option<bool> {
        let alg = cert.signature_algorithm().oid;
        let tbs = cert.tbs_certificate().to_der().ok()?;
        let sig = cert.signature().as_bytes()?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .ok()?;
        let rsa_hash = |oid: ObjectIdentifier| match oid {
            rfc5912::SHA_256_WITH_RSA_ENCRYPTION => Some(Hash::Sha256),
            rfc5912::SHA_384_WITH_RSA_ENCRYPTION => Some(Hash::Sha384),
            rfc5912::SHA_512_WITH_RSA_ENCRYPTION => Some(Hash::Sha512),
            _ => None,
        };
        let ec_hash = |oid: ObjectIdentifier| match oid {
            rfc5912::ECDSA_WITH_SHA_256 => Some(Hash::Sha256),
            rfc5912::ECDSA_WITH_SHA_384 => Some(Hash::Sha384),
            rfc5912::ECDSA_WITH_SHA_512 => Some(Hash::Sha512),
            _ => None,
        };
        if let Some(hash) = rsa_hash(alg) {
            let key = rsa::PublicKey::from_public_key_der(&spki).ok()?;
            let sig = rsa::pkcs1v15::Signature::try_from(sig).ok()?;
            let ok = match hash {
                Hash::Sha256 => rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key).verify(&tbs, &sig),
                Hash::Sha384 => rsa::pkcs1v15::VerifyingKey::<Sha384>::new(key).verify(&tbs, &sig),
                Hash::Sha512 => rsa::pkcs1v15::VerifyingKey::<Sha512>::new(key).verify(&tbs, &sig),
            };
            return Some(ok.is_ok());
        }
        let hash = ec_hash(alg)?;
        let prehash = hash.digest(&tbs);
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            let sig = p256::ecdsa::Signature::from_der(sig).ok()?;
            return Some(key.verify_prehash(&prehash, &sig).is_ok());
        }
        if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            let sig = p384::ecdsa::Signature::from_der(sig).ok()?;
            return Some(key.verify_prehash(&prehash, &sig).is_ok());
        }
        if let Ok(key) = p521::ecdsa::VerifyingKey::from_public_key_der(&spki) {
            let sig = p521::ecdsa::Signature::from_der(sig).ok()?;
            return Some(key.verify_prehash(&prehash, &sig).is_ok());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_pki::TestPki;

    fn store(
        store_type: StoreType,
        files: Vec<(&str, Vec<u8>)>,
    ) -> Result<TrustStore, PolicyError> {
        TrustStore::from_files(
            store_type,
            "acme",
            files.into_iter().map(|(n, b)| (n.to_owned(), b)).collect(),
        )
    }

    const SUBJ: &str = "/C=US/ST=WA/O=Acme";

    #[test]
    fn ca_certificate_pem_and_der_accepted() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=Root"));
        let s = store(
            StoreType::Ca,
            vec![("root.crt", ca.pem.clone()), ("root.der", ca.der.clone())],
        )
        .unwrap();
        assert_eq!(s.certificates_der, [ca.der.clone(), ca.der]);
        assert_eq!(s.reference().to_string(), "ca:acme");
    }

    #[test]
    fn self_signed_leaf_accepted_in_ca_and_signing_authority() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf("leaf", &format!("{SUBJ}/CN=signer"));
        for t in [StoreType::Ca, StoreType::SigningAuthority] {
            assert_eq!(
                store(t, vec![("l.pem", leaf.pem.clone())])
                    .unwrap()
                    .certificates_der,
                std::slice::from_ref(&leaf.der)
            );
        }
        let ec = pki.self_signed(
            "ec",
            &format!("{SUBJ}/CN=ec"),
            "ec",
            &["keyUsage=critical,digitalSignature"],
        );
        assert_eq!(
            store(StoreType::Ca, vec![("ec.pem", ec.pem)])
                .unwrap()
                .certificates_der
                .len(),
            1
        );
    }

    #[test]
    fn issued_leaf_rejected() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=Root"));
        let leaf = pki.leaf_of("leaf", &format!("{SUBJ}/CN=signer"), &ca);
        let err = store(
            StoreType::Ca,
            vec![("root.pem", ca.pem), ("leaf.pem", leaf.pem)],
        )
        .unwrap_err();
        assert!(
            matches!(&err, PolicyError::NotCaOrSelfSigned { file, subject, store_type: StoreType::Ca, .. }
                if file == "leaf.pem" && subject.contains("CN=signer")),
            "{err:?}"
        );
    }

    /// CASES.md surprise 1: subject == issuer is not "self-signed".
    #[test]
    fn self_issued_but_not_self_signed_leaf_rejected() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=Root"));
        let twin = pki.leaf_of("twin", &format!("{SUBJ}/CN=Root"), &ca);
        let err = store(StoreType::SigningAuthority, vec![("twin.pem", twin.pem)]).unwrap_err();
        assert!(
            matches!(err, PolicyError::NotCaOrSelfSigned { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn pem_with_several_blocks_and_text_between() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=Root"));
        let leaf = pki.self_signed_leaf("leaf", &format!("{SUBJ}/CN=signer"));
        let mut bundle = b"# bundle\n".to_vec();
        bundle.extend(&ca.pem);
        bundle.extend(b"some comment\n");
        bundle.extend(&leaf.pem);
        let s = store(StoreType::Ca, vec![("bundle.pem", bundle)]).unwrap();
        assert_eq!(s.certificates_der, [ca.der, leaf.der]);
    }

    #[test]
    fn concatenated_der() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=Root"));
        let leaf = pki.self_signed_leaf("leaf", &format!("{SUBJ}/CN=signer"));
        let s = store(
            StoreType::Ca,
            vec![("both.der", [ca.der.clone(), leaf.der.clone()].concat())],
        )
        .unwrap();
        assert_eq!(s.certificates_der, [ca.der, leaf.der]);
    }

    #[test]
    fn unreadable_files_rejected() {
        for (file, bytes) in [
            ("empty.crt", Vec::new()),
            ("junk", b"invalid\n".to_vec()),
            (
                "key.pem",
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            ),
        ] {
            let err = store(StoreType::Ca, vec![(file, bytes)]).unwrap_err();
            assert!(
                matches!(&err, PolicyError::UnreadableCertificate { file: f, .. } if f == file),
                "{file}: {err:?}"
            );
        }
    }

    #[test]
    fn truncated_der_rejected() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=Root"));
        let mut der = ca.der.clone();
        der.extend(&ca.der[..10]);
        assert!(matches!(
            store(StoreType::Ca, vec![("x.der", der)]),
            Err(PolicyError::UnreadableCertificate { .. })
        ));
    }

    #[test]
    fn empty_store_rejected() {
        let err = store(StoreType::Tsa, vec![]).unwrap_err();
        assert!(
            matches!(&err, PolicyError::EmptyStore { store_type: StoreType::Tsa, name } if name == "acme"),
            "{err:?}"
        );
    }

    #[test]
    fn store_name_checked() {
        for name in ["", "a/b", "..", "a b", "ü"] {
            let err = TrustStore::from_files(StoreType::Ca, name, vec![]).unwrap_err();
            assert!(
                matches!(&err, PolicyError::InvalidStoreName { name: n } if n == name),
                "{err:?}"
            );
        }
    }

    #[test]
    fn tsa_root_accepted() {
        let pki = TestPki::new();
        let ca = pki.root_ca("ca", &format!("{SUBJ}/CN=TSA Root"));
        assert_eq!(
            store(StoreType::Tsa, vec![("r.cer", ca.der.clone())])
                .unwrap()
                .certificates_der,
            [ca.der]
        );
    }

    #[test]
    fn tsa_self_signed_leaf_rejected() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf("leaf", &format!("{SUBJ}/CN=signer"));
        let err = store(StoreType::Tsa, vec![("leaf.pem", leaf.pem)]).unwrap_err();
        assert!(
            matches!(&err, PolicyError::TsaNotRoot { reason, .. }
                if *reason == "parent certificate cannot sign this kind of certificate (basicConstraints cA=false)"),
            "{err:?}"
        );
    }

    #[test]
    fn tsa_intermediate_rejected() {
        let pki = TestPki::new();
        let root = pki.root_ca("root", &format!("{SUBJ}/CN=Root"));
        let mid = pki.issued(
            "mid",
            &format!("{SUBJ}/CN=Intermediate"),
            &root,
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign",
        );
        // A CA is enough for a `ca` store ...
        assert!(store(StoreType::Ca, vec![("mid.pem", mid.pem.clone())]).is_ok());
        // ... but a `tsa` store needs a root.
        let err = store(StoreType::Tsa, vec![("mid.pem", mid.pem)]).unwrap_err();
        assert!(
            matches!(&err, PolicyError::TsaNotRoot { reason, .. } if *reason == "issuer and subject are not the same"),
            "{err:?}"
        );
    }

    #[test]
    fn tsa_self_issued_not_self_signed_rejected() {
        let pki = TestPki::new();
        let root = pki.root_ca("root", &format!("{SUBJ}/CN=Root"));
        let twin = pki.issued(
            "twin",
            &format!("{SUBJ}/CN=Root"),
            &root,
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign",
        );
        let err = store(StoreType::Tsa, vec![("twin.pem", twin.pem)]).unwrap_err();
        assert!(
            matches!(&err, PolicyError::TsaNotRoot { reason, .. } if *reason == "its own key does not verify its signature"),
            "{err:?}"
        );
    }
}
