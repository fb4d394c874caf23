//! Builds Notary COSE and JWS envelope bytes for tests, valid or deliberately
//! broken, from an [`EnvelopeSpec`]. It needs no keys: the caller signs the
//! to-be-signed bytes (e.g. with openssl) through a `&dyn Fn(&[u8]) -> Vec<u8>`.
//!
//! Used by the integration tests and by the unit tests in `src/envelope`, so it
//! depends only on external crates, never on `pullgate` itself (a unit test would
//! otherwise see a second copy of the crate's types).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use coset::cbor::value::Value;

pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub const EXPIRY: &str = "io.cncf.notary.expiry";
pub const TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";
pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";

/// Envelope encoding to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cose,
    Jws,
}

impl Format {
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Cose => "application/cose",
            Format::Jws => "application/jose+json",
        }
    }
}

/// Which JWS member to write with base64 padding (a broken form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsMember {
    Protected,
    Payload,
    Signature,
}

/// The signed `targetArtifact` descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub annotations: Vec<(String, String)>,
    pub artifact_type: Option<String>,
}

impl Default for Target {
    fn default() -> Target {
        Target {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
                .into(),
            size: 517,
            annotations: Vec::new(),
            artifact_type: None,
        }
    }
}

impl Target {
    /// `{"targetArtifact": {...}}` as notation writes it.
    pub fn payload_json(&self) -> Vec<u8> {
        let mut descriptor = serde_json::Map::new();
        descriptor.insert("mediaType".into(), self.media_type.clone().into());
        descriptor.insert("digest".into(), self.digest.clone().into());
        descriptor.insert("size".into(), self.size.into());
        if !self.annotations.is_empty() {
            let annotations: serde_json::Map<String, serde_json::Value> = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            descriptor.insert("annotations".into(), annotations.into());
        }
        if let Some(t) = &self.artifact_type {
            descriptor.insert("artifactType".into(), t.clone().into());
        }
        let mut payload = serde_json::Map::new();
        payload.insert("targetArtifact".into(), descriptor.into());
        serde_json::to_vec(&payload).expect("JSON of strings and numbers serializes")
    }
}

/// Header fields and broken-form knobs. `Default` is a valid `notary.x509` PS256
/// envelope with a one-certificate (fake DER) chain.
#[derive(Clone, Debug)]
pub struct EnvelopeSpec {
    /// JWS `alg` name; the COSE id is derived from it unless `cose_alg` is set.
    pub alg: String,
    pub cose_alg: Option<i64>,
    /// `None` omits the header.
    pub signing_scheme: Option<String>,
    /// Epoch seconds; `None` omits the header.
    pub signing_time: Option<i64>,
    pub authentic_signing_time: Option<i64>,
    pub expiry: Option<i64>,
    /// `None` omits the header.
    pub content_type: Option<String>,
    /// `crit` override; `None` derives it (signingScheme, authenticSigningTime
    /// for signingAuthority, expiry if set, then `critical_attributes`), and
    /// `Some(vec![])` omits the header.
    pub crit: Option<Vec<String>>,
    /// Extra protected headers (string values), in order.
    pub extended_attributes: Vec<(String, String)>,
    /// Names appended to the derived `crit`.
    pub critical_attributes: Vec<String>,
    pub target: Target,
    /// Raw payload bytes instead of `target.payload_json()`.
    pub payload: Option<Vec<u8>>,
    /// DER certificates, leaf first (COSE x5chain / JWS x5c).
    pub certificate_chain: Vec<Vec<u8>>,
    pub timestamp_token: Option<Vec<u8>>,
    pub signing_agent: Option<String>,
    /// COSE: omit tag 18.
    pub untagged_cose: bool,
    /// COSE: write the times as bare integers instead of CBOR tag 1.
    pub cose_times_untagged: bool,
    /// COSE: write x5chain as a single bstr (the leaf) instead of an array.
    pub cose_x5chain_single: bool,
    /// COSE: put x5chain in the protected header instead of the unprotected one.
    pub cose_x5chain_protected: bool,
    /// COSE: extra protected entries, appended after the canonical ones.
    pub cose_protected_extra: Vec<(Value, Value)>,
    /// COSE: extra unprotected entries.
    pub cose_unprotected_extra: Vec<(Value, Value)>,
    /// JWS: write this member with base64 padding.
    pub jws_padded: Option<JwsMember>,
    /// JWS: use this exact protected-header JSON text.
    pub jws_protected_json: Option<String>,
    /// JWS: use these exact strings for the times (e.g. malformed ones).
    pub jws_time_text: Option<String>,
}

