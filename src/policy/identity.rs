//! `x509.subject:` trusted identities: RFC 4514 distinguished names as notation reads
//! them (NOTARY.md §5 "trustedIdentities"), and matching them against a leaf subject.
//!
//! notation-go prints the leaf subject with Go's `pkix.Name.String()`, parses that
//! string again as an LDAP DN and compares attribute→value maps. This module computes
//! the same map straight from the DER `Name`, with the same outcomes:
//! - an attribute whose OID Go does not name (C, O, OU, CN, SERIALNUMBER, L, ST, STREET,
//!   POSTALCODE) prints as `OID=#hex`, which notation rejects, so such a leaf can only
//!   match `*`;
//! - an attribute type present twice makes notation's parser fail, so no match;
//! - a value containing `=#` makes notation's `=#` check fail, so no match;
//! - the leaf itself must carry C, ST and O.

use std::collections::BTreeMap;
use std::fmt;

use const_oid::ObjectIdentifier;
use der::Decode;

use super::error::DnError;
use crate::pki::{attribute_short_name, directory_string};

/// A validated `x509.subject:` distinguished name: an attribute→value map with upper-case
/// attribute types (`S` folded into `ST`) and unescaped, case-sensitive values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    raw: String,
    attributes: BTreeMap<String, String>,
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl DistinguishedName {
    /// Parses the text after `x509.subject:` with every rule of NOTARY.md §5: no `=#`
    /// hex values, no multi-valued RDN (`+`), no attribute twice, and C, ST (or `S`)
    /// and O present. RDNs are separated by unescaped `,` (or `;`, as the LDAP parser
    /// notation uses accepts); unescaped spaces around types and values are dropped.
    /// Attribute types are compared case-insensitively (RFC 4514 §3), values exactly.
    pub fn parse(dn: &str) -> Result<DistinguishedName, DnError> {
        if dn.contains("=#") {
            return Err(DnError::HexValue { dn: dn.to_owned() });
        }
        let mut attributes = BTreeMap::new();
        let pairs = split_rdns(dn).map_err(|e| match e {
            SplitError::MultiValued => DnError::MultiValuedRdn { dn: dn.to_owned() },
            SplitError::Unparsable(reason) => DnError::Unparsable {
                dn: dn.to_owned(),
                reason,
            },
        })?;
        for (attr_type, value) in pairs {
            if attributes.contains_key(&attr_type) {
                return Err(DnError::DuplicateAttribute {
                    dn: dn.to_owned(),
                    attribute: attr_type,
                });
            }
            attributes.insert(attr_type, value);
        }
        for attribute in MANDATORY {
            if !attributes.contains_key(attribute) {
                return Err(DnError::MissingMandatory {
                    dn: dn.to_owned(),
                    attribute,
                });
            }
        }
        Ok(DistinguishedName {
            raw: dn.to_owned(),
            attributes,
        })
    }

    /// The DN as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Attribute type (upper case, `S` as `ST`) → unescaped value.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }

    /// Every attribute of `self` is in `other` with the same value: any certificate
    /// that matches `other` also matches `self` (the spec's "overlapping" test).
    pub fn is_subset_of(&self, other: &DistinguishedName) -> bool {
        self.matches_map(&other.attributes)
    }

    pub(crate) fn matches_map(&self, subject: &BTreeMap<String, String>) -> bool {
        self.attributes
            .iter()
            .all(|(k, v)| subject.get(k).is_some_and(|s| s == v))
    }
}

const MANDATORY: [&str; 3] = ["C", "ST", "O"];

enum SplitError {
    Unparsable(&'static str),
    MultiValued,
}

impl From<&'static str> for SplitError {
    fn from(reason: &'static str) -> Self {
        SplitError::Unparsable(reason)
    }
}

