//! Revocation checking cost (issue 11 "Performance").
//!
//! Fixtures as in tests/revocation.rs, made with the openssl CLI in a tempdir at
//! start: root (RSA-2048, `openssl ca` database) → intermediate (CRL distribution
//! point on the root's CRL) → leaf (AIA OCSP on the intermediate's `openssl ocsp`
//! responder, and a CRL distribution point), endpoints on 127.0.0.1. One COSE
//! envelope signed by the leaf, verified under a strict policy. Groups:
//!
//! * `verify/cose/warm`: [`Verifier::verify_one_with`] a [`Checker`] whose caches
//!   are warm: it has fetched the leaf's OCSP answer and the root's CRL once, and
//!   the OCSP responder and CRL server are then stopped, so a verification that
//!   would fetch anything fails instead of being timed;
//! * `verify/cose/skip`: the same signature and checker under `"override":
//!   {"revocation": "skip"}`;
//! * `warm-parts/*`: what the warm revocation step is made of: the whole
//!   `RevocationCheck::check` of the chain, the CRL signature re-validation done on
//!   every use of a cached CRL (`Crl::validate`), one chain link's signature check
//!   for comparison, the OCSP request encoding (the cache key), the
//!   `Handle::block_on` hop of a ready future, and the certificate extension reads;
//! * `crl-20k/*`: a 20,000-entry CRL (`openssl ca -gencrl` over 20,000 revoked
//!   serials, each with a reasonCode, as public CAs' CRLs have): `Crl::from_der`
//!   (parse + index), `Crl::entry` lookups (hits and misses) and `Crl::validate`
//!   (one signature check over the 723 KiB).
//!
//! After criterion, a plain loop measures the same closures once more on thread CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`, robust to a busy machine: the checker's future
//! runs on the calling thread, `block_on` from outside the runtime, and never waits
//! on I/O once warm), warm and skip in alternating rounds (and again on the wall
//! clock), and prints the figures against the targets (warm ≤ 1.1 × skip; 20k CRL
//! parse < 20 ms; lookup < 1 µs), with the breakdown of what the warm cache adds and,
//! for the CRL parse, the same serials in a v1 CRL without entry extensions and
//! x509-cert's own decoder for reference. Run by `integration/bench-revocation`;
//! `cargo bench --bench revocation` works alone.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::Criterion;

use pullgate::pki::revocation::{ocsp_request_der, Crl};
use pullgate::pki::{self as core, Certificate};
use pullgate::policy::{StoreType, TrustPolicyDocument, TrustStore};
use pullgate::reference::{Digest, DigestAlgorithm};
use pullgate::revocation::{
    ChainQuery, Checker, Method, Purpose, RevocationCheck, RevocationSettings,
};
use pullgate::verify::engine::{SignatureReport, Verifier};
use pullgate::verify::oci::Descriptor;
use pullgate::verify::{Budgets, SignatureBlob};
use pullgate_testkit::envelope_builder::{EnvelopeSpec, Format, Target};
use pullgate_testkit::pki::{CertSpec, Issued, Pki};
use pullgate_testkit::responders::{free_port, CrlServer, OcspResponder};
use pullgate_testkit::revocation::{Ca, CrlSpec, Revocation};

const REPOSITORY: &str = "registry.example.com/net-monitor";
const CRL_ENTRIES: u32 = 20_000;
/// 2024-01-01T00:00:00Z, the revocation date of the bulk CRL's entries.
const REVOKED_AT_SECS: u64 = 1_704_067_200;

/// The chain, live endpoints (until [`Fixture::stop_endpoints`]), a checker and
/// one COSE signature with the policies it is verified under.
struct Fixture {
    pki: Pki,
    root: Ca,
    intermediate: Ca,
    leaf: Issued,
    ocsp: Option<OcspResponder>,
    crls: Option<CrlServer>,
    ocsp_url: String,
    root_crl_url: String,
    /// The root's CRL as served, for the parts' `Crl::validate`.
    root_crl_der: Vec<u8>,
    checker: Checker,
    _cache_dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    strict: TrustPolicyDocument,
    skip: TrustPolicyDocument,
    stores: Vec<TrustStore>,
    budgets: Budgets,
    now: SystemTime,
    target: Descriptor,
    blob: SignatureBlob,
    /// Leaf first, as the engine hands it to the checker.
    chain: Vec<Certificate>,
}

