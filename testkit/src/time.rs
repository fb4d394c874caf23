//! The harness's clock. pullgate's own code reads the time only through
//! `pullgate::clock` (the root `clippy.toml` disallows `SystemTime::now`,
//! `Instant::now` and `thread::sleep` elsewhere); tests and benches read it here,
//! where the harness needs real time: certificates valid from now, a process
//! polled until it is up, a bench's stopwatch.

use std::time::{Duration, Instant, SystemTime};

/// The wall clock now (certificate validity, signing times, RFC 3339 stamps).
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// A monotonic reading, for a bench's stopwatch or a poll's time limit.
pub fn instant() -> Instant {
    Instant::now()
}

/// Blocks the calling (non-async) thread for `duration`: the short pause between
/// two polls of a process or socket the harness waits for.
pub fn pause(duration: Duration) {
    std::thread::sleep(duration)
}
