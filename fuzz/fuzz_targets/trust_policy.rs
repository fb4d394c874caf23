//! Fuzzes `pullgate::policy::TrustPolicyDocument::parse`: it must never panic, and a
//! document it accepts must keep the NOTARY.md §5 invariants scope selection relies
//! on (unique names and scopes, `*` alone, stores iff verifying); a global skip
//! (valid, as in notation-go) is what `global_skip` reports.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use pullgate::policy::{LevelName, TrustPolicyDocument, TrustedIdentities};

fuzz_target!(|data: &[u8]| {
    let Ok(document) = TrustPolicyDocument::parse(data) else {
        return;
    };
    assert_eq!(document.version, "1.0");
    assert!(!document.statements.is_empty());
    let mut names = HashSet::new();
    let mut scopes = HashSet::new();
    for statement in &document.statements {
        assert!(names.insert(statement.name.as_str()));
        assert!(!statement.registry_scopes.is_empty());
        let global = statement.registry_scopes.iter().any(|s| s == "*");
        assert!(!global || statement.registry_scopes.len() == 1);
        assert!(statement
            .registry_scopes
            .iter()
            .all(|s| scopes.insert(s.as_str())));
        let skip = statement.level.name == LevelName::Skip;
        // A global skip is valid (notation-go accepts it) and must be the one
        // `global_skip` reports, since that is what the load warning relies on.
        if skip && global {
            assert_eq!(
                document.global_skip().map(|s| s.name.as_str()),
                Some(statement.name.as_str())
            );
        }
        assert_eq!(skip, statement.trust_stores.is_empty());
        if let TrustedIdentities::Subjects(subjects) = &statement.trusted_identities {
            // C, ST and O are mandatory in every x509.subject identity.
            assert!(subjects.iter().all(|s| s.attributes().len() >= 3));
        }
    }
    if document.global_skip().is_none() {
        // Without a global skip, no statement reached through `*` skips.
        if let Ok(statement) = document.statement_for("registry.example.com/app") {
            assert!(
                statement.level.verifies()
                    || statement
                        .registry_scopes
                        .iter()
                        .any(|s| s == "registry.example.com/app")
            );
        }
    }
});
