//! `pullgate verify --oci-layout` over notation's own e2e layouts and policies:
//! every scenario of ../shared/vectors/notation/CASES.md §5.1 that needs no
//! network, through the real binary, asserting the exact outcome and reason.

use pullgate_testkit as support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::{policy_check, tag_v1, verify_oci_layout, write_signed_layout, VerifyRun};

/// A notation-layout policy dir: `policy` (a file under policies/e2e) as
/// trustpolicy.json and each `(type, name, cert files)` store.
fn policy_dir(vectors: &Path, policy: &str, stores: &[(&str, &str, &[&str])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        vectors.join("policies/e2e").join(policy),
        dir.path().join("trustpolicy.json"),
    )
    .expect("copy policy");
    for (store_type, name, certs) in stores {
        let store = dir
            .path()
            .join("truststore/x509")
            .join(store_type)
            .join(name);
        std::fs::create_dir_all(&store).expect("mkdir store");
        for cert in *certs {
            let source = vectors.join("truststore/x509").join(cert);
            let file = Path::new(cert).file_name().expect("file name");
            std::fs::copy(&source, store.join(file)).expect("copy cert");
        }
    }
    dir
}

fn verify(layout: &Path, policy_dir: &Path, extra: &[&str]) -> VerifyRun {
    verify_oci_layout(&tag_v1(layout), policy_dir, extra)
}

const E2E: &str = "ca/e2e/e2e.crt";
const E2E_NEW: &str = "ca/e2e-new/new_e2e.crt";
const E2E_EXPIRED: &str = "ca/e2e-expired/expired_e2e.crt";

struct Case {
    id: &'static str,
    layout: &'static str,
    policy: &'static str,
    stores: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// `verified`, `failed`, `skipped`, or `error` (no verdict: exit 2).
    result: &'static str,
    /// Text the error (or a logged warning) must contain.
    contains: &'static str,
}

const CA_E2E: &[(&str, &str, &[&str])] = &[("ca", "e2e", &[E2E])];
const CA_E2E_IS_NEW: &[(&str, &str, &[&str])] = &[("ca", "e2e", &[E2E_NEW])];
const CA_E2E_IS_EXPIRED: &[(&str, &str, &[&str])] = &[("ca", "e2e", &[E2E_EXPIRED])];

