//! The revokedCertificates elements of a CRL (RFC 5280 §5.1.2.6, §5.3): a fast
//! reader for the plain DER CAs write, der's decoder for the rest (and the errors),
//! and the index of serials.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::asn1::GeneralizedTime;
use der::{DateTime, Decode};
use x509_cert::time::Time;

use super::super::{asn1, serial_hex, serial_magnitude, CrlReason, RevocationError};
use super::{duplicate_extension, Crl, Unsupported};

/// One revoked serial of a CRL (RFC 5280 §5.1.2.6, §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// revocationDate.
    pub revoked_at: SystemTime,
    /// reasonCode; `None` when absent, or when the value is not one RFC 5280 lists
    /// (the serial is revoked all the same).
    pub reason: Option<CrlReason>,
    /// invalidityDate (RFC 5280 §5.3.2).
    pub invalidity_date: Option<SystemTime>,
}

impl CrlEntry {
    pub(super) fn is_temporary(&self) -> bool {
        self.reason.is_some_and(CrlReason::is_temporary)
    }
}

/// A serial magnitude as an index key, inline (no allocation per entry) for every
/// serial RFC 5280 §4.1.2.2 allows (at most 20 octets), boxed past that.
#[derive(Clone)]
pub(super) enum SerialKey {
    Inline {
        len: u8,
        bytes: [u8; SerialKey::INLINE],
    },
    Boxed(Box<[u8]>),
}

impl SerialKey {
    const INLINE: usize = 23;

