//! Revocation fixtures made with the real `openssl` CLI (OpenSSL 3.0): an `openssl ca`
//! database per issuing CA ([`Ca`]), CRLs from `openssl ca -gencrl`, delta CRLs from
//! `openssl crl -gendelta`, OCSP requests from `openssl ocsp -reqout` and responses
//! from the offline responder `openssl ocsp -index ... -respout`.
//!
//! Certificates come from [`Pki::issue`] (`crate::pki`); [`Ca`] keeps the
//! `index.txt` lines openssl reads, written directly so that revocation dates, reasons
//! and invalidity dates are exact. `openssl ca -gencrl` always stamps the current time
//! and cannot omit nextUpdate, set a DeltaCRLIndicator or write removeFromCRL into a
//! delta: [`Ca::sign_crl`] builds those few CRLs with x509-cert's encoder and signs
//! them with `openssl dgst` under the CA key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use der::asn1::{BitString, Ia5String, Uint};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{CrlReason, FreshestCrl};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::pki::{civil, openssl, CertSpec, Issued, Pki};

/// `YYMMDDHHMMSSZ`, the date form of `index.txt` (dates before 2050).
fn utc_time(t: SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = civil(t);
    format!("{:02}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z", y % 100)
}

/// `YYYYMMDDHHMMSSZ`, the compromise-time form of `index.txt`.
fn generalized_time(t: SystemTime) -> String {
    let (y, m, d, hh, mm, ss) = civil(t);
    format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z")
}

/// Upper-case hex of a serial magnitude, as openssl's index holds it.
pub fn serial_hex(serial: &[u8]) -> String {
    if serial.is_empty() {
        return "00".to_string();
    }
    serial.iter().map(|b| format!("{b:02X}")).collect()
}

