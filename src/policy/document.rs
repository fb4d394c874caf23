//! The OCI trust policy document (`trustpolicy.oci.json` / `trustpolicy.json`) and every
//! validation rule of NOTARY.md §5. [`TrustPolicyDocument::parse`] validates fully: a
//! document that parses is one the verifier can use as is.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;

pub use crate::pki::StoreType;

use super::error::{PolicyError, StatementReason};
use super::identity::{leaf_subject, DistinguishedName};
use super::level::{LevelName, OverridableCheck, VerificationLevel};

/// A validated trust policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicyDocument {
    /// Always `"1.0"`.
    pub version: String,
    pub statements: Vec<TrustPolicyStatement>,
}

/// One validated statement of `trustPolicies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicyStatement {
    pub name: String,
    /// Fully qualified repositories (`domain/repo`), or exactly `["*"]`.
    pub registry_scopes: Vec<String>,
    /// The level with its `override` map applied.
    pub level: VerificationLevel,
    pub verify_timestamp: VerifyTimestamp,
    /// Empty exactly when the level is `skip`. Listing a store twice is accepted (as
    /// notation-go does) and kept once.
    pub trust_stores: Vec<TrustStoreRef>,
    pub trusted_identities: TrustedIdentities,
}

/// `signatureVerification.verifyTimestamp` (NOTARY.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyTimestamp {
    /// The default: verify the timestamp countersignature whenever a `tsa` store is
    /// configured.
    Always,
    /// Only when some signing-chain certificate has expired.
    AfterCertExpiry,
}

/// A `type:name` entry of `trustStores`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustStoreRef {
    pub store_type: StoreType,
    pub name: String,
}

impl fmt::Display for TrustStoreRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.store_type, self.name)
    }
}

/// `trustedIdentities` of a non-`skip` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentities {
    /// `["*"]`: any leaf that chains to the stores.
    Any,
    /// The `x509.subject:` identities. Entries with other prefixes are accepted at
    /// parse time, as the spec reserves them for plugins, but pullgate has no plugins,
    /// so they never match and are not kept; a statement with only such entries
    /// matches no signer.
    Subjects(Vec<DistinguishedName>),
}

impl TrustedIdentities {
    /// Checks the signing (leaf) certificate against the identities (NOTARY.md §5): `*`
    /// matches any leaf; otherwise the leaf subject must contain every attribute of some
    /// identity with an equal value, and must itself be matchable (C, ST, O present,
    /// only attributes notation can name, no `=#` value, no attribute twice).
    pub fn matches_leaf(&self, leaf_der: &[u8]) -> Result<(), PolicyError> {
        let subjects = match self {
            TrustedIdentities::Any => return Ok(()),
            TrustedIdentities::Subjects(subjects) => subjects,
        };
        let leaf =
            leaf_subject(leaf_der).map_err(|source| PolicyError::LeafCertificate { source })?;
        let policy = subjects.iter().map(|s| s.as_str().to_owned()).collect();
        let unusable = match &leaf.attributes {
            Ok(map) if subjects.iter().any(|s| s.matches_map(map)) => return Ok(()),
            Ok(_) if subjects.is_empty() => Some(
                "the statement has no x509.subject identities and pullgate runs no plugins"
                    .to_owned(),
            ),
            Ok(_) => None,
            Err(reason) => Some(reason.clone()),
        };
        Err(PolicyError::IdentityMismatch {
            subject: leaf.display,
            policy,
            unusable,
        })
    }
}

#[derive(Deserialize)]
struct RawDocument {
    version: Option<String>,
    #[serde(rename = "trustPolicies")]
    trust_policies: Option<Vec<RawStatement>>,
}

