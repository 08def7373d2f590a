#!/usr/bin/env bash
# The one command that runs every test:
#   installs what is missing, starts the test servers in a temp dir (tests/services.sh),
#   runs `cargo nextest run --no-fail-fast "$@"`, and stops the servers on exit.
#   All integration tests are one binary (tests/main.rs); pick some by module,
#   e.g. `bash tests/run.sh migrate:: cdc_ddl::`.
#
#   BARGE_SKIP_SERVICES=1   start no servers and leave BARGE_TEST_* unset: tests that need a
#                           server fail, naming the variable (useful with a filter, e.g. `convert_schema::`)
#   BARGE_NEXTEST_CMD       replace `cargo nextest run` (e.g. "cargo nextest list")
#   BARGE_KEEP_SERVICES_DIR=1  keep the temp dir (server logs) after the run
#   CARGO_TARGET_DIR        default ~/.cache/barge-target (outside the clone, kept between runs)
set -euo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/barge-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

if ! cargo nextest --version >/dev/null 2>&1 && [ -z "${BARGE_NEXTEST_CMD:-}" ]; then
  echo "[run] installing cargo-nextest" >&2
  cargo install --locked --quiet cargo-nextest
fi

SVC_DIR=
CHILD=
START_FAILED=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  if [ -n "$SVC_DIR" ]; then
    local t0; t0=$(now)
    bash tests/services.sh stop "$SVC_DIR" || true
    echo "[run] services stopped in $(secs "$t0" "$(now)")s" >&2
    if [ "${BARGE_KEEP_SERVICES_DIR:-0}" = 1 ] || [ "$START_FAILED" = 1 ]; then
      echo "[run] kept $SVC_DIR" >&2
    else
      rm -rf "$SVC_DIR"
    fi
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "${BARGE_SKIP_SERVICES:-0}" = 1 ]; then
  echo "[run] BARGE_SKIP_SERVICES=1: no servers; tests that need one fail, naming what is unset" >&2
  unset "${!BARGE_TEST_@}"
else
  t0=$(now)
  bash tests/services.sh install
  t1=$(now)
  echo "[run] install check took $(secs "$t0" "$t1")s" >&2
  SVC_DIR=$(mktemp -d "${TMPDIR:-/tmp}/barge-test.XXXXXX")
  if ! bash tests/services.sh start "$SVC_DIR"; then
    START_FAILED=1
    echo "[run] ERROR: the test services did not start (logs kept in $SVC_DIR)" >&2
    exit 1
  fi
  echo "[run] service start-up took $(secs "$t1" "$(now)")s (dir $SVC_DIR)" >&2
  # shellcheck disable=SC1091
  . "$SVC_DIR/env"
fi

read -r -a nextest <<< "${BARGE_NEXTEST_CMD:-cargo nextest run}"
# Run the test runner as a child and wait for it, so that a SIGTERM/SIGINT sent to this
# script is handled at once (the trap stops the runner, then the servers).
"${nextest[@]}" --no-fail-fast "$@" &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=
exit $rc
