//! COSE_Sign1 envelopes (NOTARY.md §3 "COSE"; SPEC signature-envelope-cose.md;
//! CORE `signature/cose/envelope.go`; GOCOSE `sign1.go`, `headers.go`).

use std::time::SystemTime;

use coset::cbor::value::Value;
use coset::{
    iana::EnumI64, iana::WithPrivateRange, AsCborValue, CoseSign1, Label,
    RegisteredLabelWithPrivate,
};

use super::{
    system_time, EnvelopeError, EnvelopeFormat, ExtendedAttribute, NotaryHeaders, Parts,
    SignatureAlgorithm, ATTRIBUTE_VERIFICATION_PLUGIN, HEADER_AUTHENTIC_SIGNING_TIME,
    HEADER_EXPIRY, HEADER_SIGNING_AGENT, HEADER_SIGNING_SCHEME, HEADER_SIGNING_TIME,
    HEADER_TIMESTAMP_SIGNATURE, MAX_CERTIFICATE_CHAIN, MAX_PAYLOAD_BYTES,
    MAX_PROTECTED_HEADER_BYTES, MAX_SIGNATURE_BYTES,
};

const FORMAT: EnvelopeFormat = EnvelopeFormat::Cose;

/// COSE_Sign1_Tagged: tag 18 in its one-byte form (GOCOSE checks this prefix).
const SIGN1_TAG_BYTE: u8 = 0xD2;
/// x5chain (RFC 9360).
const LABEL_X5CHAIN: i64 = 33;

/// Budget: CBOR data items in one envelope or header. A real envelope has a few
/// dozen; the bound keeps the decoded tree (tens of bytes per item) small even
/// for a 32 MiB envelope of one-byte items.
const MAX_CBOR_ITEMS: usize = 100_000;
/// Budget: CBOR nesting depth. Notary envelopes nest four deep.
const MAX_CBOR_DEPTH: usize = 32;

fn malformed(reason: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Malformed {
        format: FORMAT,
        reason: reason.into(),
    }
}

fn invalid(header: &str, reason: &'static str) -> EnvelopeError {
    EnvelopeError::InvalidHeader {
        header: header.to_string(),
        reason,
    }
}

/// Checks that `bytes` is exactly one well-formed CBOR data item within the item
/// and depth budgets, without building it: the decoder is only run on input
/// whose decoded size is known to be bounded.
fn scan_cbor(bytes: &[u8]) -> Result<(), EnvelopeError> {
    scan_cbor_with(bytes, None)
}

