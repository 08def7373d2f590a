//! The control schema `barge_control` in the coordinator database, and
//! its migrations. Each version is a list of statements applied once, in
//! order, in one transaction that also records the version; concurrent
//! workers starting at once serialize on an advisory lock, so exactly one
//! applies a migration and the others find it done.

use tokio_postgres::Client;

use crate::error::{Error, Result};

/// The schema every coordinator table lives in.
pub const SCHEMA: &str = "barge_control";

/// Migrations by version: `MIGRATIONS[i]` takes the schema from version
/// `i` to `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&[&str]] = &[
    // 1: tasks, their units of work with leases in the row (KCL's model),
    // the workers' heartbeats, and the epoch sequence that fences writes.
    &[
        "CREATE SEQUENCE barge_control.epochs",
        "CREATE TABLE barge_control.tasks (
            name text PRIMARY KEY,
            command text NOT NULL,
            args jsonb NOT NULL,
            source text NOT NULL,
            target text NOT NULL,
            state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
            error text,
            errored_tables jsonb NOT NULL DEFAULT '[]',
            ledger jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )",
        "CREATE TABLE barge_control.units (
            task text NOT NULL REFERENCES barge_control.tasks (name) ON DELETE CASCADE,
            id bigint NOT NULL,
            kind text NOT NULL CHECK (kind IN ('schema', 'chunk', 'post')),
            after text[] NOT NULL DEFAULT '{}',
            table_key text,
            chunk integer,
            lo bigint,
            hi bigint,
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'leased', 'done', 'failed')),
            owner text,
            epoch bigint,
            lease_expires timestamptz,
            holder_conn text,
            attempts integer NOT NULL DEFAULT 0,
            rows bigint NOT NULL DEFAULT 0,
            error text,
            done_at timestamptz,
            PRIMARY KEY (task, id)
        )",
        "CREATE INDEX units_by_status ON barge_control.units (task, kind, status, id)",
        "CREATE TABLE barge_control.workers (
            task text NOT NULL REFERENCES barge_control.tasks (name) ON DELETE CASCADE,
            id text NOT NULL,
            host text NOT NULL,
            pid integer NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(),
            heartbeat_at timestamptz NOT NULL DEFAULT now(),
            state text NOT NULL DEFAULT 'working',
            PRIMARY KEY (task, id)
        )",
    ],
    // 2: the change stream of a task is one unit, held by one worker at a
    // time (standbys wait for its lease).
    &[
        "ALTER TABLE barge_control.units DROP CONSTRAINT units_kind_check",
        "ALTER TABLE barge_control.units ADD CONSTRAINT units_kind_check CHECK (kind IN ('schema', 'chunk', 'post', 'cdc'))",
    ],
    // 3: what a chunk did to values (rows rejected, zero dates, rounded
    // decimals), so every worker's report counts the whole task's.
    &[
        "ALTER TABLE barge_control.units ADD COLUMN rejected bigint NOT NULL DEFAULT 0, ADD COLUMN zero_dates bigint NOT NULL DEFAULT 0, ADD COLUMN rounded bigint NOT NULL DEFAULT 0",
    ],
    // 4: the units of shared work past one load: a table's keys built by
    // whoever finishes its last chunk ('keys'), stream shards leased to
    // workers with their checkpoint in the row and read only after their
    // parents ('shard', `parents`), validation ranges ('validate') and
    // packed chunks ('pack', then one 'merge' of the manifests), each with
    // what it found (`result`) and the host that did it (`host`).
    &[
        "ALTER TABLE barge_control.units DROP CONSTRAINT units_kind_check",
        "ALTER TABLE barge_control.units ADD CONSTRAINT units_kind_check
            CHECK (kind IN ('schema', 'chunk', 'keys', 'post', 'cdc', 'shard', 'validate', 'pack', 'merge'))",
        "ALTER TABLE barge_control.units ADD COLUMN parents text[] NOT NULL DEFAULT '{}', ADD COLUMN checkpoint jsonb,
            ADD COLUMN result jsonb, ADD COLUMN host text",
        // Whether a table's chunks are all in, asked as each one finishes.
        "CREATE INDEX units_by_table ON barge_control.units (task, table_key, kind, status)",
        // The files the task's command line names (--mapping, --rules,
        // --schema), by the path as given: a worker on another host uses
        // these, not whatever is at that path there.
        "ALTER TABLE barge_control.tasks ADD COLUMN files jsonb NOT NULL DEFAULT '{}'",
    ],
    // 5: a stream's shard is one unit, found by its id: workers that list
    // the stream at once insert each shard once (ON CONFLICT DO NOTHING),
    // and a child's parents are found by index.
    &["CREATE UNIQUE INDEX units_shard_key ON barge_control.units (task, table_key) WHERE kind = 'shard'"],
    // 6: each worker's lease timeout, so `status` can tell a worker that
    // stopped renewing (lost) from one that works.
    &["ALTER TABLE barge_control.workers ADD COLUMN lease_seconds double precision"],
];

