//! The kit's PKI checked by a real component: `openssl verify` (strict X.509 mode)
//! accepts the code-signing chains and the TSA chain it makes, so tests that expect
//! pullgate to accept them start from certificates another validator accepts too;
//! and `openssl x509 -text` reads back what the spec asked for (PSS parameters,
//! ECDSA digests, AIA/CDP/SAN, criticality, subject order, UTCTime/GeneralizedTime).
//! The certificates are made in process (`pki::x509`): this is the proof they are
//! what openssl itself would make.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use pullgate_testkit::pki::{CertSpec, Issued, KeySpec, Pki};

/// `openssl verify` of `leaf` up to the trusted `root` through `untrusted`; its
/// stdout when it says OK.
fn openssl_verify(dir: &Path, root: &Issued, untrusted: &[&Issued], leaf: &Issued, purpose: &str) {
    let bundle = dir.join(format!("untrusted-{}.pem", leaf.der.len()));
    let pems: String = untrusted.iter().map(|c| c.pem.as_str()).collect();
    std::fs::write(&bundle, pems).expect("write untrusted bundle");
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
        .arg(&root.cert_path);
    if !untrusted.is_empty() {
        cmd.arg("-untrusted").arg(&bundle);
    }
    let out = cmd
        .arg(&leaf.cert_path)
        .output()
        .expect("run openssl verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(": OK"),
        "openssl verify refused {}: {stdout}{}",
        leaf.spec.subject,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openssl_verify_accepts_every_key_type_chain() {
    let pki = Pki::new();
    for key in KeySpec::ALL {
        let chain = pki.chain(key);
        openssl_verify(
            pki.dir(),
            &chain.root,
            &[&chain.intermediate],
            &chain.leaf,
            "any",
        );
        // The intermediate on its own as well: a CA certificate under the root.
        openssl_verify(pki.dir(), &chain.root, &[], &chain.intermediate, "any");
    }
}

#[test]
fn openssl_verify_accepts_the_tsa_chain_for_timestamping() {
    let pki = Pki::new();
    let tsa = pki.tsa(KeySpec::P256);
    openssl_verify(pki.dir(), &tsa.root, &[], &tsa.leaf, "timestampsign");
}

/// `openssl x509 -text` of a certificate: openssl's own reading of the DER.
fn x509_text(cert: &Issued) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert.cert_path)
        .output()
        .expect("run openssl x509");
    assert!(
        out.status.success(),
        "openssl x509 refused {}: {}",
        cert.spec.subject,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("openssl x509 -text is UTF-8")
}

/// `needle` in `text`, or a failure showing the whole text.
fn assert_shows(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}

/// RSASSA-PSS chains (root → intermediate → leaf, every certificate PSS-signed)
/// verify, and openssl reads the PSS parameters the kit writes: hash, MGF1 with the
/// same hash, salt = digest length; for SHA-1 all defaults (empty parameters).
#[test]
fn openssl_verify_accepts_pss_signed_chains() {
    let pki = Pki::new();
    for (key, digest, salt) in [
        (KeySpec::Rsa2048, "sha256", "0x20"),
        (KeySpec::Rsa3072, "sha384", "0x30"),
        (KeySpec::Rsa4096, "sha512", "0x40"),
    ] {
        let root = pki.self_signed(
            &CertSpec::ca("/C=US/O=Notary/CN=PSS Root")
                .key(key)
                .digest(digest)
                .pss(),
        );
        let intermediate = pki.issue(
            &CertSpec::ca("/C=US/O=Notary/CN=PSS Intermediate")
                .key(key)
                .slot(1)
                .digest(digest)
                .pss(),
            &root,
        );
        let leaf = pki.issue(
            &CertSpec::leaf("/C=US/O=Notary/CN=PSS Leaf")
                .key(key)
                .digest(digest)
                .pss(),
            &intermediate,
        );
        openssl_verify(pki.dir(), &root, &[&intermediate], &leaf, "any");
        let text = x509_text(&leaf);
        assert_shows(&text, "Signature Algorithm: rsassaPss");
        assert_shows(&text, &format!("Hash Algorithm: {digest}"));
        assert_shows(&text, &format!("Mask Algorithm: mgf1 with {digest}"));
        assert_shows(&text, &format!("Salt Length: {salt}"));
        assert_shows(&text, "Trailer Field: 0x01 (default)");
    }
    let sha1 = pki.self_signed(&CertSpec::ca("/CN=PSS SHA-1").digest("sha1").pss());
    let text = x509_text(&sha1);
    assert_shows(&text, "Hash Algorithm: sha1 (default)");
    assert_shows(&text, "Salt Length: 0x14 (default)");
}

/// ECDSA chains where the digest is not the curve's own: SHA-256 on P-521 (a digest
/// shorter than the order) and SHA-512 on P-256 (truncated), and a P-384 CA over an
/// RSA leaf.
#[test]
fn openssl_verify_accepts_ec_chains_with_any_digest() {
    let pki = Pki::new();
    for (key, digest, name) in [
        (KeySpec::P521, "sha256", "ecdsa-with-SHA256"),
        (KeySpec::P256, "sha512", "ecdsa-with-SHA512"),
        (KeySpec::P384, "sha384", "ecdsa-with-SHA384"),
    ] {
        let root = pki.self_signed(
            &CertSpec::ca("/C=US/O=Notary/CN=EC Root")
                .key(key)
                .digest(digest),
        );
        let leaf = pki.issue(
            &CertSpec::leaf("/C=US/O=Notary/CN=EC Leaf")
                .key(KeySpec::Rsa2048)
                .digest(digest),
            &root,
        );
        openssl_verify(pki.dir(), &root, &[], &leaf, "any");
        assert_shows(&x509_text(&leaf), &format!("Signature Algorithm: {name}"));
    }
}

/// A leaf with every `extra` extension the tests use: openssl verifies it and reads
/// back the URLs and the address.
#[test]
fn openssl_reads_aia_cdp_freshest_crl_and_san() {
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::P256);
    let leaf = pki.issue(
        &CertSpec::leaf("/C=US/O=Notary/CN=Endpoints")
            .key(KeySpec::P256)
            .slot(5)
            .extra(
                "authorityInfoAccess = OCSP;URI:http://127.0.0.1:1/ocsp, \
                 caIssuers;URI:http://127.0.0.1:1/ca.cer",
            )
            .extra("crlDistributionPoints = URI:http://127.0.0.1:1/a.crl, URI:ldap://127.0.0.1:2/b.crl")
            .extra("freshestCRL = URI:http://127.0.0.1:1/delta.crl")
            .extra("subjectAltName = IP:127.0.0.1"),
        &chain.intermediate,
    );
    openssl_verify(pki.dir(), &chain.root, &[&chain.intermediate], &leaf, "any");
    let text = x509_text(&leaf);
    for needle in [
        "OCSP - URI:http://127.0.0.1:1/ocsp",
        "CA Issuers - URI:http://127.0.0.1:1/ca.cer",
        "URI:http://127.0.0.1:1/a.crl",
        "URI:ldap://127.0.0.1:2/b.crl",
        "X509v3 Freshest CRL:",
        "URI:http://127.0.0.1:1/delta.crl",
        "IP Address:127.0.0.1",
    ] {
        assert_shows(&text, needle);
    }
}

