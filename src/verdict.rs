//! Verdicts that outlive the pull (issue 12): what pullgate concluded about an image
//! digest under one trust policy, kept in memory and recorded as a label on the
//! image's records in containerd, so that `ImageStatus`, `CreateContainer` and
//! `RunPodSandbox` can ask "does this image have a current allow verdict?" without a
//! registry request, across restarts of pullgate.
//!
//! A verdict is bound to a [`Fingerprint`]: a SHA-256 over the trust policy file and
//! every trust store certificate the policy references. Any edit to either makes
//! every recorded verdict stale at once. It is bound to the digest it was reached
//! for: a record retargeted by `ctr images tag` to other content does not carry the
//! verdict along. And it ends when what it rests on ends (the signature's expiry, a
//! certificate's notAfter), or after `[policy] verdict_max_age` when that is set.
//!
//! The label is `io.pullgate.verdict.<first 16 hex digits of the fingerprint>` with
//! the value `v1;<outcome>;<digest>;<verified-at>;<valid-until or ->;<statement>`
//! (times in RFC 3339, UTC); one label per policy, so per-namespace policies keep
//! their verdicts side by side on one image.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use crate::pki::time::{parse_rfc3339, rfc3339};
use crate::reference::Digest;

/// The prefix of every verdict label key.
pub const LABEL_PREFIX: &str = "io.pullgate.verdict.";

