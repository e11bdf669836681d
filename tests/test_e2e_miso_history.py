"""MISO's monthly history DAG end to end with ``dag.test()``: simulator (market reports over real
HTTP) -> SeaweedFS -> TimescaleDB. One run takes a whole month (one request per daily report),
checks and reports every market day, and a re-run does not duplicate a row (:mod:`pmp.history`).
MISO's market day is EST all year: the months of both DST changes still have 24-hour days only."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from helpers import assert_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

NOW = datetime(2025, 1, 10, 18, tzinfo=UTC)  # every 2024 final is out
# dataset -> a month holding a US DST change (2024-03-10, 2024-11-03): 24 hours every day in EST
MONTHS = {"lmp_dam": date(2024, 3, 1), "load_actual": date(2024, 11, 1)}


@pytest.fixture(autouse=True)
def _fast_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMP_SIM_MISO_API_PER_MINUTE", "1000")  # client pacing is off in tests (sim_conn)


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_checked_day_by_day_and_rerun_without_duplicates(env, dagbag, private_warehouse, dataset: str) -> None:
    first = MONTHS[dataset]
    sim = env["sim"](now=NOW)
    spec = registry.get("miso", dataset)
    assert history.has_history_dag(spec) and spec.timezone != "America/New_York"
    days = assert_history_month(dagbag, private_warehouse, spec, first, None)
    reports = [p.rsplit("/", 1)[-1] for m, p in sim.requests if m == "GET" and "/marketreports/" in p]
    # one report per market day, downloaded once (load_actual: the next day's df_al); the re-run's
    # reload downloads each again
    report_day = 1 if dataset == "load_actual" else 0
    named = sorted(r[:8] for r in reports)
    assert named == sorted(2 * [f"{date.fromordinal(d.toordinal() + report_day):%Y%m%d}" for d in days]), named
