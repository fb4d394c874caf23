//! Where revocation data is kept: OCSP answers in memory until their nextUpdate;
//! CRLs in memory and on disk (keyed by URL) until their nextUpdate; CRL files an
//! operator ships in `crl_dir`. Everything taken from a cache or a file is
//! validated again against the issuer and the time before it is used.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use lru::LruCache;
use sha2::{Digest as _, Sha256};

use crate::pki::revocation::{Crl, OcspAnswer};
use crate::pki::Certificate;

/// OCSP answers kept in memory.
const MAX_OCSP_ANSWERS: usize = 4096;
/// Parsed CRLs kept in memory (each indexed; the disk cache holds the rest).
const MAX_MEMORY_CRLS: usize = 64;

pub(super) struct Store {
    cache_dir: Option<PathBuf>,
    max_cache_bytes: u64,
    crl_dir: Option<PathBuf>,
    ocsp: Mutex<LruCache<(String, Vec<u8>), OcspAnswer>>,
    /// Parsed CRLs by URL, with the issuer certificate (DER) each was validated
    /// against: a hit for the same issuer needs only the time checked again.
    crls: Mutex<LruCache<String, ValidatedCrl>>,
    shipped: Mutex<Shipped>,
}

/// A parsed CRL and the DER of the issuer certificate it was validated against.
type ValidatedCrl = (Arc<Crl>, Vec<u8>);

/// The parsed contents of `crl_dir`, re-read when the directory changes.
#[derive(Default)]
struct Shipped {
    stamp: Option<(SystemTime, u64)>,
    crls: Vec<(String, Arc<Crl>)>,
    /// (index into `crls`, issuer certificate DER) pairs whose signature checked.
    validated: std::collections::HashSet<(usize, Vec<u8>)>,
}

/// Within thisUpdate ≤ now < nextUpdate: what `Crl::validate` checks of the time,
/// the only part of a validated CRL that changes.
fn current(crl: &Crl, now: SystemTime) -> bool {
    crl.this_update() <= now && crl.next_update().is_some_and(|next| next > now)
}

