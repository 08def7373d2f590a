#!/usr/bin/env bash
# Benchmark: change data capture PostgreSQL → PostgreSQL, against pg_recvlogical in the same run.
#
#   bash bench/cdc.sh                     (from the repo root, as root; ~3 minutes)
#   RATE=2000 DURATION=10 BACKLOG=50000 bash bench/cdc.sh     a quicker run
#
# Knobs: SCALE (pgbench scale: 100k accounts each, default 1), RATE (changes/s driven at the
# source in the lag phase, default 5000), DURATION (seconds of the lag phase, default 30),
# BACKLOG (single-row update transactions for the catch-up phase, default 300000), BARGE
# (a barge binary instead of `cargo build --release`), BENCH_KEEP=1.
#
# One private PostgreSQL 15 server (wal_level = logical) holds the source and the target database.
#   1. Lag at a fixed rate. `barge migrate --mode full-load-and-cdc` copies pgbench_accounts and a
#      probe table, then replicates. pgbench drives RATE single-row UPDATEs per second (4 clients)
#      and, beside them, 50 probe INSERTs per second whose row carries clock_timestamp() at the
#      source. On the target the probe table has one extra column, `seen`, defaulting to
#      clock_timestamp(): the moment barge's apply inserted the row. seen - sent is the
#      end-to-end lag (commit at the source → written at the target; visible at the target's
#      commit, which follows at once). p50, p99 and max over all probes.
#   2. Maximum sustained rate. With barge stopped, BACKLOG single-row UPDATE transactions are
#      written (and a second slot, on the same publication, is created before them). Then, timed:
#        barge          barge migrate --mode cdc --stop-at <end LSN>: decode, apply to the target
#                       (batched into large transactions), save the position
#        pg_recvlogical pg_recvlogical --start --endpos <end LSN> -f /dev/null with pgoutput:
#                       the server decodes and sends the same changes; the client only writes
#                       them to /dev/null (a floor for "reading the stream", no apply)
#      Both rates are changes per second; barge's includes applying them.
#   The target's accounts must equal the source's (sum and count) at the end.
# Results: printed, and appended to bench/results/cdc.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=${SCALE:-1}
RATE=${RATE:-5000}
DURATION=${DURATION:-30}
BACKLOG=${BACKLOG:-300000}
ACCOUNTS=$((SCALE * 100000))
export PG_WAL_LEVEL=logical PG_WAL_SENDERS=10 PG_EXTRA_CONF="max_replication_slots = 10
synchronous_commit = on"

bench_init cdc
bench_barge
[ -n "$BARGE_BIN" ] || die "barge is not available: $BARGE_NA"
pg_start

createdb src
createdb tgt
pgbench_accounts src "$SCALE"
pgq src "CREATE TABLE probe (id bigserial PRIMARY KEY, sent timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null
pgq src "VACUUM ANALYZE" >/dev/null

cat > "$WORK/update.sql" <<EOF
\set aid random(1, $ACCOUNTS)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
EOF
echo "INSERT INTO probe DEFAULT VALUES;" > "$WORK/probe.sql"

STATE=$WORK/state
SRC=$(pg_url src)
TGT=$(pg_url tgt)

# ---- 1. lag at a fixed rate
bench_start_cdc "$SRC" "$TGT" "$STATE"
pgq tgt "ALTER TABLE probe ADD COLUMN seen timestamptz DEFAULT clock_timestamp()" >/dev/null
SLOT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['capture']['slot'])" "$STATE/state.json")
log "driving $RATE updates/s for ${DURATION}s (slot $SLOT)"
pgbench -n -R "$RATE" -T "$DURATION" -c 4 -j 2 -f "$WORK/update.sql" src >"$WORK/log/pgbench-rate.log" 2>&1 &
DRIVER=$!
pgbench -n -R 50 -T "$DURATION" -c 1 -f "$WORK/probe.sql" src >"$WORK/log/pgbench-probe.log" 2>&1
wait $DRIVER
DRIVEN=$(grep -oE 'tps = [0-9.]+' "$WORK/log/pgbench-rate.log" | head -n 1 | awk '{print $3}')
PROBES=$(pgq src "SELECT count(*) FROM probe")
for _ in $(seq 1 600); do
    [ "$(pgq tgt 'SELECT count(*) FROM probe')" = "$PROBES" ] && break
    sleep 0.1
