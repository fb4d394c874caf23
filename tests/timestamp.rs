//! RFC 3161 timestamp tokens (NOTARY.md §6): tokens from a real TSA (`openssl ts`,
//! testkit/src/tsa.rs) and the notation vectors in ../shared/vectors/notation/tokens
//! (expected outcomes from its CASES.md §5.4).

use pullgate_testkit as support;

use std::time::{Duration, SystemTime};

use pullgate::pki::timestamp::{TimestampError, TimestampToken};
use support::tsa::{Stamp, Tsa, TsaKey, BASELINE_POLICY, DEFAULT_POLICY};

const SIGNATURE: &[u8] = b"raw envelope signature bytes";

fn verify(
    token: &[u8],
    message: &[u8],
) -> Result<pullgate::pki::timestamp::VerifiedTimestamp, TimestampError> {
    TimestampToken::parse(token)?.verify(message)
}

fn assert_near_now(t: SystemTime) {
    let now = pullgate_testkit::time::now();
    let skew = match now.duration_since(t) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    assert!(
        skew < Duration::from_secs(120),
        "genTime {t:?} is not near now {now:?}"
    );
}

/// Position of the first occurrence of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern present in the token")
}

#[test]
fn valid_rsa_token_verifies_with_configured_accuracy() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());
    let v = verify(&token, SIGNATURE).expect("token verifies");
    assert_near_now(v.gen_time);
    assert_eq!(v.accuracy, Duration::from_secs(1));
    assert_eq!(v.policy, DEFAULT_POLICY);
    // openssl ts reads the serial file ("01"), increments it and stamps with the result.
    assert_eq!(v.serial_number, vec![2]);
    assert_eq!(v.signer_chain_der.len(), 2);
    assert_eq!(v.signer_chain_der[0], tsa.cert_der(&tsa.leaf_pem));
    assert_eq!(v.signer_chain_der[1], tsa.cert_der(&tsa.root_pem));
    // openssl adds signingTime to the signed attributes.
    assert_near_now(v.signing_time.expect("signingTime present"));
    assert!(v.within(
        v.gen_time - Duration::from_secs(1),
        v.gen_time + Duration::from_secs(1)
    ));
    assert!(!v.within(v.gen_time, v.gen_time + Duration::from_secs(10)));
}

#[test]
fn token_over_other_bytes_is_a_message_imprint_mismatch() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());
    assert!(matches!(
        verify(&token, b"other bytes"),
        Err(TimestampError::MessageImprintMismatch)
    ));
}

#[test]
fn tampering_is_detected_exactly() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());

    // The SignerInfo signature is the token's last element (openssl adds no unsigned
    // attributes): flip its last byte.
    let mut bad_signature = token.clone();
    *bad_signature.last_mut().expect("non-empty") ^= 0x01;
    assert!(matches!(
        verify(&bad_signature, SIGNATURE),
        Err(TimestampError::BadSignature)
    ));

    // genTime inside the TSTInfo (GeneralizedTime, 15 bytes, no fraction): the
    // signature over the attributes still holds, the message digest does not.
    let mut bad_tst_info = token.clone();
    let gen_time = find(&token, &[0x18, 0x0f]) + 2;
    bad_tst_info[gen_time + 13] = if token[gen_time + 13] == b'0' {
        b'1'
    } else {
        b'0'
    };
    assert!(matches!(
        verify(&bad_tst_info, SIGNATURE),
        Err(TimestampError::MessageDigestMismatch)
    ));

    // signingTime inside the signed attributes (UTCTime, 13 bytes): bad signature.
    let mut bad_attrs = token.clone();
    let signing_time = find(&token, &[0x17, 0x0d]);
    // The first UTCTime is the certificates' validity; the signed attributes come
    // after the certificates, so take the last one.
    let signing_time = token
        .windows(2)
        .rposition(|w| w == [0x17, 0x0d])
        .filter(|&p| p > signing_time)
        .expect("signingTime after the certificates")
        + 2;
    bad_attrs[signing_time + 11] = if token[signing_time + 11] == b'0' {
        b'1'
    } else {
        b'0'
    };
    assert!(matches!(
        verify(&bad_attrs, SIGNATURE),
        Err(TimestampError::BadSignature)
    ));
}

#[test]
fn signing_certificate_v1_only_is_rejected() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let stamp = Stamp {
        ess_cert_id_alg: "sha1",
        ..Stamp::default()
    };
    let token = tsa.stamp(SIGNATURE, &stamp);
    assert!(matches!(
        verify(&token, SIGNATURE),
        Err(TimestampError::MissingSignedAttribute {
            name: "signingCertificateV2"
        })
    ));
}

