//! Issue 9 item 1: the gate decides exactly as the engine does. Under notation's
//! `override_audit_trustpolicy.json` (level `audit`, every check overridden to
//! `enforce`) the gate used to deny a wrongly signed image but allow the same image
//! with its signature stripped, because it let "no signature" through whenever the
//! level was *named* `audit`; `pullgate verify` said "no signature" and exited 1.
//!
//! Here every statement of every notation trust policy in
//! `../shared/vectors/notation/policies/` decides an unsigned image and a wrongly
//! signed one (signed by a key the stores do not trust) twice: through the gate's
//! decision function (`gate::classify` over the engine's verdict, the same
//! path as a PullImage, without containerd or a registry) and through the real
//! `pullgate verify --oci-layout` binary. Both must agree on every case, and the
//! cases notation states are asserted exactly.

use pullgate_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;

use pullgate::cache::Cacheable;
use pullgate::gate::{classify, Decision};
use pullgate::policy::{CheckAction, StoreType, TrustPolicyDocument};
use pullgate::verify::engine::Verifier;
use pullgate::verify::layout::{LayoutReference, OciLayout};
use pullgate::verify::Budgets;

/// The image under test: a layout reference and a name for messages.
struct Image {
    case: &'static str,
    layout: &'static str,
    tag: &'static str,
}

const UNSIGNED: Image = Image {
    case: "unsigned",
    layout: "notation-go-alpine-unsigned",
    tag: "v2",
};
/// Signed by `e2e.crt`; every `ca`/`signingAuthority` store below holds only
/// `new_e2e.crt`, so the signature is well formed but not trusted.
const WRONGLY_SIGNED: Image = Image {
    case: "wrongly signed",
    layout: "e2e-valid-signature",
    tag: "v1",
};

/// A scope no notation policy names, for statements reached through `*`.
const UNNAMED_SCOPE: &str = "local/pullgate-unnamed-scope";

/// A policy dir holding `policy` and every store it names, each filled with a
/// certificate that does not sign the test images.
fn policy_dir(vectors: &Path, policy: &Path, document: &TrustPolicyDocument) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(policy, dir.path().join("trustpolicy.json")).expect("copy policy");
    for statement in &document.statements {
        for store in &statement.trust_stores {
            let cert = match store.store_type {
                StoreType::Tsa => "tsa/test-timestamp/globalsignRoot.cer",
                _ => "ca/e2e-new/new_e2e.crt",
            };
            let path = dir
                .path()
                .join("truststore/x509")
                .join(store.store_type.to_string())
                .join(&store.name);
            std::fs::create_dir_all(&path).expect("store dir");
            let source = vectors.join("truststore/x509").join(cert);
            let file = Path::new(cert).file_name().expect("file name");
            std::fs::copy(source, path.join(file)).expect("copy cert");
        }
    }
    dir
}

/// The gate's decision: the engine's verdict over the layout's signatures, turned
/// into an allow or a denial by the function every PullImage goes through.
fn gate_allows(policy_dir: &Path, statement: &str, layout: &Path, tag: &str) -> (bool, String) {
    let policy = pullgate::policy_dir::load_policy_dir(policy_dir).expect("policy loads");
    let statement = policy
        .document
        .statements
        .iter()
        .find(|s| s.name == statement)
        .expect("statement");
    let reference =
        LayoutReference::parse(&format!("{}:{tag}", layout.display())).expect("reference");
    let oci = OciLayout::open(&reference.dir).expect("layout");
    let target = oci.resolve(&reference.selector).expect("resolve");
    let budgets = Budgets::default();
    let listed = oci.signature_manifests(&target).expect("referrers");
    let blobs = listed
        .iter()
        .map(|d| oci.signature(d, &budgets))
        .collect::<Result<Vec<_>, _>>()
        .expect("signatures");
    let verifier = Verifier {
        statement,
        stores: &policy.stores,
        now: pullgate_testkit::time::now(),
        budgets: &budgets,
    };
    let verdict = verifier.decide(&layout.display().to_string(), &target, &blobs, listed.len());
    match classify(Ok(verdict), pullgate_testkit::time::now(), None) {
        Cacheable::Allow(Decision::Allow(allowed))
        | Cacheable::AllowUntil(Decision::Allow(allowed), _) => {
            let logged: Vec<String> = allowed
                .logged
                .iter()
                .map(|(check, error)| format!("{check}: {error}"))
                .collect();
            (true, logged.join("; "))
        }
        Cacheable::Deny(Decision::Deny { reason, .. }) => (false, reason.to_string()),
        other => panic!("no verdict from the engine: {other:?}"),
    }
}

