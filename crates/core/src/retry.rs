//! When to try an outbound send again: exponential backoff with jitter, a provider's own
//! "come back later" hint (HTTP 429 `Retry-After`, Meta's `estimated_time_to_regain_access`),
//! and a horizon after which we give up. Pure: the random jitter is an argument.

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry waits about this long; each further one doubles it.
    pub base_ms: i64,
    /// No single wait is longer than this (a provider's own hint may be).
    pub max_ms: i64,
    /// Give up when the next try would be later than this long after the message was queued.
    pub give_up_after_ms: i64,
}

/// The next try after `attempts` failed tries, or `None` to give up.
/// `jitter` in `[0, 1)` spreads retries ("equal jitter": between half and all of the backoff).
/// A provider `hint_ms` is a floor: we never come back earlier than the provider asked.
pub fn next_attempt(
    p: &RetryPolicy,
    attempts: u32,
    queued_at: Timestamp,
    now: Timestamp,
    hint_ms: Option<i64>,
    jitter: f64,
) -> Option<Timestamp> {
    let exp = attempts.saturating_sub(1).min(30);
    let backoff = p.base_ms.saturating_mul(1_i64 << exp).min(p.max_ms).max(0);
    let jitter = jitter.clamp(0.0, 1.0);
    let half = backoff / 2;
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let wait = half + ((backoff - half) as f64 * jitter) as i64;
    let wait = wait.max(hint_ms.unwrap_or(0)).max(0);
    let at = now.plus_millis(wait);
    (at <= queued_at.plus_millis(p.give_up_after_ms)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy {
        base_ms: 1_000,
        max_ms: 60_000,
        give_up_after_ms: 3_600_000,
    };

    #[test]
    fn doubles_with_jitter_and_caps() {
        let t = Timestamp(0);
        let wait = |n, j| next_attempt(&P, n, t, t, None, j).map(|x| x.millis());
        assert_eq!(wait(1, 0.0), Some(500));
        assert_eq!(wait(1, 0.999_999), Some(999));
        assert_eq!(wait(2, 0.0), Some(1_000));
        assert_eq!(wait(3, 0.5), Some(3_000));
        assert_eq!(wait(20, 0.0), Some(30_000));
        assert_eq!(wait(200, 1.0), Some(60_000));
    }

    #[test]
    fn honours_the_provider_hint_and_gives_up_after_the_horizon() {
        let t = Timestamp(0);
        assert_eq!(
            next_attempt(&P, 1, t, t, Some(120_000), 0.0),
            Some(Timestamp(120_000))
        );
        // The hint beyond the horizon means: give up.
        assert_eq!(next_attempt(&P, 1, t, t, Some(3_600_001), 0.0), None);
        assert_eq!(
            next_attempt(&P, 1, t, Timestamp(3_599_500), None, 0.0),
            Some(Timestamp(3_600_000))
        );
        assert_eq!(
            next_attempt(&P, 1, t, Timestamp(3_599_501), None, 0.0),
            None
        );
    }
}
