//! The connection to containerd: one HTTP/2 client over its unix socket, shared by
//! every forwarded call and redialled whenever containerd has gone away; and
//! containerd's native images API ([`images`]) for recording verified tags.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::UnixStream;

use crate::cri::ProxyBody;

pub mod images;

pub use images::{ImageRecord, ImageStore, ImageStoreError};

/// How long the upstream connection may be silent, while a call is open, before it
/// is pinged, so that a containerd that hangs without closing the socket fails the
/// calls waiting on it. Not shorter: containerd's gRPC server (grpc-go's default
/// keepalive enforcement, `MinTime` 5 minutes) counts a ping sooner than 5 minutes
/// after the last one as a strike and, at the third, closes the connection with
/// GOAWAY `too_many_pings`, failing every call on it. With 30 s here, any call
/// quiet for 2 minutes (a long ExecSync or image pull, the kubelet's
/// GetContainerEvents stream on a quiet node) failed through pullgate.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5 * 60 + 10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call could not be forwarded to containerd.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("containerd at {socket} is unavailable: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: DialError,
    },
    #[error("call to containerd at {socket} failed: {source}")]
    Call {
        socket: PathBuf,
        #[source]
        source: hyper::Error,
    },
    #[error("request path {path:?} is not a valid URI path")]
    BadPath { path: String },
}

/// A cloneable handle to containerd's gRPC socket: one multiplexed HTTP/2
/// connection, dialled on first use and redialled once it has closed.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    socket: PathBuf,
    connect_timeout: Duration,
    /// The live connection, if any. A std mutex: it is held only to clone the handle.
    current: Mutex<Option<SendRequest<ProxyBody>>>,
    /// Serialises dialling so a burst of calls after a restart makes one connection.
    dialling: tokio::sync::Mutex<()>,
}

impl Upstream {
    pub fn new(socket: &Path, connect_timeout: Duration) -> Upstream {
        Upstream {
            inner: Arc::new(Inner {
                socket: socket.to_owned(),
                connect_timeout,
                current: Mutex::new(None),
                dialling: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    /// Sends `request` to containerd unchanged except for the URI's scheme and
    /// authority, which only address the socket. Headers (metadata, `grpc-timeout`,
    /// `te`), body and trailers pass through as they are.
    pub async fn forward(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(http::uri::Authority::from_static("localhost"));
        parts.path_and_query = request.uri().path_and_query().cloned();
        *request.uri_mut() = Uri::from_parts(parts).map_err(|_| UpstreamError::BadPath {
            path: request.uri().path().to_owned(),
        })?;
        let mut sender = self.connection().await?;
        sender
            .send_request(request)
            .await
            .map_err(|source| UpstreamError::Call {
                socket: self.inner.socket.clone(),
                source,
            })
    }

    /// The live connection, dialling a new one if there is none or it has closed.
    async fn connection(&self) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let _dialling = self.inner.dialling.lock().await;
        // Another call may have dialled while this one waited.
        if let Some(sender) = self.live() {
            return Ok(sender);
        }
        let sender = self.dial().await.map_err(|source| UpstreamError::Connect {
            socket: self.inner.socket.clone(),
            source,
        })?;
        *self.lock_current() = Some(sender.clone());
        Ok(sender)
    }

    fn live(&self) -> Option<SendRequest<ProxyBody>> {
        self.lock_current()
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<SendRequest<ProxyBody>>> {
        // The guarded value is a plain handle; a panic elsewhere cannot leave it torn.
        self.inner
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn dial(&self) -> Result<SendRequest<ProxyBody>, DialError> {
        let timeout = self.inner.connect_timeout;
        let stream = tokio::time::timeout(timeout, UnixStream::connect(&self.inner.socket))
            .await
            .map_err(|_| DialError::Timeout(timeout))?
            .map_err(DialError::Io)?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(DialError::Handshake)?;
        let socket = self.inner.socket.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(socket = %socket.display(), %error, "containerd connection closed");
            }
        });
        tracing::debug!(socket = %self.inner.socket.display(), "connected to containerd");
        Ok(sender)
    }
}

/// Why dialling containerd failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Io(std::io::Error),
    #[error("HTTP/2 handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
}
