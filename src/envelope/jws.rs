//! JWS flattened JSON envelopes (NOTARY.md §3 "JWS"; SPEC
//! signature-envelope-jws.md; CORE `signature/jws`).

use std::fmt;
use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{
    go_key_eq, parse_rfc3339, EnvelopeError, EnvelopeFormat, ExtendedAttribute, GoFields, GoObject,
    NotaryHeaders, Parts, SignatureAlgorithm, ATTRIBUTE_VERIFICATION_PLUGIN,
    HEADER_AUTHENTIC_SIGNING_TIME, HEADER_EXPIRY, HEADER_SIGNING_AGENT, HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME, HEADER_TIMESTAMP_SIGNATURE, MAX_CERTIFICATE_CHAIN, MAX_PAYLOAD_BYTES,
    MAX_PROTECTED_HEADER_BYTES, MAX_SIGNATURE_BYTES,
};

const FORMAT: EnvelopeFormat = EnvelopeFormat::Jws;

/// The protected header names Notary registers for JWS (and `crit` itself).
const REGISTERED: [&str; 7] = [
    "alg",
    "cty",
    "crit",
    HEADER_SIGNING_SCHEME,
    HEADER_SIGNING_TIME,
    HEADER_AUTHENTIC_SIGNING_TIME,
    HEADER_EXPIRY,
];

/// Top level of the flattened serialization. Keys match the Go way (CORE
/// unmarshals into a struct); unknown keys are ignored.
#[derive(Default)]
struct EnvelopeFields {
    payload: Option<Member<MAX_PAYLOAD_BYTES>>,
    protected: Option<Member<MAX_PROTECTED_HEADER_BYTES>>,
    header: Option<UnprotectedFields>,
    signature: Option<Member<MAX_SIGNATURE_BYTES>>,
}

/// A base64url member whose decoded bytes have a budget of `LIMIT`: its text,
/// or, when the text is already too long to decode within the budget, nothing
/// but that fact (the text is never copied out of the envelope then).
enum Member<const LIMIT: usize> {
    Text(String),
    TooLong,
}

impl<'de, const LIMIT: usize> Deserialize<'de> for Member<LIMIT> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor<const LIMIT: usize>;
        impl<const LIMIT: usize> Visitor<'_> for MemberVisitor<LIMIT> {
            type Value = Member<LIMIT>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Member<LIMIT>, E> {
                Ok(if encoded_too_long(text.len(), LIMIT) {
                    Member::TooLong
                } else {
                    Member::Text(text.to_owned())
                })
            }
        }
        deserializer.deserialize_str(MemberVisitor::<LIMIT>)
    }
}

/// True when base64 text of `len` characters decodes to more than `limit` bytes.
fn encoded_too_long(len: usize, limit: usize) -> bool {
    len / 4 * 3 > limit
}

impl GoFields for EnvelopeFields {
    const NAMES: &'static [&'static str] = &["payload", "protected", "header", "signature"];
    const WHAT: &'static str = "JWS envelope";
    fn field<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.payload = map.next_value()?,
            1 => self.protected = map.next_value()?,
            2 => {
                self.header = map
                    .next_value::<Option<GoObject<UnprotectedFields>>>()?
                    .map(|o| o.value)
            }
            _ => self.signature = map.next_value()?,
        }
        Ok(())
    }
}

/// The unprotected `header` (CORE `jwsUnprotectedHeader`). notation-go's mocks
/// spell `io.cncf.notary.SigningAgent`, which Go's folding accepts.
#[derive(Default)]
struct UnprotectedFields {
    x5c: Option<BoundedStrings>,
    timestamp: Option<String>,
    signing_agent: Option<String>,
}

impl GoFields for UnprotectedFields {
    const NAMES: &'static [&'static str] =
        &["x5c", HEADER_TIMESTAMP_SIGNATURE, HEADER_SIGNING_AGENT];
    const WHAT: &'static str = "JWS unprotected header";
    fn field<'de, A: MapAccess<'de>>(&mut self, index: usize, map: &mut A) -> Result<(), A::Error> {
        match index {
            0 => self.x5c = map.next_value()?,
            1 => self.timestamp = map.next_value()?,
            _ => self.signing_agent = map.next_value()?,
        }
        Ok(())
    }
}

/// A JSON array of at most [`MAX_CERTIFICATE_CHAIN`] strings.
struct BoundedStrings(Vec<String>);

