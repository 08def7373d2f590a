//! Object storage as a [`Destination`]: DMS's S3 layout, Firehose's
//! buffering.
//!
//! - full load: `prefix/schema/table/LOAD00000001.csv`, numbered per chunk
//!   (chunk c writes LOAD(c·100000 + 1) on), so a chunk loaded again after
//!   a crash rewrites the same names;
//! - CDC: `prefix/schema/table/20240131-235959123-<id>.csv`, named by the
//!   commit time of its first change, with an `Op` column (I/U/D) first;
//! - a record the format cannot hold goes to
//!   `prefix/errors/schema/table/<same name>.jsonl` with the reason;
//! - with `--partition-by`, each file lies in its record's partition below
//!   the table, `prefix/schema/table/year=2026/device=d1/<name>` (where
//!   Hive, Athena and Spark look for a table's partitions), with one
//!   buffer per partition and at most `--max-open-partitions` of them open
//!   (the oldest is written first when a new one would pass the limit); see
//!   [`partition`].
//!
//! Files are buffered until `--buffer-size` or `--buffer-interval`, so
//! `write_changes` returns before changes are durable; [`ObjectSink::committed`]
//! reports the last position whose changes are all in written files, and
//! that is the position the source may advance to.

pub mod partition;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::buffer::Thresholds;
use super::format::{self, Extra, RecordWriter};
use super::record::{Record, RecordIds, RecordKind};
use super::store::{ObjectTarget, FILES_PER_CHUNK};
use super::{FileFormat, Layouts, Scope, SinkOptions, SinkStats, SinkTable};
use super::{BoxFuture, Capabilities, Destination, Redo, RowTable};
use crate::cdc::{Change, ChangeBatch, Tables};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::{Position, QualifiedName};

/// Files are buffered (by size or interval): the position moves as files
/// are written.
pub const CAPABILITIES: Capabilities = Capabilities { buffers: true, ..Capabilities::NONE };

/// Opens `s3://` and `file://` targets (the registry's `open`).
pub fn open<'a>(endpoint: &'a Endpoint, opts: &'a SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> BoxFuture<'a, Result<Box<dyn Destination>>> {
    Box::pin(async move {
        let target = ObjectTarget::open(endpoint)?;
        Ok(Box::new(ObjectSink::new(target, opts.clone(), scope, stats)) as Box<dyn Destination>)
    })
}

/// A buffer's table and partition (empty without `--partition-by`).
type FileKey = (QualifiedName, String);

struct OpenFile {
    table: Arc<SinkTable>,
    partition: String,
    writer: Box<dyn RecordWriter>,
    /// JSON lines for `errors/`.
    errors: Vec<String>,
    opened: Instant,
    /// The first batch with a change in this file.
    first_batch: u64,
    name: String,
}

pub struct ObjectSink {
    target: ObjectTarget,
    opts: SinkOptions,
    scope: Scope,
    stats: Arc<SinkStats>,
    layouts: Layouts,
    ids: RecordIds,
    files: HashMap<FileKey, OpenFile>,
    /// Files written per table in this scope (full load: the LOAD number).
    parts: HashMap<QualifiedName, u64>,
    /// Batches applied and not yet known durable, oldest first.
    pending: VecDeque<(u64, Option<Position>)>,
    batch_no: u64,
    committed: Option<Position>,
}

impl ObjectSink {
    pub fn new(target: ObjectTarget, opts: SinkOptions, scope: Scope, stats: Arc<SinkStats>) -> Self {
        ObjectSink { target, opts, ids: RecordIds::new(scope), scope, stats, layouts: Layouts::default(), files: HashMap::new(), parts: HashMap::new(), pending: VecDeque::new(), batch_no: 0, committed: None }
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds { bytes: self.opts.buffer_bytes, interval: self.opts.buffer_interval }
    }

    fn extra(&self) -> Extra {
        let op = match self.scope {
            Scope::Load { .. } => self.opts.include_op_for_full_load,
            Scope::Cdc => !self.opts.cdc_inserts_only || self.opts.include_op_for_full_load,
        };
        Extra { op, record_id: self.opts.record_id_column.clone() }
    }

