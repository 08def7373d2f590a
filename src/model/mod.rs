//! The one internal model shared by convert-schema, migrate and pack:
//! schemas ([`schema`]), column types ([`types`]) and values ([`value`]).

pub mod change;
pub mod dialect;
pub mod pattern;
pub mod rows;
pub mod schema;
pub mod types;
pub mod value;

pub use dialect::Dialect;
pub use schema::*;
pub use types::*;
pub use change::{Change, ChangeBatch, Op, Position};
pub use value::{Interval, Value};
pub use rows::{BadValue, RowBatch};
