//! The OCI layout signature source against notation's own e2e layouts
//! (../shared/vectors/notation/oci-layouts, facts from its CASES.md §5.1).

use pullgate_testkit as support;

use pullgate::verify::layout::{LayoutError, LayoutReference, OciLayout, Selector};
use pullgate::verify::Budgets;

const SUBJECT: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

fn open(name: &str, test: &str) -> Option<OciLayout> {
    let dir = support::vectors_dir("notation", test)?
        .join("oci-layouts")
        .join(name);
    Some(OciLayout::open(&dir).expect("layout opens"))
}

#[test]
fn tag_and_digest_resolve_to_the_same_target() {
    let Some(layout) = open(
        "e2e-valid-signature",
        "tag_and_digest_resolve_to_the_same_target",
    ) else {
        return;
    };
    let by_tag = layout.resolve(&Selector::Tag("v1".into())).expect("tag v1");
    assert_eq!(by_tag.digest.to_string(), SUBJECT);
    assert_eq!(by_tag.size, 517);
    assert_eq!(
        by_tag.media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let by_digest = layout
        .resolve(&Selector::Digest(SUBJECT.parse().expect("digest")))
        .expect("digest");
    assert_eq!(by_tag, by_digest);
    assert!(matches!(
        layout.resolve(&Selector::Tag("v9".into())),
        Err(LayoutError::TagNotFound { .. })
    ));
}

#[test]
fn finds_the_one_signature_and_its_jws_envelope() {
    let Some(layout) = open(
        "e2e-valid-signature",
        "finds_the_one_signature_and_its_jws_envelope",
    ) else {
        return;
    };
    let target = layout.resolve(&Selector::Tag("v1".into())).expect("target");
    let signatures = layout.signature_manifests(&target).expect("listing");
    let digests: Vec<String> = signatures.iter().map(|d| d.digest.to_string()).collect();
    assert_eq!(
        digests,
        ["sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"]
    );
    let blob = layout
        .signature(&signatures[0], &Budgets::default())
        .expect("fetch");
    assert_eq!(blob.media_type, "application/jose+json");
    assert_eq!(blob.envelope.len(), 2070);
}

#[test]
fn second_signature_is_found_through_its_subject_only() {
    let Some(layout) = open(
        "e2e-valid-multiple-signatures",
        "second_signature_is_found_through_its_subject_only",
    ) else {
        return;
    };
    let target = layout.resolve(&Selector::Tag("v1".into())).expect("target");
    let signatures = layout.signature_manifests(&target).expect("listing");
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    let digests: Vec<String> = signatures.iter().map(|d| d.digest.to_string()).collect();
    assert!(digests[0].starts_with("sha256:90ceaff2") || digests[1].starts_with("sha256:90ceaff2"));
    assert!(
        digests.iter().any(|d| d.starts_with("sha256:c3ebe4a2")),
        "{digests:?}"
    );
}

#[test]
fn unsigned_layout_has_no_signatures() {
    let Some(layout) = open("e2e", "unsigned_layout_has_no_signatures") else {
        return;
    };
    let target = layout.resolve(&Selector::Tag("v1".into())).expect("target");
    assert!(layout
        .signature_manifests(&target)
        .expect("listing")
        .is_empty());
}

#[test]
fn invalid_signature_layer_keeps_its_media_type_for_the_integrity_check() {
    let Some(layout) = open(
        "e2e-invalid-signature",
        "invalid_signature_layer_keeps_its_media_type_for_the_integrity_check",
    ) else {
        return;
    };
    let target = layout.resolve(&Selector::Tag("v1".into())).expect("target");
    let signatures = layout.signature_manifests(&target).expect("listing");
    assert_eq!(signatures.len(), 1);
    let blob = layout
        .signature(&signatures[0], &Budgets::default())
        .expect("fetch");
    assert_eq!(blob.media_type, "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(blob.envelope, b"invalid signature\n");
}

#[test]
fn budgets_and_digests_are_enforced() {
    let Some(vectors) = support::vectors_dir("notation", "budgets_and_digests_are_enforced") else {
        return;
    };
    let source = vectors.join("oci-layouts/e2e-valid-signature");
    let layout = OciLayout::open(&source).expect("open");
    let target = layout.resolve(&Selector::Tag("v1".into())).expect("target");
    let signatures = layout.signature_manifests(&target).expect("listing");

    // An envelope over the configured limit is refused before it is read.
    let small = Budgets {
        max_envelope_bytes: 1024,
        ..Budgets::default()
    };
    match layout.signature(&signatures[0], &small) {
        Err(LayoutError::TooLarge { size, limit, .. }) => {
            assert_eq!((size, limit), (2070, 1024));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }

    // A blob whose bytes no longer match its digest is refused.
    let copy = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&source)
        .arg(copy.path().join("layout"))
        .status()
        .expect("cp");
    assert!(status.success());
    let envelope = copy.path().join(
        "layout/blobs/sha256/c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50",
    );
    let mut bytes = std::fs::read(&envelope).expect("read");
    bytes[100] ^= 1;
    std::fs::write(&envelope, bytes).expect("write");
    let tampered = OciLayout::open(&copy.path().join("layout")).expect("open");
    assert!(matches!(
        tampered.signature(&signatures[0], &Budgets::default()),
        Err(LayoutError::DigestMismatch { .. })
    ));
}

#[test]
fn layout_reference_forms() {
    let parsed = LayoutReference::parse(&format!("some/dir@{SUBJECT}")).expect("digest form");
    assert_eq!(
        parsed.selector,
        Selector::Digest(SUBJECT.parse().expect("digest"))
    );
    let parsed = LayoutReference::parse("some/dir:v1").expect("tag form");
    assert_eq!(parsed.selector, Selector::Tag("v1".into()));
}