    /// The name of the next file of `table`.
    fn next_name(&mut self, table: &SinkTable, rec: &Record) -> Result<String> {
        let ext = format::extension(self.opts.format, self.opts.compression);
        let part = self.parts.entry(table.source.clone()).or_default();
        *part += 1;
        Ok(match self.scope {
            Scope::Load { chunk } => {
                if *part >= FILES_PER_CHUNK {
                    return Err(Error::Table {
                        table: table.display(),
                        row: None,
                        message: format!("one chunk of the full load needs more than {FILES_PER_CHUNK} files"),
                        hint: Some("raise --buffer-size, or lower --chunk-rows so the table is cut into more chunks".into()),
                    });
                }
                format!("LOAD{:08}.{ext}", chunk as u64 * FILES_PER_CHUNK + *part)
            }
            Scope::Cdc => {
                let t = rec.change.commit_time.unwrap_or_else(chrono::Utc::now);
                format!("{}-{}.{ext}", t.format("%Y%m%d-%H%M%S%3f"), &rec.id[..8.min(rec.id.len())])
            }
        })
    }

    fn open_file(&mut self, table: &Arc<SinkTable>, rec: &Record, partition: &str) -> Result<OpenFile> {
        let writer = format::writer(self.opts.format, self.opts.compression, table, &self.extra(), self.opts.csv_header).map_err(|m| Error::Table { table: table.display(), row: None, message: m, hint: None })?;
        let name = self.next_name(table, rec)?;
        Ok(OpenFile { table: table.clone(), partition: partition.to_string(), writer, errors: Vec::new(), opened: Instant::now(), first_batch: self.batch_no, name })
    }

    /// Before a partition's buffer opens: writes the oldest buffers while
    /// `--max-open-partitions` are open.
    async fn make_room(&mut self) -> Result<()> {
        if self.opts.partition_by.is_none() {
            return Ok(());
        }
        while self.files.len() >= self.opts.max_open_partitions.max(1) {
            let Some(oldest) = self.files.iter().min_by_key(|(_, f)| (f.opened, f.first_batch)).map(|(k, _)| k.clone()) else { break };
            self.close(&oldest).await?;
        }
        Ok(())
    }

    /// Writes an open file (if it has records) and its errors file.
    async fn close(&mut self, name: &FileKey) -> Result<()> {
        match self.files.remove(name) {
            Some(f) => self.write_file(f).await,
            None => Ok(()),
        }
    }

    async fn write_file(&mut self, f: OpenFile) -> Result<()> {
        let records = f.writer.records();
        if records > 0 {
            let bytes = f.writer.finish().map_err(|m| Error::Table { table: f.table.display(), row: None, message: format!("cannot finish {}: {m}", f.name), hint: None })?;
            let len = bytes.len() as u64;
            self.target.put(&self.target.partitioned_path(false, &f.table, &f.partition, &f.name), bytes).await?;
            SinkStats::add(&self.stats.files, 1);
            SinkStats::add(&self.stats.bytes, len);
        }
        if !f.errors.is_empty() {
            let stem = f.name.split('.').next().unwrap_or(&f.name);
            let mut text = f.errors.join("\n");
            text.push('\n');
            self.target.put(&self.target.partitioned_path(true, &f.table, &f.partition, &format!("{stem}.jsonl")), text.into_bytes()).await?;
        }
        Ok(())
    }

    /// Moves `committed` past every batch that no open file still holds.
    fn advance(&mut self) {
        let oldest_open = self.files.values().map(|f| f.first_batch).min().unwrap_or(u64::MAX);
        while let Some((no, _)) = self.pending.front() {
            if *no >= oldest_open {
                break;
            }
            if let Some((_, Some(p))) = self.pending.pop_front() {
                self.committed = Some(p);
            }
        }
    }

    async fn apply_batch(&mut self, tables: &Tables, batch: &ChangeBatch) -> Result<()> {
        self.batch_no += 1;
        let changes = super::record::split_key_changes(tables, &batch.changes);
        let changes = &changes[..];
        let mut start = 0;
        // A full-load batch is one table's rows: its layout and its open file
        // are looked up once per run of changes to the same table, not per row.
        while start < changes.len() {
            let name = &changes[start].table;
            let end = changes[start..].iter().position(|c| c.table != *name).map_or(changes.len(), |n| start + n);
            let table = self.layouts.get(tables, name, &self.opts.default_schema)?;
            self.write_run(&table, &changes[start..end]).await?;
            start = end;
        }
        self.pending.push_back((self.batch_no, batch.position.clone()));
        self.close_due().await
    }

