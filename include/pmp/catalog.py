"""What the warehouse holds, per ISO and dataset: extent, rows, and missing intervals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import sql

from pmp import registry
from pmp.checks import DayCheck, check_days, entity_expr, where
from pmp.registry import DatasetSpec
from pmp.timeutil import local_day_of


@dataclass
class CatalogRow:
    iso: str
    dataset: str
    first_interval: datetime | None
    last_interval: datetime | None
    rows: int
    entities: int
    intervals: int  # distinct interval starts at the main resolution
    missing_intervals: int  # main-resolution intervals absent between first and last
    days: list[DayCheck]

    @property
    def complete_days(self) -> int:
        return sum(d.complete for d in self.days)


def entry(
    conn: Any, spec: DatasetSpec, *, with_days: bool = False, start: date | None = None, end: date | None = None
) -> CatalogRow:
    cond, params = where(spec)
    table = sql.Identifier(spec.table)
    q = sql.SQL("SELECT min(interval_start), max(interval_end), count(*), count(DISTINCT {e}) FROM {t} WHERE {c}").format(
        e=entity_expr(spec), t=table, c=cond
    )
    first, last, rows, entities = conn.execute(q, params).fetchone()
    step = timedelta(minutes=spec.interval_minutes)
    q = sql.SQL(
        "SELECT count(DISTINCT interval_start), min(interval_start), max(interval_end) FROM {t} WHERE {c}"
        " AND interval_end - interval_start = %s"
    ).format(t=table, c=cond)
    intervals, main_first, main_last = conn.execute(q, [*params, step]).fetchone()
    conn.commit()
    missing = 0
    if main_first is not None and spec.completeness == "intervals":
        missing = int((main_last - main_first) / step) - intervals
    days: list[DayCheck] = []
    if first is not None and with_days:
        d0, d1 = local_day_of(first, spec.timezone), local_day_of(last - timedelta(seconds=1), spec.timezone)
        d0, d1 = max(d0, start or d0), min(d1, end or d1)
        span: list[date] = [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]
        days = [d for d in check_days(conn, spec, span) if d.rows]
    return CatalogRow(spec.iso, spec.dataset, first, last, rows, entities, intervals, missing, days)


def catalog(
    conn: Any, iso: str | None = None, *, with_days: bool = False, start: date | None = None, end: date | None = None
) -> list[CatalogRow]:
    """One row per dataset; with ``with_days`` the per-day checks (within ``start``..``end``)."""
    return [entry(conn, spec, with_days=with_days, start=start, end=end) for spec in registry.datasets(iso)]


def _fmt(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S%z") if t else "-"


def render(rows: list[CatalogRow]) -> str:
    head = (
        f"{'iso':<6} {'dataset':<14} {'first interval (UTC)':<25} {'last interval end (UTC)':<25} "
        f"{'rows':>10} {'entities':>8} {'intervals':>9} {'missing':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.iso:<6} {r.dataset:<14} {_fmt(r.first_interval):<25} {_fmt(r.last_interval):<25} "
            f"{r.rows:>10} {r.entities:>8} {r.intervals:>9} {r.missing_intervals:>7}"
        )
        for d in r.days:
            lines.append(f"{'':<8} {d.summary()}  {d.status}")
    return "\n".join(lines)
