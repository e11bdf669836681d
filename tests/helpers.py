"""Shared helpers for end-to-end tests of any ISO: run a daily DAG for a market day with
``dag.test()``, read back the day's rows, and check the day with the production checks."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
import psycopg
from psycopg import sql

from pmp import checks
from pmp.registry import DatasetSpec
from pmp.timeutil import market_day_bounds

ROOT = Path(__file__).resolve().parents[1]
# The real ISO files the project collects in ../shared/samples, vendored byte for byte into
# tests/samples so a clone anywhere runs the suite; tests/test_samples_vendored.py fails when the
# two differ. PMP_SAMPLES_DIR points the tests at another copy.
SAMPLES_ROOT = Path(os.environ.get("PMP_SAMPLES_DIR") or ROOT / "tests" / "samples")
SHARED_SAMPLES = ROOT.parent / "shared" / "samples"


def samples_dir(iso: str) -> Path:
    """The real published files of one ISO (a package name under ``include/pmp/isos``)."""
    path = SAMPLES_ROOT / iso
    assert path.is_dir(), f"no samples for {iso} in {SAMPLES_ROOT}"
    return path


def market_day_end(day: date, tz: str) -> pendulum.DateTime:
    """A run whose logical date is the end of a local market day covers that day."""
    nxt = day + timedelta(days=1)
    return pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=tz)


def run_daily(dagbag: Any, spec: DatasetSpec, day: date, *, expect_success: bool = True, **conf: Any) -> Any:
    """``dag.test()`` of the dataset's daily DAG for one local market day."""
    from airflow.sdk import DagRunState

    dag = dagbag.get_dag(spec.daily_dag_id)
    assert dag is not None, f"no DAG {spec.daily_dag_id}"
    dr = dag.test(logical_date=market_day_end(day, spec.timezone), run_conf=conf or None)
    assert dr.data_interval_start == market_day_bounds(day, spec.timezone)[0]
    if expect_success:
        assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.map_index, ti.state) for ti in dr.get_task_instances()]
    return dr


def day_rows(dsn: str, spec: DatasetSpec, day: date, *, by: str = "interval_start") -> list[tuple]:
    """Every stored column of the dataset's rows for a market day (by interval start, or by
    forecast issue time with ``by="forecast_issued_at"``), ordered by the table key."""
    start, end = market_day_bounds(day, spec.timezone)
    cond, params = checks.where(spec)
    cols = [c for c in spec.schema.columns]
    q = sql.SQL("SELECT {cols} FROM {t} WHERE {c} AND {by} >= %s AND {by} < %s ORDER BY {key}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        t=sql.Identifier(spec.table),
        c=cond,
        by=sql.Identifier(by),
        key=sql.SQL(", ").join(map(sql.Identifier, spec.schema.key)),
    )
    with psycopg.connect(dsn) as conn:
        return conn.execute(q, [*params, start, end]).fetchall()


def assert_day_complete(dsn: str, spec: DatasetSpec, day: date) -> checks.DayCheck:
    """The production completeness check for the day passes (23/24/25-hour days exact)."""
    with psycopg.connect(dsn) as conn:
        result = checks.check_day(conn, spec, day)
    assert result.complete, f"{spec.key} {day}: {result.summary()} {result.problems}"
    return result


def hub_zone_locations(dsn: str, spec: DatasetSpec, day: date) -> dict[str, set[str]]:
    """The day's locations of the dataset's market in the read views, by class ('hub', 'zone'):
    what sql/050's hub_prices / zone_prices show for the ISO's location types."""
    start, end = market_day_bounds(day, spec.timezone)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT location_class, location FROM hub_zone_prices WHERE iso = %s AND market = %s"
                            " AND interval_start >= %s AND interval_start < %s",
                            (spec.iso.upper(), spec.market, start, end)).fetchall()
    out: dict[str, set[str]] = {}
    for cls, location in rows:
        out.setdefault(cls, set()).add(location)
    return out


# The months of a monthly-history test: each holds a DST day (spring forward 2024-03-10: 23 hours;
# fall back 2023-11-05: 25 hours), as (first day of the month, the DST day, its hours).
SPRING_MONTH = (date(2024, 3, 1), date(2024, 3, 10), 23)
FALL_MONTH = (date(2023, 11, 1), date(2023, 11, 5), 25)