impl<'de> Deserialize<'de> for BoundedStrings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SeqVisitor;
        impl<'de> Visitor<'de> for SeqVisitor {
            type Value = BoundedStrings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {MAX_CERTIFICATE_CHAIN} strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    if out.len() == MAX_CERTIFICATE_CHAIN {
                        return Err(de::Error::custom(format_args!(
                            "x5c holds more than {MAX_CERTIFICATE_CHAIN} certificates"
                        )));
                    }
                    out.push(s);
                }
                Ok(BoundedStrings(out))
            }
        }
        deserializer.deserialize_seq(SeqVisitor)
    }
}

/// A JSON object as its entries in order, duplicates kept (so they can be
/// rejected: `serde_json::Map` would keep only the last).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Decodes a base64url field that must be unpadded (RFC 7515 §2; the mock
/// `ca_invalid_sig_env.json` carries a padded payload and must fail).
/// A member's text and its decoded bytes, within its budget.
fn decode_member<const LIMIT: usize>(
    field: &'static str,
    member: Member<LIMIT>,
) -> Result<(String, Vec<u8>), EnvelopeError> {
    match member {
        Member::Text(text) => {
            let bytes = decode_b64url(field, &text, LIMIT)?;
            Ok((text, bytes))
        }
        Member::TooLong => Err(EnvelopeError::TooLarge {
            what: field,
            limit: LIMIT,
        }),
    }
}

fn decode_b64url(field: &'static str, text: &str, limit: usize) -> Result<Vec<u8>, EnvelopeError> {
    if encoded_too_long(text.len(), limit) {
        return Err(EnvelopeError::TooLarge { what: field, limit });
    }
    if text.contains('=') {
        return Err(EnvelopeError::PaddedBase64 { field });
    }
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| EnvelopeError::InvalidBase64 { field })
}

fn required<const LIMIT: usize>(
    field: Option<Member<LIMIT>>,
    header: &'static str,
) -> Result<Member<LIMIT>, EnvelopeError> {
    field
        .filter(|m| !matches!(m, Member::Text(s) if s.is_empty()))
        .ok_or(EnvelopeError::MissingHeader {
            format: FORMAT,
            header,
        })
}

fn invalid(header: &str, reason: &'static str) -> EnvelopeError {
    EnvelopeError::InvalidHeader {
        header: header.to_string(),
        reason,
    }
}

fn string_header(header: &str, value: &Value) -> Result<String, EnvelopeError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(invalid(header, "must be a string")),
    }
}

fn time_header(header: &str, value: &Value) -> Result<SystemTime, EnvelopeError> {
    let text = string_header(header, value)?;
    parse_rfc3339(&text).ok_or_else(|| invalid(header, "must be an RFC 3339 date-time"))
}

pub(super) fn parse(bytes: &[u8]) -> Result<Parts, EnvelopeError> {
    // 1-2. Flattened JSON serialization, base64url members without padding.
    let members = Members::decode(bytes)?;
    // 3. Protected header: a JSON object with unique, exactly spelled keys.
    let entries = serde_json::from_slice::<Entries>(&members.protected)
        .map_err(|e| EnvelopeError::Malformed {
            format: FORMAT,
            reason: format!("protected header: {e}"),
        })?
        .0;
    let headers = ProtectedHeaders::read(&entries)?;
    // 4. alg ∈ PS256/384/512, ES256/384/512.
    let alg = headers.alg.ok_or(EnvelopeError::MissingHeader {
        format: FORMAT,
        header: "alg",
    })?;
    let algorithm = SignatureAlgorithm::from_jws_name(&alg).ok_or_else(|| {
        EnvelopeError::UnsupportedAlgorithm {
            format: FORMAT,
            alg: alg.chars().take(64).collect(),
        }
    })?;
    // 5. Content type (its value is checked with the common checks).
    let content_type = headers.cty.ok_or(EnvelopeError::MissingHeader {
        format: FORMAT,
        header: "cty",
    })?;
    // 6. Signing scheme and the times each scheme allows (CORE
    //    validateProtectedHeaders).
    let notary = &headers.notary;
    let signing_scheme = notary.signing_scheme(FORMAT)?;
    // 7. crit.
    let crit = critical_names(
        headers.crit,
        &entries,
        &headers.extended,
        notary.must_be_critical(signing_scheme),
    )?;
    let extended = headers
        .extended
        .into_iter()
        .map(|(key, value)| {
            let critical = crit.contains(&key.as_str());
            let text = (key == ATTRIBUTE_VERIFICATION_PLUGIN)
                .then(|| value.as_str().map(str::to_string))
                .flatten();
            (ExtendedAttribute { key, critical }, text)
        })
        .collect();
    // 8. Unprotected header: x5c, timestamp token, signing agent.
    let header = members.header.unwrap_or_default();
    let certificate_chain = header.certificate_chain()?;
    let timestamp_token = header.timestamp_token()?;
    // 9. Signing input: the received members, verbatim.
    let mut signed_bytes =
        Vec::with_capacity(members.protected_b64.len() + 1 + members.payload_b64.len());
    signed_bytes.extend_from_slice(members.protected_b64.as_bytes());
    signed_bytes.push(b'.');
    signed_bytes.extend_from_slice(members.payload_b64.as_bytes());

    Ok(Parts {
        format: FORMAT,
        algorithm,
        signing_scheme,
        notary: headers.notary,
        content_type,
        payload: members.payload,
        signed_bytes,
        signature: members.signature,
        certificate_chain,
        timestamp_token,
        signing_agent: header.signing_agent,
        extended,
    })
}

