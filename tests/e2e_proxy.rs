//! End to end through pullgate's socket against a real containerd and a real
//! registry, both started by `integration/harness up` (see integration/run-tests).
//! Each step is checked against containerd's own answer where one exists.
//!
//! The tests share one containerd, and one of them stops and restarts it, so they
//! run one at a time (`SERIAL`).

use std::collections::HashSet;
use std::time::Duration;

use pullgate::cri::{v1, v1alpha2};
use pullgate_testkit::pod::{
    container_state, image_status, pull, remove_container, remove_image, sleep_container,
    start_container, stop_container, Pod,
};
use pullgate_testkit::{CriClient, Harness, Pullgate};
use tokio_stream::StreamExt;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// The harness, this test's turn at its containerd (`SERIAL`), and a pullgate in
/// front of that containerd with `extra_server` in its `[server]` section; `None`
/// (skip) without the harness.
async fn proxy(
    test: &str,
    extra_server: &str,
) -> Option<(Harness, tokio::sync::MutexGuard<'static, ()>, Pullgate)> {
    let harness = Harness::from_env(test)?;
    let serial = serial().await;
    let pullgate = Pullgate::start(&harness.containerd_socket, extra_server);
    Some((harness, serial, pullgate))
}

/// Version through `client`.
async fn version(client: &CriClient) -> Result<v1::VersionResponse, tonic::Status> {
    let response = client
        .runtime
        .clone()
        .version(v1::VersionRequest::default())
        .await?;
    Ok(response.into_inner())
}

/// ListImages through `client`.
async fn list_images(client: &CriClient, what: &str) -> Vec<v1::Image> {
    client
        .image
        .clone()
        .list_images(v1::ListImagesRequest::default())
        .await
        .expect(what)
        .into_inner()
        .images
}

/// An ExecSync request running `cmd` in `container_id`.
fn exec_request(container_id: &str, cmd: &[&str], timeout: i64) -> v1::ExecSyncRequest {
    v1::ExecSyncRequest {
        container_id: container_id.to_owned(),
        cmd: cmd.iter().map(|arg| arg.to_string()).collect(),
        timeout,
    }
}

