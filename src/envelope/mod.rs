//! Notary Project signature envelopes: pure parsing, no I/O, no clock.
//!
//! [`parse`] turns the bytes of one signature layer into a [`SignatureEnvelope`]
//! after every structural rule of NOTARY.md §3 (COSE and JWS) and the "Common
//! envelope checks" that need no certificate: payload content type, the
//! `targetArtifact` descriptor (§2), signing time non-zero, expiry strictly after
//! the signing (or authentic signing) time, a non-empty certificate chain, and the
//! critical-attribute rules. Cryptographic verification, certificate rules and
//! time-of-verification checks belong to `verify`/`pki`: nothing here says the
//! envelope is *trusted*, only that it is well formed.
//!
//! Deliberate differences from notation-go (fail closed, NOTARY.md §8):
//! - unknown critical extended attributes are rejected (notation-go ignores them
//!   when no plugin is involved; the spec says a verifier MUST reject them);
//! - `io.cncf.notary.verificationPlugin` is rejected: pullgate runs no plugins;
//! - duplicate keys in JSON objects and duplicate `crit` entries are rejected
//!   (Go keeps the last value), and so are case variants of a registered JWS
//!   protected header name (Go would silently bind them);
//! - for COSE, as for JWS, `signingTime` under `notary.x509.signingAuthority` and
//!   `authenticSigningTime` under `notary.x509` are rejected.

mod cose;
mod jws;

/// The test envelope builder shared with the integration tests.
#[cfg(test)]
pub(crate) use pullgate_testkit::envelope_builder as test_builder;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use crate::oci::{Descriptor, Digest};
pub(crate) use crate::pki::time::{parse_rfc3339, system_time};
pub use crate::pki::SignatureAlgorithm;

/// Envelope media type of a COSE_Sign1 signature layer.
pub const COSE_MEDIA_TYPE: &str = "application/cose";
/// Envelope media type of a JWS (flattened JSON) signature layer.
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
/// The only payload content type Notary signatures may carry (NOTARY.md §2).
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// Budget: bytes of one protected header (COSE bstr / JWS decoded JSON). Real
/// headers are a few hundred bytes; 1 MiB keeps decoder memory bounded well below
/// the 32 MiB envelope cap while leaving room for generous extended attributes.
pub const MAX_PROTECTED_HEADER_BYTES: usize = 1 << 20;
/// Budget: bytes of the signed payload. Notary payloads are one OCI descriptor
/// (NOTARY.md §2), a few hundred bytes plus annotations.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Budget: bytes of the raw signature. The largest any supported algorithm makes
/// is 1,024 (RSA-8192); anything longer cannot verify, and is refused before it
/// is copied out of the envelope.
pub const MAX_SIGNATURE_BYTES: usize = 16 << 10;
/// Budget: certificates in the envelope chain. Notation writes leaf → root, 1-4
/// certificates in practice; 32 leaves room for deep PKIs and bounds the work of
/// the chain validator.
pub const MAX_CERTIFICATE_CHAIN: usize = 32;

pub(crate) const HEADER_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub(crate) const HEADER_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub(crate) const HEADER_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub(crate) const HEADER_EXPIRY: &str = "io.cncf.notary.expiry";
pub(crate) const HEADER_TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";
pub(crate) const HEADER_SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
/// Extended attribute naming a verification plugin (NOTARY.md §8).
pub const ATTRIBUTE_VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";

/// Which envelope encoding a signature uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnvelopeFormat {
    /// `application/cose`: tagged COSE_Sign1 (RFC 9052).
    Cose,
    /// `application/jose+json`: JWS flattened JSON serialization (RFC 7515).
    Jws,
}

impl EnvelopeFormat {
    /// The envelope media type for this format.
    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeFormat::Cose => COSE_MEDIA_TYPE,
            EnvelopeFormat::Jws => JWS_MEDIA_TYPE,
        }
    }
}

impl fmt::Display for EnvelopeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnvelopeFormat::Cose => "COSE",
            EnvelopeFormat::Jws => "JWS",
        })
    }
}

/// `io.cncf.notary.signingScheme` (NOTARY.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningScheme {
    /// `notary.x509`: trust via `ca` stores, time via an RFC 3161 timestamp.
    X509,
    /// `notary.x509.signingAuthority`: trust via `signingAuthority` stores, time
    /// via `authenticSigningTime`.
    X509SigningAuthority,
}

impl SigningScheme {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }

    fn from_header(value: &str) -> Option<SigningScheme> {
        match value {
            "notary.x509" => Some(SigningScheme::X509),
            "notary.x509.signingAuthority" => Some(SigningScheme::X509SigningAuthority),
            _ => None,
        }
    }
}

