//! The one error type of the registry source.

use std::path::PathBuf;
use std::time::Duration;

use crate::reference::Digest;

/// Why a registry operation failed. [`RegistryError::is_transient`] tells the
/// caller whether it may succeed later (map to `Unavailable`, never cache) or is a
/// property of the content or configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry (or its token service) refused the credentials, or there were
    /// none and it wants some.
    #[error("{registry}: unauthorized ({url})")]
    Unauthorized { registry: String, url: String },
    /// 403: authenticated but not allowed to pull.
    #[error("{registry}: access denied ({url})")]
    Denied { registry: String, url: String },
    #[error("not found: {url}")]
    NotFound { url: String },
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    /// A declared size (descriptor, Content-Length) or the bytes actually sent
    /// exceed the limit for this kind of content.
    #[error("{what} at {url} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        url: String,
        size: u64,
        limit: u64,
    },
    /// More entries than a listing may have (referrers pages and entries).
    #[error("{what} at {url} lists more than {limit} entries")]
    TooMany {
        what: &'static str,
        url: String,
        limit: usize,
    },
    #[error("content at {url} does not match digest {expected} (got {actual})")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{url}: content type {actual:?}, expected {expected}")]
    BadContentType {
        url: String,
        expected: &'static str,
        actual: Option<String>,
    },
    #[error("{url}: invalid JSON: {source}")]
    BadJson {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    /// A response broke the distribution protocol in a way not covered above
    /// (a bad digest header, a redirect without Location, …).
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: &'static str },
    #[error("signature manifest {digest} has {count} blobs; exactly one is required")]
    BlobCount { digest: Digest, count: usize },
    #[error("{url}: more than {limit} redirects")]
    RedirectLimit { url: String, limit: usize },
    /// A redirect to a URL we refuse to follow (not http(s), or https → http).
    #[error("{from}: refusing redirect to {to:?}: {reason}")]
    RedirectRefused {
        from: String,
        to: String,
        reason: &'static str,
    },
    #[error("{url}: HTTP {status}")]
    Http { status: u16, url: String },
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{}: {reason}", path.display())]
    HostsConfig { path: PathBuf, reason: String },
    #[error("credentials file {}: {reason}", path.display())]
    Credentials { path: PathBuf, reason: String },
    /// The credentials passed with the call cannot be used (e.g. `auth` is not
    /// base64 of `user:password`).
    #[error("invalid credentials for {registry}: {reason}")]
    InvalidCredentials {
        registry: String,
        reason: &'static str,
    },
    /// The token service answered, but not with a token we can use.
    #[error("token service {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("{registry}: no endpoint in hosts.toml has the {capability} capability")]
    NoEndpoint {
        registry: String,
        capability: &'static str,
    },
}

impl RegistryError {
    /// Whether trying again later may succeed: timeouts, transport failures, and
    /// the statuses a registry uses for overload or outage. The caller answers
    /// these with `Unavailable` and never caches them as a verdict.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Timeout { .. } | RegistryError::Transport { .. } => true,
            RegistryError::Http { status, .. } => {
                matches!(status, 408 | 429) || (500..=599).contains(status)
            }
            _ => false,
        }
    }
}
