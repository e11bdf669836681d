"""MISO end to end with ``dag.test()``: simulator (real HTTP) -> SeaweedFS -> TimescaleDB.

Every dataset's daily DAG runs on both 2024 DST days - for MISO (EST all year) both are 24-hour
days, 05:00Z to 05:00Z, and a spot value of HE 3 on the spring-forward day proves the hour is
placed by EST, not America/New_York. Then: preliminary prices replaced by finals (hourly prelim ->
final through the catch-up of finals; 5-minute Data Exchange prelims -> the weekly archive), the
real-time DAGs on the wall clock, ``pmp download`` of every dataset and ``pmp catalog --days``.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from helpers import assert_day_complete, day_rows, hub_zone_locations, run_daily

from pmp import registry
from pmp.cli import main
from pmp.simulator import miso as sim
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

NOW = datetime(2025, 1, 10, 18, tzinfo=UTC)  # every 2024 final (weekly archives, annual fuel mix) is out
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
DATASETS = [s.dataset for s in registry.datasets("miso")]


@pytest.fixture(autouse=True)
def _fast_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMP_SIM_MISO_API_PER_MINUTE", "1000")  # client pacing is off in tests (sim_conn)
    monkeypatch.setenv("PMP_SIM_MISO_ANNUAL_MONTHS", "3,11")  # the annual fuel mix: only the test months


@pytest.fixture
def fresh(private_warehouse, staging, airflow_db, use_simulator) -> dict:
    """A warehouse of the test's own: prelim->final needs days no other test has loaded finals for."""
    return {"dsn": private_warehouse, "sim": use_simulator}


def ingest(dsn: str, dataset: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT source_id, revision, published_at FROM ingest_log WHERE iso='miso' AND dataset=%s"
                            " ORDER BY published_at, source_id", (dataset,)).fetchall()


def _spot(spec, rows: list[tuple], day: date) -> None:
    """One value of HE 3 / the 02:00 EST interval checked against the simulator's own number."""
    cols = spec.schema.columns
    at = market_day_bounds(day, spec.timezone)[0] + timedelta(hours=2)  # 02:00 EST = 07:00Z, both days
    recs = [dict(zip(cols, r, strict=True)) for r in rows if r[cols.index("interval_start")] == at]
    assert recs, f"no rows at {at}"
    if spec.table == "lmp":
        rec = next(r for r in recs if r["location"] == "INDIANA.HUB")
        market = {"lmp_rt60m": "RT60M", "lmp_rt5m": "RT5M", "lmp_dam_exante": "DAM_EXANTE"}.get(spec.dataset, "DAM")
        lmp, mcc, mlc = sim.lmp_parts(market, "INDIANA.HUB", at)
        assert (rec["lmp"], rec["congestion"], rec["loss"]) == (lmp / 100, mcc / 100, mlc / 100)
    elif spec.table == "ancillary_services":
        rec = next(r for r in recs if r["region"] == "ZONE3" and r["product"] == "REG")
        assert rec["clearing_price"] == sim.as_price("DAM" if spec.dataset == "as_dam" else "RT5M", 3, "REG", at) / 100
    elif spec.dataset == "load_actual":
        rec = next(r for r in recs if r["area"] == "LRZ4")
        assert rec["load_mw"] == sim.hourly_actual(dict(sim.LRZ)["LRZ4"], at)
    elif spec.table == "fuel_mix":
        rec = next(r for r in recs if r["fuel"] == "Nuclear")
        share = dict(sim.FUELS)["Nuclear"]
        assert math.isclose(rec["generation_mw"], sum(round(sim.fuel_mw("Nuclear", share, at) * rs, 2)
                                                      for _, rs in sim.REGIONS), abs_tol=1e-6)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_on_both_dst_days(env, dagbag, dataset: str) -> None:
    env["sim"](now=NOW)
    spec = registry.get("miso", dataset)
    for day in (SPRING, FALL):
        run_daily(dagbag, spec, day)
        check = assert_day_complete(env["dsn"], spec, day)
        assert check.hours == 24  # EST: no 23- or 25-hour MISO market day
        start, end = market_day_bounds(day, spec.timezone)
        assert start == datetime(day.year, day.month, day.day, 5, tzinfo=UTC) and end - start == timedelta(hours=24)
        if dataset == "load_forecast":
            rows = day_rows(env["dsn"], spec, day, by="forecast_issued_at")
            issued = {r[spec.schema.columns.index("forecast_issued_at")] for r in rows}
            assert issued == {sim.published(f"{day:%Y%m%d}_df_al.xls")}  # the df_al vintage, issued when posted
            assert len(rows) == 6 * 24 * 7  # days X .. X+5, six zones + SYSTEM
            continue
        rows = day_rows(env["dsn"], spec, day)
        cols = spec.schema.columns
        step = timedelta(minutes=spec.interval_minutes if dataset != "fuel_mix" else 60)
        starts = sorted({r[cols.index("interval_start")] for r in rows})
        assert starts == [start + i * step for i in range(int((end - start) / step))]
        if spec.table == "lmp":
            typed: dict[str, set[str]] = {}
            for r in rows:
                rec = dict(zip(cols, r, strict=True))
                assert math.isclose(rec["energy"] + rec["congestion"] + rec["loss"], rec["lmp"], abs_tol=1e-9)
                typed.setdefault(rec["location_type"], set()).add(rec["location"])
            # the read views know MISO's hubs and load zones (sql/052) where the report types its nodes
            expect = {c: typed[t] for c, t in (("hub", "Hub"), ("zone", "Loadzone")) if t in typed}
            assert hub_zone_locations(env["dsn"], spec, day) == expect
        _spot(spec, rows, day)