fn policy(verification: serde_json::Value) -> TrustPolicyDocument {
    let json = serde_json::json!({"version": "1.0", "trustPolicies": [{
        "name": "net-monitor",
        "registryScopes": [REPOSITORY],
        "signatureVerification": verification,
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["*"],
    }]})
    .to_string();
    TrustPolicyDocument::parse(json.as_bytes()).expect("bench policy is valid")
}

impl Fixture {
    fn new() -> Fixture {
        let pki = Pki::new();
        let ocsp_port = free_port();
        let crl_port = free_port();
        let crl_url = |name: &str| format!("http://127.0.0.1:{crl_port}/{name}");
        let ocsp_url = format!("http://127.0.0.1:{ocsp_port}/");
        let root_cert = pki.self_signed(&CertSpec::ca("/C=US/O=Notary/CN=Revocation Root"));
        let mut root = Ca::new(&pki, root_cert);
        let intermediate_cert = root.issue(
            &pki,
            &CertSpec::ca("/C=US/O=Notary/CN=Revocation CA")
                .slot(1)
                .extra(&format!(
                    "crlDistributionPoints = URI:{}",
                    crl_url("root.crl")
                )),
        );
        let mut intermediate = Ca::new(&pki, intermediate_cert);
        let leaf = intermediate.issue(
            &pki,
            &CertSpec::leaf("/C=US/ST=WA/L=Seattle/O=Notary/CN=Revocation Leaf")
                .extra(&format!("authorityInfoAccess = OCSP;URI:{ocsp_url}"))
                .extra(&format!(
                    "crlDistributionPoints = URI:{}",
                    crl_url("ca.crl")
                )),
        );

        // Endpoints: both CAs' CRLs over HTTP, the intermediate's OCSP responder.
        let served = pki.dir().join("served-crls");
        let crls = CrlServer::start(crl_port, &served);
        let root_crl_der = root.crl(&CrlSpec::default()).der;
        std::fs::write(served.join("root.crl"), &root_crl_der).expect("write root CRL");
        std::fs::write(
            served.join("ca.crl"),
            intermediate.crl(&CrlSpec::default()).der,
        )
        .expect("write CA CRL");
        let index = intermediate.database();
        let ca = &intermediate.cert;
        let ocsp = OcspResponder::start(
            ocsp_port,
            &index,
            &ca.cert_path,
            &ca.cert_path,
            &ca.key_path,
        );

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let cache_dir = tempfile::tempdir().expect("cache dir");
        let checker = Checker::new(
            RevocationSettings {
                cache_dir: Some(cache_dir.path().to_owned()),
                ..RevocationSettings::default()
            },
            runtime.handle().clone(),
        );

        let spec = EnvelopeSpec {
            alg: leaf.key.algorithm().to_string(),
            certificate_chain: vec![
                leaf.der.clone(),
                intermediate.cert.der.clone(),
                root.cert.der.clone(),
            ],
            signing_time: Some(
                pullgate_testkit::time::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs() as i64,
            ),
            ..EnvelopeSpec::default()
        };
        let envelope = spec.build(Format::Cose, &|tbs| {
            pki.sign(&leaf.key_path, leaf.key.algorithm(), tbs)
        });
        let blob = SignatureBlob {
            manifest: Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: Digest::of(DigestAlgorithm::Sha256, &envelope),
                size: envelope.len() as u64,
                annotations: Default::default(),
                artifact_type: Some("application/vnd.cncf.notary.signature".into()),
            },
            media_type: Format::Cose.media_type().into(),
            envelope,
        };
        let target = Target::default();
        let target = Descriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.parse().expect("fixture digest"),
            size: target.size,
            annotations: Default::default(),
            artifact_type: None,
        };
        let stores = vec![TrustStore::from_files(
            StoreType::Ca,
            "acme",
            vec![("root.pem".into(), root.cert.pem.as_bytes().to_vec())],
        )
        .expect("ca store")];
        let chain = vec![leaf.cert(), intermediate.cert.cert(), root.cert.cert()];

        Fixture {
            pki,
            root,
            intermediate,
            leaf,
            ocsp: Some(ocsp),
            crls: Some(crls),
            ocsp_url,
            root_crl_url: crl_url("root.crl"),
            root_crl_der,
            checker,
            _cache_dir: cache_dir,
            runtime,
            strict: policy(serde_json::json!({"level": "strict"})),
            skip: policy(
                serde_json::json!({"level": "strict", "override": {"revocation": "skip"}}),
            ),
            stores,
            budgets: Budgets::default(),
            // A second past every CRL and OCSP answer made so far: openssl stamps
            // whole seconds, and a thisUpdate after the verification time is refused.
            now: pullgate_testkit::time::now() + Duration::from_secs(1),
            target,
            blob,
            chain,
        }
    }

    fn verifier<'a>(&'a self, document: &'a TrustPolicyDocument) -> Verifier<'a> {
        Verifier {
            statement: &document.statements[0],
            stores: &self.stores,
            now: self.now,
            budgets: &self.budgets,
        }
    }

    /// After a first verification has filled the checker's caches: no endpoint
    /// answers any more, so a fetch would fail the verification.
    fn stop_endpoints(&mut self) {
        self.ocsp = None;
        self.crls = None;
    }

    /// A revocation-checked verification; panics unless it passed with the leaf
    /// decided by OCSP and the intermediate by the root's CRL.
    fn warm(&self, verifier: &Verifier<'_>) {
        let report = verifier.verify_one_with(&self.target, &self.blob, Some(&self.checker));
        let decided = report.revocation.as_ref().map(|check| {
            check
                .certificates
                .iter()
                .map(|c| {
                    (
                        c.method,
                        c.source.as_deref() == Some(self.url_for(c.method)),
                    )
                })
                .collect::<Vec<_>>()
        });
        assert!(
            report.failed_check().is_none()
                && decided == Some(vec![(Method::Ocsp, true), (Method::Crl, true)]),
            "warm verification failed: {:?}\n{report:#?}",
            report.failed_check()
        );
        black_box(report);
    }

    fn url_for(&self, method: Method) -> &str {
        match method {
            Method::Ocsp => &self.ocsp_url,
            _ => &self.root_crl_url,
        }
    }

    /// The same verification with revocation skipped by the policy.
    fn skip(&self, verifier: &Verifier<'_>) {
        let report: SignatureReport =
            verifier.verify_one_with(&self.target, &self.blob, Some(&self.checker));
        assert!(
            report.failed_check().is_none() && report.revocation.is_none(),
            "skip verification failed: {:?}",
            report.failed_check()
        );
        black_box(report);
    }

    /// The revocation step alone, as the engine calls it.
    fn check(&self) {
        let check = self.checker.check(ChainQuery {
            chain: black_box(&self.chain),
            purpose: Purpose::Signing,
            signing_time: None,
            now: self.now,
        });
        assert!(check.failure().is_none(), "{}", check.summary());
        black_box(check);
    }
}

