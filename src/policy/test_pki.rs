//! Certificates made at test time with the `openssl` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct TestPki {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct Made {
    pub(crate) pem: Vec<u8>,
    pub(crate) der: Vec<u8>,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestPki {
    pub(crate) fn new() -> TestPki {
        TestPki {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn finish(&self, name: &str) -> Made {
        let cert = self.path(&format!("{name}.pem"));
        let der = self.path(&format!("{name}.der"));
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-in",
                &format!("{name}.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("{name}.der"),
            ],
        );
        Made {
            pem: std::fs::read(&cert).unwrap(),
            der: std::fs::read(der).unwrap(),
            cert,
            key: self.path(&format!("{name}.key")),
        }
    }

    /// A self-signed certificate with `key` (e.g. `rsa:2048`, `ec`) and `exts`.
    pub(crate) fn self_signed(&self, name: &str, subject: &str, key: &str, exts: &[&str]) -> Made {
        self.self_signed_with(name, subject, key, exts, &[])
    }

    /// [`TestPki::self_signed`] with extra `openssl req` options (e.g. `-sigopt`).
    pub(crate) fn self_signed_with(
        &self,
        name: &str,
        subject: &str,
        key: &str,
        exts: &[&str],
        options: &[&str],
    ) -> Made {
        let mut args = vec![
            "req", "-x509", "-newkey", key, "-nodes", "-days", "3650", "-sha256", "-subj", subject,
        ];
        args.extend(options);
        let keyout = format!("{name}.key");
        let out = format!("{name}.pem");
        args.extend(["-keyout", &keyout, "-out", &out]);
        if key == "ec" {
            args.extend(["-pkeyopt", "ec_paramgen_curve:P-256"]);
        }
        for e in exts {
            args.extend(["-addext", e]);
        }
        openssl(self.dir.path(), &args);
        self.finish(name)
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

    /// A certificate issued by `ca`; `ext` is the extension config body.
    pub(crate) fn issued(&self, name: &str, subject: &str, ca: &Made, ext: &str) -> Made {
        let ext_file = format!("{name}.ext");
        std::fs::write(self.path(&ext_file), format!("[v3]\n{ext}\n")).unwrap();
        openssl(
            self.dir.path(),
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                subject,
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                ca.cert.to_str().unwrap(),
                "-CAkey",
                ca.key.to_str().unwrap(),
                "-CAcreateserial",
                "-days",
                "365",
                "-sha256",
                "-extfile",
                &ext_file,
                "-extensions",
                "v3",
                "-out",
                &format!("{name}.pem"),
            ],
        );
        self.finish(name)
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