/// What a trust policy and its trust stores hash to (hex SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of a policy file's bytes and the stores it loaded, each
    /// store by type, name and certificates in file order.
    pub fn of(policy_json: &[u8], stores: &[crate::policy::TrustStore]) -> Fingerprint {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        field(policy_json);
        for store in stores {
            field(store.store_type.to_string().as_bytes());
            field(store.name.as_bytes());
            for der in &store.certificates_der {
                field(der);
            }
        }
        let digest = hash.finalize();
        Fingerprint(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A fingerprint from its hex text (tests, labels read back).
    pub fn from_hex(hex: &str) -> Fingerprint {
        Fingerprint(hex.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label key this policy's verdicts are recorded under.
    pub fn label_key(&self) -> String {
        format!("{LABEL_PREFIX}{}", &self.0[..self.0.len().min(16)])
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An allow verdict for one digest under one policy's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `verified`, `allowed-with-failures` or `skipped` ([`crate::gate::AllowOutcome`]).
    pub outcome: String,
    pub digest: Digest,
    pub verified_at: SystemTime,
    /// `None`: nothing it rests on expires.
    pub valid_until: Option<SystemTime>,
    /// The trust policy statement it was reached under.
    pub statement: String,
}

/// Why a label value is not a verdict pullgate can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("verdict label {value:?} is malformed: {reason}")]
pub struct LabelError {
    pub value: String,
    pub reason: &'static str,
}

impl Recorded {
    /// The label value.
    pub fn to_label(&self) -> String {
        format!(
            "v1;{};{};{};{};{}",
            self.outcome,
            self.digest,
            rfc3339(self.verified_at),
            self.valid_until.map_or_else(|| "-".to_owned(), rfc3339),
            self.statement
        )
    }

    /// Reads a label value back; anything unexpected is an error (and the image
    /// then has no verdict).
    pub fn from_label(value: &str) -> Result<Recorded, LabelError> {
        let error = |reason| LabelError {
            value: value.chars().take(200).collect(),
            reason,
        };
        let mut parts = value.splitn(6, ';');
        let mut next = |reason| parts.next().ok_or_else(|| error(reason));
        if next("empty")? != "v1" {
            return Err(error("unknown version"));
        }
        let outcome = next("no outcome")?;
        if !matches!(outcome, "verified" | "allowed-with-failures" | "skipped") {
            return Err(error("unknown outcome"));
        }
        let outcome = outcome.to_owned();
        let digest = next("no digest")?
            .parse()
            .map_err(|_| error("invalid digest"))?;
        let verified_at = parse_rfc3339(next("no verified-at")?).ok_or(error("bad verified-at"))?;
        let valid_until = match next("no valid-until")? {
            "-" => None,
            text => Some(parse_rfc3339(text).ok_or(error("bad valid-until"))?),
        };
        let statement = next("no statement")?.to_owned();
        if statement.is_empty() {
            return Err(error("empty statement"));
        }
        Ok(Recorded {
            outcome,
            digest,
            verified_at,
            valid_until,
            statement,
        })
    }

    /// Whether this verdict still holds at `now` for `digest` under `statement`.
    pub fn standing(&self, digest: &Digest, statement: &str, now: SystemTime) -> Result<(), Stale> {
        if &self.digest != digest {
            return Err(Stale::OtherDigest {
                recorded: self.digest.to_string(),
            });
        }
        if self.statement != statement {
            return Err(Stale::OtherStatement {
                recorded: self.statement.clone(),
            });
        }
        match self.valid_until {
            Some(until) if until <= now => Err(Stale::Expired { at: rfc3339(until) }),
            _ => Ok(()),
        }
    }
}

/// Why a recorded verdict does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the recorded verdict is for {recorded}")]
    OtherDigest { recorded: String },
    #[error("the recorded verdict is under statement \"{recorded}\"")]
    OtherStatement { recorded: String },
    #[error("the verdict expired at {at}")]
    Expired { at: String },
}

/// What verdicts are looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BookKey {
    pub fingerprint: Fingerprint,
    pub digest: Digest,
    pub statement: String,
}

/// The allow verdicts pullgate knows of, bounded (least recently used goes); shared
/// by the gate (which writes what it concluded) and the checks before a container
/// runs (which read it, and fill it from containerd's labels on a miss).
#[derive(Clone)]
pub struct VerdictBook {
    inner: Arc<Mutex<lru::LruCache<BookKey, Recorded>>>,
}

impl VerdictBook {
    pub fn new(capacity: usize) -> VerdictBook {
        let capacity = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        VerdictBook {
            inner: Arc::new(Mutex::new(lru::LruCache::new(capacity))),
        }
    }

    pub fn insert(&self, fingerprint: &Fingerprint, verdict: Recorded) {
        let key = BookKey {
            fingerprint: fingerprint.clone(),
            digest: verdict.digest.clone(),
            statement: verdict.statement.clone(),
        };
        self.lock().put(key, verdict);
    }

    /// The verdict for `digest` under (`fingerprint`, `statement`), if one is known
    /// and holds at `now`. An expired one is dropped.
    pub fn current(
        &self,
        fingerprint: &Fingerprint,
        digest: &Digest,
        statement: &str,
        now: SystemTime,
    ) -> Option<Recorded> {
        let key = BookKey {
            fingerprint: fingerprint.clone(),
            digest: digest.clone(),
            statement: statement.to_owned(),
        };
        let mut book = self.lock();
        let verdict = book.get(&key)?.clone();
        match verdict.standing(digest, statement, now) {
            Ok(()) => Some(verdict),
            Err(_) => {
                book.pop(&key);
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<BookKey, Recorded>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `text` names an image by its ID (`sha256:<64 hex>`, or the 64 hex
/// digits alone) rather than by a reference.
pub fn is_image_id(text: &str) -> bool {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn digest(byte: char) -> Digest {
        format!("sha256:{}", byte.to_string().repeat(64))
            .parse()
            .expect("digest")
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn recorded(until: Option<u64>) -> Recorded {
        Recorded {
            outcome: "verified".into(),
            digest: digest('a'),
            verified_at: at(1_700_000_000),
            valid_until: until.map(at),
            statement: "prod; with a semicolon".into(),
        }
    }

    #[test]
    fn a_label_reads_back_as_written() {
        for verdict in [recorded(Some(1_800_000_000)), recorded(None)] {
            let label = verdict.to_label();
            assert_eq!(Recorded::from_label(&label), Ok(verdict));
        }
        assert_eq!(
            recorded(None).to_label(),
            format!(
                "v1;verified;sha256:{};2023-11-14T22:13:20Z;-;prod; with a semicolon",
                "a".repeat(64)
            )
        );
    }

    #[test]
    fn malformed_labels_are_errors_not_verdicts() {
        let good = recorded(None).to_label();
        let cases = [
            ("", "unknown version"),
            ("v2;verified", "unknown version"),
            ("v1;denied;x", "unknown outcome"),
            ("v1;verified;sha256:zz;x;y;z", "invalid digest"),
            (
                &good.replace("2023-11-14T22:13:20Z", "yesterday"),
                "bad verified-at",
            ),
            (&good.replace(";-;", ";never;"), "bad valid-until"),
            (
                &good.replace(";prod; with a semicolon", ";"),
                "empty statement",
            ),
            (&good.replace(";prod; with a semicolon", ""), "no statement"),
        ];
        for (value, reason) in cases {
            let error = Recorded::from_label(value).expect_err(value);
            assert_eq!(error.reason, reason, "{value}");
        }
    }

    #[test]
    fn a_verdict_holds_only_for_its_digest_statement_and_time() {
        let verdict = recorded(Some(2_000));
        let statement = "prod; with a semicolon";
        assert_eq!(verdict.standing(&digest('a'), statement, at(1_999)), Ok(()));
        assert!(matches!(
            verdict.standing(&digest('a'), statement, at(2_000)),
            Err(Stale::Expired { .. })
        ));
        assert!(matches!(
            verdict.standing(&digest('b'), statement, at(1)),
            Err(Stale::OtherDigest { .. })
        ));
        assert!(matches!(
            verdict.standing(&digest('a'), "other", at(1)),
            Err(Stale::OtherStatement { .. })
        ));
    }

    #[test]
    fn the_book_forgets_expired_verdicts_and_keeps_policies_apart() {
        let book = VerdictBook::new(2);
        let (one, two) = (Fingerprint::from_hex("11"), Fingerprint::from_hex("22"));
        book.insert(&one, recorded(Some(100)));
        let statement = "prod; with a semicolon";
        assert!(book
            .current(&one, &digest('a'), statement, at(99))
            .is_some());
        assert!(book
            .current(&two, &digest('a'), statement, at(99))
            .is_none());
        assert!(book
            .current(&one, &digest('a'), statement, at(100))
            .is_none());
        assert!(book.is_empty(), "the expired verdict was dropped");
    }

    #[test]
    fn fingerprints_change_with_policy_or_store_contents() {
        use crate::policy::{StoreType, TrustStore};
        let store = |der: &[u8]| TrustStore {
            store_type: StoreType::Ca,
            name: "acme".into(),
            certificates_der: vec![der.to_vec()],
        };
        let base = Fingerprint::of(b"{}", &[store(b"cert")]);
        assert_eq!(base, Fingerprint::of(b"{}", &[store(b"cert")]));
        assert_ne!(base, Fingerprint::of(b"{ }", &[store(b"cert")]));
        assert_ne!(base, Fingerprint::of(b"{}", &[store(b"cert2")]));
        assert_eq!(base.as_str().len(), 64);
        assert_eq!(
            base.label_key(),
            format!("{LABEL_PREFIX}{}", &base.as_str()[..16])
        );
    }

    #[test]
    fn image_ids_are_told_from_references() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(is_image_id(&format!("sha256:{hex}")));
        assert!(is_image_id(&hex));
        assert!(!is_image_id("busybox:1.36"));
        assert!(!is_image_id(&format!("r.test/a@sha256:{hex}")));
        assert!(!is_image_id("sha256:abc"));
    }
}
