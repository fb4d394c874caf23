//! Revocation checking (NOTARY.md §7): fetching OCSP responses and CRLs over plain
//! HTTP, caching them, and having `pki::revocation` judge them.
//!
//! Per certificate of a chain except the root, against its issuer (the next
//! certificate): OCSP when the certificate names AIA OCSP URLs, else CRL when it
//! names CRL distribution points, else non-revocable. An OCSP answer that is not
//! definitive (an error, a timeout, `unknown`) falls back to the CRLs when the
//! certificate has distribution points. The chain is revoked when any certificate
//! is, good when every certificate is good or non-revocable, else unknown.
//!
//! Only `http://` URLs are fetched (as notation); no credentials are ever sent.
//! CRLs are cached on disk (keyed by URL, written atomically, bounded in total
//! size) and in memory, and reused until their nextUpdate; every use re-validates
//! them (issuer signature, freshness), so a damaged cache file is never trusted.
//! OCSP answers are cached in memory until their nextUpdate. CRL files an operator
//! ships to the node (`crl_dir`) are tried before fetching.

mod fetch;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::pki::revocation::{
    crl_status, judge_ocsp_response, ocsp_request_der, CertStatus, Crl, CrlReason, OcspStatus,
};
use crate::pki::Certificate;

pub use fetch::FetchError;

/// notation's OCSP request timeout.
pub const OCSP_TIMEOUT: Duration = Duration::from_secs(2);
/// notation's limit on one OCSP response.
pub const MAX_OCSP_RESPONSE_BYTES: u64 = 20 * 1024;
/// notation's CRL download timeout.
pub const CRL_TIMEOUT: Duration = Duration::from_secs(5);
/// notation's limit on one CRL.
pub const MAX_CRL_BYTES: u64 = 32 * 1024 * 1024;
/// OCSP URLs tried per certificate (the rest are ignored), and CRL distribution
/// points a certificate may name (more is an unknown status), so that one
/// check's time is bounded.
pub const MAX_URLS_PER_CERTIFICATE: usize = 4;
/// Default bound on the CRL cache directory's total size.
pub const DEFAULT_MAX_CACHE_BYTES: u64 = 512 * 1024 * 1024;
/// Default CRL cache directory (systemd `CacheDirectory=pullgate`).
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/pullgate/crl";

/// Where revocation data is kept and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationSettings {
    /// CRLs fetched are cached here; `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// Bound on the total size of the files in `cache_dir`.
    pub max_cache_bytes: u64,
    /// CRL files shipped to the node by its operator, tried before fetching.
    pub crl_dir: Option<PathBuf>,
    pub ocsp_timeout: Duration,
    pub crl_timeout: Duration,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        RevocationSettings {
            cache_dir: Some(PathBuf::from(DEFAULT_CACHE_DIR)),
            max_cache_bytes: DEFAULT_MAX_CACHE_BYTES,
            crl_dir: None,
            ocsp_timeout: OCSP_TIMEOUT,
            crl_timeout: CRL_TIMEOUT,
        }
    }
}

/// How a certificate's status was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    Ocsp,
    Crl,
    /// The certificate names no OCSP or CRL endpoint (NOTARY.md §7).
    NonRevocable,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Ocsp => "OCSP",
            Method::Crl => "CRL",
            Method::NonRevocable => "non-revocable",
        }
    }

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Method::Ocsp => "ocsp",
            Method::Crl => "crl",
            Method::NonRevocable => "non_revocable",
        }
    }
}

/// One certificate's revocation status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum CertResult {
    Good,
    Revoked {
        revoked_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// No definitive answer (every method failed); a failure when enforced.
    Unknown {
        reason: String,
    },
}

/// What was decided for one certificate, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertCheck {
    pub subject: String,
    pub method: Method,
    /// The URL (or crl_dir file) whose answer decided, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    pub result: CertResult,
    /// The nextUpdate of the answer relied on; a verdict based on it must not be
    /// reused past it.
    #[serde(skip)]
    pub valid_until: Option<SystemTime>,
}

