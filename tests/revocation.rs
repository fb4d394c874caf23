//! Revocation checking end to end through the engine (NOTARY.md §7), against real
//! endpoints on 127.0.0.1: `openssl ocsp` responders reading the issuing CA's
//! `openssl ca` database, and CRLs from `openssl ca -gencrl` served by Python's
//! `http.server`. Every certificate is made by openssl with AIA OCSP and CRL
//! distribution point URLs naming those endpoints.
//!
//! Each case asserts the verdict, the check that decided it, and how each
//! certificate was decided (method, URL, status) as the CLI's JSON reports it.

use pullgate_testkit as support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pullgate::policy::{StoreType, TrustPolicyDocument, TrustStore};
use pullgate::revocation::{CertResult, Checker, Method, RevocationSettings};
use pullgate::verify::engine::{Check, SignatureReport, Verifier};
use pullgate::verify::{Budgets, SignatureBlob};
use support::envelope_builder::{EnvelopeSpec, Format, Target};
use support::fixtures::{blob, descriptor, store};
use support::pki::{CertSpec, Issued, Pki};
use support::responders::{free_port, CrlServer, OcspResponder};
use support::revocation::{Ca, CrlSpec, Revocation};

const REPOSITORY: &str = "registry.example.com/net-monitor";

/// Which endpoints the leaf names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoints {
    OcspAndCrl,
    CrlOnly,
    OcspOnly,
}

/// root (CRL-only for the intermediate) → intermediate (OCSP responder + CRL) →
/// leaf, each CA with its `openssl ca` database and live endpoints.
struct Fixture {
    pki: Pki,
    root: Ca,
    intermediate: Ca,
    leaf: Issued,
    ocsp_port: u16,
    ocsp: Option<OcspResponder>,
    crls: CrlServer,
    _runtime: tokio::runtime::Runtime,
    handle: tokio::runtime::Handle,
    cache_dir: tempfile::TempDir,
}

impl Fixture {
    fn new(endpoints: Endpoints) -> Fixture {
        let pki = Pki::new();
        let ocsp_port = free_port();
        let crl_port = free_port();
        let crl_url = |name: &str| format!("http://127.0.0.1:{crl_port}/{name}");
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
        let mut leaf_spec = CertSpec::leaf("/C=US/ST=WA/L=Seattle/O=Notary/CN=Revocation Leaf");
        if endpoints != Endpoints::CrlOnly {
            leaf_spec = leaf_spec.extra(&format!(
                "authorityInfoAccess = OCSP;URI:http://127.0.0.1:{ocsp_port}/"
            ));
        }
        if endpoints != Endpoints::OcspOnly {
            leaf_spec = leaf_spec.extra(&format!(
                "crlDistributionPoints = URI:{}",
                crl_url("ca.crl")
            ));
        }
        let leaf = intermediate.issue(&pki, &leaf_spec);
        let crl_dir = pki.dir().join("served-crls");
        let crls = CrlServer::start(crl_port, &crl_dir);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let handle = runtime.handle().clone();
        let mut fixture = Fixture {
            pki,
            root,
            intermediate,
            leaf,
            ocsp_port,
            ocsp: None,
            crls,
            _runtime: runtime,
            handle,
            cache_dir: tempfile::tempdir().expect("cache dir"),
        };
        fixture.publish();
        fixture.start_ocsp(None);
        fixture
    }

    /// Writes both CAs' current CRLs where the server serves them, and the
    /// intermediate's database where its OCSP responder reads it.
    fn publish(&mut self) {
        let dir = &self.crls.dir;
        std::fs::write(dir.join("root.crl"), self.root.crl(&CrlSpec::default()).der)
            .expect("write root CRL");
        std::fs::write(
            dir.join("ca.crl"),
            self.intermediate.crl(&CrlSpec::default()).der,
        )
        .expect("write CA CRL");
        self.intermediate.database();
    }

    /// (Re)starts the intermediate's OCSP responder, signing as the CA itself or
    /// as `delegate` (cert, key).
    fn start_ocsp(&mut self, delegate: Option<&Issued>) {
        self.ocsp = None;
        let index = self.intermediate.database();
        let ca = &self.intermediate.cert;
        let signer = delegate.unwrap_or(ca);
        self.ocsp = Some(OcspResponder::start(
            self.ocsp_port,
            &index,
            &ca.cert_path,
            &signer.cert_path,
            &signer.key_path,
        ));
    }