    fn new(serial: &[u8]) -> SerialKey {
        match u8::try_from(serial.len()) {
            Ok(len) if serial.len() <= SerialKey::INLINE => {
                let mut bytes = [0; SerialKey::INLINE];
                bytes[..serial.len()].copy_from_slice(serial);
                SerialKey::Inline { len, bytes }
            }
            _ => SerialKey::Boxed(serial.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            SerialKey::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            SerialKey::Boxed(bytes) => bytes,
        }
    }
}

// Hashed and compared as its bytes, as `Borrow<[u8]>` (lookups by `&[u8]`) requires.
impl Borrow<[u8]> for SerialKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for SerialKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for SerialKey {
    fn eq(&self, other: &SerialKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SerialKey {}

/// One revokedCertificates element as read (RFC 5280 §5.1.2.6, §5.3).
pub(super) struct ReadEntry<'a> {
    /// The serial's magnitude, borrowed from the CRL's DER.
    serial: &'a [u8],
    entry: CrlEntry,
    /// The first entry extension that makes the CRL unusable.
    unsupported: Option<Unsupported>,
}

/// Decodes a CRLReason ENUMERATED (RFC 5280 §5.3.1).
fn decode_reason(value: &[u8]) -> der::Result<Option<CrlReason>> {
    Ok(CrlReason::from_code(
        asn1::RawEnumerated::from_der(value)?.0,
    ))
}

/// The most extensions a revokedCertificates element may have for
/// [`read_entry_fast`] (CAs write one or two).
const FAST_ENTRY_EXTENSIONS: usize = 4;

/// Reads one revokedCertificates element (RFC 5280 §5.1) without der's reader, whose
/// per-element cost made most of the parse of a large CRL: only the plain DER CAs
/// write (one-byte tags, lengths of at most two bytes, a UTCTime or GeneralizedTime
/// revocationDate, at most [`FAST_ENTRY_EXTENSIONS`] distinct extensions, a one-byte
/// reasonCode). `None` for anything else, malformed or not, which
/// [`Crl::decode_entry`] then reads, or refuses with its error, as it always did:
/// whatever this accepts, der's decoder accepts with the same result.
pub(super) fn read_entry_fast(raw_entry: &[u8]) -> Option<ReadEntry<'_>> {
    let (0x30, body, []) = split_tlv(raw_entry)? else {
        return None;
    };
    let (0x02, serial, body) = split_tlv(body)? else {
        return None;
    };
    // INTEGER in DER (der's IntRef): not empty, no redundant 00 or FF byte in front.
    if matches!(
        serial,
        [] | [0x00, 0x00..=0x7f, ..] | [0xff, 0x80..=0xff, ..]
    ) {
        return None;
    }
    let (time_tag, time, extensions) = split_tlv(body)?;
    let revoked_at = match time_tag {
        0x17 => utc_time_fast(time)?,
        0x18 => Time::from_der(&body[..body.len() - extensions.len()])
            .ok()?
            .to_system_time(),
        _ => return None,
    };
    let mut read = ReadEntry {
        serial: serial_magnitude(serial),
        entry: CrlEntry {
            revoked_at,
            reason: None,
            invalidity_date: None,
        },
        unsupported: None,
    };
    if !extensions.is_empty() {
        let (0x30, extensions, []) = split_tlv(extensions)? else {
            return None;
        };
        read_entry_extensions_fast(extensions, &mut read)?;
    }
    Some(read)
}

/// The crlEntryExtensions (RFC 5280 §5.3) of [`read_entry_fast`], recorded in `read`
/// as [`Crl::decode_entry`] does; `None` where that one is left to judge.
fn read_entry_extensions_fast(mut list: &[u8], read: &mut ReadEntry<'_>) -> Option<()> {
    let mut seen = [&[][..]; FAST_ENTRY_EXTENSIONS];
    let mut count = 0;
    while !list.is_empty() {
        let (0x30, extension, rest) = split_tlv(list)? else {
            return None;
        };
        list = rest;
        let (0x06, oid, extension) = split_tlv(extension)? else {
            return None;
        };
        // critical BOOLEAN DEFAULT FALSE, then extnValue OCTET STRING.
        let (critical, extension) = match extension {
            [0x01, 0x01, 0x00, rest @ ..] => (false, rest),
            [0x01, 0x01, 0xff, rest @ ..] => (true, rest),
            _ => (false, extension),
        };
        let (0x04, value, []) = split_tlv(extension)? else {
            return None;
        };
        // A repeated extension is an error, reported by `Crl::decode_entry`.
        if count == FAST_ENTRY_EXTENSIONS || seen[..count].contains(&oid) {
            return None;
        }
        seen[count] = oid;
        count += 1;
        match ObjectIdentifier::from_bytes(oid).ok()? {
            rfc5280::ID_CE_CRL_REASONS => {
                // ENUMERATED with one content byte: 0 to 127.
                let [0x0a, 0x01, code @ 0x00..=0x7f] = *value else {
                    return None;
                };
                read.entry.reason = CrlReason::from_code(u32::from(code));
            }
            rfc5280::ID_CE_INVALIDITY_DATE => {
                let date = GeneralizedTime::from_der(value).ok()?;
                read.entry.invalidity_date = Some(date.to_system_time());
            }
            rfc5280::ID_CE_CERTIFICATE_ISSUER => {
                read.unsupported
                    .get_or_insert_with(|| Unsupported::EntryCertificateIssuer {
                        serial: read.serial.to_vec(),
                    });
            }
            oid if critical => {
                read.unsupported
                    .get_or_insert_with(|| Unsupported::EntryCriticalExtension {
                        serial: read.serial.to_vec(),
                        oid,
                    });
            }
            _ => {}
        }
    }
    Some(())
}

/// Splits one DER element off the front of `input` for [`read_entry_fast`]:
/// `(tag, value, rest)`, for a one-byte tag and a definite length in its shortest
/// form of at most two bytes that fits in `input`; `None` for anything else.
fn split_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (len, rest) = match rest {
        [len @ 0x00..=0x7f, rest @ ..] => (usize::from(*len), rest),
        [0x81, len @ 0x80..=0xff, rest @ ..] => (usize::from(*len), rest),
        [0x82, high @ 0x01..=0xff, low, rest @ ..] => {
            (usize::from(*high) << 8 | usize::from(*low), rest)
        }
        _ => return None,
    };
    let value = rest.get(..len)?;
    Some((tag, value, &rest[len..]))
}

/// A UTCTime value `YYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.1) read as der reads it: years
/// 50 to 99 are 19xx, and der's [`DateTime::new`] checks the fields.
fn utc_time_fast(value: &[u8]) -> Option<SystemTime> {
    let [digits @ .., b'Z'] = value else {
        return None;
    };
    let digits: &[u8; 12] = digits.try_into().ok()?;
    let mut fields = [0u8; 6];
    for (field, pair) in fields.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (pair[0], pair[1]);
        if !high.is_ascii_digit() || !low.is_ascii_digit() {
            return None;
        }
        *field = (high - b'0') * 10 + (low - b'0');
    }
    let [year, month, day, hour, minute, second] = fields;
    let year = u16::from(year) + if year >= 50 { 1900 } else { 2000 };
    let date = DateTime::new(year, month, day, hour, minute, second).ok()?;
    Some(date.to_system_time())
}

