#!/usr/bin/env bash
# Benchmark: `--sql` in flight, one run each, ratios printed.
#
#   1. filter + projection: records/s of `barge migrate tail://events.jsonl null://` with
#      --sql (a WHERE on a JSON field, casts, a decimal product, string and date functions)
#      against the same command without --sql (both --record-format json), same file.
#      Aim: at most 20 % slower.
#   2. windows: records/s of `barge migrate tail://events.jsonl postgres://…` with a
#      one-minute TUMBLE by key (count, sum, avg, max) against PostgreSQL computing the same
#      windows after the fact over the same records already in a jsonb table (the GROUP BY
#      alone; the COPY that loads them is in the notes).
#
#   bash bench/sql-in-flight.sh                      (from the repo root, as root)
#   RECORDS=50000 bash bench/sql-in-flight.sh        smoke run
#
# Knobs: RECORDS (default 500000), BARGE (a barge binary instead of `cargo build --release`),
# BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The records: JSON lines of about 190 bytes (id, user, amount as a decimal string, qty,
# an event time one second apart, a nested object), written once before anything is timed.
# Results: printed, and appended to bench/results/sql-in-flight.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECORDS=${RECORDS:-500000}

bench_init sql-in-flight
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
pg_start
pg_recreate_db sqlbench
pgq sqlbench "ALTER DATABASE sqlbench SET timezone TO 'UTC'" >/dev/null

