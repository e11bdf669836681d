"""Reading the data back out (``pmp.read``, ``pmp.lake``, the SQL views, ``pmp query`` / ``plot`` /
``lake``) against a warehouse loaded from the simulator over real HTTP, SeaweedFS and TimescaleDB.

One warehouse (its own database and lake prefix) is loaded once for the module through the
pipeline's own task bodies: NYISO DAM prices on both 2024 DST days (25 and 23 hours) and the week
around the fall-back day, NYISO 5-minute prices, ancillary services and fuel mix on the fall-back
day, load on it and the days either side, three NYISO load
forecast vintages (issue days 2024-11-02..04), ERCOT 15-minute prices on the fall-back day and
the 25 hourly ERCOT forecast vintages (two models) issued that day. The lake is then
built with ``pmp lake compact``; every read runs on the database and on the lake and the frames
must be identical.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from conftest import PG, SIM_CONNECTIONS, TEST_DB, sim_conn

from pmp import lake, pipeline, read, registry
from pmp.cli import main
from pmp.simulator import nyiso as nyiso_sim
from pmp.timeutil import market_day_bounds

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("read")]

NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)
FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)
NY_ISSUE_DAYS = (date(2024, 11, 2), date(2024, 11, 3), date(2024, 11, 4))
ONE = timedelta(days=1)
DAM_DAYS = tuple(date(2024, 10, 30) + i * ONE for i in range(7))  # 10-30 .. 11-05, the fall-back day among them
DAYS = {  # dataset key -> market days loaded
    "nyiso.lmp_dam": (SPRING, *DAM_DAYS), "nyiso.lmp_rt5m": (FALL,), "nyiso.load_actual": (FALL - ONE, FALL, FALL + ONE),
    "nyiso.as_dam": (FALL,), "nyiso.fuel_mix": (FALL,), "nyiso.load_forecast": NY_ISSUE_DAYS,
    "ercot.lmp_rt15m": (FALL,), "ercot.load_forecast": (FALL,),
}
COMPACT = (("nyiso", "2024-03-10", "2024-03-11"), ("nyiso", "2024-10-30", "2024-11-11"),
           ("ercot", "2024-11-03", "2024-11-11"))  # pmp lake compact ranges: every loaded day, every day forecast


def _load(key: str, start: datetime, end: datetime) -> None:
    """discover -> fetch -> stage -> normalize -> load, as the DAG tasks run them."""
    batches = pipeline.discover(key, start.isoformat(), end.isoformat(), max_wait=timedelta(0))
    fetched = [pipeline.fetch(key, b) for b in batches]
    pipeline.load(pipeline.normalize(pipeline.stage(key, fetched)))


@pytest.fixture(scope="module")
def loaded(services: dict, staging: str) -> Iterator[dict]:
    from psycopg.conninfo import make_conninfo

    from pmp.simulator.server import start_simulator

    name = f"{TEST_DB}_read_{uuid.uuid4().hex[:6]}"
    admin = dict(host=PG["host"], port=PG["port"], user=PG["login"], password=PG["password"])
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    sim = start_simulator(now=NOW)
    lake_url = staging.rstrip("/") + f"/read-lake-{uuid.uuid4().hex[:6]}/"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_TSDB", json.dumps(dict(PG, schema=name)))
        mp.setenv("PMP_LAKE_URL", lake_url)
        mp.setenv("PMP_SIM_ERCOT_MODELS", "2")
        for conn_id in SIM_CONNECTIONS:
            mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(sim_conn(conn_id, sim.url)))
        try:
            for key, days in DAYS.items():
                spec = registry.get(*key.split("."))
                for day in days:
                    _load(key, *market_day_bounds(day, spec.timezone))
            for iso, start, end in COMPACT:
                assert main(["lake", "compact", "--iso", iso, "--start", start, "--end", end, "--quiet"]) == 0
            yield {"dsn": make_conninfo(**admin, dbname=name), "lake_url": lake_url, "sim": sim}
        finally:
            sim.stop()
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql_rows(dsn: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


DB, LAKE = read.Warehouse("db"), read.Warehouse("lake")


def both(method: str, *args: object, **kw: object) -> pd.DataFrame:
    """The same read from the database and from the lake: identical frames, returned once."""
    db_frame = getattr(DB, method)(*args, **kw)
    lake_frame = getattr(LAKE, method)(*args, **kw)
    pd.testing.assert_frame_equal(db_frame, lake_frame, check_exact=True)
    return db_frame


# ------------------------------------------------------------------------ time, no database


def test_window_dates_are_local_market_days_and_end_is_exclusive() -> None:
    ny = "America/New_York"
    w = read.window("2024-11-03", None, ny)
    assert (w.start, w.end) == market_day_bounds(FALL, ny)  # one market day: 25 hours
    assert (w.end - w.start) == timedelta(hours=25)
    w = read.window(date(2024, 3, 10), "2024-03-12", ny)
    assert w.start == datetime(2024, 3, 10, 5, tzinfo=UTC) and w.end == datetime(2024, 3, 12, 4, tzinfo=UTC)
    w = read.window(datetime(2024, 11, 3, 0, 30), "2024-11-03T12:00Z", ny)  # naive = ISO local time
    assert w.start == datetime(2024, 11, 3, 4, 30, tzinfo=UTC) and w.end == datetime(2024, 11, 3, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="ambiguous.*UTC offset"):  # 01:30 happens twice that night
        read.window("2024-11-03T01:30", None, ny)
    now = datetime(2024, 11, 5, 3, tzinfo=UTC)  # still 2024-11-04 in New York
    w = read.window("today", None, ny, now=now)
    assert (w.start, w.end) == market_day_bounds(date(2024, 11, 4), ny)
    assert read.window("latest", None, ny).latest
    assert read.window("2024-11-03", "latest", ny).end is None
    with pytest.raises(ValueError, match="end is exclusive"):
        read.window("2024-11-03", "2024-11-03", ny)
    with pytest.raises(ValueError, match="not a time"):
        read.window("yesterday", None, ny)
    assert read.market_code("real_time_15_min") == "RT15M" and read.market_code("DAY_AHEAD_HOURLY") == "DAM"
    with pytest.raises(ValueError, match="unknown market"):
        read.market_code("RT1M")


def test_workers_and_source_db_need_no_read_extras(tmp_path) -> None:
    """The DAGs (with their lake task), pmp.lake and pmp.read import without duckdb, matplotlib and
    plotly; only source="lake" asks for DuckDB, naming the extra."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "for m in ('duckdb', 'matplotlib', 'plotly'): sys.modules[m] = None\n"
        "from pmp import factory, lake, read, registry\n"
        "dags = factory.build_dags('nyiso')\n"
        "assert 'lake' in dags['nyiso_lmp_dam_daily'].task_ids\n"
        "try:\n"
        "    read.Warehouse('lake').lmp('nyiso', '2024-11-03')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = dict(os.environ, PMP_LAKE_URL=(tmp_path / "lake").as_uri() + "/")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "needs DuckDB: pip install 'power-market-pipeline[read]'" in out.stdout


