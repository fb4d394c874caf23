//! `[metrics] listen = "unix:PATH"` follows the CRI socket's rules (issue 9 item 11):
//! a file that is not a socket is never deleted, a live socket is never taken over,
//! a stale one is replaced. Needs no containerd.

use pullgate_testkit as support;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use support::Pullgate;

/// Starts pullgate with its metrics on the unix socket `metrics` and waits until it
/// serves the CRI (the metrics listener is set up, or refused, just before).
fn start_with_metrics_at(metrics: &Path) -> (Pullgate, tempfile::TempDir) {
    let upstream_dir = tempfile::tempdir().expect("tempdir");
    let pullgate = support::cli::start_pass_through_with_metrics(
        &upstream_dir.path().join("containerd.sock"),
        tempfile::tempdir().expect("tempdir"),
        &format!("unix:{}", metrics.display()),
    );
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(20);
    while !pullgate.log_text().contains("serving the CRI") {
        assert!(
            pullgate_testkit::time::instant() < deadline,
            "pullgate did not start serving:\n{}",
            pullgate.log_text()
        );
        pullgate_testkit::time::pause(Duration::from_millis(20));
    }
    (pullgate, upstream_dir)
}

fn http_get_unix(path: &Path) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).expect("metrics socket");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn metrics_listen_naming_a_regular_file_never_deletes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let precious = dir.path().join("precious.db");
    std::fs::write(&precious, b"precious").expect("write");
    let (pullgate, _upstream) = start_with_metrics_at(&precious);
    assert_eq!(
        std::fs::read(&precious).expect("still there"),
        b"precious",
        "{}",
        pullgate.log_text()
    );
    let log = pullgate.log_text();
    assert!(log.contains("metrics listener not started"), "{log}");
    assert!(log.contains("is not a socket"), "{log}");
}

#[test]
fn metrics_listen_naming_a_live_socket_does_not_steal_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("someone-elses.sock");
    let owner = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let (pullgate, _upstream) = start_with_metrics_at(&path);
    let log = pullgate.log_text();
    assert!(log.contains("is in use by a running process"), "{log}");
    // A new connection still reaches the socket's owner.
    let _client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    owner.set_nonblocking(true).expect("nonblocking");
    assert!(owner.accept().is_ok(), "the socket was taken over:\n{log}");
}

#[test]
fn metrics_listen_naming_a_stale_socket_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
    assert!(std::fs::symlink_metadata(&path)
        .expect("stale exists")
        .file_type()
        .is_socket());
    let (_pullgate, _upstream) = start_with_metrics_at(&path);
    let response = http_get_unix(&path);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("pullgate_policy_generation 1"),
        "{response}"
    );
}
