//! `pullgate verify <reference>` against the real docker-registry started by
//! `integration/harness up` (no referrers API there, so the tag-schema fallback is
//! what finds signatures), with notation's own layouts pushed byte-exact and with
//! images signed here, on the plain registry and on the one with basic auth.

use pullgate_testkit as support;

use std::path::Path;
use std::process::Command;

use support::envelope_builder::Format;
use support::pki::{Chain, KeySpec, Pki};
use support::signed_layout::{Blob, Layout, SignatureForm};
use support::Harness;

/// Pushes `layout` to `registry` as `repo` with the harness (curl, byte-exact).
fn push(harness: &Harness, layout: &Path, registry: &str, repo: &str, auth: Option<&str>) {
    let mut command = Command::new(&harness.script);
    command
        .arg("push-layout")
        .arg(layout)
        .arg(registry)
        .arg(repo)
        .env("PULLGATE_IT_DIR", &harness.dir);
    if let Some(auth) = auth {
        command.arg(auth);
    }
    let output = command.output().expect("push-layout");
    assert!(
        output.status.success(),
        "push-layout {}: {}",
        layout.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

struct Run {
    code: Option<i32>,
    json: serde_json::Value,
    stderr: String,
}

fn verify(reference: &str, policy: &Path, extra: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .arg("verify")
        .arg(reference)
        .arg("--policy-dir")
        .arg(policy)
        .args(["--output", "json", "--hosts-dir", "/nonexistent"])
        .args(extra)
        .output()
        .expect("pullgate verify");
    Run {
        code: output.status.code(),
        json: serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A policy dir: one strict statement for `*` trusting `certs` as `ca:trusted`.
fn policy(level: &str, certs: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("trustpolicy.oci.json"),
        format!(
            r#"{{"version":"1.0","trustPolicies":[{{"name":"node","registryScopes":["*"],"signatureVerification":{{"level":"{level}"}},"trustStores":["ca:trusted"],"trustedIdentities":["*"]}}]}}"#
        ),
    )
    .expect("policy");
    let store = dir.path().join("truststore/x509/ca/trusted");
    std::fs::create_dir_all(&store).expect("store");
    for (name, bytes) in certs {
        std::fs::write(store.join(name), bytes).expect("cert");
    }
    dir
}

fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u32 {
    pullgate_testkit::time::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

fn sign(pki: &Pki, chain: &Chain, subject: &Blob, format: Format) -> Vec<u8> {
    support::sign_subject(pki, chain, subject, format)
}

/// An image signed with COSE (artifactType form) and JWS (legacy form), plus an
/// unsigned one, written as a layout.
fn signed_layout(pki: &Pki, chain: &Chain, dir: &Path) -> (Blob, Blob) {
    let layout = support::cli::write_signed_layout(
        pki,
        chain,
        dir,
        &format!("signed {}\n", rand_suffix()),
        ("unsigned", &format!("unsigned {}\n", rand_suffix())),
    );
    (layout.signed, layout.unsigned)
}

#[test]
fn notation_layouts_pushed_byte_exact_verify_as_notation_says() {
    let Some(harness) =
        Harness::from_env("notation_layouts_pushed_byte_exact_verify_as_notation_says")
    else {
        return;
    };
    let Some(vectors) = support::vectors_dir("notation", "notation_layouts_pushed_byte_exact")
    else {
        return;
    };
    let e2e = std::fs::read(vectors.join("truststore/x509/ca/e2e/e2e.crt")).expect("e2e.crt");
    let policy = policy("strict", &[("e2e.crt", &e2e)]);
    let registry = harness.registry.clone();
    let insecure = ["--insecure-registry", registry.as_str()];
    for (layout, result, contains) in [
        ("e2e-valid-signature", "verified", ""),
        ("e2e-valid-multiple-signatures", "verified", ""),
        ("e2e-expired-signature", "failed", "expiry check failed"),
        ("e2e-invalid-signature", "failed", "integrity check failed"),
        ("e2e", "failed", "no signature is associated"),
        // No tag-schema index and no referrers API on this registry: the signature
        // exists but cannot be found (CASES.md §5.1 layout facts).
        (
            "e2e-with-timestamped-signature",
            "failed",
            "no signature is associated",
        ),
    ] {
        let repo = unique(&format!("vectors/{layout}"));
        push(
            &harness,
            &vectors.join("oci-layouts").join(layout),
            &registry,
            &repo,
            None,
        );
        let reference = format!("{registry}/{repo}:v1");
        let run = verify(&reference, policy.path(), &insecure);
        assert_eq!(
            run.json["result"], result,
            "{layout}: {} {}",
            run.json, run.stderr
        );
        assert_eq!(
            run.code,
            Some(if result == "verified" { 0 } else { 1 }),
            "{layout}"
        );
        assert!(
            run.json["error"]
                .as_str()
                .unwrap_or_default()
                .contains(contains),
            "{layout}: {}",
            run.json
        );
        assert!(
            run.json["reference"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!("{registry}/{repo}@sha256:")),
            "{layout}: {}",
            run.json
        );
    }
}

#[test]
fn own_signatures_on_the_plain_registry() {
    let Some(harness) = Harness::from_env("own_signatures_on_the_plain_registry") else {
        return;
    };
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::P384);
    let dir = tempfile::tempdir().expect("tempdir");
    let (signed, unsigned) = signed_layout(&pki, &chain, dir.path());
    let registry = harness.registry.clone();
    let repo = unique("own/app");
    push(&harness, dir.path(), &registry, &repo, None);
    let trusted = policy("strict", &[("root.pem", chain.root.pem.as_bytes())]);
    let insecure = ["--insecure-registry", registry.as_str()];

    // By tag and by digest: the COSE signature (listed first) wins.
    for reference in [
        format!("{registry}/{repo}:v1"),
        format!("{registry}/{repo}@{}", signed.digest),
    ] {
        let run = verify(&reference, trusted.path(), &insecure);
        assert_eq!(
            run.code,
            Some(0),
            "{reference}: {} {}",
            run.json,
            run.stderr
        );
        assert_eq!(run.json["result"], "verified");
        assert_eq!(run.json["signature"]["format"], "cose");
        assert_eq!(run.json["target"]["digest"], signed.digest.to_string());
    }
    // The unsigned image has no signature.
    let run = verify(
        &format!("{registry}/{repo}:unsigned"),
        trusted.path(),
        &insecure,
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(unsigned.digest.to_string(), run.json["target"]["digest"]);
    assert!(run.json["error"]
        .as_str()
        .unwrap_or_default()
        .starts_with("no signature"));
    // A node that trusts another CA refuses it; at audit it is let through with a warning.
    let other = Pki::new().chain(KeySpec::Rsa2048);
    for (level, code) in [("strict", 1), ("audit", 0)] {
        let distrusting = policy(level, &[("other.pem", other.root.pem.as_bytes())]);
        let run = verify(
            &format!("{registry}/{repo}:v1"),
            distrusting.path(),
            &insecure,
        );
        assert_eq!(run.code, Some(code), "{level}: {}", run.json);
    }
    // A missing tag is a registry error, not a verdict.
    let run = verify(
        &format!("{registry}/{repo}:nope"),
        trusted.path(),
        &insecure,
    );
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.starts_with("Error: "), "{}", run.stderr);
}

#[test]
fn basic_auth_registry_needs_the_right_credentials() {
    let Some(harness) = Harness::from_env("basic_auth_registry_needs_the_right_credentials") else {
        return;
    };
    let registry = std::env::var("PULLGATE_IT_AUTH_REGISTRY").expect("auth registry");
    let user = std::env::var("PULLGATE_IT_AUTH_USER").expect("user");
    let password = std::env::var("PULLGATE_IT_AUTH_PASSWORD").expect("password");
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::Rsa3072);
    let dir = tempfile::tempdir().expect("tempdir");
    signed_layout(&pki, &chain, dir.path());
    let repo = unique("private/app");
    push(
        &harness,
        dir.path(),
        &registry,
        &repo,
        Some(&format!("{user}:{password}")),
    );
    let trusted = policy("strict", &[("root.pem", chain.root.pem.as_bytes())]);
    let reference = format!("{registry}/{repo}:v1");
    let insecure = ["--insecure-registry", registry.as_str()];

    let mut with_user = insecure.to_vec();
    with_user.extend(["--username", &user, "--password", &password]);
    let run = verify(&reference, trusted.path(), &with_user);
    assert_eq!(run.code, Some(0), "{} {}", run.json, run.stderr);
    assert_eq!(run.json["result"], "verified");

    // The same credentials from a docker config.json-style file.
    let config = dir.path().join("config.json");
    let auth = base64_encode(format!("{user}:{password}").as_bytes());
    std::fs::write(
        &config,
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .expect("config");
    let mut with_file = insecure.to_vec();
    let config_arg = config.display().to_string();
    with_file.extend(["--credentials-file", &config_arg]);
    let run = verify(&reference, trusted.path(), &with_file);
    assert_eq!(run.code, Some(0), "{} {}", run.json, run.stderr);

    // Missing and wrong credentials: no verdict, the registry refused.
    let run = verify(&reference, trusted.path(), &insecure);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains(&registry), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("unauthorized") || run.stderr.contains("401"),
        "{}",
        run.stderr
    );
    let mut wrong = insecure.to_vec();
    wrong.extend(["--username", &user, "--password", "not-the-password"]);
    let run = verify(&reference, trusted.path(), &wrong);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}

#[test]
fn a_cold_verification_makes_few_requests() {
    let Some(harness) = Harness::from_env("a_cold_verification_makes_few_requests") else {
        return;
    };
    let log = std::env::var("PULLGATE_IT_REGISTRY_LOG").expect("registry log");
    let pki = Pki::new();
    let chain = pki.chain(KeySpec::Rsa3072);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut layout = Layout::new();
    let signed = layout.image("v1", &format!("counted {}\n", rand_suffix()));
    let jws = sign(&pki, &chain, &signed, Format::Jws);
    let sig = layout.signature(
        &signed,
        "application/jose+json",
        jws,
        SignatureForm::ArtifactType,
    );
    layout.referrers_index(&signed, &[&sig]);
    layout.write(dir.path());
    let registry = harness.registry.clone();
    let repo = unique("counted/app");
    push(&harness, dir.path(), &registry, &repo, None);
    let trusted = policy("strict", &[("root.pem", chain.root.pem.as_bytes())]);

    let count = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("127.0.0.1 - ") && l.contains(&format!("/v2/{repo}/")))
            .count()
    };
    let before = count();
    let run = verify(
        &format!("{registry}/{repo}:v1"),
        trusted.path(),
        &["--insecure-registry", &registry],
    );
    assert_eq!(run.code, Some(0), "{} {}", run.json, run.stderr);
    // The access log line may trail the response slightly.
    let mut made = 0;
    for _ in 0..50 {
        made = count() - before;
        if made >= 5 {
            break;
        }
        pullgate_testkit::time::pause(std::time::Duration::from_millis(20));
    }
    // resolve (HEAD) + referrers API probe (404 here) + tag-schema index +
    // signature manifest + envelope blob.
    assert_eq!(made, 5, "requests made for one cold verification");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
