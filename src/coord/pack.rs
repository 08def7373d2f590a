//! A pack shared by many workers (`barge pack --coordinator`): the units
//! and counters it keeps in the coordinator.
//!
//! Unit 0 (`schema`) is the plan: its holder sets up change capture and
//! the pack's identity (pack id, key slots, sealed signing seed: nothing
//! that opens without the passphrase) and publishes one `pack` unit per
//! table. Each `pack` unit is leased by a worker that packs the table onto
//! its own disks and records, in the unit's `result`, the chunk files and
//! catalog entry the manifest needs; `host` is that worker's host. Unit 1
//! (`merge`) waits for every `pack` unit; its holder merges the results
//! into one signed manifest, kept in its `result` for every worker to copy
//! onto its own disks. Unit 1's `checkpoint` holds the pack-wide counters
//! (chunk ids, device numbers), so no two workers ever use the same one.

use std::time::Duration;

use serde_json::Value;

use super::lease::Lease;
use super::Session;
use crate::error::Result;

/// The counters in unit 1's checkpoint.
pub const CHUNK_IDS: &str = "next_chunk";
pub const DEVICE_NUMBERS: &str = "next_device";

/// Where a shared pack stands.
#[derive(Debug, Clone)]
pub struct PackProgress {
    pub state: String,
    pub error: Option<String>,
    pub plan_done: bool,
    /// `pack` units not done yet (0 before the plan published them).
    pub packs_left: i64,
    pub merge_done: bool,
}

/// A finished `pack` unit.
#[derive(Debug, Clone)]
pub struct DonePack {
    pub id: i64,
    pub table: String,
    pub owner: String,
    pub host: Option<String>,
    pub result: Value,
}

impl Session {
    /// Creates the pack task with its plan and merge units, or finds the
    /// task of that name: its stored command line is returned to compare.
    pub async fn publish_pack(&self, args: &[String], source: &str) -> Result<super::lease::Published> {
        let published = self.publish("pack", args, source, "the disks of each worker", super::lease::Plan::Pack).await?;
        if published.command != "pack" {
            return Err(crate::error::Error::usage(format!("task {} in {} is a `{}` task, not a pack", self.task, self.display, published.command)).with_hint("choose another --task name"));
        }
        Ok(published)
    }