impl Default for EnvelopeSpec {
    fn default() -> EnvelopeSpec {
        EnvelopeSpec {
            alg: "PS256".into(),
            cose_alg: None,
            signing_scheme: Some("notary.x509".into()),
            signing_time: Some(1_687_843_833), // 2023-06-27T05:30:33Z
            authentic_signing_time: None,
            expiry: None,
            content_type: Some(PAYLOAD_CONTENT_TYPE.into()),
            crit: None,
            extended_attributes: Vec::new(),
            critical_attributes: Vec::new(),
            target: Target::default(),
            payload: None,
            certificate_chain: vec![b"leaf certificate DER".to_vec()],
            timestamp_token: None,
            signing_agent: Some("pullgate-tests/1.0".into()),
            untagged_cose: false,
            cose_times_untagged: false,
            cose_x5chain_single: false,
            cose_x5chain_protected: false,
            cose_protected_extra: Vec::new(),
            cose_unprotected_extra: Vec::new(),
            jws_padded: None,
            jws_protected_json: None,
            jws_time_text: None,
        }
    }
}

/// COSE `alg` ids of the Notary algorithms.
pub fn cose_alg_id(name: &str) -> Option<i64> {
    Some(match name {
        "PS256" => -37,
        "PS384" => -38,
        "PS512" => -39,
        "ES256" => -7,
        "ES384" => -35,
        "ES512" => -36,
        _ => return None,
    })
}

impl EnvelopeSpec {
    /// A valid `notary.x509.signingAuthority` envelope spec.
    pub fn signing_authority() -> EnvelopeSpec {
        EnvelopeSpec {
            signing_scheme: Some("notary.x509.signingAuthority".into()),
            signing_time: None,
            authentic_signing_time: Some(1_687_843_833),
            ..EnvelopeSpec::default()
        }
    }

    fn payload_bytes(&self) -> Vec<u8> {
        self.payload
            .clone()
            .unwrap_or_else(|| self.target.payload_json())
    }

    fn crit_list(&self) -> Vec<String> {
        if let Some(crit) = &self.crit {
            return crit.clone();
        }
        let mut crit = vec![SIGNING_SCHEME.to_string()];
        if self.signing_scheme.as_deref() == Some("notary.x509.signingAuthority") {
            crit.push(AUTHENTIC_SIGNING_TIME.into());
        }
        if self.expiry.is_some() {
            crit.push(EXPIRY.into());
        }
        crit.extend(self.critical_attributes.iter().cloned());
        crit
    }

    // ---- COSE ----

    /// The protected header bstr contents, keys in canonical (length-first) order
    /// as notation writes them.
    pub fn cose_protected(&self) -> Vec<u8> {
        let time = |secs: i64| {
            if self.cose_times_untagged {
                Value::from(secs)
            } else {
                Value::Tag(1, Box::new(Value::from(secs)))
            }
        };
        let mut entries: Vec<(Value, Value)> = Vec::new();
        if let Some(alg) = self.cose_alg.or_else(|| cose_alg_id(&self.alg)) {
            entries.push((Value::from(1), Value::from(alg)));
        }
        let crit = self.crit_list();
        if !crit.is_empty() {
            entries.push((
                Value::from(2),
                Value::Array(crit.into_iter().map(Value::Text).collect()),
            ));
        }
        if let Some(cty) = &self.content_type {
            entries.push((Value::from(3), Value::Text(cty.clone())));
        }
        let mut text = |k: &str, v: Value| entries.push((Value::Text(k.into()), v));
        if let Some(s) = &self.signing_scheme {
            text(SIGNING_SCHEME, Value::Text(s.clone()));
        }
        if let Some(t) = self.signing_time {
            text(SIGNING_TIME, time(t));
        }
        if let Some(t) = self.authentic_signing_time {
            text(AUTHENTIC_SIGNING_TIME, time(t));
        }
        if let Some(t) = self.expiry {
            text(EXPIRY, time(t));
        }
        for (k, v) in &self.extended_attributes {
            text(k, Value::Text(v.clone()));
        }
        if self.cose_x5chain_protected {
            entries.push((Value::from(33), self.cose_x5chain()));
        }
        sort_canonical(&mut entries);
        entries.extend(self.cose_protected_extra.iter().cloned());
        cbor(&Value::Map(entries))
    }

    fn cose_x5chain(&self) -> Value {
        if self.cose_x5chain_single {
            Value::Bytes(self.certificate_chain.first().cloned().unwrap_or_default())
        } else {
            Value::Array(
                self.certificate_chain
                    .iter()
                    .map(|c| Value::Bytes(c.clone()))
                    .collect(),
            )
        }
    }