def test_hourly_prelim_replaced_by_final(fresh, dagbag) -> None:
    env = fresh
    handle = env["sim"](now=datetime(2024, 3, 11, 18, tzinfo=UTC))  # 03-10's prelim is out, its final not
    spec = registry.get("miso", "lmp_rt60m")
    run_daily(dagbag, spec, SPRING)
    cols = spec.schema.columns
    at = datetime(2024, 3, 10, 5, tzinfo=UTC)

    def lmps() -> dict[datetime, float]:
        return {r[cols.index("interval_start")]: r[cols.index("lmp")] for r in day_rows(env["dsn"], spec, SPRING)
                if r[cols.index("location")] == "INDIANA.HUB"}

    prelim = lmps()
    assert all(v == sim.lmp_parts("RT60M", "INDIANA.HUB", t, final=False)[0] / 100 for t, v in prelim.items())
    assert assert_day_complete(env["dsn"], spec, SPRING)
    handle.set_now(datetime(2024, 3, 16, 18, tzinfo=UTC))  # 03-10's final (due 03-15) is out now
    run_daily(dagbag, spec, date(2024, 3, 15))  # a later day's run takes the finals out since
    final = lmps()
    assert all(v == sim.lmp_parts("RT60M", "INDIANA.HUB", t)[0] / 100 for t, v in final.items())
    assert final != prelim and len(final) == 24 and at in final
    docs = [d[0] for d in ingest(env["dsn"], "lmp_rt60m")]
    assert any(d.startswith("20240310_rt_lmp_prelim.csv@") for d in docs)
    assert any(d.startswith("20240310_rt_lmp_final.csv@") for d in docs)
    run_daily(dagbag, spec, SPRING, reload=True)  # a re-run now takes the final and changes nothing
    assert lmps() == final


def test_five_minute_prelim_from_data_exchange_replaced_by_weekly_final(fresh, dagbag) -> None:
    env = fresh
    handle = env["sim"](now=datetime(2024, 3, 12, 18, tzinfo=UTC),
                        extra={"miso_default": {"dx_pricing_key": "sim-miso-key"}})
    spec = registry.get("miso", "lmp_rt5m")
    day = date(2024, 3, 9)  # its weekly final is 2024-03-18's archive
    run_daily(dagbag, spec, day)
    assert_day_complete(env["dsn"], spec, day)
    cols = spec.schema.columns

    def values() -> dict[datetime, float]:
        return {r[cols.index("interval_start")]: r[cols.index("lmp")] for r in day_rows(env["dsn"], spec, day)
                if r[cols.index("location")] == "MINN.HUB"}

    prelim = values()
    assert all(v == sim.lmp_parts("RT5M", "MINN.HUB", t, final=False)[0] / 100 for t, v in prelim.items())
    assert len(prelim) == 288
    handle.set_now(datetime(2024, 3, 19, 18, tzinfo=UTC))  # the 03-18 archive (03-04 .. 03-10) is out
    # 03-12's own archive (03-25) is not: it comes from Data Exchange, plus the two archives before
    run_daily(dagbag, spec, date(2024, 3, 12))
    final = values()
    assert all(v == sim.lmp_parts("RT5M", "MINN.HUB", t)[0] / 100 for t, v in final.items())
    assert sum(final[t] != prelim[t] for t in final) > 10  # MISO's corrections arrived
    assert any(d[0].startswith("20240318_5MIN_LMP.zip@") for d in ingest(env["dsn"], "lmp_rt5m"))


