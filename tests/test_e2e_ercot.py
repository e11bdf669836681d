"""End to end with ``dag.test()``: simulator (real HTTP) -> SeaweedFS -> TimescaleDB.

DST days on both routes: 2024-11-03 (25 h) through MIS with the simulator's clock two days later,
and 2024-03-10 (23 h) through the Public API archive with the simulator at the real clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pendulum
import psycopg
import pytest

from pmp import registry
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

CT = "America/Chicago"
PER_DAY = {  # intervals per location: (23 h, 24 h, 25 h)
    "lmp_dam": {23: 23, 24: 24, 25: 25},
    "lmp_rt15m": {23: 92, 24: 96, 25: 100},
    "lmp_rt5m": {23: 276, 24: 288, 25: 300},
}


def run_daily(dagbag, dataset: str, day: date, **conf):
    from airflow.sdk import DagRunState

    dag = dagbag.get_dag(f"ercot_{dataset}_daily")
    dr = dag.test(logical_date=market_day_end(day), run_conf=conf or None)
    assert dr.data_interval_start == market_day_bounds(day, CT)[0]
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    return dr


def market_day_end(day: date) -> pendulum.DateTime:
    """A manual run at the end of the market day covers that day (the last complete interval)."""
    nxt = day + timedelta(days=1)
    return pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=CT)


def day_rows(dsn: str, dataset: str, day: date) -> list[tuple]:
    spec = registry.get("ercot", dataset)
    start, end = market_day_bounds(day, CT)
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT location, interval_start, interval_end, lmp, location_type, published_at, source FROM lmp"
            " WHERE iso='ERCOT' AND market=%s AND interval_start >= %s AND interval_start < %s"
            " ORDER BY location, interval_start",
            (spec.market, start, end),
        ).fetchall()


def assert_day_exact(rows: list[tuple], dataset: str, day: date) -> None:
    start, end = market_day_bounds(day, CT)
    hours = int((end - start).total_seconds() // 3600)
    step = timedelta(minutes=registry.get("ercot", dataset).interval_minutes)
    by_loc: dict[str, list[datetime]] = {}
    for loc, s, e, lmp, *_ in rows:
        assert e - s == step
        assert lmp is not None
        by_loc.setdefault(loc, []).append(s)
    assert by_loc, "no rows loaded"
    expected = [start + i * step for i in range(PER_DAY[dataset][hours])]
    for loc, starts in by_loc.items():
        assert starts == expected, f"{dataset} {day} {loc}: {len(starts)} intervals"
    if dataset == "lmp_rt15m":  # RT settlement point prices publish every load zone twice (LZ, LZEW)
        assert "LZ_HOUSTON" in by_loc and "LZ_HOUSTON_EW" in by_loc


@pytest.mark.parametrize(("dataset", "twice"), [("lmp_dam", True), ("lmp_rt15m", True), ("lmp_rt5m", False)])
def test_fall_back_day_via_mis_twice_identical(env, dagbag, dataset: str, twice: bool) -> None:
    day = date(2024, 11, 3)
    env["sim"](now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    run_daily(dagbag, dataset, day)
    first = day_rows(env["dsn"], dataset, day)
    assert_day_exact(first, dataset, day)
    if twice:  # same day again, forcing a re-fetch: tables identical, no duplicates (300 SCED files: once)
        run_daily(dagbag, dataset, day, reload=True)
        assert day_rows(env["dsn"], dataset, day) == first
    with psycopg.connect(env["dsn"]) as conn:
        n_docs, revisions = conn.execute(
            "SELECT count(*), max(revision) FROM ingest_log WHERE iso='ercot' AND dataset=%s AND market_day=%s",
            (dataset, day),
        ).fetchone()
    assert n_docs == {"lmp_dam": 1, "lmp_rt15m": 100, "lmp_rt5m": 300}[dataset]
    assert revisions == 1
    with psycopg.connect(env["dsn"]) as conn:  # hubs reach hub_prices in every market, DAM typed by name
        hubs = conn.execute("SELECT DISTINCT location_type FROM hub_prices WHERE iso='ERCOT' AND market=%s"
                            " AND interval_start >= %s AND interval_start < %s",
                            ({"lmp_dam": "DAM", "lmp_rt15m": "RT15M", "lmp_rt5m": "RT5M"}[dataset],
                             *market_day_bounds(day, "America/Chicago"))).fetchall()
    assert "HU" in {h[0] for h in hubs} <= {"HU", "SH", "AH"}


@pytest.mark.parametrize("dataset", ["lmp_dam", "lmp_rt15m", "lmp_rt5m"])
def test_spring_forward_day_via_public_api_archive(env, dagbag, dataset: str) -> None:
    day = date(2024, 3, 10)
    sim = env["sim"]()  # real clock: 2024 is long out of MIS retention
    run_daily(dagbag, dataset, day)
    assert_day_exact(day_rows(env["dsn"], dataset, day), dataset, day)
    paths = [p for _, p in sim.requests]
    assert any("/oauth2/v2.0/token" in p for p in paths), "B2C token was not requested"
    assert any(p.split("?")[0].endswith("/download") for p in paths), "bulk archive download not used"


def test_raw_files_staged_immutable_and_normalized_parquet(env, dagbag) -> None:
    from pmp.staging import open_store

    day = date(2024, 11, 3)
    env["sim"](now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    run_daily(dagbag, "lmp_dam", day)
    store = open_store()
    raw = store.list("raw/ercot/lmp_dam/2024/11/03/")
    assert len(raw) == 1 and raw[0].endswith("DAMSPNP4190.csv.zip")
    assert store.list("normalized/ercot/lmp_dam/2024/11/03/")


def test_failed_run_loads_nothing_and_rerun_succeeds(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    day = date(2024, 11, 2)
    sim = env["sim"](now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    sim.set_faults({"corrupt_zip": -1})
    dag = dagbag.get_dag("ercot_lmp_rt15m_daily")
    dr = dag.test(logical_date=market_day_end(day))
    assert dr.state == DagRunState.FAILED
    assert dr.get_task_instance("fetch", map_index=0).state == "failed"
    assert day_rows(env["dsn"], "lmp_rt15m", day) == []
    from pmp.staging import open_store

    assert open_store().list("raw/ercot/lmp_rt15m/2024/11/02/") == []  # no truncated file kept
    sim.set_faults({"corrupt_zip": 0})
    run_daily(dagbag, "lmp_rt15m", day)
    assert_day_exact(day_rows(env["dsn"], "lmp_rt15m", day), "lmp_rt15m", day)


def test_realtime_dag_loads_latest_intervals(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # simulator on the wall clock
    dag = dagbag.get_dag("ercot_lmp_rt5m_realtime")
    dr = dag.test(run_conf={"lookback_minutes": 30})
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        latest = conn.execute("SELECT max(interval_end) FROM lmp WHERE iso='ERCOT' AND market='RT5M'").fetchone()[0]
    assert datetime.now(UTC) - latest < timedelta(minutes=15)
    # nothing new a moment later: the run still succeeds (and its freshness check still runs)
    dr = dag.test(run_conf={"lookback_minutes": 30})
    assert dr.state == DagRunState.SUCCESS
    ti = dr.get_task_instance("ingest")  # one task: nothing fetched or loaded, freshness still checked
    out = ti.xcom_pull(task_ids="ingest")
    assert ti.state == "success" and out["documents"] == 0 and out["loaded"]["rows"] == 0
    assert out["check"]["lag_minutes"] < 15


def test_2019_day_via_the_annual_file_without_api_credentials(env, dagbag) -> None:
    """No Public API credentials on the connection: 2019-01-05, long out of MIS, comes from the
    annual NP4-180-ER file (MIS, no auth) as re-posted on 2019-02-18. The daily DAG's normalize
    task is the Rust operator; the xlsx goes to the Python normalizer from inside it. Hubs and load
    zones only, every hour exact, values those of the simulator's DAM prices."""
    from pmp.simulator import ercot as simulator

    day = date(2019, 1, 5)
    sim = env["sim"](now=datetime(2019, 2, 20, 18, tzinfo=UTC), extra={"ercot_default": {"subscription_key": ""}})
    run_daily(dagbag, "lmp_dam", day)
    rows = day_rows(env["dsn"], "lmp_dam", day)
    assert_day_exact(rows, "lmp_dam", day)
    assert {loc for loc, *_ in rows} == set(simulator.ANNUAL_DAM_POINTS) and len(rows) == 15 * 24
    for loc, start, _end, lmp, _typ, published, source in rows:
        assert lmp == simulator.price("DAM", loc, start)
        assert source.endswith(".DAMLZHBSPP_2019.xlsx")
        local = published.astimezone(ZoneInfo(CT))  # the posting time: Monday 2019-02-18, a little after 05:00
        assert (local.date(), local.hour, local.minute) == (date(2019, 2, 18), 5, 0)
    assert not any("/ercot/api/" in p for _, p in sim.requests), "no Public API call without credentials"
    with psycopg.connect(env["dsn"]) as conn:
        (doc,) = conn.execute("SELECT source_id, market_day, rows, source_name FROM ingest_log"
                              " WHERE iso='ercot' AND dataset='lmp_dam' AND market_day='2019-01-01'").fetchall()
    assert doc[0].endswith("@2019-01") and doc[2] == 31 * 24 * 15  # the month's sheet, loaded once
    assert doc[3].endswith(".DAMLZHBSPP_2019.xlsx")
