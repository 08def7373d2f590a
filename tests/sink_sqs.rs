//! migrate to SQS (moto), read back with a boto3 consumer: every row once
//! and exact on a standard queue; order per message group on a FIFO
//! queue, through refused entries and calls; a killed run's redelivery
//! dropped by SQS's own deduplication; payloads over the queue's
//! `MaximumMessageSize` (read from the queue) through S3 in the SQS
//! Extended Client's shape; a missing queue named with what to do.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use barge::cdc::{ChangeBatch, Op, Tables};
use barge::model::{ColumnType, Value};
use barge::sink::{Scope, SinkOptions, SinkStats};
use serde_json::{json, Value as Json};
use support::sinks::*;
use support::*;

fn moto() -> String {
    env("BARGE_TEST_S3_ENDPOINT")
}

fn sqs_url(queue: &str, endpoint: &str) -> String {
    format!("sqs://{queue}?endpoint={endpoint}&region=us-east-1")
}

/// A new queue (`.fifo` names a FIFO queue) with `attributes` (a Python dict).
fn create_queue(tag: &str, fifo: bool, attributes: &str) -> String {
    // SQS queue names: at most 80 characters, `.fifo` included.
    let mut name: String = unique_name(tag).chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    name.truncate(70);
    if fifo {
        name.push_str(".fifo");
    }
    let attrs = if fifo { format!("dict({attributes}, FifoQueue='true')") } else { attributes.to_string() };
    py(&format!("import boto3,os,sys; boto3.client('sqs', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT']).create_queue(QueueName=sys.argv[1], Attributes={attrs})"), &[&name]);
    name
}