log "writing $RECORDS records"
python3 - "$RECORDS" "$WORK/events.jsonl" <<'EOF'
import sys, datetime
n, path = int(sys.argv[1]), sys.argv[2]
base = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)
users = ["ann", "Bob", "cy", "Dee", "eva", "fin", "Gus"]
cities = ["Oslo", "Rome", "Lima", "Kyiv", "Pune"]
with open(path, "w") as f:
    for i in range(n):
        ts = (base + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        f.write('{"id": %d, "user": "%s", "amount": "%d.%02d", "qty": %d, "ts": "%s", "meta": {"city": "%s", "tier": "%s"}}\n'
                % (i, users[i % 7], i * 37 % 1000, i * 13 % 100, i % 9, ts, cities[i % 5], "gold" if i % 4 == 0 else "std"))
EOF

PROJECTION="SELECT (data->>'id')::bigint AS id, upper(data->>'user') AS who, (data->>'amount')::numeric(12,2) * (data->>'qty')::int AS total, \
date_trunc('hour', (data->>'ts')::timestamptz) AS hour, data->'meta'->>'city' AS city FROM records AS out \
WHERE (data->>'qty')::int >= 3 AND data->'meta'->>'tier' = 'std'"
WINDOWS="SELECT data->'meta'->>'city' AS city, window_start, window_end, count(*) AS n, sum((data->>'amount')::numeric) AS total, \
avg((data->>'amount')::numeric) AS mean, max((data->>'qty')::int) AS most FROM records AS per_minute \
GROUP BY data->'meta'->>'city', TUMBLE((data->>'ts')::timestamptz, INTERVAL '1' MINUTE)"
PG_WINDOWS="SELECT data->'meta'->>'city' AS city, to_timestamp(floor(extract(epoch from (data->>'ts')::timestamptz) / 60) * 60) AS window_start, \
count(*) AS n, sum((data->>'amount')::numeric) AS total, avg((data->>'amount')::numeric) AS mean, max((data->>'qty')::int) AS most \
FROM src GROUP BY 1, 2"

changes() { # LOG: the changes the run applied, from its summary line
    grep -oE 'changes [0-9]+ ' "$WORK/log/$1.log" | tail -n 1 | awk '{print $2}'
}
rate() { awk -v n="$RECORDS" -v w="$1" 'BEGIN{ if (w > 0) printf "%.0f", n / w; else print "" }'; }

rm -rf "$WORK/s1"
bench_measure plain "$BARGE_BIN" migrate "tail://$WORK/events.jsonl" null:// --record-format json --mode full-load --state-dir "$WORK/s1"
[ "$M_RC" = 0 ] || die "barge without --sql failed (log: $WORK/log/plain.log)"
PLAIN=$M_WALL PLAIN_CPU=$M_CPU PLAIN_LOAD=$M_LOAD PLAIN_N=$(changes plain)

rm -rf "$WORK/s2"
bench_measure projection "$BARGE_BIN" migrate "tail://$WORK/events.jsonl" null:// --record-format json --mode full-load --state-dir "$WORK/s2" --sql "$PROJECTION"
[ "$M_RC" = 0 ] || die "barge with --sql failed (log: $WORK/log/projection.log)"
PROJ=$M_WALL PROJ_CPU=$M_CPU PROJ_LOAD=$M_LOAD PROJ_N=$(changes projection)

rm -rf "$WORK/s3"
bench_measure windows "$BARGE_BIN" migrate "tail://$WORK/events.jsonl" "$(pg_url sqlbench)" --mode full-load --state-dir "$WORK/s3" --sql "$WINDOWS"
[ "$M_RC" = 0 ] || die "barge windows failed (log: $WORK/log/windows.log)"
WIN=$M_WALL WIN_CPU=$M_CPU WIN_LOAD=$M_LOAD WIN_ROWS=$(pgq sqlbench "SELECT count(*) FROM per_minute")

pgq sqlbench "CREATE TABLE src (data jsonb NOT NULL)" >/dev/null
sed 's/\\/\\\\/g' "$WORK/events.jsonl" > "$WORK/events.copy"
bench_measure pg-load psql -X -q -v ON_ERROR_STOP=1 -d sqlbench -c "\\copy src FROM '$WORK/events.copy'"
LOAD=$M_WALL
pgq sqlbench "VACUUM ANALYZE src" >/dev/null
bench_measure pg-windows psql -X -q -v ON_ERROR_STOP=1 -d sqlbench -c "CREATE TABLE expected AS $PG_WINDOWS"
PGW=$M_WALL PGW_LOAD=$M_LOAD PGW_SRV=$M_SRV_CPU
PG_ROWS=$(pgq sqlbench "SELECT count(*) FROM expected")
SAME=$(pgq sqlbench "SELECT count(*) FROM ((SELECT city, window_start, n, total, mean, most FROM per_minute EXCEPT ALL SELECT * FROM expected) UNION ALL (SELECT * FROM expected EXCEPT ALL SELECT city, window_start, n, total, mean, most FROM per_minute)) d")

SLOWER=$(awk -v a="$PROJ" -v b="$PLAIN" 'BEGIN{printf "%.1f", (a / b - 1) * 100}')
AIM=$(awk -v s="$SLOWER" 'BEGIN{print (s <= 20) ? "met" : "NOT met"}')
WRATIO=$(awk -v a="$PGW" -v b="$WIN" 'BEGIN{printf "%.2f", b / a}')

bench_append "# sql-in-flight benchmark

Appended to by \`bash bench/sql-in-flight.sh\` (see the comment at its top). Each section is one run." <<EOF
## $(date -u '+%Y-%m-%d %H:%M') UTC — --sql in flight, $RECORDS JSON records from tail://

Machine: $(nproc) cores, load average before each command in the table. barge commit $BARGE_COMMIT.

| what | wall s | records/s | client CPU s | load before | notes |
|---|---:|---:|---:|---|---|
| barge, no --sql → null:// | $PLAIN | $(rate "$PLAIN") | $PLAIN_CPU | $PLAIN_LOAD | $PLAIN_N rows out |
| barge, --sql filter + projection → null:// | $PROJ | $(rate "$PROJ") | $PROJ_CPU | $PROJ_LOAD | $PROJ_N rows out (WHERE keeps $PROJ_N of $RECORDS) |
| barge, --sql TUMBLE 1 min by city → PostgreSQL | $WIN | $(rate "$WIN") | $WIN_CPU | $WIN_LOAD | $WIN_ROWS window rows |
| PostgreSQL GROUP BY after the fact (jsonb table) | $PGW | $(rate "$PGW") | (server $PGW_SRV) | $PGW_LOAD | $PG_ROWS rows; loading the records first (\\copy) took $LOAD s |

- Filter + projection: ${SLOWER} % slower than without --sql (aim: at most 20 %: $AIM).
- Windows: barge aggregates in flight at $WRATIO× the time PostgreSQL takes for the GROUP BY over the records already loaded; the results differ in $SAME rows (0: equal).
EOF
