#!/usr/bin/env bash
# Benchmark: many workers on one full load through a PostgreSQL coordinator (issue 17).
#
#   bash bench/workers.sh                        (from the repo root, as root)
#   WORKERS="1 2" RATE=1 SECONDS_EACH=10 bash bench/workers.sh     a quicker run
#   STEPS=lease LEASE_CHUNKS=500 bash bench/workers.sh             the lease overhead only
#
# Knobs: WORKERS (worker counts, default "1 2 4 8"), RATE (each worker's --max-rate in MB/s,
# default 2), SECONDS_EACH (how long each run's chunks should take at the cap, default 20: each
# run gets N × RATE × SECONDS_EACH megabytes, so every run lasts about as long: weak scaling),
# CHUNKS_PER_WORKER (default 8), LEASE_CHUNKS (chunks of the lease-overhead run, default 2000),
# LEASE_WORKERS (its workers, default 4), SCAN_CHUNKS (sizes of the synthetic tasks whose
# statement costs are timed, default "1000 10000 50000"), STEPS ("scaling lease", default both), BARGE (a barge
# binary instead of `cargo build --release`), BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# Two private PostgreSQL 15 servers (bench/lib.sh): one holds the source and the target, the
# other is the coordinator alone (with pg_stat_statements), so its CPU and its statements are
# the lease traffic and nothing else.
#
#   scaling  For each N: `barge migrate SRC TGT --coordinator … --task …` plus N-1 `barge worker`
#            processes, each with --max-rate RATE, on pgbench_accounts. The throughput is the
#            source's COPY bytes (what --max-rate counts) over the chunk window the coordinator
#            recorded: from the schema unit's end (chunks published) to the last chunk's end.
#            Aim: within 10% of N × RATE. The target is checked (rows equal, primary key).
#   lease    LEASE_WORKERS workers, no cap, on a small table cut into LEASE_CHUNKS chunks: the
#            coordinator's statements per chunk (pg_stat_statements, by statement) and its
#            server CPU per 1,000 chunks; then, on synthetic tasks of SCAN_CHUNKS chunks, the
#            server time of the statements idle workers repeat (EXPLAIN ANALYZE): none may grow
#            with the chunk count.
#
# Results: printed, and appended to bench/results/workers.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORKERS=${WORKERS:-1 2 4 8}
RATE=${RATE:-2}
SECONDS_EACH=${SECONDS_EACH:-20}
CHUNKS_PER_WORKER=${CHUNKS_PER_WORKER:-8}
LEASE_CHUNKS=${LEASE_CHUNKS:-2000}
LEASE_WORKERS=${LEASE_WORKERS:-4}
SCAN_CHUNKS=${SCAN_CHUNKS:-1000 10000 50000}
STEPS=${STEPS:-scaling lease}
step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

bench_init workers
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"

# The coordinator: a second server, started by pg_start in a work dir of its own, then set
# aside (its postmaster is stopped by the cleanup trap through EXTRA_PIDS).
main_work=$WORK
WORK=$main_work/coord
mkdir -p "$WORK/log" && chmod 755 "$WORK"
PG_EXTRA_CONF="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top" pg_start
CO_PORT=$PGPORT CO_SOCK=$PGSOCK CO_PID=$PG_PID CO_DATA=$PGDATA_DIR
EXTRA_PIDS+=("$CO_PID")
PG_STARTED=0
WORK=$main_work
pg_start

coq() { psql -X -At -v ON_ERROR_STOP=1 -h "$CO_SOCK" -p "$CO_PORT" -d coord -c "$*"; }
# A coordinator runs with autovacuum, as any production server does (bench/lib.sh turns it off
# for the bulk-load servers).
psql -X -q -h "$CO_SOCK" -p "$CO_PORT" -d postgres -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
psql -X -q -h "$CO_SOCK" -p "$CO_PORT" -d postgres -c "CREATE DATABASE coord" >/dev/null
coq "CREATE EXTENSION pg_stat_statements" >/dev/null
COORD="postgres://postgres@localhost:$CO_PORT/coord?host=$CO_SOCK&sslmode=disable"

