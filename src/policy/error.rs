//! The one error type of the `policy` module.

use super::document::StoreType;

/// Everything that can go wrong when parsing or applying a trust policy, loading a
/// trust store, or matching a trusted identity (NOTARY.md §5).
///
/// Validation errors of a single statement come as [`PolicyError::InvalidStatement`],
/// which names the statement (its `name`, or `#<index>` when the name is empty) and
/// the JSON field, so a user sees for example
/// `trust policy statement "wabbit-networks-images": registryScopes: "*" cannot be
/// combined with other scopes`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The document is not JSON of the trust policy schema.
    #[error("trust policy document is not valid JSON of the trust policy schema: {source}")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    /// `version` is absent.
    #[error("trust policy document: version: missing, it must be \"1.0\"")]
    MissingVersion,
    /// `version` is not `"1.0"`.
    #[error("trust policy document: version: {found:?} is not supported, it must be \"1.0\"")]
    UnsupportedVersion { found: String },
    /// `trustPolicies` is absent or empty.
    #[error("trust policy document: trustPolicies: the document has no statements")]
    NoStatements,
    /// One statement breaks a rule of NOTARY.md §5.
    #[error("trust policy statement {statement:?}: {field}: {reason}")]
    InvalidStatement {
        /// The statement's `name`, or `#<index>` (0-based) when it has none.
        statement: String,
        /// The JSON field at fault, e.g. `registryScopes`.
        field: &'static str,
        reason: StatementReason,
    },
    /// Two statements share a `name`.
    #[error("trust policy statements #{first} and #{second}: name: {name:?} is used by both, statement names must be unique")]
    DuplicateName {
        name: String,
        first: usize,
        second: usize,
    },
    /// One registry scope (possibly `*`) appears twice, in one or two statements.
    #[error("trust policy statements {first:?} and {second:?}: registryScopes: {scope:?} is present in multiple statements, a registry scope can only be associated with one statement")]
    DuplicateScope {
        scope: String,
        first: String,
        second: String,
    },
    /// No statement's scopes contain the repository and there is no `*` statement.
    #[error("repository {repository:?} has no applicable trust policy statement (no registryScopes entry matches it and there is no \"*\" statement)")]
    NoApplicablePolicy { repository: String },

    /// The signing certificate could not be read to match trusted identities.
    #[error("signing certificate cannot be parsed for trusted identity matching: {source}")]
    LeafCertificate {
        #[source]
        source: der::Error,
    },
    /// The leaf subject matches none of the statement's `x509.subject` identities.
    #[error("signing certificate subject {subject:?} does not match the X.509 trusted identities [{}] of the trust policy{}", .policy.join("; "), .unusable.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    IdentityMismatch {
        /// The leaf subject, RFC 4514 style.
        subject: String,
        /// Every `x509.subject` identity of the statement, as written.
        policy: Vec<String>,
        /// Why the leaf subject cannot match any `x509.subject` identity at all, if so
        /// (it lacks C, ST or O, has an unknown attribute, or a `=#` value).
        unusable: Option<String>,
    },

    /// A trust store name does not match `^[a-zA-Z0-9_.-]+$` (or is `.`/`..`).
    #[error("trust store name {name:?} is invalid, it must match [a-zA-Z0-9_.-]+")]
    InvalidStoreName { name: String },
    /// A trust store holds no certificate.
    #[error("trust store {name:?} of type {store_type} has no certificates")]
    EmptyStore { store_type: StoreType, name: String },
    /// A file of a trust store holds no readable certificate.
    #[error("trust store {name:?} of type {store_type}: file {file:?}: no certificate could be read: {reason}")]
    UnreadableCertificate {
        store_type: StoreType,
        name: String,
        file: String,
        reason: String,
    },
    /// A certificate of a `ca`/`signingAuthority` store is neither a CA nor self-signed.
    #[error("trust store {name:?} of type {store_type}: file {file:?}: certificate with subject {subject:?} is not a CA certificate or self-signed signing certificate")]
    NotCaOrSelfSigned {
        store_type: StoreType,
        name: String,
        file: String,
        subject: String,
    },
    /// A certificate of a `tsa` store is not a self-signed, self-issued root CA.
    #[error("trust store {name:?} of type tsa: file {file:?}: certificate with subject {subject:?} is not a root CA certificate: {reason}")]
    TsaNotRoot {
        name: String,
        file: String,
        subject: String,
        reason: String,
    },
}

