//! The pure half of NOTARY.md §7 (src/pki/revocation/) against CRLs and OCSP
//! responses made by the real openssl CLI (testkit/src/revocation.rs): `openssl ca
//! -gencrl`, `openssl crl -gendelta`, and `openssl ocsp` as an offline responder. The
//! few CRLs openssl cannot make (no nextUpdate, a removeFromCRL delta) are encoded by
//! the kit and signed by `openssl dgst`. Each test asserts the exact status or error.

use pullgate_testkit as support;

use std::time::Duration;

use pullgate::pki::revocation::{
    crl_status, judge_ocsp_response, ocsp_request_der, CertStatus, Crl, CrlEntry, CrlReason,
    OcspAnswer, OcspStatus, RevocationError, MAX_OCSP_RESPONSE_BYTES,
};
use pullgate::pki::PkiError;
use support::pki::{days_from_now, CertSpec, Issued, Pki};
use support::revocation::{
    at, ocsp_request_text, openssl_ocsp_request, serial_hex, Ca, CrlDraft, CrlSpec, DraftEntry,
    OcspSpec, Revocation,
};

const ROOT: &str = "/C=US/ST=WA/O=Notary/CN=Revocation Root";
const CA: &str = "/C=US/ST=WA/O=Notary/CN=Revocation CA";

/// 2024-01-01T00:00:00Z, the revocation date written into the CA databases.
const REVOKED_AT_SECS: u64 = 1_704_067_200;
/// 2023-12-01T00:00:00Z, the key-compromise (invalidity) date.
const INVALID_SINCE_SECS: u64 = 1_701_388_800;
const DAY: Duration = Duration::from_secs(86_400);
const FRESHEST: &str = "freshestCRL = URI:http://127.0.0.1:1/delta.crl";

/// `$result` is an error matching `$pattern` (and its guard, if any): that error.
macro_rules! refused {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {{
        let err = $result.expect_err(stringify!($pattern));
        assert!(matches!(&err, $pattern $(if $guard)?), "{err}");
        err
    }};
}

struct Fixture {
    pki: Pki,
    root: Issued,
    ca: Ca,
}

/// Root → issuing CA (with an openssl database); leaves come from [`Fixture::leaf`].
fn fixture() -> Fixture {
    let pki = Pki::new();
    let root = pki.self_signed(&CertSpec::ca(ROOT));
    let ca_cert = pki.issue(&CertSpec::ca(CA).slot(1), &root);
    let ca = Ca::new(&pki, ca_cert);
    Fixture { pki, root, ca }
}

impl Fixture {
    /// A code-signing leaf issued by the CA and recorded valid in its database.
    fn leaf(&mut self, name: &str) -> Issued {
        self.ca.issue(
            &self.pki,
            &CertSpec::leaf(&format!("/C=US/O=Notary/CN={name}")),
        )
    }

    /// Records `leaf` revoked on [`REVOKED_AT_SECS`] in the CA's database.
    fn revoke(&mut self, leaf: &Issued, how: Revocation) {
        self.ca.revoke(leaf, at(REVOKED_AT_SECS), how);
    }

    fn issuer(&self) -> pullgate::pki::Certificate {
        self.ca.cert.cert()
    }

    /// The CA database's CRL, parsed and validated at the current time.
    fn validated_crl(&self, spec: &CrlSpec) -> Crl {
        let crl = Crl::from_der(&self.ca.crl(spec).der).expect("openssl CRL parses");
        crl.validate(&self.issuer(), pullgate_testkit::time::now())
            .expect("openssl CRL validates");
        crl
    }

    /// The CA's CRL for `spec`, which must parse and then be refused by
    /// [`Crl::validate`] now: why it was.
    fn refused_crl(&self, spec: &CrlSpec) -> RevocationError {
        let crl = Crl::from_der(&self.ca.crl(spec).der).expect("openssl CRL parses");
        crl.validate(&self.issuer(), pullgate_testkit::time::now())
            .expect_err("the CRL is refused")
    }

    /// `response` judged now for `leaf` against the CA, without a signing time.
    fn judge(&self, response: &[u8], leaf: &Issued) -> Result<OcspAnswer, RevocationError> {
        judge_ocsp_response(
            response,
            &leaf.cert(),
            &self.issuer(),
            pullgate_testkit::time::now(),
            None,
        )
    }

    /// An OCSP response from the CA's own key for `cert`, using our request.
    fn ocsp_response(&self, cert: &Issued, responder: &Issued, spec: OcspSpec) -> Vec<u8> {
        let request = ocsp_request_der(&cert.cert(), &self.issuer()).expect("request encodes");
        self.ca.ocsp_response(&request, responder, spec)
    }
}

