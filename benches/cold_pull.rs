//! Cold `PullImage` under real round trips (issue 13 item 2): every registry is
//! reached through the test kit's latency relay (10 ms each way, 20 ms RTT), and a
//! small signed image is pulled directly from containerd and through a fresh
//! release pullgate. Two registries: the harness's docker-registry (no referrers
//! API, so the tag schema) and the test kit's in-process registry (referrers API).
//!
//! containerd and pullgate each get their own relay to the same registry, so what
//! each asks of the registry is counted apart: the image name carries containerd's
//! relay (containerd's certs.d gets a plain-http hosts.toml for it), and pullgate's
//! own hosts.toml sends that name to pullgate's relay.
//!
//! Per case it prints the cold pull (fresh pullgate, first contact with the
//! registry) and the warm one (same pullgate, second repository, connections warm):
//! wall direct vs through pullgate, the added wall in ms and in RTTs against the
//! issue's target (3 RTT + 5 ms with the referrers API, 4 RTT + 5 ms with the tag
//! schema), and the requests and connections pullgate made. Run by
//! `integration/bench-cold-pull`:
//!
//!   PULLGATE_BENCH_CONTAINERD=… PULLGATE_BENCH_PULLGATE_BIN=… PULLGATE_BENCH_DIR=… \
//!   PULLGATE_BENCH_REGISTRY=… PULLGATE_BENCH_CERTS_D=… PULLGATE_BENCH_PKI=… \
//!   [PULLGATE_BENCH_REPS=7] [PULLGATE_BENCH_ONE_WAY_MS=10] cargo bench --bench cold_pull
//!
//! Without those variables it says so and exits 0 (so `cargo bench` alone works).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pullgate::cri::client::CriClient;
use pullgate::cri::v1;
use serde_json::json;

use pullgate_testkit::envelope_builder::{Format, Target};
use pullgate_testkit::latency::LatencyRelay;
use pullgate_testkit::registry::TestRegistry;
use pullgate_testkit::signed_layout::{Blob, EMPTY, INDEX, MANIFEST, NOTARY};
use pullgate_testkit::signer;

/// The first repository a fresh pullgate sees (cold) and the second (warm).
const COLD_REPO: &str = "rtt/cold";
const WARM_REPO: &str = "rtt/warm";

// ---------------------------------------------------------------- pushing

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

    /// Returns the Location header.
    fn request(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> String {
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
        assert!(
            status < 300,
            "{method} {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&discard)
        );
        location
    }
}

/// Where images are pushed: the harness registry over HTTP, or the test kit's
/// registry in process.
enum Sink<'a> {
    Http(Http),
    Kit(&'a TestRegistry),
}

impl Sink<'_> {
    fn blob(&mut self, repo: &str, blob: &Blob) {
        match self {
            Sink::Kit(registry) => {
                registry.push_blob(&blob.bytes);
            }
            Sink::Http(http) => {
                let location = http.request(
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
                http.request(
                    "PUT",
                    &format!("{path}{sep}digest={}", blob.digest),
                    "application/octet-stream",
                    &blob.bytes,
                );
            }
        }
    }

    fn manifest(&mut self, repo: &str, reference: &str, blob: &Blob) {
        match self {
            Sink::Kit(registry) => {
                let descriptor = registry.push_manifest(repo, &blob.media_type, &blob.bytes);
                if reference != blob.digest.to_string() {
                    registry.tag(repo, reference, &descriptor.digest);
                }
            }
            Sink::Http(http) => {
                http.request(
                    "PUT",
                    &format!("/v2/{repo}/manifests/{reference}"),
                    &blob.media_type,
                    &blob.bytes,
                );
            }
        }
    }
}

