//! Signs an image that is already in the harness registry as notation does on a
//! registry without the referrers API: a signature manifest (artifactType form)
//! carrying the envelope, listed in the referrers tag-schema index `sha256-<hex>`
//! of the image's digest, both uploaded byte-exact with `harness push-layout`.
//! Also: copying an image within the harness registry and resolving it.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use pullgate::oci::Descriptor;
use pullgate::registry::{Credentials, RegistryClient, RegistryConfig};

use crate::envelope_builder::Format;
use crate::pki::{Chain, KeySpec, Pki};
use crate::signed_layout::{Blob, Layout, SignatureForm};
use crate::Harness;

/// A fresh openssl PKI (root → intermediate → leaf) that signs with its leaf; a
/// trust store holding [`ImageSigner::root_pem`] trusts what it signs.
pub struct ImageSigner {
    pki: Pki,
    chain: Chain,
}

impl ImageSigner {
    pub fn new(key: KeySpec) -> ImageSigner {
        let pki = Pki::new();
        let chain = pki.chain(key);
        ImageSigner { pki, chain }
    }

    /// The root certificate, for a `truststore/x509/ca/<name>/` directory.
    pub fn root_pem(&self) -> &str {
        &self.chain.root.pem
    }

    /// Signs `subject` (the manifest `harness.registry/repo` resolves to) in
    /// `format`, signing time now, and pushes the signature into `repo`.
    pub fn sign_and_push(
        &self,
        harness: &Harness,
        repo: &str,
        subject: &Descriptor,
        format: Format,
    ) {
        // Only the subject's descriptor goes into the envelope and the manifests;
        // its bytes are never written, so placeholders of the real length do.
        let subject = Blob {
            media_type: subject.media_type.clone(),
            digest: subject.digest.clone(),
            bytes: vec![0; subject.size as usize],
        };
        let envelope = crate::sign_subject(&self.pki, &self.chain, &subject, format);
        let mut layout = Layout::new();
        let signature = layout.signature(
            &subject,
            format.media_type(),
            envelope,
            SignatureForm::ArtifactType,
        );
        layout.referrers_index(&subject, &[&signature]);
        let dir = tempfile::tempdir().expect("tempdir");
        layout.write(dir.path());
        let output = Command::new(&harness.script)
            .arg("push-layout")
            .arg(dir.path())
            .arg(&harness.registry)
            .arg(repo)
            .env("PULLGATE_IT_DIR", &harness.dir)
            .output()
            .expect("run harness push-layout");
        assert!(
            output.status.success(),
            "push-layout of the signature for {}/{repo}: {}",
            harness.registry,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `name` made unique to this run (several test processes share the registry).
pub fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{name}-{}-{nanos}", std::process::id())
}

/// Copies an image between registries of the harness (plain HTTP).
pub fn skopeo_copy(from: &str, to: &str) {
    let output = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The descriptor `reference` resolves to in the harness registry (plain HTTP).
pub async fn resolve(registry: &str, reference: &str) -> Descriptor {
    let client = RegistryClient::new(RegistryConfig {
        hosts_dir: None,
        insecure_registries: vec![registry.to_owned()],
        ..Default::default()
    })
    .expect("registry client");
    client
        .resolve(
            &reference.parse().expect("reference"),
            &Credentials::None,
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("resolve {reference}: {e:?}"))
}
