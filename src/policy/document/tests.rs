//! One test per validation rule of NOTARY.md §5, each asserting the exact error.

use super::*;
use crate::policy::error::DnError;
use crate::policy::level::CheckAction;
use serde_json::{json, Value};

fn statement() -> Value {
    json!({
        "name": "wabbit-networks-images",
        "registryScopes": ["registry.acme-rockets.io/software/net-monitor"],
        "signatureVerification": { "level": "strict" },
        "trustStores": ["ca:acme-rockets"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=wabbit-networks.io"]
    })
}

fn doc(statements: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "version": "1.0", "trustPolicies": statements })).unwrap()
}

/// Parses one base statement with `edit` applied and returns the statement error.
fn invalid(edit: impl FnOnce(&mut Value)) -> (String, &'static str, StatementReason) {
    let mut s = statement();
    edit(&mut s);
    match TrustPolicyDocument::parse(&doc(vec![s])) {
        Err(PolicyError::InvalidStatement {
            statement,
            field,
            reason,
        }) => (statement, field, reason),
        other => panic!("expected a statement error, got {other:?}"),
    }
}

fn name() -> String {
    "wabbit-networks-images".to_owned()
}

#[test]
fn valid_statement_parses_to_its_parts() {
    let d = TrustPolicyDocument::parse(&doc(vec![statement()])).unwrap();
    assert_eq!(d.version, "1.0");
    let s = &d.statements[0];
    assert_eq!(s.name, "wabbit-networks-images");
    assert_eq!(
        s.registry_scopes,
        ["registry.acme-rockets.io/software/net-monitor"]
    );
    assert_eq!(s.level, VerificationLevel::predefined(LevelName::Strict));
    assert_eq!(s.verify_timestamp, VerifyTimestamp::Always);
    assert_eq!(
        s.trust_stores,
        [TrustStoreRef {
            store_type: StoreType::Ca,
            name: "acme-rockets".into()
        }]
    );
    let TrustedIdentities::Subjects(dns) = &s.trusted_identities else {
        panic!("subjects expected")
    };
    assert_eq!(dns.len(), 1);
    assert_eq!(dns[0].attributes()["O"], "wabbit-networks.io");
}

#[test]
fn error_message_names_statement_and_field() {
    let (statement, field, reason) = invalid(|s| s["registryScopes"] = json!(["*", "a.io/b"]));
    let err = PolicyError::InvalidStatement {
        statement,
        field,
        reason,
    };
    assert_eq!(
        err.to_string(),
        "trust policy statement \"wabbit-networks-images\": registryScopes: \"*\" cannot be combined with other scopes"
    );
}

#[test]
fn not_json() {
    assert!(matches!(
        TrustPolicyDocument::parse(b"{\"version\": \"1.0\", \"trustPolicies\": [ {} }"),
        Err(PolicyError::Json { .. })
    ));
}

