//! Small in-memory fixtures the verification tests share: signature blobs and
//! trust stores made from the kit's PKI.

use pullgate::oci::{Descriptor, SignatureBlob};
use pullgate::policy::{StoreType, TrustStore};
use pullgate::reference::{Digest, DigestAlgorithm};

use crate::envelope_builder::{Format, Target};
use crate::pki::Issued;

/// A store of `store_type` named `name` holding `certs` (one PEM file each,
/// `cert0.pem`, `cert1.pem`, …).
pub fn store(store_type: StoreType, name: &str, certs: &[&Issued]) -> TrustStore {
    let files = certs
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("cert{i}.pem"), c.pem.as_bytes().to_vec()))
        .collect();
    TrustStore::from_files(store_type, name, files).expect("fixture store is valid")
}

/// `envelope` as a signature of `format`. The signature manifest descriptor is
/// made up (the engine only reports its digest); its digest is that of the
/// envelope so each blob is distinguishable.
pub fn blob(format: Format, envelope: Vec<u8>) -> SignatureBlob {
    SignatureBlob {
        manifest: Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: Digest::of(DigestAlgorithm::Sha256, &envelope),
            size: 700,
            annotations: Default::default(),
            artifact_type: Some("application/vnd.cncf.notary.signature".into()),
        },
        media_type: format.media_type().into(),
        envelope,
    }
}

/// The descriptor of the artifact `target` names (an envelope's payload).
pub fn descriptor(target: &Target) -> Descriptor {
    Descriptor {
        media_type: target.media_type.clone(),
        digest: target.digest.parse().expect("fixture digest"),
        size: target.size,
        annotations: Default::default(),
        artifact_type: None,
    }
}
