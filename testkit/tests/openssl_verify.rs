//! The kit's PKI checked by a real component: `openssl verify` (strict X.509 mode)
//! accepts the code-signing chains and the TSA chain it makes, so tests that expect
//! pullgate to accept them start from certificates another validator accepts too.

use std::path::Path;
use std::process::Command;

use pullgate_testkit::pki::{Issued, KeySpec, Pki};

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
