//! Latency samples and a progress line.

use std::io::{IsTerminal, Write};
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

/// A one-line progress bar on stderr: `label [#####.....] done/total rate/s ETA`, redrawn in place
/// at most five times a second on a terminal; in a log (CI) a new line every ten seconds.
pub struct Progress {
    label: String,
    total: u64,
    start: Instant,
    last: Instant,
    drawn: Option<u64>,
    tty: bool,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            label: label.to_owned(),
            total: total.max(1),
            start: now,
            last: now,
            drawn: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&mut self, done: u64) {
        let now = Instant::now();
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.drawn == Some(done)
            || (now.duration_since(self.last) < every && self.drawn.is_some())
        {
            return;
        }
        self.draw(now, done);
    }

    fn draw(&mut self, now: Instant, done: u64) {
        self.last = now;
        self.drawn = Some(done);
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
            "{}{:<22} [{}{}] {done}/{} {:>9.0}/s  ETA {:>4.0}s ",
            if self.tty { "\r" } else { "" },
            self.label,
            "#".repeat(filled),
            ".".repeat(30 - filled),
            self.total,
            rate,
            eta
        );
        if !self.tty {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }

    /// Draws the final state once and ends the line.
    pub fn finish(&mut self, done: u64) {
        if self.drawn != Some(done) {
            self.draw(Instant::now(), done);
        }
        if self.tty {
            eprintln!();
        }
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