# ---------------------------------------------------------------------- read functions


@pytest.mark.parametrize(("day", "hours"), [(FALL, 25), (SPRING, 23)])
def test_lmp_dst_days_have_25_and_23_hourly_rows(loaded, day: date, hours: int) -> None:
    df = both("lmp", "nyiso", day, market="DAY_AHEAD_HOURLY", locations="N.Y.C.,WEST", local_time=True)
    assert len(df) == 2 * hours
    assert str(df["interval_start"].dtype) == "datetime64[us, UTC]"
    for _, rows in df.groupby("location"):
        starts = list(rows["interval_start"])
        assert starts == [starts[0] + timedelta(hours=i) for i in range(hours)]
        assert (rows["interval_end"] - rows["interval_start"] == timedelta(hours=1)).all()
        local_hours = list(rows["interval_start_local"].dt.hour)
        assert local_hours[0] == 0 and len(local_hours) == hours
        assert local_hours.count(1) == (2 if hours == 25 else 1) and (2 in local_hours) == (hours != 23)
    start, end = market_day_bounds(day, "America/New_York")
    expected = sql_rows(loaded["dsn"], "SELECT location, interval_start, lmp, energy, congestion, loss FROM lmp"
                        " WHERE iso='NYISO' AND market='DAM' AND location IN ('N.Y.C.', 'WEST') AND interval_start >= %s"
                        " AND interval_start < %s", start, end)
    got = {(r.location, r.interval_start.to_pydatetime(), r.lmp, r.energy, r.congestion, r.loss) for r in df.itertuples()}
    assert got == set(expected)
    assert set(df["market"]) == {"DAM"} and set(df["location_type"]) == {"Zone"}


