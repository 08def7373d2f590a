//! Change data capture on the command line: the options `migrate` takes
//! for it, and `barge status` / `barge cleanup`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::cdc::Position;
use crate::source::capture::{Capture, CaptureOptions};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::commands::output;
use crate::task::cdc::{self as replication, CdcOptions, CdcReport, StopAt};
use crate::task::state::StateStore;
use crate::transfer::{Counters, OnError, Rejects, RowPolicy, ZeroDates};

#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Change data capture")]
pub struct CdcArgs {
    /// Where the changes start (with --mode cdc): pg:LSN, mysql:FILE:POS or sqlite:SEQ, as printed by the full load or `barge unpack`; for a stream or files: earliest (or trim-horizon), latest, at-timestamp:TIME, checkpoint (the default: a shard with a saved position always resumes from it), or shards:SHARD=OFFSET,…
    #[arg(long, value_name = "POSITION")]
    pub start_position: Option<StartPosition>,
    /// Stop once the source reaches this position, or commits past this time (RFC 3339)
    #[arg(long, value_name = "POSITION|TIME")]
    pub stop_at: Option<StopAt>,
    /// PostgreSQL replication slot to create or use [default: barge_<hash of the task>]
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// PostgreSQL publication to create or use [default: the slot's name]
    #[arg(long, value_name = "NAME")]
    pub publication: Option<String>,
    /// Most changes applied in one target transaction
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    pub batch_changes: usize,
    /// Seconds between heartbeats written to an idle PostgreSQL source, so its slot keeps releasing WAL (0: none)
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub heartbeat: u64,
    /// How often a SQLite source's change table is polled, in milliseconds
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub poll_interval: u64,
    /// Seconds the change stream may stay silent (no change, keepalive or heartbeat) before barge counts the source as lost and reconnects
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub stream_timeout: u64,
    /// Seconds barge keeps reconnecting to a lost source or target (with backoff) before it gives up and exits non-zero
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub reconnect_timeout: u64,
    /// Tables to drop on the target and copy again from the source before changes resume (a table stopped by a schema change barge does not carry), comma-separated
    #[arg(long, value_name = "TABLES", value_delimiter = ',')]
    pub reload: Vec<String>,
}

/// `--start-position`: a source's own position, or for a stream, where
/// in it to start.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPosition {
    At(Position),
    Stream(crate::source::records::StartAt),
}

impl std::str::FromStr for StartPosition {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.parse::<Position>() {
            Ok(p) => Ok(StartPosition::At(p)),
            Err(as_position) => match s.parse() {
                Ok(at) => Ok(StartPosition::Stream(at)),
                Err(_) if s.contains(':') && !s.starts_with("at-timestamp:") => Err(as_position),
                Err(as_stream) => Err(as_stream),
            },
        }
    }
}

impl CdcArgs {
    /// The database position `--start-position` names, if any.
    fn database_position(&self) -> Result<Option<Position>> {
        match &self.start_position {
            None => Ok(None),
            Some(StartPosition::At(p)) => Ok(Some(p.clone())),
            Some(StartPosition::Stream(_)) => Err(Error::usage("--start-position earliest, latest and at-timestamp: are for streams and files; a database source starts at pg:LSN, mysql:FILE:POS or sqlite:SEQ")),
        }
    }

    pub fn capture_options(&self) -> CaptureOptions {
        CaptureOptions { slot: self.slot.clone(), publication: self.publication.clone() }
    }
}