#[derive(Deserialize)]
struct RawStatement {
    name: Option<String>,
    #[serde(rename = "registryScopes")]
    registry_scopes: Option<Vec<String>>,
    #[serde(rename = "signatureVerification")]
    signature_verification: Option<RawSignatureVerification>,
    #[serde(rename = "trustStores")]
    trust_stores: Option<Vec<String>>,
    #[serde(rename = "trustedIdentities")]
    trusted_identities: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawSignatureVerification {
    level: Option<String>,
    #[serde(rename = "override")]
    overrides: Option<BTreeMap<String, String>>,
    #[serde(rename = "verifyTimestamp")]
    verify_timestamp: Option<String>,
}

const STATEMENT_DOC_VERSION: &str = "1.0";

impl TrustPolicyDocument {
    /// Parses and fully validates an OCI trust policy document (NOTARY.md §5).
    ///
    /// Unknown JSON keys are ignored, as notation-go's decoder does (so a blob-policy
    /// key such as `globalPolicy` does no harm); a blob policy without
    /// `registryScopes` is rejected as an OCI policy.
    pub fn parse(json: &[u8]) -> Result<TrustPolicyDocument, PolicyError> {
        let raw: RawDocument =
            serde_json::from_slice(json).map_err(|source| PolicyError::Json { source })?;
        match raw.version.as_deref() {
            None | Some("") => return Err(PolicyError::MissingVersion),
            Some(STATEMENT_DOC_VERSION) => {}
            Some(other) => {
                return Err(PolicyError::UnsupportedVersion {
                    found: other.to_owned(),
                })
            }
        }
        let raw_statements = raw.trust_policies.unwrap_or_default();
        if raw_statements.is_empty() {
            return Err(PolicyError::NoStatements);
        }
        let mut statements = Vec::with_capacity(raw_statements.len());
        let mut names: HashMap<String, usize> = HashMap::with_capacity(raw_statements.len());
        let mut scopes: HashMap<String, usize> = HashMap::new();
        for (index, raw) in raw_statements.into_iter().enumerate() {
            let statement = validate_statement(index, raw)?;
            if let Some(&first) = names.get(&statement.name) {
                return Err(PolicyError::DuplicateName {
                    name: statement.name,
                    first,
                    second: index,
                });
            }
            names.insert(statement.name.clone(), index);
            for scope in &statement.registry_scopes {
                // Also catches one scope listed twice in the same statement, whose
                // index is not in `statements` yet.
                if let Some(&first) = scopes.get(scope) {
                    let first = statements
                        .get(first)
                        .map_or(&statement.name, |s: &TrustPolicyStatement| &s.name);
                    return Err(PolicyError::DuplicateScope {
                        scope: scope.clone(),
                        first: first.clone(),
                        second: statement.name.clone(),
                    });
                }
                scopes.insert(scope.clone(), index);
            }
            statements.push(statement);
        }
        Ok(TrustPolicyDocument {
            version: STATEMENT_DOC_VERSION.to_owned(),
            statements,
        })
    }

    /// The `skip` statement with the global scope `*`, if any: every image no other
    /// statement names is then pulled unverified. Valid (notation-go accepts it), but
    /// loaders and `policy check` warn about it.
    pub fn global_skip(&self) -> Option<&TrustPolicyStatement> {
        self.statements
            .iter()
            .find(|s| !s.level.verifies() && s.registry_scopes.iter().any(|scope| scope == "*"))
    }

    /// The statement for `repository` (`registry/repo`, no tag or digest): the one whose
    /// `registryScopes` contains it exactly, else the `*` statement (NOTARY.md §5
    /// "Selection"). No normalisation: `docker.io/library/x` is not `x`.
    pub fn statement_for(&self, repository: &str) -> Result<&TrustPolicyStatement, PolicyError> {
        self.statements
            .iter()
            .find(|s| s.registry_scopes.iter().any(|scope| scope == repository))
            .or_else(|| {
                self.statements
                    .iter()
                    .find(|s| s.registry_scopes.iter().any(|scope| scope == "*"))
            })
            .ok_or_else(|| PolicyError::NoApplicablePolicy {
                repository: repository.to_owned(),
            })
    }
}

fn validate_statement(
    index: usize,
    raw: RawStatement,
) -> Result<TrustPolicyStatement, PolicyError> {
    let name = raw.name.unwrap_or_default();
    let id = if name.is_empty() {
        format!("#{index}")
    } else {
        name.clone()
    };
    let fail = |field: &'static str, reason: StatementReason| PolicyError::InvalidStatement {
        statement: id.clone(),
        field,
        reason,
    };
    if name.is_empty() {
        return Err(fail("name", StatementReason::EmptyName));
    }