/// The revocation status of a chain (NOTARY.md §7 "Chain result").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainCheck {
    pub certificates: Vec<CertCheck>,
}

impl ChainCheck {
    /// Any revoked → that one; else any unknown → that one; else good.
    pub fn failure(&self) -> Option<&CertCheck> {
        self.certificates
            .iter()
            .find(|c| matches!(c.result, CertResult::Revoked { .. }))
            .or_else(|| {
                self.certificates
                    .iter()
                    .find(|c| matches!(c.result, CertResult::Unknown { .. }))
            })
    }

    /// The earliest nextUpdate the result relied on.
    pub fn valid_until(&self) -> Option<SystemTime> {
        self.certificates.iter().filter_map(|c| c.valid_until).min()
    }

    /// One line per certificate: `<subject>: <method> <source>: <status>`.
    pub fn summary(&self) -> String {
        self.certificates
            .iter()
            .map(CertCheck::summary)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl CertCheck {
    pub fn summary(&self) -> String {
        let source = self
            .source
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let status = match &self.result {
            CertResult::Good => "good".to_owned(),
            CertResult::Revoked { revoked_at, reason } => match reason {
                Some(reason) => format!("revoked at {revoked_at} ({reason})"),
                None => format!("revoked at {revoked_at}"),
            },
            CertResult::Unknown { reason } => format!("unknown: {reason}"),
        };
        format!(
            "certificate {}: {}{source}: {status}",
            self.subject,
            self.method.as_str()
        )
    }
}

/// Which chain is checked: the timestamping authority's uses CRLs only, as
/// notation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Signing,
    Timestamping,
}

/// The engine's view of revocation checking: synchronous, because the engine runs
/// each signature on a blocking thread; the checker drives its I/O there.
pub trait RevocationCheck: Send + Sync + std::fmt::Debug {
    /// Checks every certificate of the chain (leaf first) but the root against
    /// the next one.
    fn check(&self, chain: ChainQuery<'_>) -> ChainCheck;
}

/// What [`RevocationCheck::check`] checks: a chain, for a purpose, at a time.
#[derive(Debug, Clone, Copy)]
pub struct ChainQuery<'a> {
    /// The chain, leaf first, root last.
    pub chain: &'a [Certificate],
    pub purpose: Purpose,
    /// The authentic signing time, only for the signingAuthority scheme
    /// (NOTARY.md §7: a revocation after it does not invalidate the signature).
    pub signing_time: Option<SystemTime>,
    pub now: SystemTime,
}

/// What the checker reports as it works (for metrics); every method has a
/// no-op default.
pub trait Observer: Send + Sync {
    /// One certificate decided: `method` as `Method::label`, `result` one of
    /// `good`, `revoked`, `unknown`.
    fn checked(&self, _method: &'static str, _result: &'static str) {}
    /// Data used without fetching: `ocsp_memory`, `crl_memory`, `crl_disk`, `crl_dir`.
    fn cache_hit(&self, _source: &'static str) {}
    /// One fetch (`ocsp` or `crl`), whether it gave usable bytes, how long it took.
    fn fetched(&self, _kind: &'static str, _ok: bool, _seconds: f64) {}
}

struct Silent;
impl Observer for Silent {}

/// One certificate of a chain to check against its issuer (the next certificate).
#[derive(Clone, Copy)]
struct Query<'a> {
    cert: &'a Certificate,
    issuer: &'a Certificate,
    /// The authentic signing time, only for the signingAuthority scheme.
    signing_time: Option<SystemTime>,
    now: SystemTime,
}

/// Fetches, caches and judges OCSP responses and CRLs.
pub struct Checker {
    settings: RevocationSettings,
    http: fetch::Http,
    store: store::Store,
    runtime: tokio::runtime::Handle,
    observer: Arc<dyn Observer>,
}

impl Checker {
    /// A checker whose I/O runs on `runtime`.
    pub fn new(settings: RevocationSettings, runtime: tokio::runtime::Handle) -> Checker {
        Checker {
            http: fetch::Http::new(),
            store: store::Store::new(
                settings.cache_dir.clone(),
                settings.max_cache_bytes,
                settings.crl_dir.clone(),
            ),
            settings,
            runtime,
            observer: Arc::new(Silent),
        }
    }

