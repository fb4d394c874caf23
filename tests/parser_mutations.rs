//! A stable-toolchain stand-in for the `timestamp_token` and `trust_policy` fuzz
//! targets (fuzz/run needs nightly and cargo-fuzz): thousands of deterministic,
//! seeded mutations of valid inputs must each return without panicking, and
//! anything accepted must keep the invariants the fuzz targets assert. Seeds are
//! tokens from a real `openssl ts` TSA and a policy exercising every field, plus the
//! notation vectors when they are beside the repo.

use pullgate_testkit as support;

use std::collections::HashSet;

use pullgate::pki::timestamp::TimestampToken;
use pullgate::policy::{LevelName, TrustPolicyDocument, TrustedIdentities};
use support::tsa::{Stamp, Tsa, TsaKey};

/// Mutations per seed.
const ROUNDS: usize = 3000;

/// xorshift64: deterministic, so a failure reproduces from the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four byte edits (overwrite, bit flip, insert, truncate) and, with
/// `fragments`, splices of tokens the parser gives meaning to.
fn mutate(rng: &mut Rng, original: &[u8], fragments: &[&[u8]]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(if fragments.is_empty() { 4 } else { 6 }) {
            0 if !bytes.is_empty() => bytes[at] = rng.next() as u8,
            1 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
            2 => bytes.insert(at.min(bytes.len()), rng.next() as u8),
            3 => bytes.truncate(at),
            4 => {
                let fragment = fragments[rng.below(fragments.len())];
                bytes.splice(
                    at.min(bytes.len())..at.min(bytes.len()),
                    fragment.iter().copied(),
                );
            }
            5 => {
                // Replace a run with a fragment (e.g. a value with another value).
                let fragment = fragments[rng.below(fragments.len())];
                let start = at.min(bytes.len());
                let end = (start + 1 + rng.below(16)).min(bytes.len());
                bytes.splice(start..end, fragment.iter().copied());
            }
            _ => {} // an edit that needs a byte, on an empty input
        }
    }
    bytes
}

fn vector_files(dir: &str, test: &str, extension: &str) -> Vec<Vec<u8>> {
    let Some(root) = support::vectors_dir("notation", test) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    let Ok(groups) = std::fs::read_dir(root.join(dir)) else {
        return files;
    };
    for group in groups.flatten() {
        for entry in std::fs::read_dir(group.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some(extension) {
                files.push(std::fs::read(&path).expect("read vector"));
            }
        }
    }
    files
}

#[test]
fn mutated_timestamp_tokens_never_panic() {
    let mut seeds = vec![
        Tsa::new(TsaKey::Rsa2048).stamp(b"x", &Stamp::default()),
        Tsa::new(TsaKey::EcP256).stamp(
            b"x",
            &Stamp {
                accuracy: None,
                ..Stamp::default()
            },
        ),
    ];
    seeds.extend(vector_files(
        "tokens",
        "mutated_timestamp_tokens_never_panic",
        "p7s",
    ));
    // The seeds are sound: the openssl ones verify over b"x".
    for seed in &seeds[..2] {
        let stamp = TimestampToken::parse(seed)
            .and_then(|t| t.verify(b"x"))
            .expect("seed token verifies");
        assert!(!stamp.signer_chain_der.is_empty());
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut accepted = 0;
    for seed in &seeds {
        for _ in 0..ROUNDS {
            let bytes = mutate(&mut rng, seed, &[]);
            if let Ok(token) = TimestampToken::parse(&bytes) {
                if let Ok(stamp) = token.verify(b"x") {
                    assert!(!stamp.signer_chain_der.is_empty());
                    accepted += 1;
                }
            }
        }
    }
    // Some edits land in unsigned parts (e.g. a certificate's padding); most must not
    // verify.
    assert!(accepted < seeds.len() * ROUNDS / 2, "{accepted} accepted");
}

/// A document using every field: exact and global scopes, each level, overrides,
/// verifyTimestamp, several stores and identities (with escapes).
const POLICY: &str = r#"{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "wabbit-networks-images",
      "registryScopes": ["registry.acme-rockets.io/software/net-monitor", "registry.acme-rockets.io/software/net-logger"],
      "signatureVerification": {"level": "strict", "verifyTimestamp": "afterCertExpiry"},
      "trustStores": ["ca:acme-rockets", "signingAuthority:acme-sa", "tsa:digicert"],
      "trustedIdentities": [
        "x509.subject: C=US, ST=WA, L=Seattle, O=acme-rockets.io, OU=Finance, CN=SecureBuilder",
        "x509.subject: C=US, ST=WA, O=acme\\, inc., CN=escaped"
      ]
    },
    {
      "name": "audit-images",
      "registryScopes": ["registry.acme-rockets.io/software/audited"],
      "signatureVerification": {"level": "permissive", "override": {"authenticity": "log", "revocation": "skip", "expiry": "log"}},
      "trustStores": ["ca:acme-rockets"],
      "trustedIdentities": ["*"]
    },
    {
      "name": "unsigned",
      "registryScopes": ["registry.acme-rockets.io/software/unsigned"],
      "signatureVerification": {"level": "skip"}
    },
    {
      "name": "global",
      "registryScopes": ["*"],
      "signatureVerification": {"level": "audit"},
      "trustStores": ["ca:acme-rockets"],
      "trustedIdentities": ["*"]
    }
  ]
}"#;

