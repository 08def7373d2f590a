#!/usr/bin/env python3
"""Smoke check of the test services started by tests/services.sh.

Run by hand, not by cargo:

    D=$(mktemp -d) && bash tests/services.sh start "$D" && . "$D/env"
    "$BARGE_TEST_PYTHON" tests/support/services_smoke.py
    bash tests/services.sh stop "$D"

Each check talks to one server through the BARGE_TEST_* variables, the way a
test would, and prints one line. Exit status is non-zero if any check failed.
"""
import os
import subprocess
import sys
import time
import traceback
import uuid
from urllib.parse import urlparse

RESULTS = []


def check(name):
    def wrap(fn):
        t0 = time.monotonic()
        try:
            detail = fn()
            RESULTS.append((name, True))
            print(f"ok    {name:<10} {time.monotonic() - t0:5.2f}s  {detail or ''}")
        except Exception as e:  # noqa: BLE001 - report and continue
            RESULTS.append((name, False))
            print(f"FAIL  {name:<10} {time.monotonic() - t0:5.2f}s  {e!r}")
            traceback.print_exc()
        return fn

    return wrap


def env(name):
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"{name} is not set (source DIR/env first)")
    return v


def aws_kwargs(endpoint):
    return dict(
        endpoint_url=endpoint,
        region_name=env("BARGE_TEST_AWS_REGION"),
        aws_access_key_id=env("BARGE_TEST_AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env("BARGE_TEST_AWS_SECRET_ACCESS_KEY"),
    )


@check("postgres")
def _pg():
    url = env("BARGE_TEST_PG_URL")
    out = subprocess.run(
        ["psql", "-X", "-At", url, "-c",
         "select 1, current_setting('wal_level'), current_setting('server_version'), "
         "(select rolreplication and rolsuper from pg_roles where rolname = current_user)"],
        check=True, capture_output=True, text=True, timeout=30).stdout.strip()
    one, wal, ver, repl = out.split("|")
    assert one == "1" and wal == "logical" and repl == "t", out
    # a replication connection as barge must be allowed by pg_hba
    subprocess.run(["psql", "-X", "-At", url + "?replication=database", "-c", "IDENTIFY_SYSTEM"],
                   check=True, capture_output=True, text=True, timeout=30)
    return f"PostgreSQL {ver}, wal_level={wal}, replication login ok"


@check("mariadb")
def _my():
    u = urlparse(env("BARGE_TEST_MYSQL_URL"))
    out = subprocess.run(
        ["mariadb", "--no-defaults", "-h", u.hostname, "-P", str(u.port), "-u", u.username,
         f"-p{u.password}", "-N", "-B", "-e",
         "select 1, version(), @@log_bin, @@binlog_format, @@binlog_row_metadata, @@local_infile;"
         "show grants for current_user();"],
        check=True, capture_output=True, text=True, timeout=30).stdout
    first = out.splitlines()[0].split("\t")
    assert first[0] == "1" and first[2] == "1" and first[3] == "ROW" and first[4] == "FULL", first
    assert "ALL PRIVILEGES" in out and "GRANT OPTION" in out, out
    return f"MariaDB {first[1]}, binlog ROW/FULL, local_infile={first[5]}"


@check("s3")
def _s3():
    import boto3
    s3 = boto3.client("s3", **aws_kwargs(env("BARGE_TEST_S3_ENDPOINT")))
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(1 << 20)
    s3.put_object(Bucket=bucket, Key="a/b.bin", Body=body)
    got = s3.get_object(Bucket=bucket, Key="a/b.bin")["Body"].read()
    assert got == body
    return f"bucket {bucket}: put/get 1 MiB ok"


@check("kinesis")
def _kinesis():
    import boto3
    k = boto3.client("kinesis", **aws_kwargs(env("BARGE_TEST_KINESIS_ENDPOINT")))
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    k.create_stream(StreamName=name, ShardCount=2)
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    r = k.put_record(StreamName=name, Data=b"hello", PartitionKey="pk")
    shard = r["ShardId"]
    it = k.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    recs = k.get_records(ShardIterator=it)["Records"]
    assert [x["Data"] for x in recs] == [b"hello"], recs
    # kinesalite enforces the PutRecords limit of 500 records
    try:
        k.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "p"}] * 501)
        raise AssertionError("501 records accepted")
    except k.exceptions.ClientError as e:
        assert "ValidationException" in str(e) or "500" in str(e), e
    k.delete_stream(StreamName=name)
    return f"stream {name}: create/put/get ok, 501-record PutRecords rejected"


@check("kafka")
def _kafka():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    broker = env("BARGE_TEST_KAFKA_BROKER")
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=10000)
    admin.create_topics([NewTopic(name=topic, num_partitions=3, replication_factor=1)])
    admin.close()
    # also check the tansu CLI way of creating a topic
    topic2 = topic + "-cli"
    subprocess.run([env("BARGE_TEST_TANSU_BIN"), "topic", "create", topic2,
                    "--broker", f"tcp://{broker}", "--partitions", "2"],
                   check=True, capture_output=True, text=True, timeout=30)
    p = KafkaProducer(bootstrap_servers=broker, acks="all")
    for i in range(10):
        p.send(topic, key=b"k%d" % i, value=b"v%d" % i)
    p.send(topic2, key=b"x", value=b"y")
    p.flush(timeout=10)
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=5000)
    tps = [TopicPartition(topic, i) for i in range(3)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = []
    for m in c:
        got.append(m.value)
        if len(got) == 10:
            break
    got.sort()
    c.close()
    assert got == sorted(b"v%d" % i for i in range(10)), got
    return f"topics {topic} (admin client), {topic2} (tansu CLI): produce/consume 10 ok"


ok = all(r for _, r in RESULTS)
print(f"{sum(r for _, r in RESULTS)} passed, {sum(not r for _, r in RESULTS)} failed")
sys.exit(0 if ok else 1)
