#!/usr/bin/env bash
# The main job, end to end on local defaults:
#   set-up -> PostgreSQL+TimescaleDB and SeaweedFS S3 -> ISO simulator -> Airflow (api-server,
#   scheduler, dag-processor) -> `airflow backfill create` for three ERCOT market days (incl. the
#   2024-11-03 fall-back day) for every ERCOT daily DAG, plus real-time runs -> catalog -> stop.
#
#   scripts/demo.sh [--keep] [--from 2024-11-02] [--to 2024-11-04]
#
# --keep leaves Airflow (UI at http://127.0.0.1:58081), the simulator and the services running.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
KEEP=0
FROM=2024-11-02
TO=2024-11-04
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --from) FROM="$2"; shift ;;
    --to) TO="$2"; shift ;;
    *) echo "usage: $0 [--keep] [--from YYYY-MM-DD] [--to YYYY-MM-DD]" >&2; exit 2 ;;
  esac
  shift
done
PMP_HOME="${PMP_HOME:-$REPO/.pmp}"
SIM_PORT="${PMP_SIM_PORT:-58080}"
TIMEOUT="${PMP_DEMO_TIMEOUT:-1500}"
log() { echo "[demo] $*"; }

scripts/setup.sh
scripts/services.sh start
eval "$(scripts/services.sh env)"
eval "$(scripts/airflow.sh env)"
export PMP_STAGING_URL="s3://${PMP_S3_BUCKET:-pmp-staging}/"

cleanup() {
  if [[ $KEEP == 1 ]]; then
    log "kept running: Airflow UI http://127.0.0.1:${AIRFLOW__API__PORT} (no login), simulator :$SIM_PORT"
    log "stop with: scripts/airflow.sh stop; kill \$(cat $PMP_HOME/run/simulator.pid); scripts/services.sh stop"
    return
  fi
  log "stopping what the demo started"
  scripts/airflow.sh stop || true
  [[ -f "$PMP_HOME/run/simulator.pid" ]] && kill "$(cat "$PMP_HOME/run/simulator.pid")" 2>/dev/null || true
  rm -f "$PMP_HOME/run/simulator.pid"
  scripts/services.sh stop || true
}
trap cleanup EXIT

log "warehouse schema"
pmp db migrate

if ! curl -fs "http://127.0.0.1:$SIM_PORT/__sim/faults" >/dev/null 2>&1; then
  log "ISO simulator on 127.0.0.1:$SIM_PORT"
  setsid nohup pmp simulate --host 127.0.0.1 --port "$SIM_PORT" >"$PMP_HOME/logs/simulator.log" 2>&1 &
  echo $! >"$PMP_HOME/run/simulator.pid"
  for _ in $(seq 1 30); do curl -fs "http://127.0.0.1:$SIM_PORT/__sim/faults" >/dev/null 2>&1 && break; sleep 0.5; done
fi

# A fresh Airflow metadata DB per demo run (the warehouse itself is kept): no stale runs or
# backfills from an earlier, interrupted demo.
scripts/airflow.sh stop >/dev/null 2>&1 || true
log "resetting the demo's Airflow metadata DB"
airflow db reset --yes >"$PMP_HOME/logs/airflow-db-reset.log" 2>&1 \
  || { tail -20 "$PMP_HOME/logs/airflow-db-reset.log"; exit 1; }
scripts/airflow.sh start

dag_ids() {  # DAG ids from the registry (log lines filtered out)
  python -c "from pmp import registry; [print(s.$1) for s in registry.datasets('ercot') if '$1' == 'daily_dag_id' or s.realtime]" \
    2>/dev/null | grep -E '^[a-z0-9_]+$'
}
mapfile -t DAILY < <(dag_ids daily_dag_id)
mapfile -t REALTIME < <(dag_ids realtime_dag_id)

log "waiting for the dag-processor to serialize ${#DAILY[@]} daily and ${#REALTIME[@]} real-time DAGs"
for _ in $(seq 1 120); do
  listed=$(airflow dags list -o plain 2>/dev/null | awk '{print $1}' | grep -c '^ercot_.*_\(daily\|realtime\)$' || true)
  [[ "$listed" -ge $(( ${#DAILY[@]} + ${#REALTIME[@]} )) ]] && break
  sleep 2
done

for d in "${DAILY[@]}" "${REALTIME[@]}"; do airflow dags unpause "$d" >/dev/null; done

from_ts="${FROM}T00:00:00"
to_ts="${TO}T12:00:00"  # inclusive; the local midnight of $TO is 05:00-06:00 UTC
for d in "${DAILY[@]}"; do
  log "airflow backfill create --dag-id $d --from-date $from_ts --to-date $to_ts"
  airflow backfill create --dag-id "$d" --from-date "$from_ts" --to-date "$to_ts" \
    --max-active-runs 2 --reprocess-behavior completed >/dev/null
done
for d in "${REALTIME[@]}"; do
  log "airflow dags trigger $d"
  airflow dags trigger "$d" >/dev/null
done

log "waiting for the backfill and real-time runs (timeout ${TIMEOUT}s)"
deadline=$(( $(date +%s) + TIMEOUT ))
python - "$deadline" "${DAILY[@]}" -- "${REALTIME[@]}" <<'PY'
import json, subprocess, sys, time
deadline = int(sys.argv[1]); rest = sys.argv[2:]; sep = rest.index("--")
daily, realtime = rest[:sep], rest[sep + 1:]

def runs(dag_id):
    out = subprocess.run(["airflow", "dags", "list-runs", dag_id, "-o", "json"], capture_output=True, text=True)
    try:
        return json.loads(out.stdout or "[]")
    except json.JSONDecodeError:
        return []

while True:
    pending, failed, summary = 0, [], []
    for d in daily + realtime:
        rs = [r for r in runs(d) if d in realtime or r.get("run_type") == "backfill" or "backfill" in r.get("run_id", "")]
        states = [r["state"] for r in rs]
        summary.append(f"{d}: " + ",".join(sorted(states)))
        pending += sum(s in ("queued", "running") for s in states) + (0 if rs else 1)
        failed += [f"{d} {r['run_id']}" for r in rs if r["state"] == "failed"]
    if failed:
        print("[demo] FAILED runs: " + "; ".join(failed)); sys.exit(1)
    if not pending:
        print("[demo] all runs succeeded"); print("\n".join("  " + s for s in summary)); sys.exit(0)
    if time.time() > deadline:
        print("[demo] timeout; states:\n" + "\n".join(summary)); sys.exit(1)
    time.sleep(10)
PY

log "catalog"
pmp catalog --iso ercot --days
