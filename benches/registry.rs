//! Requests and wall time of one cold verification's registry work (resolve,
//! signature listing, signature manifest, envelope blob) against the in-process
//! OCI distribution test registry, with the referrers API, with the tag-schema
//! fallback, and with Bearer token auth. Prints the counts and the timings; the
//! counts are asserted in tests/registry_fault.rs.
//!
//!   cargo bench --bench registry

use std::time::Duration;

use pullgate::registry::{Credentials, RegistryClient, RegistryConfig};
use pullgate_testkit::registry::TestRegistry;

const ROUNDS: usize = 200;

async fn cold_verification(host: &str, reference: &str, credentials: &Credentials) -> Duration {
    // A new client: no pooled connection, no cached token, nothing learnt.
    let client = RegistryClient::new(RegistryConfig {
        hosts_dir: None,
        insecure_registries: vec![host.to_owned()],
        ..Default::default()
    })
    .expect("client");
    let reference: pullgate::reference::Reference = reference.parse().expect("reference");
    let deadline = pullgate_testkit::time::instant() + Duration::from_secs(10);
    let started = pullgate_testkit::time::instant();
    let target = client
        .resolve(&reference, credentials, deadline)
        .await
        .expect("resolve");
    let listed = client
        .signature_manifests(&reference, &target, credentials, deadline)
        .await
        .expect("listing");
    assert_eq!(listed.len(), 1);
    client
        .signature(
            &reference,
            &listed[0],
            pullgate::registry::SignatureLimits {
                manifest_bytes: 4 << 20,
                envelope_bytes: 32 << 20,
            },
            credentials,
            deadline,
        )
        .await
        .expect("signature");
    started.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("== registry requests per cold verification (one signature), in-process registry, {ROUNDS} rounds ==");
    for (name, referrers_api, bearer) in [
        ("referrers API", true, false),
        ("tag-schema fallback", false, false),
        ("referrers API + bearer token", true, true),
    ] {
        let registry = TestRegistry::start().await;
        registry.set_referrers_api(referrers_api);
        let target = registry.push_image("bench/app", "v1");
        let signature = registry.push_signature("bench/app", &target, b"{\"envelope\":true}");
        if !referrers_api {
            registry.push_referrers_tag("bench/app", &target, &[signature]);
        }
        let credentials = if bearer {
            registry.set_bearer(Some(("user", "secret")));
            Credentials::Basic {
                username: "user".into(),
                password: "secret".into(),
            }
        } else {
            Credentials::None
        };
        let host = registry.host();
        let reference = format!("{host}/bench/app:v1");
        let mut times = Vec::with_capacity(ROUNDS);
        let mut requests = Vec::with_capacity(ROUNDS);
        let mut connections = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            registry.clear_log();
            let before = registry.connections();
            times.push(cold_verification(&host, &reference, &credentials).await);
            requests.push(registry.log().len());
            connections.push(registry.connections() - before);
        }
        times.sort();
        let p50 = times[ROUNDS / 2];
        let p99 = times[ROUNDS * 99 / 100];
        requests.sort();
        connections.sort();
        println!(
            "{name:<30} requests {} (min {} max {}), connections {}, wall p50 {:.2} ms p99 {:.2} ms",
            requests[ROUNDS / 2],
            requests[0],
            requests[ROUNDS - 1],
            connections[ROUNDS / 2],
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
        );
    }
    println!("target: 1 resolve + 1 listing + 1 manifest + 1 blob over one connection (+ the token request when auth is on)");
}