/// Splits an RFC 4514 string into (TYPE, value) pairs, rejecting `+`.
fn split_rdns(dn: &str) -> Result<Vec<(String, String)>, SplitError> {
    if dn.trim().is_empty() {
        return Err("the DN is empty".into());
    }
    let mut out = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        // Attribute type, up to '='.
        let mut attr_type = String::new();
        loop {
            match chars.next() {
                Some('=') => break,
                Some(',' | ';' | '+') | None => {
                    return Err("an RDN has no '=' between type and value".into())
                }
                Some('\\') => return Err("an attribute type contains an escape".into()),
                Some(c) => attr_type.push(c),
            }
        }
        let attr_type = attr_type.trim();
        if !valid_attribute_type(attr_type) {
            return Err("an attribute type is empty or not a name or dotted OID".into());
        }
        let mut attr_type = attr_type.to_ascii_uppercase();
        if attr_type == "S" {
            attr_type = "ST".to_owned();
        }
        // Value, up to an unescaped separator; remember which bytes were escaped so
        // only unescaped surrounding spaces are trimmed.
        let mut bytes: Vec<u8> = Vec::new();
        let mut escaped: Vec<bool> = Vec::new();
        let mut end = None;
        while let Some(c) = chars.next() {
            match c {
                ',' | ';' => {
                    end = Some(c);
                    break;
                }
                '+' => return Err(SplitError::MultiValued),
                '\\' => {
                    let Some(n) = chars.next() else {
                        return Err("the DN ends inside an escape".into());
                    };
                    if let Some(hi) = n.to_digit(16) {
                        let lo = chars
                            .next()
                            .and_then(|c| c.to_digit(16))
                            .ok_or(SplitError::Unparsable("a hex escape needs two hex digits"))?;
                        // Two hex digits: one byte of a UTF-8 sequence (RFC 4514 §2.4).
                        bytes.push((hi * 16 + lo) as u8);
                        escaped.push(true);
                    } else if "\"+,;<>\\=# ".contains(n) {
                        let mut buf = [0u8; 4];
                        for b in n.encode_utf8(&mut buf).bytes() {
                            bytes.push(b);
                            escaped.push(true);
                        }
                    } else {
                        return Err("an escape is followed by a character that needs none".into());
                    }
                }
                c => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        bytes.push(b);
                        escaped.push(false);
                    }
                }
            }
        }
        let start = (0..bytes.len())
            .find(|&i| bytes[i] != b' ' || escaped[i])
            .unwrap_or(bytes.len());
        let stop = (start..bytes.len())
            .rev()
            .find(|&i| bytes[i] != b' ' || escaped[i])
            .map_or(start, |i| i + 1);
        let value = String::from_utf8(bytes[start..stop].to_vec())
            .map_err(|_| SplitError::Unparsable("a hex escape sequence is not UTF-8"))?;
        if value.is_empty() {
            return Err("an attribute value is empty".into());
        }
        out.push((attr_type, value));
        match end {
            None => return Ok(out),
            Some(_) if chars.peek().is_none() => return Err("the DN ends with a separator".into()),
            Some(_) => {}
        }
    }
}

fn valid_attribute_type(t: &str) -> bool {
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {
            t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
        Some(c) if c.is_ascii_digit() => ObjectIdentifier::new(t).is_ok(),
        _ => false,
    }
}

/// The leaf subject as notation sees it, or why it can match no `x509.subject`.
pub(crate) struct LeafSubject {
    /// RFC 4514 text for messages.
    pub(crate) display: String,
    pub(crate) attributes: Result<BTreeMap<String, String>, String>,
}

/// Reads the subject of a DER certificate.
pub(crate) fn leaf_subject(leaf_der: &[u8]) -> Result<LeafSubject, der::Error> {
    let cert = x509_cert::Certificate::from_der(leaf_der)?;
    let subject = cert.tbs_certificate().subject();
    Ok(LeafSubject {
        display: subject.to_string(),
        attributes: subject_map(subject),
    })
}

