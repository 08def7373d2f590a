#!/usr/bin/env bash
# Benchmark: full load MariaDB → PostgreSQL. In the same run and on the same data, it compares
# barge migrate with pgloader, and with a plain `mariadb --batch | psql COPY` pipe as the floor.
#
#   bash bench/mariadb-to-pg.sh            (from the repo root, as root; 5M rows by default)
#   SCALE=1 bash bench/mariadb-to-pg.sh    smoke run: 100k rows
#
# Knobs: SCALE (100k rows each, default 50) or ROWS (exact), TOOLS (subset, default
# "tsv-pipe barge pgloader"), BARGE (a binary instead of `cargo build --release`), BENCH_KEEP=1,
# BENCH_TIMEOUT (see bench/lib.sh).
#
# The source is pgbench_accounts as `pgbench -i` fills it (aid 1..N, bid = (aid-1)/100000 + 1,
# abalance 0, filler 84 blanks), loaded with LOAD DATA LOCAL INFILE into a private MariaDB
# (127.0.0.1, InnoDB, 512 MB buffer pool):
#   CREATE TABLE pgbench_accounts (aid INT NOT NULL PRIMARY KEY, bid INT, abalance INT, filler CHAR(84))
# Each tool loads it, over TCP from 127.0.0.1, into a freshly created, empty PostgreSQL 15
# database (private server, unix socket, bulk-load settings). Its wall time covers the table, the
# rows and the primary key:
#   tsv-pipe  mariadb --batch --quick "SELECT *" | psql COPY FROM STDIN into a table created
#             beforehand (untimed), then ALTER TABLE ... ADD PRIMARY KEY
#   barge     barge migrate mysql://bench@127.0.0.1:PORT/src postgres://... (password from
#             BARGE_SOURCE_PASSWORD)
#   pgloader  LOAD DATABASE FROM mysql://..., with `prefetch rows = 10000`, as in
#             bench/pg-to-pg.sh (FACTS.md saw its defaults run out of heap at 5M rows); it puts
#             the table in a schema named `src`
# Each target row count is checked, and so is the primary key.
# Results: printed, and appended to bench/results/mariadb-to-pg.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=${SCALE:-50}
ROWS=${ROWS:-$((SCALE * 100000))}
TOOLS=${TOOLS:-tsv-pipe barge pgloader}
BENCH_AIMS="pgloader=5"

bench_init mariadb-to-pg
wants() { [[ " $TOOLS " == *" $1 "* ]]; }
wants pgloader && bench_need pgloader pgloader
wants barge && bench_barge
my_start
pg_start

log "loading $ROWS rows into MariaDB with LOAD DATA LOCAL INFILE"
awk -v n="$ROWS" 'BEGIN { f = sprintf("%84s", ""); for (i = 1; i <= n; i++) printf "%d,%d,0,%s\n", i, int((i - 1) / 100000) + 1, f }' \
    > "$WORK/accounts.csv"
/usr/bin/time -f '%e' -o "$WORK/gen.time" "${MY[@]}" --local-infile=1 >/dev/null <<SQL
CREATE DATABASE src;
CREATE TABLE src.pgbench_accounts (aid INT NOT NULL PRIMARY KEY, bid INT, abalance INT, filler CHAR(84)) ENGINE=InnoDB;
LOAD DATA LOCAL INFILE '$WORK/accounts.csv' INTO TABLE src.pgbench_accounts FIELDS TERMINATED BY ',';
ANALYZE TABLE src.pgbench_accounts;
SQL
rm -f "$WORK/accounts.csv"
[ "$("${MY[@]}" -N -B -e 'SELECT count(*) FROM src.pgbench_accounts')" = "$ROWS" ] || die "source does not have $ROWS rows"
SRC_MB=$("${MY[@]}" -N -B -e "SELECT (data_length + index_length) DIV 1000000 FROM information_schema.tables
                               WHERE table_schema = 'src' AND table_name = 'pgbench_accounts'")
log "source ready in $(cat "$WORK/gen.time")s: $SRC_MB MB in InnoDB (the count above read it into the buffer pool)"

fresh_target() { pg_fresh_db tgt; }
check_and_record() { bench_check "$1" tgt pgbench_accounts "$ROWS" "${2:-}"; }

if wants tsv-pipe; then
    fresh_target
    pgq tgt "CREATE TABLE pgbench_accounts (aid integer NOT NULL, bid integer, abalance integer, filler character(84))" >/dev/null
    # mariadb --batch escapes tab, newline and backslash as COPY's text format expects
    # (this data has no NULLs, which it would print as the word NULL).
    bench_measure tsv-pipe env MYSQL_PWD="$MYPW" bash -c '
        set -euo pipefail
        mariadb --no-defaults -h 127.0.0.1 -P "$0" -u bench --batch --quick --skip-column-names \
            -e "SELECT aid, bid, abalance, filler FROM src.pgbench_accounts" |
            psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "COPY pgbench_accounts FROM STDIN"
        psql -X -q -v ON_ERROR_STOP=1 -d tgt -c "ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)"' "$MYPORT"
    check_and_record tsv-pipe "mariadb --batch --quick | psql COPY text, then ADD PRIMARY KEY"
fi

if wants barge; then
    if [ -n "$BARGE_NA" ]; then
        bench_record_na barge "$BARGE_NA"
    else
        fresh_target
        bench_measure barge env BARGE_SOURCE_PASSWORD="$MYPW" "$BARGE_BIN" migrate \
            "mysql://bench@127.0.0.1:$MYPORT/src" "$(pg_url tgt)"
        check_and_record barge "barge migrate, full load"
    fi
fi

if wants pgloader; then
    fresh_target
    ( umask 077; cat > "$WORK/mariadb-to-pg.load" <<END_LOAD
LOAD DATABASE
     FROM mysql://bench:$MYPW@127.0.0.1:$MYPORT/src
     INTO pgsql://postgres@unix:$PGSOCK:$PGPORT/tgt
 WITH prefetch rows = 10000;
END_LOAD
    )
    bench_measure pgloader pgloader --root-dir "$WORK/pgloader" "$WORK/mariadb-to-pg.load"
    check_and_record pgloader "pgloader $(pgloader_version), prefetch rows = 10000"
fi

bench_report "MariaDB → PostgreSQL, pgbench_accounts, $ROWS rows ($SRC_MB MB in InnoDB)" \
    "Source: $(my_version), private instance on 127.0.0.1 (innodb_buffer_pool_size=512M, innodb_flush_log_at_trx_commit=0); pgbench_accounts as \`pgbench -i\` fills it (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84)), loaded with LOAD DATA LOCAL INFILE in $(cat "$WORK/gen.time") s. Every tool reads it over TCP." \
    "Target: PostgreSQL $(pg_version), private instance over its unix socket; fsync, synchronous_commit and full_page_writes off, wal_level=minimal, shared_buffers=512MB, maintenance_work_mem=512MB, max_wal_size=8GB, autovacuum off." \
    "Each tool loads into a freshly created empty database, one tool at a time; wall time includes creating the primary key. Column types on the target are each tool's own choice. Server CPU counts mariadbd and PostgreSQL."