    /// Reports to `observer` (metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Checker {
        self.observer = observer;
        self
    }

    /// Checks each certificate against its issuer, all at once.
    async fn check_all<'a>(
        &self,
        queries: impl Iterator<Item = Query<'a>>,
        purpose: Purpose,
    ) -> ChainCheck {
        let checks = queries.map(|query| self.check_certificate(query, purpose));
        let certificates = futures_util::future::join_all(checks).await;
        for check in &certificates {
            self.observer.checked(
                check.method.label(),
                match check.result {
                    CertResult::Good => "good",
                    CertResult::Revoked { .. } => "revoked",
                    CertResult::Unknown { .. } => "unknown",
                },
            );
        }
        ChainCheck { certificates }
    }

    async fn check_certificate(&self, query: Query<'_>, purpose: Purpose) -> CertCheck {
        let cert = query.cert;
        let subject = cert.subject_string();
        let mut ocsp_urls = match purpose {
            Purpose::Signing => cert.ocsp_urls(),
            Purpose::Timestamping => Vec::new(),
        };
        let crl_urls = cert.crl_urls();
        // Each URL may take its whole timeout: a bounded number per certificate
        // bounds the time one check can take (real certificates name one or two).
        // Only OCSP URLs are cut (the first definitive answer decides anyway);
        // every distribution point must be checked, so more than the bound is an
        // unknown status (below), never a partial check.
        ocsp_urls.truncate(MAX_URLS_PER_CERTIFICATE);
        if ocsp_urls.is_empty() && crl_urls.is_empty() {
            return CertCheck {
                subject,
                method: Method::NonRevocable,
                source: None,
                result: CertResult::Good,
                valid_until: None,
            };
        }
        let mut ocsp_failure = None;
        if !ocsp_urls.is_empty() {
            match self.ocsp(query, &ocsp_urls).await {
                Ok(check) => return CertCheck { subject, ..check },
                Err(reason) => ocsp_failure = Some(reason),
            }
            if crl_urls.is_empty() {
                return CertCheck {
                    subject,
                    method: Method::Ocsp,
                    source: ocsp_urls.first().cloned(),
                    result: CertResult::Unknown {
                        reason: ocsp_failure.unwrap_or_default(),
                    },
                    valid_until: None,
                };
            }
        }
        match self.crl(query, &crl_urls).await {
            Ok(check) => CertCheck { subject, ..check },
            Err((source, reason)) => CertCheck {
                subject,
                method: Method::Crl,
                source,
                result: CertResult::Unknown {
                    reason: match ocsp_failure {
                        Some(ocsp) => format!("OCSP: {ocsp}; CRL: {reason}"),
                        None => reason,
                    },
                },
                valid_until: None,
            },
        }
    }