/// A CRL of [`CRL_ENTRIES`] revoked three-byte serials from `issuer` (as
/// tests/revocation_judging.rs makes it), with the serials. `reasons`: a v2 CRL
/// (CRLNumber, AKI) whose every entry has a reasonCode, as public CAs' CRLs do;
/// else a v1 CRL without any extension (the judging test's).
fn big_crl(pki: &Pki, issuer: &Issued, reasons: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut ca = Ca::new(pki, issuer.clone());
    // Top bit set: DER pads each with a leading zero, as real serials often are.
    let serials: Vec<Vec<u8>> = (1..=CRL_ENTRIES)
        .map(|i| (0x80_0000 + i).to_be_bytes()[1..].to_vec())
        .collect();
    for serial in &serials {
        ca.revoke_serial(
            serial,
            UNIX_EPOCH + Duration::from_secs(REVOKED_AT_SECS),
            if reasons {
                Revocation::Reason("keyCompromise")
            } else {
                Revocation::NoReason
            },
        );
    }
    let spec = if reasons {
        CrlSpec::default()
    } else {
        CrlSpec {
            number: None,
            extensions: Vec::new(),
            ..CrlSpec::default()
        }
    };
    (ca.crl(&spec).der, serials)
}

/// CPU time this thread has run: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, exact to
/// the nanosecond, so that another process sharing the cores does not count. (Not
/// `/proc/thread-self/schedstat`: its sum_exec_runtime is only brought up to date at
/// a scheduler tick, 4 ms here, which rounds a 1.5 ms round of calls to 0 or 4 ms.)
/// Wall time where the clock is unavailable.
fn thread_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    /// Linux's CLOCK_THREAD_CPUTIME_ID.
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec (64-bit Linux layout) for the call.
    if cfg!(all(target_os = "linux", target_pointer_width = "64"))
        && unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0
    {
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    } else {
        START.get_or_init(pullgate_testkit::time::instant).elapsed()
    }
}