fn with_freshest(number: u32) -> CrlSpec {
    CrlSpec {
        number: Some(number),
        extensions: vec![
            "authorityKeyIdentifier = keyid".to_string(),
            FRESHEST.to_string(),
        ],
        ..CrlSpec::default()
    }
}

// ---------------------------------------------------------------------------------
// Certificate accessors
// ---------------------------------------------------------------------------------

#[test]
fn certificate_exposes_ocsp_and_crl_urls_serial_and_raw_names() {
    let mut fx = fixture();
    let spec = CertSpec::leaf("/C=US/O=Notary/CN=Endpoints")
        .extra(
            "authorityInfoAccess = OCSP;URI:http://127.0.0.1:1/ocsp, \
             caIssuers;URI:http://127.0.0.1:1/ca.cer, OCSP;URI:ldap://127.0.0.1:2/ocsp",
        )
        .extra(
            "crlDistributionPoints = URI:http://127.0.0.1:1/a.crl, URI:ldap://127.0.0.1:2/b.crl",
        );
    let issued = fx.ca.issue(&fx.pki, &spec);
    let leaf = issued.cert();
    assert_eq!(
        leaf.ocsp_urls(),
        ["http://127.0.0.1:1/ocsp", "ldap://127.0.0.1:2/ocsp"]
    );
    assert_eq!(
        leaf.crl_urls(),
        ["http://127.0.0.1:1/a.crl", "ldap://127.0.0.1:2/b.crl"]
    );
    assert!(leaf.has_revocation_endpoints());

    let plain = fx.leaf("Plain").cert();
    assert!(plain.ocsp_urls().is_empty());
    assert!(plain.crl_urls().is_empty());

    // The serial magnitude is what openssl prints.
    let printed = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(&issued.cert_path)
        .output()
        .expect("openssl x509 -serial");
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        format!("serial={}", serial_hex(leaf.serial_bytes()))
    );
    assert!(!leaf.serial_bytes().is_empty() && leaf.serial_bytes()[0] != 0);

    let issuer = fx.issuer();
    assert_eq!(leaf.raw_issuer_der(), issuer.raw_subject_der());
    let root = fx.root.cert();
    assert_eq!(root.raw_issuer_der(), root.raw_subject_der());
    assert_ne!(issuer.raw_subject_der(), root.raw_subject_der());
}

// ---------------------------------------------------------------------------------
// CRLs
// ---------------------------------------------------------------------------------

#[test]
fn crl_revokes_listed_serials_with_their_reason_and_leaves_others_good() {
    let mut fx = fixture();
    let revoked = fx.leaf("Revoked");
    let good = fx.leaf("Good");
    fx.revoke(&revoked, Revocation::Reason("keyCompromise"));
    let crl = fx.validated_crl(&CrlSpec::default());

    assert_eq!(
        crl_status(&revoked.cert(), &crl, None, None).expect("status"),
        CertStatus::Revoked {
            revoked_at: at(REVOKED_AT_SECS),
            reason: Some(CrlReason::KeyCompromise),
        }
    );
    assert_eq!(
        crl_status(&good.cert(), &crl, None, None).expect("status"),
        CertStatus::Good
    );
    assert_eq!(
        crl.entry(revoked.cert().serial_bytes()),
        Some(&CrlEntry {
            revoked_at: at(REVOKED_AT_SECS),
            reason: Some(CrlReason::KeyCompromise),
            invalidity_date: None,
        })
    );
    assert_eq!(crl.entry(good.cert().serial_bytes()), None);
    assert_eq!(crl.len(), 1);
    assert_eq!(crl.crl_number(), Some(&[1u8][..]));
    assert_eq!(crl.delta_base(), None);
    assert!(!crl.has_freshest_crl());
    assert_eq!(crl.issuer_der(), fx.issuer().raw_subject_der());
    assert!(
        crl.issuer_string().contains("CN=Revocation CA"),
        "{}",
        crl.issuer_string()
    );
    assert_eq!(
        crl.next_update().expect("nextUpdate") - Duration::from_secs(24 * 3600),
        crl.this_update()
    );
}