#[test]
fn signer_certificate_other_than_the_one_hashed_is_a_signing_certificate_mismatch() {
    // A second leaf with the same key, issuer and serial but another validity: the
    // sid still finds it and its key verifies the signature, but its hash is not the
    // certHash of signingCertificateV2.
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());
    let original = tsa.cert_der(&tsa.leaf_pem);
    let other_pem = tsa.issue_leaf("other-leaf.pem", "2", 400);
    let other = tsa.cert_der(&other_pem);
    assert_eq!(original.len(), other.len(), "same-length encodings");
    let at = find(&token, &original);
    let mut swapped = token.clone();
    swapped[at..at + original.len()].copy_from_slice(&other);
    assert!(matches!(
        verify(&swapped, SIGNATURE),
        Err(TimestampError::SigningCertificateMismatch)
    ));
}

#[test]
fn sha384_and_sha512_imprints_and_signer_digests() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    for digest in ["sha384", "sha512"] {
        let stamp = Stamp {
            imprint_digest: digest,
            signer_digest: digest,
            ..Stamp::default()
        };
        let token = tsa.stamp(SIGNATURE, &stamp);
        let v = verify(&token, SIGNATURE).unwrap_or_else(|e| panic!("{digest}: {e}"));
        assert_near_now(v.gen_time);
        assert!(matches!(
            verify(&token, b"other"),
            Err(TimestampError::MessageImprintMismatch)
        ));
    }
}

#[test]
fn ec_tsa_tokens_verify() {
    for (key, digest) in [
        (TsaKey::EcP256, "sha256"),
        (TsaKey::EcP384, "sha384"),
        (TsaKey::EcP521, "sha512"),
    ] {
        let tsa = Tsa::new(key);
        let stamp = Stamp {
            signer_digest: digest,
            ..Stamp::default()
        };
        let token = tsa.stamp(SIGNATURE, &stamp);
        let v = verify(&token, SIGNATURE).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_near_now(v.gen_time);
        assert_eq!(v.signer_chain_der[0], tsa.cert_der(&tsa.leaf_pem));

        // Flip a byte inside the DER ECDSA signature's `s` (its last byte).
        let mut bad = token.clone();
        *bad.last_mut().expect("non-empty") ^= 0x01;
        assert!(matches!(
            verify(&bad, SIGNATURE),
            Err(TimestampError::BadSignature)
        ));
    }
}

#[test]
fn rsassa_pss_signer_infos_verify() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());
    for extra in [
        &["-md", "sha256", "-keyopt", "rsa_padding_mode:pss"][..],
        &[
            "-md",
            "sha384",
            "-keyopt",
            "rsa_padding_mode:pss",
            "-keyopt",
            "rsa_pss_saltlen:48",
        ],
        &[
            "-md",
            "sha512",
            "-keyopt",
            "rsa_padding_mode:pss",
            "-keyopt",
            "rsa_pss_saltlen:20",
        ],
    ] {
        let pss = tsa.resign(&token, extra);
        let v = verify(&pss, SIGNATURE).unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        assert_near_now(v.gen_time);
        let mut bad = pss.clone();
        *bad.last_mut().expect("non-empty") ^= 0x01;
        assert!(matches!(
            verify(&bad, SIGNATURE),
            Err(TimestampError::BadSignature)
        ));
    }
}

#[test]
fn signer_info_identified_by_key_id_is_an_unsupported_version() {
    // `-keyid` makes a subjectKeyIdentifier sid, hence SignerInfo v3 (RFC 5652 §5.3);
    // notation accepts v1 only (NOTARY.md §6).
    let tsa = Tsa::new(TsaKey::EcP256);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());
    let v3 = tsa.resign(&token, &["-md", "sha256", "-keyid"]);
    assert!(matches!(
        verify(&v3, SIGNATURE),
        Err(TimestampError::UnsupportedVersion {
            structure: "SignerInfo",
            version: 3
        })
    ));
}

#[test]
fn accuracy_absent_is_zero_or_one_second_under_the_baseline_policy() {
    let tsa = Tsa::new(TsaKey::Rsa2048);
    let no_accuracy = Stamp {
        accuracy: None,
        ..Stamp::default()
    };
    let v = verify(&tsa.stamp(SIGNATURE, &no_accuracy), SIGNATURE).expect("verifies");
    assert_eq!(v.accuracy, Duration::ZERO);

    let baseline = Stamp {
        accuracy: None,
        policy: Some(BASELINE_POLICY),
        ..Stamp::default()
    };
    let v = verify(&tsa.stamp(SIGNATURE, &baseline), SIGNATURE).expect("verifies");
    assert_eq!(v.policy, BASELINE_POLICY);
    assert_eq!(v.accuracy, Duration::from_secs(1));

    let millis = Stamp {
        // openssl spells the fields `millisecs` and `microsecs` (not millis/micros).
        accuracy: Some("secs:2,millisecs:250,microsecs:5"),
        ..Stamp::default()
    };
    let v = verify(&tsa.stamp(SIGNATURE, &millis), SIGNATURE).expect("verifies");
    assert_eq!(v.accuracy, Duration::from_micros(2_250_005));
}