def test_lmp_window_half_open_and_gridstatus_names(loaded) -> None:
    whole = both("lmp", "nyiso", "2024-11-03", "2024-11-04", market="DAM", locations=["N.Y.C."])
    assert len(whole) == 25
    part = both("lmp", "nyiso", "2024-11-03T06:00Z", "2024-11-03T08:00Z", market="DAM", locations=["N.Y.C."])
    assert list(part["interval_start"]) == [pd.Timestamp("2024-11-03T06:00Z"), pd.Timestamp("2024-11-03T07:00Z")]
    wider = both("lmp", "nyiso", "2024-11-02", "2024-11-05", market="DAM", locations=["N.Y.C."])
    assert len(wider) == 24 + 25 + 24 and wider["interval_start"].is_monotonic_increasing
    pd.testing.assert_frame_equal(wider[wider["interval_start"].isin(whole["interval_start"])].reset_index(drop=True),
                                  whole)
    gs = read.iso("nyiso").get_lmp("2024-11-03", market="DAY_AHEAD_HOURLY", locations=["N.Y.C."])
    pd.testing.assert_frame_equal(gs, whole)
    spp = read.iso("ercot").get_spp("2024-11-03", market="REAL_TIME_15_MIN", locations="HB_HOUSTON")
    assert len(spp) == 100  # 25 hours of 15-minute intervals
    every = both("lmp", "nyiso", "2024-11-03", locations=["N.Y.C."])
    assert sorted(set(every["market"])) == ["DAM", "RT5M"] and len(every) == 25 + 300


def test_resample_five_minute_prices_to_hourly_and_daily_means(loaded) -> None:
    hourly = both("lmp", "nyiso", FALL, market="RT5M", locations="WEST", resample="1h")
    assert len(hourly) == 25
    assert list(hourly.columns) == ["interval_start", "interval_end", "iso", "market", "location", "location_type",
                                    "location_id", "lmp", "energy", "congestion", "loss", "ghg"]
    start, end = market_day_bounds(FALL, "America/New_York")
    means = sql_rows(loaded["dsn"], "SELECT date_trunc('hour', interval_start), avg(lmp), count(*) FROM lmp"
                     " WHERE iso='NYISO' AND market='RT5M' AND location='WEST' AND interval_start >= %s"
                     " AND interval_start < %s GROUP BY 1 ORDER BY 1", start, end)
    assert [c for *_, c in means] == [12] * 25
    assert list(hourly["interval_start"].dt.to_pydatetime()) == [t for t, _, _ in means]
    assert hourly["lmp"].to_numpy() == pytest.approx([m for _, m, _ in means], rel=1e-12)
    daily = both("lmp", "nyiso", FALL, market="RT5M", locations="WEST", resample="1D", agg="max")
    assert len(daily) == 1 and daily["interval_end"][0] - daily["interval_start"][0] == timedelta(hours=25)
    assert daily["lmp"][0] == max(both("lmp", "nyiso", FALL, market="RT5M", locations="WEST")["lmp"])
    with pytest.raises(ValueError, match="several resolutions"):
        DB.load("nyiso", FALL, areas="SYSTEM", resample="1h")
    with pytest.raises(ValueError, match="multiple of"):
        DB.lmp("nyiso", FALL, market="DAM", resample="15min")


