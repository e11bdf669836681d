"""``pmp plan-history``: what a full catch-up of history costs, per dataset, before it starts.

For every dataset of the registry (or of ``--iso``) from ``--start`` (default 2019-01-01, never
before the dataset's own first day) to yesterday in the ISO's market time:

* **runs**: one per market day on the daily route; on a bulk history route (the ISO's adapter
  declares ``history_window = "month"``, see :mod:`pmp.history`) one per calendar month for the
  months before the recent window, and one per market day after it;
* **requests**: download requests (one per document, or one per document family and run where one
  archive or query serves every day of a run: NYISO's monthly zips, PJM's range queries of the
  feeds it keeps whole) plus one discovery request per run;
* **rows**: market days × rows per market day;
* **floor**: requests at the ISO's request-rate limit (the pacing its hook applies by default, the
  published limit where the ISO publishes one: CAISO 1 / 5 s, ERCOT's API 30 / min, PJM 6 / min,
  ISO-NE 1 / 10 s, MISO's API 1 / min): no implementation can finish sooner;
* **machine**: market days at this machine's measured throughput (dataset-days an hour, from the
  catch-up benchmark's result file, ``bench/catchup.py``).

Documents and rows per market day are measured, never guessed: from the warehouse's
``ingest_log`` (what earlier runs loaded) and, for datasets it does not hold yet, from the catch-up
benchmark's result file. A dataset with neither is shown with ``?`` and left out of the totals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pmp import registry
from pmp.registry import DatasetSpec

ROOT = Path(__file__).resolve().parents[2]
# Where bench/catchup.py writes what it measured (the plan's default source of throughput).
RESULT_FILE = ROOT / "bench" / "results" / "catchup.json"


@dataclass(frozen=True)
class RateLimit:
    """The request rate an ISO's history is fetched at: requests a minute, and where it comes from."""

    per_minute: float
    source: str  # e.g. "extra.min_request_interval_seconds = 5"

    @property
    def per_hour(self) -> float:
        return self.per_minute * 60


def rate_limit(iso: str) -> RateLimit | None:
    """The default pacing of ``iso``'s hook, read from its declared connection extras: the pacing
    extra shown in the connection form (the ISO's published limit) or else the strictest one.
    ``None`` when the hook declares no pacing."""
    from pmp.isohook import iso_hook_classes

    for cls in iso_hook_classes():
        if cls.__module__ != f"pmp.isos.{iso}.hook":
            continue
        paced = []
        for extra in cls.extras:
            if not extra.default or extra.type not in (int, float):
                continue
            if extra.name.endswith("requests_per_minute"):
                per_minute = float(extra.default)
            elif extra.name.endswith("min_request_interval_seconds"):
                per_minute = 60.0 / float(extra.default)
            else:
                continue
            paced.append((not extra.show, per_minute, f"extra.{extra.name} = {extra.default:g}"))
        if paced:
            _, per_minute, source = min(paced)  # shown first, then the strictest
            return RateLimit(per_minute, source)
    return None


@dataclass(frozen=True)
class Measured:
    """Per-dataset figures of loaded market days, and the machine's catch-up throughput."""

    per_day: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # key -> (documents, rows)
    source: Mapping[str, str] = field(default_factory=dict)  # key -> "ingest_log" / "bench"
    dataset_days_per_hour: float | None = None
    throughput_source: str = ""


def measured_from_warehouse(conn: Any) -> dict[str, tuple[float, float]]:
    """Documents and rows per loaded market day, per dataset, from ``ingest_log``."""
    rows = conn.execute(
        "SELECT iso, dataset, count(*)::float8 / count(DISTINCT market_day), sum(rows)::float8 / "
        "count(DISTINCT market_day) FROM ingest_log WHERE market_day IS NOT NULL GROUP BY iso, dataset"
    ).fetchall()
    return {f"{iso}.{dataset}": (float(docs), float(n)) for iso, dataset, docs, n in rows}


def load_result(path: Path) -> dict[str, Any] | None:
    """The catch-up benchmark's result file, or ``None`` when there is none."""
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        from pmp.validate import InputError

        raise InputError(f"{path}: not a catch-up result file ({exc})") from None


def measured(warehouse: Mapping[str, tuple[float, float]], result: Mapping[str, Any] | None,
             *, result_name: str = "bench") -> Measured:
    """Warehouse figures first (this deployment's own data), the benchmark's for the rest."""
    per_day: dict[str, tuple[float, float]] = {}
    source: dict[str, str] = {}
    for key, figures in ((result or {}).get("per_day") or {}).items():
        per_day[key], source[key] = (float(figures["documents"]), float(figures["rows"])), result_name
    for key, figures in warehouse.items():
        per_day[key], source[key] = figures, "ingest_log"
    rate = (result or {}).get("dataset_days_per_hour")
    return Measured(per_day, source, float(rate) if rate else None,
                    f"{result_name} ({(result or {}).get('measured_at', 'undated')})" if rate else "")


def history_window(spec: DatasetSpec) -> str:
    """``"month"`` where the ISO serves history in monthly bulk (the history DAG), else ``"day"``."""
    from pmp import history

    return "month" if history.has_history_dag(spec) else "day"