    /// Writes consecutive changes of `table`, closing its file each time the
    /// buffer fills.
    async fn write_run(&mut self, table: &Arc<SinkTable>, changes: &[Change]) -> Result<()> {
        let fixed_columns = self.opts.format != FileFormat::Jsonl;
        // Record ids cost a hash per record. They are made for every record
        // where they are written (the record-id column, CDC file names) or
        // where the next one depends on this one (ordinals of keyless rows,
        // of changes in a transaction); a keyed full-load row's id depends on
        // its key only, so it is made when the row goes to errors/.
        let every_id = self.opts.record_id_column.is_some() || matches!(self.scope, Scope::Cdc) || table.key.is_empty();
        let template = self.opts.partition_by.clone();
        let partitions = match &template {
            Some(t) => Some(t.bind(table).map_err(|m| Error::Table { table: table.display(), row: None, message: m, hint: Some("name a column of the table in --partition-by, or leave it out".into()) })?),
            None => None,
        };
        let now = chrono::Utc::now();
        let mut partition = String::new();
        let mut key: FileKey = (table.source.clone(), String::new());
        let mut file = self.files.remove(&key);
        for change in changes {
            let id = if every_id { self.ids.next(table, change) } else { String::new() };
            let mut rec = Record::new(table, change, id);
            if self.opts.cdc_inserts_only && !matches!(rec.kind, RecordKind::Insert | RecordKind::Load) {
                SinkStats::add(&self.stats.skipped, 1);
                continue;
            }
            if fixed_columns && rec.kind == RecordKind::Update && rec.values.iter().any(Option::is_none) {
                SinkStats::add(&self.stats.unchanged_unknown, 1);
            }
            if let Some(p) = &partitions {
                partition.clear();
                p.render(&rec, now, &mut partition);
                if partition != key.1 {
                    if let Some(f) = file.take() {
                        self.files.insert(key.clone(), f);
                    }
                    key.1.clone_from(&partition);
                    file = self.files.remove(&key);
                }
            }
            if file.is_none() {
                self.make_room().await?;
                file = Some(self.open_file(table, &rec, &key.1)?);
            }
            let f = file.as_mut().expect("opened above");
            match f.writer.write(&rec) {
                Ok(()) => SinkStats::add(&self.stats.records, 1),
                Err(reason) => {
                    if rec.id.is_empty() {
                        rec.id = self.ids.next(table, change);
                    }
                    f.errors.push(error_line(table, &rec, &reason));
                    SinkStats::add(&self.stats.errors, 1);
                }
            }
            if f.writer.buffered() >= self.opts.buffer_bytes {
                if let Some(full) = file.take() {
                    self.write_file(full).await?;
                }
            }
        }
        if let Some(f) = file {
            self.files.insert(key, f);
        }
        Ok(())
    }

    /// Writes the files whose size or interval is reached.
    async fn close_due(&mut self) -> Result<()> {
        let now = Instant::now();
        let t = self.thresholds();
        let due: Vec<FileKey> = self.files.iter().filter(|(_, f)| t.due(f.writer.buffered(), f.opened, now)).map(|(k, _)| k.clone()).collect();
        for name in due {
            self.close(&name).await?;
        }
        self.advance();
        Ok(())
    }

    async fn flush_all(&mut self) -> Result<()> {
        let names: Vec<FileKey> = self.files.keys().cloned().collect();
        for name in names {
            self.close(&name).await?;
        }
        self.advance();
        Ok(())
    }
}

/// One line of an errors file: what failed, where, why, and the record
/// itself (as JSON; values JSON cannot spell keep barge's tagged form).
fn error_line(table: &SinkTable, rec: &Record, reason: &str) -> String {
    let names: Vec<String> = table.columns.iter().map(|c| super::format::jsonl::quoted(&c.name)).collect();
    let mut record = String::new();
    if super::format::jsonl::write_object(&names, &rec.values, &mut record).is_err() {
        let tagged: serde_json::Map<String, serde_json::Value> =
            table.columns.iter().zip(&rec.values).filter_map(|(c, v)| Some((c.name.clone(), serde_json::to_value(v.as_ref()?).ok()?))).collect();
        record = serde_json::Value::Object(tagged).to_string();
    }
    let head = serde_json::json!({
        "table": table.display(),
        "key": rec.key_text(table),
        "operation": rec.kind.dms_operation(),
        "record_id": rec.id,
        "reason": reason,
    })
    .to_string();
    format!("{},\"record\":{record}}}", &head[..head.len() - 1])
}