/// Wall time since the first call.
fn wall_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(pullgate_testkit::time::instant).elapsed()
}

/// Time per call of `n` calls of `f` on `clock`.
fn per_call_on(clock: fn() -> Duration, n: usize, f: &mut impl FnMut()) -> Duration {
    let start = clock();
    for _ in 0..n {
        f();
    }
    (clock() - start) / n as u32
}

/// Thread CPU time per call of `n` calls of `f`.
fn per_call(n: usize, f: &mut impl FnMut()) -> Duration {
    per_call_on(thread_time, n, f)
}

/// Median per-call thread CPU time of `f` over `rounds` rounds of `per_round` calls.
fn median(rounds: usize, per_round: usize, mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds).map(|_| per_call(per_round, &mut f)).collect();
    samples.sort();
    samples[rounds / 2]
}

/// Per-call times of `a` and `b` measured in alternating rounds of `per_round` calls
/// (so both see the same machine load), as medians over `rounds`, with the median of
/// the per-round ratios a/b, on `clock`.
fn paired(
    clock: fn() -> Duration,
    rounds: usize,
    per_round: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (Duration, Duration, f64) {
    let mut samples: Vec<(Duration, Duration)> = (0..rounds)
        .map(|_| {
            (
                per_call_on(clock, per_round, &mut a),
                per_call_on(clock, per_round, &mut b),
            )
        })
        .collect();
    let mut ratios: Vec<f64> = samples
        .iter()
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    samples.sort_by_key(|(a, _)| *a);
    let a_median = samples[rounds / 2].0;
    samples.sort_by_key(|(_, b)| *b);
    (a_median, samples[rounds / 2].1, ratios[rounds / 2])
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn main() {
    let setup = pullgate_testkit::time::instant();
    let mut fx = Fixture::new();
    let leaf = fx.leaf.cert();
    let intermediate = fx.intermediate.cert.cert();
    let root = fx.root.cert.cert();
    let root_crl = Crl::from_der(&fx.root_crl_der).expect("root CRL parses");
    let (big_der, serials) = big_crl(&fx.pki, &fx.intermediate.cert, true);
    let (plain_der, _) = big_crl(&fx.pki, &fx.intermediate.cert, false);
    assert_eq!(
        Crl::from_der(&plain_der).expect("v1 CRL parses").len(),
        CRL_ENTRIES as usize
    );
    let big = Crl::from_der(&big_der).expect("20,000-entry CRL parses");
    // Made after the fixture: validated as of now plus a second (see Fixture::now).
    let big_now = pullgate_testkit::time::now() + Duration::from_secs(1);
    big.validate(&intermediate, big_now)
        .expect("20,000-entry CRL validates");
    assert_eq!(big.len(), CRL_ENTRIES as usize);
    // Misses: serials the CRL does not list, same length.
    let misses: Vec<Vec<u8>> = (1..=1000u32)
        .map(|i| (0x40_0000 + i).to_be_bytes()[1..].to_vec())
        .collect();
    assert!(serials.iter().all(|s| big.entry(s).is_some()));
    assert!(misses.iter().all(|s| big.entry(s).is_none()));

    // Warm the checker once with the endpoints up, then stop them: everything
    // timed below is answered from the caches or fails.
    fx.warm(&fx.verifier(&fx.strict));
    fx.stop_endpoints();
    let fx = fx;
    let strict = fx.verifier(&fx.strict);
    let skip = fx.verifier(&fx.skip);
    fx.warm(&strict);
    fx.skip(&skip);
    fx.check();
    root_crl
        .validate(&root, fx.now)
        .expect("root CRL validates");
    eprintln!(
        "fixtures ready in {:.1} s (20,000-entry CRL: {} KiB DER)",
        setup.elapsed().as_secs_f64(),
        big_der.len() / 1024
    );

    let handle = fx.runtime.handle().clone();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    {
        let mut group = c.benchmark_group("verify");
        group.bench_function("cose/warm", |b| b.iter(|| fx.warm(&strict)));
        group.bench_function("cose/skip", |b| b.iter(|| fx.skip(&skip)));
        group.finish();
    }
    {
        let mut group = c.benchmark_group("warm-parts");
        group.bench_function("check", |b| b.iter(|| fx.check()));
        group.bench_function("crl-validate", |b| {
            b.iter(|| black_box(&root_crl).validate(&root, fx.now).expect("valid"))
        });
        group.bench_function("chain-link", |b| {
            b.iter(|| core::verify_signed_by(black_box(&intermediate), &root).expect("signed"))
        });
        group.bench_function("ocsp-request", |b| {
            b.iter(|| ocsp_request_der(black_box(&leaf), &intermediate).expect("request"))
        });
        group.bench_function("block-on-ready", |b| {
            b.iter(|| handle.block_on(async { black_box(1) }))
        });
        group.bench_function("extension-reads", |b| {
            b.iter(|| {
                for cert in &fx.chain[..2] {
                    black_box((cert.ocsp_urls(), cert.crl_urls(), cert.subject_string()));
                }
            })
        });
        group.finish();
    }
    {
        let mut group = c.benchmark_group("crl-20k");
        group.bench_function("from_der", |b| {
            b.iter(|| Crl::from_der(black_box(&big_der)).expect("parses"))
        });
        let mut i = 0usize;
        group.bench_function("entry-hit", |b| {
            b.iter(|| {
                i = (i + 7919) % serials.len();
                black_box(big.entry(black_box(&serials[i])))
            })
        });
        let mut j = 0usize;
        group.bench_function("entry-miss", |b| {
            b.iter(|| {
                j = (j + 1) % misses.len();
                black_box(big.entry(black_box(&misses[j])))
            })
        });
        group.bench_function("validate", |b| {
            b.iter(|| {
                black_box(&big)
                    .validate(&intermediate, big_now)
                    .expect("valid")
            })
        });
        group.finish();
    }
    c.final_summary();

    println!(
        "\n== revocation: warm cache vs skip (thread CPU time, median of 9 alternating rounds × 20 calls) =="
    );
    let (warm, skipped, ratio) = paired(thread_time, 9, 20, || fx.warm(&strict), || fx.skip(&skip));
    println!(
        "COSE warm-cache {:.0} us, skip {:.0} us, ratio {ratio:.2} (target ≤ 1.1): {}",
        us(warm),
        us(skipped),
        verdict(ratio <= 1.1)
    );
    let (warm_wall, skipped_wall, ratio_wall) =
        paired(wall_time, 9, 20, || fx.warm(&strict), || fx.skip(&skip));
    println!(
        "  (wall clock, same rounds: warm-cache {:.0} us, skip {:.0} us, ratio {ratio_wall:.2})",
        us(warm_wall),
        us(skipped_wall)
    );
    let check = median(9, 20, || fx.check());
    let crl_validate = median(9, 20, || {
        black_box(&root_crl).validate(&root, fx.now).expect("valid")
    });
    let link = median(9, 20, || {
        core::verify_signed_by(black_box(&intermediate), &root).expect("signed")
    });
    let request = median(9, 200, || {
        black_box(ocsp_request_der(black_box(&leaf), &intermediate).expect("request"));
    });
    let hop = median(9, 2000, || {
        black_box(handle.block_on(async { black_box(1) }));
    });
    let reads = median(9, 200, || {
        for cert in &fx.chain[..2] {
            black_box((cert.ocsp_urls(), cert.crl_urls(), cert.subject_string()));
        }
    });
    let ocsp_urls = median(9, 200, || {
        for cert in &fx.chain[..2] {
            black_box(cert.ocsp_urls());
        }
    });
    let crl_urls = median(9, 200, || {
        for cert in &fx.chain[..2] {
            black_box(cert.crl_urls());
        }
    });
    let subjects = median(9, 200, || {
        for cert in &fx.chain[..2] {
            black_box(cert.subject_string());
        }
    });
    let added = warm.saturating_sub(skipped);
    let share = |d: Duration| 100.0 * d.as_secs_f64() / added.as_secs_f64().max(1e-12);
    println!(
        "warm revocation adds {:.1} us; RevocationCheck::check alone {:.1} us, of which:",
        us(added),
        us(check)
    );
    println!(
        "  cached root CRL re-validated (Crl::validate, one RSA-2048 signature) {:.1} us ({:.0}% of the added time; a chain link's signature: {:.1} us)",
        us(crl_validate),
        share(crl_validate),
        us(link)
    );
    println!(
        "  OCSP request encoding (cache key, SHA-1 CertID) {:.2} us; Handle::block_on hop {:.2} us; AIA/CDP/subject reads ×2 certs {:.2} us",
        us(request),
        us(hop),
        us(reads)
    );
    println!(
        "    (ocsp_urls {:.2} us, crl_urls {:.2} us, subject_string {:.2} us, for both certs)",
        us(ocsp_urls),
        us(crl_urls),
        us(subjects)
    );
    println!(
        "  rest of check() (locks, key clones, crl_status, report strings) {:.1} us",
        us(check
            .saturating_sub(crl_validate)
            .saturating_sub(request)
            .saturating_sub(hop)
            .saturating_sub(reads))
    );
    let without_revalidation = warm.saturating_sub(crl_validate);
    println!(
        "  ratio without the per-use CRL signature check: {:.2}",
        without_revalidation.as_secs_f64() / skipped.as_secs_f64()
    );

    println!(
        "\n== 20,000-entry CRL ({} KiB DER; thread CPU time, medians of 9 rounds) ==",
        big_der.len() / 1024
    );
    let parse = median(9, 5, || {
        black_box(Crl::from_der(black_box(&big_der)).expect("parses"));
    });
    println!(
        "Crl::from_der (parse + index) {:.2} ms (target < 20 ms): {}",
        parse.as_secs_f64() * 1e3,
        verdict(parse < Duration::from_millis(20))
    );
    let plain = median(9, 5, || {
        black_box(Crl::from_der(black_box(&plain_der)).expect("parses"));
    });
    let reference = median(9, 5, || {
        black_box(
            <x509_cert::crl::CertificateList as der::Decode>::from_der(black_box(&big_der))
                .expect("x509-cert decodes it"),
        );
    });
    println!(
        "  (for information: the same 20,000 serials in a v1 CRL without entry extensions \
         ({} KiB) {:.2} ms; x509-cert's CertificateList::from_der of the first, no index, \
         {:.2} ms)",
        plain_der.len() / 1024,
        plain.as_secs_f64() * 1e3,
        reference.as_secs_f64() * 1e3
    );
    let mut k = 0usize;
    let hit = median(9, serials.len(), || {
        k = (k + 7919) % serials.len();
        black_box(big.entry(black_box(&serials[k])));
    });
    let mut m = 0usize;
    let miss = median(9, 10 * misses.len(), || {
        m = (m + 1) % misses.len();
        black_box(big.entry(black_box(&misses[m])));
    });
    println!(
        "Crl::entry hit {:.0} ns, miss {:.0} ns (target < 1 us): {}",
        hit.as_secs_f64() * 1e9,
        miss.as_secs_f64() * 1e9,
        verdict(hit.max(miss) < Duration::from_micros(1))
    );
    let validate = median(9, 20, || {
        black_box(&big)
            .validate(&intermediate, big_now)
            .expect("valid")
    });
    println!(
        "Crl::validate (one signature over {} KiB) {:.1} us (for information)",
        big_der.len() / 1024,
        us(validate)
    );
}
