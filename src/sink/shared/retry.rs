//! Moved to `util::retry` (one backoff for every retry loop); this
//! re-export keeps `sink::retry::backoff` for one step of issue 13.

pub use crate::util::retry::backoff;
