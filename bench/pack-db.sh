#!/usr/bin/env bash
# Benchmark: barge pack / unpack of a PostgreSQL database against pg_dump -Fc / pg_restore and
# against pg_dump | age (encrypted, as barge's pack is), in the same run, on the same data.
#
#   bash bench/pack-db.sh              (from the repo root, as root; 2M + 120k rows by default)
#   SCALE=1 bash bench/pack-db.sh      smoke run: 100k + 120k rows
#
# Knobs: SCALE (pgbench scale, 100k rows each, default 20), BARGE (a barge binary instead of
# `cargo build --release`), BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The source database holds pgbench_accounts (`pgbench -i -s SCALE`: int key, two ints, char(84))
# and fixtures/types/postgres.sql (every type barge carries, and `big`: 120k rows of bigint,
# int, text, numeric(12,2), timestamptz). One private PostgreSQL 15 server (bench/lib.sh) holds
# the source and every target.
#
#   pack      barge pack SRC DIR --no-cdc          (one device directory; Argon2id costs ~0.4 s;
#             BARGE_PACK_ARGS adds flags, e.g. "--compression none")
#   pg_dump   pg_dump -Fc SRC -f FILE              (PostgreSQL's default compression; not encrypted)
#   dump|age  pg_dump -Fc -Z0 SRC | age -r KEY     (encrypted like a pack, not compressed)
#   unpack    barge unpack DIR TGT                 (schema, rows, primary keys, indexes, ANALYZE)
#   restore   pg_restore -d TGT FILE               (schema, rows, primary keys, indexes)
#   restore -j 2  the same with 2 jobs (one per core): tables and indexes side by side
#   age|restore  age -d FILE | pg_restore -d TGT
# Every target's row counts are checked against the source. Results: printed, and appended to
# bench/results/pack-db.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCALE=${SCALE:-20}
ROWS=$((SCALE * 100000))

bench_init pack-db
bench_need age age
bench_need age-keygen age
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
pg_start

log "source: pgbench -i -s $SCALE ($ROWS rows) and fixtures/types/postgres.sql"
createdb src
pgbench_accounts src "$SCALE"
psql -X -q -v ON_ERROR_STOP=1 -d src -f "$ROOT/fixtures/types/postgres.sql" >/dev/null
pgq src "VACUUM ANALYZE" >/dev/null
SRC_MB=$(pgq src "SELECT pg_database_size('src') / 1000000")
TOTAL_ROWS=$(pgq src "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM big) + (SELECT count(*) FROM every_type) + (SELECT count(*) FROM specials)")
log "source ready: $TOTAL_ROWS rows, database $SRC_MB MB"

printf 'correct horse battery staple\n' > "$WORK/pass"
age-keygen -o "$WORK/age.key" 2>/dev/null
AGE_PUB=$(age-keygen -y "$WORK/age.key")
export BARGE_STATE_DIR=$WORK/state

size_mb() { du -sb --apparent-size "$1" | awk '{printf "%.1f", $1 / 1e6}'; }

# One row: OP TOOL OUTPUT_MB NOTE (figures from the last bench_measure).
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$M_RC" "${M_WALL:-}" "${M_CPU:-}" "${M_SRV_CPU:-}" \
        "${M_RSS_KB:-0}" "$3" "$4" >> "$WORK/results.tsv"
}

# The target holds what the source holds.
check_target() { # DB
    local t
    for t in pgbench_accounts big every_type specials; do
        [ "$(pgq "$1" "SELECT count(*) FROM $t")" = "$(pgq src "SELECT count(*) FROM $t")" ] || die "$1.$t: row count differs from the source"
    done
    [ "$(pg_pk "$1" pgbench_accounts)" = pk ] || die "$1.pgbench_accounts has no primary key"
}

pgq postgres CHECKPOINT >/dev/null
mkdir -p "$WORK/dev"
# shellcheck disable=SC2086
bench_measure pack "$BARGE_BIN" pack "$(pg_url src)" "$WORK/dev" --passphrase-file "$WORK/pass" --no-cdc ${BARGE_PACK_ARGS:-}
[ "$M_RC" = 0 ] || die "barge pack failed"
record pack barge "$(size_mb "$WORK/dev")" "barge pack ${BARGE_PACK_ARGS:-(zstd:3)}: compressed, encrypted, chunked, signed manifest; verify --deep checks it"

bench_measure pg_dump pg_dump -Fc -d src -f "$WORK/dump.fc"
[ "$M_RC" = 0 ] || die "pg_dump failed"
record pack "pg_dump -Fc" "$(size_mb "$WORK/dump.fc")" "compressed (default level), not encrypted"