def run_history_month(dagbag: Any, spec: DatasetSpec, first: date, **conf: Any) -> tuple[Any, list[date]]:
    """``dag.test()`` of the dataset's monthly history DAG (:mod:`pmp.history`) for the month that
    starts on ``first`` (``conf``: the run's params, e.g. ``reload=True``): the run succeeds over the
    month's data interval and its check reports every market day of the month. Returns the run and
    the days."""
    from airflow.sdk import DagRunState

    from pmp import history

    dag = dagbag.get_dag(history.history_dag_id(spec))
    assert dag is not None, f"no DAG {history.history_dag_id(spec)}"
    days = [first + timedelta(days=i) for i in range(31) if (first + timedelta(days=i)).month == first.month]
    after = days[-1] + timedelta(days=1)
    dr = dag.test(logical_date=market_day_bounds(after, spec.timezone)[0] + timedelta(minutes=1),
                  run_conf=conf or None)
    tis = dr.get_task_instances()
    assert dr.state == DagRunState.SUCCESS, [(ti.task_id, ti.map_index, ti.state) for ti in tis]
    assert dr.data_interval_start == market_day_bounds(first, spec.timezone)[0]
    assert dr.data_interval_end == market_day_bounds(after, spec.timezone)[0]
    check = next(ti for ti in tis if ti.task_id == "check")
    assert [d["day"] for d in check.xcom_pull(task_ids="check")["days"]] == [d.isoformat() for d in days]
    return dr, days


def assert_history_month(dagbag: Any, dsn: str, spec: DatasetSpec, first: date, dst_day: date | None,
                         dst_hours: int = 24, *, by: str = "interval_start") -> list[date]:
    """A monthly history run of ``spec`` for the month starting ``first``, end to end into the
    warehouse: every market day of the month is complete by the production check, ``dst_day`` with
    ``dst_hours`` hours (23 or 25; ``None``: every day 24), every other day 24; then a re-run that
    re-fetches every document (``reload``) leaves each day's rows and ``ingest_log`` entries exactly
    as they were (no duplicate, nothing lost; a document whose bytes differ, e.g. a report stamped
    when generated, is a revision and may carry a newer ``published_at``). Returns the days."""
    _, days = run_history_month(dagbag, spec, first)
    for day in days:
        result = assert_day_complete(dsn, spec, day)
        assert result.hours == (dst_hours if day == dst_day else 24), (day, result.hours)
    keep = [i for i, c in enumerate(spec.schema.columns) if c != "published_at"]

    def rows(day: date) -> list[tuple]:
        return [tuple(r[i] for i in keep) for r in day_rows(dsn, spec, day, by=by)]

    before = {day: rows(day) for day in days}
    assert all(before.values()), [d for d, rows in before.items() if not rows]
    logged = _month_ingest_log(dsn, spec, days)
    assert logged and {d for d, _ in logged} <= set(days)
    run_history_month(dagbag, spec, first, reload=True)
    for day in days:
        assert rows(day) == before[day], day
    assert _month_ingest_log(dsn, spec, days) == logged
    return days


def _month_ingest_log(dsn: str, spec: DatasetSpec, days: list[date]) -> list[tuple]:
    """(market day, number of documents) of ``spec`` in ``ingest_log`` over ``days``."""
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT market_day, count(*) FROM ingest_log WHERE iso = %s AND dataset = %s AND "
                            "market_day >= %s AND market_day <= %s GROUP BY market_day ORDER BY market_day",
                            (spec.iso, spec.dataset, days[0], days[-1])).fetchall()


def cleared_connection(warehouse: str, iso: str) -> Any:
    """A connection to the migrated session warehouse with ``iso``'s lmp rows and ingest_log entries
    removed (data tables carry the upper-case ISO name, ingest_log the lower-case one): a generator
    for a fixture to ``yield from``."""
    from pmp import db

    with psycopg.connect(warehouse) as c:
        db.migrate(c)
        c.execute("DELETE FROM lmp WHERE iso = %s", (iso.upper(),))
        c.execute("DELETE FROM ingest_log WHERE iso = %s", (iso.lower(),))
        c.commit()
        yield c
