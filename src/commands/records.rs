//! `barge migrate STREAM TARGET`: records from a stream or files, as
//! rows of one table on any target. The options here say what a record
//! is; the replication loop does the rest (see `source::records`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::cdc::{print_cdc_report, replicate_tables, Replicate, StartPosition};
use super::migrate::{MigrateArgs, Mode};
use crate::cdc::destination::TableInfo;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::Position;
use crate::sink::SinkOptions;
use crate::source::capture::Capture;
use crate::source::records::changes::RecordCapture;
use crate::source::records::shape::{RecordFormat, RecordShape};
use crate::source::records::{saved_offsets, OpenOptions, StartAt};
use crate::task::load::LoadOptions;

#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Record sources (kafka://, kinesis://, sqs://, mqtt://, tail://, s3:// and file:// files)")]
pub struct RecordArgs {
    /// The table records land in: a file with one CREATE TABLE (PostgreSQL, MySQL or SQLite syntax) whose columns are filled from the record's JSON fields by name, or CSV fields in order (CSV files: by their header line, unless --no-header), or Parquet columns by name; columns named _stream, _shard, _offset, _key, _time take the record's metadata. With --record-format dms or debezium (change envelopes), or files in barge's and DMS's S3 layout (schema/table/ folders, CDC files with an Op column), the file may define several tables, and each change is applied to the table it names, by key. Without it: a table named after the stream with columns stream, shard, offset, key, time, data
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Without --schema: infer the table from the first N records (JSON objects; CSV files by their header): columns from the fields, types widened as records disagree (bigint, numeric(38,S), boolean, timestamptz, timestamp, jsonb, else text), all nullable. The CREATE TABLE is printed and kept in the state directory as inferred-schema.sql, which reruns reuse (and --schema takes)
    #[arg(long, value_name = "N", conflicts_with = "schema")]
    pub infer: Option<usize>,
    /// What a record's payload is [default: json with --schema or for s3:// and file:// files, else text]
    #[arg(long, value_enum)]
    pub record_format: Option<RecordFormat>,
}

/// A record run as planned: the tables records land in, how they are
/// converted, where the stream is read from, and how a file or stream
/// target is written.
pub struct Planned {
    pub tables: crate::cdc::Tables,
    pub converter: crate::cdc::evolve::Converter,
    pub capture: Capture,
    pub sink: Option<SinkOptions>,
}

/// Runs a record source into `target`: `--mode full-load` reads what the
/// stream holds now and stops; the other modes keep following it.
pub async fn migrate(args: &MigrateArgs, source: &Endpoint, target: &Endpoint, opts: LoadOptions, sink: Option<SinkOptions>) -> Result<ExitCode> {
    let state_dir = opts.state_dir.clone();
    let planned = plan(args, source, target, &opts, sink).await?;
    let run = Replicate { source, target, state_dir, on_error: args.on_error, zero_dates: args.zero_dates, sink: planned.sink, sql: args.sql.clone(), fence: None };
    let report = replicate_tables(run, planned.tables, planned.converter, planned.capture, &args.cdc).await?;
    print_cdc_report(&report);
    if report.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(ExitCode::SUCCESS)
}

/// `migrate STREAM TARGET --coordinator URL --task NAME`: this process is
/// one worker of a run that leases the stream's shards to its workers
/// (see `coord::shards`).
pub async fn migrate_shared(args: &MigrateArgs, source: &Endpoint, target: &Endpoint, opts: LoadOptions, sink: Option<SinkOptions>) -> Result<ExitCode> {
    let state_dir = opts.state_dir.clone();
    let planned = plan(args, source, target, &opts, sink).await?;
    crate::coord::shards::run(args, source, target, planned, state_dir).await
}