/// A CRL already validated for `issuer` needs only the time checked; else the
/// whole validation.
fn still_valid(crl: &Crl, validated_for: &[u8], issuer: &Certificate, now: SystemTime) -> bool {
    if validated_for == issuer.der() {
        current(crl, now)
    } else {
        crl.validate(issuer, now).is_ok()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    pub(super) fn new(
        cache_dir: Option<PathBuf>,
        max_cache_bytes: u64,
        crl_dir: Option<PathBuf>,
    ) -> Store {
        let bound = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Store {
            cache_dir,
            max_cache_bytes,
            crl_dir,
            ocsp: Mutex::new(LruCache::new(bound(MAX_OCSP_ANSWERS))),
            crls: Mutex::new(LruCache::new(bound(MAX_MEMORY_CRLS))),
            shipped: Mutex::new(Shipped::default()),
        }
    }

    /// A cached OCSP answer for `request` from `url` that is still current.
    pub(super) fn ocsp(&self, url: &str, request: &[u8], now: SystemTime) -> Option<OcspAnswer> {
        let mut cache = lock(&self.ocsp);
        let key = (url.to_owned(), request.to_vec());
        match cache.get(&key) {
            Some(answer) if answer.next_update > now => Some(answer.clone()),
            Some(_) => {
                cache.pop(&key);
                None
            }
            None => None,
        }
    }

    pub(super) fn keep_ocsp(&self, url: &str, request: &[u8], answer: OcspAnswer) {
        lock(&self.ocsp).put((url.to_owned(), request.to_vec()), answer);
    }

    /// The CRL cached for `url` (memory, else disk) if it is still valid for
    /// `issuer` at `now`, and which cache held it (`crl_memory`, `crl_disk`).
    pub(super) fn cached_crl(
        &self,
        url: &str,
        issuer: &Certificate,
        now: SystemTime,
    ) -> Option<(Arc<Crl>, &'static str)> {
        let from_memory = lock(&self.crls).get(url).cloned();
        if let Some((crl, validated_for)) = from_memory {
            if still_valid(&crl, &validated_for, issuer, now) {
                return Some((crl, "crl_memory"));
            }
            lock(&self.crls).pop(url);
        }
        let path = self.cache_path(url)?;
        let bytes = std::fs::read(&path).ok()?;
        match Crl::from_der(&bytes) {
            Ok(crl) if crl.validate(issuer, now).is_ok() => {
                let crl = Arc::new(crl);
                lock(&self.crls).put(url.to_owned(), (Arc::clone(&crl), issuer.der().to_vec()));
                Some((crl, "crl_disk"))
            }
            // Stale, damaged or not this issuer's: fetch again.
            _ => None,
        }
    }

    /// Keeps a fetched CRL, validated for `issuer`, in memory and on disk.
    pub(super) fn keep_crl(&self, url: &str, crl: Arc<Crl>, issuer: &Certificate) {
        if let Some(path) = self.cache_path(url) {
            if let Err(error) = write_atomically(&path, crl.der()) {
                tracing::warn!(path = %path.display(), %error, "cannot cache a CRL on disk");
            } else {
                self.bound_cache(&path);
            }
        }
        lock(&self.crls).put(url.to_owned(), (crl, issuer.der().to_vec()));
    }

    /// A CRL from `crl_dir` issued by `issuer` and valid at `now` (a delta CRL
    /// when `delta`, else a base CRL), with its file name; the newest (latest
    /// thisUpdate) when several are.
    pub(super) fn shipped_crl(
        &self,
        issuer: &Certificate,
        now: SystemTime,
        delta: bool,
    ) -> Option<(String, Arc<Crl>)> {
        let dir = self.crl_dir.as_ref()?;
        let mut shipped = lock(&self.shipped);
        let stamp = dir_stamp(dir);
        if stamp.is_none() || shipped.stamp != stamp {
            shipped.crls = read_crl_dir(dir);
            shipped.validated.clear();
            shipped.stamp = stamp;
        }
        let Shipped {
            crls, validated, ..
        } = &mut *shipped;
        crls.iter()
            .enumerate()
            .filter(|(_, (_, crl))| crl.issuer_der() == issuer.raw_subject_der())
            .filter(|(_, (_, crl))| crl.delta_base().is_some() == delta)
            .filter(|(_, (_, crl))| current(crl, now))
            .filter(|(index, (_, crl))| {
                let key = (*index, issuer.der().to_vec());
                validated.contains(&key)
                    || (crl.validate(issuer, now).is_ok() && validated.insert(key))
            })
            .max_by_key(|(_, (_, crl))| crl.this_update())
            .map(|(_, (name, crl))| (name.clone(), Arc::clone(crl)))
    }

    fn cache_path(&self, url: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!("{}.crl", url_key(url))))
    }

    /// Removes the least recently written CRL files (never `keep`) until the
    /// directory is within its bound.
    fn bound_cache(&self, keep: &Path) {
        let Some(dir) = &self.cache_dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "crl"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_cache_bytes {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// A file name for `url`: the hex SHA-256 of the URL.
pub(super) fn url_key(url: &str) -> String {
    Sha256::digest(url.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it
/// over `path`: a crash leaves the old file or the new one, never half of one.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile_in(dir)?;
    let result = (|| {
        temp.1.write_all(bytes)?;
        temp.1.sync_all()?;
        std::fs::rename(&temp.0, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp.0);
    }
    result
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

/// The directory's modification time and entry count: what changes when a file
/// is added, removed or renamed into it.
fn dir_stamp(dir: &Path) -> Option<(SystemTime, u64)> {
    let modified = std::fs::metadata(dir).ok()?.modified().ok()?;
    let count = std::fs::read_dir(dir).ok()?.count() as u64;
    Some((modified, count))
}

/// Every file in `dir` that parses as a CRL (PEM or DER); others are logged and
/// skipped.
fn read_crl_dir(dir: &Path) -> Vec<(String, Arc<Crl>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read the CRL directory");
        return Vec::new();
    };
    let mut crls = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = path.display().to_string();
        match std::fs::read(&path).map(|bytes| Crl::from_pem_or_der(&bytes)) {
            Ok(Ok(crl)) => crls.push((name, Arc::new(crl))),
            Ok(Err(error)) => tracing::warn!(file = %name, %error, "not a CRL; skipped"),
            Err(error) => tracing::warn!(file = %name, %error, "cannot read; skipped"),
        }
    }
    crls.sort_by(|a, b| a.0.cmp(&b.0));
    crls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.crl");
        write_atomically(&path, b"first").expect("write");
        write_atomically(&path, b"second").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["x.crl".to_owned()]);
    }

    #[test]
    fn the_disk_cache_is_bounded_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(Some(dir.path().to_owned()), 25, None);
        let mut paths = Vec::new();
        for i in 0..4 {
            let path = dir.path().join(format!("{i}.crl"));
            std::fs::write(&path, [0u8; 10]).expect("write");
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(when))
                .expect("set mtime");
            paths.push(path);
        }
        store.bound_cache(&paths[0]);
        // 40 bytes over a 25-byte bound: the oldest files go first, but never
        // the one just written (0); 1 and 2 are removed.
        let left: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
        assert_eq!(left, vec![true, false, false, true]);
    }
}
