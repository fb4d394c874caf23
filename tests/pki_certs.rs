//! The certificate and signature rules of NOTARY.md §3–§5 against openssl-made PKI
//! (testkit/src/pki.rs) and the notation vectors (../shared/vectors/notation).
//! Each rule-breaking certificate breaks exactly one rule and the test asserts the
//! exact error.

use pullgate_testkit as support;

use std::time::Duration;

use pullgate::pki::timestamp::{verify_signer_signature, TimestampError};
use pullgate::pki::{
    check_trust_store_certificate, check_valid_at, signature_algorithm_for_key,
    validate_signing_chain, validate_tsa_chain, verify_signature, verify_signed_by,
    verify_with_spki, Certificate, PkiError, PssSaltPolicy, SignatureAlgorithm, StoreType,
};
use support::pki::{days_from_now, CertSpec, KeySpec, Pki};

const ROOT: &str = "/C=US/ST=WA/O=Notary/CN=Rule Root";
const INTER: &str = "/C=US/ST=WA/O=Notary/CN=Rule Intermediate";
const LEAF: &str = "/C=US/ST=WA/L=Seattle/O=Notary/CN=Rule Leaf";

/// root → intermediate made from `inter` → leaf.
fn three_chain(pki: &Pki, inter: CertSpec) -> Vec<Certificate> {
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let inter = pki.issue(&inter, &root);
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &inter);
    vec![leaf.cert(), inter.cert(), root.cert()]
}

/// The leaf is not signed by the next certificate because that one may not sign
/// certificates.
#[track_caller]
fn assert_issuer_not_ca(result: Result<(), PkiError>) {
    match result {
        Err(PkiError::NotSignedByNext {
            index: 0, source, ..
        }) => {
            assert!(matches!(*source, PkiError::IssuerNotCa { .. }))
        }
        other => panic!("{other:?}"),
    }
}

/// root → leaf where the leaf is made from `leaf`.
fn two_chain(pki: &Pki, leaf: CertSpec) -> Vec<Certificate> {
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let leaf = pki.issue(&leaf, &root);
    vec![leaf.cert(), root.cert()]
}

// ---------------------------------------------------------------- signatures (§3)

#[test]
fn every_key_signs_with_its_algorithm_and_verifies() {
    let pki = Pki::new();
    for key in KeySpec::ALL {
        let leaf = pki.self_signed(&CertSpec::leaf(LEAF).key(key));
        let cert = leaf.cert();
        let alg = signature_algorithm_for_key(&cert).expect("supported key");
        assert_eq!(alg, key.algorithm(), "{key:?}");
        let message = format!("payload for {key:?}").into_bytes();
        let sig = pki.sign(&leaf.key_path, alg, &message);
        for salt in [PssSaltPolicy::HashLength, PssSaltPolicy::Any] {
            verify_signature(&cert, alg, salt, &message, &sig)
                .unwrap_or_else(|e| panic!("{key:?} {salt:?}: {e}"));
        }
        // Tampered message.
        let mut other = message.clone();
        other[0] ^= 1;
        assert!(
            matches!(
                verify_signature(&cert, alg, PssSaltPolicy::HashLength, &other, &sig),
                Err(PkiError::BadSignature)
            ),
            "{key:?} tampered message"
        );
        // Tampered signature.
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(
            matches!(
                verify_signature(&cert, alg, PssSaltPolicy::Any, &message, &bad),
                Err(PkiError::BadSignature)
            ),
            "{key:?} tampered signature"
        );
        // Truncated / empty signature.
        assert!(matches!(
            verify_signature(
                &cert,
                alg,
                PssSaltPolicy::Any,
                &message,
                &sig[..sig.len() - 1]
            ),
            Err(PkiError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(&cert, alg, PssSaltPolicy::Any, &message, &[]),
            Err(PkiError::BadSignature)
        ));
    }
}

#[test]
fn header_algorithm_must_match_the_key() {
    let pki = Pki::new();
    for key in KeySpec::ALL {
        let leaf = pki.self_signed(&CertSpec::leaf(LEAF).key(key));
        let cert = leaf.cert();
        let sig = pki.sign(&leaf.key_path, key.algorithm(), b"m");
        for header in SignatureAlgorithm::ALL {
            if header == key.algorithm() {
                continue;
            }
            match verify_signature(&cert, header, PssSaltPolicy::Any, b"m", &sig) {
                Err(PkiError::AlgorithmMismatch { header: h, key: k }) => {
                    assert_eq!((h, k), (header, key.algorithm()));
                }
                other => panic!("{key:?} with header {header}: {other:?}"),
            }
        }
    }
}

#[test]
fn pss_salt_other_than_hash_length_passes_jws_and_fails_cose() {
    let pki = Pki::new();
    for key in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        let leaf = pki.self_signed(&CertSpec::leaf(LEAF).key(key));
        let cert = leaf.cert();
        let alg = key.algorithm();
        for salt in ["max", "0", "20"] {
            let sig = pki.sign_with_salt(&leaf.key_path, alg, b"msg", salt);
            verify_signature(&cert, alg, PssSaltPolicy::Any, b"msg", &sig)
                .unwrap_or_else(|e| panic!("{key:?} salt {salt} under JWS: {e}"));
            assert!(
                matches!(
                    verify_signature(&cert, alg, PssSaltPolicy::HashLength, b"msg", &sig),
                    Err(PkiError::BadSignature)
                ),
                "{key:?} salt {salt} under COSE"
            );
        }
    }
}

