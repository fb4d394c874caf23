//! Parses every Notary envelope vector beside the repo and asserts the exact
//! result: ../shared/vectors/notation (CASES.md §5) and
//! ../shared/vectors/notation-local (CASES.md §4-5, cases.json). Parsing is only
//! the integrity step's structure: signature, certificate and time-of-use checks
//! are the verifier's and are not asserted here.

use pullgate_testkit as support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pullgate::envelope::{
    parse, EnvelopeError, EnvelopeFormat, SignatureAlgorithm, SignatureEnvelope, SigningScheme,
    COSE_MEDIA_TYPE, JWS_MEDIA_TYPE,
};
use support::envelope_builder::{dummy_signer, EnvelopeSpec, Target};

const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MOCK_DIGEST: &str = "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e";
const PLUGINVER_DIGEST: &str =
    "sha256:fe7e9333395060c2f5e63cf36a38fba10176f183b4163a5794e081a480abba5f";
const TIMESTAMP_DIGEST: &str =
    "sha256:c0669ef34cdc14332c0f1ab0c2c01acb91d96014b172f1a76f3a39e63d1f0bda";
const E2E_DIGEST: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// An RFC 3339 time as written in CASES.md (`YYYY-MM-DDTHH:MM:SS` + `Z` or
/// `±HH:MM`), computed independently of the parser under test.
fn time(text: &str) -> SystemTime {
    let n = |r: std::ops::Range<usize>| -> i64 { text[r].parse().expect("digits") };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let mut secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    if text.len() == 25 {
        let offset = n(20..22) * 3600 + n(23..25) * 60;
        secs -= if &text[19..20] == "+" {
            offset
        } else {
            -offset
        };
    }
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

fn read(dir: &Path, relative: &str) -> Vec<u8> {
    let path = dir.join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_file(dir: &Path, relative: &str, media_type: &str) -> SignatureEnvelope {
    parse(media_type, &read(dir, relative))
        .unwrap_or_else(|e| panic!("{relative}: expected a parsed envelope, got {e:?}"))
}

/// The facts CASES.md states for an envelope that parses.
struct Expect<'a> {
    format: EnvelopeFormat,
    algorithm: SignatureAlgorithm,
    scheme: SigningScheme,
    time: &'a str,
    expiry: Option<&'a str>,
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    chain: usize,
    timestamp: bool,
}

fn check(env: &SignatureEnvelope, name: &str, e: &Expect<'_>) {
    assert_eq!(env.format, e.format, "{name}: format");
    assert_eq!(env.algorithm, e.algorithm, "{name}: algorithm");
    assert_eq!(env.signing_scheme, e.scheme, "{name}: scheme");
    let (present, absent) = match e.scheme {
        SigningScheme::X509 => (env.signing_time, env.authentic_signing_time),
        SigningScheme::X509SigningAuthority => (env.authentic_signing_time, env.signing_time),
    };
    assert_eq!(present, Some(time(e.time)), "{name}: signing time");
    assert_eq!(absent, None, "{name}: other scheme's time");
    assert_eq!(env.expiry, e.expiry.map(time), "{name}: expiry");
    assert_eq!(
        env.target_artifact.media_type, e.media_type,
        "{name}: mediaType"
    );
    assert_eq!(
        env.target_artifact.digest.to_string(),
        e.digest,
        "{name}: digest"
    );
    assert_eq!(env.target_artifact.size, e.size, "{name}: size");
    assert_eq!(env.certificate_chain.len(), e.chain, "{name}: chain length");
    assert_eq!(
        env.timestamp_token.is_some(),
        e.timestamp,
        "{name}: timestamp"
    );
    assert!(!env.signature.is_empty(), "{name}: signature");
    assert!(
        env.extended_attributes.is_empty(),
        "{name}: extended attributes"
    );
}

fn mock(
    time: &'static str,
    expiry: Option<&'static str>,
    scheme: SigningScheme,
) -> Expect<'static> {
    Expect {
        format: EnvelopeFormat::Jws,
        algorithm: SignatureAlgorithm::Ps384,
        scheme,
        time,
        expiry,
        media_type: DOCKER_V2,
        digest: MOCK_DIGEST,
        size: 528,
        chain: 2,
        timestamp: false,
    }
}

