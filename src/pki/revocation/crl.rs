//! CRLs (RFC 5280 §5): the CertificateList read with a streaming reader, its
//! extensions, and the checks of NOTARY.md §7 on one CRL ([`Crl::validate`]). The
//! revokedCertificates elements are read in [`entry`]; a certificate's status per a
//! base and a delta CRL is [`status`].

mod entry;
mod status;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use const_oid::db::rfc5280;
use const_oid::ObjectIdentifier;
use der::asn1::{BitStringRef, UintRef};
use der::{Decode, Reader, SliceReader, Tag, TagMode, TagNumber};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::{FreshestCrl, KeyUsage};
use x509_cert::name::Name;
use x509_cert::time::Time;

use super::super::cert::{distribution_point_uris, Certificate};
use super::super::signature::verify_with_spki;
use super::super::time;
use super::super::PkiError;
use super::{asn1, serial_hex, serial_magnitude, RevocationError, MAX_CRL_BYTES};
use entry::{read_entry_fast, SerialKey};

pub use entry::CrlEntry;
pub use status::{crl_status, CertStatus};

/// The first thing found at parse time that makes the CRL unusable (RFC 5280 §5.2,
/// §5.3: a CRL with a critical extension the application cannot process must not be
/// used for any certificate); reported by [`Crl::validate`].
#[derive(Debug, Clone)]
enum Unsupported {
    CriticalExtension(ObjectIdentifier),
    IndirectCrl,
    EntryCriticalExtension {
        serial: Vec<u8>,
        oid: ObjectIdentifier,
    },
    EntryCertificateIssuer {
        serial: Vec<u8>,
    },
}

/// A parsed CRL (RFC 5280 §5) that keeps its DER. Revoked serials are indexed once by
/// magnitude ([`Certificate::serial_bytes`] form), so [`Crl::entry`] is O(1): CRLs of
/// 20,000 entries are common.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Range<usize>,
    issuer_name: Name,
    signature_algorithm: AlgorithmIdentifierOwned,
    /// `None` when the BIT STRING has unused bits: no signature can match.
    signature: Option<Vec<u8>>,
    this_update: SystemTime,
    next_update: Option<SystemTime>,
    crl_number: Option<Vec<u8>>,
    delta_base: Option<Vec<u8>>,
    has_freshest_crl: bool,
    freshest_crl_urls: Vec<String>,
    entries: HashMap<SerialKey, CrlEntry>,
    unsupported: Option<Unsupported>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer_string())
            .field("this_update", &time::rfc3339(self.this_update))
            .field("next_update", &self.next_update.map(time::rfc3339))
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// The fields of a TBSCertList (RFC 5280 §5.1), borrowed from the DER.
struct RawTbsCertList<'a> {
    signature: AlgorithmIdentifierOwned,
    issuer: &'a [u8],
    this_update: Time,
    next_update: Option<Time>,
    revoked: Vec<&'a [u8]>,
    extensions: Vec<asn1::ExtensionRef<'a>>,
}

/// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }.
fn split_certificate_list(
    der: &[u8],
) -> der::Result<(&[u8], AlgorithmIdentifierOwned, BitStringRef<'_>)> {
    let mut reader = SliceReader::new(der)?;
    let parts = reader.sequence(|list| {
        let tbs = list.tlv_bytes()?;
        let algorithm = list.decode()?;
        let signature = list.decode()?;
        Ok::<_, der::Error>((tbs, algorithm, signature))
    })?;
    reader.finish()?;
    Ok(parts)
}

/// TBSCertList ::= SEQUENCE { version OPTIONAL (v2), signature, issuer, thisUpdate,
/// nextUpdate OPTIONAL, revokedCertificates OPTIONAL, [0] EXPLICIT crlExtensions
/// OPTIONAL }.
fn parse_tbs_cert_list(tbs: &[u8]) -> der::Result<RawTbsCertList<'_>> {
    let mut reader = SliceReader::new(tbs)?;
    let parsed = reader.sequence(|list| {
        // version INTEGER (0x02), present for v2.
        if list.peek_byte() == Some(0x02) {
            // Only v2 (1) is ever written; v1 CRLs omit the field.
            let version: u8 = list.decode()?;
            if version != 1 {
                return Err(list.error(Tag::Integer.value_error()));
            }
        }
        let signature = list.decode()?;
        let issuer = list.tlv_bytes()?;
        let this_update = list.decode()?;
        // UTCTime (0x17) or GeneralizedTime (0x18).
        let next_update = if matches!(list.peek_byte(), Some(0x17 | 0x18)) {
            Some(list.decode()?)
        } else {
            None
        };
        let revoked = if list.peek_byte() == Some(0x30) {
            list.decode::<asn1::RawSequenceOf<'_>>()?.0
        } else {
            Vec::new()
        };
        let extensions = list
            .context_specific::<Vec<asn1::ExtensionRef<'_>>>(TagNumber(0), TagMode::Explicit)?
            .unwrap_or_default();
        Ok::<_, der::Error>(RawTbsCertList {
            signature,
            issuer,
            this_update,
            next_update,
            revoked,
            extensions,
        })
    })?;
    reader.finish()?;
    Ok(parsed)
}

