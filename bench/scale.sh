#!/usr/bin/env bash
# Benchmark: how barge's cost grows with the data, against the reference tools, in one run.
#
#   bash bench/scale.sh                          (from the repo root, as root; 1×, 10×, 50×)
#   SIZES="1 10" TABLES="500 5000" bash bench/scale.sh     a quicker run
#   SIZES="1 10" STEPS=load bash bench/scale.sh          the full load only (its time and RSS)
#
# Knobs: SIZES (multiples of pgbench scale 10, i.e. of 1M rows; default "1 10 50"), TABLES
# (convert-schema input sizes, default "500 5000 50000"), STEPS (which of "load validate pack
# convert" to run, default all; validate needs load), BARGE (a barge binary instead of
# `cargo build --release`), BARGE_BEFORE (an older barge binary: its full load is measured too,
# right after barge's, for a before/after in the same run), BENCH_KEEP=1, BENCH_TIMEOUT (see
# bench/lib.sh).
#
# For each size, on one private PostgreSQL 15 server (bench/lib.sh), with pgbench_accounts only:
#   load      barge migrate SRC TGT (full load, primary key, ANALYZE)   vs  psql binary COPY pipe,
#             then ADD PRIMARY KEY
#   validate  barge validate SRC TGT (the same tables)
#   pack      barge pack SRC DIR --no-cdc (zstd:3, encrypted)            vs  pg_dump -Fc
# Each gives wall time, peak RSS (the largest process) and time per million rows; the pack also its
# size. Everything of a size is deleted before the next. Then convert-schema of a TABLES-table
# mysqldump (bench/gen_mysql_dump.py) into PostgreSQL.
# What to look for: RSS flat from the smallest size to the largest (aim: within 20%), and time per
# row flat (aim: within 20%). Results: printed, and appended to bench/results/scale.md.
#
# Peak RSS (GNU time's %M) includes the pages of barge's own binary mapped from the page cache:
# 15-19 MiB, and how many depends on what the page cache holds (a freshly copied binary maps ~3
# MiB more of the same code), not on the data. So the load also runs a second time with its
# anonymous memory (heap, stacks: what barge allocates) sampled every 20 ms: the "barge (anon)"
# row, whose "peak RSS" is that peak and whose wall time is not comparable (the sampler runs
# beside it).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZES=${SIZES:-1 10 50}
TABLES=${TABLES:-500 5000 50000}
STEPS=${STEPS:-load validate pack convert}
step() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

bench_init scale
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
pg_start
printf 'pass phrase for the scale benchmark\n' > "$WORK/pass"

# Runs barge CMD... in the background and sets ANON_KB to the largest RssAnon seen (sampled every
# 20 ms, in bash alone so the sampler costs little) and M_WALL, M_RC.
anon_peak() {
    local s pid key val rest
    ANON_KB=0
    s=$(date +%s.%N)
    "$@" >"$WORK/log/anon.log" 2>&1 </dev/null &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        while read -r key val rest; do
            if [ "$key" = RssAnon: ] && [ "$val" -gt "$ANON_KB" ]; then ANON_KB=$val; fi
        done < "/proc/$pid/status" 2>/dev/null || true
        sleep 0.02
    done
    M_RC=0
    wait "$pid" || M_RC=$?
    M_WALL=$(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
    M_CPU=''
    log "anonymous memory of $(basename "$1") $2: ${M_WALL}s wall, $((ANON_KB / 1024)) MiB peak anonymous memory"
}

# One row per measurement: size, what, tool, rows, wall, client CPU, RSS KiB, output bytes, ok.
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${M_WALL:-}" "${M_CPU:-}" "${M_RSS_KB:-}" "${5:-}" "$6" >> "$WORK/scale.tsv"; }
: > "$WORK/scale.tsv"

for m in $SIZES; do
    scale=$((m * 10))
    rows=$((scale * 100000))
    log "size ${m}×: pgbench -i -s $scale ($rows rows)"
    pg_fresh_db src
    pgbench -i -q -s "$scale" src >"$WORK/log/pgbench-init-$m.log" 2>&1 || die "pgbench -i failed"
    pgq src "DROP TABLE pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null
    pgq src "VACUUM ANALYZE pgbench_accounts" >/dev/null
    [ "$(pgq src 'SELECT count(*) FROM pgbench_accounts')" = "$rows" ] || die "source does not have $rows rows"

    # load: reference first, then barge
    if step load; then
        pg_fresh_db tgt
        pgq tgt "CREATE TABLE pgbench_accounts (aid integer NOT NULL, bid integer, abalance integer, filler character(84))" >/dev/null
        bench_measure "pipe-$m" bash -c '
            set -euo pipefail
            psql -X -q -d src -c "COPY pgbench_accounts TO STDOUT (FORMAT binary)" |
                psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "COPY pgbench_accounts FROM STDIN (FORMAT binary)"
            psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)"'
        ok=$([ "$M_RC" = 0 ] && [ "$(pg_count tgt pgbench_accounts)" = "$rows" ] && echo ok || echo FAILED)
        row "$m" load "psql COPY pipe" "$rows" "" "$ok"
        pg_fresh_db tgt
        bench_measure "barge-load-$m" "$BARGE_BIN" migrate "$(pg_url src)" "$(pg_url tgt)" --state-dir "$WORK/state-$m"
        ok=$([ "$M_RC" = 0 ] && [ "$(pg_count tgt pgbench_accounts)" = "$rows" ] && echo ok || echo FAILED)
        row "$m" load barge "$rows" "" "$ok"

        # validate the copy barge just made
        if step validate; then
            bench_measure "barge-validate-$m" "$BARGE_BIN" validate "$(pg_url src)" "$(pg_url tgt)"
            row "$m" validate barge "$rows" "" "$([ "$M_RC" = 0 ] && echo ok || echo FAILED)"
        fi
        pgq postgres "DROP DATABASE tgt" >/dev/null
        rm -rf "$WORK/state-$m"
        pg_fresh_db tgt
        anon_peak "$BARGE_BIN" migrate "$(pg_url src)" "$(pg_url tgt)" --state-dir "$WORK/state-$m"
        ok=$([ "$M_RC" = 0 ] && [ "$(pg_count tgt pgbench_accounts)" = "$rows" ] && echo ok || echo FAILED)
        M_RSS_KB=$ANON_KB row "$m" load "barge (anon)" "$rows" "" "$ok"
        pgq postgres "DROP DATABASE tgt" >/dev/null
        rm -rf "$WORK/state-$m"
        if [ -n "${BARGE_BEFORE:-}" ]; then
            pg_fresh_db tgt
            bench_measure "barge-before-load-$m" "$BARGE_BEFORE" migrate "$(pg_url src)" "$(pg_url tgt)" --state-dir "$WORK/state-$m"
            ok=$([ "$M_RC" = 0 ] && [ "$(pg_count tgt pgbench_accounts)" = "$rows" ] && echo ok || echo FAILED)
            row "$m" load "barge (BARGE_BEFORE)" "$rows" "" "$ok"
            pgq postgres "DROP DATABASE tgt" >/dev/null
            rm -rf "$WORK/state-$m"
            pg_fresh_db tgt
            anon_peak "$BARGE_BEFORE" migrate "$(pg_url src)" "$(pg_url tgt)" --state-dir "$WORK/state-$m"
            ok=$([ "$M_RC" = 0 ] && [ "$(pg_count tgt pgbench_accounts)" = "$rows" ] && echo ok || echo FAILED)
            M_RSS_KB=$ANON_KB row "$m" load "barge (BARGE_BEFORE, anon)" "$rows" "" "$ok"
            pgq postgres "DROP DATABASE tgt" >/dev/null
            rm -rf "$WORK/state-$m"
        fi
    fi

    # pack: pg_dump -Fc, then barge
    if step pack; then
        bench_measure "pg_dump-$m" pg_dump -Fc -d src -f "$WORK/dump-$m.fc"
        row "$m" pack "pg_dump -Fc" "$rows" "$(stat -c %s "$WORK/dump-$m.fc" 2>/dev/null || echo 0)" "$([ "$M_RC" = 0 ] && echo ok || echo FAILED)"
        rm -f "$WORK/dump-$m.fc"
        mkdir -p "$WORK/dev-$m"
        bench_measure "barge-pack-$m" env BARGE_STATE_DIR="$WORK/pack-state-$m" "$BARGE_BIN" pack "$(pg_url src)" "$WORK/dev-$m" --no-cdc --passphrase-file "$WORK/pass"
        row "$m" pack barge "$rows" "$(du -sb "$WORK/dev-$m" | cut -f1)" "$([ "$M_RC" = 0 ] && echo ok || echo FAILED)"
        rm -rf "$WORK/dev-$m" "$WORK/pack-state-$m"
    fi
