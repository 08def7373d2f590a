//! `barge migrate` and `barge validate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::model::Dialect;
use crate::schema::report::ReportFormat;
use crate::commands::output;
use crate::util::human::{self, bytes as human_bytes};
use crate::task::load::{self as fullload, LoadOptions, LoadReport, SchemaMode};
use crate::task::mapping::Mapping;
use crate::sink::SinkOptions;
use crate::task::load::SinkSummary;
use crate::transfer::{OnError, ZeroDates};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where to read from: postgres://, mysql://, sqlite:, or records from kafka://, kinesis://, sqs://, mqtt(s)://, tail:///dir/*.log, files on s3://bucket/prefix or file:///dir
    pub source: String,
    /// Where to write to: postgres://, mysql://, sqlite:, s3://, file://, kinesis://, kafka://, null:// (discards, to measure the source)
    pub target: String,
    /// What to move: the existing rows, then (with CDC) the changes that follow
    #[arg(long, value_enum, default_value_t = Mode::FullLoad)]
    pub mode: Mode,
    /// What to do with the target's tables before loading
    #[arg(long, value_enum, default_value_t = SchemaMode::Create)]
    pub target_schema: SchemaMode,
    /// Tables to move: comma-separated [schema.]table patterns (% and * are wildcards); prefix ! to exclude
    #[arg(long, value_name = "PATTERNS")]
    pub tables: Option<String>,
    /// Table mappings (JSON or TOML, DMS-style selection and transformation rules)
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Chunks loaded at once
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// Rows per chunk when a table is split on its integer key (smaller tables are copied whole, the fastest way)
    #[arg(long, default_value_t = 10_000_000, value_name = "ROWS")]
    pub chunk_rows: u64,
    /// What a row the target cannot take does to the run
    #[arg(long, value_enum, default_value_t = OnError::Stop)]
    pub on_error: OnError,
    /// What MySQL zero dates (0000-00-00) become on other targets
    #[arg(long, value_enum, default_value_t = ZeroDates::Null)]
    pub zero_dates: ZeroDates,
    /// Where the run keeps its resumable state, assessment report and rejected rows
    /// [default: .barge/<hash of source and target>]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// After the load, compare row counts and checksums (as `barge validate` does)
    #[arg(long)]
    pub validate: bool,
    /// Also write the assessment report here (the state directory always
    /// holds it as assessment.md, .json and .html); the format follows the
    /// extension: .html (one self-contained page with charts and filterable
    /// action items), .md (Markdown) or .json. Files and streams: .md only
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Discard the state directory's earlier run and start over: the full load runs again, the change capture it set up is removed, and so is the target's saved change position
    #[arg(long)]
    pub restart: bool,
    #[command(flatten)]
    pub schema: crate::commands::convert::SchemaArgs,
    #[command(flatten)]
    pub cdc: crate::commands::cdc::CdcArgs,
    #[command(flatten)]
    pub sink: crate::commands::sink_args::SinkArgs,
    #[command(flatten)]
    pub metrics: crate::commands::metrics::MetricsArgs,
    #[command(flatten)]
    pub records: crate::commands::records::RecordArgs,
    #[command(flatten)]
    pub sql: crate::commands::sql_args::SqlArgs,
    #[command(flatten)]
    pub coordinator: crate::commands::worker::CoordinatorArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Copy the rows that exist now
    FullLoad,
    /// Copy the rows, then keep applying the changes made since, until stopped
    FullLoadAndCdc,
    /// Apply changes only, from --start-position or the position saved on the target
    Cdc,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The source database URL
    pub source: String,
    /// The target database URL
    pub target: String,
    /// Tables to compare: comma-separated [schema.]table patterns; prefix ! to exclude
    #[arg(long, value_name = "PATTERNS")]
    pub tables: Option<String>,
    /// The table mappings the migration used
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// How identifiers were spelled on the target (as given to migrate)
    #[arg(long, value_enum, default_value_t = crate::schema::naming::IdentCase::Lower)]
    pub identifiers: crate::schema::naming::IdentCase,
    /// A source schema mapped to a target schema (as given to migrate), e.g. 'dbo=app' (repeatable)
    #[arg(long = "schema-map", value_name = "FROM=TO")]
    pub schema_map: Vec<String>,
    /// Share the comparison with other workers (`--coordinator`, `--task`)
    #[command(flatten)]
    pub shared: super::validate_shared::SharedValidateArgs,
}