#[test]
fn unsupported_leaf_keys_are_rejected() {
    let pki = Pki::new();
    for bits in [1024, 2560] {
        let leaf = pki.self_signed(&CertSpec::leaf(LEAF).odd_rsa(bits));
        match signature_algorithm_for_key(&leaf.cert()) {
            Err(PkiError::UnsupportedKey { key, .. }) => assert_eq!(key, format!("RSA {bits}")),
            other => panic!("RSA {bits}: {other:?}"),
        }
        // The chain rule says the same (NOTARY.md §4 leaf key).
        assert!(matches!(
            validate_signing_chain(&[leaf.cert()]),
            Err(PkiError::UnsupportedKey { .. })
        ));
    }
}

// ------------------------------------------------------- certificate signatures

#[test]
fn certificate_signatures_of_every_kind_verify() {
    let pki = Pki::new();
    let cases: Vec<(KeySpec, &str, bool)> = vec![
        (KeySpec::Rsa2048, "sha256", false),
        (KeySpec::Rsa3072, "sha384", false),
        (KeySpec::Rsa4096, "sha512", false),
        (KeySpec::Rsa2048, "sha256", true),
        (KeySpec::Rsa3072, "sha384", true),
        (KeySpec::Rsa2048, "sha512", true),
        (KeySpec::P256, "sha256", false),
        (KeySpec::P384, "sha384", false),
        (KeySpec::P521, "sha512", false),
        (KeySpec::P256, "sha512", false),
    ];
    for (key, digest, pss) in cases {
        let mut root_spec = CertSpec::ca(ROOT).key(key).digest(digest);
        let mut leaf_spec = CertSpec::leaf(LEAF).digest(digest);
        if pss {
            root_spec = root_spec.pss();
            leaf_spec = leaf_spec.pss();
        }
        let root = pki.self_signed(&root_spec);
        let leaf = pki.issue(&leaf_spec, &root);
        verify_signed_by(&leaf.cert(), &root.cert())
            .unwrap_or_else(|e| panic!("{key:?} {digest} pss={pss}: {e}"));
        validate_signing_chain(&[leaf.cert(), root.cert()])
            .unwrap_or_else(|e| panic!("{key:?} {digest} pss={pss} chain: {e}"));
        assert!(root.cert().is_self_signed());
        // Not signed by an unrelated key.
        let other = pki.self_signed(&CertSpec::ca(ROOT).key(key).slot(7));
        assert!(matches!(
            verify_signed_by(&leaf.cert(), &other.cert()),
            Err(PkiError::BadSignature)
        ));
    }
}

#[test]
fn sha1_signed_certificates_are_rejected() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let leaf = pki.issue(&CertSpec::leaf(LEAF).digest("sha1"), &root);
    match verify_signed_by(&leaf.cert(), &root.cert()) {
        Err(PkiError::InsecureSignatureAlgorithm { name, .. }) => {
            assert_eq!(name, "sha1WithRSAEncryption")
        }
        other => panic!("{other:?}"),
    }
    match validate_signing_chain(&[leaf.cert(), root.cert()]) {
        Err(PkiError::NotSignedByNext {
            index: 0, source, ..
        }) => assert!(matches!(
            *source,
            PkiError::InsecureSignatureAlgorithm { .. }
        )),
        other => panic!("{other:?}"),
    }
}

#[test]
fn cms_signer_signatures_verify_with_the_token_check() {
    let pki = Pki::new();
    // openssl dgst without -sigopt makes PKCS#1 v1.5 (RSA) and DER ECDSA signatures.
    for (key, digest, oid) in [
        (KeySpec::Rsa2048, "sha256", "1.2.840.113549.1.1.1"),
        (KeySpec::Rsa3072, "sha384", "1.2.840.113549.1.1.1"),
        (KeySpec::P256, "sha256", "1.2.840.10045.2.1"),
        (KeySpec::P384, "sha512", "1.2.840.10045.2.1"),
    ] {
        let leaf = pki.self_signed(&CertSpec::leaf(LEAF).key(key));
        let msg_path = pki.dir().join(format!("cms-{key:?}"));
        std::fs::write(&msg_path, b"signed attributes").expect("write");
        let out = std::process::Command::new("openssl")
            .args(["dgst", &format!("-{digest}"), "-sign"])
            .arg(&leaf.key_path)
            .arg(&msg_path)
            .output()
            .expect("openssl dgst");
        assert!(out.status.success());
        let sig = out.stdout;
        let alg = |oid: &str| spki::AlgorithmIdentifierOwned {
            oid: oid.parse().expect("oid"),
            parameters: None,
        };
        let digest_oid = match digest {
            "sha256" => "2.16.840.1.101.3.4.2.1",
            "sha384" => "2.16.840.1.101.3.4.2.2",
            _ => "2.16.840.1.101.3.4.2.3",
        };
        let cert = leaf.cert();
        let spki = cert.x509().tbs_certificate().subject_public_key_info();
        // The check a timestamp token's SignerInfo goes through: the bare key
        // algorithm takes the digest algorithm's hash.
        let signer = |message: &[u8]| {
            verify_signer_signature(spki, &alg(oid), &alg(digest_oid), message, &sig)
        };
        signer(b"signed attributes").unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert!(matches!(
            signer(b"other attributes"),
            Err(TimestampError::BadSignature)
        ));
        // For X.509 signatures the bare key algorithm is not a signature algorithm.
        assert!(matches!(
            verify_with_spki(&cert, &alg(oid), b"signed attributes", &sig),
            Err(PkiError::UnsupportedSignatureAlgorithm { .. })
        ));
    }
}

