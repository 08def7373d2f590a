//! `barge validate SOURCE TARGET --coordinator URL --task NAME`: one
//! validation shared by many workers. The first process creates the task
//! (its command line, as for `migrate`), and `barge worker` joins it.
//! Every worker leases ranges until none is left, then prints the same
//! verdict, built from every range's findings, and exits as a single
//! `validate` would.

use std::time::Duration;

use clap::Args;

use super::migrate::ValidateArgs;
use super::output;
use super::worker::CoordinatorArgs;
use crate::coord::validate::NewRange;
use crate::coord::{Session, Settings};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::schema::naming::NamingOptions;
use crate::task::mapping::Mapping;
use crate::task::validate::leased::{assemble, show, Checker, Outcome, Range};
use crate::task::validate::{TableCheck, ValidationReport};

/// What `validate` takes to share its comparison with other workers.
#[derive(Debug, Args, Clone)]
pub struct SharedValidateArgs {
    #[command(flatten)]
    pub coordinator: CoordinatorArgs,
    /// With --coordinator: cut each table with an integer key into ranges of about this many rows; each range is compared by one worker
    #[arg(long, value_name = "ROWS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..), requires = "coordinator")]
    pub range_rows: u64,
}

/// This process's command line after the `validate` word.
fn validate_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.iter().position(|a| a == "validate") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Runs the validation as one worker of the task `args` names, creating
/// the task if it is new; the task's verdict, whoever compared what.
pub fn run(args: &ValidateArgs, source: &Endpoint, target: &Endpoint, mapping: &Mapping, naming: &NamingOptions) -> Result<ValidationReport> {
    super::interrupt::listen();
    let coord = &args.shared.coordinator;
    let (Some(url), Some(task)) = (&coord.coordinator, &coord.task) else { return Err(Error::usage("--coordinator needs --task NAME")) };
    for e in [source, target] {
        if !e.kind().is_database() {
            return Err(Error::usage(format!("validate compares two databases; {e} is not one")));
        }
    }
    if let Some(mb) = coord.max_rate {
        crate::util::rate::limit_source(mb)?;
    }
    let settings = Settings { url: url.clone(), task: task.clone(), lease: Duration::from_secs(coord.lease_timeout) };
    let line = coord.stored.clone().unwrap_or_else(|| super::worker::shared_args(&validate_argv()));
    let rt = crate::util::runtime::build(crate::util::runtime::Workers::PerCore)?;
    rt.block_on(async {
        let session = Session::open(&settings).await?;
        let found = session.publish_validate(&line, &source.to_string(), &target.to_string()).await?;
        if found.command != "validate" {
            return Err(Error::usage(format!("task {task} in {} is a `{}` task, not a validation", session.display, found.command)).with_hint("choose another --task name for the validation"));
        }
        if !found.created && found.args != line {
            return Err(Error::Usage(format!("task {task} in {} was started with other arguments:\n  stored:  {}\n  yours:   {}", session.display, found.args.join(" "), line.join(" ")))
                .with_hint(format!("join it with `barge worker --coordinator URL --task {task}`, or choose another --task name")));
        }
        if found.created {
            output::info(format!("task {task}: created in the coordinator {}; more workers join with `barge worker --coordinator URL --task {task}`", session.display));
        } else {
            output::info(format!("task {task}: joined as worker {}", session.worker));
        }
        if !found.created && session.validate_standing().await?.state == "done" {
            output::warn(format!("task {task} was done before this worker joined: the verdict below is from when its ranges were compared; start a new --task to compare the tables as they are now"));
        }
        session.register().await?;
        let heartbeat = session.start_heartbeat();
        let outcome = work(&session, source, target, mapping, naming, args.shared.range_rows).await;
        if let Err(e) = &outcome {
            session.abandon(e).await;
        }
        heartbeat.abort();
        session.sign_off(if outcome.is_ok() { "finished" } else { "failed" }).await;
        outcome
    })
}

/// Leases the plan or ranges until every range is compared, then builds
/// the task's verdict.
async fn work(session: &Session, source: &Endpoint, target: &Endpoint, mapping: &Mapping, naming: &NamingOptions, range_rows: u64) -> Result<ValidationReport> {
    let mut checker = Checker::connect(source, target, mapping, naming).await?;
    let progress = super::bars::for_cli();
    let mut compared = 0usize;
    let mut pause = Duration::from_millis(100);
    loop {
        let p = session.validate_standing().await?;
        if p.state == "failed" {
            return Err(crate::coord::lease::task_failed(&session.task, p.error.as_deref()));
        }
        if p.planned && p.left == 0 {
            break;
        }
        let Some(lease) = session.lease(crate::coord::lease::Kind::Validate).await? else {
            // Others hold what is left: ask again, less often the longer
            // it lasts (their leases may expire: a worker died).
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = crate::util::interrupt::requested() => return Err(Error::Interrupted),
            }
            pause = (pause * 3 / 2).min(Duration::from_secs(2));
            continue;
        };
        pause = Duration::from_millis(100);
        let Some(table) = lease.table.clone() else {
            let planned = checker.plan(range_rows).await;
            let ranges = match planned {
                Ok(r) => r,
                Err(e) => {
                    settle(session, &lease, e, "the plan").await?;
                    continue;
                }
            };
            let new: Vec<NewRange> = ranges.iter().map(|r| NewRange { table: r.table.clone(), index: r.index, range: r.range }).collect();
            if session.finish_validate_plan(&lease, &checker.tables(), &new).await? {
                output::info(format!("task {}: {} tables cut into {} ranges", session.task, checker.tables().len(), new.len()));
            }
            continue;
        };
        if lease.dirty() {
            output::warn(format!("task {}: comparing {table} ({}) again: the worker that held it stopped", session.task, show(lease.range)));
        }
        let what = format!("{table} ({})", show(lease.range));
        match checker.check(&table, lease.range, progress.as_ref()).await {
            Ok(check) => {
                let result = serde_json::to_value(&check).expect("a table check serializes");
                if session.finish_with(&lease, &result, &crate::coord::host_name(), check.source_rows).await? {
                    compared += 1;
                } else {
                    tracing::warn!("task {}: {what} was compared, but its lease had passed to another worker, whose findings stand", session.task);
                }
            }
            Err(e) => settle(session, &lease, e, &what).await?,
        }
    }
    let (tables, units) = session.validate_outcomes().await?;
    let mut outcomes = Vec::with_capacity(units.len());
    for u in units {
        let check = match u.result {
            Some(v) => Some(serde_json::from_value::<TableCheck>(v).map_err(|e| Error::other(format!("task {}: the findings for {} ({}) do not read: {e}", session.task, u.table, show(u.range))).with_hint("run the same barge version on every worker"))?),
            None => None,
        };
        outcomes.push(Outcome { range: Range { table: u.table, index: u.index, range: u.range }, check });
    }
    let report = assemble(&tables, &outcomes)?;
    session.finish_task(None).await?;
    output::info(format!("task {}: {} of {} ranges compared by this worker", session.task, compared, outcomes.len()));
    Ok(report)
}

/// A unit that failed: given back when a retry may pass (another worker,
/// or this one, compares it again), else it fails the task and this worker.
async fn settle(session: &Session, lease: &crate::coord::lease::Lease, e: Error, what: &str) -> Result<()> {
    if e.is_retriable() {
        if session.give_back(lease, &e).await? {
            output::warn(format!("task {}: {what} failed, to be tried again: {e}", session.task));
        }
        return Ok(());
    }
    session.fail(lease, &e).await?;
    Err(e)
}