/// The first repeated extension OID, if any (RFC 5280 §4.2: at most one instance).
fn duplicate_extension(extensions: &[asn1::ExtensionRef<'_>]) -> Option<ObjectIdentifier> {
    extensions.iter().enumerate().find_map(|(i, ext)| {
        extensions[..i]
            .iter()
            .any(|earlier| earlier.extn_id == ext.extn_id)
            .then_some(ext.extn_id)
    })
}

/// Where `inner` (a sub-slice of `outer`) sits in `outer`.
fn range_in(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start + inner.len()
}

impl Crl {
    /// Parses one DER CertificateList (RFC 5280 §5.1, v1 or v2); trailing bytes are an
    /// error. Extensions are read here; what makes the CRL unusable is reported by
    /// [`Crl::validate`].
    pub fn from_der(der: &[u8]) -> Result<Crl, RevocationError> {
        if der.len() > MAX_CRL_BYTES {
            return Err(RevocationError::CrlTooLarge {
                len: der.len(),
                limit: MAX_CRL_BYTES,
            });
        }
        let malformed = |source| RevocationError::MalformedCrl { source };
        let (tbs, signature_algorithm, signature) =
            split_certificate_list(der).map_err(malformed)?;
        let raw = parse_tbs_cert_list(tbs).map_err(malformed)?;
        let issuer_name = Name::from_der(raw.issuer).map_err(malformed)?;
        if raw.signature != signature_algorithm {
            return Err(RevocationError::CrlAlgorithmMismatch {
                issuer: issuer_name.to_string(),
            });
        }
        if let Some(oid) = duplicate_extension(&raw.extensions) {
            return Err(RevocationError::DuplicateCrlExtension {
                issuer: issuer_name.to_string(),
                oid: oid.to_string(),
            });
        }

        let mut crl = Crl {
            issuer_name,
            der: der.to_vec(),
            tbs: range_in(der, tbs),
            issuer: range_in(der, raw.issuer),
            signature_algorithm,
            signature: signature.as_bytes().map(<[u8]>::to_vec),
            this_update: raw.this_update.to_system_time(),
            next_update: raw.next_update.map(|t| t.to_system_time()),
            crl_number: None,
            delta_base: None,
            has_freshest_crl: false,
            freshest_crl_urls: Vec::new(),
            entries: HashMap::with_capacity(raw.revoked.len()),
            unsupported: None,
        };

        for ext in &raw.extensions {
            crl.read_extension(ext)?;
        }
        for raw_entry in raw.revoked {
            let read = match read_entry_fast(raw_entry) {
                Some(read) => read,
                None => crl.decode_entry(raw_entry)?,
            };
            crl.add_entry(read);
        }
        Ok(crl)
    }

    /// Records one CRL extension (RFC 5280 §5.2): the numbers, FreshestCRL, and what
    /// makes the CRL unusable.
    fn read_extension(&mut self, ext: &asn1::ExtensionRef<'_>) -> Result<(), RevocationError> {
        let bad = |extension| RevocationError::MalformedCrlExtension {
            issuer: self.issuer_string(),
            extension,
        };
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            rfc5280::ID_CE_CRL_NUMBER => {
                let number = UintRef::from_der(value).map_err(|_| bad("CRLNumber"))?;
                self.crl_number = Some(number.as_bytes().to_vec());
            }
            rfc5280::ID_CE_DELTA_CRL_INDICATOR => {
                let base = UintRef::from_der(value).map_err(|_| bad("DeltaCRLIndicator"))?;
                self.delta_base = Some(base.as_bytes().to_vec());
            }
            rfc5280::ID_CE_FRESHEST_CRL => {
                let points = FreshestCrl::from_der(value).map_err(|_| bad("FreshestCRL"))?;
                self.has_freshest_crl = true;
                self.freshest_crl_urls = distribution_point_uris(&points.0)
                    .into_iter()
                    .filter(|url| is_http_url(url))
                    .collect();
            }
            rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT => {
                // Decoded by OID here: x509-cert 0.3.0 gives IssuingDistributionPoint
                // the wrong AssociatedOid (id-pe-subjectInfoAccess), so
                // `get_extension` would never find it. The scope fields are not
                // checked, as in notation (every CDP URL is checked); only indirect
                // CRLs are refused.
                let idp = IssuingDistributionPoint::from_der(value)
                    .map_err(|_| bad("IssuingDistributionPoint"))?;
                if idp.indirect_crl {
                    self.unsupported.get_or_insert(Unsupported::IndirectCrl);
                }
            }
            rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER => {}
            oid if ext.critical => {
                self.unsupported
                    .get_or_insert(Unsupported::CriticalExtension(oid));
            }
            _ => {}
        }
        Ok(())
    }

    /// Parses a CRL file: the first PEM `X509 CRL` block (RFC 7468 §5) when the bytes
    /// hold PEM, else one DER CertificateList.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Crl, RevocationError> {
        const BEGIN: &[u8] = b"-----BEGIN ";
        const END: &[u8] = b"-----END ";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        if find(bytes, BEGIN).is_none() {
            return Crl::from_der(bytes);
        }
        let unterminated = || RevocationError::MalformedCrlPem {
            source: der::Error::from(der::ErrorKind::Failed),
        };
        let mut rest = bytes;
        while let Some(begin) = find(rest, BEGIN) {
            let block = &rest[begin..];
            let end = find(block, END).ok_or_else(unterminated)?;
            let after_end = &block[end + END.len()..];
            let close = find(after_end, b"-----").ok_or_else(unterminated)?;
            let block_len = end + END.len() + close + 5;
            let (label, body) = der::pem::decode_vec(&block[..block_len])
                .map_err(|e| RevocationError::MalformedCrlPem { source: e.into() })?;
            if label == "X509 CRL" {
                return Crl::from_der(&body);
            }
            rest = &block[block_len..];
        }
        Err(RevocationError::NoCrlInPem)
    }

    /// The DER this CRL was parsed from.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer Name exactly as encoded in the CRL.
    pub fn issuer_der(&self) -> &[u8] {
        self.der.get(self.issuer.clone()).unwrap_or_default()
    }

    /// The issuer DN in RFC 4514 form, for messages.
    pub fn issuer_string(&self) -> String {
        self.issuer_name.to_string()
    }

    /// thisUpdate (RFC 5280 §5.1.2.4).
    pub fn this_update(&self) -> SystemTime {
        self.this_update
    }

    /// nextUpdate (RFC 5280 §5.1.2.5), if present.
    pub fn next_update(&self) -> Option<SystemTime> {
        self.next_update
    }

    /// The CRLNumber (RFC 5280 §5.2.3) magnitude, big-endian without leading zeros.
    pub fn crl_number(&self) -> Option<&[u8]> {
        self.crl_number.as_deref()
    }

    /// The DeltaCRLIndicator's base CRL number (RFC 5280 §5.2.4); `Some` means this is
    /// a delta CRL.
    pub fn delta_base(&self) -> Option<&[u8]> {
        self.delta_base.as_deref()
    }

    /// Whether the CRL has a FreshestCRL extension (RFC 5280 §5.2.6): a delta CRL
    /// must then be given to [`crl_status`].
    pub fn has_freshest_crl(&self) -> bool {
        self.has_freshest_crl
    }

    /// The `http://` and `https://` fullName URIs of the FreshestCRL extension, in
    /// order (other schemes are left out).
    pub fn freshest_crl_urls(&self) -> &[String] {
        &self.freshest_crl_urls
    }

    /// Number of distinct revoked serials.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No serial is revoked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for a serial, in [`Certificate::serial_bytes`] form (leading zero
    /// bytes are ignored).
    pub fn entry(&self, serial: &[u8]) -> Option<&CrlEntry> {
        self.entries.get(serial_magnitude(serial))
    }

    /// The signed bytes: tbsCertList exactly as it appears in the DER.
    fn tbs_der(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }

    /// The checks of NOTARY.md §7 on a CRL (base or delta) from `issuer` at `now`:
    ///
    /// 1. The CRL issuer Name is byte-equal to `issuer`'s subject (RFC 5280 §6.3.3 (b)).
    /// 2. `issuer`'s keyUsage, if present, asserts cRLSign (RFC 5280 §6.3.3 (f)).
    /// 3. The signature over the raw tbsCertList verifies under `issuer`'s key
    ///    (RFC 5280 §6.3.3 (g)); SHA-1/MD5 signatures are refused as for certificates.
    /// 4. thisUpdate ≤ `now`.
    /// 5. nextUpdate is present and after `now` (notation refuses CRLs without it).
    /// 6. No critical CRL or entry extension other than those processed here
    ///    (CRLNumber, DeltaCRLIndicator, AuthorityKeyIdentifier,
    ///    IssuingDistributionPoint, FreshestCRL; reasonCode, invalidityDate), no indirect
    ///    CRL and no certificateIssuer entry (RFC 5280 §5.2, §5.3).
    pub fn validate(&self, issuer: &Certificate, now: SystemTime) -> Result<(), RevocationError> {
        let crl_issuer = || self.issuer_string();
        // Step 1.
        if self.issuer_der() != issuer.raw_subject_der() {
            return Err(RevocationError::CrlIssuerMismatch {
                crl_issuer: crl_issuer(),
                issuer: issuer.subject_string(),
            });
        }
        // Step 2.
        match issuer.x509().tbs_certificate().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) if !ku.crl_sign() => {
                return Err(RevocationError::IssuerCannotSignCrls {
                    issuer: issuer.subject_string(),
                })
            }
            Err(_) => {
                return Err(RevocationError::MalformedIssuerKeyUsage {
                    issuer: issuer.subject_string(),
                })
            }
            _ => {}
        }
        // Step 3.
        let signature = self.signature.as_deref().ok_or(PkiError::BadSignature);
        signature
            .and_then(|signature| {
                verify_with_spki(issuer, &self.signature_algorithm, self.tbs_der(), signature)
            })
            .map_err(|source| RevocationError::CrlSignature {
                issuer: issuer.subject_string(),
                source: Box::new(source),
            })?;
        // Step 4.
        if self.this_update > now {
            return Err(RevocationError::CrlNotYetValid {
                issuer: crl_issuer(),
                this_update: self.this_update,
                at: now,
            });
        }
        // Step 5.
        let Some(next_update) = self.next_update else {
            return Err(RevocationError::CrlNoNextUpdate {
                issuer: crl_issuer(),
            });
        };
        if next_update <= now {
            return Err(RevocationError::CrlExpired {
                issuer: crl_issuer(),
                next_update,
                at: now,
            });
        }
        // Step 6.
        match &self.unsupported {
            None => Ok(()),
            Some(Unsupported::CriticalExtension(oid)) => {
                Err(RevocationError::CrlUnknownCriticalExtension {
                    issuer: crl_issuer(),
                    oid: oid.to_string(),
                })
            }
            Some(Unsupported::IndirectCrl) => Err(RevocationError::IndirectCrl {
                issuer: crl_issuer(),
            }),
            Some(Unsupported::EntryCriticalExtension { serial, oid }) => {
                Err(RevocationError::CrlEntryUnknownCriticalExtension {
                    issuer: crl_issuer(),
                    serial: serial_hex(serial),
                    oid: oid.to_string(),
                })
            }
            Some(Unsupported::EntryCertificateIssuer { serial }) => {
                Err(RevocationError::CrlEntryCertificateIssuer {
                    issuer: crl_issuer(),
                    serial: serial_hex(serial),
                })
            }
        }
    }
}

fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_count_for_freshest_crl() {
        assert!(is_http_url("http://example.test/delta.crl"));
        assert!(is_http_url("HTTPS://example.test/delta.crl"));
        assert!(!is_http_url("ldap://example.test/cn=delta"));
        assert!(!is_http_url("http"));
    }

    #[test]
    fn garbage_is_a_parse_error_not_a_panic() {
        let truncated = b"\x30\x82\xff\xff";
        let malformed = [&b""[..], b"\x30", b"\x30\x00", b"not a crl", truncated];
        for bytes in malformed {
            let parsed = Crl::from_der(bytes);
            assert!(
                matches!(parsed, Err(RevocationError::MalformedCrl { .. })),
                "{bytes:02x?}: {parsed:?}"
            );
        }
        let certificate = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            Crl::from_pem_or_der(certificate),
            Err(RevocationError::NoCrlInPem)
        ));
    }
}
