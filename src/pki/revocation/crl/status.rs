//! A certificate's revocation status per a base CRL and an optional delta CRL
//! (NOTARY.md §7, RFC 5280 §5.2.4, §6.3.3).

use std::time::SystemTime;

use const_oid::db::rfc5280;

use super::super::super::cert::Certificate;
use super::super::{serial_hex, serial_magnitude, CrlReason, RevocationError};
use super::{Crl, CrlEntry};

/// A CRL number for messages: `0x` and hex, since it may exceed any integer type.
fn crl_number_text(number: &[u8]) -> String {
    format!("0x{}", serial_hex(number))
}

/// Compares two magnitudes (no leading zeros) as unsigned integers.
fn cmp_magnitude(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (a, b) = (serial_magnitude(a), serial_magnitude(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Whether `cert` carries a FreshestCRL extension (RFC 5280 §4.2.1.15).
fn has_freshest_crl_extension(cert: &Certificate) -> bool {
    cert.x509()
        .tbs_certificate()
        .extensions()
        .is_some_and(|exts| {
            exts.iter()
                .any(|e| e.extn_id == rfc5280::ID_CE_FRESHEST_CRL)
        })
}

/// A certificate's revocation status per CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        revoked_at: SystemTime,
        reason: Option<CrlReason>,
    },
}

/// The status of `cert` per a base CRL and an optional delta CRL, both already
/// checked with [`Crl::validate`] against `cert`'s issuer (NOTARY.md §7; CORE
/// `revocation/internal/crl/crl.go` checkRevocation).
///
/// 1. The base CRL is from `cert`'s issuer (raw Name) and is not itself a delta CRL.
/// 2. A FreshestCRL in the certificate without one in the base CRL is unsupported.
/// 3. A delta CRL is used exactly when the base CRL has FreshestCRL (one must then
///    be given): it must be a delta CRL from the same issuer, the base must have a
///    CRLNumber, the delta's CRLNumber must be greater than it and its
///    DeltaCRLIndicator not greater (RFC 5280 §5.2.4).
/// 4. The entries for `cert`'s serial, base first: an entry whose invalidityDate is
///    after `signing_time` (given only for the signingAuthority scheme) ends the scan;
///    certificateHold/removeFromCRL entries are temporary and the latest by
///    revocationDate wins; any other entry is a permanent revocation.
/// 5. The latest temporary entry, if certificateHold, revokes; otherwise Good.
pub fn crl_status(
    cert: &Certificate,
    base: &Crl,
    delta: Option<&Crl>,
    signing_time: Option<SystemTime>,
) -> Result<CertStatus, RevocationError> {
    // Step 1.
    if base.issuer_der() != cert.raw_issuer_der() {
        return Err(RevocationError::CrlNotForCertificate {
            subject: cert.subject_string(),
            issuer: cert.issuer_string(),
            crl_issuer: base.issuer_string(),
        });
    }
    if base.delta_base().is_some() {
        return Err(RevocationError::BaseCrlIsDelta {
            issuer: base.issuer_string(),
        });
    }
    // Step 2.
    if has_freshest_crl_extension(cert) && !base.has_freshest_crl() {
        return Err(RevocationError::DeltaCrlOnlyInCertificate {
            subject: cert.subject_string(),
            issuer: base.issuer_string(),
        });
    }
    // Step 3.
    let delta = match (base.has_freshest_crl(), delta) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(RevocationError::UnexpectedDeltaCrl {
                issuer: base.issuer_string(),
            })
        }
        (true, None) => {
            return Err(RevocationError::DeltaCrlMissing {
                issuer: base.issuer_string(),
            })
        }
        (true, Some(delta)) => {
            check_delta(base, delta)?;
            Some(delta)
        }
    };
    // Step 4.
    let serial = cert.serial_bytes();
    let mut latest_temporary: Option<&CrlEntry> = None;
    for entry in [Some(base), delta]
        .into_iter()
        .flatten()
        .filter_map(|crl| crl.entry(serial))
    {
        if let (Some(signed), Some(invalid)) = (signing_time, entry.invalidity_date) {
            if signed < invalid {
                break;
            }
        }
        if entry.is_temporary() {
            if latest_temporary.is_none_or(|latest| latest.revoked_at < entry.revoked_at) {
                latest_temporary = Some(entry);
            }
        } else {
            return Ok(CertStatus::Revoked {
                revoked_at: entry.revoked_at,
                reason: entry.reason,
            });
        }
    }
    // Step 5.
    match latest_temporary {
        Some(entry) if entry.reason == Some(CrlReason::CertificateHold) => {
            Ok(CertStatus::Revoked {
                revoked_at: entry.revoked_at,
                reason: entry.reason,
            })
        }
        _ => Ok(CertStatus::Good),
    }
}

/// Step 3 of [`crl_status`]: `delta` is a delta CRL for `base`.
fn check_delta(base: &Crl, delta: &Crl) -> Result<(), RevocationError> {
    let issuer = || base.issuer_string();
    let Some(delta_base) = delta.delta_base() else {
        return Err(RevocationError::NotADeltaCrl {
            issuer: delta.issuer_string(),
        });
    };
    if delta.issuer_der() != base.issuer_der() {
        return Err(RevocationError::DeltaCrlIssuerMismatch {
            issuer: issuer(),
            delta_issuer: delta.issuer_string(),
        });
    }
    let Some(base_number) = base.crl_number() else {
        return Err(RevocationError::CrlNumberMissing { issuer: issuer() });
    };
    let delta_number = delta.crl_number();
    if !delta_number.is_some_and(|number| cmp_magnitude(number, base_number).is_gt()) {
        return Err(RevocationError::DeltaCrlNotNewer {
            issuer: issuer(),
            base: crl_number_text(base_number),
            delta: delta_number.map_or_else(|| "(none)".to_string(), crl_number_text),
        });
    }
    if cmp_magnitude(delta_base, base_number).is_gt() {
        return Err(RevocationError::DeltaCrlBaseTooNew {
            issuer: issuer(),
            base: crl_number_text(base_number),
            delta_base: crl_number_text(delta_base),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitudes_compare_as_integers() {
        use std::cmp::Ordering;
        assert_eq!(cmp_magnitude(&[0x01, 0x00], &[0xff]), Ordering::Greater);
        assert_eq!(cmp_magnitude(&[0x00, 0x10], &[0x10]), Ordering::Equal);
        assert_eq!(cmp_magnitude(&[0x0f], &[0x10]), Ordering::Less);
        assert_eq!(cmp_magnitude(&[], &[0x01]), Ordering::Less);
    }
}
