//! Fuzzes `pullgate::pki::revocation::Crl` (the CRL reader, NOTARY.md §7): parsing
//! PEM or DER, the accessors, serial lookups, validation against a fixed issuer and
//! the status of a fixed certificate may not panic or allocate without bound.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use pullgate::pki::revocation::{crl_status, Crl};
use pullgate::pki::Certificate;

/// 2027-01-01: inside the seeds' validity (fuzz/fixtures, made with openssl).
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
}

fuzz_target!(|data: &[u8]| {
    let Ok(crl) = Crl::from_pem_or_der(data) else {
        return;
    };
    let issuer = Certificate::from_der(include_bytes!("../fixtures/ca.der")).expect("fixture");
    let leaf = Certificate::from_der(include_bytes!("../fixtures/leaf.der")).expect("fixture");
    let _ = (crl.issuer_string(), crl.this_update(), crl.next_update());
    let _ = (crl.crl_number(), crl.delta_base(), crl.freshest_crl_urls());
    for serial in [&[][..], &[0], &[1], &[0, 0x80], leaf.serial_bytes()] {
        let _ = crl.entry(serial);
    }
    assert_eq!(crl.is_empty(), crl.len() == 0);
    if crl.validate(&issuer, now()).is_ok() {
        // A CRL that validates is from the issuer and current.
        assert_eq!(crl.issuer_der(), issuer.raw_subject_der());
        assert!(crl.next_update().is_some_and(|n| n > now()));
        let _ = crl_status(&leaf, &crl, None, None);
        let _ = crl_status(&leaf, &crl, Some(&crl), Some(now()));
    }
});