pub fn default_state_dir(source: &Endpoint, target: &Endpoint) -> PathBuf {
    let h = Sha256::digest(format!("{source}\n{target}").as_bytes());
    PathBuf::from(".barge").join(format!("migrate-{}", hex::encode(&h[..6])))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    crate::util::runtime::build(crate::util::runtime::Workers::PerCore)
}

pub fn build_mapping(tables: Option<&str>, file: Option<&PathBuf>) -> Result<Mapping> {
    let mut m = match file {
        Some(f) => Mapping::load(f)?,
        None => Mapping::default(),
    };
    if let Some(t) = tables {
        m.extend(Mapping::from_tables_arg(t));
    }
    Ok(m)
}

pub fn run(args: MigrateArgs) -> Result<ExitCode> {
    super::interrupt::listen();
    let source = Endpoint::parse(&args.source)?;
    let target = Endpoint::parse(&args.target)?;
    let records = crate::source::records::is_record_source(&source);
    if !source.kind().is_database() && !records {
        return Err(Error::usage(format!("{source} cannot be a source: read from postgres://, mysql://, sqlite:, or records (kafka://, kinesis://, sqs://, mqtt://, tail://, s3://, file://)")));
    }
    if !records && (args.records.schema.is_some() || args.records.infer.is_some() || args.records.record_format.is_some()) {
        return Err(Error::usage("--schema and --record-format describe a stream's records; a database source has its own tables"));
    }
    let sink = if target.kind().is_database() {
        None
    } else {
        if args.validate {
            return Err(Error::usage(format!("--validate compares two databases; {target} is not one")));
        }
        Some(args.sink.options(&target, &source)?)
    };
    if args.validate && args.sql.sql.is_some() {
        return Err(Error::usage("--validate compares the target with the source table for table; --sql writes the query's rows, which differ from the source's by design")
            .with_hint("leave out --validate; the run counts the rows the query dropped or set aside"));
    }
    if let Some(p) = &args.report {
        match ReportFormat::of(p) {
            None => return Err(Error::usage(format!("--report {}: the extension must be .html (a page), .md (Markdown) or .json", p.display()))),
            Some(f) if sink.is_some() && f != ReportFormat::Markdown => {
                return Err(Error::usage(format!("--report {}: a file or stream target's assessment is Markdown only", p.display())).with_hint("name the report FILE.md"))
            }
            Some(_) => {}
        }
    }
    let mapping = build_mapping(args.tables.as_deref(), args.mapping.as_ref())?;
    let convert = args.schema.options(dialect_of(&source), dialect_of(&target), None)?;
    let state_dir = args.state_dir.clone().unwrap_or_else(|| default_state_dir(&source, &target));
    let opts = LoadOptions {
        schema_mode: args.target_schema,
        parallel: args.parallel,
        chunk_rows: args.chunk_rows,
        on_error: args.on_error,
        zero_dates: args.zero_dates,
        state_dir,
        mapping: mapping.clone(),
        convert,
        progress: super::bars::for_cli(),
        capture: None,
        coordinated: None,
        sql: args.sql.query()?,
    };
    output::info(format!("migrating {source} → {target} (state in {})", opts.state_dir.display()));
    args.metrics.start(|| crate::metrics::Metrics::new(&super::metrics::task_name(&opts.state_dir, "migrate"), &source, &target))?;
    let rt = runtime()?;
    if records && args.coordinator.coordinator.is_some() {
        super::worker::check(&args, &source, &target)?;
        return rt.block_on(super::records::migrate_shared(&args, &source, &target, opts, sink));
    }
    if records {
        return rt.block_on(super::records::migrate(&args, &source, &target, opts, sink));
    }
    if let Some(mb) = args.coordinator.max_rate {
        crate::util::rate::limit_source(mb)?;
    }
    if args.coordinator.coordinator.is_some() {
        super::worker::check(&args, &source, &target)?;
        let stored = args.coordinator.stored.clone();
        if args.mode == Mode::Cdc {
            return rt.block_on(super::worker::run_shared_changes(&args, &source, &target, opts, stored));
        }
        let (report, joined) = rt.block_on(super::worker::run_shared(&args, &source, &target, opts.clone(), stored))?;
        print_report(&report, None, None);
        copy_report(args.report.as_ref(), &report.assessment)?;
        let Some(joined) = joined else { return load_outcome(&report, &SinkSummary::default(), args.on_error) };
        if report.tables.iter().any(|t| t.status == "failed") {
            rt.block_on(joined.end(false));
            return Err(Error::other("some tables failed to load (see above): no changes are applied over an incomplete copy").with_hint("fix the cause, then start the run again under a new --task name with --target-schema truncate"));
        }
        return rt.block_on(super::worker::follow_after_load(&args, &source, &target, opts, joined));
    }
    rt.block_on(check_state(&source, &target, &opts, args.restart))?;
    if args.mode == Mode::FullLoad && sink.is_none() && !args.restart && args.target_schema == SchemaMode::Create {
        if let Some(tables) = rt.block_on(finished_run(&source, &target, &opts))? {
            return already_complete(&args, &source, &target, &opts, &mapping, tables, &rt);
        }
    }
    if args.mode != Mode::FullLoad {
        return rt.block_on(full_load_and_cdc(&args, &source, &target, opts, sink));
    }
    if let Some(sink) = sink {
        let (report, summary) = rt.block_on(crate::task::load::run_sink(&source, &target, opts, sink))?;
        print_report(&report, None, Some(&summary));
        copy_report(args.report.as_ref(), &report.assessment)?;
        return load_outcome(&report, &summary, args.on_error);
    }
    let naming = opts.convert.naming.clone();
    let report = rt.block_on(fullload::run(&source, &target, opts))?;
    let mut validation = None;
    if args.validate {
        validation = Some(rt.block_on(crate::task::validate::run(&source, &target, &mapping, &naming, super::bars::for_cli()))?);
    }
    print_report(&report, validation.as_ref(), None);
    copy_report(args.report.as_ref(), &report.assessment)?;
    if let Some(v) = &validation {
        if !v.ok() {
            if output::get().json {
                // The report above holds the error: one object on stdout.
                eprintln!("error: {}", v.summary());
                return Ok(ExitCode::from(crate::error::exit::MISMATCH));
            }
            return Err(Error::Mismatch(v.summary()));
        }
    }
    load_outcome(&report, &SinkSummary::default(), args.on_error)
}

