"""End to end, the real-time paths of the intraday datasets: ISO-NE 5-minute LMPs, reserve prices and
fuel mix, ERCOT actual load and load-forecast vintages, NYISO load forecast. Simulator over HTTP ->
SeaweedFS -> TimescaleDB (a warehouse of the test's own, so freshness and counts are this test's).

* every */5 DAG with ``dag.test()`` on the wall clock: fresh rows, its freshness check passing;
* the real-time task bodies (``pipeline.run_window(realtime=True)``) at fixed simulator times on the
  2024 DST days: preliminary ISO-NE prices replaced by the finals of the daily DAG, value by value, and
  never put back by a late preliminary; ERCOT's and NYISO's intraday postings making whole DST days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from helpers import assert_day_complete, day_rows, run_daily

from pmp import checks, pipeline, registry
from pmp.isos.isone.adapter import ADAPTER as ISONE
from pmp.simulator import ercot as sim_ercot
from pmp.simulator import isone as sim_isone
from pmp.simulator import nyiso as sim_nyiso
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

ET, CT = "America/New_York", "America/Chicago"
FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)
LOOKBACK = timedelta(minutes=180)


@pytest.fixture
def rt(private_warehouse, staging, airflow_db, use_simulator, monkeypatch, request) -> dict:
    # a raw stage of the test's own too: a test that switches the simulator's output (one ERCOT forecast
    # model) publishes other bytes under the same document names, and raw objects are immutable
    monkeypatch.setenv("PMP_STAGING_URL", f"{staging}{request.node.name.replace('/', '_')}/")
    return {"dsn": private_warehouse, "sim": use_simulator}


def realtime(key: str, end: datetime) -> dict:
    """One */5 run's task bodies for the window ending ``end`` (the run's now)."""
    return pipeline.run_window(key, (end - LOOKBACK).isoformat(), end.isoformat(), realtime=True)


def newest(dsn: str, spec: registry.DatasetSpec) -> datetime | None:
    with psycopg.connect(dsn) as conn:
        return checks.latest(conn, spec)


def rows_by(dsn: str, spec: registry.DatasetSpec, day: date, *key: str, by: str = "interval_start") -> dict:
    cols = spec.schema.columns
    out = {}
    for values in day_rows(dsn, spec, day, by=by):
        r = dict(zip(cols, values, strict=True))
        out[tuple(r[k] for k in key)] = r
    return out


@pytest.mark.parametrize(("iso", "dataset", "conf", "fresh"), [
    ("isone", "lmp_rt5m", {}, timedelta(minutes=15)),
    ("isone", "as_rt5m", {}, timedelta(minutes=15)),
    ("isone", "fuel_mix", {}, timedelta(minutes=20)),
    # NP6-235-CD posts an hour's four values about 3 minutes after the hour: the newest interval is up
    # to 63 minutes old just before a posting, so the freshness threshold is set above that
    ("ercot", "load_actual", {"max_lag_minutes": 75}, timedelta(minutes=70)),
    ("ercot", "load_forecast", {}, timedelta(minutes=65)),  # a vintage every hour at about HH:30
    ("nyiso", "lmp_rt60m", {"max_lag_minutes": 75}, timedelta(minutes=70)),  # rtlbmp: ~5 min after each hour
    # isolf is issued once a day (about 05:45): the run takes today's, or before the issue yesterday's
    ("nyiso", "load_forecast", {}, timedelta(hours=25)),
])
def test_realtime_dag(rt, dagbag, iso: str, dataset: str, conf: dict, fresh: timedelta) -> None:
    from airflow.sdk import DagRunState

    spec = registry.get(iso, dataset)
    assert spec.realtime
    rt["sim"]()  # the simulator on the wall clock
    dr = dagbag.get_dag(spec.realtime_dag_id).test(run_conf=conf or None)
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    latest = newest(rt["dsn"], spec)  # interval end, or issue time for forecasts
    # a snapshot (ISO-NE fuel mix) published at t covers [t, t + 5 min): its end may lie in the future
    ahead = timedelta(0) if spec.completeness == "vintages" else timedelta(minutes=spec.interval_minutes)
    assert latest is not None and -ahead <= datetime.now(UTC) - latest < fresh
    with psycopg.connect(rt["dsn"]) as conn:
        docs, undated = conn.execute("SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM ingest_log"
                                     " WHERE iso=%s AND dataset=%s", (iso, dataset)).fetchone()
    assert docs >= 1 and undated == 0


def test_isone_current_report_is_named_by_its_interval_when_a_run_starts_late(rt) -> None:
    """The */5 run of 15:00 queued into the next slot (its data interval ends at 15:00, it runs at
    15:05:10) loads the interval ISO-NE has published by then, under that interval's name; the 15:05
    run finds it loaded (the report still holds it: nothing new), and the 15:10 run loads the next
    interval. Named by the run's slot (the old ``_asof<slot>``), the late run took 15:05's name and
    the document of its own slot was never loaded."""
    spec = registry.get("isone", "lmp_rt5m")
    slot = datetime(2024, 11, 5, 15, 0, tzinfo=UTC)
    sim = rt["sim"](now=slot)
    runs = [slot + timedelta(minutes=5, seconds=10), slot + timedelta(minutes=5, seconds=40),
            slot + timedelta(minutes=10, seconds=20), slot + timedelta(minutes=15, seconds=20)]
    # what ISO-NE's current report holds at each run (published one to two and a half minutes after
    # the interval ends): 14:55 at both runs in the 15:05 slot, then 15:00, then 15:05
    held = [sim_isone.latest_prelim_interval(now) for now in runs]
    five = timedelta(minutes=5)
    assert held == [slot - five, slot - five, slot, slot + five]
    new_per_run = []
    for now in runs:
        sim.set_now(now)
        ISONE._locations.clear()  # each run is a task process of its own: the DA file staged before is read back
        realtime(spec.key, now)
        with psycopg.connect(rt["dsn"]) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT source_id FROM ingest_log WHERE iso = 'isone' AND dataset = 'lmp_rt5m' AND source_id "
                "LIKE %s ORDER BY loaded_at, source_id", ("%current%",)).fetchall()]
        new_per_run.append(ids[sum(len(x) for x in new_per_run):])
    name = "csv:fiveminlmp_current_prelim_interval{:%Y%m%dT%H%M}Z.csv".format
    assert new_per_run == [[name(held[0])], [], [name(held[2])], [name(held[3])]]
    # each document's rows are the interval its name says
    with psycopg.connect(rt["dsn"]) as conn:
        rows = conn.execute("SELECT source, min(interval_start), max(interval_start), count(*) FROM lmp "
                            "WHERE iso = 'ISONE' AND market = 'RT5M' AND source LIKE %s GROUP BY source "
                            "ORDER BY source", ("%current%",)).fetchall()
    n_loc = len(sim_isone.locations())
    assert rows == [(name(t)[4:], t, t, n_loc) for t in (held[0], held[2], held[3])]


def test_isone_five_minute_prelim_then_final_on_the_fall_back_day(rt, dagbag) -> None:
    spec = registry.get("isone", "lmp_rt5m")
    sim = rt["sim"](now=datetime(2024, 11, 3, 5, 33, tzinfo=UTC))
    # 01:33 EDT, 01:33 EST (the same local label, an hour apart), 04:20 EST (the five-hour block 00-04 is out)
    for now in (datetime(2024, 11, 3, 5, 33, tzinfo=UTC), datetime(2024, 11, 3, 6, 33, tzinfo=UTC),
                datetime(2024, 11, 3, 9, 20, tzinfo=UTC)):
        sim.set_now(now)
        out = realtime(spec.key, now)
        assert out["check"]["lag_minutes"] < 10  # the current interval: minutes old
    current = sim_isone.latest_prelim_interval(datetime(2024, 11, 3, 9, 20, tzinfo=UTC))
    prelim = rows_by(rt["dsn"], spec, FALL, "location_id", "interval_start")
    block = sim_isone.steps(datetime(2024, 11, 3, 4, tzinfo=UTC), datetime(2024, 11, 3, 9, tzinfo=UTC),
                            timedelta(minutes=5))  # 00:00 EDT .. 04:00 EST: 60 intervals
    n_loc = len(sim_isone.locations())
    assert sorted({t for _, t in prelim}) == [*block, current] and len(prelim) == 61 * n_loc
    for (loc_id, t), r in prelim.items():
        assert r["lmp"] == sim_isone.lmp("RT5", int(loc_id), t, "prelim")[0], (loc_id, t)
    # the current report is named by the interval it holds (04:10 EST), not by the run's slot
    assert current == datetime(2024, 11, 3, 9, 10, tzinfo=UTC)
    assert prelim[("4000", current)]["source"] == "fiveminlmp_current_prelim_interval20241103T0910Z.csv"
    assert prelim[("4000", block[0])]["source"] == "5min-rt-prelim/lmp_5min_20241103_00-04.csv"
    # two days later the daily DAG finds the day's finals: they replace every prelim value
    sim.set_now(datetime(2024, 11, 5, 18, tzinfo=UTC))
    run_daily(dagbag, spec, FALL)
    assert_day_complete(rt["dsn"], spec, FALL)
    final = rows_by(rt["dsn"], spec, FALL, "location_id", "interval_start")
    assert len(final) == 300 * n_loc
    for (loc_id, t), r in final.items():
        assert r["lmp"] == sim_isone.lmp("RT5", int(loc_id), t, "final")[0] and r["source"].startswith("5min-rt-final/")
    assert 0 < sum(prelim[k]["lmp"] != final[k]["lmp"] for k in prelim) < len(prelim)
    # a late real-time run for that morning (an older publication) changes nothing
    late = datetime(2024, 11, 3, 9, 31, tzinfo=UTC)
    sim.set_now(late)
    out = realtime(spec.key, late)
    assert out["loaded"]["path"] == "upsert" and rows_by(rt["dsn"], spec, FALL, "location_id", "interval_start") == final


def test_isone_reserve_prelim_then_final_on_the_spring_forward_day(rt, dagbag) -> None:
    spec = registry.get("isone", "as_rt5m")
    close = market_day_bounds(SPRING, ET)[1]  # 00:00 EDT on 03-11
    sim = rt["sim"](now=close + timedelta(minutes=5, seconds=30))
    out = realtime(spec.key, close + timedelta(minutes=5, seconds=30))
    assert out["documents"] == 2 and out["check"]["lag_minutes"] < 10
    check = assert_day_complete(rt["dsn"], spec, SPRING)  # the whole 23-hour day from the real-time path alone
    assert [(r.minutes, r.intervals, r.entities) for r in check.resolutions] == [(5.0, 276, 12)]
    zones = {z: i for i, z in sim_isone.RESERVE_ZONES}
    price = {"TMSR": "TmsrClearingPrice", "TMNSR": "TmnsrClearingPrice", "TMOR": "TmorClearingPrice"}

    def stored() -> dict:
        return {k: (r["clearing_price"], r["clearing_quantity"])
                for k, r in rows_by(rt["dsn"], spec, SPRING, "region", "product", "interval_start").items()}

    def expected(stage: str) -> dict:
        out = {}
        for t in sim_isone.steps(*market_day_bounds(SPRING, ET), timedelta(minutes=5)):
            for zone, z in zones.items():
                rec = sim_isone.reserve_record(t, z, stage)
                for product, key in price.items():
                    out[(zone, product, t)] = (rec[key], rec[key.replace("ClearingPrice", "DesignatedMw")])
        return out

    prelim = stored()
    assert prelim == expected("prelim")
    sim.set_now(close + timedelta(hours=1))  # the final report is out (about 00:20)
    run_daily(dagbag, spec, SPRING)
    final = stored()
    assert final == expected("final") and 0 < sum(prelim[k] != final[k] for k in final) < len(final)
    # a run that discovered the day's prelim report at 00:10 but fetched it at 03:00: generated after the
    # final, it still ranks at 00:15 (normalize.prelim_reserve_rank) and puts no prelim price back
    sim.set_now(close + timedelta(hours=3))
    out = realtime(spec.key, close + timedelta(minutes=10))
    assert out["loaded"]["path"] == "upsert" and stored() == final
    with psycopg.connect(rt["dsn"]) as conn:
        logged = conn.execute("SELECT source_id, published_at FROM ingest_log WHERE iso='isone' AND dataset='as_rt5m'"
                              " AND market_day=%s ORDER BY published_at, source_id", (SPRING,)).fetchall()
    assert [s.split("@")[0] for s, _ in logged] == ["csv:fiveminreserveprice_prelim_20240310.csv"] * 2 + [
        "csv:fiveminreserveprice_final_20240310.csv"]
    assert logged[1][1] == close + timedelta(minutes=15) < logged[2][1]


@pytest.mark.parametrize("day", [FALL, SPRING])
def test_ercot_load_and_forecast_days_from_the_realtime_path_alone(rt, monkeypatch, day: date) -> None:
    """*/5 runs (every third hour, windows back to back) through a DST day and the next morning load
    every NP6-235-CD hour, the NP6-345-CD day and every NP3-565-CD vintage: the days are complete by
    the daily checks (23/25 hours, 92/100 quarter hours, 23/25 vintages) with the simulator's values."""
    monkeypatch.setenv("PMP_SIM_ERCOT_MODELS", "1")  # one forecast model: a third of the rows, same vintages
    actual, forecast = registry.get("ercot", "load_actual"), registry.get("ercot", "load_forecast")
    start, end = market_day_bounds(day, CT)
    sim = rt["sim"](now=start)
    t = start + timedelta(minutes=10)
    while t - LOOKBACK < end + timedelta(hours=8):
        sim.set_now(t)
        for spec in (actual, forecast):
            assert realtime(spec.key, t)["check"]["lag_minutes"] < 60
        t += LOOKBACK
    hours = int((end - start) / timedelta(hours=1))
    check = assert_day_complete(rt["dsn"], actual, day)
    assert sorted((r.minutes, r.intervals, r.entities) for r in check.resolutions) == [(15.0, hours * 4, 1),
                                                                                      (60.0, hours, 9)]
    quarter = {k: r for k, r in rows_by(rt["dsn"], actual, day, "area", "interval_start", "interval_end").items()
               if r["interval_end"] - r["interval_start"] == timedelta(minutes=15)}
    assert {k[1]: r["load_mw"] for k, r in quarter.items()} == {
        s: float(sim_ercot.fmt4(sim_ercot.load_mw("SYSTEM", s, 15)))
        for s in sim_isone.steps(start, end, timedelta(minutes=15))}
    vintages = assert_day_complete(rt["dsn"], forecast, day)
    assert vintages.vintages == vintages.expected_vintages == hours
    issued = {r["forecast_issued_at"] for r in rows_by(rt["dsn"], forecast, day, "forecast_issued_at", "model",
                                                        "area", "interval_start", by="forecast_issued_at").values()}
    report = sim_ercot.REPORTS[14837]
    assert issued == {report.posted(start + timedelta(hours=h)) for h in range(hours)}


