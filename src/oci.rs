//! OCI content types that the signature sources (an OCI layout, a registry) and
//! the verifier share: descriptors, manifests and indexes, the Notary signature
//! manifest shapes (NOTARY.md §1.2, §1.4), and one fetched signature.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The digest type of [`Descriptor::digest`], for modules that see digests only
/// through descriptors.
pub use crate::reference::Digest;

pub const MEDIA_TYPE_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// artifactType of a Notary signature manifest, and the legacy form's config type.
pub const ARTIFACT_TYPE_NOTARY_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// The annotation naming a tag in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// Equality as notation compares a signed target with the artifact: on
    /// mediaType, digest and size only (NOTARY.md §2).
    pub fn same_content(&self, other: &Descriptor) -> bool {
        self.media_type == other.media_type
            && self.digest == other.digest
            && self.size == other.size
    }
}

/// The fields of an image manifest, image index or artifact manifest that the
/// verifier reads; everything is optional so one type parses all three.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Legacy OCI artifact manifest.
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    /// Image index.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    /// Whether this manifest is a Notary signature manifest (either form) whose
    /// subject is `target` (NOTARY.md §1.2, OCI layout walk).
    pub fn is_signature_for(&self, own_media_type: &str, target: &Descriptor) -> bool {
        let Some(subject) = &self.subject else {
            return false;
        };
        if !subject.same_content(target) {
            return false;
        }
        let config_type = self.config.as_ref().map(|c| c.media_type.as_str());
        match own_media_type {
            MEDIA_TYPE_IMAGE_MANIFEST => match self.artifact_type.as_deref() {
                Some(ARTIFACT_TYPE_NOTARY_SIGNATURE) => config_type == Some(MEDIA_TYPE_EMPTY),
                Some(_) => false,
                None => config_type == Some(ARTIFACT_TYPE_NOTARY_SIGNATURE),
            },
            MEDIA_TYPE_ARTIFACT_MANIFEST => {
                self.artifact_type.as_deref() == Some(ARTIFACT_TYPE_NOTARY_SIGNATURE)
            }
            _ => false,
        }
    }

    /// The one envelope blob of a signature manifest (`layers`, or `blobs` in the
    /// legacy artifact manifest).
    pub fn signature_blobs(&self) -> &[Descriptor] {
        if self.layers.is_empty() {
            &self.blobs
        } else {
            &self.layers
        }
    }
}

/// Whether a descriptor listed in a referrers index names a Notary signature.
pub fn lists_notary_signature(descriptor: &Descriptor) -> bool {
    descriptor.artifact_type.as_deref() == Some(ARTIFACT_TYPE_NOTARY_SIGNATURE)
}

/// Whether `media_type` is a manifest type a signature may sign.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        MEDIA_TYPE_IMAGE_MANIFEST
            | MEDIA_TYPE_IMAGE_INDEX
            | MEDIA_TYPE_ARTIFACT_MANIFEST
            | MEDIA_TYPE_DOCKER_MANIFEST
            | MEDIA_TYPE_DOCKER_MANIFEST_LIST
    )
}

/// One fetched signature: its manifest descriptor and the envelope bytes.
#[derive(Debug, Clone)]
pub struct SignatureBlob {
    pub manifest: Descriptor,
    /// The blob's media type: `application/cose` or `application/jose+json`.
    pub media_type: String,
    pub envelope: Vec<u8>,
}