    // signatureVerification: level, override, verifyTimestamp.
    let (level_name, overrides, verify_timestamp) = match raw.signature_verification {
        Some(sv) => (sv.level, sv.overrides, sv.verify_timestamp),
        None => (None, None, None),
    };
    let level_name = match level_name.as_deref() {
        None | Some("") => {
            return Err(fail(
                "signatureVerification.level",
                StatementReason::MissingLevel,
            ))
        }
        Some(l) => LevelName::parse(l).ok_or_else(|| {
            fail(
                "signatureVerification.level",
                StatementReason::UnknownLevel(l.to_owned()),
            )
        })?,
    };
    let mut level = VerificationLevel::predefined(level_name);
    if let Some(overrides) = overrides.filter(|o| !o.is_empty()) {
        const FIELD: &str = "signatureVerification.override";
        if overrides.contains_key("integrity") {
            return Err(fail(FIELD, StatementReason::OverrideIntegrity));
        }
        if level_name == LevelName::Skip {
            return Err(fail(FIELD, StatementReason::OverrideOnSkip));
        }
        for (key, value) in &overrides {
            let check = OverridableCheck::parse(key)
                .ok_or_else(|| fail(FIELD, StatementReason::UnknownOverrideKey(key.clone())))?;
            let action = check.parse_action(value).ok_or_else(|| {
                fail(
                    FIELD,
                    StatementReason::UnknownOverrideValue {
                        check: check.key(),
                        value: value.clone(),
                        allowed: check.allowed(),
                    },
                )
            })?;
            level = level.with_override(check, action);
        }
    }
    let verify_timestamp = match verify_timestamp.as_deref() {
        None | Some("") | Some("always") => VerifyTimestamp::Always,
        Some("afterCertExpiry") => VerifyTimestamp::AfterCertExpiry,
        Some(other) => {
            return Err(fail(
                "signatureVerification.verifyTimestamp",
                StatementReason::UnknownVerifyTimestamp(other.to_owned()),
            ))
        }
    };

    // trustStores and trustedIdentities: both for a verifying level, neither for skip.
    let raw_stores = raw.trust_stores.unwrap_or_default();
    let raw_identities = raw.trusted_identities.unwrap_or_default();
    let (trust_stores, trusted_identities) = if level_name == LevelName::Skip {
        if !raw_stores.is_empty() || !raw_identities.is_empty() {
            return Err(fail(
                "trustStores, trustedIdentities",
                StatementReason::SkipWithStoresOrIdentities,
            ));
        }
        (Vec::new(), TrustedIdentities::Subjects(Vec::new()))
    } else {
        if raw_stores.is_empty() || raw_identities.is_empty() {
            return Err(fail(
                "trustStores, trustedIdentities",
                StatementReason::MissingStoresOrIdentities,
            ));
        }
        let stores = parse_trust_stores(&raw_stores).map_err(|r| fail("trustStores", r))?;
        let identities =
            parse_identities(&raw_identities).map_err(|r| fail("trustedIdentities", r))?;
        (stores, identities)
    };

    // registryScopes.
    let registry_scopes = raw.registry_scopes.unwrap_or_default();
    validate_scopes(&registry_scopes).map_err(|r| fail("registryScopes", r))?;
    // The spec says "skip cannot be used with a global scope (*)", but notation-go
    // accepts it (NOTARY.md §5) and notation's own `skip_trustpolicy.json` uses it.
    // pullgate accepts it too, so a policy copied from notation loads and decides as
    // notation does; whoever loads it warns (see `global_skip`).

