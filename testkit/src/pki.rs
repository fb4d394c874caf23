//! The test kit's one PKI: roots, intermediates and leaves with chosen keys,
//! validity windows, keyUsage / EKU / basicConstraints (critical or not), a signer
//! for envelope signatures, and a real RFC 3161 TSA (`openssl ts -reply`, OpenSSL 3.0
//! on these machines). The revocation kit ([`crate::revocation`]), the TSA fixture
//! ([`crate::tsa`]) and pullgate's policy unit tests build on it.
//!
//! Certificates are made in process (`pki/x509.rs`): the TBSCertificate is built from
//! x509-cert's types, its extensions parsed from the same `x509v3_config` strings
//! `openssl ca` took (`pki/extensions.rs`), and signed with RustCrypto's RSA (PKCS#1 v1.5
//! or RSASSA-PSS) and ECDSA. No process is spawned per certificate, absolute
//! validity dates (expired, not yet valid, past 2049) are just values, and an
//! extension the kit does not know panics instead of being left out. The DER is
//! what `openssl ca -preserveDN` made for the same spec (subject order and string
//! types, key identifiers, PSS parameters, UTCTime/GeneralizedTime);
//! `tests/openssl_verify.rs` has openssl parse and verify it. Every certificate and
//! key is still written to disk as PEM, for the openssl commands that stay: `openssl
//! ts` for timestamp tokens, `openssl ca`/`crl`/`ocsp` in the revocation kit.
//! Envelope signatures ([`Pki::sign`]) are made in process too.
//!
//! RSA keys are per (key type, slot) and shared by every `Pki` of a process: they
//! are committed test-only fixtures (`testkit/keys/`: generating RSA-4096 takes
//! seconds). EC keys are made in process per `Pki`, (key type, slot): two `Pki`s
//! are two CAs. (With RSA, two `Pki`s making the same spec in the same second make
//! the same certificate, byte for byte, since RSA PKCS#1 v1.5 and the kit's ECDSA
//! (RFC 6979) sign deterministically: give a second RSA CA another slot.) Different
//! roles use different slots by default
//! (root 0, intermediate 1, leaf 2, TSA root 3, TSA leaf 4), so a chain never
//! reuses a key by accident; choose another slot with [`CertSpec::slot`].
//!
//! `openssl ts -reply` stamps with the **current clock** (no faketime here): for
//! time-specific timestamp tests choose certificate windows relative to now instead.

mod extensions;
mod x509;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pullgate::pki::{Certificate, SignatureAlgorithm};

/// Key types notation signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    P521,
}

impl KeySpec {
    pub const ALL: [KeySpec; 6] = [
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
        KeySpec::P256,
        KeySpec::P384,
        KeySpec::P521,
    ];

