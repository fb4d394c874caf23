//! An OCI image layout on disk as a signature source (NOTARY.md §1.2, "OCI layout"):
//! resolve `<dir>@<digest>` or `<dir>:<tag>` to the target descriptor, and find its
//! Notary signature manifests by walking the layout's manifests for a matching
//! `subject` and by the referrers tag schema (`sha256-<hex>` index).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::oci::{
    is_manifest_media_type, lists_notary_signature, Descriptor, Manifest, ANNOTATION_REF_NAME,
    MEDIA_TYPE_ARTIFACT_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_IMAGE_INDEX,
    MEDIA_TYPE_IMAGE_MANIFEST,
};
use super::{Budgets, SignatureBlob};
use crate::reference::{Digest, DigestError};

/// How many manifests a layout walk visits at most; a layout is local and
/// trusted not to be hostile, but a cycle or a huge store must still end.
const MAX_WALKED_MANIFESTS: usize = 10_000;

/// `<dir>@<digest>` or `<dir>:<tag>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutReference {
    pub dir: PathBuf,
    pub selector: Selector,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Digest(Digest),
    Tag(String),
}

/// Why an OCI layout could not be read as a signature source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    #[error("{reference:?} names no digest or tag; use <dir>@<digest> or <dir>:<tag>")]
    NoSelector { reference: String },
    #[error("{reference:?}: {source}")]
    BadDigest {
        reference: String,
        #[source]
        source: DigestError,
    },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir} is not an OCI image layout: {reason}")]
    NotALayout { dir: PathBuf, reason: String },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("tag {tag:?} is not in {dir}/index.json")]
    TagNotFound { dir: PathBuf, tag: String },
    #[error("{digest} is not in the layout {dir}")]
    BlobNotFound { dir: PathBuf, digest: Digest },
    #[error("blob {digest} is {actual} bytes, its descriptor says {declared}")]
    SizeMismatch {
        digest: Digest,
        declared: u64,
        actual: u64,
    },
    #[error("blob {digest} is {size} bytes, over the limit of {limit} for {what}")]
    TooLarge {
        digest: Digest,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("blob {digest} does not match its digest")]
    DigestMismatch { digest: Digest },
    #[error("{digest} has media type {media_type:?}, which is not a manifest")]
    NotAManifest { digest: Digest, media_type: String },
    #[error("signature manifest {digest} has {count} blobs; exactly one is required")]
    BlobCount { digest: Digest, count: usize },
    #[error("walking the layout stopped after {0} manifests")]
    WalkLimit(usize),
}

impl LayoutReference {
    /// Parses `<dir>@<digest>` or `<dir>:<tag>`. The last `@` separates a digest;
    /// otherwise a `:` after the last `/` separates a tag.
    pub fn parse(text: &str) -> Result<LayoutReference, LayoutError> {
        if let Some((dir, digest)) = text.rsplit_once('@') {
            let digest = digest.parse().map_err(|source| LayoutError::BadDigest {
                reference: text.to_owned(),
                source,
            })?;
            return Ok(LayoutReference {
                dir: PathBuf::from(dir),
                selector: Selector::Digest(digest),
            });
        }
        let name_start = text.rfind('/').map_or(0, |i| i + 1);
        match text[name_start..].rfind(':') {
            Some(i) if name_start + i + 1 < text.len() => Ok(LayoutReference {
                dir: PathBuf::from(&text[..name_start + i]),
                selector: Selector::Tag(text[name_start + i + 1..].to_owned()),
            }),
            _ => Err(LayoutError::NoSelector {
                reference: text.to_owned(),
            }),
        }
    }
}

/// An opened OCI image layout.
pub struct OciLayout {
    dir: PathBuf,
    index: Manifest,
}

