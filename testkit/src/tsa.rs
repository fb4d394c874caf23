//! A real RFC 3161 TSA for tests: a TSA root CA and a TSA leaf (critical
//! extendedKeyUsage=timeStamping) made with the openssl CLI in a tempdir, answering
//! `openssl ts -query` requests with `openssl ts -reply -token_out`.
//!
//! `openssl ts -reply` stamps with the current clock, so tokens carry genTime ≈ now.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The TSA's key type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsaKey {
    Rsa2048,
    EcP256,
    EcP384,
    EcP521,
}

impl TsaKey {
    fn newkey_args(self) -> &'static [&'static str] {
        match self {
            TsaKey::Rsa2048 => &["-newkey", "rsa:2048"],
            TsaKey::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            TsaKey::EcP384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            TsaKey::EcP521 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
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

const LEAF_EXTENSIONS: &str = "[tsa_leaf]\n\
basicConstraints = CA:FALSE\n\
keyUsage = critical, digitalSignature\n\
extendedKeyUsage = critical, timeStamping\n\
subjectKeyIdentifier = hash\n\
authorityKeyIdentifier = keyid\n";

impl Tsa {
    /// A TSA root CA and a TSA leaf signed by it, both of `key`'s type.
    pub fn new(key: TsaKey) -> Tsa {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let mut root = vec!["req", "-x509", "-nodes"];
        root.extend(key.newkey_args());
        root.extend([
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "3650",
            "-subj",
            "/C=US/O=pullgate tests/CN=pullgate test TSA root",
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(d, &root);
        let mut csr = vec!["req", "-new", "-nodes"];
        csr.extend(key.newkey_args());
        csr.extend([
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/C=US/O=pullgate tests/CN=pullgate test TSA",
        ]);
        openssl(d, &csr);
        std::fs::write(d.join("leaf.ext"), LEAF_EXTENSIONS).expect("write leaf.ext");
        let tsa = Tsa {
            key,
            root_pem: d.join("root.pem"),
            root_key: d.join("root.key"),
            leaf_pem: d.join("leaf.pem"),
            leaf_key: d.join("leaf.key"),
            leaf_csr: d.join("leaf.csr"),
            dir,
        };
        tsa.issue_leaf("leaf.pem", "2", 365);
        tsa
    }

    /// Issues (another) TSA leaf certificate for the same key, serial and issuer.
    pub fn issue_leaf(&self, out: &str, serial: &str, days: u32) -> PathBuf {
        let days = days.to_string();
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                serial,
                "-days",
                &days,
                "-sha256",
                "-extfile",
                "leaf.ext",
                "-extensions",
                "tsa_leaf",
                "-out",
                out,
            ],
        );
        self.dir.path().join(out)
    }

    /// DER of a PEM certificate file in the TSA's directory.
    pub fn cert_der(&self, pem: &Path) -> Vec<u8> {
        let out = self.dir.path().join("cert.der");
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-in",
                pem.to_str().expect("utf-8 path"),
                "-outform",
                "DER",
                "-out",
                out.to_str().expect("utf-8 path"),
            ],
        );
        std::fs::read(out).expect("read cert.der")
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
