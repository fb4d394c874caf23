//! Fuzzes `pullgate::verdict::Recorded::from_label`, which reads the verdict labels
//! on containerd's image records back (issue 12): it must never panic, and what it
//! accepts must be a verdict pullgate could have written, which reads back the same
//! after being written again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullgate::verdict::Recorded;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(verdict) = Recorded::from_label(text) {
        assert!(matches!(
            verdict.outcome.as_str(),
            "verified" | "allowed-with-failures" | "skipped"
        ));
        assert!(!verdict.statement.is_empty());
        let again = Recorded::from_label(&verdict.to_label()).expect("a written label reads back");
        assert_eq!(again.outcome, verdict.outcome);
        assert_eq!(again.digest, verdict.digest);
        assert_eq!(again.statement, verdict.statement);
        assert_eq!(again.valid_until.is_some(), verdict.valid_until.is_some());
    }
});