    /// The envelope algorithm this key signs with (NOTARY.md §3).
    pub fn algorithm(self) -> SignatureAlgorithm {
        match self {
            KeySpec::Rsa2048 => SignatureAlgorithm::Ps256,
            KeySpec::Rsa3072 => SignatureAlgorithm::Ps384,
            KeySpec::Rsa4096 => SignatureAlgorithm::Ps512,
            KeySpec::P256 => SignatureAlgorithm::Es256,
            KeySpec::P384 => SignatureAlgorithm::Es384,
            KeySpec::P521 => SignatureAlgorithm::Es512,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }

    /// The modulus size of an RSA key type; `None` for EC.
    fn rsa_bits(self) -> Option<u32> {
        match self {
            KeySpec::Rsa2048 => Some(2048),
            KeySpec::Rsa3072 => Some(3072),
            KeySpec::Rsa4096 => Some(4096),
            KeySpec::P256 | KeySpec::P384 | KeySpec::P521 => None,
        }
    }
}

/// Private keys (PEM) made so far in this process, per (owning `Pki` for EC keys,
/// type, slot).
type KeyCache = Mutex<HashMap<(Option<u64>, KeySpec, u8), Arc<OnceLock<String>>>>;
static KEYS: OnceLock<KeyCache> = OnceLock::new();
/// Numbers the `Pki`s of a process.
static PKIS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The PEM private key for (spec, slot) of the `Pki` numbered `pki`, made on first
/// use (RSA keys are the same for every `Pki`).
fn private_key_pem(pki: u64, spec: KeySpec, slot: u8) -> String {
    let owner = spec.rsa_bits().is_none().then_some(pki);
    let cell = {
        let mut keys = KEYS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        keys.entry((owner, spec, slot)).or_default().clone()
    };
    cell.get_or_init(|| match spec.rsa_bits() {
        Some(bits) => rsa_key_pem(bits, &format!("rsa{bits}-slot{slot}")),
        None => ec_key_pem(spec),
    })
    .clone()
}

/// The committed RSA key `testkit/keys/{name}.pem` (test-only keys, never used
/// outside the tests). A (size, slot) without one gets a fresh key from `openssl
/// genpkey` (what the kit did for every RSA key before), slow for 4096 bits: commit
/// one for a new slot instead (`openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:BITS -out testkit/keys/NAME.pem`).
fn rsa_key_pem(bits: u32, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("keys")
        .join(format!("{name}.pem"));
    match std::fs::read_to_string(&path) {
        Ok(pem) => pem,
        Err(_) => {
            let out = openssl(
                Command::new("openssl")
                    .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
                    .arg(format!("rsa_keygen_bits:{bits}")),
            );
            String::from_utf8(out).expect("PEM key is ASCII")
        }
    }
}

/// A fresh EC key made in-process: PKCS#8 PEM, named curve, public key included,
/// as `openssl genpkey` writes it.
fn ec_key_pem(spec: KeySpec) -> String {
    use p256::elliptic_curve::Generate as _;
    use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
    let pem = match spec {
        KeySpec::P256 => p256::SecretKey::generate().to_pkcs8_pem(LineEnding::LF),
        KeySpec::P384 => p384::SecretKey::generate().to_pkcs8_pem(LineEnding::LF),
        KeySpec::P521 => p521::SecretKey::generate().to_pkcs8_pem(LineEnding::LF),
        rsa => panic!("{rsa:?} is not an EC key type"),
    };
    pem.expect("PKCS#8 encoding of an EC key").to_string()
}

/// An RSA key of a size notation does not accept (for UnsupportedKey tests).
pub fn odd_rsa_key_pem(bits: u32) -> String {
    static ODD: OnceLock<Mutex<HashMap<u32, String>>> = OnceLock::new();
    let mut map = ODD
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(bits)
        .or_insert_with(|| rsa_key_pem(bits, &format!("rsa{bits}-odd")))
        .clone()
}

/// Runs an openssl command, panicking with its stderr on failure; returns stdout.
pub(crate) fn openssl(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl failed: {cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What goes into one certificate. Start from [`CertSpec::leaf`], [`CertSpec::ca`] or
/// [`CertSpec::tsa_leaf`] and adjust.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// Subject in `openssl -subj` form, e.g. `/C=US/ST=WA/O=Notary/CN=leaf`.
    pub subject: String,
    pub key: KeySpec,
    pub slot: u8,
    /// `None`: use an RSA key of this many bits instead of `key` (odd sizes).
    pub odd_rsa_bits: Option<u32>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// `basicConstraints` line value, e.g. `critical,CA:TRUE,pathlen:0`; `None` = absent.
    pub basic_constraints: Option<String>,
    /// `keyUsage` line value, e.g. `critical,digitalSignature`; `None` = absent.
    pub key_usage: Option<String>,
    /// `extendedKeyUsage` line value, e.g. `codeSigning`; `None` = absent.
    pub eku: Option<String>,
    /// Further `name = value` extension lines (AIA, CRL DP, ...).
    pub extra: Vec<String>,
    /// Digest the issuer signs with (`sha256`, `sha384`, `sha1`, ...).
    pub digest: String,
    /// Issuer signs with RSASSA-PSS instead of PKCS#1 v1.5 (RSA issuers only).
    pub pss: bool,
    /// The serial number; `None`: one of the `Pki`'s own, different for every
    /// certificate it makes.
    pub serial: Option<u64>,
}

fn years(n: u64) -> Duration {
    Duration::from_secs(n * 365 * 24 * 3600)
}

impl CertSpec {
    fn base(subject: &str, slot: u8) -> CertSpec {
        let now = SystemTime::now();
        CertSpec {
            subject: subject.to_string(),
            key: KeySpec::Rsa2048,
            slot,
            odd_rsa_bits: None,
            not_before: now - Duration::from_secs(3600),
            not_after: now + years(10),
            basic_constraints: None,
            key_usage: None,
            eku: None,
            extra: Vec::new(),
            digest: "sha256".to_string(),
            pss: false,
            serial: None,
        }
    }

    /// A valid code-signing leaf (NOTARY.md §4): BC CA:FALSE, critical KU
    /// digitalSignature, EKU codeSigning. Slot 2.
    pub fn leaf(subject: &str) -> CertSpec {
        CertSpec {
            basic_constraints: Some("CA:FALSE".into()),
            key_usage: Some("critical,digitalSignature".into()),
            eku: Some("codeSigning".into()),
            ..CertSpec::base(subject, 2)
        }
    }

    /// A valid CA (root or intermediate): critical BC CA:TRUE, critical KU
    /// keyCertSign,cRLSign. Slot 0 (use `.slot(1)` for an intermediate).
    pub fn ca(subject: &str) -> CertSpec {
        CertSpec {
            basic_constraints: Some("critical,CA:TRUE".into()),
            key_usage: Some("critical,keyCertSign,cRLSign".into()),
            ..CertSpec::base(subject, 0)
        }
    }

    /// A valid TSA leaf: critical EKU timeStamping only, KU digitalSignature. Slot 4.
    pub fn tsa_leaf(subject: &str) -> CertSpec {
        CertSpec {
            basic_constraints: Some("CA:FALSE".into()),
            key_usage: Some("critical,digitalSignature".into()),
            eku: Some("critical,timeStamping".into()),
            ..CertSpec::base(subject, 4)
        }
    }

    pub fn key(mut self, key: KeySpec) -> CertSpec {
        self.key = key;
        self
    }
    pub fn slot(mut self, slot: u8) -> CertSpec {
        self.slot = slot;
        self
    }
    pub fn odd_rsa(mut self, bits: u32) -> CertSpec {
        self.odd_rsa_bits = Some(bits);
        self
    }
    pub fn validity(mut self, not_before: SystemTime, not_after: SystemTime) -> CertSpec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }
    pub fn basic_constraints(mut self, value: Option<&str>) -> CertSpec {
        self.basic_constraints = value.map(str::to_string);
        self
    }
    pub fn key_usage(mut self, value: Option<&str>) -> CertSpec {
        self.key_usage = value.map(str::to_string);
        self
    }
    pub fn eku(mut self, value: Option<&str>) -> CertSpec {
        self.eku = value.map(str::to_string);
        self
    }
    pub fn extra(mut self, line: &str) -> CertSpec {
        self.extra.push(line.to_string());
        self
    }
    pub fn digest(mut self, digest: &str) -> CertSpec {
        self.digest = digest.to_string();
        self
    }
    pub fn pss(mut self) -> CertSpec {
        self.pss = true;
        self
    }
    pub fn serial(mut self, serial: u64) -> CertSpec {
        self.serial = Some(serial);
        self
    }

    fn key_pem(&self, pki: u64) -> String {
        match self.odd_rsa_bits {
            Some(bits) => odd_rsa_key_pem(bits),
            None => private_key_pem(pki, self.key, self.slot),
        }
    }
}

/// An issued certificate with its private key, on disk and in memory.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub pem: String,
    pub der: Vec<u8>,
    pub key: KeySpec,
    pub spec: CertSpec,
}

