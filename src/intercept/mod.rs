//! The transport of the gate: every `PullImage` (both CRI API versions) is read
//! here, decided by [`crate::gate`], forwarded to containerd unchanged or pinned to
//! the verified digest, and its tag and verdict recorded; `ImageStatus` and
//! `CreateContainer` ([`before_run`]) are answered from the image's standing;
//! `RunPodSandbox` ([`sandbox`]) waits for containerd's sandbox image to be
//! verified and pulled pinned; a refusal leaves as the status that [`status`], the one place errors become gRPC
//! statuses, gives it.

mod before_run;
mod sandbox;

pub use sandbox::SandboxImageError;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use prost::Message;

use crate::cri::{self, box_body, status_response, CriApi, FrameError, ProxyBody};
use crate::gate::{
    Credentials, Descriptor, Gate, NotVerified, Pass, Refusal, RegistryError, TagRecord,
};
use crate::upstream::{ImageStore, ImageStoreError, Upstream, UpstreamError};

/// Largest `PullImageRequest` accepted. The message carries an image reference,
/// credentials and a sandbox config; the kubelet's are a few KiB. gRPC's own default
/// receive limit is 4 MiB, so nothing a real client sends is larger.
pub const MAX_PULL_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest `PullImageResponse` read back from containerd (an image ref, ~100 bytes).
const MAX_PULL_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a call ends in pullgate's own status instead of containerd's answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    #[error("PullImage request could not be read (limit {MAX_PULL_REQUEST_BYTES} bytes): {0}")]
    UnreadableRequest(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("malformed PullImage: {0}")]
    MalformedRequest(#[source] FrameError),
    /// The gate refused the pull.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    ImageStore(#[from] ImageStoreError),
    #[error("reading containerd's PullImage response from {socket} failed: {source}")]
    UnreadableResponse {
        socket: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An image on the node without a current allow verdict, for a call that would
    /// run it (`CreateContainer`, `RunPodSandbox`).
    #[error(transparent)]
    NotVerified(#[from] NotVerified),
    /// containerd did not answer what it knows about an image.
    #[error("asking containerd at {socket} about an image failed: {source}")]
    ImageLookup {
        socket: std::path::PathBuf,
        #[source]
        source: tonic::Status,
    },
    /// containerd did not say which sandbox image it runs.
    #[error("containerd at {socket} did not say which sandbox image it uses: {source}")]
    SandboxImageUnknown {
        socket: std::path::PathBuf,
        #[source]
        source: SandboxImageError,
    },
    /// containerd could not pull the verified sandbox image.
    #[error("containerd at {socket} could not pull the sandbox image {image}: {source}")]
    SandboxPull {
        image: String,
        socket: std::path::PathBuf,
        #[source]
        source: tonic::Status,
    },
    #[error("malformed {call}: {source}")]
    MalformedCall {
        call: &'static str,
        #[source]
        source: FrameError,
    },
    /// A gRPC service other than the CRI.
    #[error("service {service:?} is not served here; this socket exposes only the Kubernetes CRI (runtime.v1 and runtime.v1alpha2 RuntimeService/ImageService)")]
    NotCri { service: String },
}

/// The one place an error becomes the gRPC status a client sees. Every message
/// starts with `pullgate: `.
///
/// A refused pull takes the form the kubelet turns into a container reason. Since
/// Kubernetes 1.28 (kubernetes/kubernetes#117717, `evalCRIPullErr` in the kubelet's
/// image manager) a `PullImage` error whose status is `Unknown` and whose message
/// starts with a CRI error name (`k8s.io/cri-api/pkg/errors`) becomes that reason:
/// `kubectl describe pod` shows `SignatureValidationFailed` and "image pull failed
/// for <image> because the signature validation failed: <the rest>". Any other
/// status is a generic `ErrImagePull`. CRI-O answers its signature denials this way.
/// containerd being absent or going away is `Unavailable` so the kubelet retries; a
/// refusal by containerd's images service means pullgate asked for something
/// containerd does not accept, which is pullgate's fault (`Internal`).
pub fn status(error: &CallError) -> tonic::Status {
    let plain = || format!("pullgate: {error}");
    let chained = || format!("pullgate: {}", error_chain(error));
    let cri_error = |name: &str| tonic::Status::unknown(format!("{name}: {}", plain()));
    match error {
        CallError::UnreadableRequest(_)
        | CallError::MalformedRequest(_)
        | CallError::MalformedCall { .. }
        | CallError::Refused(Refusal::InvalidReference(_))
        | CallError::Upstream(UpstreamError::BadPath { .. }) => {
            tonic::Status::invalid_argument(plain())
        }
        CallError::Refused(Refusal::Unmatched { .. } | Refusal::Denied { .. }) => {
            cri_error("SignatureValidationFailed")
        }
        CallError::Refused(Refusal::Unresolved { error: cause, .. })
            if matches!(**cause, RegistryError::NotFound { .. }) =>
        {
            tonic::Status::not_found(plain())
        }
        CallError::Refused(Refusal::Unresolved { .. } | Refusal::Unavailable { .. }) => {
            cri_error("RegistryUnavailable")
        }
        CallError::Upstream(_) | CallError::ImageStore(ImageStoreError::Unavailable { .. }) => {
            tonic::Status::unavailable(chained())
        }
        CallError::ImageStore(_) => tonic::Status::internal(chained()),
        CallError::UnreadableResponse { .. } | CallError::ImageLookup { .. } => {
            tonic::Status::unavailable(plain())
        }
        CallError::SandboxImageUnknown {
            source: SandboxImageError::Status(_),
            ..
        }
        | CallError::SandboxPull { .. } => tonic::Status::unavailable(chained()),
        CallError::SandboxImageUnknown { .. } => tonic::Status::internal(chained()),
        CallError::NotVerified(_) => tonic::Status::permission_denied(plain()),
        CallError::NotCri { .. } => tonic::Status::unimplemented(plain()),
    }
}

/// `error` and its causes, each once.
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

/// Everything the gate shares between calls.
struct Shared {
    upstream: Upstream,
    /// containerd's CRI, to see whether a verified digest is already present.
    cri: cri::client::CriClient,
    images: ImageStore,
    gate: Gate,
    /// What containerd said about image IDs lately (names and manifest digests are
    /// facts about content, so a remembered answer is never wrong about the digests
    /// it lists; a miss or a refusal asks containerd again).
    facts: std::sync::Mutex<lru::LruCache<String, crate::gate::ImageFacts>>,
    /// containerd's sandbox image and the single flight that verifies it.
    sandbox: sandbox::SandboxImage,
}

/// The `PullImage` gate, as a tower service.
#[derive(Clone)]
pub struct PullImageGate {
    shared: Arc<Shared>,
}

impl PullImageGate {
    pub fn new(upstream: Upstream, images: ImageStore, gate: Gate) -> PullImageGate {
        PullImageGate {
            shared: Arc::new(Shared {
                // The channel dials lazily; building it cannot fail.
                cri: cri::client::CriClient::connect(upstream.socket())
                    .expect("a lazily connecting channel over a unix socket"),
                upstream,
                images,
                gate,
                facts: std::sync::Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(4096).expect("non-zero"),
                )),
                sandbox: sandbox::SandboxImage::default(),
            }),
        }
    }
}