#[test]
fn garbage_is_malformed() {
    for bytes in [
        &b""[..],
        b"invalid\n",
        &[0x30, 0x03, 0x02, 0x01, 0x01],
        &[0x30, 0x80, 0x00, 0x00],
        &[0xff; 64],
    ] {
        assert!(
            matches!(
                TimestampToken::parse(bytes),
                Err(TimestampError::Malformed { .. })
            ),
            "{bytes:?}"
        );
    }
}

#[test]
fn truncated_tokens_never_panic_and_fail() {
    let tsa = Tsa::new(TsaKey::EcP256);
    let token = tsa.stamp(SIGNATURE, &Stamp::default());
    for len in 0..token.len() {
        assert!(
            verify(&token[..len], SIGNATURE).is_err(),
            "prefix of {len} bytes"
        );
    }
    // Every single-byte change is either rejected or (in an unsigned, unchecked
    // part such as a certificate the chain validation will judge) harmless.
    for i in (0..token.len()).step_by(7) {
        let mut t = token.clone();
        t[i] ^= 0x55;
        let _ = verify(&t, SIGNATURE);
    }
}

// ---- notation vectors (CASES.md §5.4) ----

/// The message the notation tokens' imprint covers: SHA-256 of `notation`.
const NOTATION_MESSAGE: &[u8] = b"notation";

fn token_vector(test: &str, path: &str) -> Option<Vec<u8>> {
    let dir = support::vectors_dir("notation", test)?;
    Some(std::fs::read(dir.join("tokens").join(path)).expect("read token vector"))
}

#[test]
fn notation_valid_token_verifies_over_its_message() {
    let Some(token) = token_vector(
        "notation_valid_token_verifies_over_its_message",
        "notation-go/TimeStampToken.p7s",
    ) else {
        return;
    };
    let v = verify(&token, NOTATION_MESSAGE).expect("GlobalSign token verifies");
    // genTime 2021-09-17T14:09:10Z, accuracy 1 s, policy and serial from CASES.md.
    assert_eq!(
        v.gen_time,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_631_887_750)
    );
    assert_eq!(v.accuracy, Duration::from_secs(1));
    assert_eq!(v.policy, "1.3.6.1.4.1.4146.2.3");
    assert_eq!(
        v.serial_number,
        [
            0x59, 0x06, 0x0E, 0xEE, 0x87, 0x3C, 0x26, 0x67, 0x2A, 0x94, 0x00, 0xF2, 0x4D, 0xA0,
            0x94, 0x74, 0x79, 0x88, 0x98, 0x0E
        ]
    );
    // TSA leaf, SHA384 G4 CA, R6 cross-signed by R3, R3.
    assert_eq!(v.signer_chain_der.len(), 4);
}

#[test]
fn notation_token_over_other_message_is_mismatched() {
    let Some(token) = token_vector(
        "notation_token_over_other_message_is_mismatched",
        "notation-go/TimeStampToken.p7s",
    ) else {
        return;
    };
    assert!(matches!(
        verify(&token, b"mismatch"),
        Err(TimestampError::MessageImprintMismatch)
    ));
}

#[test]
fn notation_token_without_certificate() {
    let Some(token) = token_vector(
        "notation_token_without_certificate",
        "notation-go/TimeStampTokenWithoutCertificate.p7s",
    ) else {
        return;
    };
    assert!(matches!(
        verify(&token, NOTATION_MESSAGE),
        Err(TimestampError::NoCertificate)
    ));
}

#[test]
fn notation_token_with_wrong_content_type() {
    let Some(token) = token_vector(
        "notation_token_with_wrong_content_type",
        "notation-go/TimeStampTokenWithInvalideContentType.p7s",
    ) else {
        return;
    };
    let id_data = const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    assert!(matches!(
        TimestampToken::parse(&token),
        Err(TimestampError::WrongContentType { oid }) if oid == id_data
    ));
}

#[test]
fn notation_token_with_invalid_tst_info() {
    let Some(token) = token_vector(
        "notation_token_with_invalid_tst_info",
        "notation-go/TimeStampTokenWithInvalidTSTInfo.p7s",
    ) else {
        return;
    };
    assert!(matches!(
        TimestampToken::parse(&token),
        Err(TimestampError::Malformed {
            reason: "TSTInfo",
            ..
        })
    ));
}

#[test]
fn notation_core_token_with_invalid_signature() {
    let Some(token) = token_vector(
        "notation_core_token_with_invalid_signature",
        "notation-core-go/TimeStampTokenWithInvalidSignature.p7s",
    ) else {
        return;
    };
    assert!(matches!(
        verify(&token, NOTATION_MESSAGE),
        Err(TimestampError::BadSignature)
    ));
}