impl fmt::Display for SigningScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protected header outside the ones Notary registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtendedAttribute {
    /// The header label (COSE integer labels are written in decimal).
    pub key: String,
    /// Whether the label is listed in `crit`. Parsed envelopes only ever hold
    /// non-critical ones: unknown critical attributes are rejected.
    pub critical: bool,
}

/// A structurally valid Notary signature envelope. Nothing in it is verified yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureEnvelope {
    pub format: EnvelopeFormat,
    pub algorithm: SignatureAlgorithm,
    pub signing_scheme: SigningScheme,
    /// `io.cncf.notary.signingTime` (notary.x509 only; unauthenticated).
    pub signing_time: Option<SystemTime>,
    /// `io.cncf.notary.authenticSigningTime` (notary.x509.signingAuthority only).
    pub authentic_signing_time: Option<SystemTime>,
    /// `io.cncf.notary.expiry`.
    pub expiry: Option<SystemTime>,
    pub payload_content_type: String,
    pub target_artifact: Descriptor,
    /// The exact to-be-signed bytes. COSE: the Sig_structure
    /// `["Signature1", protected bstr as received, h'', payload]`; JWS: the ASCII
    /// `protected_b64 "." payload_b64` exactly as received.
    pub signed_bytes: Vec<u8>,
    /// Raw signature bytes (ECDSA: fixed-width `r||s`). An RFC 3161 timestamp's
    /// messageImprint is computed over exactly these bytes (NOTARY.md §6).
    pub signature: Vec<u8>,
    /// DER certificates, leaf first. Never empty.
    pub certificate_chain: Vec<Vec<u8>>,
    /// DER RFC 3161 TimeStampToken (`io.cncf.notary.timestampSignature`).
    pub timestamp_token: Option<Vec<u8>>,
    /// `io.cncf.notary.signingAgent` (informational).
    pub signing_agent: Option<String>,
    /// Non-critical protected headers Notary does not register, in header order.
    pub extended_attributes: Vec<ExtendedAttribute>,
}

