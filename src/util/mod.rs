//! Small utilities every part of barge shares, written once: retry with
//! backoff, durable file writes and the tokio runtime.

pub mod fs;
pub mod retry;
pub mod runtime;