    fn checker(&self, settings: RevocationSettings) -> Arc<Checker> {
        Arc::new(Checker::new(settings, self.handle.clone()))
    }

    /// A checker that keeps CRLs in memory only.
    fn memory_checker(&self) -> Arc<Checker> {
        self.checker(RevocationSettings {
            cache_dir: None,
            ..RevocationSettings::default()
        })
    }

    fn default_checker(&self) -> Arc<Checker> {
        self.checker(RevocationSettings {
            cache_dir: Some(self.cache_dir.path().to_owned()),
            ..RevocationSettings::default()
        })
    }

    fn revoke_leaf(&mut self) {
        let leaf = self.leaf.clone();
        self.intermediate.revoke(
            &leaf,
            pullgate_testkit::time::now() - Duration::from_secs(3600),
            Revocation::Reason("keyCompromise"),
        );
        self.publish();
    }

    fn signature(&self, format: Format) -> SignatureBlob {
        let chain = vec![
            self.leaf.der.clone(),
            self.intermediate.cert.der.clone(),
            self.root.cert.der.clone(),
        ];
        let spec = EnvelopeSpec {
            alg: self.leaf.key.algorithm().to_string(),
            certificate_chain: chain,
            signing_time: Some(
                pullgate_testkit::time::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs() as i64,
            ),
            ..EnvelopeSpec::default()
        };
        let envelope = spec.build(format, &|tbs| {
            self.pki
                .sign(&self.leaf.key_path, self.leaf.key.algorithm(), tbs)
        });
        blob(format, envelope)
    }

    fn store(&self) -> Vec<TrustStore> {
        vec![store(StoreType::Ca, "acme", &[&self.root.cert])]
    }

    /// Verifies a fresh signature of `format` under `level` (and overrides) with
    /// `checker`, off the runtime (the engine's checker blocks on it).
    fn verify(
        &self,
        format: Format,
        verification: serde_json::Value,
        checker: &Arc<Checker>,
    ) -> SignatureReport {
        self.verify_with(format, verification, Some(checker.as_ref()))
    }

    fn verify_with(
        &self,
        format: Format,
        verification: serde_json::Value,
        checker: Option<&dyn pullgate::revocation::RevocationCheck>,
    ) -> SignatureReport {
        let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "net-monitor",
            "registryScopes": [REPOSITORY],
            "signatureVerification": verification,
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["*"],
        }]})
        .to_string();
        let document = TrustPolicyDocument::parse(policy.as_bytes()).expect("policy");
        let statement = document.statement_for(REPOSITORY).expect("statement");
        let stores = self.store();
        let budgets = Budgets::default();
        let verifier = Verifier {
            statement,
            stores: &stores,
            now: pullgate_testkit::time::now(),
            budgets: &budgets,
        };
        let blob = self.signature(format);
        let target = descriptor(&Target::default());
        verifier.verify_one_with(&target, &blob, checker)
    }
}

impl Fixture {
    /// Why a fresh signature of `format` fails at `strict` with `checker`: the
    /// revocation check's reason.
    #[track_caller]
    fn revocation_failure(&self, format: Format, checker: &Arc<Checker>) -> String {
        failed_at(&self.verify(format, strict(), checker), Check::Revocation)
    }
}

fn strict() -> serde_json::Value {
    serde_json::json!({"level": "strict"})
}

#[track_caller]
fn passed(report: &SignatureReport) {
    assert!(
        report.failed_check().is_none(),
        "expected a pass, got {:?}\n{report:#?}",
        report.failed_check()
    );
}

#[track_caller]
fn failed_at(report: &SignatureReport, check: Check) -> String {
    let (at, failure) = report
        .failed_check()
        .unwrap_or_else(|| panic!("expected a failure at {check:?}, got a pass: {report:#?}"));
    assert_eq!(*at, check, "{failure}");
    failure.to_string()
}

/// The report passed, its leaf found good by `method` from `source`.
#[track_caller]
fn passed_with_good_leaf(report: &SignatureReport, method: Method, source: Option<String>) {
    passed(report);
    assert_eq!(methods(report)[0], (method, source, "good".to_owned()));
}

