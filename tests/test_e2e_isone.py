"""ISO-NE end to end: simulator (real HTTP) -> SeaweedFS -> TimescaleDB, with ``dag.test()``.

Every dataset runs its daily DAG on a 2024 DST day through ISO Express (the default route); the
Web Services route runs every dataset through the same task code (``pipeline.run_window``).
Prelim -> final, a failed run, a re-run, the real-time DAG and ``pmp catalog`` are covered too.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from helpers import assert_day_complete, day_rows, run_daily

from pmp import pipeline, registry
from pmp.isos.isone.normalize import normalize_payload
from pmp.simulator import isone as sim
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

TZ = "America/New_York"
FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)
LATER = datetime(2024, 11, 20, tzinfo=UTC)  # simulator clock: everything of both days is published
HOURS = {FALL: 25, SPRING: 23}


def spec(dataset: str) -> registry.DatasetSpec:
    return registry.get("isone", dataset)


def per_entity(rows: list[tuple], columns: list[str], entity: tuple[str, ...]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for values in rows:
        r = dict(zip(columns, values, strict=True))
        out[tuple(r[c] for c in entity)].append(r)
    return out


def ingest_log(dsn: str, dataset: str, day: date) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT source_id, source_name, published_at, rows, revision FROM ingest_log"
            " WHERE iso='isone' AND dataset=%s AND market_day=%s ORDER BY published_at, source_id", (dataset, day),
        ).fetchall()


@pytest.mark.parametrize(("dataset", "day"), [("lmp_dam", SPRING), ("as_rt5m", SPRING), ("load_actual", FALL),
                                              ("load_forecast", SPRING), ("fuel_mix", FALL)])
def test_daily_dag_on_a_dst_day(env, dagbag, dataset: str, day: date) -> None:
    s = spec(dataset)
    simulator = env["sim"](now=LATER)
    if dataset == "load_forecast":
        # the real-time DAG's task bodies, run just after each of the day's vintages is issued: each
        # capture stores the then-newest vintage of every hour through the end of day + 2
        for issued in sim.forecast_vintages(day):
            at = issued + timedelta(minutes=5)
            simulator.set_now(at)
            pipeline.run_window(s.key, (at - timedelta(hours=3)).isoformat(), at.isoformat(), realtime=True)
        simulator.set_now(LATER)
    run_daily(dagbag, s, day)
    check = assert_day_complete(env["dsn"], s, day)
    by = "forecast_issued_at" if dataset == "load_forecast" else "interval_start"
    rows = day_rows(env["dsn"], s, day, by=by)
    cols = s.schema.columns
    start, end = market_day_bounds(day, TZ)
    if dataset == "load_forecast":
        # every vintage issued that day is kept for every hour it forecasts (from the hour after its
        # issue through the end of day + 2), with the simulator's value for that vintage and hour
        assert check.vintages == 3
        vintages = sim.forecast_vintages(day)
        stored = per_entity(rows, cols, ("interval_start",))
        hours = sim.steps(start, market_day_bounds(day + timedelta(days=2), TZ)[1], timedelta(hours=1))
        assert sorted(stored) == [(h,) for h in hours if any(sim.vintage_covers(v, h) for v in vintages)]
        for (hour,), group in stored.items():
            assert {r["forecast_issued_at"]: r["load_mw"] for r in group} == {
                v: sim.forecast_mw(v, hour) for v in vintages if sim.vintage_covers(v, hour)}
        assert all(len(stored[(h,)]) == 3 for h in hours if h >= end)  # D+1, D+2: three issue times each
        return
    if dataset == "fuel_mix":  # irregular snapshots, each in the 5-minute interval it falls in
        floored = sorted({datetime.fromtimestamp(int(t.timestamp()) // 300 * 300, UTC) for t in sim.fuel_snapshots(day)})
        assert check.resolutions[0].minutes == 5 and check.resolutions[0].intervals == len(floored)
        for group in per_entity(rows, cols, ("fuel",)).values():
            assert [r["interval_start"] for r in group] == floored and group[-1]["interval_end"] <= end
        return
    minutes = s.interval_minutes
    expected = [start + timedelta(minutes=minutes * i) for i in range(HOURS[day] * 60 // minutes)]
    entity = {"lmp": ("location",), "ancillary_services": ("region", "product"), "load": ("area",)}[s.table]
    groups = per_entity(rows, cols, entity)
    assert groups and all([r["interval_start"] for r in g] == expected for g in groups.values())
    if s.table == "lmp":  # ISO-NE's Location ID with every name (.H.INTERNAL_HUB 4000, zones, nodes)
        assert_location_ids(rows, cols)
    if dataset == "lmp_dam":  # the same day again, forcing a re-fetch: identical tables, one revision
        run_daily(dagbag, s, day, reload=True)
        assert day_rows(env["dsn"], s, day) == rows
        (log_row,) = ingest_log(env["dsn"], dataset, day)
        assert log_row[0] == "csv:WW_DALMP_ISO_20240310.csv" and log_row[3] == len(rows) and log_row[4] == 1


def assert_location_ids(rows: list[tuple], cols: list[str]) -> None:
    ids = {name: str(loc_id) for loc_id, name, _typ in sim.locations()}
    stored = {(r["location"], r["location_id"]) for r in (dict(zip(cols, v, strict=True)) for v in rows)}
    assert stored == set(ids.items()) and (".H.INTERNAL_HUB", "4000") in stored and (".Z.MAINE", "4001") in stored


def test_failed_run_loads_nothing_and_rerun_succeeds(env, dagbag) -> None:
    """A well-formed CSV with a bad price: fetched and staged raw, refused by normalize, nothing loaded."""
    from airflow.sdk import DagRunState

    from pmp.staging import open_store

    s = spec("lmp_rt5m")
    simulator = env["sim"](now=LATER)
    simulator.set_faults({"isone_bad_price": -1})
    dr = run_daily(dagbag, s, FALL, expect_success=False)
    assert dr.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["fetch"] == "success" and states["normalize"] == "failed" and states["load"] != "success"
    assert day_rows(env["dsn"], s, FALL) == [] and ingest_log(env["dsn"], "lmp_rt5m", FALL) == []
    raw = open_store().list("raw/isone/lmp_rt5m/2024/11/03/")
    assert len(raw) == 7
    simulator.set_faults({"isone_bad_price": 0})
    run_daily(dagbag, s, FALL)  # the corrected files have other bytes, so other raw keys: no clash
    assert_day_complete(env["dsn"], s, FALL)
    assert_location_ids(day_rows(env["dsn"], s, FALL), s.schema.columns)  # from the 5-minute files' Location ID
    assert len(open_store().list("raw/isone/lmp_rt5m/2024/11/03/")) == 14
    logged = ingest_log(env["dsn"], "lmp_rt5m", FALL)
    assert [r[0] for r in logged][0] == "csv:WW_DALMP_ISO_20241103.csv" and logged[0][3] == 0  # location table
    assert sum(r[3] for r in logged) == 300 * 21


def final_values(day: date) -> dict[tuple, float]:
    doc = sim.rt_hourly_csv(day, "final")
    rows = normalize_payload("lmp_rt60m", doc.filename, doc.render(LATER)).to_pylist()
    return {(r["location"], r["interval_start"]): r["lmp"] for r in rows}


def lmp_of(dsn: str, day: date) -> dict[tuple, tuple[float, str]]:
    rows = day_rows(dsn, spec("lmp_rt60m"), day)
    cols = spec("lmp_rt60m").schema.columns
    return {(r["location"], r["interval_start"]): (r["lmp"], r["source"]) for r in (dict(zip(cols, v, strict=True))
                                                                                  for v in rows)}


def test_final_replaces_prelim_and_a_late_prelim_never_overwrites_it(env, dagbag) -> None:
    s = spec("lmp_rt60m")
    simulator = env["sim"](now=datetime(2024, 11, 4, 6, tzinfo=UTC))  # 01:00 EST after the 25-hour day
    run_daily(dagbag, s, FALL)
    assert_day_complete(env["dsn"], s, FALL)
    prelim = lmp_of(env["dsn"], FALL)
    assert {src for _, src in prelim.values()} == {"lmp_rt_prelim_20241103.csv"}
    # two days later the next day's run picks up the final of 11-03 (catch-up), which replaces the prelim
    simulator.set_now(datetime(2024, 11, 5, 18, tzinfo=UTC))
    run_daily(dagbag, s, FALL + timedelta(days=1))
    final = lmp_of(env["dsn"], FALL)
    expected = final_values(FALL)
    assert {k: v for k, (v, _) in final.items()} == expected
    assert {src for _, src in final.values()} == {"lmp_rt_final_20241103.csv"}
    assert 0 < sum(prelim[k][0] != final[k][0] for k in final) < len(final)
    lineage = ingest_log(env["dsn"], "lmp_rt60m", FALL)
    assert [r[0] for r in lineage] == ["csv:lmp_rt_prelim_20241103.csv", "csv:lmp_rt_final_20241103.csv"]
    assert lineage[0][2] < lineage[1][2] and lineage[0][3] == lineage[1][3] == len(final)
    # a day whose final arrived first: its prelim, loaded afterwards, changes nothing
    late = date(2024, 11, 10)
    start, end = (t.isoformat() for t in market_day_bounds(late, TZ))
    simulator.set_now(LATER)
    pipeline.run_window(s.key, start, end)
    before = lmp_of(env["dsn"], late)
    simulator.set_now(datetime(2024, 11, 11, 6, tzinfo=UTC))  # the ISO's clock says: only the prelim exists
    result = pipeline.run_window(s.key, start, end)  # the prelim (and an older final, caught up)
    assert result["loaded"]["path"] == "upsert"
    assert lmp_of(env["dsn"], late) == before and {src for _, src in before.values()} == {"lmp_rt_final_20241110.csv"}
    assert [r[0] for r in ingest_log(env["dsn"], "lmp_rt60m", late)] == [
        "csv:lmp_rt_prelim_20241110.csv", "csv:lmp_rt_final_20241110.csv"]  # both recorded, by publication


@pytest.mark.parametrize(("dataset", "day"), [("lmp_dam", FALL), ("lmp_rt5m", SPRING), ("lmp_rt60m", SPRING), ("as_rt5m", FALL),
                                              ("load_actual", SPRING), ("load_forecast", FALL), ("fuel_mix", SPRING)])
def test_webservices_route_every_dataset(env, dataset: str, day: date) -> None:
    """The DAG's task bodies (``pmp download`` runs the same code) on the Web Services route."""
    s = spec(dataset)
    env["sim"](now=LATER, extra={"isone_default": {"source": "webservices"}})
    start, end = (t.isoformat() for t in market_day_bounds(day, TZ))
    result = pipeline.run_window(s.key, start, end)
    assert result["documents"] >= 1 and result["loaded"]["rows"] > 0
    assert all(d["complete"] for d in result["check"]["days"])
    logged = ingest_log(env["dsn"], dataset, day)
    assert logged and all(r[0].startswith("ws:") for r in logged)
    assert all(r[2] is not None for r in logged)  # every document has a publication time
    if s.table == "lmp":  # "Location": {"@LocId": "4000", "@LocType": "HUB", "$": ".H.INTERNAL_HUB"}
        assert_location_ids(day_rows(env["dsn"], s, day), s.schema.columns)
    if dataset == "lmp_rt5m":  # one Web Services call per local start hour: 23 on the spring-forward day
        assert sorted(r[0] for r in logged) == [f"ws:fiveminutelmp_final_day_20240310_starthour_{h:02d}.json"
                                                for h in range(24) if h != 2]


