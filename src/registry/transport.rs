//! HTTP under the registry client: one hyper-util client per TLS setting (so one
//! connection pool per endpoint kind), redirects that never carry credentials to
//! another origin, deadlines on every await, and bounded body reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use super::error::RegistryError;
use super::hosts::TlsSettings;
use crate::reference::Digest;

pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Redirects followed per request (Go's net/http follows 10; distribution only
/// ever needs one, to blob storage).
pub(crate) const MAX_REDIRECTS: usize = 5;
/// How much of an error or redirect body is read so the connection can be reused.
const DRAIN_LIMIT: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// Content up to this size is hashed where it was read; larger content (an
/// envelope can be 32 MiB) on the blocking pool.
const INLINE_HASH_BYTES: usize = 256 * 1024;
/// A body read yields to the runtime after this many bytes.
const YIELD_EVERY_BYTES: usize = 1024 * 1024;

pub(crate) fn build_client(
    settings: &TlsSettings,
    system_roots: &RootCertStore,
    connect_timeout: Duration,
) -> Result<HttpClient, RegistryError> {
    let tls = tls_config(settings, system_roots)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates leave fewer roots, never more; an https
    // registry then fails the handshake with a clear error.
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    roots
}

fn tls_config(
    settings: &TlsSettings,
    system_roots: &RootCertStore,
) -> Result<rustls::ClientConfig, RegistryError> {
    let bad = |path: &std::path::Path, reason: String| RegistryError::HostsConfig {
        path: path.to_owned(),
        reason,
    };
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(std::path::Path::new("tls"), e.to_string()))?;
    let builder = if settings.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
    } else {
        let mut roots = system_roots.clone();
        for path in &settings.ca {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(path, format!("cannot read CA file: {e}")))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(path, format!("invalid PEM: {e}")))?;
            if certs.is_empty() {
                return Err(bad(path, "no certificate in CA file".into()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| bad(path, format!("unusable CA certificate: {e}")))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let config = match &settings.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| bad(cert, format!("cannot read client certificate: {e}")))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(cert, format!("invalid PEM: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| bad(key, format!("cannot read client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(cert, format!("unusable client certificate: {e}")))?
        }
    };
    Ok(config)
}

/// hosts.toml `skip_verify = true`: any server certificate is accepted, but the
/// handshake signatures are still checked (so the session is at least with the
/// holder of that certificate's key).
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `scheme://authority` of an absolute URL, the scheme in lower case.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!(
        "{}://{}",
        web_scheme(&uri)?,
        uri.authority()?.as_str()
    ))
}

/// `http` or `https` for a URL with either scheme in any case (schemes are
/// case-insensitive, RFC 3986 §3.1: `HTTP://` is plain http too), else `None`.
fn web_scheme(uri: &http::Uri) -> Option<&'static str> {
    let scheme = uri.scheme_str()?;
    if scheme.eq_ignore_ascii_case("https") {
        Some("https")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// Whether `url` is an absolute plain-http URL, whatever the case of its scheme.
pub(crate) fn is_plain_http(url: &str) -> bool {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|uri| web_scheme(&uri))
        == Some("http")
}

/// Resolves a `Location` or `Link` target against the URL it came from.
pub(crate) fn join_url(base: &str, target: &str) -> Option<String> {
    let scheme = target.split_once("://").map(|(scheme, _)| scheme);
    if let Some(scheme) = scheme.filter(|s| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    }) {
        // An absolute URL (RFC 3986 §3.1 scheme syntax): only http(s), in any case (the scheme is normalised so
        // later checks on it see what the request will use).
        let uri: http::Uri = target.parse().ok()?;
        let normal = web_scheme(&uri)?;
        return Some(format!("{normal}{}", &target[scheme.len()..]));
    }
    let origin = origin_of(base)?;
    if let Some(rest) = target.strip_prefix("//") {
        let uri: http::Uri = base.parse().ok()?;
        return Some(format!("{}://{rest}", web_scheme(&uri)?));
    }
    if target.starts_with('/') {
        return Some(format!("{origin}{target}"));
    }
    // Relative to the base path's directory.
    let uri: http::Uri = base.parse().ok()?;
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{origin}{dir}{target}"))
}

