//! What the three database destinations share: one entry point for a
//! table's rows, which picks the engine's bulk writer.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::db::Db;
use crate::error::Result;
use crate::model::RowBatch;
use crate::progress::Task;
use crate::transfer::{RowPolicy, WriteSpec};

/// Writes the batches from `rx` into whichever engine `db` is (MySQL
/// first gets its bulk-load session settings). Returns rows written.
pub async fn write_into(db: &mut Db, spec: &WriteSpec, rx: mpsc::Receiver<RowBatch>, policy: &RowPolicy, progress: &Arc<dyn Task>) -> Result<u64> {
    match db {
        Db::Postgres(c) => super::postgres::write(&c.client, &c.display, spec, rx, policy, progress).await,
        Db::Mysql(c) => {
            for stmt in super::mysql::WRITE_SESSION {
                c.execute(stmt).await?;
            }
            super::mysql::write(&mut c.conn, &c.display, spec, rx, policy, progress).await
        }
        Db::Sqlite(c) => super::sqlite::write(&mut c.conn, &c.display, spec, rx, policy, progress).await,
    }
}