#[test]
fn crl_reason_codes_are_read_back() {
    let mut fx = fixture();
    let cases = [
        (
            Revocation::Reason("superseded"),
            Some(CrlReason::Superseded),
        ),
        (
            Revocation::Reason("CACompromise"),
            Some(CrlReason::CaCompromise),
        ),
        (
            Revocation::Reason("cessationOfOperation"),
            Some(CrlReason::CessationOfOperation),
        ),
        (
            Revocation::Reason("affiliationChanged"),
            Some(CrlReason::AffiliationChanged),
        ),
        (
            Revocation::Reason("unspecified"),
            Some(CrlReason::Unspecified),
        ),
        (Revocation::NoReason, None),
        (Revocation::Hold, Some(CrlReason::CertificateHold)),
    ];
    let mut leaves = Vec::new();
    for (i, (how, reason)) in cases.into_iter().enumerate() {
        let leaf = fx.leaf(&format!("Reason {i}"));
        fx.ca.revoke(&leaf, at(REVOKED_AT_SECS), how);
        leaves.push((leaf, reason));
    }
    let crl = fx.validated_crl(&CrlSpec::default());
    for (leaf, reason) in leaves {
        // A held certificate is revoked while on hold.
        assert_eq!(
            crl_status(&leaf.cert(), &crl, None, None).expect("status"),
            CertStatus::Revoked {
                revoked_at: at(REVOKED_AT_SECS),
                reason
            },
            "{reason:?}"
        );
    }
}

#[test]
fn crl_invalidity_date_after_the_signing_time_means_good() {
    let mut fx = fixture();
    let leaf = fx.leaf("Compromised");
    let since = at(INVALID_SINCE_SECS);
    fx.revoke(&leaf, Revocation::KeyCompromiseSince(since));
    let crl = fx.validated_crl(&CrlSpec::default());
    let cert = leaf.cert();
    assert_eq!(
        crl.entry(cert.serial_bytes()).map(|e| e.invalidity_date),
        Some(Some(since))
    );
    let revoked = CertStatus::Revoked {
        revoked_at: at(REVOKED_AT_SECS),
        reason: Some(CrlReason::KeyCompromise),
    };
    assert_eq!(
        crl_status(&cert, &crl, None, Some(since - DAY)).expect("status"),
        CertStatus::Good
    );
    assert_eq!(
        crl_status(&cert, &crl, None, Some(since + DAY)).expect("status"),
        revoked
    );
    // notary.x509 passes no signing time: invalidity dates are ignored.
    assert_eq!(
        crl_status(&cert, &crl, None, None).expect("status"),
        revoked
    );
}

#[test]
fn crl_signed_by_another_key_is_refused() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    fx.revoke(&leaf, Revocation::Reason("superseded"));
    let crl = Crl::from_der(&fx.ca.crl(&CrlSpec::default()).der).expect("parses");
    // Same subject DN, different key.
    let imposter = fx.pki.self_signed(&CertSpec::ca(CA).slot(6)).cert();
    assert_eq!(imposter.raw_subject_der(), fx.issuer().raw_subject_der());
    let err = refused!(
        crl.validate(&imposter, pullgate_testkit::time::now()),
        RevocationError::CrlSignature { source, .. } if matches!(**source, PkiError::BadSignature)
    );
    assert!(err.to_string().starts_with("CRL is not signed by"), "{err}");
}

#[test]
fn crl_from_another_issuer_is_refused() {
    let fx = fixture();
    let crl = Crl::from_der(&fx.ca.crl(&CrlSpec::default()).der).expect("parses");
    refused!(
        crl.validate(&fx.root.cert(), pullgate_testkit::time::now()),
        RevocationError::CrlIssuerMismatch { crl_issuer, issuer }
            if crl_issuer.contains("CN=Revocation CA") && issuer.contains("CN=Revocation Root")
    );
    // The CA certificate itself is issued by the root, not covered by the CA's CRL.
    refused!(
        crl_status(&fx.issuer(), &crl, None, None),
        RevocationError::CrlNotForCertificate { .. }
    );
}

#[test]
fn crl_issuer_without_crl_sign_is_refused() {
    let fx = fixture();
    let no_crl_sign = fx.pki.issue(
        &CertSpec::ca("/C=US/O=Notary/CN=No CRLSign CA")
            .slot(1)
            .key_usage(Some("critical,keyCertSign")),
        &fx.root,
    );
    let ca = Ca::new(&fx.pki, no_crl_sign);
    let crl = Crl::from_der(&ca.crl(&CrlSpec::default()).der).expect("parses");
    refused!(
        crl.validate(&ca.cert.cert(), pullgate_testkit::time::now()),
        RevocationError::IssuerCannotSignCrls { .. }
    );
}

