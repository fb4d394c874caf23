//! A real RFC 3161 TSA for tests: a TSA root CA and a TSA leaf (critical
//! extendedKeyUsage=timeStamping) made by the kit's PKI ([`crate::pki`]) and kept in
//! a tempdir, answering `openssl ts -query` requests with `openssl ts -reply
//! -token_out`.
//!
//! `openssl ts -reply` stamps with the current clock, so tokens carry genTime ≈ now.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::pki::{CertSpec, Issued, KeySpec, Pki};

/// The TSA's key type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsaKey {
    Rsa2048,
    EcP256,
    EcP384,
    EcP521,
}

impl TsaKey {
    /// The kit's key type for this TSA key.
    fn key_spec(self) -> KeySpec {
        match self {
            TsaKey::Rsa2048 => KeySpec::Rsa2048,
            TsaKey::EcP256 => KeySpec::P256,
            TsaKey::EcP384 => KeySpec::P384,
            TsaKey::EcP521 => KeySpec::P521,
        }
    }
}

/// What to put in one `openssl ts` exchange.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// Message imprint hash of the query: `sha256`, `sha384` or `sha512`.
    pub imprint_digest: &'static str,
    /// `signer_digest`: the SignerInfo digest algorithm.
    pub signer_digest: &'static str,
    /// `ess_cert_id_alg`: `sha256` (signingCertificateV2) or `sha1` (v1 only).
    pub ess_cert_id_alg: &'static str,
    /// `accuracy` line of the ts config (e.g. `secs:1`), or none.
    pub accuracy: Option<&'static str>,
    /// `-tspolicy` of the query; the TSA's default policy when `None`.
    pub policy: Option<&'static str>,
}

/// The TSA's default policy OID.
pub const DEFAULT_POLICY: &str = "1.3.6.1.4.1.55555.1";
/// The ETSI baseline policy, which the TSA also accepts when asked for it.
pub const BASELINE_POLICY: &str = "0.4.0.2023.1.1";

impl Default for Stamp {
    fn default() -> Stamp {
        Stamp {
            imprint_digest: "sha256",
            signer_digest: "sha256",
            ess_cert_id_alg: "sha256",
            accuracy: Some("secs:1"),
            policy: None,
        }
    }
}

