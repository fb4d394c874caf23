//! Named trust stores (NOTARY.md §5 "Store"), built from file contents the caller has
//! read: no I/O here. [`crate::policy_dir`] does the directory walking. Certificate
//! parsing and the per-certificate store rules are [`crate::pki`]'s.

use crate::pki::{self, Certificate, PkiError};

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
    /// - each file is PEM (one or more `CERTIFICATE` blocks, and no other kind of
    ///   block) or DER (one or more concatenated certificates), whatever its
    ///   extension, and holds at least one;
    /// - each certificate passes [`pki::check_trust_store_certificate`]: in `ca` and
    ///   `signingAuthority` stores a CA (basicConstraints cA=true) or self-signed
    ///   (subject == issuer and its own key verifies its signature); in `tsa` stores a
    ///   root: self-issued, allowed to sign certificates (as Go's
    ///   `CheckSignatureFrom` requires) and self-signed. Validity dates are not
    ///   checked here;
    /// - a store without certificates is an error.
    ///
    /// A self-signature made with RSASSA-PSS does not count as self-signed here (such
    /// a certificate is admitted only as a CA in a `ca`/`signingAuthority` store):
    /// the store's own checker never accepted one, and this keeps that stricter rule
    /// although `pki` verifies PSS (see [`self_signed_with_pss`]).
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
            for cert in certs {
                let checked = match self_signed_with_pss(&cert) {
                    false => pki::check_trust_store_certificate(&cert, store_type),
                    // As if its own key did not verify its signature.
                    true => check_without_self_signature(&cert, store_type),
                };
                if let Err(error) = checked {
                    return Err(match store_type {
                        StoreType::Ca | StoreType::SigningAuthority => {
                            PolicyError::NotCaOrSelfSigned {
                                store_type,
                                name: name.to_owned(),
                                file,
                                subject: cert.subject_string(),
                            }
                        }
                        StoreType::Tsa => PolicyError::TsaNotRoot {
                            name: name.to_owned(),
                            file,
                            subject: cert.subject_string(),
                            reason: tsa_root_reason(&error),
                        },
                    });
                }
                certificates_der.push(cert.der().to_vec());
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

/// Parses a certificate file with [`Certificate::parse_pem_or_der_bundle`], keeping
/// two rules stricter than it: a PEM file must be UTF-8 and hold only `CERTIFICATE`
/// blocks (notation-core-go parses every block as a certificate, so a key block
/// fails there; `pki` skips it).
fn read_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, String> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    if find(bytes, BEGIN).is_some() {
        if std::str::from_utf8(bytes).is_err() {
            return Err("PEM file is not UTF-8".to_owned());
        }
        let mut rest = bytes;
        while let Some(begin) = find(rest, BEGIN) {
            rest = &rest[begin + BEGIN.len()..];
            let label = &rest[..find(rest, b"-----").unwrap_or(rest.len())];
            if label != b"CERTIFICATE" {
                return Err(format!(
                    "PEM block {:?} is not a CERTIFICATE",
                    String::from_utf8_lossy(label)
                ));
            }
        }
    }
    Certificate::parse_pem_or_der_bundle(bytes).map_err(|error| match error {
        PkiError::NoCertificates => "the file holds no certificate".to_owned(),
        error => error.to_string(),
    })
}

/// The certificate is self-issued and signed with RSASSA-PSS: the case where the
/// store's former checker (PKCS #1 v1.5 and ECDSA only) and `pki` differ.
fn self_signed_with_pss(cert: &Certificate) -> bool {
    const ID_RSASSA_PSS: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_RSASSA_PSS;
    let tbs = cert.x509().tbs_certificate();
    cert.x509().signature_algorithm().oid == ID_RSASSA_PSS && tbs.subject() == tbs.issuer()
}

/// The store rule for a certificate whose self-signature does not count.
fn check_without_self_signature(cert: &Certificate, store_type: StoreType) -> Result<(), PkiError> {
    let subject = cert.subject_string();
    match store_type {
        StoreType::Ca | StoreType::SigningAuthority => {
            // A CA is admitted whatever its signature; pki checks exactly that once
            // the self-signature is out of the picture.
            let is_ca = matches!(
                cert.x509()
                    .tbs_certificate()
                    .get_extension::<x509_cert::ext::pkix::BasicConstraints>(),
                Ok(Some((_, bc))) if bc.ca
            );
            if is_ca {
                Ok(())
            } else {
                Err(PkiError::StoreCertNotCaOrSelfSigned { subject })
            }
        }
        StoreType::Tsa => Err(PkiError::RootNotSelfSigned {
            subject,
            source: Box::new(PkiError::BadSignature),
        }),
    }
}

/// The reason a `tsa` store certificate is not a root, in notation-go's words.
fn tsa_root_reason(error: &PkiError) -> String {
    match error {
        PkiError::TsaStoreCertNotRoot { source, .. } => tsa_root_reason(source),
        PkiError::RootNotSelfIssued { .. } => "issuer and subject are not the same".to_owned(),
        PkiError::RootNotSelfSigned { source, .. } => match source.as_ref() {
            PkiError::IssuerNotCa { constraint, .. } => {
                format!("parent certificate cannot sign this kind of certificate ({constraint})")
            }
            PkiError::MalformedExtension { extension, .. } => {
                format!("malformed {extension} extension")
            }
            _ => "its own key does not verify its signature".to_owned(),
        },
        other => other.to_string(),
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

    /// The one rule where the store is stricter than pki: an RSASSA-PSS
    /// self-signature does not make a certificate self-signed.
    #[test]
    fn pss_self_signature_does_not_count() {
        let pki = TestPki::new();
        let pss = [
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ];
        let leaf = pki.self_signed_with(
            "pss-leaf",
            &format!("{SUBJ}/CN=signer"),
            "rsa:2048",
            &[
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature",
            ],
            &pss,
        );
        let root = pki.self_signed_with(
            "pss-root",
            &format!("{SUBJ}/CN=Root"),
            "rsa:2048",
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,keyCertSign",
            ],
            &pss,
        );
        // pki itself verifies both self-signatures.
        for made in [&leaf, &root] {
            let cert = Certificate::from_der(&made.der).unwrap();
            assert!(cert.is_self_signed());
        }
        for t in [StoreType::Ca, StoreType::SigningAuthority] {
            let err = store(t, vec![("leaf.pem", leaf.pem.clone())]).unwrap_err();
            assert!(
                matches!(err, PolicyError::NotCaOrSelfSigned { .. }),
                "{err:?}"
            );
            // A CA is admitted whatever signs it.
            assert!(store(t, vec![("root.pem", root.pem.clone())]).is_ok());
        }
        let err = store(StoreType::Tsa, vec![("root.pem", root.pem)]).unwrap_err();
        assert!(
            matches!(&err, PolicyError::TsaNotRoot { reason, .. } if *reason == "its own key does not verify its signature"),
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