impl OciLayout {
    pub fn open(dir: &Path) -> Result<OciLayout, LayoutError> {
        let marker = dir.join("oci-layout");
        let text = std::fs::read(&marker).map_err(|e| LayoutError::NotALayout {
            dir: dir.to_owned(),
            reason: format!("no readable oci-layout file ({e})"),
        })?;
        let marker: serde_json::Value =
            serde_json::from_slice(&text).map_err(|source| LayoutError::Json {
                path: dir.join("oci-layout"),
                source,
            })?;
        if marker.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(LayoutError::NotALayout {
                dir: dir.to_owned(),
                reason: "imageLayoutVersion is not \"1.0.0\"".to_owned(),
            });
        }
        let index_path = dir.join("index.json");
        let bytes = read_capped(&index_path, super::MAX_MANIFEST_BYTES)?;
        let index = serde_json::from_slice(&bytes).map_err(|source| LayoutError::Json {
            path: index_path,
            source,
        })?;
        Ok(OciLayout {
            dir: dir.to_owned(),
            index,
        })
    }

    /// The target descriptor: for a tag, the `index.json` entry carrying it; for a
    /// digest, the entry with that digest, else the blob itself (its mediaType
    /// field and length).
    pub fn resolve(&self, selector: &Selector) -> Result<Descriptor, LayoutError> {
        let found = match selector {
            Selector::Tag(tag) => self
                .index
                .manifests
                .iter()
                .find(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(tag))
                .cloned()
                .ok_or_else(|| LayoutError::TagNotFound {
                    dir: self.dir.clone(),
                    tag: tag.clone(),
                })?,
            Selector::Digest(digest) => {
                match self.index.manifests.iter().find(|d| &d.digest == digest) {
                    Some(descriptor) => descriptor.clone(),
                    None => {
                        let bytes =
                            self.blob(digest, None, super::MAX_MANIFEST_BYTES, "a manifest")?;
                        let manifest: Manifest = self.json(digest, &bytes)?;
                        Descriptor {
                            media_type: manifest.media_type.unwrap_or_default(),
                            digest: digest.clone(),
                            size: bytes.len() as u64,
                            annotations: Default::default(),
                            artifact_type: manifest.artifact_type,
                        }
                    }
                }
            }
        };
        if !is_manifest_media_type(&found.media_type) {
            return Err(LayoutError::NotAManifest {
                digest: found.digest,
                media_type: found.media_type,
            });
        }
        // The target must be present and match its digest.
        self.blob(
            &found.digest,
            Some(found.size),
            super::MAX_MANIFEST_BYTES,
            "a manifest",
        )?;
        Ok(Descriptor {
            annotations: Default::default(),
            ..found
        })
    }

    /// Signature manifests whose subject is `target`, in the layout's order
    /// (`index.json` first, then nested indexes), followed by any listed only in
    /// the `<alg>-<hex>` referrers tag index. Each is listed once.
    pub fn signature_manifests(&self, target: &Descriptor) -> Result<Vec<Descriptor>, LayoutError> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut queue: Vec<Descriptor> = self.index.manifests.clone();
        queue.reverse();
        let mut walked = 0usize;
        let mut visited = HashSet::new();
        while let Some(descriptor) = queue.pop() {
            if !visited.insert(descriptor.digest.clone()) {
                continue;
            }
            walked += 1;
            if walked > MAX_WALKED_MANIFESTS {
                return Err(LayoutError::WalkLimit(MAX_WALKED_MANIFESTS));
            }
            let media_type = descriptor.media_type.as_str();
            if !matches!(
                media_type,
                MEDIA_TYPE_IMAGE_MANIFEST
                    | MEDIA_TYPE_IMAGE_INDEX
                    | MEDIA_TYPE_ARTIFACT_MANIFEST
                    | MEDIA_TYPE_DOCKER_MANIFEST_LIST
            ) {
                continue;
            }
            let bytes = self.blob(
                &descriptor.digest,
                Some(descriptor.size),
                super::MAX_MANIFEST_BYTES,
                "a manifest",
            )?;
            let manifest: Manifest = self.json(&descriptor.digest, &bytes)?;
            if manifest.is_signature_for(media_type, target)
                && seen.insert(descriptor.digest.clone())
            {
                found.push(Descriptor {
                    artifact_type: manifest.artifact_type.clone(),
                    ..descriptor.clone()
                });
            }
            if matches!(
                media_type,
                MEDIA_TYPE_IMAGE_INDEX | MEDIA_TYPE_DOCKER_MANIFEST_LIST
            ) {
                for child in manifest.manifests.iter().rev() {
                    queue.push(child.clone());
                }
            }
        }

        // The referrers tag schema: an index tagged `<alg>-<hex>` listing referrers.
        let tag = target.digest.referrers_tag();
        if let Some(index) = self
            .index
            .manifests
            .iter()
            .find(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(&tag))
        {
            let bytes = self.blob(
                &index.digest,
                Some(index.size),
                super::MAX_MANIFEST_BYTES,
                "a referrers index",
            )?;
            let referrers: Manifest = self.json(&index.digest, &bytes)?;
            for descriptor in referrers.manifests {
                if lists_notary_signature(&descriptor) && seen.insert(descriptor.digest.clone()) {
                    found.push(descriptor);
                }
            }
        }
        Ok(found)
    }

    /// Fetches a signature manifest and its one envelope blob, within `budgets`
    /// (NOTARY.md §1.3: manifest ≤ 4 MiB, exactly one blob, blob ≤ 32 MiB).
    pub fn signature(
        &self,
        manifest: &Descriptor,
        budgets: &Budgets,
    ) -> Result<SignatureBlob, LayoutError> {
        let bytes = self.blob(
            &manifest.digest,
            Some(manifest.size),
            budgets.max_manifest_bytes,
            "a signature manifest",
        )?;
        let parsed: Manifest = self.json(&manifest.digest, &bytes)?;
        let blobs = parsed.signature_blobs();
        let [blob] = blobs else {
            return Err(LayoutError::BlobCount {
                digest: manifest.digest.clone(),
                count: blobs.len(),
            });
        };
        let envelope = self.blob(
            &blob.digest,
            Some(blob.size),
            budgets.max_envelope_bytes,
            "a signature envelope",
        )?;
        Ok(SignatureBlob {
            manifest: manifest.clone(),
            media_type: blob.media_type.clone(),
            envelope,
        })
    }

    fn json(&self, digest: &Digest, bytes: &[u8]) -> Result<Manifest, LayoutError> {
        serde_json::from_slice(bytes).map_err(|source| LayoutError::Json {
            path: self.blob_path(digest),
            source,
        })
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// Reads a blob, checking its size against the descriptor and `limit` before
    /// reading, and its content against the digest after.
    fn blob(
        &self,
        digest: &Digest,
        declared: Option<u64>,
        limit: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, LayoutError> {
        if let Some(size) = declared {
            if size > limit {
                return Err(LayoutError::TooLarge {
                    digest: digest.clone(),
                    what,
                    size,
                    limit,
                });
            }
        }
        let path = self.blob_path(digest);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LayoutError::BlobNotFound {
                    dir: self.dir.clone(),
                    digest: digest.clone(),
                })
            }
            Err(source) => return Err(LayoutError::Io { path, source }),
        };
        let actual = meta.len();
        if let Some(declared) = declared {
            if actual != declared {
                return Err(LayoutError::SizeMismatch {
                    digest: digest.clone(),
                    declared,
                    actual,
                });
            }
        }
        if actual > limit {
            return Err(LayoutError::TooLarge {
                digest: digest.clone(),
                what,
                size: actual,
                limit,
            });
        }
        let bytes = read_capped(&path, limit)?;
        if !digest.matches(&bytes) {
            return Err(LayoutError::DigestMismatch {
                digest: digest.clone(),
            });
        }
        Ok(bytes)
    }
}

