//! The `pullgate` binary on its own: config validation, socket handling, refusal of
//! non-CRI services, containerd missing, logging and shutdown. Needs no containerd.

use pullgate_testkit as support;

use std::os::unix::fs::FileTypeExt;
use std::process::Command;
use std::time::Duration;

use support::Pullgate;

fn run_with_config(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, text).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run pullgate");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (
        output.status.code(),
        stderr.replace(&config.display().to_string(), "FILE"),
    )
}

#[test]
fn bad_config_exits_before_binding_and_names_file_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("never.sock");
    let (code, stderr) = run_with_config(&format!(
        "[server]\nsocket = {socket:?}\nsocket_mode = \"abc\"\n"
    ));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("config file FILE: field `server.socket_mode`: \"abc\" is not an octal"),
        "{stderr}"
    );
    assert!(!socket.exists(), "nothing may be bound on a bad config");
}

#[test]
fn syntax_errors_and_unknown_fields_are_reported() {
    let (code, stderr) = run_with_config("[upstream]\ncontainerd = \"/x\"\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("config file FILE:"), "{stderr}");
    assert!(stderr.contains("unknown field `containerd`"), "{stderr}");

    let (code, stderr) = run_with_config("[server\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("config file FILE:"), "{stderr}");
}

#[test]
fn missing_config_file_is_an_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config", "/nonexistent/pullgate/config.toml"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("config file /nonexistent/pullgate/config.toml: cannot read"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_absent_gives_unavailable_naming_the_socket_and_pullgate_stays_up() {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let containerd = upstream_dir.path().join("containerd.sock");
    let mut pullgate = Pullgate::start(&containerd, "");
    let client = pullgate.client();

    for _ in 0..3 {
        let status = client
            .runtime
            .clone()
            .version(pullgate::cri::v1::VersionRequest::default())
            .await
            .expect_err("no containerd");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains(&containerd.display().to_string()),
            "{status:?}"
        );
        assert!(status.message().starts_with("pullgate: "), "{status:?}");
    }
    // The intercepted path fails the same way, and never reports success.
    let status = client
        .image
        .clone()
        .pull_image(pullgate::cri::v1::PullImageRequest {
            image: Some(pullgate::cri::v1::ImageSpec {
                image: "docker.io/library/busybox:latest".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("no containerd");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        pullgate.child.try_wait().expect("wait").is_none(),
        "still running"
    );
    pullgate.signal("TERM");
    assert_eq!(pullgate.wait_exit(Duration::from_secs(15)), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn non_cri_services_are_refused_by_pullgate() {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let pullgate = Pullgate::start(&upstream_dir.path().join("containerd.sock"), "");
    let client = pullgate.client();
    for path in [
        "/containerd.services.version.v1.Version/Version",
        "/containerd.services.images.v1.Images/List",
        "/grpc.health.v1.Health/Check",
    ] {
        let status = client.call_empty(path).await.expect_err(path);
        assert_eq!(
            status.code(),
            tonic::Code::Unimplemented,
            "{path}: {status:?}"
        );
        assert!(
            status.message().starts_with("pullgate: service "),
            "{path}: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn live_socket_is_not_stolen_and_stale_one_is_replaced() {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let containerd = upstream_dir.path().join("containerd.sock");
    let first = Pullgate::start(&containerd, "");

    // A second instance on the same socket must refuse and leave the first alone.
    let config = first.dir.path().join("second.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nsocket = {:?}\n[upstream]\ncontainerd_socket = {containerd:?}\n[policy]\ndir = {:?}\n",
            first.socket,
            first.dir.path().join("notation")
        ),
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is in use by a running process"),
        "{stderr}"
    );
    let status = first
        .client()
        .call_empty("/containerd.services.version.v1.Version/Version")
        .await
        .expect_err("refused");
    assert_eq!(
        status.code(),
        tonic::Code::Unimplemented,
        "first still serves"
    );

    // A stale socket file (its owner was killed) is replaced.
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join("pullgate.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    assert!(std::fs::symlink_metadata(&stale)
        .expect("stale exists")
        .file_type()
        .is_socket());
    let config = dir.path().join("stale.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nsocket = {stale:?}\n[upstream]\ncontainerd_socket = {containerd:?}\n[policy]\ndir = {:?}\n",
            first.dir.path().join("notation")
        ),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(20);
    let mut connected = false;
    while pullgate_testkit::time::instant() < deadline {
        if std::os::unix::net::UnixStream::connect(&stale).is_ok() {
            connected = true;
            break;
        }
        pullgate_testkit::time::pause(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(connected, "pullgate did not take over the stale socket");
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_mode_applied_and_removed_on_sigterm() {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let mut pullgate = Pullgate::start(
        &upstream_dir.path().join("containerd.sock"),
        "socket_mode = \"0600\"\nsocket_group = \"0\"",
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(&pullgate.socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.gid(), 0);
    pullgate.signal("TERM");
    assert_eq!(pullgate.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(!pullgate.socket.exists(), "socket removed on shutdown");
    let log = pullgate.log_text();
    assert!(log.contains("stop requested"), "{log}");
    assert!(log.contains("all calls finished"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logging_writes_one_line_per_intercepted_call() {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let mut pullgate =
        Pullgate::start_with_log(&upstream_dir.path().join("containerd.sock"), "", "json");
    let _ = pullgate
        .client()
        .image
        .clone()
        .pull_image(pullgate::cri::v1::PullImageRequest {
            image: Some(pullgate::cri::v1::ImageSpec {
                image: "example.test/app:v1".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    pullgate.signal("INT");
    assert_eq!(pullgate.wait_exit(Duration::from_secs(15)), Some(0));
    let log = pullgate.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"message\":\"PullImage\""))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].starts_with('{'), "{log}");
    assert!(
        lines[0].contains("\"image\":\"example.test/app:v1\""),
        "{log}"
    );
    assert!(
        lines[0].contains("\"grpc_status\":\"Unavailable\""),
        "{log}"
    );
    assert!(lines[0].contains("\"api\":\"runtime.v1\""), "{log}");
    // The decision's audit line is JSON too (the test policy skips this scope).
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"target\":\"pullgate::audit\""))
        .collect();
    assert_eq!(audit.len(), 1, "{log}");
    assert!(audit[0].contains("\"outcome\":\"skipped\""), "{log}");
    assert!(audit[0].contains("\"policy\":\"proxy-tests\""), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listener_counts_decisions() {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let pullgate = support::cli::start_pass_through_with_metrics(
        &upstream_dir.path().join("containerd.sock"),
        tempfile::tempdir().expect("tempdir"),
        &format!("127.0.0.1:{port}"),
    );
    let client = pullgate.client();
    // An image no statement covers is denied without touching a registry.
    let status = client
        .image
        .clone()
        .pull_image(pullgate::cri::v1::PullImageRequest {
            image: Some(pullgate::cri::v1::ImageSpec {
                image: "registry.test/other:v1".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("unmatched");
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    assert!(
        status.message().starts_with(
            "SignatureValidationFailed: pullgate: registry.test/other:v1: no trust policy statement applies to registry.test/other"
        ),
        "{status:?}"
    );
    let body = http_get(port, "/metrics");
    for line in [
        "pullgate_decisions_total{outcome=\"denied\",reason=\"unmatched\"} 1",
        "pullgate_policy_generation 1",
        "pullgate_policy_reload_failures_total 0",
        "pullgate_cache_entries",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    assert!(http_get(port, "/other").starts_with("HTTP/1.1 404"));
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    // The listener comes up just after the CRI socket; allow it a moment.
    let mut stream = (0..100)
        .find_map(|_| {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map_err(|_| pullgate_testkit::time::pause(std::time::Duration::from_millis(20)))
                .ok()
        })
        .expect("metrics listener");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}