/// A response whose body has not been read yet.
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Incoming,
    pub url: String,
    /// Whether `url` is on the endpoint's origin (so a 401 there is ours to answer).
    pub same_origin: bool,
    pub started: Instant,
    pub until: Instant,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// The media type without parameters.
    pub(crate) fn content_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        Some(value.split(';').next().unwrap_or(value).trim().to_owned())
    }

    /// Reads the body, at most `limit` bytes, before `until`.
    pub(crate) async fn read(
        self,
        what: &'static str,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        self.read_with(what, limit).await
    }

    /// Reads content that its descriptor says is `size` bytes (already checked
    /// against the caller's limit): at most `size` bytes, into a buffer allocated
    /// once. The bytes must hash to `digest`; a large body is hashed on the
    /// blocking pool, so hashing 32 MiB never holds up the thread that forwards
    /// CRI calls.
    pub(crate) async fn read_content(
        self,
        what: &'static str,
        size: u64,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = self.url.clone();
        let bytes = self.read_with(what, size).await?;
        let algorithm = digest.algorithm();
        let (bytes, actual) = if bytes.len() <= INLINE_HASH_BYTES {
            let actual = Digest::of(algorithm, &bytes);
            (bytes, actual)
        } else {
            tokio::task::spawn_blocking(move || {
                let actual = Digest::of(algorithm, &bytes);
                (bytes, actual)
            })
            .await
            .map_err(|e| RegistryError::Transport {
                url: url.clone(),
                source: Box::new(e),
            })?
        };
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    async fn read_with(self, what: &'static str, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let length = self.content_length();
        if let Some(length) = length {
            if length > limit {
                return Err(RegistryError::TooLarge {
                    what,
                    url: self.url,
                    size: length,
                    limit,
                });
            }
        }
        // One allocation of the announced size (never above the limit): growing by
        // doubling would hold up to 1.5× a large blob during the last copy.
        let capacity = length.unwrap_or(0).min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        let mut body = self.body;
        let mut since_yield = 0usize;
        loop {
            // A registry sending a large body as fast as loopback allows keeps
            // frames ready; hand the thread to the other calls every MiB.
            if since_yield >= YIELD_EVERY_BYTES {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            let frame = match tokio::time::timeout_at(self.until.into(), body.frame()).await {
                Err(_) => {
                    return Err(RegistryError::Timeout {
                        what: format!("reading {what} from {}", self.url),
                        after: self.started.elapsed(),
                    })
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(RegistryError::Transport {
                        url: self.url,
                        source: Box::new(e),
                    })
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if bytes.len() as u64 + data.len() as u64 > limit {
                    return Err(RegistryError::TooLarge {
                        what,
                        url: self.url,
                        size: bytes.len() as u64 + data.len() as u64,
                        limit,
                    });
                }
                since_yield += data.len();
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    }

    /// Reads and drops a small body so the connection goes back to the pool.
    pub(crate) async fn drain(self) {
        drain(self.body, self.until).await
    }
}

pub(crate) async fn drain(mut body: Incoming, until: Instant) {
    let until = until.min(crate::clock::monotonic_now() + DRAIN_TIME);
    let mut read = 0usize;
    while read <= DRAIN_LIMIT {
        match tokio::time::timeout_at(until.into(), body.frame()).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |d| d.len());
            }
            _ => return,
        }
    }
}

/// Sends one request (no redirects, no retries) before `until`.
pub(crate) async fn send_once(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<(String, String)>,
    started: Instant,
    until: Instant,
) -> Result<(StatusCode, HeaderMap, Incoming), RegistryError> {
    let mut builder = http::Request::builder().method(method.clone()).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let payload = match body {
        Some((content_type, text)) => {
            builder = builder.header("content-type", content_type);
            Full::new(Bytes::from(text))
        }
        None => Full::new(Bytes::new()),
    };
    let request = builder
        .body(payload)
        .map_err(|e| RegistryError::Transport {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
    let response = match tokio::time::timeout_at(until.into(), client.request(request)).await {
        Err(_) => {
            return Err(RegistryError::Timeout {
                what: format!("{method} {url}"),
                after: started.elapsed(),
            })
        }
        Ok(Err(e)) => {
            return Err(RegistryError::Transport {
                url: url.to_owned(),
                source: Box::new(e),
            })
        }
        Ok(Ok(response)) => response,
    };
    let (parts, body) = response.into_parts();
    Ok((parts.status, parts.headers, body))
}

/// The longest `Retry-After` taken at its word. No CRI call lives this long (the
/// kubelet's `runtime-request-timeout` is 2 min by default), so any longer wait
/// already means "give up now"; the cap keeps `now + wait` finite whatever the
/// registry sends (`Retry-After: 18446744073709551615` once overflowed `Instant`).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 60);

/// How long a 429/503 asks us to wait: `Retry-After` in seconds or as an
/// HTTP-date (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(crate::clock::wall_now())
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_like_a_browser() {
        let base = "http://h:1/v2/r/referrers/x?a=b";
        assert_eq!(
            join_url(base, "/v2/r/referrers/x?n=2").as_deref(),
            Some("http://h:1/v2/r/referrers/x?n=2")
        );
        assert_eq!(
            join_url(base, "https://cdn/blob").as_deref(),
            Some("https://cdn/blob")
        );
        assert_eq!(join_url(base, "//cdn/b").as_deref(), Some("http://cdn/b"));
        assert_eq!(
            join_url(base, "y?n=2").as_deref(),
            Some("http://h:1/v2/r/referrers/y?n=2")
        );
        assert_eq!(join_url(base, "ftp://x/y"), None);
        assert_eq!(origin_of(base).as_deref(), Some("http://h:1"));
    }

    /// Issue 9 item 7: `HTTP://` is plain http; every scheme check must see it so.
    #[test]
    fn upper_case_schemes_are_the_same_schemes() {
        assert!(is_plain_http("HTTP://other/token"));
        assert!(is_plain_http("Http://other/token"));
        assert!(!is_plain_http("HTTPS://other/token"));
        assert!(!is_plain_http("/token"));
        assert_eq!(origin_of("HTTP://h:1/x").as_deref(), Some("http://h:1"));
        assert_eq!(origin_of("hTTpS://h/x").as_deref(), Some("https://h"));
        let base = "https://h/v2/x";
        assert_eq!(
            join_url(base, "HTTP://cdn/blob?a=b").as_deref(),
            Some("http://cdn/blob?a=b")
        );
        assert_eq!(join_url(base, "FTP://x/y"), None);
        assert_eq!(
            join_url(base, "/v2/y?from=http://x").as_deref(),
            Some("https://h/v2/y?from=http://x")
        );
        assert_eq!(
            join_url("HTTPS://h/v2/x", "//cdn/b").as_deref(),
            Some("https://cdn/b")
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "3".parse().expect("valid"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let later = crate::clock::wall_now() + Duration::from_secs(120);
        headers.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().expect("valid"),
        );
        let wait = retry_after(&headers).expect("date");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        headers.insert("retry-after", "soon".parse().expect("valid"));
        assert_eq!(retry_after(&headers), None);
        // Issue 9 item 6: wire values beyond any deadline are capped, never overflow.
        headers.insert("retry-after", u64::MAX.to_string().parse().expect("valid"));
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            "retry-after",
            "Fri, 31 Dec 9999 23:59:59 GMT".parse().expect("valid"),
        );
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn tls_configs_build() {
        let roots = RootCertStore::empty();
        assert!(tls_config(&TlsSettings::default(), &roots).is_ok());
        assert!(tls_config(
            &TlsSettings {
                skip_verify: true,
                ..Default::default()
            },
            &roots
        )
        .is_ok());
        assert!(matches!(
            tls_config(
                &TlsSettings {
                    ca: vec!["/nonexistent/ca.pem".into()],
                    ..Default::default()
                },
                &roots
            ),
            Err(RegistryError::HostsConfig { .. })
        ));
    }
}
