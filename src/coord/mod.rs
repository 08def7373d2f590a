//! Many workers, one run: a plan kept in a PostgreSQL coordinator
//! (`--coordinator URL`), executed by any number of `barge` processes on
//! any number of hosts, the way the Kinesis Client Library shares a
//! stream's shards through a lease table.
//!
//! A task (`--task NAME`) is the command line of one run (it holds no
//! secrets: a URL with a password is refused) and its units of work:
//! one `schema` unit (create the target's tables, cut them into chunks),
//! one `chunk` unit per key range, and one `post` unit (keys, indexes,
//! constraints and the other objects) that waits for every chunk. A
//! worker leases a unit with `FOR UPDATE SKIP LOCKED`, renews its leases
//! from a heartbeat, and marks the unit done when the target has it. A
//! lease that expires (its worker died, or stalled) is taken by another
//! worker, which redoes the unit as a resume does.
//!
//! Every lease carries an epoch from one sequence. What a worker writes
//! under a lease is fenced on the target itself ([`fence`]): a worker
//! that lost its lease cannot commit after the new holder took over.

pub mod fence;
pub mod keys;
pub mod lease;
pub mod pack;
pub mod schema;
pub mod shards;
pub mod status;
pub mod validate;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::endpoint::{DbEndpoint, Endpoint, Role};
use crate::error::{Error, Result};

/// How long a call to the coordinator keeps retrying a lost connection
/// (the coordinator restarting, a failover) before the worker gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// One worker's connection to a task in the coordinator.
pub struct Session {
    endpoint: DbEndpoint,
    pub display: String,
    pub task: String,
    /// This worker's name in leases and in `barge status`: host, pid and a
    /// random suffix, so a restarted process is a new worker.
    pub worker: String,
    pub lease: Duration,
    client: Mutex<Option<Arc<Client>>>,
}

/// What `--coordinator` and `--task` name.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub task: String,
    pub lease: Duration,
}

/// Parses a `--coordinator` URL: PostgreSQL only (the lease queries are
/// PostgreSQL's `FOR UPDATE SKIP LOCKED`).
pub fn coordinator_endpoint(url: &str) -> Result<DbEndpoint> {
    match Endpoint::parse(url)? {
        Endpoint::Postgres(ep) => Ok(ep),
        other => Err(Error::usage(format!("--coordinator {other}: the coordinator is a PostgreSQL database (postgres://…); it can be the target itself"))),
    }
}

/// Checks a `--task` name: it is shown, logged and used in file names.
pub fn check_task_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!("--task {name:?}: a task name is 1 to 100 letters, digits, '-', '_' or '.' (not first)")))
    }
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).ok().filter(|s| !s.is_empty()).or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_else(|| "localhost".into())
}

/// Whether a coordinator error means the connection is gone (the server
/// restarted or shut down, the network dropped), not that the query was
/// wrong.
fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    match e.as_db_error() {
        None => false,
        // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now;
        // class 08: connection exceptions.
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
    }
}

impl Session {
    /// Connects, brings the control schema up to date, and registers this
    /// worker under `settings.task`.
    pub async fn open(settings: &Settings) -> Result<Arc<Session>> {
        check_task_name(&settings.task)?;
        let endpoint = coordinator_endpoint(&settings.url)?;
        let display = endpoint.display.clone();
        let mut client = crate::db::postgres::connect_client(&endpoint, Role::Coordinator).await?;
        schema::migrate(&mut client, &display).await?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let worker = format!("{}-{}-{}", host_name(), std::process::id(), &suffix[..4]);
        Ok(Arc::new(Session { endpoint, display, task: settings.task.clone(), worker, lease: settings.lease, client: Mutex::new(Some(Arc::new(client))) }))
    }