    /// COSE Sig_structure `["Signature1", protected, h'', payload]`.
    pub fn cose_to_be_signed(&self) -> Vec<u8> {
        cbor(&Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(self.cose_protected()),
            Value::Bytes(Vec::new()),
            Value::Bytes(self.payload_bytes()),
        ]))
    }

    pub fn build_cose(&self, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let signature = sign(&self.cose_to_be_signed());
        let mut unprotected: Vec<(Value, Value)> = Vec::new();
        if !self.cose_x5chain_protected {
            unprotected.push((Value::from(33), self.cose_x5chain()));
        }
        if let Some(agent) = &self.signing_agent {
            unprotected.push((
                Value::Text(SIGNING_AGENT.into()),
                Value::Text(agent.clone()),
            ));
        }
        if let Some(token) = &self.timestamp_token {
            unprotected.push((
                Value::Text(TIMESTAMP_SIGNATURE.into()),
                Value::Bytes(token.clone()),
            ));
        }
        unprotected.extend(self.cose_unprotected_extra.iter().cloned());
        let message = Value::Array(vec![
            Value::Bytes(self.cose_protected()),
            Value::Map(unprotected),
            Value::Bytes(self.payload_bytes()),
            Value::Bytes(signature),
        ]);
        if self.untagged_cose {
            cbor(&message)
        } else {
            cbor(&Value::Tag(18, Box::new(message)))
        }
    }

    // ---- JWS ----

    /// The protected header JSON text (keys sorted, as Go marshals a map).
    pub fn jws_protected_json(&self) -> String {
        if let Some(raw) = &self.jws_protected_json {
            return raw.clone();
        }
        let time = |secs: i64| -> serde_json::Value {
            self.jws_time_text
                .clone()
                .unwrap_or_else(|| rfc3339(secs))
                .into()
        };
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), self.alg.clone().into());
        let crit = self.crit_list();
        if !crit.is_empty() {
            header.insert("crit".into(), crit.into());
        }
        if let Some(cty) = &self.content_type {
            header.insert("cty".into(), cty.clone().into());
        }
        if let Some(s) = &self.signing_scheme {
            header.insert(SIGNING_SCHEME.into(), s.clone().into());
        }
        if let Some(t) = self.signing_time {
            header.insert(SIGNING_TIME.into(), time(t));
        }
        if let Some(t) = self.authentic_signing_time {
            header.insert(AUTHENTIC_SIGNING_TIME.into(), time(t));
        }
        if let Some(t) = self.expiry {
            header.insert(EXPIRY.into(), time(t));
        }
        for (k, v) in &self.extended_attributes {
            header.insert(k.clone(), v.clone().into());
        }
        serde_json::to_string(&header).expect("JSON of strings serializes")
    }

    fn jws_member(&self, member: JwsMember, bytes: &[u8]) -> String {
        let mut text = URL_SAFE_NO_PAD.encode(bytes);
        if self.jws_padded == Some(member) {
            while text.len() % 4 != 0 {
                text.push('=');
            }
        }
        text
    }

    /// ASCII `protected_b64 "." payload_b64`.
    pub fn jws_to_be_signed(&self) -> Vec<u8> {
        let protected = self.jws_member(JwsMember::Protected, self.jws_protected_json().as_bytes());
        let payload = self.jws_member(JwsMember::Payload, &self.payload_bytes());
        format!("{protected}.{payload}").into_bytes()
    }

    pub fn build_jws(&self, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let protected = self.jws_member(JwsMember::Protected, self.jws_protected_json().as_bytes());
        let payload = self.jws_member(JwsMember::Payload, &self.payload_bytes());
        let signature = sign(format!("{protected}.{payload}").as_bytes());
        let mut header = serde_json::Map::new();
        let x5c: Vec<serde_json::Value> = self
            .certificate_chain
            .iter()
            .map(|c| STANDARD.encode(c).into())
            .collect();
        header.insert("x5c".into(), x5c.into());
        if let Some(agent) = &self.signing_agent {
            header.insert(SIGNING_AGENT.into(), agent.clone().into());
        }
        if let Some(token) = &self.timestamp_token {
            header.insert(TIMESTAMP_SIGNATURE.into(), STANDARD.encode(token).into());
        }
        let envelope = serde_json::json!({
            "payload": payload,
            "protected": protected,
            "header": header,
            "signature": self.jws_member(JwsMember::Signature, &signature),
        });
        serde_json::to_vec(&envelope).expect("JSON of strings serializes")
    }

    // ---- either ----

    pub fn to_be_signed(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Cose => self.cose_to_be_signed(),
            Format::Jws => self.jws_to_be_signed(),
        }
    }

    pub fn build(&self, format: Format, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        match format {
            Format::Cose => self.build_cose(sign),
            Format::Jws => self.build_jws(sign),
        }
    }
}

/// A signer for tests that only parse: a fixed 64-byte "signature".
pub fn dummy_signer(_: &[u8]) -> Vec<u8> {
    vec![0x5A; 64]
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(value, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

/// Orders map entries by encoded key, shortest first (RFC 7049 canonical), as
/// notation-core-go's encoder does.
fn sort_canonical(entries: &mut [(Value, Value)]) {
    entries.sort_by_cached_key(|(k, _)| {
        let bytes = cbor(k);
        (bytes.len(), bytes)
    });
}

/// Epoch seconds as RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn rfc3339(secs: i64) -> String {
    let (year, month, day) = crate::pki::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