/// (method, source, status) for each checked certificate, leaf first.
fn methods(report: &SignatureReport) -> Vec<(Method, Option<String>, String)> {
    report
        .revocation
        .as_ref()
        .expect("revocation was checked")
        .certificates
        .iter()
        .map(|c| {
            let status = match &c.result {
                CertResult::Good => "good".to_owned(),
                CertResult::Revoked { reason, .. } => {
                    format!("revoked {}", reason.clone().unwrap_or_default())
                }
                CertResult::Unknown { .. } => "unknown".to_owned(),
            };
            (c.method, c.source.clone(), status)
        })
        .collect()
}

fn ocsp_url(fx: &Fixture) -> Option<String> {
    Some(format!("http://127.0.0.1:{}/", fx.ocsp_port))
}

fn crl_url(fx: &Fixture, name: &str) -> Option<String> {
    Some(format!("http://127.0.0.1:{}/{name}", fx.crls.port))
}

#[test]
fn a_good_leaf_is_checked_by_ocsp_and_the_intermediate_by_the_root_crl() {
    let fx = Fixture::new(Endpoints::OcspAndCrl);
    let checker = fx.default_checker();
    for format in [Format::Cose, Format::Jws] {
        let report = fx.verify(format, strict(), &checker);
        passed(&report);
        assert_eq!(
            methods(&report),
            vec![
                (Method::Ocsp, ocsp_url(&fx), "good".to_owned()),
                (Method::Crl, crl_url(&fx, "root.crl"), "good".to_owned()),
            ]
        );
        // The verdict may not be reused past the answers' nextUpdate (OCSP: 60
        // minutes from the responder's -nmin; CRL: 24 hours).
        let until = report.valid_until().expect("bounded by nextUpdate");
        let left = until
            .duration_since(pullgate_testkit::time::now())
            .expect("in the future");
        assert!(
            left <= Duration::from_secs(3600) && left > Duration::from_secs(3000),
            "{left:?}"
        );
    }
}

#[test]
fn a_revoked_leaf_fails_at_strict_is_logged_at_permissive_and_skipped_by_override() {
    let mut fx = Fixture::new(Endpoints::OcspAndCrl);
    fx.revoke_leaf();
    let checker = fx.default_checker();
    let reason = fx.revocation_failure(Format::Cose, &checker);
    assert!(
        reason.starts_with(&format!(
            "certificate CN=Revocation Leaf,O=Notary,L=Seattle,ST=WA,C=US: OCSP http://127.0.0.1:{}/: revoked at ",
            fx.ocsp_port
        )) && reason.ends_with("(KeyCompromise)"),
        "{reason}"
    );
    let report = fx.verify(
        Format::Jws,
        serde_json::json!({"level": "permissive"}),
        &checker,
    );
    passed(&report);
    let logged: Vec<_> = report.logged_failures().map(|c| c.check).collect();
    assert_eq!(logged, vec![Check::Revocation]);
    let report = fx.verify(
        Format::Cose,
        serde_json::json!({"level": "strict", "override": {"revocation": "skip"}}),
        &checker,
    );
    passed(&report);
    assert!(report.revocation.is_none(), "skip never checks");
}

#[test]
fn crl_only_leaf_good_then_revoked() {
    let mut fx = Fixture::new(Endpoints::CrlOnly);
    let checker = fx.memory_checker();
    let report = fx.verify(Format::Cose, strict(), &checker);
    passed_with_good_leaf(&report, Method::Crl, crl_url(&fx, "ca.crl"));
    fx.revoke_leaf();
    // A fresh checker: the first one keeps the good CRL until its nextUpdate.
    let checker = fx.memory_checker();
    let reason = fx.revocation_failure(Format::Jws, &checker);
    assert!(
        reason.contains(": CRL http://127.0.0.1:") && reason.ends_with("(KeyCompromise)"),
        "{reason}"
    );
}

