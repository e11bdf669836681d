"""The local-Airflow harness (tests/live.py) itself: a DAG of the bundle runs through the real
scheduler, LocalExecutor and api-server, and nothing is left behind afterwards."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from live import LiveAirflow, _pg_admin, scratch_warehouse

from pmp.simulator.server import start_simulator
from pmp.timeutil import market_day_bounds

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live-airflow")]

DAG_ID = "nyiso_lmp_dam_daily"


def test_a_daily_dag_runs_through_the_real_scheduler(services: dict, staging: str) -> None:
    et = ZoneInfo("America/New_York")
    today = datetime.now(et).replace(hour=0, minute=0, second=0, microsecond=0)
    with scratch_warehouse() as (tsdb, warehouse), start_simulator() as sim, \
            LiveAirflow(DAG_ID, sim_url=sim.url, connections={"tsdb": tsdb}) as af:
        af.wait_serialized([DAG_ID])
        af.unpause(DAG_ID)
        # unpausing makes the scheduler run yesterday; a manual run takes the day before (its data
        # interval is the last whole market day before its logical date)
        day_before = today - timedelta(days=1)
        run_id = af.trigger(DAG_ID, logical_date=day_before + timedelta(minutes=1))
        run = af.wait_run(DAG_ID, run_id, timeout=240)
        assert run["state"] == "success", af.diagnose()
        assert run["data_interval_end"].startswith(day_before.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H"))
        states = af.task_states(DAG_ID, run_id)
        assert states and set(states.values()) == {"success"}, states
        assert "discover" in states  # the daily DAG's first task (not a real-time task name)
        # every history task process lowered its CPU priority before it ran (real time first)
        logs = af.task_logs(DAG_ID)
        assert logs.count("history task: CPU niceness 10") >= len(states), logs[-3000:]
        procs = [p.pid for p in af.procs.values()]
        db, home = af.db, af.home
        # the manual run, and the scheduled run of the latest interval that unpausing creates (no catchup)
        kinds = af.sql("SELECT run_type, count(*) FROM dag_run WHERE dag_id = %s GROUP BY run_type", (DAG_ID,))
        assert dict(kinds).get("manual") == 1, kinds
        assert "scheduler" in af.component_log("scheduler").lower()
        day = (today - timedelta(days=2)).date()
        start, end = market_day_bounds(day, "America/New_York")
        with psycopg.connect(warehouse) as conn:
            rows = conn.execute("SELECT count(*) FROM lmp WHERE iso = 'NYISO' AND market = 'DAM' "
                                "AND interval_start >= %s AND interval_start < %s", (start, end)).fetchone()[0]
        assert rows > 0, f"no NYISO DAM rows for {day}"
    # stopped: no process, no metadata database, no home left
    for pid in procs:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with psycopg.connect(**_pg_admin()) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone() is None
    assert home is not None and not home.exists()
