#!/usr/bin/env bash
# End-to-end lag of a record source: lines appended to a log file at RATE
# records/s (default 1000) for DURATION seconds, followed by
# `barge migrate tail://… postgres://… --mode cdc` into a private PostgreSQL.
# A poller reads max(seq) on the target every 10 ms; a record's lag is the
# first poll that saw it minus the moment its line was written. Prints p50,
# p99 and max, and the rate kept. No reference tool: nothing else lands a
# tailed file in PostgreSQL; the poll interval (10 ms) bounds the precision.
#
#   BARGE=target/release/barge bash bench/records-lag.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE=${RATE:-1000}
DURATION=${DURATION:-30}

bench_init records-lag
bench_barge
[ -n "${BARGE_NA:-}" ] && die "$BARGE_NA"
pg_start
createdb lag
mkdir -p "$WORK/logs"
cat > "$WORK/events.sql" <<'SQL'
CREATE TABLE events (seq bigint PRIMARY KEY, written_us bigint NOT NULL);
SQL
: > "$WORK/logs/events.log"
"$BARGE_BIN" migrate "tail://$WORK/logs/*.log" "$(pg_url lag)" --mode cdc --schema "$WORK/events.sql" \
    --state-dir "$WORK/state" >"$WORK/log/barge.log" 2>&1 &
BARGE_PID=$!
for _ in $(seq 100); do
    psql -qtAX -d lag -c "SELECT 1 FROM events LIMIT 1" >/dev/null 2>&1 && break
    [ -f "$WORK/state/cdc-status.json" ] && break
    sleep 0.1
done

python3 - "$WORK/logs/events.log" "$RATE" "$DURATION" "$PGHOST" "$PGPORT" <<'PY' | tee "$WORK/lag.txt"
import json, subprocess, sys, threading, time
path, rate, duration, host, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
total = rate * duration
written = [0.0] * total
seen = [None] * total
done = threading.Event()

def writer():
    start = time.monotonic()
    with open(path, "a", buffering=1) as f:
        for i in range(total):
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            written[i] = time.monotonic()
            f.write(json.dumps({"seq": i, "written_us": int(time.time() * 1e6)}) + "\n")
    done.set()

def poller():
    # One long-lived psql: a query per line on stdin, an answer per line on stdout.
    p = subprocess.Popen(["psql", "-qtAX", "-h", host, "-p", port, "-d", "lag"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    upto = 0
    deadline = None
    while upto < total:
        p.stdin.write("SELECT coalesce(max(seq), -1) FROM events;\n")
        p.stdin.flush()
        m = int(p.stdout.readline().strip() or -1)
        now = time.monotonic()
        while upto <= m and upto < total:
            seen[upto] = now
            upto += 1
        if done.is_set():
            deadline = deadline or now + 30
            if now > deadline:
                break
        time.sleep(0.01)
    p.stdin.close()

w = threading.Thread(target=writer); w.start()
poller(); w.join()
lags = sorted((s - w_) * 1000 for s, w_ in zip(seen, written) if s is not None)
missing = sum(1 for s in seen if s is None)
def pct(q): return lags[min(len(lags) - 1, int(q * len(lags)))]
print(f"records {total} at {rate}/s for {duration} s; landed {len(lags)}, missing {missing}")
print(f"lag ms: p50 {pct(0.50):.0f}  p99 {pct(0.99):.0f}  max {lags[-1]:.0f}")
PY
kill -INT "$BARGE_PID" 2>/dev/null || true
wait "$BARGE_PID" 2>/dev/null || true
rows=$(psql -qtAX -d lag -c "SELECT count(*) FROM events")
log "rows on the target: $rows (expected $((RATE * DURATION)))"
{ echo "## records-lag $(date -u +%F)"; echo; echo '```'; cat "$WORK/lag.txt"; echo "rows on the target: $rows"; echo '```'; echo; } >> "$ROOT/bench/results/records-lag.md"
