//! `barge migrate --coordinator URL --task NAME` and `barge worker`: one
//! run shared by many processes through a coordinator database.
//!
//! The task stores the `migrate` command line (secrets never are on it:
//! a URL with a password is refused), so a worker needs only the
//! coordinator URL, the task name and the same password variables.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

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
    /// The coordinator database of the task (as given to `migrate --coordinator`)
    #[arg(long, value_name = "URL")]
    pub coordinator: String,
    /// The task to join (as given to `migrate --task`)
    #[arg(long, value_name = "NAME")]
    pub task: String,
    /// Where this worker keeps its report and rejected rows [default: .barge/task-NAME]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Read at most this many megabytes a second from the source, in this worker
    #[arg(long, value_name = "MB/s")]
    pub max_rate: Option<f64>,
    /// Wait this many seconds for the task to be published before giving up (a worker may start before the `migrate` that creates the task)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
}

/// Flags that belong to one process, not to the task: dropped from the
/// stored command line and from the comparison of two workers' lines.
const PER_WORKER: &[&str] = &["--coordinator", "--task", "--state-dir", "--max-rate", "--report", "--metrics-port", "--metrics"];

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
    use crate::commands::migrate::Mode;
    if crate::source::records::is_record_source(source) {
        return crate::coord::shards::check(args, source, target);
    }
    if !source.kind().is_database() {
        return Err(Error::usage(format!("--coordinator shares a database's full load; {source} is not a database (stream sources keep their own positions)")));
    }
    if !matches!(target, Endpoint::Postgres(_) | Endpoint::Mysql(_)) {
        return Err(Error::usage(format!("--coordinator: {target} cannot be shared by workers; the target must be PostgreSQL or MySQL/MariaDB (SQLite takes one writer)")));
    }
    if args.mode == Mode::FullLoadAndCdc {
        return Err(Error::usage("--coordinator shares a full load (--mode full-load) or a change stream (--mode cdc), one task each").with_hint("run the full load as one task, then --mode cdc --start-position POSITION (printed by the load) as another, with standby workers"));
    }
    if args.validate {
        return Err(Error::usage("--validate with --coordinator would compare the tables once per worker").with_hint("run `barge validate SOURCE TARGET` once the task is done"));
    }
    if args.sql.sql.is_some() {
        return Err(Error::usage("--sql with --coordinator is not supported"));
    }
    Ok(())
}