fn subject_map(name: &x509_cert::name::Name) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for atv in name.iter() {
        let Some(key) = attribute_short_name(&atv.oid) else {
            return Err(format!(
                "the subject has attribute {}, which notation cannot match",
                atv.oid
            ));
        };
        let value = directory_string(&atv.value)
            .ok_or_else(|| format!("the subject's {key} value is not a supported string"))?;
        if value.contains("=#") {
            return Err(format!("the subject's {key} value contains \"=#\""));
        }
        if map.insert(key.to_owned(), value).is_some() {
            return Err(format!("the subject has {key} more than once"));
        }
    }
    for attribute in MANDATORY {
        if !map.contains_key(attribute) {
            return Err(format!(
                "the subject has no {attribute}; C, ST and O are required"
            ));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(dn: &DistinguishedName) -> Vec<(&str, &str)> {
        dn.attributes()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn parses_with_spaces_and_s_alias() {
        let dn = DistinguishedName::parse(" C=US, S=WA , O=wabbit-networks.io, OU=Security Tools")
            .unwrap();
        assert_eq!(
            attrs(&dn),
            [
                ("C", "US"),
                ("O", "wabbit-networks.io"),
                ("OU", "Security Tools"),
                ("ST", "WA")
            ]
        );
        assert_eq!(
            dn.as_str(),
            " C=US, S=WA , O=wabbit-networks.io, OU=Security Tools"
        );
    }

    #[test]
    fn escapes_are_unescaped_and_escaped_spaces_kept() {
        let dn =
            DistinguishedName::parse(r"C=US,ST=WA,O=Acme\, Inc.,CN=\ lead\20,L=a\\b\;c").unwrap();
        assert_eq!(dn.attributes()["O"], "Acme, Inc.");
        assert_eq!(dn.attributes()["CN"], " lead ");
        assert_eq!(dn.attributes()["L"], r"a\b;c");
        let utf8 = DistinguishedName::parse(r"C=US,ST=WA,O=caf\C3\A9").unwrap();
        assert_eq!(utf8.attributes()["O"], "café");
    }

    #[test]
    fn multi_valued_rdn_rejected() {
        assert_eq!(
            DistinguishedName::parse("C=US+ST=WA,O=x"),
            Err(DnError::MultiValuedRdn {
                dn: "C=US+ST=WA,O=x".into()
            })
        );
    }

    #[test]
    fn duplicate_attribute_rejected() {
        assert_eq!(
            DistinguishedName::parse("C=US,ST=WA,O=a,O=b"),
            Err(DnError::DuplicateAttribute {
                dn: "C=US,ST=WA,O=a,O=b".into(),
                attribute: "O".into()
            })
        );
        // S is ST, so S and ST together are a duplicate.
        assert!(matches!(
            DistinguishedName::parse("C=US,ST=WA,S=WA,O=a"),
            Err(DnError::DuplicateAttribute { attribute, .. }) if attribute == "ST"
        ));
    }

    #[test]
    fn mandatory_attributes_required() {
        for (dn, missing) in [
            ("ST=WA,O=x", "C"),
            ("C=US,O=x", "ST"),
            ("C=US,ST=WA,CN=x", "O"),
        ] {
            assert_eq!(
                DistinguishedName::parse(dn),
                Err(DnError::MissingMandatory {
                    dn: dn.into(),
                    attribute: missing
                })
            );
        }
    }

    #[test]
    fn hex_value_rejected() {
        assert_eq!(
            DistinguishedName::parse("C=bad=#identity,O=LOL,ST=LOL"),
            Err(DnError::HexValue {
                dn: "C=bad=#identity,O=LOL,ST=LOL".into()
            })
        );
        assert!(matches!(
            DistinguishedName::parse("C=US,ST=WA,O=#04024869"),
            Err(DnError::HexValue { .. })
        ));
    }

    #[test]
    fn unparsable_dns_rejected() {
        for dn in [
            "",
            "   ",
            "C=US,,O=x",
            "C=US,ST=WA,O=x,",
            "CUS,ST=WA,O=x",
            "C=US,ST=WA,O=",
            "C=US,ST=WA,O=x\\",
            "=US,ST=WA,O=x",
            "C=US,ST=WA,O=a\\qb",
        ] {
            assert!(
                matches!(
                    DistinguishedName::parse(dn),
                    Err(DnError::Unparsable { .. })
                ),
                "{dn:?}"
            );
        }
    }

    #[test]
    fn subset_is_overlap() {
        let wide = DistinguishedName::parse("C=US,ST=WA,O=x").unwrap();
        let narrow = DistinguishedName::parse("C=US,ST=WA,O=x,OU=y").unwrap();
        assert!(wide.is_subset_of(&narrow));
        assert!(!narrow.is_subset_of(&wide));
        let other = DistinguishedName::parse("C=US,ST=WA,O=z,OU=y").unwrap();
        assert!(!wide.is_subset_of(&other));
    }

    #[test]
    fn matching_is_case_sensitive_on_values_and_order_free() {
        let dn = DistinguishedName::parse("O=SomeOrg,ST=WA,C=US").unwrap();
        let mut leaf = BTreeMap::new();
        for (k, v) in [("C", "US"), ("ST", "WA"), ("O", "SomeOrg"), ("CN", "x")] {
            leaf.insert(k.to_owned(), v.to_owned());
        }
        assert!(dn.matches_map(&leaf));
        leaf.insert("O".into(), "someorg".into());
        assert!(!dn.matches_map(&leaf));
    }
}

#[cfg(test)]
mod leaf_tests {
    use crate::policy::test_pki::TestPki;
    use crate::policy::{DistinguishedName, PolicyError, TrustedIdentities};

    fn subjects(dns: &[&str]) -> TrustedIdentities {
        TrustedIdentities::Subjects(
            dns.iter()
                .map(|d| DistinguishedName::parse(d).unwrap())
                .collect(),
        )
    }

    fn unusable(err: PolicyError) -> Option<String> {
        match err {
            PolicyError::IdentityMismatch { unusable, .. } => unusable,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn leaf_matching() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf("l", "/C=US/ST=WA/L=Seattle/O=SomeOrg/OU=SomeOU/CN=SomeCN");
        assert!(subjects(&["C=US,O=SomeOrg,ST=WA"])
            .matches_leaf(&leaf.der)
            .is_ok());
        assert!(
            subjects(&["C=IND,O=SomeOrg,ST=TS", "C=US, S=WA, O=SomeOrg, CN=SomeCN"])
                .matches_leaf(&leaf.der)
                .is_ok()
        );
        let err = subjects(&["C=US,O=someorg,ST=WA"])
            .matches_leaf(&leaf.der)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "signing certificate subject \"CN=SomeCN,OU=SomeOU,O=SomeOrg,L=Seattle,ST=WA,C=US\" does not match the X.509 trusted identities [C=US,O=someorg,ST=WA] of the trust policy"
        );
        assert_eq!(unusable(err), None);
        assert!(subjects(&["C=US,O=SomeOrg,ST=WA,L=Portland"])
            .matches_leaf(&leaf.der)
            .is_err());
        assert!(TrustedIdentities::Any.matches_leaf(&leaf.der).is_ok());
        assert!(matches!(
            subjects(&["C=US,O=SomeOrg,ST=WA"]).matches_leaf(b"not a cert"),
            Err(PolicyError::LeafCertificate { .. })
        ));
    }

    #[test]
    fn leaf_without_mandatory_attributes_matches_only_any() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf("l", "/C=US/O=SomeOrg/CN=x");
        let err = subjects(&["C=US,O=SomeOrg,ST=WA"])
            .matches_leaf(&leaf.der)
            .unwrap_err();
        assert_eq!(
            unusable(err).as_deref(),
            Some("the subject has no ST; C, ST and O are required")
        );
        assert!(TrustedIdentities::Any.matches_leaf(&leaf.der).is_ok());
    }

    #[test]
    fn leaf_with_unknown_attribute_matches_only_any() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf("l", "/C=US/ST=WA/O=SomeOrg/emailAddress=a@b.c");
        let err = subjects(&["C=US,O=SomeOrg,ST=WA"])
            .matches_leaf(&leaf.der)
            .unwrap_err();
        assert_eq!(
            unusable(err).as_deref(),
            Some("the subject has attribute 1.2.840.113549.1.9.1, which notation cannot match")
        );
        assert!(TrustedIdentities::Any.matches_leaf(&leaf.der).is_ok());
    }

    #[test]
    fn leaf_with_hex_marker_or_duplicates_matches_only_any() {
        let pki = TestPki::new();
        let hex = pki.self_signed_leaf("h", "/C=US/ST=WA/O=SomeOrg/CN=Bad=#CN");
        let err = subjects(&["C=US,O=SomeOrg,ST=WA"])
            .matches_leaf(&hex.der)
            .unwrap_err();
        assert_eq!(
            unusable(err).as_deref(),
            Some("the subject's CN value contains \"=#\"")
        );
        let dup = pki.self_signed_leaf("d", "/C=US/ST=WA/O=SomeOrg/OU=a/OU=b");
        let err = subjects(&["C=US,O=SomeOrg,ST=WA"])
            .matches_leaf(&dup.der)
            .unwrap_err();
        assert_eq!(
            unusable(err).as_deref(),
            Some("the subject has OU more than once")
        );
    }

    #[test]
    fn no_x509_identities_match_nothing() {
        let pki = TestPki::new();
        let leaf = pki.self_signed_leaf("l", "/C=US/ST=WA/O=SomeOrg");
        let err = TrustedIdentities::Subjects(vec![])
            .matches_leaf(&leaf.der)
            .unwrap_err();
        assert!(unusable(err)
            .unwrap()
            .contains("no x509.subject identities"));
    }
}
