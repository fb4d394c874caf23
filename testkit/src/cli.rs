//! Running the `pullgate` binary the way the CLI tests do: commands with their
//! output, and the pass-through server with a metrics listener.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::envelope_builder::Format;
use crate::pki::{Chain, Pki};
use crate::signed_layout::{Blob, Layout, SignatureForm};
use crate::{pass_through_policy, pullgate_binary, Pullgate};

/// What one `pullgate verify … --output json` printed and how it exited; `json` is
/// `Null` when stdout is not JSON (no verdict).
pub struct VerifyRun {
    pub code: Option<i32>,
    pub json: serde_json::Value,
    pub stderr: String,
}

/// Runs `pullgate verify --oci-layout <reference> --policy-dir <policy_dir>
/// --output json <extra…>`; `reference` is `<dir>:<tag>` or `<dir>@<digest>`.
pub fn verify_oci_layout(reference: &str, policy_dir: &Path, extra: &[&str]) -> VerifyRun {
    let output = Command::new(pullgate_binary())
        .arg("verify")
        .arg("--oci-layout")
        .arg(reference)
        .arg("--policy-dir")
        .arg(policy_dir)
        .args(["--output", "json"])
        .args(extra)
        .output()
        .expect("run pullgate verify");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    VerifyRun {
        code: output.status.code(),
        json: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `<layout>:v1`, the reference the layout tests verify.
pub fn tag_v1(layout: &Path) -> String {
    format!("{}:v1", layout.display())
}

/// Runs `pullgate policy check --policy-dir <policy_dir>`.
pub fn policy_check(policy_dir: &Path) -> Output {
    Command::new(pullgate_binary())
        .args(["policy", "check", "--policy-dir"])
        .arg(policy_dir)
        .output()
        .expect("run pullgate policy check")
}

/// Writes `<parent>/notation/trustpolicy.oci.json` with [`pass_through_policy`]
/// and returns that policy dir.
pub fn pass_through_policy_dir(parent: &Path) -> PathBuf {
    let policy = parent.join("notation");
    std::fs::create_dir_all(&policy).expect("policy dir");
    std::fs::write(policy.join("trustpolicy.oci.json"), pass_through_policy()).expect("policy");
    policy
}

/// Starts pullgate in `dir` in front of `containerd_socket` with the pass-through
/// policy and its metrics on `listen` (`HOST:PORT` or `unix:PATH`).
pub fn start_pass_through_with_metrics(
    containerd_socket: &Path,
    dir: tempfile::TempDir,
    listen: &str,
) -> Pullgate {
    let policy = pass_through_policy_dir(dir.path());
    Pullgate::start_full(
        containerd_socket,
        dir,
        &format!("[policy]\ndir = {policy:?}\n[metrics]\nlisten = {listen:?}\n"),
    )
}

/// A layout written by [`write_signed_layout`]: the signed image, the unsigned one,
/// and the COSE signature manifest (listed first in the referrers index).
pub struct SignedLayout {
    pub signed: Blob,
    pub unsigned: Blob,
    pub cose: Blob,
}

/// Writes to `dir` a layout with the image `v1` (`signed`) signed by `chain` with
/// COSE (artifactType form) and JWS (legacy form), and the unsigned image
/// `unsigned_tag` (`unsigned`).
pub fn write_signed_layout(
    pki: &Pki,
    chain: &Chain,
    dir: &Path,
    signed: &str,
    (unsigned_tag, unsigned): (&str, &str),
) -> SignedLayout {
    let mut layout = Layout::new();
    let signed = layout.image("v1", signed);
    let unsigned = layout.image(unsigned_tag, unsigned);
    let cose = crate::sign_subject(pki, chain, &signed, Format::Cose);
    let jws = crate::sign_subject(pki, chain, &signed, Format::Jws);
    let cose = layout.signature(
        &signed,
        "application/cose",
        cose,
        SignatureForm::ArtifactType,
    );
    let jws = layout.signature(&signed, "application/jose+json", jws, SignatureForm::Legacy);
    layout.referrers_index(&signed, &[&cose, &jws]);
    layout.write(dir);
    SignedLayout {
        signed,
        unsigned,
        cose,
    }
}
