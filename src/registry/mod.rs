//! The registry signature source (DESIGN.md PullImage path steps 4 and 6,
//! NOTARY.md §1): resolve a reference to its target descriptor, list its Notary
//! signature manifests (referrers API, else the `<alg>-<hex>` tag schema), and
//! fetch one signature manifest and envelope with bounded, digest-checked reads.
//!
//! Every request is bounded by the caller's deadline, a per-request timeout and a
//! connect timeout; 429/502/503/504 are retried with backoff (honouring
//! `Retry-After`) only while the deadline allows. Credentials go only to the
//! registry's own origin and its token service: a redirect elsewhere (blob
//! storage) is followed without `Authorization`.

mod auth;
mod error;
mod hosts;
mod transport;

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use lru::LruCache;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use auth::{server_address_matches, Credentials};
pub use error::RegistryError;

use crate::oci::{
    is_manifest_media_type, lists_notary_signature, Descriptor, Manifest, SignatureBlob,
    ARTIFACT_TYPE_NOTARY_SIGNATURE, MEDIA_TYPE_ARTIFACT_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_IMAGE_INDEX, MEDIA_TYPE_IMAGE_MANIFEST,
};
use crate::reference::{Digest, DigestAlgorithm, Reference};
use auth::{Challenge, CredentialsFile, Secret, TokenResponse};
use hosts::{Capability, Endpoint, FilesStamp, TlsSettings};
use transport::{HttpClient, Response};

/// ORAS/notation's limit on manifests and referrers index pages (4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Referrers entries accepted across all pages. notation tries at most 100
/// signatures; 10,000 leaves room for other artifact types a registry did not
/// filter out, and bounds memory (~a few MiB of descriptors).
pub const MAX_REFERRERS: usize = 10_000;
/// Referrers pages followed; a `Link` chain longer than this is hostile.
pub const MAX_REFERRERS_PAGES: usize = 1_000;
/// Token service answers are small JSON documents.
const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
/// Lifetime of a token without `expires_in` (distribution token.md: 60 s).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest a token is reused whatever its `expires_in` says: an hour, the
/// lifetime of the OAuth2 access tokens cloud registries issue (Docker Hub's last
/// 300 s). It keeps `now + lifetime` finite (`expires_in: u64::MAX` once overflowed
/// `Instant` with the token lock held) and bounds how long a revoked grant lives.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// First retry delay; doubled per attempt, capped at `MAX_BACKOFF`.
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Registries and endpoints remembered at once (endpoints, auth challenges,
/// referrers API support, request slots). A node pulls from a handful of
/// registries; 1,024 keeps every real one while host names an attacker puts in
/// image names cannot grow memory without bound (each entry is well under 1 KiB).
const MAX_REGISTRIES: usize = 1024;
/// Tokens cached, one per (endpoint, repository, credentials): room for a node
/// running pods from thousands of repositories; the least recently used token is
/// dropped first and fetched again when needed.
const MAX_TOKENS: usize = 4096;
/// HTTP clients (one per distinct TLS setting in hosts.toml, each with its
/// connection pool). Settings come from the operator's files, not the network, but
/// every edit of a file can add one now that they are re-read.
const MAX_CLIENTS: usize = 64;
const USER_AGENT: &str = concat!("pullgate/", env!("CARGO_PKG_VERSION"));

/// The `Accept` header for resolving a reference: every manifest type a target may have.
const RESOLVE_ACCEPT: &[&str] = &[
    MEDIA_TYPE_IMAGE_MANIFEST,
    MEDIA_TYPE_IMAGE_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
];
const SIGNATURE_ACCEPT: &[&str] = &[MEDIA_TYPE_IMAGE_MANIFEST, MEDIA_TYPE_ARTIFACT_MANIFEST];
const INDEX_ACCEPT: &[&str] = &[MEDIA_TYPE_IMAGE_INDEX];

/// The most bytes one signature fetch reads ([`RegistryClient::signature`]): the
/// caller's budgets (`verify::Budgets`: notation's 4 MiB manifests, 32 MiB envelopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureLimits {
    /// The signature manifest's declared size.
    pub manifest_bytes: u64,
    /// The envelope blob's declared size.
    pub envelope_bytes: u64,
}

/// The registry client's settings. Every field has a default.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// containerd's hosts directory (`<dir>/<host>/hosts.toml`); `None` = none.
    pub hosts_dir: Option<PathBuf>,
    /// A docker `config.json`-style file with the node's credentials; a missing
    /// file is no credentials.
    pub credentials_file: Option<PathBuf>,
    /// `host[:port]` registries reached over plain http when no hosts.toml says
    /// otherwise (tests, `pullgate verify --insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// TCP connect timeout (containerd's dialer uses 30 s; a node-local gate
    /// should fail faster).
    pub connect_timeout: Duration,
    /// One request, from sending to the last body byte.
    pub request_timeout: Duration,
    /// Requests in flight per registry endpoint.
    pub max_concurrent_per_registry: usize,
    /// Tries per request for 429/502/503/504 (the first included).
    pub max_attempts: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            hosts_dir: Some(PathBuf::from("/etc/containerd/certs.d")),
            credentials_file: None,
            insecure_registries: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_concurrent_per_registry: 8,
            max_attempts: 4,
        }
    }
}

