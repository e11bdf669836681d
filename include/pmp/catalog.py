"""What the warehouse holds, per ISO and dataset: extent, rows, and missing intervals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import sql

from pmp import registry
from pmp.pipeline import DayCheck, check_days
from pmp.registry import DatasetSpec
from pmp.timeutil import local_day_of


@dataclass
class CatalogRow:
    iso: str
    dataset: str
    first_interval: datetime | None
    last_interval: datetime | None
    rows: int
    locations: int
    intervals: int
    missing_intervals: int
    days: list[DayCheck]


def _filter(spec: DatasetSpec) -> tuple[sql.Composable, list[Any]]:
    where = sql.SQL("iso = %s") + (sql.SQL(" AND market = %s") if spec.market else sql.SQL(""))
    return where, [spec.iso.upper()] + ([spec.market] if spec.market else [])


def entry(conn: Any, spec: DatasetSpec, *, with_days: bool = False) -> CatalogRow:
    where, params = _filter(spec)
    entity = {"lmp": "location", "ancillary_services": "product", "load": "area", "fuel_mix": "fuel"}[spec.table]
    q = sql.SQL(
        "SELECT min(interval_start), max(interval_end), count(*), count(DISTINCT {e}),"
        " count(DISTINCT interval_start) FROM {t} WHERE "
    ).format(e=sql.Identifier(entity), t=sql.Identifier(spec.table)) + where
    first, last, rows, locations, intervals = conn.execute(q, params).fetchone()
    conn.commit()
    missing = 0
    days: list[DayCheck] = []
    if first is not None:
        expected = int((last - first).total_seconds() // (spec.interval_minutes * 60))
        missing = expected - intervals
        if with_days:
            d0, d1 = local_day_of(first, spec.timezone), local_day_of(last - timedelta(seconds=1), spec.timezone)
            span: list[date] = [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]
            days = [d for d in check_days(conn, spec, span) if d.rows]
    return CatalogRow(spec.iso, spec.dataset, first, last, rows, locations, intervals, missing, days)


def catalog(conn: Any, iso: str | None = None, *, with_days: bool = False) -> list[CatalogRow]:
    return [entry(conn, spec, with_days=with_days) for spec in registry.datasets(iso)]


def _fmt(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S%z") if t else "-"


def render(rows: list[CatalogRow]) -> str:
    head = f"{'iso':<6} {'dataset':<12} {'first interval (UTC)':<26} {'last interval end (UTC)':<26} " \
           f"{'rows':>9} {'locs':>5} {'intervals':>9} {'missing':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.iso:<6} {r.dataset:<12} {_fmt(r.first_interval):<26} {_fmt(r.last_interval):<26} "
            f"{r.rows:>9} {r.locations:>5} {r.intervals:>9} {r.missing_intervals:>7}"
        )
        for d in r.days:
            status = "complete" if d.complete else "INCOMPLETE"
            lines.append(
                f"{'':<6}   {d.day}  {d.hours:>2} h  {d.intervals:>4}/{d.expected_intervals:<4} intervals "
                f"{d.locations:>5} locations {d.rows:>8} rows  {status}"
            )
    return "\n".join(lines)
