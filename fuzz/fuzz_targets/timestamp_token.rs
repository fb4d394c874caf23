//! Fuzzes `pullgate::pki::timestamp::TimestampToken::parse` and `verify`: neither may
//! panic or allocate without bound (run with -rss_limit_mb=2048), and a token that
//! verifies must hand the caller what NOTARY.md §6 needs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullgate::pki::timestamp::TimestampToken;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = TimestampToken::parse(data) {
        if let Ok(stamp) = token.verify(b"x") {
            assert!(!stamp.signer_chain_der.is_empty());
            let _ = stamp.within(stamp.gen_time, stamp.gen_time);
        }
    }
});
