#!/usr/bin/env bash
# Benchmark: MQTT → PostgreSQL, messages/s, against mosquitto_sub to /dev/null in the same run.
#
#   bash bench/records-mqtt.sh                 (from the repo root, as root; about a minute)
#   MESSAGES=20000 bash bench/records-mqtt.sh  a quicker run
#
# Knobs: MESSAGES (default 100000), PAYLOAD (bytes per message, default 100), INFLIGHT (the
# broker's max_inflight_messages, default 20 as mosquitto ships), BARGE (a barge binary instead of
# `cargo build --release`), BENCH_KEEP=1.
#
# A private mosquitto (Debian's package, loopback, a random port) and a private PostgreSQL 15.
# Two persistent sessions (clean session off, QoS 1) are made first, one for each reader; then
# MESSAGES messages are published at QoS 1 while neither reads, so the broker queues the same
# backlog for both. Then, one after the other, timed from start until the backlog is read:
#   mosquitto_sub  mosquitto_sub -c -q 1 -C MESSAGES > /dev/null: receive and acknowledge each
#                  message at once (a floor: no decode, no store)
#   barge          barge migrate mqtt://… postgres://… --mode full-load: every message a row
#                  (topic, session, offset, payload), each acknowledged only once PostgreSQL
#                  committed it; timed until the table holds MESSAGES rows (polled every 50 ms),
#                  which leaves out the 2 s of quiet after which a bounded run ends
# Both rates are messages per second; the ratio is barge ÷ mosquitto_sub. The table must hold
# MESSAGES distinct payloads at the end.
# Results: printed, and appended to bench/results/records-mqtt.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-100000}
PAYLOAD=${PAYLOAD:-100}
INFLIGHT=${INFLIGHT:-20}

bench_init records-mqtt
bench_need /usr/sbin/mosquitto mosquitto
bench_need mosquitto_pub mosquitto-clients
bench_barge
[ -n "$BARGE_BIN" ] || die "barge is not available: $BARGE_NA"
pg_start
createdb tgt

MQ_PORT=$(pick_port)
mkdir -p "$WORK/mq"
cat > "$WORK/mq/mosquitto.conf" <<EOF
user root
allow_anonymous true
persistence false
max_queued_messages $((MESSAGES + 1000))
max_inflight_messages $INFLIGHT
log_dest file $WORK/log/mosquitto.log
listener $MQ_PORT 127.0.0.1
EOF
setsid /usr/sbin/mosquitto -c "$WORK/mq/mosquitto.conf" >/dev/null 2>&1 &
MQ_PID=$!
stop_mq() { kill "$MQ_PID" 2>/dev/null || true; }
trap 'rc=$?; stop_mq; (exit $rc); bench_cleanup' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MQ_PORT") 2>/dev/null && break; sleep 0.1; done
assert_loopback mosquitto "$MQ_PID"
log "mosquitto $(/usr/sbin/mosquitto -h 2>/dev/null | head -n 1 | awk '{print $3}') on 127.0.0.1:$MQ_PORT, max_inflight_messages $INFLIGHT"

SRC="mqtt://127.0.0.1:$MQ_PORT/bench/#"
DST=$(pg_url tgt)
STATE=$WORK/state

# The sessions: each reader subscribes once, then goes away.
mosquitto_sub -h 127.0.0.1 -p "$MQ_PORT" -c -i bench-sub -q 1 -t 'bench/#' -W 1 >/dev/null 2>&1 || true
"$BARGE_BIN" migrate "$SRC" "$DST" --mode full-load --state-dir "$STATE" >"$WORK/log/barge-session.log" 2>&1 ||
    { tail "$WORK/log/barge-session.log" >&2; die "barge could not make its session"; }

log "publishing $MESSAGES messages of $PAYLOAD bytes at QoS 1"
python3 - "$MESSAGES" "$PAYLOAD" > "$WORK/messages.txt" <<'PY'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    head = '{"device": "m-%d", "seq": %d, "reading": ' % (i % 500, i)
    print(head + "7" * max(1, size - len(head) - 1) + "}")
PY
# In pieces: one mosquitto_pub -l of 100k lines is cut off by the broker ("out of memory").
split -l 20000 "$WORK/messages.txt" "$WORK/piece."
for f in "$WORK"/piece.*; do
    mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" -q 1 -t bench/meter -l < "$f" || die "mosquitto_pub failed"
done
grep -q "dropped" "$WORK/log/mosquitto.log" && die "the broker dropped messages (see $WORK/log/mosquitto.log)"

now() { date +%s.%N; }
load() { cut -d' ' -f1 /proc/loadavg; }
LOAD_BEFORE=$(load)

log "mosquitto_sub: reading the backlog"
t0=$(now)
timeout 600 mosquitto_sub -h 127.0.0.1 -p "$MQ_PORT" -c -i bench-sub -q 1 -t 'bench/#' -C "$MESSAGES" >/dev/null
t1=$(now)
SUB_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')

log "barge: reading the backlog into PostgreSQL"
t0=$(now)
"$BARGE_BIN" migrate "$SRC" "$DST" --mode full-load --state-dir "$STATE" >"$WORK/log/barge.log" 2>&1 &
BP=$!
while :; do
    n=$(pgq tgt "SELECT count(*) FROM bench" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge "$MESSAGES" ] && break
    kill -0 "$BP" 2>/dev/null || { tail "$WORK/log/barge.log" >&2; die "barge ended before the backlog was read"; }
    sleep 0.05
done
t1=$(now)
wait "$BP" || { tail "$WORK/log/barge.log" >&2; die "barge failed"; }
BARGE_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
LOAD_AFTER=$(load)

DISTINCT=$(pgq tgt "SELECT count(DISTINCT data) FROM bench")
ROWS=$(pgq tgt "SELECT count(*) FROM bench")
[ "$DISTINCT" = "$MESSAGES" ] && [ "$ROWS" = "$MESSAGES" ] || die "the table holds $ROWS rows, $DISTINCT distinct; want $MESSAGES"

SUB_RATE=$(awk -v n="$MESSAGES" -v s="$SUB_S" 'BEGIN{printf "%.0f", n/s}')
BARGE_RATE=$(awk -v n="$MESSAGES" -v s="$BARGE_S" 'BEGIN{printf "%.0f", n/s}')
RATIO=$(awk -v a="$BARGE_RATE" -v b="$SUB_RATE" 'BEGIN{printf "%.2f", a/b}')
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
ROW="| $(date -u '+%Y-%m-%d %H:%M') | $MESSAGES × $PAYLOAD B, inflight $INFLIGHT | $BARGE_RATE/s ($BARGE_S s) | $SUB_RATE/s ($SUB_S s) | $RATIO | $LOAD_BEFORE–$LOAD_AFTER | $COMMIT |"
{
    echo
    echo "| date (UTC) | messages | barge → PostgreSQL | mosquitto_sub → /dev/null | ratio | load (1 min) | commit |"
    echo "|---|---|---:|---:|---:|---:|---|"
    echo "$ROW"
} | tee -a "$RESULTS_MD"
