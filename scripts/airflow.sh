#!/usr/bin/env bash
# Local Airflow 3 (api-server + scheduler + dag-processor + triggerer, LocalExecutor) on loopback, with its
# metadata DB in the local PostgreSQL. Idempotent.
#   scripts/airflow.sh start|stop|status|env
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PMP_HOME="${PMP_HOME:-$REPO/.pmp}"
RUN="$PMP_HOME/run"
LOGS="$PMP_HOME/logs"
API_PORT="${PMP_AIRFLOW_PORT:-58081}"
PG_PORT="${PMP_PG_PORT:-55432}"
# The metadata database (in the local PostgreSQL): one per Airflow, so that several local Airflows
# (other checkouts, benchmarks) never share run state.
AIRFLOW_DB="${PMP_AIRFLOW_DB:-airflow}"
mkdir -p "$RUN" "$LOGS" "$PMP_HOME/airflow"

log() { echo "[airflow] $*"; }

secret_file="$PMP_HOME/airflow/secret"
[[ -s "$secret_file" ]] || python3 -c 'import secrets; print(secrets.token_hex(32))' > "$secret_file"
SECRET="$(cat "$secret_file")"

airflow_env() {
  cat <<EOF
export AIRFLOW_HOME='$PMP_HOME/airflow'
export AIRFLOW__CORE__DAGS_FOLDER='$REPO/dags'
# plugins/: the pmp plugin registers the daily DAGs' custom deadline reference (pmp.plugin)
export AIRFLOW__CORE__PLUGINS_FOLDER='$REPO/plugins'
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=8
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL='http://127.0.0.1:$API_PORT/execution/'
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN='postgresql+psycopg://pmp:${PMP_PG_PASSWORD:-pmp-local-only}@127.0.0.1:$PG_PORT/$AIRFLOW_DB'
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$API_PORT
export AIRFLOW__API__BASE_URL='http://127.0.0.1:$API_PORT'
export AIRFLOW__API_AUTH__JWT_SECRET='$SECRET'
export AIRFLOW__API__SECRET_KEY='$SECRET'
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=15
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=15
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=2
export AIRFLOW__LOGGING__LOGGING_LEVEL=INFO
export PMP_CATCHUP="\${PMP_CATCHUP:-false}"
export PMP_STAGING_URL="\${PMP_STAGING_URL:-s3://\${PMP_S3_BUCKET:-pmp-staging}/}"
export PATH='$REPO/.venv/bin':"\$PATH"
EOF
}

alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  eval "$(airflow_env)"
  PGPASSWORD="${PMP_PG_PASSWORD:-pmp-local-only}" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U pmp -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$AIRFLOW_DB'" | grep -q 1 \
    || PGPASSWORD="${PMP_PG_PASSWORD:-pmp-local-only}" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U pmp -d postgres \
         -c "CREATE DATABASE \"$AIRFLOW_DB\""
  log "metadata DB migrate ($AIRFLOW_DB)"
  airflow db migrate >"$LOGS/airflow-db.log" 2>&1 || { tail -20 "$LOGS/airflow-db.log"; exit 1; }
  log "pools and connections from airflow_settings.yaml"
  pmp airflow-settings import
  for comp in api-server scheduler dag-processor triggerer; do
    if alive "airflow-$comp"; then log "$comp already running"; continue; fi
    args=("$comp")
    [[ "$comp" == api-server ]] && args+=(--host 127.0.0.1 --port "$API_PORT")
    setsid nohup airflow "${args[@]}" >"$LOGS/airflow-$comp.log" 2>&1 &
    echo $! >"$RUN/airflow-$comp.pid"
    log "$comp started (pid $!, log $LOGS/airflow-$comp.log)"
  done
  for _ in $(seq 1 90); do
    if curl -fs "http://127.0.0.1:$API_PORT/api/v2/monitor/health" >/dev/null 2>&1; then
      log "UI and API at http://127.0.0.1:$API_PORT"; return 0
    fi
    sleep 1
  done
  log "api-server did not answer"; tail -30 "$LOGS/airflow-api-server.log"; exit 1
}

stop() {
  for comp in triggerer dag-processor scheduler api-server; do
    f="$RUN/airflow-$comp.pid"
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      log "$comp stopped"
    fi
    rm -f "$f"
  done
}

status() {
  for comp in api-server scheduler dag-processor triggerer; do
    if alive "airflow-$comp"; then echo "airflow-$comp: running"; else echo "airflow-$comp: stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) airflow_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
