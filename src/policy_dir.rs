//! Reads a notation-layout policy directory (NOTARY.md §5, DESIGN.md "Configuration"):
//!
//! ```text
//! <dir>/trustpolicy.oci.json      preferred (notation-go main)
//! <dir>/trustpolicy.json          used when the .oci.json file does not exist (v1.3.x)
//! <dir>/truststore/x509/{ca,signingAuthority,tsa}/<name>/<certificate files>
//! ```
//!
//! notation's file rules apply: the policy file must be a regular file, not a
//! symlink; a store directory must exist and not be a symlink; every entry in it must
//! be a regular, non-symlink file. A sub-directory inside a store is an **error**, as
//! in notation-go (the spec says it is ignored; an error fails closed and tells the
//! operator). Only stores the policy references are loaded. Parsing and every rule on
//! contents are in the pure [`crate::policy`] module.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::policy::{PolicyError, TrustPolicyDocument, TrustStore, TrustStoreRef};

/// The preferred policy file name (notation-go main, spec #283).
pub const OCI_POLICY_FILE: &str = "trustpolicy.oci.json";
/// The fallback policy file name (notation v1.3.x reads only this one).
pub const LEGACY_POLICY_FILE: &str = "trustpolicy.json";
/// Largest policy file read: far above any real policy, it bounds memory on a
/// mistaken path (the same 4 MiB notation uses for manifests).
pub const MAX_POLICY_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest certificate file read; a certificate bundle of hundreds of roots is well
/// under this.
pub const MAX_CERT_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A loaded and validated policy directory.
#[derive(Debug, Clone)]
pub struct PolicyDir {
    pub document: TrustPolicyDocument,
    /// One per store referenced by any statement, in first-reference order.
    pub stores: Vec<TrustStore>,
    /// The policy file that was read.
    pub policy_file: PathBuf,
    /// The policy file's bytes and the loaded stores' certificates, hashed: what
    /// verdicts recorded in containerd are bound to ([`crate::verdict`]).
    pub fingerprint: crate::verdict::Fingerprint,
}

impl PolicyDir {
    /// The loaded store a policy reference names.
    pub fn store(&self, reference: &TrustStoreRef) -> Option<&TrustStore> {
        self.stores
            .iter()
            .find(|s| s.store_type == reference.store_type && s.name == reference.name)
    }
}

/// Why a policy directory cannot be loaded; every variant names the path at fault.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyDirError {
    #[error("{dir}: no trust policy file ({OCI_POLICY_FILE} or {LEGACY_POLICY_FILE})")]
    NoPolicyFile { dir: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: must be a regular file, not a symlink or other file type")]
    NotRegularFile { path: PathBuf },
    #[error("{path}: larger than the {limit}-byte limit")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path}: {source}")]
    Policy {
        path: PathBuf,
        #[source]
        source: Box<PolicyError>,
    },
    #[error("{path}: the trust store \"{store}\" does not exist")]
    StoreMissing { path: PathBuf, store: TrustStoreRef },
    #[error("{path}: the trust store \"{store}\" must be a directory, not a symlink or file")]
    StoreNotDirectory { path: PathBuf, store: TrustStoreRef },
    #[error("{path}: trust store \"{store}\" contains a sub-directory, which is not allowed")]
    StoreSubdirectory { path: PathBuf, store: TrustStoreRef },
    #[error("{path}: trust store \"{store}\" entries must be regular files, not symlinks")]
    StoreEntryNotRegular { path: PathBuf, store: TrustStoreRef },
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: Box<PolicyError>,
    },
}

/// Loads `dir`: the policy file (`trustpolicy.oci.json`, else `trustpolicy.json`),
/// then every store it references. Any error fails the whole load.
pub fn load_policy_dir(dir: &Path) -> Result<PolicyDir, PolicyDirError> {
    let policy_file = choose_policy_file(dir)?;
    let json = read_regular_file(&policy_file, MAX_POLICY_FILE_BYTES)?;
    let document = TrustPolicyDocument::parse(&json).map_err(|source| PolicyDirError::Policy {
        path: policy_file.clone(),
        source: Box::new(source),
    })?;
    if let Some(statement) = document.global_skip() {
        tracing::warn!(
            policy = %policy_file.display(),
            statement = %statement.name,
            "{}",
            global_skip_warning(&statement.name)
        );
    }
    let mut references: Vec<&TrustStoreRef> = Vec::new();
    for statement in &document.statements {
        for store in &statement.trust_stores {
            if !references.contains(&store) {
                references.push(store);
            }
        }
    }
    let stores = references
        .into_iter()
        .map(|r| load_store(dir, r))
        .collect::<Result<Vec<_>, _>>()?;
    let fingerprint = crate::verdict::Fingerprint::of(&json, &stores);
    Ok(PolicyDir {
        document,
        stores,
        policy_file,
        fingerprint,
    })
}

/// What a `skip` statement with the global scope `*` does to the node, for the load
/// warning and `pullgate policy check`.
pub fn global_skip_warning(statement: &str) -> String {
    format!(
        "trust policy statement \"{statement}\" has level skip with registry scope \"*\": every image no other statement names is pulled without signature verification"
    )
}

/// `trustpolicy.oci.json` if it exists in any form (a symlink there is an error, not a
/// reason to fall back), else `trustpolicy.json`.
fn choose_policy_file(dir: &Path) -> Result<PathBuf, PolicyDirError> {
    for name in [OCI_POLICY_FILE, LEGACY_POLICY_FILE] {
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(PolicyDirError::Io { path, source }),
        }
    }
    Err(PolicyDirError::NoPolicyFile {
        dir: dir.to_owned(),
    })
}

fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, PolicyDirError> {
    let io_err = |source| PolicyDirError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(PolicyDirError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    if meta.len() > limit {
        return Err(PolicyDirError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    fs::read(path).map_err(io_err)
}

fn load_store(dir: &Path, store: &TrustStoreRef) -> Result<TrustStore, PolicyDirError> {
    let path = dir
        .join("truststore")
        .join("x509")
        .join(store.store_type.as_str())
        .join(&store.name);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PolicyDirError::StoreMissing {
                path,
                store: store.clone(),
            })
        }
        Err(source) => return Err(PolicyDirError::Io { path, source }),
    };
    if !meta.file_type().is_dir() {
        return Err(PolicyDirError::StoreNotDirectory {
            path,
            store: store.clone(),
        });
    }
    let mut entries = fs::read_dir(&path)
        .and_then(|rd| rd.collect::<Result<Vec<_>, _>>())
        .map_err(|source| PolicyDirError::Io {
            path: path.clone(),
            source,
        })?;
    // Directory order is arbitrary; file-name order makes loads reproducible.
    entries.sort_by_key(|e| e.file_name());
    let mut files = Vec::with_capacity(entries.len());
    for entry in entries {
        let file = entry.path();
        let file_type = entry.file_type().map_err(|source| PolicyDirError::Io {
            path: file.clone(),
            source,
        })?;
        if file_type.is_dir() {
            return Err(PolicyDirError::StoreSubdirectory {
                path: file,
                store: store.clone(),
            });
        }
        if !file_type.is_file() {
            return Err(PolicyDirError::StoreEntryNotRegular {
                path: file,
                store: store.clone(),
            });
        }
        let bytes = read_regular_file(&file, MAX_CERT_FILE_BYTES)?;
        files.push((entry.file_name().to_string_lossy().into_owned(), bytes));
    }
    TrustStore::from_files(store.store_type, &store.name, files).map_err(|source| {
        PolicyDirError::Store {
            path,
            source: Box::new(source),
        }
    })
}

#[cfg(test)]
mod tests;