/// Why an envelope was rejected. Every variant is an integrity failure in
/// NOTARY.md §8 terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("signature envelope format with media type {media_type:?} is not supported")]
    UnsupportedMediaType { media_type: String },
    #[error("{what} exceeds its budget of {limit}")]
    TooLarge { what: &'static str, limit: usize },
    #[error("malformed {format} envelope: {reason}")]
    Malformed {
        format: EnvelopeFormat,
        reason: String,
    },
    #[error("COSE envelope is not a tagged COSE_Sign1 (CBOR tag 18)")]
    UntaggedCose,
    #[error("JWS {field} is padded base64url; it must be unpadded")]
    PaddedBase64 { field: &'static str },
    #[error("{field} is not valid base64")]
    InvalidBase64 { field: &'static str },
    #[error("{format} envelope is missing the {header} header")]
    MissingHeader {
        format: EnvelopeFormat,
        header: &'static str,
    },
    #[error("invalid {header} header: {reason}")]
    InvalidHeader {
        header: String,
        reason: &'static str,
    },
    #[error("signature algorithm {alg} is not supported")]
    UnsupportedAlgorithm { format: EnvelopeFormat, alg: String },
    #[error("signing scheme {scheme:?} is not supported")]
    UnsupportedSigningScheme { scheme: String },
    #[error("the {header} header must not be present for the {scheme} signing scheme")]
    HeaderNotAllowed {
        header: &'static str,
        scheme: SigningScheme,
    },
    #[error("the {header} header must be marked critical")]
    NotMarkedCritical { header: &'static str },
    #[error("header {header:?} is marked critical but is not present in the protected header")]
    CriticalHeaderMissing { header: String },
    #[error("header {header:?} must not be listed in crit")]
    CriticalHeaderNotAllowed { header: String },
    #[error(
        "digital signature requires verification plugin {plugin:?}; verification plugins \
         are not supported"
    )]
    VerificationPluginRequired { plugin: String },
    #[error("unknown critical extended attribute {key:?}")]
    UnknownCriticalAttribute { key: String },
    #[error("payload content type {found:?} is not {PAYLOAD_CONTENT_TYPE}")]
    PayloadContentType { found: String },
    #[error("invalid payload: {reason}")]
    Payload { reason: String },
    #[error("the {header} time is zero")]
    ZeroTime { header: &'static str },
    #[error("expiry is not after the signing time")]
    TimeOrder {
        signing_time: SystemTime,
        expiry: SystemTime,
    },
    #[error("certificate chain is not present")]
    EmptyCertificateChain,
}

/// Parses one signature envelope. `media_type` is the signature layer's media
/// type, which alone selects the parser (NOTARY.md §1 step 3).
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<SignatureEnvelope, EnvelopeError> {
    let parts = match media_type {
        COSE_MEDIA_TYPE => cose::parse(bytes)?,
        JWS_MEDIA_TYPE => jws::parse(bytes)?,
        other => {
            return Err(EnvelopeError::UnsupportedMediaType {
                media_type: other.chars().take(256).collect(),
            })
        }
    };
    parts.finish()
}

/// What the format-specific parsers extract; the common checks happen in
/// [`Parts::finish`].
pub(crate) struct Parts {
    pub format: EnvelopeFormat,
    pub algorithm: SignatureAlgorithm,
    pub signing_scheme: SigningScheme,
    /// The Notary headers as read (their times; the scheme is `signing_scheme`).
    pub notary: NotaryHeaders,
    pub content_type: String,
    pub payload: Vec<u8>,
    pub signed_bytes: Vec<u8>,
    pub signature: Vec<u8>,
    pub certificate_chain: Vec<Vec<u8>>,
    pub timestamp_token: Option<Vec<u8>>,
    pub signing_agent: Option<String>,
    /// Every unregistered protected header, with its `crit` membership and, for
    /// the verification plugin, its string value.
    pub extended: Vec<(ExtendedAttribute, Option<String>)>,
}

impl Parts {
    /// The common envelope checks (NOTARY.md §3 "Common envelope checks", §2).
    fn finish(self) -> Result<SignatureEnvelope, EnvelopeError> {
        // 1. The scheme's time is present and non-zero (base envelope check).
        let (header, time) = match self.signing_scheme {
            SigningScheme::X509 => (HEADER_SIGNING_TIME, self.notary.signing_time),
            SigningScheme::X509SigningAuthority => (
                HEADER_AUTHENTIC_SIGNING_TIME,
                self.notary.authentic_signing_time,
            ),
        };
        let time = time.ok_or(EnvelopeError::MissingHeader {
            format: self.format,
            header,
        })?;
        if time <= go_zero_time() {
            return Err(EnvelopeError::ZeroTime { header });
        }
        // 2. Expiry, if set, strictly after the signing (authentic) time.
        if let Some(expiry) = self.notary.expiry {
            if expiry <= time {
                return Err(EnvelopeError::TimeOrder {
                    signing_time: time,
                    expiry,
                });
            }
        }
        // 3. A certificate chain is present.
        if self.certificate_chain.is_empty() {
            return Err(EnvelopeError::EmptyCertificateChain);
        }
        if self.certificate_chain.iter().any(Vec::is_empty) {
            return Err(EnvelopeError::InvalidHeader {
                header: "x5chain".into(),
                reason: "contains an empty certificate",
            });
        }
        // 4. Payload content type, exactly (NOTARY.md §2).
        if self.content_type != PAYLOAD_CONTENT_TYPE {
            return Err(EnvelopeError::PayloadContentType {
                found: self.content_type.chars().take(256).collect(),
            });
        }
        // 5. Payload body: {"targetArtifact": descriptor}.
        let target_artifact = parse_payload(&self.payload)?;
        // 6. Extended attributes: a plugin is required whenever one is named
        //    (notation-go looks it up critical or not); unknown critical ones are
        //    rejected because no plugin can process them (NOTARY.md §8).
        for (attribute, value) in &self.extended {
            if attribute.key == ATTRIBUTE_VERIFICATION_PLUGIN {
                return Err(EnvelopeError::VerificationPluginRequired {
                    plugin: value
                        .as_deref()
                        .unwrap_or_default()
                        .chars()
                        .take(256)
                        .collect(),
                });
            }
        }
        if let Some((attribute, _)) = self.extended.iter().find(|(a, _)| a.critical) {
            return Err(EnvelopeError::UnknownCriticalAttribute {
                key: attribute.key.chars().take(256).collect(),
            });
        }
        Ok(SignatureEnvelope {
            format: self.format,
            algorithm: self.algorithm,
            signing_scheme: self.signing_scheme,
            signing_time: self.notary.signing_time,
            authentic_signing_time: self.notary.authentic_signing_time,
            expiry: self.notary.expiry,
            payload_content_type: self.content_type,
            target_artifact,
            signed_bytes: self.signed_bytes,
            signature: self.signature,
            certificate_chain: self.certificate_chain,
            timestamp_token: self.timestamp_token,
            signing_agent: self.signing_agent,
            extended_attributes: self.extended.into_iter().map(|(a, _)| a).collect(),
        })
    }
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), which notation treats as "no
/// signing time". Anything at or before it is rejected.
fn go_zero_time() -> SystemTime {
    // 719162 days from 0001-01-01 to 1970-01-01.
    UNIX_EPOCH
        .checked_sub(Duration::from_secs(62_135_596_800))
        .unwrap_or(UNIX_EPOCH)
}

/// Go's `encoding/json` key matching: exact or case-insensitive under simple
/// Unicode folding (so `ſ` matches `s` and the Kelvin sign matches `k`).
pub(crate) fn go_key_eq(key: &str, name: &str) -> bool {
    fn fold(c: char) -> char {
        match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_lowercase().next().unwrap_or(c),
        }
    }
    key.chars().count() == name.chars().count()
        && key
            .chars()
            .zip(name.chars())
            .all(|(a, b)| fold(a) == fold(b))
}

/// Reads a JSON object whose keys are matched the Go way against `names`;
/// unknown keys are skipped without allocating, a key seen twice is an error.
/// `on_field` deserializes the value of field `index`.
pub(crate) struct GoObject<T> {
    pub value: T,
}

pub(crate) trait GoFields: Default {
    const NAMES: &'static [&'static str];
    const WHAT: &'static str;
    fn field<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error>;
}