/// How a certificate is revoked in the CA database (the `openssl ca -revoke`
/// `-crl_reason` / `-crl_hold` / `-crl_compromise` forms of the index).
#[derive(Debug, Clone, Copy)]
pub enum Revocation {
    /// A reasonCode openssl knows by name: `keyCompromise`, `superseded`,
    /// `removeFromCRL`, ...
    Reason(&'static str),
    /// No reasonCode at all.
    NoReason,
    /// certificateHold (hold instruction reject).
    Hold,
    /// keyCompromise with this invalidityDate (CRL entry extension and OCSP
    /// singleExtension).
    KeyCompromiseSince(SystemTime),
}

struct Record {
    serial: String,
    expiry: String,
    subject: String,
    revoked: Option<(SystemTime, Revocation)>,
}

impl Record {
    fn line(&self) -> String {
        let (status, revinfo) = match self.revoked {
            None => ("V", String::new()),
            Some((at, how)) => {
                let at = utc_time(at);
                let revinfo = match how {
                    Revocation::NoReason => at,
                    Revocation::Reason(reason) => format!("{at},{reason}"),
                    Revocation::Hold => format!("{at},certificateHold,holdInstructionReject"),
                    Revocation::KeyCompromiseSince(since) => {
                        format!("{at},keyTime,{}", generalized_time(since))
                    }
                };
                ("R", revinfo)
            }
        };
        format!(
            "{status}\t{}\t{revinfo}\t{}\tunknown\t{}\n",
            self.expiry, self.serial, self.subject
        )
    }
}

/// What `openssl ca -gencrl` is asked for.
#[derive(Debug, Clone)]
pub struct CrlSpec {
    /// CRLNumber; `None`: no crlnumber file, so a v1 CRL when nothing else needs v2.
    pub number: Option<u32>,
    /// nextUpdate = now + hours.
    pub hours: u32,
    /// `crl_extensions` section lines, e.g. `1.2.3.4 = critical,ASN1:NULL`.
    pub extensions: Vec<String>,
}

impl Default for CrlSpec {
    fn default() -> Self {
        CrlSpec {
            number: Some(1),
            hours: 24,
            extensions: vec!["authorityKeyIdentifier = keyid".to_string()],
        }
    }
}

/// A CRL as openssl wrote it.
pub struct CrlFile {
    pub der: Vec<u8>,
    pub pem: Vec<u8>,
    pub pem_path: PathBuf,
}

/// One entry of a [`CrlDraft`].
#[derive(Debug, Clone)]
pub struct DraftEntry {
    pub serial: Vec<u8>,
    pub revoked_at: SystemTime,
    pub reason: Option<CrlReason>,
}

/// A CRL openssl cannot make, encoded here and signed by `openssl dgst` (see
/// [`Ca::sign_crl`]).
#[derive(Debug, Clone)]
pub struct CrlDraft {
    pub this_update: SystemTime,
    pub next_update: Option<SystemTime>,
    pub number: Option<u32>,
    /// DeltaCRLIndicator (critical): makes this a delta CRL on that base number.
    pub delta_base: Option<u32>,
    /// A FreshestCRL URI.
    pub freshest_crl: Option<String>,
    pub entries: Vec<DraftEntry>,
}

/// How `openssl ocsp` answers.
#[derive(Debug, Clone, Copy)]
pub struct OcspSpec {
    /// `-ndays`: nextUpdate = thisUpdate + days; `None`: no nextUpdate.
    pub next_update_days: Option<u32>,
    /// `-resp_no_certs`: no certificate in the response.
    pub no_certs: bool,
    /// `-resp_key_id`: ResponderID byKey instead of byName.
    pub by_key: bool,
}

impl Default for OcspSpec {
    fn default() -> Self {
        OcspSpec {
            next_update_days: Some(1),
            no_certs: false,
            by_key: false,
        }
    }
}

/// An issuing CA with an `openssl ca` database.
pub struct Ca {
    pub cert: Issued,
    dir: PathBuf,
    records: Vec<Record>,
    outputs: AtomicUsize,
}

static FRESH_NAMES: AtomicUsize = AtomicUsize::new(0);

impl Ca {
    /// A database for `cert` (which must carry its key) in a fresh directory of `pki`.
    pub fn new(pki: &Pki, cert: Issued) -> Ca {
        let dir = pki.dir().join(format!(
            "revocation-ca-{}",
            FRESH_NAMES.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        Ca {
            cert,
            dir,
            records: Vec::new(),
            outputs: AtomicUsize::new(0),
        }
    }

    fn output(&self, name: &str) -> PathBuf {
        let n = self.outputs.fetch_add(1, Ordering::SeqCst);
        self.dir.join(format!("{n:03}-{name}"))
    }

    /// A certificate issued by this CA and recorded as valid in its database.
    pub fn issue(&mut self, pki: &Pki, spec: &CertSpec) -> Issued {
        let issued = pki.issue(spec, &self.cert);
        self.records.push(Record {
            serial: serial_hex(issued.cert().serial_bytes()),
            expiry: utc_time(spec.not_after),
            subject: spec.subject.clone(),
            revoked: None,
        });
        issued
    }

    /// Marks an issued certificate revoked at `at`.
    pub fn revoke(&mut self, cert: &Issued, at: SystemTime, how: Revocation) {
        let serial = serial_hex(cert.cert().serial_bytes());
        let record = self
            .records
            .iter_mut()
            .find(|r| r.serial == serial)
            .expect("certificate was issued through this Ca");
        record.revoked = Some((at, how));
    }

    /// Records a revoked serial that was never issued here (bulk CRLs).
    pub fn revoke_serial(&mut self, serial: &[u8], at: SystemTime, how: Revocation) {
        self.records.push(Record {
            serial: serial_hex(serial),
            expiry: "491231235959Z".to_string(),
            subject: format!("/CN=revoked {}", serial_hex(serial)),
            revoked: Some((at, how)),
        });
    }

    /// Writes the database as it stands and returns its `index.txt`, for an
    /// `openssl ocsp -index` responder (which re-reads it when it changes).
    pub fn database(&self) -> PathBuf {
        self.write_database()
    }

    fn write_database(&self) -> PathBuf {
        let index = self.dir.join("index.txt");
        let lines: String = self.records.iter().map(Record::line).collect();
        std::fs::write(&index, lines).expect("write index.txt");
        std::fs::write(self.dir.join("index.txt.attr"), "unique_subject = no\n")
            .expect("write index.txt.attr");
        index
    }

    /// `openssl ca -gencrl` over the current database.
    pub fn crl(&self, spec: &CrlSpec) -> CrlFile {
        let index = self.write_database();
        let mut config = format!(
            "[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = {}\ndefault_md = sha256\n",
            index.display()
        );
        if let Some(number) = spec.number {
            let file = self.dir.join("crlnumber");
            std::fs::write(&file, format!("{number:02X}\n")).expect("write crlnumber");
            config += &format!("crlnumber = {}\n", file.display());
        }
        if !spec.extensions.is_empty() {
            config += "crl_extensions = crl_ext\n[crl_ext]\n";
            for line in &spec.extensions {
                config += line;
                config += "\n";
            }
        }
        let config_path = self.output("crl.cnf");
        std::fs::write(&config_path, config).expect("write crl.cnf");
        let pem_path = self.output("crl.pem");
        openssl(
            Command::new("openssl")
                .args(["ca", "-batch", "-gencrl", "-config"])
                .arg(&config_path)
                .arg("-cert")
                .arg(&self.cert.cert_path)
                .arg("-keyfile")
                .arg(&self.cert.key_path)
                .args(["-crlhours", &spec.hours.to_string(), "-out"])
                .arg(&pem_path),
        );
        CrlFile {
            der: crl_pem_to_der(&pem_path),
            pem: std::fs::read(&pem_path).expect("read CRL"),
            pem_path,
        }
    }

    /// `openssl crl -gendelta`: a delta CRL (DeltaCRLIndicator = base's number)
    /// holding the entries of `newer` that `base` lacks, signed with SHA-256.
    pub fn delta_crl(&self, base: &CrlFile, newer: &CrlFile) -> Vec<u8> {
        let out = self.output("delta.pem");
        openssl(
            Command::new("openssl")
                .args(["crl", "-in"])
                .arg(&base.pem_path)
                .arg("-gendelta")
                .arg(&newer.pem_path)
                .arg("-key")
                .arg(&self.cert.key_path)
                .args(["-sha256", "-out"])
                .arg(&out),
        );
        crl_pem_to_der(&out)
    }

    /// Encodes `draft` as a v2 CRL from this CA (issuer = its subject, AKI-less) and
    /// signs it with sha256WithRSAEncryption by `openssl dgst` under the CA key (an
    /// RSA CA key: [`CertSpec::ca`]'s default).
    pub fn sign_crl(&self, draft: &CrlDraft) -> Vec<u8> {
        let algorithm = AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(der::Any::null()),
        };
        let issuer = Name::from_der(self.cert.cert().raw_subject_der()).expect("CA subject");
        let time = |t: SystemTime| Time::try_from(t).expect("encodable time");
        let integer = |n: u32| {
            Uint::new(&n.to_be_bytes())
                .expect("uint")
                .to_der()
                .expect("der")
        };
        let mut extensions = Vec::new();
        if let Some(number) = draft.number {
            extensions.push(Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
                critical: false,
                extn_value: der::asn1::OctetString::new(integer(number)).expect("octets"),
            });
        }
        if let Some(base) = draft.delta_base {
            extensions.push(Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_DELTA_CRL_INDICATOR,
                critical: true,
                extn_value: der::asn1::OctetString::new(integer(base)).expect("octets"),
            });
        }
        if let Some(url) = &draft.freshest_crl {
            let points = FreshestCrl(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new(url).expect("ia5")),
                ])),
                reasons: None,
                crl_issuer: None,
            }]);
            extensions.push(Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_FRESHEST_CRL,
                critical: false,
                extn_value: der::asn1::OctetString::new(points.to_der().expect("der"))
                    .expect("octets"),
            });
        }
        let revoked: Vec<RevokedCert> = draft
            .entries
            .iter()
            .map(|entry| RevokedCert {
                serial_number: SerialNumber::new(&entry.serial).expect("serial"),
                revocation_date: time(entry.revoked_at),
                crl_entry_extensions: entry.reason.map(|reason| {
                    vec![Extension {
                        extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                        critical: false,
                        extn_value: der::asn1::OctetString::new(reason.to_der().expect("der"))
                            .expect("octets"),
                    }]
                }),
            })
            .collect();
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: algorithm.clone(),
            issuer,
            this_update: time(draft.this_update),
            next_update: draft.next_update.map(time),
            revoked_certificates: (!revoked.is_empty()).then_some(revoked),
            crl_extensions: (!extensions.is_empty()).then_some(extensions),
        };
        let tbs_path = self.output("tbs.der");
        std::fs::write(&tbs_path, tbs.to_der().expect("encode tbsCertList")).expect("write");
        let signature = openssl(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(&self.cert.key_path)
                .arg(&tbs_path),
        );
        CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: algorithm,
            signature: BitString::from_bytes(&signature).expect("bit string"),
        }
        .to_der()
        .expect("encode CRL")
    }

    /// `openssl ocsp` as an offline responder over this CA's database: answers the DER
    /// OCSPRequest `request` signed by `responder` (this CA, or a delegated responder).
    pub fn ocsp_response(&self, request: &[u8], responder: &Issued, spec: OcspSpec) -> Vec<u8> {
        let index = self.write_database();
        let request_path = self.output("request.der");
        std::fs::write(&request_path, request).expect("write request");
        let out = self.output("response.der");
        let mut cmd = Command::new("openssl");
        cmd.args(["ocsp", "-index"])
            .arg(&index)
            .arg("-CA")
            .arg(&self.cert.cert_path)
            .arg("-rsigner")
            .arg(&responder.cert_path)
            .arg("-rkey")
            .arg(&responder.key_path)
            .arg("-reqin")
            .arg(&request_path)
            .arg("-respout")
            .arg(&out);
        if let Some(days) = spec.next_update_days {
            cmd.args(["-ndays", &days.to_string()]);
        }
        if spec.no_certs {
            cmd.arg("-resp_no_certs");
        }
        if spec.by_key {
            cmd.arg("-resp_key_id");
        }
        openssl(&mut cmd);
        std::fs::read(&out).expect("read OCSP response")
    }
}