/// Responses seen by status, for metrics and the bench.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub by_status: BTreeMap<u16, u64>,
    /// Requests that got no response (connect/TLS/protocol failure).
    pub transport_errors: u64,
    /// Requests that got no response before their deadline.
    pub timeouts: u64,
}

impl RequestStats {
    pub fn total(&self) -> u64 {
        self.by_status.values().sum::<u64>() + self.transport_errors + self.timeouts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReferrersMode {
    Api,
    TagSchema,
}

#[derive(Hash, PartialEq, Eq)]
struct TokenKey {
    authority: String,
    scope: String,
    credentials: [u8; 32],
}

/// A shareable registry client (cheap to clone; clones share connections,
/// tokens and what was learnt about each registry).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegistryConfig,
    credentials_file: CredentialsFile,
    system_roots: OnceLock<rustls::RootCertStore>,
    // Every map keyed by something a registry or an image name chooses is an LRU
    // cache with a fixed capacity.
    /// Keyed by the TLS settings and the version of the files they name: a CA or
    /// client certificate replaced on disk gets a new client (containerd reads them
    /// on every pull).
    clients: Mutex<LruCache<(TlsSettings, FilesStamp), HttpClient>>,
    /// Each registry's endpoints, with the stamp of the hosts.toml files they were
    /// read from (re-read when it changes).
    endpoints: Mutex<LruCache<String, KnownEndpoints>>,
    tokens: Mutex<LruCache<TokenKey, (String, Instant)>>,
    challenges: Mutex<LruCache<String, Challenge>>,
    referrers_mode: Mutex<LruCache<String, ReferrersMode>>,
    /// Evicting a semaphore still in use lets at most one more batch of requests
    /// run for that endpoint; that needs `MAX_REGISTRIES` busier endpoints.
    slots: Mutex<LruCache<String, Arc<Semaphore>>>,
    stats: Mutex<RequestStats>,
}

/// A registry's endpoints and the hosts.toml files they were read from.
struct KnownEndpoints {
    stamp: FilesStamp,
    endpoints: Arc<Vec<Endpoint>>,
}

/// One operation against one endpoint.
struct Call<'a> {
    registry: &'a str,
    repository: &'a str,
    endpoint: Endpoint,
    secret: Secret,
    deadline: Instant,
}

/// Content addressed by a descriptor, fetched with a bound on its declared size.
#[derive(Clone, Copy)]
struct Content<'a> {
    url: &'a str,
    accept: &'a [&'a str],
    /// What the content is, for messages ("a signature manifest").
    what: &'static str,
    descriptor: &'a Descriptor,
    /// The largest declared size fetched.
    limit: u64,
}

/// A response with the endpoint slot it holds until its body is read.
struct Fetched {
    response: Response,
    _slot: OwnedSemaphorePermit,
}

