//! Fuzzes `pullgate::envelope::parse` as COSE: it must never panic, never
//! allocate without bound (run with -rss_limit_mb=2048), and anything it accepts
//! must satisfy the invariants the verifier relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullgate::envelope::{parse, SigningScheme, COSE_MEDIA_TYPE};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = parse(COSE_MEDIA_TYPE, data) {
        assert!(!envelope.certificate_chain.is_empty());
        assert!(!envelope.signature.is_empty());
        assert!(!envelope.signed_bytes.is_empty());
        assert!(envelope.extended_attributes.iter().all(|a| !a.critical));
        let time = match envelope.signing_scheme {
            SigningScheme::X509 => envelope.signing_time,
            SigningScheme::X509SigningAuthority => envelope.authentic_signing_time,
        };
        let time = time.expect("the scheme's signing time is present");
        if let Some(expiry) = envelope.expiry {
            assert!(expiry > time);
        }
    }
});
