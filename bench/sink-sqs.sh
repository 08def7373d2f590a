#!/usr/bin/env bash
# Benchmark: PostgreSQL → SQS (moto), messages/s, against boto3 send_message_batch in a loop on
# the same moto server, in the same run.
#
#   barge                    barge migrate postgres://… sqs://bench-barge (a standard queue):
#                            the DMS envelope, three message attributes, SendMessageBatch calls
#                            of 10, up to 8 calls in flight
#   boto3-send-message-batch one boto3 client, send_message_batch of 10 in a loop, the same
#                            bodies and attributes (built in memory before the loop)
#
#   bash bench/sink-sqs.sh                   (from the repo root, as root)
#   MESSAGES=200 bash bench/sink-sqs.sh      smoke run
#
# Knobs: MESSAGES (default 1000; moto's time grows with its square: 5000 take ~6 min a tool),
# ROUNDS (default 1), BARGE (a barge binary instead of `cargo build --release`), BENCH_KEEP=1,
# BENCH_TIMEOUT (see bench/lib.sh).
#
# Each run writes into a fresh, empty queue: moto's cost per message grows with the number of
# messages its queue holds (it counts them on every send), so both tools face the same server
# work. Afterwards the queue's message count is checked. moto's CPU time during each run is in
# the notes: it serves both, and on two cores it is most of the work.
# Results: printed, and appended to bench/results/sink-sqs.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-1000}
ROUNDS=${ROUNDS:-1}

bench_init sink-sqs
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
bench_tools
pg_start

MPORT=$(pick_port)
setsid "$TOOLS_DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$MPORT" >"$WORK/log/moto.log" 2>&1 </dev/null &
MOTO_PID=$!
EXTRA_PIDS+=("$MOTO_PID")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MPORT") 2>/dev/null && break; sleep 0.1; done
assert_loopback moto "$MOTO_PID"
export BENCH_SQS=http://127.0.0.1:$MPORT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

# CPU seconds moto has used so far.
moto_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$MOTO_PID/stat"
}

log "$MESSAGES rows in PostgreSQL"
pg_recreate_db bench
pgq bench "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2) NOT NULL,
               created_at timestamptz NOT NULL, note text NOT NULL);
           INSERT INTO orders SELECT g, g % 5000, (g::bigint * 7919 % 1000000) / 100.0,
               timestamptz '2024-01-01 00:00:00+00', lpad(to_hex(g), 32, '0')
           FROM generate_series(1, $MESSAGES) g" >/dev/null

# The reference: the messages barge sends for these rows, built in memory, then sent.
cat > "$WORK/ref.py" <<'EOF'
import boto3, json, os, sys
n, queue = int(sys.argv[1]), sys.argv[2]
sqs = boto3.client("sqs", endpoint_url=os.environ["BENCH_SQS"])
url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
messages = []
for i in range(1, n + 1):
    body = {"data": {"id": i, "customer_id": i % 5000, "amount": f"{i * 7919 % 1000000 / 100:.2f}",
                     "created_at": "2024-01-01T00:00:00+00:00", "note": f"{i:032x}"},
            "metadata": {"timestamp": "2024-01-01T00:00:00.000000Z", "record-type": "data", "operation": "load",
                         "partition-key-type": "primary-key", "schema-name": "public", "table-name": "orders",
                         "transaction-id": None, "record-id": f"{i:032x}"}}
    attrs = {"barge-table": {"DataType": "String", "StringValue": "public.orders"},
             "barge-operation": {"DataType": "String", "StringValue": "load"},
             "barge-record-id": {"DataType": "String", "StringValue": f"{i:032x}"}}
    messages.append((json.dumps(body, separators=(",", ":")), attrs))
for i in range(0, n, 10):
    entries = [{"Id": str(j), "MessageBody": b, "MessageAttributes": a} for j, (b, a) in enumerate(messages[i:i + 10])]
    r = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert not r.get("Failed"), r["Failed"]
print(n)
EOF

queue_cmd() { # create|count QUEUE
    "$PY" - "$1" "$2" <<'EOF'
import boto3, os, sys
s = boto3.client("sqs", endpoint_url=os.environ["BENCH_SQS"])
if sys.argv[1] == "create":
    s.create_queue(QueueName=sys.argv[2])
else:
    a = s.get_queue_attributes(QueueUrl=s.get_queue_url(QueueName=sys.argv[2])["QueueUrl"], AttributeNames=["All"])["Attributes"]
    print(int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]))
EOF
}

# record TOOL QUEUE NOTE: one result line, from the last measurement and the queue's count.
record() {
    local got note="$3; moto CPU ${MCPU}s"
    got=$(queue_cmd count "$2")
    log "$1: moto spent ${MCPU}s of CPU; the queue holds $got messages"
    if [ "$M_RC" != 0 ]; then bench_record "$1" "n/a ($(failure_reason "$1"))" "$MESSAGES" "$note"
    elif [ "$got" != "$MESSAGES" ]; then bench_record "$1" "n/a (the queue holds $got messages, not $MESSAGES)" "$MESSAGES" "$note"
    else bench_record "$1" ok "$MESSAGES" "$note"; fi
}

for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    queue_cmd create "bench-boto3-$r"
    before=$(moto_cpu)
    bench_measure boto3-send-message-batch "$PY" "$WORK/ref.py" "$MESSAGES" "bench-boto3-$r"
    MCPU=$(awk -v a="$before" -v b="$(moto_cpu)" 'BEGIN{printf "%.2f", b - a}')
    record boto3-send-message-batch "bench-boto3-$r" "boto3 send_message_batch of 10 in a loop, one client"

    queue_cmd create "bench-barge-$r"
    rm -rf "$WORK/state"
    before=$(moto_cpu)
    bench_measure barge "$BARGE_BIN" migrate "$(pg_url bench)" "sqs://bench-barge-$r?endpoint=$BENCH_SQS" --state-dir "$WORK/state"
    MCPU=$(awk -v a="$before" -v b="$(moto_cpu)" 'BEGIN{printf "%.2f", b - a}')
    record barge "bench-barge-$r" "barge migrate → sqs:// (standard queue), 8 calls in flight"
done

bench_report "PostgreSQL → SQS (moto), $MESSAGES messages" \
    "messages: DMS-shaped JSON, ~330 bytes, with three message attributes; moto $("$PY" -c 'import moto; print(moto.__version__)') in memory, on loopback, a fresh standard queue per run" \
    "rows/s is messages/s here; barge's time includes reading the rows from PostgreSQL, boto3's building the messages in memory"
