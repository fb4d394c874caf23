//! Pass-through details that containerd 1.6 cannot show, against a small in-process
//! HTTP/2 gRPC upstream standing in for containerd on a unix socket: server
//! streaming delivered as it happens (containerd 1.6 does not implement
//! GetContainerEvents), metadata and trailers both ways, `grpc-timeout` forwarded,
//! cancellation propagated, error statuses relayed verbatim, and the intercepted
//! PullImage forwarded unchanged.

use pullgate_testkit as support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use pullgate::cri::{v1, ProxyBody};
use support::Pullgate;
use tokio::net::UnixListener;
use tokio::sync::Notify;
use tokio_stream::StreamExt;

/// What the fake upstream observed.
#[derive(Default)]
struct Observed {
    release_events: Notify,
    slow_dropped: AtomicBool,
    /// `PullImage` calls that reached the fake (pullgate itself asks `Status`
    /// at start, to learn the sandbox image).
    calls: AtomicUsize,
}

fn frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Bytes::from(out)
}

fn ok_trailers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    for (k, v) in extra {
        trailers.insert(*k, HeaderValue::from_static(v));
    }
    trailers
}

fn unary(message: Bytes, trailers: HeaderMap, echo: &HeaderMap) -> Response<ProxyBody> {
    let mut builder = Response::builder().header("content-type", "application/grpc");
    for (from, to) in [
        ("x-test", "x-echo-test"),
        ("grpc-timeout", "x-echo-timeout"),
    ] {
        if let Some(value) = echo.get(from) {
            builder = builder.header(to, value.clone());
        }
    }
    let body = Full::new(message).with_trailers(async move { Some(Ok(trailers)) });
    builder
        .body(pullgate::cri::box_body(body))
        .expect("response")
}

async fn fake_containerd(
    request: Request<Incoming>,
    observed: Arc<Observed>,
) -> Response<ProxyBody> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/PullImage") {
        observed.calls.fetch_add(1, Ordering::SeqCst);
    }
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    match path.as_str() {
        "/runtime.v1.RuntimeService/Version" => unary(
            frame(&v1::VersionResponse {
                runtime_name: "fake-containerd".into(),
                ..Default::default()
            }),
            ok_trailers(&[("x-trailer-test", "trailer-value")]),
            &headers,
        ),
        "/runtime.v1.ImageService/PullImage" => {
            let request = pullgate::cri::decode_pull_image_request(&body)
                .expect("pullgate forwards a valid message");
            let auth = request.auth.map(|a| a.username).unwrap_or_default();
            let image = request.image.map(|i| i.image).unwrap_or_default();
            unary(
                frame(&v1::PullImageResponse {
                    image_ref: format!("echo:{image}|auth:{auth}|bytes:{}", body.len()),
                }),
                ok_trailers(&[]),
                &headers,
            )
        }
        "/runtime.v1.RuntimeService/GetContainerEvents" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tokio::spawn(async move {
                let event = |id: &str, kind: v1::ContainerEventType| {
                    Frame::data(frame(&v1::ContainerEventResponse {
                        container_id: id.into(),
                        container_event_type: kind as i32,
                        ..Default::default()
                    }))
                };
                let _ = tx
                    .send(Ok(event(
                        "c1",
                        v1::ContainerEventType::ContainerCreatedEvent,
                    )))
                    .await;
                // The rest only once the client has seen the first event: a proxy
                // that buffered the stream would never deliver it.
                observed.release_events.notified().await;
                let _ = tx
                    .send(Ok(event(
                        "c1",
                        v1::ContainerEventType::ContainerStartedEvent,
                    )))
                    .await;
                let _ = tx
                    .send(Ok(event(
                        "c1",
                        v1::ContainerEventType::ContainerStoppedEvent,
                    )))
                    .await;
                let _ = tx.send(Ok(Frame::trailers(ok_trailers(&[])))).await;
            });
            let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            Response::builder()
                .header("content-type", "application/grpc")
                .body(pullgate::cri::box_body(body))
                .expect("response")
        }
        "/runtime.v1.RuntimeService/Slow" => {
            struct DropFlag(Arc<Observed>);
            impl Drop for DropFlag {
                fn drop(&mut self) {
                    self.0.slow_dropped.store(true, Ordering::SeqCst);
                }
            }
            let _flag = DropFlag(Arc::clone(&observed));
            // Never answers: the call ends only by being dropped (cancelled).
            std::future::pending().await
        }
        _ => {
            // Trailers-only error with a percent-encoded, non-ASCII message.
            Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "7")
                .header("grpc-message", "upstream%20says%20no%20%C3%BC")
                .body(pullgate::cri::box_body(Full::new(Bytes::new())))
                .expect("response")
        }
    }
}

struct Fake {
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    observed: Arc<Observed>,
}

