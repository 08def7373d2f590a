//! What several sinks share, once each: records and their ids, message
//! envelopes, buffering, the journal, compression, file formats, retry.

pub mod buffer;
pub mod compress;
pub mod envelope;
pub mod format;
pub mod journal;
pub mod record;
pub mod retry;

// The sink-wide types the shared pieces name as `super::…`.
use super::{Compression, EnvelopeKind, FileFormat, PartitionKey, Scope, SinkTable};
