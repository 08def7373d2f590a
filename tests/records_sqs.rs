//! `sqs://` records from a real (moto) SQS into a real PostgreSQL: every
//! message once, deleted only once it is on the target, kept invisible
//! while a slow target works, in order per FIFO group, large payloads
//! read from S3 through the extended client's pointer.

use crate::support::{assert_ok, barge, run, stderr, text, Engine, TestDb};

fn endpoint() -> String {
    std::env::var("BARGE_TEST_S3_ENDPOINT").expect("moto is started by tests/run.sh (BARGE_TEST_S3_ENDPOINT)")
}

/// Runs a boto3 script against moto; `SQS` and `S3` are its clients.
fn boto(script: &str) -> String {
    let py = std::env::var("BARGE_TEST_PYTHON").expect("BARGE_TEST_PYTHON");
    let prelude = format!("import boto3, json, os\nSQS = boto3.client('sqs', endpoint_url='{0}')\nS3 = boto3.client('s3', endpoint_url='{0}')\n", endpoint());
    let out = std::process::Command::new(py).arg("-c").arg(format!("{prelude}{script}")).output().unwrap();
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn queue(name: &str, attrs: &str) -> String {
    let unique = format!("{name}{}", std::process::id() % 100_000);
    let name = if attrs.contains("FifoQueue") { format!("{unique}.fifo") } else { unique };
    boto(&format!("print(SQS.create_queue(QueueName='{name}', Attributes={attrs})['QueueUrl'])"));
    name
}

fn left_in(queue: &str) -> String {
    boto(&format!(
        "a = SQS.get_queue_attributes(QueueUrl=SQS.get_queue_url(QueueName='{queue}')['QueueUrl'], AttributeNames=['All'])['Attributes']\nprint(int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible']))"
    ))
}

fn migrate(queue: &str, db: &TestDb, state: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut c = barge();
    c.args(["migrate", &format!("sqs://{queue}?endpoint={}", endpoint()), &db.url, "--state-dir"]).arg(state).args(extra);
    c
}

#[tokio::test]
async fn messages_land_once_and_are_deleted_after_and_a_pointer_is_followed() {
    let q = queue("orders", "{}");
    let bucket = format!("payloads{}", std::process::id() % 100_000);
    boto(&format!(
        "u = SQS.get_queue_url(QueueName='{q}')['QueueUrl']\n\
         for i in range(40): SQS.send_message(QueueUrl=u, MessageBody=json.dumps({{'id': i, 'amount': '%d.0100' % i}}), **({{'MessageAttributes': {{'trace-id': {{'DataType': 'String', 'StringValue': 't%d' % i}}}}}} if i in (3, 4) else {{}}))\n\
         S3.create_bucket(Bucket='{bucket}')\n\
         S3.put_object(Bucket='{bucket}', Key='large/1', Body=json.dumps({{'id': 1000, 'amount': '99999999999999.9999', 'pad': 'x' * 300000}}))\n\
         SQS.send_message(QueueUrl=u, MessageBody=json.dumps(['software.amazon.payloadoffloading.PayloadS3Pointer', {{'s3BucketName': '{bucket}', 's3Key': 'large/1'}}]), MessageAttributes={{'ExtendedPayloadSize': {{'DataType': 'Number', 'StringValue': '300000'}}}})"
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.sql"), "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(20,4) NOT NULL);").unwrap();
    let db = TestDb::new(Engine::Postgres, "sqsorders").await;
    let schema = dir.path().join("t.sql");
    let out = run(&mut migrate(&q, &db, &dir.path().join("state"), &["--schema", schema.to_str().unwrap()]));
    assert_ok(&out, "sqs into PostgreSQL");
    let row = db.query_row("SELECT count(*), sum(amount)::text, max(amount)::text FROM orders").await;
    assert_eq!(row, vec![Some("41".into()), Some("100000000000780.3999".into()), Some("99999999999999.9999".into())], "40 messages and the one kept in S3, exact");
    assert_eq!(left_in(&q), "0", "every message on the target was deleted from the queue");
    // Attributes are not carried: said once, by name; the extended
    // client's own size attribute is not the sender's and is not named.
    let err = crate::support::stderr(&out);
    let named: Vec<&str> = err.lines().filter(|l| l.contains("which barge does not carry")).collect();
    assert_eq!(named.len(), 1, "named once:\n{err}");
    assert!(named[0].contains("(trace-id)"), "{}", named[0]);
    db.drop_db().await;
}

#[tokio::test]
async fn a_slow_target_keeps_messages_invisible_until_they_are_on_it() {
    // Visibility of 2 s; the target takes 3 s per batch of 10: without
    // barge extending the timeout, SQS would hand the messages out again
    // and the trigger would see them twice. (ALWAYS: barge applies with
    // session_replication_role = replica, which skips ordinary triggers.)
    let q = queue("slow", "{'VisibilityTimeout': '2'}");
    boto(&format!("u = SQS.get_queue_url(QueueName='{q}')['QueueUrl']\nfor i in range(20): SQS.send_message(QueueUrl=u, MessageBody='m-%03d' % i)"));
    let db = TestDb::new(Engine::Postgres, "sqsslow").await;
    let table = q.clone();
    crate::support::exec(
        &db,
        &format!(
            "CREATE TABLE {table} (stream text NOT NULL, shard varchar(255) NOT NULL, \"offset\" varchar(64) NOT NULL, key text, time timestamptz, data text NOT NULL, PRIMARY KEY (shard, \"offset\"));
             CREATE TABLE seen (data text);
             CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO seen VALUES (NEW.data); IF (SELECT count(*) FROM seen) % 10 = 1 THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$;
             CREATE TRIGGER slow BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION slow();
             ALTER TABLE {table} ENABLE ALWAYS TRIGGER slow;"
        ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run(&mut migrate(&q, &db, &dir.path().join("state"), &["--batch-changes", "10"]));
    assert_ok(&out, "sqs into a slow PostgreSQL");
    let row = db.query_row(&format!("SELECT count(*), count(DISTINCT data) FROM {table}")).await;
    assert_eq!(row, vec![Some("20".into()), Some("20".into())]);
    let seen = db.query_row("SELECT count(*) FROM seen").await;
    assert_eq!(seen[0].as_deref(), Some("20"), "no message went back to the queue while the slow target worked");
    assert_eq!(left_in(&q), "0");
    db.drop_db().await;
}

#[tokio::test]
async fn a_kill_mid_stream_loses_no_message_and_lands_none_twice() {
    let q = queue("killed", "{'VisibilityTimeout': '2'}");
    boto(&format!("u = SQS.get_queue_url(QueueName='{q}')['QueueUrl']\nfor i in range(0, 300, 10): SQS.send_message_batch(QueueUrl=u, Entries=[{{'Id': str(j), 'MessageBody': 'm-%03d' % j}} for j in range(i, i + 10)])"));
    let db = TestDb::new(Engine::Postgres, "sqskill").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = migrate(&q, &db, &state, &["--mode", "cdc", "--batch-changes", "20"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    crate::support::wait_for(&db, &format!("SELECT count(*) >= 60 FROM {q}"), "t", &mut child).await;
    child.kill().unwrap();
    child.wait().unwrap();
    // What the killed run held comes back once its timeout passes.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = run(&mut migrate(&q, &db, &state, &[]));
    assert_ok(&out, "the rerun after the kill");
    let row = db.query_row(&format!("SELECT count(*), count(DISTINCT data), min(data), max(data) FROM {q}")).await;
    assert_eq!(row, vec![Some("300".into()), Some("300".into()), Some("m-000".into()), Some("m-299".into())], "every message once");
    assert_eq!(left_in(&q), "0");
    db.drop_db().await;
}

#[tokio::test]
async fn a_fifo_queue_keeps_order_per_group() {
    let q = queue("readings", "{'FifoQueue': 'true', 'ContentBasedDeduplication': 'true'}");
    boto(&format!(
        "u = SQS.get_queue_url(QueueName='{q}')['QueueUrl']\n\
         for i in range(1, 31):\n\
         \x20   for g in ('d1', 'd2'): SQS.send_message(QueueUrl=u, MessageGroupId=g, MessageBody=json.dumps({{'device': g, 'reading': i * (1 if g == 'd1' else 10)}}))"
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.sql"), "CREATE TABLE latest (device text PRIMARY KEY, reading int NOT NULL, _shard text);").unwrap();
    let db = TestDb::new(Engine::Postgres, "sqsfifo").await;
    let schema = dir.path().join("t.sql");
    let out = run(&mut migrate(&q, &db, &dir.path().join("state"), &["--schema", schema.to_str().unwrap(), "--batch-changes", "7"]));
    assert_ok(&out, "fifo into PostgreSQL");
    let row = db.query_row("SELECT string_agg(device || '=' || reading || '@' || _shard, ',' ORDER BY device) FROM latest").await;
    assert_eq!(row[0].as_deref(), Some("d1=30@d1,d2=300@d2"), "each group's last message is the one that stays");
    db.drop_db().await;
}

#[test]
fn a_missing_queue_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(barge().args(["migrate", &format!("sqs://no-such-queue?endpoint={}", endpoint()), "sqlite::memory:", "--state-dir"]).arg(dir.path()));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no-such-queue") && err.contains("create the queue"), "{}", text(&out));
}
