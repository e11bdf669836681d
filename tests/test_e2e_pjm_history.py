"""PJM's monthly history DAG end to end with ``dag.test()``: simulator (Data Miner 2 over real
HTTP) -> SeaweedFS -> TimescaleDB. One run takes a whole month, checks and reports every market
day, the DST days (23 and 25 hours) included, and a re-run does not duplicate a row
(:mod:`pmp.history`). Feeds PJM keeps whole (fuel mix) come in one paged range query for the
month; the LMP feeds stay one query per market day (:func:`pmp.isos.pjm.adapter.range_feed`)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from helpers import FALL_MONTH, SPRING_MONTH, assert_day_complete, assert_history_month, run_history_month

from pmp import history, registry
from pmp.isos.pjm.adapter import range_feed

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 8, 18, tzinfo=UTC)
ROWS = 2000  # rows a page: several pages for a month
# dataset -> a month holding a DST day (tests/helpers.py)
MONTHS = {"lmp_dam": SPRING_MONTH, "fuel_mix": FALL_MONTH}


def _queries(sim, feed: str) -> list[dict[str, str]]:
    """The query parameters of every request of ``feed`` the simulator answered, lower-case names."""
    out = []
    for _, path in sim.requests:
        parts = urlsplit(path)
        if parts.path.endswith(f"/api/v1/{feed}"):
            out.append({k.lower(): v[0] for k, v in parse_qs(parts.query).items()})
    return out


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_checked_day_by_day_and_rerun_without_duplicates(env, dagbag, private_warehouse, dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = env["sim"](now=NOW, extra={"pjm_default": {"row_count": ROWS}})
    spec = registry.get("pjm", dataset)
    assert history.has_history_dag(spec)
    (feed,) = spec.params["daily"]
    assert history.archive_runs(spec) == range_feed(feed)  # what pmp plan-history counts
    days = assert_history_month(dagbag, private_warehouse, spec, first, dst_day, dst_hours)
    asked = _queries(sim, feed.name)
    windows = {q.get(f"{feed.time_field}_ept") for q in asked}
    if range_feed(feed):  # one query for the month (its pages), in the first run and the re-run
        assert windows == {f"{first:%m/%d/%Y} 00:00to{days[-1]:%m/%d/%Y} 23:59"}, windows
        with psycopg.connect(private_warehouse) as conn:
            (rows,) = conn.execute("SELECT rows FROM ingest_log WHERE iso = 'pjm' AND dataset = %s AND source_id = %s",
                                   (dataset, f"{feed.name}/{first}..{days[-1]}")).fetchone()
        assert len(asked) == 2 * math.ceil(rows / ROWS) > 2  # pages of a month, twice (the re-run reloads)
    else:  # every pricing node: one query per market day
        assert windows == {f"{d:%m/%d/%Y} 00:00to{d:%m/%d/%Y} 23:59" for d in days}, windows


def test_a_month_of_one_range_query_still_fails_the_run_naming_a_missing_day(private_warehouse, staging, airflow_db,
                                                                             use_simulator, dagbag) -> None:
    """One document holds the whole month (the fuel mix's range query), yet the run checks each
    market day: a day whose rows are gone fails the run naming that day, and ``reprocess`` re-derives
    the month from the raw stage (the document is found under the month's first day)."""
    from airflow.sdk import DagRunState

    from pmp import pipeline
    from pmp.timeutil import market_day_bounds

    use_simulator(now=NOW)
    spec = registry.get("pjm", "fuel_mix")
    first, gap = date(2023, 11, 1), date(2023, 11, 17)
    _, days = run_history_month(dagbag, spec, first)
    lo, hi = market_day_bounds(gap, spec.timezone)
    with psycopg.connect(private_warehouse) as conn:
        assert conn.execute("DELETE FROM fuel_mix WHERE iso = 'PJM' AND interval_start >= %s AND interval_start < %s",
                            (lo, hi)).rowcount > 0
    dag = dagbag.get_dag(history.history_dag_id(spec))
    after = market_day_bounds(days[-1], spec.timezone)[1]
    dr = dag.test(logical_date=after + timedelta(minutes=1))
    assert dr.state == DagRunState.FAILED
    failed = {ti.task_id for ti in dr.get_task_instances() if ti.state == "failed"}
    assert failed == {"check"}, failed
    start = market_day_bounds(first, spec.timezone)[0]
    with pytest.raises(pipeline.IncompleteDataError) as exc:
        pipeline.check(spec.key, start.isoformat(), after.isoformat())
    assert f"pjm.fuel_mix {gap}:" in str(exc.value)
    assert all(f"{d}:" not in str(exc.value) for d in days if d != gap)
    run_history_month(dagbag, spec, first, reprocess=True)
    for day in days:
        assert_day_complete(private_warehouse, spec, day)
