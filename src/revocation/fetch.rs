//! Plain-HTTP fetches of OCSP responses and CRLs: `http://` only, bounded in time
//! and size, no credentials, no redirects.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{MAX_CRL_BYTES, MAX_OCSP_RESPONSE_BYTES};

/// OCSP requests whose URL-escaped base64 form is shorter than this are sent with
/// GET (RFC 6960 Appendix A.1, as notation does); longer ones with POST.
const MAX_OCSP_GET_BYTES: usize = 255;

/// Why a revocation endpoint gave no usable bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("only http:// URLs are used for revocation data, not {0:?}")]
    Scheme(String),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP {0}")]
    Status(StatusCode),
    #[error("the answer exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Transport(String),
}

pub(super) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub(super) fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.enforce_http(true);
        connector.set_nodelay(true);
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }

    /// Asks the OCSP responder at `url` about `request` (DER).
    pub(super) async fn ocsp(
        &self,
        url: &str,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        check_scheme(url)?;
        let encoded = percent_encoding::utf8_percent_encode(
            &STANDARD.encode(request),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let get_url = format!("{}/{encoded}", url.trim_end_matches('/'));
        let request = if encoded.len() < MAX_OCSP_GET_BYTES {
            build(Method::GET, &get_url, None)?
        } else {
            build(Method::POST, url, Some(request.to_vec()))?
        };
        self.send(request, timeout, MAX_OCSP_RESPONSE_BYTES).await
    }

    /// Downloads the CRL at `url`.
    pub(super) async fn crl(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        check_scheme(url)?;
        self.send(build(Method::GET, url, None)?, timeout, MAX_CRL_BYTES)
            .await
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Transport(e.to_string()))?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status(response.status()));
            }
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit) {
                return Err(FetchError::TooLarge { limit });
            }
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| FetchError::Transport(e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if bytes.len() as u64 + data.len() as u64 > limit {
                        return Err(FetchError::TooLarge { limit });
                    }
                    bytes.extend_from_slice(&data);
                }
            }
            Ok(bytes)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
    }
}

fn check_scheme(url: &str) -> Result<(), FetchError> {
    match url.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => Ok(()),
        _ => Err(FetchError::Scheme(url.to_owned())),
    }
}

fn build(
    method: Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<Request<Full<Bytes>>, FetchError> {
    let mut builder = Request::builder().method(method).uri(url);
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/ocsp-request");
    }
    builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| FetchError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_is_fetched() {
        assert!(check_scheme("http://ocsp.example.com").is_ok());
        assert!(check_scheme("HTTP://ocsp.example.com").is_ok());
        for url in [
            "https://ocsp.example.com",
            "ldap://x/cn=crl",
            "ocsp.example.com",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(check_scheme(url), Err(FetchError::Scheme(u)) if u == url),
                "{url}"
            );
        }
    }
}