REALTIME = [s.dataset for s in registry.datasets("miso") if s.realtime]


@pytest.mark.parametrize("dataset", REALTIME)
def test_realtime_dags_on_the_wall_clock(env, dagbag, dataset: str) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # the simulator on the wall clock
    spec = registry.get("miso", dataset)
    dag = dagbag.get_dag(spec.realtime_dag_id)
    # hourly actuals are the complete hours of the 5-minute readings: up to ~65 minutes old
    dr = dag.test(run_conf={"lookback_minutes": 30, "max_lag_minutes": 90})
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.map_index, ti.state) for ti in dr.get_task_instances()]
    ti = dr.get_task_instance("ingest")  # the one task of a real-time run, its freshness check passed
    assert ti.state == "success" and "lag_minutes" in ti.xcom_pull(task_ids="ingest")["check"]
    column = "forecast_issued_at" if spec.completeness == "vintages" else "interval_end"
    cond = {"lmp": "market='RT5M'", "ancillary_services": "market='RT5M'", "fuel_mix": "true"}.get(
        spec.table, f"kind='{spec.kind}'")
    with psycopg.connect(env["dsn"]) as conn:
        latest = conn.execute(f"SELECT max({column}) FROM {spec.table} WHERE iso='MISO' AND {cond}").fetchone()[0]
    assert datetime.now(UTC) - latest < timedelta(minutes=70)


def test_download_every_dataset_then_catalog_shows_the_demo_days_complete(env, capsys) -> None:
    env["sim"]()
    for dataset in DATASETS:
        assert main(["download", "--iso", "miso", "--dataset", dataset, "--start", "2024-11-02", "--end", "2024-11-05",
                     "--quiet"]) == 0, dataset  # --end is exclusive: the demo's three days
    capsys.readouterr()
    assert main(["catalog", "--iso", "miso", "--days", "--start", "2024-11-02", "--end", "2024-11-05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for dataset in DATASETS:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"miso  {dataset} ") or
                     line.split()[:2] == ["miso", dataset])
        block = []
        for line in lines[start + 1:]:
            if not line.startswith(" "):
                break
            block.append(line)
        for day in ("2024-11-02", "2024-11-03", "2024-11-04"):
            line = next(x for x in block if day in x)
            assert "24 h" in line and line.endswith("complete"), (dataset, line)


def test_bad_report_fails_the_run_loads_nothing_and_a_rerun_succeeds(fresh, dagbag) -> None:
    """A well-formed report with a price MISO never writes: fetched and staged raw (immutable),
    refused by normalize with file/line/field, nothing loaded; the corrected report then loads."""
    from airflow.sdk import DagRunState

    from pmp.staging import open_store

    env = fresh
    handle = env["sim"](now=NOW)
    handle.set_faults({"miso_bad_value": -1})
    spec = registry.get("miso", "lmp_dam")
    day = date(2024, 11, 5)
    dr = run_daily(dagbag, spec, day, expect_success=False)
    assert dr.state == DagRunState.FAILED
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["stage"] == "success" and states["normalize"] == "failed" and states["load"] != "success"
    assert day_rows(env["dsn"], spec, day) == [] and ingest(env["dsn"], "lmp_dam") == []
    raw = open_store().list("raw/miso/lmp_dam/2024/11/05/")
    assert len(raw) == 1
    with pytest.raises(Exception, match=r"20241105_da_expost_lmp.csv, line 6, field 'HE 3': not a number: 'n/a'"):
        from pmp.isos.miso import normalize as nz

        nz.normalize_payload("lmp_dam", "20241105_da_expost_lmp.csv", open_store().get(raw[0]))
    handle.set_faults({"miso_bad_value": 0})
    run_daily(dagbag, spec, day)  # the corrected report has other bytes, so another raw key: no clash
    assert_day_complete(env["dsn"], spec, day)
    assert len(open_store().list("raw/miso/lmp_dam/2024/11/05/")) == 2
    assert [r[0].split("@")[0] for r in ingest(env["dsn"], "lmp_dam")] == ["20241105_da_expost_lmp.csv"]