done
read -r P50 P99 PMAX < <(pgq tgt "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1) FROM (SELECT extract(epoch FROM seen - sent) * 1000 AS ms FROM probe WHERE seen IS NOT NULL) x" | tr '|' ' ')
log "lag at $DRIVEN changes/s: p50 ${P50} ms, p99 ${P99} ms, max ${PMAX} ms over $PROBES probes"
kill -INT $BARGE_PID
wait $BARGE_PID || true

# ---- 2. maximum sustained rate: a backlog, read by barge and by pg_recvlogical
"$PG_BIN/pg_recvlogical" -d src --slot ref --create-slot --plugin pgoutput >"$WORK/log/recv-create.log" 2>&1 || die "pg_recvlogical --create-slot failed"
log "writing a backlog of $BACKLOG update transactions"
pgbench -n -t $((BACKLOG / 4)) -c 4 -j 2 -f "$WORK/update.sql" src >"$WORK/log/pgbench-backlog.log" 2>&1
END=$(pgq src "SELECT pg_current_wal_insert_lsn()")
CHANGES=$((BACKLOG / 4 * 4))

bench_measure barge "$BARGE_BIN" -v migrate "$SRC" "$TGT" --mode cdc --stop-at "pg:$END" --heartbeat 1 --state-dir "$STATE"
BARGE_WALL=$M_WALL BARGE_CPU=$M_CPU BARGE_SRV=$M_SRV_CPU BARGE_RSS=$M_RSS_KB BARGE_RC=$M_RC
bench_measure pg_recvlogical "$PG_BIN/pg_recvlogical" -d src --slot ref --start --endpos "$END" \
    -o proto_version=1 -o "publication_names=$SLOT" -f /dev/null --no-loop
RECV_WALL=$M_WALL RECV_CPU=$M_CPU RECV_SRV=$M_SRV_CPU RECV_RSS=$M_RSS_KB RECV_RC=$M_RC
"$PG_BIN/pg_recvlogical" -d src --slot ref --drop-slot >/dev/null 2>&1 || true

SRC_SUM=$(pgq src "SELECT count(*), sum(abalance) FROM pgbench_accounts")
TGT_SUM=$(pgq tgt "SELECT count(*), sum(abalance) FROM pgbench_accounts")
EQUAL=yes
[ "$SRC_SUM" = "$TGT_SUM" ] || EQUAL="NO (source $SRC_SUM, target $TGT_SUM)"
log "target equals source: $EQUAL"
"$BARGE_BIN" cleanup "$SRC" --state-dir "$STATE" >/dev/null 2>&1 || true

python3 - "$BARGE_COMMIT" <<EOF |
import datetime, os, sys
commit = sys.argv[1]
def rate(n, wall):
    return f"{n / float(wall):,.0f}" if wall else "n/a"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
load = " ".join(open("/proc/loadavg").read().split()[:3])
bw, rw = "$BARGE_WALL", "$RECV_WALL"
ratio = f"{float(rw) / float(bw):.2f}" if bw and rw and "$BARGE_RC" == "0" and "$RECV_RC" == "0" else "n/a"
lines = [
    f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — CDC PostgreSQL → PostgreSQL",
    "",
    f"Machine: {os.cpu_count()} cores ({cpu}), load average {load}. barge commit {commit}. Source and target on one private PostgreSQL 15.",
    "",
    f"- Lag at a driven rate of $DRIVEN changes/s (asked $RATE/s, ${DURATION}s, $PROBES probes): p50 **$P50 ms**, p99 **$P99 ms**, max $PMAX ms.",
    f"- Catch-up of $CHANGES single-row update transactions (${SCALE}00k accounts):",
    "",
    "| tool | wall s | changes/s | client CPU s | server CPU s | peak RSS MiB | what it does |",
    "|---|---:|---:|---:|---:|---:|---|",
    f"| barge | {bw} | {rate($CHANGES, bw)} | $BARGE_CPU | $BARGE_SRV | {int('${BARGE_RSS:-0}' or 0) // 1024} | decode, apply to the target, save the position |",
    f"| pg_recvlogical | {rw} | {rate($CHANGES, rw)} | $RECV_CPU | $RECV_SRV | {int('${RECV_RSS:-0}' or 0) // 1024} | receive to /dev/null |",
    "",
    f"barge's rate ÷ pg_recvlogical's: **{ratio}**. Target equals source afterwards: $EQUAL.",
    "",
]
print("\n".join(lines))
EOF
bench_append "# bench/cdc.sh results

Appended by each run; newest last."