@dataclass(frozen=True)
class DatasetPlan:
    spec: DatasetSpec
    first: date
    last: date
    days: int
    runs: int
    route: str  # "day" or "month"
    requests: float | None
    rows: float | None
    floor_hours: float | None
    machine_hours: float | None
    rate: RateLimit | None
    measured_from: str


def months_between(first: date, end: date) -> int:
    """Calendar months touched by the days [first, end)."""
    if end <= first:
        return 0
    last = end - timedelta(days=1)
    return (last.year - first.year) * 12 + last.month - first.month + 1


def plan_dataset(spec: DatasetSpec, start: date, today: date, figures: Measured) -> DatasetPlan:
    first = max(start, spec.first_date)
    last = today - timedelta(days=1)
    days = max(0, (last - first).days + 1)
    route = history_window(spec)
    from pmp import history

    months = recent = 0
    if route == "month":
        cutoff = max(first, min(history.cutoff(spec, today), today))
        months, recent = months_between(first, cutoff), max(0, (today - cutoff).days)
        runs = months + recent
    else:
        runs = days
    rate = rate_limit(spec.iso)
    requests = rows = floor = None
    if spec.key in figures.per_day:
        docs, per_day_rows = figures.per_day[spec.key]
        rows = per_day_rows * days
        if route == "month":
            old_days = days - recent
            if history.archive_runs(spec):  # NYISO's monthly zip, PJM's range query: one per family and run
                month_requests = months * docs
            else:  # one request per document, or per batch (ERCOT's archive: 1,000 documents a request)
                per_request = history.docs_per_request(spec)
                month_requests = (old_days * docs if per_request == 1 else
                                  months * math.ceil(old_days * docs / max(1, months) / per_request))
            requests = month_requests + recent * docs + runs  # + one discovery request per run
        else:
            requests = days * docs + runs
        floor = requests / rate.per_hour if rate else 0.0
    machine = days / figures.dataset_days_per_hour if figures.dataset_days_per_hour else None
    return DatasetPlan(spec, first, last, days, runs, route, requests, rows, floor, machine, rate,
                       figures.source.get(spec.key, ""))


def plan(specs: Iterable[DatasetSpec], start: date, today: date, figures: Measured) -> list[DatasetPlan]:
    return [plan_dataset(spec, start, today, figures) for spec in specs]


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "?"
    if digits:
        return f"{value:,.{digits}f}"
    return f"{math.ceil(value):,}"


def render(plans: list[DatasetPlan], figures: Measured, *, workers: int = 1) -> str:
    """The plan as a table, then totals: runs, requests, rows, the ISO-pacing floor (datasets of
    one ISO share its limit, ISOs run side by side) and the machine-throughput time."""
    head = ("dataset", "days", "route", "runs", "requests", "rows", "floor_h", "machine_h", "rate limit")
    lines = [head]
    for p in plans:
        rate = f"{p.rate.per_minute:g}/min ({p.rate.source})" if p.rate else "none"
        lines.append((p.spec.key, f"{p.days:,}", p.route, f"{p.runs:,}", _n(p.requests), _n(p.rows),
                      _n(p.floor_hours, 1), _n(p.machine_hours, 1), rate))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    known = [p for p in plans if p.requests is not None]
    dataset_days = sum(p.days for p in plans)
    out.append("")
    out.append(f"total: datasets={len(plans)} dataset_days={dataset_days:,} runs={sum(p.runs for p in plans):,} "
               f"requests={_n(sum(p.requests or 0 for p in known))} rows={_n(sum(p.rows or 0 for p in known))}")
    slowest = floor_by_iso(plans)
    out.append(f"iso_pacing_floor_hours={slowest[1]:.1f} (the slowest ISO, {slowest[0]}: each ISO's datasets share "
               "its limit, ISOs run side by side)" if slowest else "iso_pacing_floor_hours=?")
    if figures.dataset_days_per_hour:
        hours = dataset_days / figures.dataset_days_per_hour
        out.append(f"machine_hours={hours:.1f} at {figures.dataset_days_per_hour:,.0f} dataset-days/h measured "
                   f"on this machine ({figures.throughput_source}); with {workers} such worker(s): "
                   f"{hours / max(1, workers):.1f} h, never below the floor")
    else:
        out.append("machine_hours=? (no measured throughput: run python bench/catchup.py)")
    missing = [p.spec.key for p in plans if p.requests is None]
    if missing:
        out.append(f"not measured yet (? above; load a day or run bench/catchup.py): {', '.join(missing)}")
    return "\n".join(out)


def floor_by_iso(plans: list[DatasetPlan]) -> tuple[str, float] | None:
    """The ISO-pacing floor of a whole catch-up: the slowest ISO and its datasets' summed floors."""
    per_iso: dict[str, float] = {}
    for p in plans:
        if p.floor_hours is not None:
            per_iso[p.spec.iso] = per_iso.get(p.spec.iso, 0.0) + p.floor_hours
    return max(per_iso.items(), key=lambda kv: kv[1]) if per_iso else None


def daily_specs(isos: list[str] | None = None) -> list[DatasetSpec]:
    if not isos:
        return registry.datasets()
    return [s for iso in isos for s in registry.datasets(iso)]
