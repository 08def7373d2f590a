//! What the packer needs from a database, as a synchronous interface: the
//! pack library has no async runtime and no database drivers. The CLI
//! implements it over barge's readers (`task::pack_source`); tests can
//! implement it over anything.

use super::catalog::DatabaseInfo;
use crate::error::Result;

/// One table to pack, known before any row is read.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The name the catalog keys the table by (`schema.table`, or `table`).
    pub name: String,
    /// The table in barge's schema IR (`model::Table` as JSON).
    pub schema: serde_json::Value,
    /// From the source's statistics, for the progress bar's total.
    pub estimated_rows: u64,
    pub estimated_bytes: u64,
}

/// The bytes of one table, in [`super::rows::ENCODING`].
pub trait TableStream {
    /// Fills the front of `buf`; returns 0 once the stream has ended.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize>;
    /// Rows encoded so far.
    fn rows(&self) -> u64;
}

pub trait TableSource {
    /// The source as the journal and catalog record it (a redacted URL).
    fn label(&self) -> String;
    /// The tables to pack, in pack order.
    fn tables(&self) -> &[TablePlan];
    /// Called once for a new pack (never on resume), before any row is
    /// read: sets up change capture and describes the database.
    fn begin(&mut self) -> Result<DatabaseInfo>;
    /// Starts reading `names` in this order, in one snapshot where the
    /// engine allows it.
    fn start(&mut self, names: &[String]) -> Result<()>;
    /// The next table given to [`TableSource::start`]; `name` must match it.
    fn open(&mut self, name: &str) -> Result<Box<dyn TableStream + '_>>;
}