/// The byte-string budgets of a COSE_Sign1's four parts (protected header,
/// unprotected header, payload, signature), checked while scanning so that an
/// oversized part is refused before the decoder copies it.
type PartLimits = [Option<(&'static str, usize)>; 4];

const SIGN1_PART_LIMITS: PartLimits = [
    Some(("protected header", MAX_PROTECTED_HEADER_BYTES)),
    None,
    Some(("payload", MAX_PAYLOAD_BYTES)),
    Some(("signature", MAX_SIGNATURE_BYTES)),
];

fn scan_cbor_with(bytes: &[u8], parts: Option<&PartLimits>) -> Result<(), EnvelopeError> {
    CborScanner {
        bytes,
        pos: 0,
        items: 0,
        stack: Vec::new(),
        parts,
        sign1_array: false,
    }
    .scan()
}

/// An open CBOR container on the scanner's stack.
enum Frame {
    /// A definite-length array or map with this many items (map: keys and values) left.
    Items(u64),
    /// An indefinite-length array or map, closed by a break.
    Indefinite,
    /// A tag, whose one item follows.
    Tag,
}

/// The state of [`scan_cbor_with`]: one pass over the bytes, nothing decoded.
struct CborScanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    items: usize,
    stack: Vec<Frame>,
    parts: Option<&'a PartLimits>,
    /// Set once the tagged top-level array of exactly four items is open.
    sign1_array: bool,
}

impl CborScanner<'_> {
    fn scan(mut self) -> Result<(), EnvelopeError> {
        loop {
            let initial = self.next_byte()?;
            if initial == 0xFF {
                // A break closes the innermost indefinite-length array or map.
                match self.stack.pop() {
                    Some(Frame::Indefinite) => {}
                    _ => return Err(malformed("unexpected CBOR break")),
                }
            } else if self.item(initial)? {
                continue;
            }
            if self.complete_item()? {
                return Ok(());
            }
        }
    }

    fn next_byte(&mut self) -> Result<u8, EnvelopeError> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| malformed("truncated CBOR"))?;
        self.pos += 1;
        Ok(byte)
    }

    /// A big-endian unsigned integer of `n` bytes.
    fn take(&mut self, n: usize) -> Result<u64, EnvelopeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| malformed("truncated CBOR"))?;
        let value = self.bytes[self.pos..end]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.pos = end;
        Ok(value)
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// The budget of a byte string of major type `major` when it is one of the
    /// COSE_Sign1's parts.
    fn part_limit(&self, major: u8) -> Option<(&'static str, usize)> {
        match (self.parts, self.stack.as_slice()) {
            (Some(limits), [Frame::Tag, Frame::Items(left)]) if self.sign1_array && major == 2 => {
                limits[4 - (*left as usize).min(4)]
            }
            _ => None,
        }
    }

    /// Reads one data item's head (and a string's content). True when the item
    /// opened a container, whose items follow.
    fn item(&mut self, initial: u8) -> Result<bool, EnvelopeError> {
        self.items += 1;
        if self.items > MAX_CBOR_ITEMS {
            return Err(EnvelopeError::TooLarge {
                what: "CBOR data items",
                limit: MAX_CBOR_ITEMS,
            });
        }
        let (major, info) = (initial >> 5, initial & 0x1F);
        let part_limit = self.part_limit(major);
        let argument = match info {
            0..=23 => Some(u64::from(info)),
            24..=27 => Some(self.take(1 << (info - 24))?),
            31 if matches!(major, 2..=5) => None,
            _ => return Err(malformed("invalid CBOR initial byte")),
        };
        let remaining = self.remaining();
        let open = match (major, argument) {
            (2 | 3, Some(len)) => {
                if len > remaining {
                    return Err(malformed("truncated CBOR string"));
                }
                within_part(part_limit, len)?;
                self.pos += len as usize; // len ≤ remaining, which fits in usize
                None
            }
            (2 | 3, None) => {
                self.indefinite_string(major, part_limit)?;
                None
            }
            (4, Some(n)) if n > 0 => {
                self.sign1_array |= n == 4 && matches!(self.stack.as_slice(), [Frame::Tag]);
                Some(Frame::Items(n))
            }
            (5, Some(n)) if n > 0 => Some(Frame::Items(
                n.checked_mul(2)
                    .ok_or_else(|| malformed("CBOR map too large"))?,
            )),
            (4 | 5, None) => Some(Frame::Indefinite),
            (6, _) => Some(Frame::Tag),
            _ => None,
        };
        let Some(frame) = open else {
            return Ok(false);
        };
        if let Frame::Items(n) = frame {
            // Every item takes at least one byte.
            if n > remaining {
                return Err(malformed("truncated CBOR container"));
            }
        }
        if self.stack.len() == MAX_CBOR_DEPTH {
            return Err(EnvelopeError::TooLarge {
                what: "CBOR nesting depth",
                limit: MAX_CBOR_DEPTH,
            });
        }
        self.stack.push(frame);
        Ok(true)
    }

    /// An indefinite-length string: definite chunks of the same type, then a break.
    fn indefinite_string(
        &mut self,
        major: u8,
        part_limit: Option<(&'static str, usize)>,
    ) -> Result<(), EnvelopeError> {
        let mut total = 0u64;
        loop {
            let chunk = self.next_byte()?;
            if chunk == 0xFF {
                return Ok(());
            }
            if chunk >> 5 != major || chunk & 0x1F == 31 {
                return Err(malformed("invalid chunk in indefinite-length string"));
            }
            let len = match chunk & 0x1F {
                n @ 0..=23 => u64::from(n),
                n @ 24..=27 => self.take(1 << (n - 24))?,
                _ => return Err(malformed("invalid CBOR initial byte")),
            };
            if len > self.remaining() {
                return Err(malformed("truncated CBOR string"));
            }
            total += len; // the chunks fit in the input, so no overflow
            within_part(part_limit, total)?;
            self.pos += len as usize;
        }
    }

    /// Counts one complete item against its enclosing containers. True when it
    /// was the top-level item, which must end the input.
    fn complete_item(&mut self) -> Result<bool, EnvelopeError> {
        loop {
            match self.stack.last_mut() {
                None => {
                    return if self.pos == self.bytes.len() {
                        Ok(true)
                    } else {
                        Err(malformed("trailing data after the CBOR item"))
                    };
                }
                Some(Frame::Items(n)) => {
                    *n -= 1;
                    if *n > 0 {
                        return Ok(false);
                    }
                    self.stack.pop();
                }
                Some(Frame::Indefinite) => return Ok(false),
                Some(Frame::Tag) => {
                    self.stack.pop();
                }
            }
        }
    }
}