impl Crl {
    /// Reads one revokedCertificates element (RFC 5280 §5.1.2.6, §5.3) with der's
    /// decoder: every element [`read_entry_fast`] leaves, and the errors.
    pub(super) fn decode_entry<'a>(
        &self,
        raw_entry: &'a [u8],
    ) -> Result<ReadEntry<'a>, RevocationError> {
        let entry = asn1::RevokedCertRef::from_der(raw_entry)
            .map_err(|source| RevocationError::MalformedCrl { source })?;
        let serial = serial_magnitude(entry.user_certificate.as_bytes());
        let extensions = entry.crl_entry_extensions.unwrap_or_default();
        let bad = |extension| RevocationError::MalformedCrlEntryExtension {
            issuer: self.issuer_string(),
            serial: serial_hex(serial),
            extension,
        };
        if duplicate_extension(&extensions).is_some() {
            return Err(bad("duplicated"));
        }
        let mut reason = None;
        let mut invalidity_date = None;
        let mut unsupported = None;
        for ext in &extensions {
            let value = ext.extn_value.as_bytes();
            match ext.extn_id {
                rfc5280::ID_CE_CRL_REASONS => {
                    reason = decode_reason(value).map_err(|_| bad("reasonCode"))?;
                }
                rfc5280::ID_CE_INVALIDITY_DATE => {
                    let date =
                        GeneralizedTime::from_der(value).map_err(|_| bad("invalidityDate"))?;
                    invalidity_date = Some(date.to_system_time());
                }
                rfc5280::ID_CE_CERTIFICATE_ISSUER => {
                    unsupported.get_or_insert(Unsupported::EntryCertificateIssuer {
                        serial: serial.to_vec(),
                    });
                }
                oid if ext.critical => {
                    unsupported.get_or_insert(Unsupported::EntryCriticalExtension {
                        serial: serial.to_vec(),
                        oid,
                    });
                }
                _ => {}
            }
        }
        Ok(ReadEntry {
            serial,
            entry: CrlEntry {
                revoked_at: entry.revocation_date.to_system_time(),
                reason,
                invalidity_date,
            },
            unsupported,
        })
    }

    /// Indexes one revokedCertificates element.
    pub(super) fn add_entry(&mut self, read: ReadEntry<'_>) {
        if self.unsupported.is_none() {
            self.unsupported = read.unsupported;
        }
        match self.entries.entry(SerialKey::new(read.serial)) {
            Entry::Vacant(slot) => {
                slot.insert(read.entry);
            }
            // A serial listed twice (a CA bug): keep a permanent revocation over a
            // hold/removal, else the latest, so a lookup never reads less revoked than
            // a scan of every entry would.
            Entry::Occupied(mut slot) => {
                let (kept, entry) = (slot.get(), read.entry);
                if kept.is_temporary()
                    && (!entry.is_temporary() || entry.revoked_at > kept.revoked_at)
                {
                    slot.insert(entry);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn reason_enumerated_decodes_including_undefined_values() {
        // ENUMERATED 1 (keyCompromise), 7 (unused), 6 (certificateHold).
        assert_eq!(
            decode_reason(&[0x0a, 0x01, 0x01]).ok(),
            Some(Some(CrlReason::KeyCompromise))
        );
        assert_eq!(decode_reason(&[0x0a, 0x01, 0x07]).ok(), Some(None));
        assert_eq!(
            decode_reason(&[0x0a, 0x01, 0x06]).ok(),
            Some(Some(CrlReason::CertificateHold))
        );
        // An INTEGER is not an ENUMERATED; a negative value is not a reason.
        assert!(decode_reason(&[0x02, 0x01, 0x01]).is_err());
        assert!(decode_reason(&[0x0a, 0x01, 0xff]).is_err());
    }

    /// A DER TLV, its length in the shortest form unless `long_form`.
    fn tlv_with(tag: u8, value: &[u8], long_form: bool) -> Vec<u8> {
        let len = value.len().to_be_bytes();
        let len = &len[len.iter().take_while(|b| **b == 0).count()..];
        let mut out = vec![tag];
        match len {
            [] => out.push(0),
            [short @ 0x00..=0x7f] if !long_form => out.push(*short),
            _ => {
                out.push(0x80 | len.len() as u8);
                out.extend_from_slice(len);
            }
        }
        out.extend_from_slice(value);
        out
    }

    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        tlv_with(tag, value, false)
    }

    /// xorshift64: the same sequence on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn byte(&mut self) -> u8 {
            self.below(256) as u8
        }
    }

    /// A v1 CRL with the given revokedCertificates elements (none: no field).
    fn crl_der(entries: &[Vec<u8>]) -> Vec<u8> {
        let oid = tlv(
            0x06,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        );
        let algorithm = tlv(0x30, &[&oid[..], &[0x05, 0x00]].concat());
        let mut tbs = [
            &algorithm[..],
            &tlv(0x30, &[]),
            &tlv(0x17, b"240101000000Z"),
        ]
        .concat();
        if !entries.is_empty() {
            tbs.extend(tlv(0x30, &entries.concat()));
        }
        let signature = [0x03, 0x01, 0x00];
        tlv(
            0x30,
            &[&tlv(0x30, &tbs)[..], &algorithm, &signature].concat(),
        )
    }

    /// `YYMMDDHHMMSS` or `YYYYMMDDHHMMSS`: mostly a date from 1970 on, at times not.
    fn time_digits(rng: &mut Rng, four_digit_year: bool) -> Vec<u8> {
        let year = match four_digit_year {
            true => format!("{:04}", 1965 + rng.below(200)),
            false => format!("{:02}", (65 + rng.below(85)) % 100),
        };
        let mut digits = format!(
            "{year}{:02}{:02}{:02}{:02}{:02}",
            1 + rng.below(12),
            1 + [rng.below(28), rng.below(31)][rng.below(2)],
            rng.below(24),
            rng.below(60),
            rng.below(60)
        )
        .into_bytes();
        if rng.below(20) == 0 {
            let at = rng.below(digits.len());
            digits[at] = rng.byte();
        }
        digits
    }

    /// A revokedCertificates element as CAs write it or close to it (serials of any
    /// length, UTCTime or GeneralizedTime, up to five extensions among reasonCode,
    /// invalidityDate, certificateIssuer, unknown ones and a malformed OID, at times
    /// long or non-minimal lengths), then at times a few random byte edits.
    fn random_entry(rng: &mut Rng) -> Vec<u8> {
        let serial_len = [1 + rng.below(4), rng.below(24), rng.below(140)][rng.below(3)];
        let mut serial: Vec<u8> = (0..serial_len).map(|_| rng.byte()).collect();
        // Mostly a DER INTEGER: a 00 in front of a top bit, at times a redundant byte.
        match (rng.below(16), serial.first()) {
            (0, _) => serial.insert(0, 0x00),
            (1, _) => serial.insert(0, 0xff),
            (_, Some(0x80..=0xff)) => serial.insert(0, 0x00),
            _ => {}
        }
        let time = match rng.below(16) {
            0 | 1 => tlv(0x18, &[&time_digits(rng, true)[..], b"Z"].concat()),
            2 => tlv(0x17, &time_digits(rng, false)),
            _ => tlv(0x17, &[&time_digits(rng, false)[..], b"Z"].concat()),
        };
        let oids: [&[u8]; 5] = [
            &[0x55, 0x1d, 0x15],
            &[0x55, 0x1d, 0x18],
            &[0x55, 0x1d, 0x1d],
            &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x15, 0x01],
            [&[0x55, 0x1d, 0x63][..], &[0x80, 0x01], &[]][rng.below(16).saturating_sub(13)],
        ];
        // Mostly distinct extensions, at times one twice.
        let mut kinds = [0, 1, 2, 3, 4, rng.below(5)];
        for i in (1..kinds.len()).rev() {
            kinds.swap(i, rng.below(i + 1));
        }
        let mut extensions = Vec::new();
        for &which in &kinds[..rng.below(5)] {
            let mut extension = tlv(0x06, oids[which]);
            match rng.below(32) {
                0..=4 => extension.extend([0x01, 0x01, 0xff]),
                5 => extension.extend([0x01, 0x01, 0x00]),
                6 => extension.extend([0x01, 0x01, rng.byte()]),
                _ => {}
            }
            let value = match which {
                0 if rng.below(4) == 0 => tlv(0x0a, &[0x00, rng.byte()]),
                0 => tlv(0x0a, &[rng.byte() % 12]),
                1 => tlv(0x18, &[&time_digits(rng, true)[..], b"Z"].concat()),
                _ => tlv(0x30, &vec![0x55; [1, 200, 300][rng.below(3)]]),
            };
            extension.extend(tlv(0x04, &value));
            extensions.extend(tlv(0x30, &extension));
        }
        let mut body = tlv(0x02, &serial);
        body.extend(time);
        if !extensions.is_empty() || rng.below(8) == 0 {
            body.extend(tlv(0x30, &extensions));
        }
        let mut entry = tlv_with(0x30, &body, rng.below(20) == 0);
        for _ in 0..rng.below(8).saturating_sub(5) {
            let at = rng.below(entry.len());
            match rng.below(5) {
                0 => entry[at] = rng.byte(),
                1 => entry[at] ^= 1 << rng.below(8),
                2 => {
                    entry.remove(at);
                }
                3 => entry.insert(at, rng.byte()),
                _ => entry.truncate(at.max(1)),
            }
        }
        entry
    }

    #[test]
    fn entry_fast_path_reads_what_der_reads() {
        // 02 03 00 80 01, UTCTime 2024-01-01, reasonCode keyCompromise.
        let entry = [
            &[0x30, 0x22, 0x02, 0x03, 0x00, 0x80, 0x01, 0x17, 0x0d][..],
            b"240101000000Z",
            &[0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15],
            &[0x04, 0x03, 0x0a, 0x01, 0x01],
        ]
        .concat();
        let read = read_entry_fast(&entry).expect("a plain entry takes the fast path");
        assert_eq!(read.serial, &[0x80, 0x01]);
        assert_eq!(read.entry.reason, Some(CrlReason::KeyCompromise));

        // Whatever the fast path accepts, der's decoder accepts with the same result.
        let crl = Crl::from_der(&crl_der(&[])).expect("empty CRL");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut by_der, mut by_fast_path) = (0, 0);
        for _ in 0..30_000 {
            let raw = random_entry(&mut rng);
            let decoded = crl.decode_entry(&raw);
            by_der += usize::from(decoded.is_ok());
            let Some(fast) = read_entry_fast(&raw) else {
                continue;
            };
            by_fast_path += 1;
            let decoded = decoded.unwrap_or_else(|e| panic!("{raw:02x?}: only der refuses: {e}"));
            assert_eq!(fast.serial, decoded.serial, "{raw:02x?}");
            assert_eq!(fast.entry, decoded.entry, "{raw:02x?}");
            let unsupported = |read: &ReadEntry<'_>| format!("{:?}", read.unsupported);
            assert_eq!(unsupported(&fast), unsupported(&decoded), "{raw:02x?}");
        }
        // The fast path leaves der only the rare encodings.
        assert!(by_der > 10_000, "{by_der}");
        assert!(by_fast_path * 10 > by_der * 9, "{by_fast_path} of {by_der}");
    }

    #[test]
    fn serial_keys_find_serials_inline_or_boxed() {
        let serials: [&[u8]; 6] = [
            &[],
            &[0x01],
            &[0x80, 0x00],
            &[0x22; 23],
            &[0x22; 24],
            &[0x22; 40],
        ];
        let map: HashMap<SerialKey, usize> = serials
            .iter()
            .map(|serial| (SerialKey::new(serial), serial.len()))
            .collect();
        for serial in serials {
            assert_eq!(map.get(serial), Some(&serial.len()));
        }
        for absent in [&[0x00][..], &[0x80], &[0x22; 22], &[0x22; 25]] {
            assert_eq!(map.get(absent), None);
        }
        assert!(matches!(
            SerialKey::new(&[0x22; 23]),
            SerialKey::Inline { .. }
        ));
        assert!(matches!(SerialKey::new(&[0x22; 24]), SerialKey::Boxed(_)));
    }

    #[test]
    fn repeated_serials_keep_the_most_revoked_entry() {
        // Entries of serial 05: a hold on day 2, keyCompromise on day 1, a hold on day 3.
        let entry = |day: u8, reason: u8| {
            let date = format!("2401{day:02}000000Z");
            let reason = tlv(0x04, &tlv(0x0a, &[reason]));
            let extension = tlv(
                0x30,
                &[&tlv(0x06, &[0x55, 0x1d, 0x15])[..], &reason].concat(),
            );
            let serial = tlv(0x02, &[0x05]);
            tlv(
                0x30,
                &[
                    &serial[..],
                    &tlv(0x17, date.as_bytes()),
                    &tlv(0x30, &extension),
                ]
                .concat(),
            )
        };
        let day = |day: u64| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200 + (day - 1) * 86_400)
        };
        let held = |on: u64| CrlEntry {
            revoked_at: day(on),
            reason: Some(CrlReason::CertificateHold),
            invalidity_date: None,
        };
        let crl = Crl::from_der(&crl_der(&[entry(2, 6), entry(3, 6)])).expect("parses");
        assert_eq!((crl.len(), crl.entry(&[0x00, 0x05])), (1, Some(&held(3))));
        let crl = Crl::from_der(&crl_der(&[entry(3, 6), entry(2, 6)])).expect("parses");
        assert_eq!(crl.entry(&[0x05]), Some(&held(3)));
        let crl =
            Crl::from_der(&crl_der(&[entry(2, 6), entry(1, 1), entry(3, 6)])).expect("parses");
        let compromised = CrlEntry {
            revoked_at: day(1),
            reason: Some(CrlReason::KeyCompromise),
            invalidity_date: None,
        };
        assert_eq!(crl.entry(&[0x05]), Some(&compromised));
    }
}
