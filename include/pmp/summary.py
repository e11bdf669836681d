"""The daily hub-price summary: an example of a DAG scheduled on the bundle's Assets.

``hub_price_summary`` (``dags/hub_price_summary.py``) runs whenever any ISO's day-ahead LMP load
task records an asset event (:mod:`pmp.assets`). It reads the events that triggered it, and for each
(ISO, market day) they name rewrites that day's rows of ``hub_price_daily`` (sql/080): per hub the
number of intervals and the min, mean and max LMP over the local market day (23, 24 or 25 hours).
A re-run or a revised day replaces its rows; an event of a load that found nothing new is skipped.

Each run also summarizes the days loaded in the last hour that have no summary newer than their
load (:func:`pending`). Airflow links an event to the run it triggers by time: a run consumes the
events up to the moment its queue entry was made, and an event recorded while that entry is still
queued (two loads of the same dataset finishing within a scheduler loop, as parallel history runs
do) adds no entry of its own — it waits for the next event of any day-ahead dataset, which may be
a day away. Its load is in ``ingest_log`` before the run starts, so the run picks it up there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from typing import Any

from pmp import assets, registry
from pmp.registry import DatasetSpec
from pmp.timeutil import market_day_bounds

log = logging.getLogger(__name__)

DAG_ID = "hub_price_summary"


def sources() -> list[DatasetSpec]:
    """The datasets the summary follows: every ISO's day-ahead LMP."""
    return [s for s in registry.datasets() if s.table == "lmp" and s.market == "DAM"]


def days_of(events: Iterable[tuple[str, dict[str, Any] | None]]) -> dict[str, set[date]]:
    """``{dataset key: market days}`` named by asset events (``(uri, extra)`` pairs)."""
    out: dict[str, set[date]] = {}
    for uri, extra in events:
        spec = assets.spec_of(extra, uri)
        if spec is None or not (extra or {}).get("rows"):
            continue
        out.setdefault(spec.key, set()).update(date.fromisoformat(d) for d in (extra or {}).get("market_days", []))
    return out


def summarize(conn: Any, spec: DatasetSpec, day: date) -> int:
    """Rewrite one market day's hub rows of ``hub_price_daily``; the number of hubs written."""
    start, end = market_day_bounds(day, spec.timezone)
    conn.execute("DELETE FROM hub_price_daily WHERE iso = %s AND market = %s AND market_day = %s",
                 (spec.iso.upper(), spec.market, day))
    cur = conn.execute(
        "INSERT INTO hub_price_daily (iso, market, location, market_day, intervals, lmp_min, lmp_mean, lmp_max)"
        " SELECT iso, market, location, %s, count(*), min(lmp), avg(lmp), max(lmp) FROM hub_prices"
        " WHERE iso = %s AND market = %s AND interval_start >= %s AND interval_start < %s"
        " GROUP BY iso, market, location",
        (day, spec.iso.upper(), spec.market, start, end),
    )
    return cur.rowcount


PENDING_WINDOW = "1 hour"


def pending(conn: Any) -> dict[str, set[date]]:
    """``{dataset key: market days}`` of the summary's datasets loaded within ``PENDING_WINDOW`` whose
    hub rows are older than the load, or missing (see the module's docstring)."""
    specs = {(s.iso, s.dataset): s for s in sources()}
    rows = conn.execute(
        "SELECT l.iso, l.dataset, l.market_day FROM ingest_log l"
        " JOIN unnest(%s::text[], %s::text[]) AS w(iso, dataset) ON w.iso = l.iso AND w.dataset = l.dataset"
        f" WHERE l.market_day IS NOT NULL AND l.rows > 0 AND l.loaded_at > now() - interval '{PENDING_WINDOW}'"
        " AND NOT EXISTS (SELECT 1 FROM hub_price_daily h WHERE h.iso = upper(l.iso) AND h.market = %s"
        "                 AND h.market_day = l.market_day AND h.computed_at >= l.loaded_at)"
        " GROUP BY 1, 2, 3",
        ([k[0] for k in specs], [k[1] for k in specs], "DAM")).fetchall()
    out: dict[str, set[date]] = {}
    for iso, dataset, day in rows:
        out.setdefault(specs[(iso, dataset)].key, set()).add(day)
    return out


