use std::os::unix::fs::symlink;

use super::*;
use crate::policy::test_pki::TestPki;
use crate::policy::StoreType;

const POLICY: &str = r#"{"version": "1.0", "trustPolicies": [{
    "name": "p", "registryScopes": ["*"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:roots", "tsa:tsa-roots"], "trustedIdentities": ["*"]}]}"#;

struct Layout {
    dir: tempfile::TempDir,
    pki: TestPki,
}

impl Layout {
    /// A valid directory: the policy above as `trustpolicy.json`, `ca:roots` holding a
    /// root CA and `tsa:tsa-roots` holding another.
    fn new() -> Layout {
        let layout = Layout {
            dir: tempfile::tempdir().unwrap(),
            pki: TestPki::new(),
        };
        fs::write(layout.dir.path().join(LEGACY_POLICY_FILE), POLICY).unwrap();
        let ca = layout.pki.root_ca("ca", "/C=US/ST=WA/O=Acme/CN=Root");
        let tsa = layout.pki.root_ca("tsa", "/C=US/ST=WA/O=Acme/CN=TSA Root");
        fs::create_dir_all(layout.store("ca", "roots")).unwrap();
        fs::write(layout.store("ca", "roots").join("root.crt"), &ca.pem).unwrap();
        fs::create_dir_all(layout.store("tsa", "tsa-roots")).unwrap();
        fs::write(layout.store("tsa", "tsa-roots").join("root.cer"), &tsa.der).unwrap();
        layout
    }

    fn store(&self, t: &str, name: &str) -> PathBuf {
        self.dir.path().join("truststore/x509").join(t).join(name)
    }
}

#[test]
fn loads_referenced_stores() {
    let l = Layout::new();
    // An unreferenced broken store is not read.
    fs::create_dir_all(l.store("signingAuthority", "unused")).unwrap();
    fs::write(l.store("signingAuthority", "unused").join("junk"), b"junk").unwrap();
    let loaded = load_policy_dir(l.dir.path()).unwrap();
    assert_eq!(loaded.policy_file, l.dir.path().join(LEGACY_POLICY_FILE));
    assert_eq!(loaded.stores.len(), 2);
    assert_eq!(loaded.stores[0].store_type, StoreType::Ca);
    assert_eq!(loaded.stores[1].store_type, StoreType::Tsa);
    let r = &loaded.document.statements[0].trust_stores[0];
    assert_eq!(loaded.store(r).unwrap().certificates_der.len(), 1);
}

#[test]
fn oci_policy_file_preferred() {
    let l = Layout::new();
    let oci = POLICY.replace("\"name\": \"p\"", "\"name\": \"from-oci\"");
    fs::write(l.dir.path().join(OCI_POLICY_FILE), oci).unwrap();
    let loaded = load_policy_dir(l.dir.path()).unwrap();
    assert_eq!(loaded.policy_file, l.dir.path().join(OCI_POLICY_FILE));
    assert_eq!(loaded.document.statements[0].name, "from-oci");
}

#[test]
fn no_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        load_policy_dir(dir.path()),
        Err(PolicyDirError::NoPolicyFile { .. })
    ));
}

#[test]
fn symlinked_policy_file_rejected() {
    let l = Layout::new();
    let real = l.dir.path().join("real.json");
    fs::write(&real, POLICY).unwrap();
    symlink(&real, l.dir.path().join(OCI_POLICY_FILE)).unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(&err, PolicyDirError::NotRegularFile { path } if path.ends_with(OCI_POLICY_FILE)),
        "{err:?}"
    );
}

#[test]
fn invalid_policy_names_the_file() {
    let l = Layout::new();
    fs::write(
        l.dir.path().join(LEGACY_POLICY_FILE),
        r#"{"version": "1.0", "trustPolicies": []}"#,
    )
    .unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            PolicyDirError::Policy { source, .. } if matches!(**source, PolicyError::NoStatements)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(LEGACY_POLICY_FILE), "{err}");
}

#[test]
fn missing_store_rejected() {
    let l = Layout::new();
    fs::remove_dir_all(l.store("tsa", "tsa-roots")).unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(&err, PolicyDirError::StoreMissing { store, .. } if store.to_string() == "tsa:tsa-roots"),
        "{err:?}"
    );
}

#[test]
fn symlinked_store_dir_rejected() {
    let l = Layout::new();
    let roots = l.store("ca", "roots");
    let moved = l.dir.path().join("elsewhere");
    fs::rename(&roots, &moved).unwrap();
    symlink(&moved, &roots).unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(&err, PolicyDirError::StoreNotDirectory { .. }),
        "{err:?}"
    );
}

#[test]
fn subdirectory_in_store_rejected() {
    let l = Layout::new();
    fs::create_dir(l.store("ca", "roots").join("nested")).unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(&err, PolicyDirError::StoreSubdirectory { path, .. } if path.ends_with("nested")),
        "{err:?}"
    );
}

#[test]
fn symlinked_certificate_file_rejected() {
    let l = Layout::new();
    symlink(
        l.store("ca", "roots").join("root.crt"),
        l.store("ca", "roots").join("link.crt"),
    )
    .unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(&err, PolicyDirError::StoreEntryNotRegular { path, .. } if path.ends_with("link.crt")),
        "{err:?}"
    );
}

#[test]
fn empty_store_dir_rejected() {
    let l = Layout::new();
    fs::remove_file(l.store("ca", "roots").join("root.crt")).unwrap();
    let err = load_policy_dir(l.dir.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            PolicyDirError::Store { source, .. } if matches!(**source, PolicyError::EmptyStore { .. })
        ),
        "{err:?}"
    );
}
