//! Latency samples and a progress line.

use std::io::Write;
use std::time::{Duration, Instant};

/// Latencies in microseconds.
#[derive(Default, Clone)]
pub struct Samples(pub Vec<u64>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
    /// The p-th percentile in milliseconds (nearest rank).
    pub fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut v = self.0.clone();
        v.sort_unstable();
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1] as f64 / 1000.0
    }
}

/// A one-line progress bar on stderr: `label [#####.....] done/total rate/s ETA`.
pub struct Progress {
    label: String,
    total: u64,
    start: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            label: label.to_owned(),
            total: total.max(1),
            start: now,
            last: now - Duration::from_secs(1),
        }
    }

    pub fn update(&mut self, done: u64) {
        let now = Instant::now();
        if now.duration_since(self.last) < Duration::from_millis(200) && done < self.total {
            return;
        }
        self.last = now;
        let frac = (done as f64 / self.total as f64).min(1.0);
        let filled = (frac * 30.0) as usize;
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-9);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 {
            (self.total.saturating_sub(done)) as f64 / rate
        } else {
            0.0
        };
        eprint!(
            "\r{:<22} [{}{}] {done}/{} {:>9.0}/s  ETA {:>4.0}s ",
            self.label,
            "#".repeat(filled),
            ".".repeat(30 - filled),
            self.total,
            rate,
            eta
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self, done: u64) {
        self.last = Instant::now() - Duration::from_secs(1);
        self.update(done);
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s = Samples((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(s.pct(50.0), 50.0);
        assert_eq!(s.pct(99.0), 99.0);
        assert_eq!(s.pct(100.0), 100.0);
        assert!(Samples::default().pct(50.0).is_nan());
    }
}
