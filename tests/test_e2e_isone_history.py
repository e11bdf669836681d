"""ISO-NE's monthly history DAG end to end with ``dag.test()``: simulator (ISO Express over real
HTTP) -> SeaweedFS -> TimescaleDB. One run takes a whole month (one paced request per document and
market day, fetched by the run's mapped tasks), checks and reports every market day, the DST days
(23 and 25 hours) included, and a re-run does not duplicate a row (:mod:`pmp.history`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from helpers import assert_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 20, tzinfo=UTC)  # simulator clock: the finals of both months are out
# dataset -> a month holding a DST day: spring forward 2024-03-10, fall back 2024-11-03
MONTHS = {"lmp_dam": (date(2024, 3, 1), date(2024, 3, 10), 23), "fuel_mix": (date(2023, 11, 1), date(2023, 11, 5), 25)}


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_checked_day_by_day_and_rerun_without_duplicates(env, dagbag, dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = env["sim"](now=NOW)
    spec = registry.get("isone", dataset)
    assert history.has_history_dag(spec) and not history.archive_runs(spec)
    days = assert_history_month(dagbag, env["dsn"], spec, first, dst_day, dst_hours)
    # requests stay one per document and day: every day of the month was asked for
    asked = {p for _, p in sim.requests if "/static-transform/" in p or "/transform/" in p}
    for day in days:
        assert any(f"{day:%Y%m%d}" in p for p in asked), day
