//! The gate's cost: `PullImage` of a small signed image directly to containerd and
//! through a release pullgate, cold (first verification: image removed from
//! containerd, fresh pullgate) and warm (verdict cached, image present), with the
//! ratio warm pullgate / warm direct and the registry requests pullgate added per
//! pull (from the registry's access log). Then pullgate's RSS after verifying K
//! distinct signed digests. Run by `integration/bench-gate`, which starts containerd
//! and the registry and makes the signing PKI:
//!
//!   PULLGATE_BENCH_CONTAINERD=… PULLGATE_BENCH_PULLGATE_BIN=… PULLGATE_BENCH_DIR=… \
//!   PULLGATE_BENCH_REGISTRY=… PULLGATE_BENCH_REGISTRY_LOG=… PULLGATE_BENCH_PKI=… \
//!   [PULLGATE_BENCH_REPS=10] [PULLGATE_BENCH_DISTINCT=1000] [PULLGATE_BENCH_BUDGET_SECS=180] \
//!   [PULLGATE_BENCH_FLOOD=100] [PULLGATE_BENCH_FLOOD_ONLY=1] [PULLGATE_BENCH_BASELINE_BIN=…] \
//!   cargo bench --bench gate
//!
//! It starts with the flood: a registry listing `PULLGATE_BENCH_FLOOD` signatures
//! of 32 MiB each for one image; a fresh pullgate judges them all (and refuses)
//! while `Version` is called through it every 10 ms. It prints pullgate's peak RSS
//! and the `Version` latencies, for `PULLGATE_BENCH_BASELINE_BIN` too when given.
//!
//! Without those variables it says so and exits 0 (so `cargo bench` alone works).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pullgate::cri::client::CriClient;
use pullgate::cri::v1;
use serde_json::json;

use pullgate_testkit::envelope_builder::{Format, Target};
use pullgate_testkit::signed_layout::{Blob, EMPTY, INDEX, MANIFEST, NOTARY};
use pullgate_testkit::signer;

const SMALL_REPO: &str = "bench/small";
const MANY_REPO: &str = "bench/many";

// ---------------------------------------------------------------- registry push

/// A minimal keep-alive HTTP/1.1 client for pushing to the plain-http registry.
struct Http {
    host: String,
    reader: BufReader<TcpStream>,
}

impl Http {
    fn connect(host: &str) -> Http {
        let stream = TcpStream::connect(host).expect("connect to the registry");
        stream.set_nodelay(true).ok();
        Http {
            host: host.to_owned(),
            reader: BufReader::new(stream),
        }
    }

    /// Returns the status and the Location header.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, String) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(body).expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read status");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let (mut length, mut location) = (0usize, String::new());
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("read header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "location" => location = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut discard = vec![0; length];
        self.reader.read_exact(&mut discard).expect("read body");
        if status >= 300 {
            panic!(
                "{method} {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&discard)
            );
        }
        (status, location)
    }

    fn blob(&mut self, repo: &str, blob: &Blob) {
        let (_, location) = self.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            "application/octet-stream",
            b"",
        );
        let path = match location.find("/v2/") {
            Some(i) => location[i..].to_owned(),
            None => panic!("upload Location {location:?}"),
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        self.request(
            "PUT",
            &format!("{path}{sep}digest={}", blob.digest),
            "application/octet-stream",
            &blob.bytes,
        );
    }

    fn manifest(&mut self, repo: &str, reference: &str, blob: &Blob) {
        self.request(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &blob.media_type,
            &blob.bytes,
        );
    }
}

/// An empty tar archive: a valid (empty) layer containerd can unpack.
fn empty_layer() -> Blob {
    Blob::new("application/vnd.oci.image.layer.v1.tar", vec![0; 1024])
}

/// Pushes image `n` (distinct config → distinct digest) to `repo` (its empty layer
/// must be there already), under `tag` or its digest. Returns the manifest.
fn push_image(http: &mut Http, repo: &str, n: usize, tag: Option<&str>) -> Blob {
    let layer = empty_layer();
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"bench.pullgate/n": n.to_string()}, "Cmd": ["/true"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]},
        }))
        .expect("json"),
    );
    let manifest = Blob::new(
        MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": config.descriptor(), "layers": [layer.descriptor()],
        }))
        .expect("json"),
    );
    http.blob(repo, &config);
    http.manifest(repo, tag.unwrap_or(&manifest.digest.to_string()), &manifest);
    manifest
}