/// The capture objects of a task: as recorded by its full load, else as
/// named on the command line or derived from the state directory.
pub fn capture_for(state_dir: &std::path::Path, args: &CdcArgs, source: &Endpoint) -> Result<Capture> {
    let recorded = StateStore::open(state_dir)?.load()?.and_then(|s| s.capture);
    if let Some(mut c) = recorded {
        if args.slot.is_some() {
            c.slot = args.slot.clone();
        }
        if args.publication.is_some() {
            c.publication = args.publication.clone();
        }
        if let Some(p) = args.database_position()? {
            c.position = p;
        }
        return Ok(c);
    }
    let is_pg = matches!(source, Endpoint::Postgres(_));
    let slot = is_pg.then(|| args.slot.clone().unwrap_or_else(|| crate::source::capture::default_name(&state_dir.display().to_string())));
    let publication = is_pg.then(|| args.publication.clone().or_else(|| slot.clone()).unwrap_or_default());
    let position = match (args.database_position()?, source) {
        (Some(p), _) => p,
        // 0/0: the slot's own confirmed position.
        (None, Endpoint::Postgres(_)) => Position::pg(0),
        (None, Endpoint::Sqlite(_)) => Position::SqliteSeq { seq: 0 },
        (None, _) => {
            return Err(Error::usage(
                "--mode cdc needs --start-position mysql:FILE:POS (printed by the full load or `barge unpack`), unless the target already holds a saved position",
            ))
        }
    };
    Ok(Capture { position, slot, publication, replica_identity: Vec::new(), records: None })
}

pub struct Replicate<'a> {
    pub source: &'a Endpoint,
    pub target: &'a Endpoint,
    pub state_dir: PathBuf,
    pub on_error: OnError,
    pub zero_dates: ZeroDates,
    /// Files and streams: how to write them (None: a database target).
    pub sink: Option<crate::sink::SinkOptions>,
    /// `--sql`: the query every change goes through.
    pub sql: crate::commands::sql_args::SqlArgs,
    /// A shared run's lease on the change stream (`--coordinator`).
    pub fence: Option<crate::coord::fence::Token>,
}

/// Runs replication to the end (stop position or time, source end, or
/// Ctrl-C) and prints what happened. The tables, their target names and
/// types come from the same selection, mapping and conversion as the
/// full load (`load`).
pub async fn replicate(r: Replicate<'_>, load: &crate::task::load::LoadOptions, capture: Capture, args: &CdcArgs) -> Result<CdcReport> {
    let tables = crate::task::load::plan_tables(r.source, r.target, load).await?;
    let converter = converter(r.source, r.target, load)?;
    replicate_tables(r, tables, converter, capture, args).await
}