@pytest.mark.parametrize("day", [FALL, SPRING])
def test_nyiso_isolf_loaded_minutes_after_its_issue(rt, day: date) -> None:
    spec = registry.get("nyiso", "load_forecast")
    issued = sim_nyiso.issue_time(day)
    rt["sim"](now=issued + timedelta(minutes=5))
    out = realtime(spec.key, issued + timedelta(minutes=5))
    assert out["documents"] == 2 and out["check"]["lag_minutes"] < 10  # the day's vintage and the day before's
    assert_day_complete(rt["dsn"], spec, day)  # the issue day's one vintage
    rows = rows_by(rt["dsn"], spec, day, "area", "interval_start", by="forecast_issued_at")
    assert {r["forecast_issued_at"] for r in rows.values()} == {issued.replace(second=0, microsecond=0)}
    # the file covers the issue day and the five after it, hour by hour in UTC (23 / 25 hours on the DST day)
    first, last = market_day_bounds(day, ET)[0], market_day_bounds(day + timedelta(days=5), ET)[1]
    hours = sim_isone.steps(first, last, timedelta(hours=1))
    assert sorted({t for _, t in rows}) == hours and len(rows) == len(hours) * 12  # 11 zones + SYSTEM


def test_nyiso_hourly_lbmp_day_from_the_realtime_path_alone(rt) -> None:
    """rtlbmp rewritten every hour through the fall-back day: runs (windows back to back) each load the
    file as it stands, the repeated 01:00 hour told apart by its order; after the day the stored hours are
    exactly those of NYISO's final files, by value."""
    from pmp.isos.nyiso.normalize import normalize_payload

    spec = registry.get("nyiso", "lmp_rt60m")
    start, end = market_day_bounds(FALL, ET)
    sim = rt["sim"](now=start)
    t = start + timedelta(hours=2, minutes=10)  # 01:10 EST: the first pass of 01:00 is posted, the second not yet
    while t - LOOKBACK < end:
        sim.set_now(t)
        realtime(spec.key, t)
        t += LOOKBACK
    check = assert_day_complete(rt["dsn"], spec, FALL)
    assert check.resolutions[0].intervals == 25
    expected = {}
    for family in spec.params["files"]:
        fam = sim_nyiso.FAMILIES[family.suffix]
        table = normalize_payload("lmp_rt60m", family.daily_name(FALL), sim_nyiso.final_content(fam, FALL).encode(),
                                  sim_nyiso.final_time(fam, FALL))
        expected |= {(r["location"], r["interval_start"]): r["lmp"] for r in table.to_pylist()}
    stored = rows_by(rt["dsn"], spec, FALL, "location", "interval_start")
    assert {k: r["lmp"] for k, r in stored.items()} == expected