# CPU seconds (user+sys) the coordinator server spent so far: the postmaster, its exited
# children (cutime, cstime) and its live ones.
coord_cpu() {
    local total p
    total=$(sed 's/^.*) //' "/proc/$CO_PID/stat" | awk '{print $12 + $13 + $14 + $15}')
    for p in $(pgrep -P "$CO_PID"); do
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
    done
    awk -v t="$total" -v k="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / k}'
}

# Statements the coordinator ran since the last reset (its own catalog reads left out).
coord_calls() {
    coq "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
          WHERE d.datname = 'coord' AND s.query NOT ILIKE '%pg_stat_statements%'"
}

# run_task NAME ROWS N RATE CHUNK_ROWS: one shared full load of src into a fresh tgt by N
# processes (`migrate` + N-1 `worker`); sets T_WALL and T_OK (ok or why not).
run_task() {
    local name=$1 rows=$2 n=$3 rate=$4 chunk=$5 i s pids=() rc fail=
    local cap=()
    [ "$rate" != 0 ] && cap=(--max-rate "$rate")
    pg_fresh_db tgt
    s=$(date +%s.%N)
    "$BARGE_BIN" migrate "$(pg_url src)" "$(pg_url tgt)" --coordinator "$COORD" --task "$name" \
        --chunk-rows "$chunk" --color never --state-dir "$WORK/state-$name-0" "${cap[@]}" \
        >"$WORK/log/$name-0.log" 2>&1 </dev/null &
    pids+=($!)
    for ((i = 1; i < n; i++)); do
        "$BARGE_BIN" worker --coordinator "$COORD" --task "$name" --color never \
            --state-dir "$WORK/state-$name-$i" "${cap[@]}" >"$WORK/log/$name-$i.log" 2>&1 </dev/null &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        rc=0
        timeout_wait "${pids[$i]}" || rc=$?
        [ $rc = 0 ] || { fail="worker $i exit $rc"; tail -n 5 "$WORK/log/$name-$i.log" | sed 's/^/    /' >&2; }
    done
    T_WALL=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
    local got pk
    got=$(pg_count tgt pgbench_accounts)
    pk=$(pg_pk tgt pgbench_accounts)
    if [ -n "$fail" ]; then T_OK=$fail
    elif [ "$got" != "$rows" ]; then T_OK="target has $got rows, not $rows"
    elif [ "$pk" != pk ]; then T_OK="no primary key on the target"
    else T_OK=ok; fi
    rm -rf "$WORK"/state-"$name"-*
    log "$name: $n workers, ${T_WALL}s wall, $T_OK"
}

# Waits for PID, killing it after BENCH_TIMEOUT seconds.
timeout_wait() {
    local pid=$1 waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge "$((${BENCH_TIMEOUT:-3600} * 10))" ]; then kill -KILL "$pid"; break; fi
        sleep 0.1
        waited=$((waited + 1))
    done
    wait "$pid"
}

# Bytes of pgbench_accounts in binary COPY: what --max-rate counts on a PostgreSQL source.
copy_bytes() { psql -X -q -d src -c "COPY pgbench_accounts TO STDOUT (FORMAT binary)" | wc -c; }