/// Pushes image `n` (distinct config and layer → distinct content everywhere, so
/// containerd fetches every blob of every pull) to `repo` under `tag`, signs it,
/// and pushes the signature, plus its `sha256-<hex>` index when `tag_index`.
fn push_signed(
    sink: &mut Sink<'_>,
    signer: &signer::Signer,
    repo: &str,
    n: usize,
    tag_index: bool,
) -> (String, Blob) {
    let tag = format!("n{n}");
    // A tar archive ends with two zero blocks; what comes before them is ignored
    // by nobody, so the distinct layer is an empty archive with a distinct tail.
    let mut tar = vec![0; 1024];
    tar.extend_from_slice(format!("{n:0512}").as_bytes());
    let layer = Blob::new("application/vnd.oci.image.layer.v1.tar", tar);
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
    sink.blob(repo, &layer);
    sink.blob(repo, &config);
    sink.manifest(repo, &tag, &manifest);
    let target = Target {
        media_type: MANIFEST.into(),
        digest: manifest.digest.to_string(),
        size: manifest.size(),
        annotations: Vec::new(),
        artifact_type: None,
    };
    let envelope = Blob::new(
        Format::Cose.media_type(),
        signer.envelope(target, Format::Cose).expect("sign"),
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
    sink.blob(repo, &empty);
    sink.blob(repo, &envelope);
    sink.manifest(repo, &signature.digest.to_string(), &signature);
    if tag_index {
        let mut entry = signature.descriptor();
        entry["artifactType"] = NOTARY.into();
        let index = Blob::new(
            INDEX,
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}),
            )
            .expect("json"),
        );
        sink.manifest(repo, &manifest.digest.referrers_tag(), &index);
    }
    (tag, manifest)
}

// ---------------------------------------------------------------- pulling

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
        for _ in 0..500 {
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------- one case

/// What the bench needs from its environment.
struct Env {
    containerd: PathBuf,
    bin: PathBuf,
    dir: PathBuf,
    certs_d: PathBuf,
    signer: signer::Signer,
    reps: usize,
    one_way: Duration,
}

/// One registry behind the relays.
struct Case<'a> {
    name: &'static str,
    /// Target in RTTs (the issue's: 3 with the referrers API, 4 with the tag schema).
    target_rtts: u32,
    registry: SocketAddr,
    sink: Sink<'a>,
    tag_index: bool,
}

/// Samples of one kind of pull (cold or warm), per repetition.
#[derive(Default)]
struct Samples {
    direct_ms: Vec<f64>,
    gate_ms: Vec<f64>,
    gate_requests: Vec<f64>,
    gate_connections: Vec<f64>,
    direct_requests: Vec<f64>,
    /// From the start of a pull through pullgate until pullgate got its last
    /// registry byte: its own round trips (and its little local work before them).
    gate_registry_ms: Vec<f64>,
    /// containerd's requests when pulling pinned, after pullgate's verification.
    pinned_requests: Vec<f64>,
}

