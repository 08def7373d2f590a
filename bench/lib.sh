#!/usr/bin/env bash
# Shared helpers for the `barge migrate` full-load benchmarks (bench/*-to-pg.sh).
# Source it; do not run it.
#
#   bench_init NAME            temp dir, logs, cleanup trap; sets ROOT, WORK, RESULTS_MD
#   bench_need CMD PKG         apt-get install PKG when CMD is missing
#   pg_start / my_start        private PostgreSQL 15 / MariaDB, loopback and unix socket only,
#                              tuned for bulk load; stopped by the trap
#   bench_tools                the test command's tools (python venv, kinesalite, tansu, …) installed
#                              if missing; sets TOOLS_DIR and PY (its venv's python)
#   EXTRA_PIDS+=(PID)          a server the script started itself: the cleanup trap stops it
#   bench_barge                build barge (release) unless BARGE=path is given; sets BARGE_BIN
#                              or BARGE_NA (why barge cannot run)
#   bench_barge_before SRC TGT the binary BARGE_BEFORE migrates SRC into TGT (a before/after in
#                              the same run); the script defines fresh_target and check_and_record
#   bench_start_cdc SRC TGT STATE  barge migrate --mode full-load-and-cdc in the background (BARGE_PID),
#                              back once replication has started
#   bench_measure LOG CMD...   run CMD under /usr/bin/time; sets M_RC M_WALL M_CPU M_RSS_KB M_SRV_CPU
#   bench_check TOOL DB TABLE ROWS [NOTE]  check the target, then record the last measurement
#   bench_record TOOL STATUS ROWS [NOTE]   one row of the results table, from the last measurement
#   bench_report TITLE         print the table and append it to bench/results/NAME.md
#
# Knobs: BENCH_KEEP=1 keeps the temp dir (data and logs); BENCH_TIMEOUT (seconds per measured
# command, default 3600); BARGE (a barge binary; default: `cargo build --release`);
# PG_BIN (default /usr/lib/postgresql/15/bin).
#
# What is measured: wall time, the client command's user+sys CPU and the peak RSS of its largest
# process (GNU time, all its child processes included), and the CPU the database servers spent
# meanwhile (from /proc: the postmaster with its exited and live backends; mariadbd).

# shellcheck disable=SC2034  # variables are used by the scripts that source this file

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/barge-target}
export DEBIAN_FRONTEND=noninteractive

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- setup and cleanup

bench_init() {
    BENCH_NAME=$1
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    RESULTS_MD=$ROOT/bench/results/$BENCH_NAME.md
    [ "$(id -u)" = 0 ] || die "run as root: PostgreSQL is started through runuser -u postgres, and tools are installed with apt-get"
    WORK=$(mktemp -d "/tmp/barge-bench-$BENCH_NAME.XXXXXX")
    chmod 755 "$WORK"              # user postgres must reach its data dir inside
    mkdir -p "$WORK/log"
    : > "$WORK/results.tsv"
    PG_STARTED=0 MY_PID=
    EXTRA_PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    bench_need /usr/bin/time time
    log "work dir $WORK"
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [ ${#EXTRA_PIDS[@]} -gt 0 ] && kill "${EXTRA_PIDS[@]}" 2>/dev/null
    [ "$PG_STARTED" = 1 ] && pg_stop
    [ -n "$MY_PID" ] && my_stop
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc != 0 ]; then
        log "kept $WORK (logs in $WORK/log)"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}

bench_tools() {
    log "installing the test tools (python venv, kinesalite, tansu) if missing"
    bash "$ROOT/tests/services.sh" install
    TOOLS_DIR=${BARGE_TOOLS_DIR:-$HOME/.cache/barge-tools}
    PY=$TOOLS_DIR/venv/bin/python
}

apt_install() {
    local made_policy=0 rc=0
    # Keep maintainer scripts from starting a distribution server on 0.0.0.0.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
    fi
    apt-get install -y -q "$@" >"$WORK/log/apt.log" 2>&1 </dev/null ||
        { apt-get update -q >>"$WORK/log/apt.log" 2>&1 && apt-get install -y -q "$@" >>"$WORK/log/apt.log" 2>&1 </dev/null; } || rc=$?
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || { tail -n 20 "$WORK/log/apt.log" >&2; die "apt-get install $* failed"; }
}

bench_need() { # CMD PKG
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
        log "installing $2"
        apt_install "$2"
    fi
}

pick_port() {
    python3 - <<'PY'
import random, socket
for _ in range(500):
    p = random.randint(20000, 32000)
    try:
        for host in ("127.0.0.1", "0.0.0.0"):
            s = socket.socket(); s.bind((host, p)); s.close()
    except OSError:
        continue
    print(p); break
else:
    raise SystemExit("no free port")
PY
}

# Fail if PID listens anywhere but loopback.
assert_loopback() { # NAME PID
    local a
    for a in $(ss -ltnpH 2>/dev/null | grep -E "pid=$2," | awk '{print $4}'); do
        case $a in 127.*|"[::1]":*) ;; *) die "$1 listens on $a, not only on loopback" ;; esac
    done
}