/// Before a run trusts its state directory: `--restart` discards it;
/// otherwise the state must belong to the databases the URLs reach now
/// (see `task::identity`). Both connect first, so an unreachable endpoint
/// fails the run before anything is written.
async fn check_state(source: &Endpoint, target: &Endpoint, opts: &LoadOptions, restart: bool) -> Result<()> {
    // A first run that fails here (an endpoint unreachable) leaves no state
    // directory behind, though planning wrote its assessment there.
    let existed = opts.state_dir.exists();
    let checked = check_state_in(source, target, opts, restart).await;
    if checked.is_err() && !existed {
        let _ = std::fs::remove_dir_all(&opts.state_dir);
    }
    checked
}

async fn check_state_in(source: &Endpoint, target: &Endpoint, opts: &LoadOptions, restart: bool) -> Result<()> {
    use crate::task::identity;
    if restart {
        identity::restart(source, target, &opts.state_dir).await?;
    }
    // The selection is checked against the source before the target is
    // touched: a typo in --tables leaves no empty SQLite file behind.
    if target.kind().is_database() && !opts.state_dir.join("state.json").exists() {
        fullload::select(source, opts).await?;
    }
    identity::check(source, target, &opts.state_dir, || async {
        let planned = fullload::plan(source, target, opts).await?;
        Ok(planned.jobs.into_iter().map(|j| (j.key, j.target)).collect())
    })
    .await
}

/// The number of tables of the full load recorded as finished in the
/// state directory, when every one of them is still on the target: a run
/// of the same command has nothing to do. `None` when the run did not
/// finish, failed a table, or the target lost a table (then the command
/// runs as a new load, which says what stands in its way).
async fn finished_run(source: &Endpoint, target: &Endpoint, opts: &LoadOptions) -> Result<Option<usize>> {
    use crate::task::state::{Phase, StateStore, TableStatus};
    let Some(state) = StateStore::open(&opts.state_dir)?.load()? else { return Ok(None) };
    let ours = state.source == source.to_string() && state.target == target.to_string();
    let finished = state.phase == Phase::Done && state.capture.is_none() && state.tables.values().all(|t| t.status == TableStatus::Ready);
    if !ours || !finished || state.tables.is_empty() {
        return Ok(None);
    }
    // Planning writes an assessment; the finished run's stays as it was.
    let probe = opts.state_dir.join("complete-check");
    std::fs::create_dir_all(&probe).map_err(|source| Error::Write { path: probe.clone(), source })?;
    let planned = fullload::plan(source, target, &LoadOptions { state_dir: probe.clone(), ..opts.clone() }).await;
    let _ = std::fs::remove_dir_all(&probe);
    let planned = planned?;
    let expected: Vec<&crate::schema::target::TargetTable> = planned.jobs.iter().filter(|j| state.tables.contains_key(&j.key)).map(|j| &j.target).collect();
    if expected.len() != state.tables.len() {
        // The selection changed since: not the same run.
        return Ok(None);
    }
    let mut db = crate::db::Db::connect(target, crate::endpoint::Role::Target).await?;
    let present = crate::task::target_schema::existing_tables(&mut db, &expected).await?;
    Ok((present.len() == expected.len()).then_some(expected.len()))
}

