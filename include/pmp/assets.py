"""Airflow Assets: what a load task tells the rest of the deployment when data lands.

One Asset per ISO dataset (``pmp.<iso>.<dataset>``), its URI in the ``postgres://`` scheme the
Postgres provider registers, naming the warehouse table and the ISO::

    postgres://<host>:<port>/<database>/public/lmp?dataset=lmp_dam&iso=ercot

The warehouse part comes from ``PMP_ASSET_WAREHOUSE`` (read when DAG files are parsed, so no
connection lookup and no I/O at parse time; set it to the warehouse's real ``host:port/database``
so the URIs name it). Every load task declares its Asset in ``outlets``; on success Airflow records
an asset event whose ``extra`` says what was loaded (:func:`event_extra`: the UTC interval range, the
local market days, rows, documents, revisions). DAGs scheduled on these Assets (e.g.
``dags/hub_price_summary.py``) read the extra from ``triggering_asset_events``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import Asset

from pmp import registry
from pmp.registry import DatasetSpec
from pmp.validate import setting

GROUP = "pmp"
SCHEMA = "public"  # the migrations create every table in the default schema


def warehouse() -> str:
    """``postgres://host:port/database`` of the Assets' URIs (``PMP_ASSET_WAREHOUSE``)."""
    parts = urlsplit(str(setting("PMP_ASSET_WAREHOUSE")))
    database = parts.path.strip("/") or "pmp"
    return f"postgres://{parts.hostname}:{parts.port or 5432}/{database}"


def name(spec: DatasetSpec) -> str:
    return f"{GROUP}.{spec.iso}.{spec.dataset}"


def uri(spec: DatasetSpec) -> str:
    return f"{warehouse()}/{SCHEMA}/{spec.table}?dataset={spec.dataset}&iso={spec.iso}"


def asset(spec: DatasetSpec) -> Asset:
    """The Asset of one ISO dataset (the same object for the daily and the real-time DAG)."""
    extra = {"iso": spec.iso, "dataset": spec.dataset, "table": spec.table}
    if spec.market:
        extra["market"] = spec.market
    return Asset(name=name(spec), uri=uri(spec), group=GROUP, extra=extra)


def assets(specs: Iterable[DatasetSpec] | None = None) -> list[Asset]:
    return [asset(s) for s in (registry.datasets() if specs is None else specs)]


def event_extra(spec: DatasetSpec, loaded: dict[str, Any]) -> dict[str, Any]:
    """The asset event's ``extra`` for one load (``pipeline.load``'s result): JSON only."""
    return {
        "iso": spec.iso, "dataset": spec.dataset, "table": spec.table,
        "interval_start": loaded.get("interval_start"), "interval_end": loaded.get("interval_end"),
        "market_days": list(loaded.get("market_days") or []),
        "rows": int(loaded.get("rows") or 0), "documents": int(loaded.get("documents") or 0),
        "revised": len(loaded.get("revised") or []) if isinstance(loaded.get("revised"), list)
        else int(loaded.get("revised") or 0),
    }


def record(outlet_events: Any, spec: DatasetSpec, loaded: dict[str, Any]) -> None:
    """Put what was loaded on the task's asset event (``outlet_events`` of the task context)."""
    if outlet_events is None:  # called outside a task (pmp download)
        return
    outlet_events[asset(spec)].extra = event_extra(spec, loaded)


def spec_of(extra: dict[str, Any] | None, asset_uri: str = "") -> DatasetSpec | None:
    """The dataset an asset event is about (its extra, else its URI's query)."""
    extra = extra or {}
    iso, dataset = extra.get("iso"), extra.get("dataset")
    if not (iso and dataset) and asset_uri:
        from urllib.parse import parse_qs

        query = parse_qs(urlsplit(asset_uri).query)
        iso, dataset = (query.get("iso") or [None])[0], (query.get("dataset") or [None])[0]
    if not (iso and dataset):
        return None
    try:
        return registry.get(str(iso), str(dataset))
    except (KeyError, ValueError):
        return None
