"""ERCOT ancillary services, load, forecasts and fuel mix end to end with ``dag.test()``:
simulator (real HTTP) -> SeaweedFS -> TimescaleDB, on DST days, through every route
(MIS, API archive listing + bulk download, monthly bundles, dashboard, annual workbooks)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from helpers import assert_day_complete, day_rows, run_daily

from pmp import registry
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

CT = "America/Chicago"
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
AFTER_FALL = datetime(2024, 11, 5, 18, tzinfo=UTC)  # 2024-11-03 is still on MIS


def spec(dataset: str):
    return registry.get("ercot", dataset)


def starts_by(rows: list[tuple], spec_, entity_idx: list[int]) -> dict[tuple, list[datetime]]:
    cols = spec_.schema.columns
    si = cols.index("interval_start")
    out: dict[tuple, list[datetime]] = {}
    for r in rows:
        out.setdefault(tuple(r[i] for i in entity_idx), []).append(r[si])
    return out


def assert_exact(rows: list[tuple], spec_, day: date, entity: list[str], minutes: int) -> dict:
    """Every entity has exactly the intervals of the 23/24/25-hour day at ``minutes``."""
    cols = spec_.schema.columns
    start, end = market_day_bounds(day, CT)
    step = timedelta(minutes=minutes)
    expected = [start + i * step for i in range(int((end - start) / step))]
    si, ei = cols.index("interval_start"), cols.index("interval_end")
    mine = [r for r in rows if r[ei] - r[si] == step]
    by = starts_by(mine, spec_, [cols.index(c) for c in entity])
    assert by, f"no {minutes}-minute rows"
    for key, starts in by.items():
        assert sorted(starts) == expected, f"{spec_.key} {day} {key}: {len(starts)} intervals"
    return by


def paths(sim) -> list[str]:
    return [p.split("?")[0] for _, p in sim.requests]


# ------------------------------------------------------------------ ancillary services
def test_as_dam_fall_back_day_via_mis_twice_identical(env, dagbag) -> None:
    s = spec("as_dam")
    env["sim"](now=AFTER_FALL)
    run_daily(dagbag, s, FALL)
    first = day_rows(env["dsn"], s, FALL)
    by = assert_exact(first, s, FALL, ["product"], 60)
    assert set(by) == {("REGUP",), ("REGDN",), ("RRS",), ("NSPIN",), ("ECRS",)}
    assert_day_complete(env["dsn"], s, FALL)
    run_daily(dagbag, s, FALL, reload=True)  # re-fetch: identical tables, one document, no revision
    assert day_rows(env["dsn"], s, FALL) == first
    with psycopg.connect(env["dsn"]) as conn:
        docs, revision = conn.execute(
            "SELECT count(*), max(revision) FROM ingest_log WHERE iso='ercot' AND dataset='as_dam' AND market_day=%s",
            (FALL,)).fetchone()
    assert (docs, revision) == (1, 1)


def test_as_dam_spring_day_and_2019_01_01_via_api_archive(env, dagbag) -> None:
    """History beyond MIS through the archive listing + bulk download: the 23-hour 2024-03-10 and
    the first day of the history, 2019-01-01 (ECRS did not exist yet: four products)."""
    s = spec("as_dam")
    sim = env["sim"]()  # wall clock: both days are long out of MIS
    run_daily(dagbag, s, SPRING)
    by = assert_exact(day_rows(env["dsn"], s, SPRING), s, SPRING, ["product"], 60)
    assert len(by) == 5
    day = date(2019, 1, 1)
    run_daily(dagbag, s, day)
    by = assert_exact(day_rows(env["dsn"], s, day), s, day, ["product"], 60)
    assert set(by) == {("REGUP",), ("REGDN",), ("RRS",), ("NSPIN",)}
    assert paths(sim).count("/ercot/api/api/public-reports/archive/np4-188-cd/download") == 2
    assert any("/oauth2/v2.0/token" in p for p in paths(sim))


def test_as_rt15m_first_spring_forward_after_rtc_go_live(env, dagbag) -> None:
    """NP6-331-CD exists from 2025-12-05: its first DST day is 2026-03-08 (23 h, via the archive;
    the 25-hour 2026-11-01 is covered on the normalizer's side)."""
    s = spec("as_rt15m")
    env["sim"]()
    spring = date(2026, 3, 8)
    run_daily(dagbag, s, spring)
    assert len(assert_exact(day_rows(env["dsn"], s, spring), s, spring, ["product"], 15)) == 5
    assert_day_complete(env["dsn"], s, spring)
    # what `pmp catalog --days` prints for the dataset
    from pmp import catalog, db

    with db.connect() as conn:
        text = catalog.render([catalog.entry(conn, s, with_days=True)])
    assert "2026-03-08 23 h  92/92x15min intervals, 5 entities  460 rows  complete" in text


def test_as_rt15m_has_no_days_before_its_first_day(dagbag) -> None:
    dag = dagbag.get_dag("ercot_as_rt15m_daily")
    assert dag.start_date.date() == date(2025, 12, 5) == spec("as_rt15m").first_date


# ------------------------------------------------------------------ load
def test_load_actual_fall_back_day_via_mis(env, dagbag) -> None:
    s = spec("load_actual")
    env["sim"](now=AFTER_FALL)
    run_daily(dagbag, s, FALL)
    rows = day_rows(env["dsn"], s, FALL)
    hourly = assert_exact(rows, s, FALL, ["area"], 60)
    assert len(hourly) == 9 and ("SYSTEM",) in hourly and ("FAR_WEST",) in hourly
    quarter = assert_exact(rows, s, FALL, ["area"], 15)
    assert list(quarter) == [("SYSTEM",)]
    cols = s.schema.columns
    for r in rows:  # actuals: known when the interval ends
        assert r[cols.index("forecast_issued_at")] == r[cols.index("interval_end")]
        assert r[cols.index("model")] == "" and r[cols.index("kind")] == "actual"
    check = assert_day_complete(env["dsn"], s, FALL)
    assert {(r.minutes, r.intervals, r.entities) for r in check.resolutions} == {(60.0, 25, 9), (15.0, 100, 1)}


def test_as_dam_spring_2019_via_monthly_bundles(env, dagbag) -> None:
    """2019-03-10 (23 h) through the API's monthly bundles (``archive_bundles``): one list and
    one download of the month the day's document was posted in, no archive listing."""
    s, day = spec("as_dam"), date(2019, 3, 10)
    sim = env["sim"](extra={"ercot_default": {"archive_bundles": True}})
    run_daily(dagbag, s, day)
    assert len(assert_exact(day_rows(env["dsn"], s, day), s, day, ["product"], 60)) == 4
    p = paths(sim)
    assert p.count("/ercot/api/api/public-reports/bundle/np4-188-cd/download") == 1
    assert not any("/archive/" in x for x in p), "bundles replace the archive listing"
    # the whole bundled month is loaded once: a later day of March needs no download at all
    before = len(p)
    run_daily(dagbag, s, date(2019, 3, 20), reload=False)
    assert not any(x.endswith("/download") for x in paths(sim)[before:])
    assert_day_complete(env["dsn"], s, date(2019, 3, 20))


def test_load_actual_spring_day_via_api_archive(env, dagbag) -> None:
    s = spec("load_actual")
    sim = env["sim"]()
    run_daily(dagbag, s, SPRING)
    rows = day_rows(env["dsn"], s, SPRING)
    assert len(assert_exact(rows, s, SPRING, ["area"], 60)) == 9
    assert list(assert_exact(rows, s, SPRING, ["area"], 15)) == [("SYSTEM",)]
    check = assert_day_complete(env["dsn"], s, SPRING)
    assert {(r.minutes, r.intervals, r.entities) for r in check.resolutions} == {(60.0, 23, 9), (15.0, 92, 1)}
    p = paths(sim)  # one bulk download per report
    assert p.count("/ercot/api/api/public-reports/archive/np6-345-cd/download") == 1
    assert p.count("/ercot/api/api/public-reports/archive/np6-235-cd/download") == 1


def test_load_actual_failure_mid_run_loads_nothing_then_rerun_succeeds(env, dagbag) -> None:
    """The first bulk download (of the two reports') comes back truncated: the run fails, nothing
    of either report is loaded or staged; the re-run loads the day completely."""
    from airflow.sdk import DagRunState

    from pmp.staging import open_store

    s, day = spec("load_actual"), date(2024, 3, 11)
    sim = env["sim"]()
    sim.set_faults({"corrupt_zip": 1})
    dr = run_daily(dagbag, s, day, expect_success=False)
    assert dr.state == DagRunState.FAILED
    assert dr.get_task_instance("fetch", map_index=0).state == "failed"
    assert day_rows(env["dsn"], s, day) == []
    with psycopg.connect(env["dsn"]) as conn:
        assert conn.execute("SELECT count(*) FROM ingest_log WHERE dataset='load_actual' AND market_day=%s",
                            (day,)).fetchone()[0] == 0
    assert open_store().list("raw/ercot/load_actual/2024/03/11/") == []  # no truncated raw file kept
    sim.set_faults({"corrupt_zip": 0})
    run_daily(dagbag, s, day)
    assert_exact(day_rows(env["dsn"], s, day), s, day, ["area"], 15)
    assert_day_complete(env["dsn"], s, day)


def _forecast_checks(dsn: str, day: date, vintages: int) -> None:
    s = spec("load_forecast")
    rows = day_rows(dsn, s, day, by="forecast_issued_at")
    cols = s.schema.columns
    issued = Counter(r[cols.index("forecast_issued_at")] for r in rows)
    assert len(issued) == vintages
    start, end = market_day_bounds(day, CT)
    assert all(start <= t < end for t in issued)
    # one model in use per vintage and hour; every model kept
    in_use = Counter((r[cols.index("forecast_issued_at")], r[cols.index("interval_start")])
                     for r in rows if r[cols.index("in_use")] and r[cols.index("area")] == "SYSTEM")
    assert set(in_use.values()) == {1}
    assert {r[cols.index("model")] for r in rows} == {"A3", "A6"}
    assert {r[cols.index("area")] for r in rows} >= {"SYSTEM", "Coast", "FarWest"}
    check = assert_day_complete(dsn, s, day)
    assert (check.vintages, check.expected_vintages) == (vintages, vintages)


@pytest.fixture
def two_models(monkeypatch):
    """Two forecast models keep the ~100k rows a day of this product smaller in end-to-end runs."""
    monkeypatch.setenv("PMP_SIM_ERCOT_MODELS", "2")


def test_load_forecast_every_vintage_fall_back_via_mis(env, dagbag, two_models) -> None:
    env["sim"](now=AFTER_FALL)
    run_daily(dagbag, spec("load_forecast"), FALL)
    _forecast_checks(env["dsn"], FALL, 25)


def test_load_forecast_every_vintage_spring_via_archive(env, dagbag, two_models) -> None:
    env["sim"]()
    run_daily(dagbag, spec("load_forecast"), SPRING)
    _forecast_checks(env["dsn"], SPRING, 23)


# ------------------------------------------------------------------ fuel mix
def test_fuel_mix_fall_back_day_from_dashboard(env, dagbag) -> None:
    """With the clock on 2024-11-04, fuel-mix.json still holds all of 2024-11-03 (5-minute)."""
    s = spec("fuel_mix")
    sim = env["sim"](now=datetime(2024, 11, 4, 18, tzinfo=UTC))
    run_daily(dagbag, s, FALL)
    by = assert_exact(day_rows(env["dsn"], s, FALL), s, FALL, ["fuel"], 5)
    assert len(by) == 8 and ("Power Storage",) in by
    assert_day_complete(env["dsn"], s, FALL)
    assert not any("/files/docs/" in p for p in paths(sim))


def test_fuel_mix_spring_day_from_annual_workbook(env, dagbag) -> None:
    """History: IntGenbyFuel2024.xlsx as posted on 2024-04-07 (January to March, 15-minute)."""
    s = spec("fuel_mix")
    sim = env["sim"](now=datetime(2024, 4, 20, 18, tzinfo=UTC))
    run_daily(dagbag, s, SPRING)
    by = assert_exact(day_rows(env["dsn"], s, SPRING), s, SPRING, ["fuel"], 15)
    assert ("Gas-CC",) in by and len(by) == 9
    assert_day_complete(env["dsn"], s, SPRING)
    assert any(p.endswith("/files/docs/2024/04/07/IntGenbyFuel2024.xlsx") for p in paths(sim))


def test_fuel_mix_realtime_dag_loads_latest_intervals(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # wall clock
    dag = dagbag.get_dag("ercot_fuel_mix_realtime")
    dr = dag.test(run_conf={"lookback_minutes": 30})
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        latest = conn.execute("SELECT max(interval_end) FROM fuel_mix WHERE iso='ERCOT'"
                              " AND interval_end - interval_start = interval '5 minutes'").fetchone()[0]
    assert datetime.now(UTC) - latest < timedelta(minutes=10)


