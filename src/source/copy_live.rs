//! Copying one table while changes flow: a table created at the source,
//! or one the user reloads. The rows are read from a snapshot whose
//! position is exact (PostgreSQL: a temporary slot's exported snapshot;
//! MySQL: a consistent snapshot opened under the read lock), so the
//! changes committed up to that position are in the copy and the ones
//! after it are applied from the stream: nothing lost, nothing twice,
//! with or without a key.

use tokio::sync::mpsc;

use crate::sink::db::DbDestination;
use crate::cdc::TableInfo;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{Dialect, Position};
use crate::task::load::{quote_source, read_expr, source_table_sql};
use crate::transfer::{self, Batch, ReadSpec};

/// The SELECT that reads the columns the target table is written with.
fn read_spec(dialect: Dialect, info: &TableInfo) -> Result<ReadSpec> {
    let mut cols = Vec::new();
    let mut types = Vec::new();
    for tc in info.target.columns.iter().filter(|c| c.generated.is_none() && !c.source.starts_with('\u{0}')) {
        let sc = info.source.column(&tc.source).ok_or_else(|| Error::other(format!("{}: column {} has no source column", info.source.name, tc.name)))?;
        let (expr, ty) = read_expr(dialect, &quote_source(dialect, &sc.name), &sc.ty);
        cols.push(expr);
        types.push(ty);
    }
    Ok(ReadSpec { select: format!("SELECT {} FROM {}", cols.join(", "), source_table_sql(dialect, &info.source)), types })
}

/// Copies `info`'s rows into its (existing, empty) target table; returns
/// the position the copy holds every change up to.
pub async fn copy_table(src: &Endpoint, dest: &mut DbDestination, info: &TableInfo) -> Result<Position> {
    let name = info.source.name.to_string();
    let (tx, rx) = mpsc::channel::<Batch>(4);
    match src {
        Endpoint::Postgres(ep) => {
            let spec = read_spec(Dialect::Postgres, info)?;
            let slot = format!("barge_copy_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let cfg = crate::source::postgres::wal::replication_config(ep, &slot, &slot, 0)?;
            let mut session = pgwire_replication::ReplicationClient::connect_gated(cfg).await.map_err(|e| Error::Endpoint { endpoint: ep.display.clone(), message: format!("cannot open a replication session: {e}"), hint: None })?;
            let rows = session
                .simple_query(&format!("CREATE_REPLICATION_SLOT {slot} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT"))
                .await
                .map_err(|e| Error::Endpoint { endpoint: ep.display.clone(), message: format!("cannot take a snapshot to copy {name}: {e}"), hint: None })?;
            let row = rows.into_iter().next().ok_or_else(|| Error::other("CREATE_REPLICATION_SLOT returned no row"))?;
            let text = |i: usize| row.get(i).and_then(|c| c.as_ref()).map(|b| String::from_utf8_lossy(b).into_owned());
            let lsn = text(1).as_deref().and_then(crate::model::change::parse_lsn).ok_or_else(|| Error::other("CREATE_REPLICATION_SLOT returned no consistent point"))?;
            let snapshot = text(2).ok_or_else(|| Error::other("CREATE_REPLICATION_SLOT exported no snapshot"))?;
            let client = crate::db::postgres::connect_client(ep, Role::Source).await?;
            let begin = format!("{}; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{snapshot}'", crate::transfer::postgres::READ_SESSION.trim_end().trim_end_matches(';'));
            client.batch_execute(&begin).await.map_err(|e| crate::db::postgres::query_error(&ep.display, &begin, e))?;
            let read = crate::transfer::postgres::read(&client, &ep.display, &name, &spec, tx);
            let (r, w) = tokio::join!(read, dest.write_rows(&info.target, rx));
            r?;
            w?;
            let _ = client.batch_execute("COMMIT").await;
            // The temporary slot goes with its session.
            drop(session);
            Ok(Position::pg(lsn))
        }
        Endpoint::Mysql(ep) => {
            let spec = read_spec(Dialect::Mysql, info)?;
            let (position, mut conns) = crate::source::mysql::binlog::prepare(ep, 1).await?;
            let Some(mut conn) = conns.pop() else {
                return Err(Error::Endpoint {
                    endpoint: ep.display.clone(),
                    message: format!("cannot lock the tables to copy {name} at an exact binlog position"),
                    hint: Some("the user needs the RELOAD privilege (FLUSH TABLES WITH READ LOCK)".into()),
                });
            };
            let display = conn.display.clone();
            let read = transfer::mysql::read(&mut conn.conn, &display, &name, &spec, tx);
            let (r, w) = tokio::join!(read, dest.write_rows(&info.target, rx));
            r?;
            w?;
            let _ = conn.execute("COMMIT").await;
            Ok(position)
        }
        other => Err(Error::usage(format!("barge cannot copy {name} from {other} while changes flow; run the full load again instead"))),
    }
}