def test_load_ancillary_services_and_fuel_mix(loaded) -> None:
    hourly = both("load", "nyiso", FALL, areas="SYSTEM", interval_minutes=60)
    assert len(hourly) == 25 and list(hourly.columns) == list(read.ACTUAL_LOAD_COLUMNS)
    five = both("load", "nyiso", FALL, areas=["SYSTEM"], interval_minutes=5, resample="1h")
    assert len(five) == 25
    every_area = both("load", "nyiso", FALL, local_time=True)
    assert every_area.columns[2] == "interval_start_local"
    assert len(every_area) == sql_rows(loaded["dsn"], "SELECT count(*) FROM load WHERE iso='NYISO' AND kind='actual'"
                                       " AND interval_start >= %s AND interval_start < %s",
                                       *market_day_bounds(FALL, "America/New_York"))[0][0]
    asp = both("ancillary_services", "nyiso", FALL, market="DAM")
    regions, products = asp["region"].nunique(), asp["product"].nunique()
    assert len(asp) == 25 * len(asp[["region", "product"]].drop_duplicates()) and regions and products
    one = both("ancillary_services", "nyiso", FALL, products=asp["product"].iloc[0], regions=asp["region"].iloc[0])
    assert len(one) == 25
    long = both("fuel_mix", "nyiso", FALL)
    wide = both("fuel_mix", "nyiso", FALL, wide=True)
    fuels = sorted(set(long["fuel"]))
    assert list(wide.columns) == ["interval_start", "interval_end", "iso", *fuels]
    assert len(wide) == 300 and wide[fuels].notna().all().all()
    assert wide[fuels].sum().sum() == pytest.approx(long["generation_mw"].sum(), rel=1e-12)


def test_latest_is_the_newest_interval_or_vintage(loaded) -> None:
    newest = both("lmp", "nyiso", "latest", market="RT5M")
    assert set(newest["interval_start"]) == {pd.Timestamp("2024-11-04T04:55Z")}  # last 5 minutes of the fall-back day
    assert len(newest) == newest["location"].nunique() > 10
    vintage = both("load_forecast", "nyiso", "latest")
    issued = nyiso_sim.issue_time(NY_ISSUE_DAYS[-1]).replace(second=0)
    assert set(vintage["forecast_issued_at"]) == {pd.Timestamp(issued)}
    assert len(vintage) == (24 * 6) * 12  # 2024-11-04 00:00 .. 11-09 23:00, 11 zones + SYSTEM
    first = both("load_forecast", "nyiso", "latest", as_of=(_issue(NY_ISSUE_DAYS[0]) + timedelta(minutes=1)))
    assert set(first["forecast_issued_at"]) == {_issue(NY_ISSUE_DAYS[0])}
    assert len(first) == (24 * 6 + 1) * 12  # 2024-11-02 .. 11-07, the 25-hour day among them
    dam = both("lmp", "nyiso", "latest", market="DAM", locations="N.Y.C.", local_time=True)
    assert list(dam["interval_start_local"].astype(str)) == ["2024-11-05 23:00:00-05:00"]
    assert both("lmp", "nyiso", "latest", market="HASP").empty


def _issue(day: date) -> pd.Timestamp:
    return pd.Timestamp(nyiso_sim.issue_time(day).replace(second=0))