    /// Finishes the plan and publishes one `pack` unit per table, in one
    /// statement: workers see every table or none.
    pub async fn finish_pack_plan(&self, lease: &Lease, plan: &Value, tables: &[String]) -> Result<bool> {
        let (task, epoch, plan) = (self.task.clone(), lease.epoch, plan.clone());
        let ids: Vec<i64> = (0..tables.len() as i64).map(|i| i + 2).collect();
        let indexes: Vec<i32> = (0..tables.len() as i32).collect();
        let tables = tables.to_vec();
        let done: i64 = self
            .call("publish the pack's tables", |c| {
                let (task, plan, ids, indexes, tables) = (task.clone(), plan.clone(), ids.clone(), indexes.clone(), tables.clone());
                async move {
                    let r = c
                        .query_one(
                            "WITH done AS (
                                UPDATE barge_control.units SET status = 'done', done_at = now(), lease_expires = NULL, result = $3
                                 WHERE task = $1 AND id = 0 AND epoch = $2 RETURNING 1),
                             units AS (
                                INSERT INTO barge_control.units (task, id, kind, after, table_key, chunk)
                                SELECT $1, x.id, 'pack', '{schema}', x.t, x.c
                                  FROM unnest($4::bigint[], $5::text[], $6::int[]) AS x(id, t, c)
                                 WHERE EXISTS (SELECT 1 FROM done)
                                ON CONFLICT (task, id) DO NOTHING RETURNING 1)
                             SELECT (SELECT count(*) FROM done) + 0 * (SELECT count(*) FROM units)",
                            &[&task, &epoch, &plan, &ids, &tables, &indexes],
                        )
                        .await?;
                    Ok(r.get::<_, i64>(0))
                }
            })
            .await?;
        Ok(done == 1)
    }

    /// The plan, once its unit is done.
    pub async fn pack_plan(&self) -> Result<Option<Value>> {
        let task = self.task.clone();
        let row = self
            .call("read the plan", |c| {
                let task = task.clone();
                async move { c.query_opt("SELECT result FROM barge_control.units WHERE task = $1 AND id = 0 AND status = 'done'", &[&task]).await }
            })
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<Value>>(0)))
    }

    /// Takes the next number of a pack-wide counter ([`CHUNK_IDS`],
    /// [`DEVICE_NUMBERS`]); the row lock makes every number unique.
    pub async fn take_number(&self, counter: &'static str) -> Result<u64> {
        let task = self.task.clone();
        let row = self
            .call("take a number", |c| {
                let task = task.clone();
                async move {
                    c.query_one(
                        "UPDATE barge_control.units SET checkpoint = jsonb_set(checkpoint, ARRAY[$2], to_jsonb((checkpoint->>$2)::bigint + 1))
                          WHERE task = $1 AND id = 1 RETURNING (checkpoint->>$2)::bigint - 1",
                        &[&task, &counter],
                    )
                    .await
                }
            })
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// The counters' next values: every number below was handed out.
    pub async fn counters(&self) -> Result<Value> {
        let task = self.task.clone();
        let row = self
            .call("read the counters", |c| {
                let task = task.clone();
                async move { c.query_one("SELECT checkpoint FROM barge_control.units WHERE task = $1 AND id = 1", &[&task]).await }
            })
            .await?;
        Ok(row.get::<_, Option<Value>>(0).unwrap_or(Value::Null))
    }

    pub async fn pack_progress(&self) -> Result<PackProgress> {
        let u = self.units_standing("pack").await?;
        Ok(PackProgress { state: u.state, error: u.error, plan_done: u.planned, packs_left: u.left, merge_done: u.last_done })
    }

    /// Every finished `pack` unit, in unit order.
    pub async fn done_packs(&self) -> Result<Vec<DonePack>> {
        let task = self.task.clone();
        let rows = self
            .call("read the packed tables", |c| {
                let task = task.clone();
                async move {
                    c.query(
                        "SELECT id, table_key, owner, host, result FROM barge_control.units
                          WHERE task = $1 AND kind = 'pack' AND status = 'done' ORDER BY id",
                        &[&task],
                    )
                    .await
                }
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| DonePack { id: r.get(0), table: r.get(1), owner: r.get::<_, Option<String>>(2).unwrap_or_default(), host: r.get(3), result: r.get::<_, Option<Value>>(4).unwrap_or(Value::Null) })
            .collect())
    }

    /// The merged manifest (the merge unit's result), once it is done.
    pub async fn merged(&self) -> Result<Option<Value>> {
        let task = self.task.clone();
        let row = self
            .call("read the manifest", |c| {
                let task = task.clone();
                async move { c.query_opt("SELECT result FROM barge_control.units WHERE task = $1 AND id = 1 AND status = 'done'", &[&task]).await }
            })
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<Value>>(0)))
    }

    /// Gives back the units this worker holds (its run stops on `error`):
    /// another worker takes them over at once instead of after the lease.
    pub async fn give_back_pack_units(&self, error: &crate::error::Error) {
        let (task, worker, message) = (self.task.clone(), self.worker.clone(), error.to_string());
        let r = self
            .call("give units back", |c| {
                let (task, worker, message) = (task.clone(), worker.clone(), message.clone());
                async move {
                    c.execute(
                        "UPDATE barge_control.units SET status = 'pending', owner = NULL, lease_expires = NULL, error = $3
                          WHERE task = $1 AND owner = $2 AND kind IN ('schema', 'pack', 'merge') AND status = 'leased'",
                        &[&task, &worker, &message],
                    )
                    .await
                }
            })
            .await;
        if let Err(e) = r {
            tracing::warn!("coordinator: cannot give this worker's units back (their leases expire instead): {e}");
        }
    }
}

/// How long an idle worker waits before asking again.
pub const POLL: Duration = Duration::from_millis(300);