rand_pw() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# ---------------------------------------------------------------- PostgreSQL

# Starts PostgreSQL 15 on a unix socket in $WORK/pgsock and on 127.0.0.1:$PGPORT (password
# $PGPW for TCP; the socket trusts). Exports PGHOST/PGPORT/PGUSER, so psql, pgbench, createdb
# and dropdb reach it with no arguments.
pg_start() {
    bench_need "$PG_BIN/postgres" postgresql-15
    bench_need psql postgresql-client-15
    bench_need runuser util-linux
    bench_need ss iproute2
    PGDATA_DIR=$WORK/pg/data PGSOCK=$WORK/pgsock PGPW=$(rand_pw)
    mkdir -p "$WORK/pg" "$PGSOCK"
    chown postgres: "$WORK/pg" "$PGSOCK"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >"$WORK/log/initdb.log" 2>&1 \
        || { cat "$WORK/log/initdb.log" >&2; die "initdb failed"; }
    local attempt
    for attempt in 1 2 3; do
        PGPORT=$(pick_port)
        cat >> "$PGDATA_DIR/postgresql.conf" <<EOF

# ---- bench/lib.sh: private, loopback only, tuned for bulk load (durability off)
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGSOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = ${PG_WAL_LEVEL:-minimal}
max_wal_senders = ${PG_WAL_SENDERS:-0}
${PG_EXTRA_CONF:-}
shared_buffers = 512MB
maintenance_work_mem = 512MB
# fewer checkpoints and no autovacuum in the middle of a measured run
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off
EOF
        if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/pg/server.log" -w -t 120 start \
            >"$WORK/log/pg_ctl.log" 2>&1; then
            PG_STARTED=1
            break
        fi
        grep -qi 'in use' "$WORK/pg/server.log" || { tail -n 20 "$WORK/pg/server.log" >&2; die "PostgreSQL did not start"; }
        log "port $PGPORT taken; trying another"
    done
    [ "$PG_STARTED" = 1 ] || die "PostgreSQL did not start"
    PG_PID=$(head -n 1 "$PGDATA_DIR/postmaster.pid")
    assert_loopback postgres "$PG_PID"
    export PGHOST=$PGSOCK PGPORT PGUSER=postgres
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER ROLE postgres PASSWORD '$PGPW'" >/dev/null
    log "PostgreSQL $(pg_version) on $PGSOCK and 127.0.0.1:$PGPORT"
}

pg_stop() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
    PG_STARTED=0
}

pg_version() { "$PG_BIN/postgres" --version | awk '{print $3}'; }

# The URL barge takes for database DB, over the unix socket.
pg_url() { echo "postgres://postgres@localhost:$PGPORT/$1?host=$PGSOCK&sslmode=disable"; }

# pgbench_accounts at pgbench scale SCALE (100k rows each) in DB, the other
# pgbench tables dropped.
pgbench_accounts() { # DB SCALE
    pgbench -i -q -s "$2" "$1" >"$WORK/log/pgbench-init-$1.log" 2>&1 || { tail "$WORK/log/pgbench-init-$1.log" >&2; die "pgbench -i failed"; }
    pgq "$1" "DROP TABLE pgbench_branches, pgbench_tellers, pgbench_history" >/dev/null
}

