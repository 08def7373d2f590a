//! `--max-rate`: a cap on the bytes a process reads from the source, so
//! a migration (or each of many workers) leaves the source room for its
//! own users. A token bucket (the `governor` crate) of kibibytes that
//! refills at the cap and holds one second's worth.

use std::num::NonZeroU32;
use std::sync::OnceLock;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::error::{Error, Result};

/// The source's bucket and its size in KiB (one second at the cap).
static SOURCE: OnceLock<(DefaultDirectRateLimiter, u32)> = OnceLock::new();

/// Caps this process's source reads at `mb_per_s` megabytes (10^6 bytes)
/// a second.
pub fn limit_source(mb_per_s: f64) -> Result<()> {
    if !(mb_per_s.is_finite() && mb_per_s >= 0.01) {
        return Err(Error::usage(format!("--max-rate {mb_per_s}: give megabytes a second, 0.01 or more")));
    }
    let kib = ((mb_per_s * 1e6 / 1024.0).round() as u64).clamp(1, u32::MAX as u64) as u32;
    let quota = Quota::per_second(NonZeroU32::new(kib).expect("clamped to at least 1"));
    let _ = SOURCE.set((RateLimiter::direct(quota), kib));
    Ok(())
}

/// Whether a cap is set (callers skip their bookkeeping when not).
pub fn limited() -> bool {
    SOURCE.get().is_some()
}

/// Waits until `bytes` more may be read under the cap (at once when
/// there is none).
pub async fn take(bytes: usize) {
    let Some((limiter, burst)) = SOURCE.get() else { return };
    let mut kib = bytes.div_ceil(1024) as u64;
    // The bucket holds one second: a larger read waits for it in pieces.
    while kib > 0 {
        let n = kib.min(*burst as u64) as u32;
        let _ = limiter.until_n_ready(NonZeroU32::new(n).expect("n > 0")).await;
        kib -= n as u64;
    }
}
