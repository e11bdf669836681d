"""CAISO end to end with ``dag.test()``: simulator (real HTTP) -> SeaweedFS -> TimescaleDB.

Every dataset's daily DAG on a 2024 DST day (23 h on 2024-03-10, 25 h on 2024-11-03), a re-run
with reload leaving identical tables, a run failing in ``normalize`` that loads nothing and then
succeeds, the real-time DAGs, and ``pmp catalog`` showing complete days.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from helpers import assert_day_complete, day_rows, market_day_end, run_daily

from pmp import registry
from pmp.isos.caiso.datasets import FORECAST_VINTAGES
from pmp.simulator import caiso as sim_caiso
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

TZ = "America/Los_Angeles"
PT = ZoneInfo(TZ)
NOW = datetime(2024, 11, 20, 18, tzinfo=UTC)  # both DST days long published
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
HOURS = {SPRING: 23, FALL: 25}


@pytest.fixture
def env(warehouse, staging, airflow_db, use_simulator, monkeypatch):
    def start(now: datetime | None = NOW):
        handle = use_simulator(now=now, extra={"caiso_default": {"www_min_request_interval_seconds": 0}})
        handle.set_faults({"caiso_no_throttle": -1})  # the client limiter is off in tests (interval 0)
        return handle

    return {"dsn": warehouse, "start": start}


def spec(dataset: str):
    return registry.get("caiso", dataset)


def oasis_requests(sim) -> list[str]:
    return [p for _, p in sim.requests if "/oasisapi/" in p]


def _lmp(rows: list[tuple], day: date, minutes: int) -> None:
    cols = spec("lmp_dam").schema.columns
    recs = [dict(zip(cols, r, strict=True)) for r in rows]
    assert {r["location"] for r in recs} == set(sim_caiso.apnodes())
    assert len(recs) == len(sim_caiso.apnodes()) * HOURS[day] * 60 // minutes
    for r in recs:
        assert abs(r["lmp"] - (r["energy"] + r["congestion"] + r["loss"] + r["ghg"])) < 1e-6, r
    assert any(r["ghg"] for r in recs)


CASES = [("lmp_dam", FALL, 1), ("lmp_rt15m", SPRING, 23), ("lmp_rt5m", FALL, 25), ("as_dam", SPRING, 6),
         ("as_rt15m", FALL, 1), ("load_actual", SPRING, 1), ("load_forecast", FALL, 5), ("fuel_mix", SPRING, 0)]


def check_day(dsn: str, dataset: str, day: date) -> None:
    """The production check passes and the rows are what the simulator published for the day."""
    s = spec(dataset)
    result = assert_day_complete(dsn, s, day)
    assert result.hours == HOURS[day]
    by = "forecast_issued_at" if dataset == "load_forecast" else "interval_start"
    rows = day_rows(dsn, s, day, by=by)
    recs = [dict(zip(s.schema.columns, r, strict=True)) for r in rows]
    assert recs and {r["iso"] for r in recs} == {"CAISO"}
    if s.table == "lmp":
        _lmp(rows, day, s.interval_minutes)
    elif s.table == "ancillary_services":
        assert len({(r["region"], r["product"]) for r in recs}) == 36
        assert len(recs) == 36 * HOURS[day] * 60 // s.interval_minutes
    elif dataset == "load_actual":
        res = {r.minutes: (r.intervals, r.entities) for r in result.resolutions}
        assert res == {60.0: (HOURS[day], len(sim_caiso.TAC_AREAS)), 5.0: (HOURS[day] * 12, 1)}
        assert {r["area"] for r in recs if r["interval_end"] - r["interval_start"] == timedelta(minutes=5)} == {"SYSTEM"}
    elif dataset == "load_forecast":
        models = Counter(r["model"] for r in recs)
        assert set(models) == set(FORECAST_VINTAGES)
        daily = {r["forecast_issued_at"] for r in recs if r["model"] in ("7DA", "2DA", "DAM")}
        assert daily == {datetime.combine(day, time(9, 10), PT)}  # 09:10 Pacific on the issue day
        rtd = {r["forecast_issued_at"] for r in recs if r["model"] == "RTM_RTD"}
        assert len(rtd) == HOURS[day] * 12
        # each model's own vintages issued that day: one 09:10 run each, RTPD every 15 and RTD every 5 minutes
        hours = HOURS[day]
        assert result.vintages_by_model == {"7DA": (1, 1), "2DA": (1, 1), "DAM": (1, 1),
                                            "RTM_RTPD": (hours * 4, hours * 4), "RTM_RTD": (hours * 12, hours * 12)}
        targets = {r["model"]: r["interval_start"] for r in recs if r["model"] in ("DAM", "7DA")}
        assert targets["DAM"] >= market_day_bounds(day + timedelta(days=1), TZ)[0]
        assert targets["7DA"] >= market_day_bounds(day + timedelta(days=7), TZ)[0]
    else:
        assert len({r["fuel"] for r in recs}) == 13 and len(recs) == 13 * HOURS[day] * 12


@pytest.mark.parametrize(("dataset", "day", "oasis_calls"), CASES)
def test_daily_dag_loads_a_dst_day(env, dagbag, dataset: str, day: date, oasis_calls: int) -> None:
    """One ``dag.test()`` per dataset on a DST day. lmp_dam then runs twice more (reload, and plain)
    leaving identical tables; as_dam first fails in ``normalize`` and loads nothing."""
    sim = env["start"]()
    s = spec(dataset)
    if dataset == "as_dam":
        _fails_mid_run_and_loads_nothing(env, dagbag, sim, day)
    run_daily(dagbag, s, day)
    assert len(oasis_requests(sim)) == oasis_calls * (2 if dataset == "as_dam" else 1)
    check_day(env["dsn"], dataset, day)
    if dataset == "lmp_dam":
        _run_twice_identical(env, dagbag, sim, day)


def _run_twice_identical(env, dagbag, sim, day: date) -> None:
    from pmp.staging import open_store

    s = spec("lmp_dam")
    first = day_rows(env["dsn"], s, day)
    # a reload re-downloads: OASIS regenerates the zip (new bytes), which gets its own raw object
    sim.set_now(NOW + timedelta(days=1))
    run_daily(dagbag, s, day, reload=True)
    assert day_rows(env["dsn"], s, day) == first
    # without reload the loaded document is not asked for again: discover (the task body) finds nothing new
    from pmp import pipeline

    start, end = market_day_bounds(day, TZ)
    assert pipeline.discover(s.key, start.isoformat(), end.isoformat()) == []
    stem = "PRC_LMP_DAM_20241103T0700Z_20241104T0800Z_v12"
    with psycopg.connect(env["dsn"]) as conn:
        docs = conn.execute("SELECT source_id, source_name, revision FROM ingest_log WHERE iso='caiso' AND"
                            " dataset='lmp_dam' AND market_day=%s", (day,)).fetchall()
    assert docs == [(stem, stem + ".zip", 2)]
    raw = open_store().list(f"raw/caiso/lmp_dam/{day:%Y/%m/%d}/")
    assert len(raw) == 2 and all(k.rsplit("/", 1)[1].startswith(stem + ".") for k in raw)


def _fails_mid_run_and_loads_nothing(env, dagbag, sim, day: date) -> None:
    from airflow.sdk import DagRunState

    s = spec("as_dam")
    sim.set_faults({"caiso_bad_row": 1})  # fetch succeeds, normalize meets a malformed row
    dr = dagbag.get_dag(s.daily_dag_id).test(logical_date=market_day_end(day, TZ))
    assert dr.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["fetch"] == "success" and states["normalize"] == "failed" and states["load"] != "success"
    assert day_rows(env["dsn"], s, day) == []
    with psycopg.connect(env["dsn"]) as conn:
        assert conn.execute("SELECT count(*) FROM ingest_log WHERE iso='caiso' AND dataset='as_dam'"
                            " AND market_day=%s", (day,)).fetchone() == (0,)


def test_realtime_dag_loads_latest_intervals(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    from pmp import checks

    sim = env["start"](now=None)  # the simulator on the wall clock
    dag = dagbag.get_dag(spec("lmp_rt5m").realtime_dag_id)
    dr = dag.test(run_conf={"lookback_minutes": 30})
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        newest = checks.latest(conn, spec("lmp_rt5m"))
    assert newest is not None and datetime.now(UTC) - newest < timedelta(minutes=15)
    calls = len(oasis_requests(sim))
    dr = dag.test(run_conf={"lookback_minutes": 30})  # again: only the growing hour is asked for
    assert dr.state == DagRunState.SUCCESS and dr.get_task_instance("ingest").state == "success"
    assert dr.get_task_instance("ingest").xcom_pull(task_ids="ingest")["check"]["lag_minutes"] < 15
    assert len(oasis_requests(sim)) - calls <= 2


@pytest.mark.parametrize("dataset", ["fuel_mix", "load_actual", "load_forecast", "as_rt15m", "lmp_rt15m"])
def test_realtime_path_of_every_intraday_dataset(env, dataset: str) -> None:
    """The real-time DAG's task bodies (``pipeline.run_window(realtime=True)``, what ``discover`` ->
    ``check`` run) for the other intra-day datasets: fresh rows, freshness check passing."""
    from pmp import checks, pipeline

    env["start"](now=None)
    end = datetime.now(UTC)
    out = pipeline.run_window(spec(dataset).key, (end - timedelta(minutes=40)).isoformat(), end.isoformat(),
                              realtime=True)
    assert out["documents"] >= 1 and out["check"]["lag_minutes"] < 30
    with psycopg.connect(env["dsn"]) as conn:
        assert checks.latest(conn, spec(dataset)) is not None


def test_download_then_catalog_shows_complete_days(env, capsys) -> None:
    from pmp.cli import main

    env["start"]()
    assert main(["download", "--iso", "caiso", "--dataset", "load_actual", "--start", "2024-11-02",
                 "--end", "2024-11-05", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--iso", "caiso", "--days"]) == 0
    text = capsys.readouterr().out
    current, found = None, {}
    for line in text.splitlines():
        if line.startswith("caiso "):
            current = line.split()[1]
        elif current:
            found[(current, line.split()[0])] = line
    for day, hours in (("2024-11-02", 24), ("2024-11-03", 25), ("2024-11-04", 24)):
        line = found[("load_actual", day)]  # both resolutions: hourly by TAC area, 5-minute system
        assert f"{hours} h" in line and line.endswith("complete") and "INCOMPLETE" not in line, line
        assert f"{hours}/{hours}x60min intervals, {len(sim_caiso.TAC_AREAS)} entities" in line
        assert f"{hours * 12}/{hours * 12}x5min intervals, 1 entities" in line
