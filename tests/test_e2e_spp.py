"""SPP end to end with ``dag.test()``: simulator (the marketplace file browser over real HTTP) ->
SeaweedFS -> TimescaleDB.

Every dataset on both 2024 DST days (2024-03-10: 23 hours, 2024-11-03: 25 hours, with the ``d`` files);
missing interval files: the check names exactly which intervals are missing and a later run fills them
when the files appear; the real-time DAGs load today's intervals; ``pmp download`` and ``pmp catalog
--days``; the simulator's layout over HTTP (folders, ``d`` names, 404 for names SPP does not have).
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
import requests
from helpers import assert_day_complete, day_rows, run_daily

from pmp import checks, registry
from pmp.cli import main
from pmp.isos.spp import files
from pmp.simulator import spp as sim_spp
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 8, 18, tzinfo=UTC)
FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)
DATASETS = ["lmp_dam", "lmp_rt5m", "as_dam", "as_rt5m", "load_actual", "load_forecast", "fuel_mix"]


def spec(dataset: str):
    return registry.get("spp", dataset)


@pytest.mark.parametrize("day", [SPRING, FALL], ids=["spring", "fall"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_end_to_end_on_both_dst_days(env, dagbag, dataset: str, day: date) -> None:
    sim = env["sim"](now=NOW)
    s = spec(dataset)
    run_daily(dagbag, s, day)
    check = assert_day_complete(env["dsn"], s, day)
    hours = 23 if day == SPRING else 25
    assert check.hours == hours
    start, end = market_day_bounds(day, s.timezone)
    cols = s.schema.columns
    paths = [p for _, p in sim.requests if "/spp/portal/" in p]
    if dataset == "load_forecast":
        rows = [dict(zip(cols, r, strict=True)) for r in day_rows(env["dsn"], s, day, by="forecast_issued_at")]
        issued = sorted({r["forecast_issued_at"] for r in rows})
        assert issued == [start + timedelta(hours=h) for h in range(hours)]  # every hourly vintage, 23 / 25
        assert all(r["interval_end"] > r["forecast_issued_at"] for r in rows)
        assert len(rows) == hours * 168 and {r["model"] for r in rows} == {"MTLF"}
        if day == FALL:  # the second 01:00 issue is the d file
            assert any("OP-MTLF-202411030100d.csv" in p for p in paths)
        return
    rows = [dict(zip(cols, r, strict=True)) for r in day_rows(env["dsn"], s, day)]
    step = timedelta(minutes=s.interval_minutes)
    starts = sorted({r["interval_start"] for r in rows})
    assert starts == [start + i * step for i in range(int((end - start) / step))]
    assert {r["interval_end"] - r["interval_start"] for r in rows} == {step}
    if s.table == "lmp":
        names = {n for n, _, _ in sim_spp.locations(day)}
        assert {r["location"] for r in rows} == names and len(rows) == len(starts) * len(names)
        for r in rows:
            assert math.isclose(r["energy"] + r["congestion"] + r["loss"], r["lmp"], abs_tol=5e-5)
        assert {r["location_type"] for r in rows} == {"Hub", "Interface", "Settlement Location"}
        with psycopg.connect(env["dsn"]) as conn:  # the read views know SPP's hubs (sql/070)
            hubs = conn.execute("SELECT DISTINCT location FROM hub_prices WHERE iso='SPP' AND market=%s"
                                " AND interval_start >= %s AND interval_start < %s", (s.market, start, end)).fetchall()
        assert sorted(h for (h,) in hubs) == ["SPPNORTH_HUB", "SPPSOUTH_HUB"]
        if dataset == "lmp_rt5m":  # the daily run takes the By_Day roll-up: one request, not 288
            assert {r["source"] for r in rows} == {f"RTBM-LMP-DAILY-SL-{day:%Y%m%d}.csv"}
            assert not any("By_Interval" in p for p in paths)
    if s.table == "ancillary_services":
        products = {r["product"] for r in rows}
        assert products >= set(s.expected_entities["product"]) and {"RampUP", "RampDN", "UncUP"} <= products
        assert {r["region"] for r in rows} == set(sim_spp.ZONES)
    if dataset == "load_actual":
        assert {r["area"] for r in rows} == {"SYSTEM"} and {r["model"] for r in rows} == {""}
        assert all(r["forecast_issued_at"] == r["interval_end"] for r in rows)
    if dataset == "fuel_mix":
        assert {r["fuel"] for r in rows} == set(sim_spp.FUELS) and len(rows) == len(starts) * 10
        assert {r["source"] for r in rows} == {"GenMix365_SPP.csv"}  # 2024 is not archived at NOW


def test_missing_interval_files_are_reported_exactly_then_filled(env, dagbag, private_warehouse) -> None:
    """SPP simply lacks some 5-minute files. With the By_Day roll-up not posted, the daily run takes
    the interval files: the check names exactly the intervals whose file was missing (404) or empty,
    and a later run, once the files are there, fills them and the day is complete."""
    s = spec("lmp_rt5m")
    sim = env["sim"](now=datetime(2024, 11, 4, 12, tzinfo=UTC))
    sim.set_faults({"spp_missing_intervals": -1, "spp_no_daily_file": -1})
    gone = sim_spp.missing_intervals(s.params["family"].fs, FALL)
    assert {"404", "empty"} <= set(gone.values())
    expected = sorted((end - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%MZ") for end in gone)
    dr = run_daily(dagbag, s, FALL, expect_success=False)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["load"] == "success" and states["check"] == "failed"
    with psycopg.connect(private_warehouse) as conn:
        day = checks.check_day(conn, s, FALL)
    assert not day.complete
    (res,) = day.resolutions
    assert (res.intervals, res.expected_intervals) == (300 - len(gone), 300)
    assert res.missing == expected  # exactly which
    assert day.problems == [f"{300 - len(gone)}/300 5min intervals (missing {', '.join(expected)})"]
    requested = [p for _, p in sim.requests if "By_Interval" in p]
    assert len(requested) == 300 and any("RTBM-LMP-SL-202411030105d.csv" in p for p in requested)

    sim.set_faults({"spp_missing_intervals": 0})  # the files appear at SPP
    sim.requests.clear()
    run_daily(dagbag, s, FALL)
    check = assert_day_complete(private_warehouse, s, FALL)
    assert check.resolutions[0].intervals == 300
    again = [p for _, p in sim.requests if "By_Interval" in p]
    assert len(again) == len(gone)  # only the missing files are asked for again
    with psycopg.connect(private_warehouse) as conn:
        n = conn.execute("SELECT count(DISTINCT interval_end) FROM lmp WHERE iso='SPP' AND market='RT5M'"
                         " AND interval_end = ANY(%s)", (list(gone),)).fetchone()[0]
    assert n == len(gone)


def test_a_bad_value_fails_the_run_naming_file_line_and_field_and_loads_nothing(
        env, private_warehouse, dagbag, capfd, monkeypatch, request) -> None:
    """A day-ahead file with a value SPP never publishes: normalize fails with the file, line and
    field named; nothing of the day is loaded (one transaction), the raw file stays for inspection,
    and a re-run, once SPP serves the file right, loads the day complete. A warehouse and raw stage
    of the test's own: the DST-day test loads the same day into the session's."""
    from pmp.staging import open_store

    env = {**env, "dsn": private_warehouse}
    monkeypatch.setenv("PMP_STAGING_URL", f"{os.environ['PMP_STAGING_URL']}{request.node.name}/")

    s = spec("lmp_dam")
    sim = env["sim"](now=NOW)
    sim.set_faults({"spp_bad_row": 1})
    dr = run_daily(dagbag, s, FALL, expect_success=False)
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["fetch"] == "success" and states["normalize"] == "failed" and states["load"] != "success"
    # the raw stage's immutable copy (SPP's name + content hash), the line and the field
    named = (rf"NormalizeError: DA-LMP-SL-{FALL:%Y%m%d}0100\.[0-9a-f]{{8}}\.csv, line {sim_spp.BAD_LINE}, "
             r"field 'LMP': not a number: '#VALUE!'")
    assert re.search(named, "".join(capfd.readouterr())), "the task error does not name file, line and field"
    assert day_rows(env["dsn"], s, FALL) == []

    def ingested() -> int:
        with psycopg.connect(env["dsn"]) as conn:
            return conn.execute("SELECT count(*) FROM ingest_log WHERE iso='spp' AND dataset='lmp_dam'"
                                " AND market_day=%s", (FALL,)).fetchone()[0]

    assert ingested() == 0
    raw = f"raw/spp/lmp_dam/{FALL:%Y/%m/%d}/"
    assert len(open_store().list(raw)) == 1  # the bad file, kept as fetched
    run_daily(dagbag, s, FALL)  # the fault is spent: SPP serves the file right
    assert_day_complete(env["dsn"], s, FALL)
    assert ingested() == 1 and len(open_store().list(raw)) == 2  # the good copy has its own key


def test_realtime_dags_load_the_current_intervals(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # wall clock
    began = {}
    for dataset, conf in (("lmp_rt5m", {"lookback_minutes": 30}), ("as_rt5m", {"lookback_minutes": 20}),
                          ("fuel_mix", {}), ("load_forecast", {"lookback_minutes": 130, "max_lag_minutes": 90}),
                          ("load_actual", {"lookback_minutes": 130, "max_lag_minutes": 90})):
        began[dataset] = datetime.now(UTC)
        dr = dagbag.get_dag(spec(dataset).realtime_dag_id).test(run_conf=conf)
        assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        lmp = conn.execute("SELECT max(interval_end), count(DISTINCT interval_end) FROM lmp WHERE iso='SPP'"
                           " AND market='RT5M' AND interval_end > %s", (began["lmp_rt5m"] - timedelta(minutes=35),)
                           ).fetchone()
        mcp = conn.execute("SELECT max(interval_end) FROM ancillary_services WHERE iso='SPP' AND market='RT5M'"
                           ).fetchone()[0]
        mix = conn.execute("SELECT count(DISTINCT interval_end) FROM fuel_mix WHERE iso='SPP' AND interval_end > %s",
                           (began["fuel_mix"] - timedelta(hours=2),)).fetchone()[0]
        issued = conn.execute("SELECT max(forecast_issued_at) FROM load WHERE iso='SPP' AND kind='forecast'"
                              ).fetchone()[0]
    assert began["lmp_rt5m"] - lmp[0] < timedelta(minutes=8) and lmp[1] >= 4  # the posted files of 30 minutes
    assert mcp > began["as_rt5m"] - timedelta(minutes=1)  # MCPs are posted before their interval ends
    assert mix >= 22
    assert began["load_forecast"] - issued < timedelta(minutes=70)


def test_download_then_catalog_shows_the_demo_days_complete(env, capsys) -> None:
    env["sim"](now=NOW)
    for dataset in DATASETS:
        assert main(["download", "--iso", "spp", "--dataset", dataset, "--start", "2024-11-02", "--end",
                     "2024-11-05", "--quiet"]) == 0, dataset  # --end is exclusive
    capsys.readouterr()
    assert main(["catalog", "--iso", "spp", "--days", "--start", "2024-11-02", "--end", "2024-11-05"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for dataset in DATASETS:
        i = next(n for n, line in enumerate(lines) if line.startswith(f"spp    {dataset} "))
        block = lines[i + 1:i + 4]
        for day in ("2024-11-02", "2024-11-03", "2024-11-04"):
            line = next(x for x in block if day in x)
            assert line.endswith("complete") and "INCOMPLETE" not in line, line
    assert "25/25x60min intervals" in out and "300/300x5min intervals" in out and "25/25 vintages" in out


def test_simulator_layout_over_http(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    base = f"{sim.url}/spp/portal/file-browser-api/download/rtbm-lmp-by-location?path="

    def get(path: str) -> requests.Response:
        return requests.get(base + path, timeout=30)

    first = get("/2024/11/By_Interval/03/RTBM-LMP-SL-202411030105.csv")
    second = get("/2024/11/By_Interval/03/RTBM-LMP-SL-202411030105d.csv")
    assert first.status_code == second.status_code == 200
    assert first.text.splitlines()[1].startswith("11/03/2024 01:05:00,11/03/2024 06:05:00,")  # 01:05 CDT
    assert second.text.splitlines()[1].startswith("11/03/2024 01:05:00,11/03/2024 07:05:00,")  # 01:05 CST
    assert get("/2024/11/By_Interval/03/RTBM-LMP-SL-202411030205d.csv").status_code == 404  # not repeated
    midnight = get("/2024/11/By_Interval/03/RTBM-LMP-SL-202411040000.csv")  # folder of the interval start
    assert midnight.status_code == 200 and ",11/04/2024 06:00:00," in midnight.text
    wrong = get("/2024/11/By_Interval/04/RTBM-LMP-SL-202411040000.csv")
    assert (wrong.status_code, wrong.content) == (404, b"")  # SPP's "no file": 404, empty body
    assert get("/2024/03/By_Interval/10/RTBM-LMP-SL-202403100205.csv").status_code == 404  # the gap
    assert get("/2024/03/By_Interval/10/RTBM-LMP-SL-202403100300.csv").text.splitlines()[1].startswith(
        "03/10/2024 03:00:00,03/10/2024 08:00:00,")
    daily = get("/2024/11/By_Day/RTBM-LMP-DAILY-SL-20241103.csv").text.splitlines()
    assert daily[0].startswith("Interval, GMT Interval, Settlement Location Name")
    assert len(daily) == 1 + 300 * len(sim_spp.locations(FALL))
    latest = get("/RTBM-LMP-SL-latestInterval.csv").text.splitlines()[1]
    newest = datetime.strptime(latest.split(",")[1], "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
    assert timedelta(0) < NOW - newest <= timedelta(minutes=8)
    assert files.interval_path("RTBM-LMP-SL", newest).rsplit("-", 1)[1] == f"{files.local(newest):%Y%m%d%H%M}.csv"
