"""ERCOT's monthly history DAG end to end with ``dag.test()``: simulator (real HTTP, real clock: 2024
is long out of MIS retention, so the Public API archive) -> SeaweedFS -> TimescaleDB. One run takes
a whole month and checks and reports every market day, the DST days included (:mod:`pmp.history`)."""

from __future__ import annotations

import pytest
from helpers import FALL_MONTH, SPRING_MONTH, assert_day_complete, run_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

# dataset -> a month holding a DST day (tests/helpers.py)
MONTHS = {"lmp_dam": SPRING_MONTH, "load_actual": FALL_MONTH}


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_from_the_archive_checked_day_by_day(env, dagbag, dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = env["sim"]()
    spec = registry.get("ercot", dataset)
    assert history.has_history_dag(spec)
    _, days = run_history_month(dagbag, spec, first)
    assert any("/archive/" in p for _, p in sim.requests)  # the Public API archive, not MIS
    for day in days:
        result = assert_day_complete(env["dsn"], spec, day)
        assert result.hours == (dst_hours if day == dst_day else 24), (day, result.hours)
