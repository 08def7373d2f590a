//! What several sinks share, once each: records and their ids, message
//! envelopes, buffering, the journal, compression, file formats, retry,
//! batched calls to streams, and AWS request signing (SigV4).

pub mod buffer;
pub mod calls;
pub mod compress;
pub mod envelope;
pub mod format;
pub mod journal;
pub mod record;
pub mod retry;
#[cfg(any(feature = "kinesis", feature = "sqs"))]
pub mod aws_json;
#[cfg(any(feature = "kinesis", feature = "sqs"))]
pub mod sigv4;

// The sink-wide types the shared pieces name as `super::…`.
use super::{Compression, EnvelopeKind, FileFormat, PartitionKey, Scope, SinkTable};
