//! Signs an OCI descriptor as `notation sign` does, with a private key and a
//! certificate chain read from PEM files, using the `openssl` CLI for the raw
//! signature. Used by the `notary-sign` example (integration/notary_sign.rs) and
//! the gate bench (benches/gate.rs).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::envelope_builder::{EnvelopeSpec, Format, Target};

/// A signing key with its chain (DER, leaf first) and the algorithm it implies.
pub struct Signer {
    key: PathBuf,
    chain: Vec<Vec<u8>>,
    /// JWS name: PS256/PS384/PS512 for RSA 2048/3072/4096, ES256/ES384/ES512 for
    /// P-256/P-384/P-521 (NOTARY.md §3).
    alg: &'static str,
}

impl Signer {
    pub fn load(key: &Path, chain_pem: &Path) -> Result<Signer, String> {
        let text = openssl(
            Command::new("openssl")
                .args(["pkey", "-noout", "-text", "-in"])
                .arg(key),
            None,
        )?;
        let text = String::from_utf8_lossy(&text);
        let bits: u32 = text
            .lines()
            .next()
            .and_then(|l| l.split_once('('))
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{}: cannot read the key size", key.display()))?;
        let rsa = text.contains("modulus:");
        let alg = match (rsa, bits) {
            (true, 2048) => "PS256",
            (true, 3072) => "PS384",
            (true, 4096) => "PS512",
            (false, 256) => "ES256",
            (false, 384) => "ES384",
            (false, 521) => "ES512",
            _ => {
                return Err(format!(
                    "{}: {} {bits}-bit keys are not a Notary signing key",
                    key.display(),
                    if rsa { "RSA" } else { "EC" }
                ))
            }
        };
        let pem = std::fs::read_to_string(chain_pem)
            .map_err(|e| format!("{}: {e}", chain_pem.display()))?;
        let chain = pem_certificates(&pem).map_err(|e| format!("{}: {e}", chain_pem.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: no certificate", chain_pem.display()));
        }
        Ok(Signer {
            key: key.to_owned(),
            chain,
            alg,
        })
    }

    pub fn alg(&self) -> &str {
        self.alg
    }

    /// The envelope (COSE or JWS) signing `target` now.
    pub fn envelope(&self, target: Target, format: Format) -> Result<Vec<u8>, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs() as i64;
        let spec = EnvelopeSpec {
            alg: self.alg.into(),
            signing_time: Some(now),
            target,
            certificate_chain: self.chain.clone(),
            signing_agent: Some("pullgate-notary-sign/0.1".into()),
            ..EnvelopeSpec::default()
        };
        let error = std::cell::RefCell::new(None);
        let envelope = spec.build(format, &|tbs| match self.sign(tbs) {
            Ok(sig) => sig,
            Err(e) => {
                *error.borrow_mut() = Some(e);
                Vec::new()
            }
        });
        match error.into_inner() {
            Some(e) => Err(e),
            None => Ok(envelope),
        }
    }

    /// RSASSA-PSS (MGF1 same hash, salt = hash length) or ECDSA as fixed-width r||s.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let md = match &self.alg[2..] {
            "256" => "sha256",
            "384" => "sha384",
            _ => "sha512",
        };
        let mut cmd = Command::new("openssl");
        cmd.args(["dgst", &format!("-{md}"), "-sign"])
            .arg(&self.key);
        if self.alg.starts_with("PS") {
            cmd.args([
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-sigopt",
                &format!("rsa_mgf1_md:{md}"),
            ]);
            return openssl(&mut cmd, Some(message));
        }
        let der = openssl(&mut cmd, Some(message))?;
        let fixed = match self.alg {
            "ES256" => p256::ecdsa::Signature::from_der(&der).map(|s| s.to_bytes().to_vec()),
            "ES384" => p384::ecdsa::Signature::from_der(&der).map(|s| s.to_bytes().to_vec()),
            _ => p521::ecdsa::Signature::from_der(&der).map(|s| s.to_bytes().to_vec()),
        };
        fixed.map_err(|e| format!("openssl returned no ECDSA signature: {e}"))
    }
}

/// The DER of every `CERTIFICATE` block, in file order.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b64 = body.take().ok_or("END without BEGIN")?;
            out.push(STANDARD.decode(b64).map_err(|e| format!("bad PEM: {e}"))?);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    Ok(out)
}

fn openssl(cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("openssl: {e}"))?;
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(data) = stdin {
        input
            .write_all(data)
            .map_err(|e| format!("openssl stdin: {e}"))?;
    }
    drop(input);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}
