//! The coordinator's lease statement at the size of a large plan: what it
//! reads must not grow with the chunks, and it hands out the right unit.
//! (A lease that compared every pending chunk with every other read
//! millions of rows at a few thousand chunks: 1.6 s a lease.)

use barge::coord::lease::LEASE_SQL;

use crate::support::{Engine, TestDb};

const CHUNKS: i64 = 3000;

async fn client(db: &TestDb) -> tokio_postgres::Client {
    match db.connect(barge::endpoint::Role::Coordinator).await {
        barge::db::Db::Postgres(pg) => pg.client,
        _ => unreachable!("a PostgreSQL test database"),
    }
}

/// A coordinator with barge's control schema and a task of `CHUNKS`
/// chunks, every other one done (ids 2, 4, … pending).
async fn coordinator_with_task(tag: &str) -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new(Engine::Postgres, tag).await;
    let mut c = client(&db).await;
    barge::coord::schema::migrate(&mut c, "test coordinator").await.expect("control schema");
    c.batch_execute(&format!(
        "INSERT INTO barge_control.tasks (name, command, args, source, target) VALUES ('t', 'migrate', '[]', '', '');
         INSERT INTO barge_control.units (task, id, kind, after, status) VALUES ('t', 0, 'schema', '{{}}', 'done'), ('t', 1, 'post', '{{schema,chunk}}', 'pending');
         INSERT INTO barge_control.units (task, id, kind, after, table_key, chunk, lo, hi, status)
         SELECT 't', i, 'chunk', '{{schema}}', 'public.t', i - 2, i * 100, i * 100 + 100, CASE WHEN i % 2 = 0 THEN 'pending' ELSE 'done' END
           FROM generate_series(2, {CHUNKS} + 1) i;
         ANALYZE barge_control.units"
    ))
    .await
    .expect("synthetic task");
    (db, c)
}

/// Rows every node of a plan produced or threw away, loops included.
fn rows_read(node: &serde_json::Value) -> f64 {
    let n = |k: &str| node.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    let own = (n("Actual Rows") + n("Rows Removed by Filter") + n("Rows Removed by Join Filter") + n("Rows Removed by Index Recheck")) * n("Actual Loops").max(1.0);
    own + node.get("Plans").and_then(|p| p.as_array()).map(|ps| ps.iter().map(rows_read).sum()).unwrap_or(0.0)
}

async fn lease(c: &tokio_postgres::Client, kind: &str) -> Option<i64> {
    c.query_opt(LEASE_SQL, &[&"t", &kind, &"w1", &30.0f64]).await.expect("lease").map(|r| r.get(0))
}

#[tokio::test]
async fn a_lease_reads_a_handful_of_rows_at_thousands_of_chunks() {
    let (db, c) = coordinator_with_task("coord_lease_rows").await;
    let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {LEASE_SQL}");
    let row = c.query_one(explain.as_str(), &[&"t", &"chunk", &"w1", &30.0f64]).await.expect("explain the lease");
    let plan: serde_json::Value = row.get(0);
    let read = rows_read(&plan[0]["Plan"]);
    assert!(read < 100.0, "one lease read {read} rows of a {CHUNKS}-chunk task; it must not grow with the chunks:\n{plan:#}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_lease_takes_an_expired_unit_first_then_pending_ones_in_order_and_the_post_step_last() {
    let (db, c) = coordinator_with_task("coord_lease_order").await;
    // A worker that stopped holds chunk 1001 (odd ids are done; make it leased, expired).
    c.batch_execute("UPDATE barge_control.units SET status = 'leased', owner = 'gone', lease_expires = now() - interval '1 second' WHERE task = 't' AND id = 1001")
        .await
        .unwrap();
    assert_eq!(lease(&c, "chunk").await, Some(1001), "the stopped worker's chunk is redone first");
    assert_eq!(lease(&c, "chunk").await, Some(2), "then the first pending chunk");
    assert_eq!(lease(&c, "chunk").await, Some(4));
    assert_eq!(lease(&c, "post").await, None, "the key build waits while chunks are not done");
    c.batch_execute("UPDATE barge_control.units SET status = 'done' WHERE task = 't' AND kind = 'chunk'").await.unwrap();
    assert_eq!(lease(&c, "chunk").await, None, "no chunk is left");
    assert_eq!(lease(&c, "post").await, Some(1), "the key build is ready once every chunk is done");
    db.drop_db().await;
}