bench_measure dump-age bash -c "set -o pipefail; pg_dump -Fc -Z0 -d src | age -r '$AGE_PUB' > '$WORK/dump.age'"
[ "$M_RC" = 0 ] || die "pg_dump | age failed"
record pack "pg_dump -Fc -Z0 | age" "$(size_mb "$WORK/dump.age")" "encrypted, not compressed"

pg_fresh_db tgt1
bench_measure unpack "$BARGE_BIN" unpack "$WORK/dev" "$(pg_url tgt1)" --passphrase-file "$WORK/pass"
[ "$M_RC" = 0 ] || die "barge unpack failed"
check_target tgt1
record unpack barge "" "checks every chunk's SHA-256 first; keys, indexes, ANALYZE after the rows"

pg_fresh_db tgt2
bench_measure pg_restore pg_restore -d tgt2 "$WORK/dump.fc"
[ "$M_RC" = 0 ] || die "pg_restore failed"
check_target tgt2
record unpack "pg_restore" "" "from pg_dump -Fc"

# barge builds keys and indexes side by side (unpack --parallel, default 4): the
# fair reference is pg_restore with as many jobs as there are cores.
pg_fresh_db tgt4
bench_measure pg_restore-j2 pg_restore -j 2 -d tgt4 "$WORK/dump.fc"
[ "$M_RC" = 0 ] || die "pg_restore -j 2 failed"
check_target tgt4
record unpack "pg_restore -j 2" "" "from pg_dump -Fc, 2 jobs (tables and indexes in parallel)"

pg_fresh_db tgt3
bench_measure age-restore bash -c "set -o pipefail; age -d -i '$WORK/age.key' '$WORK/dump.age' | pg_restore -d tgt3"
[ "$M_RC" = 0 ] || die "age -d | pg_restore failed"
check_target tgt3
record unpack "age -d | pg_restore" "" "from pg_dump -Fc -Z0 | age"

mkdir -p "$ROOT/bench/results"
python3 - "$WORK/results.tsv" "$BARGE_COMMIT" "$SCALE" "$TOTAL_ROWS" "$SRC_MB" "$(pg_version)" <<'EOF' |
import datetime, os, sys
tsv, commit, scale, rows, src_mb, pgv = sys.argv[1:7]
recs = [l.rstrip("\n").split("\t") for l in open(tsv) if l.strip()]
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")) / 1024 / 1024
load = " ".join(open("/proc/loadavg").read().split()[:3])
lines = [f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — PostgreSQL database, SCALE={scale} ({rows} rows, database {src_mb} MB)", "",
         f"Machine: {os.cpu_count()} cores, {mem:.1f} GiB RAM, load average {load}. barge commit {commit}. PostgreSQL {pgv}, "
         "private instance, unix socket, fsync off (bench/lib.sh).", "",
         "| operation | tool | wall s | rows/s | client CPU s | server CPU s | peak RSS MiB | output MB | this tool's wall ÷ barge's | notes |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
for op in ("pack", "unpack"):
    group = [r for r in recs if r[0] == op]
    barge = next(r for r in group if r[1] == "barge")
    for o, tool, rc, wall, cpu, srv, rss, size, note in group:
        tool, note = tool.replace("|", "\\|"), note.replace("|", "\\|")
        ratio = float(wall) / float(barge[3])
        lines.append(f"| {o} | {tool} | {float(wall):.2f} | {int(rows) / float(wall):,.0f} | {float(cpu):.2f} | {float(srv):.2f} | "
                     f"{int(rss) / 1024:.0f} | {size} | {ratio:.2f}× | {note} |")
pack = {r[1]: r for r in recs if r[0] == "pack"}
b, d = pack["barge"], pack["pg_dump -Fc"]
lines += ["", f"barge pack ÷ pg_dump -Fc: output {float(b[7]) / float(d[7]):.2f}× the size, wall {float(b[3]) / float(d[3]):.2f}× the time, "
          f"client CPU {float(b[4]) / max(float(d[4]), 0.01):.2f}×."]
lines += ["", "Above 1× means barge took less wall time. server CPU = what PostgreSQL spent meanwhile "
          "(reading for pack and dumps; loading, indexing for unpack and restores).", ""]
print("\n".join(lines))
EOF
bench_append "# pack-db benchmark

Appended to by \`bash bench/pack-db.sh\` (see the comment at its top). Each section is one run; the tools in a section ran one after another on the same machine and data."