/// Files for one case: containerd's hosts.toml for containerd's relay, pullgate's
/// hosts dir sending the same name to pullgate's relay, pullgate's config. Returns
/// (containerd's hosts dir for the name, pullgate's config, pullgate's socket).
fn write_configs(env: &Env, case: &str, name: &str, gates: &str) -> (PathBuf, PathBuf, PathBuf) {
    // containerd: plain http to its relay (read on every pull).
    let hosts = env.certs_d.join(name);
    std::fs::create_dir_all(&hosts).expect("mkdir certs.d");
    std::fs::write(
        hosts.join("hosts.toml"),
        format!(
            "server = \"http://{name}\"\n\n[host.\"http://{name}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .expect("containerd hosts.toml");
    // pullgate: the same name, reached through its own relay.
    let gate_hosts = env.dir.join(format!("hosts-{}", case.replace(' ', "-")));
    std::fs::create_dir_all(gate_hosts.join(name)).expect("mkdir hosts");
    std::fs::write(
        gate_hosts.join(name).join("hosts.toml"),
        format!("server = \"http://{gates}\"\n"),
    )
    .expect("pullgate hosts.toml");
    let socket = env.dir.join("cold.sock");
    let config = env.dir.join("cold.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nsocket = {:?}\n[upstream]\ncontainerd_socket = {:?}\n\
             [log]\nlevel = \"warn\"\n[policy]\ndir = {:?}\n\
             [registry]\nhosts_dir = {:?}\ninsecure = [{name:?}]\n",
            socket.display().to_string(),
            env.containerd.display().to_string(),
            env.dir.join("notation").display().to_string(),
            gate_hosts.display().to_string(),
        ),
    )
    .expect("pullgate config");
    (hosts, config, socket)
}

async fn run_case(env: &Env, case: &mut Case<'_>, counter: &mut usize) {
    let pulls = LatencyRelay::start(case.registry, env.one_way).await;
    let gates = LatencyRelay::start(case.registry, env.one_way).await;
    let name = pulls.host();
    let (hosts, config, socket) = write_configs(env, case.name, &name, &gates.host());
    let log = env.dir.join("cold-pullgate.log");
    let direct = CriClient::connect(&env.containerd).expect("containerd client");

    let mut image = |repo: &str, counter: &mut usize| {
        *counter += 1;
        let (tag, _) = push_signed(&mut case.sink, &env.signer, repo, *counter, case.tag_index);
        format!("{name}/{repo}:{tag}")
    };
    let (mut cold, mut warm) = (Samples::default(), Samples::default());
    let mut first_lines = Vec::new();
    for rep in 0..env.reps {
        // Direct: the first and the second repository, each a never-pulled image.
        for (repo, samples) in [(COLD_REPO, &mut cold), (WARM_REPO, &mut warm)] {
            let img = image(repo, counter);
            let before = pulls.requests();
            samples.direct_ms.push(ms(pull(&direct, &img).await));
            samples
                .direct_requests
                .push((pulls.requests() - before) as f64);
        }
        // Through a fresh pullgate: its first contact with the registry, then a
        // second repository with what it learnt and its connections still open.
        let gate = Pullgate::start(&env.bin, &config, &socket, &log).await;
        let client = gate.client();
        for (repo, samples) in [(COLD_REPO, &mut cold), (WARM_REPO, &mut warm)] {
            let img = image(repo, counter);
            let (requests, connections) = (gates.requests(), gates.connections());
            let pinned = pulls.requests();
            let start = pullgate_testkit::time::instant();
            samples.gate_ms.push(ms(pull(&client, &img).await));
            if let Some(last) = gates.last_delivery() {
                samples
                    .gate_registry_ms
                    .push(ms(last.saturating_duration_since(start)));
            }
            samples
                .pinned_requests
                .push((pulls.requests() - pinned) as f64);
            samples
                .gate_requests
                .push((gates.requests() - requests) as f64);
            samples
                .gate_connections
                .push((gates.connections() - connections) as f64);
            if rep == 0 {
                let arrivals = gates.arrivals();
                let lines = gates.request_lines()[requests..]
                    .iter()
                    .zip(&arrivals[requests..])
                    .map(|(line, at)| {
                        let after = ms(at.saturating_duration_since(start));
                        format!("+{after:6.1} ms  {line}")
                    })
                    .collect();
                first_lines.push(lines);
            }
        }
        gate.stop();
    }
    report(env, case, [cold, warm], &first_lines);
    let _ = std::fs::remove_dir_all(&hosts);
}

fn report(env: &Env, case: &Case<'_>, samples: [Samples; 2], first_lines: &[Vec<String>]) {
    let rtt = ms(2 * env.one_way);
    let target = rtt * f64::from(case.target_rtts) + 5.0;
    println!();
    println!(
        "{}: {} reps, RTT {rtt:.0} ms; target added <= {} RTT + 5 ms = {target:.0} ms",
        case.name, env.reps, case.target_rtts,
    );
    println!(
        "  pull   direct p50 ms   pullgate p50 ms   added ms   added RTT   target   \
         pullgate requests/conns   containerd requests direct/pinned"
    );
    let phases: Vec<Vec<f64>> = samples.iter().map(|s| s.gate_registry_ms.clone()).collect();
    for (kind, samples) in ["cold", "warm"].into_iter().zip(samples) {
        let direct_ms = median(samples.direct_ms);
        let gate_ms = median(samples.gate_ms);
        let added = gate_ms - direct_ms;
        println!(
            "  {kind:<5} {direct_ms:14.1} {gate_ms:17.1} {added:10.1} {:11.2}   {:<8} {:>10.1} / {:.1} {:>20.1} / {:.1}",
            added / rtt,
            if added <= target { "met" } else { "MISSED" },
            median(samples.gate_requests),
            median(samples.gate_connections),
            median(samples.direct_requests),
            median(samples.pinned_requests),
        );
    }
    println!("  pullgate's own registry phase (pull start → its last registry byte), p50:");
    for (kind, samples) in ["cold", "warm"].into_iter().zip(&phases) {
        let phase = median(samples.clone());
        // The added wall moves with containerd's own time between runs; the phase
        // is pullgate's alone and a floor under what it adds.
        println!(
            "  {kind:<5} {phase:8.1} ms = {:.2} RTT   {}",
            phase / rtt,
            if phase <= target { "met" } else { "MISSED" }
        );
    }
    for (kind, lines) in ["cold", "warm"].iter().zip(first_lines) {
        println!("  pullgate's requests on its first {kind} pull (sent, after the pull's start):");
        for line in lines {
            println!("    {line}");
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(containerd), Some(bin), Some(dir), Some(registry), Some(certs_d), Some(pki)) = (
        var("PULLGATE_BENCH_CONTAINERD"),
        var("PULLGATE_BENCH_PULLGATE_BIN"),
        var("PULLGATE_BENCH_DIR"),
        var("PULLGATE_BENCH_REGISTRY"),
        var("PULLGATE_BENCH_CERTS_D"),
        var("PULLGATE_BENCH_PKI"),
    ) else {
        println!(
            "cold_pull bench: run integration/bench-cold-pull (needs containerd, a registry and pullgate)"
        );
        return;
    };
    let number = |name: &str, default: u64| {
        var(name)
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
            .unwrap_or(default)
    };
    let pki = PathBuf::from(pki);
    let env = Env {
        containerd: PathBuf::from(containerd),
        bin: PathBuf::from(bin),
        dir: PathBuf::from(dir),
        certs_d: PathBuf::from(certs_d),
        signer: signer::Signer::load(&pki.join("leaf.key"), &pki.join("chain.pem"))
            .expect("signing key"),
        reps: number("PULLGATE_BENCH_REPS", 7) as usize,
        one_way: Duration::from_millis(number("PULLGATE_BENCH_ONE_WAY_MS", 10)),
    };
    // Trust policy: every scope, this PKI.
    let policy = env.dir.join("notation");
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
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:bench"],
            "trustedIdentities": ["*"],
        }]}))
        .expect("json"),
    )
    .expect("write policy");

    println!(
        "cold_pull bench: PullImage of a small signed image (1 layer), direct vs through \
         pullgate, every registry behind a relay adding {} ms each way",
        env.one_way.as_millis()
    );
    // Image numbers never used before (the harness registry keeps what it was sent).
    let seed = pullgate_testkit::time::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut counter = number("PULLGATE_BENCH_SEED", seed) as usize * 100;
    let kit = TestRegistry::start().await;
    let harness: SocketAddr = registry.parse().expect("registry host:port");
    let cases = [
        Case {
            name: "tag schema (docker-registry)",
            target_rtts: 4,
            registry: harness,
            sink: Sink::Http(Http::connect(&registry)),
            tag_index: true,
        },
        Case {
            name: "referrers API (test kit registry)",
            target_rtts: 3,
            registry: kit.addr,
            sink: Sink::Kit(&kit),
            tag_index: false,
        },
    ];
    for mut case in cases {
        run_case(&env, &mut case, &mut counter).await;
    }
}