: > "$WORK/scaling.tsv"
if step scaling; then
    # One source, cut down from the largest run to the smallest.
    counts=$(printf '%s\n' $WORKERS | sort -rn)
    largest=$(echo "$counts" | head -n 1)
    # 118 bytes a row in binary COPY (4 columns: 3 integers and a char(84)).
    rows_for() { awk -v n="$1" -v r="$RATE" -v s="$SECONDS_EACH" 'BEGIN{printf "%d", n * r * s * 1e6 / 118}'; }
    scale=$(( ($(rows_for "$largest") + 99999) / 100000 ))
    log "source: pgbench scale $scale"
    pg_fresh_db src
    pgbench_accounts src "$scale"
    for n in $counts; do
        rows=$(rows_for "$n")
        pgq src "DELETE FROM pgbench_accounts WHERE aid > $rows" >/dev/null
        pgq src "VACUUM ANALYZE pgbench_accounts" >/dev/null
        bytes=$(copy_bytes)
        chunk=$(( (rows + n * CHUNKS_PER_WORKER - 1) / (n * CHUNKS_PER_WORKER) ))
        coq "SELECT pg_stat_statements_reset()" >/dev/null
        cpu0=$(coord_cpu)
        run_task "scale-$n" "$rows" "$n" "$RATE" "$chunk"
        cpu=$(awk -v a="$cpu0" -v b="$(coord_cpu)" 'BEGIN{printf "%.2f", b - a}')
        calls=$(coord_calls)
        # The chunk window, the chunks and how they spread over the workers.
        IFS=$'\t' read -r window chunks spread < <(coq "
            WITH u AS (SELECT * FROM barge_control.units WHERE task = 'scale-$n'),
                 w AS (SELECT owner, count(*) AS c FROM u WHERE kind = 'chunk' GROUP BY owner)
            SELECT round(extract(epoch FROM (SELECT max(done_at) FROM u WHERE kind = 'chunk')
                                          - (SELECT done_at FROM u WHERE kind = 'schema'))::numeric, 2),
                   (SELECT count(*) FROM u WHERE kind = 'chunk'),
                   (SELECT string_agg(c::text, '/' ORDER BY c DESC) FROM w)" | tr '|' '\t')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$rows" "$bytes" "$window" "$T_WALL" "$chunks" "$spread" "$calls" "$cpu" "$T_OK" >> "$WORK/scaling.tsv"
        pgq postgres "DROP DATABASE tgt" >/dev/null
    done
    pgq postgres "DROP DATABASE src" >/dev/null
fi

: > "$WORK/lease.tsv"
if step lease; then
    # Chunks of 100 rows: the lease traffic dominates, as it would for a worker pool far
    # larger than this machine.
    rows=$((LEASE_CHUNKS * 100))
    pg_fresh_db src
    pgbench_accounts src $(( (rows + 99999) / 100000 ))
    pgq src "DELETE FROM pgbench_accounts WHERE aid > $rows" >/dev/null
    pgq src "VACUUM ANALYZE pgbench_accounts" >/dev/null
    coq "SELECT pg_stat_statements_reset()" >/dev/null
    cpu0=$(coord_cpu)
    run_task lease "$rows" "$LEASE_WORKERS" 0 100
    cpu=$(awk -v a="$cpu0" -v b="$(coord_cpu)" 'BEGIN{printf "%.2f", b - a}')
    chunks=$(coq "SELECT count(*) FROM barge_control.units WHERE task = 'lease' AND kind = 'chunk'")
    calls=$(coord_calls)
    printf 'total\t%s\t%s\t%s\t%s\t%s\t%s\n' "$LEASE_WORKERS" "$chunks" "$calls" "$cpu" "$T_WALL" "$T_OK" >> "$WORK/lease.tsv"
    # By statement: the first words that tell them apart, calls, rows, mean ms.
    coq "SELECT regexp_replace(left(regexp_replace(s.query, '\s+', ' ', 'g'), 70), '[|\t]', ' ', 'g'),
                s.calls, s.rows, round(s.mean_exec_time::numeric, 3)
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
          WHERE d.datname = 'coord' AND s.query NOT ILIKE '%pg_stat_statements%'
          ORDER BY s.calls DESC LIMIT 14" | tr '|' '\t' | sed 's/^/stmt\t/' >> "$WORK/lease.tsv"
    # The statements idle workers repeat (copies of those in src/coord/: keep them alike),
    # timed by the server on synthetic tasks of SCAN_CHUNKS chunks, half of them done: one
    # chunk lease attempt, the post step's readiness check, one progress read and one
    # heartbeat. Idle workers repeat the first three every 300 ms.
    explain_ms() { coq "EXPLAIN (ANALYZE, FORMAT JSON) $1" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)[0]["Execution Time"], 3))'; }
    for c in $SCAN_CHUNKS; do
        coq "INSERT INTO barge_control.tasks (name, command, args, source, target) VALUES ('scan-$c', 'migrate', '[]', '', '');
             INSERT INTO barge_control.units (task, id, kind, after, status, done_at) VALUES ('scan-$c', 0, 'schema', '{}', 'done', now()), ('scan-$c', 1, 'post', '{schema,chunk}', 'pending', NULL);
             INSERT INTO barge_control.units (task, id, kind, after, table_key, chunk, lo, hi, status, owner, epoch, rows, done_at)
             SELECT 'scan-$c', i + 2, 'chunk', '{schema}', 'public.t' || (i % 50), i / 50, i * 1000, i * 1000 + 1000, 'done', 'w' || (i % 100), i, 1000, now()
               FROM generate_series(0, $c - 1) i;
             UPDATE barge_control.units SET status = 'pending', owner = NULL, done_at = NULL WHERE task = 'scan-$c' AND kind = 'chunk' AND id % 2 = 0;
             ANALYZE barge_control.units" >/dev/null
        q_lease="WITH blocked AS MATERIALIZED (
                SELECT coalesce(array_agg(k), '{}') AS kinds FROM unnest(ARRAY['schema', 'chunk', 'post']) AS k
                 WHERE EXISTS (SELECT 1 FROM barge_control.units d
                                WHERE d.task = 'scan-$c' AND d.kind = k AND d.status IN ('pending', 'leased', 'failed')))
            SELECT coalesce(
                (SELECT n.id FROM barge_control.units n
                  WHERE n.task = 'scan-$c' AND n.kind = 'chunk' AND n.status = 'leased' AND n.lease_expires < now()
                    AND NOT n.after && (SELECT kinds FROM blocked) ORDER BY n.id LIMIT 1 FOR UPDATE SKIP LOCKED),
                (SELECT n.id FROM barge_control.units n
                  WHERE n.task = 'scan-$c' AND n.kind = 'chunk' AND n.status = 'pending'
                    AND NOT n.after && (SELECT kinds FROM blocked) ORDER BY n.id LIMIT 1 FOR UPDATE SKIP LOCKED))"
        q_post=${q_lease//"n.kind = 'chunk'"/"n.kind = 'post'"}
        q_progress="SELECT t.state, t.error, t.errored_tables,
                (SELECT count(*) FROM barge_control.units u
                  WHERE u.task = t.name AND u.kind = 'chunk' AND u.status IN ('pending', 'leased', 'failed')),
                EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = t.name AND u.kind = 'schema' AND u.status = 'done'),
                EXISTS (SELECT 1 FROM barge_control.units u WHERE u.task = t.name AND u.kind = 'post' AND u.status = 'done'),
                (SELECT count(*) FROM barge_control.units u
                  WHERE u.task = t.name AND u.kind IN ('schema', 'chunk', 'post') AND u.status = 'leased' AND u.lease_expires >= now())
            FROM barge_control.tasks t WHERE t.name = 'scan-$c'"
        q_renew="UPDATE barge_control.units SET lease_expires = now() + make_interval(secs => 30)
            WHERE task = 'scan-$c' AND owner = 'nobody' AND kind IN ('schema', 'chunk', 'post') AND status = 'leased'"
        # Each timed five times; the median.
        times=()
        for q in "$q_lease" "$q_post" "$q_progress" "$q_renew"; do
            times+=("$(for _ in 1 2 3 4 5; do explain_ms "$q"; done | sort -n | sed -n 3p)")
        done
        printf 'scan\t%s\t%s\t%s\t%s\t%s\n' "$c" "${times[@]}" >> "$WORK/lease.tsv"
        coq "DELETE FROM barge_control.tasks WHERE name = 'scan-$c'" >/dev/null
    done
    pgq postgres "DROP DATABASE tgt" >/dev/null
    pgq postgres "DROP DATABASE src" >/dev/null
