//! Rows in flight: the one batch type of every row path (a full load, a
//! pack's unpack, the staging of change capture into a database), from
//! a reader to a [`crate::sink::Destination`]'s `write_rows`.

use super::Value;

/// Rows in flight between a reader and a writer.
pub struct RowBatch {
    pub rows: Vec<Vec<Value>>,
    pub bytes: usize,
    /// Values a tolerant reader could not read as their column's declared
    /// type (see [`crate::transfer::Mismatch::PassAsText`]), by row index
    /// in `rows`, in order. The value itself is in the row as its raw text.
    pub bad: Vec<BadValue>,
}

impl RowBatch {
    pub fn new(rows: Vec<Vec<Value>>, bytes: usize) -> RowBatch {
        RowBatch { rows, bytes, bad: Vec::new() }
    }
}

/// A source value that does not match its column's declared type (SQLite
/// stores whatever it is given: `'true'` in a SMALLINT column).
#[derive(Debug, Clone)]
pub struct BadValue {
    /// Index of the row in its batch.
    pub row: usize,
    pub column: usize,
    /// What the decoder said, quoting the value.
    pub reason: String,
    /// The source table, as the reader was given it.
    pub table: String,
}