/// An OCI layout as a signature source. The files are read synchronously: the
/// layout form of `pullgate verify` is a command-line run, not the gate.
impl super::SignatureSource for OciLayout {
    type Error = LayoutError;

    async fn signature_manifests(
        &self,
        target: &Descriptor,
    ) -> Result<Vec<Descriptor>, LayoutError> {
        OciLayout::signature_manifests(self, target)
    }

    async fn signature(
        &self,
        manifest: &Descriptor,
        budgets: &Budgets,
    ) -> Result<SignatureBlob, LayoutError> {
        OciLayout::signature(self, manifest, budgets)
    }
}

/// Reads at most `limit` bytes (a file may grow between stat and read).
fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, LayoutError> {
    let io = |source| LayoutError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(LayoutError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(format!("larger than {limit} bytes")),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_references_parse() {
        let digest = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        let parsed = LayoutReference::parse(&format!("/tmp/a:b/layout@{digest}")).expect("digest");
        assert_eq!(parsed.dir, PathBuf::from("/tmp/a:b/layout"));
        assert_eq!(
            parsed.selector,
            Selector::Digest(digest.parse().expect("valid"))
        );
        let parsed = LayoutReference::parse("/tmp/a:b/layout:v1").expect("tag");
        assert_eq!(parsed.dir, PathBuf::from("/tmp/a:b/layout"));
        assert_eq!(parsed.selector, Selector::Tag("v1".into()));
        assert!(matches!(
            LayoutReference::parse("/tmp/a:b/layout"),
            Err(LayoutError::NoSelector { .. })
        ));
        assert!(matches!(
            LayoutReference::parse("layout:"),
            Err(LayoutError::NoSelector { .. })
        ));
        assert!(matches!(
            LayoutReference::parse("layout@sha256:xyz"),
            Err(LayoutError::BadDigest { .. })
        ));
    }
}
