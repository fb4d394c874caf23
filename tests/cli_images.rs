//! `pullgate images` and `ImageStore::list` against the real containerd and
//! docker-registry of `integration/harness`: images pulled through pullgate show
//! the verdict pullgate recorded on them; images that reached containerd around
//! pullgate (a CRI pull straight to containerd, a record made through the images
//! API) are verified now and show what `strict` would refuse and why; a record of
//! a registry that cannot be reached is never reported verified.
//!
//! containerd's `k8s.io` namespace is shared with the other tests of the harness,
//! so the assertions look only at this run's uniquely named images (and the exit
//! status, which other tests' images can only make worse).

use pullgate_testkit as support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use pullgate::oci::Descriptor;
use pullgate::upstream::ImageStore;
use serde_json::Value;
use support::envelope_builder::Format;
use support::pki::KeySpec;
use support::pod::pull;
use support::signing::{resolve, skopeo_copy, unique, ImageSigner};
use support::{Harness, Pullgate};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A registry address nothing listens on (port 1 on loopback: connection refused).
const UNREACHABLE: &str = "127.0.0.1:1";

/// busybox copied to a fresh repository `images/<name>-…`, tagged `v1`:
/// (repository, reference, target).
async fn image(harness: &Harness, name: &str) -> (String, String, Descriptor) {
    let repo = format!("images/{}", unique(name));
    let reference = format!("{}/{repo}:v1", harness.registry);
    skopeo_copy(&harness.busybox, &reference);
    let target = resolve(&harness.registry, &reference).await;
    (repo, reference, target)
}

/// Writes a notation policy directory: one `audit` statement `apps` over `scopes`
/// trusting `ca:acme` (holding `root_pem`) for any identity.
fn write_policy(dir: &Path, scopes: &[String], root_pem: &str) {
    let store = dir.join("truststore/x509/ca/acme");
    std::fs::create_dir_all(&store).expect("store dir");
    std::fs::write(store.join("root.pem"), root_pem).expect("root");
    let policy = serde_json::json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "apps",
            "registryScopes": scopes,
            "signatureVerification": {"level": "audit"},
            "trustStores": ["ca:acme"],
            "trustedIdentities": ["*"],
        }],
    });
    std::fs::write(dir.join("trustpolicy.oci.json"), policy.to_string()).expect("policy");
}

/// `pullgate images --config CONFIG ARGS…`: (exit code, stdout, stderr).
fn images(config: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["images", "--config"])
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run pullgate images");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The table row of `name` (its first column is exactly the name).
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in\n{table}"))
}

