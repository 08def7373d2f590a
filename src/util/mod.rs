//! Small utilities every part of barge shares, written once: retry with
//! backoff, durable file writes, the tokio runtime, and a request to stop.

pub mod fs;
pub mod human;
pub mod interrupt;
pub mod rate;
pub mod retry;
pub mod runtime;