/// `proxy(test, extra_server)`, or return from the test (skip) without the harness.
macro_rules! proxy_or_skip {
    ($test:expr, $extra_server:expr) => {
        match proxy($test, $extra_server).await {
            Some(proxy) => proxy,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn version_status_and_image_calls_match_containerd() {
    let (harness, _serial, pullgate) =
        proxy_or_skip!("version_status_and_image_calls_match_containerd", "");
    let proxied = pullgate.client();
    let direct = harness.direct_client();

    // Version and Status: the same answer as containerd gives directly.
    let proxied_version = version(&proxied).await.expect("Version");
    assert_eq!(proxied_version.runtime_name, "containerd");
    assert_eq!(proxied_version.runtime_api_version, "v1");
    let direct_version = version(&direct).await.expect("direct Version");
    assert_eq!(proxied_version, direct_version);
    let status = proxied
        .runtime
        .clone()
        .status(v1::StatusRequest { verbose: false })
        .await
        .expect("Status")
        .into_inner();
    let conditions = &status.status.expect("status").conditions;
    let runtime_ready = conditions
        .iter()
        .find(|c| c.r#type == "RuntimeReady")
        .expect("RuntimeReady condition");
    assert!(runtime_ready.status, "{conditions:?}");

    // Start from a store without the image.
    if image_status(&direct, &harness.busybox).await.is_some() {
        remove_image(&direct, &harness.busybox).await;
    }
    assert!(image_status(&proxied, &harness.busybox).await.is_none());

    // PullImage by tag.
    let image_ref = pull(&proxied, &harness.busybox).await.expect("pull by tag");
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");
    let by_tag = image_status(&proxied, &harness.busybox)
        .await
        .expect("present after pull");
    assert_eq!(by_tag.id, image_ref);
    assert!(by_tag.repo_tags.contains(&harness.busybox), "{by_tag:?}");
    let repo = harness.busybox.rsplit_once(':').expect("tag").0;
    let pinned = format!("{repo}@{}", harness.busybox_digest);
    assert!(by_tag.repo_digests.contains(&pinned), "{by_tag:?}");
    assert_eq!(
        image_status(&direct, &harness.busybox).await,
        Some(by_tag.clone())
    );

    // ListImages through pullgate equals containerd's list and has our image.
    let listed = list_images(&proxied, "ListImages").await;
    assert!(listed.iter().any(|i| i.id == image_ref), "{listed:?}");
    let direct_listed = list_images(&direct, "direct ListImages").await;
    let ids = |images: &[v1::Image]| images.iter().map(|i| i.id.clone()).collect::<HashSet<_>>();
    assert_eq!(ids(&listed), ids(&direct_listed));

    // RemoveImage, then PullImage by digest.
    remove_image(&proxied, &harness.busybox).await;
    assert!(image_status(&direct, &harness.busybox).await.is_none());
    let by_digest_ref = pull(&proxied, &pinned).await.expect("pull by digest");
    assert_eq!(by_digest_ref, image_ref, "same image, same id");
    let status = image_status(&proxied, &pinned).await.expect("present");
    assert!(status.repo_digests.contains(&pinned), "{status:?}");

    // One log line per intercepted call, naming the image and the outcome.
    let log = pullgate.log_text();
    let pulls: Vec<&str> = log.lines().filter(|l| l.contains(" PullImage ")).collect();
    assert_eq!(pulls.len(), 2, "{log}");
    assert!(
        pulls[0].contains(&format!("image=\"{}\"", harness.busybox)),
        "{log}"
    );
    assert!(pulls[0].contains("grpc_status=\"Ok\""), "{log}");
    assert!(pulls[1].contains(&format!("image=\"{pinned}\"")), "{log}");
    // Pass-through calls are logged at debug level only.
    assert!(log.contains("DEBUG"), "{log}");
    assert!(
        log.contains("path=\"/runtime.v1.ImageService/ImageStatus\""),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_errors_and_unknown_methods_come_back_as_containerd_says() {
    let (harness, _serial, pullgate) = proxy_or_skip!(
        "pull_errors_and_unknown_methods_come_back_as_containerd_says",
        ""
    );
    let proxied = pullgate.client();
    let direct = harness.direct_client();

    // A missing image: containerd's NotFound, message unchanged.
    let missing = format!("{}/library/does-not-exist:1.0", harness.registry);
    let via_pullgate = pull(&proxied, &missing).await.expect_err("missing image");
    let via_containerd = pull(&direct, &missing).await.expect_err("missing image");
    assert_eq!(
        via_pullgate.code(),
        tonic::Code::NotFound,
        "{via_pullgate:?}"
    );
    assert_eq!(via_pullgate.code(), via_containerd.code());
    assert_eq!(via_pullgate.message(), via_containerd.message());
    assert!(
        via_pullgate.message().contains("not found"),
        "{via_pullgate:?}"
    );

    // A CRI method containerd does not know: containerd's own Unimplemented.
    let unknown = proxied
        .call_empty("/runtime.v1.RuntimeService/FrobnicateFromTheFuture")
        .await
        .expect_err("unknown method");
    assert_eq!(unknown.code(), tonic::Code::Unimplemented, "{unknown:?}");
    assert!(!unknown.message().contains("pullgate"), "{unknown:?}");
    assert!(
        unknown.message().contains("FrobnicateFromTheFuture"),
        "{unknown:?}"
    );

    // containerd's own API: served by containerd directly, refused by pullgate.
    direct
        .call_empty("/containerd.services.version.v1.Version/Version")
        .await
        .expect("containerd serves its version API directly");
    let refused = proxied
        .call_empty("/containerd.services.version.v1.Version/Version")
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    assert!(refused.message().starts_with("pullgate: "), "{refused:?}");

    // Request metadata reaches containerd and the call still succeeds.
    let mut request = tonic::Request::new(v1::VersionRequest::default());
    request
        .metadata_mut()
        .insert("x-pullgate-test", "metadata".parse().expect("ascii"));
    let response = proxied
        .runtime
        .clone()
        .version(request)
        .await
        .expect("Version");
    assert_eq!(
        response
            .metadata()
            .get("content-type")
            .map(|v| v.as_bytes()),
        Some(&b"application/grpc"[..])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn v1alpha2_version_and_pull_work() {
    let (harness, _serial, pullgate) = proxy_or_skip!("v1alpha2_version_and_pull_work", "");
    let client = pullgate.client();
    let version = client
        .runtime_v1alpha2
        .clone()
        .version(v1alpha2::VersionRequest::default())
        .await
        .expect("v1alpha2 Version")
        .into_inner();
    assert_eq!(version.runtime_name, "containerd");
    assert_eq!(version.runtime_api_version, "v1alpha2");

    let image_ref = client
        .image_v1alpha2
        .clone()
        .pull_image(v1alpha2::PullImageRequest {
            image: Some(v1alpha2::ImageSpec {
                image: harness.busybox.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("v1alpha2 PullImage")
        .into_inner()
        .image_ref;
    assert!(image_ref.starts_with("sha256:"));
    let status = image_status(&client, &harness.busybox)
        .await
        .expect("pulled");
    assert_eq!(status.id, image_ref);
    let log = pullgate.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains(" PullImage ") && l.contains("api=\"runtime.v1alpha2\"")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn host_network_pod_lifecycle_with_exec() {
    let (harness, _serial, pullgate) = proxy_or_skip!("host_network_pod_lifecycle_with_exec", "");
    let client = pullgate.client();
    let mut runtime = client.runtime.clone();

    let image_ref = pull(&client, &harness.busybox).await.expect("pull");
    let pod = Pod::run(&client, &format!("e2e-{}", std::process::id())).await;
    // As the kubelet writes it: the command split from its args, the pod's host
    // network named again in the container's security context.
    let container = v1::ContainerConfig {
        command: vec!["/bin/sleep".to_owned()],
        args: vec!["3600".to_owned()],
        linux: Some(v1::LinuxContainerConfig {
            security_context: Some(v1::LinuxContainerSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    network: v1::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..sleep_container(&image_ref)
    };
    let container_id = pod.create_container(&client, container).await;
    start_container(&client, &container_id).await;
    let state = container_state(&client, &container_id).await;
    assert_eq!(state, v1::ContainerState::ContainerRunning as i32);

    let exec = runtime
        .exec_sync(exec_request(
            &container_id,
            &["/bin/echo", "hello from pullgate"],
            10,
        ))
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(exec.exit_code, 0);
    assert_eq!(exec.stdout, b"hello from pullgate\n");

    // A call on which containerd sends nothing for longer than 2 minutes (a long
    // exec, a slow pull) completes through pullgate. With pings to containerd every
    // 30 s, containerd closed the connection with GOAWAY too_many_pings at 120 s and
    // the call failed. On 1.7 the quiet GetContainerEvents test below shows the same
    // for a stream; here it is 1.6's turn, so that each version pays 150 s once.
    if containerd_series() < (1, 7) {
        let exec = runtime
            .exec_sync(exec_request(
                &container_id,
                &["/bin/sh", "-c", "sleep 150; echo done"],
                200,
            ))
            .await
            .unwrap_or_else(|status| {
                panic!(
                    "ExecSync quiet for 150 s: {status:?}\npullgate log:\n{}",
                    pullgate.log_text()
                )
            })
            .into_inner();
        assert_eq!(
            (exec.exit_code, exec.stdout.as_slice()),
            (0, &b"done\n"[..])
        );
    }

    stop_container(&client, &container_id, 2).await;
    remove_container(&client, &container_id).await;
    pod.stop(&client).await;
    pod.remove(&client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_restart_gives_unavailable_then_recovers() {
    let (harness, _serial, pullgate) =
        proxy_or_skip!("containerd_restart_gives_unavailable_then_recovers", "");
    let client = pullgate.client();
    version(&client).await.expect("containerd up");

    harness.run("stop-containerd");
    let status = version(&client).await.expect_err("containerd down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().starts_with("pullgate: "), "{status:?}");
    assert!(
        status
            .message()
            .contains(&harness.containerd_socket.display().to_string()),
        "{status:?}"
    );
    let status = pull(&client, &harness.busybox).await.expect_err("down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    harness.run("start-containerd");
    // The same client and the same pullgate process recover without a restart.
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(30);
    let recovered = loop {
        match version(&client).await {
            Ok(v) => break v,
            Err(status) if pullgate_testkit::time::instant() < deadline => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("no recovery within 30s: {status:?}"),
        }
    };
    assert_eq!(recovered.runtime_name, "containerd");
    pull(&client, &harness.busybox)
        .await
        .expect("pull after recovery");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_call_finish_and_removes_socket() {
    let (harness, _serial, mut pullgate) = proxy_or_skip!(
        "sigterm_lets_in_flight_call_finish_and_removes_socket",
        "shutdown_grace = \"20s\""
    );
    let client = pullgate.client();
    let image_ref = pull(&client, &harness.busybox).await.expect("pull");
    let pod = Pod::run(&client, &format!("e2e-term-{}", std::process::id())).await;
    let container_id = pod
        .create_container(&client, sleep_container(&image_ref))
        .await;
    start_container(&client, &container_id).await;

    // A 2-second exec is in flight when SIGTERM arrives; it must still complete.
    let mut exec_client = client.runtime.clone();
    let request = exec_request(&container_id, &["/bin/sh", "-c", "sleep 2; echo done"], 20);
    let exec = tokio::spawn(async move { exec_client.exec_sync(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    pullgate.signal("TERM");
    let result = exec
        .await
        .expect("join")
        .expect("in-flight ExecSync completes");
    assert_eq!(result.into_inner().stdout, b"done\n");
    assert_eq!(pullgate.wait_exit(Duration::from_secs(25)), Some(0));
    assert!(!pullgate.socket.exists(), "socket removed");

    // Clean up directly against containerd (stopping may find it stopped already).
    let direct = harness.direct_client();
    let _ = direct
        .runtime
        .clone()
        .stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await;
    pod.remove(&direct).await;
}

// ---------------------------------------------------------------- GetContainerEvents
//
// containerd 1.6 does not implement GetContainerEvents (evented PLEG arrived in
// 1.7): through pullgate the answer must be containerd's own, unchanged. containerd
// 1.7 streams the events of pod and container lifecycles. Its stream is not a
// broadcast (containerd 1.7.24 pkg/cri/server/container_events.go, TODO for
// containerd#7318): every subscriber's handler takes events from one shared
// buffered channel, so two streams open at once split the events between them,
// events made while nobody listens wait (up to 1000) for the next subscriber, and a
// handler whose client went away still takes one more event before it notices.
// Hence the comparison below runs the same lifecycle twice, once seen through
// pullgate and once directly, each stream the only subscriber, with a throwaway
// pod before each to use up the handlers of streams already closed.

/// The `containerd --version` series the harness runs, e.g. (1, 7) for 1.7.24~ds1.
fn containerd_series() -> (u32, u32) {
    let version = std::env::var("PULLGATE_IT_CONTAINERD_VERSION")
        .expect("PULLGATE_IT_CONTAINERD_VERSION missing from the harness environment");
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let mut number = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (number(), number()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => panic!("PULLGATE_IT_CONTAINERD_VERSION={version:?} is not a version"),
    }
}

/// What a container event is about, within one pod lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subject {
    Sandbox,
    Container,
    /// Another pod's sandbox or container (only ever inside a status list).
    Other,
}

/// A container event with the ids of one lifecycle replaced by what they name, so
/// that two runs of the same lifecycle compare equal.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LifecycleEvent {
    kind: v1::ContainerEventType,
    subject: Subject,
    /// The pod's state in the event, if containerd could still read it.
    sandbox_state: Option<v1::PodSandboxState>,
    /// The pod's containers and their states in the event.
    containers: Vec<(Subject, v1::ContainerState)>,
}

/// The ids of the pod and container of one lifecycle, known as they are created.
#[derive(Default)]
struct LifecycleIds {
    sandbox: Option<String>,
    container: Option<String>,
}

impl LifecycleIds {
    fn subject(&self, id: &str) -> Option<Subject> {
        if self.sandbox.as_deref() == Some(id) {
            Some(Subject::Sandbox)
        } else if self.container.as_deref() == Some(id) {
            Some(Subject::Container)
        } else {
            None
        }
    }

    fn normalize(&self, event: &v1::ContainerEventResponse) -> Option<LifecycleEvent> {
        let subject = self.subject(&event.container_id)?;
        fn unknown<T>(value: i32, what: &str, event: &v1::ContainerEventResponse) -> T {
            panic!("unknown {what} {value} in {event:?}")
        }
        Some(LifecycleEvent {
            kind: v1::ContainerEventType::try_from(event.container_event_type)
                .unwrap_or_else(|_| unknown(event.container_event_type, "event type", event)),
            subject,
            sandbox_state: event.pod_sandbox_status.as_ref().map(|status| {
                assert_eq!(
                    Some(status.id.as_str()),
                    self.sandbox.as_deref(),
                    "the event's pod status is about our pod: {event:?}"
                );
                v1::PodSandboxState::try_from(status.state)
                    .unwrap_or_else(|_| unknown(status.state, "pod state", event))
            }),
            containers: event
                .containers_statuses
                .iter()
                .map(|c| {
                    (
                        self.subject(&c.id).unwrap_or(Subject::Other),
                        v1::ContainerState::try_from(c.state)
                            .unwrap_or_else(|_| unknown(c.state, "container state", event)),
                    )
                })
                .collect(),
        })
    }
}

/// How long one lifecycle step may take to show up on the event stream.
const EVENT_WAIT: Duration = Duration::from_secs(15);

type EventStream = tonic::Streaming<v1::ContainerEventResponse>;

/// A GetContainerEvents call. containerd (grpc-go) sends the response headers
/// with the first event, and tonic returns the stream only then, so the call runs
/// in a task from the start and its stream is taken when the first step needs it.
struct Subscription {
    call: Option<tokio::task::JoinHandle<Result<tonic::Response<EventStream>, tonic::Status>>>,
    stream: Option<EventStream>,
}

impl Subscription {
    fn open(client: &CriClient) -> Subscription {
        let mut runtime = client.runtime.clone();
        Subscription {
            call: Some(tokio::spawn(async move {
                runtime.get_container_events(v1::GetEventsRequest {}).await
            })),
            stream: None,
        }
    }

    /// Reads until `wanted` events about this lifecycle's ids have arrived (others,
    /// such as events containerd buffered before the subscription, are skipped), at
    /// most `EVENT_WAIT`. Panics naming `step` if they do not all arrive in time.
    async fn expect(
        &mut self,
        ids: &LifecycleIds,
        wanted: usize,
        step: &str,
        seen: &mut Vec<LifecycleEvent>,
    ) {
        let deadline = tokio::time::Instant::now() + EVENT_WAIT;
        let stream = match (&mut self.stream, self.call.take()) {
            (Some(stream), _) => stream,
            (None, Some(call)) => {
                let response = tokio::time::timeout_at(deadline, call)
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "GetContainerEvents answered nothing within {EVENT_WAIT:?} of {step}"
                        )
                    })
                    .expect("join")
                    .expect("GetContainerEvents");
                self.stream.insert(response.into_inner())
            }
            (None, None) => unreachable!("a subscription has its call or its stream"),
        };
        let mut got = 0;
        while got < wanted {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(event))) => {
                    if let Some(event) = ids.normalize(&event) {
                        seen.push(event);
                        got += 1;
                    }
                }
                Ok(Some(Err(status))) => panic!("event stream failed after {step}: {status:?}"),
                Ok(None) => panic!("event stream ended after {step}; seen so far: {seen:?}"),
                Err(_) => panic!(
                    "{got} of {wanted} event(s) after {step} within {EVENT_WAIT:?}; seen so far: {seen:?}"
                ),
            }
        }
    }

    /// Nothing more about this lifecycle's ids (no duplicates) for a moment.
    async fn expect_quiet(&mut self, ids: &LifecycleIds, seen: &[LifecycleEvent]) {
        let stream = self.stream.as_mut().expect("events were read");
        let quiet = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(event)) = tokio::time::timeout_at(quiet, stream.next()).await {
            let event = event.expect("event stream");
            assert!(
                ids.normalize(&event).is_none(),
                "event after the pod was removed: {event:?}; seen: {seen:?}"
            );
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.abort();
        }
    }
}

/// A host-network pod with one `sleep` container, created, started, stopped and
/// removed through `client`. With `events`, after each step waits for the events
/// that step makes and returns everything seen about this pod, in order.
async fn pod_lifecycle(
    client: &CriClient,
    image_ref: &str,
    name: &str,
    mut events: Option<&mut Subscription>,
) -> Vec<LifecycleEvent> {
    let mut ids = LifecycleIds::default();
    let mut seen = Vec::new();
    macro_rules! expect_events {
        ($n:expr, $step:expr) => {
            if let Some(events) = events.as_deref_mut() {
                events.expect(&ids, $n, $step, &mut seen).await;
            }
        };
    }
    let pod = Pod::run(client, name).await;
    ids.sandbox = Some(pod.id.clone());
    expect_events!(2, "RunPodSandbox");

    let container_id = pod
        .create_container(client, sleep_container(image_ref))
        .await;
    ids.container = Some(container_id.clone());
    expect_events!(1, "CreateContainer");
    start_container(client, &container_id).await;
    expect_events!(1, "StartContainer");
    // Timeout 0: SIGKILL at once (sleep as PID 1 ignores SIGTERM).
    stop_container(client, &container_id, 0).await;
    // The stopped event comes from containerd's task-exit handler, which may send
    // it just after StopContainer returns: wait for it before the next step.
    expect_events!(1, "StopContainer");
    remove_container(client, &container_id).await;
    expect_events!(1, "RemoveContainer");
    pod.stop(client).await;
    expect_events!(1, "StopPodSandbox");
    pod.remove(client).await;
    expect_events!(1, "RemovePodSandbox");

    if let Some(events) = events {
        events.expect_quiet(&ids, &seen).await;
    }
    seen
}

/// A pod lifecycle without a subscriber of ours, run directly: its 8 events use up
/// the handlers of closed streams still waiting in containerd 1.7 (each takes one
/// event), the rest wait in containerd's buffer and are skipped as another pod's.
async fn use_up_closed_subscriptions(direct: &CriClient, image_ref: &str, name: &str) {
    pod_lifecycle(direct, image_ref, name, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn container_events_stream_through_pullgate_as_containerd_sends_them() {
    let (harness, _serial, pullgate) = proxy_or_skip!(
        "container_events_stream_through_pullgate_as_containerd_sends_them",
        ""
    );
    let proxied = pullgate.client();
    let direct = harness.direct_client();

    match containerd_series() {
        (1, 6) => {
            // Not implemented: containerd's own error, unchanged.
            let refused = |client: &CriClient| {
                let mut runtime = client.runtime.clone();
                async move {
                    runtime
                        .get_container_events(v1::GetEventsRequest {})
                        .await
                        .map(drop)
                        .expect_err("containerd 1.6 has no container events")
                }
            };
            let through = refused(&proxied).await;
            let own = refused(&direct).await;
            assert_eq!(own.code(), tonic::Code::Unimplemented, "{own:?}");
            assert_eq!(through.code(), own.code(), "{through:?} vs {own:?}");
            assert_eq!(through.message(), own.message());
            assert!(!through.message().contains("pullgate"), "{through:?}");
            return;
        }
        (1, 7) => {}
        other => panic!("no expectation for containerd {other:?}"),
    }

    let image_ref = pull(&direct, &harness.busybox).await.expect("pull");
    let name = |what: &str| format!("e2e-events-{what}-{}", std::process::id());
    use_up_closed_subscriptions(&direct, &image_ref, &name("flush1")).await;

    // Through pullgate: the only subscriber; the lifecycle driven through pullgate.
    let mut through = Subscription::open(&proxied);
    let through_seen =
        pod_lifecycle(&proxied, &image_ref, &name("proxied"), Some(&mut through)).await;
    drop(through);

    // Directly, the same lifecycle, after the closed stream's handler is used up.
    use_up_closed_subscriptions(&direct, &image_ref, &name("flush2")).await;
    let mut own = Subscription::open(&direct);
    let direct_seen = pod_lifecycle(&direct, &image_ref, &name("direct"), Some(&mut own)).await;
    drop(own);

    use v1::ContainerEventType::*;
    let kinds: Vec<(v1::ContainerEventType, Subject)> =
        direct_seen.iter().map(|e| (e.kind, e.subject)).collect();
    assert_eq!(
        kinds,
        [
            (ContainerCreatedEvent, Subject::Sandbox),
            (ContainerStartedEvent, Subject::Sandbox),
            (ContainerCreatedEvent, Subject::Container),
            (ContainerStartedEvent, Subject::Container),
            (ContainerStoppedEvent, Subject::Container),
            (ContainerDeletedEvent, Subject::Container),
            (ContainerStoppedEvent, Subject::Sandbox),
            (ContainerDeletedEvent, Subject::Sandbox),
        ],
        "containerd's own lifecycle events: {direct_seen:#?}"
    );
    assert_eq!(
        through_seen, direct_seen,
        "events through pullgate differ from containerd's own"
    );
}

/// How long the stream below stays without events: longer than containerd's gRPC
/// server (grpc-go, keepalive enforcement MinTime 5 min, 2 strikes allowed) takes to
/// close a connection on which a client pings every 30 s while it sends nothing.
const IDLE_STREAM: Duration = Duration::from_secs(150);

/// The kubelet's evented PLEG keeps one GetContainerEvents stream open for the
/// node's lifetime, and a quiet node sends nothing on it for minutes. Through
/// pullgate such a stream must still deliver events after a long silence, as a
/// direct one does.
#[tokio::test(flavor = "multi_thread")]
async fn container_events_stream_through_pullgate_survives_a_quiet_node() {
    let Some(harness) =
        Harness::from_env("container_events_stream_through_pullgate_survives_a_quiet_node")
    else {
        return;
    };
    if containerd_series() < (1, 7) {
        return; // No container events before 1.7 (see the test above).
    }
    let _serial = serial().await;
    let pullgate = Pullgate::start(&harness.containerd_socket, "");
    let proxied = pullgate.client();
    let direct = harness.direct_client();
    let image_ref = pull(&direct, &harness.busybox).await.expect("pull");
    let name = |what: &str| format!("e2e-quiet-{what}-{}", std::process::id());
    use_up_closed_subscriptions(&direct, &image_ref, &name("flush1")).await;

    let mut through = Subscription::open(&proxied);
    tokio::time::sleep(IDLE_STREAM).await;
    let seen = pod_lifecycle(&direct, &image_ref, &name("after"), Some(&mut through)).await;
    drop(through);
    use_up_closed_subscriptions(&direct, &image_ref, &name("flush2")).await;
    assert_eq!(
        seen.len(),
        8,
        "{seen:#?}\npullgate log:\n{}",
        pullgate.log_text()
    );
}