#[test]
fn crl_is_valid_only_between_this_update_and_next_update() {
    let fx = fixture();
    let crl = fx.validated_crl(&CrlSpec {
        hours: 1,
        ..CrlSpec::default()
    });
    let next_update = crl.next_update().expect("nextUpdate");
    let later = next_update + Duration::from_secs(1);
    match crl.validate(&fx.issuer(), later) {
        Err(RevocationError::CrlExpired {
            next_update: n,
            at: a,
            ..
        }) => {
            assert_eq!((n, a), (next_update, later));
        }
        other => panic!("expected CrlExpired, got {other:?}"),
    }
    assert!(matches!(
        crl.validate(&fx.issuer(), next_update),
        Err(RevocationError::CrlExpired { .. })
    ));
    let earlier = crl.this_update() - Duration::from_secs(1);
    assert!(matches!(
        crl.validate(&fx.issuer(), earlier),
        Err(RevocationError::CrlNotYetValid { .. })
    ));
    crl.validate(&fx.issuer(), crl.this_update())
        .expect("valid at thisUpdate");
}

#[test]
fn crl_without_next_update_is_refused() {
    let fx = fixture();
    let der = fx.ca.sign_crl(&CrlDraft {
        this_update: pullgate_testkit::time::now() - Duration::from_secs(60),
        next_update: None,
        number: Some(1),
        delta_base: None,
        freshest_crl: None,
        entries: Vec::new(),
    });
    let crl = Crl::from_der(&der).expect("parses");
    refused!(
        crl.validate(&fx.issuer(), pullgate_testkit::time::now()),
        RevocationError::CrlNoNextUpdate { .. }
    );
}

#[test]
fn crl_with_an_unknown_critical_extension_is_refused() {
    let fx = fixture();
    let critical = CrlSpec {
        extensions: vec!["1.2.3.4 = critical,ASN1:NULL".to_string()],
        ..CrlSpec::default()
    };
    let err = fx.refused_crl(&critical);
    assert!(
        matches!(&err, RevocationError::CrlUnknownCriticalExtension { oid, .. } if oid == "1.2.3.4"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("has an unknown critical extension 1.2.3.4"),
        "{err}"
    );
    // The same extension non-critical is ignored.
    fx.validated_crl(&CrlSpec {
        extensions: vec!["1.2.3.4 = ASN1:NULL".to_string()],
        ..CrlSpec::default()
    });
}

#[test]
fn indirect_crl_is_refused_and_a_plain_issuing_distribution_point_is_not() {
    let fx = fixture();
    let idp = |indirect: bool| CrlSpec {
        extensions: vec![
            "issuingDistributionPoint = critical,@idp".to_string(),
            "[idp]".to_string(),
            "fullname = URI:http://127.0.0.1:1/ca.crl".to_string(),
            format!("indirectCRL = {}", if indirect { "TRUE" } else { "FALSE" }),
        ],
        ..CrlSpec::default()
    };
    let err = fx.refused_crl(&idp(true));
    assert!(matches!(err, RevocationError::IndirectCrl { .. }), "{err}");
    fx.validated_crl(&idp(false));
}

#[test]
fn pem_and_der_crls_parse_to_the_same_list() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    fx.revoke(&leaf, Revocation::Reason("superseded"));
    let file = fx.ca.crl(&CrlSpec::default());
    assert!(file.pem.starts_with(b"-----BEGIN X509 CRL-----"));
    let from_pem = Crl::from_pem_or_der(&file.pem).expect("PEM");
    let from_der = Crl::from_pem_or_der(&file.der).expect("DER");
    assert_eq!(from_pem.der(), &file.der[..]);
    assert_eq!(from_der.der(), &file.der[..]);
    let serial = leaf.cert().serial_bytes().to_vec();
    assert_eq!(from_pem.entry(&serial), from_der.entry(&serial));
    assert_eq!(
        from_pem.entry(&serial).and_then(|e| e.reason),
        Some(CrlReason::Superseded)
    );
    from_pem
        .validate(&fx.issuer(), pullgate_testkit::time::now())
        .expect("valid");
}

