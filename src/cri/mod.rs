//! The Kubernetes CRI on the wire: the generated types (re-exported from `k8s-cri`),
//! which gRPC paths belong to the CRI, the one place errors become gRPC statuses,
//! and the length-prefixed message framing pullgate needs to read `PullImage`.

pub mod client;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;

pub use k8s_cri::{v1, v1alpha2};

/// The body type pullgate serves and forwards: whatever containerd streams back, a
/// re-encoded intercepted message, or an empty trailers-only status response.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// CRI API versions pullgate serves. containerd 1.6 still serves `v1alpha2`, and an
/// older kubelet may speak it; both share the `PullImage` wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriApi {
    V1,
    V1alpha2,
}

impl CriApi {
    pub fn as_str(self) -> &'static str {
        match self {
            CriApi::V1 => "runtime.v1",
            CriApi::V1alpha2 => "runtime.v1alpha2",
        }
    }
}

/// What pullgate does with a gRPC call, decided from its `:path` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `ImageService/PullImage`: goes through the gate.
    PullImage(CriApi),
    /// `ImageService/ImageStatus`: answered from the image's standing.
    ImageStatus(CriApi),
    /// `RuntimeService/CreateContainer`: forwarded only for an image with standing.
    CreateContainer(CriApi),
    /// `RuntimeService/RunPodSandbox`: forwarded only while containerd's sandbox
    /// image has standing.
    RunPodSandbox(CriApi),
    /// Any other method of a CRI service, known or not: forwarded unchanged.
    PassThrough { service: &'a str, method: &'a str },
    /// Not a CRI service (containerd's own API, health, reflection, garbage):
    /// refused, so nothing can pull around the gate through pullgate's socket.
    Refused { service: &'a str },
}

const CRI_SERVICES: [(&str, CriApi); 4] = [
    ("runtime.v1.RuntimeService", CriApi::V1),
    ("runtime.v1.ImageService", CriApi::V1),
    ("runtime.v1alpha2.RuntimeService", CriApi::V1alpha2),
    ("runtime.v1alpha2.ImageService", CriApi::V1alpha2),
];

/// Classifies a gRPC request path of the form `/<package.Service>/<Method>`.
pub fn route(path: &str) -> Route<'_> {
    let Some((service, method)) = path.strip_prefix('/').and_then(|rest| rest.split_once('/'))
    else {
        return Route::Refused { service: path };
    };
    if method.is_empty() || method.contains('/') {
        return Route::Refused { service };
    }
    match CRI_SERVICES.iter().find(|(name, _)| *name == service) {
        Some((_, api)) if service.ends_with(".ImageService") && method == "PullImage" => {
            Route::PullImage(*api)
        }
        Some((_, api)) if service.ends_with(".ImageService") && method == "ImageStatus" => {
            Route::ImageStatus(*api)
        }
        Some((_, api)) if service.ends_with(".RuntimeService") && method == "CreateContainer" => {
            Route::CreateContainer(*api)
        }
        Some((_, api)) if service.ends_with(".RuntimeService") && method == "RunPodSandbox" => {
            Route::RunPodSandbox(*api)
        }
        Some(_) => Route::PassThrough { service, method },
        None => Route::Refused { service },
    }
}

/// Turns a status into a gRPC trailers-only HTTP response. Every error pullgate
/// itself produces leaves through here.
pub fn status_response(status: tonic::Status) -> http::Response<ProxyBody> {
    status.into_http::<ProxyBody>()
}

/// The gRPC status of a response: from the headers of a trailers-only response,
/// else from the trailers; `None` when neither carries one.
pub fn grpc_status(
    headers: &http::HeaderMap,
    trailers: Option<&http::HeaderMap>,
) -> Option<tonic::Status> {
    tonic::Status::from_header_map(headers)
        .or_else(|| trailers.and_then(tonic::Status::from_header_map))
}

/// One uncompressed gRPC message frame (the inverse of [`decode_unary`]).
pub fn frame(message: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    bytes::Bytes::from(out)
}

/// Why a length-prefixed gRPC message could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("request body is not one length-prefixed gRPC message ({len} bytes)")]
    Malformed { len: usize },
    #[error("compressed gRPC messages are not accepted by pullgate")]
    Compressed,
    #[error("request message does not decode as {message}: {reason}")]
    Decode {
        message: &'static str,
        reason: String,
    },
}

