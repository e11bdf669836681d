#!/usr/bin/env bash
# The main job, end to end on local defaults:
#   set-up -> PostgreSQL+TimescaleDB and SeaweedFS S3 -> ISO simulator -> Airflow (api-server,
#   scheduler, dag-processor) -> `airflow backfill create` for three ERCOT market days (incl. the
#   2024-11-03 fall-back day) for every ERCOT daily DAG, plus real-time runs -> catalog -> stop.
#
#   scripts/demo.sh [--keep] [--from 2024-11-02] [--to 2024-11-04] [--iso ISO[,ISO...]|all]
#
# --keep leaves Airflow (UI at http://127.0.0.1:58081), the simulator and the services running.
# --iso picks the ISO(s) whose DAGs run (a package name under include/pmp/isos, default ercot; "all"
# runs every ISO, which takes longer).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
KEEP=0
FROM=2024-11-02
TO=2024-11-04
ISOS=ercot
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) KEEP=1 ;;
    --from) FROM="$2"; shift ;;
    --to) TO="$2"; shift ;;
    --iso) ISOS="$2"; shift ;;
    *) echo "usage: $0 [--keep] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--iso ISO|all]" >&2; exit 2 ;;
  esac
  shift
done
PMP_HOME="${PMP_HOME:-$REPO/.pmp}"
SIM_PORT="${PMP_SIM_PORT:-58080}"
# one ISO: three market days of its daily DAGs in well under 25 minutes; every ISO (54 daily DAGs,
# 216 runs with the scheduled ones) takes about an hour on two cores (history's CPU-heavy steps
# go one at a time through the 1-slot pmp_history pool, so real time keeps a core)
TIMEOUT="${PMP_DEMO_TIMEOUT:-$([[ $ISOS == all ]] && echo 5400 || echo 1500)}"
log() { echo "[demo] $*"; }

scripts/setup.sh
started=()  # services this demo starts (and stops again); ones already running are left alone
for svc in postgres s3; do
  scripts/services.sh status "$svc" | grep -q running || started+=("$svc")
done
scripts/services.sh start
eval "$(scripts/services.sh env)"
eval "$(scripts/airflow.sh env)"
# This Airflow builds only the DAGs the demo runs (the factory's PMP_DAGS selection).
export PMP_DAGS="$(if [[ $ISOS == all ]]; then echo '*'; else echo "$ISOS" | sed 's/\([a-z]*\)/\1_*/g'; fi)"
export PMP_STAGING_URL="s3://${PMP_S3_BUCKET:-pmp-staging}/"
# A watched real-time run waits in the triggerer for its next document, at most this long (the
# deployment default is 10 minutes); the demo waits for its manual real-time runs, which queue
# behind a scheduled run that may be waiting too, so it shortens the wait.
export PMP_REALTIME_WAIT_MINUTES="${PMP_REALTIME_WAIT_MINUTES:-3}"

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
  for svc in "${started[@]}"; do scripts/services.sh stop "$svc" || true; done
}
trap cleanup EXIT

log "warehouse schema"
pmp db migrate

if ! curl -fs "http://127.0.0.1:$SIM_PORT/__sim/faults" >/dev/null 2>&1; then
  log "ISO simulator on 127.0.0.1:$SIM_PORT"
  setsid nohup pmp simulate --host 127.0.0.1 --port "$SIM_PORT" >"$PMP_HOME/logs/simulator.log" 2>&1 &
  echo $! >"$PMP_HOME/run/simulator.pid"
  for _ in $(seq 1 30); do curl -fs "http://127.0.0.1:$SIM_PORT/__sim/faults" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fs "http://127.0.0.1:$SIM_PORT/__sim/faults" >/dev/null 2>&1 \
    || { tail -20 "$PMP_HOME/logs/simulator.log"; log "the ISO simulator did not start"; exit 1; }
fi

