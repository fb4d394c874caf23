//! containerd's native images API (`containerd.services.images.v1.Images`), used to
//! record a tag the user asked for after pullgate pulled the verified digest, so CRI
//! `ImageStatus(tag)`, `ListImages` and the kubelet's IfNotPresent check see it.
//!
//! The generated client lives in `containerd-client`; only the conversions between
//! its types and ours are here. The CRI plugin keeps its images in the `k8s.io`
//! namespace and mirrors that namespace's image records into its own cache through
//! containerd's image events, so a record created here reaches CRI without any call
//! on the CRI socket.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    CreateImageRequest, GetImageRequest, Image, ListImagesRequest, UpdateImageRequest,
};
use containerd_client::types::Descriptor;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

use crate::oci;

/// The containerd namespace of the CRI plugin's images.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The gRPC metadata key containerd reads the namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The label the CRI plugin puts on every image record it manages (containerd
/// `pkg/cri/server/helpers.go`, `imageLabelKey`/`imageLabelValue`); a tag pullgate
/// records carries it too, like the record containerd made for the digest.
pub const CRI_MANAGED_LABEL: (&str, &str) = ("io.cri-containerd.image", "managed");

/// Dialling a local unix socket either succeeds at once or containerd is not there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Each images call is a small metadata transaction (bbolt) on the node; one taking
/// longer than this means containerd is wedged, and the caller must not wait forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// An image record as containerd stores it; the target is the verified manifest
/// (or index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub target: oci::Descriptor,
    pub labels: BTreeMap<String, String>,
}

/// Why an image-store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageStoreError {
    /// containerd is not answering on its socket (absent, restarting, wedged).
    #[error("containerd images service at {socket} is unavailable")]
    Unavailable {
        socket: PathBuf,
        #[source]
        source: tonic::Status,
    },
    /// containerd answered and refused the call.
    #[error("containerd at {socket} refused to {operation} image {name:?}")]
    Refused {
        socket: PathBuf,
        operation: &'static str,
        name: String,
        #[source]
        source: tonic::Status,
    },
    #[error("containerd at {socket} returned image {name:?} without a target descriptor")]
    MissingTarget { socket: PathBuf, name: String },
    /// The target's digest or size is not one an OCI descriptor can hold.
    #[error("containerd at {socket} returned image {name:?} with an invalid target descriptor ({digest}, {size} bytes)")]
    InvalidTarget {
        socket: PathBuf,
        name: String,
        digest: String,
        size: i64,
    },
}

impl ImageStoreError {
    /// What containerd (or the connection to it) said, for text a person reads:
    /// the gRPC status message, without the status's own debug fields.
    pub fn status_message(&self) -> Option<&str> {
        match self {
            ImageStoreError::Unavailable { source, .. }
            | ImageStoreError::Refused { source, .. } => Some(source.message()),
            ImageStoreError::MissingTarget { .. } | ImageStoreError::InvalidTarget { .. } => None,
        }
    }
}

/// A cloneable handle to containerd's images service in the CRI namespace. The
/// channel is made on first use (it needs a runtime) and dials lazily; tonic redials
/// by itself after containerd has gone away and come back.
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

struct Inner {
    socket: PathBuf,
    channel: OnceLock<Channel>,
}

