//! Change data capture: sources that read a log into [`ChangeBatch`]es,
//! and destinations that make batches durable before the source position
//! moves. Full loads to object storage and streams use the same
//! destinations, with inserts at [`Position::Snapshot`].

pub mod apply;
pub mod capture;
pub mod copy;
pub mod destination;
pub mod evolve;
pub mod mysql;
pub mod mysql_ddl;
pub mod pgoutput;
pub mod postgres;
pub mod schema_state;
pub mod source;
pub mod sqlite;

pub use crate::model::change::{Change, ChangeBatch, Op, Position};
pub use capture::{Capture, CaptureOptions};
pub use destination::{Destination, TableInfo, Tables};
