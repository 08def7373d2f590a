//! Helpers for the file and stream target tests: names, buckets, streams
//! and topics on the shared test servers, and `read_sink.py`, which reads
//! back what barge wrote with independent clients (pyarrow, boto3,
//! aws-kinesis-agg, kafka-python).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{barge, repo, run, Engine, TestDb};

/// A name no other test (or test run) uses: the servers are shared.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("barge-{tag}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)).to_lowercase().replace('_', "-")
}

pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run the tests with `bash tests/run.sh`, which starts the test servers"))
}

fn python() -> Command {
    Command::new(env("BARGE_TEST_PYTHON"))
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what} failed ({:?})\nstdout: {}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs a few lines of Python (boto3 and friends).
pub fn py(code: &str, args: &[&str]) -> String {
    let out = ok(python().arg("-c").arg(code).args(args).output().expect("run python"), "python");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `read_sink.py MODE ARGS` reads back, as JSON.
pub fn read_back(args: &[&str]) -> serde_json::Value {
    let out = ok(python().arg(repo().join("tests/support/read_sink.py")).args(args).output().expect("run read_sink.py"), "read_sink.py");
    serde_json::from_slice(&out.stdout).expect("read_sink.py prints JSON")
}

pub fn read_dir(dir: &Path) -> serde_json::Value {
    read_back(&["files", dir.to_str().unwrap()])
}

pub fn create_bucket(name: &str) {
    py("import boto3,os,sys; boto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT']).create_bucket(Bucket=sys.argv[1])", &[name]);
}

pub fn create_stream(name: &str, shards: u32) {
    py(
        "import boto3,os,sys,time
k = boto3.client('kinesis', endpoint_url=os.environ['BARGE_TEST_KINESIS_ENDPOINT'])
k.create_stream(StreamName=sys.argv[1], ShardCount=int(sys.argv[2]))
for _ in range(200):
    if k.describe_stream_summary(StreamName=sys.argv[1])['StreamDescriptionSummary']['StreamStatus'] == 'ACTIVE':
        break
    time.sleep(0.05)",
        &[name, &shards.to_string()],
    );
}

pub fn create_topic(name: &str, partitions: u32) {
    py(
        "import os,sys
from kafka.admin import KafkaAdminClient, NewTopic
a = KafkaAdminClient(bootstrap_servers=os.environ['BARGE_TEST_KAFKA_BROKER'])
a.create_topics([NewTopic(sys.argv[1], num_partitions=int(sys.argv[2]), replication_factor=1)])
a.close()",
        &[name, &partitions.to_string()],
    );
}

/// A PostgreSQL database holding `sql`.
pub async fn pg_with(sql: &str, tag: &str) -> TestDb {
    let db = TestDb::new(Engine::Postgres, tag).await;
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), sql).unwrap();
    db.load_script(f.path()).await;
    db
}

/// `barge migrate SRC DST --state-dir (temp) ARGS...`
pub fn migrate_to(src: &TestDb, dst: &str, args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    run(barge().args(["migrate", &src.url, dst, "--state-dir"]).arg(state.path()).args(args))
}

/// A table as the change-feed tests hand it to a sink: `cols` in order,
/// `key` indexes into them.
pub fn table_info(schema: &str, name: &str, cols: &[(&str, barge::model::ColumnType)], key: &[usize]) -> (barge::model::QualifiedName, barge::cdc::TableInfo) {
    use barge::model::{Column, QualifiedName, Table};
    let qn = QualifiedName::new(Some(schema), name);
    let mut source = Table::new(qn.clone());
    source.columns = cols.iter().map(|(n, ty)| Column::new(n, ty.clone(), "")).collect();
    let target = barge::schema::target::TargetTable::named(qn.clone(), vec![schema.to_string(), name.to_string()]);
    (qn, barge::cdc::TableInfo { source, target, key: key.to_vec(), filter: None })
}

/// A change of `table` at `position` (one transaction per position).
pub fn change(table: &barge::model::QualifiedName, op: barge::cdc::Op, position: u64) -> barge::cdc::Change {
    barge::cdc::Change { table: table.clone(), op, txid: Some(position.to_string()), commit_time: None, position: barge::model::Position::pg(position) }
}
