//! Pass-through overhead: the same CRI calls directly to containerd and through
//! pullgate, in one run, with ratios. Run by `integration/bench-passthrough`, which
//! starts containerd and a release pullgate and passes their sockets and pid:
//!
//!   PULLGATE_BENCH_CONTAINERD=… PULLGATE_BENCH_PULLGATE=… PULLGATE_BENCH_PID=… \
//!   PULLGATE_BENCH_IMAGE=… cargo bench --bench passthrough
//!
//! Without those variables it says so and exits 0 (so `cargo bench` alone works).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pullgate::cri::client::CriClient;
use pullgate::cri::v1;

const SEQUENTIAL_CALLS: usize = 20_000;
const CONCURRENT_CALLERS: usize = 64;
const CONCURRENT_CALLS_PER_CALLER: usize = 300;

struct Target {
    name: &'static str,
    client: CriClient,
}

async fn call(client: &CriClient, which: usize, image: &str) {
    let result = match which % 3 {
        0 => client
            .runtime
            .clone()
            .version(v1::VersionRequest::default())
            .await
            .map(drop),
        1 => client
            .image
            .clone()
            .image_status(v1::ImageStatusRequest {
                image: Some(v1::ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await
            .map(drop),
        _ => client
            .runtime
            .clone()
            .list_containers(v1::ListContainersRequest::default())
            .await
            .map(drop),
    };
    if let Err(status) = result {
        panic!("bench call failed: {status:?}");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

struct Sequential {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let (Ok(containerd), Ok(pullgate), Ok(pid), Ok(image)) = (
        std::env::var("PULLGATE_BENCH_CONTAINERD"),
        std::env::var("PULLGATE_BENCH_PULLGATE"),
        std::env::var("PULLGATE_BENCH_PID"),
        std::env::var("PULLGATE_BENCH_IMAGE"),
    ) else {
        println!(
            "passthrough bench: run integration/bench-passthrough (needs containerd and pullgate)"
        );
        return;
    };
    let pid: u32 = pid.parse().expect("PULLGATE_BENCH_PID is a pid");
    let targets = [
        Target {
            name: "direct",
            client: CriClient::connect(&PathBuf::from(containerd)).expect("client"),
        },
        Target {
            name: "pullgate",
            client: CriClient::connect(&PathBuf::from(pullgate)).expect("client"),
        },
    ];
    // Warm both connections up.
    for target in &targets {
        for i in 0..300 {
            call(&target.client, i, &image).await;
        }
    }
    let idle_rss = rss_kib(pid);
    let containerd_pid: Option<u32> = std::env::var("PULLGATE_BENCH_CONTAINERD_PID")
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let pullgate_cpu_before = cpu_time(pid);
    let containerd_cpu_before = containerd_pid.map(cpu_time);

    // Sequential: calls alternate between the two targets so drift in the machine's
    // load affects both equally.
    let mut latencies = [Vec::new(), Vec::new()];
    let mut busy = [Duration::ZERO, Duration::ZERO];
    for i in 0..SEQUENTIAL_CALLS {
        for (t, target) in targets.iter().enumerate() {
            let started = pullgate_testkit::time::instant();
            call(&target.client, i, &image).await;
            let elapsed = started.elapsed();
            latencies[t].push(elapsed);
            busy[t] += elapsed;
        }
    }
    let pullgate_cpu = cpu_time(pid).saturating_sub(pullgate_cpu_before);
    let containerd_cpu = containerd_pid
        .zip(containerd_cpu_before)
        .map(|(p, before)| cpu_time(p).saturating_sub(before));
    let sequential: Vec<Sequential> = latencies
        .iter_mut()
        .zip(busy)
        .map(|(l, busy)| {
            l.sort();
            Sequential {
                p50: percentile(l, 0.50),
                p99: percentile(l, 0.99),
                per_second: l.len() as f64 / busy.as_secs_f64(),
            }
        })
        .collect();

    // Concurrent: 64 callers on one shared connection each, as the kubelet does.
    let peak_rss = Arc::new(AtomicU64::new(idle_rss));
    let mut concurrent = Vec::new();
    for target in &targets {
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let sampling = Arc::clone(&sampling);
            let peak = Arc::clone(&peak_rss);
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let started = pullgate_testkit::time::instant();
        let mut tasks = Vec::new();
        for caller in 0..CONCURRENT_CALLERS {
            let client = target.client.clone();
            let image = image.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(CONCURRENT_CALLS_PER_CALLER);
                for i in 0..CONCURRENT_CALLS_PER_CALLER {
                    let t = pullgate_testkit::time::instant();
                    call(&client, caller + i, &image).await;
                    latencies.push(t.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("caller"));
        }
        let wall = started.elapsed();
        sampling.store(false, Ordering::Relaxed);
        sampler.await.expect("sampler");
        all.sort();
        concurrent.push((
            target.name,
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all.len() as f64 / wall.as_secs_f64(),
        ));
    }

    println!("== pass-through benchmark ({SEQUENTIAL_CALLS} sequential calls per target, Version/ImageStatus/ListContainers) ==");
    for (target, s) in targets.iter().zip(&sequential) {
        println!(
            "sequential {:<9} p50 {:>8.1} us   p99 {:>8.1} us   {:>8.0} calls/s",
            target.name,
            s.p50.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6,
            s.per_second
        );
    }
    let added_p50 = sequential[1].p50.as_secs_f64() - sequential[0].p50.as_secs_f64();
    println!(
        "sequential added p50 latency: {:.1} us (target <= 50 us); throughput ratio pullgate/direct: {:.3} (target >= 0.9)",
        added_p50 * 1e6,
        sequential[1].per_second / sequential[0].per_second
    );
    // CPU per call: pullgate served SEQUENTIAL_CALLS calls; containerd served twice
    // as many (direct and forwarded).
    println!(
        "CPU per call: pullgate {:.1} us{}",
        pullgate_cpu.as_secs_f64() * 1e6 / SEQUENTIAL_CALLS as f64,
        containerd_cpu
            .map(|c| format!(
                ", containerd {:.1} us",
                c.as_secs_f64() * 1e6 / (2 * SEQUENTIAL_CALLS) as f64
            ))
            .unwrap_or_default()
    );
    println!("== {CONCURRENT_CALLERS} concurrent callers x {CONCURRENT_CALLS_PER_CALLER} calls ==");
    for (name, p50, p99, rate) in &concurrent {
        println!(
            "concurrent {:<9} p50 {:>8.1} us   p99 {:>8.1} us   {:>8.0} calls/s",
            name,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            rate
        );
    }
    println!(
        "concurrent throughput ratio pullgate/direct: {:.3} (target >= 0.9); p50 ratio {:.3}",
        concurrent[1].3 / concurrent[0].3,
        concurrent[1].1.as_secs_f64() / concurrent[0].1.as_secs_f64()
    );
    println!(
        "pullgate RSS: idle {:.1} MiB (target <= 20), peak under load {:.1} MiB (target <= 40)",
        idle_rss as f64 / 1024.0,
        peak_rss.load(Ordering::Relaxed) as f64 / 1024.0
    );
}
