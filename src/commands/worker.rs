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
    /// Share this run with other workers (`barge worker`): a PostgreSQL database that holds the plan, its leases and checkpoints in the schema barge_control (it can be the target). Password from BARGE_COORDINATOR_PASSWORD or ?password_file=
    #[arg(long, value_name = "URL", requires = "task")]
    pub coordinator: Option<String>,
    /// The shared run's name in the coordinator: workers join it by this name
    #[arg(long, value_name = "NAME", requires = "coordinator")]
    pub task: Option<String>,
    /// Seconds a worker's lease lasts without a heartbeat: a worker that stops for longer loses its chunks to the others
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
fn migrate_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.iter().position(|a| a == "migrate") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Checks what a coordinated run can do today.
pub fn check(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint) -> Result<()> {
    use crate::commands::migrate::Mode;
    if !source.kind().is_database() {
        return Err(Error::usage(format!("--coordinator shares a database's full load; {source} is not a database (stream sources keep their own positions)")));
    }
    if !matches!(target, Endpoint::Postgres(_) | Endpoint::Mysql(_)) {
        return Err(Error::usage(format!("--coordinator: {target} cannot be shared by workers; the target must be PostgreSQL or MySQL/MariaDB (SQLite takes one writer)")));
    }
    if args.mode != Mode::FullLoad {
        return Err(Error::usage("--coordinator shares a full load (--mode full-load); change capture under a coordinator is not built yet").with_hint("share the full load, then run --mode cdc from one process"));
    }
    if args.validate {
        return Err(Error::usage("--validate with --coordinator would compare the tables once per worker").with_hint("run `barge validate SOURCE TARGET` once the task is done"));
    }
    if args.sql.sql.is_some() {
        return Err(Error::usage("--sql with --coordinator is not supported"));
    }
    Ok(())
}

/// Runs `migrate` as one worker of the task `coord` names, creating the
/// task if it is new.
pub async fn run_shared(args: &crate::commands::migrate::MigrateArgs, source: &Endpoint, target: &Endpoint, mut opts: crate::task::load::LoadOptions, stored: Option<Vec<String>>) -> Result<(crate::task::load::LoadReport, Arc<Session>)> {
    let coord = &args.coordinator;
    let (Some(url), Some(task)) = (&coord.coordinator, &coord.task) else { return Err(Error::usage("--coordinator needs --task NAME")) };
    let settings = Settings { url: url.clone(), task: task.clone(), lease: Duration::from_secs(coord.lease_timeout) };
    let session = Session::open(&settings).await?;
    let line = match stored {
        Some(line) => line,
        None => shared_args(&migrate_argv()),
    };
    let published = session.publish("migrate", &line, &source.to_string(), &target.to_string()).await?;
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
    // Each process keeps its own report and rejects; the plan is shared.
    opts.state_dir = opts.state_dir.join(format!("worker-{}", session.worker));
    opts.coordinated = Some(session.clone());
    let r = crate::task::load::run(source, target, opts).await;
    heartbeat.abort();
    session.sign_off(if r.is_ok() { "finished" } else { "failed" }).await;
    r.map(|report| (report, session))
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