/// Reads exactly one uncompressed gRPC message (5-byte prefix + body) from `body`.
pub fn decode_unary<M: prost::Message + Default>(
    body: &[u8],
    message: &'static str,
) -> Result<M, FrameError> {
    let malformed = FrameError::Malformed { len: body.len() };
    let mut buf = body;
    if buf.remaining() < 5 {
        return Err(malformed);
    }
    let compressed = buf.get_u8();
    let len = buf.get_u32() as usize;
    if compressed != 0 {
        return Err(FrameError::Compressed);
    }
    if buf.remaining() != len {
        return Err(malformed);
    }
    M::decode(buf).map_err(|e| FrameError::Decode {
        message,
        reason: e.to_string(),
    })
}

/// Decodes a `PullImageRequest` of either API version; their wire formats are equal.
pub fn decode_pull_image_request(body: &[u8]) -> Result<v1::PullImageRequest, FrameError> {
    decode_unary(body, "runtime.v1.PullImageRequest")
}

/// Boxes any body whose errors can be boxed into a [`ProxyBody`].
pub fn box_body<B>(body: B) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn cri_methods_pass_through_including_unknown_ones() {
        assert_eq!(
            route("/runtime.v1.RuntimeService/Version"),
            Route::PassThrough {
                service: "runtime.v1.RuntimeService",
                method: "Version"
            }
        );
        assert_eq!(
            route("/runtime.v1.RuntimeService/SomeFutureMethod"),
            Route::PassThrough {
                service: "runtime.v1.RuntimeService",
                method: "SomeFutureMethod"
            }
        );
        assert_eq!(
            route("/runtime.v1alpha2.ImageService/ListImages"),
            Route::PassThrough {
                service: "runtime.v1alpha2.ImageService",
                method: "ListImages"
            }
        );
    }

    #[test]
    fn pull_image_is_intercepted_in_both_versions() {
        assert_eq!(
            route("/runtime.v1.ImageService/PullImage"),
            Route::PullImage(CriApi::V1)
        );
        assert_eq!(
            route("/runtime.v1alpha2.ImageService/PullImage"),
            Route::PullImage(CriApi::V1alpha2)
        );
        // A method called PullImage on another service is not the CRI one.
        assert_eq!(
            route("/runtime.v1.RuntimeService/PullImage"),
            Route::PassThrough {
                service: "runtime.v1.RuntimeService",
                method: "PullImage"
            }
        );
    }

    #[test]
    fn run_pod_sandbox_is_intercepted_in_both_versions() {
        assert_eq!(
            route("/runtime.v1.RuntimeService/RunPodSandbox"),
            Route::RunPodSandbox(CriApi::V1)
        );
        assert_eq!(
            route("/runtime.v1alpha2.RuntimeService/RunPodSandbox"),
            Route::RunPodSandbox(CriApi::V1alpha2)
        );
        assert_eq!(
            route("/runtime.v1.ImageService/RunPodSandbox"),
            Route::PassThrough {
                service: "runtime.v1.ImageService",
                method: "RunPodSandbox"
            }
        );
    }

    #[test]
    fn everything_else_is_refused() {
        for (path, service) in [
            (
                "/containerd.services.version.v1.Version/Version",
                "containerd.services.version.v1.Version",
            ),
            (
                "/containerd.services.transfer.v1.Transfer/Transfer",
                "containerd.services.transfer.v1.Transfer",
            ),
            ("/grpc.health.v1.Health/Check", "grpc.health.v1.Health"),
            ("/runtime.v1.ImageService/", "runtime.v1.ImageService"),
            (
                "/runtime.v1.ImageService/PullImage/x",
                "runtime.v1.ImageService",
            ),
            (
                "/runtime.v1.ImageServiceX/PullImage",
                "runtime.v1.ImageServiceX",
            ),
            ("garbage", "garbage"),
            ("/", "/"),
        ] {
            assert_eq!(route(path), Route::Refused { service }, "{path}");
        }
    }

    fn frame(message: &[u8]) -> Vec<u8> {
        super::frame(message).to_vec()
    }

    #[test]
    fn pull_image_request_round_trips_through_framing() {
        let request = v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: "docker.io/library/busybox:latest".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let decoded = decode_pull_image_request(&frame(&request.encode_to_vec())).expect("decodes");
        assert_eq!(decoded, request);
    }

    #[test]
    fn bad_frames_are_reported() {
        assert_eq!(
            decode_pull_image_request(&[0, 0, 0]),
            Err(FrameError::Malformed { len: 3 })
        );
        let mut compressed = frame(b"");
        compressed[0] = 1;
        assert_eq!(
            decode_pull_image_request(&compressed),
            Err(FrameError::Compressed)
        );
        let mut long = frame(b"\x0a\x00");
        long.push(0);
        assert_eq!(
            decode_pull_image_request(&long),
            Err(FrameError::Malformed { len: 8 })
        );
        assert!(matches!(
            decode_pull_image_request(&frame(b"\x0a\x05ab")),
            Err(FrameError::Decode { .. })
        ));
    }
}
