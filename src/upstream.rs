//! The connection to containerd: one HTTP/2 client over its unix socket, shared by
//! every forwarded call and redialled whenever containerd has gone away.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::UnixStream;

use crate::cri::ProxyBody;

/// How often an idle upstream connection is pinged, so a containerd that vanished
/// without closing the socket is noticed before the next call needs it.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call could not be forwarded to containerd.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("containerd at {socket} is unavailable: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("call to containerd at {socket} failed: {source}")]
    Call {
        socket: PathBuf,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("request path {path:?} is not a valid URI path")]
    BadPath { path: String },
}

impl UpstreamError {
    /// containerd being absent or going away is `Unavailable` so the kubelet retries;
    /// it is never treated as success.
    pub fn to_status(&self) -> tonic::Status {
        match self {
            UpstreamError::Connect { .. } | UpstreamError::Call { .. } => {
                tonic::Status::unavailable(format!("pullgate: {}", error_chain(self)))
            }
            UpstreamError::BadPath { .. } => {
                tonic::Status::invalid_argument(format!("pullgate: {self}"))
            }
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A cloneable handle to containerd's gRPC socket.
#[derive(Clone)]
pub struct Upstream {
    client: Client<UnixConnector, ProxyBody>,
    socket: Arc<PathBuf>,
}

impl Upstream {
    pub fn new(socket: &Path, connect_timeout: Duration) -> Upstream {
        let socket = Arc::new(socket.to_owned());
        let connector = UnixConnector {
            socket: Arc::clone(&socket),
            timeout: connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .http2_keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .build(connector);
        Upstream { client, socket }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends `request` to containerd unchanged except for the URI's scheme and
    /// authority, which only address the socket. Headers (metadata, `grpc-timeout`,
    /// `te`), body and trailers pass through as they are.
    pub async fn forward(
        &self,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        // A fixed authority keeps every call on the one pooled HTTP/2 connection.
        let uri: Uri =
            format!("http://localhost{path}")
                .parse()
                .map_err(|_| UpstreamError::BadPath {
                    path: path.to_owned(),
                })?;
        *request.uri_mut() = uri;
        self.client.request(request).await.map_err(|source| {
            let socket = self.socket.as_ref().clone();
            if source.is_connect() {
                UpstreamError::Connect { socket, source }
            } else {
                UpstreamError::Call { socket, source }
            }
        })
    }
}

/// Dials containerd's socket for the HTTP client, whatever URI it is asked for.
#[derive(Clone)]
struct UnixConnector {
    socket: Arc<PathBuf>,
    timeout: Duration,
}

impl tower::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let socket = Arc::clone(&self.socket);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, UnixStream::connect(&*socket)).await {
                Ok(stream) => stream.map(TokioIo::new),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect timed out after {timeout:?}"),
                )),
            }
        })
    }
}