    /// The first definitive OCSP answer (good or revoked) among `urls`; an
    /// `unknown` answer or any error is not definitive.
    async fn ocsp(&self, query: Query<'_>, urls: &[String]) -> Result<CertCheck, String> {
        let Query {
            cert,
            issuer,
            signing_time,
            now,
        } = query;
        let request = ocsp_request_der(cert, issuer).map_err(|e| e.to_string())?;
        let mut reasons = Vec::new();
        for url in urls {
            let answer = match self.store.ocsp(url, &request, now) {
                Some(answer) => {
                    self.observer.cache_hit("ocsp_memory");
                    Ok(answer)
                }
                None => {
                    let started = crate::clock::monotonic_now();
                    let fetched = self
                        .http
                        .ocsp(url, &request, self.settings.ocsp_timeout)
                        .await;
                    self.observer
                        .fetched("ocsp", fetched.is_ok(), started.elapsed().as_secs_f64());
                    match fetched {
                        Ok(der) => judge_ocsp_response(&der, cert, issuer, now, signing_time)
                            .map_err(|e| e.to_string())
                            .inspect(|answer| self.store.keep_ocsp(url, &request, answer.clone())),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            match answer {
                Ok(answer) => {
                    let result = match answer.status {
                        OcspStatus::Good => CertResult::Good,
                        OcspStatus::Revoked { revoked_at, reason } => revoked(revoked_at, reason),
                        OcspStatus::Unknown => {
                            reasons.push(format!("{url}: the responder does not know it"));
                            continue;
                        }
                    };
                    return Ok(CertCheck {
                        subject: String::new(),
                        method: Method::Ocsp,
                        source: Some(url.clone()),
                        result,
                        valid_until: Some(answer.next_update),
                    });
                }
                Err(reason) => reasons.push(format!("{url}: {reason}")),
            }
        }
        Err(reasons.join("; "))
    }

    /// Every CRL distribution point is checked (NOTARY.md §7): revoked in any →
    /// revoked; good needs every distribution point's CRL. Operator-shipped CRLs
    /// from `crl_dir` are used first.
    async fn crl(
        &self,
        query: Query<'_>,
        urls: &[String],
    ) -> Result<CertCheck, (Option<String>, String)> {
        let Query { issuer, now, .. } = query;
        if urls.len() > MAX_URLS_PER_CERTIFICATE {
            return Err((
                urls.first().cloned(),
                format!(
                    "the certificate names {} CRL distribution points; pullgate checks at most {MAX_URLS_PER_CERTIFICATE}",
                    urls.len()
                ),
            ));
        }
        if let Some((file, base)) = self.store.shipped_crl(issuer, now, false) {
            self.observer.cache_hit("crl_dir");
            let delta = if base.has_freshest_crl() {
                match self.store.shipped_crl(issuer, now, true) {
                    Some((_, delta)) => Some(delta),
                    None => Some(
                        self.delta_for(&base, issuer, now)
                            .await
                            .map_err(|reason| (Some(file.clone()), reason))?,
                    ),
                }
            } else {
                None
            };
            return judged(query, &base, delta.as_deref(), file)
                .map_err(|(source, reason)| (Some(source), reason));
        }
        let mut good = None;
        let mut reasons = Vec::new();
        for url in urls {
            match self.crl_at(query, url).await {
                Ok(check) if matches!(check.result, CertResult::Revoked { .. }) => {
                    return Ok(check)
                }
                Ok(check) => {
                    good.get_or_insert(check);
                }
                Err(reason) => reasons.push(format!("{url}: {reason}")),
            }
        }
        match good {
            Some(check) if reasons.is_empty() => Ok(check),
            _ => Err((urls.first().cloned(), reasons.join("; "))),
        }
    }

    /// The status of `cert` in the CRL at `url` (and its delta CRL, when the base
    /// CRL names one).
    async fn crl_at(&self, query: Query<'_>, url: &str) -> Result<CertCheck, String> {
        let Query { issuer, now, .. } = query;
        let base = self.fetch_crl(url, issuer, now).await?;
        let delta = if base.has_freshest_crl() {
            Some(self.delta_for(&base, issuer, now).await?)
        } else {
            None
        };
        judged(query, &base, delta.as_deref(), url.to_owned()).map_err(|(_, reason)| reason)
    }

    /// The delta CRL a base CRL names (FreshestCRL): the first of its URLs that
    /// gives a valid one.
    async fn delta_for(
        &self,
        base: &Crl,
        issuer: &Certificate,
        now: SystemTime,
    ) -> Result<Arc<Crl>, String> {
        let mut reasons = Vec::new();
        for url in base.freshest_crl_urls() {
            match self.fetch_crl(url, issuer, now).await {
                Ok(delta) => return Ok(delta),
                Err(reason) => reasons.push(format!("delta CRL {url}: {reason}")),
            }
        }
        if reasons.is_empty() {
            reasons.push("the CRL names a delta CRL but no http:// URL for it".to_owned());
        }
        Err(reasons.join("; "))
    }

    /// A valid, current CRL from `url`: the memory or disk cache when still valid,
    /// else fetched (and cached).
    async fn fetch_crl(
        &self,
        url: &str,
        issuer: &Certificate,
        now: SystemTime,
    ) -> Result<Arc<Crl>, String> {
        if let Some((crl, source)) = self.store.cached_crl(url, issuer, now) {
            self.observer.cache_hit(source);
            return Ok(crl);
        }
        let started = crate::clock::monotonic_now();
        let fetched = self.http.crl(url, self.settings.crl_timeout).await;
        self.observer
            .fetched("crl", fetched.is_ok(), started.elapsed().as_secs_f64());
        let der = fetched.map_err(|e| e.to_string())?;
        let crl = Crl::from_pem_or_der(&der).map_err(|e| e.to_string())?;
        crl.validate(issuer, now).map_err(|e| e.to_string())?;
        let crl = Arc::new(crl);
        self.store.keep_crl(url, Arc::clone(&crl), issuer);
        Ok(crl)
    }
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RevocationCheck for Checker {
    fn check(&self, query: ChainQuery<'_>) -> ChainCheck {
        let queries = query.chain.windows(2).map(|pair| Query {
            cert: &pair[0],
            issuer: &pair[1],
            signing_time: query.signing_time,
            now: query.now,
        });
        self.runtime
            .block_on(self.check_all(queries, query.purpose))
    }
}

fn revoked(at: SystemTime, reason: Option<CrlReason>) -> CertResult {
    CertResult::Revoked {
        revoked_at: crate::pki::time::rfc3339(at),
        reason: reason.map(|r| format!("{r:?}")),
    }
}

/// The status of `cert` in a validated base CRL and its delta CRL, if any.
fn judged(
    query: Query<'_>,
    base: &Crl,
    delta: Option<&Crl>,
    source: String,
) -> Result<CertCheck, (String, String)> {
    let status = crl_status(query.cert, base, delta, query.signing_time)
        .map_err(|e| (source.clone(), e.to_string()))?;
    Ok(CertCheck {
        subject: String::new(),
        method: Method::Crl,
        source: Some(source),
        result: match status {
            CertStatus::Good => CertResult::Good,
            CertStatus::Revoked { revoked_at, reason } => revoked(revoked_at, reason),
        },
        valid_until: base
            .next_update()
            .into_iter()
            .chain(delta.and_then(Crl::next_update))
            .min(),
    })
}

/// What `pullgate revocation fetch` did with one CRL URL.
#[derive(Debug)]
pub struct Fetched {
    pub url: String,
    /// The file written, or why none was.
    pub result: Result<PathBuf, String>,
}

/// Fetches the CRLs that `certs` name (their distribution points, and the delta
/// CRLs those CRLs name) into `out`, one DER file per URL, for a node's
/// `crl_dir`. Each must parse as a CRL; whether it is signed by the right issuer
/// and current is checked where it is used. Non-http URLs are reported, not
/// fetched.
pub async fn fetch_crls(
    certs: &[Certificate],
    out: &std::path::Path,
    timeout: Duration,
) -> Vec<Fetched> {
    let http = fetch::Http::new();
    let mut queue: Vec<String> = Vec::new();
    for cert in certs {
        for url in cert.crl_urls() {
            if !queue.contains(&url) {
                queue.push(url);
            }
        }
    }
    let mut done = Vec::new();
    let mut next = 0;
    while next < queue.len() {
        let url = queue[next].clone();
        next += 1;
        let result = match http.crl(&url, timeout).await {
            Err(e) => Err(e.to_string()),
            Ok(bytes) => match Crl::from_pem_or_der(&bytes) {
                Err(e) => Err(e.to_string()),
                Ok(crl) => {
                    for delta in crl.freshest_crl_urls() {
                        if !queue.contains(delta) {
                            queue.push(delta.clone());
                        }
                    }
                    let path = out.join(format!("{}.crl", &store::url_key(&url)[..16]));
                    store::write_atomically(&path, crl.der())
                        .map(|()| path)
                        .map_err(|e| e.to_string())
                }
            },
        };
        done.push(Fetched { url, result });
    }
    done
}
