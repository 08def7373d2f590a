//! Change data capture's shared model: what a destination is told about
//! the tables whose changes it makes durable (`destination`), and
//! following source DDL (`evolve`, `schema_state`). Beginning a capture,
//! copying a table while changes flow and the engines' change streams are
//! in [`crate::source`]; the destinations in [`crate::sink`]; the
//! replication loop is [`crate::task::cdc`]. Full
//! loads to object storage and streams use the same destinations, with
//! inserts at [`Position::Snapshot`].

pub mod destination;
pub mod evolve;
pub mod schema_state;

pub use crate::model::change::{Change, ChangeBatch, Op, Position};
pub use destination::{TableInfo, Tables};

