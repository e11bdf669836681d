"""``pmp status``: how current the warehouse is, per ISO and dataset (the ``dataset_freshness``
view of sql/010), one line each, every registry dataset listed (``-`` where nothing is loaded)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pmp import registry


@dataclass(frozen=True)
class StatusRow:
    iso: str
    dataset: str
    realtime: bool
    newest_interval_end: datetime | None
    lag: timedelta | None
    newest_published_at: datetime | None
    newest_loaded_at: datetime | None
    documents: int


def rows(conn: Any, iso: str | None = None) -> list[StatusRow]:
    """One row per registry dataset (of ``iso``), from the ``dataset_freshness`` view."""
    found = {
        (r[0], r[1]): r[2:]
        for r in conn.execute(
            "SELECT iso, dataset, newest_interval_end, lag, newest_published_at, newest_loaded_at, documents"
            " FROM dataset_freshness").fetchall()
    }
    out = []
    for spec in registry.datasets(iso):
        end, lag, published, loaded, docs = found.get((spec.iso, spec.dataset), (None, None, None, None, 0))
        out.append(StatusRow(spec.iso, spec.dataset, spec.realtime, end, lag, published, loaded, int(docs)))
    return out


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _lag(value: timedelta | None) -> str:
    """``4m05s``, ``3h12m``, ``2d04h``; a forecast's horizon ahead of now is negative (``-1d10h``)."""
    if value is None:
        return "-"
    sign, seconds = ("-" if value < timedelta(0) else ""), int(abs(value.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s"


def render(rows: list[StatusRow]) -> str:
    head = (f"{'iso':<6} {'dataset':<18} {'rt':<2} {'newest interval end':<21} {'lag':>8} "
            f"{'newest published':<21} {'newest loaded':<21} {'docs':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.iso:<6} {r.dataset:<18} {'*' if r.realtime else '':<2} {_when(r.newest_interval_end):<21} "
                     f"{_lag(r.lag):>8} {_when(r.newest_published_at):<21} {_when(r.newest_loaded_at):<21} "
                     f"{r.documents:>7}")
    lines.append("rt *: has a */5 real-time DAG; lag: now - newest interval end (negative: a forecast's horizon)")
    return "\n".join(lines)