impl Issued {
    /// The certificate parsed by the code under test.
    pub fn cert(&self) -> Certificate {
        Certificate::from_der(&self.der).expect("the kit's certificate parses")
    }
}

/// A root → intermediate → leaf chain.
pub struct Chain {
    pub root: Issued,
    pub intermediate: Issued,
    pub leaf: Issued,
}

impl Chain {
    /// Leaf first, as envelopes carry it.
    pub fn certs(&self) -> Vec<Certificate> {
        vec![self.leaf.cert(), self.intermediate.cert(), self.root.cert()]
    }
}

/// A TSA: root CA and a leaf with critical timeStamping EKU, plus the `openssl ts`
/// configuration that answers with it.
pub struct Tsa {
    pub root: Issued,
    pub leaf: Issued,
    config: PathBuf,
    dir: PathBuf,
}

/// One temporary directory of generated material.
pub struct Pki {
    dir: tempfile::TempDir,
    counter: AtomicUsize,
    /// This `Pki`'s number in the process: its EC keys are its own.
    id: u64,
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// (year, month, day, hour, minute, second) of `t` in UTC.
pub fn civil(t: SystemTime) -> (i64, i64, i64, u64, u64, u64) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .expect("fixture dates are after 1970")
        .as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// (year, month, day) of a day counted from 1970-01-01 (negative before it):
/// Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().expect("tempdir"),
            counter: AtomicUsize::new(0),
            id: PKIS.fetch_add(1, Ordering::SeqCst),
        }
    }

    /// The private key (PEM) this `Pki` gives certificates of `spec` in `slot`.
    pub fn private_key_pem(&self, spec: KeySpec, slot: u8) -> String {
        private_key_pem(self.id, spec, slot)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn fresh(&self, name: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let dir = self.dir.path().join(format!("{n:03}-{name}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// A self-signed certificate.
    pub fn self_signed(&self, spec: &CertSpec) -> Issued {
        self.make(spec, None)
    }

    /// A certificate issued by `issuer`.
    pub fn issue(&self, spec: &CertSpec, issuer: &Issued) -> Issued {
        self.make(spec, Some(issuer))
    }

    /// A valid root → intermediate → code-signing leaf chain, all with `key`.
    pub fn chain(&self, key: KeySpec) -> Chain {
        let root = self.self_signed(&CertSpec::ca("/C=US/ST=WA/O=Notary/CN=Test Root").key(key));
        let intermediate = self.issue(
            &CertSpec::ca("/C=US/ST=WA/O=Notary/CN=Test Intermediate")
                .key(key)
                .slot(1),
            &root,
        );
        let leaf = self.issue(
            &CertSpec::leaf("/C=US/ST=WA/L=Seattle/O=Notary/CN=Test Leaf").key(key),
            &intermediate,
        );
        Chain {
            root,
            intermediate,
            leaf,
        }
    }

    fn make(&self, spec: &CertSpec, issuer: Option<&Issued>) -> Issued {
        let dir = self.fresh("cert");
        let key_path = dir.join("key.pem");
        let key_pem = spec.key_pem(self.id);
        std::fs::write(&key_path, &key_pem).expect("write key");
        // The serial `openssl ca` got from the kit: the spec's, or one above this
        // certificate's directory number, so every certificate of a `Pki` differs.
        let serial = spec
            .serial
            .unwrap_or(self.counter.load(Ordering::SeqCst) as u64 + 0x10);
        let subject_key = x509::SigningKey::from_pem(&key_pem);
        let der = match issuer {
            None => x509::certificate(spec, &subject_key, None, serial),
            Some(issuer) => {
                // From its file, like `openssl ca -keyfile`: the policy tests hand in
                // issuers of their own.
                let issuer_pem =
                    std::fs::read_to_string(&issuer.key_path).expect("read issuer key");
                let issuer_key = x509::SigningKey::from_pem(&issuer_pem);
                let parts = x509::IssuerParts {
                    cert_der: &issuer.der,
                    key: &issuer_key,
                };
                x509::certificate(spec, &subject_key, Some(parts), serial)
            }
        };
        // Parsed back by x509-cert on the way to PEM (64-column LF lines, as openssl).
        let pem = {
            use der::{Decode as _, EncodePem as _};
            x509_cert::Certificate::from_der(&der)
                .and_then(|cert| cert.to_pem(der::pem::LineEnding::LF))
                .expect("the kit's certificate parses back")
        };
        let cert_path = dir.join("cert.pem");
        std::fs::write(&cert_path, &pem).expect("write cert");
        Issued {
            cert_path,
            key_path,
            pem,
            der,
            key: spec.key,
            spec: spec.clone(),
        }
    }

    /// The envelope signature `alg` makes over `message` with `key_path`'s key:
    /// RSASSA-PSS (MGF1 same hash, salt = digest length) or ECDSA as fixed-width r||s.
    pub fn sign(&self, key_path: &Path, alg: SignatureAlgorithm, message: &[u8]) -> Vec<u8> {
        self.sign_with_salt(key_path, alg, message, "digest")
    }

    /// Like [`Pki::sign`] with an explicit PSS salt length (`digest`, `max`, or bytes).
    pub fn sign_with_salt(
        &self,
        key_path: &Path,
        alg: SignatureAlgorithm,
        message: &[u8],
        salt: &str,
    ) -> Vec<u8> {
        let key = x509::SigningKey::from_pem(
            &std::fs::read_to_string(key_path).expect("read signing key"),
        );
        let hash = match alg.hash() {
            pullgate::pki::signature::HashAlgorithm::Sha256 => x509::Hash::Sha256,
            pullgate::pki::signature::HashAlgorithm::Sha384 => x509::Hash::Sha384,
            pullgate::pki::signature::HashAlgorithm::Sha512 => x509::Hash::Sha512,
        };
        let digest = hash.digest(message);
        match alg {
            SignatureAlgorithm::Ps256 | SignatureAlgorithm::Ps384 | SignatureAlgorithm::Ps512 => {
                let salt_len = match salt {
                    "digest" => digest.len(),
                    "max" => key.max_pss_salt(hash),
                    n => n
                        .parse()
                        .unwrap_or_else(|_| panic!("PSS salt {n:?}: digest, max or bytes")),
                };
                key.rsa_pss(hash, &digest, salt_len)
            }
            SignatureAlgorithm::Es256 | SignatureAlgorithm::Es384 | SignatureAlgorithm::Es512 => {
                key.ecdsa_fixed(&digest)
            }
        }
    }

    /// A TSA root and leaf (critical timeStamping EKU) with an `openssl ts` config.
    pub fn tsa(&self, key: KeySpec) -> Tsa {
        let root = self.self_signed(
            &CertSpec::ca("/C=US/O=Test TSA/CN=Test TSA Root")
                .key(key)
                .slot(3),
        );
        let leaf = self.issue(
            &CertSpec::tsa_leaf("/C=US/O=Test TSA/CN=Test TSA").key(key),
            &root,
        );
        self.tsa_from(root, leaf)
    }

    /// A TSA from given certificates (e.g. a leaf that breaks a TSA rule).
    pub fn tsa_from(&self, root: Issued, leaf: Issued) -> Tsa {
        let dir = self.fresh("tsa");
        std::fs::write(dir.join("tsaserial"), "01\n").expect("serial");
        let chain = dir.join("chain.pem");
        std::fs::write(&chain, format!("{}{}", leaf.pem, root.pem)).expect("chain");
        let config = dir.join("ts.cnf");
        std::fs::write(
            &config,
            format!(
                "[tsa]\ndefault_tsa = tsa_config\n[tsa_config]\nserial = {dir}/tsaserial\n\
                 crypto_device = builtin\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
                 other_policies = 1.2.3.4.5\ndigests = sha256, sha384, sha512\n\
                 accuracy = secs:1, millisecs:500, microsecs:100\nclock_precision_digits = 0\n\
                 ordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                dir = dir.display()
            ),
        )
        .expect("ts.cnf");
        Tsa {
            root,
            leaf,
            config,
            dir,
        }
    }

    /// An RFC 3161 TimeStampToken (DER ContentInfo) over `data`, hashed with
    /// `digest` (`sha256`/`sha384`/`sha512`), with the TSA certificate included
    /// (`-cert`) and no nonce, stamped by `openssl ts -reply` at the current time.
    pub fn timestamp_token(&self, tsa: &Tsa, data: &[u8], digest: &str) -> Vec<u8> {
        self.ts_reply(tsa, data, digest, true)
    }

    /// The whole TimeStampResp (status + token) for the same request.
    pub fn timestamp_response(&self, tsa: &Tsa, data: &[u8], digest: &str) -> Vec<u8> {
        self.ts_reply(tsa, data, digest, false)
    }

    fn ts_reply(&self, tsa: &Tsa, data: &[u8], digest: &str, token_only: bool) -> Vec<u8> {
        let dir = self.fresh("ts");
        let data_path = dir.join("data");
        std::fs::write(&data_path, data).expect("write data");
        let query = dir.join("req.tsq");
        openssl(
            Command::new("openssl")
                .args(["ts", "-query", "-data"])
                .arg(&data_path)
                .arg(format!("-{digest}"))
                .args(["-cert", "-no_nonce", "-out"])
                .arg(&query),
        );
        let out = dir.join("reply.der");
        let mut cmd = Command::new("openssl");
        cmd.args(["ts", "-reply", "-config"])
            .arg(&tsa.config)
            .arg("-queryfile")
            .arg(&query)
            .arg("-signer")
            .arg(&tsa.leaf.cert_path)
            .arg("-inkey")
            .arg(&tsa.leaf.key_path)
            .arg("-chain")
            .arg(tsa.dir.join("chain.pem"))
            .arg("-out")
            .arg(&out);
        if token_only {
            cmd.arg("-token_out");
        }
        openssl(&mut cmd);
        std::fs::read(&out).expect("read reply")
    }
}

/// DER `Ecdsa-Sig-Value` → fixed-width r||s (JWS/COSE form).
pub fn ecdsa_der_to_fixed(alg: SignatureAlgorithm, der: &[u8]) -> Vec<u8> {
    match alg {
        SignatureAlgorithm::Es256 => p256::ecdsa::Signature::from_der(der)
            .expect("openssl ECDSA DER")
            .to_bytes()
            .to_vec(),
        SignatureAlgorithm::Es384 => p384::ecdsa::Signature::from_der(der)
            .expect("openssl ECDSA DER")
            .to_bytes()
            .to_vec(),
        SignatureAlgorithm::Es512 => p521::ecdsa::Signature::from_der(der)
            .expect("openssl ECDSA DER")
            .to_bytes()
            .to_vec(),
        other => panic!("{other} is not ECDSA"),
    }
}

/// `now ± days`, for validity windows.
pub fn days_from_now(days: i64) -> SystemTime {
    let d = Duration::from_secs(days.unsigned_abs() * 86_400);
    if days >= 0 {
        SystemTime::now() + d
    } else {
        SystemTime::now() - d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed keys (testkit/keys/README.md) are there, of their size.
    #[test]
    fn committed_rsa_keys() {
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let mut names: Vec<(u32, String)> = Vec::new();
        for bits in [2048, 3072, 4096] {
            names.extend((0..8).map(|slot| (bits, format!("rsa{bits}-slot{slot}"))));
        }
        names.extend(
            (16..24)
                .chain(64..100)
                .map(|slot| (2048, format!("rsa2048-slot{slot}"))),
        );
        names.extend([1024, 2560].map(|bits| (bits, format!("rsa{bits}-odd"))));
        for (bits, name) in names {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("keys")
                .join(format!("{name}.pem"));
            let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let key = rsa::PrivateKey::from_pkcs8_pem(&pem).expect(&name);
            assert_eq!(key.n().bit_width(), bits, "{name}");
        }
    }
}
