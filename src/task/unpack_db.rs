//! Unpacking a database pack into a database: the schema from the pack's
//! IR goes through the convert-schema engine for the target's dialect, the
//! tables are created (as `migrate` creates them), each table's rows are
//! decoded from the pack and written by the same destination a full load uses,
//! then keys, indexes, foreign keys and identity counters are built. What
//! remains is the changes made at the source since the pack: the report
//! carries the `barge migrate --mode cdc` command that applies them.
//!
//! A table is loaded whole or not at all: if its bytes turn out damaged,
//! the writer is cancelled before it commits (PostgreSQL's COPY and the
//! SQLite and MySQL/MariaDB transactions then leave nothing behind).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::target_schema::{self, SchemaMode};
use crate::sink::db::DbDestination;
use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Dialect, Schema, Table};
use crate::pack::catalog::{Catalog, DatabaseInfo, Entry};
use crate::pack::crypto::MasterKey;
use crate::pack::packer::shell_quote;
use crate::pack::reader::{self, Checked, Finding, Located, Output, TableSink};
use crate::pack::rows::RowDecoder;
use crate::progress::{Progress, Task, Unit};
use crate::schema::convert::{self, ConvertOptions, Converted};
use crate::schema::naming::NamePlan;
use crate::schema::report::Report;
use crate::schema::target::TargetTable;
use crate::sink::{Destination, RowTable};
use crate::transfer::{Batch, Counters, OnError, Rejects, RowPolicy, WriteSpec, ZeroDates, CHANNEL_DEPTH};

pub struct UnpackOptions {
    pub schema_mode: SchemaMode,
    pub on_error: OnError,
    pub zero_dates: ZeroDates,
    /// Type rules and naming for the pack's source dialect → the target's.
    pub convert: ConvertOptions,
    /// Where rows the target refuses go with `--on-error log`.
    pub rejects: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    pub source: String,
    pub target: String,
    /// Rows in the pack.
    pub packed: u64,
    pub rows: u64,
    pub status: String,
    pub rejected: u64,
    pub zero_dates: u64,
    pub rounded: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnpackReport {
    pub source: String,
    pub target: String,
    pub tables: Vec<TableReport>,
    pub rows: u64,
    pub seconds: f64,
    /// The CDC start position recorded at pack time, if any.
    pub cdc_start: Option<String>,
    /// The command that brings the target up to date with the source.
    pub migrate_command: Option<String>,
    pub rejects: Option<PathBuf>,
}

/// The schema the pack holds: its non-table objects, plus each packed
/// table's IR from its catalog entry, in pack order.
pub fn packed_schema(catalog: &Catalog) -> Result<(Schema, &DatabaseInfo)> {
    let info = catalog.database.as_ref().ok_or_else(|| {
        Error::usage(format!(
            "this pack holds a directory tree (from {}), not database tables; unpack it to a directory, file:///dir or s3://bucket/prefix",
            catalog.source
        ))
    })?;
    let mut schema: Schema = serde_json::from_value(info.schema.clone())
        .map_err(|e| Error::Mismatch(format!("the pack's schema does not read as barge's schema IR: {e}")))?;
    if schema.dialect.is_none() {
        schema.dialect = info.dialect.parse().ok();
    }
    for e in &catalog.entries {
        if let Entry::Table { name, schema: t, .. } = e {
            let t: Table = serde_json::from_value(t.clone())
                .map_err(|err| Error::Mismatch(format!("table {name}: its schema does not read as barge's schema IR: {err}")))?;
            schema.tables.push(t);
        }
    }
    Ok((schema, info))
}

/// The command that applies the source's changes made since the pack.
pub fn migrate_command(catalog: &Catalog, target: &Endpoint) -> Option<String> {
    let info = catalog.database.as_ref()?;
    let cdc = info.cdc.as_ref()?;
    let mut cmd = format!(
        "barge migrate {} {} --mode cdc --start-position {}",
        shell_quote(&catalog.source),
        shell_quote(&target.to_string()),
        shell_quote(&cdc.position)
    );
    if let Some(s) = &cdc.slot {
        cmd.push_str(&format!(" --slot {}", shell_quote(s)));
    }
    if let Some(p) = &cdc.publication {
        cmd.push_str(&format!(" --publication {}", shell_quote(p)));
    }
    if let Some(t) = &info.selection {
        cmd.push_str(&format!(" --tables {}", shell_quote(t)));
    }
    Some(cmd)
}

/// How one packed table lands.
struct Plan {
    target: TargetTable,
    write: WriteSpec,
    /// For each written column, its index in the packed row.
    take: Vec<usize>,
    /// The table existed and `--target-schema skip` leaves it alone.
    skip: bool,
    counters: Arc<Counters>,
}

/// Builds the write side of each packed table.
fn plan_tables(schema: &Schema, converted: &Converted, skipped: &[String]) -> Result<HashMap<String, Plan>> {
    let same_dialect = schema.dialect == Some(converted.target.target);
    let mut plans = HashMap::new();
    for t in &schema.tables {
        let tt = converted
            .target
            .tables
            .iter()
            .find(|x| x.source == t.name)
            .ok_or_else(|| Error::other(format!("table {}: the conversion produced no target table", t.name)))?;
        let mut take = Vec::new();
        let mut cols = Vec::new();
        for tc in &tt.columns {
            let Some(i) = t.columns.iter().position(|c| c.name == tc.source) else { continue };
            // Generated on the target (or on both sides): the target computes it.
            if tc.generated.is_some() || (t.columns[i].generated.is_some() && same_dialect) {
                continue;
            }
            take.push(i);
            cols.push(tc.clone());
        }
        let key = t
            .primary_key
            .as_ref()
            .map(|k| k.columns.iter().filter_map(|c| cols.iter().position(|w| w.source.eq_ignore_ascii_case(c))).collect())
            .unwrap_or_default();
        plans.insert(
            t.name.to_string(),
            Plan {
                target: tt.clone(),
                write: WriteSpec { table: tt.sql_name.clone(), columns: cols, key },
                take,
                skip: skipped.contains(&tt.sql_name),
                counters: Arc::new(Counters::default()),
            },
        );
    }
    Ok(plans)
}

/// The table being loaded: its decoder, the channel to its writer task.
struct Current {
    name: String,
    packed: u64,
    decoder: RowDecoder,
    tx: Option<mpsc::Sender<Batch>>,
    writer: Option<JoinHandle<Result<u64>>>,
    task: Arc<dyn Task>,
}

/// Receives each table's bytes from the pack reader and loads them.
struct Loader<'a> {
    rt: &'a tokio::runtime::Runtime,
    dst: &'a Endpoint,
    plans: &'a HashMap<String, Plan>,
    opts: &'a UnpackOptions,
    rejects: Rejects,
    progress: &'a dyn Progress,
    current: Option<Current>,
    done: Vec<TableReport>,
}

