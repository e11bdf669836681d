"""Coverage and freshness as the checks found them, kept for the Airflow UI's coverage view.

Every daily check (``pipeline.check``: the DAGs' ``check`` task and ``pmp download``) records each
market day's :class:`pmp.checks.DayCheck` in ``coverage_days`` (sql/081): complete, partial (rows
but a problem: the problems and the missing UTC interval starts are kept), missing (no rows) or
in progress (the day has not ended). Every real-time check records the dataset's newest data in
``freshness``. ``pmp catalog --days`` runs the same checks and can record them too
(:func:`record` is the one writer), so history loaded before this table existed is filled by
``pmp catalog --days --record``.

:func:`grid` reads one ISO's days in one indexed query (six years of eight datasets: ~17,500 rows)
and :func:`freshness` the real-time datasets in another: the view never scans the hypertables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pmp import registry
from pmp.checks import DayCheck
from pmp.registry import DatasetSpec

STATUSES = ("complete", "partial", "missing", "in_progress")
MISSING_KEPT = 48  # missing interval starts kept per day (the detail says how many there are)


def status_of(check: DayCheck) -> str:
    if check.complete:
        return "complete"
    if check.in_progress:
        return "in_progress"
    return "partial" if check.rows else "missing"


def record(conn: Any, spec: DatasetSpec, results: list[DayCheck]) -> None:
    """Upsert the checks of some market days of one dataset (in the caller's transaction)."""
    rows = []
    for r in results:
        missing = [t for res in r.resolutions for t in res.missing][:MISSING_KEPT]
        detail = "; ".join(r.problems) if r.problems else r.summary()
        rows.append((spec.iso, spec.dataset, date.fromisoformat(r.day), status_of(r), r.rows, detail, missing))
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO coverage_days (iso, dataset, market_day, status, rows, detail, missing)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (iso, dataset, market_day) DO UPDATE SET"
            " status = excluded.status, rows = excluded.rows, detail = excluded.detail,"
            " missing = excluded.missing, checked_at = now()",
            rows,
        )


def record_freshness(conn: Any, spec: DatasetSpec, newest: datetime | None, lag: timedelta | None,
                     limit: timedelta) -> None:
    conn.execute(
        "INSERT INTO freshness (iso, dataset, newest, lag_minutes, max_lag_minutes) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (iso, dataset) DO UPDATE SET newest = excluded.newest, lag_minutes = excluded.lag_minutes,"
        " max_lag_minutes = excluded.max_lag_minutes, checked_at = now()",
        (spec.iso, spec.dataset, newest, lag.total_seconds() / 60 if lag is not None else None,
         limit.total_seconds() / 60),
    )


@dataclass
class Cell:
    day: date
    status: str
    rows: int = 0
    detail: str = ""
    missing: list[str] = field(default_factory=list)


@dataclass
class Row:
    spec: DatasetSpec
    cells: dict[date, Cell]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.cells.values():
            out[c.status] += 1
        return out


def grid(conn: Any, iso: str, start: date, end: date) -> list[Row]:
    """Per dataset of ``iso``, the recorded check of each day in ``[start, end)`` (one query).
    A day no check has seen is absent from ``cells`` (the view shows it as not checked)."""
    specs = registry.datasets(iso)
    out = {s.dataset: Row(s, {}) for s in specs}
    cur = conn.execute(
        "SELECT dataset, market_day, status, rows, detail, missing FROM coverage_days"
        " WHERE iso = %s AND market_day >= %s AND market_day < %s", (iso, start, end))
    for dataset, day, status, rows, detail, missing in cur:
        if dataset in out:
            out[dataset].cells[day] = Cell(day, status, rows, detail, list(missing or []))
    conn.commit()
    return list(out.values())


@dataclass
class Freshness:
    spec: DatasetSpec
    newest: datetime | None
    lag_minutes: float | None  # at the check
    max_lag_minutes: float | None
    checked_at: datetime | None

    @property
    def age_minutes(self) -> float | None:
        """Now minus the newest data (grows between checks, unlike ``lag_minutes``)."""
        return (datetime.now(UTC) - self.newest).total_seconds() / 60 if self.newest else None

    @property
    def fresh(self) -> bool:
        age = self.age_minutes
        return age is not None and self.max_lag_minutes is not None and age <= self.max_lag_minutes


def freshness(conn: Any, iso: str | None = None) -> list[Freshness]:
    """Every real-time dataset (of ``iso``), with what its last real-time check recorded."""
    specs = [s for s in registry.datasets(iso) if s.realtime]
    cur = conn.execute("SELECT iso, dataset, newest, lag_minutes, max_lag_minutes, checked_at FROM freshness"
                       + (" WHERE iso = %s" if iso else ""), (iso,) if iso else ())
    found = {(i, d): rest for i, d, *rest in cur}
    conn.commit()
    return [Freshness(s, *found.get((s.iso, s.dataset), (None, None, None, None))) for s in specs]