/// Pushes image `n` (distinct config → distinct digest) to `repo`, signs it and
/// pushes the signature and its referrers tag-schema index. Returns the manifest.
fn push_signed(
    http: &mut Http,
    signer: &signer::Signer,
    repo: &str,
    n: usize,
    tag: Option<&str>,
) -> Blob {
    let manifest = push_image(http, repo, n, tag);
    let envelope = Blob::new(
        Format::Cose.media_type(),
        signer
            .envelope(target_of(&manifest), Format::Cose)
            .expect("sign"),
    );
    let empty = Blob::new(EMPTY, b"{}".to_vec());
    let signature = Blob::new(
        MANIFEST,
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": NOTARY,
            "config": empty.descriptor(), "layers": [envelope.descriptor()],
            "subject": manifest.descriptor(),
        }))
        .expect("json"),
    );
    let mut entry = signature.descriptor();
    entry["artifactType"] = NOTARY.into();
    let index = Blob::new(
        INDEX,
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}))
            .expect("json"),
    );
    http.blob(repo, &envelope);
    http.manifest(repo, &signature.digest.to_string(), &signature);
    http.manifest(repo, &manifest.digest.referrers_tag(), &index);
    manifest
}

// ---------------------------------------------------------------- flood

const FLOOD_REPO: &str = "bench/flood";
/// The largest envelope notation (and pullgate) accepts.
const FLOOD_ENVELOPE_BYTES: usize = 32 * 1024 * 1024;

/// A registry that lists `count` signatures for one image, alternately a COSE and
/// a JWS envelope of just under 32 MiB: a real signature's headers and chain
/// around a 32 MiB payload, so every one is fetched and judged, and none passes.
/// The signature manifests differ (an annotation); they share the two blobs.
fn push_flood(http: &mut Http, signer: &signer::Signer, count: usize) -> Blob {
    let layer = empty_layer();
    http.blob(FLOOD_REPO, &layer);
    let empty = Blob::new(EMPTY, b"{}".to_vec());
    http.blob(FLOOD_REPO, &empty);
    let manifest = push_image(http, FLOOD_REPO, 0, Some("v1"));

    let real = signer
        .envelope(target_of(&manifest), Format::Cose)
        .expect("sign");
    let mut sign1 = <coset::CoseSign1 as coset::TaggedCborSerializable>::from_tagged_slice(&real)
        .expect("a COSE_Sign1");
    let base = sign1.payload.take().unwrap_or_default();
    let mut payload = base.clone();
    payload.truncate(payload.len().saturating_sub(1));
    payload.extend_from_slice(b",\"pad\":\"");
    // The whole envelope just under the limit: the payload takes what is left.
    let room = FLOOD_ENVELOPE_BYTES - real.len() - 64;
    payload.resize(payload.len() + room - base.len(), b'x');
    payload.extend_from_slice(b"\"}");
    sign1.payload = Some(payload);
    let envelope = Blob::new(
        Format::Cose.media_type(),
        coset::TaggedCborSerializable::to_tagged_vec(sign1).expect("encode"),
    );
    assert!(
        envelope.bytes.len() <= FLOOD_ENVELOPE_BYTES,
        "{}",
        envelope.bytes.len()
    );
    http.blob(FLOOD_REPO, &envelope);
    // The same as JWS: a real signature's members around a 32 MiB payload.
    let real = signer
        .envelope(target_of(&manifest), Format::Jws)
        .expect("sign");
    let mut jws: serde_json::Value = serde_json::from_slice(&real).expect("JWS JSON");
    let room = FLOOD_ENVELOPE_BYTES - real.len() - 64;
    jws["payload"] = "e".repeat(room / 4 * 4).into();
    let jws = Blob::new(
        Format::Jws.media_type(),
        serde_json::to_vec(&jws).expect("json"),
    );
    assert!(
        jws.bytes.len() <= FLOOD_ENVELOPE_BYTES,
        "{}",
        jws.bytes.len()
    );
    http.blob(FLOOD_REPO, &jws);
    let mut entries = Vec::new();
    for n in 0..count {
        let envelope = if n % 2 == 0 { &envelope } else { &jws };
        let signature = Blob::new(
            MANIFEST,
            serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": NOTARY,
                "config": empty.descriptor(), "layers": [envelope.descriptor()],
                "subject": manifest.descriptor(),
                "annotations": {"bench.pullgate/n": n.to_string()},
            }))
            .expect("json"),
        );
        http.manifest(FLOOD_REPO, &signature.digest.to_string(), &signature);
        let mut entry = signature.descriptor();
        entry["artifactType"] = NOTARY.into();
        entries.push(entry);
    }
    let index = Blob::new(
        INDEX,
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}))
            .expect("json"),
    );
    http.manifest(FLOOD_REPO, &manifest.digest.referrers_tag(), &index);
    manifest
}