/// CASES.md §5.2: notation-go mock envelopes (all JWS).
#[test]
fn notation_go_mock_envelopes() {
    let Some(dir) = support::vectors_dir("notation", "notation_go_mock_envelopes") else {
        return;
    };
    let dir = dir.join("envelopes/notation-go-mock");
    for (prefix, scheme) in [
        ("ca", SigningScheme::X509),
        ("sa", SigningScheme::X509SigningAuthority),
    ] {
        // M1: valid.
        let name = format!("{prefix}_valid_sig_env.json");
        let env = parse_file(&dir, &name, JWS_MEDIA_TYPE);
        let valid = mock("2020-11-09T07:00:00Z", Some("2120-11-09T07:00:00Z"), scheme);
        check(&env, &name, &valid);
        assert_eq!(
            env.signing_agent.as_deref(),
            Some("Notation/1.0.0"),
            "{name}"
        );
        // M2: padded base64url payload.
        let name = format!("{prefix}_invalid_sig_env.json");
        let result = parse(JWS_MEDIA_TYPE, &read(&dir, &name));
        assert!(
            matches!(
                result,
                Err(EnvelopeError::PaddedBase64 { field: "payload" })
            ),
            "{name}: {result:?}"
        );
        // M8: expired, which parsing does not judge.
        let name = format!("{prefix}_expired_sig_env.json");
        let env = parse_file(&dir, &name, JWS_MEDIA_TYPE);
        let expired = mock("2022-07-29T00:00:00Z", Some("2022-07-29T23:59:00Z"), scheme);
        check(&env, &name, &expired);
        // M10: a verification plugin is required; pullgate has none.
        let name = format!("{prefix}_plugin_sig_env.json");
        let result = parse(JWS_MEDIA_TYPE, &read(&dir, &name));
        assert!(
            matches!(result, Err(EnvelopeError::VerificationPluginRequired { ref plugin }) if plugin == "plugin-name"),
            "{name}: {result:?}"
        );
    }

    // M13: user metadata in targetArtifact.annotations.
    let name = "sig_env_with_metadata.json";
    let env = parse_file(&dir, name, JWS_MEDIA_TYPE);
    check(
        &env,
        name,
        &Expect {
            format: EnvelopeFormat::Jws,
            algorithm: SignatureAlgorithm::Ps256,
            scheme: SigningScheme::X509,
            time: "2023-01-11T10:02:54-08:00",
            expiry: None,
            media_type: DOCKER_V2,
            digest: "sha256:5a07385af4e6b6af81b0ebfd435aedccdfa3507f0609c658209e1aba57159b2b",
            size: 942,
            chain: 1,
            timestamp: false,
        },
    );
    let annotations: Vec<(&str, &str)> = env
        .target_artifact
        .annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        annotations,
        [
            ("io.wabbit-networks.buildId", "123"),
            ("io.wabbit-networks.buildTime", "1672944615")
        ]
    );

    // M14: plugin-version envelopes all need the plugin.
    let mut pluginver = 0;
    for entry in std::fs::read_dir(&dir).expect("mock dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if !name.contains("pluginver") {
            continue;
        }
        pluginver += 1;
        let result = parse(JWS_MEDIA_TYPE, &read(&dir, &name));
        assert!(
            matches!(result, Err(EnvelopeError::VerificationPluginRequired { ref plugin })
                if plugin == "io.cncf.notary.plugin.unittest.mock"),
            "{name}: {result:?}"
        );
    }
    assert_eq!(pluginver, 8);
    let _ = PLUGINVER_DIGEST; // the target of those envelopes, never reached
}