    Ok(TrustPolicyStatement {
        name,
        registry_scopes,
        level,
        verify_timestamp,
        trust_stores,
        trusted_identities,
    })
}

fn parse_trust_stores(values: &[String]) -> Result<Vec<TrustStoreRef>, StatementReason> {
    let mut out: Vec<TrustStoreRef> = Vec::with_capacity(values.len());
    for value in values {
        let Some((store_type, name)) = value.split_once(':') else {
            return Err(StatementReason::MalformedTrustStore(value.clone()));
        };
        let store_type =
            StoreType::parse(store_type).ok_or_else(|| StatementReason::UnknownStoreType {
                value: value.clone(),
                store_type: store_type.to_owned(),
            })?;
        if !valid_store_name(name) {
            return Err(StatementReason::InvalidStoreName {
                value: value.clone(),
                name: name.to_owned(),
            });
        }
        let store = TrustStoreRef {
            store_type,
            name: name.to_owned(),
        };
        if !out.contains(&store) {
            out.push(store);
        }
    }
    Ok(out)
}

/// `^[a-zA-Z0-9_.-]+$`, minus `.` and `..`, which the pattern admits but which would
/// name the type directory or its parent on disk.
pub(crate) fn valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

const X509_SUBJECT: &str = "x509.subject";

fn parse_identities(values: &[String]) -> Result<TrustedIdentities, StatementReason> {
    if values.iter().any(|v| v.is_empty()) {
        return Err(StatementReason::EmptyIdentity);
    }
    if values.iter().any(|v| v == "*") {
        if values.len() > 1 {
            return Err(StatementReason::WildcardIdentityCombined);
        }
        return Ok(TrustedIdentities::Any);
    }
    let mut subjects: Vec<DistinguishedName> = Vec::new();
    for value in values {
        let Some((prefix, identity)) = value.split_once(':') else {
            return Err(StatementReason::IdentityMissingSeparator(value.clone()));
        };
        if prefix != X509_SUBJECT {
            // Reserved for plugins; see `TrustedIdentities::Subjects`.
            continue;
        }
        if identity.trim().is_empty() {
            return Err(StatementReason::IdentityWithoutValue(value.clone()));
        }
        let dn =
            DistinguishedName::parse(identity).map_err(|source| StatementReason::Identity {
                identity: value.clone(),
                source,
            })?;
        subjects.push(dn);
    }
    for (i, a) in subjects.iter().enumerate() {
        for (j, b) in subjects.iter().enumerate() {
            if i != j && a.is_subset_of(b) {
                let (first, second) = if i < j { (a, b) } else { (b, a) };
                return Err(StatementReason::OverlappingIdentities {
                    first: first.as_str().to_owned(),
                    second: second.as_str().to_owned(),
                });
            }
        }
    }
    Ok(TrustedIdentities::Subjects(subjects))
}

fn validate_scopes(scopes: &[String]) -> Result<(), StatementReason> {
    if scopes.is_empty() {
        return Err(StatementReason::NoScopes);
    }
    if scopes.iter().any(|s| s == "*") {
        if scopes.len() > 1 {
            return Err(StatementReason::WildcardScopeCombined);
        }
        return Ok(());
    }
    for scope in scopes {
        if scope.contains('*') {
            return Err(StatementReason::WildcardInScope(scope.clone()));
        }
        if !valid_scope(scope) {
            return Err(StatementReason::InvalidScope(scope.clone()));
        }
    }
    Ok(())
}

/// `domain/repository` as notation-go checks it with the distribution reference
/// grammar: domain = DNS labels (`[a-zA-Z0-9]` with inner `-`) joined by `.`, with an
/// optional `:port`; repository = `/`-separated components of lower-case alphanumeric
/// runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_scope(scope: &str) -> bool {
    let Some((domain, repository)) = scope.split_once('/') else {
        return false;
    };
    valid_domain(domain)
        && !repository.is_empty()
        && repository.split('/').all(valid_path_component)
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

fn valid_path_component(component: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = component.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run between two alphanumeric runs.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