#[test]
fn twenty_thousand_entry_v1_crl_finds_every_listed_serial() {
    const COUNT: u32 = 20_000;
    let fx = fixture();
    let mut ca = Ca::new(&fx.pki, fx.ca.cert.clone());
    // Three-byte serials with the top bit set: DER pads each with a leading zero.
    let serial = |i: u32| (0x80_0000 + i).to_be_bytes()[1..].to_vec();
    for i in 1..=COUNT {
        ca.revoke_serial(&serial(i), at(REVOKED_AT_SECS), Revocation::NoReason);
    }
    // No CRLNumber and no extension: openssl writes a v1 CRL (no version field).
    let file = ca.crl(&CrlSpec {
        number: None,
        extensions: Vec::new(),
        ..CrlSpec::default()
    });
    let crl = Crl::from_der(&file.der).expect("20,000-entry CRL parses");
    crl.validate(&fx.issuer(), pullgate_testkit::time::now())
        .expect("valid");
    assert_eq!(crl.len(), COUNT as usize);
    assert_eq!(crl.crl_number(), None);
    let expected = CrlEntry {
        revoked_at: at(REVOKED_AT_SECS),
        reason: None,
        invalidity_date: None,
    };
    for i in 1..=COUNT {
        assert_eq!(crl.entry(&serial(i)), Some(&expected), "serial {i}");
    }
    assert_eq!(crl.entry(&serial(0)), None);
    assert_eq!(crl.entry(&serial(COUNT + 1)), None);
    // A leading zero byte does not change the serial.
    let mut padded = vec![0];
    padded.extend(serial(7));
    assert_eq!(crl.entry(&padded), Some(&expected));
}

// ---------------------------------------------------------------------------------
// Delta CRLs
// ---------------------------------------------------------------------------------

#[test]
fn openssl_delta_crl_adds_revocations_made_after_the_base() {
    let mut fx = fixture();
    let in_base = fx.leaf("In base");
    let in_delta = fx.leaf("In delta");
    let good = fx.leaf("Good");
    fx.revoke(&in_base, Revocation::Reason("keyCompromise"));
    let base_file = fx.ca.crl(&with_freshest(0x10));
    fx.ca.revoke(
        &in_delta,
        at(REVOKED_AT_SECS + 86_400),
        Revocation::Reason("superseded"),
    );
    let newer_file = fx.ca.crl(&with_freshest(0x11));
    let delta = Crl::from_der(&fx.ca.delta_crl(&base_file, &newer_file)).expect("delta parses");
    let base = Crl::from_der(&base_file.der).expect("base parses");
    let newer = Crl::from_der(&newer_file.der).expect("newer parses");
    let now = pullgate_testkit::time::now();
    base.validate(&fx.issuer(), now).expect("base valid");
    // DeltaCRLIndicator is critical and known.
    delta.validate(&fx.issuer(), now).expect("delta valid");
    assert_eq!(delta.delta_base(), Some(&[0x10u8][..]));
    assert_eq!(delta.crl_number(), Some(&[0x11u8][..]));
    assert_eq!(delta.len(), 1);
    assert!(base.has_freshest_crl());
    assert_eq!(base.freshest_crl_urls(), ["http://127.0.0.1:1/delta.crl"]);

    assert_eq!(
        crl_status(&in_delta.cert(), &base, Some(&delta), None).expect("status"),
        CertStatus::Revoked {
            revoked_at: at(REVOKED_AT_SECS + 86_400),
            reason: Some(CrlReason::Superseded),
        }
    );
    assert_eq!(
        crl_status(&in_base.cert(), &base, Some(&delta), None).expect("status"),
        CertStatus::Revoked {
            revoked_at: at(REVOKED_AT_SECS),
            reason: Some(CrlReason::KeyCompromise),
        }
    );
    assert_eq!(
        crl_status(&good.cert(), &base, Some(&delta), None).expect("status"),
        CertStatus::Good
    );

    // The base announces a delta: judging without it is refused, not "good".
    refused!(
        crl_status(&in_delta.cert(), &base, None, None),
        RevocationError::DeltaCrlMissing { .. }
    );
    // A delta is no base, and a full CRL is no delta.
    refused!(
        crl_status(&in_delta.cert(), &delta, None, None),
        RevocationError::BaseCrlIsDelta { .. }
    );
    refused!(
        crl_status(&in_delta.cert(), &base, Some(&newer), None),
        RevocationError::NotADeltaCrl { .. }
    );
}

