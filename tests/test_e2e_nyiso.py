"""NYISO end to end with ``dag.test()``: simulator (real HTTP) -> SeaweedFS -> TimescaleDB.

Every dataset runs once on a 2024 DST day: recent days through the daily CSVs (simulator clock
2024-11-05, so 2024-11-03 is a 25-hour day still listed on the P-lists), older ones through the
monthly archives (2024-03-10, the 23-hour day). Then: a run repeated with ``reload`` leaves identical
tables, a bad file fails the run with nothing loaded and a re-run succeeds, the real-time DAG loads
today's intervals, ``pmp normalize`` reads raw CSVs and monthly zips, and ``pmp catalog`` shows
complete days.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from helpers import assert_day_complete, day_rows, run_daily

from pmp import registry
from pmp.cli import main
from pmp.simulator import nyiso
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)
FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)
# dataset -> (day, route): recent days come from daily CSVs, older ones from the monthly zips
RUNS = {
    "lmp_dam": (FALL, "csv"), "lmp_rt5m": (FALL, "csv"), "lmp_rt60m": (SPRING, "zip"), "as_dam": (SPRING, "zip"),
    "as_rt5m": (FALL, "csv"), "load_actual": (FALL, "csv"), "load_forecast": (FALL, "csv"), "fuel_mix": (SPRING, "zip"),
}


def ingest(dsn: str, dataset: str, day: date) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT source_id, revision, rows, published_at FROM ingest_log WHERE iso='nyiso' AND dataset=%s"
            " AND market_day=%s ORDER BY source_id", (dataset, day)).fetchall()


@pytest.mark.parametrize("dataset", sorted(RUNS))
def test_every_dataset_end_to_end_on_a_dst_day(env, dagbag, dataset: str) -> None:
    day, route = RUNS[dataset]
    sim = env["sim"](now=NOW)
    spec = registry.get("nyiso", dataset)
    run_daily(dagbag, spec, day)
    check = assert_day_complete(env["dsn"], spec, day)
    hours = 23 if day == SPRING else 25
    assert check.hours == hours
    requested = [p for _, p in sim.requests if "/public/csv/" in p]
    assert requested and all(p.endswith("_csv.zip" if route == "zip" else ".csv") for p in requested)
    docs = ingest(env["dsn"], dataset, day)
    assert len(docs) == len(spec.params["files"]) and all(rev == 1 and published for _, rev, _, published in docs)
    if dataset == "load_forecast":
        rows = day_rows(env["dsn"], spec, day, by="forecast_issued_at")
        issued = {r[5] for r in rows}
        assert issued == {nyiso.issue_time(day).replace(second=0)}  # one vintage, its issue minute
        assert len(rows) == (hours + 5 * 24) * 12  # X 00:00 .. X+5 23:00, 11 zones + SYSTEM
        return
    rows = day_rows(env["dsn"], spec, day)
    start, end = market_day_bounds(day, spec.timezone)
    cols = spec.schema.columns
    by_res: dict[timedelta, set] = {}
    ptids = {name: str(ptid) for name, ptid in [*nyiso.ZONAL, *nyiso.generators()]}  # the simulator's inputs
    for r in rows:
        rec = dict(zip(cols, r, strict=True))
        by_res.setdefault(rec["interval_end"] - rec["interval_start"], set()).add(rec["interval_start"])
        if spec.table == "lmp":
            assert math.isclose(rec["energy"] + rec["congestion"] + rec["loss"], rec["lmp"], abs_tol=1e-9)
            assert rec["source"] in {f.daily_name(day) for f in spec.params["files"]}
            assert rec["location_id"] == ptids[rec["location"]], rec  # NYISO's PTID, stored as published
    if spec.table == "lmp":
        stored = {r[cols.index("location")]: r[cols.index("location_id")] for r in rows}
        assert stored == ptids  # zones, external proxies, generators and the reference bus, each with its PTID
    expected_res = {timedelta(minutes=spec.interval_minutes)}
    if dataset == "load_actual":
        expected_res.add(timedelta(hours=1))  # pal (5-minute) and palIntegrated (hourly)
    assert set(by_res) == expected_res
    for step, starts in by_res.items():
        assert sorted(starts) == [start + i * step for i in range(int((end - start) / step))]


def test_rerun_with_reload_leaves_identical_tables(env, dagbag) -> None:
    env["sim"](now=NOW)
    spec = registry.get("nyiso", "lmp_dam")
    if not day_rows(env["dsn"], spec, FALL):  # normally loaded by the per-dataset test above
        run_daily(dagbag, spec, FALL)
    first = day_rows(env["dsn"], spec, FALL)
    assert first
    run_daily(dagbag, spec, FALL, reload=True)
    assert day_rows(env["dsn"], spec, FALL) == first
    docs = ingest(env["dsn"], "lmp_dam", FALL)
    assert len(docs) == 2 and {rev for _, rev, _, _ in docs} == {1}


def test_bad_file_fails_run_with_nothing_loaded_then_rerun_succeeds(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    from pmp.staging import open_store

    day = date(2024, 11, 4)
    sim = env["sim"](now=NOW)
    spec = registry.get("nyiso", "lmp_rt60m")
    sim.set_faults({"nyiso_bad_row": 1})  # the first of the day's two files carries a value NYISO never publishes
    dr = run_daily(dagbag, spec, day, expect_success=False)
    assert dr.state == DagRunState.FAILED
    assert dr.get_task_instance("normalize").state == "failed"
    assert day_rows(env["dsn"], spec, day) == [] and ingest(env["dsn"], "lmp_rt60m", day) == []
    raw = open_store().list("raw/nyiso/lmp_rt60m/2024/11/04/")
    assert len(raw) == 2  # both files kept as fetched, the bad one for inspection
    run_daily(dagbag, spec, day)
    assert_day_complete(env["dsn"], spec, day)
    assert len(open_store().list("raw/nyiso/lmp_rt60m/2024/11/04/")) == 3  # the good copy has its own key


def test_realtime_dag_loads_todays_intervals(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # simulator on the wall clock
    dag = dagbag.get_dag("nyiso_lmp_rt5m_realtime")
    dr = dag.test(run_conf={"lookback_minutes": 30})
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        latest, tail = conn.execute(
            "SELECT max(interval_end), count(*) FILTER (WHERE interval_end > now()) FROM lmp"
            " WHERE iso='NYISO' AND market='RT5M'").fetchone()
    assert datetime.now(UTC) - latest < timedelta(minutes=10)
    assert tail == 0  # the RTC advisory tail of today's file never reaches the 5-minute series
    ti = dr.get_task_instance("ingest")  # the one task of a real-time run (issue 12.3)
    assert ti.state == "success" and ti.xcom_pull(task_ids="ingest")["check"]["lag_minutes"] < 10  # freshness checked


def test_pmp_normalize_raw_csvs_and_monthly_zips(tmp_path: Path) -> None:
    fam = nyiso.FAMILIES["damlbmp_zone"]
    raw = tmp_path / "20241103damlbmp_zone.20241102T143038Z.0a1b2c3d.csv"  # a raw-stage name
    raw.write_text(nyiso.final_content(fam, FALL), newline="")
    out = tmp_path / "dam.parquet"
    assert main(["normalize", "--iso", "nyiso", "--dataset", "lmp_dam", str(raw), "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 25 * 15 and {r["source"] for r in rows} == {"20241103damlbmp_zone.csv"}
    assert {r["published_at"] for r in rows} == {datetime(2024, 11, 2, 14, 30, 38, tzinfo=UTC)}
    made = nyiso.archive_bytes(nyiso.FAMILIES["isolf"], date(2024, 3, 1), NOW)
    assert made is not None
    archive = tmp_path / "20240301isolf_csv.zip"
    archive.write_bytes(made[0])
    out = tmp_path / "lf.parquet"
    assert main(["normalize", "--iso", "nyiso", "--dataset", "load_forecast", str(archive), "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert len(set(table.column("forecast_issued_at").to_pylist())) == 31  # one vintage per issue day
    bad = tmp_path / "bad.csv"
    bad.write_text("Time Stamp,Name,PTID,LBMP ($/MWHr)\n11/03/2024 00:00,WEST,61752,abc\n")
    assert main(["normalize", "--iso", "nyiso", "--dataset", "lmp_dam", str(bad), "--out", str(tmp_path / "x")]) == 2


def test_download_then_catalog_shows_complete_days(env, capsys) -> None:
    env["sim"](now=NOW)
    assert main(["download", "--iso", "nyiso", "--dataset", "as_dam", "--start", "2024-11-02", "--end", "2024-11-05",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--iso", "nyiso", "--days"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("nyiso  as_dam"))
    block = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        block.append(line)
    for day, hours in [("2024-11-02", 24), ("2024-11-03", 25), ("2024-11-04", 24)]:
        line = next(x for x in block if day in x)
        assert f"{hours} h" in line and f"{hours}/{hours}x60min intervals" in line and line.endswith("complete")
