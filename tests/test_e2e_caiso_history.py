"""CAISO's monthly history DAG end to end with ``dag.test()``: simulator (real HTTP) -> SeaweedFS ->
TimescaleDB. One run takes a whole month (one OASIS / Outlook request per trade day, fetched by the
run's mapped tasks) and checks and reports every market day, the DST days included (:mod:`pmp.history`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import FALL_MONTH, SPRING_MONTH, assert_day_complete, run_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 20, 18, tzinfo=UTC)
# dataset -> a month holding a DST day (tests/helpers.py)
MONTHS = {"lmp_dam": SPRING_MONTH, "load_actual": FALL_MONTH}


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_checked_day_by_day(warehouse, staging, airflow_db, use_simulator, dagbag,
                                                dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = use_simulator(now=NOW, extra={"caiso_default": {"www_min_request_interval_seconds": 0}})
    sim.set_faults({"caiso_no_throttle": -1})  # the client limiter is off in tests (interval 0)
    spec = registry.get("caiso", dataset)
    assert history.has_history_dag(spec) and not history.archive_runs(spec)
    _, days = run_history_month(dagbag, spec, first)
    for day in days:
        result = assert_day_complete(warehouse, spec, day)
        assert result.hours == (dst_hours if day == dst_day else 24), (day, result.hours)
