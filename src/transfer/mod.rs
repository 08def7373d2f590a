//! Moving rows: one reader per source engine producing batches of
//! [`Value`] rows ([`crate::model::RowBatch`]), joined by a bounded
//! channel to a destination's `write_rows` ([`crate::sink`], where the
//! engines' bulk writers live), so memory stays flat whatever the table
//! size. Here too: the row policy every writer applies (`--on-error`,
//! zero dates, rejects, the checks that name a refused row).

pub mod mysql;
pub mod postgres;
pub mod sqlite;
pub(crate) mod sqlite_ffi;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::Result;
use crate::model::{ColumnType, Value};
use crate::schema::target::TargetColumn;

/// The batch type is the model's; the old name stays for the readers.
pub use crate::model::rows::{BadValue, RowBatch as Batch};

/// What a reader does with a value that its column's declared type cannot
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Stop reading with an error (readers whose consumers cannot refuse
    /// single rows: packs, change capture).
    Fail,
    /// Pass the value on as its raw text and list it in [`Batch::bad`], so
    /// the writer decides: a text target column takes it as is (what
    /// `--cast col=text` asks for), any other refuses the row by table,
    /// key and column under `--on-error`.
    PassAsText,
}

/// Rows per batch and bytes per batch, whichever fills first.
pub const BATCH_ROWS: usize = 4096;
pub const BATCH_BYTES: usize = 4 << 20;

/// Batches buffered between reader and writer: the backpressure bound.
pub const CHANNEL_DEPTH: usize = 4;

/// What to read: a SELECT in the source's dialect, and the model type of
/// each selected column, in order.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub select: String,
    pub types: Vec<ColumnType>,
}

/// Reads `spec.select` on whichever engine `db` is, sending batches to
/// `tx`. Returns rows read.
pub async fn read_from(db: &mut Db, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_session(db).await?;
    read_with(db, table, spec, Mismatch::Fail, tx).await
}

/// Like [`read_from`], for a consumer that refuses single rows itself (a
/// database writer, validation): a value that does not match its declared
/// type comes through as text and is listed in [`Batch::bad`].
pub async fn read_tolerant(db: &mut Db, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_session(db).await?;
    read_with(db, table, spec, Mismatch::PassAsText, tx).await
}

/// Like [`read_from`], on a connection whose session is already set up
/// for reading (a CDC destination's, set once when it opened): no
/// statement of its own before the query.
pub async fn read_in_session(db: &mut Db, table: &str, spec: &ReadSpec, tx: mpsc::Sender<Batch>) -> Result<u64> {
    read_with(db, table, spec, Mismatch::Fail, tx).await
}

/// A PostgreSQL reader first gets the session its text decoders rely on.
async fn read_session(db: &mut Db) -> Result<()> {
    if let Db::Postgres(c) = db {
        c.client.batch_execute(postgres::READ_SESSION).await.map_err(|e| crate::db::postgres::query_error(&c.display, "SET", e))?;
    }
    Ok(())
}

async fn read_with(db: &mut Db, table: &str, spec: &ReadSpec, mismatch: Mismatch, tx: mpsc::Sender<Batch>) -> Result<u64> {
    match db {
        Db::Postgres(c) => postgres::read_copy_with(&c.client, &c.display, table, &format!("COPY ({}) TO STDOUT", spec.select), spec, mismatch, tx).await,
        Db::Mysql(c) => mysql::read_with(&mut c.conn, &c.display, table, spec, mismatch, tx).await,
        Db::Sqlite(c) => sqlite::read_with(&mut c.conn, &c.display, table, spec, mismatch, tx).await,
    }
}

/// A raw field that did not decode, as the value passed on in its place:
/// its text, or its bytes when it is not UTF-8.
pub(crate) fn raw_value(raw: &[u8]) -> Value {
    match std::str::from_utf8(raw) {
        Ok(t) => Value::Text(t.to_string()),
        Err(_) => Value::Bytes(raw.to_vec()),
    }
}

/// What to write: the quoted target table and its columns (in the order
/// the reader produces them).
#[derive(Debug, Clone)]
pub struct WriteSpec {
    pub table: String,
    pub columns: Vec<TargetColumn>,
    /// Key columns (indexes into `columns`) to name a row in errors.
    pub key: Vec<usize>,
}

/// How a row the target cannot take is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Stop the whole run at the first bad row (nothing half-loaded is kept for that chunk).
    Stop,
    /// Give up on the table, keep loading the others.
    SkipTable,
    /// Write the row to the rejects file with the reason, and go on.
    Log,
}

/// What happens to MySQL zero dates (`0000-00-00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroDates {
    /// Load them as NULL and count them.
    Null,
    /// Treat them as bad rows (see --on-error).
    Reject,
}