def test_realtime_dags_load_todays_load_and_forecast(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # the simulator on the wall clock
    for dataset in ("load_actual", "load_forecast"):
        dr = dagbag.get_dag(spec(dataset).realtime_dag_id).test()
        assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        latest, docs = conn.execute(
            "SELECT max(interval_end), count(DISTINCT source) FROM load WHERE iso='ISONE' AND kind='actual'"
            " AND interval_end > now() - interval '1 day'").fetchone()
        issued, sources = conn.execute(
            "SELECT max(forecast_issued_at), array_agg(DISTINCT source) FROM load WHERE iso='ISONE'"
            " AND kind='forecast' AND interval_start > now() - interval '1 day'").fetchone()
    assert datetime.now(UTC) - latest < timedelta(minutes=15) and docs >= 1
    # the newest vintage (ISO-NE issues about 04:00, 09:10, 18:15 local), captured by the */5 run
    assert datetime.now(UTC) - issued < timedelta(hours=11)
    assert sources and all(src.startswith("wsclient_systemload_") and "_asof" in src for src in sources)


def test_a_day_not_published_yet_is_rescheduled_by_a_dag_and_waited_for_by_pmp_download(dagbag) -> None:
    """RT hourly LMPs are due 30 min after the day: the DAG task must not sleep on the pool slot
    (``isone_api`` has one, shared with the */5 DAGs) but reschedule; ``pmp download`` waits."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    s = spec("lmp_rt60m")
    discover = dagbag.dags[s.daily_dag_id].get_task("discover")
    end = datetime.now(UTC).replace(microsecond=0)
    began = time.monotonic()
    with pytest.raises(AirflowRescheduleException) as exc:
        discover.python_callable(data_interval_start=end - timedelta(days=1), data_interval_end=end,
                                 params={"reload": False})
    assert exc.value.reschedule_date == end + s.publication_lag and time.monotonic() - began < 5
    nearly = datetime.now(UTC) - s.publication_lag + timedelta(seconds=1.5)  # due in 1.5 s
    began = time.monotonic()
    pipeline._wait_for_publication(s, nearly, max_wait=pipeline.MAX_WAIT)  # what run_window allows
    assert 1.0 <= time.monotonic() - began < 5


def test_download_then_catalog_shows_complete_days(env, capsys) -> None:
    from pmp.cli import main

    env["sim"](now=LATER)
    assert main(["download", "--iso", "isone", "--dataset", "lmp_dam", "--start", "2024-11-02",
                 "--end", "2024-11-05", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--iso", "isone", "--days"]) == 0
    text = capsys.readouterr().out
    dam = text.splitlines()
    start = next(i for i, line in enumerate(dam) if line.startswith("isone  lmp_dam"))
    block = dam[start + 1: next((i for i in range(start + 1, len(dam)) if dam[i].startswith("isone ")), len(dam))]
    for day, hours in [("2024-11-02", 24), ("2024-11-03", 25), ("2024-11-04", 24)]:
        line = next(line for line in block if line.strip().startswith(day))
        assert f"{hours} h" in line and f"{hours}/{hours}x60min intervals" in line and line.endswith("complete")
