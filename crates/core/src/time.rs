//! Time as integer milliseconds since the Unix epoch (UTC), the unit the store keeps.

use serde::{Deserialize, Serialize};

/// A point in time, milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
    pub const fn plus_secs(self, s: i64) -> Self {
        self.plus_millis(s.saturating_mul(1000))
    }
    pub const fn plus_minutes(self, m: i64) -> Self {
        self.plus_secs(m.saturating_mul(60))
    }
    pub const fn plus_hours(self, h: i64) -> Self {
        self.plus_minutes(h.saturating_mul(60))
    }
    pub const fn plus_days(self, d: i64) -> Self {
        self.plus_hours(d.saturating_mul(24))
    }
    /// A provider's timestamp can run ahead of ours (clock skew); never trust a future time.
    pub fn clamp_to(self, now: Timestamp) -> Self {
        if self > now { now } else { self }
    }
}

/// Where "now" comes from. The core never reads the wall clock: callers pass `now`, and services
/// take a `Clock` (implementations live in the server's clock module, so tests can control time).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}