/// JSON and policy tokens to splice in: values of other fields, structure, and
/// edge cases of strings and numbers.
const POLICY_FRAGMENTS: &[&[u8]] = &[
    b"\"*\"",
    b"\"\"",
    b"\"skip\"",
    b"\"strict\"",
    b"\"audit\"",
    b"\"permissive\"",
    b"\"log\"",
    b"\"enforce\"",
    b"\"integrity\"",
    b"\"ca:x\"",
    b"\"tsa:..\"",
    b"\"signingAuthority:\"",
    b"\"x509.subject: C=US, ST=WA, O=x\"",
    b"\"x509.subject: C=US+ST=WA\"",
    b"\"x509.subject: CN=#0403\"",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"[]",
    b"{}",
    b"[\"*\",\"a/b\"]",
    b",",
    b":",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
];

fn check_policy_invariants(document: &TrustPolicyDocument) {
    assert_eq!(document.version, "1.0");
    assert!(!document.statements.is_empty());
    let mut names = HashSet::new();
    let mut scopes = HashSet::new();
    for statement in &document.statements {
        assert!(names.insert(statement.name.as_str()), "{statement:?}");
        assert!(!statement.registry_scopes.is_empty());
        let global = statement.registry_scopes.iter().any(|s| s == "*");
        assert!(!global || statement.registry_scopes.len() == 1);
        assert!(statement
            .registry_scopes
            .iter()
            .all(|s| scopes.insert(s.as_str())));
        let skip = statement.level.name == LevelName::Skip;
        // A global skip is valid (notation-go accepts it); it must be the one
        // `global_skip` reports, which the load warning relies on.
        if skip && global {
            assert_eq!(
                document.global_skip().map(|s| s.name.as_str()),
                Some(statement.name.as_str()),
                "{statement:?}"
            );
        }
        assert_eq!(skip, statement.trust_stores.is_empty(), "{statement:?}");
        if let TrustedIdentities::Subjects(subjects) = &statement.trusted_identities {
            // C, ST and O are mandatory in every x509.subject identity.
            assert!(subjects.iter().all(|s| s.attributes().len() >= 3));
        }
    }
}

#[test]
fn mutated_trust_policies_never_panic() {
    let seed = TrustPolicyDocument::parse(POLICY.as_bytes()).expect("seed policy is valid");
    assert_eq!(seed.statements.len(), 4);
    let mut seeds = vec![POLICY.as_bytes().to_vec()];
    seeds.extend(vector_files(
        "policies",
        "mutated_trust_policies_never_panic",
        "json",
    ));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut total) = (0, 0);
    for seed in &seeds {
        for _ in 0..ROUNDS {
            let bytes = mutate(&mut rng, seed, POLICY_FRAGMENTS);
            total += 1;
            if let Ok(document) = TrustPolicyDocument::parse(&bytes) {
                check_policy_invariants(&document);
                let _ = document.statement_for("registry.acme-rockets.io/software/net-monitor");
                accepted += 1;
            }
        }
    }
    // The mutations must reach past the JSON syntax into validation: some mutants
    // stay valid, most do not.
    assert!(
        accepted > 0 && accepted < total,
        "{accepted} of {total} accepted"
    );
}