// ------------------------------------------------------------ chain structure (§4)

#[test]
fn valid_chains_of_one_two_and_three_certificates() {
    let pki = Pki::new();
    let single = pki.self_signed(&CertSpec::leaf(LEAF));
    validate_signing_chain(&[single.cert()]).expect("self-signed leaf");
    validate_signing_chain(&two_chain(&pki, CertSpec::leaf(LEAF))).expect("2 certs");
    for key in KeySpec::ALL {
        validate_signing_chain(&pki.chain(key).certs())
            .unwrap_or_else(|e| panic!("3 certs {key:?}: {e}"));
    }
}

#[test]
fn single_certificate_must_be_self_signed() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &root);
    match validate_signing_chain(&[leaf.cert()]) {
        Err(PkiError::RootNotSelfSigned { source, .. }) => {
            assert!(matches!(*source, PkiError::BadSignature))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_order_is_rejected() {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::P256).certs();
    let reversed: Vec<_> = chain.iter().rev().cloned().collect();
    assert!(matches!(
        validate_signing_chain(&reversed),
        Err(PkiError::UnexpectedSelfSigned { index: 0, .. })
    ));
    let swapped = vec![chain[1].clone(), chain[0].clone(), chain[2].clone()];
    assert!(matches!(
        validate_signing_chain(&swapped),
        Err(PkiError::NotSignedByNext { index: 0, .. })
    ));
}

#[test]
fn missing_root_is_rejected() {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::Rsa2048).certs();
    match validate_signing_chain(&chain[..2]) {
        Err(PkiError::RootNotSelfIssued { subject, .. }) => {
            assert_eq!(subject, "CN=Test Intermediate,O=Notary,ST=WA,C=US")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_intermediate_is_rejected() {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::Rsa2048).certs();
    assert!(matches!(
        validate_signing_chain(&[chain[0].clone(), chain[2].clone()]),
        Err(PkiError::NotSignedByNext { index: 0, .. })
    ));
}

#[test]
fn root_that_is_self_issued_but_not_self_signed_is_rejected() {
    let pki = Pki::new();
    // A "root" with issuer == subject, signed by another key with the same name.
    let real = pki.self_signed(&CertSpec::ca(ROOT));
    let fake_root = pki.issue(&CertSpec::ca(ROOT).slot(5), &real);
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &fake_root);
    match validate_signing_chain(&[leaf.cert(), fake_root.cert()]) {
        Err(PkiError::RootNotSelfSigned { source, .. }) => {
            assert!(matches!(*source, PkiError::BadSignature))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extra_root_after_the_root_is_rejected() {
    let pki = Pki::new();
    let mut chain = pki.chain(KeySpec::P384).certs();
    chain.push(chain[2].clone());
    assert!(matches!(
        validate_signing_chain(&chain),
        Err(PkiError::UnexpectedSelfSigned { index: 2, .. })
    ));
}

#[test]
fn self_signed_leaf_before_a_root_is_rejected() {
    let pki = Pki::new();
    let leaf = pki.self_signed(&CertSpec::leaf(LEAF));
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    // The leaf is not a CA, so it is not a "self-signed root"; it is just not signed
    // by the next certificate.
    assert!(matches!(
        validate_signing_chain(&[leaf.cert(), root.cert()]),
        Err(PkiError::NotSignedByNext { index: 0, .. })
    ));
}

#[test]
fn non_ca_intermediate_cannot_sign() {
    let pki = Pki::new();
    let inter = CertSpec::ca(INTER)
        .slot(1)
        .basic_constraints(Some("critical,CA:FALSE"));
    assert_issuer_not_ca(validate_signing_chain(&three_chain(&pki, inter)));
}

#[test]
fn intermediate_without_basic_constraints_cannot_sign() {
    let pki = Pki::new();
    let inter = CertSpec::ca(INTER).slot(1).basic_constraints(None);
    assert_issuer_not_ca(validate_signing_chain(&three_chain(&pki, inter)));
}

#[test]
fn path_len_zero_intermediate_allows_a_leaf() {
    let pki = Pki::new();
    let root =
        pki.self_signed(&CertSpec::ca(ROOT).basic_constraints(Some("critical,CA:TRUE,pathlen:1")));
    let inter = pki.issue(
        &CertSpec::ca(INTER)
            .slot(1)
            .basic_constraints(Some("critical,CA:TRUE,pathlen:0")),
        &root,
    );
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &inter);
    validate_signing_chain(&[leaf.cert(), inter.cert(), root.cert()]).expect("pathlen ok");
}

#[test]
fn path_len_exceeded_is_rejected() {
    let pki = Pki::new();
    let root =
        pki.self_signed(&CertSpec::ca(ROOT).basic_constraints(Some("critical,CA:TRUE,pathlen:0")));
    let inter = pki.issue(&CertSpec::ca(INTER).slot(1), &root);
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &inter);
    match validate_signing_chain(&[leaf.cert(), inter.cert(), root.cert()]) {
        Err(PkiError::PathLenExceeded {
            index,
            path_len,
            below,
            ..
        }) => assert_eq!((index, path_len, below), (2, 0, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn issuer_name_mismatch_is_rejected() {
    // The leaf verifies under the intermediate's key, but names another issuer:
    // issue from a CA with a different name and the same key.
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let inter = pki.issue(&CertSpec::ca(INTER).slot(1), &root);
    let twin = pki.issue(&CertSpec::ca("/C=US/ST=WA/O=Notary/CN=Twin").slot(1), &root);
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &twin);
    assert!(matches!(
        validate_signing_chain(&[leaf.cert(), inter.cert(), root.cert()]),
        Err(PkiError::IssuerMismatch { index: 0, .. })
    ));
}

// ---------------------------------------------------------- code-signing leaf (§4)

#[test]
fn leaf_with_ca_true_is_rejected() {
    let pki = Pki::new();
    let chain = two_chain(
        &pki,
        CertSpec::leaf(LEAF).basic_constraints(Some("CA:TRUE")),
    );
    assert!(matches!(
        validate_signing_chain(&chain),
        Err(PkiError::LeafIsCa { .. })
    ));
}

#[test]
fn leaf_without_basic_constraints_is_fine() {
    let pki = Pki::new();
    validate_signing_chain(&two_chain(
        &pki,
        CertSpec::leaf(LEAF).basic_constraints(None),
    ))
    .expect("BC optional on the leaf");
}

#[test]
fn leaf_without_key_usage_is_rejected() {
    let pki = Pki::new();
    let chain = two_chain(&pki, CertSpec::leaf(LEAF).key_usage(None));
    assert!(matches!(
        validate_signing_chain(&chain),
        Err(PkiError::LeafKeyUsageMissing { .. })
    ));
}

#[test]
fn leaf_key_usage_not_critical_is_rejected() {
    let pki = Pki::new();
    let chain = two_chain(
        &pki,
        CertSpec::leaf(LEAF).key_usage(Some("digitalSignature")),
    );
    assert!(matches!(
        validate_signing_chain(&chain),
        Err(PkiError::LeafKeyUsageNotCritical { .. })
    ));
}

#[test]
fn leaf_key_usage_without_digital_signature_is_rejected() {
    let pki = Pki::new();
    let chain = two_chain(
        &pki,
        CertSpec::leaf(LEAF).key_usage(Some("critical,nonRepudiation")),
    );
    assert!(matches!(
        validate_signing_chain(&chain),
        Err(PkiError::LeafKeyUsageNoDigitalSignature { .. })
    ));
}

#[test]
fn leaf_content_commitment_is_allowed() {
    let pki = Pki::new();
    let chain = two_chain(
        &pki,
        CertSpec::leaf(LEAF).key_usage(Some("critical,digitalSignature,nonRepudiation")),
    );
    validate_signing_chain(&chain).expect("contentCommitment allowed");
}

#[test]
fn each_forbidden_leaf_key_usage_is_rejected() {
    let pki = Pki::new();
    for (bit, name) in [
        ("keyEncipherment", "keyEncipherment"),
        ("dataEncipherment", "dataEncipherment"),
        ("keyAgreement", "keyAgreement"),
        ("keyCertSign", "keyCertSign"),
        ("cRLSign", "cRLSign"),
        ("keyAgreement,encipherOnly", "keyAgreement"),
    ] {
        let chain = two_chain(
            &pki,
            CertSpec::leaf(LEAF).key_usage(Some(&format!("critical,digitalSignature,{bit}"))),
        );
        match validate_signing_chain(&chain) {
            Err(PkiError::LeafKeyUsageForbidden { usage, .. }) => assert_eq!(usage, name),
            other => panic!("{bit}: {other:?}"),
        }
    }
}

#[test]
fn each_forbidden_leaf_eku_is_rejected() {
    let pki = Pki::new();
    for (eku, name) in [
        ("serverAuth", "serverAuth"),
        ("clientAuth", "clientAuth"),
        ("emailProtection", "emailProtection"),
        ("timeStamping", "timeStamping"),
        ("OCSPSigning", "OCSPSigning"),
        ("anyExtendedKeyUsage", "anyExtendedKeyUsage"),
        ("codeSigning,serverAuth", "serverAuth"),
        ("critical,codeSigning,timeStamping", "timeStamping"),
    ] {
        let chain = two_chain(&pki, CertSpec::leaf(LEAF).eku(Some(eku)));
        match validate_signing_chain(&chain) {
            Err(PkiError::ForbiddenExtendedKeyUsage { eku: got, .. }) => assert_eq!(got, name),
            other => panic!("{eku}: {other:?}"),
        }
    }
}

#[test]
fn leaf_eku_absent_or_unknown_is_fine() {
    let pki = Pki::new();
    validate_signing_chain(&two_chain(&pki, CertSpec::leaf(LEAF).eku(None))).expect("no EKU");
    validate_signing_chain(&two_chain(
        &pki,
        CertSpec::leaf(LEAF).eku(Some("codeSigning,1.3.6.1.4.1.311.10.3.13")),
    ))
    .expect("unknown EKU");
}

// ------------------------------------------------------------------ CA rules (§4)

#[test]
fn ca_key_usage_missing_is_rejected() {
    let pki = Pki::new();
    let chain = three_chain(&pki, CertSpec::ca(INTER).slot(1).key_usage(None));
    assert!(matches!(
        validate_signing_chain(&chain),
        Err(PkiError::CaKeyUsageMissing { index: 1, .. })
    ));
}

#[test]
fn ca_key_usage_not_critical_is_rejected() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT).key_usage(Some("keyCertSign,cRLSign")));
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &root);
    assert!(matches!(
        validate_signing_chain(&[leaf.cert(), root.cert()]),
        Err(PkiError::CaKeyUsageNotCritical { index: 1, .. })
    ));
}

#[test]
fn ca_key_usage_without_cert_sign_cannot_sign() {
    let pki = Pki::new();
    let inter = CertSpec::ca(INTER)
        .slot(1)
        .key_usage(Some("critical,cRLSign"));
    assert_issuer_not_ca(validate_signing_chain(&three_chain(&pki, inter)));
}

#[test]
fn root_that_is_not_a_ca_is_rejected() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT).basic_constraints(Some("critical,CA:FALSE")));
    let leaf = pki.issue(&CertSpec::leaf(LEAF), &root);
    // The leaf check (signed by the next) fails first: the root may not sign.
    assert!(matches!(
        validate_signing_chain(&[leaf.cert(), root.cert()]),
        Err(PkiError::NotSignedByNext { index: 0, .. })
    ));
}

