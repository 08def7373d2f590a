#!/usr/bin/env bash
# Benchmark: full load SQLite → PostgreSQL. In the same run and on the same data, it compares
# barge migrate with pgloader, and with a plain `sqlite3 -csv | psql COPY` pipe as the floor.
#
#   bash bench/sqlite-to-pg.sh             (from the repo root, as root; 5M rows by default)
#   SCALE=1 bash bench/sqlite-to-pg.sh     smoke run: 100k rows
#
# Knobs: SCALE (100k rows each, default 50) or ROWS (exact), TOOLS (subset, e.g. "barge barge-before" with BARGE_BEFORE=an older binary; default
# "csv-pipe barge pgloader"), BARGE (a binary instead of `cargo build --release`), BENCH_KEEP=1,
# BENCH_TIMEOUT (see bench/lib.sh).
#
# The source is pgbench_accounts as `pgbench -i` fills it (aid 1..N, bid = (aid-1)/100000 + 1,
# abalance 0, filler 84 blanks), written into a SQLite file the way people declare it there:
#   CREATE TABLE pgbench_accounts (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler CHAR(84))
# Each tool loads it into a freshly created, empty PostgreSQL 15 database (private server, unix
# socket, bulk-load settings). Its wall time covers the table, the rows and the primary key:
#   csv-pipe  sqlite3 -csv "SELECT *" | psql COPY FROM STDIN (FORMAT csv) into a table created
#             beforehand (untimed), then ALTER TABLE ... ADD PRIMARY KEY
#   barge     barge migrate sqlite:FILE postgres://...
#   pgloader  LOAD DATABASE FROM sqlite://FILE, with `prefetch rows = 10000`, as in
#             bench/pg-to-pg.sh (FACTS.md saw its defaults run out of heap at 5M rows)
# Each target row count is checked, and so is the primary key.
# Results: printed, and appended to bench/results/sqlite-to-pg.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=${SCALE:-50}
ROWS=${ROWS:-$((SCALE * 100000))}
TOOLS=${TOOLS:-csv-pipe barge pgloader}
BENCH_AIMS="pgloader=5"

bench_init sqlite-to-pg
wants() { [[ " $TOOLS " == *" $1 "* ]]; }
bench_need sqlite3 sqlite3
wants pgloader && bench_need pgloader pgloader
wants barge && bench_barge
pg_start

SRC=$WORK/src.db
log "writing $ROWS rows to $SRC"
/usr/bin/time -f '%e' -o "$WORK/gen.time" sqlite3 "$SRC" >/dev/null <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
CREATE TABLE pgbench_accounts (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler CHAR(84));
WITH RECURSIVE n(aid) AS (SELECT 1 UNION ALL SELECT aid + 1 FROM n WHERE aid < $ROWS)
INSERT INTO pgbench_accounts SELECT aid, (aid - 1) / 100000 + 1, 0, printf('%84s', '') FROM n;
SQL
[ "$(sqlite3 "$SRC" 'SELECT count(*) FROM pgbench_accounts')" = "$ROWS" ] || die "source does not have $ROWS rows"
SRC_MB=$(( $(stat -c %s "$SRC") / 1000000 ))
log "source ready in $(cat "$WORK/gen.time")s: $SRC_MB MB (the count above read it, so it is in the page cache)"

fresh_target() { pg_fresh_db tgt; }
check_and_record() { bench_check "$1" tgt pgbench_accounts "$ROWS" "${2:-}"; }

if wants csv-pipe; then
    fresh_target
    pgq tgt "CREATE TABLE pgbench_accounts (aid bigint NOT NULL, bid bigint, abalance bigint, filler character(84))" >/dev/null
    bench_measure csv-pipe bash -c '
        set -euo pipefail
        sqlite3 -csv "$0" "SELECT aid, bid, abalance, filler FROM pgbench_accounts" |
            psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "COPY pgbench_accounts FROM STDIN (FORMAT csv)"
        psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)"' "$SRC"
    check_and_record csv-pipe "sqlite3 -csv | psql COPY csv, then ADD PRIMARY KEY"
fi

if wants barge; then
    if [ -n "$BARGE_NA" ]; then
        bench_record_na barge "$BARGE_NA"
    else
        fresh_target
        bench_measure barge "$BARGE_BIN" migrate "sqlite:$SRC" "$(pg_url tgt)"
        check_and_record barge "barge migrate, full load"
    fi
fi

wants barge-before && bench_barge_before "sqlite:$SRC" "$(pg_url tgt)"

if wants pgloader; then
    fresh_target
    cat > "$WORK/sqlite-to-pg.load" <<END_LOAD
LOAD DATABASE
     FROM sqlite://$SRC
     INTO pgsql://postgres@unix:$PGSOCK:$PGPORT/tgt
 WITH prefetch rows = 10000;
END_LOAD
    bench_measure pgloader pgloader --root-dir "$WORK/pgloader" "$WORK/sqlite-to-pg.load"
    check_and_record pgloader "pgloader $(pgloader_version), prefetch rows = 10000"
fi

bench_report "SQLite → PostgreSQL, pgbench_accounts, $ROWS rows ($SRC_MB MB SQLite file)" \
    "Source: a SQLite $(sqlite3 --version | awk '{print $1}') file holding pgbench_accounts as \`pgbench -i\` fills it (aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler CHAR(84) of 84 blanks), in the page cache." \
    "Target: PostgreSQL $(pg_version), private instance over its unix socket; fsync, synchronous_commit and full_page_writes off, wal_level=minimal, shared_buffers=512MB, maintenance_work_mem=512MB, max_wal_size=8GB, autovacuum off." \
    "Each tool loads into a freshly created empty database, one tool at a time; wall time includes creating the primary key. Column types on the target are each tool's own choice."