#[test]
fn ocsp_responder_down_falls_back_to_the_crl_or_is_unknown_without_one() {
    let mut fx = Fixture::new(Endpoints::OcspAndCrl);
    fx.ocsp = None;
    let report = fx.verify(Format::Cose, strict(), &fx.default_checker());
    passed_with_good_leaf(&report, Method::Crl, crl_url(&fx, "ca.crl"));

    let mut fx = Fixture::new(Endpoints::OcspOnly);
    fx.ocsp = None;
    let checker = fx.default_checker();
    let reason = fx.revocation_failure(Format::Cose, &checker);
    assert!(
        reason.contains(&format!(
            ": OCSP http://127.0.0.1:{}/: unknown: ",
            fx.ocsp_port
        )),
        "{reason}"
    );
    // Unknown is a failure only where revocation is enforced.
    let report = fx.verify(
        Format::Jws,
        serde_json::json!({"level": "strict", "override": {"revocation": "log"}}),
        &checker,
    );
    passed(&report);
    assert_eq!(methods(&report)[0].2, "unknown");
}

#[test]
fn an_intermediate_revoked_in_the_root_crl_fails() {
    let mut fx = Fixture::new(Endpoints::OcspAndCrl);
    let intermediate = fx.intermediate.cert.clone();
    fx.root.revoke(
        &intermediate,
        pullgate_testkit::time::now() - Duration::from_secs(60),
        Revocation::Reason("cACompromise"),
    );
    fx.publish();
    let report = fx.verify(Format::Cose, strict(), &fx.default_checker());
    let reason = failed_at(&report, Check::Revocation);
    assert!(
        reason.starts_with("certificate CN=Revocation CA,O=Notary,C=US: CRL "),
        "{reason}"
    );
    assert_eq!(methods(&report)[1].2, "revoked CaCompromise");
}

#[test]
fn a_crl_signed_by_another_key_is_unknown() {
    let fx = Fixture::new(Endpoints::CrlOnly);
    // Another CA with the same name but another key signs the served CRL.
    let impostor_cert = fx
        .pki
        .self_signed(&CertSpec::ca("/C=US/O=Notary/CN=Revocation CA").slot(5));
    let impostor = Ca::new(&fx.pki, impostor_cert);
    std::fs::write(
        fx.crls.dir.join("ca.crl"),
        impostor.crl(&CrlSpec::default()).der,
    )
    .expect("write");
    let reason = fx.revocation_failure(Format::Cose, &fx.default_checker());
    assert!(
        reason.contains(": CRL ") && reason.contains("unknown: ") && reason.contains("not signed"),
        "{reason}"
    );
}

#[test]
fn a_delegated_ocsp_responder_needs_the_ocsp_signing_eku() {
    let mut fx = Fixture::new(Endpoints::OcspOnly);
    let with_eku = fx.intermediate.issue(
        &fx.pki,
        &CertSpec::leaf("/C=US/O=Notary/CN=Delegated Responder")
            .eku(Some("OCSPSigning"))
            .slot(6),
    );
    fx.start_ocsp(Some(&with_eku));
    let report = fx.verify(Format::Cose, strict(), &fx.default_checker());
    passed_with_good_leaf(&report, Method::Ocsp, ocsp_url(&fx));

    let without_eku = fx.intermediate.issue(
        &fx.pki,
        &CertSpec::leaf("/C=US/O=Notary/CN=Not A Responder").slot(7),
    );
    fx.start_ocsp(Some(&without_eku));
    let reason = fx.revocation_failure(Format::Cose, &fx.default_checker());
    assert!(
        reason.contains("unknown: ") && reason.contains("OCSP"),
        "{reason}"
    );
}

#[test]
fn fetched_crls_are_reused_from_the_disk_cache_when_the_server_is_gone() {
    let mut fx = Fixture::new(Endpoints::CrlOnly);
    passed(&fx.verify(Format::Cose, strict(), &fx.default_checker()));
    let cached: Vec<PathBuf> = std::fs::read_dir(fx.cache_dir.path())
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(cached.len(), 2, "the CA's and the root's CRL: {cached:?}");
    // A new checker (as after a restart) with the server stopped.
    fx.crls = CrlServer::start(free_port(), &fx.pki.dir().join("elsewhere"));
    let report = fx.verify(Format::Jws, strict(), &fx.default_checker());
    passed_with_good_leaf(&report, Method::Crl, crl_url_at(&fx, 0, "ca.crl"));
}