/// [`replicate`] of tables planned by the caller (a record source's one
/// table).
pub async fn replicate_tables(r: Replicate<'_>, tables: crate::cdc::Tables, converter: crate::cdc::evolve::Converter, capture: Capture, args: &CdcArgs) -> Result<CdcReport> {
    let mut reload = Vec::new();
    for item in &args.reload {
        let wanted = match item.split_once('.') {
            Some((s, t)) => crate::model::QualifiedName::new(Some(s), t),
            None => crate::model::QualifiedName::bare(item),
        };
        let found = tables.keys().find(|k| **k == wanted).or_else(|| tables.keys().find(|k| k.loosely_eq(&wanted)));
        match found {
            Some(k) => reload.push(k.clone()),
            None => return Err(Error::usage(format!("--reload {item}: no such table among the ones this run captures ({})", tables.keys().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")))),
        }
    }
    let bounded = capture.records.as_ref().is_some_and(|r| !r.follow);
    let (tables, sql) = match r.sql.plan(tables.clone(), &converter, capture.records.is_some(), bounded)? {
        Some((t, run)) => (t, Some(run)),
        None => (tables, None),
    };
    // The name of the target's position row: a shared run's workers all
    // resume from the same one.
    let task = match (&r.fence, capture.records.as_ref().and_then(|c| c.lease.as_ref())) {
        // One row per shard of a stream whose shards are leased.
        (Some(f), Some(lease)) => format!("task-{}.{}", f.task, lease.shard),
        (Some(f), None) => format!("task-{}", f.task),
        (None, _) => r.state_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "barge".into()),
    };
    let policy = RowPolicy { on_error: r.on_error, zero_dates: r.zero_dates, rejects: Rejects::new(r.state_dir.join("rejects.jsonl")), counters: Arc::new(Counters::default()) };
    let capture_is_records = capture.records.is_some();
    // A worker runs one loop per shard it leases, and says so itself.
    let one_of_many = capture.records.as_ref().is_some_and(|c| c.lease.is_some());
    let opts = CdcOptions {
        task,
        start: capture.position.clone(),
        capture,
        stop_at: args.stop_at.clone(),
        state_dir: r.state_dir.clone(),
        policy,
        batch_changes: args.batch_changes.max(1),
        heartbeat: Duration::from_secs(args.heartbeat),
        poll_interval: Duration::from_millis(args.poll_interval.max(10)),
        on_status: output::get().json.then(|| -> crate::task::cdc::StatusHook { Arc::new(|status| crate::outln!("{}", serde_json::to_string(status).unwrap_or_default())) }),
        sink: r.sink,
        stream_timeout: Duration::from_secs(args.stream_timeout.max(1)),
        reconnect_timeout: Duration::from_secs(args.reconnect_timeout),
        converter,
        reload,
        sql,
        fence: r.fence.clone(),
    };
    if !output::get().json && !one_of_many {
        let what = if capture_is_records { "records" } else { "changes" };
        output::info(format!("replicating {what}; Ctrl-C stops after the batch in flight, and rerunning the command resumes"));
    }
    replication::run(r.source, r.target, tables, opts).await
}

/// Converts tables the way the full load does: to the target's dialect,
/// or, for files and streams, keeping the source's names and types.
pub fn converter(source: &Endpoint, target: &Endpoint, load: &crate::task::load::LoadOptions) -> Result<crate::cdc::evolve::Converter> {
    let mut convert = load.convert.clone();
    convert.source = match source {
        Endpoint::Mysql(_) => crate::model::Dialect::Mysql,
        Endpoint::Sqlite(_) => crate::model::Dialect::Sqlite,
        _ => crate::model::Dialect::Postgres,
    };
    if target.kind().is_database() {
        convert.target = crate::task::target_schema::target_dialect(target)?;
    } else {
        convert.target = convert.source;
        convert.naming.case = crate::schema::naming::IdentCase::Preserve;
    }
    Ok(crate::cdc::evolve::Converter { convert, mapping: load.mapping.clone() })
}

pub fn print_cdc_report(report: &CdcReport) {
    let mut s = report.status.clone();
    not_running(&mut s);
    let s = &s;
    if output::get().json {
        crate::outln!("{}", serde_json::json!({ "ok": true, "cdc": s }));
        return;
    }
    print_status(s);
}

/// How long a running replication may go without rewriting its status
/// file (it does so about once a second, and after each batch).
const HEARTBEAT_STALE: Duration = Duration::from_secs(60);

/// Whether the run that wrote `s` is still replicating, and if not, why
/// barge thinks so.
fn liveness(s: &replication::Status) -> std::result::Result<(), String> {
    if let Some(how) = &s.stopped {
        return Err(format!("{how} at {}", s.updated_at));
    }
    let Some(pid) = s.pid else { return Err(format!("no process recorded; last update {}", s.updated_at)) };
    // Signal 0 checks that the process exists (EPERM: it does, as another user).
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) == 0 } || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !alive {
        return Err(format!("process {pid} is no longer running (killed or crashed); last update {}", s.updated_at));
    }
    let age = chrono::DateTime::parse_from_rfc3339(&s.updated_at).map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default()).unwrap_or(Duration::MAX);
    if age > HEARTBEAT_STALE {
        return Err(format!("process {pid} has not reported for {} s (stuck, or another process now has its pid); last update {}", age.as_secs(), s.updated_at));
    }
    Ok(())
}

/// Table states as of a run that is no longer replicating: a table that
/// was live is not live now.
fn not_running(s: &mut replication::Status) {
    for t in s.tables.values_mut() {
        if !t.state.starts_with("stopped") {
            t.state = format!("not running (was {})", t.state);
        }
    }
}