const CASES: &[Case] = &[
    Case { id: "L1", layout: "e2e-valid-signature", policy: "trustpolicy.json", stores: CA_E2E, result: "verified", contains: "" },
    Case { id: "L2", layout: "e2e-valid-signature", policy: "valid_trusted_identity_trustpolicy.json", stores: CA_E2E, result: "verified", contains: "" },
    Case { id: "L3", layout: "e2e-valid-signature", policy: "invalid_trusted_identity_trustpolicy.json", stores: CA_E2E, result: "failed", contains: "trusted identity check failed" },
    Case { id: "L4", layout: "e2e-valid-signature", policy: "trustpolicy.json", stores: CA_E2E_IS_NEW, result: "failed", contains: "authenticity check failed: the signing certificate chain does not chain to any certificate in the ca trust stores" },
    Case { id: "L5", layout: "e2e-valid-signature", policy: "permissive_trustpolicy.json", stores: CA_E2E_IS_NEW, result: "failed", contains: "authenticity check failed" },
    Case { id: "L6", layout: "e2e-valid-signature", policy: "audit_trustpolicy.json", stores: CA_E2E_IS_NEW, result: "verified", contains: "does not chain to any certificate" },
    Case { id: "L7", layout: "e2e-valid-signature", policy: "override_strict_trustpolicy.json", stores: CA_E2E_IS_NEW, result: "verified", contains: "does not chain to any certificate" },
    Case { id: "L8", layout: "e2e-valid-signature", policy: "override_permissive_trustpolicy.json", stores: CA_E2E_IS_NEW, result: "verified", contains: "does not chain to any certificate" },
    Case { id: "L9", layout: "e2e-valid-signature", policy: "override_audit_trustpolicy.json", stores: CA_E2E_IS_NEW, result: "failed", contains: "authenticity check failed" },
    Case { id: "L10", layout: "e2e-valid-signature", policy: "override_integrity_for_permissive_trustpolicy.json", stores: CA_E2E, result: "error", contains: "integrity" },
    Case { id: "L11", layout: "e2e-valid-signature", policy: "multiple_trust_store_trustpolicy.json", stores: &[("ca", "e2e", &[E2E]), ("ca", "e2e-new", &[E2E_NEW])], result: "verified", contains: "" },
    Case { id: "L12", layout: "e2e-valid-signature", policy: "multiple_trusted_identity_trustpolicy.json", stores: &[("ca", "e2e", &[E2E_NEW, E2E])], result: "verified", contains: "" },
    Case { id: "L16", layout: "e2e-invalid-signature", policy: "trustpolicy.json", stores: CA_E2E, result: "failed", contains: "integrity check failed: signature envelope media type \"application/vnd.oci.image.layer.v1.tar\"" },
    Case { id: "L17p", layout: "e2e-invalid-signature", policy: "permissive_trustpolicy.json", stores: CA_E2E, result: "failed", contains: "integrity check failed" },
    Case { id: "L17a", layout: "e2e-invalid-signature", policy: "audit_trustpolicy.json", stores: CA_E2E, result: "failed", contains: "integrity check failed" },
    Case { id: "L19", layout: "e2e-expired-signature", policy: "trustpolicy.json", stores: CA_E2E, result: "failed", contains: "expiry check failed: signature expired at 2023-06-27T05:21:21Z" },
    Case { id: "L20", layout: "e2e-expired-signature", policy: "permissive_trustpolicy.json", stores: CA_E2E, result: "verified", contains: "signature expired" },
    Case { id: "L21a", layout: "e2e-expired-signature", policy: "audit_trustpolicy.json", stores: CA_E2E, result: "verified", contains: "signature expired" },
    Case { id: "L21o", layout: "e2e-expired-signature", policy: "override_strict_trustpolicy.json", stores: CA_E2E, result: "verified", contains: "signature expired" },
    Case { id: "L22p", layout: "e2e-expired-signature", policy: "override_permissive_trustpolicy.json", stores: CA_E2E, result: "failed", contains: "expiry check failed" },
    Case { id: "L22a", layout: "e2e-expired-signature", policy: "override_audit_trustpolicy.json", stores: CA_E2E, result: "failed", contains: "expiry check failed" },
    Case { id: "L23", layout: "e2e-with-expired-cert", policy: "trustpolicy.json", stores: CA_E2E_IS_EXPIRED, result: "failed", contains: "authentic timestamp check failed: certificate C=AU,ST=Some-State,O=Internet Widgits Pty Ltd is not valid at" },
    Case { id: "L24p", layout: "e2e-with-expired-cert", policy: "permissive_trustpolicy.json", stores: CA_E2E_IS_EXPIRED, result: "verified", contains: "expired at 2023-06-27T06:10:00Z" },
    Case { id: "L24a", layout: "e2e-with-expired-cert", policy: "audit_trustpolicy.json", stores: CA_E2E_IS_EXPIRED, result: "verified", contains: "expired at 2023-06-27T06:10:00Z" },
    Case { id: "L24o", layout: "e2e-with-expired-cert", policy: "override_strict_trustpolicy.json", stores: CA_E2E_IS_EXPIRED, result: "verified", contains: "expired at 2023-06-27T06:10:00Z" },
    Case { id: "L25p", layout: "e2e-with-expired-cert", policy: "override_permissive_trustpolicy.json", stores: CA_E2E_IS_EXPIRED, result: "failed", contains: "authentic timestamp check failed" },
    Case { id: "L25a", layout: "e2e-with-expired-cert", policy: "override_audit_trustpolicy.json", stores: CA_E2E_IS_EXPIRED, result: "failed", contains: "authentic timestamp check failed" },
    Case { id: "L26", layout: "e2e-with-expired-cert", policy: "trustpolicy.json", stores: CA_E2E, result: "failed", contains: "authenticity check failed" },
    Case { id: "L27", layout: "e2e-valid-multiple-signatures", policy: "trustpolicy.json", stores: CA_E2E, result: "verified", contains: "" },
    Case { id: "L28", layout: "e2e", policy: "trustpolicy.json", stores: CA_E2E, result: "failed", contains: "no signature is associated with" },
    Case { id: "L31", layout: "e2e-with-timestamped-signature", policy: "trustpolicy.json", stores: CA_E2E, result: "failed", contains: "authenticity check failed" },
];

