"""PJM end to end with ``dag.test()``: simulator (Data Miner 2 over real HTTP) -> SeaweedFS -> TimescaleDB.

Every dataset runs on both 2024 DST days (2024-03-10: 23 hours, archived rows for the 5-minute LMPs;
2024-11-03: 25 hours), as-rt also on an hourly-era fall-back day. Then: unverified rows loaded by the
real-time path are replaced by the verified ones (and never the reverse), with the feed in ``source``;
the real-time DAG loads today's intervals; ``pmp download`` and ``pmp catalog --days``; the key is never
logged; pages, 429 with Retry-After and the archive rules through the hook.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from helpers import assert_day_complete, day_rows, run_daily

from pmp import pipeline, registry
from pmp.cli import main
from pmp.http import IsoHttpError
from pmp.isos.pjm.dataminer import ArchiveRuleError, check_query
from pmp.isos.pjm.hook import PjmHook
from pmp.simulator import pjm as sim_pjm
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 8, 18, tzinfo=UTC)  # verified LMPs of 11-03 .. 11-05 are out
FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)
DATASETS = ["lmp_dam", "lmp_rt5m", "lmp_rt60m", "as_dam", "as_rt", "load_actual", "load_forecast", "fuel_mix"]
KEY = "sim-pjm-key"


def spec(dataset: str):
    return registry.get("pjm", dataset)


@pytest.mark.parametrize("day", [SPRING, FALL], ids=["spring", "fall"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_end_to_end_on_both_dst_days(env, dagbag, dataset: str, day: date, caplog) -> None:
    sim = env["sim"](now=NOW, extra={"pjm_default": {"row_count": 2000}})  # several pages per day
    s = spec(dataset)
    caplog.set_level(logging.INFO)
    run_daily(dagbag, s, day)
    check = assert_day_complete(env["dsn"], s, day)
    hours = 23 if day == SPRING else 25
    assert check.hours == hours
    assert KEY not in caplog.text  # the subscription key never reaches the logs
    requested = [p for _, p in sim.requests if "/pjm/api/" in p]
    assert requested and all("subscription-key" not in p.lower() for p in requested)  # a header, not the URL
    start, end = market_day_bounds(day, s.timezone)
    cols = s.schema.columns
    if dataset == "load_forecast":
        rows = [dict(zip(cols, r, strict=True)) for r in day_rows(env["dsn"], s, day, by="forecast_issued_at")]
        assert {r["forecast_issued_at"] for r in rows} == set(sim_pjm.vintages(day))
        per_vintage = len(rows) / 4
        horizon = (market_day_bounds(day + timedelta(days=6), s.timezone)[1] - start) / timedelta(hours=1)
        assert per_vintage == horizon * len(sim_pjm.FORECAST_AREAS)  # 7 local days of hours, 4 areas
        assert {r["area"] for r in rows} >= {"SYSTEM", "MID_ATLANTIC_REGION"}
        return
    rows = [dict(zip(cols, r, strict=True)) for r in day_rows(env["dsn"], s, day)]
    by_res: dict[timedelta, set] = {}
    for r in rows:
        by_res.setdefault(r["interval_end"] - r["interval_start"], set()).add(r["interval_start"])
    for step, starts in by_res.items():
        assert sorted(starts) == [start + i * step for i in range(int((end - start) / step))]
    if s.table == "lmp":
        nodes = {p.name: str(p.id) for p in sim_pjm.active(day)}
        assert {r["location"]: r["location_id"] for r in rows} == nodes  # every node, retired/new as of the day
        assert ("SIMRETIR 13 KV  UNIT1" in nodes) == (day < date(2024, 6, 1))
        for r in rows:
            assert math.isclose(r["energy"] + r["congestion"] + r["loss"], r["lmp"], abs_tol=1e-5)
            assert r["source"].startswith(s.params["daily"][0].name)  # verified feeds on the daily route
        assert set(by_res) == {timedelta(minutes=s.interval_minutes)}
    if dataset == "load_actual":
        assert set(by_res) == {timedelta(minutes=5), timedelta(hours=1)}
        hourly = [r for r in rows if r["interval_end"] - r["interval_start"] == timedelta(hours=1)]
        first = min(r["interval_start"] for r in hourly)
        at = {r["area"]: r["load_mw"] for r in hourly if r["interval_start"] == first}
        assert math.isclose(at.pop("SYSTEM"), sum(at.values()), abs_tol=0.01) and len(at) == len(sim_pjm.LOAD_AREAS)
    if dataset.startswith("as_"):
        assert {r["region"] for r in rows} == {"PJM_RTO", "MAD"}
        assert {r["product"] for r in rows} == ({"SR", "PR", "30MIN"} | (
            {"REG", "REG-CCP", "REG-PCP"} if dataset == "as_rt" else set()))


def test_as_rt_hourly_before_2022_09(env, dagbag) -> None:
    env["sim"](now=NOW)
    day = date(2021, 11, 7)  # fall back, hourly era of the real-time reserve results
    run_daily(dagbag, spec("as_rt"), day)
    check = assert_day_complete(env["dsn"], spec("as_rt"), day)
    assert [(r.minutes, r.intervals) for r in check.resolutions] == [(60.0, 25)]


def test_verified_replaces_unverified_never_the_reverse(env, dagbag) -> None:
    s = spec("lmp_rt5m")
    day = date(2024, 11, 5)
    sim = env["sim"](now=datetime(2024, 11, 5, 18, 10, tzinfo=UTC))
    window = ("2024-11-05T16:00:00+00:00", "2024-11-05T17:00:00+00:00")
    pipeline.run_window(s.key, *window, realtime=True)

    def stored() -> dict:
        with psycopg.connect(env["dsn"]) as conn:
            return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
                "SELECT location, interval_start, lmp, source FROM lmp WHERE iso='PJM' AND market='RT5M'"
                " AND interval_start >= %s AND interval_start < %s", window).fetchall()}

    before = stored()
    assert len(before) == 12 * len(sim_pjm.active(day))
    assert {src.split("_2")[0] for _, src in before.values()} == {"rt_unverified_fivemin_lmps"}
    sim.set_now(NOW)  # verified rows of 11-05 are out on 11-07 12:00 EPT
    run_daily(dagbag, s, day)
    after = stored()
    assert set(after) == set(before)
    assert {src for _, src in after.values()} == {"rt_fivemin_hrl_lmps_20241105.zip"}
    assert any(after[k][0] != before[k][0] for k in before)  # verification corrected some prices
    with psycopg.connect(env["dsn"]) as conn:  # forget the unverified documents: they load again...
        conn.execute("DELETE FROM ingest_log WHERE iso='pjm' AND dataset='lmp_rt5m' AND source_id LIKE 'rt_unv%'")
    pipeline.run_window(s.key, *window, realtime=True)
    assert stored() == after  # ...and lose against the verified rows (published days later)


def test_realtime_dags_load_todays_intervals(env, dagbag) -> None:
    from airflow.sdk import DagRunState

    env["sim"]()  # wall clock
    for dag_id, lookback in (("pjm_lmp_rt5m_realtime", 30), ("pjm_load_forecast_realtime", 30),
                             ("pjm_load_actual_realtime", 30), ("pjm_fuel_mix_realtime", 180)):
        dr = dagbag.get_dag(dag_id).test(run_conf={"lookback_minutes": lookback})
        assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.state) for ti in dr.get_task_instances()]
    with psycopg.connect(env["dsn"]) as conn:
        latest = conn.execute("SELECT max(interval_end) FROM lmp WHERE iso='PJM' AND market='RT5M'"
                              " AND source LIKE 'rt_unverified%'").fetchone()[0]
        issued = conn.execute("SELECT max(forecast_issued_at) FROM load WHERE iso='PJM' AND kind='forecast'").fetchone()[0]
    assert datetime.now(UTC) - latest < timedelta(minutes=15)
    assert datetime.now(UTC) - issued < timedelta(hours=7)


def test_download_then_catalog_shows_complete_days(env, capsys) -> None:
    env["sim"](now=NOW)
    assert main(["download", "--iso", "pjm", "--dataset", "fuel_mix", "--start", "2024-11-02", "--end", "2024-11-05",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--iso", "pjm", "--days", "--start", "2024-11-02", "--end", "2024-11-05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("pjm    fuel_mix"))
    block = [x for x in lines[start + 1:start + 4]]
    for day, hours in [("2024-11-02", 24), ("2024-11-03", 25), ("2024-11-04", 24)]:
        line = next(x for x in block if day in x)
        assert f"{hours}/{hours}x60min intervals" in line and line.endswith("complete")


def test_hook_pages_rate_limit_and_key(use_simulator, monkeypatch, caplog) -> None:
    sim = use_simulator(now=NOW, extra={"pjm_default": {"row_count": 100}})
    caplog.set_level(logging.DEBUG)
    hook = PjmHook()
    pages = list(hook.pages("da_hrl_lmps", {"datetime_beginning_ept": "11/03/2024 00:00to11/03/2024 23:59"}))
    assert [p.rows for p in pages] == [100] * 10 + [16] and pages[0].total_rows == 1016
    assert sum('"rel":"next"' in p.body.decode() for p in pages) == 10
    # 429 with Retry-After: the hook waits as told and goes on
    monkeypatch.setenv("PMP_SIM_PJM_REQUESTS", "1")  # one request per 3 s: the second page meets a 429
    monkeypatch.setenv("PMP_SIM_PJM_WINDOW", "3")
    monkeypatch.setenv("PMP_SIM_PJM_KEYS", "sim-key-429")
    monkeypatch.setenv("AIRFLOW_CONN_PJM_DEFAULT", __import__("json").dumps(
        {"conn_type": "pjm", "extra": {"subscription_key": "sim-key-429", "api_base_url": f"{sim.url}/pjm/api/api/v1",
                                       "requests_per_minute": 0, "row_count": 500}}))
    hook = PjmHook()
    got = [p.rows for p in hook.pages("gen_by_fuel", {"datetime_beginning_ept": "11/01/2024 00:00to11/03/2024 23:59"})]
    assert got == [500, 230]
    assert sum(1 for p in hook.pages("gen_by_fuel", {"datetime_beginning_ept": "11/04/2024 00:00to11/04/2024 23:59"}))
    assert "HTTP 429" in caplog.text  # waited for the window the simulator named, then went on
    # a refused key: clear error, the key nowhere
    monkeypatch.setenv("AIRFLOW_CONN_PJM_DEFAULT", __import__("json").dumps(
        {"conn_type": "pjm", "extra": {"subscription_key": "not-a-real-key-123", "api_base_url": f"{sim.url}/pjm/api/api/v1"}}))
    with pytest.raises(IsoHttpError, match="subscription key of connection 'pjm_default' was refused") as err:
        list(PjmHook().pages("gen_by_fuel", {"datetime_beginning_ept": "11/04/2024 00:00to11/04/2024 23:59"}))
    assert "not-a-real-key-123" not in str(err.value) and "not-a-real-key-123" not in caplog.text


def test_pacing_is_shared_by_every_process_per_base_url(use_simulator, monkeypatch) -> None:
    """The default is PJM's non-member limit, 6 a minute, held in one lock file per base URL (the
    SharedPacer that ERCOT and CAISO use; tests/test_http.py runs it across processes)."""
    from pmp.http import SharedPacer

    monkeypatch.setenv("AIRFLOW_CONN_PJM_DEFAULT", __import__("json").dumps(
        {"conn_type": "pjm", "extra": {"subscription_key": "k-12345", "api_base_url": "http://127.0.0.1:9/pjm"}}))
    a, b = PjmHook().cfg["pacer"], PjmHook().cfg["pacer"]
    assert isinstance(a, SharedPacer) and a.min_interval == 10.0 and a.path == b.path


def test_archive_rules_in_the_simulator_and_the_hook(use_simulator) -> None:
    use_simulator(now=NOW)
    hook = PjmHook()
    with pytest.raises(IsoHttpError, match="Archived data cannot be filtered"):
        list(hook.pages("rt_fivemin_hrl_lmps", {"datetime_beginning_ept": "03/10/2024 00:00to03/10/2024 23:59",
                                                "pnode_id": "1;51291"}))
    with pytest.raises(IsoHttpError, match="may not span the archive cut-over"):
        list(hook.pages("rt_fivemin_hrl_lmps", {"datetime_beginning_ept": "04/30/2024 00:00to05/10/2024 23:59"}))
    with pytest.raises(IsoHttpError, match="within one calendar year"):
        list(hook.pages("da_hrl_lmps", {"datetime_beginning_ept": "12/31/2021 00:00to01/01/2022 23:59"}))
    assert sum(p.rows for p in hook.pages("rt_fivemin_hrl_lmps", {  # recent rows filter by node
        "datetime_beginning_ept": "11/03/2024 00:00to11/03/2024 23:59", "pnode_id": "1;51291",
        "row_is_current": "TRUE"})) == 2 * 300
    cut = date(2024, 5, 6)  # 186 days before NOW
    with pytest.raises(ArchiveRuleError, match="spans the archive cut-over"):
        check_query("rt_fivemin_hrl_lmps", 186, cut - timedelta(days=1), cut, NOW, field_filters=False)
    with pytest.raises(ArchiveRuleError, match="cannot be filtered"):
        check_query("rt_fivemin_hrl_lmps", 186, SPRING, SPRING, NOW, field_filters=True)
    check_query("rt_fivemin_hrl_lmps", 186, cut, cut, NOW, field_filters=True)