/// Checks the options of a record run and plans its tables.
pub async fn plan(args: &MigrateArgs, source: &Endpoint, target: &Endpoint, opts: &LoadOptions, sink: Option<SinkOptions>) -> Result<Planned> {
    if args.validate {
        return Err(Error::usage(format!("--validate compares two databases; {source} is a stream")).with_hint("count the target's rows against the stream's with your own query"));
    }
    if args.tables.is_some() || args.mapping.is_some() {
        return Err(Error::usage("--tables and --mapping select a database's tables; a stream's records land in one table (see --schema)"));
    }
    if args.restart {
        return Err(Error::usage("--restart starts a database migration over; a stream's position is kept with its records")
            .with_hint("to read the stream again, drop the records' table on the target (for files and streams: use a new --state-dir) and rerun with --start-position earliest"));
    }
    if args.target_schema != crate::task::target_schema::SchemaMode::Create {
        return Err(Error::usage("--target-schema applies to a database migration; a stream's records go into their table as they come (created if it is missing, kept if it is there)"));
    }
    let files = matches!(source, Endpoint::S3(_) | Endpoint::Dir(_));
    // Files hold JSON lines unless told otherwise (a files source reads no plain text).
    // `--sql` reads fields: JSON, unless told otherwise.
    let json = args.records.schema.is_some() || args.records.infer.is_some() || files || args.sql.sql.is_some();
    let mut format = args.records.record_format.unwrap_or(if json { RecordFormat::Json } else { RecordFormat::Text });
    // CSV files name their columns in a header line, unless --no-header.
    if files && format == RecordFormat::Csv && !args.sink.no_header {
        format = RecordFormat::Fields;
    }
    let (start, position) = match &args.cdc.start_position {
        None => (StartAt::Earliest, Position::Shards { offsets: Default::default() }),
        Some(StartPosition::Stream(at)) => (at.clone(), Position::Shards { offsets: Default::default() }),
        Some(StartPosition::At(p @ Position::Shards { .. })) => (StartAt::Earliest, p.clone()),
        Some(StartPosition::At(p)) => return Err(Error::usage(format!("--start-position {p} is a database's position; a stream starts at earliest, latest, at-timestamp:TIME or shards:SHARD=OFFSET,…"))),
    };
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| Error::other(format!("cannot create the state directory {}: {e}", opts.state_dir.display())))?;
    let follow = args.mode != Mode::FullLoad;
    let name = crate::source::records::default_table_name(source);
    // Records that name their table (change envelopes, files in
    // schema/table/ folders) may land in several.
    let (landing, default_layout) = match (&args.records.schema, args.records.infer) {
        (Some(file), _) if format.is_envelope() || files => {
            let (tables, left) = crate::source::records::shape::tables_from_schema_file(file)?;
            if !left.is_empty() {
                super::output::warn(format!(
                    "--schema {}: a record run creates tables, their keys and indexes only; not created: {}. Create them on the target yourself (barge convert-schema writes them in its dialect)",
                    file.display(),
                    left.join("; ")
                ));
            }
            for t in &tables {
                RecordShape::for_table_checked(t.clone(), format).map_err(|e| Error::usage(format!("--schema {}: {e}", file.display())))?;
            }
            (tables, false)
        }
        (Some(file), _) => (vec![RecordShape::from_schema_file(file, format)?.table], false),
        (None, Some(_)) if format.is_envelope() => return Err(Error::usage("--infer reads a table off records that are rows; change envelopes (--record-format dms|debezium) need --schema FILE with their tables")),
        (None, Some(n)) => {
            let open = OpenOptions { from: saved_offsets(&position)?, start: start.clone(), state_dir: opts.state_dir.clone(), follow, format, changes: true };
            (vec![crate::source::records::infer::shape(source, n, &name, open).await?.table], false)
        }
        (None, None) => (vec![RecordShape::default_layout(&name, format)?.table], true),
    };
    let converter = super::cdc::converter(source, target, opts)?;
    let mut tables = crate::cdc::Tables::new();
    for table in &landing {
        let converted = converter.convert(table, None).ok_or_else(|| Error::other(format!("table {}: could not be planned for {target}", table.name)))?;
        let info = TableInfo { key: crate::source::key_indexes(table), source: table.clone(), target: converted.table, filter: None };
        tables.insert(table.name.clone(), info);
    }
    let first = landing[0].name.clone();
    let records = RecordCapture { format, start, table: first.clone(), default_layout, follow, lease: None };
    let capture = Capture { position, slot: None, publication: None, replica_identity: Vec::new(), records: Some(records) };
    if args.sql.sql.is_some() && (format.is_envelope() || landing.len() > 1) {
        return Err(Error::usage("--sql reads the records of one table; change envelopes and files of several tables apply each change to its own table")
            .with_hint("apply the changes first, then run --sql over one table's stream, or give --schema one table"));
    }
    if args.sql.sql.is_some() {
        // The query's output table is named where the query is planned.
    } else if format.is_envelope() {
        let names: Vec<String> = landing.iter().map(|t| t.name.to_string()).collect();
        super::output::info(format!("changes in {source} apply to {}", names.join(", ")));
    } else if landing.len() > 1 {
        let names: Vec<String> = landing.iter().map(|t| t.name.to_string()).collect();
        super::output::info(format!("files of {source} land in {}, each by its folder (schema/table/)", names.join(", ")));
    } else {
        super::output::info(format!("records of {source} land in table {first}"));
    }
    // Stream to stream: records pass through as they came, keeping their
    // keys (and so their order per key), unless a table shape or a query
    // was asked for.
    let mut sink = sink;
    if let Some(s) = sink.as_mut().filter(|s| default_layout && args.sql.sql.is_none() && s.envelope == crate::sink::EnvelopeKind::Dms && (matches!(target, Endpoint::Kafka(_) | Endpoint::Kinesis(_)) || matches!(target, Endpoint::Sink(t) if t.scheme == "sqs"))) {
        s.envelope = crate::sink::EnvelopeKind::Raw;
        super::output::info("records pass through as they came: each payload as a message, keyed by its record's key (else its shard)");
    }
    Ok(Planned { tables, converter, capture, sink })
}
