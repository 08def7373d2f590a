#!/usr/bin/env bash
# Benchmark: Kinesis → file:// Parquet, records/s, against boto3 get_records reading the same
# stream to /dev/null, in the same run.
#
#   barge              barge migrate kinesis://bench file:///out --format parquet --mode full-load
#                      (every shard in parallel, within the shard read limits: 5 GetRecords calls
#                      and 2 MB a second per shard; KPL de-aggregation on; Parquet, snappy)
#   boto3-get-records  one boto3 client, shard after shard: GetShardIterator TRIM_HORIZON, then
#                      GetRecords (Limit 10000) until caught up, each record's data to /dev/null
#
#   bash bench/records-kinesis.sh                       (from the repo root, as root)
#   RECORDS=50000 ROUNDS=1 bash bench/records-kinesis.sh   smoke run
#
# Knobs: RECORDS (default 200000), SHARDS (default 4), ROUNDS (default 3: the tools take turns in
# each round, medians are reported), BARGE (a barge binary instead of `cargo build --release`),
# BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The records: DMS-shaped JSON (about 230 bytes each, what barge's own Kinesis target writes),
# partition key = the row id, put once with boto3 put_records (500 a call) into a private
# kinesalite on loopback before anything is timed. Both readers read the same stream; barge's
# Parquet files are read back with pyarrow and their row count checked. kinesalite's CPU time
# during each read is in the notes: it serves both, and on two cores it is most of the work.
# Results: printed, and appended to bench/results/records-kinesis.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECORDS=${RECORDS:-200000}
SHARDS=${SHARDS:-4}
ROUNDS=${ROUNDS:-3}

bench_init records-kinesis
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
bench_tools

KPORT=$(pick_port)
NODE_PATH=$TOOLS_DIR/node_modules setsid node "$ROOT/tests/support/kinesalite.js" "$KPORT" >"$WORK/log/kinesalite.log" 2>&1 </dev/null &
KIN_PID=$!
EXTRA_PIDS+=("$KIN_PID")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break; sleep 0.1; done
assert_loopback kinesalite "$KIN_PID"
export BENCH_KINESIS=http://127.0.0.1:$KPORT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

# CPU seconds kinesalite has used so far.
kinesalite_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$KIN_PID/stat"
}

log "putting $RECORDS records into $SHARDS shards"
"$PY" - "$RECORDS" "$SHARDS" <<'EOF'
import boto3, json, os, sys, time
n, shards = int(sys.argv[1]), int(sys.argv[2])
k = boto3.client("kinesis", endpoint_url=os.environ["BENCH_KINESIS"])
k.create_stream(StreamName="bench", ShardCount=shards)
while k.describe_stream_summary(StreamName="bench")["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
    time.sleep(0.1)
batch = []
for i in range(1, n + 1):
    body = {"data": {"id": str(i), "customer_id": str(i % 5000), "amount": f"{i * 7919 % 1000000 / 100:.2f}",
                     "created_at": "2024-01-01T00:00:00+00:00", "note": f"{i:032x}"},
            "metadata": {"timestamp": "2024-01-01T00:00:00.000000Z", "record-type": "data", "operation": "load",
                         "partition-key-type": "primary-key", "schema-name": "public", "table-name": "orders"}}
    batch.append({"Data": json.dumps(body).encode(), "PartitionKey": str(i)})
    if len(batch) == 500 or i == n:
        r = k.put_records(StreamName="bench", Records=batch)
        assert r["FailedRecordCount"] == 0
        batch = []
EOF

cat > "$WORK/ref.py" <<'EOF'
import boto3, os, sys
k = boto3.client("kinesis", endpoint_url=os.environ["BENCH_KINESIS"])
out = open(os.devnull, "wb")
n = 0
for s in k.list_shards(StreamName="bench")["Shards"]:
    it = k.get_shard_iterator(StreamName="bench", ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    while it:
        r = k.get_records(ShardIterator=it, Limit=10000)
        for rec in r["Records"]:
            out.write(rec["Data"])
        n += len(r["Records"])
        if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            break
        it = r.get("NextShardIterator")
print(n)
EOF

parquet_rows() {
    "$PY" -c 'import sys, pyarrow.parquet as pq; print(sum(pq.ParquetFile(f).metadata.num_rows for f in sys.argv[1:]))' "$@"
}

# record TOOL GOT NOTE: one result line, from the last measurement.
record() {
    local note="$3; kinesalite CPU ${KCPU}s"
    log "$1: kinesalite spent ${KCPU}s of CPU"
    if [ "$M_RC" != 0 ]; then bench_record "$1" "n/a ($(failure_reason "$1"))" "$RECORDS" "$note"
    elif [ "$2" != "$RECORDS" ]; then bench_record "$1" "n/a (read $2 records, not $RECORDS)" "$RECORDS" "$note"
    else bench_record "$1" ok "$RECORDS" "$note"; fi
}

for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    before=$(kinesalite_cpu)
    bench_measure boto3-get-records "$PY" "$WORK/ref.py"
    KCPU=$(awk -v a="$before" -v b="$(kinesalite_cpu)" 'BEGIN{printf "%.2f", b - a}')
    record boto3-get-records "$(tail -n 1 "$WORK/log/boto3-get-records.log")" "boto3 get_records, shard after shard, to /dev/null"

    rm -rf "$WORK/out" "$WORK/state"
    before=$(kinesalite_cpu)
    bench_measure barge "$BARGE_BIN" migrate "kinesis://bench?endpoint=$BENCH_KINESIS" "file://$WORK/out" --format parquet --mode full-load --state-dir "$WORK/state"
    KCPU=$(awk -v a="$before" -v b="$(kinesalite_cpu)" 'BEGIN{printf "%.2f", b - a}')
    got=$(parquet_rows "$WORK"/out/*/*/*.parquet 2>/dev/null || echo 0)
    record barge "$got" "barge → file:// parquet (snappy), $SHARDS shards in parallel"
done

bench_report "Kinesis (kinesalite) → records read, $RECORDS records in $SHARDS shards" \
    "records: DMS-shaped JSON, ~230 bytes, partition key = id; kinesalite 3.3.3 in memory, on loopback" \
    "barge respects the read limits of a real shard (5 calls/s, 2 MB/s); kinesalite enforces neither, and boto3 here does not pace itself"
