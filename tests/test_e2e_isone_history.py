"""ISO-NE's monthly history DAG end to end with ``dag.test()``: simulator (ISO Express over real
HTTP) -> SeaweedFS -> TimescaleDB. One run takes a whole month (one paced request per document and
market day, fetched by the run's mapped tasks), checks and reports every market day, the DST days
(23 and 25 hours) included, and a re-run does not duplicate a row (:mod:`pmp.history`)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from helpers import FALL_MONTH, SPRING_MONTH, assert_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 20, tzinfo=UTC)  # simulator clock: the finals of both months are out
# dataset -> a month holding a DST day (tests/helpers.py)
# (lmp_rt60m: prelim and final, discovery asks per day whether the final is out)
MONTHS = {"lmp_dam": SPRING_MONTH, "fuel_mix": FALL_MONTH,
          "lmp_rt60m": FALL_MONTH}


@pytest.fixture(autouse=True)
def _unpaced_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # client pacing is off in tests (sim_conn): a month's requests within seconds would meet the
    # simulated Akamai wall meant for unpaced clients (a paced client sends one every 10 s)
    monkeypatch.setenv("PMP_SIM_ISONE_BURST", "10000")


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_checked_day_by_day_and_rerun_without_duplicates(env, dagbag, private_warehouse, dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = env["sim"](now=NOW)
    spec = registry.get("isone", dataset)
    assert history.has_history_dag(spec) and not history.archive_runs(spec)
    days = assert_history_month(dagbag, private_warehouse, spec, first, dst_day, dst_hours)
    if dataset == "lmp_rt60m":  # every day's final, none of the prelims (the finals were out)
        with psycopg.connect(private_warehouse) as conn:
            names = conn.execute("SELECT source_name FROM ingest_log WHERE iso = 'isone' AND dataset = %s AND "
                                 "market_day >= %s AND market_day <= %s", (dataset, days[0], days[-1])).fetchall()
        assert sorted(n for (n,) in names) == [f"lmp_rt_final_{d:%Y%m%d}.csv" for d in days]
    # requests stay one per document and day: every day of the month was asked for
    asked = {p for _, p in sim.requests if "/static-transform/" in p or "/transform/" in p}
    for day in days:
        assert any(f"{day:%Y%m%d}" in p for p in asked), day
