//! Data-moving tasks: the orchestration of every command that moves data.
//! The engines stay out of here: what a source does is a
//! [`crate::source::Source`] or [`crate::source::ChangeSource`], what both
//! sides run is a [`crate::db::Db`] method, and every target is a
//! [`crate::sink::Destination`].
//!
//! - Full load: `load`, the one loader (chunks, snapshot readers, a
//!   destination's `write_rows`) for databases, files and streams, with
//!   `target_schema`, `ddl_steps` (create, keys, analyze: resumable,
//!   Ctrl-C cancels on the server), `shape` (what the target can hold),
//!   `objects` (views, routines, triggers) and `run_report`.
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
pub(crate) mod load_sql;
pub mod identity;
pub mod mapping;
pub mod measure_db;
pub mod objects;
pub mod pack_source;
pub mod row_filter;
pub mod run_report;
pub mod shape;
pub mod state;
pub mod target_schema;
pub mod unpack_db;
pub mod unpack_objects;
pub mod validate;