impl ImageStore {
    pub fn new(containerd_socket: &Path) -> ImageStore {
        ImageStore {
            inner: Arc::new(Inner {
                socket: containerd_socket.to_owned(),
                channel: OnceLock::new(),
            }),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    /// Creates or updates the image record `name` (e.g.
    /// `registry.example:5000/library/busybox:1.36`) to point at `target`, with
    /// `labels` merged onto the CRI plugin's `io.cri-containerd.image=managed`.
    ///
    /// An existing record gets its target and exactly these labels replaced (field
    /// mask `target`, `labels.<key>`), so labels other writers put there survive.
    /// containerd checks nothing about the content here: the caller records the tag
    /// only after containerd's own pull of `target` has returned.
    pub async fn tag(
        &self,
        name: &str,
        target: &oci::Descriptor,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ImageStoreError> {
        let image = image_record(name, target, labels);
        // The common case on a node is a re-pull of a tag already recorded: try the
        // update first, create on NotFound, and if a concurrent pull created it in
        // between (AlreadyExists), update that one.
        match self.update(&image).await {
            Err(ImageStoreError::Refused { source, .. }) if source.code() == Code::NotFound => {}
            other => return other,
        }
        match self.create(&image).await {
            Err(ImageStoreError::Refused { source, .. })
                if source.code() == Code::AlreadyExists =>
            {
                self.update(&image).await
            }
            other => other,
        }
    }

    /// The record `name`, or `None` when containerd has none by that name.
    pub async fn get(&self, name: &str) -> Result<Option<ImageRecord>, ImageStoreError> {
        let request = GetImageRequest {
            name: name.to_owned(),
        };
        let response = match self.client().get(self.request(request)).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(None),
            Err(status) => return Err(self.error("get", name, status)),
        };
        response.image.map(|image| self.record(image)).transpose()
    }

    /// Every image record in the CRI namespace, in containerd's order (by name):
    /// tags, `repo@digest` names and the CRI plugin's image-ID records
    /// (`sha256:…`) alike. A record without a usable target fails the whole
    /// listing rather than being left out, so no caller reports on a partial list.
    pub async fn list(&self) -> Result<Vec<ImageRecord>, ImageStoreError> {
        let request = ListImagesRequest {
            filters: Vec::new(),
        };
        let response = self
            .client()
            .list(self.request(request))
            .await
            .map_err(|status| self.error("list", "*", status))?
            .into_inner();
        response
            .images
            .into_iter()
            .map(|image| self.record(image))
            .collect()
    }

    /// Our record of containerd's `image`.
    fn record(&self, image: Image) -> Result<ImageRecord, ImageStoreError> {
        let Some(target) = image.target else {
            return Err(ImageStoreError::MissingTarget {
                socket: self.inner.socket.clone(),
                name: image.name,
            });
        };
        let (Ok(digest), Ok(size)) = (target.digest.parse(), u64::try_from(target.size)) else {
            return Err(ImageStoreError::InvalidTarget {
                socket: self.inner.socket.clone(),
                name: image.name,
                digest: target.digest,
                size: target.size,
            });
        };
        Ok(ImageRecord {
            name: image.name,
            target: oci::Descriptor {
                media_type: target.media_type,
                digest,
                size,
                annotations: BTreeMap::new(),
                artifact_type: None,
            },
            labels: image.labels.into_iter().collect(),
        })
    }

    async fn update(&self, image: &Image) -> Result<(), ImageStoreError> {
        let mut paths = vec!["target".to_owned()];
        paths.extend(image.labels.keys().map(|key| format!("labels.{key}")));
        let request = UpdateImageRequest {
            image: Some(image.clone()),
            update_mask: Some(prost_types::FieldMask { paths }),
            source_date_epoch: None,
        };
        self.client()
            .update(self.request(request))
            .await
            .map(drop)
            .map_err(|status| self.error("update", &image.name, status))
    }

    async fn create(&self, image: &Image) -> Result<(), ImageStoreError> {
        let request = CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        };
        self.client()
            .create(self.request(request))
            .await
            .map(drop)
            .map_err(|status| self.error("create", &image.name, status))
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert(NAMESPACE_HEADER, MetadataValue::from_static(CRI_NAMESPACE));
        request
    }

    fn client(&self) -> ImagesClient<Channel> {
        let channel = self
            .inner
            .channel
            .get_or_init(|| lazy_channel(self.inner.socket.clone()));
        ImagesClient::new(channel.clone())
    }

    fn error(&self, operation: &'static str, name: &str, status: tonic::Status) -> ImageStoreError {
        let socket = self.inner.socket.clone();
        match status.code() {
            // tonic reports a failed dial, a dropped connection and the call timeout
            // with these codes; containerd itself uses them the same way.
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                ImageStoreError::Unavailable {
                    socket,
                    source: status,
                }
            }
            _ => ImageStoreError::Refused {
                socket,
                operation,
                name: name.to_owned(),
                source: status,
            },
        }
    }
}

/// A channel to `socket` that dials on the first call and again after the
/// connection is lost. The URI only fills the `:authority` header; containerd
/// ignores it.
fn lazy_channel(socket: PathBuf) -> Channel {
    Endpoint::from_static("http://containerd")
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
}

fn image_record(name: &str, target: &oci::Descriptor, labels: &BTreeMap<String, String>) -> Image {
    let mut all_labels: HashMap<String, String> = labels
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    // Last, so no caller label can make the record invisible to the CRI plugin.
    all_labels.insert(
        CRI_MANAGED_LABEL.0.to_owned(),
        CRI_MANAGED_LABEL.1.to_owned(),
    );
    Image {
        name: name.to_owned(),
        labels: all_labels,
        target: Some(Descriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.to_string(),
            // containerd's descriptor size is an int64; no manifest comes near it.
            size: i64::try_from(target.size).unwrap_or(i64::MAX),
            annotations: HashMap::new(),
        }),
        created_at: None,
        updated_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_carries_the_cri_label_and_the_callers_labels() {
        let target = oci::Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .expect("digest"),
            size: 42,
            annotations: BTreeMap::new(),
            artifact_type: None,
        };
        let labels = BTreeMap::from([("io.pullgate.verified".to_owned(), "true".to_owned())]);
        let image = image_record("r.example/a:1", &target, &labels);
        assert_eq!(image.name, "r.example/a:1");
        assert_eq!(
            image.labels,
            HashMap::from([
                ("io.cri-containerd.image".to_owned(), "managed".to_owned()),
                ("io.pullgate.verified".to_owned(), "true".to_owned()),
            ])
        );
        let descriptor = image.target.expect("target set");
        assert_eq!(descriptor.digest, target.digest.to_string());
        assert_eq!(descriptor.size, 42);
        assert_eq!(descriptor.media_type, target.media_type);
    }
}