done
pgq postgres "DROP DATABASE IF EXISTS src" >/dev/null

step convert || TABLES=
for n in $TABLES; do
    log "convert-schema: $n tables"
    python3 "$ROOT/bench/gen_mysql_dump.py" "$n" > "$WORK/dump-$n.sql"
    bench_measure "convert-$n" "$BARGE_BIN" convert-schema --from mysql --to postgres "$WORK/dump-$n.sql" -o "$WORK/out-$n.sql"
    row "tables" convert barge "$n" "$(stat -c %s "$WORK/out-$n.sql" 2>/dev/null || echo 0)" "$([ "$M_RC" = 0 ] && echo ok || echo FAILED)"
    rm -f "$WORK/dump-$n.sql" "$WORK/out-$n.sql"
done

python3 - "$WORK/scale.tsv" "$BARGE_COMMIT" <<'EOF' |
import collections, datetime, os, sys
tsv, commit = sys.argv[1:3]
rows = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
load = " ".join(open("/proc/loadavg").read().split()[:3])
out = [f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — how cost grows", "",
       f"Machine: {os.cpu_count()} cores ({cpu}), load average {load} at the end. barge commit {commit}.", "",
       "| size | step | tool | rows (tables) | wall s | µs per row (ms per table) | client CPU s | peak RSS MiB | output MB | |",
       "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
series = collections.defaultdict(list)
for size, step, tool, n, wall, cpu_s, rss, outb, ok in rows:
    per = ""
    if wall and n and int(n):
        per = f"{float(wall) * 1e6 / int(n):.2f}" if size != "tables" else f"{float(wall) * 1e3 / int(n):.3f}"
        series[(step, tool)].append((size, float(per), int(rss or 0)))
    mib = f"{int(rss) / 1024:.1f}" if rss else ""
    mb = f"{int(outb) / 1e6:.1f}" if outb else ""
    label = f"{size}×" if size != "tables" else "—"
    out.append(f"| {label} | {step} | {tool} | {int(n):,} | {wall} | {per} | {cpu_s} | {mib} | {mb} | {ok} |")
out.append("")
for (step, tool), pts in series.items():
    if len(pts) < 2:
        continue
    (s0, t0, r0), (s1, t1, r1) = pts[0], pts[-1]
    rss = f", peak RSS ×{r1 / r0:.2f}" if r0 else ""
    out.append(f"- {step}, {tool}: time per unit ×{t1 / t0:.2f} from the first size to the last{rss}.")
out.append("")
print("\n".join(out))
EOF
bench_append "# bench/scale.sh results

Appended by each run; newest last."
