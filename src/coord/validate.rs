//! A shared validation's units (`barge validate --coordinator`): unit 0
//! is the plan (no table), taken by the first worker that leases a
//! `validate` unit; its holder cuts the tables into ranges and publishes
//! them, one `validate` unit each, in the statement that finishes the
//! plan. A range's unit holds what its worker found (`result`); every
//! worker builds the same verdict from all of them at the end.
//!
//! Leasing reuses [`LEASE_SQL`]: ranges wait for nothing (`after` is
//! empty), an expired lease is taken first, and each lease gets a fresh
//! epoch, so the findings of a worker that lost its range are refused
//! when it comes back.

use crate::error::{Error, Result};
use crate::task::state::KeyRange;

use super::lease::Lease;
use super::Session;

/// A range as the plan's holder publishes it.
pub struct NewRange {
    pub table: String,
    pub index: usize,
    pub range: KeyRange,
}

/// A task as found or created by [`Session::publish_validate`].
pub struct Found {
    /// The task's command: `validate` unless the name is another kind of task's.
    pub command: String,
    pub args: Vec<String>,
    pub created: bool,
}

/// Where a shared validation stands.
pub struct Standing {
    pub state: String,
    pub error: Option<String>,
    /// The plan is done: the ranges exist.
    pub planned: bool,
    /// Ranges not compared yet (pending, leased or failed).
    pub left: i64,
}

/// A range's unit as the verdict reads it.
pub struct RangeUnit {
    pub table: String,
    pub index: usize,
    pub range: KeyRange,
    /// What its worker found; `None` until a worker finished it.
    pub result: Option<serde_json::Value>,
}

/// What the plan's holder leaves in unit 0: the tables compared, in
/// report order (the verdict names each, whether or not it has ranges).
#[derive(serde::Serialize, serde::Deserialize)]
struct PlanRecord {
    tables: Vec<String>,
}

/// A shared validation's progress, for `barge status`.
#[derive(Debug, serde::Serialize)]
pub struct ValidateStatus {
    /// The plan unit's status (`pending`, `leased`, `done`, `failed`).
    pub plan: String,
    pub ranges_done: i64,
    pub ranges: i64,
    pub rows_compared: i64,
    pub tables: Vec<TableRanges>,
}

#[derive(Debug, serde::Serialize)]
pub struct TableRanges {
    pub table: String,
    pub ranges_done: i64,
    pub ranges: i64,
    pub rows_compared: i64,
    /// Ranges compared so far that found a difference.
    pub ranges_different: i64,
}

impl Session {
    /// Creates the validate task with its plan unit, or finds the task of
    /// that name.
    pub async fn publish_validate(&self, args: &[String], source: &str, target: &str) -> Result<Found> {
        let p = self.publish("validate", args, source, target, super::lease::Plan::Validate).await?;
        Ok(Found { command: p.command, args: p.args, created: p.created })
    }

