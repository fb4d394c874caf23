//! The one clock verification reads. Everything that decides "is this still
//! valid" (the engine's checks, the gate's verdict lifetimes and tag labels) asks
//! a [`Clock`], so tests set the time instead of waiting for it.

use std::time::SystemTime;

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
        SystemTime::now()
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
