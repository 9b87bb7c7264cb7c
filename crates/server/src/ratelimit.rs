//! Token-bucket rate limits keyed by string (client address, visitor, email), on the injected clock.

use crate::clock::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    /// Bucket size: how many requests may come at once.
    burst: f64,
    /// Tokens added per millisecond.
    refill_per_ms: f64,
    buckets: Mutex<HashMap<String, (f64, i64)>>,
}

impl RateLimiter {
    /// `per_minute` requests per minute, in bursts of up to `per_minute`.
    pub fn per_minute(clock: Arc<dyn Clock>, per_minute: u32) -> Self {
        let n = f64::from(per_minute.max(1));
        Self {
            clock,
            burst: n,
            refill_per_ms: n / 60_000.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = self.clock.now().millis();
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(());
        };
        if map.len() > 100_000 {
            // Forget buckets that have filled up again: they hold no information.
            let (burst, rate) = (self.burst, self.refill_per_ms);
            map.retain(|_, (tokens, at)| *tokens + (now - *at) as f64 * rate < burst);
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + (now - *at).max(0) as f64 * self.refill_per_ms).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.refill_per_ms / 1000.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use switchboard_core::Timestamp;

    #[test]
    fn bucket_empties_and_refills_on_the_clock() {
        let clock = ManualClock::new(Timestamp(0));
        let rl = RateLimiter::per_minute(Arc::new(clock.clone()), 3);
        assert!(rl.check("a").is_ok());
        assert!(rl.check("a").is_ok());
        assert!(rl.check("a").is_ok());
        assert_eq!(rl.check("a"), Err(20));
        assert!(rl.check("b").is_ok(), "keys are independent");
        clock.advance_millis(20_000);
        assert!(rl.check("a").is_ok());
        assert!(rl.check("a").is_err());
    }
}