#[test]
fn remove_from_crl_in_the_delta_undoes_a_hold_in_the_base() {
    let mut fx = fixture();
    let held = fx.leaf("Held");
    fx.revoke(&held, Revocation::Hold);
    let base = Crl::from_der(&fx.ca.crl(&with_freshest(0x20)).der).expect("base parses");
    let now = pullgate_testkit::time::now();
    let draft = |number: u32, delta_base: u32| CrlDraft {
        this_update: now - Duration::from_secs(60),
        next_update: Some(now + DAY),
        number: Some(number),
        delta_base: Some(delta_base),
        freshest_crl: None,
        entries: vec![DraftEntry {
            serial: held.cert().serial_bytes().to_vec(),
            revoked_at: at(REVOKED_AT_SECS + 86_400),
            reason: Some(x509_cert::ext::pkix::CrlReason::RemoveFromCRL),
        }],
    };
    let delta = Crl::from_der(&fx.ca.sign_crl(&draft(0x21, 0x20))).expect("delta parses");
    delta.validate(&fx.issuer(), now).expect("delta valid");
    assert_eq!(
        crl_status(&held.cert(), &base, Some(&delta), None).expect("status"),
        CertStatus::Good
    );

    // Number not above the base's.
    let stale = Crl::from_der(&fx.ca.sign_crl(&draft(0x20, 0x20))).expect("parses");
    refused!(
        crl_status(&held.cert(), &base, Some(&stale), None),
        RevocationError::DeltaCrlNotNewer { base, delta, .. } if base == "0x20" && delta == "0x20"
    );
    // Built on a newer base than the one given.
    let ahead = Crl::from_der(&fx.ca.sign_crl(&draft(0x22, 0x21))).expect("parses");
    refused!(
        crl_status(&held.cert(), &base, Some(&ahead), None),
        RevocationError::DeltaCrlBaseTooNew { base, delta_base, .. }
            if base == "0x20" && delta_base == "0x21"
    );
    // A base without FreshestCRL takes no delta; alone it keeps the hold.
    let plain = Crl::from_der(&fx.ca.crl(&CrlSpec::default()).der).expect("parses");
    refused!(
        crl_status(&held.cert(), &plain, Some(&delta), None),
        RevocationError::UnexpectedDeltaCrl { .. }
    );
    assert_eq!(
        crl_status(&held.cert(), &plain, None, None).expect("status"),
        CertStatus::Revoked {
            revoked_at: at(REVOKED_AT_SECS),
            reason: Some(CrlReason::CertificateHold),
        }
    );
}

#[test]
fn freshest_crl_only_in_the_certificate_is_unsupported() {
    let mut fx = fixture();
    let leaf = fx
        .ca
        .issue(
            &fx.pki,
            &CertSpec::leaf("/C=US/O=Notary/CN=Delta in cert").extra(FRESHEST),
        )
        .cert();
    let base = fx.validated_crl(&CrlSpec::default());
    refused!(
        crl_status(&leaf, &base, None, None),
        RevocationError::DeltaCrlOnlyInCertificate { .. }
    );
}

// ---------------------------------------------------------------------------------
// OCSP
// ---------------------------------------------------------------------------------

#[test]
fn ocsp_request_is_byte_for_byte_what_openssl_sends() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    let ours = ocsp_request_der(&leaf.cert(), &fx.issuer()).expect("encodes");
    let theirs = openssl_ocsp_request(fx.pki.dir(), &fx.ca.cert, &leaf, "sha1");
    assert_eq!(ours, theirs);
    let text = ocsp_request_text(fx.pki.dir(), &ours);
    assert!(text.contains("Hash Algorithm: sha1"), "{text}");
    assert!(
        text.contains(&format!(
            "Serial Number: {}",
            serial_hex(leaf.cert().serial_bytes())
        )),
        "{text}"
    );
    assert!(!text.contains("Nonce"), "{text}");
}

#[test]
fn ocsp_good_revoked_and_unknown_from_the_issuer() {
    let mut fx = fixture();
    let good = fx.leaf("Good");
    let revoked = fx.leaf("Revoked");
    fx.revoke(&revoked, Revocation::Reason("keyCompromise"));
    // Issued by the CA but absent from its database: openssl answers unknown.
    let unlisted = fx
        .pki
        .issue(&CertSpec::leaf("/C=US/O=Notary/CN=Unlisted"), &fx.ca.cert);
    let issuer = fx.issuer();
    let cases = [
        (&good, OcspStatus::Good),
        (
            &revoked,
            OcspStatus::Revoked {
                revoked_at: at(REVOKED_AT_SECS),
                reason: Some(CrlReason::KeyCompromise),
            },
        ),
        (&unlisted, OcspStatus::Unknown),
    ];
    for (leaf, expected) in cases {
        let response = fx.ocsp_response(leaf, &fx.ca.cert, OcspSpec::default());
        let now = pullgate_testkit::time::now();
        let answer = judge_ocsp_response(&response, &leaf.cert(), &issuer, now, None)
            .expect("issuer-signed response");
        assert_eq!(answer.status, expected);
        assert!(answer.this_update <= now);
        assert_eq!(answer.this_update + DAY, answer.next_update);
    }
}