# A fresh Airflow metadata DB per demo run (the warehouse itself is kept): no stale runs or
# backfills from an earlier, interrupted demo.
scripts/airflow.sh stop >/dev/null 2>&1 || true
log "resetting the demo's Airflow metadata DB"
airflow db reset --yes >"$PMP_HOME/logs/airflow-db-reset.log" 2>&1 \
  || { tail -20 "$PMP_HOME/logs/airflow-db-reset.log"; exit 1; }
scripts/airflow.sh start

dag_ids() {  # daily DAGs of datasets that exist on $FROM, and real-time DAGs, of the chosen ISOs
  python - "$1" "$ISOS" "$FROM" <<'PY' 2>/dev/null | grep -E '^[a-z0-9_]+$'
import sys
from datetime import date
from pmp import registry
kind, isos, first = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3])
for s in registry.datasets():
    if isos != "all" and s.iso not in isos.split(","):
        continue
    if kind == "daily" and s.first_date <= first:
        print(s.daily_dag_id)
    if kind == "realtime" and s.realtime:
        print(s.realtime_dag_id)
PY
}
mapfile -t DAILY < <(dag_ids daily)
mapfile -t REALTIME < <(dag_ids realtime)
[[ ${#DAILY[@]} -gt 0 ]] || { log "no DAGs for --iso $ISOS"; exit 2; }

log "waiting for the dag-processor to serialize ${#DAILY[@]} daily and ${#REALTIME[@]} real-time DAGs"
ok=0
for _ in $(seq 1 150); do
  listed=$(airflow dags list -o plain 2>/dev/null | awk '{print $1}' | grep -cE '_(daily|realtime)$' || true)
  if [[ "$listed" -ge $(( ${#DAILY[@]} + ${#REALTIME[@]} )) ]]; then ok=1; break; fi
  sleep 2
done
[[ $ok == 1 ]] || { log "the dag-processor did not serialize the DAGs (see $PMP_HOME/logs/airflow-dag-processor.log)"; exit 1; }

for d in "${DAILY[@]}" "${REALTIME[@]}"; do airflow dags unpause "$d" >/dev/null; done

from_ts="${FROM}T00:00:00"
to_ts="${TO}T12:00:00"  # inclusive; the local midnight of $TO is 05:00-06:00 UTC
for d in "${DAILY[@]}"; do
  log "airflow backfill create --dag-id $d --from-date $from_ts --to-date $to_ts"
  airflow backfill create --dag-id "$d" --from-date "$from_ts" --to-date "$to_ts" \
    --max-active-runs 2 --reprocess-behavior completed >/dev/null
done
# Each manual run gets a logical date (now): Airflow 3.3's scheduler orders the task instances
# that wait for a pool slot by priority, then by their run's logical date, and a run without one
# sorts last - behind every scheduled run of the ISO's other real-time DAGs. Seen here: a MISO
# manual run waited for its pool slot until its 30-minute run timeout failed it.
for d in "${REALTIME[@]}"; do
  now="$(date -u +%Y-%m-%dT%H:%M:%S+00:00)"
  log "airflow dags trigger $d --logical-date $now"
  airflow dags trigger "$d" --logical-date "$now" >/dev/null
done

log "waiting for the backfill and real-time runs (timeout ${TIMEOUT}s)"
deadline=$(( $(date +%s) + TIMEOUT ))
# Run states straight from the Airflow metadata DB (the CLI's JSON output is mixed with log lines).
python - "$deadline" "${PMP_AIRFLOW_DB_URL/+psycopg/}" "${DAILY[@]}" -- "${REALTIME[@]}" <<'PY'
import sys, time
import psycopg
deadline, dsn = int(sys.argv[1]), sys.argv[2]
rest = sys.argv[3:]; sep = rest.index("--")
daily, realtime = rest[:sep], rest[sep + 1:]
# the demo's runs: the backfills of the daily DAGs and the manual triggers of the real-time DAGs
query = """SELECT dag_id, run_id, state FROM dag_run
           WHERE (dag_id = ANY(%s) AND run_type = 'backfill') OR (dag_id = ANY(%s) AND run_type = 'manual')
           ORDER BY dag_id, run_id"""
while True:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(query, (daily, realtime)).fetchall()
    by_dag = {d: [] for d in daily + realtime}
    for dag_id, run_id, state in rows:
        by_dag[dag_id].append((run_id, state))
    failed = [f"{d} {r}" for d, rs in by_dag.items() for r, s in rs if s == "failed"]
    pending = sum(1 for rs in by_dag.values() for _, s in rs if s in ("queued", "running"))
    pending += sum(1 for rs in by_dag.values() if not rs)
    summary = [f"{d}: " + ", ".join(f"{r.split('__')[-1][:10]} {s}" for r, s in rs) for d, rs in by_dag.items()]
    if failed:
        print("[demo] FAILED runs: " + "; ".join(failed)); sys.exit(1)
    if not pending:
        print("[demo] all runs succeeded"); print("\n".join("  " + s for s in summary)); sys.exit(0)
    if time.time() > deadline:
        print("[demo] timeout; states:\n" + "\n".join(summary)); sys.exit(1)
    time.sleep(10)
PY

log "catalog"
# every dataset's extent, then the demo's market days one by one
for iso in $(if [[ $ISOS == all ]]; then python -c "from pmp import registry; print(*registry.isos())" 2>/dev/null; else echo "${ISOS//,/ }"; fi); do
  pmp catalog --iso "$iso"
  pmp catalog --iso "$iso" --days --start "$FROM" --end "$TO"
done

log "real-time runs during the backfill (issue 12: none waits behind history)"
# Every real-time run of the demo (the manual triggers, the */5 schedule), per ISO: how long after
# the run started its task did (on a worker, or deferred in the triggerer: waiting for a pool or an
# executor slot either way - the wait history could cause; not from the tick, as a watched DAG's
# next run starts when the one waiting for its document ends), how long a watched task then
# waited in the triggerer for a document (from its start to when it was queued for a worker), and
# how long the worker part took.
python - "${PMP_AIRFLOW_DB_URL/+psycopg/}" "${REALTIME[@]}" <<'PY'
import statistics, sys
import psycopg
dsn, realtime = sys.argv[1], sys.argv[2:]
query = """SELECT split_part(r.dag_id, '_', 1), r.run_type, r.state,
                  extract(epoch FROM ti.start_date - r.start_date),
                  extract(epoch FROM greatest(ti.queued_dttm, ti.start_date) - ti.start_date),
                  extract(epoch FROM ti.end_date - greatest(ti.queued_dttm, ti.start_date))
           FROM dag_run r JOIN task_instance ti ON ti.dag_id = r.dag_id AND ti.run_id = r.run_id
           WHERE r.dag_id = ANY(%s) AND ti.start_date IS NOT NULL AND ti.end_date IS NOT NULL"""
with psycopg.connect(dsn) as conn:
    rows = conn.execute(query, (realtime,)).fetchall()
def fmt(xs):
    xs = sorted(float(x) for x in xs)
    return f"p50 {statistics.median(xs):.0f} s, max {xs[-1]:.0f} s" if xs else "-"
for iso in sorted({r[0] for r in rows}):
    mine = [r for r in rows if r[0] == iso]
    kinds = ", ".join(f"{n} {k}" for k in ("manual", "scheduled")
                      if (n := sum(1 for r in mine if r[1] == k)))
    waited = [r[4] for r in mine if r[4] > 1]
    print(f"[demo] {iso}: {len(mine)} real-time runs ({kinds}); task started after its run did: "
          f"{fmt(r[3] for r in mine)}; {len(waited)} waited in the triggerer for a document "
          f"({fmt(waited)}); worker part took {fmt(r[5] for r in mine)}")
PY
for iso in $(if [[ $ISOS == all ]]; then python -c "from pmp import registry; print(*registry.isos())" 2>/dev/null; else echo "${ISOS//,/ }"; fi); do
  pmp status --realtime --iso "$iso"
done