pub struct Tsa {
    pub dir: tempfile::TempDir,
    pub key: TsaKey,
    pub root_pem: PathBuf,
    pub root_key: PathBuf,
    pub leaf_pem: PathBuf,
    pub leaf_key: PathBuf,
    pub leaf_csr: PathBuf,
    pki: Pki,
    root: Issued,
    leaf_spec: CertSpec,
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The next two key slots of the kit for a new TSA (root, leaf): every TSA of a
/// test process has keys of its own, as when each generated fresh ones.
fn fresh_slots() -> (u8, u8) {
    static NEXT: AtomicU8 = AtomicU8::new(64);
    let slot = NEXT.fetch_add(2, Ordering::SeqCst);
    assert!(slot < 250, "more TSAs than key slots in one test process");
    (slot, slot + 1)
}

impl Tsa {
    /// A TSA root CA and a TSA leaf signed by it, both of `key`'s type. The leaf:
    /// serial 2, valid from now for 365 days, basicConstraints CA:FALSE, critical
    /// keyUsage digitalSignature, critical extendedKeyUsage timeStamping.
    pub fn new(key: TsaKey) -> Tsa {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let pki = Pki::new();
        let (root_slot, leaf_slot) = fresh_slots();
        let root = pki.self_signed(
            &CertSpec::ca("/C=US/O=pullgate tests/CN=pullgate test TSA root")
                .key(key.key_spec())
                .slot(root_slot),
        );
        std::fs::write(d.join("root.pem"), &root.pem).expect("write root.pem");
        std::fs::copy(&root.key_path, d.join("root.key")).expect("write root.key");
        let leaf_spec = CertSpec::tsa_leaf("/C=US/O=pullgate tests/CN=pullgate test TSA")
            .key(key.key_spec())
            .slot(leaf_slot);
        let leaf_key = pki.private_key_pem(key.key_spec(), leaf_slot);
        std::fs::write(d.join("leaf.key"), leaf_key).expect("write leaf.key");
        // The leaf's request, for whoever wants to issue it elsewhere.
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                "leaf.key",
                "-subj",
                &leaf_spec.subject,
                "-out",
                "leaf.csr",
            ],
        );
        let tsa = Tsa {
            key,
            root_pem: d.join("root.pem"),
            root_key: d.join("root.key"),
            leaf_pem: d.join("leaf.pem"),
            leaf_key: d.join("leaf.key"),
            leaf_csr: d.join("leaf.csr"),
            dir,
            pki,
            root,
            leaf_spec,
        };
        tsa.issue_leaf("leaf.pem", "2", 365);
        tsa
    }

    /// Issues (another) TSA leaf certificate for the same key, subject, extensions
    /// and issuer, with `serial` (decimal) and valid from now for `days`, as `out`
    /// in the TSA's directory.
    pub fn issue_leaf(&self, out: &str, serial: &str, days: u32) -> PathBuf {
        let serial = serial.parse().expect("decimal serial");
        let now = SystemTime::now();
        let leaf = self.pki.issue(
            &self
                .leaf_spec
                .clone()
                .serial(serial)
                .validity(now, now + Duration::from_secs(u64::from(days) * 86_400)),
            &self.root,
        );
        let path = self.dir.path().join(out);
        std::fs::write(&path, &leaf.pem).expect("write leaf certificate");
        path
    }

    /// DER of a PEM certificate file (e.g. [`Tsa::leaf_pem`]).
    pub fn cert_der(&self, pem: &Path) -> Vec<u8> {
        CertificateDer::from_pem_file(pem)
            .unwrap_or_else(|e| panic!("{}: not a PEM certificate: {e}", pem.display()))
            .to_vec()
    }

    /// A TimeStampToken (DER ContentInfo) over `data`.
    pub fn stamp(&self, data: &[u8], stamp: &Stamp) -> Vec<u8> {
        let d = self.dir.path();
        std::fs::write(d.join("data.bin"), data).expect("write data");
        std::fs::write(d.join("tsaserial"), "01\n").expect("write serial");
        let accuracy = stamp
            .accuracy
            .map(|a| format!("accuracy = {a}\n"))
            .unwrap_or_default();
        let conf = format!(
            "[tsa]\ndefault_tsa = tsa_config1\n\
             [tsa_config1]\n\
             dir = {dir}\n\
             serial = $dir/tsaserial\n\
             crypto_device = builtin\n\
             signer_cert = $dir/leaf.pem\n\
             certs = $dir/root.pem\n\
             signer_key = $dir/leaf.key\n\
             signer_digest = {signer_digest}\n\
             default_policy = {DEFAULT_POLICY}\n\
             other_policies = {BASELINE_POLICY}\n\
             digests = sha256, sha384, sha512\n\
             {accuracy}\
             clock_precision_digits = 0\n\
             ordering = no\n\
             tsa_name = no\n\
             ess_cert_id_chain = no\n\
             ess_cert_id_alg = {ess}\n",
            dir = d.display(),
            signer_digest = stamp.signer_digest,
            ess = stamp.ess_cert_id_alg,
        );
        std::fs::write(d.join("ts.cnf"), conf).expect("write ts.cnf");
        let digest_flag = format!("-{}", stamp.imprint_digest);
        let mut query = vec![
            "ts",
            "-query",
            "-data",
            "data.bin",
            digest_flag.as_str(),
            "-cert",
            "-no_nonce",
            "-out",
            "q.tsq",
        ];
        if let Some(policy) = stamp.policy {
            query.extend(["-tspolicy", policy]);
        }
        openssl(d, &query);
        openssl(
            d,
            &[
                "ts",
                "-reply",
                "-config",
                "ts.cnf",
                "-queryfile",
                "q.tsq",
                "-signer",
                "leaf.pem",
                "-inkey",
                "leaf.key",
                "-chain",
                "root.pem",
                "-token_out",
                "-out",
                "token.der",
            ],
        );
        std::fs::read(d.join("token.der")).expect("read token.der")
    }

    /// Re-signs `token`'s TSTInfo as a new CMS SignedData with `openssl cms -sign
    /// -cades` (content-type, message-digest, signingTime, signingCertificateV2) and
    /// `extra` options, e.g. `-keyopt rsa_padding_mode:pss` (which `openssl ts` cannot
    /// do) or `-keyid` (a v3 SignerInfo).
    pub fn resign(&self, token: &[u8], extra: &[&str]) -> Vec<u8> {
        let d = self.dir.path();
        std::fs::write(d.join("resign-in.der"), token).expect("write token");
        openssl(
            d,
            &[
                "cms",
                "-verify",
                "-noverify",
                "-inform",
                "DER",
                "-in",
                "resign-in.der",
                "-out",
                "tst.der",
            ],
        );
        let mut sign = vec![
            "cms",
            "-sign",
            "-binary",
            "-cades",
            "-nodetach",
            "-in",
            "tst.der",
            "-econtent_type",
            "1.2.840.113549.1.9.16.1.4",
            "-signer",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-outform",
            "DER",
            "-out",
            "resigned.der",
        ];
        sign.extend(extra);
        openssl(d, &sign);
        std::fs::read(d.join("resigned.der")).expect("read resigned.der")
    }
}
