#!/usr/bin/env bash
# Benchmark: change data capture MariaDB → PostgreSQL, against mariadb-binlog in the same run.
#
#   bash bench/cdc-mysql.sh               (from the repo root, as root; ~3 minutes)
#   RATE=2000 DURATION=10 BACKLOG=50000 bash bench/cdc-mysql.sh     a quicker run
#
# Knobs: ACCOUNTS (rows of the updated table, default 100000), RATE (single-row transactions per
# second driven at the source in the lag phase, default 5000), DURATION (seconds of the lag phase,
# default 30), TPCB_RATE (transactions per second of pgbench's TPC-B shape driven in a second lag
# phase, 0: none; default 500), BACKLOG (single-row update transactions for the catch-up phase,
# default 300000),
# BARGE (a barge binary instead of `cargo build --release`), BARGE_BEFORE (an older barge binary:
# its catch-up is timed too, on a backlog of its own), PROFILE (a file: barge's catch-up runs under
# `perf record --call-graph dwarf`, which slows it; read it with `perf report -i FILE`),
# BENCH_KEEP=1.
#
# A private MariaDB (binary log on: ROW format, full row images and metadata, server_id 1) is the
# source, a private PostgreSQL 15 the target. The load driver is sysbench (Debian's package) with
# a small Lua script: rate-limited, single-row autocommit transactions.
#   1. Lag at a fixed rate. `barge migrate mysql://… postgres://… --mode full-load-and-cdc`
#      copies `accounts` and a `probe` table, then replicates. sysbench drives RATE single-row
#      UPDATEs per second (4 threads) and, beside them, 50 probe INSERTs per second whose row
#      carries its send time, microseconds since the epoch as a BIGINT (UTC on both sides, no
#      time-zone conversion). On the target the probe table has one extra column, `seen`,
#      defaulting to the clock at the moment barge's apply inserted the row, in the same unit.
#      seen - sent is the end-to-end lag; p50, p99 and max over all probes. Then the same with
#      TPCB_RATE transactions/s of pgbench's TPC-B shape (2 threads): UPDATEs of accounts,
#      tellers and branches and an INSERT into `history`, which has no key, in one transaction.
#   2. Catch-up. With barge stopped, the binary log is rotated, BACKLOG single-row UPDATE
#      transactions are written, and the log is rotated again, so the backlog is one whole file.
#      Then, timed:
#        barge          barge migrate --mode cdc --stop-at mysql:<file>:<end>: read the binlog,
#                       decode, apply to the target (batched into large transactions), save the
#                       position with the data
#        mariadb-binlog mariadb-binlog --read-from-remote-server --raw on that file: the server
#                       sends the same events, the client only writes them to a file (receive
#                       only; a floor for "reading the stream", no decode, no apply)
#      Both rates are changes per second.
#   The target must equal the source at the end: count and sum of accounts, sum of tellers,
#   count and sum of history.
# Results: printed, and appended to bench/results/cdc-mysql.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ACCOUNTS=${ACCOUNTS:-100000}
RATE=${RATE:-5000}
DURATION=${DURATION:-30}
BACKLOG=${BACKLOG:-300000}
TPCB_RATE=${TPCB_RATE:-500}

bench_init cdc-mysql
bench_need sysbench sysbench
bench_barge
[ -n "$BARGE_BIN" ] || die "barge is not available: $BARGE_NA"
MY_EXTRA_ARGS="--log-bin=$WORK/my/binlog --server-id=1 --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL --max-binlog-size=1G --sync-binlog=0"
my_start
pg_start
export MYSQL_PWD=$MYPW BARGE_SOURCE_PASSWORD=$MYPW

"${MY[@]}" <<EOF
CREATE DATABASE src;
USE src;
CREATE TABLE accounts (aid INT PRIMARY KEY, bid INT NOT NULL, abalance INT NOT NULL, filler CHAR(84) NOT NULL);
INSERT INTO accounts SELECT seq, 1 + seq DIV 100000, 0, '' FROM seq_1_to_$ACCOUNTS;
CREATE TABLE probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, sent BIGINT NOT NULL);
CREATE TABLE branches (bid INT PRIMARY KEY, bbalance INT NOT NULL);
CREATE TABLE tellers (tid INT PRIMARY KEY, bid INT NOT NULL, tbalance INT NOT NULL);
CREATE TABLE history (tid INT, bid INT, aid INT, delta INT, mtime DATETIME);
INSERT INTO branches SELECT seq, 0 FROM seq_1_to_10;
INSERT INTO tellers SELECT seq, 1 + seq MOD 10, 0 FROM seq_1_to_100;
EOF
createdb tgt

