//! One table's keys and indexes, built by the worker that finishes its
//! last chunk (pg_restore `-j` builds each table's as soon as its data is
//! in; here the table's data is in once every worker's chunks are).
//!
//! Each table with keys to build has a `keys` unit, published with the
//! chunks. Right after a worker's chunk is marked done it asks for its
//! table's unit: the statement leases it only when no chunk of that table
//! is unfinished, so of two workers finishing a table's last two chunks
//! at once, the later one (which sees both done) builds the keys. A
//! worker that dies mid-build loses the unit like a chunk; an idle worker
//! takes it over. What each step did is kept in the unit's `result`, so
//! the worker that runs the rest (foreign keys, views...) records it
//! without running it again. The post unit waits for every `keys` unit.

use crate::error::Result;

use super::lease::Lease;
use super::Session;

/// Leases a `keys` unit whose table has every chunk done: `$2` one table,
/// or NULL for any. The chunk probe is the `units_by_table` index.
const LEASE_KEYS_SQL: &str = "UPDATE barge_control.units u
                                 SET status = 'leased', owner = $3, epoch = nextval('barge_control.epochs'),
                                     lease_expires = now() + make_interval(secs => $4), attempts = u.attempts + 1
                               WHERE u.task = $1 AND u.id = (
                                     SELECT k.id FROM barge_control.units k
                                      WHERE k.task = $1 AND k.kind = 'keys' AND ($2::text IS NULL OR k.table_key = $2)
                                        AND (k.status = 'pending' OR (k.status = 'leased' AND k.lease_expires < now()))
                                        AND NOT EXISTS (SELECT 1 FROM barge_control.units c
                                                         WHERE c.task = $1 AND c.table_key = k.table_key AND c.kind = 'chunk' AND c.status <> 'done')
                                      ORDER BY k.id LIMIT 1 FOR UPDATE SKIP LOCKED)
                           RETURNING u.id, u.epoch, u.attempts, u.table_key, u.chunk, u.lo, u.hi, u.holder_conn";

impl Session {
    /// The keys unit of `table` (or of any table) whose chunks are all
    /// done, if no other worker holds it.
    pub async fn lease_keys(&self, table: Option<&str>) -> Result<Option<Lease>> {
        let (task, worker, secs, table) = (self.task.clone(), self.worker.clone(), self.lease.as_secs_f64(), table.map(String::from));
        let row = self
            .call("lease a table's keys", |c| {
                let (task, worker, table) = (task.clone(), worker.clone(), table.clone());
                async move { c.query_opt(LEASE_KEYS_SQL, &[&task, &table, &worker, &secs]).await }
            })
            .await?;
        Ok(row.as_ref().map(Lease::from_row))
    }

    /// What every finished keys unit did, by table.
    pub async fn keys_results(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let task = self.task.clone();
        let rows = self
            .call("read the tables' keys", |c| {
                let task = task.clone();
                async move { c.query("SELECT table_key, result FROM barge_control.units WHERE task = $1 AND kind = 'keys' AND status = 'done' ORDER BY id", &[&task]).await }
            })
            .await?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Option<serde_json::Value>>(1).unwrap_or(serde_json::Value::Null))).collect())
    }
}
