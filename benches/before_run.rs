//! What the checks before a container runs cost (issue 12): `ImageStatus` and
//! `CreateContainer` of an image with a current verdict, directly to containerd and
//! through a release pullgate, interleaved in one run, with the added p50/p99 and
//! the registry requests made meanwhile (from the registry's access log: there
//! must be none). Run by `integration/bench-before-run`, which starts containerd
//! and the registry (`integration/harness`) and builds the release binary:
//!
//!   PULLGATE_IT_…=… PULLGATE_BIN=target/release/pullgate cargo bench --bench before_run
//!
//! `Version`, which pullgate only forwards, is measured the same way: its added
//! p50 is what the unix-socket hop through pullgate costs by itself (issue 13 is
//! about that hop); what `ImageStatus` adds beyond it is the check's own cost.
//!
//! Without a harness it says so and exits 0 (so `cargo bench` alone works).

use std::time::Duration;

use pullgate::cri::v1;
use pullgate_testkit::envelope_builder::Format;
use pullgate_testkit::pki::KeySpec;
use pullgate_testkit::pod::{image_spec, pull, Pod};
use pullgate_testkit::signing::{resolve, skopeo_copy, unique, ImageSigner};
use pullgate_testkit::{CriClient, Harness, Pullgate};

/// ImageStatus calls per target and round.
const STATUS_CALLS: usize = 2_000;
/// CreateContainer calls per target and round (each container is removed again).
const CREATE_CALLS: usize = 100;
const ROUNDS: usize = 3;
/// Issue 12's bound on the added p50 of either call.
const TARGET_ADDED_P50: Duration = Duration::from_micros(100);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

async fn image_status_once(client: &CriClient, image: &str) -> Duration {
    let started = pullgate::clock::monotonic_now();
    let answer = client
        .image
        .clone()
        .image_status(v1::ImageStatusRequest {
            image: image_spec(image),
            verbose: false,
        })
        .await
        .expect("ImageStatus");
    let took = started.elapsed();
    assert!(answer.into_inner().image.is_some(), "{image} is shown");
    took
}

/// `Version`: a call pullgate only forwards, for the cost of the hop itself.
async fn version_once(client: &CriClient) -> Duration {
    let started = pullgate::clock::monotonic_now();
    client
        .runtime
        .clone()
        .version(v1::VersionRequest::default())
        .await
        .expect("Version");
    started.elapsed()
}

fn container(image: &str, n: usize) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: format!("bench-{n}"),
            attempt: 0,
        }),
        image: image_spec(image),
        command: vec!["/bin/sleep".to_owned(), "3600".to_owned()],
        ..Default::default()
    }
}

/// CreateContainer of `image` in `pod`: its latency; the container is removed.
async fn create_once(client: &CriClient, pod: &Pod, image: &str, n: usize) -> Duration {
    let started = pullgate::clock::monotonic_now();
    let id = pod
        .try_create_container(client, container(image, n))
        .await
        .expect("CreateContainer");
    let took = started.elapsed();
    pullgate_testkit::pod::remove_container(client, &id).await;
    took
}

struct Samples {
    direct: Vec<Duration>,
    pullgate: Vec<Duration>,
}

impl Samples {
    fn new() -> Samples {
        Samples {
            direct: Vec::new(),
            pullgate: Vec::new(),
        }
    }

    /// Prints p50/p99 of both and the added p50; returns whether it is in bound.
    fn report(&mut self, call: &str) -> bool {
        self.direct.sort();
        self.pullgate.sort();
        let (d50, d99) = (
            percentile(&self.direct, 0.5),
            percentile(&self.direct, 0.99),
        );
        let (p50, p99) = (
            percentile(&self.pullgate, 0.5),
            percentile(&self.pullgate, 0.99),
        );
        let added = p50.saturating_sub(d50);
        let ok = added <= TARGET_ADDED_P50;
        println!(
            "{call:<16} n={:<5} direct p50 {:>7.1} µs p99 {:>8.1} µs | pullgate p50 {:>7.1} µs p99 {:>8.1} µs | added p50 {:>6.1} µs (≤ {} µs: {}) ratio {:.2}",
            self.direct.len(),
            d50.as_secs_f64() * 1e6,
            d99.as_secs_f64() * 1e6,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            added.as_secs_f64() * 1e6,
            TARGET_ADDED_P50.as_micros(),
            if ok { "yes" } else { "NO" },
            p50.as_secs_f64() / d50.as_secs_f64(),
        );
        ok
    }
}

