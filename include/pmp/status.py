"""``pmp status``: how current each dataset is, from the ``dataset_freshness`` view (sql/089).

One row per ISO dataset that has loaded anything: the newest interval end, its lag behind now,
the newest document's publication and load times, and for real-time datasets the lag their check
allows and whether the dataset is behind it. Real-time datasets that never loaded are listed too
(``never loaded``): a dataset that is missing is the most behind of all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pmp import registry


@dataclass(frozen=True)
class Status:
    iso: str
    dataset: str
    realtime: bool
    newest_interval_end: datetime | None
    lag: timedelta | None
    newest_published_at: datetime | None
    newest_loaded_at: datetime | None
    documents: int
    max_lag_minutes: float | None
    behind: bool | None


def read(conn: Any, iso: str | None = None, *, realtime_only: bool = False) -> list[Status]:
    """The view's rows (of ``iso``), in registry order, plus real-time datasets not loaded yet."""
    cur = conn.execute(
        "SELECT iso, dataset, newest_interval_end, lag, newest_published_at, newest_loaded_at, documents,"
        " max_lag_minutes, behind FROM dataset_freshness" + (" WHERE iso = %s" if iso else ""),
        (iso.lower(),) if iso else (),
    )
    found = {(r[0], r[1]): r[2:] for r in cur}
    conn.commit()
    out = []
    for spec in registry.datasets(iso):
        if realtime_only and not spec.realtime:
            continue
        row = found.get((spec.iso, spec.dataset))
        if row is None and not spec.realtime:
            continue  # a history-only dataset with nothing loaded: `pmp catalog` says so
        if row is None:
            out.append(Status(spec.iso, spec.dataset, True, None, None, None, None, 0, None, True))
            continue
        end, lag, published, loaded, docs, allowed, behind = row
        out.append(Status(spec.iso, spec.dataset, spec.realtime, end, lag, published, loaded, int(docs),
                          allowed, behind if spec.realtime else None))
    return out


def _age(lag: timedelta | None) -> str:
    if lag is None:
        return "-"
    seconds = int(lag.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s"


def _time(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


def render(rows: list[Status]) -> str:
    head = ("ISO", "DATASET", "KIND", "NEWEST INTERVAL END (UTC)", "LAG", "PUBLISHED", "LOADED", "DOCS",
            "ALLOWED", "STATE")
    table = [head]
    for r in rows:
        if r.realtime:
            state = "never loaded" if r.newest_loaded_at is None else (
                "BEHIND" if r.behind else "ok" if r.behind is False else "unchecked")
        else:
            state = "history"
        table.append((r.iso, r.dataset, "real-time" if r.realtime else "daily", _time(r.newest_interval_end),
                      _age(r.lag), _time(r.newest_published_at), _time(r.newest_loaded_at), str(r.documents),
                      f"{r.max_lag_minutes:g}m" if r.max_lag_minutes is not None else "-", state))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)