/// One writer task: its own destination, whose `write_rows` takes the
/// table's rows (as a full load's chunk); on MySQL/MariaDB in one
/// transaction for the table (its LOAD DATA batches would commit one by
/// one otherwise).
async fn write_table(dst: Endpoint, spec: WriteSpec, rx: mpsc::Receiver<Batch>, policy: RowPolicy, task: Arc<dyn Task>) -> Result<u64> {
    let mut d = DbDestination::for_load(&dst, policy.clone()).await?;
    let mysql = d.db().dialect() == Dialect::Mysql;
    if mysql {
        d.db().execute("START TRANSACTION").await?;
    }
    let n = Destination::write_rows(&mut d, &RowTable { write: spec, info: None }, rx, &policy, &task).await?;
    if mysql {
        d.db().execute("COMMIT").await?;
    }
    Ok(n)
}

impl Loader<'_> {
    fn plan(&self, name: &str) -> Result<&Plan> {
        self.plans.get(name).ok_or_else(|| Error::other(format!("table {name} is in the catalog but not in the load plan")))
    }

    /// Decodes the whole blocks received so far and sends them on.
    fn forward(&mut self) -> Result<()> {
        let cur = self.current.as_mut().expect("a table is open");
        let plan = self.plans.get(&cur.name).expect("planned");
        while let Some(rows) = cur.decoder.next_block().map_err(|e| Error::Mismatch(format!("table {}: {e}", cur.name)))? {
            let Some(tx) = &cur.tx else {
                cur.task.inc(rows.len() as u64);
                continue;
            };
            let mut bytes = 0;
            let rows: Vec<Vec<crate::model::Value>> = rows
                .into_iter()
                .map(|mut r| {
                    let out: Vec<_> = plan.take.iter().map(|&i| std::mem::replace(&mut r[i], crate::model::Value::Null)).collect();
                    bytes += out.iter().map(|v| v.weight()).sum::<usize>();
                    out
                })
                .collect();
            if tx.blocking_send(Batch::new(rows, bytes)).is_err() {
                // The writer stopped: its error says why.
                let handle = cur.writer.take().expect("a writer");
                return Err(match self.rt.block_on(handle) {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => Error::other(format!("the writer of table {} stopped early", cur.name)),
                    Err(e) => Error::other(format!("the writer of table {} failed: {e}", cur.name)),
                });
            }
        }
        Ok(())
    }
}