fn crl_pem_to_der(pem: &Path) -> Vec<u8> {
    openssl(
        Command::new("openssl")
            .args(["crl", "-outform", "DER", "-in"])
            .arg(pem),
    )
}

/// The OCSPRequest openssl makes for `cert` (`openssl ocsp -issuer -cert -no_nonce
/// -reqout`), with a CertID hashed by `digest` (`sha1`, `sha256`).
pub fn openssl_ocsp_request(dir: &Path, issuer: &Issued, cert: &Issued, digest: &str) -> Vec<u8> {
    let out = dir.join(format!(
        "ocsp-request-{}.der",
        FRESH_NAMES.fetch_add(1, Ordering::SeqCst)
    ));
    openssl(
        Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(&issuer.cert_path)
            // The CertID digest applies to the `-cert` options after it.
            .arg(format!("-{digest}"))
            .arg("-cert")
            .arg(&cert.cert_path)
            .args(["-no_nonce", "-reqout"])
            .arg(&out),
    );
    std::fs::read(&out).expect("read OCSP request")
}

/// `openssl ocsp -reqin -req_text` of a DER request.
pub fn ocsp_request_text(dir: &Path, request: &[u8]) -> String {
    let path = dir.join(format!(
        "ocsp-request-{}.der",
        FRESH_NAMES.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, request).expect("write request");
    let out = openssl(
        Command::new("openssl")
            .args(["ocsp", "-req_text", "-reqin"])
            .arg(&path),
    );
    String::from_utf8(out).expect("text")
}

/// The instant `secs` after the Unix epoch (exact revocation dates).
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(secs)
}
