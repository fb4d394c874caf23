//! What happens before a container runs (issue 12): `ImageStatus` and
//! `CreateContainer` (both CRI API versions; their wire formats are equal) are
//! answered from the image's standing ([`crate::gate::Gate::standing`]).
//!
//! - `ImageStatus` is forwarded; when containerd has the image and it has no
//!   standing, the answer becomes "not present", so the kubelet pulls it through
//!   the gate (`IfNotPresent`), or fails the pod (`Never`).
//! - `CreateContainer` is forwarded only when the image it names (an ID, as the
//!   kubelet sends, or a name) has standing under the policy of the pod's
//!   namespace; else `PermissionDenied`.

use futures_util::future::BoxFuture;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use prost::Message;

use super::{refuse_call, CallError, Shared, MAX_PULL_REQUEST_BYTES};
use crate::cri::{self, box_body, ProxyBody};
use crate::gate::{ImageFacts, RecordLookup, RecordSource, StandingCall};
use crate::upstream::ImageStore;

/// Largest `ImageStatusResponse` read back from containerd (`verbose` adds the
/// image's config as JSON: kilobytes).
const MAX_STATUS_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// containerd's image records, as the gate's [`RecordSource`].
struct Records<'a>(&'a ImageStore);

impl RecordSource for Records<'_> {
    fn record<'a>(&'a self, name: &'a str) -> BoxFuture<'a, RecordLookup> {
        Box::pin(async move {
            match self.0.get(name).await {
                Ok(Some(record)) => Ok(Some((record.target.digest, record.labels))),
                Ok(None) => Ok(None),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}

pub(super) async fn image_status(
    shared: &Shared,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    const CALL: &str = "ImageStatus";
    let started = crate::clock::monotonic_now();
    let (parts, body) = request.into_parts();
    let (bytes, asked): (_, cri::v1::ImageStatusRequest) =
        match read_unary(body, CALL, "runtime.v1.ImageStatusRequest").await {
            Ok(read) => read,
            Err(error) => return refuse_call(CALL, "", started, error),
        };
    let requested = asked.image.map(|spec| spec.image).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let forwarded = Request::from_parts(parts, box_body(Full::new(bytes)));
    let response = match shared.upstream.forward(forwarded).await {
        Ok(response) => response,
        Err(error) => return refuse_call(CALL, &requested, started, error.into()),
    };
    let (parts, body) = response.into_parts();
    let collected = match Limited::new(body, MAX_STATUS_RESPONSE_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected,
        Err(source) => {
            let socket = shared.upstream.socket().to_owned();
            let error = CallError::UnreadableResponse { socket, source };
            return refuse_call(CALL, &requested, started, error);
        }
    };
    let trailers = collected.trailers().cloned();
    let bytes = collected.to_bytes();
    let answered = cri::grpc_status(&parts.headers, trailers.as_ref())
        .is_some_and(|status| status.code() == tonic::Code::Ok);
    let image = answered
        .then(|| cri::decode_unary::<cri::v1::ImageStatusResponse>(&bytes, "ImageStatusResponse"))
        .and_then(Result::ok)
        .and_then(|answer| answer.image);
    if let Some(image) = image {
        let facts = facts_of(&image);
        remember(shared, &requested, &facts);
        let records = Records(&shared.images);
        let standing = shared
            .gate
            .standing(
                StandingCall::ImageStatus,
                &requested,
                &facts,
                None,
                &records,
            )
            .await;
        if standing.is_err() {
            // Not present, as far as the kubelet is concerned: it pulls through the
            // gate next (the audit line says why).
            let hidden = cri::frame(&cri::v1::ImageStatusResponse::default().encode_to_vec());
            forwarded_log(&path, started, "hidden");
            return super::ok_response(hidden);
        }
    }
    forwarded_log(&path, started, "as containerd answered");
    let body = match trailers {
        None => box_body(Full::new(bytes)),
        Some(trailers) => {
            box_body(Full::new(bytes).with_trailers(async move { Some(Ok(trailers)) }))
        }
    };
    Response::from_parts(parts, body)
}

pub(super) async fn create_container(
    shared: &Shared,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    const CALL: &str = "CreateContainer";
    let started = crate::clock::monotonic_now();
    let (parts, body) = request.into_parts();
    let (bytes, create): (_, cri::v1::CreateContainerRequest) =
        match read_unary(body, CALL, "runtime.v1.CreateContainerRequest").await {
            Ok(read) => read,
            Err(error) => return refuse_call(CALL, "", started, error),
        };
    let spec = create
        .config
        .as_ref()
        .and_then(|config| config.image.as_ref());
    let image = spec.map(|spec| spec.image.clone()).unwrap_or_default();
    // The kubelet sends the image ID, and (1.29+) the name the pod gave.
    let requested = spec
        .map(|spec| spec.user_specified_image.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| image.clone());
    let namespace = create
        .sandbox_config
        .as_ref()
        .and_then(|config| config.metadata.as_ref())
        .map(|metadata| metadata.namespace.as_str())
        .filter(|namespace| !namespace.is_empty());
    if let Err(error) = check(
        shared,
        StandingCall::CreateContainer,
        &image,
        &requested,
        namespace,
    )
    .await
    {
        return refuse_call(CALL, &requested, started, error);
    }
    let path = parts.uri.path().to_owned();
    let forwarded = Request::from_parts(parts, box_body(Full::new(bytes)));
    match shared.upstream.forward(forwarded).await {
        Ok(response) => {
            forwarded_log(&path, started, "image has standing");
            response.map(box_body)
        }
        Err(error) => refuse_call(CALL, &requested, started, error.into()),
    }
}

/// Whether `image` (as containerd knows it), used as `requested` by a pod in
/// `namespace`, has standing. What containerd said about the image before is used
/// first; if that does not give it standing, containerd is asked again.
pub(super) async fn check(
    shared: &Shared,
    call: StandingCall,
    image: &str,
    requested: &str,
    namespace: Option<&str>,
) -> Result<(), CallError> {
    let records = Records(&shared.images);
    let remembered = shared
        .facts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(image)
        .cloned();
    let started = crate::clock::monotonic_now();
    if let Some(facts) = remembered {
        let standing = shared
            .gate
            .standing(call, requested, &facts, namespace, &records)
            .await;
        if standing.is_ok() {
            let check_us = started.elapsed().as_micros() as u64;
            tracing::debug!(
                call = call.as_str(),
                image,
                check_us,
                "standing from what containerd said before"
            );
            return Ok(());
        }
    }
    tracing::debug!(
        call = call.as_str(),
        image,
        "asking containerd about the image"
    );
    let facts = ask_containerd(shared, image).await?;
    remember(shared, image, &facts);
    shared
        .gate
        .standing(call, requested, &facts, namespace, &records)
        .await
        .map(|_| ())
        .map_err(CallError::from)
}

/// containerd's CRI `ImageStatus` for `image`; an image it does not have has no
/// names (and so no standing where a statement enforces).
async fn ask_containerd(shared: &Shared, image: &str) -> Result<ImageFacts, CallError> {
    let request = cri::v1::ImageStatusRequest {
        image: Some(cri::v1::ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        verbose: false,
    };
    match shared.cri.image.clone().image_status(request).await {
        Ok(answer) => Ok(answer
            .into_inner()
            .image
            .map(|i| facts_of(&i))
            .unwrap_or_default()),
        Err(source) => Err(CallError::ImageLookup {
            socket: shared.upstream.socket().to_owned(),
            source,
        }),
    }
}

fn facts_of(image: &cri::v1::Image) -> ImageFacts {
    ImageFacts {
        id: image.id.clone(),
        repo_tags: image.repo_tags.clone(),
        repo_digests: image.repo_digests.clone(),
    }
}

/// Keeps what containerd said about an image, under the name it was asked by and
/// under its ID.
fn remember(shared: &Shared, asked: &str, facts: &ImageFacts) {
    let mut known = shared.facts.lock().unwrap_or_else(|e| e.into_inner());
    if !facts.id.is_empty() {
        known.put(facts.id.clone(), facts.clone());
    }
    if crate::verdict::is_image_id(asked) {
        known.put(asked.to_owned(), facts.clone());
    }
}

/// The debug line of a forwarded call, as for calls that pass through.
fn forwarded_log(path: &str, started: std::time::Instant, answer: &'static str) {
    tracing::debug!(
        path,
        answer,
        elapsed_us = started.elapsed().as_micros() as u64,
        "forwarded"
    );
}

/// The request's one message (bounded) and what it decodes to; a malformed one is
/// [`CallError::MalformedCall`] for `call`.
pub(super) async fn read_unary<M: prost::Message + Default>(
    body: Incoming,
    call: &'static str,
    message: &'static str,
) -> Result<(bytes::Bytes, M), CallError> {
    let bytes = read_request(body).await?;
    let decoded = cri::decode_unary(&bytes, message)
        .map_err(|source| CallError::MalformedCall { call, source })?;
    Ok((bytes, decoded))
}

async fn read_request(body: Incoming) -> Result<bytes::Bytes, CallError> {
    Limited::new(body, MAX_PULL_REQUEST_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(CallError::UnreadableRequest)
}