impl TableSink for Loader<'_> {
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        let Entry::Table { name, rows, .. } = entry else { return Err(Error::other("a table sink was given a file")) };
        let plan = self.plan(name)?;
        let task = self.progress.task(name, Some(*rows), Unit::Rows);
        let (tx, writer) = if plan.skip {
            task.set_message("exists: skipped");
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel::<Batch>(CHANNEL_DEPTH);
            let policy = RowPolicy { on_error: self.opts.on_error, zero_dates: self.opts.zero_dates, rejects: self.rejects.clone(), counters: plan.counters.clone() };
            let handle = self.rt.spawn(write_table(self.dst.clone(), plan.write.clone(), rx, policy, task.clone()));
            (Some(tx), Some(handle))
        };
        self.current = Some(Current { name: name.clone(), packed: *rows, decoder: RowDecoder::new(), tx, writer, task });
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<()> {
        self.current.as_mut().expect("a table is open").decoder.push(bytes);
        self.forward()
    }

    fn end(&mut self, damage: Option<String>) -> Result<()> {
        let mut cur = self.current.take().expect("a table is open");
        let decoded = match &damage {
            Some(_) => None,
            None => Some(cur.decoder.finish().map_err(|e| Error::Mismatch(format!("table {}: {e}", cur.name)))),
        };
        let bad = match (&damage, &decoded) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(Err(e))) => Some(e.to_string()),
            (None, Some(Ok(n))) if *n != cur.packed => Some(format!("it holds {n} rows, the catalog says {}", cur.packed)),
            _ => None,
        };
        if let Some(why) = bad {
            // Cancel before closing the channel: the writer must never see
            // the end of its input and commit a partial table.
            if let Some(w) = cur.writer.take() {
                w.abort();
                let _ = self.rt.block_on(w);
            }
            drop(cur.tx.take());
            return Err(Error::Mismatch(format!(
                "table {}: {why}; nothing of it was kept on the target",
                cur.name
            ))
            .into_hint("check the devices with `barge verify`; a damaged chunk can only be restored from another copy of the pack"));
        }
        drop(cur.tx.take());
        let plan = self.plan(&cur.name)?;
        let (rows, status) = match cur.writer.take() {
            None => (0, "skipped (exists)".to_string()),
            Some(w) => match self.rt.block_on(w) {
                Ok(r) => (r?, "loaded".to_string()),
                Err(e) => return Err(Error::other(format!("the writer of table {} failed: {e}", cur.name))),
            },
        };
        cur.task.finish(&format!("{rows} rows"));
        let c = &plan.counters;
        use std::sync::atomic::Ordering::Relaxed;
        self.done.push(TableReport {
            source: cur.name.clone(),
            target: plan.target.name.join("."),
            packed: cur.packed,
            rows,
            status,
            rejected: c.rejected.load(Relaxed),
            zero_dates: c.zero_dates.load(Relaxed),
            rounded: c.rounded.load(Relaxed),
        });
        Ok(())
    }
}

impl Drop for Loader<'_> {
    /// A load stopped part-way (an error elsewhere): cancel the writer
    /// before its channel closes, so it cannot commit a partial table.
    fn drop(&mut self) {
        if let Some(mut cur) = self.current.take() {
            if let Some(w) = cur.writer.take() {
                w.abort();
                let _ = self.rt.block_on(w);
            }
        }
    }
}

trait IntoHint {
    fn into_hint(self, h: &str) -> Self;
}
impl IntoHint for Error {
    /// Mismatch errors carry no hint field: fold it into the message.
    fn into_hint(self, h: &str) -> Self {
        match self {
            Error::Mismatch(m) => Error::Mismatch(format!("{m} ({h})")),
            other => other.with_hint(h),
        }
    }
}