def test_nyiso_load_forecast_as_of_is_the_vintage_newest_at_that_time(loaded) -> None:
    t1, t2, t3 = (_issue(d) for d in NY_ISSUE_DAYS)
    target = date(2024, 11, 5)  # every vintage forecasts it
    newest = both("load_forecast", "nyiso", target, areas="SYSTEM")
    assert len(newest) == 24 and set(newest["forecast_issued_at"]) == {t3}
    for as_of, want in [(t2 - timedelta(seconds=1), t1), (t2, t2), (t2 + timedelta(hours=5), t2), (t3, t3)]:
        df = both("load_forecast", "nyiso", target, areas="SYSTEM", as_of=as_of.to_pydatetime())
        assert len(df) == 24 and set(df["forecast_issued_at"]) == {want}, as_of
        stored = sql_rows(loaded["dsn"], "SELECT interval_start, load_mw FROM load WHERE iso='NYISO' AND kind='forecast'"
                          " AND area='SYSTEM' AND forecast_issued_at=%s AND interval_start >= %s AND interval_start < %s"
                          " ORDER BY 1", want.to_pydatetime(), *market_day_bounds(target, "America/New_York"))
        assert [(t.to_pydatetime(), v) for t, v in zip(df["interval_start"], df["load_mw"], strict=True)] == stored
    assert both("load_forecast", "nyiso", target, as_of=t1 - timedelta(minutes=1)).empty  # nothing issued yet
    every = both("load_forecast", "nyiso", target, areas="SYSTEM", vintages="all", as_of="2024-11-03T23:00Z")
    assert len(every) == 48 and sorted(set(every["forecast_issued_at"])) == [t1, t2]
    # a vintage forecasts from its issue day on: the 11-03 intervals have two vintages, not three
    early = both("load_forecast", "nyiso", "2024-11-03", areas="SYSTEM", vintages="all")
    assert sorted(set(early["forecast_issued_at"])) == [t1, t2] and len(early) == 2 * 25
    at_t2 = both("load_forecast", "nyiso", target, areas="SYSTEM", as_of=t2.to_pydatetime())
    view = sql_rows(loaded["dsn"], "SELECT interval_start, forecast_issued_at, load_mw FROM load_forecast_as_of("
                    "'nyiso', %s, %s, %s) WHERE area='SYSTEM' ORDER BY 1", *market_day_bounds(target, "America/New_York"),
                    t2.to_pydatetime())
    assert [(r.interval_start.to_pydatetime(), r.forecast_issued_at.to_pydatetime(), r.load_mw)
            for r in at_t2.itertuples()] == view


def test_ercot_load_forecast_as_of_per_model_through_the_repeated_hour(loaded) -> None:
    every = both("load_forecast", "ercot", "2024-11-04", vintages="all", areas="SYSTEM")
    issued = sorted(set(every["forecast_issued_at"]))
    # hourly vintages at HH:30 local: 25 on the fall-back day, 01:30 CDT (06:30Z) and 01:30 CST (07:30Z) both
    assert len(issued) == 25 and all(b - a == timedelta(hours=1) for a, b in zip(issued, issued[1:], strict=False))
    assert pd.Timestamp("2024-11-03T06:30Z") in issued and pd.Timestamp("2024-11-03T07:30Z") in issued
    models = sorted(set(every["model"]))
    assert len(models) == 2  # PMP_SIM_ERCOT_MODELS=2
    for cut, want in [(issued[0], issued[0]), (issued[6] + timedelta(minutes=59), issued[6]),
                      (issued[7], issued[7]), (None, issued[-1])]:
        df = both("load_forecast", "ercot", "2024-11-04", areas="SYSTEM", as_of=cut.to_pydatetime() if cut else None)
        assert set(df["forecast_issued_at"]) == {want}, cut
        assert df.groupby("model").size().to_dict() == dict.fromkeys(models, 24)
        expected = every[every["forecast_issued_at"] == want]
        assert sorted(zip(df["model"], df["interval_start"], df["load_mw"], strict=True)) == \
            sorted(zip(expected["model"], expected["interval_start"], expected["load_mw"], strict=True))
    assert len(set(both("load_forecast", "ercot", "2024-11-04", areas="SYSTEM", as_of=issued[3].to_pydatetime(),
                        vintages="all")["forecast_issued_at"])) == 4
    one = both("load_forecast", "ercot", "2024-11-04", areas="SYSTEM", models=models[0])
    assert len(one) == 24 and set(one["model"]) == {models[0]}
    latest = sql_rows(loaded["dsn"], "SELECT count(*) FROM load_forecast_latest WHERE iso='ERCOT' AND area='SYSTEM'"
                      " AND interval_start >= '2024-11-04T06:00Z' AND interval_start < '2024-11-05T06:00Z'")
    assert latest == [(48,)]


# --------------------------------------------------------------------------------- lake


def _counts(dsn: str) -> dict[tuple[str, str], int]:
    out = {}
    for spec in registry.datasets():
        if spec.iso not in ("nyiso", "ercot"):
            continue
        from pmp.checks import where

        cond, params = where(spec)
        with psycopg.connect(dsn) as conn:
            n = conn.execute(f"SELECT count(*) FROM {spec.table} WHERE " + cond.as_string(conn), params).fetchone()[0]
        if n:
            out[(spec.iso.upper(), spec.dataset)] = n
    return out