/// The version this barge writes and reads.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Brings `barge_control` to [`VERSION`]; refuses a schema a newer barge
/// migrated past it (its tables may mean something this one does not know).
pub async fn migrate(client: &mut Client, display: &str) -> Result<()> {
    let err = |sql: &str, e: tokio_postgres::Error| crate::db::postgres::query_error(display, sql, e);
    let tx = client.transaction().await.map_err(|e| err("BEGIN", e))?;
    // One migrator at a time; the lock ends with the transaction.
    let lock = "SELECT pg_advisory_xact_lock(hashtext('barge_control migrations'))";
    tx.execute(lock, &[]).await.map_err(|e| err(lock, e))?;
    for sql in ["CREATE SCHEMA IF NOT EXISTS barge_control", "CREATE TABLE IF NOT EXISTS barge_control.schema_version (version integer NOT NULL)"] {
        tx.execute(sql, &[]).await.map_err(|e| err(sql, e))?;
    }
    let read = "SELECT max(version) FROM barge_control.schema_version";
    let have: i32 = tx.query_one(read, &[]).await.map_err(|e| err(read, e))?.get::<_, Option<i32>>(0).unwrap_or(0);
    if have > VERSION {
        return Err(Error::Endpoint {
            endpoint: display.to_string(),
            message: format!("the coordinator's {SCHEMA} schema is at version {have}, newer than this barge knows ({VERSION})"),
            hint: Some("run the same barge version on every worker (the newest one)".into()),
        });
    }
    for (i, statements) in MIGRATIONS.iter().enumerate().skip(have as usize) {
        for sql in *statements {
            tx.execute(*sql, &[]).await.map_err(|e| err(sql, e))?;
        }
        let set = "INSERT INTO barge_control.schema_version (version) VALUES ($1)";
        tx.execute(set, &[&(i as i32 + 1)]).await.map_err(|e| err(set, e))?;
    }
    tx.commit().await.map_err(|e| err("COMMIT", e))
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every kind the schema admits is renewed by the heartbeat: a kind
    /// left out expires under a live worker (the change stream's reader
    /// once lost its lease every lease timeout that way).
    #[test]
    fn the_heartbeat_renews_every_kind_of_unit() {
        let check = MIGRATIONS
            .iter()
            .flat_map(|m| m.iter())
            .filter(|sql| sql.contains("ADD CONSTRAINT units_kind_check"))
            .last()
            .expect("the kinds are constrained");
        let inside = &check[check.find("IN (").expect("a list") + 4..];
        let kinds: Vec<&str> = inside[..inside.find(')').expect("its end")].split(',').map(|k| k.trim().trim_matches('\'')).collect();
        let mut admitted = kinds.clone();
        admitted.sort();
        let mut renewed = super::super::lease::LEASED_KINDS.to_vec();
        renewed.sort();
        assert_eq!(admitted, renewed);
    }
}