/// Loads the pack's tables into `dst`. `l`, `checked`, `master` and
/// `catalog` come from the reader (the chunks already checked).
pub fn unpack(
    l: &Located,
    checked: &Checked,
    master: &MasterKey,
    catalog: &Catalog,
    dst: &Endpoint,
    opts: &UnpackOptions,
    progress: &dyn Progress,
) -> Result<(UnpackReport, Vec<Finding>)> {
    let started = Instant::now();
    let target = target_schema::target_dialect(dst)?;
    let (mut schema, _) = packed_schema(catalog)?;
    // Tables are what a load creates; views and routines stay in the pack
    // for convert-schema (as with migrate).
    schema.views.clear();
    schema.routines.clear();
    let mut copts = opts.convert.clone();
    copts.source = schema.dialect.unwrap_or(Dialect::Postgres);
    copts.target = target;
    let names = NamePlan::build(&schema, target, &copts.naming);
    let report = Report { input: catalog.source.clone(), source: Some(copts.source), ..Default::default() };
    let converted = convert::convert_with(&schema, &[], report, &copts, names);

    let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(2))?;
    let mut conn = rt.block_on(Db::connect(dst, Role::Target))?;
    let targets: Vec<&TargetTable> = converted.target.tables.iter().collect();
    let t = Instant::now();
    let skipped = rt.block_on(target_schema::prepare(&mut conn, dst, &converted, &targets, opts.schema_mode))?;
    let plans = plan_tables(&schema, &converted, &skipped)?;
    tracing::debug!("prepared {} tables in {:.2}s", targets.len(), t.elapsed().as_secs_f64());

    let mut loader = Loader {
        rt: &rt,
        dst,
        plans: &plans,
        opts,
        rejects: Rejects::new(opts.rejects.clone()),
        progress,
        current: None,
        done: Vec::new(),
    };
    let t = Instant::now();
    let deep = reader::decrypt_to(l, checked, master, catalog, Output::Tables(&mut loader), progress)?;
    let tables = std::mem::take(&mut loader.done);
    drop(loader);
    tracing::debug!("loaded rows in {:.2}s", t.elapsed().as_secs_f64());

    let loaded: Vec<&TargetTable> = schema.tables.iter().filter_map(|t| plans.get(&t.name.to_string())).filter(|p| !p.skip).map(|p| &p.target).collect();
    let post = target_schema::post_statements(&converted, &loaded, opts.schema_mode);
    let task = progress.task("keys and indexes", Some(post.len() as u64), Unit::Items);
    let t = Instant::now();
    rt.block_on(async {
        for stmt in &post {
            conn.execute(stmt).await?;
            task.inc(1);
        }
        tracing::debug!("built keys, indexes and constraints in {:.2}s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        target_schema::analyze(&mut conn).await;
        tracing::debug!("analyzed in {:.2}s", t.elapsed().as_secs_f64());
        Ok::<_, Error>(())
    })?;
    task.finish("done");

    let any_rejects = tables.iter().any(|t| t.rejected > 0);
    let report = UnpackReport {
        source: catalog.source.clone(),
        target: dst.to_string(),
        rows: tables.iter().map(|t| t.rows).sum(),
        tables,
        seconds: started.elapsed().as_secs_f64(),
        cdc_start: catalog.database.as_ref().and_then(|d| d.cdc.as_ref()).map(|c| c.position.clone()),
        migrate_command: migrate_command(catalog, dst),
        rejects: any_rejects.then(|| opts.rejects.clone()),
    };
    Ok((report, deep.findings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::catalog::CdcStart;

    fn catalog(cdc: Option<CdcStart>, selection: Option<&str>) -> Catalog {
        Catalog {
            source: "postgres://app@db1:5432/shop?sslmode=verify-full&password_file=/run/pw".into(),
            entries: vec![],
            skipped: vec![],
            database: Some(DatabaseInfo {
                dialect: "postgres".into(),
                schema: serde_json::json!({}),
                selection: selection.map(str::to_string),
                cdc,
            }),
        }
    }

    #[test]
    fn the_cdc_command_names_source_target_position_slot_and_tables() {
        let dst = Endpoint::parse("mysql://loader@10.0.0.9/shop").unwrap();
        let cdc = CdcStart { position: "pg:16/B374D848".into(), slot: Some("barge_1a2b".into()), publication: Some("barge_pub".into()) };
        assert_eq!(
            migrate_command(&catalog(Some(cdc.clone()), None), &dst).unwrap(),
            "barge migrate 'postgres://app@db1:5432/shop?sslmode=verify-full&password_file=/run/pw' mysql://loader@10.0.0.9/shop \
             --mode cdc --start-position pg:16/B374D848 --slot barge_1a2b --publication barge_pub"
        );
        let mysql = CdcStart { position: "mysql:binlog.000003:154".into(), slot: None, publication: None };
        assert_eq!(
            migrate_command(&catalog(Some(mysql), Some("orders,!audit_*")), &dst).unwrap(),
            "barge migrate 'postgres://app@db1:5432/shop?sslmode=verify-full&password_file=/run/pw' mysql://loader@10.0.0.9/shop \
             --mode cdc --start-position mysql:binlog.000003:154 --tables 'orders,!audit_*'"
        );
        assert_eq!(migrate_command(&catalog(None, None), &dst), None, "no position, no command");
    }
}
