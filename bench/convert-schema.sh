#!/usr/bin/env bash
# Benchmark: convert a 5,000-table mysqldump to PostgreSQL with barge and
# with sqlglot (PyPI) in the same run; prints both times and the ratio, and
# appends them to bench/results/convert-schema.md.
#   bash bench/convert-schema.sh [TABLES]
# Knobs: ROUNDS (default 3): each round runs every tool once, in turn (barge,
# sqlglot, barge, sqlglot, ...), and the ratio is of the medians, so a shared
# machine's load falls on both alike; the 1-minute load average before each
# run is recorded beside it. BARGE (a binary instead of `cargo build
# --release`); BARGE_BEFORE (another barge binary, e.g. main's, timed in the
# same rounds for a before/after figure).
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-5000}
ROUNDS=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/barge-target}
TOOLS=${BARGE_TOOLS_DIR:-$HOME/.cache/barge-tools}
PY=${BARGE_TEST_PYTHON:-$TOOLS/venv/bin/python}
if ! "$PY" -c 'import sqlglot' 2>/dev/null; then
  python3 -m venv "$TOOLS/venv" 2>/dev/null || true
  PY=$TOOLS/venv/bin/python
  "$PY" -m pip install -q sqlglot
fi
if [ -z "${BARGE:-}" ]; then
  cargo build --release -q --bin barge
  BARGE=$CARGO_TARGET_DIR/release/barge
fi
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
python3 bench/gen_mysql_dump.py "$TABLES" > "$WORK/dump.sql"
SIZE=$(du -h "$WORK/dump.sql" | cut -f1)
echo "input: $TABLES tables, $SIZE"
cat > "$WORK/run_sqlglot.py" <<'PY'
import sys, sqlglot
from sqlglot.errors import ErrorLevel
text = open(sys.argv[1]).read()
out = sqlglot.transpile(text, read="mysql", write="postgres", error_level=ErrorLevel.IGNORE)
open(sys.argv[2], "w").write(";\n".join(out))
PY

now() { date +%s.%N; }
# timed NAME CMD...: runs CMD, appends "NAME seconds load1" to $WORK/times
timed() {
  local name=$1 load t0 t1
  shift
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(now)
  "$@"
  t1=$(now)
  echo "$name $(echo "$t1 - $t0" | bc) $load" >> "$WORK/times"
}
barge_run() { "$1" -q convert-schema --from mysql --to postgres "$WORK/dump.sql" -o "$WORK/$2.sql" --report "$WORK/$2.json"; }
for ((r = 1; r <= ROUNDS; r++)); do
  timed barge barge_run "$BARGE" barge
  timed sqlglot "$PY" "$WORK/run_sqlglot.py" "$WORK/dump.sql" "$WORK/sqlglot.sql"
  if [ -n "${BARGE_BEFORE:-}" ]; then
    timed before barge_run "$BARGE_BEFORE" before
  fi
done
if [ -n "${BARGE_BEFORE:-}" ]; then
  cmp -s "$WORK/barge.sql" "$WORK/before.sql" && cmp -s "$WORK/barge.json" "$WORK/before.json" \
    && echo "output and report byte-identical to BARGE_BEFORE's" || echo "output or report DIFFERS from BARGE_BEFORE's"
fi
[ -s bench/results/convert-schema.md ] ||
  printf '# convert-schema benchmark\n\nAppended to by `bash bench/convert-schema.sh` (see the comment at its top).\n\n' > bench/results/convert-schema.md
python3 - "$WORK/times" "$TABLES" "$SIZE" "$("$PY" -c 'import sqlglot; print(sqlglot.__version__)')" \
  "$(git log -1 --format=%h 2>/dev/null || echo unknown)" "$(git status --porcelain -- src dialects | grep -q . && echo ' (with uncommitted changes)')" \
  "${BARGE_BEFORE:+$BARGE_BEFORE}" <<'PY' | tee -a bench/results/convert-schema.md
import collections, datetime, statistics, sys
times, tables, size, sqlglot_version, commit, dirty, before = sys.argv[1:8]
runs = collections.defaultdict(list)
for line in open(times):
    name, secs, load = line.split()
    runs[name].append((float(secs), load))
med = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
label = {"barge": "barge convert-schema", "sqlglot": f"sqlglot {sqlglot_version}", "before": f"barge before ({before})"}
print(f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — {tables} tables ({size}), barge {commit}{dirty}\n")
print(f"`bash bench/convert-schema.sh {tables}`, {len(runs['barge'])} rounds, tools in turn; median wall time, "
      "then every round's time with the 1-minute load average before it.\n")
print("| tool | median s | rounds (load) |\n|---|---:|---|")
for k in runs:
    print(f"| {label[k]} | {med[k]:.2f} | {', '.join(f'{s:.2f} ({l})' for s, l in runs[k])} |")
print(f"\nratio (sqlglot / barge): {med['sqlglot'] / med['barge']:.1f}×" + (f"; barge before → now: {med['before'] / med['barge']:.2f}× faster" if 'before' in med else "") + "\n")
PY
