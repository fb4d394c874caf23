//! The interception point for `PullImage` (both CRI API versions): one tower service
//! that every pull goes through. Today it reads the request, forwards it unchanged
//! and reports the outcome; the verification issues put the decision here.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::cri::{self, box_body, status_response, CriApi, ProxyBody};
use crate::upstream::Upstream;

/// Largest `PullImageRequest` accepted. The message carries an image reference,
/// credentials and a sandbox config; the kubelet's are a few KiB. gRPC's own default
/// receive limit is 4 MiB, so nothing a real client sends is larger.
pub const MAX_PULL_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest `PullImageResponse` read back from containerd (an image ref, ~100 bytes).
const MAX_PULL_RESPONSE_BYTES: usize = 1024 * 1024;

/// The `PullImage` gate, as a tower service.
#[derive(Clone)]
pub struct PullImageGate {
    upstream: Upstream,
}

impl PullImageGate {
    pub fn new(upstream: Upstream) -> PullImageGate {
        PullImageGate { upstream }
    }
}

impl tower::Service<Request<Incoming>> for PullImageGate {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let upstream = self.upstream.clone();
        Box::pin(async move { Ok(pull_image(&upstream, request).await) })
    }
}

async fn pull_image(upstream: &Upstream, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    let api = request
        .extensions()
        .get::<CriApi>()
        .copied()
        .unwrap_or(CriApi::V1);
    let (parts, body) = request.into_parts();

    // 1. Read the whole request message (bounded) and decode it.
    let bytes = match Limited::new(body, MAX_PULL_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let status = tonic::Status::invalid_argument(format!(
                "pullgate: PullImage request could not be read (limit {MAX_PULL_REQUEST_BYTES} bytes): {error}"
            ));
            return finish(api, "", started, status_response(status));
        }
    };
    let pull = match cri::decode_pull_image_request(&bytes) {
        Ok(pull) => pull,
        Err(error) => {
            let status =
                tonic::Status::invalid_argument(format!("pullgate: malformed PullImage: {error}"));
            return finish(api, "", started, status_response(status));
        }
    };
    let image = pull
        .image
        .as_ref()
        .map(|spec| spec.image.clone())
        .unwrap_or_default();

    // 2. Forward the original bytes unchanged.
    let forwarded = Request::from_parts(parts, box_body(Full::new(bytes)));
    let response = match upstream.forward(forwarded).await {
        Ok(response) => response,
        Err(error) => return finish(api, &image, started, status_response(error.to_status())),
    };

    // 3. Read containerd's answer whole so its status can be reported, then hand
    //    it back byte for byte, trailers included.
    let (parts, body) = response.into_parts();
    let collected = match Limited::new(body, MAX_PULL_RESPONSE_BYTES).collect().await {
        Ok(collected) => collected,
        Err(error) => {
            let status = tonic::Status::unavailable(format!(
                "pullgate: reading containerd's PullImage response from {} failed: {error}",
                upstream.socket().display()
            ));
            return finish(api, &image, started, status_response(status));
        }
    };
    let trailers = collected.trailers().cloned();
    log_outcome(api, &image, started, &parts.headers, trailers.as_ref());
    let body = Full::new(collected.to_bytes()).with_trailers(async move { trailers.map(Ok) });
    Response::from_parts(parts, box_body(body))
}

/// Logs the outcome of a call that ends in pullgate's own status response.
fn finish(
    api: CriApi,
    image: &str,
    started: Instant,
    response: Response<ProxyBody>,
) -> Response<ProxyBody> {
    log_outcome(api, image, started, response.headers(), None);
    response
}

/// The one log line per intercepted call.
fn log_outcome(
    api: CriApi,
    image: &str,
    started: Instant,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) {
    let (code, message) = grpc_outcome(headers, trailers);
    tracing::info!(
        api = api.as_str(),
        image,
        grpc_status = code,
        grpc_message = message,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "PullImage"
    );
}

/// The gRPC status of a response: from the headers of a trailers-only response, else
/// from the trailers; an absent status is reported as `-`.
fn grpc_outcome(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> (String, String) {
    let status = tonic::Status::from_header_map(headers)
        .or_else(|| trailers.and_then(tonic::Status::from_header_map));
    match status {
        Some(status) => (format!("{:?}", status.code()), status.message().to_owned()),
        None => ("-".to_owned(), String::new()),
    }
}