/// The URL the leaf names, whatever server is running now.
fn crl_url_at(fx: &Fixture, _: usize, name: &str) -> Option<String> {
    let url = fx.leaf.cert().crl_urls();
    url.into_iter().find(|u| u.ends_with(name))
}

#[test]
fn operator_shipped_crls_are_used_before_fetching() {
    let mut fx = Fixture::new(Endpoints::CrlOnly);
    let shipped = fx.pki.dir().join("shipped");
    std::fs::create_dir_all(&shipped).expect("mkdir");
    std::fs::write(
        shipped.join("ca.pem"),
        fx.intermediate.crl(&CrlSpec::default()).pem,
    )
    .expect("write");
    std::fs::write(
        shipped.join("root.der"),
        fx.root.crl(&CrlSpec::default()).der,
    )
    .expect("write");
    std::fs::write(shipped.join("README"), b"not a CRL").expect("write");
    // No server at all.
    fx.crls = CrlServer::start(free_port(), &fx.pki.dir().join("nothing"));
    let checker = fx.checker(RevocationSettings {
        cache_dir: None,
        crl_dir: Some(shipped.clone()),
        ..RevocationSettings::default()
    });
    let report = fx.verify(Format::Cose, strict(), &checker);
    passed(&report);
    let leaf = &methods(&report)[0];
    assert_eq!((leaf.0, leaf.2.as_str()), (Method::Crl, "good"));
    assert_eq!(
        leaf.1.as_deref(),
        Some(shipped.join("ca.pem").display().to_string().as_str())
    );
}

#[test]
fn the_revocation_json_names_method_source_and_status() {
    let fx = Fixture::new(Endpoints::OcspAndCrl);
    let report = fx.verify(Format::Cose, strict(), &fx.default_checker());
    let json = serde_json::to_value(&report).expect("json");
    let leaf = &json["revocation"]["certificates"][0];
    assert_eq!(leaf["method"], "ocsp");
    assert_eq!(
        leaf["source"],
        format!("http://127.0.0.1:{}/", fx.ocsp_port)
    );
    assert_eq!(leaf["status"], "good");
    assert_eq!(json["revocation"]["certificates"][1]["method"], "crl");
}

#[test]
fn without_a_checker_a_certificate_with_endpoints_fails_closed() {
    let fx = Fixture::new(Endpoints::OcspAndCrl);
    let report = fx.verify_with(Format::Cose, strict(), None);
    let reason = failed_at(&report, Check::Revocation);
    assert_eq!(
        reason,
        "revocation checking not available: certificate CN=Revocation Leaf,O=Notary,L=Seattle,ST=WA,C=US \
         names revocation endpoints and this verification has no revocation checker"
    );
}

/// Records what the checker reports, as the metrics see it.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl pullgate::revocation::Observer for Recorder {
    fn checked(&self, method: &'static str, result: &'static str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("checked {method} {result}"));
    }
    fn cache_hit(&self, source: &'static str) {
        self.0.lock().unwrap().push(format!("hit {source}"));
    }
    fn fetched(&self, kind: &'static str, ok: bool, _seconds: f64) {
        self.0.lock().unwrap().push(format!("fetched {kind} {ok}"));
    }
}

#[test]
fn the_checker_reports_checks_fetches_and_cache_hits() {
    let fx = Fixture::new(Endpoints::OcspAndCrl);
    let recorder = Arc::new(Recorder::default());
    let checker = Arc::new(
        Checker::new(
            RevocationSettings {
                cache_dir: None,
                ..RevocationSettings::default()
            },
            fx.handle.clone(),
        )
        .with_observer(recorder.clone()),
    );
    passed(&fx.verify(Format::Cose, strict(), &checker));
    passed(&fx.verify(Format::Jws, strict(), &checker));
    let mut events = recorder.0.lock().unwrap().clone();
    events.sort();
    assert_eq!(
        events,
        vec![
            "checked crl good",
            "checked crl good",
            "checked ocsp good",
            "checked ocsp good",
            "fetched crl true",
            "fetched ocsp true",
            "hit crl_memory",
            "hit ocsp_memory",
        ]
    );
}

