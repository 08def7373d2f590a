//! `barge migrate --coordinator URL --task NAME` and `barge worker`: one
//! run shared by many processes through a coordinator database.
//!
//! The task stores the `migrate` command line (secrets never are on it:
//! a URL with a password is refused), so a worker needs only the
//! coordinator URL, the task name and the same password variables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::coord::lease::Plan;
use crate::coord::{Session, Settings};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::commands::output;

/// What `migrate` takes to share its run with other workers.
#[derive(Debug, Args, Clone)]
pub struct CoordinatorArgs {
    /// Share this run with other workers (`barge worker`): a PostgreSQL database that holds the plan, its leases and checkpoints in the schema barge_control (it can be the target). A database's full load or change stream is shared; a Kinesis stream's shards or a Kafka topic's partitions are leased to the workers, each reading the ones it holds. Password from BARGE_COORDINATOR_PASSWORD or ?password_file=
    #[arg(long, value_name = "URL", requires = "task")]
    pub coordinator: Option<String>,
    /// The shared run's name in the coordinator: workers join it by this name
    #[arg(long, value_name = "NAME", requires = "coordinator")]
    pub task: Option<String>,
    /// Seconds a worker's lease lasts without a heartbeat: a worker that stops for longer loses its chunks (or stream shards) to the others
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_timeout: u64,
    /// Read at most this many megabytes a second from the source, in this process (protects the source; each worker has its own cap)
    #[arg(long, value_name = "MB/s")]
    pub max_rate: Option<f64>,
    /// The task's stored command line, when `barge worker` runs it.
    #[arg(skip)]
    pub stored: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The coordinator database of the task (as given to `migrate --coordinator` or `validate --coordinator`)
    #[arg(long, value_name = "URL")]
    pub coordinator: String,
    /// The task to join (as given to `migrate --task` or `validate --task`)
    #[arg(long, value_name = "NAME")]
    pub task: String,
    /// Where this worker keeps its report and rejected rows [default: .barge/task-NAME] (a validation keeps none)
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Read at most this many megabytes a second from the source, in this worker
    #[arg(long, value_name = "MB/s")]
    pub max_rate: Option<f64>,
    /// Wait this many seconds for the task to be published before giving up (a worker may start before the `migrate` that creates the task)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
    /// A pack task: a disk (mount point) on this host for the tables this worker packs; repeat for each disk
    #[arg(long = "disk", value_name = "DIR")]
    pub disk: Vec<PathBuf>,
    /// A pack task: the host name this worker's disks are recorded under [default: the machine's host name]
    #[arg(long, value_name = "NAME")]
    pub host_name: Option<String>,
    /// A pack task: read the pack's passphrase from the first line of FILE (else $BARGE_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// Flags that belong to one process, not to the task: dropped from the
/// stored command line and from the comparison of two workers' lines.
// A pack's disks, host name and secrets are each host's own.
const PER_WORKER: &[&str] = &[
    "--coordinator",
    "--task",
    "--state-dir",
    "--max-rate",
    "--report",
    "--metrics-port",
    "--metrics",
    "--disk",
    "--host-name",
    "--passphrase-file",
    "--manifest-out",
    "--capacity",
    "--threads",
];

/// The `migrate` command line after `migrate`, as the task stores it.
pub fn shared_args(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for a in argv {
        if skip_value {
            skip_value = false;
            continue;
        }
        if let Some(flag) = PER_WORKER.iter().find(|f| a == **f || a.starts_with(&format!("{f}="))) {
            skip_value = a == *flag && *flag != "--metrics";
            continue;
        }
        out.push(a.clone());
    }
    out
}

/// Flags whose value is a file the run reads: the task keeps their
/// contents, so a worker on another host needs none of them.
const FILE_FLAGS: &[&str] = &["--mapping", "--rules", "--schema"];

/// Each file `line` names with a [`FILE_FLAGS`] flag: (index of the value
/// in `line`, the path as given).
fn file_args(line: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, a) in line.iter().enumerate() {
        for f in FILE_FLAGS {
            if a == f {
                if let Some(v) = line.get(i + 1) {
                    out.push((i + 1, v.clone()));
                }
            } else if let Some(v) = a.strip_prefix(&format!("{f}=")) {
                out.push((i, v.to_string()));
            }
        }
    }
    out
}

