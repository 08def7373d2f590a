#!/usr/bin/env bash
# Benchmark: `barge validate` across engines, against reading both sides with the engines' own
# clients. What it shows is barge's peak RSS (flat, whatever the table's size) and its time
# next to the floor any comparison pays: reading every row of both tables.
#
#   bash bench/validate.sh              (from the repo root, as root; 10M rows by default)
#   ROWS=200000 bash bench/validate.sh  smoke run
#
# Knobs: ROWS (default 10000000), TARGETS (default "mariadb sqlite": where the copy is),
# BARGE (a binary instead of `cargo build --release`), BARGE_BEFORE (an older barge binary,
# measured the same way for comparison), BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The source is one PostgreSQL 15 table of ROWS rows, filled by generate_series:
#   CREATE TABLE facts (id bigint PRIMARY KEY, grp int NOT NULL, label text NOT NULL,
#                       amount numeric(12,2), at timestamptz, flag boolean)
# (about 80 bytes a row). barge migrate copies it to each target (untimed here; that is
# bench/*-to-pg.sh's job), then, per target:
#   reference  the engines' own clients read both sides at once, in key order, each through
#              md5sum: `psql -c "COPY (SELECT … ORDER BY id) TO STDOUT" | md5sum` beside
#              `mariadb --quick -e "SELECT … ORDER BY id" | md5sum` (or `sqlite3 … | md5sum`).
#              Its wall time is the floor for any tool that compares every row.
#   barge      barge validate postgres://… TARGET: both sides read at once, decoded, compared.
# Results: printed, and appended to bench/results/validate.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=${ROWS:-10000000}
TARGETS=${TARGETS:-mariadb sqlite}

bench_init validate
wants() { [[ " $TARGETS " == *" $1 "* ]]; }
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
pg_start
wants mariadb && my_start
wants sqlite && bench_need sqlite3 sqlite3

log "generating $ROWS rows in PostgreSQL"
pg_recreate_db src
pgq src "CREATE TABLE facts (id bigint PRIMARY KEY, grp int NOT NULL, label text NOT NULL, amount numeric(12,2), at timestamptz, flag boolean);
         INSERT INTO facts SELECT g, g % 1000, 'label ' || md5(g::text), (g % 100000) / 100.0,
                                  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g % 3 = 0
                           FROM generate_series(1, $ROWS) g" >/dev/null
pgq src "VACUUM ANALYZE facts" >/dev/null
SRC_MB=$(pgq src "SELECT pg_total_relation_size('facts') / 1000000")
SRC_URL=$(pg_url src)
log "source ready: $SRC_MB MB"

COLS="id, grp, label, amount, at, flag"
# The reference reads, as scripts (GNU time runs programs, not shell functions): both sides at
# once, each through md5sum.
cat > "$WORK/ref-mariadb.sh" <<SH
set -euo pipefail
psql -X -q -d src -c "COPY (SELECT $COLS FROM facts ORDER BY id) TO STDOUT" | md5sum > "$WORK/ref-pg.md5" &
MYSQL_PWD="\$MYPW" mariadb --no-defaults -h 127.0.0.1 -P "${MYPORT:-}" -u bench --quick --batch --skip-column-names \\
    -e "SELECT $COLS FROM tgt.facts ORDER BY id" | md5sum > "$WORK/ref-target.md5" &
wait -n; wait -n
SH
cat > "$WORK/ref-sqlite.sh" <<SH
set -euo pipefail
psql -X -q -d src -c "COPY (SELECT $COLS FROM facts ORDER BY id) TO STDOUT" | md5sum > "$WORK/ref-pg.md5" &
sqlite3 "$WORK/tgt.db" "SELECT $COLS FROM facts ORDER BY id" | md5sum > "$WORK/ref-target.md5" &
wait -n; wait -n
SH
export MYPW

: > "$WORK/validate.tsv"
record() { # TARGET TOOL STATUS
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${M_WALL:-}" "${M_CPU:-}" "${M_RSS_KB:-}" >> "$WORK/validate.tsv"
}
measure_validate() { # TARGET TOOL BIN URL
    bench_measure "$2-$1" "$3" validate "$SRC_URL" "$4"
    if [ "$M_RC" = 0 ] && grep -q ' equal$' "$WORK/log/$2-$1.log"; then
        record "$1" "$2" ok
    else
        record "$1" "$2" "n/a ($(failure_reason "$2-$1"))"
    fi
}