#[test]
fn version_missing() {
    let err = TrustPolicyDocument::parse(br#"{"trustPolicies": []}"#).unwrap_err();
    assert!(matches!(err, PolicyError::MissingVersion), "{err:?}");
}

#[test]
fn version_unsupported() {
    let err =
        TrustPolicyDocument::parse(br#"{"version": "2.0", "trustPolicies": []}"#).unwrap_err();
    assert!(matches!(err, PolicyError::UnsupportedVersion { found } if found == "2.0"));
}

#[test]
fn zero_statements() {
    let err = TrustPolicyDocument::parse(&doc(vec![])).unwrap_err();
    assert!(matches!(err, PolicyError::NoStatements), "{err:?}");
    let err = TrustPolicyDocument::parse(br#"{"version": "1.0"}"#).unwrap_err();
    assert!(matches!(err, PolicyError::NoStatements), "{err:?}");
}

#[test]
fn empty_name() {
    assert_eq!(
        invalid(|s| s["name"] = json!("")),
        ("#0".into(), "name", StatementReason::EmptyName)
    );
}

#[test]
fn duplicate_name() {
    let mut second = statement();
    second["registryScopes"] = json!(["registry.acme-rockets.io/other"]);
    let err = TrustPolicyDocument::parse(&doc(vec![statement(), second])).unwrap_err();
    assert!(
        matches!(&err, PolicyError::DuplicateName { name, first: 0, second: 1 } if name == "wabbit-networks-images"),
        "{err:?}"
    );
}

#[test]
fn level_missing() {
    assert_eq!(
        invalid(|s| s["signatureVerification"] = json!({})),
        (
            name(),
            "signatureVerification.level",
            StatementReason::MissingLevel
        )
    );
    assert_eq!(
        invalid(|s| {
            s.as_object_mut().unwrap().remove("signatureVerification");
        }),
        (
            name(),
            "signatureVerification.level",
            StatementReason::MissingLevel
        )
    );
}

#[test]
fn level_unknown() {
    assert_eq!(
        invalid(|s| s["signatureVerification"]["level"] = json!("Strict")),
        (
            name(),
            "signatureVerification.level",
            StatementReason::UnknownLevel("Strict".into())
        )
    );
}

#[test]
fn verify_timestamp_unknown() {
    assert_eq!(
        invalid(|s| s["signatureVerification"]["verifyTimestamp"] = json!("never")),
        (
            name(),
            "signatureVerification.verifyTimestamp",
            StatementReason::UnknownVerifyTimestamp("never".into())
        )
    );
}

#[test]
fn verify_timestamp_values() {
    for (value, expected) in [
        ("always", VerifyTimestamp::Always),
        ("afterCertExpiry", VerifyTimestamp::AfterCertExpiry),
    ] {
        let mut s = statement();
        s["signatureVerification"]["verifyTimestamp"] = json!(value);
        let d = TrustPolicyDocument::parse(&doc(vec![s])).unwrap();
        assert_eq!(d.statements[0].verify_timestamp, expected);
    }
}

#[test]
fn override_integrity() {
    assert_eq!(
        invalid(|s| s["signatureVerification"]["override"] = json!({"integrity": "enforce"})),
        (
            name(),
            "signatureVerification.override",
            StatementReason::OverrideIntegrity
        )
    );
}

#[test]
fn override_on_skip() {
    assert_eq!(
        invalid(|s| {
            s["signatureVerification"] =
                json!({"level": "skip", "override": {"revocation": "log"}});
            s.as_object_mut().unwrap().remove("trustStores");
            s.as_object_mut().unwrap().remove("trustedIdentities");
        }),
        (
            name(),
            "signatureVerification.override",
            StatementReason::OverrideOnSkip
        )
    );
}

#[test]
fn override_unknown_key() {
    assert_eq!(
        invalid(|s| s["signatureVerification"]["override"] = json!({"signature": "log"})),
        (
            name(),
            "signatureVerification.override",
            StatementReason::UnknownOverrideKey("signature".into())
        )
    );
}

#[test]
fn override_skip_only_for_revocation() {
    assert_eq!(
        invalid(|s| s["signatureVerification"]["override"] = json!({"expiry": "skip"})),
        (
            name(),
            "signatureVerification.override",
            StatementReason::UnknownOverrideValue {
                check: "expiry",
                value: "skip".into(),
                allowed: "enforce or log"
            }
        )
    );
}

#[test]
fn override_applies() {
    let mut s = statement();
    s["signatureVerification"] = json!({"level": "permissive", "override": {"authenticity": "log", "revocation": "skip", "expiry": "enforce"}});
    let d = TrustPolicyDocument::parse(&doc(vec![s])).unwrap();
    let l = d.statements[0].level;
    assert_eq!(l.name, LevelName::Permissive);
    assert_eq!(
        [
            l.integrity,
            l.authenticity,
            l.authentic_timestamp,
            l.expiry,
            l.revocation
        ],
        [
            CheckAction::Enforce,
            CheckAction::Log,
            CheckAction::Log,
            CheckAction::Enforce,
            CheckAction::Skip
        ]
    );
}

#[test]
fn skip_with_stores() {
    assert_eq!(
        invalid(|s| {
            s["signatureVerification"]["level"] = json!("skip");
            s.as_object_mut().unwrap().remove("trustedIdentities");
        }),
        (
            name(),
            "trustStores, trustedIdentities",
            StatementReason::SkipWithStoresOrIdentities
        )
    );
}

#[test]
fn skip_with_identities() {
    assert_eq!(
        invalid(|s| {
            s["signatureVerification"]["level"] = json!("skip");
            s["trustStores"] = json!([]);
        }),
        (
            name(),
            "trustStores, trustedIdentities",
            StatementReason::SkipWithStoresOrIdentities
        )
    );
}

#[test]
fn skip_valid_on_named_scope() {
    let mut s = statement();
    s["signatureVerification"]["level"] = json!("skip");
    s.as_object_mut().unwrap().remove("trustStores");
    s.as_object_mut().unwrap().remove("trustedIdentities");
    let d = TrustPolicyDocument::parse(&doc(vec![s])).unwrap();
    assert!(!d.statements[0].level.verifies());
    assert!(d.statements[0].trust_stores.is_empty());
}

#[test]
fn skip_with_global_scope_is_accepted_as_notation_does() {
    let mut s = statement();
    s["signatureVerification"]["level"] = json!("skip");
    s["registryScopes"] = json!(["*"]);
    s.as_object_mut().unwrap().remove("trustStores");
    s.as_object_mut().unwrap().remove("trustedIdentities");
    let d = TrustPolicyDocument::parse(&doc(vec![s])).unwrap();
    assert_eq!(
        d.global_skip().map(|s| s.name.as_str()),
        Some(name().as_str())
    );
    assert!(!d
        .statement_for("any.registry/app")
        .unwrap()
        .level
        .verifies());
}

#[test]
fn global_skip_absent_for_named_skip_and_global_strict() {
    let mut named = statement();
    named["signatureVerification"]["level"] = json!("skip");
    named.as_object_mut().unwrap().remove("trustStores");
    named.as_object_mut().unwrap().remove("trustedIdentities");
    assert!(TrustPolicyDocument::parse(&doc(vec![named]))
        .unwrap()
        .global_skip()
        .is_none());
    let mut global = statement();
    global["registryScopes"] = json!(["*"]);
    assert!(TrustPolicyDocument::parse(&doc(vec![global]))
        .unwrap()
        .global_skip()
        .is_none());
}

#[test]
fn missing_trust_stores() {
    assert_eq!(
        invalid(|s| s["trustStores"] = json!([])),
        (
            name(),
            "trustStores, trustedIdentities",
            StatementReason::MissingStoresOrIdentities
        )
    );
}

#[test]
fn missing_trusted_identities() {
    assert_eq!(
        invalid(|s| {
            s.as_object_mut().unwrap().remove("trustedIdentities");
        }),
        (
            name(),
            "trustStores, trustedIdentities",
            StatementReason::MissingStoresOrIdentities
        )
    );
}

#[test]
fn trust_store_without_separator() {
    assert_eq!(
        invalid(|s| s["trustStores"] = json!(["*"])),
        (
            name(),
            "trustStores",
            StatementReason::MalformedTrustStore("*".into())
        )
    );
}

#[test]
fn trust_store_unknown_type() {
    assert_eq!(
        invalid(|s| s["trustStores"] = json!(["CA:acme"])),
        (
            name(),
            "trustStores",
            StatementReason::UnknownStoreType {
                value: "CA:acme".into(),
                store_type: "CA".into()
            }
        )
    );
}

#[test]
fn trust_store_bad_name() {
    for value in ["ca:", "ca:a/b", "tsa:..", "signingAuthority:a b"] {
        let (_, field, reason) = invalid(|s| s["trustStores"] = json!([value]));
        assert_eq!(field, "trustStores");
        let expected_name = value.split_once(':').unwrap().1;
        assert_eq!(
            reason,
            StatementReason::InvalidStoreName {
                value: value.into(),
                name: expected_name.into()
            }
        );
    }
}

#[test]
fn trust_store_listed_twice_kept_once() {
    let mut s = statement();
    s["trustStores"] = json!(["ca:a", "tsa:t", "ca:a"]);
    let d = TrustPolicyDocument::parse(&doc(vec![s])).unwrap();
    let stores: Vec<String> = d.statements[0]
        .trust_stores
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(stores, ["ca:a", "tsa:t"]);
}

#[test]
fn identity_empty_string() {
    assert_eq!(
        invalid(|s| s["trustedIdentities"] = json!([""])),
        (name(), "trustedIdentities", StatementReason::EmptyIdentity)
    );
}

#[test]
fn identity_wildcard_combined() {
    assert_eq!(
        invalid(|s| s["trustedIdentities"] = json!(["*", "x509.subject:C=US,ST=WA,O=x"])),
        (
            name(),
            "trustedIdentities",
            StatementReason::WildcardIdentityCombined
        )
    );
}

#[test]
fn identity_missing_separator() {
    assert_eq!(
        invalid(|s| s["trustedIdentities"] = json!(["x509.subject C=US,ST=WA,O=x"])),
        (
            name(),
            "trustedIdentities",
            StatementReason::IdentityMissingSeparator("x509.subject C=US,ST=WA,O=x".into())
        )
    );
}

#[test]
fn identity_without_value() {
    assert_eq!(
        invalid(|s| s["trustedIdentities"] = json!(["x509.subject:"])),
        (
            name(),
            "trustedIdentities",
            StatementReason::IdentityWithoutValue("x509.subject:".into())
        )
    );
}

fn dn_error(identity: &str) -> DnError {
    match invalid(|s| s["trustedIdentities"] = json!([identity])) {
        (
            _,
            "trustedIdentities",
            StatementReason::Identity {
                identity: i,
                source,
            },
        ) => {
            assert_eq!(i, identity);
            source
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn identity_unparsable_dn() {
    assert_eq!(
        dn_error("x509.subject:C=US,STWA,O=x"),
        DnError::Unparsable {
            dn: "C=US,STWA,O=x".into(),
            reason: "an RDN has no '=' between type and value"
        }
    );
}

#[test]
fn identity_multi_valued_rdn() {
    assert_eq!(
        dn_error("x509.subject:C=US+ST=WA,O=x"),
        DnError::MultiValuedRdn {
            dn: "C=US+ST=WA,O=x".into()
        }
    );
}

#[test]
fn identity_duplicate_attribute() {
    assert_eq!(
        dn_error("x509.subject:C=US,ST=WA,O=x,C=CA"),
        DnError::DuplicateAttribute {
            dn: "C=US,ST=WA,O=x,C=CA".into(),
            attribute: "C".into()
        }
    );
}

#[test]
fn identity_missing_mandatory() {
    assert_eq!(
        dn_error("x509.subject: CN=e2e,L=Seattle,ST=WA,C=US"),
        DnError::MissingMandatory {
            dn: " CN=e2e,L=Seattle,ST=WA,C=US".into(),
            attribute: "O"
        }
    );
}

#[test]
fn identity_s_alias_satisfies_st() {
    let mut s = statement();
    s["trustedIdentities"] = json!(["x509.subject:C=US,S=WA,O=x"]);
    assert!(TrustPolicyDocument::parse(&doc(vec![s])).is_ok());
}

#[test]
fn identity_hex_value() {
    assert_eq!(
        dn_error("x509.subject:C=bad=#identity,O=LOL,ST=LOL"),
        DnError::HexValue {
            dn: "C=bad=#identity,O=LOL,ST=LOL".into()
        }
    );
}

#[test]
fn identity_overlapping() {
    assert_eq!(
        invalid(|s| s["trustedIdentities"] = json!([
            "x509.subject: C=US, ST=WA, O=wabbit-network.io, OU=org1",
            "x509.subject:  C=US, ST=WA, O=wabbit-network.io"
        ])),
        (
            name(),
            "trustedIdentities",
            StatementReason::OverlappingIdentities {
                first: " C=US, ST=WA, O=wabbit-network.io, OU=org1".into(),
                second: "  C=US, ST=WA, O=wabbit-network.io".into()
            }
        )
    );
}

#[test]
fn identity_other_prefix_tolerated() {
    let mut s = statement();
    s["trustedIdentities"] = json!([
        "x509.subject:C=US,ST=WA,O=x",
        "nonX509Prefix:my-custom-identity"
    ]);
    let d = TrustPolicyDocument::parse(&doc(vec![s])).unwrap();
    let TrustedIdentities::Subjects(dns) = &d.statements[0].trusted_identities else {
        panic!()
    };
    assert_eq!(dns.len(), 1);
}

#[test]
fn scopes_empty() {
    assert_eq!(
        invalid(|s| s["registryScopes"] = json!([])),
        (name(), "registryScopes", StatementReason::NoScopes)
    );
    assert_eq!(
        invalid(|s| {
            s.as_object_mut().unwrap().remove("registryScopes");
        }),
        (name(), "registryScopes", StatementReason::NoScopes)
    );
}

#[test]
fn scopes_wildcard_combined() {
    assert_eq!(
        invalid(|s| s["registryScopes"] = json!(["a.io/b", "*"])),
        (
            name(),
            "registryScopes",
            StatementReason::WildcardScopeCombined
        )
    );
}

#[test]
fn scope_with_wildcard_inside() {
    assert_eq!(
        invalid(|s| s["registryScopes"] = json!(["registry.acme-rockets.io/*"])),
        (
            name(),
            "registryScopes",
            StatementReason::WildcardInScope("registry.acme-rockets.io/*".into())
        )
    );
}

#[test]
fn scope_not_domain_repo() {
    for scope in [
        "localhost:5000\\test-repo",
        "net-monitor",
        "https://a.io/b",
        "a.io/B",
        "a.io/b:tag",
        "a.io/b@sha256:00",
        "a.io/",
        "-a.io/b",
        "a.io:/b",
        "a.io/b//c",
        "a.io/b-",
        "a.io/b._c",
    ] {
        assert_eq!(
            invalid(|s| s["registryScopes"] = json!([scope])),
            (
                name(),
                "registryScopes",
                StatementReason::InvalidScope(scope.into())
            ),
            "{scope}"
        );
    }
}

#[test]
fn scope_grammar_accepts_distribution_names() {
    for scope in [
        "local/myOCILayout".to_lowercase().as_str(),
        "localhost:5000/test-repo",
        "docker.io/library/busybox",
        "a.io/b__c/d---e/f.g_h",
        "127.0.0.1:5000/x",
    ] {
        assert!(valid_scope(scope), "{scope}");
    }
}

#[test]
fn same_scope_in_two_statements() {
    let mut second = statement();
    second["name"] = json!("other");
    let err = TrustPolicyDocument::parse(&doc(vec![statement(), second])).unwrap_err();
    assert!(
        matches!(&err, PolicyError::DuplicateScope { scope, first, second }
            if scope == "registry.acme-rockets.io/software/net-monitor" && first == "wabbit-networks-images" && second == "other"),
        "{err:?}"
    );
}

#[test]
fn same_scope_twice_in_one_statement() {
    let mut s = statement();
    s["registryScopes"] = json!(["a.io/b", "a.io/b"]);
    let err = TrustPolicyDocument::parse(&doc(vec![s])).unwrap_err();
    assert!(
        matches!(&err, PolicyError::DuplicateScope { scope, first, second }
            if scope == "a.io/b" && first == second),
        "{err:?}"
    );
}

#[test]
fn two_global_statements() {
    let mut a = statement();
    a["registryScopes"] = json!(["*"]);
    let mut b = a.clone();
    b["name"] = json!("b");
    let err = TrustPolicyDocument::parse(&doc(vec![a, b])).unwrap_err();
    assert!(
        matches!(&err, PolicyError::DuplicateScope { scope, .. } if scope == "*"),
        "{err:?}"
    );
}

#[test]
fn selection_exact_then_global_then_none() {
    let mut global = statement();
    global["name"] = json!("global");
    global["registryScopes"] = json!(["*"]);
    let d = TrustPolicyDocument::parse(&doc(vec![global.clone(), statement()])).unwrap();
    assert_eq!(
        d.statement_for("registry.acme-rockets.io/software/net-monitor")
            .unwrap()
            .name,
        "wabbit-networks-images"
    );
    assert_eq!(
        d.statement_for("docker.io/library/busybox").unwrap().name,
        "global"
    );
    let only = TrustPolicyDocument::parse(&doc(vec![statement()])).unwrap();
    let err = only
        .statement_for("registry.acme-rockets.io/software/net-monitor2")
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::NoApplicablePolicy { repository } if repository == "registry.acme-rockets.io/software/net-monitor2"),
        "{err:?}"
    );
    // No normalisation.
    let mut lib = statement();
    lib["registryScopes"] = json!(["docker.io/library/busybox"]);
    let d = TrustPolicyDocument::parse(&doc(vec![lib])).unwrap();
    assert!(d.statement_for("busybox").is_err());
}

#[test]
fn unknown_keys_ignored() {
    let mut s = statement();
    s["globalPolicy"] = json!(true);
    assert!(TrustPolicyDocument::parse(&doc(vec![s])).is_ok());
}

#[test]
fn hundred_statements_parse() {
    let statements = (0..100)
        .map(|i| {
            let mut s = statement();
            s["name"] = json!(format!("s{i}"));
            s["registryScopes"] = json!([format!("registry.example.com/team{i}/app")]);
            s
        })
        .collect();
    let d = TrustPolicyDocument::parse(&doc(statements)).unwrap();
    assert_eq!(d.statements.len(), 100);
    assert_eq!(
        d.statement_for("registry.example.com/team99/app")
            .unwrap()
            .name,
        "s99"
    );
}