fn print_status(s: &replication::Status) {
    crate::outln!("{:<32} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}  state", "table", "changes", "inserts", "updates", "deletes", "changes/s", "lag s");
    for (name, t) in &s.tables {
        crate::outln!(
            "{:<32} {:>10} {:>9} {:>9} {:>9} {:>9.0} {:>10.3}  {}",
            name, t.changes, t.inserts, t.updates, t.deletes, t.changes_per_second, t.lag_seconds, t.state
        );
    }
    crate::outln!(
        "position {}  transactions {}  changes {}  lag {:.3} s{}{}",
        s.position.as_deref().unwrap_or("-"),
        s.applied_transactions,
        s.applied_changes,
        s.lag_seconds,
        s.lag_bytes.map(|b| format!(" / {b} bytes")).unwrap_or_default(),
        if s.retries > 0 { format!("  retries {}", s.retries) } else { String::new() }
    );
    // What did not reach the target is said, not only counted.
    if s.rejected > 0 {
        output::warn(format!("{} row(s) or record(s) the target could not take are not on it: they are in rejects.jsonl in the state directory, each with the reason", s.rejected));
    }
    if s.error_records > 0 {
        output::warn(format!("{} record(s) could not be converted and are not in the data files: they are under the target's errors/ prefix, each with the reason", s.error_records));
    }
    if s.filtered > 0 {
        output::info(format!("{} row(s) or record(s) did not pass --sql's WHERE and were left out", s.filtered));
    }
    if s.late > 0 {
        output::warn(format!("{} record(s) arrived after their windows were emitted (see --allowed-lateness): not in the results; they are in rejects.jsonl in the state directory, each with its time", s.late));
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The migration's source URL (with TARGET, finds the default state directory)
    pub source: Option<String>,
    /// The migration's target URL
    pub target: Option<String>,
    /// The state directory the migration uses
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Redraw a live view every second (per table: state, rows, changes/s, lag; the lag of the last minutes); q quits. Plain lines when not on a terminal or TERM=dumb
    #[arg(long)]
    pub watch: bool,
    /// Show a shared run instead: every worker of the coordinator's tasks, its leases and heartbeat age, and progress per table (password from BARGE_COORDINATOR_PASSWORD)
    #[arg(long, value_name = "URL", conflicts_with_all = ["source", "target", "state_dir", "watch"])]
    pub coordinator: Option<String>,
    /// With --coordinator: only this task
    #[arg(long, value_name = "NAME", requires = "coordinator")]
    pub task: Option<String>,
}

fn state_dir_of(source: Option<&str>, target: Option<&str>, dir: Option<&PathBuf>) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.clone());
    }
    match (source, target) {
        (Some(s), Some(t)) => Ok(crate::commands::migrate::default_state_dir(&Endpoint::parse(s)?, &Endpoint::parse(t)?)),
        _ => Err(Error::usage("give SOURCE and TARGET (as given to `barge migrate`) or --state-dir DIR")),
    }
}

/// What a task's state directory says now: the full load's state, and
/// the replication's status with whether its process still runs (`Err`:
/// why not).
pub struct Snapshot {
    pub load: Option<crate::task::state::RunState>,
    pub cdc: Option<(replication::Status, std::result::Result<(), String>)>,
}

pub fn snapshot(dir: &std::path::Path) -> Result<Snapshot> {
    let load = StateStore::open(dir)?.load()?;
    let path = replication::status_path(dir);
    let cdc: Option<serde_json::Value> = match std::fs::read(&path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| Error::Input { file: path.display().to_string(), line: e.line(), message: e.to_string(), hint: None })?),
        Err(_) => None,
    };
    if load.is_none() && cdc.is_none() {
        return Err(Error::usage(format!("no migration has run with state in {}", dir.display())));
    }
    let cdc = match cdc {
        Some(c) => {
            let mut s: replication::Status = serde_json::from_value(c).map_err(|e| Error::other(format!("{}: {e}", path.display())))?;
            let live = liveness(&s);
            if live.is_err() {
                not_running(&mut s);
            }
            Some((s, live))
        }
        None => None,
    };
    Ok(Snapshot { load, cdc })
}

