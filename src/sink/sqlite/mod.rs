//! The SQLite destination's bulk writer: prepared multi-row INSERTs inside
//! one transaction per chunk (so a chunk is all or nothing, which resuming
//! relies on), or inside the caller's (change capture applies several
//! tables in one).

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::codec::sqlite::{self as codec, Cell};
use crate::db::sqlite::sqlx_error;
use crate::error::{Error, Result};
use crate::model::{Dialect, RowBatch};
use crate::progress::Task;
use crate::transfer::sqlite_ffi as ffi;
use crate::transfer::{BadCells, Refusal, RowPolicy, WriteSpec};

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
pub async fn write(conn: &mut sqlx::SqliteConnection, display: &str, spec: &WriteSpec, rx: mpsc::Receiver<RowBatch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    write_rows(conn, display, spec, rx, policy, progress, true).await
}

/// Writes batches; in a transaction of its own when `own_transaction`,
/// else inside the caller's (change data capture applies several tables
/// in one).
pub async fn write_rows(
    conn: &mut sqlx::SqliteConnection,
    display: &str,
    spec: &WriteSpec,
    mut rx: mpsc::Receiver<RowBatch>,
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
                if let Err(r) = crate::transfer::admit_bad(bad.of_row(ri), &row, &spec.columns) {
                    crate::sink::postgres::refuse(spec, policy, row, r)?;
                    continue;
                }
                let res = policy.prepare(&mut row, &spec.columns, false).and_then(|_| {
                    row.iter().enumerate().map(|(i, v)| codec::encode(v, &spec.columns[i].ty).map_err(|e| (i, e))).collect::<std::result::Result<Vec<Cell>, _>>()
                });
                match res {
                    Ok(cells) => pending.push(cells),
                    Err((col, reason)) if reason.contains("NUMERIC affinity") => {
                        let hint = numeric_cast_hint(spec, col);
                        crate::sink::postgres::refuse(spec, policy, row, Refusal { column: col, reason, hint: Some(hint) })?
                    }
                    Err((col, reason)) => crate::sink::postgres::reject(spec, policy, row, col, reason)?,
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