fn target_of(manifest: &Blob) -> Target {
    Target {
        media_type: MANIFEST.into(),
        digest: manifest.digest.to_string(),
        size: manifest.size(),
        annotations: Vec::new(),
        artifact_type: None,
    }
}

/// What one pullgate binary did under the flood.
struct FloodRun {
    pull: Duration,
    refusal: String,
    rss_before_kib: u64,
    peak_kib: u64,
    versions: Vec<Duration>,
    direct_versions: Vec<Duration>,
}

/// A fresh pullgate pulls the flooded image (refused after judging every
/// signature) while another caller asks `Version` every 10 ms through it.
async fn flood_run(
    bin: &Path,
    config: &Path,
    socket: &Path,
    log: &Path,
    image: &str,
    direct: &CriClient,
) -> FloodRun {
    let gate = Pullgate::start(bin, config, socket, log).await;
    let client = gate.client();
    // One call first so the connection to containerd is up before measuring.
    client
        .runtime
        .clone()
        .version(v1::VersionRequest::default())
        .await
        .expect("Version through pullgate");
    let pid = gate.child.id();
    let rss_before_kib = rss_kib(pid);
    let done = std::sync::atomic::AtomicBool::new(false);
    let pulling = async {
        let start = pullgate_testkit::time::instant();
        let result = client
            .image
            .clone()
            .pull_image(v1::PullImageRequest {
                image: Some(v1::ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        let pull = start.elapsed();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let refusal = match result {
            Ok(_) => panic!("the flooded image was allowed"),
            Err(status) => status.message().to_owned(),
        };
        (pull, refusal)
    };
    let probing = async {
        let mut versions = Vec::new();
        let mut runtime = client.runtime.clone();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let start = pullgate_testkit::time::instant();
            runtime
                .version(v1::VersionRequest::default())
                .await
                .expect("Version through pullgate during the flood");
            versions.push(start.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        versions
    };
    // The same probe straight to containerd: what the machine itself adds under
    // the flood (2 cores shared with the registry sending 32 MiB blobs).
    let probing_direct = async {
        let mut versions = Vec::new();
        let mut runtime = direct.runtime.clone();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let start = pullgate_testkit::time::instant();
            runtime
                .version(v1::VersionRequest::default())
                .await
                .expect("Version to containerd during the flood");
            versions.push(start.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        versions
    };
    let ((pull, refusal), versions, direct_versions) =
        tokio::join!(pulling, probing, probing_direct);
    let peak_kib = status_kib(pid, "VmHWM:");
    gate.stop();
    FloodRun {
        pull,
        refusal,
        rss_before_kib,
        peak_kib,
        versions,
        direct_versions,
    }
}

fn print_flood(name: &str, run: &FloodRun) {
    let quantiles = |samples: &[Duration]| {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let at = |q: f64| ms(sorted[((sorted.len() - 1) as f64 * q) as usize]);
        (sorted.len(), at(0.5), at(0.99), at(1.0))
    };
    let (n, p50, p99, max) = quantiles(&run.versions);
    let (dn, dp50, dp99, dmax) = quantiles(&run.direct_versions);
    println!(
        "{name:<10} pull refused after {:7.2} s | RSS {:6.1} MiB before, peak {:7.1} MiB (target < 64)",
        run.pull.as_secs_f64(),
        run.rss_before_kib as f64 / 1024.0,
        run.peak_kib as f64 / 1024.0,
    );
    println!(
        "           Version through it x{n}: p50 {p50:6.2} ms, p99 {p99:6.2} ms, max {max:7.2} ms \
         (target < 50); to containerd directly meanwhile x{dn}: p50 {dp50:6.2}, p99 {dp99:6.2}, max {dmax:7.2}"
    );
    println!("           reason: {}", run.refusal);
}

/// The flood phase: `count` referrers of 32 MiB each, through this pullgate and
/// (when given) a baseline binary, side by side.
#[allow(clippy::too_many_arguments)]
async fn flood(
    count: usize,
    http: &mut Http,
    signer: &signer::Signer,
    registry: &str,
    bins: &[(&str, PathBuf)],
    config: &Path,
    socket: &Path,
    log: &Path,
    direct: &CriClient,
) {
    let manifest = push_flood(http, signer, count);
    let image = format!("{registry}/{FLOOD_REPO}:v1");
    println!(
        "flood: {image} ({}) lists {count} signatures of {} MiB each (COSE and JWS, \
         a real signature's headers around a 32 MiB payload); none passes",
        manifest.digest,
        FLOOD_ENVELOPE_BYTES / (1024 * 1024)
    );
    for (name, bin) in bins {
        let run = flood_run(bin, config, socket, log, &image, direct).await;
        print_flood(name, &run);
    }
}

// ---------------------------------------------------------------- measuring

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:` now, `VmHWM:` the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Access-log lines of requests for the bench repositories.
fn registry_requests(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - - [") && l.contains(" /v2/bench/"))
        .count()
}

/// The registry writes its access line after answering: let it catch up.
async fn settled_requests(log: &Path) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    registry_requests(log)
}

async fn pull(client: &CriClient, image: &str) -> Duration {
    let start = pullgate_testkit::time::instant();
    let result = client
        .image
        .clone()
        .pull_image(v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    let elapsed = start.elapsed();
    if let Err(status) = result {
        panic!("pull {image}: {:?}: {}", status.code(), status.message());
    }
    elapsed
}

async fn remove(containerd: &CriClient, image: &str) {
    let _ = containerd
        .image
        .clone()
        .remove_image(v1::RemoveImageRequest {
            image: Some(v1::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
        })
        .await;
}

struct Pullgate {
    child: Child,
    socket: PathBuf,
}

impl Pullgate {
    async fn start(bin: &Path, config: &Path, socket: &Path, log: &Path) -> Pullgate {
        let _ = std::fs::remove_file(socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("pullgate log");
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pullgate");
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            socket.exists(),
            "pullgate did not create {}",
            socket.display()
        );
        Pullgate {
            child,
            socket: socket.to_owned(),
        }
    }

    fn client(&self) -> CriClient {
        CriClient::connect(&self.socket).expect("client")
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

struct Stats {
    mean: Duration,
    p50: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats {
        mean,
        p50: samples[samples.len() / 2],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(containerd), Some(bin), Some(dir), Some(registry), Some(log), Some(pki)) = (
        var("PULLGATE_BENCH_CONTAINERD"),
        var("PULLGATE_BENCH_PULLGATE_BIN"),
        var("PULLGATE_BENCH_DIR"),
        var("PULLGATE_BENCH_REGISTRY"),
        var("PULLGATE_BENCH_REGISTRY_LOG"),
        var("PULLGATE_BENCH_PKI"),
    ) else {
        println!(
            "gate bench: run integration/bench-gate (needs containerd, a registry and pullgate)"
        );
        return;
    };
    let number = |name: &str, default: usize| {
        var(name)
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
            .unwrap_or(default)
    };
    let reps = number("PULLGATE_BENCH_REPS", 10);
    // Warm pulls are short: more of them.
    let warm_reps = reps * 5;
    let distinct = number("PULLGATE_BENCH_DISTINCT", 1000);
    let budget = Duration::from_secs(number("PULLGATE_BENCH_BUDGET_SECS", 180) as u64);
    let (dir, pki, log, bin) = (
        PathBuf::from(dir),
        PathBuf::from(pki),
        PathBuf::from(log),
        PathBuf::from(bin),
    );

    // Trust policy + pullgate config.
    let policy = dir.join("notation");
    std::fs::create_dir_all(policy.join("truststore/x509/ca/bench")).expect("mkdir");
    std::fs::copy(
        pki.join("root.crt"),
        policy.join("truststore/x509/ca/bench/root.crt"),
    )
    .expect("copy root");
    std::fs::write(
        policy.join("trustpolicy.oci.json"),
        serde_json::to_vec_pretty(&json!({"version": "1.0", "trustPolicies": [{
            "name": "bench",
            "registryScopes": [
                format!("{registry}/{SMALL_REPO}"),
                format!("{registry}/{MANY_REPO}"),
                format!("{registry}/{FLOOD_REPO}"),
            ],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:bench"],
            "trustedIdentities": ["*"],
        }]}))
        .expect("json"),
    )
    .expect("write policy");
    let socket = dir.join("gate.sock");
    let config = dir.join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nsocket = {:?}\n[upstream]\ncontainerd_socket = {containerd:?}\n\
             [log]\nlevel = \"warn\"\n[policy]\ndir = {:?}\n[registry]\ninsecure = [{registry:?}]\n\
             # the flood phase judges 100 x 32 MiB: let it finish\ntimeout = \"600s\"\n",
            socket.display().to_string(),
            policy.display().to_string()
        ),
    )
    .expect("write config");
    let pullgate_log = dir.join("gate-pullgate.log");

    let signer =
        signer::Signer::load(&pki.join("leaf.key"), &pki.join("chain.pem")).expect("signing key");
    let mut http = Http::connect(&registry);
    let layer = empty_layer();
    http.blob(SMALL_REPO, &layer);
    http.blob(MANY_REPO, &layer);
    for repo in [SMALL_REPO, MANY_REPO] {
        http.blob(repo, &Blob::new(EMPTY, b"{}".to_vec()));
    }
    let flood_count = number("PULLGATE_BENCH_FLOOD", 100);
    if flood_count > 0 {
        let mut bins = vec![("pullgate", bin.clone())];
        if let Some(baseline) = var("PULLGATE_BENCH_BASELINE_BIN") {
            bins.push(("baseline", PathBuf::from(baseline)));
        }
        flood(
            flood_count,
            &mut http,
            &signer,
            &registry,
            &bins,
            &config,
            &socket,
            &pullgate_log,
            &CriClient::connect(Path::new(&containerd)).expect("client"),
        )
        .await;
        if var("PULLGATE_BENCH_FLOOD_ONLY").is_some() {
            return;
        }
        println!();
    }
    let small = push_signed(&mut http, &signer, SMALL_REPO, 0, Some("v1"));
    let image = format!("{registry}/{SMALL_REPO}:v1");
    let pinned = format!("{registry}/{SMALL_REPO}@{}", small.digest);
    let direct = CriClient::connect(Path::new(&containerd)).expect("client");
    println!(
        "gate bench: {image} ({}), {reps} cold and {warm_reps} warm pulls per phase",
        small.digest
    );

    // Direct, cold: the image removed before every pull.
    let mut direct_cold = Vec::new();
    let mut direct_cold_requests = 0;
    for _ in 0..reps {
        remove(&direct, &image).await;
        remove(&direct, &pinned).await;
        let before = settled_requests(&log).await;
        direct_cold.push(pull(&direct, &image).await);
        direct_cold_requests += settled_requests(&log).await - before;
    }
    // Direct, warm: present.
    let before = settled_requests(&log).await;
    let mut direct_warm = Vec::new();
    for _ in 0..warm_reps {
        direct_warm.push(pull(&direct, &image).await);
    }
    let direct_warm_requests = settled_requests(&log).await - before;

    // Through pullgate, cold: image removed, fresh pullgate (empty verdict cache).
    let mut gate_cold = Vec::new();
    let mut gate_cold_requests = 0;
    for _ in 0..reps {
        remove(&direct, &image).await;
        remove(&direct, &pinned).await;
        let gate = Pullgate::start(&bin, &config, &socket, &pullgate_log).await;
        let client = gate.client();
        let before = settled_requests(&log).await;
        gate_cold.push(pull(&client, &image).await);
        gate_cold_requests += settled_requests(&log).await - before;
        gate.stop();
    }
    // Through pullgate, warm: one pull to cache the verdict, then measure.
    let gate = Pullgate::start(&bin, &config, &socket, &pullgate_log).await;
    let client = gate.client();
    pull(&client, &image).await;
    let before = settled_requests(&log).await;
    let mut gate_warm = Vec::new();
    for _ in 0..warm_reps {
        gate_warm.push(pull(&client, &image).await);
    }
    let gate_warm_requests = settled_requests(&log).await - before;

    let per = |n: usize| n as f64 / reps as f64;
    let per_warm = |n: usize| n as f64 / warm_reps as f64;
    let (dc, dw, gc, gw) = (
        stats(direct_cold),
        stats(direct_warm),
        stats(gate_cold),
        stats(gate_warm),
    );
    println!();
    println!("PullImage              mean ms   p50 ms   registry requests/pull");
    println!(
        "direct   cold        {:9.2} {:8.2}   {:.1}",
        ms(dc.mean),
        ms(dc.p50),
        per(direct_cold_requests)
    );
    println!(
        "pullgate cold        {:9.2} {:8.2}   {:.1}  (added {:+.1})",
        ms(gc.mean),
        ms(gc.p50),
        per(gate_cold_requests),
        per(gate_cold_requests) - per(direct_cold_requests)
    );
    println!(
        "direct   warm        {:9.2} {:8.2}   {:.1}",
        ms(dw.mean),
        ms(dw.p50),
        per_warm(direct_warm_requests)
    );
    println!(
        "pullgate warm        {:9.2} {:8.2}   {:.1}  (added {:+.1}; target 0)",
        ms(gw.mean),
        ms(gw.p50),
        per_warm(gate_warm_requests),
        per_warm(gate_warm_requests) - per_warm(direct_warm_requests)
    );
    println!(
        "ratio cold pullgate/direct: {:.3} (mean), {:.3} (p50)",
        gc.mean.as_secs_f64() / dc.mean.as_secs_f64(),
        gc.p50.as_secs_f64() / dc.p50.as_secs_f64()
    );
    println!(
        "ratio warm pullgate/direct: {:.3} (mean), {:.3} (p50)  target <= 1.05",
        gw.mean.as_secs_f64() / dw.mean.as_secs_f64(),
        gw.p50.as_secs_f64() / dw.p50.as_secs_f64()
    );

    // Memory: K distinct signed digests verified (and pulled) through pullgate.
    let pid = gate.child.id();
    let rss_before = rss_kib(pid);
    // Signed and pushed by 4 threads, pulled by 4 concurrent callers (2 cores here).
    let start = pullgate_testkit::time::instant();
    let push_budget = budget / 2;
    let next = std::sync::atomic::AtomicUsize::new(1);
    let pushed: Vec<Blob> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut http = Http::connect(&registry);
                    let mut mine = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if n > distinct || start.elapsed() > push_budget {
                            return mine;
                        }
                        mine.push(push_signed(&mut http, &signer, MANY_REPO, n, None));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("push worker"))
            .collect()
    });
    let push_time = start.elapsed();
    let start = pullgate_testkit::time::instant();
    let pull_budget = budget.saturating_sub(push_time);
    let verified = std::sync::atomic::AtomicUsize::new(0);
    let queue = std::sync::Mutex::new(pushed.iter());
    let callers = (0..4).map(|_| async {
        loop {
            let Some(manifest) = queue.lock().expect("queue").next() else {
                return;
            };
            if start.elapsed() > pull_budget {
                return;
            }
            pull(
                &client,
                &format!("{registry}/{MANY_REPO}@{}", manifest.digest),
            )
            .await;
            verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    futures_util::future::join_all(callers).await;
    let verified = verified.into_inner();
    let pull_time = start.elapsed();
    let rss_after = rss_kib(pid);
    println!();
    println!(
        "distinct signed images: {} signed+pushed in {:.1}s; K = {verified} pulled through pullgate \
         (each verified, then pulled by containerd) in {:.1}s ({:.1} ms/pull)",
        pushed.len(),
        push_time.as_secs_f64(),
        pull_time.as_secs_f64(),
        ms(pull_time) / verified.max(1) as f64
    );
    println!(
        "pullgate RSS: {:.1} MiB before, {:.1} MiB after K = {verified} verified digests (target <= 40 MiB)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    gate.stop();
}