    /// Finishes the plan and publishes its ranges in one statement: workers
    /// see every range or none. False when the plan's lease was lost.
    pub async fn finish_validate_plan(&self, lease: &Lease, tables: &[String], ranges: &[NewRange]) -> Result<bool> {
        let (task, epoch, host) = (self.task.clone(), lease.epoch, super::host_name());
        let record = serde_json::to_value(PlanRecord { tables: tables.to_vec() }).expect("strings serialize");
        let ids: Vec<i64> = (1..=ranges.len() as i64).collect();
        let names: Vec<String> = ranges.iter().map(|r| r.table.clone()).collect();
        let indexes: Vec<i32> = ranges.iter().map(|r| r.index as i32).collect();
        let los: Vec<Option<i64>> = ranges.iter().map(|r| r.range.lo).collect();
        let his: Vec<Option<i64>> = ranges.iter().map(|r| r.range.hi).collect();
        let done: i64 = self
            .call("publish ranges", |c| {
                let (task, host, record, ids, names, indexes, los, his) = (task.clone(), host.clone(), record.clone(), ids.clone(), names.clone(), indexes.clone(), los.clone(), his.clone());
                async move {
                    let r = c
                        .query_one(
                            "WITH done AS (
                                UPDATE barge_control.units SET status = 'done', result = $3, host = $4, done_at = now(), lease_expires = NULL, error = NULL
                                 WHERE task = $1 AND id = 0 AND epoch = $2 RETURNING 1),
                             ranges AS (
                                INSERT INTO barge_control.units (task, id, kind, table_key, chunk, lo, hi)
                                SELECT $1, x.id, 'validate', x.t, x.c, x.lo, x.hi
                                  FROM unnest($5::bigint[], $6::text[], $7::int[], $8::bigint[], $9::bigint[]) AS x(id, t, c, lo, hi)
                                 WHERE EXISTS (SELECT 1 FROM done)
                                ON CONFLICT (task, id) DO NOTHING RETURNING 1)
                             SELECT (SELECT count(*) FROM done) + 0 * (SELECT count(*) FROM ranges)",
                            &[&task, &epoch, &record, &host, &ids, &names, &indexes, &los, &his],
                        )
                        .await?;
                    Ok(r.get::<_, i64>(0))
                }
            })
            .await?;
        if done == 1 && ranges.len() > 1_000 {
            // As for a load's chunks: the lease statement is planned from
            // the table's statistics. Only its owner may take them.
            if let Err(e) = self.call("analyze the units", |c| async move { c.batch_execute("ANALYZE barge_control.units").await }).await {
                tracing::debug!("coordinator: {e}");
            }
        }
        Ok(done == 1)
    }

    /// Where the shared validation stands: one index probe per part.
    pub async fn validate_standing(&self) -> Result<Standing> {
        let u = self.units_standing("validate").await?;
        Ok(Standing { state: u.state, error: u.error, planned: u.planned, left: u.left })
    }

    /// The tables of the plan, and every range with its findings, in
    /// order: each worker reads the same and builds the same verdict.
    pub async fn validate_outcomes(&self) -> Result<(Vec<String>, Vec<RangeUnit>)> {
        let task = self.task.clone();
        let rows = self
            .call("read the ranges", |c| {
                let task = task.clone();
                async move {
                    c.query(
                        "SELECT id, table_key, chunk, lo, hi, CASE WHEN status = 'done' THEN result END
                           FROM barge_control.units WHERE task = $1 AND kind = 'validate' ORDER BY id",
                        &[&task],
                    )
                    .await
                }
            })
            .await?;
        let mut tables = None;
        let mut ranges = Vec::new();
        for r in rows {
            let result: Option<serde_json::Value> = r.get(5);
            if r.get::<_, i64>(0) == 0 {
                let plan: Option<PlanRecord> = result.and_then(|v| serde_json::from_value(v).ok());
                tables = plan.map(|p| p.tables);
                continue;
            }
            let (Some(table), Some(index)) = (r.get::<_, Option<String>>(1), r.get::<_, Option<i32>>(2)) else { continue };
            ranges.push(RangeUnit { table, index: index as usize, range: KeyRange { lo: r.get(3), hi: r.get(4) }, result });
        }
        let tables = tables.ok_or_else(|| Error::other(format!("task {}: its plan is not finished; no verdict yet", self.task)))?;
        Ok((tables, ranges))
    }
}

/// A validate task's progress, or `None` for a task of another kind.
pub async fn status(client: &tokio_postgres::Client, display: &str, task: &str) -> Result<Option<ValidateStatus>> {
    let sql = "SELECT status FROM barge_control.units WHERE task = $1 AND kind = 'validate' AND id = 0";
    let Some(plan) = client.query_opt(sql, &[&task]).await.map_err(|e| crate::db::postgres::query_error(display, sql, e))? else { return Ok(None) };
    let sql = "SELECT table_key, count(*) FILTER (WHERE status = 'done'), count(*), coalesce(sum(rows) FILTER (WHERE status = 'done'), 0)::bigint,
                      count(*) FILTER (WHERE status = 'done' AND (result->>'equal')::boolean IS NOT TRUE)
                 FROM barge_control.units WHERE task = $1 AND kind = 'validate' AND id > 0 GROUP BY table_key ORDER BY table_key";
    let tables: Vec<TableRanges> = client
        .query(sql, &[&task])
        .await
        .map_err(|e| crate::db::postgres::query_error(display, sql, e))?
        .iter()
        .map(|r| TableRanges { table: r.get(0), ranges_done: r.get(1), ranges: r.get(2), rows_compared: r.get(3), ranges_different: r.get(4) })
        .collect();
    Ok(Some(ValidateStatus {
        plan: plan.get(0),
        ranges_done: tables.iter().map(|t| t.ranges_done).sum(),
        ranges: tables.iter().map(|t| t.ranges).sum(),
        rows_compared: tables.iter().map(|t| t.rows_compared).sum(),
        tables,
    }))
}

/// The status lines of a validate task.
pub fn render(v: &ValidateStatus, s: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(s, "  plan: {}; ranges: {} of {} compared, {} source rows", v.plan, v.ranges_done, v.ranges, v.rows_compared);
    for t in &v.tables {
        let differ = if t.ranges_different > 0 { format!("  {} range(s) DIFFERENT", t.ranges_different) } else { String::new() };
        let _ = writeln!(s, "    {:<40} {:>5} of {:<5} ranges {:>12} rows{differ}", t.table, t.ranges_done, t.ranges, t.rows_compared);
    }
}