def test_duckdb_over_the_hive_lake_counts_exactly_the_warehouse_rows(loaded, tmp_path) -> None:
    import duckdb

    url = (tmp_path / "lake").as_uri() + "/"
    for iso, start, end in COMPACT:
        assert main(["lake", "compact", "--iso", iso, "--start", start, "--end", end, "--lake-url", url, "--quiet"]) == 0
    files = sorted(p.relative_to(tmp_path / "lake").as_posix() for p in (tmp_path / "lake").rglob("*.parquet"))
    assert "iso=NYISO/dataset=lmp_dam/date=2024-11-03/data.parquet" in files
    assert "iso=NYISO/dataset=lmp_dam/date=2024-03-10/data.parquet" in files
    glob = str(tmp_path / "lake" / "**" / "*.parquet")
    con = duckdb.connect()
    rows = con.sql(f"SELECT iso, dataset, count(*) FROM read_parquet('{glob}', hive_partitioning = true, "
                   "union_by_name = true) GROUP BY ALL").fetchall()
    counts = _counts(loaded["dsn"])
    assert {(i, d): n for i, d, n in rows} == counts
    locations = sql_rows(loaded["dsn"], "SELECT count(DISTINCT location) FROM lmp WHERE iso='NYISO' AND market='DAM'")[0][0]
    assert counts[("NYISO", "lmp_dam")] == locations * (6 * 24 + 25 + 23) and counts[("ERCOT", "load_forecast")] > 0
    # per market day as well, e.g. the 25-hour day's DAM rows
    day = con.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
                  " WHERE iso = 'NYISO' AND dataset = 'lmp_dam' AND date = '2024-11-03'").fetchall()[0][0]
    assert day == locations * 25
    # the read API over this local lake gives the database's frames too
    local = read.Warehouse("lake", lake_url=url)
    pd.testing.assert_frame_equal(local.lmp("nyiso", SPRING, market="DAM"), DB.lmp("nyiso", SPRING, market="DAM"))
    pd.testing.assert_frame_equal(local.load_forecast("ercot", "2024-11-05", vintages="all"),
                                  DB.load_forecast("ercot", "2024-11-05", vintages="all"))
    # the S3 lake the read API uses holds the same files
    s3 = lake.open_lake(loaded["lake_url"])
    assert sorted(s3.list("iso=")) == files


def test_reload_replaces_rather_than_adds(loaded) -> None:
    spec = registry.get("nyiso", "lmp_dam")
    store = lake.open_lake()
    before = lake.read_days(store, spec, [FALL])
    batches = pipeline.discover(spec.key, *[t.isoformat() for t in market_day_bounds(FALL, spec.timezone)],
                                reload=True, max_wait=timedelta(0))
    fetched = [pipeline.fetch(spec.key, b) for b in batches]
    pipeline.load(pipeline.normalize(pipeline.stage(spec.key, fetched, reload=True)))
    result = lake.compact_window(spec.key, *[t.isoformat() for t in market_day_bounds(FALL, spec.timezone)])
    assert result["days"] == {FALL.isoformat(): before.num_rows} and before.num_rows % 25 == 0
    assert store.list(lake.dataset_prefix(spec) + f"date={FALL}/") == [lake.day_key(spec, FALL)]
    assert lake.read_days(store, spec, [FALL]).equals(before)
    # a day whose rows leave the warehouse leaves the lake too (the delete is rolled back afterwards)
    other = registry.get("nyiso", "as_dam")
    rows = len(both("ancillary_services", "nyiso", FALL, market="DAM"))
    with psycopg.connect(loaded["dsn"]) as conn, conn.transaction():
        conn.execute("DELETE FROM ancillary_services WHERE iso='NYISO' AND market='DAM'")
        assert lake.compact_day(conn, store, other, FALL) == 0
        raise psycopg.Rollback()
    assert lake.list_days(store, other) == []
    assert lake.compact_days(other, [FALL]) == {FALL.isoformat(): rows}
    assert lake.list_days(store, other) == [FALL]