/// The contents of the files `line` names, read now.
fn read_task_files(line: &[String]) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for (_, path) in file_args(line) {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read { path: PathBuf::from(&path), source })?;
        files.insert(path, text);
    }
    Ok(files)
}

/// `line` with each file it names replaced by the task's copy, written
/// under `dir`: what this worker runs, whatever those paths hold here.
fn use_task_files(line: &[String], files: &BTreeMap<String, String>, dir: &std::path::Path) -> Result<Vec<String>> {
    let mut out = line.to_vec();
    for (n, (i, path)) in file_args(line).into_iter().enumerate() {
        let Some(text) = files.get(&path) else { continue };
        // Named by its place on the line, keeping only a plain extension
        // (the format may go by it): the task's text never chooses where
        // a file is written.
        let ext = std::path::Path::new(&path).extension().map(|e| e.to_string_lossy().into_owned()).filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()));
        let folder = dir.join("task-files");
        std::fs::create_dir_all(&folder).map_err(|source| Error::Write { path: folder.clone(), source })?;
        let copy = folder.join(match ext {
            Some(e) => format!("file-{n}.{e}"),
            None => format!("file-{n}"),
        });
        crate::util::fs::write_durably(&copy, text.as_bytes())?;
        let value = copy.display().to_string();
        out[i] = if out[i].starts_with("--") { format!("{}={value}", out[i].split('=').next().unwrap_or_default()) } else { value };
    }
    Ok(out)
}

/// This process's command line after the `migrate` word.
pub(crate) fn migrate_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.iter().position(|a| a == "migrate") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Checks what a coordinated run can do today.
pub fn check(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint) -> Result<()> {
    if crate::source::records::is_record_source(source) {
        return crate::coord::shards::check(args, source, target);
    }
    if !source.kind().is_database() {
        return Err(Error::usage(format!("--coordinator shares a database's full load; {source} is not a database (stream sources keep their own positions)")));
    }
    if !matches!(target, Endpoint::Postgres(_) | Endpoint::Mysql(_)) {
        return Err(Error::usage(format!("--coordinator: {target} cannot be shared by workers; the target must be PostgreSQL or MySQL/MariaDB (SQLite takes one writer)")));
    }
    if args.validate {
        return Err(Error::usage("--validate with --coordinator would compare the tables once per worker").with_hint("run `barge validate SOURCE TARGET` once the task is done (add --coordinator URL --task NAME to share the comparison among workers)"));
    }
    if args.sql.sql.is_some() {
        return Err(Error::usage("--sql with --coordinator is not supported"));
    }
    Ok(())
}

/// Opens the task `--coordinator` and `--task` name (creating it if it
/// is new), checks that this worker runs the same command line, and
/// registers the worker with its heartbeat.
pub(crate) async fn join(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, stored: Option<Vec<String>>, plan: Plan) -> Result<(Arc<Session>, tokio::task::JoinHandle<()>)> {
    let coord = &args.coordinator;
    let (Some(url), Some(task)) = (&coord.coordinator, &coord.task) else { return Err(Error::usage("--coordinator needs --task NAME")) };
    let settings = Settings { url: url.clone(), task: task.clone(), lease: Duration::from_secs(coord.lease_timeout) };
    let session = Session::open(&settings).await?;
    let joining_stored = stored.is_some();
    let line = match stored {
        Some(line) => line,
        None => shared_args(&migrate_argv()),
    };
    // A worker started by `barge worker` runs the task's own copies.
    let files = if joining_stored { BTreeMap::new() } else { read_task_files(&line)? };
    let published = session.publish_with_files("migrate", &line, &files, &source.to_string(), &target.to_string(), plan).await?;
    if !published.created && published.args != line {
        return Err(Error::Usage(format!(
            "task {task} in {} was started with other arguments:\n  stored:  {}\n  yours:   {}",
            session.display,
            published.args.join(" "),
            line.join(" ")
        ))
        .with_hint(format!("join it with `barge worker --coordinator URL --task {task}`, or choose another --task name")));
    }
    if !published.created && !joining_stored {
        if let Some((path, _)) = files.iter().find(|(p, text)| published.files.get(*p) != Some(*text)) {
            return Err(Error::Usage(format!("task {task}: {path} here differs from the copy the task was started with")).with_hint(format!(
                "join with `barge worker --coordinator URL --task {task}`, which uses the task's copy, or start a new task for the new file"
            )));
        }
    }
    if published.created {
        output::info(format!("task {task}: created in the coordinator {}; more workers join with `barge worker --coordinator URL --task {task}`", session.display));
    } else {
        output::info(format!("task {task}: joined as worker {}", session.worker));
    }
    session.register().await?;
    let heartbeat = session.start_heartbeat();
    Ok((session, heartbeat))
}