/// CASES.md §5.3: GlobalSign-timestamped envelopes.
#[test]
fn notation_go_timestamp_envelopes() {
    let Some(dir) = support::vectors_dir("notation", "notation_go_timestamp_envelopes") else {
        return;
    };
    let dir = dir.join("envelopes/notation-go-timestamp");
    for (name, format, timestamp) in [
        ("jwsWithTimestamp.sig", EnvelopeFormat::Jws, true),
        ("coseWithTimestamp.sig", EnvelopeFormat::Cose, true),
        ("jwsExpiredWithTimestamp.sig", EnvelopeFormat::Jws, true),
        ("coseExpiredWithTimestamp.sig", EnvelopeFormat::Cose, true),
        ("withoutTimestamp.sig", EnvelopeFormat::Jws, false),
        ("timestampBeforeNotBefore.sig", EnvelopeFormat::Jws, true),
        ("timestampAfterNotAfter.sig", EnvelopeFormat::Cose, true),
    ] {
        let env = parse_file(&dir, name, format.media_type());
        assert_eq!(env.format, format, "{name}");
        assert_eq!(env.algorithm, SignatureAlgorithm::Ps256, "{name}");
        assert_eq!(env.signing_scheme, SigningScheme::X509, "{name}");
        assert!(env.signing_time.is_some(), "{name}");
        assert_eq!(env.expiry, None, "{name}");
        assert_eq!(env.target_artifact.media_type, DOCKER_V2, "{name}");
        assert_eq!(
            env.target_artifact.digest.to_string(),
            TIMESTAMP_DIGEST,
            "{name}"
        );
        assert_eq!(env.target_artifact.size, 528, "{name}");
        assert_eq!(env.certificate_chain.len(), 1, "{name}");
        assert_eq!(env.timestamp_token.is_some(), timestamp, "{name}");
        if let Some(token) = &env.timestamp_token {
            // A DER SEQUENCE (ContentInfo).
            assert_eq!(token.first(), Some(&0x30), "{name}");
        }
    }
}

/// The envelopes folder of the notation vectors, or `None` (the test skips).
fn envelopes_dir(test: &str) -> Option<std::path::PathBuf> {
    support::vectors_dir("notation", test).map(|dir| dir.join("envelopes"))
}

/// CASES.md §5.6: notation-go internal test data.
#[test]
fn notation_go_internal_envelopes() {
    let Some(dir) = envelopes_dir("notation_go_internal_envelopes") else {
        return;
    };
    for (name, format) in [
        (
            "notation-go-internal/jws_signature.sig",
            EnvelopeFormat::Jws,
        ),
        (
            "notation-go-internal/cose_signature.sig",
            EnvelopeFormat::Cose,
        ),
    ] {
        let env = parse_file(&dir, name, format.media_type());
        assert_eq!(env.format, format, "{name}");
        assert_eq!(env.algorithm, SignatureAlgorithm::Ps256, "{name}");
        assert_eq!(env.target_artifact.media_type, OCI_MANIFEST, "{name}");
        assert_eq!(
            env.target_artifact.digest.to_string(),
            "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0",
            "{name}"
        );
        assert_eq!(env.target_artifact.size, 481, "{name}");
        assert_eq!(env.certificate_chain.len(), 1, "{name}");
        assert!(env.timestamp_token.is_none(), "{name}");
    }
}