impl PullImageGate {
    /// `ImageStatus`: containerd's answer, or "not present" for an image without
    /// standing.
    pub async fn image_status(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        before_run::image_status(&self.shared, request).await
    }

    /// `CreateContainer`: forwarded only for an image with standing.
    pub async fn create_container(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        before_run::create_container(&self.shared, request).await
    }

    /// `RunPodSandbox`: forwarded only while containerd's sandbox image has
    /// standing, where an enforcing statement covers it.
    pub async fn run_pod_sandbox(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        sandbox::run_pod_sandbox(&self.shared, request).await
    }

    /// Learns containerd's sandbox image (retrying until containerd answers), then
    /// verifies and pulls it pinned, and again after each policy reload. Runs until
    /// aborted.
    pub fn keep_sandbox_image(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(sandbox::keep(Arc::clone(&self.shared)))
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
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(pull_image(&shared, request).await) })
    }
}

async fn pull_image(shared: &Shared, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = crate::clock::monotonic_now();
    let api = request
        .extensions()
        .get::<CriApi>()
        .copied()
        .unwrap_or(CriApi::V1);
    let (mut parts, body) = request.into_parts();

    // 1. Read the whole request message (bounded) and decode it.
    let bytes = match Limited::new(body, MAX_PULL_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return refuse(api, "", started, CallError::UnreadableRequest(error)),
    };
    let mut pull = match cri::decode_pull_image_request(&bytes) {
        Ok(pull) => pull,
        Err(error) => return refuse(api, "", started, CallError::MalformedRequest(error)),
    };
    let image = pull
        .image
        .as_ref()
        .map(|spec| spec.image.clone())
        .unwrap_or_default();

    // 2. Decide, under the policy of the pod's namespace.
    let credentials = credentials_of(pull.auth.as_ref());
    let namespace = pull
        .sandbox_config
        .as_ref()
        .and_then(|config| config.metadata.as_ref())
        .map(|metadata| metadata.namespace.as_str())
        .filter(|namespace| !namespace.is_empty());
    let decision = shared.gate.decide_in(&image, &credentials, namespace).await;
    let (pinned, tag, target, verdict) = match decision {
        Ok(Pass::Forward) => (None, None, None, None),
        Ok(Pass::Pinned {
            pinned,
            tag,
            target,
            verdict,
        }) => (Some(pinned), tag, Some(*target), Some(verdict)),
        Err(refusal) => return refuse(api, &image, started, refusal.into()),
    };

    // 3. A verified digest that containerd already has needs no pull: asking the
    //    registry again would add a request to every warm pull and change nothing,
    //    since content is addressed by the digest that was verified. Only when the
    //    call brought its own credentials, though: without them the registry was
    //    asked with the node's credentials file, and answering from the store would
    //    hand a private image to a pod whose own (no) credentials containerd would
    //    have refused at the registry (`imagePullPolicy: Always` relies on that
    //    check). Such a pull goes on to containerd, pinned.
    let own_credentials = !matches!(credentials, Credentials::None);
    if let (true, Some(pinned), Some(target)) = (own_credentials, &pinned, &target) {
        if let Some(image_ref) = present_in_containerd(&shared.cri, pinned).await {
            record_tag(shared, &image, tag.as_ref(), target).await;
            record_verdict(shared, pinned, target, verdict.as_ref()).await;
            let response = pull_response(image_ref);
            let mut ok = HeaderMap::new();
            ok.insert("grpc-status", http::HeaderValue::from_static("0"));
            log_outcome(api, &image, started, response.headers(), Some(&ok));
            return response;
        }
    }

    // 4. Forward: unchanged, or with the image pinned to the verified digest.
    let body = match &pinned {
        None => bytes,
        Some(pinned) => {
            if let Some(spec) = pull.image.as_mut() {
                spec.image = pinned.clone();
            }
            parts.headers.remove(http::header::CONTENT_LENGTH);
            cri::frame(&pull.encode_to_vec())
        }
    };
    let forwarded = Request::from_parts(parts, box_body(Full::new(body)));
    let response = match shared.upstream.forward(forwarded).await {
        Ok(response) => response,
        Err(error) => return refuse(api, &image, started, error.into()),
    };

    // 5. Read containerd's answer whole so its status can be reported, then hand
    //    it back byte for byte, trailers included.
    let (parts, body) = response.into_parts();
    let collected = match Limited::new(body, MAX_PULL_RESPONSE_BYTES).collect().await {
        Ok(collected) => collected,
        Err(source) => {
            let socket = shared.upstream.socket().to_owned();
            let error = CallError::UnreadableResponse { socket, source };
            return refuse(api, &image, started, error);
        }
    };
    let trailers = collected.trailers().cloned();
    let pulled = cri::grpc_status(&parts.headers, trailers.as_ref())
        .is_some_and(|status| status.code() == tonic::Code::Ok);

    // 6. A tag the user asked for points at what was verified (DESIGN.md step 8).
    if let (true, Some(target), Some(pinned)) = (pulled, &target, &pinned) {
        record_tag(shared, &image, tag.as_ref(), target).await;
        record_verdict(shared, pinned, target, verdict.as_ref()).await;
    }
    log_outcome(api, &image, started, &parts.headers, trailers.as_ref());
    let bytes = collected.to_bytes();
    let body = match trailers {
        // A trailers-only answer (the status in the headers, no message) goes back
        // as one HEADERS frame with END_STREAM: gRPC clients other than tonic take
        // a status only from the stream's last HEADERS frame, so an empty DATA
        // frame ending the stream after it loses the status.
        None => box_body(Full::new(bytes)),
        Some(trailers) => {
            box_body(Full::new(bytes).with_trailers(async move { Some(Ok(trailers)) }))
        }
    };
    Response::from_parts(parts, body)
}