pub fn run_status(args: StatusArgs) -> Result<ExitCode> {
    if let Some(url) = &args.coordinator {
        let rt = crate::util::runtime::build(crate::util::runtime::Workers::Fixed(1))?;
        let tasks = rt.block_on(crate::coord::status::read(url, args.task.as_deref()))?;
        if output::get().json {
            crate::outln!("{}", serde_json::json!({ "tasks": tasks }));
        } else {
            print!("{}", crate::coord::status::render(&tasks));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dir = state_dir_of(args.source.as_deref(), args.target.as_deref(), args.state_dir.as_ref())?;
    if args.watch {
        return crate::commands::watch::run(&dir);
    }
    let Snapshot { load, cdc } = snapshot(&dir)?;
    if output::get().json {
        let cdc = cdc.as_ref().map(|(s, live)| {
            let mut j = serde_json::to_value(s).unwrap_or_default();
            j["running"] = serde_json::Value::Bool(live.is_ok());
            if let Err(why) = live {
                j["not_running"] = serde_json::Value::String(why.clone());
            }
            j
        });
        crate::outln!("{}", serde_json::json!({ "state_dir": dir, "load": load, "cdc": cdc }));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(l) = &load {
        crate::outln!("full load: {:?}, {} table(s){}", l.phase, l.tables.len(), l.capture.as_ref().map(|c| format!(", changes captured from {}", c.position)).unwrap_or_default());
        for (name, t) in &l.tables {
            if l.capture.is_none() || cdc.is_none() {
                crate::outln!("  {name:<30} {:?} ({} rows)", t.status, t.rows());
            }
        }
    }
    if let Some((s, live)) = cdc {
        match &live {
            Ok(()) => crate::outln!("change data capture: running (process {}, updated {}):", s.pid.unwrap_or(0), s.updated_at),
            Err(why) => crate::outln!("change data capture: not running ({why}):"),
        }
        print_status(&s);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The migration's source URL: its capture objects are removed
    pub source: String,
    /// The migration's target URL (finds the default state directory)
    pub target: Option<String>,
    /// The state directory the migration uses
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// PostgreSQL replication slot to drop
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// PostgreSQL publication to drop [default: the slot's name]
    #[arg(long, value_name = "NAME")]
    pub publication: Option<String>,
}

pub fn run_cleanup(args: CleanupArgs) -> Result<ExitCode> {
    let source = Endpoint::parse(&args.source)?;
    let dir = state_dir_of(Some(&args.source), args.target.as_deref(), args.state_dir.as_ref()).ok();
    let recorded = match &dir {
        Some(dir) => StateStore::open(dir)?.load()?.and_then(|s| s.capture),
        None => None,
    };
    let mut capture = recorded.unwrap_or(Capture { position: Position::Snapshot, slot: None, publication: None, replica_identity: Vec::new(), records: None });
    // Tables captured from the middle of the run (created at the source,
    // reloaded) have their replica identity recorded with the run's schema state.
    if let Some(dir) = dir.as_ref().filter(|d| d.join(crate::cdc::schema_state::FILE_NAME).exists()) {
        capture.replica_identity.extend(crate::cdc::schema_state::SchemaState::load(dir)?.replica_identity);
    }
    if args.slot.is_some() {
        capture.slot = args.slot.clone();
        capture.publication = args.publication.clone().or(args.slot.clone());
    }
    if matches!(source, Endpoint::Postgres(_)) && capture.slot.is_none() {
        return Err(Error::usage("which slot? give SOURCE TARGET as given to `barge migrate`, --state-dir DIR, or --slot NAME"));
    }
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::PerCore)?;
    let done = rt.block_on(crate::source::capture::cleanup(&source, &capture))?;
    if output::get().json {
        crate::outln!("{}", serde_json::json!({ "ok": true, "removed": done }));
    } else if done.is_empty() {
        output::info("nothing to remove");
    } else {
        for d in done {
            crate::outln!("{d}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