#[test]
fn ocsp_invalidity_date_after_the_signing_time_means_good() {
    let mut fx = fixture();
    let leaf = fx.leaf("Compromised");
    let since = at(INVALID_SINCE_SECS);
    fx.revoke(&leaf, Revocation::KeyCompromiseSince(since));
    let response = fx.ocsp_response(&leaf, &fx.ca.cert, OcspSpec::default());
    let judge = |signing_time| {
        judge_ocsp_response(
            &response,
            &leaf.cert(),
            &fx.issuer(),
            pullgate_testkit::time::now(),
            signing_time,
        )
        .expect("valid response")
        .status
    };
    let revoked = OcspStatus::Revoked {
        revoked_at: at(REVOKED_AT_SECS),
        reason: Some(CrlReason::KeyCompromise),
    };
    assert_eq!(judge(Some(since - DAY)), OcspStatus::Good);
    assert_eq!(judge(Some(since + DAY)), revoked);
    assert_eq!(judge(None), revoked);
}

#[test]
fn ocsp_issuer_signed_variants_pass() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    // No certificates in the response; ResponderID by key hash.
    for spec in [
        OcspSpec {
            no_certs: true,
            ..OcspSpec::default()
        },
        OcspSpec {
            by_key: true,
            ..OcspSpec::default()
        },
    ] {
        let response = fx.ocsp_response(&leaf, &fx.ca.cert, spec);
        let answer = fx
            .judge(&response, &leaf)
            .unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        assert_eq!(answer.status, OcspStatus::Good, "{spec:?}");
    }
    // A SHA-256 CertID (openssl's request), echoed by the responder.
    let request = openssl_ocsp_request(fx.pki.dir(), &fx.ca.cert, &leaf, "sha256");
    assert!(ocsp_request_text(fx.pki.dir(), &request).contains("Hash Algorithm: sha256"));
    let response = fx
        .ca
        .ocsp_response(&request, &fx.ca.cert, OcspSpec::default());
    let answer = fx.judge(&response, &leaf).expect("SHA-256 CertID");
    assert_eq!(answer.status, OcspStatus::Good);
}

/// A delegated responder issued by `issuer` with extendedKeyUsage `eku`.
fn responder(fx: &Fixture, issuer: &Issued, eku: Option<&str>) -> Issued {
    fx.pki.issue(
        &CertSpec::leaf("/C=US/O=Notary/CN=OCSP Responder")
            .slot(7)
            .eku(eku),
        issuer,
    )
}

#[test]
fn ocsp_delegated_responder_with_ocsp_signing_passes() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    let delegated = responder(&fx, &fx.ca.cert, Some("OCSPSigning"));
    let response = fx.ocsp_response(&leaf, &delegated, OcspSpec::default());
    let answer = fx.judge(&response, &leaf).expect("authorised responder");
    assert_eq!(answer.status, OcspStatus::Good);
}

#[test]
fn ocsp_delegated_responder_without_ocsp_signing_is_refused() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    for eku in [None, Some("codeSigning")] {
        let delegated = responder(&fx, &fx.ca.cert, eku);
        let response = fx.ocsp_response(&leaf, &delegated, OcspSpec::default());
        let err = fx.judge(&response, &leaf).expect_err("no OCSPSigning");
        assert!(
            matches!(&err, RevocationError::OcspResponderNotOcspSigning { responder } if responder.contains("CN=OCSP Responder")),
            "{eku:?}: {err}"
        );
        assert!(
            err.to_string().starts_with(
                "OCSP response is not signed by the issuer or a responder it authorised"
            ),
            "{err}"
        );
    }
}

#[test]
fn ocsp_responder_not_issued_by_the_issuer_is_refused() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    // OCSPSigning, but certified by the root, not by the leaf's issuer.
    let stranger = responder(&fx, &fx.root, Some("OCSPSigning"));
    let response = fx.ocsp_response(&leaf, &stranger, OcspSpec::default());
    refused!(
        fx.judge(&response, &leaf),
        RevocationError::OcspResponderNotAuthorised { source, .. }
            if matches!(**source, PkiError::BadSignature)
    );
    // A delegated responder that sends no certificate cannot be checked at all.
    let delegated = responder(&fx, &fx.ca.cert, Some("OCSPSigning"));
    let response = fx.ocsp_response(
        &leaf,
        &delegated,
        OcspSpec {
            no_certs: true,
            ..OcspSpec::default()
        },
    );
    refused!(
        fx.judge(&response, &leaf),
        RevocationError::OcspResponderUnknown { .. }
    );
}