/// Steps 1-2: the envelope's members, the signed ones as received and decoded.
struct Members {
    protected_b64: String,
    protected: Vec<u8>,
    payload_b64: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
    header: Option<UnprotectedFields>,
}

impl Members {
    /// Flattened JSON serialization only: a JSON object with string members,
    /// base64url without padding for the three signed/signature members.
    fn decode(bytes: &[u8]) -> Result<Members, EnvelopeError> {
        let fields = serde_json::from_slice::<GoObject<EnvelopeFields>>(bytes)
            .map_err(|e| EnvelopeError::Malformed {
                format: FORMAT,
                reason: e.to_string(),
            })?
            .value;
        let protected_b64 = required(fields.protected, "protected")?;
        let payload_b64 = required(fields.payload, "payload")?;
        let signature_b64 = required(fields.signature, "signature")?;
        let (protected_b64, protected) = decode_member("protected", protected_b64)?;
        let (payload_b64, payload) = decode_member("payload", payload_b64)?;
        let (_, signature) = decode_member("signature", signature_b64)?;
        if signature.is_empty() {
            return Err(EnvelopeError::Malformed {
                format: FORMAT,
                reason: "signature is empty".into(),
            });
        }
        Ok(Members {
            protected_b64,
            protected,
            payload_b64,
            payload,
            signature,
            header: fields.header,
        })
    }
}

/// Step 3: what the protected header holds.
#[derive(Default)]
struct ProtectedHeaders<'a> {
    alg: Option<String>,
    cty: Option<String>,
    crit: Option<&'a Value>,
    notary: NotaryHeaders,
    /// The headers Notary does not register, in order.
    extended: Vec<(String, &'a Value)>,
}