// ------------------------------------------------------------------- TSA (§4)

#[test]
fn tsa_chain_valid_and_single() {
    let pki = Pki::new();
    for key in [KeySpec::Rsa2048, KeySpec::P384] {
        let tsa = pki.tsa(key);
        validate_tsa_chain(&[tsa.leaf.cert(), tsa.root.cert()])
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
    }
    let single = pki.self_signed(&CertSpec::tsa_leaf("/CN=Self TSA"));
    validate_tsa_chain(&[single.cert()]).expect("self-signed TSA leaf");
    // A code-signing leaf is not a TSA leaf, and vice versa.
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let tsa_leaf = pki.issue(&CertSpec::tsa_leaf("/CN=TSA"), &root);
    assert!(matches!(
        validate_signing_chain(&[tsa_leaf.cert(), root.cert()]),
        Err(PkiError::ForbiddenExtendedKeyUsage { .. })
    ));
}

#[test]
fn tsa_eku_must_be_exactly_time_stamping() {
    let pki = Pki::new();
    for eku in [
        None,
        Some("critical,codeSigning"),
        Some("critical,timeStamping,codeSigning"),
    ] {
        let root = pki.self_signed(&CertSpec::ca(ROOT));
        let leaf = pki.issue(&CertSpec::tsa_leaf("/CN=TSA").eku(eku), &root);
        assert!(
            matches!(
                validate_tsa_chain(&[leaf.cert(), root.cert()]),
                Err(PkiError::TsaEkuNotTimeStamping { .. })
            ),
            "{eku:?}"
        );
    }
}