impl<'de, T: GoFields> Deserialize<'de> for GoObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: GoFields> Visitor<'de> for ObjectVisitor<T> {
            type Value = GoObject<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a JSON object ({})", T::WHAT)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut value = T::default();
                let mut seen = vec![false; T::NAMES.len()];
                while let Some(key) = map.next_key::<String>()? {
                    match T::NAMES.iter().position(|name| go_key_eq(&key, name)) {
                        Some(index) => {
                            if std::mem::replace(&mut seen[index], true) {
                                return Err(de::Error::custom(format_args!(
                                    "duplicate key {:?} in {}",
                                    T::NAMES[index],
                                    T::WHAT
                                )));
                            }
                            value.field(index, &mut map)?;
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(GoObject { value })
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// A JSON string → string map that rejects duplicate keys.
struct StrictStringMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for StrictStringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StrictStringMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrictStringMap(BTreeMap::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    if out.contains_key(&k) {
                        return Err(de::Error::custom(format_args!(
                            "duplicate annotation {k:?}"
                        )));
                    }
                    out.insert(k, v);
                }
                Ok(StrictStringMap(out))
            }
        }
        deserializer.deserialize_any(MapVisitor)
    }
}

#[derive(Default)]
struct PayloadFields {
    target_artifact: Option<DescriptorFields>,
}

impl GoFields for PayloadFields {
    const NAMES: &'static [&'static str] = &["targetArtifact"];
    const WHAT: &'static str = "payload";
    fn field<'de, A: MapAccess<'de>>(
        &mut self,
        _index: usize,
        map: &mut A,
    ) -> Result<(), A::Error> {
        self.target_artifact = Some(map.next_value::<GoObject<DescriptorFields>>()?.value);
        Ok(())
    }
}

#[derive(Default)]
struct DescriptorFields {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    annotations: Option<BTreeMap<String, String>>,
    artifact_type: Option<String>,
}

impl GoFields for DescriptorFields {
    const NAMES: &'static [&'static str] =
        &["mediaType", "digest", "size", "annotations", "artifactType"];
    const WHAT: &'static str = "targetArtifact";
    fn field<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.media_type = map.next_value()?,
            1 => self.digest = map.next_value()?,
            2 => self.size = map.next_value()?,
            3 => self.annotations = Some(map.next_value::<StrictStringMap>()?.0),
            _ => self.artifact_type = map.next_value()?,
        }
        Ok(())
    }
}

/// Parses the Notary payload `{"targetArtifact": <descriptor>}` (NOTARY.md §2) into
/// the one OCI descriptor type. Stricter than `oci::Descriptor`'s serde form: keys
/// match the Go way (case-insensitively, see [`go_key_eq`]), a key or annotation
/// seen twice is an error, and mediaType, digest and size are required.
fn parse_payload(payload: &[u8]) -> Result<Descriptor, EnvelopeError> {
    let payload_error = |reason: String| EnvelopeError::Payload { reason };
    let fields: PayloadFields = serde_json::from_slice::<GoObject<PayloadFields>>(payload)
        .map_err(|e| payload_error(e.to_string()))?
        .value;
    let target = fields
        .target_artifact
        .ok_or_else(|| payload_error("targetArtifact is missing".into()))?;
    let media_type = target
        .media_type
        .filter(|s| !s.is_empty())
        .ok_or_else(|| payload_error("targetArtifact.mediaType is missing".into()))?;
    let digest = target
        .digest
        .filter(|s| !s.is_empty())
        .ok_or_else(|| payload_error("targetArtifact.digest is missing".into()))?
        .parse::<Digest>()
        .map_err(|e| payload_error(format!("targetArtifact.digest: {e}")))?;
    let size = target
        .size
        .ok_or_else(|| payload_error("targetArtifact.size is missing".into()))?;
    let size =
        u64::try_from(size).map_err(|_| payload_error("targetArtifact.size is negative".into()))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        annotations: target.annotations.unwrap_or_default(),
        artifact_type: target.artifact_type,
    })
}