# sysbench: mode=update drives single-row UPDATEs of random accounts; mode=tpcb transactions of
# pgbench's TPC-B shape (three keyed UPDATEs and an INSERT into `history`, which has no key);
# mode=probe inserts a probe row stamped with the server's clock (µs since the epoch, in UTC).
cat > "$WORK/drive.lua" <<'EOF'
sysbench.cmdline.options = {
    mode = {"update, tpcb or probe", "update"},
    accounts = {"rows of accounts", 100000},
}
function thread_init()
    drv = sysbench.sql.driver()
    con = drv:connect()
    con:query("SET time_zone = '+00:00'")
end
function thread_done()
    con:disconnect()
end
function event()
    if sysbench.opt.mode == "probe" then
        con:query("INSERT INTO probe (sent) VALUES (CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED))")
    elseif sysbench.opt.mode == "tpcb" then
        local aid = sysbench.rand.uniform(1, sysbench.opt.accounts)
        local tid = sysbench.rand.uniform(1, 100)
        local bid = 1 + tid % 10
        local delta = sysbench.rand.uniform(0, 10000) - 5000
        con:query("BEGIN")
        con:query(string.format("UPDATE accounts SET abalance = abalance + %d WHERE aid = %d", delta, aid))
        con:query(string.format("UPDATE tellers SET tbalance = tbalance + %d WHERE tid = %d", delta, tid))
        con:query(string.format("UPDATE branches SET bbalance = bbalance + %d WHERE bid = %d", delta, bid))
        con:query(string.format("INSERT INTO history VALUES (%d, %d, %d, %d, NOW())", tid, bid, aid, delta))
        con:query("COMMIT")
    else
        con:query(string.format("UPDATE accounts SET abalance = abalance + 1 WHERE aid = %d",
            sysbench.rand.uniform(1, sysbench.opt.accounts)))
    end
end
EOF
drive() { # LOG ARGS...: sysbench on the source over the socket
    local name=$1
    shift
    (cd "$WORK" && sysbench drive.lua --db-driver=mysql --mysql-socket="$MYSOCK" --mysql-user=root \
        --mysql-db=src --accounts="$ACCOUNTS" --rand-type=uniform "$@" run) >"$WORK/log/$name.log" 2>&1 \
        || { tail -n 20 "$WORK/log/$name.log" >&2; die "sysbench $name failed"; }
}
tps() { grep -oE 'transactions: +[0-9]+ +\([0-9.]+ per sec' "$WORK/log/$1.log" | grep -oE '[0-9.]+ per' | cut -d' ' -f1; }
master_position() { "${MY[@]}" -N -B -e "SHOW MASTER STATUS" | awk '{print $1 ":" $2}'; }

STATE=$WORK/state
SRC="mysql://bench@127.0.0.1:$MYPORT/src"
TGT=$(pg_url tgt)