/// Why a statement is invalid (the part after `statement "…": field:`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementReason {
    #[error("statement name is empty")]
    EmptyName,
    #[error("the statement has zero registry scopes")]
    NoScopes,
    #[error("\"*\" cannot be combined with other scopes")]
    WildcardScopeCombined,
    #[error("registry scope {0:?} with wild card(s) is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag")]
    WildcardInScope(String),
    #[error("registry scope {0:?} is not valid, make sure it is a fully qualified repository without the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout")]
    InvalidScope(String),
    #[error("level is missing, it must be one of strict, permissive, audit, skip")]
    MissingLevel,
    #[error("level {0:?} is not supported, it must be one of strict, permissive, audit, skip")]
    UnknownLevel(String),
    #[error("{0:?} is not supported, it must be \"always\" or \"afterCertExpiry\"")]
    UnknownVerifyTimestamp(String),
    #[error("\"integrity\" verification can not be overridden")]
    OverrideIntegrity,
    #[error("level \"skip\" cannot be overridden")]
    OverrideOnSkip,
    #[error("{0:?} is not a verification that can be overridden (authenticity, authenticTimestamp, expiry, revocation)")]
    UnknownOverrideKey(String),
    #[error("{check}: {value:?} is not a supported action, it must be {allowed}")]
    UnknownOverrideValue {
        check: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("level \"skip\" must not specify trust stores or trusted identities")]
    SkipWithStoresOrIdentities,
    #[error("the statement is either missing trust stores or trusted identities, both must be specified")]
    MissingStoresOrIdentities,
    #[error("malformed trust store value {0:?}, the required format is <TrustStoreType>:<TrustStoreName>")]
    MalformedTrustStore(String),
    #[error("unsupported trust store type {store_type:?} in trust store value {value:?}, it must be ca, signingAuthority or tsa")]
    UnknownStoreType { value: String, store_type: String },
    #[error("unsupported trust store name {name:?} in trust store value {value:?}, it must match [a-zA-Z0-9_.-]+")]
    InvalidStoreName { value: String, name: String },
    #[error("the statement has an empty trusted identity")]
    EmptyIdentity,
    #[error("a wildcard trusted identity '*' cannot be used in conjunction with other values")]
    WildcardIdentityCombined,
    #[error("trusted identity {0:?} is missing the separator ':'")]
    IdentityMissingSeparator(String),
    #[error("trusted identity {0:?} has no identity value")]
    IdentityWithoutValue(String),
    #[error("trusted identity {identity:?}: {source}")]
    Identity {
        identity: String,
        #[source]
        source: DnError,
    },
    #[error("x509 trusted identities {first:?} and {second:?} overlap (a certificate matching the narrower one matches both)")]
    OverlappingIdentities { first: String, second: String },
}

/// Why an RFC 4514 distinguished name of an `x509.subject:` identity is rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("distinguished name (DN) {dn:?} cannot be parsed: {reason}")]
    Unparsable { dn: String, reason: &'static str },
    #[error("distinguished name (DN) {dn:?} has a multi-valued RDN ('+'), which is not supported")]
    MultiValuedRdn { dn: String },
    #[error("distinguished name (DN) {dn:?} has the attribute {attribute:?} more than once")]
    DuplicateAttribute { dn: String, attribute: String },
    #[error("distinguished name (DN) {dn:?} has no mandatory RDN attribute for {attribute:?}, it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum")]
    MissingMandatory { dn: String, attribute: &'static str },
    #[error("distinguished name (DN) {dn:?} has an attribute value in '#' hex form ('=#'), which is not supported")]
    HexValue { dn: String },
}
