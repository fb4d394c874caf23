//! Issue 9 item 4: notation's `skip_trustpolicy.json` (level `skip`, scope `*`) is a
//! valid notation policy. pullgate used to refuse it, so a policy copied from
//! notation stopped pullgate from starting and `pullgate verify` disagreed with
//! notation on it (CASES.md L18: PASS, skipped). Now it loads, decides as notation
//! does, and `policy check` warns that every image in scope goes unverified.

use pullgate_testkit as support;

use std::path::Path;

use support::cli::{policy_check, tag_v1, verify_oci_layout};

fn notation_skip_policy_dir(vectors: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        vectors.join("policies/e2e/skip_trustpolicy.json"),
        dir.path().join("trustpolicy.json"),
    )
    .expect("copy policy");
    dir
}

#[test]
fn notation_global_skip_policy_verifies_as_notation_does() {
    let Some(vectors) = support::vectors_dir(
        "notation",
        "notation_global_skip_policy_verifies_as_notation_does",
    ) else {
        return;
    };
    let dir = notation_skip_policy_dir(&vectors);
    let layout = vectors.join("oci-layouts/e2e-invalid-signature");
    let run = verify_oci_layout(&tag_v1(&layout), dir.path(), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json = run.json;
    assert_eq!(json["result"], "skipped", "{json}");
    assert_eq!(json["trustPolicy"], "e2e", "{json}");
}

#[test]
fn notation_global_skip_policy_check_warns_every_image_goes_unverified() {
    let Some(vectors) = support::vectors_dir(
        "notation",
        "notation_global_skip_policy_check_warns_every_image_goes_unverified",
    ) else {
        return;
    };
    let dir = notation_skip_policy_dir(&vectors);
    let output = policy_check(dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is valid."), "{stdout}");
    assert!(
        stdout.contains(
            "Warning: trust policy statement \"e2e\" has level skip with registry scope \"*\": every image no other statement names is pulled without signature verification"
        ),
        "{stdout}"
    );
}