#[test]
fn tsa_eku_must_be_critical() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let leaf = pki.issue(
        &CertSpec::tsa_leaf("/CN=TSA").eku(Some("timeStamping")),
        &root,
    );
    assert!(matches!(
        validate_tsa_chain(&[leaf.cert(), root.cert()]),
        Err(PkiError::TsaEkuNotCritical { .. })
    ));
}

#[test]
fn tsa_key_usage_rules() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    // Criticality is not required for TSA certificates.
    let leaf = pki.issue(
        &CertSpec::tsa_leaf("/CN=TSA").key_usage(Some("digitalSignature")),
        &root,
    );
    validate_tsa_chain(&[leaf.cert(), root.cert()]).expect("non-critical KU ok for TSA");
    let leaf = pki.issue(&CertSpec::tsa_leaf("/CN=TSA").key_usage(None), &root);
    assert!(matches!(
        validate_tsa_chain(&[leaf.cert(), root.cert()]),
        Err(PkiError::LeafKeyUsageMissing { .. })
    ));
    let leaf = pki.issue(
        &CertSpec::tsa_leaf("/CN=TSA").key_usage(Some("critical,digitalSignature,keyEncipherment")),
        &root,
    );
    assert!(matches!(
        validate_tsa_chain(&[leaf.cert(), root.cert()]),
        Err(PkiError::LeafKeyUsageForbidden {
            usage: "keyEncipherment",
            ..
        })
    ));
    // A TSA CA with non-critical keyUsage is fine too.
    let root2 = pki.self_signed(&CertSpec::ca(ROOT).key_usage(Some("keyCertSign")));
    let leaf = pki.issue(&CertSpec::tsa_leaf("/CN=TSA"), &root2);
    validate_tsa_chain(&[leaf.cert(), root2.cert()]).expect("non-critical CA KU ok for TSA");
}

