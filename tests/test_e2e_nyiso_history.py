"""NYISO's monthly history DAG end to end with ``dag.test()``: simulator (real HTTP) -> SeaweedFS ->
TimescaleDB. One run takes a whole month from the monthly ``_csv.zip`` archives (each archive
downloaded once, not once per day), and its check checks and reports every market day of the
month, the DST days (23 and 25 hours) included (:mod:`pmp.history`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from helpers import FALL_MONTH, SPRING_MONTH, assert_day_complete, run_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)
# dataset -> a month holding a DST day (tests/helpers.py)
MONTHS = {"lmp_dam": SPRING_MONTH, "fuel_mix": FALL_MONTH}


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_from_the_archives_checked_day_by_day(env, dagbag, private_warehouse, dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = env["sim"](now=NOW)
    spec = registry.get("nyiso", dataset)
    assert history.has_history_dag(spec)
    _, days = run_history_month(dagbag, spec, first)
    after = days[-1] + timedelta(days=1)
    # one run: one archive download per file family, for all the month's days (no daily CSV)
    downloads = [p for _, p in sim.requests if "/public/csv/" in p]
    assert downloads and all(p.endswith("_csv.zip") for p in downloads), downloads
    assert len(downloads) == len(set(downloads)) == len(spec.params["files"])
    for day in days:
        result = assert_day_complete(private_warehouse, spec, day)
        assert result.hours == (dst_hours if day == dst_day else 24), (day, result.hours)
    with psycopg.connect(private_warehouse) as conn:
        loaded = conn.execute("SELECT market_day, count(*) FROM ingest_log WHERE iso = 'nyiso' AND dataset = %s "
                              "AND market_day >= %s AND market_day < %s GROUP BY market_day ORDER BY market_day",
                              (dataset, first, after)).fetchall()
    assert [(d, n) for d, n in loaded] == [(d, len(spec.params["files"])) for d in days]
