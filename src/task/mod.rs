//! Data-moving tasks: the full load, its resumable state, table mappings
//! and validation; packing a database and unpacking it into one; unpacking
//! a tree into an object store.

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