/// The criticality flags, path lengths, subject order and dates as the spec says,
/// in openssl's words.
#[test]
fn openssl_shows_criticality_subject_order_and_dates_as_specified() {
    let pki = Pki::new();
    let root = pki.self_signed(
        &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=Test Root")
            .basic_constraints(Some("critical,CA:TRUE,pathlen:0")),
    );
    let text = x509_text(&root);
    assert_shows(
        &text,
        "X509v3 Basic Constraints: critical\n                CA:TRUE, pathlen:0",
    );
    assert_shows(
        &text,
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
    );
    assert_shows(
        &text,
        "Subject: C = US, ST = WA, O = Notary, CN = Test Root",
    );
    assert_shows(&text, "Issuer: C = US, ST = WA, O = Notary, CN = Test Root");
    assert!(!text.contains("Authority Key Identifier"), "{text}");

    let leaf = pki.issue(
        &CertSpec::leaf("/C=US/O=Notary/CN=Leaf").validity(
            UNIX_EPOCH + Duration::from_secs(2_000_000_000),
            UNIX_EPOCH + Duration::from_secs(2_600_000_000),
        ),
        &root,
    );
    let text = x509_text(&leaf);
    assert_shows(
        &text,
        "X509v3 Basic Constraints: \n                CA:FALSE",
    );
    assert_shows(
        &text,
        "X509v3 Key Usage: critical\n                Digital Signature",
    );
    assert_shows(
        &text,
        "X509v3 Extended Key Usage: \n                Code Signing",
    );
    assert_shows(&text, "X509v3 Subject Key Identifier:");
    assert_shows(&text, "X509v3 Authority Key Identifier:");
    // UTCTime through 2049, GeneralizedTime from 2050.
    assert_shows(&text, "Not Before: May 18 03:33:20 2033 GMT");
    assert_shows(&text, "Not After : May 22 14:13:20 2052 GMT");

    let tsa = pki.issue(&CertSpec::tsa_leaf("/CN=TSA"), &root);
    assert_shows(
        &x509_text(&tsa),
        "X509v3 Extended Key Usage: critical\n                Time Stamping",
    );
}