    /// Runs `f` on the coordinator connection, serialized with the
    /// worker's other calls (so a multi-statement call is never
    /// interleaved); reconnects and retries for up to [`RECONNECT_FOR`]
    /// while the connection is lost. `what` names the call in errors.
    pub async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    {
        let deadline = Instant::now() + RECONNECT_FOR;
        let mut warned = false;
        let mut guard = self.client.lock().await;
        loop {
            let client = match guard.as_ref() {
                Some(c) if !c.is_closed() => c.clone(),
                _ => match crate::db::postgres::connect_client(&self.endpoint, Role::Coordinator).await {
                    Ok(c) => {
                        if warned {
                            tracing::info!("coordinator {}: connected again", self.display);
                        }
                        let c = Arc::new(c);
                        *guard = Some(c.clone());
                        c
                    }
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!("coordinator {}: {e}", self.display);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    Err(e) => return Err(e.with_hint(format!("the coordinator was unreachable for {}s; start it again and rerun the worker: leases it held expire and are taken over", RECONNECT_FOR.as_secs()))),
                },
            };
            match f(client).await {
                Ok(v) => return Ok(v),
                Err(e) if is_connection_error(&e) && Instant::now() < deadline => {
                    if !warned {
                        tracing::warn!("coordinator {}: connection lost ({e}); retrying", self.display);
                        warned = true;
                    }
                    *guard = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(crate::db::postgres::query_error(&self.display, what, e)),
            }
        }
    }

    /// Records this worker (and its heartbeat) in `barge status`.
    pub async fn register(&self) -> Result<()> {
        let (task, worker, host, pid, lease) = (self.task.clone(), self.worker.clone(), host_name(), std::process::id() as i32, self.lease.as_secs_f64());
        self.call("register worker", |c| {
            let (task, worker, host) = (task.clone(), worker.clone(), host.clone());
            async move {
                c.execute(
                    "INSERT INTO barge_control.workers (task, id, host, pid, lease_seconds) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (task, id) DO UPDATE SET heartbeat_at = now(), state = 'working', lease_seconds = $5",
                    &[&task, &worker, &host, &pid, &lease],
                )
                .await
            }
        })
        .await
        .map(|_| ())
    }

    /// Marks this worker finished (or failed) in `barge status`.
    pub async fn sign_off(&self, state: &str) {
        let (task, worker, state) = (self.task.clone(), self.worker.clone(), state.to_string());
        let r = self
            .call("sign off", |c| {
                let (task, worker, state) = (task.clone(), worker.clone(), state.clone());
                async move { c.execute("UPDATE barge_control.workers SET state = $3, heartbeat_at = now() WHERE task = $1 AND id = $2", &[&task, &worker, &state]).await }
            })
            .await;
        if let Err(e) = r {
            tracing::debug!("coordinator: cannot record the worker's end: {e}");
        }
    }

    /// Renews every lease this worker holds and its own heartbeat, every
    /// third of the lease, until the session is dropped. A worker that
    /// stops (killed, paused, cut off) stops renewing: its leases expire
    /// and other workers take its units over.
    pub fn start_heartbeat(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let every = self.lease / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(s) = weak.upgrade() else { return };
                if let Err(e) = s.renew().await {
                    tracing::warn!("coordinator: heartbeat failed: {e}");
                }
            }
        })
    }

    async fn renew(&self) -> Result<()> {
        let (task, worker, secs) = (self.task.clone(), self.worker.clone(), self.lease.as_secs_f64());
        self.call("heartbeat", |c| {
            let (task, worker) = (task.clone(), worker.clone());
            async move {
                // Every kind named: the index then goes straight to the
                // leased units instead of reading every chunk's entry.
                c.execute(
                    "UPDATE barge_control.units SET lease_expires = now() + make_interval(secs => $3)
                     WHERE task = $1 AND owner = $2 AND kind = ANY($4) AND status = 'leased'",
                    &[&task, &worker, &secs, &lease::LEASED_KINDS],
                )
                .await?;
                c.execute("UPDATE barge_control.workers SET heartbeat_at = now() WHERE task = $1 AND id = $2", &[&task, &worker]).await
            }
        })
        .await
        .map(|_| ())
    }
}
