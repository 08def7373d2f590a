//! SQLite rows through sqlx: a streaming SELECT out; prepared multi-row
//! INSERTs in, inside one transaction per chunk (so a chunk is all or
//! nothing, which is what resuming relies on).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::sqlite_ffi as ffi;

use super::{BadCells, BadValue, Batch, Mismatch, ReadSpec, RowPolicy, WriteSpec, BATCH_BYTES, BATCH_ROWS};
use crate::codec::sqlite::{self as codec, Cell};
use crate::db::sqlite::sqlx_error;
use crate::error::{Error, Result};
use crate::model::Dialect;
use crate::progress::Task;

/// One batch stepped out of a statement: rows, their bytes, the values
/// that did not decode, and whether the statement is done.
type Stepped = (Vec<Vec<crate::model::Value>>, usize, Vec<BadValue>, bool);

/// Reads `spec.select` and sends decoded batches.
pub async fn read(conn: &mut sqlx::SqliteConnection, display: &str, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_with(conn, display, table, spec, Mismatch::Fail, tx).await
}

/// [`read`], with a choice of what a value that does not decode does.
pub(crate) async fn read_with(conn: &mut sqlx::SqliteConnection, display: &str, table: &str, spec: &ReadSpec, mismatch: Mismatch, tx: mpsc::Sender<Batch>) -> Result<u64> {
    let mut handle = conn.lock_handle().await.map_err(|e| sqlx_error(display, "lock", e))?;
    let db = ffi::Db::new(&mut handle);
    let err = |e: String| Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {}", crate::db::excerpt(&spec.select)), hint: None };
    let mut stmt = db.prepare(&spec.select).map_err(err)?;
    let ncol = stmt.columns();
    let mut total = 0u64;
    loop {
        // Step a batch at a time, then hand it over without blocking.
        let stepped = ffi::blocking(|| -> std::result::Result<Stepped, Error> {
            let mut rows = Vec::with_capacity(BATCH_ROWS);
            let mut bad = Vec::new();
            let mut bytes = 0usize;
            while rows.len() < BATCH_ROWS && bytes < BATCH_BYTES {
                if !stmt.step().map_err(err)? {
                    return Ok((rows, bytes, bad, true));
                }
                let mut out = Vec::with_capacity(ncol);
                for i in 0..ncol {
                    let ty = spec.types.get(i).ok_or_else(|| Error::Table { table: table.into(), row: None, message: "more columns than selected".into(), hint: None })?;
                    let v = match codec::decode(stmt.cell(i), ty) {
                        Ok(v) => v,
                        // The cell again, as SQLite stores it: its text.
                        Err(e) if mismatch == Mismatch::PassAsText => {
                            bad.push(BadValue { row: rows.len(), column: i, reason: e, table: table.to_string() });
                            codec::raw_value(stmt.cell(i))
                        }
                        Err(e) => {
                            return Err(Error::Table {
                                table: table.into(),
                                row: Some(format!("#{}", total + rows.len() as u64 + 1)),
                                message: format!("column {}: {e}", i + 1),
                                hint: Some("the value does not match the column's declared type; `barge migrate` reads such a column as text with --cast TABLE.COLUMN=text".into()),
                            })
                        }
                    };
                    bytes += v.weight();
                    out.push(v);
                }
                rows.push(out);
            }
            Ok((rows, bytes, bad, false))
        });
        let (rows, bytes, bad, done) = stepped?;
        total += rows.len() as u64;
        if !rows.is_empty() && tx.send(Batch { rows, bytes, bad }).await.is_err() {
            return Ok(total);
        }
        if done {
            return Ok(total);
        }
    }
}

/// Rows per INSERT: as many as fit under SQLite's bound-parameter limit.
fn rows_per_statement(columns: usize) -> usize {
    (32_000 / columns.max(1)).clamp(1, 500)
}

fn insert_sql(spec: &WriteSpec, rows: usize) -> String {
    let cols: Vec<String> = spec.columns.iter().map(|c| crate::schema::naming::quote_ident(Dialect::Sqlite, &c.name)).collect();
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    format!("INSERT INTO {} ({}) VALUES {}", spec.table, cols.join(", "), vec![one; rows].join(","))
}

/// Writes batches in one transaction. Returns rows written.
pub async fn write(conn: &mut sqlx::SqliteConnection, display: &str, spec: &WriteSpec, rx: mpsc::Receiver<Batch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    write_rows(conn, display, spec, rx, policy, progress, true).await
}

