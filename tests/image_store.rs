//! `ImageStore` against the real containerd of `integration/harness up`: a tag
//! recorded through containerd's images API (namespace `k8s.io`) after a pull by
//! digest must be what CRI `ImageStatus(tag)` and `ListImages` report, with the
//! digest pull's image id.
//!
//! The tests share one containerd and one of them restarts it, so they run one at a
//! time (`SERIAL`).

use pullgate_testkit as support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::DeleteImageRequest;
use pullgate::cri::v1;
use pullgate::intercept::{status, CallError};
use pullgate::oci::Descriptor;
use pullgate::upstream::{ImageRecord, ImageStore, ImageStoreError};
use sha2::{Digest as _, Sha256};
use support::pod::{image_status, pull_ok};
use support::{CriClient, Harness};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// How long the CRI plugin may take to mirror an image event into its cache.
const CRI_SYNC_LIMIT: Duration = Duration::from_secs(5);

async fn list_images(client: &CriClient) -> Vec<v1::Image> {
    client
        .image
        .clone()
        .list_images(v1::ListImagesRequest { filter: None })
        .await
        .expect("ListImages")
        .into_inner()
        .images
}

/// Polls `ImageStatus(name)` until it reports an image, returning it, how long that
/// took and how many calls it needed; panics after `CRI_SYNC_LIMIT`.
async fn wait_for_status(client: &CriClient, name: &str) -> (v1::Image, Duration, u32) {
    let start = pullgate_testkit::time::instant();
    let mut calls = 0;
    loop {
        calls += 1;
        if let Some(image) = image_status(client, name).await {
            return (image, start.elapsed(), calls);
        }
        assert!(
            start.elapsed() < CRI_SYNC_LIMIT,
            "ImageStatus({name}) still empty after {CRI_SYNC_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What the harness tests here start from: the harness, a CRI client straight to
/// containerd, the busybox manifest as pullgate would record it, and `SERIAL`.
struct Serial {
    harness: Harness,
    client: CriClient,
    target: Descriptor,
    _lock: tokio::sync::MutexGuard<'static, ()>,
}

impl Serial {
    async fn start(test: &str) -> Option<Serial> {
        let harness = Harness::from_env(test)?;
        let _lock = SERIAL.lock().await;
        let client = harness.direct_client();
        let target = manifest_target(&harness.busybox, &harness.busybox_digest);
        Some(Serial {
            harness,
            client,
            target,
            _lock,
        })
    }
}

/// [`Serial::start`] of the test named `$test`; without an integration harness the
/// test returns (skipped) here.
macro_rules! serial_or_skip {
    ($test:literal) => {
        match Serial::start($test).await {
            Some(serial) => serial,
            None => return,
        }
    };
}

/// The manifest the registry serves for `digest` in `host/repo`, checked against
/// that digest, as the descriptor pullgate would record.
fn manifest_target(reference: &str, digest: &str) -> Descriptor {
    let (host, rest) = reference.split_once('/').expect("host/repo:tag");
    let repo = rest.rsplit_once(':').map_or(rest, |(repo, _)| repo);
    let output = Command::new("curl")
        .args(["-sSf", "-D", "/dev/stderr", "-H"])
        .arg(format!("Accept: {OCI_MANIFEST}"))
        .arg(format!("http://{host}/v2/{repo}/manifests/{digest}"))
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl: {output:?}");
    let headers = String::from_utf8_lossy(&output.stderr).to_ascii_lowercase();
    assert!(
        headers.contains(&format!("content-type: {OCI_MANIFEST}")),
        "registry serves another media type: {headers}"
    );
    let body = output.stdout;
    let hex: String = Sha256::digest(&body)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let actual = format!("sha256:{hex}");
    assert_eq!(actual, digest, "manifest bytes do not match the digest");
    Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        digest: digest.parse().expect("digest"),
        size: body.len() as u64,
        annotations: Default::default(),
        artifact_type: None,
    }
}

/// `host/library/busybox@sha256:…` for the harness's busybox tag.
fn by_digest(harness: &Harness) -> String {
    let (repo, _tag) = harness.busybox.rsplit_once(':').expect("repo:tag");
    format!("{repo}@{}", harness.busybox_digest)
}

/// Removes one image record by name through containerd's images API (CRI
/// `RemoveImage` would delete every name of the image, the digest pull's too).
async fn delete_record(socket: &Path, name: &str) {
    let channel = pullgate::cri::client::CriClient::connect(socket)
        .expect("channel")
        .channel();
    let mut request = tonic::Request::new(DeleteImageRequest {
        name: name.to_owned(),
        sync: true,
        target: None,
    });
    request
        .metadata_mut()
        .insert("containerd-namespace", "k8s.io".parse().expect("ascii"));
    match ImagesClient::new(channel).delete(request).await {
        Ok(_) => {}
        Err(status) if status.code() == tonic::Code::NotFound => {}
        Err(status) => panic!("delete {name}: {status:?}"),
    }
}

/// Pulls busybox by digest and makes sure its tag is not recorded; returns the
/// image id of the digest pull.
async fn digest_pulled_tag_absent(harness: &Harness, client: &CriClient) -> String {
    delete_record(&harness.containerd_socket, &harness.busybox).await;
    let image_ref = pull_ok(client, &by_digest(harness)).await;
    let status = image_status(client, &by_digest(harness))
        .await
        .expect("digest pull is in CRI");
    assert_eq!(status.id, image_ref);
    assert!(
        image_status(client, &harness.busybox).await.is_none(),
        "tag still recorded after deleting it"
    );
    image_ref
}

/// The store's record of `name`, which must exist.
async fn record_of(store: &ImageStore, name: &str) -> ImageRecord {
    store.get(name).await.expect("get").expect("record exists")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_recorded_after_digest_pull_is_seen_by_cri() {
    let Serial {
        harness,
        client,
        target,
        _lock,
    } = serial_or_skip!("tag_recorded_after_digest_pull_is_seen_by_cri");
    let store = ImageStore::new(&harness.containerd_socket);
    let image_id = digest_pulled_tag_absent(&harness, &client).await;
    assert_eq!(store.get(&harness.busybox).await.expect("get"), None);

    let first = labels(&[
        ("io.pullgate.verified", "true"),
        ("io.pullgate.policy", "wabbit-networks"),
        ("io.pullgate.digest", &harness.busybox_digest),
    ]);
    store
        .tag(&harness.busybox, &target, &first)
        .await
        .expect("tag (create)");
    let (image, took, calls) = wait_for_status(&client, &harness.busybox).await;
    eprintln!("ImageStatus(tag) found the created record after {took:?} ({calls} calls)");
    assert_eq!(image.id, image_id, "tag points at another image");
    assert!(
        image.repo_tags.contains(&harness.busybox),
        "repo_tags {:?}",
        image.repo_tags
    );
    assert!(
        image.repo_digests.contains(&by_digest(&harness)),
        "repo_digests {:?}",
        image.repo_digests
    );
    let listed = list_images(&client).await;
    let entry = listed
        .iter()
        .find(|i| i.repo_tags.contains(&harness.busybox))
        .unwrap_or_else(|| panic!("ListImages lacks the tag: {listed:?}"));
    assert_eq!(entry.id, image_id);

    let record = record_of(&store, &harness.busybox).await;
    assert_eq!(record.name, harness.busybox);
    assert_eq!(record.target, target);
    let mut expected = first.clone();
    expected.insert("io.cri-containerd.image".into(), "managed".into());
    assert_eq!(record.labels, expected);

    // Tagging again (a re-pull, verified anew) updates the record in place.
    let second = labels(&[
        ("io.pullgate.verified", "true"),
        ("io.pullgate.policy", "acme"),
        ("io.pullgate.time", "2026-11-27T10:00:00Z"),
    ]);
    store
        .tag(&harness.busybox, &target, &second)
        .await
        .expect("tag (update)");
    let record = record_of(&store, &harness.busybox).await;
    assert_eq!(record.target, target);
    assert_eq!(record.labels["io.pullgate.policy"], "acme");
    assert_eq!(record.labels["io.pullgate.time"], "2026-11-27T10:00:00Z");
    assert_eq!(record.labels["io.cri-containerd.image"], "managed");
    // Only the labels named in the update are replaced; others stay.
    assert_eq!(
        record.labels["io.pullgate.digest"],
        harness.busybox_digest.as_str()
    );
    let image = image_status(&client, &harness.busybox)
        .await
        .expect("still in CRI after the update");
    assert_eq!(image.id, image_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_tags_of_a_new_name_all_succeed() {
    let Serial {
        harness,
        client,
        target,
        _lock,
    } = serial_or_skip!("concurrent_tags_of_a_new_name_all_succeed");
    let image_id = pull_ok(&client, &by_digest(&harness)).await;
    let (repo, _) = harness.busybox.rsplit_once(':').expect("repo:tag");
    let name = format!("{repo}:pullgate-race");
    delete_record(&harness.containerd_socket, &name).await;

    let store = ImageStore::new(&harness.containerd_socket);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, name, target) = (store.clone(), name.clone(), target.clone());
            tokio::spawn(async move {
                let labels = labels(&[("io.pullgate.writer", &i.to_string())]);
                store.tag(&name, &target, &labels).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("join")
            .expect("every racing tag succeeds");
    }
    let record = record_of(&store, &name).await;
    assert_eq!(record.target, target);
    assert!(record.labels.contains_key("io.pullgate.writer"));
    let (image, _, _) = wait_for_status(&client, &name).await;
    assert_eq!(image.id, image_id);
    delete_record(&harness.containerd_socket, &name).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_recovers_after_containerd_restarts() {
    let Serial {
        harness,
        client,
        target,
        _lock,
    } = serial_or_skip!("store_recovers_after_containerd_restarts");
    pull_ok(&client, &by_digest(&harness)).await;
    let store = ImageStore::new(&harness.containerd_socket);
    let verified = labels(&[("io.pullgate.verified", "true")]);
    store
        .tag(&harness.busybox, &target, &verified)
        .await
        .expect("tag while up");

    harness.run("stop-containerd");
    let error = store
        .tag(&harness.busybox, &target, &verified)
        .await
        .expect_err("containerd is down");
    assert!(
        matches!(&error, ImageStoreError::Unavailable { socket, .. } if *socket == harness.containerd_socket),
        "{error:?}"
    );
    assert_eq!(
        status(&CallError::ImageStore(error)).code(),
        tonic::Code::Unavailable
    );

    harness.run("start-containerd");
    // The same store redials; allow containerd a moment to serve again.
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(30);
    loop {
        match store.tag(&harness.busybox, &target, &verified).await {
            Ok(()) => break,
            Err(error @ ImageStoreError::Unavailable { .. })
                if pullgate_testkit::time::instant() < deadline =>
            {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no recovery: {error:?}"),
        }
    }
    let record = record_of(&store, &harness.busybox).await;
    assert_eq!(record.target, target);
}

#[tokio::test]
async fn missing_socket_is_unavailable_naming_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("containerd.sock");
    let store = ImageStore::new(&socket);
    let target = Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        digest: format!("sha256:{}", "0".repeat(64))
            .parse()
            .expect("digest"),
        size: 1,
        annotations: Default::default(),
        artifact_type: None,
    };
    let error = store
        .tag("r.example/a:1", &target, &BTreeMap::new())
        .await
        .expect_err("no containerd");
    let ImageStoreError::Unavailable { socket: named, .. } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(named, &socket);
    let error = CallError::ImageStore(error);
    let status = status(&error);
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.message().starts_with("pullgate: "), "{status:?}");
    assert!(
        status.message().contains(&socket.display().to_string()),
        "{status:?}"
    );

    let error = store.get("r.example/a:1").await.expect_err("no containerd");
    assert!(
        matches!(error, ImageStoreError::Unavailable { .. }),
        "{error:?}"
    );
}