/// Counters shared by the tasks of one table.
#[derive(Debug, Default)]
pub struct Counters {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub rejected: AtomicU64,
    pub zero_dates: AtomicU64,
    /// Decimals with more fractional digits than the target column keeps
    /// (floats stored in SQLite NUMERIC columns), rounded to its scale.
    pub rounded: AtomicU64,
    /// Rows `--sql`'s WHERE dropped.
    pub filtered: AtomicU64,
    /// Records `--sql`'s windows set aside as late (in the rejects file).
    pub late: AtomicU64,
}

impl Counters {
    pub fn add(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// What a load did to values on their way, appended to a table's status
/// in reports: zero dates made NULL, decimals rounded, rows rejected.
pub fn value_notes(zero_dates: u64, rounded: u64, rejected: u64) -> String {
    let mut s = String::new();
    if zero_dates > 0 {
        s.push_str(&format!(", {zero_dates} zero dates → NULL"));
    }
    if rounded > 0 {
        s.push_str(&format!(", {rounded} decimals rounded to the column's scale"));
    }
    if rejected > 0 {
        s.push_str(&format!(", {rejected} rows rejected"));
    }
    s
}

/// A row the target refused, for the rejects file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rejected {
    pub table: String,
    pub key: String,
    pub column: Option<String>,
    pub reason: String,
    pub row: Vec<Value>,
}

/// Where rejected rows go (JSON lines), shared by all tasks.
#[derive(Clone)]
pub struct Rejects {
    inner: Arc<Mutex<Option<std::io::BufWriter<std::fs::File>>>>,
    pub path: std::path::PathBuf,
}

impl Rejects {
    pub fn new(path: std::path::PathBuf) -> Self {
        Rejects { inner: Arc::new(Mutex::new(None)), path }
    }

    pub fn write(&self, r: &Rejected) -> std::io::Result<()> {
        use std::io::Write;
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            *guard = Some(std::io::BufWriter::new(f));
        }
        let w = guard.as_mut().expect("opened above");
        serde_json::to_writer(&mut *w, r).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()
    }
}

/// Per-row handling decided before encoding: zero dates, and the key text
/// that names the row in messages.
#[derive(Clone)]
pub struct RowPolicy {
    pub on_error: OnError,
    pub zero_dates: ZeroDates,
    pub rejects: Rejects,
    pub counters: Arc<Counters>,
}

impl RowPolicy {
    /// Turns zero dates into NULL where allowed. Returns the reason if the
    /// row cannot go to the target as is.
    pub fn prepare(&self, row: &mut [Value], cols: &[TargetColumn], target_is_mysql: bool) -> Result<(), (usize, String)> {
        for (i, v) in row.iter_mut().enumerate() {
            let col = cols.get(i);
            if matches!(v, Value::ZeroDate) && !target_is_mysql {
                let allowed = self.zero_dates == ZeroDates::Null || col.is_some_and(|c| c.zero_dates_to_null);
                if !allowed {
                    return Err((i, "zero date (0000-00-00) has no equivalent on the target (--zero-dates reject)".into()));
                }
                *v = Value::Null;
                self.counters.zero_dates.fetch_add(1, Ordering::Relaxed);
            }
            let Some(c) = col else { continue };
            if let (Value::Decimal(d), ColumnType::Decimal { scale: Some(scale), .. }) = (&*v, &c.ty) {
                let r = crate::model::value::round_decimal(d, *scale);
                if &r != d {
                    *v = Value::Decimal(r);
                    self.counters.rounded.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !c.nullable && v.is_null() {
                return Err((i, "NULL in a NOT NULL column".into()));
            }
            fits(v, &c.ty).map_err(|why| (i, why))?;
            if target_is_mysql {
                fits_mysql_lob(v, &c.ty).map_err(|why| (i, why))?;
            }
        }
        Ok(())
    }
}

/// MySQL's TEXT and BLOB types hold at most 255 bytes (TINY), 64 KiB,
/// 16 MiB (MEDIUM) or 4 GiB (LONG). `LOAD DATA LOCAL` would cut a longer
/// value with only a warning, after storing it: refuse it first.
fn fits_mysql_lob(v: &Value, ty: &ColumnType) -> Result<(), String> {
    use crate::model::types::LobSize;
    let (len, size, kind) = match (v, ty) {
        (Value::Text(s) | Value::Json(s), ColumnType::Text { size, .. }) => (s.len(), *size, "text"),
        (Value::Bytes(b), ColumnType::Blob { size }) => (b.len(), *size, "blob"),
        _ => return Ok(()),
    };
    let (max, name) = match size {
        LobSize::Tiny => (255usize, "tiny"),
        LobSize::Regular => (65_535, ""),
        LobSize::Medium => (16_777_215, "medium"),
        LobSize::Long => (u32::MAX as usize, "long"),
    };
    if len > max {
        return Err(format!("{len} bytes do not fit in a {name}{kind} column (at most {max} bytes); map the column to a larger type with --cast"));
    }
    Ok(())
}

/// The [`BadValue`]s of one row at a time, for a writer walking a batch.
pub(crate) struct BadCells<'a> {
    list: &'a [BadValue],
    next: usize,
}

impl<'a> BadCells<'a> {
    pub(crate) fn new(list: &'a [BadValue]) -> Self {
        BadCells { list, next: 0 }
    }