# ---- 1. lag at a fixed rate
bench_start_cdc "$SRC" "$TGT" "$STATE"
PROBE_T=$(pgq tgt "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables WHERE table_name = 'probe'")
ACCOUNTS_T=${PROBE_T%.*}.accounts
[ -n "$PROBE_T" ] || die "the target has no probe table"
pgq tgt "ALTER TABLE $PROBE_T ADD COLUMN seen bigint DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint" >/dev/null
# lag MODE RATE THREADS: drive RATE MODE transactions/s for DURATION s with 50 probes/s beside
# them, wait for the probes on the target; sets DRIVEN P50 P99 PMAX SEEN PROBES.
lag() {
    local mode=$1 rate=$2 threads=$3 from
    from=$("${MY[@]}" -N -B -e "SELECT COALESCE(MAX(id), 0) FROM src.probe")
    log "driving $rate $mode transactions/s for ${DURATION}s"
    drive "$mode" --mode="$mode" --rate="$rate" --threads="$threads" --time="$DURATION" &
    local driver=$!
    drive "probe-$mode" --mode=probe --rate=50 --threads=1 --time="$DURATION"
    wait $driver
    DRIVEN=$(tps "$mode")
    PROBES=$("${MY[@]}" -N -B -e "SELECT count(*) FROM src.probe WHERE id > $from")
    for _ in $(seq 1 1200); do
        [ "$(pgq tgt "SELECT count(*) FROM $PROBE_T WHERE id > $from")" = "$PROBES" ] && break
        sleep 0.1
    done
    read -r P50 P99 PMAX SEEN < <(pgq tgt "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1), count(*) FROM (SELECT (seen - sent) / 1000.0 AS ms FROM $PROBE_T WHERE seen IS NOT NULL AND id > $from) x" | tr '|' ' ')
    log "lag at $DRIVEN $mode transactions/s: p50 ${P50} ms, p99 ${P99} ms, max ${PMAX} ms over $SEEN of $PROBES probes"
}
lag update "$RATE" 4
read -r DRIVEN_U P50_U P99_U PMAX_U SEEN_U PROBES_U <<<"$DRIVEN $P50 $P99 $PMAX $SEEN $PROBES"
TPCB_LINE=''
if [ "$TPCB_RATE" -gt 0 ]; then
    lag tpcb "$TPCB_RATE" 2
    TPCB_LINE="- Lag at a driven rate of $DRIVEN TPC-B-shaped transactions/s (4 changes each, one an insert into a table without a key; asked $TPCB_RATE/s, ${DURATION}s, $SEEN of $PROBES probes arrived): p50 **$P50 ms**, p99 **$P99 ms**, max $PMAX ms."
fi
kill -INT $BARGE_PID
wait $BARGE_PID || true