def run(events: Iterable[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """The DAG's task body: summarize every day the triggering events name, and the loaded days no
    event brought (:func:`pending`), in one transaction."""
    from pmp import db

    wanted = days_of(events)
    written: dict[str, dict[str, int]] = {}
    with db.connect_ready() as conn:
        for key, days in pending(conn).items():
            if missed := days - wanted.get(key, set()):
                log.info("%s: %d loaded day(s) no event of this run named: %s", key, len(missed),
                         ", ".join(sorted(d.isoformat() for d in missed)))
            wanted.setdefault(key, set()).update(days)
        for key, days in sorted(wanted.items()):
            spec = registry.get(*key.split(".", 1))
            for day in sorted(days):
                n = summarize(conn, spec, day)
                written.setdefault(key, {})[day.isoformat()] = n
                log.info("%s %s: %d hub(s) summarized", key, day, n)
    if not written:
        log.info("no asset event named a loaded day: nothing to summarize")
    return {"summarized": written}


def _events(triggering_asset_events: Any) -> list[tuple[str, dict[str, Any] | None]]:
    """``(uri, extra)`` of every event that triggered the run (``triggering_asset_events``)."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    for events in (triggering_asset_events or {}).values():
        for event in events:
            out.append((str(getattr(event.asset, "uri", "") or ""), dict(event.extra or {})))
    return out


DOC = """### Daily hub-price summary (scheduled on Assets)

Runs when any ISO's day-ahead LMP load records an asset event (`pmp.<iso>.lmp_dam`, see the
README's *Assets* section): for each market day the events name, it rewrites that day's rows of
`hub_price_daily` (per hub: intervals, min / mean / max LMP over the local market day).
A manual run summarizes the days of its `conf`: `{"dataset": "ercot.lmp_dam", "days": ["2024-11-03"]}`.
"""


def build_dags() -> dict[str, Any]:
    """``{DAG_ID: dag}``, or nothing when ``PMP_DAGS`` does not select it."""
    import pendulum
    from airflow.sdk import AssetAny, dag, task
    from airflow.sdk.definitions.param import Param

    from pmp.factory import DEFAULT_ARGS, _selected

    if not _selected(DAG_ID):
        return {}

    @dag(
        dag_id=DAG_ID,
        dag_display_name="Hub prices: daily summary (on asset events)",
        description="Per hub and market day: min, mean and max day-ahead LMP, after each day-ahead price load",
        schedule=AssetAny(*assets.assets(sources())),
        start_date=pendulum.datetime(2019, 1, 1, tz="UTC"),
        catchup=False,
        # Not max_active_runs=1: at its cap an asset-triggered DAG can be hidden behind the scheduler's
        # cached "at max_active_runs" flag, and events queued meanwhile wait for an unrelated later
        # event (apache/airflow#56050); the summaries are serialized at the task instead.
        max_active_runs=16,
        default_args=DEFAULT_ARGS,
        tags=["pmp", "summary", "assets"],
        doc_md=DOC,
        params={"dataset": Param(None, type=["null", "string"], description="manual runs: <iso>.<dataset>"),
                "days": Param([], type="array", description="manual runs: market days (YYYY-MM-DD)")},
    )
    def _summary() -> None:
        @task(max_active_tis_per_dag=1)  # one summary at a time: each rewrites its days' rows
        def summarize(triggering_asset_events: Any = None, params: Any = None) -> dict:
            events = _events(triggering_asset_events)
            if not events and params and params.get("dataset"):
                iso, dataset = str(params["dataset"]).split(".", 1)
                events = [("", {"iso": iso, "dataset": dataset, "rows": 1, "market_days": list(params["days"])})]
            return run(events)

        summarize()

    return {DAG_ID: _summary()}
