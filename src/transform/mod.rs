//! SQL in flight (`--sql`): a SELECT applied to every row a run moves,
//! the way Kinesis Data Analytics applies one to a stream.
//!
//! - The engine is barge's own, on sqlparser's AST ([`plan`] reads and
//!   types the query, [`expr`] evaluates it, [`window`] aggregates).
//!   Apache DataFusion 55.2 was measured first (it pins arrow 59, barge's
//!   major, but brings sqlparser 0.62 beside barge's 0.64): a cold
//!   `cargo build --release -j 1` of a one-line program using it (SQL and
//!   the string, date and unicode functions, no Parquet) had used 778
//!   CPU-seconds (747 user + 31 system, 1.08 GB peak) when it was stopped
//!   past the 12.5 CPU-minutes of barge's heaviest connector, with 158 of
//!   235 crates built and its engine crates (expressions, functions,
//!   physical plan, optimizer, SQL planner) still to come. The surface
//!   `--sql` needs is small, and evaluating on barge's own values keeps
//!   decimals exact and timestamps typed without a trip through Arrow.
//! - The input is one table: a record source's table (FROM `records` or
//!   its name) or one table of a database source. The output table is
//!   named by the FROM alias (`FROM records AS clicks`), else the input
//!   table's name; its columns and types come from the SELECT (a cast
//!   sets the type), so database targets and Parquet get declared types.
//! - Rows failing WHERE are dropped and counted (`barge status`:
//!   filtered). An expression that fails on a row (a bad cast, division
//!   by zero) sets that row aside in the state directory's rejects.jsonl
//!   with the reason under `--on-error log`; otherwise the run stops
//!   naming the record.
//! - A database table's full load ([`rows`], planned by
//!   `task::load_sql`) sends its rows through the same query between each
//!   chunk's reader and writer: the output table is created and written as
//!   a source table of that shape would be, and its changes (with
//!   full-load-and-cdc) then go through [`changes`] into the same table.
//!   A table is a bounded set read in key order, so windows hold every row
//!   (none is late) and are emitted at its end; a windowed full load is not
//!   followed by changes (updates and deletes cannot be windowed).
//! - Changes of a database table map to changes of the output table: an
//!   insert that passes is inserted; an update is an upsert of the new
//!   row when it passes, a delete by key when it no longer does; deletes
//!   go by key. Updates and deletes therefore need the input's key
//!   columns in the SELECT, unchanged (they become the output's key).
//!
//! Windows and restarts ([`changes`]): the open windows are state that a
//! restart must rebuild exactly. The destination only ever saves the
//! position of a transaction that carries rows, and with windows those
//! are the transactions that emit window rows. Before such a transaction
//! leaves the wrapper, the window state after it is written durably to
//! `sql-windows/<sequence>.json` in the state directory, tagged with its
//! position. So whatever position a restart finds at the destination has
//! its exact copy: the restart loads it, reopens the source there, and
//! reads on; copies of transactions the destination never saved (barge
//! died between the two) are deleted, and copies older than what the
//! destination acknowledged are deleted as it does. The source is told to
//! release records only up to the newest copy the destination holds.
//! Records read after that position in the earlier run are read again:
//! late records and rejects the earlier run already set aside are not
//! written twice (the rejects file is checked). Replay is exact when the
//! source replays records in the same order (one partition, shard or
//! file); records of several partitions may interleave differently, which
//! can move a record across the lateness limit.

pub mod changes;
pub mod decimal;
pub mod expr;
pub mod plan;
pub mod query;
pub mod rows;
pub mod window;

use std::sync::Arc;

use crate::cdc::TableInfo;
use crate::model::{Op, Value};
pub use plan::SqlPlan;
pub use query::{Reads, SqlQuery};

/// A `--sql` run: the plan, the table it reads, and the window options.
#[derive(Debug, Clone)]
pub struct SqlRun {
    pub plan: SqlPlan,
    /// The input table as the source delivers it.
    pub input: TableInfo,
    /// `--allowed-lateness`, in microseconds.
    pub lateness_us: i64,
    /// The source ends (a bounded read): open windows are emitted at the end.
    pub bounded: bool,
}

impl SqlRun {
    pub fn new(plan: SqlPlan, input: TableInfo, lateness_us: i64, bounded: bool) -> Arc<SqlRun> {
        Arc::new(SqlRun { plan, input, lateness_us, bounded })
    }