/// The same command as this one, with what makes it load everything
/// again: `--restart` (forget the finished run), `--target-schema
/// truncate` (empty the tables it made) and `--parallel 1` (one table at a
/// time, so the target's foreign keys hold while the tables fill).
fn start_over_command() -> String {
    let mut words: Vec<String> = Vec::new();
    let mut args = std::env::args();
    let replaced = ["--target-schema", "--parallel"];
    while let Some(a) = args.next() {
        if replaced.contains(&a.as_str()) {
            args.next();
            continue;
        }
        if replaced.iter().any(|r| a.starts_with(&format!("{r}="))) {
            continue;
        }
        words.push(crate::pack::packer::shell_quote(&a));
    }
    words.extend(["--restart", "--target-schema", "truncate", "--parallel", "1"].map(String::from));
    words.join(" ")
}

/// A rerun of a finished full load: says so and how to start over, and
/// leaves the target as it is (with --validate, compares it again).
#[allow(clippy::too_many_arguments)]
fn already_complete(args: &MigrateArgs, source: &Endpoint, target: &Endpoint, opts: &LoadOptions, mapping: &Mapping, tables: usize, rt: &tokio::runtime::Runtime) -> Result<ExitCode> {
    let again = start_over_command();
    let validation = match args.validate {
        true => Some(rt.block_on(crate::task::validate::run(source, target, mapping, &opts.convert.naming, super::bars::for_cli()))?),
        false => None,
    };
    if output::get().json {
        let mut j = serde_json::json!({ "ok": true, "complete": true, "tables": tables, "state_dir": opts.state_dir, "start_over": again });
        if let Some(v) = &validation {
            j["ok"] = serde_json::Value::Bool(v.ok());
            j["validation"] = serde_json::to_value(v).unwrap_or_default();
        }
        crate::outln!("{j}");
    } else {
        output::info(format!("the migration is complete: its {tables} table(s) were loaded by an earlier run (recorded in {}); nothing to do", opts.state_dir.display()));
        output::info(format!("to load everything again from scratch, run:\n  {again}"));
        if let Some(v) = &validation {
            print_validation(v);
        }
    }
    match validation {
        Some(v) if !v.ok() => Err(Error::Mismatch(v.summary())),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The exit status of a load: failed tables fail the run, and so do records
/// set aside under `errors/` (after everything else was delivered) unless
/// `--on-error log` said bad records are expected.
fn load_outcome(report: &LoadReport, sink: &SinkSummary, on_error: OnError) -> Result<ExitCode> {
    let failed: Vec<&str> = report.tables.iter().filter(|t| t.status == "failed").map(|t| t.source.as_str()).collect();
    if !failed.is_empty() {
        return Err(Error::other(format!("{} table(s) failed: {}", failed.len(), failed.join(", "))).with_hint("see the reason above and in the migration report; rerun the same command to retry them"));
    }
    if sink.error_records > 0 && on_error != OnError::Log {
        return Err(Error::other(format!("{} record(s) could not be converted; they are under the target's errors/ prefix, each with the reason", sink.error_records))
            .with_hint("fix the values or the mapping, then load those tables again with --tables; --on-error log accepts the errors/ records and exits 0"));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--mode full-load-and-cdc` and `--mode cdc`: the load (once; a rerun
/// after it finished goes straight to the changes), then replication.
async fn full_load_and_cdc(args: &MigrateArgs, source: &Endpoint, target: &Endpoint, mut opts: LoadOptions, sink: Option<SinkOptions>) -> Result<ExitCode> {
    use crate::commands::cdc::{capture_for, print_cdc_report, replicate, Replicate};
    let store = crate::task::state::StateStore::open(&opts.state_dir)?;
    let loaded = store.load()?.is_some_and(|s| s.phase == crate::task::state::Phase::Done && s.capture.is_some());
    if args.mode == Mode::FullLoadAndCdc && !loaded {
        opts.capture = Some(args.cdc.capture_options());
        let (report, summary) = match &sink {
            Some(sink) => crate::task::load::run_sink(source, target, opts.clone(), sink.clone()).await?,
            None => (fullload::run(source, target, opts.clone()).await?, SinkSummary::default()),
        };
        print_report(&report, None, sink.as_ref().map(|_| &summary));
        copy_report(args.report.as_ref(), &report.assessment)?;
        if report.tables.iter().any(|t| t.status == "failed") {
            return Err(Error::other("some tables failed to load (see above); rerun the same command to retry them before changes are applied"));
        }
    }
    if let Some(to) = args.report.as_ref().filter(|_| args.mode == Mode::Cdc || loaded) {
        // No load in this run: the assessment is the one of the load
        // that finished earlier, if there was one.
        let earlier = opts.state_dir.join("assessment.md");
        if loaded && earlier.exists() {
            output::info("no schema converted in this run: --report gets the assessment of the load that finished earlier");
            copy_report(Some(to), &earlier)?;
        } else {
            output::warn(format!("--report {}: not written, this run converted no schema (--mode cdc applies changes only)", to.display()));
        }
    }
    let capture = capture_for(&opts.state_dir, &args.cdc, source)?;
    let run = Replicate { source, target, state_dir: opts.state_dir.clone(), on_error: args.on_error, zero_dates: args.zero_dates, sink, sql: args.sql.clone(), fence: None };
    let report = replicate(run, &opts, capture, &args.cdc).await;
    // What the target holds now, for the next run's check (also after a failure).
    if let Err(e) = crate::task::identity::record_cdc_position(target, &opts.state_dir).await {
        output::verbose(format!("could not record the target's change position: {e}"));
    }
    let report = report?;
    print_cdc_report(&report);
    if report.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--report FILE`: the assessment this run wrote into the state
/// directory (next to `assessment_md`), in the format FILE's extension
/// names (checked before the run).
fn copy_report(to: Option<&PathBuf>, assessment_md: &Path) -> Result<()> {
    let Some(to) = to else { return Ok(()) };
    let format = ReportFormat::of(to).unwrap_or(ReportFormat::Markdown);
    let from = assessment_md.with_extension(format.extension());
    if !from.exists() {
        return Err(Error::other(format!("--report {}: this run wrote no {}", to.display(), from.display())).with_hint("name the report FILE.md"));
    }
    std::fs::copy(&from, to).map_err(|source| Error::Write { path: to.clone(), source })?;
    output::info(format!("assessment report written to {}", to.display()));
    Ok(())
}

fn dialect_of(e: &Endpoint) -> Dialect {
    match e {
        Endpoint::Mysql(_) => Dialect::Mysql,
        Endpoint::Sqlite(_) => Dialect::Sqlite,
        _ => Dialect::Postgres,
    }
}

fn print_report(r: &LoadReport, v: Option<&crate::task::validate::ValidationReport>, sink: Option<&SinkSummary>) {
    if output::get().json {
        let mut j = serde_json::json!({ "ok": true, "load": r });
        if let Some(v) = v {
            j["validation"] = serde_json::to_value(v).unwrap_or_default();
            if !v.ok() {
                j["ok"] = serde_json::Value::Bool(false);
                j["error"] = serde_json::json!({ "kind": "mismatch", "message": v.summary() });
            }
        }
        if let Some(s) = sink {
            j["ok"] = serde_json::Value::Bool(s.error_records == 0);
            j["sink"] = serde_json::to_value(s).unwrap_or_default();
        }
        crate::outln!("{j}");
        return;
    }
    print_load_table(r);
    if let Some(s) = sink {
        let mut line = format!("target: {} records", s.records);
        if s.files > 0 {
            line.push_str(&format!(" in {} files ({})", s.files, human_bytes(s.bytes_written)));
        }
        if s.throttled_calls > 0 {
            line.push_str(&format!("; {} calls throttled, {} records retried", s.throttled_calls, s.retried_records));
        }
        crate::outln!("{line}");
        if s.error_records > 0 {
            output::warn(format!("{} records could not be converted: see the errors/ prefix of the target", s.error_records));
        }
    }
    if let Some(v) = v {
        print_validation(v);
    }
}

/// The table lines, totals, rejects and object summary of a load (also
/// an unpack's).
pub(crate) fn print_load_table(r: &LoadReport) {
    crate::outln!("{:<32} {:>12} {:>10} {:>9} {:>12}  status", "table", "rows", "size", "seconds", "rows/s");
    for t in &r.tables {
        let rate = human::figure(if t.seconds > 0.0 { t.rows as f64 / t.seconds } else { 0.0 });
        let status = format!("{}{}", t.status, crate::transfer::value_notes(t.zero_dates, t.rounded, t.rejected));
        crate::outln!("{:<32} {:>12} {:>10} {:>9.2} {:>12}  {status}", t.target, t.rows, human_bytes(t.bytes), t.seconds, rate);
    }
    let rate = human::figure(if r.seconds > 0.0 { r.rows as f64 / r.seconds } else { 0.0 });
    crate::outln!("{:<32} {:>12} {:>10} {:>9.2} {:>12}  {}", "total", r.rows, human_bytes(r.bytes), r.seconds, rate, if r.resumed { "resumed" } else { "" });
    if let Some(p) = &r.rejects {
        output::warn(format!("rejected rows are in {}", p.display()));
    }
    let filtered: u64 = r.tables.iter().map(|t| t.filtered).sum();
    if filtered > 0 {
        output::info(format!("{filtered} row(s) did not pass --sql's WHERE and were left out"));
    }
    match &r.objects {
        Some(objects) => {
            for line in crate::task::run_report::console_lines(objects, &r.assessment) {
                crate::outln!("{line}");
            }
        }
        None => output::info(format!("assessment report: {}", r.assessment.display())),
    }
}

pub fn run_validate(args: ValidateArgs) -> Result<ExitCode> {
    let source = Endpoint::parse(&args.source)?;
    let target = Endpoint::parse(&args.target)?;
    let mapping = build_mapping(args.tables.as_deref(), args.mapping.as_ref())?;
    let naming = crate::commands::convert::naming_options(args.identifiers, &args.schema_map, None)?;
    let v = if args.shared.coordinator.coordinator.is_some() {
        super::validate_shared::run(&args, &source, &target, &mapping, &naming)?
    } else {
        runtime()?.block_on(crate::task::validate::run(&source, &target, &mapping, &naming, super::bars::for_cli()))?
    };
    if output::get().json {
        // One object on stdout, the error included.
        let mut j = serde_json::json!({ "ok": v.ok(), "validation": v });
        if !v.ok() {
            j["error"] = serde_json::json!({ "kind": "mismatch", "message": v.summary() });
            crate::outln!("{j}");
            eprintln!("error: {}", v.summary());
            return Ok(ExitCode::from(crate::error::exit::MISMATCH));
        }
        crate::outln!("{j}");
    } else {
        print_validation(&v);
    }
    if !v.ok() {
        return Err(Error::Mismatch(v.summary()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The validation table on stdout.
fn print_validation(v: &crate::task::validate::ValidationReport) {
    let width = v.tables.iter().map(|t| t.label().chars().count()).max().unwrap_or(0).clamp(24, 60);
    crate::outln!("{:<width$} {:>12} {:>12}  {:<7} result", "table", "source rows", "target rows", "method");
    for t in &v.tables {
        let (target_rows, result) = if t.missing_table {
            ("-".to_string(), "MISSING on target")
        } else {
            (t.target_rows.to_string(), if t.equal { "equal" } else { "DIFFERENT" })
        };
        crate::outln!("{:<width$} {:>12} {:>12}  {:<7} {result}", t.label(), t.source_rows, target_rows, t.method);
        if !t.missing_columns.is_empty() {
            crate::outln!("    columns missing on target: {}", t.missing_columns.join(", "));
        }
        for (label, keys, total) in [
            ("missing on target", &t.missing_on_target, t.missing_rows),
            ("extra on target", &t.extra_on_target, t.extra_rows),
            ("changed", &t.different, t.changed_rows),
        ] {
            if !keys.is_empty() {
                let more = total.saturating_sub(keys.len() as u64);
                let tail = if more > 0 { format!(" … and {more} more ({total} rows)") } else { String::new() };
                crate::outln!("    {label}: {}{tail}", keys.join("; "));
            }
        }
        if let Some(n) = &t.note {
            crate::outln!("    {n}");
        }
    }
}