pg_recreate_db() { # DB
    PGOPTIONS="-c client_min_messages=warning" dropdb --if-exists "$1"
    createdb "$1"
}

# psql -At on database DB
pgq() { local db=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$*"; }

# Rows of TABLE in DB, wherever a tool put it (pgloader puts a MySQL database's tables in a schema
# named after it); "missing" if no schema has it.
pg_count() { # DB TABLE
    local q
    q=$(pgq "$1" "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
                 WHERE table_name = '$2' AND table_schema NOT IN ('pg_catalog', 'information_schema')
                 ORDER BY table_schema = 'public' DESC LIMIT 1")
    if [ -z "$q" ]; then echo missing; else pgq "$1" "SELECT count(*) FROM $q"; fi
}

# "pk" if TABLE in DB has a primary key, else "no pk"
pg_pk() { # DB TABLE
    local n
    n=$(pgq "$1" "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                  WHERE c.relname = '$2' AND i.indisprimary")
    if [ "$n" -gt 0 ]; then echo pk; else echo "no pk"; fi
}

# ---------------------------------------------------------------- MariaDB

# Starts MariaDB on a unix socket and 127.0.0.1:$MYPORT; user `bench` with password $MYPW.
# MY=(mariadb client args as root over the socket). MY_EXTRA_ARGS: more server options, split on
# spaces, after the defaults (which they override: --log-bin=... turns the binary log back on).
my_start() {
    export PATH=$PATH:/usr/sbin
    bench_need mariadbd mariadb-server
    bench_need mariadb mariadb-client
    bench_need ss iproute2
    local base=$WORK/my attempt i
    mkdir -p "$base/data" "$base/tmp"
    MYSOCK=$base/mysqld.sock MYPW=$(rand_pw)
    mariadb-install-db --no-defaults --user=root --datadir="$base/data" --skip-test-db \
        --auth-root-authentication-method=socket --skip-name-resolve >"$WORK/log/mariadb-install.log" 2>&1 \
        || { tail -n 20 "$WORK/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    for attempt in 1 2 3; do
        MYPORT=$(pick_port)
        setsid mariadbd --no-defaults --user=root --datadir="$base/data" --tmpdir="$base/tmp" \
            --pid-file="$base/mariadbd.pid" --socket="$MYSOCK" --bind-address=127.0.0.1 --port="$MYPORT" \
            --local-infile=1 --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=512M \
            --skip-log-bin --skip-name-resolve --character-set-server=utf8mb4 \
            --collation-server=utf8mb4_general_ci ${MY_EXTRA_ARGS:-} >>"$base/server.log" 2>&1 </dev/null &
        MY_PID=$!
        for ((i = 0; i < 1200; i++)); do
            mariadb-admin --no-defaults -S "$MYSOCK" -u root --connect-timeout=2 ping >/dev/null 2>&1 && break
            kill -0 "$MY_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$MY_PID" 2>/dev/null && mariadb-admin --no-defaults -S "$MYSOCK" -u root ping >/dev/null 2>&1; then
            break
        fi
        kill "$MY_PID" 2>/dev/null; wait "$MY_PID" 2>/dev/null; MY_PID=
        grep -qi 'in use' "$base/server.log" || { tail -n 20 "$base/server.log" >&2; die "MariaDB did not start"; }
        log "port $MYPORT taken; trying another"
    done
    [ -n "$MY_PID" ] || die "MariaDB did not start"
    assert_loopback mariadb "$MY_PID"
    MY=(mariadb --no-defaults --default-character-set=utf8mb4 -S "$MYSOCK" -u root)
    local drops
    drops=$("${MY[@]}" -N -B -e "SELECT CONCAT('DROP USER ''', User, '''@''', Host, ''';') FROM mysql.user WHERE User=''")
    # Anonymous users make TCP logins of other users from 127.0.0.1 fail with "Access denied".
    "${MY[@]}" <<EOF
$drops
CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY '$MYPW';
CREATE USER 'bench'@'localhost' IDENTIFIED BY '$MYPW';
GRANT ALL PRIVILEGES ON *.* TO 'bench'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'bench'@'localhost';
EOF
    log "MariaDB $(my_version) on $MYSOCK and 127.0.0.1:$MYPORT"
}

my_stop() {
    mariadb-admin --no-defaults -S "$MYSOCK" -u root shutdown >/dev/null 2>&1 || kill "$MY_PID" 2>/dev/null
    local i
    for ((i = 0; i < 300; i++)); do kill -0 "$MY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MY_PID" 2>/dev/null && kill -KILL "$MY_PID" 2>/dev/null
    MY_PID=
}

my_version() { mariadbd --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+-MariaDB' | head -n 1; }

# ---------------------------------------------------------------- barge

bench_barge() {
    BARGE_BIN='' BARGE_NA=''
    if [ -n "${BARGE:-}" ]; then
        BARGE_BIN=$BARGE
    else
        bench_need cargo cargo
        log "cargo build --release (log: $WORK/log/cargo-build.log)"
        if (cd "$ROOT" && cargo build --release) >"$WORK/log/cargo-build.log" 2>&1; then
            BARGE_BIN=$CARGO_TARGET_DIR/release/barge
        else
            BARGE_NA="build failed"
            return 0
        fi
    fi
    [ -x "$BARGE_BIN" ] || { BARGE_NA="no binary at $BARGE_BIN"; BARGE_BIN=; }
}

BARGE_COMMIT=$(git -C "$(dirname "${BASH_SOURCE[0]}")" log -1 --format=%h 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- measuring

# CPU seconds (user+sys) spent so far by the database servers this benchmark started.
server_cpu() {
    local tck total=0 p
    tck=$(getconf CLK_TCK)
    if [ "$PG_STARTED" = 1 ]; then
        # postmaster: its own time plus its exited children's (cutime, cstime); then live children
        total=$(sed 's/^.*) //' "/proc/$PG_PID/stat" | awk '{print $12 + $13 + $14 + $15}')
        for p in $(pgrep -P "$PG_PID"); do
            total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
        done
    fi
    if [ -n "$MY_PID" ]; then
        total=$((total + $(sed 's/^.*) //' "/proc/$MY_PID/stat" | awk '{print $12 + $13}')))
    fi
    awk -v t="$total" -v k="$tck" 'BEGIN{printf "%.2f", t / k}'
}

# bench_measure LOG CMD...: run CMD (output to $WORK/log/LOG.log); never fails.
bench_measure() {
    local name=$1 before after
    shift
    sync
    M_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    before=$(server_cpu)
    M_RC=0
    timeout --kill-after=30 "${BENCH_TIMEOUT:-3600}" \
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.out" "$@" >"$WORK/log/$name.log" 2>&1 </dev/null || M_RC=$?
    after=$(server_cpu)
    M_WALL='' M_CPU='' M_RSS_KB=''
    if [ -s "$WORK/time.out" ]; then
        # GNU time writes "Command exited with non-zero status N" first when the command fails
        read -r M_WALL user sys M_RSS_KB < <(tail -n 1 "$WORK/time.out")
        M_CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')
    fi
    M_SRV_CPU=$(awk -v a="$before" -v b="$after" 'BEGIN{printf "%.2f", b - a}')
    rm -f "$WORK/time.out"
    if [ $M_RC = 0 ]; then
        log "$name: ${M_WALL}s wall, ${M_CPU}s client CPU, ${M_SRV_CPU}s server CPU, $((M_RSS_KB / 1024)) MiB peak RSS"
    else
        log "$name: exit $M_RC after ${M_WALL:-?}s (log: $WORK/log/$name.log)"
        tail -n 5 "$WORK/log/$name.log" | sed 's/^/    /' >&2
    fi
}

# Why the last measured command failed, in a few words for the table.
failure_reason() { # LOG
    local last
    [ "$M_RC" = 124 ] && { echo "timed out after ${BENCH_TIMEOUT:-3600}s"; return; }
    last=$(grep -v '^\s*$' "$WORK/log/$1.log" | grep -iE 'error|fatal|not implemented|exhausted' | head -n 1)
    [ -n "$last" ] || last=$(grep -v '^\s*$' "$WORK/log/$1.log" | tail -n 1)
    last=$(printf '%s' "$last" | tr -d '\r' | tr '|\t' '/ ' | cut -c1-100)
    echo "exit $M_RC: $last"
}

bench_record() { # TOOL STATUS ROWS [NOTE]
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "${M_WALL:-}" "${M_CPU:-}" "${M_SRV_CPU:-}" \
        "${M_RSS_KB:-}" "$3" "${4:-}" "${M_LOAD:-}" >> "$WORK/results.tsv"
}

# bench_record_na TOOL REASON: a row with no figures
bench_record_na() {
    printf '%s\tn/a (%s)\t\t\t\t\t\t\n' "$1" "$2" >> "$WORK/results.tsv"
}

# A freshly created, empty database DB, after a checkpoint, so no tool pays for the last one's writes.
pg_fresh_db() { # DB
    pg_recreate_db "$1"
    pgq postgres CHECKPOINT >/dev/null
}

# bench_check TOOL DB TABLE ROWS [NOTE]: record the last measurement; the time counts only if
# TABLE in DB has ROWS rows. A missing primary key is written in the notes.
bench_check() {
    local tool=$1 db=$2 table=$3 rows=$4 note=${5:-} n pk
    if [ "$M_RC" != 0 ]; then
        bench_record "$tool" "n/a ($(failure_reason "$tool"))" "$rows" "$note"
        return
    fi
    n=$(pg_count "$db" "$table")
    pk=$(pg_pk "$db" "$table" 2>/dev/null || echo "no pk")
    if [ "$n" != "$rows" ]; then
        bench_record "$tool" "n/a (target has $n rows, not $rows)" "$rows" "$note"
    elif [ "$pk" != pk ]; then
        bench_record "$tool" ok "$rows" "${note:+$note; }NO primary key on the target"
    else
        bench_record "$tool" ok "$rows" "$note"
    fi
}

pgloader_version() { pgloader --version | awk 'NR==1{print $3}' | tr -d '"'; }

# ---------------------------------------------------------------- report

# bench_append HEADING: prints the Markdown on stdin and appends it to RESULTS_MD, which a
# new file starts with HEADING.
bench_append() {
    local text
    text=$(cat)
    printf '%s\n' "$text"
    mkdir -p "$(dirname "$RESULTS_MD")"
    [ -s "$RESULTS_MD" ] || printf '%s\n\n' "$1" > "$RESULTS_MD"
    printf '%s\n' "$text" >> "$RESULTS_MD"
    log "appended to ${RESULTS_MD#"$ROOT"/}"
}

# bench_report TITLE SETUP_LINE...: print the table; append it, with the date and machine, to RESULTS_MD.
# BENCH_AIMS="tool=factor ...": the aims, as barge's speed ÷ that tool's; each is reported met or not.
bench_report() {
    local title=$1
    shift
    python3 - "$WORK/results.tsv" "$title" "$BARGE_COMMIT" "${BENCH_AIMS:-}" "$@" <<'EOF' |
import datetime, os, platform, statistics, sys
tsv, title, commit, aims = sys.argv[1:5]
setup = sys.argv[5:]
# One line per measured command: tool, status, wall, cpu, server cpu, rss KiB, rows, note, load
# (1, 5, 15 min before it ran). With ROUNDS > 1 a tool has one line per round; it is reported by
# its median wall time, with every round's time and load in the notes.
rows = [(l.rstrip("\n").split("\t") + [""] * 9)[:9] for l in open(tsv) if l.strip()]
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal:")) / 1024 / 1024
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
load = open("/proc/loadavg").read().split()[:3]
tools = list(dict.fromkeys(r[0] for r in rows))
ok = {t: [r for r in rows if r[0] == t and r[1] == "ok"] for t in tools}
failed = {t: [r for r in rows if r[0] == t and r[1] != "ok"] for t in tools}

def med(rs, i):
    return statistics.median(float(r[i]) for r in rs)

barge = med(ok["barge"], 2) if ok.get("barge") else None

def f(x, nd=1):
    return "" if x == "" else f"{float(x):.{nd}f}"

rounds = max((len(ok[t]) + len(failed[t]) for t in tools), default=1)
lines = [f"## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — {title}", "",
         f"Machine: {os.cpu_count()} cores ({cpu}), {mem:.1f} GiB RAM, load average {' '.join(load)} at the start "
         f"of the report. barge commit {commit}.", ""]
lines += [f"- {s}" for s in setup]
if rounds > 1:
    lines.append(f"- {rounds} rounds, the tools taking turns within each round; each figure is the median over the "
                 "rounds, and the notes give every round's wall time with the 1-minute load average before it.")
lines += ["",
          "| tool | result | wall s | rows/s | client CPU s | server CPU s | peak RSS MiB | barge's speed ÷ this tool's | notes |",
          "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for tool in tools:
    for r in failed[tool]:
        lines.append(f"| {tool} | {r[1].replace('|', chr(92) + '|')} | | | | | | | {r[7].replace('|', chr(92) + '|')} |")
    rs = ok[tool]
    if not rs:
        continue
    wall, nrows = med(rs, 2), int(rs[0][6])
    rate = f"{nrows / wall:,.0f}" if wall > 0 else ""
    ratio = f"{wall / barge:.2f}×" if barge else "n/a"
    rss = max(int(r[5]) for r in rs)
    note = rs[0][7].replace("|", "\\|")
    if len(rs) > 1 or rs[0][8]:
        each = ", ".join(f"{float(r[2]):.2f} s" + (f" (load {r[8].split()[0]})" if r[8] else "") for r in rs)
        note = f"{note}; {'rounds' if len(rs) > 1 else 'run'}: {each}" if note else each
    lines.append(f"| {tool} | ok | {wall:.2f} | {rate} | {med(rs, 3):.2f} | {med(rs, 4):.2f} | {rss / 1024:.0f} | {ratio} | {note} |")
for aim in aims.split():
    tool, factor = aim.split("=")
    if barge is None:
        verdict = "not measured: barge did not run"
    elif not ok.get(tool):
        verdict = f"not measured: {tool} did not run"
    else:
        got = med(ok[tool], 2) / barge
        verdict = f"{got:.2f}× — {'met' if got >= float(factor) else 'NOT met'}"
    lines.append(f"\nAim: barge ≥ {factor}× {tool}'s speed: {verdict}.")
lines += ["",
          "wall = start to finish of the command (schema, data and keys). client CPU = user+sys of the",
          "tool's processes. server CPU = what the PostgreSQL (and MariaDB) server processes spent meanwhile.",
          "peak RSS = the largest single client process. The ratio is this tool's wall time ÷ barge's: above 1",
          "means barge is faster.", ""]
print("\n".join(lines))
EOF
    bench_append "# $BENCH_NAME full-load benchmark

Appended to by \`bash bench/$BENCH_NAME.sh\` (see the comment at its top). Each section is one run; the tools in a section ran one after another on the same machine and data."
}

# A before/after in the same run: an older barge binary (BARGE_BEFORE) does the same full load.
bench_barge_before() {
    if [ ! -x "${BARGE_BEFORE:-}" ]; then
        bench_record_na barge-before "set BARGE_BEFORE to an older barge binary"
        return
    fi
    fresh_target
    bench_measure barge-before "$BARGE_BEFORE" migrate "$1" "$2"
    check_and_record barge-before "an older barge ($("$BARGE_BEFORE" --version 2>/dev/null | head -1)), full load"
}

# The full load, then replication, in the background (BARGE_PID); returns once barge replicates.
bench_start_cdc() { # SRC TGT STATE
    log "full load, then replication"
    "$BARGE_BIN" -v migrate "$1" "$2" --mode full-load-and-cdc --state-dir "$3" >"$WORK/log/barge-cdc.log" 2>&1 &
    BARGE_PID=$!
    for _ in $(seq 1 600); do
        [ -f "$3/cdc-status.json" ] && break
        kill -0 $BARGE_PID 2>/dev/null || { cat "$WORK/log/barge-cdc.log" >&2; die "barge stopped"; }
        sleep 0.1
    done
    [ -f "$3/cdc-status.json" ] || die "replication did not start"
}
