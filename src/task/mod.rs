//! Data-moving tasks: the orchestration of every command that moves data.
//! The engines stay out of here: what a source does is a
//! [`crate::source::Source`] or [`crate::source::ChangeSource`], what both
//! sides run is a [`crate::db::Db`] method, and a change target is a
//! [`crate::cdc::Destination`]. (The loader files `fullload`, `sinkload`
//! and `unpack_db` still pick their engine readers and writers
//! themselves; they are being merged into one loader.)
//!
//! - Full load into a database: `fullload` (chunks, snapshot readers,
//!   writers), with `target_schema`, `ddl_steps` (create, keys, analyze:
//!   resumable, Ctrl-C cancels on the server), `shape` (what the target
//!   can hold), `objects` (views, routines, triggers) and `run_report`.
//! - Full load into files and streams: `sinkload`.
//! - Change data capture: `cdc`, the replication loop (batching,
//!   acknowledgement only after the destination committed, resume,
//!   reconnects).
//! - State of a run: `state` (per-table and per-chunk progress),
//!   `identity` (the state belongs to these databases).
//! - Choosing and shaping tables: `mapping`, `row_filter`.
//! - Checking a copy: `validate`.
//! - Packs: `pack_source` (a database as a pack source), `unpack_db`,
//!   `unpack_objects`; `measure_db` sizes a database for `barge advise`.

pub mod cdc;
pub mod ddl_steps;
pub mod load;
/// The loader's old name, kept for one step.
pub use load as fullload;
pub mod identity;
pub mod mapping;
pub mod measure_db;
pub mod objects;
pub mod pack_source;
pub mod row_filter;
pub mod run_report;
pub mod shape;
/// The full load into files and streams is the one loader's (kept for one step).
pub mod sinkload {
    pub use super::load::{run_sink as run, SinkSummary};
}
pub mod state;
pub mod target_schema;
pub mod unpack_db;
pub mod unpack_objects;
pub mod validate;
