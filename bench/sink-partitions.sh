#!/usr/bin/env bash
# Benchmark: JSON lines → file:// Parquet by a declared table, records/s, partitioned by a field
# and the hour (--partition-by) against the same run unpartitioned, in the same run.
#
#   unpartitioned  barge migrate file:///in file:///out --schema t.sql --format parquet
#   barge          the same with --partition-by 'device=!{field:device}/hour=!{timestamp:%Y%m%d%H}'
#                  (DEVICES distinct devices: one buffer, and one file, per device); the
#                  report's ratio is the partitioned run's speed ÷ the unpartitioned one's
#
#   bash bench/sink-partitions.sh                          (from the repo root)
#   RECORDS=100000 ROUNDS=1 bash bench/sink-partitions.sh  smoke run
#
# Knobs: RECORDS (default 1000000), DEVICES (default 50), ROUNDS (default 3: the two runs take
# turns in each round, medians are reported), BARGE (a barge binary instead of `cargo build
# --release`), BENCH_KEEP=1, BENCH_TIMEOUT (see bench/lib.sh).
#
# The records: JSON objects of about 150 bytes (bigint id, device text, numeric(12,2) amount,
# timestamptz, jsonb tags) in 4 files, written once before anything is timed. Both runs read the
# same files; their Parquet files are read back with pyarrow and the rows counted, and the
# partitioned run's files are checked to hold only their partition's device.
# Results: printed, and appended to bench/results/sink-partitions.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RECORDS=${RECORDS:-1000000}
DEVICES=${DEVICES:-50}
ROUNDS=${ROUNDS:-3}

bench_init sink-partitions
bench_barge
[ -n "$BARGE_NA" ] && die "barge: $BARGE_NA"
bench_tools

log "writing $RECORDS records"
mkdir -p "$WORK/in"
"$PY" - "$RECORDS" "$DEVICES" "$WORK/in" <<'PYEOF'
import json, sys
n, devices, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
files = [open(f"{out}/part-{i}.jsonl", "w") for i in range(4)]
for i in range(n):
    r = {"id": i, "device": f"dev-{i % devices:03d}", "amount": f"{i * 7919 % 1000000 / 100:.2f}",
         "at": f"2026-01-01T{(i // 1000) % 24:02d}:00:00Z", "tags": {"k": i % 7}}
    files[i % 4].write(json.dumps(r) + "\n")
PYEOF
cat > "$WORK/t.sql" <<'SQL'
CREATE TABLE readings (id bigint, device text, amount numeric(12,2), at timestamptz, tags jsonb);
SQL

# rows_in DIR [CHECK]: Parquet rows under DIR; with CHECK, fails if a file holds another device.
rows_in() {
    "$PY" - "$@" <<'PYEOF'
import os, sys, urllib.parse, pyarrow.parquet as pq
root, n = sys.argv[1], 0
for d, _, names in os.walk(root):
    for f in names:
        t = pq.read_table(os.path.join(d, f), columns=["device"])
        n += t.num_rows
        if len(sys.argv) > 2:
            seg = [s for s in d.split("/") if s.startswith("device=")][0][len("device="):]
            assert set(t.column("device").to_pylist()) == {urllib.parse.unquote(seg)}, (d, f)
print(n)
PYEOF
}

record() { # TOOL GOT NOTE
    if [ "$M_RC" != 0 ]; then bench_record "$1" "n/a ($(failure_reason "$1"))" "$RECORDS" "$3"
    elif [ "$2" != "$RECORDS" ]; then bench_record "$1" "n/a (read back $2 rows, not $RECORDS)" "$RECORDS" "$3"
    else bench_record "$1" ok "$RECORDS" "$3"; fi
}

for r in $(seq "$ROUNDS"); do
    log "round $r of $ROUNDS"
    rm -rf "$WORK/out" "$WORK/state"
    bench_measure unpartitioned "$BARGE_BIN" migrate "file://$WORK/in" "file://$WORK/out" --schema "$WORK/t.sql" --format parquet --state-dir "$WORK/state"
    record unpartitioned "$(rows_in "$WORK/out" 2>/dev/null || echo 0)" "one buffer; Parquet, snappy"

    rm -rf "$WORK/out" "$WORK/state"
    bench_measure barge "$BARGE_BIN" migrate "file://$WORK/in" "file://$WORK/out" --schema "$WORK/t.sql" --format parquet --state-dir "$WORK/state" \
        --partition-by 'device=!{field:device}/hour=!{timestamp:%Y%m%d%H}'
    record barge "$(rows_in "$WORK/out" check 2>/dev/null || echo 0)" "partitioned: $DEVICES partitions (device), one buffer each; Parquet, snappy"
done

bench_report "JSON lines → file:// Parquet, $RECORDS records, partitioned by device vs not" \
    "records: JSON objects of ~150 bytes in 4 files on local disk, read by barge's files source with --schema" \
    "the partitioned run renders a key per record (a field and the time) and keeps $DEVICES Parquet buffers open"