#[test]
fn revocation_fetch_writes_the_crls_a_chain_names_for_an_offline_node() {
    let mut fx = Fixture::new(Endpoints::CrlOnly);
    let policy = fx.pki.dir().join("policy");
    let store = policy.join("truststore/x509/ca/acme");
    std::fs::create_dir_all(&store).expect("mkdir");
    std::fs::write(store.join("root.pem"), &fx.root.cert.pem).expect("write");
    std::fs::write(
        policy.join("trustpolicy.json"),
        serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "net-monitor", "registryScopes": [REPOSITORY],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:acme"], "trustedIdentities": ["*"],
        }]})
        .to_string(),
    )
    .expect("write policy");
    let chain = fx.pki.dir().join("chain.pem");
    std::fs::write(
        &chain,
        format!("{}{}", fx.leaf.pem, fx.intermediate.cert.pem),
    )
    .expect("write");
    let out = fx.pki.dir().join("fetched");
    let run = |out: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pullgate"))
            .args(["revocation", "fetch", "--policy-dir"])
            .arg(&policy)
            .arg("--cert")
            .arg(&chain)
            .arg("--out")
            .arg(out)
            .output()
            .expect("run pullgate")
    };
    let output = run(&out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    for name in ["ca.crl", "root.crl"] {
        assert!(
            stdout.contains(&format!("http://127.0.0.1:{}/{name} -> ", fx.crls.port)),
            "{stdout}"
        );
    }
    assert_eq!(std::fs::read_dir(&out).expect("out").count(), 2);

    // The node cannot reach the CA: the fetched files are its crl_dir.
    fx.crls = CrlServer::start(free_port(), &fx.pki.dir().join("nothing"));
    let checker = fx.checker(RevocationSettings {
        cache_dir: None,
        crl_dir: Some(out.clone()),
        ..RevocationSettings::default()
    });
    let report = fx.verify(Format::Cose, strict(), &checker);
    passed(&report);
    assert_eq!(
        methods(&report)
            .iter()
            .map(|m| m.2.as_str())
            .collect::<Vec<_>>(),
        vec!["good", "good"]
    );

    // Unreachable now: a non-zero exit naming each URL.
    let output = run(&fx.pki.dir().join("again"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches(": not fetched: ").count(), 2, "{stdout}");
}

#[test]
fn a_revoked_timestamping_certificate_fails_authentic_timestamp() {
    let fx = Fixture::new(Endpoints::CrlOnly);
    // A TSA whose leaf names its root's CRL on the same server.
    let tsa_root = fx
        .pki
        .self_signed(&CertSpec::ca("/C=US/O=Test TSA/CN=Revocation TSA Root").slot(3));
    let mut tsa_ca = Ca::new(&fx.pki, tsa_root.clone());
    let tsa_leaf = tsa_ca.issue(
        &fx.pki,
        &CertSpec::tsa_leaf("/C=US/O=Test TSA/CN=Revocation TSA").extra(&format!(
            "crlDistributionPoints = URI:http://127.0.0.1:{}/tsa.crl",
            fx.crls.port
        )),
    );
    let tsa = fx.pki.tsa_from(tsa_root.clone(), tsa_leaf.clone());
    let publish = |ca: &Ca| {
        std::fs::write(fx.crls.dir.join("tsa.crl"), ca.crl(&CrlSpec::default()).der)
            .expect("write TSA CRL")
    };
    publish(&tsa_ca);
    let stores = vec![
        fx.store().remove(0),
        store(StoreType::Tsa, "stamps", &[&tsa_root]),
    ];
    let verify = |checker: &Arc<Checker>| {
        let policy = serde_json::json!({"version": "1.0", "trustPolicies": [{
            "name": "net-monitor", "registryScopes": [REPOSITORY],
            "signatureVerification": {"level": "strict", "verifyTimestamp": "always"},
            "trustStores": ["ca:acme", "tsa:stamps"], "trustedIdentities": ["*"],
        }]})
        .to_string();
        let document = TrustPolicyDocument::parse(policy.as_bytes()).expect("policy");
        let budgets = Budgets::default();
        let verifier = Verifier {
            statement: document.statement_for(REPOSITORY).expect("statement"),
            stores: &stores,
            now: pullgate_testkit::time::now(),
            budgets: &budgets,
        };
        let spec = EnvelopeSpec {
            alg: fx.leaf.key.algorithm().to_string(),
            certificate_chain: vec![
                fx.leaf.der.clone(),
                fx.intermediate.cert.der.clone(),
                fx.root.cert.der.clone(),
            ],
            ..EnvelopeSpec::default()
        };
        let format = Format::Jws;
        let signature = fx.pki.sign(
            &fx.leaf.key_path,
            fx.leaf.key.algorithm(),
            &spec.to_be_signed(format),
        );
        let spec = EnvelopeSpec {
            timestamp_token: Some(fx.pki.timestamp_token(&tsa, &signature, "sha256")),
            ..spec
        };
        let envelope = spec.build(format, &|_| signature.clone());
        let blob = blob(format, envelope);
        let target = descriptor(&Target::default());
        let checker: &dyn pullgate::revocation::RevocationCheck = checker.as_ref();
        verifier.verify_one_with(&target, &blob, Some(checker))
    };
    let report = verify(&fx.memory_checker());
    passed(&report);
    let tsa_checks = report
        .timestamp_revocation
        .as_ref()
        .expect("TSA chain checked");
    assert_eq!(tsa_checks.certificates.len(), 1);
    assert_eq!(tsa_checks.certificates[0].method, Method::Crl);
    assert_eq!(tsa_checks.certificates[0].result, CertResult::Good);

    tsa_ca.revoke(
        &tsa_leaf,
        pullgate_testkit::time::now() - Duration::from_secs(60),
        Revocation::Reason("keyCompromise"),
    );
    publish(&tsa_ca);
    let reason = failed_at(&verify(&fx.memory_checker()), Check::AuthenticTimestamp);
    assert!(
        reason.starts_with(
            "timestamping authority chain: certificate CN=Revocation TSA,O=Test TSA,C=US: CRL "
        ) && reason.contains("/tsa.crl: revoked at "),
        "{reason}"
    );
}

#[test]
fn an_expired_crl_is_unknown_and_fails_where_enforced() {
    let fx = Fixture::new(Endpoints::CrlOnly);
    // The CA's CRL expired an hour ago (made a day ago, valid for 23 hours).
    let day_ago = pullgate_testkit::time::now() - Duration::from_secs(24 * 3600);
    let expired = fx.intermediate.sign_crl(&support::revocation::CrlDraft {
        this_update: day_ago,
        next_update: Some(day_ago + Duration::from_secs(23 * 3600)),
        number: Some(7),
        delta_base: None,
        freshest_crl: None,
        entries: Vec::new(),
    });
    std::fs::write(fx.crls.dir.join("ca.crl"), expired).expect("write");
    let checker = fx.memory_checker();
    let report = fx.verify(Format::Cose, strict(), &checker);
    let reason = failed_at(&report, Check::Revocation);
    assert!(
        reason.contains("/ca.crl: unknown: ") && reason.contains("expired at"),
        "{reason}"
    );
    let report = fx.verify(Format::Jws, serde_json::json!({"level": "audit"}), &checker);
    passed(&report);
    assert_eq!(methods(&report)[0].2, "unknown");
}

#[test]
fn a_certificate_naming_more_distribution_points_than_are_checked_is_unknown() {
    let mut fx = Fixture::new(Endpoints::CrlOnly);
    let urls: Vec<String> = (0..=pullgate::revocation::MAX_URLS_PER_CERTIFICATE)
        .map(|i| format!("URI:http://127.0.0.1:{}/ca.crl?{i}", fx.crls.port))
        .collect();
    fx.leaf = fx.intermediate.issue(
        &fx.pki,
        &CertSpec::leaf("/C=US/ST=WA/L=Seattle/O=Notary/CN=Revocation Leaf")
            .extra(&format!("crlDistributionPoints = {}", urls.join(", "))),
    );
    let reason = fx.revocation_failure(Format::Cose, &fx.default_checker());
    assert!(
        reason.ends_with(&format!(
            "unknown: the certificate names {} CRL distribution points; pullgate checks at most {}",
            urls.len(),
            pullgate::revocation::MAX_URLS_PER_CERTIFICATE
        )),
        "{reason}"
    );
}