# ---- 2. catch-up: a backlog in a binlog file of its own, read by barge and by mariadb-binlog
backlog() { # LOG: writes BACKLOG update transactions into a binlog file of their own; sets FILE END
    "${MY[@]}" -e "FLUSH BINARY LOGS"
    log "writing a backlog of $BACKLOG update transactions"
    drive "$1" --rate=0 --threads=4 --time=0 --events="$BACKLOG"
    read -r FILE END < <("${MY[@]}" -N -B -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
    "${MY[@]}" -e "FLUSH BINARY LOGS"
}

B_WALL='' B_CPU='' B_SRV='' B_RSS='' B_RC=''
if [ -x "${BARGE_BEFORE:-}" ]; then
    backlog backlog-before
    bench_measure barge-before "$BARGE_BEFORE" -v migrate "$SRC" "$TGT" --mode cdc --stop-at "mysql:$FILE:$END" --state-dir "$STATE"
    B_WALL=$M_WALL B_CPU=$M_CPU B_SRV=$M_SRV_CPU B_RSS=$M_RSS_KB B_RC=$M_RC
fi
backlog backlog
SIZE=$("${MY[@]}" -N -B -e "SHOW BINARY LOGS" | awk -v f="$FILE" '$1 == f {print $2}')
PERF=()
if [ -n "${PROFILE:-}" ]; then
    bench_need perf linux-perf
    PERF=(perf record -F 499 --call-graph dwarf,16384 -o "$PROFILE" --)
fi
bench_measure barge "${PERF[@]}" "$BARGE_BIN" -v migrate "$SRC" "$TGT" --mode cdc --stop-at "mysql:$FILE:$END" --state-dir "$STATE"
BARGE_WALL=$M_WALL BARGE_CPU=$M_CPU BARGE_SRV=$M_SRV_CPU BARGE_RSS=$M_RSS_KB BARGE_RC=$M_RC
mkdir -p "$WORK/raw"
bench_measure mariadb-binlog mariadb-binlog --no-defaults --read-from-remote-server --raw --host=127.0.0.1 \
    --port="$MYPORT" --user=bench --result-file="$WORK/raw/" "$FILE"
REF_WALL=$M_WALL REF_CPU=$M_CPU REF_SRV=$M_SRV_CPU REF_RSS=$M_RSS_KB REF_RC=$M_RC
[ "$(stat -c %s "$WORK/raw/$FILE" 2>/dev/null || echo 0)" = "$SIZE" ] || { REF_RC=${REF_RC/#0/1}; log "mariadb-binlog did not copy the whole file"; }
rm -rf "$WORK/raw"

SUMS="(SELECT count(*) FROM ACCOUNTS), (SELECT sum(abalance) FROM ACCOUNTS), (SELECT sum(tbalance) FROM TELLERS), (SELECT count(*) FROM HISTORY), (SELECT COALESCE(sum(delta), 0) FROM HISTORY)"
S=${SUMS//ACCOUNTS/src.accounts}; S=${S//TELLERS/src.tellers}; S=${S//HISTORY/src.history}
SRC_SUM=$("${MY[@]}" -N -B -e "SELECT $S" | tr '\t' '|')
S=${SUMS//ACCOUNTS/$ACCOUNTS_T}; S=${S//TELLERS/${ACCOUNTS_T%.*}.tellers}; S=${S//HISTORY/${ACCOUNTS_T%.*}.history}
TGT_SUM=$(pgq tgt "SELECT $S")
EQUAL=yes
[ "$SRC_SUM" = "$TGT_SUM" ] || EQUAL="NO (source $SRC_SUM, target $TGT_SUM)"
log "target equals source: $EQUAL"

python3 - "$BARGE_COMMIT" <<EOF |
import datetime, os, sys
commit = sys.argv[1]
if "${BARGE:-}":
    commit += " (the script's); barge binary: BARGE=${BARGE:-}"
if "${BARGE_BEFORE:-}":
    commit += "; barge-before: BARGE_BEFORE=${BARGE_BEFORE:-}"
def rate(n, wall, rc):
    return f"{n / float(wall):,.0f}" if wall and rc == "0" else "n/a"
def mib(kb):
    return int(kb or 0) // 1024
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
load = " ".join(open("/proc/loadavg").read().split()[:3])
bw, rw = "$BARGE_WALL", "$REF_WALL"
ok = "$BARGE_RC" == "0" and "$REF_RC" == "0"
ratio = f"{float(rw) / float(bw):.2f}" if bw and rw and ok else "n/a"
lines = [
    f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — CDC MariaDB → PostgreSQL",
    "",
    f"Machine: {os.cpu_count()} cores ({cpu}), load average {load}. barge commit {commit}. Source: private $(my_version) (binlog ROW, FULL images); target: private PostgreSQL $(pg_version).",
    "",
    f"- Lag at a driven rate of $DRIVEN_U single-row transactions/s (asked $RATE/s, ${DURATION}s, $SEEN_U of $PROBES_U probes arrived): p50 **$P50_U ms**, p99 **$P99_U ms**, max $PMAX_U ms.",
    *(["$TPCB_LINE"] if "$TPCB_LINE" else []),
    f"- Catch-up of $BACKLOG single-row update transactions ($ACCOUNTS accounts; one binlog file of ${SIZE:-?} bytes):",
    "",
    "| tool | wall s | changes/s | client CPU s | server CPU s | peak RSS MiB | what it does |",
    "|---|---:|---:|---:|---:|---:|---|",
    f"| barge | {bw} | {rate($BACKLOG, bw, '$BARGE_RC')} | $BARGE_CPU | $BARGE_SRV | {mib('$BARGE_RSS')} | read, decode, apply to the target, save the position |",
]
if "$B_WALL":
    lines.append(f"| barge-before | $B_WALL | {rate($BACKLOG, '$B_WALL', '$B_RC')} | $B_CPU | $B_SRV | {mib('$B_RSS')} | the same, an older barge (\`BARGE_BEFORE\`), on a backlog of its own |")
lines += [
    f"| mariadb-binlog | {rw} | {rate($BACKLOG, rw, '$REF_RC')} | $REF_CPU | $REF_SRV | {mib('$REF_RSS')} | --read-from-remote-server --raw: receive to a file |",
    "",
    f"barge's rate ÷ mariadb-binlog's: **{ratio}**. Target equals source afterwards (count and sum of accounts, sum of tellers, count and sum of history): $EQUAL.",
    "",
]
print("\n".join(lines))
EOF
bench_append "# bench/cdc-mysql.sh results

Appended by each run; newest last."