impl<'a> ProtectedHeaders<'a> {
    fn read(entries: &'a [(String, Value)]) -> Result<ProtectedHeaders<'a>, EnvelopeError> {
        let mut headers = ProtectedHeaders::default();
        for (index, (key, value)) in entries.iter().enumerate() {
            if entries[..index].iter().any(|(k, _)| k == key) {
                return Err(invalid(key, "appears more than once"));
            }
            match key.as_str() {
                "alg" => headers.alg = Some(string_header(key, value)?),
                "cty" => headers.cty = Some(string_header(key, value)?),
                "crit" => headers.crit = Some(value),
                HEADER_SIGNING_SCHEME => headers.notary.scheme = Some(string_header(key, value)?),
                HEADER_SIGNING_TIME => headers.notary.signing_time = Some(time_header(key, value)?),
                HEADER_AUTHENTIC_SIGNING_TIME => {
                    headers.notary.authentic_signing_time = Some(time_header(key, value)?)
                }
                HEADER_EXPIRY => headers.notary.expiry = Some(time_header(key, value)?),
                other if REGISTERED.iter().any(|name| go_key_eq(other, name)) => {
                    // Go would bind this to the registered field and also keep it as
                    // an extended attribute; refuse the ambiguity.
                    return Err(invalid(other, "is a case variant of a registered header"));
                }
                other => headers.extended.push((other.to_string(), value)),
            }
        }
        Ok(headers)
    }
}

/// Step 7: crit is a non-empty array of unique strings, each either a header that
/// must be critical or a present extended attribute (CORE validateCriticalHeaders:
/// listing alg, cty, signingTime … is an error), and lists every header in
/// `must_be_critical`.
fn critical_names<'a>(
    crit: Option<&'a Value>,
    entries: &[(String, Value)],
    extended: &[(String, &Value)],
    must_be_critical: Vec<&'static str>,
) -> Result<Vec<&'a str>, EnvelopeError> {
    let crit = crit.ok_or(EnvelopeError::MissingHeader {
        format: FORMAT,
        header: "crit",
    })?;
    let crit: Vec<&str> = match crit {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| invalid("crit", "must hold only strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("crit", "must be a non-empty array")),
    };
    for (index, label) in crit.iter().enumerate() {
        if crit[..index].contains(label) {
            return Err(invalid("crit", "lists a header more than once"));
        }
    }
    for label in &crit {
        if must_be_critical.contains(label) || extended.iter().any(|(k, _)| k == label) {
            continue;
        }
        if entries.iter().any(|(k, _)| k == label) {
            return Err(EnvelopeError::CriticalHeaderNotAllowed {
                header: label.to_string(),
            });
        }
        return Err(EnvelopeError::CriticalHeaderMissing {
            header: label.chars().take(256).collect(),
        });
    }
    if let Some(header) = must_be_critical.into_iter().find(|h| !crit.contains(h)) {
        return Err(EnvelopeError::NotMarkedCritical { header });
    }
    Ok(crit)
}

impl UnprotectedFields {
    /// Step 8: x5c, standard base64 DER, leaf first.
    fn certificate_chain(&self) -> Result<Vec<Vec<u8>>, EnvelopeError> {
        self.x5c
            .as_ref()
            .map(|b| b.0.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| {
                STANDARD
                    .decode(c)
                    .map_err(|_| EnvelopeError::InvalidBase64 { field: "x5c" })
            })
            .collect()
    }