/// The Notary headers both formats carry in the protected header (NOTARY.md §3),
/// as read; [`NotaryHeaders::signing_scheme`] says which a scheme requires.
#[derive(Default)]
pub(crate) struct NotaryHeaders {
    /// `io.cncf.notary.signingScheme`.
    pub scheme: Option<String>,
    /// `io.cncf.notary.signingTime`.
    pub signing_time: Option<SystemTime>,
    /// `io.cncf.notary.authenticSigningTime`.
    pub authentic_signing_time: Option<SystemTime>,
    /// `io.cncf.notary.expiry`.
    pub expiry: Option<SystemTime>,
}

impl NotaryHeaders {
    /// The signing scheme header and the time header each scheme requires and
    /// forbids (NOTARY.md §3: `signingTime` for notary.x509, `authenticSigningTime`
    /// for notary.x509.signingAuthority).
    pub fn signing_scheme(&self, format: EnvelopeFormat) -> Result<SigningScheme, EnvelopeError> {
        let scheme = self.scheme.as_deref().ok_or(EnvelopeError::MissingHeader {
            format,
            header: HEADER_SIGNING_SCHEME,
        })?;
        let signing_scheme = SigningScheme::from_header(scheme).ok_or_else(|| {
            EnvelopeError::UnsupportedSigningScheme {
                scheme: scheme.chars().take(64).collect(),
            }
        })?;
        let (has_signing_time, has_authentic_signing_time) = (
            self.signing_time.is_some(),
            self.authentic_signing_time.is_some(),
        );
        match signing_scheme {
            SigningScheme::X509 if has_authentic_signing_time => {
                Err(EnvelopeError::HeaderNotAllowed {
                    header: HEADER_AUTHENTIC_SIGNING_TIME,
                    scheme: signing_scheme,
                })
            }
            SigningScheme::X509SigningAuthority if has_signing_time => {
                Err(EnvelopeError::HeaderNotAllowed {
                    header: HEADER_SIGNING_TIME,
                    scheme: signing_scheme,
                })
            }
            SigningScheme::X509 if !has_signing_time => Err(EnvelopeError::MissingHeader {
                format,
                header: HEADER_SIGNING_TIME,
            }),
            SigningScheme::X509SigningAuthority if !has_authentic_signing_time => {
                Err(EnvelopeError::MissingHeader {
                    format,
                    header: HEADER_AUTHENTIC_SIGNING_TIME,
                })
            }
            _ => Ok(signing_scheme),
        }
    }

    /// The headers `crit` must list (NOTARY.md §3): the signing scheme, the expiry
    /// when set, and the authentic signing time under notary.x509.signingAuthority.
    pub fn must_be_critical(&self, scheme: SigningScheme) -> Vec<&'static str> {
        let mut headers = vec![HEADER_SIGNING_SCHEME];
        if self.expiry.is_some() {
            headers.push(HEADER_EXPIRY);
        }
        if scheme == SigningScheme::X509SigningAuthority {
            headers.push(HEADER_AUTHENTIC_SIGNING_TIME);
        }
        headers
    }
}

