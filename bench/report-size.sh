#!/usr/bin/env bash
# Figures: the size of the HTML assessment report for a large conversion,
# and the time headless Chromium takes to render it.
#   bash bench/report-size.sh [TABLES]        (from the repo root; default 5000 tables)
# Knobs: ROUNDS (default 3; the median is printed), BARGE (a barge binary
# instead of `cargo build`: the page does not depend on the build profile),
# CHROMIUM (default: chromium on PATH; Debian's package).
#
# The schema is bench/gen_mysql_dump.py's mysqldump of TABLES tables (keys,
# foreign keys, enums, unsigned ints, ON UPDATE columns, comments, a few
# INSERTs) plus 20 stored procedures and 20 views, so the report has items
# of every status. The page is converted MySQL -> PostgreSQL with
# `--report report.html`; the Markdown and JSON forms are written too, for
# comparison. Chromium is timed twice per round, each with a fresh profile:
#   load: `--dump-dom`, i.e. parse, style, layout and the filter script run
#         over every item row (the DOM comes back after the load event);
#   paint: `--screenshot` of a 1280x2000 window.
# Both include Chromium's own start (~1 s here), measured alone on an
# empty page and printed beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-5000}
ROUNDS=${ROUNDS:-3}
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 1; }
if [ -z "${BARGE:-}" ]; then
  cargo build -q --bin barge
  BARGE=${CARGO_TARGET_DIR:-target}/debug/barge
fi
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT

python3 bench/gen_mysql_dump.py "$TABLES" > "$WORK/dump.sql"
{
  echo "DELIMITER ;;"
  for i in $(seq 1 20); do
    printf 'CREATE PROCEDURE `refresh_%02d`(IN p INT) BEGIN UPDATE `table_%05d` SET `col_0` = `col_0` WHERE `id` = p; END ;;\n' "$i" "$i"
  done
  echo "DELIMITER ;"
  for i in $(seq 1 20); do
    printf 'CREATE VIEW `v_%02d` AS SELECT `id`, IFNULL(`parent_id`, 0) AS parent FROM `table_%05d` WHERE `id` > 10;\n' "$i" "$i"
  done
} >> "$WORK/dump.sql"
echo "input: $TABLES tables + 20 procedures + 20 views, $(wc -l < "$WORK/dump.sql") lines, $(du -h "$WORK/dump.sql" | cut -f1)"

for fmt in html md json; do
  "$BARGE" -q convert-schema --from mysql --to postgres "$WORK/dump.sql" -o "$WORK/out.sql" --report "$WORK/report.$fmt"
done
python3 - "$WORK/report.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
objects = sum(k["total"] for k in s["by_kind"].values())
auto = sum(k["converted"] + k["warning"] for k in s["by_kind"].values())
print(f"report: {objects} objects, {auto} converted automatically, {s['warnings']} warning items, {s['manual']} manual items")
PY
size() { stat -c %s "$1"; }
mb() { echo "scale=2; $1 / 1000000" | bc; }
grep -o '<p id="summary-text">[^<]*' "$WORK/report.html" | sed 's/.*>/page: /'
echo "sizes: html $(mb "$(size "$WORK/report.html")") MB ($(gzip -c "$WORK/report.html" | wc -c | xargs -I{} sh -c 'echo "scale=2; {} / 1000000" | bc') MB gzipped), md $(mb "$(size "$WORK/report.md")") MB, json $(mb "$(size "$WORK/report.json")") MB"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
chrome() {
  local profile
  profile=$(mktemp -d -p "$WORK")
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1280,2000 "$@" > "$WORK/chrome.out" 2>/dev/null
  rm -rf "$profile"
}
timed() { local t0 t1; t0=$(now); "$@"; t1=$(now); echo "$t1 - $t0" | bc; }
echo '<!DOCTYPE html><title>empty</title>' > "$WORK/empty.html"
: > "$WORK/start"; : > "$WORK/load"; : > "$WORK/paint"
for ((r = 1; r <= ROUNDS; r++)); do
  timed chrome --dump-dom "file://$WORK/empty.html" >> "$WORK/start"
  timed chrome --dump-dom "file://$WORK/report.html" >> "$WORK/load"
  grep -o 'id="shown">[^<]*' "$WORK/chrome.out" | sed 's/id="shown">/  filter script: /' | head -1
  timed chrome --screenshot="$WORK/shot.png" "file://$WORK/report.html" >> "$WORK/paint"
done
echo "chromium (median of $ROUNDS): start alone $(median < "$WORK/start") s; load+script $(median < "$WORK/load") s; screenshot $(median < "$WORK/paint") s"
