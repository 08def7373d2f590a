//! Exponential backoff with jitter, for stream calls a throttle refused.

use std::time::Duration;

/// Delay before retry number `attempt` (0-based): 100 ms doubling up to
/// 10 s, each one drawn at random from the upper half of its range
/// ("equal jitter"), so parallel writers spread out instead of retrying
/// in step.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms: u64 = 10_000;
    let base = 100u64.saturating_mul(1u64 << attempt.min(16)).min(cap_ms);
    let half = base / 2;
    Duration::from_millis(half + random_below(half + 1))
}

fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return n / 2;
    }
    u64::from_le_bytes(b) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_capped() {
        for attempt in 0..30 {
            let d = backoff(attempt).as_millis() as u64;
            let base = (100u64 << attempt.min(16)).min(10_000);
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d} ms");
        }
    }
}
