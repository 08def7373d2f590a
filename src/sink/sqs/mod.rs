//! `sqs://queue?region=&endpoint=`: changes and rows as SQS messages. A
//! queue whose name ends in `.fifo` is a FIFO queue.
//!
//! - body: the stream envelope the Kinesis and Kafka targets write (DMS's,
//!   or Debezium's with `--envelope debezium`); message attributes
//!   `barge-table` (schema.table), `barge-operation` (load, insert,
//!   update, delete, truncate-table) and `barge-record-id` (the
//!   deterministic id, for consumers of a standard queue to drop repeats);
//! - calls: SendMessageBatch, within its limits ([`batch`]) and the
//!   queue's `MaximumMessageSize`, read from the queue when it opens;
//! - FIFO: `MessageGroupId` is the table and the row's key (`--partition-key
//!   schema-table`: the table; `--group-by COLUMN`: that column's value),
//!   `MessageDeduplicationId` the record id, so what a rerun sends again
//!   after a crash is dropped by SQS itself (within its 5-minute window);
//!   a group has one message in flight at a time, so its order survives
//!   retries;
//! - a message over the queue's maximum goes to S3 (`--payload-bucket
//!   s3://bucket/prefix`) and the message carries the AWS Extended Client
//!   Library's pointer to it ([`pointer`]), which that library's
//!   consumers and barge's SQS source follow;
//! - refused entries and throttled calls are retried with backoff until
//!   `--retry-timeout`; the source position moves once SQS accepted every
//!   message of a batch ([`Destination::committed`]).

pub mod pointer;
#[cfg(feature = "sqs")]
pub mod api;
#[cfg(feature = "sqs")]
mod batch;

use std::sync::Arc;

use super::{BoxFuture, Capabilities, Connector, Destination, Scope, SinkOptions, SinkStats};
use crate::endpoint::{EngineKind, Endpoint, Scheme};
use crate::error::{Error, Result};

pub const CONNECTOR: Connector = Connector {
    scheme: Scheme { names: &["sqs"], kind: EngineKind::Sink, example: "sqs://queue?region=us-east-1", options: &["region", "endpoint"], parse },
    open,
    // A standard queue keeps no order; a FIFO queue's instance says it does.
    capabilities: Capabilities::NONE,
    flags: &["envelope", "partition-key", "group-by", "payload-bucket", "cdc-inserts-only", "retry-timeout"],
};

fn parse(input: &str) -> Result<Endpoint> {
    crate::endpoint::parse_plain(input, "sqs", &["region", "endpoint"])
}

fn open<'a>(endpoint: &'a Endpoint, opts: &'a SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> BoxFuture<'a, Result<Box<dyn Destination>>> {
    Box::pin(async move {
        match endpoint {
            #[cfg(feature = "sqs")]
            Endpoint::Sink(e) => Ok(Box::new(sink::SqsSink::open(e, opts.clone(), scope, stats).await?) as Box<dyn Destination>),
            other => {
                let _ = (opts, scope, stats);
                Err(Error::Usage(format!("this barge was built without the `sqs` feature, so it cannot write to {other}")))
            }
        }
    })
}

#[cfg(feature = "sqs")]
mod sink;