fn capacity(entries: usize) -> NonZeroUsize {
    NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these maps leaves it consistent (every update
    // is a single insert/remove), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RegistryClient {
    /// Builds a client; reads the credentials file (if configured) now so a broken
    /// one is reported at startup. hosts.toml files are read on first use of each
    /// registry and again whenever they (or the certificate files they name)
    /// change on disk, as containerd reads them on every pull.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let credentials_file = match &config.credentials_file {
            Some(path) => CredentialsFile::load(path)?,
            None => CredentialsFile::default(),
        };
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                config,
                credentials_file,
                system_roots: OnceLock::new(),
                clients: Mutex::new(LruCache::new(capacity(MAX_CLIENTS))),
                endpoints: Mutex::new(LruCache::new(capacity(MAX_REGISTRIES))),
                tokens: Mutex::new(LruCache::new(capacity(MAX_TOKENS))),
                challenges: Mutex::new(LruCache::new(capacity(MAX_REGISTRIES))),
                referrers_mode: Mutex::new(LruCache::new(capacity(MAX_REGISTRIES))),
                slots: Mutex::new(LruCache::new(capacity(MAX_REGISTRIES))),
                stats: Mutex::new(RequestStats::default()),
            }),
        })
    }

    /// Requests made so far, by response status.
    pub fn stats(&self) -> RequestStats {
        lock(&self.inner.stats).clone()
    }

    /// Resolves `reference` to its target descriptor (NOTARY.md §1.1): HEAD the
    /// manifest, GET when HEAD fails or lacks the headers. A body read is checked
    /// against the digest; a digest reference must resolve to itself.
    pub async fn resolve(
        &self,
        reference: &Reference,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Descriptor, RegistryError> {
        let capability = if reference.digest().is_some() {
            Capability::Pull
        } else {
            Capability::Resolve
        };
        let mut last = None;
        for call in self.calls(reference, capability, credentials, deadline)? {
            match self.resolve_at(&call, reference).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    tracing::debug!(endpoint = %call.endpoint.origin, error = %e, "resolve failed");
                    last = Some(e)
                }
            }
        }
        Err(last.unwrap_or_else(|| no_endpoint(reference, capability)))
    }

    /// The Notary signature manifests whose subject is `target`, in the
    /// registry's order (NOTARY.md §1.2).
    pub async fn signature_manifests(
        &self,
        reference: &Reference,
        target: &Descriptor,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let mut last = None;
        for call in self.calls(reference, Capability::Pull, credentials, deadline)? {
            match self.signature_manifests_at(&call, target).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    tracing::debug!(endpoint = %call.endpoint.origin, error = %e, "listing signatures failed");
                    last = Some(e)
                }
            }
        }
        Err(last.unwrap_or_else(|| no_endpoint(reference, Capability::Pull)))
    }

    /// Fetches one signature manifest and its single envelope blob (NOTARY.md
    /// §1.3), checking declared sizes against the limits before reading, reading
    /// at most the declared size, and checking digests.
    pub async fn signature(
        &self,
        reference: &Reference,
        manifest: &Descriptor,
        limits: SignatureLimits,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<SignatureBlob, RegistryError> {
        let mut last = None;
        for call in self.calls(reference, Capability::Pull, credentials, deadline)? {
            match self.signature_at(&call, manifest, limits).await {
                Ok(found) => return Ok(found),
                Err(e) => {
                    tracing::debug!(endpoint = %call.endpoint.origin, error = %e, "fetching signature failed");
                    last = Some(e)
                }
            }
        }
        Err(last.unwrap_or_else(|| no_endpoint(reference, Capability::Pull)))
    }

    // --- operations on one endpoint -------------------------------------------

    async fn resolve_at(
        &self,
        call: &Call<'_>,
        reference: &Reference,
    ) -> Result<Descriptor, RegistryError> {
        let url = call.endpoint.url(&format!(
            "/{}/manifests/{}",
            call.repository,
            reference.selector()
        ));
        // 1. HEAD: enough when the registry sends digest, type and length.
        let head = self
            .request(call, Method::HEAD, &url, RESOLVE_ACCEPT)
            .await?;
        let response = &head.response;
        if response.status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound { url });
        }
        if response.status.is_success() {
            let header_digest = digest_header(response)?;
            let media_type = response.content_type();
            let size = response.content_length();
            if let (Some(digest), Some(media_type), Some(size)) =
                (header_digest.clone(), media_type, size)
            {
                if is_manifest_media_type(&media_type) {
                    if let Some(wanted) = reference.digest() {
                        if *wanted != digest {
                            return Err(RegistryError::DigestMismatch {
                                url,
                                expected: wanted.clone(),
                                actual: digest,
                            });
                        }
                    }
                    if size > MAX_MANIFEST_BYTES {
                        return Err(RegistryError::TooLarge {
                            what: "a manifest",
                            url,
                            size,
                            limit: MAX_MANIFEST_BYTES,
                        });
                    }
                    head.response.drain().await;
                    return Ok(Descriptor {
                        media_type,
                        digest,
                        size,
                        annotations: Default::default(),
                        artifact_type: None,
                    });
                }
            }
        }
        head.response.drain().await;
        // 2. GET: the digest is computed from the body.
        let get = self
            .request(call, Method::GET, &url, RESOLVE_ACCEPT)
            .await?;
        let response = expect_success(call, get.response, &url).await?;
        let header_digest = digest_header(&response)?;
        let header_type = response.content_type();
        let body = response.read("a manifest", MAX_MANIFEST_BYTES).await?;
        let algorithm = reference
            .digest()
            .or(header_digest.as_ref())
            .map_or(DigestAlgorithm::Sha256, Digest::algorithm);
        let digest = Digest::of(algorithm, &body);
        for expected in [reference.digest(), header_digest.as_ref()]
            .into_iter()
            .flatten()
        {
            if *expected != digest {
                return Err(RegistryError::DigestMismatch {
                    url,
                    expected: expected.clone(),
                    actual: digest,
                });
            }
        }
        let parsed: Manifest = parse_json(&url, &body)?;
        let media_type = header_type
            .filter(|t| is_manifest_media_type(t))
            .or(parsed.media_type)
            .filter(|t| is_manifest_media_type(t))
            .ok_or_else(|| RegistryError::BadContentType {
                url: url.clone(),
                expected: "an OCI or Docker manifest or index",
                actual: None,
            })?;
        Ok(Descriptor {
            media_type,
            digest,
            size: body.len() as u64,
            annotations: Default::default(),
            artifact_type: None,
        })
    }

    async fn signature_manifests_at(
        &self,
        call: &Call<'_>,
        target: &Descriptor,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let key = call.endpoint.url("");
        let mode = lock(&self.inner.referrers_mode).get(&key).copied();
        if mode != Some(ReferrersMode::TagSchema) {
            match self.referrers_api(call, target).await? {
                Some(found) => {
                    lock(&self.inner.referrers_mode).put(key, ReferrersMode::Api);
                    return Ok(found);
                }
                None => {
                    tracing::debug!(
                        registry = call.registry,
                        "no referrers API; using the tag schema"
                    );
                    lock(&self.inner.referrers_mode).put(key, ReferrersMode::TagSchema);
                }
            }
        }
        self.referrers_tag(call, target).await
    }

    /// The referrers API; `None` when the registry does not have it (404 or not
    /// an image index on the first page).
    async fn referrers_api(
        &self,
        call: &Call<'_>,
        target: &Descriptor,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let mut url = call.endpoint.url(&format!(
            "/{}/referrers/{}?artifactType={}",
            call.repository,
            target.digest,
            percent_encoding::utf8_percent_encode(ARTIFACT_TYPE_NOTARY_SIGNATURE, QUERY)
        ));
        let mut found = Vec::new();
        let mut listed = 0usize;
        let mut visited = HashSet::new();
        for page in 0.. {
            if page >= MAX_REFERRERS_PAGES || !visited.insert(url.clone()) {
                return Err(RegistryError::TooMany {
                    what: "referrers pages",
                    url,
                    limit: MAX_REFERRERS_PAGES,
                });
            }
            let fetched = self.request(call, Method::GET, &url, INDEX_ACCEPT).await?;
            let response = fetched.response;
            if page == 0 && response.status == StatusCode::NOT_FOUND {
                response.drain().await;
                return Ok(None);
            }
            let response = expect_success(call, response, &url).await?;
            let content_type = response.content_type();
            if content_type.as_deref() != Some(MEDIA_TYPE_IMAGE_INDEX) {
                if page == 0 {
                    response.drain().await;
                    return Ok(None);
                }
                return Err(RegistryError::BadContentType {
                    url,
                    expected: MEDIA_TYPE_IMAGE_INDEX,
                    actual: content_type,
                });
            }
            let filtered = response
                .header("oci-filters-applied")
                .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
            let next = response
                .header("link")
                .and_then(next_link)
                .map(|link| {
                    transport::join_url(&response.url, &link).ok_or_else(|| {
                        RegistryError::Protocol {
                            url: url.clone(),
                            reason: "unusable Link header",
                        }
                    })
                })
                .transpose()?;
            let body = response
                .read("a referrers index page", MAX_MANIFEST_BYTES)
                .await?;
            let index: Manifest = parse_json(&url, &body)?;
            listed += index.manifests.len();
            if listed > MAX_REFERRERS {
                return Err(RegistryError::TooMany {
                    what: "referrers",
                    url,
                    limit: MAX_REFERRERS,
                });
            }
            found.extend(
                index
                    .manifests
                    .into_iter()
                    .filter(|d| filtered || lists_notary_signature(d)),
            );
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(Some(found))
    }

    /// The referrers tag schema: an image index tagged `<alg>-<hex>`; no tag = no
    /// referrers.
    async fn referrers_tag(
        &self,
        call: &Call<'_>,
        target: &Descriptor,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let url = call.endpoint.url(&format!(
            "/{}/manifests/{}",
            call.repository,
            target.digest.referrers_tag()
        ));
        let fetched = self.request(call, Method::GET, &url, INDEX_ACCEPT).await?;
        if fetched.response.status == StatusCode::NOT_FOUND {
            fetched.response.drain().await;
            return Ok(Vec::new());
        }
        let response = expect_success(call, fetched.response, &url).await?;
        let content_type = response.content_type();
        let body = response
            .read("a referrers tag index", MAX_MANIFEST_BYTES)
            .await?;
        let index: Manifest = parse_json(&url, &body)?;
        let media_type = content_type
            .filter(|t| t != "application/json" && t != "application/octet-stream")
            .or(index.media_type.clone());
        if media_type.as_deref() != Some(MEDIA_TYPE_IMAGE_INDEX) {
            return Err(RegistryError::BadContentType {
                url,
                expected: MEDIA_TYPE_IMAGE_INDEX,
                actual: media_type,
            });
        }
        if index.manifests.len() > MAX_REFERRERS {
            return Err(RegistryError::TooMany {
                what: "referrers",
                url,
                limit: MAX_REFERRERS,
            });
        }
        Ok(index
            .manifests
            .into_iter()
            .filter(lists_notary_signature)
            .collect())
    }

    async fn signature_at(
        &self,
        call: &Call<'_>,
        manifest: &Descriptor,
        limits: SignatureLimits,
    ) -> Result<SignatureBlob, RegistryError> {
        // 1. The signature manifest.
        let url = call.endpoint.url(&format!(
            "/{}/manifests/{}",
            call.repository, manifest.digest
        ));
        let (content_type, body) = self
            .fetch_content(
                call,
                &Content {
                    url: &url,
                    accept: SIGNATURE_ACCEPT,
                    what: "a signature manifest",
                    descriptor: manifest,
                    limit: limits.manifest_bytes,
                },
            )
            .await?;
        let parsed: Manifest = parse_json(&url, &body)?;
        let media_type = content_type
            .filter(|t| t != "application/json" && t != "application/octet-stream")
            .or(parsed.media_type.clone());
        if !matches!(
            media_type.as_deref(),
            Some(MEDIA_TYPE_IMAGE_MANIFEST | MEDIA_TYPE_ARTIFACT_MANIFEST)
        ) {
            return Err(RegistryError::BadContentType {
                url,
                expected: MEDIA_TYPE_IMAGE_MANIFEST,
                actual: media_type,
            });
        }
        // 2. Exactly one envelope blob.
        let blobs = parsed.signature_blobs();
        let [blob] = blobs else {
            return Err(RegistryError::BlobCount {
                digest: manifest.digest.clone(),
                count: blobs.len(),
            });
        };
        let url = call
            .endpoint
            .url(&format!("/{}/blobs/{}", call.repository, blob.digest));
        let (_, envelope) = self
            .fetch_content(
                call,
                &Content {
                    url: &url,
                    accept: &[],
                    what: "a signature envelope",
                    descriptor: blob,
                    limit: limits.envelope_bytes,
                },
            )
            .await?;
        Ok(SignatureBlob {
            manifest: manifest.clone(),
            media_type: blob.media_type.clone(),
            envelope,
        })
    }

    /// GETs `content`: the descriptor's size is checked against the limit before
    /// the request, at most that size is read, and the bytes must hash to the
    /// descriptor's digest. Returns the content type and bytes.
    async fn fetch_content(
        &self,
        call: &Call<'_>,
        content: &Content<'_>,
    ) -> Result<(Option<String>, Vec<u8>), RegistryError> {
        let Content {
            url,
            accept,
            what,
            descriptor,
            limit,
        } = *content;
        let size = descriptor.size;
        if size > limit {
            return Err(RegistryError::TooLarge {
                what,
                url: url.to_owned(),
                size,
                limit,
            });
        }
        let fetched = self.request(call, Method::GET, url, accept).await?;
        let response = expect_success(call, fetched.response, url).await?;
        let content_type = response.content_type();
        let body = response
            .read_content(what, size, &descriptor.digest)
            .await?;
        Ok((content_type, body))
    }

    // --- plumbing ---------------------------------------------------------------

    /// The endpoints to try for `reference`, each with the credentials it may see.
    fn calls<'a>(
        &self,
        reference: &'a Reference,
        capability: Capability,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<Vec<Call<'a>>, RegistryError> {
        let registry = reference.registry();
        let endpoints = self.endpoints(registry)?;
        let (credentials, server_address) = credentials.scope();
        let passed = Secret::from_credentials(credentials, registry)?;
        Ok(endpoints
            .iter()
            .filter(|e| e.can(capability))
            .map(|endpoint| {
                let file = &self.inner.credentials_file;
                let secret = match (&passed, server_address) {
                    // Nothing passed: the node's file, for the registry at its server
                    // and for the mirror's own host at a mirror.
                    (Secret::Anonymous, _) if endpoint.is_server => file.lookup(registry),
                    (Secret::Anonymous, _) => file.lookup(&endpoint.authority),
                    // Credentials passed for a named host go to an endpoint on that
                    // host and nowhere else (containerd's CRI `ParseAuth`); the
                    // server then gets none.
                    (passed, Some(address))
                        if auth::server_address_matches(address, &endpoint.authority) =>
                    {
                        Some(passed)
                    }
                    (_, Some(_)) if endpoint.is_server => None,
                    // Unscoped credentials go only to the registry's server. A mirror
                    // gets only what the node's file holds for the mirror.
                    (passed, None) if endpoint.is_server => Some(passed),
                    (_, _) => file.lookup(&endpoint.authority),
                }
                .cloned();
                Call {
                    registry,
                    repository: reference.repository(),
                    endpoint: endpoint.clone(),
                    secret: secret.unwrap_or(Secret::Anonymous),
                    deadline,
                }
            })
            .collect())
    }

    /// The endpoints of `registry`, re-read when its hosts.toml files change.
    fn endpoints(&self, registry: &str) -> Result<Arc<Vec<Endpoint>>, RegistryError> {
        let dir = self.inner.config.hosts_dir.as_deref();
        // Taken before reading: a change while reading leaves an older stamp, so the
        // next call reads again.
        let stamp = hosts::stamp(dir, registry);
        if let Some(known) = lock(&self.inner.endpoints).get(registry) {
            if known.stamp == stamp {
                return Ok(known.endpoints.clone());
            }
            tracing::info!(registry, "hosts.toml changed; reading it again");
        }
        let plain_http = self
            .inner
            .config
            .insecure_registries
            .iter()
            .any(|r| r == registry);
        let found = Arc::new(hosts::endpoints(dir, registry, plain_http)?);
        lock(&self.inner.endpoints).put(
            registry.to_owned(),
            KnownEndpoints {
                stamp,
                endpoints: found.clone(),
            },
        );
        Ok(found)
    }

    fn client(&self, tls: &TlsSettings) -> Result<HttpClient, RegistryError> {
        let key = (tls.clone(), tls.files_stamp());
        if let Some(client) = lock(&self.inner.clients).get(&key) {
            return Ok(client.clone());
        }
        let roots = self.inner.system_roots.get_or_init(transport::system_roots);
        let client = transport::build_client(tls, roots, self.inner.config.connect_timeout)?;
        lock(&self.inner.clients).put(key, client.clone());
        Ok(client)
    }

    fn count(
        &self,
        result: &Result<(StatusCode, http::HeaderMap, hyper::body::Incoming), RegistryError>,
    ) {
        let mut stats = lock(&self.inner.stats);
        match result {
            Ok((status, _, _)) => *stats.by_status.entry(status.as_u16()).or_default() += 1,
            Err(RegistryError::Timeout { .. }) => stats.timeouts += 1,
            Err(_) => stats.transport_errors += 1,
        }
    }

    async fn slot(&self, call: &Call<'_>) -> Result<OwnedSemaphorePermit, RegistryError> {
        let semaphore = lock(&self.inner.slots)
            .get_or_insert(call.endpoint.authority.clone(), || {
                Arc::new(Semaphore::new(
                    self.inner.config.max_concurrent_per_registry.max(1),
                ))
            })
            .clone();
        let started = crate::clock::monotonic_now();
        match tokio::time::timeout_at(call.deadline.into(), semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a timeout if it were.
            _ => Err(RegistryError::Timeout {
                what: format!("waiting for a request slot on {}", call.endpoint.authority),
                after: started.elapsed(),
            }),
        }
    }

    /// One logical request: auth (cached token, or challenge → token → retry once),
    /// redirects, and retries on 429/502/503/504 within the deadline. The response
    /// may still be any status; 401/403 are turned into errors here.
    async fn request(
        &self,
        call: &Call<'_>,
        method: Method,
        url: &str,
        accept: &[&str],
    ) -> Result<Fetched, RegistryError> {
        let slot = self.slot(call).await?;
        let started = crate::clock::monotonic_now();
        let mut challenged = false;
        let mut attempt = 0u32;
        loop {
            if crate::clock::monotonic_now() >= call.deadline {
                return Err(RegistryError::Timeout {
                    what: format!("{method} {url}"),
                    after: started.elapsed(),
                });
            }
            let authorization = self.authorization(call).await?;
            let until = call
                .deadline
                .min(crate::clock::monotonic_now() + self.inner.config.request_timeout);
            let response = self
                .send_following_redirects(call, &method, url, accept, authorization, until)
                .await?;
            match response.status.as_u16() {
                401 if response.same_origin && !challenged => {
                    challenged = true;
                    let challenge = response
                        .header("www-authenticate")
                        .and_then(auth::parse_challenge);
                    response.drain().await;
                    let Some(challenge) = challenge else {
                        return Err(unauthorized(call, url));
                    };
                    let can_answer = match (&challenge, &call.secret) {
                        (Challenge::Basic, Secret::Basic { .. }) => true,
                        (Challenge::Basic, _) => false,
                        (Challenge::Bearer { .. }, Secret::Bearer(_)) => false,
                        (Challenge::Bearer { .. }, _) => true,
                    };
                    lock(&self.inner.challenges).put(call.endpoint.authority.clone(), challenge);
                    lock(&self.inner.tokens).pop(&token_key(call));
                    if !can_answer {
                        return Err(unauthorized(call, url));
                    }
                }
                401 => {
                    response.drain().await;
                    return Err(unauthorized(call, url));
                }
                403 => {
                    response.drain().await;
                    return Err(RegistryError::Denied {
                        registry: call.registry.to_owned(),
                        url: url.to_owned(),
                    });
                }
                status @ (429 | 502 | 503 | 504) => {
                    attempt += 1;
                    let wait = transport::retry_after(&response.headers).unwrap_or_else(|| {
                        BASE_BACKOFF
                            .saturating_mul(1 << (attempt - 1).min(16))
                            .min(MAX_BACKOFF)
                    });
                    response.drain().await;
                    let give_up = attempt >= self.inner.config.max_attempts
                        || crate::clock::monotonic_now()
                            .checked_add(wait)
                            .is_none_or(|then| then >= call.deadline);
                    if give_up {
                        return Err(RegistryError::Http {
                            status,
                            url: url.to_owned(),
                        });
                    }
                    tracing::debug!(url, status, ?wait, attempt, "retrying");
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    return Ok(Fetched {
                        response,
                        _slot: slot,
                    })
                }
            }
        }
    }

    async fn send_following_redirects(
        &self,
        call: &Call<'_>,
        method: &Method,
        url: &str,
        accept: &[&str],
        authorization: Option<String>,
        until: Instant,
    ) -> Result<Response, RegistryError> {
        let started = crate::clock::monotonic_now();
        let mut method = method.clone();
        let mut url = url.to_owned();
        let mut hops = 0usize;
        loop {
            let origin = transport::origin_of(&url).ok_or_else(|| RegistryError::Protocol {
                url: url.clone(),
                reason: "not an absolute http(s) URL",
            })?;
            let same_origin = origin == call.endpoint.origin;
            // Another origin is blob storage or a CDN: its own TLS settings (the
            // system roots) and never the registry's credentials.
            let client = if same_origin {
                self.client(&call.endpoint.tls)?
            } else {
                self.client(&TlsSettings::default())?
            };
            let mut headers = vec![("user-agent", USER_AGENT.to_owned())];
            if !accept.is_empty() {
                headers.push(("accept", accept.join(", ")));
            }
            if let (true, Some(value)) = (same_origin, &authorization) {
                headers.push(("authorization", value.clone()));
            }
            let result = transport::send_once(
                &client,
                method.clone(),
                &url,
                &headers,
                None,
                started,
                until,
            )
            .await;
            self.count(&result);
            let (status, headers, body) = result?;
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(Response {
                    status,
                    headers,
                    body,
                    url,
                    same_origin,
                    started,
                    until,
                });
            }
            transport::drain(body, until).await;
            hops += 1;
            if hops > transport::MAX_REDIRECTS {
                return Err(RegistryError::RedirectLimit {
                    url,
                    limit: transport::MAX_REDIRECTS,
                });
            }
            let location = headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| RegistryError::Protocol {
                    url: url.clone(),
                    reason: "redirect without a Location header",
                })?;
            let next = transport::join_url(&url, location).ok_or_else(|| {
                RegistryError::RedirectRefused {
                    from: url.clone(),
                    to: location.to_owned(),
                    reason: "not an http(s) URL",
                }
            })?;
            if !transport::is_plain_http(&url) && transport::is_plain_http(&next) {
                return Err(RegistryError::RedirectRefused {
                    from: url,
                    to: next,
                    reason: "downgrade from https to http",
                });
            }
            if status == StatusCode::SEE_OTHER && method != Method::HEAD {
                method = Method::GET;
            }
            url = next;
        }
    }

    /// The `Authorization` value for the next request of `call`, fetching a token
    /// when the endpoint is known to want one.
    async fn authorization(&self, call: &Call<'_>) -> Result<Option<String>, RegistryError> {
        if let Secret::Bearer(token) = &call.secret {
            return Ok(Some(format!("Bearer {token}")));
        }
        let challenge = lock(&self.inner.challenges)
            .get(&call.endpoint.authority)
            .cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match &call.secret {
                Secret::Basic { username, password } => {
                    Some(Secret::basic_header(username, password))
                }
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                let key = token_key(call);
                if let Some((token, expires)) = lock(&self.inner.tokens).get(&key) {
                    if *expires > crate::clock::monotonic_now() {
                        return Ok(Some(format!("Bearer {token}")));
                    }
                }
                let (token, lifetime) = self.fetch_token(call, &realm, service.as_deref()).await?;
                // Computed before taking the lock; `lifetime` is capped, so this cannot
                // overflow, and a clock that could would just not cache the token.
                if let Some(expires) = crate::clock::monotonic_now().checked_add(lifetime) {
                    lock(&self.inner.tokens).put(key, (token.clone(), expires));
                }
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// distribution token.md (GET with Basic, or anonymous) and oauth.md (POST
    /// with a refresh token).
    async fn fetch_token(
        &self,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
    ) -> Result<(String, Duration), RegistryError> {
        let token_error = |reason: String| RegistryError::Token {
            realm: realm.to_owned(),
            reason,
        };
        let realm_origin = transport::origin_of(realm)
            .ok_or_else(|| token_error("realm is not an http(s) URL".into()))?;
        let same_origin = realm_origin == call.endpoint.origin;
        if transport::is_plain_http(realm)
            && !same_origin
            && !matches!(call.secret, Secret::Anonymous)
        {
            return Err(token_error(
                "refusing to send credentials to a plain-http token service on another host".into(),
            ));
        }
        let scope = token_scope(call.repository);
        let encode = |s: &str| percent_encoding::utf8_percent_encode(s, QUERY).to_string();
        let mut headers = vec![("user-agent", USER_AGENT.to_owned())];
        let (method, url, body) = match &call.secret {
            Secret::Refresh(token) => {
                let mut form = format!(
                    "grant_type=refresh_token&client_id=pullgate&scope={}&refresh_token={}",
                    encode(&scope),
                    encode(token)
                );
                if let Some(service) = service {
                    form.push_str(&format!("&service={}", encode(service)));
                }
                (
                    Method::POST,
                    realm.to_owned(),
                    Some(("application/x-www-form-urlencoded".to_owned(), form)),
                )
            }
            secret => {
                if let Secret::Basic { username, password } = secret {
                    headers.push(("authorization", Secret::basic_header(username, password)));
                }
                let separator = if realm.contains('?') { '&' } else { '?' };
                let mut url = format!("{realm}{separator}scope={}", encode(&scope));
                if let Some(service) = service {
                    url.push_str(&format!("&service={}", encode(service)));
                }
                (Method::GET, url, None)
            }
        };
        let client = if same_origin {
            self.client(&call.endpoint.tls)?
        } else {
            self.client(&TlsSettings::default())?
        };
        let started = crate::clock::monotonic_now();
        let until = call
            .deadline
            .min(started + self.inner.config.request_timeout);
        let result =
            transport::send_once(&client, method, &url, &headers, body, started, until).await;
        self.count(&result);
        let (status, response_headers, body) = result?;
        let response = Response {
            status,
            headers: response_headers,
            body,
            url: realm.to_owned(),
            same_origin,
            started,
            until,
        };
        match status.as_u16() {
            200 => {}
            401 | 403 => {
                response.drain().await;
                return Err(unauthorized(call, realm));
            }
            status => {
                response.drain().await;
                return Err(RegistryError::Http {
                    status,
                    url: realm.to_owned(),
                });
            }
        }
        let bytes = response.read("a token response", MAX_TOKEN_BYTES).await?;
        let parsed: TokenResponse = parse_json(realm, &bytes)?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| token_error("the answer holds no token".into()))?;
        let lifetime = parsed
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .min(MAX_TOKEN_LIFETIME);
        Ok((token, lifetime))
    }
}