#[test]
fn tsa_chain_must_end_in_a_root() {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let inter = pki.issue(&CertSpec::ca(INTER).slot(1), &root);
    let leaf = pki.issue(&CertSpec::tsa_leaf("/CN=TSA"), &inter);
    assert!(matches!(
        validate_tsa_chain(&[leaf.cert(), inter.cert()]),
        Err(PkiError::RootNotSelfIssued { .. })
    ));
    validate_tsa_chain(&[leaf.cert(), inter.cert(), root.cert()]).expect("full chain");
}

#[test]
fn openssl_ts_tokens_can_be_made() {
    let pki = Pki::new();
    let tsa = pki.tsa(KeySpec::Rsa2048);
    let token = pki.timestamp_token(&tsa, b"signature bytes", "sha256");
    // A DER ContentInfo (SEQUENCE) of SignedData.
    assert_eq!(token.first(), Some(&0x30));
    assert!(token
        .windows(tsa.leaf.der.len())
        .any(|w| w == tsa.leaf.der.as_slice()));
    let response = pki.timestamp_response(&tsa, b"signature bytes", "sha384");
    assert_eq!(response.first(), Some(&0x30));
}

// ------------------------------------------------------------------ time

#[test]
fn validity_windows() {
    let pki = Pki::new();
    let expired =
        pki.self_signed(&CertSpec::leaf(LEAF).validity(days_from_now(-30), days_from_now(-1)));
    let future =
        pki.self_signed(&CertSpec::leaf(LEAF).validity(days_from_now(1), days_from_now(30)));
    let now = pullgate_testkit::time::now();
    match check_valid_at(&expired.cert(), now) {
        Err(PkiError::CertExpired { not_after, at, .. }) => {
            assert_eq!(at, now);
            assert_eq!(not_after, expired.cert().not_after());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        check_valid_at(&future.cert(), now),
        Err(PkiError::CertNotYetValid { .. })
    ));
    // The bounds are inclusive; the chain rules ignore time.
    let cert = expired.cert();
    check_valid_at(&cert, cert.not_after()).expect("notAfter inclusive");
    check_valid_at(&cert, cert.not_before()).expect("notBefore inclusive");
    assert!(check_valid_at(&cert, cert.not_after() + Duration::from_secs(1)).is_err());
    validate_signing_chain(&[cert]).expect("time ignored");
    // Far-future (GeneralizedTime) dates survive the round trip.
    let far =
        pki.self_signed(&CertSpec::leaf(LEAF).validity(days_from_now(-1), days_from_now(365 * 80)));
    assert!(far.cert().not_after() > days_from_now(365 * 79));
}

// ------------------------------------------------------------------ stores (§5)

#[test]
fn store_certificate_rules() {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::Rsa2048);
    let self_signed_leaf = pki.self_signed(&CertSpec::leaf(LEAF));
    for store in [StoreType::Ca, StoreType::SigningAuthority] {
        check_trust_store_certificate(&chain.root.cert(), store).expect("root");
        check_trust_store_certificate(&chain.intermediate.cert(), store).expect("intermediate CA");
        check_trust_store_certificate(&self_signed_leaf.cert(), store).expect("self-signed leaf");
        assert!(matches!(
            check_trust_store_certificate(&chain.leaf.cert(), store),
            Err(PkiError::StoreCertNotCaOrSelfSigned { .. })
        ));
    }
    check_trust_store_certificate(&chain.root.cert(), StoreType::Tsa).expect("root");
    match check_trust_store_certificate(&chain.intermediate.cert(), StoreType::Tsa) {
        Err(PkiError::TsaStoreCertNotRoot { source, .. }) => {
            assert!(matches!(*source, PkiError::RootNotSelfIssued { .. }))
        }
        other => panic!("{other:?}"),
    }
    match check_trust_store_certificate(&self_signed_leaf.cert(), StoreType::Tsa) {
        Err(PkiError::TsaStoreCertNotRoot { source, .. }) => match *source {
            PkiError::RootNotSelfSigned { source, .. } => {
                assert!(matches!(*source, PkiError::IssuerNotCa { .. }))
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn revocation_endpoints_are_detected() {
    let pki = Pki::new();
    let plain = pki.self_signed(&CertSpec::leaf(LEAF));
    assert!(!plain.cert().has_revocation_endpoints());
    let ocsp = pki.self_signed(
        &CertSpec::leaf(LEAF).extra("authorityInfoAccess = OCSP;URI:http://ocsp.example"),
    );
    assert!(ocsp.cert().has_revocation_endpoints());
    let crl = pki.self_signed(
        &CertSpec::leaf(LEAF).extra("crlDistributionPoints = URI:http://crl.example/x.crl"),
    );
    assert!(crl.cert().has_revocation_endpoints());
    let ca_issuers = pki.self_signed(
        &CertSpec::leaf(LEAF).extra("authorityInfoAccess = caIssuers;URI:http://ca.example/ca.crt"),
    );
    assert!(!ca_issuers.cert().has_revocation_endpoints());
}

// ------------------------------------------------------------------ parsing

#[test]
fn pem_der_and_bundles() {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::P256);
    let one = Certificate::parse_pem_or_der_bundle(chain.leaf.pem.as_bytes()).expect("pem");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].der(), chain.leaf.der.as_slice());
    let pem_bundle = format!(
        "junk before\n{}{}{}",
        chain.leaf.pem, chain.intermediate.pem, chain.root.pem
    );
    let certs = Certificate::parse_pem_or_der_bundle(pem_bundle.as_bytes()).expect("pem bundle");
    assert_eq!(certs, chain.certs());
    let mut der = chain.leaf.der.clone();
    der.extend_from_slice(&chain.root.der);
    let certs = Certificate::parse_pem_or_der_bundle(&der).expect("der bundle");
    assert_eq!(certs, vec![chain.leaf.cert(), chain.root.cert()]);
    // Single-cert parsing rejects trailing data.
    assert!(matches!(
        Certificate::from_der(&der),
        Err(PkiError::MalformedCertificate { .. })
    ));
    // Truncated DER.
    assert!(matches!(
        Certificate::parse_pem_or_der_bundle(&chain.leaf.der[..chain.leaf.der.len() - 3]),
        Err(PkiError::MalformedCertificate { .. })
    ));
}