#[cfg(test)]
#[allow(clippy::too_many_lines)] // table tests: one row per rule
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        system_time(secs, 0).expect("in range")
    }

    #[test]
    fn go_key_matching_folds_case() {
        assert!(go_key_eq(
            "io.cncf.notary.SigningAgent",
            HEADER_SIGNING_AGENT
        ));
        assert!(go_key_eq("PAYLOAD", "payload"));
        assert!(go_key_eq("\u{17F}ignature", "signature"));
        assert!(!go_key_eq("payloads", "payload"));
    }

    #[test]
    fn payload_requires_descriptor_fields() {
        // `"d"` stands for a well-formed digest.
        let digest = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
        let payload =
            |json: &str| parse_payload(json.replace(r#""d""#, &format!("{digest:?}")).as_bytes());
        let d = payload(r#"{"targetArtifact":{"mediaType":"m","digest":"d","size":3,"annotations":{"k":"v"},"artifactType":"t"},"other":[1]}"#)
            .expect("valid payload");
        assert_eq!(d.size, 3);
        assert_eq!(d.digest.to_string(), digest);
        assert_eq!(d.annotations.get("k").map(String::as_str), Some("v"));
        assert_eq!(d.artifact_type.as_deref(), Some("t"));
        // Go-like case-insensitive keys.
        let d = payload(r#"{"TargetArtifact":{"MediaType":"m","Digest":"d","Size":1}}"#)
            .expect("case-insensitive keys");
        assert_eq!(d.media_type, "m");
        for bad in [
            r#"{}"#,
            r#"[]"#,
            r#"{"targetArtifact":{"digest":"d","size":1}}"#,
            r#"{"targetArtifact":{"mediaType":"m","size":1}}"#,
            r#"{"targetArtifact":{"mediaType":"m","digest":"d"}}"#,
            r#"{"targetArtifact":{"mediaType":"m","digest":"d","size":-1}}"#,
            r#"{"targetArtifact":{"mediaType":"m","digest":"d","size":1.5}}"#,
            r#"{"targetArtifact":{"mediaType":"m","digest":"d","size":1,"annotations":{"a":"1","a":"2"}}}"#,
            r#"{"targetArtifact":{"mediaType":"m","digest":"d","size":1},"TARGETARTIFACT":{}}"#,
            // The digest is an OCI digest (`oci::Descriptor`): algorithm and hex checked.
            r#"{"targetArtifact":{"mediaType":"m","digest":"sha256:ab","size":1}}"#,
            r#"{"targetArtifact":{"mediaType":"m","digest":"x","size":1}}"#,
            "hello COSE",
        ] {
            assert!(
                matches!(payload(bad), Err(EnvelopeError::Payload { .. })),
                "{bad}"
            );
        }
    }

    use super::test_builder::{dummy_signer, EnvelopeSpec, Format};

    const FORMATS: [Format; 2] = [Format::Cose, Format::Jws];

    fn parse_spec(format: Format, spec: &EnvelopeSpec) -> Result<SignatureEnvelope, EnvelopeError> {
        parse(format.media_type(), &spec.build(format, &dummy_signer))
    }

    /// Asserts the same error shape for both formats.
    macro_rules! assert_both {
        ($spec:expr, $pattern:pat $(if $guard:expr)?) => {
            for format in FORMATS {
                let result = parse_spec(format, &$spec);
                assert!(
                    matches!(result, Err($pattern) $(if $guard)?),
                    "{format:?}: expected {}, got {result:?}",
                    stringify!($pattern)
                );
            }
        };
    }

    #[test]
    fn valid_x509_envelope_parses_with_every_field() {
        let spec = EnvelopeSpec {
            expiry: Some(1_700_000_000),
            timestamp_token: Some(b"token DER".to_vec()),
            certificate_chain: vec![b"leaf".to_vec(), b"root".to_vec()],
            extended_attributes: vec![("com.example.note".into(), "hi".into())],
            ..EnvelopeSpec::default()
        };
        for format in FORMATS {
            let env = parse_spec(format, &spec).expect("valid envelope");
            assert_eq!(env.algorithm, SignatureAlgorithm::Ps256);
            assert_eq!(env.signing_scheme, SigningScheme::X509);
            assert_eq!(env.signing_time, Some(at(1_687_843_833)));
            assert_eq!(env.authentic_signing_time, None);
            assert_eq!(env.expiry, Some(at(1_700_000_000)));
            assert_eq!(env.payload_content_type, PAYLOAD_CONTENT_TYPE);
            assert_eq!(env.target_artifact.size, 517);
            assert_eq!(env.certificate_chain, spec.certificate_chain);
            assert_eq!(env.timestamp_token.as_deref(), Some(&b"token DER"[..]));
            assert_eq!(env.signing_agent.as_deref(), Some("pullgate-tests/1.0"));
            assert_eq!(
                env.extended_attributes,
                vec![ExtendedAttribute {
                    key: "com.example.note".into(),
                    critical: false
                }]
            );
            assert_eq!(env.signed_bytes, spec.to_be_signed(format));
            assert_eq!(env.signature, dummy_signer(&[]));
        }
    }

    #[test]
    fn valid_signing_authority_envelope_parses() {
        for format in FORMATS {
            let env = parse_spec(format, &EnvelopeSpec::signing_authority()).expect("valid");
            assert_eq!(env.signing_scheme, SigningScheme::X509SigningAuthority);
            assert_eq!(env.authentic_signing_time, Some(at(1_687_843_833)));
            assert_eq!(env.signing_time, None);
        }
    }

    #[test]
    fn every_algorithm_parses() {
        for alg in SignatureAlgorithm::ALL {
            let spec = EnvelopeSpec {
                alg: alg.jws_name().into(),
                ..EnvelopeSpec::default()
            };
            for format in FORMATS {
                assert_eq!(parse_spec(format, &spec).expect("valid").algorithm, alg);
            }
        }
    }

    /// One envelope per header rule (NOTARY.md §3), each breaking that rule only,
    /// and the error both formats must report for it.
    #[test]
    fn each_header_rule_is_enforced_in_both_formats() {
        type Expect = Box<dyn Fn(&EnvelopeError) -> bool>;
        let missing = |header: &'static str| -> Expect {
            Box::new(
                move |e| matches!(*e, EnvelopeError::MissingHeader { header: h, .. } if h == header),
            )
        };
        let not_critical = |header: &'static str| -> Expect {
            Box::new(
                move |e| matches!(*e, EnvelopeError::NotMarkedCritical { header: h } if h == header),
            )
        };
        let not_allowed = |header: &'static str, scheme: SigningScheme| -> Expect {
            Box::new(
                move |e| matches!(*e, EnvelopeError::HeaderNotAllowed { header: h, scheme: s } if h == header && s == scheme),
            )
        };
        let cases: Vec<(&str, EnvelopeSpec, Expect)> = vec![
            (
                "unsupported_algorithm_is_rejected",
                EnvelopeSpec {
                    alg: "RS256".into(),
                    cose_alg: Some(-257),
                    ..EnvelopeSpec::default()
                },
                Box::new(|e| matches!(*e, EnvelopeError::UnsupportedAlgorithm { .. })),
            ),
            (
                "missing_signing_scheme_is_rejected",
                EnvelopeSpec {
                    signing_scheme: None,
                    ..EnvelopeSpec::default()
                },
                missing(HEADER_SIGNING_SCHEME),
            ),
            (
                "unknown_signing_scheme_is_rejected",
                EnvelopeSpec {
                    signing_scheme: Some("notary.x509.other".into()),
                    ..EnvelopeSpec::default()
                },
                Box::new(|e| matches!(*e, EnvelopeError::UnsupportedSigningScheme { .. })),
            ),
            (
                "x509_requires_signing_time",
                EnvelopeSpec {
                    signing_time: None,
                    ..EnvelopeSpec::default()
                },
                missing(HEADER_SIGNING_TIME),
            ),
            (
                "signing_authority_requires_authentic_signing_time",
                EnvelopeSpec {
                    authentic_signing_time: None,
                    crit: Some(vec![HEADER_SIGNING_SCHEME.into()]),
                    ..EnvelopeSpec::signing_authority()
                },
                missing(HEADER_AUTHENTIC_SIGNING_TIME),
            ),
            (
                "authentic_signing_time_is_forbidden_for_x509",
                EnvelopeSpec {
                    authentic_signing_time: Some(1_687_843_833),
                    ..EnvelopeSpec::default()
                },
                not_allowed(HEADER_AUTHENTIC_SIGNING_TIME, SigningScheme::X509),
            ),
            (
                "signing_time_is_forbidden_for_signing_authority",
                EnvelopeSpec {
                    signing_time: Some(1_687_843_833),
                    ..EnvelopeSpec::signing_authority()
                },
                not_allowed(HEADER_SIGNING_TIME, SigningScheme::X509SigningAuthority),
            ),
            // Go's zero time, 0001-01-01T00:00:00Z.
            (
                "zero_signing_time_is_rejected",
                EnvelopeSpec {
                    signing_time: Some(-62_135_596_800),
                    ..EnvelopeSpec::default()
                },
                Box::new(|e| {
                    matches!(
                        *e,
                        EnvelopeError::ZeroTime {
                            header: HEADER_SIGNING_TIME
                        }
                    )
                }),
            ),
            (
                "crit_is_required",
                EnvelopeSpec {
                    crit: Some(Vec::new()),
                    ..EnvelopeSpec::default()
                },
                missing("crit"),
            ),
            (
                "signing_scheme_must_be_critical",
                EnvelopeSpec {
                    crit: Some(vec!["com.example.a".into()]),
                    extended_attributes: vec![("com.example.a".into(), "x".into())],
                    ..EnvelopeSpec::default()
                },
                not_critical(HEADER_SIGNING_SCHEME),
            ),
            (
                "expiry_must_be_critical",
                EnvelopeSpec {
                    expiry: Some(1_800_000_000),
                    crit: Some(vec![HEADER_SIGNING_SCHEME.into()]),
                    ..EnvelopeSpec::default()
                },
                not_critical(HEADER_EXPIRY),
            ),
            (
                "authentic_signing_time_must_be_critical",
                EnvelopeSpec {
                    crit: Some(vec![HEADER_SIGNING_SCHEME.into()]),
                    ..EnvelopeSpec::signing_authority()
                },
                not_critical(HEADER_AUTHENTIC_SIGNING_TIME),
            ),
            (
                "critical_header_must_be_present",
                EnvelopeSpec {
                    critical_attributes: vec!["com.example.absent".into()],
                    ..EnvelopeSpec::default()
                },
                Box::new(
                    |e| matches!(*e, EnvelopeError::CriticalHeaderMissing { ref header } if header == "com.example.absent"),
                ),
            ),
            (
                "duplicate_crit_entries_are_rejected",
                EnvelopeSpec {
                    crit: Some(vec![
                        HEADER_SIGNING_SCHEME.into(),
                        HEADER_SIGNING_SCHEME.into(),
                    ]),
                    ..EnvelopeSpec::default()
                },
                Box::new(
                    |e| matches!(*e, EnvelopeError::InvalidHeader { ref header, .. } if header == "crit"),
                ),
            ),
            (
                "unknown_critical_attribute_is_rejected",
                EnvelopeSpec {
                    extended_attributes: vec![("SomeKey".into(), "SomeValue".into())],
                    critical_attributes: vec!["SomeKey".into()],
                    ..EnvelopeSpec::default()
                },
                Box::new(
                    |e| matches!(*e, EnvelopeError::UnknownCriticalAttribute { ref key } if key == "SomeKey"),
                ),
            ),
            (
                "certificate_chain_is_required",
                EnvelopeSpec {
                    certificate_chain: Vec::new(),
                    ..EnvelopeSpec::default()
                },
                Box::new(|e| matches!(*e, EnvelopeError::EmptyCertificateChain)),
            ),
        ];
        for (name, spec, expect) in cases {
            for format in FORMATS {
                let result = parse_spec(format, &spec);
                assert!(
                    matches!(&result, Err(e) if expect(e)),
                    "{name}, {format:?}: got {result:?}"
                );
            }
        }
    }

    #[test]
    fn expiry_must_be_strictly_after_signing_time() {
        for expiry in [1_687_843_833, 1_687_843_832] {
            let spec = EnvelopeSpec {
                expiry: Some(expiry),
                ..EnvelopeSpec::default()
            };
            assert_both!(spec, EnvelopeError::TimeOrder { .. });
            let spec = EnvelopeSpec {
                expiry: Some(expiry),
                ..EnvelopeSpec::signing_authority()
            };
            assert_both!(spec, EnvelopeError::TimeOrder { .. });
        }
    }

    #[test]
    fn verification_plugin_is_unsupported_critical_or_not() {
        for critical in [true, false] {
            let spec = EnvelopeSpec {
                extended_attributes: vec![(ATTRIBUTE_VERIFICATION_PLUGIN.into(), "p".into())],
                critical_attributes: if critical {
                    vec![ATTRIBUTE_VERIFICATION_PLUGIN.into()]
                } else {
                    Vec::new()
                },
                ..EnvelopeSpec::default()
            };
            assert_both!(
                spec,
                EnvelopeError::VerificationPluginRequired { ref plugin } if plugin == "p"
            );
        }
    }

    #[test]
    fn content_type_must_be_the_notary_payload() {
        let spec = EnvelopeSpec {
            content_type: Some("application/json".into()),
            ..EnvelopeSpec::default()
        };
        assert_both!(
            spec,
            EnvelopeError::PayloadContentType { ref found } if found == "application/json"
        );
        let spec = EnvelopeSpec {
            content_type: None,
            ..EnvelopeSpec::default()
        };
        assert_both!(spec, EnvelopeError::MissingHeader { .. });
    }

    #[test]
    fn payload_must_hold_a_target_descriptor() {
        for payload in [&b"hello COSE"[..], br#"{"key":"hello JWS"}"#, b"[1,2]"] {
            let spec = EnvelopeSpec {
                payload: Some(payload.to_vec()),
                ..EnvelopeSpec::default()
            };
            assert_both!(spec, EnvelopeError::Payload { .. });
        }
    }

    #[test]
    fn truncated_envelopes_fail_without_panicking() {
        for format in FORMATS {
            let bytes = EnvelopeSpec::default().build(format, &dummy_signer);
            for end in 0..bytes.len() {
                assert!(parse(format.media_type(), &bytes[..end]).is_err());
            }
        }
    }

    #[test]
    fn unsupported_media_type_is_named() {
        let err = parse(
            "application/vnd.oci.image.layer.v1.tar",
            b"invalid signature\n",
        )
        .expect_err("not an envelope");
        assert!(matches!(
            err,
            EnvelopeError::UnsupportedMediaType { ref media_type }
                if media_type == "application/vnd.oci.image.layer.v1.tar"
        ));
    }
}