    /// Step 8: the timestamp token, standard base64 DER.
    fn timestamp_token(&self) -> Result<Option<Vec<u8>>, EnvelopeError> {
        match self.timestamp.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => {
                STANDARD
                    .decode(text)
                    .map(Some)
                    .map_err(|_| EnvelopeError::InvalidBase64 {
                        field: HEADER_TIMESTAMP_SIGNATURE,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::test_builder::{dummy_signer, EnvelopeSpec, JwsMember};
    use crate::envelope::{parse as parse_envelope, SignatureEnvelope, JWS_MEDIA_TYPE};

    fn parse_spec(spec: &EnvelopeSpec) -> Result<SignatureEnvelope, EnvelopeError> {
        parse_envelope(JWS_MEDIA_TYPE, &spec.build_jws(&dummy_signer))
    }

    /// The default envelope as a JSON value, edited by `edit`, then parsed.
    fn parse_edited(
        edit: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> Result<SignatureEnvelope, EnvelopeError> {
        let bytes = EnvelopeSpec::default().build_jws(&dummy_signer);
        let mut value: serde_json::Map<String, Value> =
            serde_json::from_slice(&bytes).expect("builder writes an object");
        edit(&mut value);
        parse_envelope(JWS_MEDIA_TYPE, &serde_json::to_vec(&value).expect("JSON"))
    }

    fn header_named(result: Result<SignatureEnvelope, EnvelopeError>, name: &str) -> bool {
        matches!(result, Err(EnvelopeError::InvalidHeader { ref header, .. }) if header == name)
    }

    #[test]
    fn padded_members_are_rejected() {
        // The dummy signature is 64 bytes, so its base64 always needs padding;
        // for the other members grow the content until it does.
        for (member, field) in [
            (JwsMember::Protected, "protected"),
            (JwsMember::Payload, "payload"),
            (JwsMember::Signature, "signature"),
        ] {
            let padded = (0..3).find_map(|extra| {
                let mut spec = EnvelopeSpec {
                    jws_padded: Some(member),
                    extended_attributes: vec![("a".into(), "b".repeat(extra))],
                    ..EnvelopeSpec::default()
                };
                spec.target.annotations = vec![("k".into(), "v".repeat(extra))];
                let unpadded = EnvelopeSpec {
                    jws_padded: None,
                    ..spec.clone()
                };
                let tbs = String::from_utf8(unpadded.jws_to_be_signed()).expect("ascii");
                let (protected, payload) = tbs.split_once('.').expect("two members");
                let needs_padding = match member {
                    JwsMember::Protected => protected.len() % 4 != 0,
                    JwsMember::Payload => payload.len() % 4 != 0,
                    JwsMember::Signature => true,
                };
                needs_padding.then_some(spec)
            });
            let spec = padded.expect("some content length needs padding");
            let result = parse_spec(&spec);
            assert!(
                matches!(result, Err(EnvelopeError::PaddedBase64 { field: f }) if f == field),
                "{member:?}: {result:?}"
            );
        }
    }

    #[test]
    fn invalid_base64_is_rejected() {
        let result = parse_edited(|v| {
            v.insert("payload".into(), "not base64!".into());
        });
        assert!(matches!(
            result,
            Err(EnvelopeError::InvalidBase64 { field: "payload" })
        ));
        let result = parse_edited(|v| {
            v["header"]["x5c"] = serde_json::json!(["@@@"]);
        });
        assert!(matches!(
            result,
            Err(EnvelopeError::InvalidBase64 { field: "x5c" })
        ));
        let result = parse_edited(|v| {
            v["header"][HEADER_TIMESTAMP_SIGNATURE] = "@@@".into();
        });
        assert!(matches!(
            result,
            Err(EnvelopeError::InvalidBase64 {
                field: HEADER_TIMESTAMP_SIGNATURE
            })
        ));
    }

    #[test]
    fn top_level_keys_match_like_go() {
        let env = parse_edited(|v| {
            let payload = v.remove("payload").expect("payload");
            v.insert("PayLoad".into(), payload);
            let signature = v.remove("signature").expect("signature");
            v.insert("\u{17F}ignature".into(), signature);
            let header = v.remove("header").expect("header");
            let mut header = header.as_object().expect("object").clone();
            let agent = header.remove(HEADER_SIGNING_AGENT).expect("agent");
            header.insert("io.cncf.notary.SigningAgent".into(), agent);
            header.insert("unknown".into(), serde_json::json!({"nested": [1, 2]}));
            v.insert("HEADER".into(), header.into());
            v.insert("extra".into(), serde_json::json!([null]));
        })
        .expect("Go-style keys parse");
        assert_eq!(env.signing_agent.as_deref(), Some("pullgate-tests/1.0"));
    }

    #[test]
    fn duplicate_top_level_keys_are_rejected() {
        let bytes = EnvelopeSpec::default().build_jws(&dummy_signer);
        let text = String::from_utf8(bytes).expect("JSON text");
        let doubled = text.replacen('{', r#"{"Payload":"e30","#, 1);
        assert!(matches!(
            parse_envelope(JWS_MEDIA_TYPE, doubled.as_bytes()),
            Err(EnvelopeError::Malformed { .. })
        ));
    }

    #[test]
    fn only_the_flattened_serialization_is_accepted() {
        let spec = EnvelopeSpec::default();
        let compact = format!(
            "\"{}.{}\"",
            String::from_utf8(spec.jws_to_be_signed()).expect("ascii"),
            "c2ln"
        );
        for bytes in [compact.as_bytes(), b"[]", b"", b"{\"signatures\":[]}"] {
            assert!(parse_envelope(JWS_MEDIA_TYPE, bytes).is_err());
        }
        assert!(matches!(
            parse_envelope(JWS_MEDIA_TYPE, compact.as_bytes()),
            Err(EnvelopeError::Malformed { .. })
        ));
        assert!(matches!(
            parse_envelope(JWS_MEDIA_TYPE, b"{}"),
            Err(EnvelopeError::MissingHeader {
                header: "protected",
                ..
            })
        ));
    }

    #[test]
    fn empty_signature_is_rejected() {
        let result = parse_envelope(
            JWS_MEDIA_TYPE,
            &EnvelopeSpec::default().build_jws(&|_: &[u8]| Vec::new()),
        );
        assert!(matches!(
            result,
            Err(EnvelopeError::MissingHeader {
                header: "signature",
                ..
            })
        ));
    }

    #[test]
    fn registered_headers_may_not_be_listed_in_crit() {
        for listed in ["alg", "cty", HEADER_SIGNING_TIME] {
            let spec = EnvelopeSpec {
                crit: Some(vec![HEADER_SIGNING_SCHEME.into(), listed.into()]),
                ..EnvelopeSpec::default()
            };
            assert!(matches!(
                parse_spec(&spec),
                Err(EnvelopeError::CriticalHeaderNotAllowed { ref header }) if header == listed
            ));
        }
    }

    #[test]
    fn case_variants_of_registered_headers_are_rejected() {
        let spec = EnvelopeSpec {
            extended_attributes: vec![("ALG".into(), "none".into())],
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), "ALG"));
    }

    #[test]
    fn duplicate_protected_keys_are_rejected() {
        let spec = EnvelopeSpec::default();
        let json = spec
            .jws_protected_json()
            .replacen('{', r#"{"alg":"PS384","#, 1);
        let spec = EnvelopeSpec {
            jws_protected_json: Some(json),
            ..spec
        };
        assert!(header_named(parse_spec(&spec), "alg"));
    }

    #[test]
    fn protected_header_must_be_a_json_object() {
        let spec = EnvelopeSpec {
            jws_protected_json: Some("[1]".into()),
            ..EnvelopeSpec::default()
        };
        assert!(matches!(
            parse_spec(&spec),
            Err(EnvelopeError::Malformed { .. })
        ));
    }

    #[test]
    fn times_must_be_rfc3339() {
        for text in ["1687843833", "2023-06-27 05:30:33Z", "2023-06-27T05:30:33"] {
            let spec = EnvelopeSpec {
                jws_time_text: Some(text.into()),
                ..EnvelopeSpec::default()
            };
            assert!(
                header_named(parse_spec(&spec), HEADER_SIGNING_TIME),
                "{text}"
            );
        }
        let spec = EnvelopeSpec {
            jws_time_text: Some("0001-01-01T00:00:00Z".into()),
            ..EnvelopeSpec::default()
        };
        assert!(matches!(
            parse_spec(&spec),
            Err(EnvelopeError::ZeroTime {
                header: HEADER_SIGNING_TIME
            })
        ));
    }

    #[test]
    fn alg_none_and_lowercase_are_unsupported() {
        for alg in ["none", "ps256", "HS256"] {
            let spec = EnvelopeSpec {
                alg: alg.into(),
                ..EnvelopeSpec::default()
            };
            assert!(matches!(
                parse_spec(&spec),
                Err(EnvelopeError::UnsupportedAlgorithm { .. })
            ));
        }
    }

    #[test]
    fn x5c_is_bounded() {
        let spec = EnvelopeSpec {
            certificate_chain: vec![b"c".to_vec(); MAX_CERTIFICATE_CHAIN + 1],
            ..EnvelopeSpec::default()
        };
        assert!(matches!(
            parse_spec(&spec),
            Err(EnvelopeError::Malformed { .. })
        ));
    }

    #[test]
    fn oversized_members_are_refused_without_being_copied() {
        let b64 = |n: usize| "A".repeat(n.div_ceil(3) * 4);
        let envelope = |payload: &str, signature: &str| {
            format!(r#"{{"protected":"e30","payload":"{payload}","signature":"{signature}"}}"#)
        };
        for (text, what, limit) in [
            (
                envelope(&b64(MAX_PAYLOAD_BYTES + 3), "AAAA"),
                "payload",
                MAX_PAYLOAD_BYTES,
            ),
            (
                envelope("e30", &b64(MAX_SIGNATURE_BYTES + 3)),
                "signature",
                MAX_SIGNATURE_BYTES,
            ),
        ] {
            match parse(text.as_bytes()) {
                Err(EnvelopeError::TooLarge { what: w, limit: l }) => {
                    assert_eq!((w, l), (what, limit))
                }
                Err(other) => panic!("{what}: expected TooLarge, got {other}"),
                Ok(_) => panic!("{what}: an oversized member was accepted"),
            }
        }
        // The deserializer keeps nothing of a member over its budget.
        let member: Member<3> = serde_json::from_str(r#""AAAAAAAA""#).expect("a string");
        assert!(matches!(member, Member::TooLong));
        let member: Member<6> = serde_json::from_str(r#""AAAAAAAA""#).expect("a string");
        assert!(matches!(member, Member::Text(t) if t == "AAAAAAAA"));
    }
}