    /// The bad values of row `row`; rows must be asked for in order.
    pub(crate) fn of_row(&mut self, row: usize) -> &'a [BadValue] {
        let start = self.next;
        while self.next < self.list.len() && self.list[self.next].row == row {
            self.next += 1;
        }
        &self.list[start..self.next]
    }
}

/// A row a writer refuses: which column, why, and what to do about it.
#[derive(Debug)]
pub struct Refusal {
    pub column: usize,
    pub reason: String,
    pub hint: Option<String>,
}

/// Checks the values of one row that the source's declared types could not
/// read: a text column on the target takes the raw text as it is (that is
/// what `--cast table.column=text` asks for); any other column refuses the
/// row, with a hint that names the cast that would take it.
pub(crate) fn admit_bad(bad: &[BadValue], row: &[Value], cols: &[TargetColumn]) -> Result<(), Refusal> {
    for b in bad {
        let Some(col) = cols.get(b.column) else { continue };
        if col.ty.is_textual() && matches!(row.get(b.column), Some(Value::Text(_))) {
            continue;
        }
        let table = b.table.rsplit('.').next().unwrap_or(&b.table);
        let cast = crate::pack::packer::shell_quote(&format!("{table}.{}=text", col.source));
        return Err(Refusal {
            column: b.column,
            reason: format!("the source value does not match the column's declared type: {}", b.reason),
            hint: Some(format!("load the column as text with --cast {cast}, fix the value at the source, or set such rows aside with --on-error log")),
        });
    }
    Ok(())
}

/// Checks a value against the target column's limits before the server
/// sees it, so a refusal names the table, row and column (and can go to
/// the rejects file) instead of failing a whole batch.
fn fits(v: &Value, ty: &ColumnType) -> Result<(), String> {
    match (v, ty) {
        (Value::Text(s), ColumnType::Varchar { length: Some(n), .. } | ColumnType::Char { length: Some(n), .. }) => {
            let len = s.chars().count();
            if len > *n as usize {
                return Err(format!("{len} characters do not fit in {}({n})", if matches!(ty, ColumnType::Char { .. }) { "char" } else { "varchar" }));
            }
        }
        (Value::Int(i), ColumnType::Int { bits, unsigned }) => {
            let ok = match (bits, unsigned) {
                (8, false) => i8::try_from(*i).is_ok(),
                (8, true) => u8::try_from(*i).is_ok(),
                (16, false) => i16::try_from(*i).is_ok(),
                (16, true) => u16::try_from(*i).is_ok(),
                (32, false) => i32::try_from(*i).is_ok(),
                (32, true) => u32::try_from(*i).is_ok(),
                (_, true) => *i >= 0,
                _ => true,
            };
            if !ok {
                return Err(format!("{i} is out of range for a {}{bits}-bit integer", if *unsigned { "unsigned " } else { "" }));
            }
        }
        (Value::UInt(u), ColumnType::Int { unsigned: false, .. }) if *u > i64::MAX as u64 => {
            return Err(format!("{u} is out of range for a signed 64-bit integer"));
        }
        (Value::Decimal(d), ColumnType::Decimal { precision: Some(p), scale }) => {
            if matches!(d.as_str(), "NaN" | "Infinity" | "-Infinity") {
                return Ok(()); // the codec decides per engine
            }
            let int_digits = d.trim_start_matches('-').split('.').next().unwrap_or("").trim_start_matches('0').len();
            let allowed = p.saturating_sub(scale.unwrap_or(0)) as usize;
            if int_digits > allowed {
                return Err(format!("{d} has {int_digits} integer digits; decimal({p},{}) holds {allowed}", scale.unwrap_or(0)));
            }
        }
        _ => {}
    }
    Ok(())
}

/// The text that names a row in errors: its key values.
pub fn row_key(row: &[Value], key: &[usize], cols: &[TargetColumn]) -> String {
    let idx: Vec<usize> = if key.is_empty() { (0..row.len().min(3)).collect() } else { key.to_vec() };
    idx.iter()
        .filter_map(|&i| Some(format!("{}={}", cols.get(i)?.name, short(row.get(i)?))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "NULL".to_string(),
        Value::Text(t) | Value::Decimal(t) | Value::Json(t) | Value::Enum(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        other => format!("{other:?}"),
    };
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}
