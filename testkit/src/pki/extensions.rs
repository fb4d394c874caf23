//! The `x509v3_config` syntax [`CertSpec`](super::CertSpec) takes (the strings the
//! kit used to hand to `openssl ca`), parsed in process into typed RFC 5280 §4.2
//! extensions, DER-encoded the way OpenSSL 3.0 encodes the same lines. Only the forms
//! the tests use are understood; anything else panics naming the line, so a new test
//! finds out at once instead of getting a certificate without its extension.

use const_oid::db::rfc5280::{
    ANY_EXTENDED_KEY_USAGE, ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING,
    ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString};
use der::Encode;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, BasicConstraints, CrlDistributionPoints,
    ExtendedKeyUsage, FreshestCrl, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::ext::Extension;

/// `value` split at commas, with a leading `critical` item taken off as the flag.
fn items(value: &str) -> (bool, Vec<&str>) {
    let mut items: Vec<&str> = value.split(',').map(str::trim).collect();
    let critical = items.first() == Some(&"critical");
    if critical {
        items.remove(0);
    }
    (critical, items)
}

/// An extension whose `extnValue` is `inner`'s DER.
fn extension<T: Encode + AssociatedOid>(critical: bool, inner: &T) -> Extension {
    Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(inner.to_der().expect("DER of an extension value"))
            .expect("extension value fits an OCTET STRING"),
    }
}

/// `basicConstraints`: `[critical,]CA:TRUE|CA:FALSE[,pathlen:N]` (RFC 5280 §4.2.1.9).
pub(super) fn basic_constraints(value: &str) -> Extension {
    let (critical, items) = items(value);
    let mut bc = BasicConstraints {
        ca: false,
        path_len_constraint: None,
    };
    for item in items {
        match item.split_once(':') {
            Some(("CA", v)) if v.eq_ignore_ascii_case("true") => bc.ca = true,
            Some(("CA", v)) if v.eq_ignore_ascii_case("false") => bc.ca = false,
            Some(("pathlen", n)) => {
                bc.path_len_constraint = Some(
                    n.parse()
                        .unwrap_or_else(|_| panic!("basicConstraints pathlen {n:?}")),
                )
            }
            _ => panic!("basicConstraints item {item:?} in {value:?} is not supported"),
        }
    }
    extension(critical, &bc)
}

/// `keyUsage`: `[critical,]name,...` with openssl's bit names (RFC 5280 §4.2.1.3).
pub(super) fn key_usage(value: &str) -> Extension {
    let (critical, items) = items(value);
    let mut bits = der::flagset::FlagSet::<KeyUsages>::default();
    for item in items {
        bits |= match item {
            "digitalSignature" => KeyUsages::DigitalSignature,
            "nonRepudiation" => KeyUsages::NonRepudiation,
            "keyEncipherment" => KeyUsages::KeyEncipherment,
            "dataEncipherment" => KeyUsages::DataEncipherment,
            "keyAgreement" => KeyUsages::KeyAgreement,
            "keyCertSign" => KeyUsages::KeyCertSign,
            "cRLSign" => KeyUsages::CRLSign,
            "encipherOnly" => KeyUsages::EncipherOnly,
            "decipherOnly" => KeyUsages::DecipherOnly,
            other => panic!("keyUsage bit {other:?} in {value:?} is not supported"),
        };
    }
    extension(critical, &KeyUsage(bits))
}

/// `extendedKeyUsage`: `[critical,]name-or-dotted-OID,...` (RFC 5280 §4.2.1.12).
pub(super) fn extended_key_usage(value: &str) -> Extension {
    let (critical, items) = items(value);
    let oids = items
        .into_iter()
        .map(|item| match item {
            "serverAuth" => ID_KP_SERVER_AUTH,
            "clientAuth" => ID_KP_CLIENT_AUTH,
            "codeSigning" => ID_KP_CODE_SIGNING,
            "emailProtection" => ID_KP_EMAIL_PROTECTION,
            "timeStamping" => ID_KP_TIME_STAMPING,
            "OCSPSigning" => ID_KP_OCSP_SIGNING,
            "anyExtendedKeyUsage" => ANY_EXTENDED_KEY_USAGE,
            dotted => ObjectIdentifier::new(dotted)
                .unwrap_or_else(|_| panic!("extendedKeyUsage {dotted:?} in {value:?}")),
        })
        .collect();
    extension(critical, &ExtendedKeyUsage(oids))
}

/// One `TYPE:value` general name: `URI:`, `DNS:`, `email:` or `IP:` (v4 or v6).
fn general_name(item: &str) -> GeneralName {
    let ia5 = |v: &str| Ia5String::new(v).unwrap_or_else(|_| panic!("{item:?} is not IA5"));
    match item.split_once(':') {
        Some(("URI", v)) => GeneralName::UniformResourceIdentifier(ia5(v)),
        Some(("DNS", v)) => GeneralName::DnsName(ia5(v)),
        Some(("email", v)) => GeneralName::Rfc822Name(ia5(v)),
        Some(("IP", v)) => GeneralName::from(
            v.parse::<std::net::IpAddr>()
                .unwrap_or_else(|_| panic!("{item:?}: not an IP address")),
        ),
        _ => panic!("general name {item:?} is not supported (URI:, DNS:, email:, IP:)"),
    }
}