/// Writes batches; in a transaction of its own when `own_transaction`,
/// else inside the caller's (change data capture applies several tables
/// in one).
pub async fn write_rows(
    conn: &mut sqlx::SqliteConnection,
    display: &str,
    spec: &WriteSpec,
    mut rx: mpsc::Receiver<Batch>,
    policy: &RowPolicy,
    progress: &Arc<dyn Task>,
    own_transaction: bool,
) -> Result<u64> {
    let per = rows_per_statement(spec.columns.len());
    let full_sql = insert_sql(spec, per);
    let mut handle = conn.lock_handle().await.map_err(|e| sqlx_error(display, "lock", e))?;
    let db = ffi::Db::new(&mut handle);
    let err = |sql: &str, e: String| Error::Endpoint { endpoint: display.to_string(), message: format!("{e}\n  statement: {}", crate::db::excerpt(sql)), hint: None };
    if own_transaction {
        db.exec("BEGIN").map_err(|e| err("BEGIN", e))?;
    }
    let result = async {
        let mut full = db.prepare(&full_sql).map_err(|e| err(&full_sql, e))?;
        let mut written = 0u64;
        let mut pending: Vec<Vec<Cell>> = Vec::with_capacity(per);
        while let Some(batch) = rx.recv().await {
            let n = batch.rows.len() as u64;
            let mut bad = BadCells::new(&batch.bad);
            for (ri, mut row) in batch.rows.into_iter().enumerate() {
                if let Err(r) = super::admit_bad(bad.of_row(ri), &row, &spec.columns) {
                    super::postgres::refuse(spec, policy, row, r)?;
                    continue;
                }
                let res = policy.prepare(&mut row, &spec.columns, false).and_then(|_| {
                    row.iter().enumerate().map(|(i, v)| codec::encode(v, &spec.columns[i].ty).map_err(|e| (i, e))).collect::<std::result::Result<Vec<Cell>, _>>()
                });
                match res {
                    Ok(cells) => pending.push(cells),
                    Err((col, reason)) if reason.contains("NUMERIC affinity") => {
                        let hint = numeric_cast_hint(spec, col);
                        super::postgres::refuse(spec, policy, row, super::Refusal { column: col, reason, hint: Some(hint) })?
                    }
                    Err((col, reason)) => super::postgres::reject(spec, policy, row, col, reason)?,
                }
            }
            let full_rows = pending.len() / per * per;
            if full_rows > 0 {
                let chunk: Vec<Vec<Cell>> = pending.drain(..full_rows).collect();
                written += ffi::blocking(|| run_insert(&mut full, &chunk, per)).map_err(|e| err(&full_sql, e))?;
            }
            policy.counters.add(0, batch.bytes as u64);
            progress.inc(n);
        }
        if !pending.is_empty() {
            let sql = insert_sql(spec, pending.len());
            let mut last = db.prepare(&sql).map_err(|e| err(&sql, e))?;
            let n = pending.len();
            written += ffi::blocking(|| run_insert(&mut last, &pending, n)).map_err(|e| err(&sql, e))?;
        }
        Ok::<u64, Error>(written)
    }
    .await;
    match result {
        Ok(written) => {
            if own_transaction {
                db.exec("COMMIT").map_err(|e| err("COMMIT", e))?;
            }
            policy.counters.add(written, 0);
            Ok(written)
        }
        Err(e) => {
            if own_transaction {
                let _ = db.exec("ROLLBACK");
            }
            Err(e)
        }
    }
}

/// Binds `rows` (each `per` rows to one execution of `stmt`) and runs them.
fn run_insert(stmt: &mut ffi::Stmt<'_>, rows: &[Vec<Cell>], per: usize) -> std::result::Result<u64, String> {
    let mut done = 0u64;
    for group in rows.chunks(per) {
        let mut p = 1;
        for row in group {
            for c in row {
                stmt.bind(p, c)?;
                p += 1;
            }
        }
        stmt.step()?;
        stmt.reset();
        done += group.len() as u64;
    }
    Ok(done)
}

/// The `--cast` that keeps a decimal SQLite's NUMERIC affinity would round:
/// the column as text, every digit kept.
fn numeric_cast_hint(spec: &WriteSpec, col: usize) -> String {
    let table = spec.table.rsplit('.').next().unwrap_or(&spec.table).trim_matches('"').replace("\"\"", "\"");
    let column = spec.columns.get(col).map(|c| c.source.as_str()).unwrap_or("COLUMN");
    let cast = crate::pack::packer::shell_quote(&format!("{table}.{column}=text"));
    format!("keep every digit as text with --cast {cast}, or set such rows aside with --on-error log")
}