impl Destination for ObjectSink {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }


    fn write_changes<'a>(&'a mut self, tables: &'a Tables, batch: &'a ChangeBatch) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.apply_batch(tables, batch))
    }

    /// A chunk's files have fixed names: those of an earlier attempt go.
    fn redo_chunk<'a>(&'a mut self, table: &'a RowTable, redo: &'a Redo) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(info) = &table.info else { return Ok(()) };
            self.target.discard_load_chunk(&SinkTable::from_info(info, &self.opts.default_schema), redo.chunk).await
        })
    }

    fn committed<'a>(&'a mut self) -> BoxFuture<'a, Result<Option<Position>>> {
        Box::pin(async move { Ok(self.committed.clone()) })
    }

    fn flush<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.flush_all())
    }

    fn tick<'a>(&'a mut self) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.close_due())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::{Change, Op, TableInfo};
    use crate::endpoint::Endpoint;
    use crate::model::{Column, ColumnType, QualifiedName, Table, Value};
    use crate::schema::target::TargetTable;

    fn tables() -> (QualifiedName, Tables) {
        let qn = QualifiedName::new(Some("app"), "acct");
        let mut source = Table::new(qn.clone());
        source.columns = vec![Column::new("id", ColumnType::int(64), "bigint"), Column::new("bal", ColumnType::Decimal { precision: Some(12), scale: Some(2) }, "numeric(12,2)"), Column::new("memo", ColumnType::text(), "text")];
        let target = TargetTable::named(qn.clone(), vec!["app".into(), "acct".into()]);
        (qn.clone(), [(qn, TableInfo { source, target, key: vec![0], filter: None })].into_iter().collect())
    }

    fn change(t: &QualifiedName, op: Op, lsn: u64) -> Change {
        Change { table: t.clone(), op, txid: Some("9".into()), commit_time: Some(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()), position: Position::pg(lsn) }
    }

    fn sink(dir: &std::path::Path, opts: SinkOptions) -> ObjectSink {
        let e = Endpoint::parse(&format!("file://{}", dir.display())).unwrap();
        ObjectSink::new(ObjectTarget::open(&e).unwrap(), opts, Scope::Cdc, Arc::new(SinkStats::default()))
    }

    fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn cdc_ops_become_dms_op_rows_and_commit_only_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let (t, tables) = tables();
        let mut s = sink(dir.path(), SinkOptions { buffer_interval: std::time::Duration::from_secs(3600), ..SinkOptions::default() });
        let row = |b: &str| vec![Value::Int(1), Value::Decimal(b.into()), Value::Text("m".into())];
        let batch = ChangeBatch {
            changes: vec![
                change(&t, Op::Insert { row: row("1.00") }, 10),
                change(&t, Op::Update { before: None, after: vec![Some(Value::Int(1)), Some(Value::Decimal("2.50".into())), None] }, 11),
                change(&t, Op::Update { before: Some(row("2.50")), after: vec![Some(Value::Int(1)), Some(Value::Decimal("3.75".into())), None] }, 12),
                change(&t, Op::Delete { key: vec![Value::Int(1)] }, 13),
                change(&t, Op::Truncate, 14),
            ],
            position: Some(Position::pg(14)),
        };
        s.apply(&tables, &batch).await.unwrap();
        assert_eq!(s.committed().await.unwrap(), None, "buffered, not yet durable");
        assert!(files(dir.path()).is_empty(), "no partial file is visible");
        s.flush().await.unwrap();
        assert_eq!(s.committed().await.unwrap(), Some(Position::pg(14)));
        let written = files(dir.path());
        assert_eq!(written.len(), 1);
        let name = written[0].strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("app/acct/20231114-221320000-") && name.ends_with(".csv"), "CDC files are named by time: {name}");
        let text = std::fs::read_to_string(&written[0]).unwrap();
        assert_eq!(text, "Op,id,bal,memo\r\nI,1,1.00,m\r\nU,1,2.50,\r\nU,1,3.75,m\r\nD,1,,\r\nT,,,\r\n");
        assert_eq!(SinkStats::get(&s.stats.unchanged_unknown), 1, "the update whose unchanged value was not sent is counted");
    }

    #[tokio::test]
    async fn inserts_only_skips_updates_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let (t, tables) = tables();
        let mut s = sink(dir.path(), SinkOptions { format: FileFormat::Jsonl, cdc_inserts_only: true, ..SinkOptions::default() });
        let batch = ChangeBatch {
            changes: vec![
                change(&t, Op::Insert { row: vec![Value::Int(1), Value::Null, Value::Null] }, 1),
                change(&t, Op::Delete { key: vec![Value::Int(1)] }, 2),
            ],
            position: Some(Position::pg(2)),
        };
        s.apply(&tables, &batch).await.unwrap();
        s.flush().await.unwrap();
        let written = files(dir.path());
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap(), "{\"id\":1,\"bal\":null,\"memo\":null}\n", "no Op column, no delete");
        assert_eq!(SinkStats::get(&s.stats.skipped), 1);
    }

    #[tokio::test]
    async fn partitions_buffer_apart_and_the_position_waits_for_every_one() {
        let dir = tempfile::tempdir().unwrap();
        let (t, tables) = tables();
        let template = "memo=!{field:memo}/y=!{timestamp:%Y}".parse().unwrap();
        let mut s = sink(dir.path(), SinkOptions { format: FileFormat::Jsonl, partition_by: Some(Arc::new(template)), max_open_partitions: 2, buffer_interval: std::time::Duration::from_secs(3600), ..SinkOptions::default() });
        let row = |id: i64, memo: Option<&str>| Op::Insert { row: vec![Value::Int(id), Value::Null, memo.map_or(Value::Null, |m| Value::Text(m.into()))] };
        let batch = ChangeBatch { changes: vec![change(&t, row(1, Some("a")), 1), change(&t, row(2, Some("../b")), 1), change(&t, row(3, Some("a")), 1)], position: Some(Position::pg(1)) };
        s.apply(&tables, &batch).await.unwrap();
        assert!(files(dir.path()).is_empty(), "two partitions open, within the limit");
        // A third partition: the oldest (memo=a) is written to make room.
        let batch = ChangeBatch { changes: vec![change(&t, row(4, None), 2)], position: Some(Position::pg(2)) };
        s.apply(&tables, &batch).await.unwrap();
        let written = files(dir.path());
        assert_eq!(written.len(), 1);
        assert!(written[0].starts_with(dir.path().join("app/acct/memo=a/y=2023")), "{written:?}");
        assert_eq!(std::fs::read_to_string(&written[0]).unwrap().lines().count(), 2);
        assert_eq!(s.committed().await.unwrap(), None, "batch 1 still has records in an open partition");
        s.flush().await.unwrap();
        assert_eq!(s.committed().await.unwrap(), Some(Position::pg(2)));
        let names: Vec<String> = files(dir.path()).iter().map(|p| p.strip_prefix(dir.path()).unwrap().parent().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, vec!["app/acct/memo=..%2Fb/y=2023", "app/acct/memo=__HIVE_DEFAULT_PARTITION__/y=2023", "app/acct/memo=a/y=2023"]);
    }

    #[tokio::test]
    async fn a_file_is_written_when_its_buffer_fills() {
        let dir = tempfile::tempdir().unwrap();
        let (t, tables) = tables();
        let mut s = sink(dir.path(), SinkOptions { buffer_bytes: 100, ..SinkOptions::default() });
        for i in 0..10u64 {
            let batch = ChangeBatch { changes: vec![change(&t, Op::Insert { row: vec![Value::Int(i as i64), Value::Null, Value::Text("x".repeat(30))] }, 100 + i)], position: Some(Position::pg(100 + i)) };
            s.apply(&tables, &batch).await.unwrap();
        }
        // A 16-byte header and 37-byte rows: the third row passes 100 bytes and closes the file.
        assert_eq!(files(dir.path()).len(), 3);
        // Everything in written files is committed; the tenth row waits in the buffer.
        assert_eq!(s.committed().await.unwrap(), Some(Position::pg(108)));
        s.flush().await.unwrap();
        assert_eq!(files(dir.path()).len(), 4);
        assert_eq!(s.committed().await.unwrap(), Some(Position::pg(109)));
    }
}
