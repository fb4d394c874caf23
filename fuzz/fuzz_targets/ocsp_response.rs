//! Fuzzes `pullgate::pki::revocation::judge_ocsp_response` (RFC 6960 responses,
//! NOTARY.md §7) for a fixed certificate and issuer: it may not panic or allocate
//! without bound, and an answer it accepts must be current.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use pullgate::pki::revocation::judge_ocsp_response;
use pullgate::pki::Certificate;

/// 2027-01-01: inside the seeds' validity (fuzz/fixtures, made with openssl).
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
}

fuzz_target!(|data: &[u8]| {
    let issuer = Certificate::from_der(include_bytes!("../fixtures/ca.der")).expect("fixture");
    let leaf = Certificate::from_der(include_bytes!("../fixtures/leaf.der")).expect("fixture");
    for signing_time in [None, Some(now())] {
        if let Ok(answer) = judge_ocsp_response(data, &leaf, &issuer, now(), signing_time) {
            assert!(answer.next_update > now());
        }
    }
});