fi
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$CO_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true

python3 - "$WORK/scaling.tsv" "$WORK/lease.tsv" "$BARGE_COMMIT" "$RATE" <<'EOF' |
import datetime, os, sys
scaling, lease, commit, rate = sys.argv[1:5]
rate = float(rate)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
load = " ".join(open("/proc/loadavg").read().split()[:3])
out = [f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — workers through a coordinator",
       "", f"Machine: {os.cpu_count()} cores ({cpu}), load average {load} at the end. barge commit {commit}.", ""]
rows = [l.rstrip("\n").split("\t") for l in open(scaling) if l.strip()]
if rows:
    out += [f"Scaling: each worker capped at --max-rate {rate:g} MB/s; each run N × {rate:g} MB/s × the same seconds (weak scaling).", "",
            "| workers | rows | source MB | chunk window s | MB/s | N × cap | of N × cap | of N × 1 worker's | chunks (per worker) | wall s | coordinator statements (per chunk) | coordinator CPU s | |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    one = None
    for n, r, b, window, wall, chunks, spread, calls, cpu_s, ok in sorted(rows, key=lambda x: int(x[0])):
        mb = int(b) / 1e6
        w = float(window or 0)
        mbs = mb / w if w > 0 else 0
        ideal = int(n) * rate
        per = int(calls) / int(chunks) if int(chunks) else 0
        # The token bucket starts full (one second at the cap), so short runs beat the cap a
        # little at every N; against N × one worker's measured rate that cancels out.
        if n == "1":
            one = mbs
        eff = f"{100 * mbs / (int(n) * one):.1f}%" if one else ""
        out.append(f"| {n} | {int(r):,} | {mb:.1f} | {w:.2f} | {mbs:.2f} | {ideal:g} | {100 * mbs / ideal:.1f}% | {eff} | {chunks} ({spread}) | {wall} | {calls} ({per:.1f}) | {cpu_s} | {ok} |")
    out.append("")
lrows = [l.rstrip("\n").split("\t") for l in open(lease) if l.strip()]
tot = [r for r in lrows if r[0] == "total"]
if tot:
    _, workers, chunks, calls, cpu_s, wall, ok = tot[0]
    c = int(chunks)
    out += [f"Lease overhead: {workers} workers, no cap, {c:,} chunks of 100 rows, {wall} s wall ({ok}).", "",
            f"- coordinator statements: {int(calls):,}, {int(calls) / c:.2f} per chunk;",
            f"- coordinator server CPU: {float(cpu_s):.2f} s, {1000 * float(cpu_s) / c:.2f} s per 1,000 chunks."]
    out += ["", "| statement | calls | rows | mean ms |", "|---|---:|---:|---:|"]
    for r in lrows:
        if r[0] == "stmt":
            out.append(f"| `{r[1].strip()}…` | {r[2]} | {r[3]} | {r[4]} |")
    out.append("")
scan = [r for r in lrows if r[0] == "scan"]
if scan:
    out += ["Statements idle workers repeat, by the size of the task (server time, median of 5, half the chunks done):", "",
            "| chunks in the task | lease attempt ms | post readiness ms | progress read ms | heartbeat ms |", "|---:|---:|---:|---:|---:|"]
    for _, c, a, b, p, h in scan:
        out.append(f"| {int(c):,} | {a} | {b} | {p} | {h} |")
    out.append("")
print("\n".join(out))
EOF
bench_append "# bench/workers.sh results

Appended by each run; newest last."