    /// The line that says what the query reads and writes.
    pub fn describe(&self) -> String {
        let out = &self.plan.output;
        let columns: Vec<String> = out.columns.iter().map(|c| format!("{} {}", c.name, plan::type_name(&c.ty))).collect();
        format!("--sql: {} → table {} ({})", self.input.source.name, out.name, columns.join(", "))
    }
}

/// What one input change becomes.
pub enum Mapped {
    Op(Op),
    /// Failed WHERE (or an update that was out and stays out).
    Filtered,
}

/// A row expression's failure, with the output column it was for.
pub struct RowError {
    pub column: Option<String>,
    pub reason: String,
}

impl SqlPlan {
    pub fn passes(&self, row: &expr::Row<'_>) -> Result<bool, RowError> {
        match &self.filter {
            None => Ok(true),
            Some(f) => {
                let v = f.eval_in(row).map_err(|reason| RowError { column: None, reason: format!("WHERE: {reason}") })?;
                Ok(matches!(v, Value::Bool(true)))
            }
        }
    }

    /// The output row of an input row (a projection, not windows).
    pub fn project(&self, row: &expr::Row<'_>) -> Result<Vec<Value>, RowError> {
        let plan::Shape::Rows { columns, output_names } = &self.shape else { return Err(RowError { column: None, reason: "a windowed query has no row projection".into() }) };
        columns
            .iter()
            .zip(output_names)
            .map(|(e, name)| e.eval_in(row).map_err(|reason| RowError { column: Some(name.clone()), reason }))
            .collect()
    }

    /// The output key of an input key (in the input key's order).
    fn output_key(&self, input: &TableInfo, key: &[Value]) -> Option<Vec<Value>> {
        let pk = self.output.primary_key.as_ref()?;
        (pk.columns.len() == input.key.len() && key.len() == input.key.len()).then(|| key.to_vec())
    }

    /// Maps a change of the input table; `key` holds the input's key
    /// column indexes (the output's key is the same columns).
    pub fn map_change(&self, input: &TableInfo, op: &Op) -> Result<Mapped, RowError> {
        let no_key = || RowError {
            column: None,
            reason: format!("updates and deletes of {} need its key ({}) in the SELECT, unchanged, so they find their rows", input.source.name, input.key.iter().map(|&i| input.source.columns[i].name.clone()).collect::<Vec<_>>().join(", ")),
        };
        Ok(match op {
            Op::Insert { row } => {
                let row = expr::Row::new(row);
                if !self.passes(&row)? {
                    return Ok(Mapped::Filtered);
                }
                Mapped::Op(Op::Insert { row: self.project(&row)? })
            }
            Op::Truncate => Mapped::Op(Op::Truncate),
            Op::Delete { key } => {
                if input.key.is_empty() {
                    // A key-less table's delete holds the whole old row.
                    let row = expr::Row::new(key);
                    if !self.passes(&row)? {
                        return Ok(Mapped::Filtered);
                    }
                    return Ok(Mapped::Op(Op::Delete { key: self.project(&row)? }));
                }
                Mapped::Op(Op::Delete { key: self.output_key(input, key).ok_or_else(no_key)? })
            }
            Op::Update { before, after } => {
                let whole = before.as_ref().filter(|b| b.len() == after.len());
                let mut new = Vec::with_capacity(after.len());
                for (i, v) in after.iter().enumerate() {
                    match (v, whole) {
                        (Some(v), _) => new.push(v.clone()),
                        (None, Some(b)) => new.push(b[i].clone()),
                        (None, None) => {
                            return Err(RowError {
                                column: Some(input.source.columns[i].name.clone()),
                                reason: "the update did not carry this column's value (PostgreSQL leaves an unchanged large value out); run ALTER TABLE … REPLICA IDENTITY FULL on the source so updates carry whole rows".into(),
                            })
                        }
                    }
                }
                let new_row = expr::Row::new(&new);
                if self.passes(&new_row)? {
                    let row = self.project(&new_row)?;
                    if self.output.primary_key.is_none() {
                        return Err(no_key());
                    }
                    // The destination upserts by key: a row that was out
                    // of the filter and comes in is inserted.
                    Mapped::Op(Op::Insert { row })
                } else {
                    let old_key: Vec<Value> = input.key.iter().map(|&i| before.as_ref().and_then(|b| b.get(i).cloned()).filter(|v| !v.is_null()).unwrap_or_else(|| new[i].clone())).collect();
                    Mapped::Op(Op::Delete { key: self.output_key(input, &old_key).ok_or_else(no_key)? })
                }
            }
        })
    }
}