def test_forecast_lake_days_are_the_days_forecast(loaded) -> None:
    spec = registry.get("nyiso", "load_forecast")
    days = lake.list_days(lake.open_lake(), spec)
    assert days == [date(2024, 11, 2) + timedelta(days=i) for i in range(8)]  # 11-02 .. 11-09 (issue + 5 days)
    with psycopg.connect(loaded["dsn"]) as conn:
        touched = lake.days_touched(conn, spec, *market_day_bounds(date(2024, 11, 3), spec.timezone))
    assert touched == [date(2024, 11, 3) + timedelta(days=i) for i in range(6)]


# ---------------------------------------------------------------------------------- CLI


def test_pmp_query_lmp_csv_parquet_and_table(loaded, tmp_path, capsys) -> None:
    argv = ["query", "lmp", "--iso", "ercot", "--market", "RT15M", "--locations", "HB_HOUSTON,HB_NORTH",
            "--start", "2024-11-03", "--end", "2024-11-04"]
    assert main([*argv, "--format", "csv"]) == 0
    text = capsys.readouterr().out
    out = pd.read_csv(io.StringIO(text))
    assert main([*argv, "--format", "csv", "--source", "lake"]) == 0
    assert capsys.readouterr().out == text  # the same bytes, and nothing logged into the data
    assert len(out) == 200 and sorted(set(out["location"])) == ["HB_HOUSTON", "HB_NORTH"]
    frame = both("lmp", "ercot", "2024-11-03", "2024-11-04", market="RT15M", locations=["HB_HOUSTON", "HB_NORTH"])
    assert list(out["lmp"]) == list(frame["lmp"])
    path = tmp_path / "x.parquet"
    assert main([*argv, "--format", "parquet", "--out", str(path), "--source", "lake"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert main([*argv, "--format", "table", "--resample", "1h"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 1 + 50 and "HB_HOUSTON" in table[1]
    assert main(["query", "load-forecast", "--iso", "nyiso", "--start", "2024-11-05", "--areas", "SYSTEM",
                 "--as-of", _issue(NY_ISSUE_DAYS[1]).isoformat(), "--format", "csv"]) == 0
    lf = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(lf) == 24 and set(lf["forecast_issued_at"]) == {str(_issue(NY_ISSUE_DAYS[1]))}
    assert main(["query", "load", "--iso", "nyiso", "--start", "2024-11-03", "--locations", "X"]) == 2
    assert "does not apply" in capsys.readouterr().err
    assert main(["query", "lmp", "--iso", "nyiso", "--start", "2024-11-03", "--end", "2024-11-03"]) == 2


def test_sql_views_hub_zone_prices_and_actual_load(loaded) -> None:
    zones = sql_rows(loaded["dsn"], "SELECT DISTINCT iso, location_class, location_type FROM hub_zone_prices ORDER BY 1, 3")
    assert ("NYISO", "zone", "Zone") in zones and ("ERCOT", "hub", "HU") in zones and ("ERCOT", "zone", "LZ") in zones
    hubs = sql_rows(loaded["dsn"], "SELECT count(*) FROM hub_prices WHERE iso='ERCOT' AND market='RT15M'")[0][0]
    ercot = DB.lmp("ercot", FALL, market="RT15M", location_type="HU,SH,AH")
    assert hubs == len(ercot) > 0
    nyc = sql_rows(loaded["dsn"], "SELECT count(*) FROM zone_prices WHERE iso='NYISO' AND market='DAM' AND location='N.Y.C.'")
    assert nyc == [(6 * 24 + 25 + 23,)]
    actual = sql_rows(loaded["dsn"], "SELECT count(*) FROM load_actual WHERE iso='NYISO'")[0][0]
    assert actual == len(DB.load("nyiso", FALL - ONE, FALL + 2 * ONE))


def test_readme_sql_examples_run(loaded) -> None:
    """The README's SQL examples of the views return what they say."""
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    section = text[text.index("### SQL views"):text.index("### The Parquet lake")]
    blocks = [b.split("```", 1)[0] for b in section.split("```sql\n")[1:]]
    assert blocks
    code = ["\n".join(line for line in b.splitlines() if not line.lstrip().startswith("--")) for b in blocks]
    results = [sql_rows(loaded["dsn"], q) for c in code for q in c.split(";") if q.strip()]
    assert len(results) == 2 and all(results)
    hubs, errors = results
    assert {loc for _, loc, _ in hubs} >= {"HB_HOUSTON", "HB_NORTH"} and len({h for h, _, _ in hubs}) == 25
    assert len(errors) == 24 and all(e == pytest.approx(a - f) for _, f, a, e in errors)


def test_pmp_plot_writes_charts(loaded, tmp_path) -> None:
    """The three charts as PNGs; ``PMP_DOCS_CHARTS=docs`` also copies them there (the README's)."""
    import shutil

    from PIL import Image

    from pmp import charts as ch

    charts = {
        "price-heatmap.png": ["price-heatmap", "--iso", "nyiso", "--market", "DAM", "--location", "N.Y.C.",
                              "--start", "2024-10-30", "--end", "2024-11-06"],
        "load-forecast.png": ["load-forecast", "--iso", "nyiso", "--start", "2024-11-02", "--end", "2024-11-06",
                              "--as-of", "2024-11-03T12:00Z"],
        "coverage.png": ["coverage", "--iso", "nyiso", "--start", "2024-10-28", "--end", "2024-11-07", "--quiet"],
    }
    for name, argv in charts.items():
        assert main(["plot", *argv, "--out", str(tmp_path / name)]) == 0, name
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG" and img.width > 500 and img.height > 300
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 20, name  # drawn, not blank
        if os.environ.get("PMP_DOCS_CHARTS"):
            shutil.copy(tmp_path / name, os.path.join(os.environ["PMP_DOCS_CHARTS"], name))
    grid = ch.price_heatmap("nyiso", "N.Y.C.", "2024-10-30", "2024-11-06").data
    assert grid.shape == (24, 7) and grid.notna().all().all()  # the repeated 01:00 of 11-03 is averaged
    assert grid.loc[1, FALL] == pytest.approx(
        DB.lmp("nyiso", "2024-11-03T05:00Z", "2024-11-03T07:00Z", market="DAM", locations="N.Y.C.")["lmp"].mean())
    spring = ch.price_heatmap("nyiso", "N.Y.C.", "2024-03-10", "2024-03-11").data
    assert spring.isna().sum().sum() == 1 and pd.isna(spring.loc[2].iloc[0])  # 02:00 does not exist that day
    lines = ch.load_vs_forecast("nyiso", "2024-11-02", "2024-11-06", as_of="2024-11-03T12:00Z").data
    assert lines["actual"].count() == 24 + 25 + 24  # hourly means of the 5-minute actuals
    forecast = [c for c in lines.columns if c.startswith("forecast")]
    # per interval the vintage newest at as_of: 11-02's for 11-02, 11-03's from 11-03 on
    assert len(forecast) == 1 and lines[forecast[0]].count() == 24 + 25 + 24 + 24
    cov = ch.coverage("nyiso", "2024-10-28", "2024-11-07", quiet=True).data
    assert cov.loc["nyiso.lmp_dam", FALL] == 1.0 and pd.isna(cov.loc["nyiso.lmp_dam", date(2024, 10, 28)])
    assert main(["plot", "price-heatmap", "--iso", "nyiso", "--start", "2024-11-03", "--end", "2024-11-04",
                 "--out", str(tmp_path / "x.png")]) == 2  # no --location
    html = tmp_path / "heat.html"  # plotly
    assert main(["plot", *charts["price-heatmap.png"], "--out", str(html)]) == 0
    page = html.read_text()
    assert "plotly" in page.lower() and "N.Y.C." in page and "2024-11-03" in page and len(page) > 100_000


def test_daily_dag_lake_task_writes_the_days_file(loaded, airflow_db, dagbag) -> None:
    from helpers import run_daily

    spec = registry.get("nyiso", "lmp_rt60m")
    store = lake.open_lake()
    assert lake.list_days(store, spec) == []
    dr = run_daily(dagbag, spec, FALL)
    assert dr.get_task_instance("lake").state == "success"
    assert lake.list_days(store, spec) == [FALL]
    pd.testing.assert_frame_equal(DB.lmp("nyiso", FALL, market="RT60M"), LAKE.lmp("nyiso", FALL, market="RT60M"))
    assert os.environ["PMP_LAKE_URL"] == loaded["lake_url"]