/// This process's membership of a task: its session and heartbeat.
pub struct Joined {
    pub session: Arc<Session>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Joined {
    /// Stops the heartbeat and records how this worker ended.
    pub async fn end(self, ok: bool) {
        self.heartbeat.abort();
        self.session.sign_off(if ok { "finished" } else { "failed" }).await;
    }
}

/// Runs `migrate`'s full load as one worker of the task `coord` names,
/// creating the task if it is new. With `--mode full-load-and-cdc` the
/// worker stays joined for the change stream ([`follow_after_load`]).
pub async fn run_shared(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, mut opts: crate::task::load::LoadOptions, stored: Option<Vec<String>>) -> Result<(crate::task::load::LoadReport, Option<Joined>)> {
    let changes = args.mode == crate::commands::migrate::Mode::FullLoadAndCdc;
    let (session, heartbeat) = join(args, source, target, stored, if changes { Plan::LoadThenChanges } else { Plan::Load }).await?;
    let joined = Joined { session: session.clone(), heartbeat };
    // Each process keeps its own report and rejects; the plan is shared.
    opts.state_dir = opts.state_dir.join(format!("worker-{}", session.worker));
    opts.coordinated = Some(session.clone());
    if changes {
        // The capture belongs to the task: one slot whichever worker
        // creates it (the schema step's) or reads it later.
        let mut capture = args.cdc.capture_options();
        if capture.slot.is_none() && matches!(source, Endpoint::Postgres(_)) {
            capture.slot = Some(task_slot(&session.task));
        }
        opts.capture = Some(capture);
    }
    let r = crate::task::load::run(source, target, opts).await;
    match r {
        Ok(report) if changes => Ok((report, Some(joined))),
        Ok(report) => {
            joined.end(true).await;
            Ok((report, None))
        }
        Err(e) => {
            joined.end(false).await;
            Err(e)
        }
    }
}

/// The replication slot of a task's change stream on a PostgreSQL source.
fn task_slot(task: &str) -> String {
    crate::source::capture::default_name(&format!("task {task}"))
}

/// `--mode full-load-and-cdc --coordinator`, once the shared load is
/// done: every worker stays, one reads the change stream from where the
/// schema step started capturing, the others stand by.
pub async fn follow_after_load(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, opts: crate::task::load::LoadOptions, joined: Joined) -> Result<ExitCode> {
    let state_dir = opts.state_dir.join(format!("worker-{}", joined.session.worker));
    let outcome = follow_changes(args, source, target, &opts, &joined.session, state_dir, CaptureFrom::Coordinator).await;
    if let Err(e) = &outcome {
        joined.session.abandon(e).await;
    }
    joined.end(outcome.is_ok()).await;
    outcome
}

/// Where a worker that takes the change stream finds its capture.
enum CaptureFrom {
    /// `--mode cdc`: the command line's `--start-position`, `--slot`...
    Arguments,
    /// After a shared load: what its schema step started.
    Coordinator,
}

/// `--mode cdc --coordinator`: one worker reads the change stream, the
/// others stand by for its lease. A standby that takes over resumes from
/// the position the target holds (written in the same transaction as the
/// changes), and every batch commits under the lease's fence, so a holder
/// that lost the lease cannot apply anything after the new one started.
pub async fn run_shared_changes(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, opts: crate::task::load::LoadOptions, stored: Option<Vec<String>>) -> Result<ExitCode> {
    let (session, heartbeat) = join(args, source, target, stored, Plan::Changes).await?;
    let joined = Joined { session: session.clone(), heartbeat };
    let state_dir = opts.state_dir.join(format!("worker-{}", session.worker));
    let outcome = follow_changes(args, source, target, &opts, &session, state_dir, CaptureFrom::Arguments).await;
    if let Err(e) = &outcome {
        session.abandon(e).await;
    }
    joined.end(outcome.is_ok()).await;
    outcome
}

/// Stands by for the task's change stream, reads it while this worker
/// holds its lease, and stands by again if another worker takes it over.
async fn follow_changes(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, opts: &crate::task::load::LoadOptions, session: &Arc<Session>, state_dir: PathBuf, from: CaptureFrom) -> Result<ExitCode> {
    use crate::commands::cdc::{capture_for, print_cdc_report, replicate, Replicate};
    use crate::coord::lease::Kind;
    let mut dst = crate::db::Db::connect(target, crate::endpoint::Role::Target).await?;
    crate::coord::fence::prepare(&mut dst).await?;
    drop(dst);
    loop {
        let mut said = false;
        let lease = loop {
            let p = session.progress().await?;
            if p.state == "failed" {
                return Err(crate::coord::lease::task_failed(&session.task, p.error.as_deref()));
            }
            if let Some(l) = session.lease(Kind::Cdc).await? {
                break l;
            }
            if !said {
                output::info(format!("task {}: standing by; another worker reads the changes", session.task));
                said = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                _ = crate::util::interrupt::requested() => return Err(Error::Interrupted),
            }
        };
        if lease.dirty() {
            output::warn(format!("task {}: taking over the change stream from a worker that stopped; resuming from the target's saved position", session.task));
        } else {
            output::info(format!("task {}: this worker reads the changes", session.task));
        }
        let mut cdc = args.cdc.clone();
        let capture = match from {
            CaptureFrom::Arguments => {
                if cdc.slot.is_none() && matches!(source, Endpoint::Postgres(_)) {
                    // One slot for the task, whichever worker reads it.
                    cdc.slot = Some(task_slot(&session.task));
                }
                capture_for(&state_dir, &cdc, source)?
            }
            CaptureFrom::Coordinator => {
                let v = session.capture().await?.ok_or_else(|| Error::other(format!("task {}: the load is done but the coordinator holds no change capture for it", session.task)).with_hint("start a new task: the load's schema step records where the changes start"))?;
                serde_json::from_value(v).map_err(|e| Error::other(format!("task {}: the coordinator's change capture does not read: {e}", session.task)))?
            }
        };
        let fence = crate::coord::fence::Token { task: session.task.clone(), unit: lease.id, epoch: lease.epoch };
        // The fence before the position: a reader stalled mid-batch
        // commits first or not at all.
        if let Err(e) = crate::coord::fence::raise(target, &fence, session.lease.as_secs().max(1)).await {
            if !e.is_retriable() {
                return Err(e);
            }
            output::warn(format!("task {}: the change stream's last reader still holds its batch open on the target; standing by again ({e})", session.task));
            session.give_back(&lease, &e).await?;
            continue;
        }
        let run = Replicate { source, target, state_dir: state_dir.clone(), on_error: args.on_error, zero_dates: args.zero_dates, sink: None, sql: args.sql.clone(), fence: Some(fence) };
        match replicate(run, opts, capture, &cdc).await {
            Ok(report) => {
                print_cdc_report(&report);
                if report.interrupted {
                    session.abandon(&Error::Interrupted).await;
                    return Err(Error::Interrupted);
                }
                session.finish(&lease, &Default::default()).await?;
                session.finish_task(None).await?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) if crate::coord::fence::is_fenced(&e) => {
                output::warn(format!("task {}: another worker took the change stream over; this one stands by again ({e})", session.task));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `barge worker`: reads the task's command line from the coordinator and
/// runs it as one more worker.
pub fn run(args: WorkerArgs) -> Result<ExitCode> {
    crate::coord::check_task_name(&args.task)?;
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::PerCore)?;
    let settings = Settings { url: args.coordinator.clone(), task: args.task.clone(), lease: Duration::from_secs(30) };
    let (command, line, files) = rt.block_on(async {
        let session = Session::open(&settings).await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(args.wait);
        loop {
            match session.task_args().await? {
                Some((cmd, line)) if cmd == "migrate" || cmd == "pack" || cmd == "validate" => return Ok((cmd, line, session.task_files().await?)),
                Some((cmd, _)) => return Err(Error::other(format!("task {} is a `{cmd}` task; this barge's workers join migrate, pack and validate tasks", args.task))),
                None if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
                None => {
                    return Err(Error::Other {
                        message: format!("task {} does not exist in the coordinator {}", args.task, session.display),
                        hint: Some(format!("start it with `barge migrate SOURCE TARGET --coordinator URL --task {}` (workers may start before it: --wait SECONDS)", args.task)),
                    })
                }
            }
        }
    })?;
    drop(rt);
    if command == "pack" {
        return run_pack_worker(&args, line);
    }
    if !args.disk.is_empty() || args.host_name.is_some() || args.passphrase_file.is_some() {
        return Err(Error::usage(format!("task {} is a {command} task: --disk, --host-name and --passphrase-file are for pack tasks", args.task)));
    }
    let dir = args.state_dir.clone().unwrap_or_else(|| PathBuf::from(".barge").join(format!("task-{}", args.task)));
    let mut argv = vec!["barge".to_string(), command.clone()];
    argv.extend(use_task_files(&line, &files, &dir)?);
    argv.extend(["--coordinator".to_string(), args.coordinator.clone(), "--task".to_string(), args.task.clone()]);
    // A validation keeps no state: nothing to put in a directory.
    if command == "migrate" {
        argv.extend(["--state-dir".to_string(), dir.display().to_string()]);
    }
    if let Some(r) = args.max_rate {
        argv.extend(["--max-rate".to_string(), r.to_string()]);
    }
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| Error::other(format!("task {}: its stored command line does not parse with this barge: {e}", args.task)).with_hint("run the same barge version on every worker"))?;
    match cli.command {
        crate::cli::Command::Migrate(mut m) => {
            m.coordinator.stored = Some(line);
            crate::commands::migrate::run(*m)
        }
        crate::cli::Command::Validate(mut v) => {
            v.shared.coordinator.stored = Some(line);
            crate::commands::migrate::run_validate(v)
        }
        _ => Err(Error::other("the stored command line is not a migrate or validate command")),
    }
}

/// `barge worker` on a pack task: the stored `pack` line with this
/// worker's own disks, host name and passphrase file.
fn run_pack_worker(args: &WorkerArgs, line: Vec<String>) -> Result<ExitCode> {
    if args.max_rate.is_some() {
        return Err(Error::usage(format!("task {} is a pack task: --max-rate applies to migrate tasks", args.task)));
    }
    if args.disk.is_empty() {
        return Err(Error::usage(format!("task {} is a pack task: name this worker's disks with --disk DIR (one flag per disk)", args.task)));
    }
    let mut argv = vec!["barge".to_string(), "pack".to_string()];
    argv.extend(line.iter().cloned());
    argv.extend(["--coordinator".to_string(), args.coordinator.clone(), "--task".to_string(), args.task.clone()]);
    for d in &args.disk {
        argv.extend(["--disk".to_string(), d.display().to_string()]);
    }
    if let Some(h) = &args.host_name {
        argv.extend(["--host-name".to_string(), h.clone()]);
    }
    if let Some(f) = &args.passphrase_file {
        argv.extend(["--passphrase-file".to_string(), f.display().to_string()]);
    }
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| Error::other(format!("task {}: its stored command line does not parse with this barge: {e}", args.task)).with_hint("run the same barge version on every worker"))?;
    match cli.command {
        crate::cli::Command::Pack(mut p) => {
            p.shared.stored = Some(line);
            crate::commands::pack::run_pack(p)
        }
        _ => Err(Error::other("the stored command line is not a pack command")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker runs the task's copies of the files its command line
    /// names, in both flag forms, written where the task's text cannot
    /// steer them.
    #[test]
    fn a_worker_runs_the_tasks_copies_of_its_files() {
        let line: Vec<String> = ["pg://a", "pg://b", "--mapping=../../etc/m.json", "--rules", "r", "--chunk-rows", "5"].iter().map(|s| s.to_string()).collect();
        let files: BTreeMap<String, String> = [("../../etc/m.json".to_string(), "{\"rules\": []}".to_string()), ("r".to_string(), "rule".to_string())].into();
        let dir = tempfile::tempdir().unwrap();
        let out = use_task_files(&line, &files, dir.path()).unwrap();
        let copies = dir.path().join("task-files");
        assert_eq!(out[2], format!("--mapping={}", copies.join("file-0.json").display()));
        assert_eq!(out[4], copies.join("file-1").display().to_string());
        assert_eq!(out[5..], line[5..]);
        assert_eq!(std::fs::read_to_string(copies.join("file-0.json")).unwrap(), "{\"rules\": []}");
        assert_eq!(std::fs::read_to_string(copies.join("file-1")).unwrap(), "rule");
        // A file the task does not hold is left as named.
        let bare = use_task_files(&line, &BTreeMap::new(), dir.path()).unwrap();
        assert_eq!(bare, line);
    }
}