/// A COSE_Sign1 part's byte-string budget, if `part_limit` names one.
fn within_part(part_limit: Option<(&'static str, usize)>, len: u64) -> Result<(), EnvelopeError> {
    match part_limit {
        Some((what, limit)) if len > limit as u64 => Err(EnvelopeError::TooLarge { what, limit }),
        _ => Ok(()),
    }
}

fn decode(bytes: &[u8]) -> Result<Value, EnvelopeError> {
    scan_cbor_with(bytes, Some(&SIGN1_PART_LIMITS))?;
    coset::cbor::de::from_reader(bytes).map_err(|e| malformed(format!("CBOR: {e}")))
}

/// A label as text: COSE integer labels in decimal.
fn label_text(label: &Label) -> String {
    match label {
        Label::Int(i) => i.to_string(),
        Label::Text(t) => t.clone(),
    }
}

fn crit_label<T: EnumI64 + WithPrivateRange>(label: &RegisteredLabelWithPrivate<T>) -> Label {
    match label {
        RegisteredLabelWithPrivate::Assigned(a) => Label::Int(a.to_i64()),
        RegisteredLabelWithPrivate::PrivateUse(i) => Label::Int(*i),
        RegisteredLabelWithPrivate::Text(t) => Label::Text(t.clone()),
    }
}

/// A Notary time header: CBOR tag 1 (epoch time) is mandatory (NOTARY.md §3).
fn epoch_time(header: &str, value: &Value) -> Result<SystemTime, EnvelopeError> {
    let reason = "must be a CBOR tag 1 epoch time";
    let Value::Tag(1, inner) = value else {
        return Err(invalid(header, reason));
    };
    let time = match inner.as_ref() {
        Value::Integer(i) => i64::try_from(*i).ok().and_then(|s| system_time(s, 0)),
        Value::Float(f) if f.is_finite() && f.abs() < 1e15 => {
            let secs = f.floor();
            // 0 ≤ fraction < 1, and |secs| < 1e15 fits an i64.
            let nanos = ((f - secs) * 1e9) as u32;
            system_time(secs as i64, nanos.min(999_999_999))
        }
        _ => return Err(invalid(header, reason)),
    };
    time.ok_or_else(|| invalid(header, "is out of range"))
}

fn text_value(header: &str, value: &Value) -> Result<String, EnvelopeError> {
    match value {
        Value::Text(t) => Ok(t.clone()),
        _ => Err(invalid(header, "must be a text string")),
    }
}

pub(super) fn parse(bytes: &[u8]) -> Result<Parts, EnvelopeError> {
    // 1-2. A tagged COSE_Sign1 within the budgets, payload and signature present.
    let (sign1, payload) = decode_sign1(bytes)?;
    let protected = &sign1.protected.header;
    // 3. alg ∈ PS256/384/512, ES256/384/512.
    let algorithm = algorithm(protected)?;
    // 4. Content type: a text string (its value is a common check).
    let content_type = content_type(protected)?;
    // 5. Every protected label, and the Notary headers among them.
    let headers = ProtectedHeaders::read(protected)?;
    // 6. Signing scheme and the time header it uses.
    let notary = &headers.notary;
    let signing_scheme = notary.signing_scheme(FORMAT)?;
    // 7. crit.
    let crit = critical_labels(
        protected,
        &headers.present,
        notary.must_be_critical(signing_scheme),
    )?;
    // 8. Unprotected header.
    let unprotected = UnprotectedHeaders::read(&sign1.unprotected, &headers.present)?;
    let extended = headers
        .extended
        .into_iter()
        .map(|(label, text)| {
            let critical = crit.contains(&label);
            (
                ExtendedAttribute {
                    key: label_text(&label),
                    critical,
                },
                text,
            )
        })
        .collect();
    // 9. Sig_structure ["Signature1", protected as received, h'', payload].
    let signed_bytes = sign1.tbs_data(b"");

    Ok(Parts {
        format: FORMAT,
        algorithm,
        signing_scheme,
        notary: headers.notary,
        content_type,
        payload,
        signed_bytes,
        signature: sign1.signature,
        certificate_chain: unprotected.certificate_chain,
        timestamp_token: unprotected.timestamp_token,
        signing_agent: unprotected.signing_agent,
        extended,
    })
}

/// Steps 1-2: COSE_Sign1_Tagged only (tag 18, first byte 0xD2), the protected
/// header and payload within their budgets before they are decoded, a non-empty
/// attached payload (returned) and a non-empty signature.
fn decode_sign1(bytes: &[u8]) -> Result<(CoseSign1, Vec<u8>), EnvelopeError> {
    match bytes.first() {
        Some(&SIGN1_TAG_BYTE) => {}
        // An array of four (0x84) is an untagged COSE_Sign1.
        Some(0x84) => return Err(EnvelopeError::UntaggedCose),
        _ => return Err(malformed("not a CBOR-tagged COSE_Sign1")),
    }
    let Value::Tag(18, message) = decode(bytes)? else {
        return Err(malformed("not a CBOR-tagged COSE_Sign1"));
    };
    if let Value::Array(parts) = message.as_ref() {
        if let Some(Value::Bytes(protected)) = parts.first() {
            if protected.len() > MAX_PROTECTED_HEADER_BYTES {
                return Err(EnvelopeError::TooLarge {
                    what: "protected header",
                    limit: MAX_PROTECTED_HEADER_BYTES,
                });
            }
            if !protected.is_empty() {
                scan_cbor(protected)?;
            }
        }
        if let Some(Value::Bytes(payload)) = parts.get(2) {
            if payload.len() > MAX_PAYLOAD_BYTES {
                return Err(EnvelopeError::TooLarge {
                    what: "payload",
                    limit: MAX_PAYLOAD_BYTES,
                });
            }
        }
    }
    let sign1 = CoseSign1::from_cbor_value(*message).map_err(|e| malformed(e.to_string()))?;
    let payload = match &sign1.payload {
        Some(p) if !p.is_empty() => p.clone(),
        Some(_) => return Err(malformed("payload is empty")),
        None => return Err(malformed("payload is detached")),
    };
    if sign1.signature.is_empty() {
        return Err(malformed("signature is empty"));
    }
    Ok((sign1, payload))
}

/// Step 3: the `alg` label, one of the six Notary algorithms.
fn algorithm(protected: &coset::Header) -> Result<SignatureAlgorithm, EnvelopeError> {
    let alg = protected.alg.as_ref().ok_or(EnvelopeError::MissingHeader {
        format: FORMAT,
        header: "alg",
    })?;
    let label = crit_label(alg);
    match label {
        Label::Int(id) => SignatureAlgorithm::from_cose_id(id),
        Label::Text(_) => None,
    }
    .ok_or_else(|| EnvelopeError::UnsupportedAlgorithm {
        format: FORMAT,
        alg: label_text(&label).chars().take(64).collect(),
    })
}

/// Step 4: the content type, as text.
fn content_type(protected: &coset::Header) -> Result<String, EnvelopeError> {
    match &protected.content_type {
        None => Err(EnvelopeError::MissingHeader {
            format: FORMAT,
            header: "content type",
        }),
        Some(coset::ContentType::Text(t)) => Ok(t.clone()),
        Some(coset::ContentType::Assigned(_)) => {
            Err(invalid("content type", "must be a text string"))
        }
    }
}

/// Step 5: what the protected header holds.
struct ProtectedHeaders {
    /// Every label present, registered or not.
    present: Vec<Label>,
    /// The labels Notary does not register, with the verification plugin's name.
    extended: Vec<(Label, Option<String>)>,
    notary: NotaryHeaders,
}

impl ProtectedHeaders {
    fn read(protected: &coset::Header) -> Result<ProtectedHeaders, EnvelopeError> {
        let mut headers = ProtectedHeaders {
            present: Vec::new(),
            extended: Vec::new(),
            notary: NotaryHeaders::default(),
        };
        if protected.alg.is_some() {
            headers.present.push(Label::Int(1));
        }
        if !protected.crit.is_empty() {
            headers.present.push(Label::Int(2));
        }
        headers.present.push(Label::Int(3));
        for (present_if, label) in [
            (!protected.key_id.is_empty(), 4),
            (!protected.iv.is_empty(), 5),
            (!protected.partial_iv.is_empty(), 6),
            (!protected.counter_signatures.is_empty(), 7),
        ] {
            if present_if {
                headers.present.push(Label::Int(label));
                headers.extended.push((Label::Int(label), None));
            }
        }
        for (label, value) in &protected.rest {
            headers.present.push(label.clone());
            match label {
                Label::Text(name) => headers.notary_header(label, name, value)?,
                Label::Int(LABEL_X5CHAIN) => {
                    // CORE reads x5chain only from the unprotected header.
                    return Err(invalid("x5chain", "must be in the unprotected header"));
                }
                Label::Int(_) => headers.extended.push((label.clone(), None)),
            }
        }
        Ok(headers)
    }

    fn notary_header(
        &mut self,
        label: &Label,
        name: &str,
        value: &Value,
    ) -> Result<(), EnvelopeError> {
        match name {
            HEADER_SIGNING_SCHEME => self.notary.scheme = Some(text_value(name, value)?),
            HEADER_SIGNING_TIME => self.notary.signing_time = Some(epoch_time(name, value)?),
            HEADER_AUTHENTIC_SIGNING_TIME => {
                self.notary.authentic_signing_time = Some(epoch_time(name, value)?)
            }
            HEADER_EXPIRY => self.notary.expiry = Some(epoch_time(name, value)?),
            _ => {
                let text = (name == ATTRIBUTE_VERIFICATION_PLUGIN)
                    .then(|| value.as_text().map(str::to_string))
                    .flatten();
                self.extended.push((label.clone(), text));
            }
        }
        Ok(())
    }
}

/// Step 7: crit is present (coset refuses an empty one), unique, every label
/// present in the protected header, and covers the headers that must be critical.
fn critical_labels(
    protected: &coset::Header,
    present: &[Label],
    must_be_critical: Vec<&'static str>,
) -> Result<Vec<Label>, EnvelopeError> {
    if protected.crit.is_empty() {
        return Err(EnvelopeError::MissingHeader {
            format: FORMAT,
            header: "crit",
        });
    }
    let crit: Vec<Label> = protected.crit.iter().map(crit_label).collect();
    for (index, label) in crit.iter().enumerate() {
        if crit[..index].contains(label) {
            return Err(invalid("crit", "lists a header more than once"));
        }
        if !present.contains(label) {
            return Err(EnvelopeError::CriticalHeaderMissing {
                header: label_text(label).chars().take(256).collect(),
            });
        }
    }
    if let Some(header) = must_be_critical
        .into_iter()
        .find(|h| !crit.contains(&Label::Text(h.to_string())))
    {
        return Err(EnvelopeError::NotMarkedCritical { header });
    }
    Ok(crit)
}

/// Step 8: what the unprotected header holds.
struct UnprotectedHeaders {
    certificate_chain: Vec<Vec<u8>>,
    timestamp_token: Option<Vec<u8>>,
    signing_agent: Option<String>,
}

impl UnprotectedHeaders {
    /// No crit, nothing repeated from the protected header (`present`), x5chain
    /// as an array of DER byte strings, the timestamp token and the signing agent.
    fn read(unprotected: &coset::Header, present: &[Label]) -> Result<Self, EnvelopeError> {
        if !unprotected.crit.is_empty() {
            return Err(invalid("crit", "must be in the protected header"));
        }
        let mut labels: Vec<Label> = Vec::new();
        if unprotected.alg.is_some() {
            labels.push(Label::Int(1));
        }
        if unprotected.content_type.is_some() {
            labels.push(Label::Int(3));
        }
        labels.extend(unprotected.rest.iter().map(|(l, _)| l.clone()));
        if let Some(label) = labels.iter().find(|l| present.contains(l)) {
            return Err(invalid(
                &label_text(label),
                "is in both the protected and the unprotected header",
            ));
        }
        let mut headers = UnprotectedHeaders {
            certificate_chain: Vec::new(),
            timestamp_token: None,
            signing_agent: None,
        };
        for (label, value) in &unprotected.rest {
            match label {
                Label::Int(LABEL_X5CHAIN) => headers.certificate_chain = x5chain(value)?,
                Label::Text(name) if name == HEADER_TIMESTAMP_SIGNATURE => match value {
                    Value::Bytes(token) if token.is_empty() => {}
                    Value::Bytes(token) => headers.timestamp_token = Some(token.clone()),
                    _ => return Err(invalid(name, "must be a byte string")),
                },
                Label::Text(name) if name == HEADER_SIGNING_AGENT => {
                    headers.signing_agent = Some(text_value(name, value)?)
                }
                _ => {}
            }
        }
        Ok(headers)
    }
}

/// x5chain: an array of at most [`MAX_CERTIFICATE_CHAIN`] DER byte strings.
fn x5chain(value: &Value) -> Result<Vec<Vec<u8>>, EnvelopeError> {
    let Value::Array(certs) = value else {
        return Err(invalid("x5chain", "must be an array of byte strings"));
    };
    if certs.len() > MAX_CERTIFICATE_CHAIN {
        return Err(EnvelopeError::TooLarge {
            what: "certificate chain",
            limit: MAX_CERTIFICATE_CHAIN,
        });
    }
    certs
        .iter()
        .map(|c| match c {
            Value::Bytes(der) => Ok(der.clone()),
            _ => Err(invalid("x5chain", "must be an array of byte strings")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::test_builder::{dummy_signer, EnvelopeSpec};
    use crate::envelope::{parse as parse_envelope, SignatureEnvelope, COSE_MEDIA_TYPE};

    fn parse_spec(spec: &EnvelopeSpec) -> Result<SignatureEnvelope, EnvelopeError> {
        parse_envelope(COSE_MEDIA_TYPE, &spec.build_cose(&dummy_signer))
    }

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        coset::cbor::ser::into_writer(value, &mut out).expect("CBOR to Vec");
        out
    }

    fn header_named(result: Result<SignatureEnvelope, EnvelopeError>, name: &str) -> bool {
        matches!(result, Err(EnvelopeError::InvalidHeader { ref header, .. }) if header == name)
    }

    #[test]
    fn untagged_sign1_is_rejected() {
        let spec = EnvelopeSpec {
            untagged_cose: true,
            ..EnvelopeSpec::default()
        };
        assert!(matches!(
            parse_spec(&spec),
            Err(EnvelopeError::UntaggedCose)
        ));
    }

    #[test]
    fn other_tags_and_garbage_are_malformed() {
        let sign1 = EnvelopeSpec::default().build_cose(&dummy_signer);
        // COSE_Sign (tag 98) around the same array.
        let mut sign = vec![0xD8, 98];
        sign.extend_from_slice(&sign1[1..]);
        // Tag 18 in its two-byte form is not the 0xD2 prefix GOCOSE requires.
        let mut long_tag = vec![0xD8, 18];
        long_tag.extend_from_slice(&sign1[1..]);
        let mut trailing = sign1.clone();
        trailing.push(0x00);
        for bytes in [sign, long_tag, trailing, b"{}".to_vec(), Vec::new()] {
            assert!(
                matches!(
                    parse_envelope(COSE_MEDIA_TYPE, &bytes),
                    Err(EnvelopeError::Malformed { .. })
                ),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn times_must_carry_cbor_tag_1() {
        let spec = EnvelopeSpec {
            cose_times_untagged: true,
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), HEADER_SIGNING_TIME));
        let spec = EnvelopeSpec {
            cose_times_untagged: true,
            ..EnvelopeSpec::signing_authority()
        };
        assert!(header_named(
            parse_spec(&spec),
            HEADER_AUTHENTIC_SIGNING_TIME
        ));
        let spec = EnvelopeSpec {
            signing_time: None,
            cose_protected_extra: vec![(
                Value::Text(HEADER_SIGNING_TIME.into()),
                Value::Tag(0, Box::new(Value::Text("2023-06-27T05:30:33Z".into()))),
            )],
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), HEADER_SIGNING_TIME));
    }

    #[test]
    fn float_epoch_times_are_accepted() {
        let spec = EnvelopeSpec {
            signing_time: None,
            cose_protected_extra: vec![(
                Value::Text(HEADER_SIGNING_TIME.into()),
                Value::Tag(1, Box::new(Value::Float(1_687_843_833.5))),
            )],
            ..EnvelopeSpec::default()
        };
        let env = parse_spec(&spec).expect("float epoch time");
        assert_eq!(env.signing_time, system_time(1_687_843_833, 500_000_000));
    }

    #[test]
    fn x5chain_must_be_an_unprotected_array() {
        let spec = EnvelopeSpec {
            cose_x5chain_single: true,
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), "x5chain"));
        let spec = EnvelopeSpec {
            cose_x5chain_protected: true,
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), "x5chain"));
        let spec = EnvelopeSpec {
            certificate_chain: vec![Vec::new(); MAX_CERTIFICATE_CHAIN + 1],
            ..EnvelopeSpec::default()
        };
        assert!(matches!(
            parse_spec(&spec),
            Err(EnvelopeError::TooLarge {
                what: "certificate chain",
                ..
            })
        ));
    }

    #[test]
    fn crit_belongs_in_the_protected_header_only() {
        let spec = EnvelopeSpec {
            cose_unprotected_extra: vec![(
                Value::from(2),
                Value::Array(vec![Value::Text(HEADER_SIGNING_SCHEME.into())]),
            )],
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), "crit"));
    }

    #[test]
    fn a_label_in_both_buckets_is_rejected() {
        let spec = EnvelopeSpec {
            cose_unprotected_extra: vec![(
                Value::Text(HEADER_SIGNING_SCHEME.into()),
                Value::Text("notary.x509".into()),
            )],
            ..EnvelopeSpec::default()
        };
        assert!(header_named(parse_spec(&spec), HEADER_SIGNING_SCHEME));
    }

    #[test]
    fn critical_integer_label_must_be_present() {
        // crit naming kid (4), absent from the protected header.
        let spec = EnvelopeSpec {
            cose_protected_extra: Vec::new(),
            crit: Some(vec![HEADER_SIGNING_SCHEME.into()]),
            ..EnvelopeSpec::default()
        };
        let protected = spec.cose_protected();
        let Value::Map(mut entries) = coset::cbor::de::from_reader(&protected[..]).expect("map")
        else {
            panic!("protected header is a map");
        };
        for (k, v) in &mut entries {
            if *k == Value::from(2) {
                *v = Value::Array(vec![
                    Value::Text(HEADER_SIGNING_SCHEME.into()),
                    Value::from(4),
                ]);
            }
        }
        let message = Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(cbor(&Value::Map(entries))),
                Value::Map(vec![(
                    Value::from(33),
                    Value::Array(vec![Value::Bytes(b"leaf".to_vec())]),
                )]),
                Value::Bytes(spec.target.payload_json()),
                Value::Bytes(vec![1]),
            ])),
        );
        assert!(matches!(
            parse_envelope(COSE_MEDIA_TYPE, &cbor(&message)),
            Err(EnvelopeError::CriticalHeaderMissing { ref header }) if header == "4"
        ));
    }

    #[test]
    fn payload_and_signature_must_be_present() {
        let spec = EnvelopeSpec::default();
        let build = |payload: Value, signature: Vec<u8>| {
            cbor(&Value::Tag(
                18,
                Box::new(Value::Array(vec![
                    Value::Bytes(spec.cose_protected()),
                    Value::Map(vec![(
                        Value::from(33),
                        Value::Array(vec![Value::Bytes(b"leaf".to_vec())]),
                    )]),
                    payload,
                    Value::Bytes(signature),
                ])),
            ))
        };
        let payload = Value::Bytes(spec.target.payload_json());
        assert!(parse_envelope(COSE_MEDIA_TYPE, &build(payload.clone(), vec![1])).is_ok());
        for bytes in [
            build(Value::Null, vec![1]),
            build(Value::Bytes(Vec::new()), vec![1]),
            build(payload, Vec::new()),
        ] {
            assert!(matches!(
                parse_envelope(COSE_MEDIA_TYPE, &bytes),
                Err(EnvelopeError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn signed_bytes_keep_the_protected_header_verbatim() {
        // A non-canonical (but valid) protected header: keys reversed.
        let spec = EnvelopeSpec::default();
        let Value::Map(mut entries) =
            coset::cbor::de::from_reader(&spec.cose_protected()[..]).expect("map")
        else {
            panic!("protected header is a map");
        };
        entries.reverse();
        let protected = cbor(&Value::Map(entries));
        let payload = spec.target.payload_json();
        let bytes = cbor(&Value::Tag(
            18,
            Box::new(Value::Array(vec![
                Value::Bytes(protected.clone()),
                Value::Map(vec![(
                    Value::from(33),
                    Value::Array(vec![Value::Bytes(b"leaf".to_vec())]),
                )]),
                Value::Bytes(payload.clone()),
                Value::Bytes(vec![7; 3]),
            ])),
        ));
        let env = parse_envelope(COSE_MEDIA_TYPE, &bytes).expect("valid");
        let expected = cbor(&Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected),
            Value::Bytes(Vec::new()),
            Value::Bytes(payload),
        ]));
        assert_eq!(env.signed_bytes, expected);
        assert_eq!(env.signature, vec![7; 3]);
    }

    #[test]
    fn scanner_accepts_well_formed_items() {
        for ok in [
            &[0x00][..],
            &[0x83, 0x01, 0x02, 0x03],
            &[0x9F, 0x01, 0xFF],
            &[0xBF, 0x61, 0x61, 0x01, 0xFF],
            &[0x5F, 0x41, 0xAA, 0xFF],
            &[0xC1, 0x1A, 0, 0, 0, 1],
            &[0x80],
            &[0xA0],
            &[0xF9, 0x3C, 0x00],
        ] {
            assert!(scan_cbor(ok).is_ok(), "{ok:02x?}");
        }
    }

    #[test]
    fn scanner_rejects_malformed_and_oversized_items() {
        for bad in [
            &[][..],
            &[0x83, 0x01, 0x02],
            &[0x01, 0x02],
            &[0xFF],
            &[0x5A, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x9B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x1F],
            &[0x5F, 0x61, 0x61, 0xFF],
            &[0xC1],
        ] {
            assert!(
                matches!(scan_cbor(bad), Err(EnvelopeError::Malformed { .. })),
                "{bad:02x?}"
            );
        }
        let mut deep = vec![0x81; MAX_CBOR_DEPTH + 1];
        deep.push(0x00);
        assert!(matches!(
            scan_cbor(&deep),
            Err(EnvelopeError::TooLarge {
                what: "CBOR nesting depth",
                ..
            })
        ));
        let mut many = vec![0x9F];
        many.extend(std::iter::repeat_n(0x00, MAX_CBOR_ITEMS));
        many.push(0xFF);
        assert!(matches!(
            scan_cbor(&many),
            Err(EnvelopeError::TooLarge {
                what: "CBOR data items",
                ..
            })
        ));
    }

    /// A CBOR byte string header for `len` bytes (major type 2).
    fn bstr_header(len: usize) -> Vec<u8> {
        let mut header = vec![0x5A];
        header.extend_from_slice(&(len as u32).to_be_bytes());
        header
    }

    /// tag 18, [protected, {}, payload, signature] from raw encoded parts.
    fn sign1_raw(protected: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xD2, 0x84];
        bytes.extend_from_slice(protected);
        bytes.push(0xA0);
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(&[0x41, 0x00]);
        bytes
    }

    #[test]
    fn oversized_parts_are_refused_by_the_scan_before_decoding() {
        let limits = Some(&SIGN1_PART_LIMITS);
        let empty_bstr = [0x40];
        // A payload one byte over its budget, definite length.
        let mut payload = bstr_header(MAX_PAYLOAD_BYTES + 1);
        payload.resize(payload.len() + MAX_PAYLOAD_BYTES + 1, b'x');
        let too_big = sign1_raw(&empty_bstr, &payload);
        assert!(matches!(
            scan_cbor_with(&too_big, limits),
            Err(EnvelopeError::TooLarge { what: "payload", limit }) if limit == MAX_PAYLOAD_BYTES
        ));
        // Without the COSE_Sign1 budgets the same bytes are well-formed CBOR.
        assert!(scan_cbor(&too_big).is_ok());
        // Exactly at the budget passes the scan.
        let mut payload = bstr_header(MAX_PAYLOAD_BYTES);
        payload.resize(payload.len() + MAX_PAYLOAD_BYTES, b'x');
        assert!(scan_cbor_with(&sign1_raw(&empty_bstr, &payload), limits).is_ok());
        // Indefinite length: the chunks add up past the budget.
        let half = MAX_PAYLOAD_BYTES / 2 + 1;
        let mut payload = vec![0x5F];
        for _ in 0..2 {
            payload.extend(bstr_header(half));
            payload.resize(payload.len() + half, b'x');
        }
        payload.push(0xFF);
        assert!(matches!(
            scan_cbor_with(&sign1_raw(&empty_bstr, &payload), limits),
            Err(EnvelopeError::TooLarge {
                what: "payload",
                ..
            })
        ));
        // The protected header has its own budget.
        let mut protected = bstr_header(MAX_PROTECTED_HEADER_BYTES + 1);
        protected.resize(protected.len() + MAX_PROTECTED_HEADER_BYTES + 1, 0xA0);
        assert!(matches!(
            scan_cbor_with(&sign1_raw(&protected, &[0x41, b'{']), limits),
            Err(EnvelopeError::TooLarge {
                what: "protected header",
                ..
            })
        ));
        // A large byte string elsewhere (a certificate in the unprotected header)
        // is not a part and is left to the later checks.
        let mut big = vec![0xD2, 0x84, 0x40, 0xA1, 0x18, 0x21];
        big.extend(bstr_header(MAX_PAYLOAD_BYTES + 1));
        big.resize(big.len() + MAX_PAYLOAD_BYTES + 1, 0x30);
        big.extend_from_slice(&[0x41, b'{', 0x41, 0x00]);
        assert!(scan_cbor_with(&big, limits).is_ok());
        // A signature longer than any algorithm makes.
        let mut signature = bstr_header(MAX_SIGNATURE_BYTES + 1);
        signature.resize(signature.len() + MAX_SIGNATURE_BYTES + 1, 0);
        let mut long_signature = vec![0xD2, 0x84, 0x40, 0xA0, 0x41, b'{'];
        long_signature.extend(signature);
        assert!(matches!(
            scan_cbor_with(&long_signature, limits),
            Err(EnvelopeError::TooLarge {
                what: "signature",
                ..
            })
        ));
        // And parse refuses the oversized payload with the budget's error.
        assert!(matches!(
            parse(&too_big),
            Err(EnvelopeError::TooLarge {
                what: "payload",
                ..
            })
        ));
    }
}
