#!/usr/bin/env bash
# Benchmark: full load PostgreSQL → PostgreSQL. In the same run and on the same data, it compares
# barge migrate with psql's binary COPY pipe, pgloader and pgcopydb.
#
#   bash bench/pg-to-pg.sh                 (from the repo root, as root; ~5M rows by default)
#   SCALE=1 bash bench/pg-to-pg.sh         smoke run: 100k rows
#
# Knobs: SCALE (pgbench scale, 100k rows each, default 50), TOOLS (subset to run, e.g. "barge barge-before" with BARGE_BEFORE=an older binary; default
# "pipe barge pgloader pgcopydb"), BARGE (a barge binary instead of `cargo build --release`),
# BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The source is `pgbench -i -s SCALE`, keeping only pgbench_accounts: int aid (primary key),
# int bid, int abalance, char(84) filler. Every tool copies it into a freshly created, empty
# database on the same private PostgreSQL 15 server (unix socket, bulk-load settings). Its wall
# time covers the table, the rows and the primary key:
#   pipe      psql COPY ... TO STDOUT (FORMAT binary) | psql COPY ... FROM STDIN (FORMAT binary)
#             into a table created beforehand (untimed), then ALTER TABLE ... ADD PRIMARY KEY
#   barge     barge migrate SRC TGT (full load: it creates the schema itself)
#   pgloader  LOAD DATABASE with `prefetch rows = 10000`. FACTS.md saw its defaults die with
#             "Heap exhausted" at 5M rows. Here (Debian's 3.6.7~devel, this data) the defaults
#             finished at the same speed with 496 MiB peak RSS; the setting caps memory (~280 MiB).
#   pgcopydb  pgcopydb clone (pg_dump schema, COPY, then indexes/constraints; 0.10 always runs
#             VACUUM ANALYZE too, and has no switch to skip it)
# Each target row count is checked against the source, and so is the primary key.
# Results: printed, and appended to bench/results/pg-to-pg.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=${SCALE:-50}
TOOLS=${TOOLS:-pipe barge pgloader pgcopydb}
ROWS=$((SCALE * 100000))
BENCH_AIMS="pipe=0.9 pgloader=4"

bench_init pg-to-pg
wants() { [[ " $TOOLS " == *" $1 "* ]]; }
wants pgloader && bench_need pgloader pgloader
wants pgcopydb && bench_need pgcopydb pgcopydb
wants barge && bench_barge
pg_start

log "pgbench -i -s $SCALE ($ROWS rows)"
createdb src
/usr/bin/time -f '%e' -o "$WORK/gen.time" pgbench -i -q -s "$SCALE" src >"$WORK/log/pgbench-init.log" 2>&1 \
    || { tail "$WORK/log/pgbench-init.log" >&2; die "pgbench -i failed"; }
# Only pgbench_accounts, so every tool copies exactly the same thing.
pgq src "DROP TABLE pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null
pgq src "VACUUM ANALYZE pgbench_accounts" >/dev/null
[ "$(pgq src 'SELECT count(*) FROM pgbench_accounts')" = "$ROWS" ] || die "source does not have $ROWS rows"
SRC_MB=$(pgq src "SELECT pg_total_relation_size('pgbench_accounts') / 1000000")
log "source ready in $(cat "$WORK/gen.time")s: $ROWS rows, $SRC_MB MB with its primary key"

# (the count above read the whole source, so every tool starts with it warm)
fresh_target() { pg_fresh_db tgt; }
check_and_record() { bench_check "$1" tgt pgbench_accounts "$ROWS" "${2:-}"; }

if wants pipe; then
    fresh_target
    pgq tgt "CREATE TABLE pgbench_accounts (aid integer NOT NULL, bid integer, abalance integer, filler character(84))" >/dev/null
    bench_measure pipe bash -c '
        set -euo pipefail
        psql -X -q -d src -c "COPY pgbench_accounts TO STDOUT (FORMAT binary)" |
            psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "COPY pgbench_accounts FROM STDIN (FORMAT binary)"
        psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)"'
    check_and_record pipe "psql binary COPY pipe, then ADD PRIMARY KEY"
fi

if wants barge; then
    if [ -n "$BARGE_NA" ]; then
        bench_record_na barge "$BARGE_NA"
    else
        fresh_target
        bench_measure barge "$BARGE_BIN" migrate "$(pg_url src)" "$(pg_url tgt)"
        check_and_record barge "barge migrate, full load"
    fi
fi

wants barge-before && bench_barge_before "$(pg_url src)" "$(pg_url tgt)"

if wants pgloader; then
    fresh_target
    cat > "$WORK/pg-to-pg.load" <<EOF
LOAD DATABASE
     FROM pgsql://postgres@unix:$PGSOCK:$PGPORT/src
     INTO pgsql://postgres@unix:$PGSOCK:$PGPORT/tgt
 WITH prefetch rows = 10000;
EOF
    bench_measure pgloader pgloader --root-dir "$WORK/pgloader" "$WORK/pg-to-pg.load"
    check_and_record pgloader "pgloader $(pgloader_version), prefetch rows = 10000"
fi

if wants pgcopydb; then
    fresh_target
    bench_measure pgcopydb env PATH="$PG_BIN:$PATH" pgcopydb clone \
        --source "postgres://postgres@localhost:$PGPORT/src?host=$PGSOCK" \
        --target "postgres://postgres@localhost:$PGPORT/tgt?host=$PGSOCK" \
        --dir "$WORK/pgcopydb" --no-owner --no-acl
    check_and_record pgcopydb "pgcopydb $(pgcopydb --version 2>/dev/null | awk '/^pgcopydb version/{print $3}') clone, includes VACUUM ANALYZE"
fi

bench_report "PostgreSQL → PostgreSQL, pgbench_accounts, SCALE=$SCALE ($ROWS rows, $SRC_MB MB)" \
    "Source: \`pgbench -i -s $SCALE\`, pgbench_accounts only (int aid primary key, int bid, int abalance, char(84) filler), built in $(cat "$WORK/gen.time") s." \
    "Server: PostgreSQL $(pg_version), one private instance for source and target databases, unix socket; fsync, synchronous_commit and full_page_writes off, wal_level=minimal, shared_buffers=512MB, maintenance_work_mem=512MB, max_wal_size=8GB, autovacuum off." \
    "Each tool copies into a freshly created empty database, one tool at a time; wall time includes creating the primary key."