/// `crlDistributionPoints`/`freshestCRL`: one DistributionPoint with a fullName per
/// `URI:...` item, as openssl makes them (RFC 5280 §4.2.1.13, §4.2.1.15).
fn distribution_points(items: Vec<&str>) -> Vec<DistributionPoint> {
    items
        .into_iter()
        .map(|item| DistributionPoint {
            distribution_point: Some(DistributionPointName::FullName(vec![general_name(item)])),
            reasons: None,
            crl_issuer: None,
        })
        .collect()
}

/// `authorityInfoAccess`: `OCSP;URI:...` and `caIssuers;URI:...` items in order
/// (RFC 5280 §4.2.2.1).
fn access_descriptions(items: Vec<&str>) -> Vec<AccessDescription> {
    items
        .into_iter()
        .map(|item| {
            let (method, location) = item
                .split_once(';')
                .unwrap_or_else(|| panic!("authorityInfoAccess item {item:?} is not METHOD;NAME"));
            AccessDescription {
                access_method: match method {
                    "OCSP" => ID_AD_OCSP,
                    "caIssuers" => ID_AD_CA_ISSUERS,
                    other => panic!("authorityInfoAccess method {other:?} is not supported"),
                },
                access_location: general_name(location),
            }
        })
        .collect()
}

/// A further `name = value` line of [`CertSpec::extra`](super::CertSpec::extra).
pub(super) fn extra(line: &str) -> Extension {
    let (name, value) = line
        .split_once('=')
        .unwrap_or_else(|| panic!("extension line {line:?} is not `name = value`"));
    let (name, value) = (name.trim(), value.trim());
    match name {
        "basicConstraints" => return basic_constraints(value),
        "keyUsage" => return key_usage(value),
        "extendedKeyUsage" => return extended_key_usage(value),
        _ => {}
    }
    let (critical, items) = items(value);
    match name {
        "crlDistributionPoints" => {
            extension(critical, &CrlDistributionPoints(distribution_points(items)))
        }
        "freshestCRL" => extension(critical, &FreshestCrl(distribution_points(items))),
        "authorityInfoAccess" => extension(
            critical,
            &AuthorityInfoAccessSyntax(access_descriptions(items)),
        ),
        "subjectAltName" => extension(
            critical,
            &SubjectAltName(items.into_iter().map(general_name).collect()),
        ),
        other => panic!(
            "extension {other:?} ({line:?}) is not supported by the kit's certificate builder \
             (basicConstraints, keyUsage, extendedKeyUsage, crlDistributionPoints, freshestCRL, \
             authorityInfoAccess, subjectAltName; the key identifiers are always added)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_hex(ext: &Extension) -> String {
        ext.extn_value
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// Expected values are what `openssl ca` (OpenSSL 3.0.19) wrote for the same lines.
    #[test]
    fn encodings_match_openssl() {
        let ku = key_usage("critical,digitalSignature,nonRepudiation,decipherOnly");
        assert!(ku.critical);
        assert_eq!(value_hex(&ku), "030307C080");
        assert_eq!(value_hex(&basic_constraints("CA:FALSE")), "3000");
        let eku = extended_key_usage("critical,codeSigning,1.3.6.1.4.1.311.10.3.13,OCSPSigning");
        assert!(eku.critical);
        assert_eq!(
            value_hex(&eku),
            "302006082B06010505070303060A2B0601040182370A030D06082B06010505070309"
        );
        assert_eq!(
            value_hex(&extra(
                "authorityInfoAccess = OCSP;URI:http://127.0.0.1:1/ocsp, \
                 caIssuers;URI:http://127.0.0.1:1/ca.cer"
            )),
            "304C302306082B060105050730018617687474703A2F2F3132372E302E302E313A312F6F637370\
             302506082B060105050730028619687474703A2F2F3132372E302E302E313A312F63612E636572"
        );
        assert_eq!(
            value_hex(&extra(
                "crlDistributionPoints = URI:http://127.0.0.1:1/a.crl, URI:ldap://127.0.0.1:2/b.crl"
            )),
            "3040301EA01CA01A8618687474703A2F2F3132372E302E302E313A312F612E63726C\
             301EA01CA01A86186C6461703A2F2F3132372E302E302E313A322F622E63726C"
        );
        assert_eq!(
            value_hex(&extra("freshestCRL = URI:http://127.0.0.1:1/delta.crl")),
            "30243022A020A01E861C687474703A2F2F3132372E302E302E313A312F64656C74612E63726C"
        );
        assert_eq!(
            value_hex(&extra("subjectAltName = IP:127.0.0.1")),
            "300687047F000001"
        );
    }

    #[test]
    #[should_panic(expected = "nameConstraints")]
    fn unsupported_extensions_panic() {
        extra("nameConstraints = permitted;DNS:example.com");
    }
}