#[test]
fn accessors() {
    let pki = Pki::new();
    let leaf = pki.self_signed(&CertSpec::leaf(
        "/C=US/ST=WA/L=Seattle/O=Notary/OU=Team+UID=x/CN=Acme, Inc.",
    ));
    let cert = leaf.cert();
    let rdns = cert.subject_rdns();
    let get = |k: &str| {
        rdns.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("C"), Some("US"));
    assert_eq!(get("ST"), Some("WA"));
    assert_eq!(get("L"), Some("Seattle"));
    assert_eq!(get("O"), Some("Notary"));
    assert_eq!(get("OU"), Some("Team"));
    assert_eq!(get("CN"), Some("Acme, Inc."));
    assert_eq!(get("0.9.2342.19200300.100.1.1"), Some("x"));
    assert!(
        cert.subject_string().starts_with("CN=Acme\\, Inc."),
        "{}",
        cert.subject_string()
    );
    assert_eq!(cert.subject_string(), cert.issuer_string());
    let expected: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&leaf.der).into()
    };
    assert_eq!(cert.sha256_thumbprint(), expected);
    assert!(cert.is_self_signed());
}

// ------------------------------------------------------------- notation vectors

fn load(path: &std::path::Path) -> Vec<Certificate> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Certificate::parse_pem_or_der_bundle(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn vectors_certificate_parsing() {
    let Some(dir) = support::vectors_dir("notation", "vectors_certificate_parsing") else {
        return;
    };
    let x = dir.join("certs/notation-core-go-x509");
    assert_eq!(load(&x.join("pem.crt")).len(), 1);
    assert_eq!(load(&x.join("multi-pem.crt")).len(), 2);
    assert_eq!(load(&x.join("der.der")).len(), 1);
    assert_eq!(load(&x.join("multi-der.der")).len(), 2);
    let multi = std::fs::read(x.join("multi-der.der")).expect("read");
    assert!(
        Certificate::from_der(&multi).is_err(),
        "single-cert parser rejects trailing data"
    );
    let invalid = std::fs::read(x.join("invalid")).expect("read");
    assert!(Certificate::parse_pem_or_der_bundle(&invalid).is_err());
    // openssl-minimum-self-signed.pem: a valid one-element code-signing chain.
    validate_signing_chain(&load(&x.join("openssl-minimum-self-signed.pem")))
        .expect("minimum self-signed");
}

#[test]
fn vectors_timestamp_chain() {
    let Some(dir) = support::vectors_dir("notation", "vectors_timestamp_chain") else {
        return;
    };
    let x = dir.join("certs/notation-core-go-x509");
    let leaf = load(&x.join("timestamp_leaf.crt")).remove(0);
    let inter = load(&x.join("timestamp_intermediate.crt")).remove(0);
    let root = load(&x.join("timestamp_root.crt")).remove(0);
    validate_tsa_chain(&[leaf.clone(), inter.clone(), root.clone()]).expect("DigiCert TSA chain");
    // The leaf alone is not self-signed.
    assert!(matches!(
        validate_tsa_chain(std::slice::from_ref(&leaf)),
        Err(PkiError::RootNotSelfSigned { .. })
    ));
    assert!(matches!(validate_tsa_chain(&[]), Err(PkiError::EmptyChain)));
    check_trust_store_certificate(&root, StoreType::Tsa).expect("DigiCert root is a TSA root");
    let tsa_root = load(&dir.join("certs/notation-core-go-tsa/tsaRootCert.cer")).remove(0);
    check_trust_store_certificate(&tsa_root, StoreType::Tsa).expect("tsaRootCert");
}

#[test]
fn vectors_trust_stores() {
    let Some(dir) = support::vectors_dir("notation", "vectors_trust_stores") else {
        return;
    };
    let store = |t: &str, name: &str| dir.join("truststore/x509").join(t).join(name);
    let check_dir =
        |path: std::path::PathBuf, ty: StoreType| -> Result<usize, (String, PkiError)> {
            let mut n = 0;
            let mut entries: Vec<_> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for file in entries {
                let bytes = std::fs::read(&file).expect("read");
                let name = file
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                let certs =
                    Certificate::parse_pem_or_der_bundle(&bytes).map_err(|e| (name.clone(), e))?;
                for cert in &certs {
                    check_trust_store_certificate(cert, ty).map_err(|e| (name.clone(), e))?;
                }
                n += certs.len();
            }
            Ok(n)
        };
    for name in [
        "valid-trust-store",
        "valid-trust-store-2",
        "e2e",
        "e2e-new",
        "e2e-expired",
        "literal-testsig",
        "literal-example-local",
        "literal-example-blob",
    ] {
        check_dir(store("ca", name), StoreType::Ca)
            .unwrap_or_else(|(f, e)| panic!("ca:{name} {f}: {e}"));
    }
    assert_eq!(
        check_dir(store("ca", "valid-trust-store-self-signed"), StoreType::Ca).expect("loads"),
        1
    );
    for name in ["valid-trust-store", "valid-trust-store-2"] {
        check_dir(store("signingAuthority", name), StoreType::SigningAuthority)
            .unwrap_or_else(|(f, e)| panic!("signingAuthority:{name} {f}: {e}"));
    }
    for name in ["test-timestamp", "test-mismatch", "e2e"] {
        check_dir(store("tsa", name), StoreType::Tsa)
            .unwrap_or_else(|(f, e)| panic!("tsa:{name} {f}: {e}"));
    }
    match check_dir(store("ca", "trust-store-with-invalid-certs"), StoreType::Ca) {
        Err((file, PkiError::MalformedCertificate { .. })) => assert_eq!(file, "invalid"),
        other => panic!("{other:?}"),
    }
    match check_dir(store("ca", "trust-store-with-leaf-certs"), StoreType::Ca) {
        Err((file, PkiError::StoreCertNotCaOrSelfSigned { subject })) => {
            assert_eq!(file, "non-ca.crt");
            assert_eq!(
                subject,
                "CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        check_dir(
            store("ca", "trust-store-with-leaf-certs-in-single-file"),
            StoreType::Ca
        ),
        Err((_, PkiError::StoreCertNotCaOrSelfSigned { .. }))
    ));
    match check_dir(store("tsa", "test-nonCA"), StoreType::Tsa) {
        Err((file, PkiError::TsaStoreCertNotRoot { subject, source })) => {
            assert_eq!(file, "wabbit-networks.io.crt");
            assert_eq!(
                subject,
                "CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US"
            );
            assert!(
                matches!(*source, PkiError::RootNotSelfSigned { .. }),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    match check_dir(store("tsa", "test-nonSelfIssued"), StoreType::Tsa) {
        Err((_, PkiError::TsaStoreCertNotRoot { source, .. })) => {
            assert!(
                matches!(*source, PkiError::RootNotSelfIssued { .. }),
                "{source:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vectors_tsa_root_candidates() {
    let Some(dir) = support::vectors_dir("notation", "vectors_tsa_root_candidates") else {
        return;
    };
    let d = dir.join("certs/notation-cli-e2e-tsa-root-candidates");
    assert!(Certificate::parse_pem_or_der_bundle(
        &std::fs::read(d.join("invalid.crt")).expect("read")
    )
    .is_err());
    assert!(matches!(
        Certificate::parse_pem_or_der_bundle(&std::fs::read(d.join("Empty.txt")).expect("read")),
        Err(PkiError::NoCertificates)
    ));
    assert!(load(&d.join("CertChain.pem")).len() > 1);
    let inter = load(&d.join("intermediate.pem")).remove(0);
    assert!(check_trust_store_certificate(&inter, StoreType::Tsa).is_err());
    let not_self_issued = load(&d.join("notSelfIssued.crt")).remove(0);
    match check_trust_store_certificate(&not_self_issued, StoreType::Tsa) {
        Err(PkiError::TsaStoreCertNotRoot { source, .. }) => {
            assert!(matches!(*source, PkiError::RootNotSelfIssued { .. }))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vectors_identity_certs() {
    let Some(dir) = support::vectors_dir("notation", "vectors_identity_certs") else {
        return;
    };
    let d = dir.join("certs/notation-go-identity");
    let signing = load(&d.join("signing-cert.pem")).remove(0);
    let rdns = signing.subject_rdns();
    for (k, v) in [
        ("CN", "SomeCN"),
        ("OU", "SomeOU"),
        ("O", "SomeOrg"),
        ("L", "Seattle"),
        ("ST", "WA"),
        ("C", "US"),
    ] {
        assert!(
            rdns.contains(&(k.to_string(), v.to_string())),
            "{k}={v} in {rdns:?}"
        );
    }
    let bad = load(&d.join("bad-cert.pem")).remove(0);
    assert!(bad
        .subject_rdns()
        .contains(&("CN".to_string(), "Bad=#CN".to_string())));
}

#[test]
fn vectors_store_roots_and_e2e_leaf() {
    // CASES.md §3: NotationTestRoot (root of the mock chain) and e2e.crt (self-signed).
    let Some(dir) = support::vectors_dir("notation", "vectors_store_roots_and_e2e_leaf") else {
        return;
    };
    let root =
        load(&dir.join("truststore/x509/ca/valid-trust-store/NotationTestRoot.pem")).remove(0);
    assert!(root.is_self_signed());
    let e2e = load(&dir.join("truststore/x509/ca/e2e/e2e.crt")).remove(0);
    validate_signing_chain(std::slice::from_ref(&e2e))
        .expect("e2e.crt is a valid 1-certificate chain");
    assert_eq!(
        signature_algorithm_for_key(&e2e).ok(),
        Some(SignatureAlgorithm::Ps256)
    );
}
