"""Pipeline metrics through Airflow's own metrics client (``airflow.sdk.observability.stats``).

Airflow configures the backend from its ``[metrics]`` section (StatsD, Datadog or OpenTelemetry) in
every task process; with metrics off, or outside Airflow (``pmp download``), every call is a no-op.
There is no metrics stack of our own. Every metric carries the tags ``iso`` and ``dataset``
(:func:`scope`, set by the pipeline step around its work, so the shared HTTP client needs no
arguments); with StatsD, turn on ``[metrics] statsd_influxdb_enabled`` to send tags as
``name,iso=ercot,dataset=lmp_dam:1|c`` (or use the Datadog or OpenTelemetry backend).

:data:`METRICS` is the list (README "Metrics" shows the same table); names are relative to
Airflow's ``statsd_prefix`` (``airflow.`` by default).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

# name -> (StatsD type, unit, meaning)
METRICS: dict[str, tuple[str, str, str]] = {
    "pmp.documents_fetched": ("counter", "documents", "ISO documents downloaded and written to the raw stage"),
    "pmp.bytes_fetched": ("counter", "bytes", "bytes of those documents"),
    "pmp.http_requests": ("counter", "requests", "HTTP requests to the ISO, tag `status` (200, 429, 503, … or "
                                                 "`error` for a connection error or timeout)"),
    "pmp.http_request_latency": ("timer", "ms", "time from sending a request to its response (tag `status`)"),
    "pmp.rate_limit_waits": ("timer", "ms", "each wait for the ISO's rate limit, tag `reason`: `pacer` (our "
                                            "client-side pacing) or `retry_after` (a 429's Retry-After)"),
    "pmp.rows_loaded": ("counter", "rows", "rows written to the warehouse (inserted or revised)"),
    "pmp.load_duration": ("timer", "ms", "one load transaction (COPY or upsert into the hypertable)"),
    "pmp.check_failures": ("counter", "checks", "failed checks: an incomplete market day, or stale real-time data"),
    "pmp.freshness_lag": ("gauge", "minutes", "real-time runs: now minus the newest interval end (forecasts: "
                                              "issue time) in the warehouse, after each check; 0 while the newest "
                                              "interval is still running"),
}

_TAGS: ContextVar[dict[str, str] | None] = ContextVar("pmp_metric_tags", default=None)


@contextlib.contextmanager
def scope(iso: str, dataset: str) -> Iterator[None]:
    """Tag every metric emitted inside the block with ``iso`` and ``dataset``."""
    token = _TAGS.set({"iso": iso, "dataset": dataset})
    try:
        yield
    finally:
        _TAGS.reset(token)


def tags(**extra: Any) -> dict[str, str]:
    return {**(_TAGS.get() or {}), **{k: str(v) for k, v in extra.items()}}


def _stats() -> Any:
    """Airflow's stats module when this process runs Airflow tasks (the task runner imports and
    configures it); never imported here, so ``pmp download`` and the tools stay Airflow-free."""
    if "airflow.sdk._shared.observability.metrics.stats" not in sys.modules:  # no Airflow task here
        return None
    from airflow.sdk.observability import stats  # the public name of that same module's functions

    return stats


def _emit(kind: str, name: str, value: float, extra: dict[str, Any]) -> None:
    if name not in METRICS:
        raise KeyError(f"undeclared metric {name!r} (add it to pmp.metrics.METRICS and the README)")
    stats = _stats()
    if stats is None:
        return
    try:
        if kind == "incr":
            stats.incr(name, count=int(value), tags=tags(**extra))
        elif kind == "gauge":
            stats.gauge(name, value, tags=tags(**extra))
        else:
            stats.timing(name, value, tags=tags(**extra))
    except Exception:  # a metrics backend never fails the data path
        log.debug("metric %s not sent", name, exc_info=True)


def incr(name: str, count: float = 1, **extra: Any) -> None:
    _emit("incr", name, count, extra)


def gauge(name: str, value: float, **extra: Any) -> None:
    _emit("gauge", name, value, extra)


def timing(name: str, milliseconds: float, **extra: Any) -> None:
    _emit("timing", name, milliseconds, extra)
