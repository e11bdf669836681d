"""Assets, metrics and lineage through a real local Airflow (tests/live.py): an ERCOT day-ahead load
run by the scheduler records its asset event, the scheduler then runs ``hub_price_summary`` on that
event, the task processes send the pipeline metrics to a StatsD receiver on loopback UDP, and the
OpenLineage provider (file transport) writes each data-moving task's inputs and outputs."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from live import LiveAirflow, scratch_warehouse
from statsd_receiver import StatsdReceiver

from pmp import summary
from pmp.simulator.server import start_simulator
from pmp.timeutil import market_day_bounds

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live-airflow")]

DAILY, REALTIME = "ercot_lmp_dam_daily", "ercot_lmp_rt5m_realtime"
CT = ZoneInfo("America/Chicago")


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _complete(events: list[dict], job: str, run_id: str) -> list[dict]:
    """The COMPLETE events of one task (``dag.task``) in one DAG run (its run id is in the event's
    Airflow facets)."""
    return [e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"] == job
            and run_id in json.dumps(e.get("run", {}))]


def test_load_asset_event_triggers_the_summary_with_metrics_and_lineage(services: dict, staging: str,
                                                                        tmp_path: Path) -> None:
    lineage_file = tmp_path / "openlineage.jsonl"
    today = datetime.now(CT).replace(hour=0, minute=0, second=0, microsecond=0)
    day = (today - timedelta(days=2)).date()  # a manual run at (yesterday 00:01) loads the day before
    with StatsdReceiver() as rx, scratch_warehouse() as (tsdb, warehouse), start_simulator() as sim, \
            LiveAirflow([DAILY, REALTIME, summary.DAG_ID], sim_url=sim.url, connections={"tsdb": tsdb}, env={
                "AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(rx.port), "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
                "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
                "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                    {"type": "file", "log_file_path": str(lineage_file), "append": True}),
                "AIRFLOW__OPENLINEAGE__NAMESPACE": "pmp-test",
            }) as af:
        af.wait_serialized([DAILY, REALTIME, summary.DAG_ID])
        af.unpause(summary.DAG_ID)  # a paused DAG gets no asset-triggered runs
        af.unpause(DAILY, REALTIME)
        run_id = af.trigger(DAILY, logical_date=today - timedelta(days=1) + timedelta(minutes=1))
        run = af.wait_run(DAILY, run_id, timeout=300)
        assert run["state"] == "success", af.diagnose()
        rt_id = af.trigger(REALTIME)
        assert af.wait_run(REALTIME, rt_id, timeout=300)["state"] == "success", af.diagnose()

        # the load's asset event, with what it loaded
        start, end = market_day_bounds(day, "America/Chicago")
        rows = af.sql("SELECT a.name, e.extra, e.id FROM asset_event e JOIN asset a ON a.id = e.asset_id"
                      " WHERE e.source_dag_id = %s AND e.source_run_id = %s", (DAILY, run_id))
        assert len(rows) == 1, rows
        name, extra, event_id = rows[0]
        extra = json.loads(extra) if isinstance(extra, str) else extra
        assert name == "pmp.ercot.lmp_dam" and extra["market_days"] == [day.isoformat()] and extra["rows"] > 0
        assert (extra["interval_start"], extra["interval_end"]) == (start.isoformat(), end.isoformat())

        # the scheduler runs the summary on that event (unpausing also created a scheduled run, whose
        # event may come first): an asset-triggered run consumes ours, or — when ours was recorded
        # while the other's queue entry waited, which Airflow hands to no run — a run started after
        # it summarizes our day from the warehouse (pmp.summary.pending)
        deadline = time.monotonic() + 300
        consumed: list = []
        while time.monotonic() < deadline:
            consumed = af.sql(
                "SELECT r.run_id, r.run_type, r.state FROM dag_run r WHERE r.dag_id = %s"
                " AND r.run_type = 'asset_triggered' AND r.state IN ('success', 'failed') AND ("
                "  EXISTS (SELECT 1 FROM dagrun_asset_event d WHERE d.dag_run_id = r.id AND d.event_id = %s)"
                "  OR r.start_date > (SELECT e.timestamp FROM asset_event e WHERE e.id = %s))",
                (summary.DAG_ID, event_id, event_id))
            if consumed:
                break
            time.sleep(2)
        assert consumed and consumed[0][1:] == ("asset_triggered", "success"), (
            consumed, af.sql("SELECT is_paused, exceeds_max_non_backfill, max_active_runs FROM dag WHERE dag_id = %s",
                             (summary.DAG_ID,)),
            af.sql("SELECT asset_id, created_at FROM asset_dag_run_queue WHERE target_dag_id = %s", (summary.DAG_ID,)),
            af.sql("SELECT run_id, run_type, state, queued_at, start_date, end_date FROM dag_run WHERE dag_id = %s",
                   (summary.DAG_ID,)),
            af.sql("SELECT e.id, e.source_run_id, e.timestamp FROM asset_event e", ()), af.diagnose())
        with psycopg.connect(warehouse) as conn:
            hubs = conn.execute("SELECT location, intervals, lmp_min, lmp_mean, lmp_max FROM hub_price_daily"
                                " WHERE iso = 'ERCOT' AND market = 'DAM' AND market_day = %s", (day,)).fetchall()
        hours = int((end - start).total_seconds() // 3600)
        assert {h[0] for h in hubs} >= {"HB_HOUSTON", "HB_NORTH"}, hubs
        assert all(n == hours and lo <= mean <= hi for _, n, lo, mean, hi in hubs), hubs

        # metrics from the task processes, tagged with ISO and dataset
        tags = {"iso": "ercot", "dataset": "lmp_dam"}
        with psycopg.connect(warehouse) as conn:
            loaded = conn.execute("SELECT count(*) FROM lmp WHERE iso = 'ERCOT' AND market = 'DAM'").fetchone()[0]
        assert sum(rx.values("airflow.pmp.rows_loaded", **tags)) == loaded > 0
        assert sum(rx.values("airflow.pmp.documents_fetched", **tags)) >= 1
        assert sum(rx.values("airflow.pmp.http_requests", status="200", **tags)) >= 1
        lag = rx.values("airflow.pmp.freshness_lag", iso="ercot", dataset="lmp_rt5m")
        assert lag and all(0 <= v < 60 for v in lag), lag  # minutes behind now, right after a real-time run

        # lineage: the ISO document in, the raw object out; raw in, Parquet out; Parquet in, table out
        events = _events(lineage_file)
        fetch = [e for e in _complete(events, f"{DAILY}.fetch", run_id) if e["inputs"]]
        assert fetch, (sorted({e["job"]["name"] for e in events}),
                       [line[:300] for line in af.task_logs(DAILY).splitlines() if "ineage" in line][:30])
        ins = {(d["namespace"], d["name"]) for e in fetch for d in e["inputs"]}
        outs = {(d["namespace"], d["name"]) for e in fetch for d in e["outputs"]}
        assert all(ns == sim.url for ns, _ in ins) and all(n.startswith("/ercot/") for _, n in ins), ins
        bucket = staging.split("/")[2]
        assert outs and all(ns == f"s3://{bucket}" and "raw/ercot/lmp_dam/" in n for ns, n in outs), outs
        (norm,) = _complete(events, f"{DAILY}.normalize", run_id)
        assert {(d["namespace"], d["name"]) for d in norm["inputs"]} == outs
        (parquet,) = norm["outputs"]
        assert parquet["namespace"] == f"s3://{bucket}" and "normalized/ercot/lmp_dam/" in parquet["name"]
        (load,) = _complete(events, f"{DAILY}.load", run_id)
        assert [(d["namespace"], d["name"]) for d in load["inputs"]] == [(parquet["namespace"], parquet["name"])]
        assert [(d["namespace"], d["name"]) for d in load["outputs"]] == [("postgres://warehouse:5432", "pmp.public.lmp")]
        assert all(e["job"]["namespace"] == "pmp-test" for e in (norm, load))
        assert all("?" not in n for _, n in ins)  # no query strings (keys, tokens) in the URLs


def test_the_coverage_view_needs_a_signed_in_user(services: dict, tmp_path: Path) -> None:
    """The coverage view on an api-server that signs users in (not the local all-admins mode, which
    makes every request an admin's): no token 401, a forged one 403, a viewer's JWT the page."""
    import httpx

    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"operator": "an-admin-password", "analyst": "an-analyst-password"}))
    with scratch_warehouse() as (tsdb, _), LiveAirflow([summary.DAG_ID], connections={"tsdb": tsdb}, env={
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "operator:admin,analyst:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)},
            login=("operator", "an-admin-password")) as af:  # the admin sets the pools up
        page = f"{af.url}/pmp/coverage.json"
        with httpx.Client(timeout=120) as http:
            anonymous = http.get(page, params={"iso": "ercot"})
            assert anonymous.status_code == 401, anonymous.text[:300]
            forged = http.get(page, params={"iso": "ercot"}, headers={"Authorization": "Bearer not.a.jwt"})
            assert forged.status_code == 403, forged.text[:300]
            assert http.get(f"{af.url}/pmp/coverage", cookies={"_token": "not.a.jwt"}).status_code == 403
            login = http.post(f"{af.url}/auth/token", json={"username": "analyst", "password": "an-analyst-password"})
            assert login.status_code == 201, login.text[:300]
            token = login.json()["access_token"]
            signed = http.get(page, params={"iso": "ercot"}, headers={"Authorization": f"Bearer {token}"})
            assert signed.status_code == 200, signed.text[:300]
            assert signed.json()["iso"] == "ercot" and "lmp_dam" in signed.json()["datasets"]
            html = http.get(f"{af.url}/pmp/coverage", params={"iso": "ercot"}, cookies={"_token": token})
            assert html.status_code == 200 and "Coverage and freshness — ERCOT" in html.text, html.text[:300]
