//! Writes small OCI image layouts to push to a real registry: an image (config +
//! one layer + manifest, tagged), optionally signed with Notary signature manifests
//! (both the `artifactType` form and the legacy form) and listed in the referrers
//! tag-schema index `sha256-<hex>`, as notation pushes them to registries without a
//! referrers API. `integration/harness push-layout` uploads them byte-exact.

use std::path::Path;

use pullgate::reference::{Digest, DigestAlgorithm};
use serde_json::json;

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const NOTARY: &str = "application/vnd.cncf.notary.signature";
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A descriptor as JSON plus its parts.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: Digest::of(DigestAlgorithm::Sha256, &bytes),
            bytes,
        }
    }

    pub fn descriptor(&self) -> serde_json::Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.bytes.len()})
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// How a signature manifest is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    /// `artifactType: application/vnd.cncf.notary.signature`, empty config.
    ArtifactType,
    /// notation v1.x: config mediaType `application/vnd.cncf.notary.signature`.
    Legacy,
}

/// A layout under construction.
pub struct Layout {
    blobs: Vec<Blob>,
    index: Vec<serde_json::Value>,
}

impl Layout {
    pub fn new() -> Layout {
        Layout {
            blobs: Vec::new(),
            index: Vec::new(),
        }
    }

    fn add(&mut self, blob: Blob) -> Blob {
        if !self.blobs.iter().any(|b| b.digest == blob.digest) {
            self.blobs.push(blob.clone());
        }
        blob
    }

    /// An image whose one layer holds `content`; tagged `tag`. Returns the manifest.
    pub fn image(&mut self, tag: &str, content: &str) -> Blob {
        let layer = self.add(Blob::new(
            "application/vnd.oci.image.layer.v1.tar",
            content.as_bytes().to_vec(),
        ));
        let config = self.add(Blob::new(
            "application/vnd.oci.image.config.v1+json",
            serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]}})).expect("json"),
        ));
        let manifest = self.add(Blob::new(
            MANIFEST,
            serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            }))
            .expect("json"),
        ));
        let mut entry = manifest.descriptor();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.index.push(entry);
        manifest
    }

    /// A signature manifest for `subject` carrying `envelope` (of `envelope_type`).
    pub fn signature(
        &mut self,
        subject: &Blob,
        envelope_type: &str,
        envelope: Vec<u8>,
        form: SignatureForm,
    ) -> Blob {
        let envelope = self.add(Blob::new(envelope_type, envelope));
        let empty = self.add(Blob::new(EMPTY, b"{}".to_vec()));
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "layers": [envelope.descriptor()],
            "subject": subject.descriptor(),
            "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
        });
        match form {
            SignatureForm::ArtifactType => {
                manifest["artifactType"] = NOTARY.into();
                manifest["config"] = empty.descriptor();
            }
            SignatureForm::Legacy => {
                manifest["config"] =
                    json!({"mediaType": NOTARY, "digest": empty.digest.to_string(), "size": 2});
            }
        }
        self.add(Blob::new(
            MANIFEST,
            serde_json::to_vec(&manifest).expect("json"),
        ))
    }

    /// The referrers tag-schema index for `subject` listing `signatures`.
    pub fn referrers_index(&mut self, subject: &Blob, signatures: &[&Blob]) {
        let manifests: Vec<serde_json::Value> = signatures
            .iter()
            .map(|s| {
                let mut d = s.descriptor();
                d["artifactType"] = NOTARY.into();
                d
            })
            .collect();
        let index = self.add(Blob::new(
            INDEX,
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}),
            )
            .expect("json"),
        ));
        let mut entry = index.descriptor();
        entry["annotations"] =
            json!({"org.opencontainers.image.ref.name": subject.digest.referrers_tag()});
        self.index.push(entry);
    }

    /// Writes the layout to `dir` (created).
    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write");
        for blob in &self.blobs {
            std::fs::write(
                dir.join("blobs/sha256").join(blob.digest.hex()),
                &blob.bytes,
            )
            .expect("write blob");
        }
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": self.index});
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("write index");
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new()
    }
}