fn start_fake() -> Fake {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("fake-containerd.sock");
    let listener = UnixListener::bind(&socket).expect("bind fake");
    let observed = Arc::new(Observed::default());
    let shared = Arc::clone(&observed);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let observed = Arc::clone(&shared);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let observed = Arc::clone(&observed);
                    async move { Ok::<_, Infallible>(fake_containerd(request, observed).await) }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Fake {
        _dir: dir,
        socket,
        observed,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_streaming_is_delivered_as_it_happens() {
    let fake = start_fake();
    let pullgate = Pullgate::start(&fake.socket, "");
    let mut events = pullgate
        .client()
        .runtime
        .get_container_events(v1::GetEventsRequest {})
        .await
        .expect("stream opens")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("first event arrives while the stream is still open")
        .expect("an item")
        .expect("an event");
    assert_eq!(first.container_id, "c1");
    assert_eq!(
        first.container_event_type,
        v1::ContainerEventType::ContainerCreatedEvent as i32
    );
    fake.observed.release_events.notify_one();
    let mut rest = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("stream continues")
    {
        rest.push(item.expect("event").container_event_type);
    }
    assert_eq!(
        rest,
        vec![
            v1::ContainerEventType::ContainerStartedEvent as i32,
            v1::ContainerEventType::ContainerStoppedEvent as i32
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_trailers_and_deadline_pass_both_ways() {
    let fake = start_fake();
    let pullgate = Pullgate::start(&fake.socket, "");
    let mut request = tonic::Request::new(v1::VersionRequest::default());
    request
        .metadata_mut()
        .insert("x-test", "from-the-kubelet".parse().expect("ascii"));
    request.set_timeout(Duration::from_secs(7));
    let response = pullgate
        .client()
        .runtime
        .version(request)
        .await
        .expect("Version");
    let metadata = response.metadata().clone();
    assert_eq!(response.into_inner().runtime_name, "fake-containerd");
    assert_eq!(
        metadata
            .get("x-echo-test")
            .map(|v| v.to_str().expect("ascii")),
        Some("from-the-kubelet")
    );
    let timeout = metadata
        .get("x-echo-timeout")
        .expect("grpc-timeout reached the upstream")
        .to_str()
        .expect("ascii")
        .to_owned();
    let (digits, unit) = timeout.split_at(timeout.len() - 1);
    let value: u64 = digits.parse().expect("number");
    let nanos_per_unit = match unit {
        "H" => 3_600_000_000_000,
        "M" => 60_000_000_000,
        "S" => 1_000_000_000,
        "m" => 1_000_000,
        "u" => 1_000,
        "n" => 1,
        other => panic!("bad grpc-timeout unit {other}"),
    };
    let forwarded = Duration::from_nanos(value * nanos_per_unit);
    assert!(
        forwarded <= Duration::from_secs(7) && forwarded > Duration::from_secs(6),
        "{timeout}"
    );
    assert_eq!(
        metadata
            .get("x-trailer-test")
            .map(|v| v.to_str().expect("ascii")),
        Some("trailer-value"),
        "trailers are relayed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_are_relayed_verbatim() {
    let fake = start_fake();
    let pullgate = Pullgate::start(&fake.socket, "");
    let status = pullgate
        .client()
        .call_empty("/runtime.v1.RuntimeService/AnythingElse")
        .await
        .expect_err("upstream error");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "upstream says no ü");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_cancellation_reaches_the_upstream() {
    let fake = start_fake();
    let pullgate = Pullgate::start(&fake.socket, "");
    let client = pullgate.client();
    let status = tokio::time::timeout(
        Duration::from_millis(300),
        client.call_empty("/runtime.v1.RuntimeService/Slow"),
    )
    .await;
    assert!(status.is_err(), "the call was abandoned by the client");
    let mut dropped = false;
    for _ in 0..100 {
        if fake.observed.slow_dropped.load(Ordering::SeqCst) {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "pullgate cancelled the upstream call");
}

#[tokio::test(flavor = "multi_thread")]
async fn intercepted_pull_is_forwarded_unchanged_with_metadata() {
    let fake = start_fake();
    let pullgate = Pullgate::start(&fake.socket, "");
    let pull = v1::PullImageRequest {
        image: Some(v1::ImageSpec {
            image: "registry.test/app:v1".into(),
            ..Default::default()
        }),
        auth: Some(v1::AuthConfig {
            username: "kubelet-user".into(),
            password: "secret".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let expected_len = frame(&pull).len();
    let mut request = tonic::Request::new(pull);
    request
        .metadata_mut()
        .insert("x-test", "pull-metadata".parse().expect("ascii"));
    let response = pullgate
        .client()
        .image
        .pull_image(request)
        .await
        .expect("PullImage");
    assert_eq!(
        response
            .metadata()
            .get("x-echo-test")
            .map(|v| v.to_str().expect("ascii")),
        Some("pull-metadata")
    );
    assert_eq!(
        response.into_inner().image_ref,
        format!("echo:registry.test/app:v1|auth:kubelet-user|bytes:{expected_len}")
    );
    assert_eq!(fake.observed.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_pull_request_is_rejected_and_not_forwarded() {
    let fake = start_fake();
    let pullgate = Pullgate::start(&fake.socket, "");
    // An empty message body is a valid (empty) PullImageRequest; a truncated
    // length-delimited field is not.
    let mut grpc = tonic::client::Grpc::new(pullgate.client().channel());
    grpc.ready().await.expect("ready");
    let status = grpc
        .unary(
            tonic::Request::new(Garbage),
            http::uri::PathAndQuery::from_static("/runtime.v1.ImageService/PullImage"),
            tonic_prost::ProstCodec::<Garbage, v1::PullImageResponse>::default(),
        )
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("pullgate: malformed PullImage"),
        "{status:?}"
    );
    assert_eq!(
        fake.observed.calls.load(Ordering::SeqCst),
        0,
        "not forwarded"
    );
}

/// A message whose encoding is a truncated length-delimited field 1.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Garbage;

impl Message for Garbage {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&[0x0a, 0x10, b'x']);
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        3
    }
    fn clear(&mut self) {}
}