/// The JSON objects by name.
fn by_name(json: &str) -> BTreeMap<String, Value> {
    let array: Vec<Value> = serde_json::from_str(json).expect("--output json is a JSON array");
    array
        .into_iter()
        .map(|object| {
            let name = object["name"].as_str().expect("name").to_owned();
            (name, object)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_returns_every_record_of_the_cri_namespace() {
    let Some(harness) = Harness::from_env("list_returns_every_record_of_the_cri_namespace") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let store = ImageStore::new(&harness.containerd_socket);
    // A CRI pull makes three records: the tag, `repo@digest` and the image ID.
    let (repo, reference, target) = image(&harness, "listed").await;
    let image_id = pull(&harness.direct_client(), &reference)
        .await
        .unwrap_or_else(|e| panic!("pull {reference} from containerd: {e:?}"));
    let pinned = format!("{}/{repo}@{}", harness.registry, target.digest);
    // And one written through the images API, with a label.
    let labelled = format!("{}/{repo}:labelled", harness.registry);
    let labels = BTreeMap::from([("io.pullgate.test".to_owned(), "listed".to_owned())]);
    store.tag(&labelled, &target, &labels).await.expect("tag");
    let listed = store.list().await.expect("List");
    for name in [&reference, &pinned, &image_id, &labelled] {
        let record = listed
            .iter()
            .find(|r| &r.name == name)
            .unwrap_or_else(|| panic!("{name} not listed: {listed:?}"));
        // The ID record points at the manifest too (its name is the config digest).
        assert_eq!(record.target.digest, target.digest, "{record:?}");
        assert_eq!(record.target.media_type, target.media_type);
        assert_eq!(record.target.size, target.size);
        assert_eq!(
            Some(record),
            store.get(name).await.expect("Get").as_ref(),
            "List and Get agree"
        );
    }
    let record = listed.iter().find(|r| r.name == labelled).expect("listed");
    assert_eq!(
        record.labels.get("io.pullgate.test").map(String::as_str),
        Some("listed")
    );
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "containerd lists records by name");
}

#[tokio::test(flavor = "multi_thread")]
async fn images_shows_recorded_verdicts_and_what_strict_would_refuse() {
    let Some(harness) =
        Harness::from_env("images_shows_recorded_verdicts_and_what_strict_would_refuse")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let trusted = ImageSigner::new(KeySpec::P256);
    let untrusted = ImageSigner::new(KeySpec::P256);
    // Pulled through pullgate: signed by the trusted CA (verified) and by an
    // untrusted one (at `audit` authenticity is only logged: allowed with failures).
    let (signed_repo, signed_ref, signed) = image(&harness, "signed").await;
    trusted.sign_and_push(&harness, &signed_repo, &signed, Format::Cose);
    let (logged_repo, logged_ref, logged) = image(&harness, "logged").await;
    untrusted.sign_and_push(&harness, &logged_repo, &logged, Format::Jws);
    // Pulled straight from containerd, around pullgate: unsigned, and signed by the
    // untrusted CA.
    let (unsigned_repo, unsigned_ref, unsigned) = image(&harness, "unsigned").await;
    let (bypass_repo, bypass_ref, bypass) = image(&harness, "bypass").await;
    untrusted.sign_and_push(&harness, &bypass_repo, &bypass, Format::Cose);
    // Two records of a registry nobody answers for.
    let unreachable_repo = format!("images/{}", unique("unreachable"));
    let unreachable_ref = format!("{UNREACHABLE}/{unreachable_repo}:v1");
    let unreachable_too = format!("{UNREACHABLE}/{unreachable_repo}-too:v1");

    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("notation");
    let scopes: Vec<String> = [&signed_repo, &logged_repo, &unsigned_repo, &bypass_repo]
        .iter()
        .map(|repo| format!("{}/{repo}", harness.registry))
        .chain([
            format!("{UNREACHABLE}/{unreachable_repo}"),
            format!("{UNREACHABLE}/{unreachable_repo}-too"),
        ])
        .collect();
    write_policy(&policy, &scopes, trusted.root_pem());
    let config_text = format!(
        "[policy]\ndir = {policy:?}\n[registry]\ninsecure = [{:?}, {UNREACHABLE:?}]\ntimeout = \"10s\"\n",
        harness.registry
    );
    let pullgate = Pullgate::start_full(&harness.containerd_socket, dir, &config_text);
    let config = pullgate.dir.path().join("config.toml");
    let client = pullgate.client();
    for reference in [&signed_ref, &logged_ref] {
        pull(&client, reference)
            .await
            .unwrap_or_else(|e| panic!("pull {reference} through pullgate: {e:?}"));
    }
    let direct = harness.direct_client();
    for reference in [&unsigned_ref, &bypass_ref] {
        pull(&direct, reference)
            .await
            .unwrap_or_else(|e| panic!("pull {reference} from containerd: {e:?}"));
    }
    for name in [&unreachable_ref, &unreachable_too] {
        ImageStore::new(&harness.containerd_socket)
            .tag(name, &signed, &BTreeMap::new())
            .await
            .expect("record the unreachable image");
    }

    let (code, table, stderr) = images(&config, &[]);
    assert_eq!(code, 1, "some images would be refused\n{table}\n{stderr}");
    let (json_code, json, _) = images(&config, &["--output", "json"]);
    assert_eq!(json_code, 1);
    let objects = by_name(&json);
    assert!(
        objects.keys().all(|name| !name.starts_with("sha256:")),
        "image-ID records are left out: {json}"
    );

    let pinned =
        |repo: &str, target: &Descriptor| format!("{}/{repo}@{}", harness.registry, target.digest);
    // Verified through pullgate: the recorded verdict, under its tag and digest.
    for name in [signed_ref.clone(), pinned(&signed_repo, &signed)] {
        let object = &objects[&name];
        assert_eq!(object["digest"], signed.digest.to_string(), "{object}");
        assert_eq!(object["statement"], "apps");
        assert_eq!(object["level"], "audit");
        assert_eq!(object["verdict"]["state"], "verified", "{object}");
        assert_eq!(object["verdict"]["source"], "recorded", "{object}");
        let until = object["verdict"]["valid_until"].as_str().expect("until");
        assert_eq!(object["strict"], "pass");
        assert!(
            row(&table, &name).ends_with(&format!("verified until {until} (recorded)")),
            "{table}"
        );
    }
    // Allowed at audit with authenticity failing: what strict would refuse.
    let object = &objects[&logged_ref];
    assert_eq!(
        object["verdict"]["state"], "allowed-with-failures",
        "{object}"
    );
    assert_eq!(object["verdict"]["source"], "recorded");
    assert_eq!(object["verdict"]["reason"], "failed checks: authenticity");
    assert_eq!(object["strict"], "refuse");
    assert!(
        row(&table, &logged_ref).ends_with(
            "strict would refuse: failed checks: authenticity \
             (allowed with failures at audit) (recorded)"
        ),
        "{table}"
    );
    // Unsigned, pulled around pullgate: verified now, refused.
    for name in [unsigned_ref.clone(), pinned(&unsigned_repo, &unsigned)] {
        let object = &objects[&name];
        assert_eq!(object["verdict"]["state"], "refused", "{object}");
        assert_eq!(object["verdict"]["source"], "verified-now");
        let reason = format!(
            "no signature is associated with {}",
            pinned(&unsigned_repo, &unsigned)
        );
        let stated = object["verdict"]["reason"].as_str().expect("reason");
        assert!(stated.starts_with(&reason), "{object}");
        assert_eq!(object["strict"], "refuse");
        assert!(
            row(&table, &name).contains(&format!("strict would refuse: {reason}")),
            "{table}"
        );
    }
    // Signed by an untrusted CA, pulled around pullgate: the logged failure, verified now.
    let object = &objects[&bypass_ref];
    assert_eq!(
        object["verdict"]["state"], "allowed-with-failures",
        "{object}"
    );
    assert_eq!(object["verdict"]["source"], "verified-now");
    let reason = object["verdict"]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("authenticity: "), "{object}");
    assert_eq!(object["strict"], "refuse");
    assert!(
        row(&table, &bypass_ref).contains(&format!("strict would refuse: {reason}")),
        "{table}"
    );
    // Its registry unreachable: never verified.
    let object = &objects[&unreachable_ref];
    assert_eq!(object["verdict"]["state"], "unavailable", "{object}");
    assert_eq!(object["verdict"]["source"], Value::Null);
    let reason = object["verdict"]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("registry unreachable: "), "{object}");
    assert_eq!(object["strict"], "unknown");
    assert!(
        row(&table, &unreachable_ref).ends_with(&format!("not verified: {reason}")),
        "{table}"
    );
    // The registry was asked once: the second image has the first one's answer.
    assert_eq!(
        objects[&unreachable_too]["verdict"], object["verdict"],
        "{json}"
    );
    // The table and the JSON report the same images.
    let table_names = table
        .lines()
        .skip(1)
        .filter(|l| !l.contains(" image name(s): "));
    assert_eq!(table_names.count(), objects.len(), "{table}");
    assert!(table
        .lines()
        .last()
        .expect("summary")
        .contains("would be refused"));

    // Without the registry: what was recorded still shows, the rest is not checked.
    let (code, json, _) = images(&config, &["--output", "json", "--no-verify"]);
    assert_eq!(code, 1);
    let offline = by_name(&json);
    assert_eq!(
        offline[&signed_ref]["verdict"],
        objects[&signed_ref]["verdict"]
    );
    let object = &offline[&unsigned_ref];
    assert_eq!(object["verdict"]["state"], "not-checked", "{object}");
    assert_eq!(object["verdict"]["reason"], "no verdict recorded");
    assert_eq!(object["strict"], "unknown");
}

#[test]
fn a_broken_config_is_exit_status_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[policy]\ndir = \"relative\"\n").expect("config");
    let (code, stdout, stderr) = images(&config, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // A policy that loads, and no containerd: no report either.
    let policy = dir.path().join("notation");
    let signer = ImageSigner::new(KeySpec::P256);
    write_policy(&policy, &["r.test/app".to_owned()], signer.root_pem());
    let socket = dir.path().join("no-containerd.sock");
    std::fs::write(
        &config,
        format!("[policy]\ndir = {policy:?}\n[upstream]\ncontainerd_socket = {socket:?}\n"),
    )
    .expect("config");
    let (code, stdout, stderr) = images(&config, &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "Error: containerd images service at {} is unavailable: \
             No such file or directory (os error 2)",
            socket.display()
        )
    );
    let output = Command::new(env!("CARGO_BIN_EXE_pullgate"))
        .args(["images", "--output", "yaml"])
        .output()
        .expect("run pullgate images");
    assert_eq!(output.status.code(), Some(2), "a usage error");
}