for target in $TARGETS; do
    case $target in
        mariadb)
            "${MY[@]}" -e "DROP DATABASE IF EXISTS tgt; CREATE DATABASE tgt"
            url="mysql://bench@127.0.0.1:$MYPORT/tgt?ssl-mode=DISABLED"
            export BARGE_TARGET_PASSWORD=$MYPW ;;
        sqlite)
            rm -f "$WORK/tgt.db"
            url="sqlite:$WORK/tgt.db"
            unset BARGE_TARGET_PASSWORD ;;
        *) die "unknown target $target" ;;
    esac
    log "copying to $target with barge migrate"
    bench_measure "load-$target" "$BARGE_BIN" migrate "$SRC_URL" "$url" --state-dir "$WORK/state-$target"
    [ "$M_RC" = 0 ] || die "the load into $target failed (log: $WORK/log/load-$target.log)"
    if [ "$target" = mariadb ]; then
        "${MY[@]}" -e "ANALYZE TABLE tgt.facts" >/dev/null
    fi

    bench_measure "reference-$target" bash "$WORK/ref-$target.sh"
    if [ "$M_RC" = 0 ]; then record "$target" reference ok; else record "$target" reference "n/a (exit $M_RC)"; fi
    measure_validate "$target" barge "$BARGE_BIN" "$url"
    if [ -n "${BARGE_BEFORE:-}" ]; then
        measure_validate "$target" barge-before "$BARGE_BEFORE" "$url"
    fi
done

python3 - "$WORK/validate.tsv" "$ROWS" "$SRC_MB" "$BARGE_COMMIT" "$(pg_version)" "$( (wants mariadb && my_version) || echo -)" <<'EOF' |
import datetime, os, sys
tsv, rows, src_mb, commit, pgv, myv = sys.argv[1:]
rows = int(rows)
lines_in = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")) / 1024 / 1024
load = open("/proc/loadavg").read().split()[:3]
out = [f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — validate, {rows:,} rows",
       "",
       f"Machine: {os.cpu_count()} cores, {mem:.1f} GiB RAM, load average {' '.join(load)} at the end. barge commit {commit}.",
       f"Source: PostgreSQL {pgv}, table `facts` ({src_mb} MB: bigint key, int, text, numeric(12,2), timestamptz, boolean).",
       f"Targets: MariaDB {myv} (InnoDB, 512 MB buffer pool) and/or a SQLite file, each loaded by barge migrate.",
       "",
       "| target | tool | result | wall s | rows/s | client CPU s | peak RSS MiB | reference ÷ this (above 1: faster than reading both sides with the engines' clients) |",
       "|---|---|---|---:|---:|---:|---:|---:|"]
ref = {t: float(w) for t, tool, st, w, c, r in lines_in if tool == "reference" and st == "ok" and w}
for t, tool, st, w, c, r in lines_in:
    if st != "ok":
        out.append(f"| {t} | {tool} | {st} | | | | | |")
        continue
    wall = float(w)
    ratio = f"{ref[t] / wall:.2f}×" if t in ref and wall > 0 else ""
    rss = f"{int(r) / 1024:.0f}" if r else ""
    out.append(f"| {t} | {tool} | ok | {wall:.2f} | {rows / wall:,.0f} | {float(c):.2f} | {rss} | {ratio} |")
out += ["",
        "reference = psql COPY (… ORDER BY id) | md5sum beside the target's client (mariadb --quick, sqlite3) | md5sum, both",
        "at once; its peak RSS is the largest single process (psql, the client or md5sum). barge = `barge validate`, which",
        "reads both sides at once and compares every value; its peak RSS is the whole barge process.", ""]
print("\n".join(out))
EOF
bench_append "# validate benchmark

Appended to by \`bash bench/validate.sh\` (see the comment at its top). Each section is one run on the same machine and data."