fn registry_lines(repo: &str) -> usize {
    let log = std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("registry log");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(&format!("/v2/{repo}/")))
        .count()
}

fn main() {
    let Some(harness) = Harness::from_env("bench before_run") else {
        println!("before_run: no harness; run integration/bench-before-run");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(harness));
}

async fn bench(harness: Harness) {
    // A signed copy of busybox, verified once through pullgate under `strict`.
    let signer = ImageSigner::new(KeySpec::Rsa3072);
    let repo = format!("bench/{}", unique("before-run"));
    let reference = format!("{}/{repo}:v1", harness.registry);
    skopeo_copy(&harness.busybox, &reference);
    let target = resolve(&harness.registry, &reference).await;
    signer.sign_and_push(&harness, &repo, &target, Format::Cose);
    let policy = tempfile::tempdir().expect("tempdir");
    let statement = serde_json::json!({
        "name": "bench", "registryScopes": [format!("{}/{repo}", harness.registry)],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:bench"], "trustedIdentities": ["*"],
    });
    let document = serde_json::json!({"version": "1.0", "trustPolicies": [statement]});
    std::fs::write(
        policy.path().join("trustpolicy.oci.json"),
        document.to_string(),
    )
    .expect("policy");
    let store = policy.path().join("truststore/x509/ca/bench");
    std::fs::create_dir_all(&store).expect("store");
    std::fs::write(store.join("root.pem"), signer.root_pem()).expect("root");
    let config = format!(
        "[log]\nlevel = \"warn\"\n[policy]\ndir = {:?}\n[registry]\ninsecure = [{:?}]\n",
        policy.path(),
        harness.registry
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let pullgate = Pullgate::start_full(&harness.containerd_socket, dir, &config);
    let through = pullgate.client();
    let direct = harness.direct_client();
    let id = pull(&through, &reference).await.expect("verified pull");
    let pod = Pod::run(&direct, &format!("bench-{}", std::process::id())).await;

    // Warm both paths once.
    image_status_once(&through, &reference).await;
    image_status_once(&direct, &reference).await;
    let registry_before = registry_lines(&repo);

    println!(
        "before_run: image {reference} ({}) with a current verdict; {ROUNDS} rounds, interleaved",
        target.digest
    );
    let mut hop = Samples::new();
    let mut status = Samples::new();
    let mut create = Samples::new();
    let mut n = 0;
    for _ in 0..ROUNDS {
        for _ in 0..STATUS_CALLS {
            hop.direct.push(version_once(&direct).await);
            hop.pullgate.push(version_once(&through).await);
            status
                .direct
                .push(image_status_once(&direct, &reference).await);
            status
                .pullgate
                .push(image_status_once(&through, &reference).await);
        }
        for _ in 0..CREATE_CALLS {
            n += 1;
            create.direct.push(create_once(&direct, &pod, &id, n).await);
            n += 1;
            create
                .pullgate
                .push(create_once(&through, &pod, &id, n).await);
        }
    }
    let registry_requests = registry_lines(&repo) - registry_before;
    hop.report("Version (hop)");
    let status_ok = status.report("ImageStatus");
    let create_ok = create.report("CreateContainer");
    println!(
        "registry requests for {repo} during the measured calls: {registry_requests} (must be 0)"
    );
    println!(
        "verdict: {}",
        if status_ok && create_ok && registry_requests == 0 {
            "within issue 12's bounds"
        } else {
            "OUT OF BOUNDS"
        }
    );
    pod.stop(&direct).await;
    pod.remove(&direct).await;
    pullgate_testkit::pod::remove_image(&direct, &reference).await;
}