/// CASES.md §5.6: notation-go literals.
#[test]
fn notation_go_literal_envelopes() {
    let Some(dir) = envelopes_dir("notation_go_literal_envelopes") else {
        return;
    };
    let name = "notation-go-literals/example_localVerify.cose.sig";
    check(
        &parse_file(&dir, name, COSE_MEDIA_TYPE),
        name,
        &Expect {
            format: EnvelopeFormat::Cose,
            algorithm: SignatureAlgorithm::Ps256,
            scheme: SigningScheme::X509,
            time: "2023-01-09T01:27:34Z",
            expiry: None,
            media_type: DOCKER_V2,
            digest: "sha256:c0d488a800e4127c334ad20d61d7bc21b4097540327217dfab52262adc02380c",
            size: 528,
            chain: 1,
            timestamp: false,
        },
    );
    let blob_digest = "sha384:b8ab24dafba5cf7e4c89c562f811cf10493d4203da982d3b1345f366ca863d9c2ed323dbd0fb7ff83a80302ceffa5a61";
    for name in [
        "notation-go-literals/example_verifyBlob.jws.sig",
        "notation-go-literals/verifier_test-testSig.jws.sig",
    ] {
        let env = parse_file(&dir, name, JWS_MEDIA_TYPE);
        assert_eq!(env.algorithm, SignatureAlgorithm::Ps384, "{name}");
        assert_eq!(env.target_artifact.media_type, "video/mp4", "{name}");
        assert_eq!(
            env.target_artifact.digest.to_string(),
            blob_digest,
            "{name}"
        );
        assert_eq!(env.target_artifact.size, 12, "{name}");
        assert_eq!(env.certificate_chain.len(), 1, "{name}");
    }
    let env = parse_file(
        &dir,
        "notation-go-literals/verifier_test-testSig.jws.sig",
        JWS_MEDIA_TYPE,
    );
    assert_eq!(env.signing_agent.as_deref(), Some("example signing agent"));
    assert_eq!(
        env.target_artifact
            .annotations
            .get("buildId")
            .map(String::as_str),
        Some("101")
    );
}

