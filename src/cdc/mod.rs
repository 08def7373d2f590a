//! Change data capture: beginning a capture on the source (`capture`),
//! copying one table while changes flow (`copy`), following source DDL
//! (`evolve`, `schema_state`), and the destinations that make
//! [`ChangeBatch`]es durable before the source position moves
//! (`destination`, `apply`). The engines' change streams are in
//! [`crate::source`]; the replication loop is [`crate::task::cdc`]. Full
//! loads to object storage and streams use the same destinations, with
//! inserts at [`Position::Snapshot`].

pub mod apply;
pub mod capture;
pub mod copy;
pub mod destination;
pub mod evolve;
pub mod schema_state;

pub use crate::model::change::{Change, ChangeBatch, Op, Position};
pub use capture::{Capture, CaptureOptions};
pub use destination::{Destination, TableInfo, Tables};

// The engine change sources moved to `crate::source`; these names keep
// the old paths working for one step.
pub use crate::source::changes as source;
pub use crate::source::mysql::binlog as mysql;
pub use crate::source::mysql::binlog_ddl as mysql_ddl;
pub use crate::source::postgres::pgoutput;
pub use crate::source::postgres::wal as postgres;
pub use crate::source::sqlite::changes as sqlite;