/// `pullgate verify --oci-layout`'s verdict: exit 0 verified/skipped, 1 failed.
fn cli_allows(policy_dir: &Path, scope: &str, layout: &Path, tag: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .arg("verify")
        .arg("--oci-layout")
        .arg(format!("{}:{tag}", layout.display()))
        .arg("--policy-dir")
        .arg(policy_dir)
        .args(["--scope", scope, "--output", "json"])
        .output()
        .expect("run pullgate verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        other => panic!("pullgate verify reached no verdict ({other:?}): {text}"),
    }
}

fn oci_policies(vectors: &Path) -> Vec<(PathBuf, TrustPolicyDocument)> {
    let mut policies = Vec::new();
    for sub in ["e2e", "derived"] {
        let mut files: Vec<_> = std::fs::read_dir(vectors.join("policies").join(sub))
            .expect("policies dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for path in files {
            // Invalid policies stop pullgate from starting; there is no gate to ask.
            if let Ok(document) =
                TrustPolicyDocument::parse(&std::fs::read(&path).expect("read policy"))
            {
                policies.push((path, document));
            }
        }
    }
    policies
}

#[test]
fn audit_with_overrides_does_not_let_unsigned_images_through_gate_agrees_with_verify() {
    let Some(vectors) = support::vectors_dir(
        "notation",
        "audit_with_overrides_does_not_let_unsigned_images_through_gate_agrees_with_verify",
    ) else {
        return;
    };
    let policies = oci_policies(&vectors);
    assert!(policies.len() >= 25, "{} policies", policies.len());
    let mut disagreements = Vec::new();
    let mut cases = 0;
    for (path, document) in &policies {
        let file = path.file_name().and_then(|f| f.to_str()).expect("name");
        let dir = policy_dir(&vectors, path, document);
        for statement in &document.statements {
            let scope = match statement.registry_scopes.first().map(String::as_str) {
                Some("*") | None => UNNAMED_SCOPE,
                Some(scope) => scope,
            };
            for image in [&UNSIGNED, &WRONGLY_SIGNED] {
                let layout = vectors.join("oci-layouts").join(image.layout);
                let (gate, gate_reason) =
                    gate_allows(dir.path(), &statement.name, &layout, image.tag);
                let (cli, cli_output) = cli_allows(dir.path(), scope, &layout, image.tag);
                cases += 1;
                let what = format!("{file} / {} / {}", statement.name, image.case);
                if gate != cli {
                    disagreements.push(format!(
                        "{what}: gate {}, pullgate verify {} ({gate_reason} | {cli_output})",
                        if gate { "allows" } else { "denies" },
                        if cli { "allows" } else { "denies" },
                    ));
                }
                // What notation does (NOTARY.md §8): no signature fails at every
                // verifying level; an untrusted signature passes only where
                // authenticity is logged.
                let expected = !statement.level.verifies()
                    || (image.case == "wrongly signed"
                        && statement.level.authenticity == CheckAction::Log);
                if gate != expected {
                    disagreements.push(format!(
                        "{what}: gate {} but notation {} ({gate_reason})",
                        if gate { "allows" } else { "denies" },
                        if expected { "allows" } else { "denies" },
                    ));
                }
                if image.case == "unsigned" && statement.level.verifies() {
                    assert!(
                        gate_reason.starts_with("no signature is associated with"),
                        "{what}: {gate_reason}"
                    );
                }
            }
        }
    }
    assert!(cases >= 50, "{cases} cases");
    assert!(
        disagreements.is_empty(),
        "{} case(s) wrong:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[test]
fn override_audit_denies_the_stripped_image_as_it_denies_the_wrongly_signed_one() {
    let Some(vectors) = support::vectors_dir(
        "notation",
        "override_audit_denies_the_stripped_image_as_it_denies_the_wrongly_signed_one",
    ) else {
        return;
    };
    for (file, allows_wrongly_signed) in [
        ("override_audit_trustpolicy.json", false),
        ("audit_trustpolicy.json", true),
    ] {
        let path = vectors.join("policies/e2e").join(file);
        let document =
            TrustPolicyDocument::parse(&std::fs::read(&path).expect("read")).expect("valid");
        let dir = policy_dir(&vectors, &path, &document);
        let name = &document.statements[0].name;
        let unsigned = vectors.join("oci-layouts").join(UNSIGNED.layout);
        let signed = vectors.join("oci-layouts").join(WRONGLY_SIGNED.layout);
        let (allowed, reason) = gate_allows(dir.path(), name, &unsigned, UNSIGNED.tag);
        assert!(!allowed, "{file}: the unsigned image is let through");
        assert!(
            reason.starts_with("no signature is associated with"),
            "{file}: {reason}"
        );
        let (allowed, reason) = gate_allows(dir.path(), name, &signed, WRONGLY_SIGNED.tag);
        assert_eq!(allowed, allows_wrongly_signed, "{file}: {reason}");
        if !allowed {
            assert!(
                reason.starts_with("authenticity check failed"),
                "{file}: {reason}"
            );
        }
    }
}
