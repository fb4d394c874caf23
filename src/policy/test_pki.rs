//! Certificates for the policy unit tests, made by the test kit's PKI
//! (`pullgate_testkit::pki`, the one builder the integration tests use too:
//! certificates made in process from typed specs), in the shapes these tests ask
//! for: a file name, an `openssl -subj` subject and `name=value` extension lines.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use pullgate_testkit::pki::{CertSpec, Issued, KeySpec, Pki};

pub(crate) struct TestPki {
    pki: Pki,
    /// The next key slot: every certificate of one `TestPki` gets its own key, so
    /// that an "issued" certificate never shares its issuer's key by accident.
    next_slot: AtomicU8,
}

pub(crate) struct Made {
    pub(crate) pem: Vec<u8>,
    pub(crate) der: Vec<u8>,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl From<Issued> for Made {
    fn from(issued: Issued) -> Made {
        Made {
            pem: issued.pem.into_bytes(),
            der: issued.der,
            cert: issued.cert_path,
            key: issued.key_path,
        }
    }
}

/// `key` in `openssl req -newkey` form: `rsa:2048` or `ec` (P-256).
fn key_spec(key: &str) -> KeySpec {
    match key {
        "rsa:2048" => KeySpec::Rsa2048,
        "ec" => KeySpec::P256,
        other => panic!("test key {other:?}: use rsa:2048 or ec"),
    }
}

/// A certificate spec with exactly the extension lines given (`name=value`, as
/// `openssl req -addext` takes them), and the kit's subject/authority key ids.
fn spec(subject: &str, key: KeySpec, slot: u8, exts: &[&str]) -> CertSpec {
    let mut spec = CertSpec::leaf(subject)
        .key(key)
        .slot(slot)
        .basic_constraints(None)
        .key_usage(None)
        .eku(None);
    for line in exts {
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("extension line {line:?} is not name=value"));
        let (name, value) = (name.trim(), value.trim());
        spec = match name {
            "basicConstraints" => spec.basic_constraints(Some(value)),
            "keyUsage" => spec.key_usage(Some(value)),
            "extendedKeyUsage" => spec.eku(Some(value)),
            _ => spec.extra(&format!("{name} = {value}")),
        };
    }
    spec
}

impl TestPki {
    pub(crate) fn new() -> TestPki {
        TestPki {
            pki: Pki::new(),
            // Above the kit's role slots (0-4), so these keys are the policy tests' own.
            next_slot: AtomicU8::new(16),
        }
    }

    fn slot(&self) -> u8 {
        let slot = self.next_slot.fetch_add(1, Ordering::SeqCst);
        assert!(
            slot < u8::MAX,
            "more certificates than key slots in one TestPki"
        );
        slot
    }

    /// A self-signed certificate with `key` (e.g. `rsa:2048`, `ec`) and `exts`.
    pub(crate) fn self_signed(&self, name: &str, subject: &str, key: &str, exts: &[&str]) -> Made {
        self.self_signed_with(name, subject, key, exts, &[])
    }

    /// [`TestPki::self_signed`] with extra `openssl` signing options; the one the
    /// tests use is an RSASSA-PSS self-signature (`-sigopt rsa_padding_mode:pss
    /// -sigopt rsa_pss_saltlen:digest`).
    pub(crate) fn self_signed_with(
        &self,
        _name: &str,
        subject: &str,
        key: &str,
        exts: &[&str],
        options: &[&str],
    ) -> Made {
        let mut spec = spec(subject, key_spec(key), self.slot(), exts);
        match options {
            [] => {}
            ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"] => {
                spec = spec.pss();
            }
            other => panic!("signing options {other:?}: only the PSS ones are supported"),
        }
        self.pki.self_signed(&spec).into()
    }

    pub(crate) fn root_ca(&self, name: &str, subject: &str) -> Made {
        self.self_signed(
            name,
            subject,
            "rsa:2048",
            &[
                "basicConstraints=critical,CA:TRUE",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )
    }

    pub(crate) fn self_signed_leaf(&self, name: &str, subject: &str) -> Made {
        self.self_signed(
            name,
            subject,
            "rsa:2048",
            &[
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature",
            ],
        )
    }

    /// A certificate issued by `ca`; `ext` is the extension lines, one a line.
    pub(crate) fn issued(&self, _name: &str, subject: &str, ca: &Made, ext: &str) -> Made {
        let exts: Vec<&str> = ext.lines().filter(|l| !l.trim().is_empty()).collect();
        let issuer = Issued {
            cert_path: ca.cert.clone(),
            key_path: ca.key.clone(),
            pem: String::from_utf8(ca.pem.clone()).expect("PEM is ASCII"),
            der: ca.der.clone(),
            key: KeySpec::Rsa2048,
            spec: CertSpec::ca(""),
        };
        self.pki
            .issue(
                &spec(subject, KeySpec::Rsa2048, self.slot(), &exts),
                &issuer,
            )
            .into()
    }

    pub(crate) fn leaf_of(&self, name: &str, subject: &str, ca: &Made) -> Made {
        self.issued(
            name,
            subject,
            ca,
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature",
        )
    }
}