/// Opens the task `--coordinator` and `--task` name (creating it if it
/// is new), checks that this worker runs the same command line, and
/// registers the worker with its heartbeat.
async fn join(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, stored: Option<Vec<String>>, changes: bool) -> Result<(Arc<Session>, tokio::task::JoinHandle<()>)> {
    let coord = &args.coordinator;
    let (Some(url), Some(task)) = (&coord.coordinator, &coord.task) else { return Err(Error::usage("--coordinator needs --task NAME")) };
    let settings = Settings { url: url.clone(), task: task.clone(), lease: Duration::from_secs(coord.lease_timeout) };
    let session = Session::open(&settings).await?;
    let line = match stored {
        Some(line) => line,
        None => shared_args(&migrate_argv()),
    };
    let published = session.publish("migrate", &line, &source.to_string(), &target.to_string(), changes).await?;
    if !published.created && published.args != line {
        return Err(Error::Usage(format!(
            "task {task} in {} was started with other arguments:\n  stored:  {}\n  yours:   {}",
            session.display,
            published.args.join(" "),
            line.join(" ")
        ))
        .with_hint(format!("join it with `barge worker --coordinator URL --task {task}`, or choose another --task name")));
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

/// Runs `migrate` as one worker of the task `coord` names, creating the
/// task if it is new.
pub async fn run_shared(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, mut opts: crate::task::load::LoadOptions, stored: Option<Vec<String>>) -> Result<(crate::task::load::LoadReport, Arc<Session>)> {
    let (session, heartbeat) = join(args, source, target, stored, false).await?;
    // Each process keeps its own report and rejects; the plan is shared.
    opts.state_dir = opts.state_dir.join(format!("worker-{}", session.worker));
    opts.coordinated = Some(session.clone());
    let r = crate::task::load::run(source, target, opts).await;
    heartbeat.abort();
    session.sign_off(if r.is_ok() { "finished" } else { "failed" }).await;
    r.map(|report| (report, session))
}

/// `--mode cdc --coordinator`: one worker reads the change stream, the
/// others stand by for its lease. A standby that takes over resumes from
/// the position the target holds (written in the same transaction as the
/// changes), and every batch commits under the lease's fence, so a holder
/// that lost the lease cannot apply anything after the new one started.
pub async fn run_shared_changes(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, opts: crate::task::load::LoadOptions, stored: Option<Vec<String>>) -> Result<ExitCode> {
    use crate::commands::cdc::{capture_for, print_cdc_report, replicate, Replicate};
    use crate::coord::lease::Kind;
    let (session, heartbeat) = join(args, source, target, stored, true).await?;
    let mut dst = crate::db::Db::connect(target, crate::endpoint::Role::Target).await?;
    crate::coord::fence::prepare(&mut dst).await?;
    drop(dst);
    let state_dir = opts.state_dir.join(format!("worker-{}", session.worker));
    let outcome = async {
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
            if cdc.slot.is_none() && matches!(source, Endpoint::Postgres(_)) {
                // One slot for the task, whichever worker reads it.
                cdc.slot = Some(crate::source::capture::default_name(&format!("task {}", session.task)));
            }
            let capture = capture_for(&state_dir, &cdc, source)?;
            let fence = crate::coord::fence::Token { task: session.task.clone(), unit: lease.id, epoch: lease.epoch };
            let run = Replicate { source, target, state_dir: state_dir.clone(), on_error: args.on_error, zero_dates: args.zero_dates, sink: None, sql: args.sql.clone(), fence: Some(fence) };
            match replicate(run, &opts, capture, &cdc).await {
                Ok(report) => {
                    print_cdc_report(&report);
                    if report.interrupted {
                        session.abandon(&Error::Interrupted).await;
                        return Err(Error::Interrupted);
                    }
                    session.finish(&lease, &Default::default()).await?;
                    session.finish_task(&serde_json::Value::Null).await?;
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) if crate::coord::fence::is_fenced(&e) => {
                    output::warn(format!("task {}: another worker took the change stream over; this one stands by again ({e})", session.task));
                }
                Err(e) => return Err(e),
            }
        }
    }
    .await;
    if let Err(e) = &outcome {
        session.abandon(e).await;
    }
    heartbeat.abort();
    session.sign_off(if outcome.is_ok() { "finished" } else { "failed" }).await;
    outcome
}

/// `barge worker`: reads the task's command line from the coordinator and
/// runs it as one more worker.
pub fn run(args: WorkerArgs) -> Result<ExitCode> {
    crate::coord::check_task_name(&args.task)?;
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::PerCore)?;
    let settings = Settings { url: args.coordinator.clone(), task: args.task.clone(), lease: Duration::from_secs(30) };
    let line = rt.block_on(async {
        let session = Session::open(&settings).await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(args.wait);
        loop {
            match session.task_args().await? {
                Some((cmd, line)) if cmd == "migrate" => return Ok(line),
                Some((cmd, _)) => return Err(Error::other(format!("task {} is a `{cmd}` task; this barge's workers join migrate tasks", args.task))),
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
    let mut argv = vec!["barge".to_string(), "migrate".to_string()];
    argv.extend(line.iter().cloned());
    argv.extend(["--coordinator".to_string(), args.coordinator.clone(), "--task".to_string(), args.task.clone()]);
    let dir = args.state_dir.clone().unwrap_or_else(|| PathBuf::from(".barge").join(format!("task-{}", args.task)));
    argv.extend(["--state-dir".to_string(), dir.display().to_string()]);
    if let Some(r) = args.max_rate {
        argv.extend(["--max-rate".to_string(), r.to_string()]);
    }
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| Error::other(format!("task {}: its stored command line does not parse with this barge: {e}", args.task)).with_hint("run the same barge version on every worker"))?;
    match cli.command {
        crate::cli::Command::Migrate(mut m) => {
            m.coordinator.stored = Some(line);
            crate::commands::migrate::run(*m)
        }
        _ => Err(Error::other("the stored command line is not a migrate command")),
    }
}
