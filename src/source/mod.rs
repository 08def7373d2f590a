//! Sources: what barge reads from, one folder per engine.

pub mod changes;
pub mod mysql;
pub mod postgres;
pub mod sqlite;