/// The error and every check's error, as plain text.
fn all_text(json: &serde_json::Value) -> String {
    let mut text = json["error"].as_str().unwrap_or_default().to_owned();
    for signature in json["failedSignatures"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(json.get("signature"))
    {
        for check in signature["checks"].as_array().into_iter().flatten() {
            if let Some(error) = check["error"].as_str() {
                text.push('\n');
                text.push_str(error);
            }
        }
    }
    text
}

#[test]
fn notation_e2e_layout_scenarios() {
    let Some(vectors) = support::vectors_dir("notation", "notation_e2e_layout_scenarios") else {
        return;
    };
    let mut failures = Vec::new();
    for case in CASES {
        let dir = policy_dir(&vectors, case.policy, case.stores);
        let layout: PathBuf = vectors.join("oci-layouts").join(case.layout);
        let run = verify(&layout, dir.path(), &[]);
        let (code, observed) = match (run.code, run.json.get("result").and_then(|r| r.as_str())) {
            (Some(0), Some(result)) => (0, result.to_owned()),
            (Some(1), Some(result)) => (1, result.to_owned()),
            (Some(2), _) => (2, "error".to_owned()),
            (other, _) => (other.unwrap_or(-1), format!("exit {other:?}")),
        };
        let text = if observed == "error" {
            run.stderr.clone()
        } else {
            all_text(&run.json)
        };
        let expected_code = match case.result {
            "verified" | "skipped" => 0,
            "failed" => 1,
            _ => 2,
        };
        if observed != case.result || code != expected_code || !text.contains(case.contains) {
            failures.push(format!(
                "{}: expected {} containing {:?}, got {observed} (exit {code}): {text}",
                case.id, case.result, case.contains
            ));
        }
        // A logged failure is reported as such on a verified result.
        if case.result == "verified" && !case.contains.is_empty() {
            let logged = run.json["signature"]["checks"]
                .as_array()
                .map(|checks| {
                    checks.iter().any(|c| {
                        c["action"] == "log"
                            && c["outcome"] == "failed"
                            && c["error"]
                                .as_str()
                                .is_some_and(|e| e.contains(case.contains))
                    })
                })
                .unwrap_or(false);
            if !logged {
                failures.push(format!(
                    "{}: no logged failure containing {:?}: {text}",
                    case.id, case.contains
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn skip_level_never_reads_signatures_and_passes() {
    let Some(vectors) =
        support::vectors_dir("notation", "skip_level_never_reads_signatures_and_passes")
    else {
        return;
    };
    // L18. notation allows `skip` with the `*` scope; pullgate follows the spec
    // and requires a named scope, so the statement names this layout's scope.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("trustpolicy.json"),
        r#"{"version":"1.0","trustPolicies":[{"name":"skip-invalid","registryScopes":["local/e2e-invalid-signature"],"signatureVerification":{"level":"skip"}}]}"#,
    )
    .expect("write");
    let run = verify(
        &vectors.join("oci-layouts/e2e-invalid-signature"),
        dir.path(),
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.json["result"], "skipped");
    assert_eq!(run.json["trustPolicy"], "skip-invalid");
    assert!(run.json.get("signature").is_none());
}

#[test]
fn text_output_reads_like_notation() {
    let Some(vectors) = support::vectors_dir("notation", "text_output_reads_like_notation") else {
        return;
    };
    let dir = policy_dir(&vectors, "audit_trustpolicy.json", CA_E2E_IS_NEW);
    let layout = vectors.join("oci-layouts/e2e-valid-signature");
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .arg("verify")
        .arg("--oci-layout")
        .arg(format!("{}:v1", layout.display()))
        .arg("--policy-dir")
        .arg(dir.path())
        .arg("--verbose")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("Warning: authenticity was set to \"log\" and failed with error: "),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "Successfully verified signature for {}@sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            layout.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("time source: local clock"), "{stdout}");
    assert!(
        stdout.contains("envelope: jws PS256 notary.x509"),
        "{stdout}"
    );
}

#[test]
fn scope_without_statement_is_an_error_naming_the_repository() {
    let Some(vectors) = support::vectors_dir(
        "notation",
        "scope_without_statement_is_an_error_naming_the_repository",
    ) else {
        return;
    };
    let dir = policy_dir(&vectors, "registry_scope_trustpolicy.json", CA_E2E);
    let run = verify(
        &vectors.join("oci-layouts/e2e-valid-signature"),
        dir.path(),
        &["--scope", "localhost:5000/other"],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("localhost:5000/other"),
        "{}",
        run.stderr
    );
}

#[test]
fn signature_limit_is_reported() {
    let Some(vectors) = support::vectors_dir("notation", "signature_limit_is_reported") else {
        return;
    };
    // Trust only new_e2e: both signatures fail; with a limit of 1 the limit is
    // what is reported.
    let dir = policy_dir(&vectors, "trustpolicy.json", CA_E2E_IS_NEW);
    let run = verify(
        &vectors.join("oci-layouts/e2e-valid-multiple-signatures"),
        dir.path(),
        &["--max-signatures", "1"],
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.json["error"],
        "signature evaluation stopped. The configured limit of 1 signatures to verify was reached; none of those passed"
    );
    assert_eq!(
        run.json["failedSignatures"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn l14_l15_registry_scopes_select_the_statement() {
    let Some(vectors) =
        support::vectors_dir("notation", "l14_l15_registry_scopes_select_the_statement")
    else {
        return;
    };
    let layout = vectors.join("oci-layouts/e2e-valid-signature");
    for (policy, scope) in [
        (
            "registry_scope_trustpolicy.json",
            "localhost:5000/test-repo",
        ),
        (
            "multiple_registry_scope_trustpolicy.json",
            "localhost:5000/test-repo2",
        ),
        (
            "multiple_registry_scope_trustpolicy.json",
            "localhost:5000/test-repo3",
        ),
        (
            "any_registry_scope_trust_policy.json",
            "registry.example/any/repository",
        ),
        (
            "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
            "localhost:5000/test-repo9",
        ),
        (
            "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
            "localhost:5000/other",
        ),
    ] {
        let dir = policy_dir(&vectors, policy, CA_E2E);
        let run = verify(&layout, dir.path(), &["--scope", scope]);
        assert_eq!(
            run.code,
            Some(0),
            "{policy} {scope}: {} {}",
            run.stderr,
            run.json
        );
        assert_eq!(run.json["result"], "verified", "{policy} {scope}");
    }
    // multi_statements…: the specific scope wins over `*`.
    let dir = policy_dir(
        &vectors,
        "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
        CA_E2E,
    );
    let run = verify(
        &layout,
        dir.path(),
        &["--scope", "localhost:5000/test-repo9"],
    );
    assert_eq!(run.json["trustPolicy"], "e2e");
    let run = verify(&layout, dir.path(), &["--scope", "localhost:5000/other"]);
    assert_eq!(run.json["trustPolicy"], "e2e2");

    let dir = policy_dir(&vectors, "invalid_registry_scope_trustpolicy.json", CA_E2E);
    let run = verify(
        &layout,
        dir.path(),
        &["--scope", "localhost:5000/test-repo"],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("localhost:5000/test-repo"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no applicable"), "{}", run.stderr);
}

#[test]
fn l13_invalid_policies_give_no_verdict() {
    let Some(vectors) = support::vectors_dir("notation", "l13_invalid_policies_give_no_verdict")
    else {
        return;
    };
    let layout = vectors.join("oci-layouts/e2e-valid-signature");
    for (policy, contains) in [
        (
            "malformed_trusted_identity_trustpolicy.json",
            "trustedIdentities",
        ),
        (
            "empty_trusted_identity_trustpolicy.json",
            "trustedIdentities",
        ),
        ("unset_trusted_identity_trustpolicy.json", "e2e"),
        (
            "overlapped_trusted_identity_trustpolicy.json",
            "trustedIdentities",
        ),
        (
            "wildcard_plus_other_trusted_identity_trustpolicy.json",
            "trustedIdentities",
        ),
        (
            "missing_organization_trusted_identity_trustpolicy.json",
            "O",
        ),
        ("unset_trust_store_trustpolicy.json", "e2e"),
        ("invalid_trust_store_trustpolicy.json", "invalid_store"),
        ("malformed_trust_store_trustpolicy.json", "trustStores"),
        ("wildcard_trust_store_trustpolicy.json", "trustStores"),
        ("empty_registry_scope_trustpolicy.json", "registryScopes"),
        (
            "malformed_registry_scope_trustpolicy.json",
            "registryScopes",
        ),
        (
            "overlapped_registry_scope_trustpolicy.json",
            "localhost:5000/test-repo6",
        ),
        (
            "wildcard_plus_other_registry_scope_trustpolicy.json",
            "registryScopes",
        ),
        (
            "multi_statements_with_the_same_registry_scope_trustpolicy.json",
            "localhost:5000/test-repo8",
        ),
        (
            "multi_statements_with_the_same_name_trustpolicy.json",
            "e2e",
        ),
        (
            "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json",
            "*",
        ),
        ("invalid_format_trustpolicy.json", "trustpolicy.json"),
        (
            "override_integrity_for_permissive_trustpolicy.json",
            "integrity",
        ),
    ] {
        let dir = policy_dir(&vectors, policy, CA_E2E);
        let run = verify(&layout, dir.path(), &[]);
        assert_eq!(run.code, Some(2), "{policy}: {}", run.stderr);
        assert!(run.json.is_null(), "{policy}: no verdict is printed");
        assert!(
            run.stderr.starts_with("Error: "),
            "{policy}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(contains), "{policy}: {}", run.stderr);

        let check = policy_check(dir.path());
        assert_eq!(check.status.code(), Some(2), "{policy}");
    }
}

#[test]
fn policy_check_summarises_a_valid_policy() {
    let Some(vectors) = support::vectors_dir("notation", "policy_check_summarises_a_valid_policy")
    else {
        return;
    };
    let dir = policy_dir(
        &vectors,
        "multiple_trust_store_trustpolicy.json",
        &[("ca", "e2e", &[E2E]), ("ca", "e2e-new", &[E2E_NEW])],
    );
    let output = policy_check(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("Trust policy "), "{stdout}");
    assert!(stdout.contains("is valid."), "{stdout}");
    assert!(stdout.contains("statement \"e2e\""), "{stdout}");
    assert!(
        stdout.contains("trust store \"e2e-new\" (Ca): 1 certificate(s)"),
        "{stdout}"
    );
}

#[test]
fn own_signed_layouts_verify_in_both_manifest_forms() {
    use support::envelope_builder::Format;
    use support::signed_layout::{Layout, SignatureForm};
    let pki = support::pki::Pki::new();
    let chain = pki.chain(support::pki::KeySpec::Rsa3072);
    let dir = tempfile::tempdir().expect("tempdir");
    let layout_dir = dir.path().join("app");
    let support::cli::SignedLayout {
        signed,
        unsigned,
        cose: first,
    } = write_signed_layout(
        &pki,
        &chain,
        &layout_dir,
        "signed content\n",
        ("v2", "unsigned content\n"),
    );

    let policy = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        policy.path().join("trustpolicy.oci.json"),
        r#"{"version":"1.0","trustPolicies":[{"name":"app","registryScopes":["local/app"],"signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}"#,
    )
    .expect("policy");
    let store = policy.path().join("truststore/x509/ca/acme");
    std::fs::create_dir_all(&store).expect("store");
    std::fs::write(store.join("root.pem"), &chain.root.pem).expect("root");

    let run = verify_oci_layout(&tag_v1(&layout_dir), policy.path(), &[]);
    let json = run.json;
    assert_eq!(run.code, Some(0), "{json}");
    assert_eq!(json["result"], "verified");
    assert_eq!(json["signature"]["format"], "cose");
    assert_eq!(
        json["signature"]["manifestDigest"],
        first.digest.to_string()
    );

    // The legacy-form JWS alone verifies too: drop the COSE one from a copy.
    let mut legacy = Layout::new();
    let signed_again = legacy.image("v1", "signed content\n");
    assert_eq!(signed_again.digest, signed.digest);
    let jws = support::sign_subject(&pki, &chain, &signed, Format::Jws);
    let only = legacy.signature(&signed, "application/jose+json", jws, SignatureForm::Legacy);
    legacy.referrers_index(&signed, &[&only]);
    let legacy_dir = dir.path().join("legacy");
    legacy.write(&legacy_dir);
    let json = verify_oci_layout(
        &tag_v1(&legacy_dir),
        policy.path(),
        &["--scope", "local/app"],
    )
    .json;
    assert_eq!(json["result"], "verified", "{json}");
    assert_eq!(json["signature"]["format"], "jws");

    // The unsigned image in the same layout has no signature.
    let run = verify_oci_layout(
        &format!("{}@{}", layout_dir.display(), unsigned.digest),
        policy.path(),
        &[],
    );
    let json = run.json;
    assert_eq!(run.code, Some(1));
    assert!(
        json["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("no signature is associated"),
        "{json}"
    );
}
