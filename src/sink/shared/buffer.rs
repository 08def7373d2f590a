//! Firehose-style buffering: a buffer is delivered when it holds
//! `--buffer-size` bytes or has been open `--buffer-interval`, whichever
//! comes first. Interval checks happen when changes arrive, and on the
//! destination's `tick`, which the CDC loop calls about once a second, so
//! a quiet table's last changes still go out.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub bytes: usize,
    pub interval: Duration,
}

impl Thresholds {
    /// Is a buffer of `bytes`, opened at `opened`, due?
    pub fn due(&self, bytes: usize, opened: Instant, now: Instant) -> bool {
        bytes >= self.bytes || now.duration_since(opened) >= self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_or_interval_whichever_first() {
        let t = Thresholds { bytes: 100, interval: Duration::from_secs(60) };
        let start = Instant::now();
        assert!(!t.due(99, start, start + Duration::from_secs(59)));
        assert!(t.due(100, start, start));
        assert!(t.due(1, start, start + Duration::from_secs(60)));
    }
}