/// The id of the image containerd has under `pinned` (`repo@sha256:…`), if any.
async fn present_in_containerd(cri: &cri::client::CriClient, pinned: &str) -> Option<String> {
    let status = cri
        .image
        .clone()
        .image_status(cri::v1::ImageStatusRequest {
            image: Some(cri::v1::ImageSpec {
                image: pinned.to_owned(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .ok()?;
    status.into_inner().image.map(|image| image.id)
}

/// Records the tag the user asked for; a failure is logged: the pull itself is
/// pinned and done, and without the record the kubelet pulls again and the cached
/// verdict answers at once.
async fn record_tag(shared: &Shared, image: &str, tag: Option<&TagRecord>, target: &Descriptor) {
    if let Some(TagRecord { name, labels }) = tag {
        if let Err(error) = shared.images.tag(name, target, labels).await {
            tracing::warn!(image, tag = %name, %error, "could not record the tag in containerd");
        }
    }
}

/// Puts the verdict label on the record containerd made for the pinned pull, so a
/// later pullgate process finds it (`crate::verdict`). A failure is logged: this
/// process keeps the verdict in memory, and the next one verifies again.
async fn record_verdict(
    shared: &Shared,
    pinned: &str,
    target: &Descriptor,
    verdict: Option<&(String, String)>,
) {
    if let Some((key, value)) = verdict {
        let labels = std::collections::BTreeMap::from([(key.clone(), value.clone())]);
        if let Err(error) = shared.images.tag(pinned, target, &labels).await {
            tracing::warn!(image = pinned, %error, "could not record the verdict in containerd");
        }
    }
}

/// A successful `PullImageResponse` answered by pullgate itself.
fn pull_response(image_ref: String) -> Response<ProxyBody> {
    ok_response(cri::frame(
        &cri::v1::PullImageResponse { image_ref }.encode_to_vec(),
    ))
}

/// A successful answer (one framed message) made by pullgate itself.
fn ok_response(body: bytes::Bytes) -> Response<ProxyBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let mut response = Response::new(box_body(
        Full::new(body).with_trailers(async move { Some(Ok(trailers)) }),
    ));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

fn credentials_of(auth: Option<&cri::v1::AuthConfig>) -> Credentials {
    match auth {
        None => Credentials::None,
        // As containerd's CRI plugin: credentials the kubelet names a server for are
        // only for an endpoint on that host (`registry::server_address_matches`).
        Some(auth) => Credentials::from_auth_config(
            &auth.username,
            &auth.password,
            &auth.auth,
            &auth.identity_token,
            &auth.registry_token,
        )
        .for_server_address(&auth.server_address),
    }
}

/// Answers a call other than `PullImage` with pullgate's own status for `error`,
/// and logs it.
fn refuse_call(
    call: &'static str,
    image: &str,
    started: Instant,
    error: CallError,
) -> Response<ProxyBody> {
    let status = status(&error);
    tracing::info!(
        call,
        image,
        grpc_status = ?status.code(),
        grpc_message = status.message(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "refused"
    );
    status_response(status)
}

/// Answers a call with pullgate's own status for `error`, and logs it.
fn refuse(api: CriApi, image: &str, started: Instant, error: CallError) -> Response<ProxyBody> {
    let response = status_response(status(&error));
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
    let (code, message) = match cri::grpc_status(headers, trailers) {
        Some(status) => (format!("{:?}", status.code()), status.message().to_owned()),
        None => ("-".to_owned(), String::new()),
    };
    tracing::info!(
        api = api.as_str(),
        image,
        grpc_status = code,
        grpc_message = message,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "PullImage"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_cri_service_is_unimplemented_and_names_pullgate() {
        let service = "containerd.services.version.v1.Version".to_owned();
        let answer = status(&CallError::NotCri { service });
        assert_eq!(answer.code(), tonic::Code::Unimplemented);
        assert_eq!(
            answer.message(),
            "pullgate: service \"containerd.services.version.v1.Version\" is not served here; \
             this socket exposes only the Kubernetes CRI (runtime.v1 and runtime.v1alpha2 \
             RuntimeService/ImageService)"
        );
        let response = status_response(answer);
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(
            response.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"12"[..])
        );
    }

    #[test]
    fn refusals_take_the_form_the_kubelet_turns_into_a_reason() {
        let unmatched = Refusal::Unmatched {
            image: "r.test/a:1".into(),
            scope: "r.test/a".into(),
        };
        let answer = status(&CallError::Refused(unmatched));
        assert_eq!(answer.code(), tonic::Code::Unknown);
        assert_eq!(
            answer.message(),
            "SignatureValidationFailed: pullgate: r.test/a:1: no trust policy statement \
             applies to r.test/a (this node denies unmatched images)"
        );
        let not_found = Arc::new(RegistryError::NotFound {
            url: "http://r.test/v2/a/manifests/1".into(),
        });
        let unresolved = Refusal::Unresolved {
            image: "r.test/a:1".into(),
            error: Arc::clone(&not_found),
        };
        let answer = status(&CallError::Refused(unresolved));
        assert_eq!(answer.code(), tonic::Code::NotFound);
        assert_eq!(
            answer.message(),
            "pullgate: r.test/a:1: not found: http://r.test/v2/a/manifests/1"
        );
        let unavailable = Refusal::Unavailable {
            image: "r.test/a:1".into(),
            error: not_found,
        };
        let answer = status(&CallError::Refused(unavailable));
        assert_eq!(answer.code(), tonic::Code::Unknown);
        assert!(
            answer
                .message()
                .starts_with("RegistryUnavailable: pullgate: r.test/a:1: not found"),
            "{answer:?}"
        );
    }
}
