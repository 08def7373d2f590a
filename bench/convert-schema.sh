#!/usr/bin/env bash
# Benchmark: convert a 5,000-table mysqldump to PostgreSQL with barge and
# with sqlglot (PyPI) in the same run; prints both times and the ratio.
#   bash bench/convert-schema.sh [TABLES]
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-5000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/barge-target}
TOOLS=${BARGE_TOOLS_DIR:-$HOME/.cache/barge-tools}
PY=${BARGE_TEST_PYTHON:-$TOOLS/venv/bin/python}
if ! "$PY" -c 'import sqlglot' 2>/dev/null; then
  python3 -m venv "$TOOLS/venv" 2>/dev/null || true
  PY=$TOOLS/venv/bin/python
  "$PY" -m pip install -q sqlglot
fi
cargo build --release -q
BARGE=$CARGO_TARGET_DIR/release/barge
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
python3 bench/gen_mysql_dump.py "$TABLES" > "$WORK/dump.sql"
echo "input: $TABLES tables, $(du -h "$WORK/dump.sql" | cut -f1)"

now() { date +%s.%N; }
t0=$(now)
"$BARGE" -q convert-schema --from mysql --to postgres "$WORK/dump.sql" -o "$WORK/barge.sql" --report "$WORK/report.json"
t1=$(now)
"$PY" - "$WORK/dump.sql" "$WORK/sqlglot.sql" <<'PY'
import sys, sqlglot
from sqlglot.errors import ErrorLevel
text = open(sys.argv[1]).read()
out = sqlglot.transpile(text, read="mysql", write="postgres", error_level=ErrorLevel.IGNORE)
open(sys.argv[2], "w").write(";\n".join(out))
PY
t2=$(now)
python3 - "$t0" "$t1" "$t2" "$TABLES" "$(sqlglot_version=$("$PY" -c 'import sqlglot; print(sqlglot.__version__)'); echo "$sqlglot_version")" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:4])
b, s = t1 - t0, t2 - t1
print(f"barge convert-schema : {b:8.2f} s  ({int(sys.argv[4]) / b:,.0f} tables/s)")
print(f"sqlglot {sys.argv[5]:<12} : {s:8.2f} s")
print(f"ratio (sqlglot / barge): {s / b:.1f}x")
PY
