//! Data-moving tasks: the full load, its resumable state, table mappings
//! and validation.

pub mod fullload;
pub mod mapping;
pub mod sinkload;
pub mod state;
pub mod validate;
