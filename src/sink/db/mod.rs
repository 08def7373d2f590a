//! The three database destinations (PostgreSQL, MySQL/MariaDB, SQLite)
//! behind one [`DbDestination`]: this file picks the engine's bulk writer
//! and session; `destination` applies rows and changes through them.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::Result;
use crate::model::RowBatch;
use crate::progress::Task;
use crate::transfer::{RowPolicy, WriteSpec};

mod destination;

pub use destination::{DbDestination, STATE_TABLE};

/// Writes the batches from `rx` into whichever engine `db` is, as one
/// transaction (PostgreSQL: one COPY; MySQL, whose LOAD DATA pieces would
/// each commit, first gets its bulk-load session settings and an explicit
/// transaction): a writer stopped part-way leaves nothing of the rows.
/// Returns rows written.
pub async fn write_into(db: &mut Db, spec: &WriteSpec, rx: mpsc::Receiver<RowBatch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    match db {
        Db::Postgres(c) => super::postgres::write(&c.client, &c.display, spec, rx, policy, progress).await,
        Db::Mysql(c) => {
            for stmt in super::mysql::WRITE_SESSION {
                c.execute(stmt).await?;
            }
            c.execute("START TRANSACTION").await?;
            match super::mysql::write(&mut c.conn, &c.display, spec, rx, policy, progress).await {
                Ok(n) => c.execute("COMMIT").await.map(|_| n),
                Err(e) => {
                    let _ = c.execute("ROLLBACK").await;
                    Err(e)
                }
            }
        }
        Db::Sqlite(c) => super::sqlite::write(&mut c.conn, &c.display, spec, rx, policy, progress).await,
    }
}

/// Like [`write_into`], inside a transaction the caller holds open (a
/// CDC batch's staging rows, a table copied while changes flow): no
/// transaction or session change of its own.
pub async fn write_in_transaction(db: &mut Db, spec: &WriteSpec, rx: mpsc::Receiver<RowBatch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    match db {
        Db::Postgres(c) => super::postgres::write(&c.client, &c.display, spec, rx, policy, progress).await,
        Db::Mysql(c) => super::mysql::write(&mut c.conn, &c.display, spec, rx, policy, progress).await,
        Db::Sqlite(c) => super::sqlite::write_rows(&mut c.conn, &c.display, spec, rx, policy, progress, false).await,
    }
}

/// Sets a connection up to apply changes: like a logical replication
/// worker, PostgreSQL fires no foreign-key or user triggers (a batch is
/// consistent when it commits, not after each statement, once changes are
/// grouped by table); MySQL gets its bulk-load session; and the reads of
/// staged rows get the session their decoders rely on.
pub async fn prepare_for_changes(db: &mut Db) -> Result<()> {
    match db {
        Db::Postgres(c) => {
            if let Err(e) = c.client.batch_execute("SET session_replication_role = replica").await {
                tracing::debug!("cannot set session_replication_role ({e}); foreign keys are checked per statement");
            }
            c.client.batch_execute(crate::transfer::postgres::READ_SESSION).await.map_err(|e| crate::db::postgres::query_error(&c.display, "SET", e))?;
        }
        Db::Mysql(c) => {
            for stmt in super::mysql::WRITE_SESSION {
                c.execute(stmt).await?;
            }
        }
        Db::Sqlite(_) => {}
    }
    Ok(())
}
