//! The one place pullgate reads the time. Everything that decides "is this still
//! valid" (the engine's checks, the gate's verdict lifetimes and tag labels) asks
//! a [`Clock`], so tests set the time instead of waiting for it; deadlines,
//! timeouts and durations read [`monotonic_now`], which is tokio's clock (paused
//! and advanced by tests that start paused). `clippy.toml` disallows
//! `SystemTime::now`, `Instant::now` and `thread::sleep` everywhere else.
#![allow(clippy::disallowed_methods)]

use std::time::{Instant, SystemTime};

/// Monotonic time for deadlines and durations: tokio's clock, so a test runtime
/// with a paused clock controls it (outside a runtime it is the system's).
pub fn monotonic_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The system's wall clock, for the few readers that are not verification (the
/// time a client connected, `Retry-After` dates). Verification takes a [`Clock`].
pub fn wall_now() -> SystemTime {
    SystemTime::now()
}

/// The verification time source.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        wall_now()
    }
}

/// A clock that always reads the same time (`pullgate verify` at a given time,
/// and tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}
