//! Data-moving tasks: the full load, its resumable state, table mappings
//! and validation.

pub mod cdc;
pub mod fullload;
pub mod mapping;
pub mod state;
pub mod validate;