#[test]
fn ocsp_expired_responder_certificate_is_refused() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    let expired = fx.pki.issue(
        &CertSpec::leaf("/C=US/O=Notary/CN=OCSP Responder")
            .slot(7)
            .eku(Some("OCSPSigning"))
            .validity(days_from_now(-10), days_from_now(-1)),
        &fx.ca.cert,
    );
    let response = fx.ocsp_response(&leaf, &expired, OcspSpec::default());
    refused!(
        fx.judge(&response, &leaf),
        RevocationError::OcspResponderInvalid { source, .. }
            if matches!(**source, PkiError::CertExpired { .. })
    );
}

#[test]
fn ocsp_response_signed_by_another_key_is_refused() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    let response = fx.ocsp_response(&leaf, &fx.ca.cert, OcspSpec::default());
    let imposter = fx.pki.self_signed(&CertSpec::ca(CA).slot(6)).cert();
    refused!(
        judge_ocsp_response(&response, &leaf.cert(), &imposter, pullgate_testkit::time::now(), None),
        RevocationError::OcspNotSignedByIssuer { source, .. }
            if matches!(**source, PkiError::BadSignature)
    );
}

#[test]
fn ocsp_response_for_another_certificate_is_refused() {
    let mut fx = fixture();
    let asked = fx.leaf("Asked");
    let other = fx.leaf("Other");
    let response = fx.ocsp_response(&asked, &fx.ca.cert, OcspSpec::default());
    let err = fx
        .judge(&response, &other)
        .expect_err("no answer for this certificate");
    let serial = serial_hex(other.cert().serial_bytes());
    assert!(
        matches!(&err, RevocationError::OcspNoMatchingResponse { serial: s, .. } if *s == serial),
        "{err}"
    );
}

#[test]
fn ocsp_response_is_valid_only_until_next_update() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    let response = fx.ocsp_response(&leaf, &fx.ca.cert, OcspSpec::default());
    let judge_at = |now| judge_ocsp_response(&response, &leaf.cert(), &fx.issuer(), now, None);
    let answer = judge_at(pullgate_testkit::time::now()).expect("fresh");
    let later = answer.next_update + Duration::from_secs(1);
    match judge_at(later) {
        Err(RevocationError::OcspExpired { next_update, at }) => {
            assert_eq!((next_update, at), (answer.next_update, later));
        }
        other => panic!("expected OcspExpired, got {other:?}"),
    }
    // thisUpdate may lead `now` by the 5-minute skew, not more.
    judge_at(answer.this_update - Duration::from_secs(60)).expect("within the clock skew");
    assert!(matches!(
        judge_at(answer.this_update - Duration::from_secs(3600)),
        Err(RevocationError::OcspNotYetValid { .. })
    ));

    let open_ended = fx.ocsp_response(
        &leaf,
        &fx.ca.cert,
        OcspSpec {
            next_update_days: None,
            ..OcspSpec::default()
        },
    );
    let err = refused!(
        fx.judge(&open_ended, &leaf),
        RevocationError::OcspNoNextUpdate
    );
    assert_eq!(err.to_string(), "OCSP response has no nextUpdate");
}

#[test]
fn malformed_and_oversized_ocsp_responses_are_refused() {
    let mut fx = fixture();
    let leaf = fx.leaf("Leaf");
    let response = fx.ocsp_response(&leaf, &fx.ca.cert, OcspSpec::default());
    let judge = |der: &[u8]| fx.judge(der, &leaf);
    for garbage in [
        &b""[..],
        b"garbage",
        &response[..response.len() / 2],
        &[response.as_slice(), b"\x00"].concat(),
    ] {
        refused!(
            judge(garbage),
            RevocationError::MalformedOcspResponse { .. }
        );
    }
    let oversized = vec![0u8; MAX_OCSP_RESPONSE_BYTES + 1];
    assert!(matches!(
        judge(&oversized),
        Err(RevocationError::OcspResponseTooLarge {
            len,
            limit: MAX_OCSP_RESPONSE_BYTES
        }) if len == MAX_OCSP_RESPONSE_BYTES + 1
    ));
    // A CRL is not an OCSP response either.
    let crl = fx.ca.crl(&CrlSpec::default()).der;
    assert!(matches!(
        judge(&crl),
        Err(RevocationError::MalformedOcspResponse { .. })
    ));
}