/// Receives (and deletes) every message of `queue` with boto3, in the
/// order SQS hands them out (a FIFO queue: each group in its order). A
/// message carrying the extended client's `ExtendedPayloadSize` has its
/// body read from the S3 object its pointer names. Numbers in bodies
/// stay as their exact text.
const CONSUMER: &str = r#"
import boto3, json, os, sys
sqs = boto3.client('sqs', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
s3 = boto3.client('s3', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
url = sqs.get_queue_url(QueueName=sys.argv[1])['QueueUrl']
out, empty = [], 0
while empty < 2:
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=['All'], AttributeNames=['All'])
    ms = r.get('Messages', [])
    if not ms:
        empty += 1
        continue
    empty = 0
    for m in ms:
        attrs = {k: v['StringValue'] for k, v in m.get('MessageAttributes', {}).items()}
        body, pointer = m['Body'], None
        if 'ExtendedPayloadSize' in attrs:
            cls, at = json.loads(body)
            pointer = {'class': cls, 'bucket': at['s3BucketName'], 'key': at['s3Key']}
            body = s3.get_object(Bucket=at['s3BucketName'], Key=at['s3Key'])['Body'].read().decode()
        out.append({'body': json.loads(body, parse_float=str, parse_int=str), 'size': len(body.encode()), 'attributes': attrs,
                    'group': m['Attributes'].get('MessageGroupId'), 'dedup': m['Attributes'].get('MessageDeduplicationId'), 'pointer': pointer})
    sqs.delete_message_batch(QueueUrl=url, Entries=[{'Id': str(i), 'ReceiptHandle': m['ReceiptHandle']} for i, m in enumerate(ms)])
print(json.dumps(out))
"#;

fn consume(queue: &str) -> Vec<Json> {
    serde_json::from_str(&py(CONSUMER, &[queue])).expect("the consumer prints JSON")
}

/// Messages still in `queue` (visible or not).
fn queued(queue: &str) -> u64 {
    py(
        "import boto3,os,sys
s = boto3.client('sqs', endpoint_url=os.environ['BARGE_TEST_S3_ENDPOINT'])
a = s.get_queue_attributes(QueueUrl=s.get_queue_url(QueueName=sys.argv[1])['QueueUrl'], AttributeNames=['All'])['Attributes']
print(int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible']))",
        &[queue],
    )
    .trim()
    .parse()
    .unwrap()
}

const ORDERS: &str = "CREATE TABLE orders (id int PRIMARY KEY, total numeric(30,10), at timestamptz, note text);
INSERT INTO orders SELECT g, g::numeric * 1000000007 / 1000000000 + 0.0000000001, timestamptz '2024-03-10 01:59:59.999999+00' + g * interval '1 second', 'n' || g
FROM generate_series(1, 200) g;
UPDATE orders SET note = E'Zürich ✓ \"q\" \\\\ \\t', total = NULL WHERE id = 7;
CREATE TABLE customers (id text PRIMARY KEY, name text);
INSERT INTO customers SELECT 'c' || g, 'name ' || g FROM generate_series(1, 30) g;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_a_standard_queue_every_row_once_and_exact() {
    let src = pg_with(ORDERS, "sink_sqs").await;
    let queue = create_queue("std", false, "{}");
    let o = migrate_to(&src, &sqs_url(&queue, &moto()), &[]);
    assert_ok(&o, "migrate to sqs");
    assert!(stdout(&o).contains("target: 230 records"), "{}", text(&o));
    let msgs = consume(&queue);
    assert_eq!(msgs.len(), 230, "every row once");
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &msgs {
        let (body, attrs) = (&m["body"], &m["attributes"]);
        let meta = &body["metadata"];
        let table = format!("{}.{}", meta["schema-name"].as_str().unwrap(), meta["table-name"].as_str().unwrap());
        assert_eq!(attrs["barge-table"].as_str(), Some(table.as_str()), "{m}");
        assert_eq!(attrs["barge-operation"], "load");
        assert_eq!(meta["operation"], "load");
        assert_eq!(attrs["barge-record-id"], meta["record-id"], "the attribute names the record the body holds");
        assert!(m["group"].is_null() && m["dedup"].is_null() && m["pointer"].is_null(), "a standard queue: no group, no dedup id: {m}");
        assert!(seen.entry(table).or_default().insert(body["data"]["id"].as_str().unwrap().to_string()), "a repeated row: {m}");
    }
    assert_eq!(seen["public.orders"].len(), 200);
    assert_eq!(seen["public.customers"].len(), 30);
    let data = |id: &str| msgs.iter().find(|m| m["attributes"]["barge-table"] == "public.orders" && m["body"]["data"]["id"] == id).unwrap()["body"]["data"].clone();
    // Every digit, the instant in UTC with microseconds, text as it was.
    assert_eq!(data("8"), json!({"id": "8", "total": "8.0000000561", "at": "2024-03-10T02:00:07.999999+00:00", "note": "n8"}));
    assert_eq!(data("7"), json!({"id": "7", "total": null, "at": "2024-03-10T02:00:06.999999+00:00", "note": "Zürich ✓ \"q\" \\ \t"}));

    // The Debezium envelope, on request.
    let queue = create_queue("dbz", false, "{}");
    let o = migrate_to(&src, &sqs_url(&queue, &moto()), &["--envelope", "debezium", "--tables", "customers"]);
    assert_ok(&o, "migrate to sqs, debezium");
    let msgs = consume(&queue);
    assert_eq!(msgs.len(), 30);
    let c3 = msgs.iter().find(|m| m["body"]["after"]["id"] == "c3").unwrap();
    assert_eq!((c3["body"]["op"].as_str(), c3["body"]["after"]["name"].as_str()), (Some("r"), Some("name 3")));
    assert_eq!(c3["attributes"]["barge-record-id"], c3["body"]["source"]["record_id"]);
    src.drop_db().await;
}

// ---- a proxy in front of moto ----------------------------------------------

/// What the proxy does with a SendMessageBatch call.
#[derive(Clone, Copy)]
enum Act {
    Forward,
    /// Refused whole (HTTP 500), nothing forwarded.
    Refuse,
    /// Forwarded, and SQS's answer lost (HTTP 500 after SQS took them).
    LoseAnswer,
    /// Every other entry not forwarded, answered as failed with
    /// SenderFault false, as SQS answers its own errors.
    RefuseHalf,
    /// Forwarded, and no answer ever: a crash's window.
    Hang,
}

/// Forwards to moto; `act` decides for the n-th SendMessageBatch call.
struct Proxy {
    calls: AtomicUsize,
    refused_entries: AtomicUsize,
    act: fn(usize) -> Act,
    /// Forward everything from now on.
    healed: std::sync::atomic::AtomicBool,
}

/// What the proxy answers a call: SendMessageBatch calls as `act` says.
async fn handle(t: Arc<Proxy>, call: support::aws_proxy::Call) -> (u16, Vec<u8>) {
    let act = if call.target.ends_with("SendMessageBatch") && !t.healed.load(Ordering::SeqCst) { (t.act)(t.calls.fetch_add(1, Ordering::SeqCst)) } else { Act::Forward };
    let internal = br#"{"__type":"com.amazonaws.sqs#InternalError","message":"We encountered an internal error. Please try again."}"#.to_vec();
    match act {
        Act::Forward => call.forward(call.body.clone()).await,
        Act::Refuse => (500, internal),
        Act::LoseAnswer => {
            call.forward(call.body.clone()).await;
            (500, internal)
        }
        Act::Hang => {
            call.forward(call.body.clone()).await;
            std::future::pending::<()>().await;
            unreachable!()
        }
        Act::RefuseHalf => {
            let mut req: Json = serde_json::from_slice(&call.body).unwrap();
            let entries = req["Entries"].as_array().unwrap().clone();
            let (kept, dropped): (Vec<(usize, Json)>, Vec<(usize, Json)>) = entries.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
            t.refused_entries.fetch_add(dropped.len(), Ordering::SeqCst);
            req["Entries"] = kept.into_iter().map(|(_, e)| e).collect();
            let (_, answer) = call.forward(serde_json::to_vec(&req).unwrap()).await;
            let mut answer: Json = serde_json::from_slice(&answer).unwrap();
            let failed: Vec<Json> = dropped.iter().map(|(_, e)| json!({"Id": e["Id"], "SenderFault": false, "Code": "InternalError", "Message": "try again"})).collect();
            answer["Failed"] = failed.into();
            (200, serde_json::to_vec(&answer).unwrap())
        }
    }
}

async fn start_proxy(act: fn(usize) -> Act) -> (String, Arc<Proxy>) {
    let t = Arc::new(Proxy { calls: AtomicUsize::new(0), refused_entries: AtomicUsize::new(0), act, healed: Default::default() });
    let tt = t.clone();
    let url = support::aws_proxy::start(format!("{}/", moto()), "application/x-amz-json-1.0", move |call| handle(tt.clone(), call)).await;
    (url, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_queue_keeps_each_groups_order_through_refused_entries_and_calls() {
    let queue = create_queue("fifo", true, "{}");
    // The first 12 calls are disturbed: refused in part or whole, or their answer lost.
    let (proxy, refuser) = start_proxy(|n| match n {
        n if n >= 12 => Act::Forward,
        n if n % 4 == 1 => Act::Refuse,
        n if n % 4 == 2 => Act::LoseAnswer,
        _ => Act::RefuseHalf,
    })
    .await;
    let endpoint = barge::endpoint::Endpoint::parse(&sqs_url(&queue, &proxy)).unwrap();
    let (name, info) = table_info("iot", "readings", &[("id", ColumnType::int(32)), ("device", ColumnType::text()), ("seq", ColumnType::int(32))], &[0]);
    let tables: Tables = [(name.clone(), info)].into_iter().collect();
    let stats = Arc::new(SinkStats::default());
    let opts = SinkOptions { group_by: Some("device".into()), ..SinkOptions::default() };
    let mut sink = barge::sink::open(&endpoint, &opts, Scope::Cdc, stats.clone()).await.unwrap();
    // 5 devices (one of them named with a space: not a valid group id as
    // it is), 16 readings each, interleaved; 4 batches of 20 changes.
    let devices = ["d1", "d2", "d3", "d4", "dev 5"];
    let mut changes = Vec::new();
    let mut pos = 100;
    for seq in 1..=16 {
        for (d, device) in devices.iter().enumerate() {
            pos += 1;
            let row = vec![Value::Int(seq * 10 + d as i64), Value::Text(device.to_string()), Value::Int(seq)];
            changes.push(change(&name, Op::Insert { row }, pos));
        }
    }
    for chunk in changes.chunks(20) {
        let batch = ChangeBatch { changes: chunk.to_vec(), position: chunk.last().map(|c| c.position.clone()) };
        sink.apply(&tables, &batch).await.unwrap();
        assert_eq!(sink.committed().await.unwrap(), batch.position, "acknowledged before apply returned");
    }
    assert!(refuser.refused_entries.load(Ordering::SeqCst) > 0, "the proxy refused entries");
    assert!(SinkStats::get(&stats.throttled_calls) > 0 && SinkStats::get(&stats.retried_records) >= refuser.refused_entries.load(Ordering::SeqCst) as u64);
    assert_eq!(SinkStats::get(&stats.records), 80);

    let msgs = consume(&queue);
    assert_eq!(msgs.len(), 80, "every change once: a copy sent again after a lost answer is dropped by its deduplication id");
    let mut per_device: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for m in &msgs {
        let data = &m["body"]["data"];
        let device = data["device"].as_str().unwrap().to_string();
        assert_eq!(m["dedup"], m["attributes"]["barge-record-id"], "the deduplication id is the record id");
        assert_eq!(m["attributes"]["barge-operation"], "insert");
        let group = m["group"].as_str().unwrap().to_string();
        assert_eq!(groups.entry(device.clone()).or_insert_with(|| group.clone()), &group, "one group per device");
        per_device.entry(device).or_default().push(data["seq"].as_str().unwrap().parse().unwrap());
    }
    assert_eq!(groups["d1"], "d1", "the group is the column's value");
    assert_eq!(groups["dev 5"].len(), 64, "a value SQS would refuse as a group id is hashed");
    assert_eq!(groups.values().collect::<BTreeSet<_>>().len(), 5);
    for (device, seqs) in &per_device {
        assert_eq!(seqs, &(1..=16).collect::<Vec<i64>>(), "device {device}: nothing lost, nothing reordered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_load_into_a_fifo_queue_is_sent_again_and_deduplicated_by_sqs() {
    let src = pg_with("CREATE TABLE events (id int PRIMARY KEY, kind text, payload text); INSERT INTO events SELECT g, 'k' || (g % 7), md5(g::text) FROM generate_series(1, 150) g;", "sink_sqs_kill").await;
    let queue = create_queue("kill", true, "{}");
    // SQS takes the first 5 calls and answers; it takes the next ones and
    // the answers never come: barge is killed there, with messages on the
    // queue it never heard were delivered.
    let (proxy, calls) = start_proxy(|n| if n < 5 { Act::Forward } else { Act::Hang }).await;
    let dst = sqs_url(&queue, &proxy);
    let state = tempfile::tempdir().unwrap();
    let mut child = barge().args(["migrate", &src.url, &dst, "--chunk-rows", "50", "--state-dir"]).arg(state.path()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while calls.calls.load(Ordering::SeqCst) < 8 {
        assert!(child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline, "barge stopped before the calls that hang");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    // More than the 5 answered calls hold: SQS has messages barge was never told it took.
    let before = queued(&queue);
    assert!((51..=150).contains(&before), "killed with {before} of 150 messages on the queue");

    calls.healed.store(true, Ordering::SeqCst);
    let o = {
        let (src, dst, state) = (src.url.clone(), dst.clone(), state.path().to_path_buf());
        tokio::task::spawn_blocking(move || run(barge().args(["migrate", &src, &dst, "--chunk-rows", "50", "--state-dir"]).arg(&state))).await.unwrap()
    };
    assert_ok(&o, "the rerun after kill -9");
    let msgs = consume(&queue);
    let ids: BTreeSet<String> = msgs.iter().map(|m| m["body"]["data"]["id"].as_str().unwrap().to_string()).collect();
    assert_eq!((msgs.len(), ids.len()), (150, 150), "every row once: SQS dropped what the rerun sent again");
    for m in &msgs {
        assert_eq!(m["group"].as_str().unwrap(), format!("public.events|{}", m["body"]["data"]["id"].as_str().unwrap()), "group: table and key");
        assert_eq!(m["dedup"], m["body"]["metadata"]["record-id"]);
    }
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_queues_maximum_go_through_s3_as_the_extended_client_writes_them() {
    // Sizes around the queue's limit of 1024 bytes (read from the queue;
    // SQS's default is far larger), and one far over it.
    let src = pg_with("CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs SELECT g, repeat('é', g * g * 4) FROM generate_series(1, 12) g; INSERT INTO docs VALUES (99, repeat('x', 300000));", "sink_sqs_big").await;
    let queue = create_queue("big", false, "{'MaximumMessageSize': '1024'}");
    let dst = sqs_url(&queue, &moto());

    // Without a bucket: refused, naming the row, the queue's limit and what to do.
    let o = migrate_to(&src, &dst, &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("table public.docs, row id=") && err.contains("at most 1024") && err.contains("--payload-bucket"), "{err}");

    let bucket = unique_name("payloads");
    create_bucket(&bucket);
    let o = migrate_to(&src, &dst, &["--payload-bucket", &format!("s3://{bucket}/sqs/large")]);
    assert_ok(&o, "migrate to sqs with a payload bucket");
    let msgs = consume(&queue);
    assert_eq!(msgs.len(), 13);
    let mut through_s3 = BTreeSet::new();
    for m in &msgs {
        let id: i64 = m["body"]["data"]["id"].as_str().unwrap().parse().unwrap();
        let text = m["body"]["data"]["body"].as_str().unwrap();
        assert_eq!(text.chars().count() as i64, if id == 99 { 300000 } else { id * id * 4 }, "row {id} whole");
        let attrs = &m["attributes"];
        // What SQS counts: the body and each attribute's name, type and value.
        let inline: usize = m["size"].as_u64().unwrap() as usize
            + ["barge-table", "barge-operation", "barge-record-id"].iter().map(|a| a.len() + "String".len() + attrs[*a].as_str().unwrap().len()).sum::<usize>();
        match &m["pointer"] {
            Json::Null => assert!(inline <= 1024, "row {id}: {inline} bytes, inline over the limit"),
            p => {
                assert!(inline > 1024, "row {id}: {inline} bytes would have fit");
                assert_eq!(p["class"], "software.amazon.payloadoffloading.PayloadS3Pointer");
                assert_eq!(p["bucket"].as_str(), Some(bucket.as_str()));
                let key = p["key"].as_str().unwrap();
                assert_eq!(key, format!("sqs/large/public/docs/{}.json", attrs["barge-record-id"].as_str().unwrap()));
                assert_eq!(attrs["ExtendedPayloadSize"].as_str().unwrap(), m["size"].as_u64().unwrap().to_string(), "the payload's size in bytes");
                through_s3.insert(id);
            }
        }
    }
    assert!(through_s3.contains(&99) && through_s3.len() < 13 && through_s3.len() > 1, "large rows went through S3, small ones inline: {through_s3:?}");
    src.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_or_a_group_on_a_standard_queue_is_refused_with_what_to_do() {
    let src = pg_with("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);", "sink_sqs_missing").await;
    let o = migrate_to(&src, &sqs_url("no-such-queue-h16", &moto()), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("no-such-queue-h16") && err.contains("create the queue no-such-queue-h16 first"), "{}", text(&o));
    let o = migrate_to(&src, &sqs_url("no-such-queue-h16.fifo", &moto()), &[]);
    assert!(stderr(&o).contains("FifoQueue=true"), "{}", text(&o));

    let queue = create_queue("std", false, "{}");
    let o = migrate_to(&src, &sqs_url(&queue, &moto()), &["--group-by", "id"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("standard queue") && stderr(&o).contains(".fifo"), "{}", text(&o));
    let o = migrate_to(&src, &sqs_url(&queue, &moto()), &["--payload-bucket", "file:///tmp/x"]);
    assert!(!o.status.success() && stderr(&o).contains("name an S3 bucket"), "{}", text(&o));
    assert_eq!(queued(&queue), 0, "nothing sent");
    src.drop_db().await;
}
