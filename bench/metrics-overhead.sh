#!/usr/bin/env bash
# Benchmark: what --metrics-addr costs a CDC catch-up (PostgreSQL → PostgreSQL), on and off in one run.
#
#   bash bench/metrics-overhead.sh                       (from the repo root, as root; ~3 minutes)
#   ROUNDS=2 BACKLOG=50000 bash bench/metrics-overhead.sh     a quicker run
#
# Knobs: SCALE (pgbench scale, default 1), BACKLOG (single-row update transactions per round,
# default 150000), ROUNDS (rounds of off/on pairs, default 3), BARGE (a barge binary instead of
# `cargo build --release`), BENCH_KEEP=1.
#
# One private PostgreSQL 15 server (wal_level = logical) holds source and target. barge copies
# pgbench_accounts and starts replicating once; then each round writes BACKLOG single-row UPDATE
# transactions with barge stopped, and times `barge migrate --mode cdc --stop-at <end LSN>`
# catching up on them: once without --metrics-addr and once with it while a scraper reads
# /metrics every second (as Prometheus would). The order alternates between rounds, so a
# machine that warms up or slows down does not favour one side. The figure is the ratio of the
# median catch-up rates (on ÷ off), and of barge's own CPU time per change (steadier on a shared
# machine, where the wall time of a few-second catch-up swings by tens of percent); the aim is a
# difference under 2%.
# The target's accounts must equal the source's at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=${SCALE:-1}
BACKLOG=${BACKLOG:-150000}
ROUNDS=${ROUNDS:-3}
ACCOUNTS=$((SCALE * 100000))
export PG_WAL_LEVEL=logical PG_WAL_SENDERS=10 PG_EXTRA_CONF="max_replication_slots = 10
synchronous_commit = on"

bench_init metrics-overhead
bench_barge
[ -n "$BARGE_BIN" ] || die "barge is not available: $BARGE_NA"
pg_start

createdb src
createdb tgt
pgbench_accounts src "$SCALE"
pgq src "VACUUM ANALYZE" >/dev/null
cat > "$WORK/update.sql" <<SQL
\set aid random(1, $ACCOUNTS)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
SQL

STATE=$WORK/state
SRC=$(pg_url src)
TGT=$(pg_url tgt)
bench_start_cdc "$SRC" "$TGT" "$STATE"
kill -INT $BARGE_PID
wait $BARGE_PID || true
CHANGES=$((BACKLOG / 4 * 4))
PORT=$(pick_port)

# catch_up MODE ROUND: write the backlog, then time barge catching up on it.
catch_up() {
    local mode=$1 round=$2 end scraper='' extra=()
    pgbench -n -t $((BACKLOG / 4)) -c 4 -j 2 -f "$WORK/update.sql" src >"$WORK/log/pgbench-$round-$mode.log" 2>&1
    end=$(pgq src "SELECT pg_current_wal_insert_lsn()")
    # Each round's updates leave dead rows on the target; without a vacuum
    # every round applies into a larger table than the one before, and the
    # rate drifts down through the run.
    pgq tgt "VACUUM pgbench_accounts" >/dev/null
    pgq postgres "CHECKPOINT" >/dev/null
    if [ "$mode" = on ]; then
        extra=(--metrics-addr "127.0.0.1:$PORT")
        # Prometheus' part: one scrape a second, for as long as barge runs,
        # from one long-lived process (a curl started every second costs this
        # 2-core machine more CPU than the scrape itself).
        python3 -c '
import sys, time, urllib.request
while True:
    time.sleep(1)
    try:
        urllib.request.urlopen(sys.argv[1], timeout=5).read()
    except Exception:
        pass
' "http://127.0.0.1:$PORT/metrics" &
        scraper=$!
    fi
    bench_measure "barge-$round-$mode" "$BARGE_BIN" migrate "$SRC" "$TGT" --mode cdc --stop-at "pg:$end" --heartbeat 1 --state-dir "$STATE" "${extra[@]}"
    [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true; }
    [ "$M_RC" = 0 ] || die "barge failed (log: $WORK/log/barge-$round-$mode.log)"
    if [ "$mode" = on ]; then
        grep -q "metrics at http://127.0.0.1:$PORT/metrics" "$WORK/log/barge-$round-$mode.log" || die "barge did not serve metrics"
    fi
    printf '%s %s %s %s\n' "$mode" "$round" "$M_WALL" "$M_CPU" >> "$WORK/rounds.txt"
    log "round $round, metrics $mode: $CHANGES changes in ${M_WALL}s"
}

: > "$WORK/rounds.txt"
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then catch_up off "$round"; catch_up on "$round"; else catch_up on "$round"; catch_up off "$round"; fi
done

SRC_SUM=$(pgq src "SELECT count(*), sum(abalance) FROM pgbench_accounts")
TGT_SUM=$(pgq tgt "SELECT count(*), sum(abalance) FROM pgbench_accounts")
EQUAL=yes
[ "$SRC_SUM" = "$TGT_SUM" ] || EQUAL="NO (source $SRC_SUM, target $TGT_SUM)"
log "target equals source: $EQUAL"
"$BARGE_BIN" cleanup "$SRC" --state-dir "$STATE" >/dev/null 2>&1 || true

python3 - "$BARGE_COMMIT" "$WORK/rounds.txt" <<PY |
import datetime, os, statistics, sys
commit, path = sys.argv[1], sys.argv[2]
walls = {"off": [], "on": []}
cpus = {"off": [], "on": []}
for line in open(path):
    mode, _, wall, cpu_s = line.split()
    walls[mode].append(float(wall))
    cpus[mode].append(float(cpu_s))
rate = {m: statistics.median($CHANGES / w for w in ws) for m, ws in walls.items()}
ratio = rate["on"] / rate["off"]
# The two runs of a round are neighbours in time: their ratio is free of
# whatever drifts through the run.
paired = statistics.median(off / on for on, off in zip(walls["on"], walls["off"]))
# barge's own CPU per 100k changes: steadier than wall time on a shared machine.
cpu100k = {m: statistics.median(c * 100000 / $CHANGES for c in cs) for m, cs in cpus.items()}
cpu_ratio = cpu100k["on"] / cpu100k["off"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
load = " ".join(open("/proc/loadavg").read().split()[:3])
each = lambda m: ", ".join(f"{$CHANGES / w:,.0f}" for w in walls[m])
print("\n".join([
    f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — --metrics-addr overhead, CDC catch-up PostgreSQL → PostgreSQL",
    "",
    f"Machine: {os.cpu_count()} cores ({cpu}), load average {load}. barge commit {commit}. $ROUNDS rounds of $CHANGES single-row update transactions, alternating.",
    "",
    "| metrics | changes/s, each round | median changes/s | median barge CPU s per 100k changes |",
    "|---|---|---:|---:|",
    f"| off | {each('off')} | {rate['off']:,.0f} | {cpu100k['off']:.3f} |",
    f"| on, scraped every second | {each('on')} | {rate['on']:,.0f} | {cpu100k['on']:.3f} |",
    "",
    f"Catch-up rate on ÷ off: **{ratio:.3f}** ({(ratio - 1) * 100:+.1f}%) of the medians, **{paired:.3f}** ({(paired - 1) * 100:+.1f}%) as the median of each round's pair; barge CPU per change on ÷ off: **{cpu_ratio:.3f}** ({(cpu_ratio - 1) * 100:+.1f}%). Aim: within 2%. Target equals source afterwards: $EQUAL.",
    "",
]))
PY
bench_append "# bench/metrics-overhead.sh results

Appended by each run; newest last."