/// CASES.md §5.6: notation CLI blob signatures.
#[test]
fn notation_cli_blob_envelopes() {
    let Some(dir) = envelopes_dir("notation_cli_blob_envelopes") else {
        return;
    };
    let license_digest = "sha256:c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4";
    for (name, format, signing_time) in [
        (
            "notation-cli-blob/blob.jws.sig",
            EnvelopeFormat::Jws,
            "2024-12-31T08:05:29Z",
        ),
        (
            "notation-cli-blob/blob.cose.sig",
            EnvelopeFormat::Cose,
            "2025-01-07T08:42:43Z",
        ),
    ] {
        let env = parse_file(&dir, name, format.media_type());
        check(
            &env,
            name,
            &Expect {
                format,
                algorithm: SignatureAlgorithm::Ps256,
                scheme: SigningScheme::X509,
                time: signing_time,
                expiry: None,
                media_type: "application/octet-stream",
                digest: license_digest,
                size: 11357,
                chain: 1,
                timestamp: true,
            },
        );
        assert_eq!(
            env.signing_agent.as_deref(),
            Some("notation-go/1.3.0+unreleased"),
            "{name}"
        );
    }
    // "failed to parse signature": the file is the text `malformed signature`.
    let result = parse(
        JWS_MEDIA_TYPE,
        &read(&dir, "notation-cli-blob/malformed.jws.sig"),
    );
    assert!(
        matches!(
            result,
            Err(EnvelopeError::Malformed {
                format: EnvelopeFormat::Jws,
                ..
            })
        ),
        "{result:?}"
    );
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// CASES.md §5.6: notation-core-go conformance files are encoding references
/// with no certificate chain (and, for COSE, a non-JSON payload). They must fail
/// on the missing chain, and our builder must reproduce their protected headers
/// byte for byte.
#[test]
fn notation_core_go_conformance() {
    let Some(dir) = support::vectors_dir("notation", "notation_core_go_conformance") else {
        return;
    };
    let dir = dir.join("envelopes/notation-core-go-conformance");

    let cose: serde_json::Value =
        serde_json::from_slice(&read(&dir, "cose-conformance.json")).expect("JSON");
    let sign1 = hex(cose["expectedOutput"]["cborHex"].as_str().expect("hex"));
    let result = parse(COSE_MEDIA_TYPE, &sign1);
    assert!(
        matches!(result, Err(EnvelopeError::EmptyCertificateChain)),
        "{result:?}"
    );
    let spec = EnvelopeSpec {
        alg: "PS384".into(),
        signing_time: Some(cose["signingTime"].as_i64().expect("int")),
        expiry: Some(cose["expiry"].as_i64().expect("int")),
        crit: Some(vec![
            "io.cncf.notary.signingScheme".into(),
            "io.cncf.notary.expiry".into(),
            "signedCritKey1".into(),
        ]),
        extended_attributes: vec![
            ("signedKey1".into(), "signedValue1".into()),
            ("signedCritKey1".into(), "signedCritValue1".into()),
        ],
        ..EnvelopeSpec::default()
    };
    assert_eq!(
        spec.cose_protected(),
        hex(cose["protectedHeaders"]["cborHex"].as_str().expect("hex"))
    );

    let jws_bytes = read(&dir, "jws-conformance.json");
    let result = parse(JWS_MEDIA_TYPE, &jws_bytes);
    assert!(
        matches!(result, Err(EnvelopeError::EmptyCertificateChain)),
        "{result:?}"
    );
    let jws: serde_json::Value = serde_json::from_slice(&jws_bytes).expect("JSON");
    let spec = EnvelopeSpec {
        alg: "ES256".into(),
        signing_time: Some(1_661_781_000), // 2022-08-29T13:50:00Z
        expiry: Some(4_091_781_000),       // 2099-08-30T13:50:00Z
        crit: Some(vec![
            "io.cncf.notary.signingScheme".into(),
            "signedCritKey1".into(),
            "io.cncf.notary.expiry".into(),
        ]),
        extended_attributes: (1..=4)
            .map(|i| (format!("signedKey{i}"), "signedValue1".to_string()))
            .chain([("signedCritKey1".into(), "signedCritValue1".into())])
            .collect(),
        payload: Some(br#"{"key":"hello JWS"}"#.to_vec()),
        ..EnvelopeSpec::default()
    };
    let tbs = String::from_utf8(spec.jws_to_be_signed()).expect("ascii");
    let (protected, payload) = tbs.split_once('.').expect("two members");
    assert_eq!(protected, jws["protected"].as_str().expect("string"));
    assert_eq!(payload, jws["payload"].as_str().expect("string"));
}

/// CASES.md §5.1: the envelopes inside the CLI e2e OCI layouts.
#[test]
fn notation_e2e_layout_envelopes() {
    let Some(dir) = support::vectors_dir("notation", "notation_e2e_layout_envelopes") else {
        return;
    };
    let blob = |layout: &str, digest: &str| format!("oci-layouts/{layout}/blobs/sha256/{digest}");
    let e2e = |time: &'static str, expiry: Option<&'static str>| Expect {
        format: EnvelopeFormat::Jws,
        algorithm: SignatureAlgorithm::Ps256,
        scheme: SigningScheme::X509,
        time,
        expiry,
        media_type: OCI_MANIFEST,
        digest: E2E_DIGEST,
        size: 517,
        chain: 1,
        timestamp: false,
    };
    let name = blob(
        "e2e-valid-signature",
        "c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50",
    );
    check(
        &parse_file(&dir, &name, JWS_MEDIA_TYPE),
        &name,
        &e2e("2023-06-27T13:30:33+08:00", None),
    );
    let name = blob(
        "e2e-expired-signature",
        "b5f927564088f65dad86c81bcdd0b55415a8b4c9a0a5391107210e0cdb305cc7",
    );
    check(
        &parse_file(&dir, &name, JWS_MEDIA_TYPE),
        &name,
        &e2e(
            "2023-06-27T13:20:21+08:00",
            Some("2023-06-27T13:21:21+08:00"),
        ),
    );
    let name = blob(
        "e2e-with-expired-cert",
        "8513a5ba473f32b78a87518b732700632c05cde0d59d179275c5c5a8096beeed",
    );
    check(
        &parse_file(&dir, &name, JWS_MEDIA_TYPE),
        &name,
        &e2e("2023-06-27T14:07:26+08:00", None),
    );

    // L30: timestamped, with expiry and a user annotation.
    let name = blob(
        "e2e-with-timestamped-signature",
        "603ff134e97a79cd7a15560b76137c2c4a10451daab11327a7c6f86dac250fee",
    );
    let env = parse_file(&dir, &name, JWS_MEDIA_TYPE);
    check(
        &env,
        &name,
        &Expect {
            time: "2025-01-21T09:17:46Z",
            expiry: Some("2025-01-21T12:39:46Z"),
            digest: "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20",
            size: 582,
            timestamp: true,
            ..e2e("", None)
        },
    );
    assert_eq!(
        env.target_artifact
            .annotations
            .get("purpose")
            .map(String::as_str),
        Some("e2e")
    );
    // L32: the token is garbage, which only the timestamp step can judge.
    let name = blob(
        "e2e-with-invalid-timestamped-signature",
        "8d2e70ffc2af68b7f2df6f30dfefcb7bcda1db5f9ac2566fc8c6c2248c8d4c5f",
    );
    let env = parse_file(&dir, &name, JWS_MEDIA_TYPE);
    assert_eq!(env.timestamp_token.as_deref(), Some(&b"invalid\n"[..]));
    // L16: not an envelope; its layer media type selects no parser.
    let name = blob(
        "e2e-invalid-signature",
        "9a8decdf3775708f4eed16859f19561d730cad40b1af0dcfc37ac1e5f879a934",
    );
    let result = parse("application/vnd.oci.image.layer.v1.tar", &read(&dir, &name));
    assert!(
        matches!(result, Err(EnvelopeError::UnsupportedMediaType { ref media_type })
            if media_type == "application/vnd.oci.image.layer.v1.tar"),
        "{result:?}"
    );
}

/// notation-local (signed by notation v1.3.2): every signature of every case in
/// cases.json, COSE and JWS, RSA and ECDSA.
#[test]
fn notation_local_envelopes() {
    let Some(dir) = support::vectors_dir("notation-local", "notation_local_envelopes") else {
        return;
    };
    let cases: serde_json::Value =
        serde_json::from_slice(&read(&dir, "cases.json")).expect("cases.json");
    let mut seen = 0;
    for case in cases["cases"].as_array().expect("cases") {
        let layout = case["layout"].as_str().expect("layout");
        for sig in case["signatures"].as_array().expect("signatures") {
            let media_type = sig["envelopeMediaType"].as_str().expect("media type");
            let blob = sig["envelopeBlob"].as_str().expect("blob");
            let name = format!(
                "{layout}/blobs/sha256/{}",
                blob.strip_prefix("sha256:").expect("sha256")
            );
            let env = parse_file(&dir, &name, media_type);
            let alg = sig["alg"].as_str().expect("alg");
            let algorithm = SignatureAlgorithm::ALL
                .into_iter()
                .find(|a| alg.starts_with(a.jws_name()))
                .expect("known alg");
            let format = if media_type == COSE_MEDIA_TYPE {
                EnvelopeFormat::Cose
            } else {
                EnvelopeFormat::Jws
            };
            check(
                &env,
                &name,
                &Expect {
                    format,
                    algorithm,
                    scheme: SigningScheme::X509,
                    time: sig["signingTime"].as_str().expect("signing time"),
                    expiry: sig["expiry"].as_str(),
                    media_type: OCI_MANIFEST,
                    digest: case["target"].as_str().expect("target"),
                    size: case["targetSize"].as_u64().expect("size"),
                    chain: sig["certificateChain"].as_array().expect("chain").len(),
                    timestamp: !sig["timestamp"].is_null(),
                },
            );
            assert_eq!(env.signing_agent.as_deref(), Some("notation-go/1.3.2"));
            seen += 1;
        }
    }
    assert_eq!(seen, 15, "signatures in cases.json");
}

/// Builder output parses back to the same fields, and `signed_bytes` is exactly
/// what the signer saw.
#[test]
fn builder_round_trip() {
    use std::cell::RefCell;
    for format in [
        support::envelope_builder::Format::Cose,
        support::envelope_builder::Format::Jws,
    ] {
        for spec in [
            EnvelopeSpec {
                alg: "ES384".into(),
                expiry: Some(1_900_000_000),
                timestamp_token: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
                certificate_chain: vec![vec![1; 10], vec![2; 20], vec![3; 30]],
                target: Target {
                    annotations: vec![("buildId".into(), "42".into())],
                    artifact_type: Some("application/vnd.example".into()),
                    ..Target::default()
                },
                ..EnvelopeSpec::default()
            },
            EnvelopeSpec {
                alg: "PS512".into(),
                ..EnvelopeSpec::signing_authority()
            },
        ] {
            let seen = RefCell::new(Vec::new());
            let signer = |tbs: &[u8]| {
                *seen.borrow_mut() = tbs.to_vec();
                let mut sig = dummy_signer(tbs);
                sig[0] = tbs.len() as u8;
                sig
            };
            let bytes = spec.build(format, &signer);
            let env = parse(format.media_type(), &bytes).expect("builder output parses");
            assert_eq!(env.signed_bytes, *seen.borrow());
            assert_eq!(env.signed_bytes, spec.to_be_signed(format));
            assert_eq!(env.signature, signer(&env.signed_bytes));
            assert_eq!(env.algorithm.jws_name(), spec.alg);
            assert_eq!(env.certificate_chain, spec.certificate_chain);
            assert_eq!(env.timestamp_token, spec.timestamp_token);
            assert_eq!(env.target_artifact.digest.to_string(), spec.target.digest);
            assert_eq!(env.target_artifact.size, spec.target.size);
            assert_eq!(env.target_artifact.artifact_type, spec.target.artifact_type);
            assert_eq!(
                env.target_artifact.annotations.len(),
                spec.target.annotations.len()
            );
            let secs = |t: Option<SystemTime>| {
                t.map(|t| t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs() as i64)
            };
            assert_eq!(secs(env.signing_time), spec.signing_time);
            assert_eq!(
                secs(env.authentic_signing_time),
                spec.authentic_signing_time
            );
            assert_eq!(secs(env.expiry), spec.expiry);
        }
    }
}

/// A stable-toolchain stand-in for the fuzz targets (fuzz/run needs nightly):
/// thousands of deterministic mutations of valid envelopes must each return
/// without panicking, and anything accepted must keep the parser's invariants.
#[test]
fn mutated_envelopes_never_panic() {
    use support::envelope_builder::Format;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let spec = EnvelopeSpec {
        expiry: Some(1_900_000_000),
        timestamp_token: Some(vec![0x30, 0x00]),
        extended_attributes: vec![("a".into(), "b".into())],
        ..EnvelopeSpec::default()
    };
    for format in [Format::Cose, Format::Jws] {
        let original = spec.build(format, &dummy_signer);
        for _ in 0..4000 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % bytes.len().max(1);
                match next() % 4 {
                    0 if !bytes.is_empty() => bytes[at] = next() as u8,
                    1 if !bytes.is_empty() => bytes[at] ^= 1 << (next() % 8),
                    2 => bytes.insert(at.min(bytes.len()), next() as u8),
                    _ => bytes.truncate(at),
                }
            }
            if let Ok(env) = parse(format.media_type(), &bytes) {
                assert!(!env.certificate_chain.is_empty());
                assert!(!env.signature.is_empty());
                assert!(env.extended_attributes.iter().all(|a| !a.critical));
            }
        }
    }
}