/// Characters escaped in query and form values.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn token_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn token_key(call: &Call<'_>) -> TokenKey {
    TokenKey {
        authority: call.endpoint.authority.clone(),
        scope: token_scope(call.repository),
        credentials: call.secret.fingerprint(),
    }
}

fn unauthorized(call: &Call<'_>, url: &str) -> RegistryError {
    RegistryError::Unauthorized {
        registry: call.registry.to_owned(),
        url: url.to_owned(),
    }
}

fn no_endpoint(reference: &Reference, capability: Capability) -> RegistryError {
    RegistryError::NoEndpoint {
        registry: reference.registry().to_owned(),
        capability: capability.as_str(),
    }
}

/// A 2xx response, or the error its status means.
async fn expect_success(
    call: &Call<'_>,
    response: Response,
    url: &str,
) -> Result<Response, RegistryError> {
    let status = response.status;
    if status.is_success() {
        return Ok(response);
    }
    response.drain().await;
    Err(match status.as_u16() {
        404 => RegistryError::NotFound {
            url: url.to_owned(),
        },
        401 => unauthorized(call, url),
        status => RegistryError::Http {
            status,
            url: url.to_owned(),
        },
    })
}

/// `Docker-Content-Digest`, if present; a malformed one is a protocol error.
fn digest_header(response: &Response) -> Result<Option<Digest>, RegistryError> {
    match response.header("docker-content-digest") {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| RegistryError::Protocol {
                url: response.url.clone(),
                reason: "malformed Docker-Content-Digest header",
            }),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(url: &str, bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|source| RegistryError::BadJson {
        url: url.to_owned(),
        source,
    })
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/r/referrers/sha256:a?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/r/referrers/sha256:a?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<http://x/prev>; rel="prev", <http://x/next>; rel=next"#).as_deref(),
            Some("http://x/next")
        );
        assert_eq!(next_link(r#"<http://x/prev>; rel="prev""#), None);
    }

    /// Issue 9 item 10: image names on ever new hosts (an attacker's choice) keep
    /// at most `MAX_REGISTRIES` registries in memory.
    #[test]
    fn attacker_chosen_registry_hosts_do_not_grow_memory() {
        let client = RegistryClient::new(RegistryConfig {
            hosts_dir: None,
            ..RegistryConfig::default()
        })
        .expect("client");
        for i in 0..MAX_REGISTRIES + 100 {
            client
                .endpoints(&format!("evil-{i}.example"))
                .expect("default endpoint");
        }
        assert_eq!(lock(&client.inner.endpoints).len(), MAX_REGISTRIES);
        // The maps filled from registry answers have the same kind of bound.
        assert_eq!(lock(&client.inner.challenges).cap().get(), MAX_REGISTRIES);
        assert_eq!(
            lock(&client.inner.referrers_mode).cap().get(),
            MAX_REGISTRIES
        );
        assert_eq!(lock(&client.inner.tokens).cap().get(), MAX_TOKENS);
        assert_eq!(lock(&client.inner.clients).cap().get(), MAX_CLIENTS);
    }

    /// Issue 9 item 10: one request slot semaphore per endpoint, for at most
    /// `MAX_REGISTRIES` endpoints.
    #[tokio::test]
    async fn request_slots_for_attacker_chosen_hosts_are_bounded() {
        let client = RegistryClient::new(RegistryConfig {
            hosts_dir: None,
            ..RegistryConfig::default()
        })
        .expect("client");
        for i in 0..MAX_REGISTRIES + 100 {
            let registry = format!("evil-{i}.example");
            let endpoint = client.endpoints(&registry).expect("endpoint")[0].clone();
            let call = Call {
                registry: &registry,
                repository: "app",
                endpoint,
                secret: Secret::Anonymous,
                deadline: crate::clock::monotonic_now() + Duration::from_secs(5),
            };
            drop(client.slot(&call).await.expect("slot"));
        }
        assert_eq!(lock(&client.inner.slots).len(), MAX_REGISTRIES);
    }

    #[test]
    fn transient_errors_are_named() {
        let http = |status| RegistryError::Http {
            status,
            url: "u".into(),
        };
        assert!(http(429).is_transient());
        assert!(http(503).is_transient());
        assert!(http(500).is_transient());
        assert!(!http(400).is_transient());
        assert!(!RegistryError::NotFound { url: "u".into() }.is_transient());
        assert!(RegistryError::Timeout {
            what: "x".into(),
            after: Duration::ZERO
        }
        .is_transient());
    }
}
