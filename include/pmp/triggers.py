"""Event-driven freshness: a trigger in the triggerer that notices a new document within seconds.

:class:`NewDocumentTrigger` polls the cheapest listing an ISO has for one real-time dataset (a
NYISO P-list index page: a few kB naming each daily file with its "Last Updated" time) with
``httpx.AsyncClient``, within the ISO's rate limit, and yields a ``TriggerEvent`` each time the
listing changes, i.e. when the ISO publishes a new document or a new version of one. It is a
``BaseEventTrigger``: an ``AssetWatcher`` on the dataset's asset runs it for as long as the DAG
exists, and the real-time DAG is scheduled on *that asset or* its ``*/5`` cron
(:func:`realtime_schedule`): a run starts seconds after a publication, and the ``*/5`` runs stay
as the safety net (a listing that does not change while documents are still missing, a triggerer
that was down).

* One home per ISO: :data:`PROBES` maps an ISO to the function that names the listing URLs of a
  dataset from the ISO's own hook (base URL, credentials and request budget come from the Airflow
  connection, as for every task; the hook registers the connection's secrets with the masker).
  An ISO without a probe keeps its ``*/5`` schedule only.
* Rate limit: one listing request per ``poll_seconds`` (default ``PMP_WATCH_POLL_SECONDS``, 20 s),
  never faster than the connection's own pacing (NYISO ``requests_per_minute``).
* The first poll only records the listing (no event): after a triggerer restart the next ``*/5``
  run picks up whatever was published while it was down.
* A failed poll (a 5xx, a timeout, the ISO unreachable) is logged without URL query or
  credentials and retried at the next poll; it never ends the trigger.

Nothing here does I/O at import or when a DAG file is parsed (``realtime_schedule`` only builds
objects); ``httpx`` is imported in the triggerer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from pmp.registry import DatasetSpec
from pmp.validate import redact_url, setting

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 20.0


@dataclass(frozen=True)
class Probe:
    """What to poll for one dataset: absolute URLs, optional basic auth, the least seconds between
    two requests the ISO allows this client."""

    urls: tuple[str, ...]
    auth: tuple[str, str] | None = None
    min_interval: float = 0.0


def _nyiso(spec: DatasetSpec, hook: Any) -> Probe | None:
    """NYISO MIS: the P-list index page of each file family (the realtime DAG's own discovery
    reads the same pages); a new 5-minute version of a daily CSV changes its "Last Updated" cell."""
    pages = sorted({family.page for family in spec.params["files"]})
    per_minute = float(hook.extra("requests_per_minute") or 0)
    return Probe(urls=tuple(hook.url(f"{page}list.htm") for page in pages), auth=hook.cfg["auth"],
                 min_interval=60.0 / per_minute if per_minute else 0.0)


# ISO -> probe builder (the ISO's hook, already bound to its connection; None: this dataset has
# no listing to watch). ISOs not listed keep their */5 schedule only: CAISO OASIS and ISO-NE have
# no listing (their real-time discovery computes document names from the clock). ERCOT's MIS
# document list is no cheap listing: about 1 MB for the SCED LMPs (every document of five days);
# in the one bench/freshness.py run that polled its six report lists every 20 s, 34 real-time task
# instances ran in 10 minutes against 176 without watching (the machine was loaded by other work
# too, so not measured apart): ERCOT stays on */5 until a cheaper listing or a measurement says otherwise.
PROBES: dict[str, Callable[[DatasetSpec, Any], Probe | None]] = {"nyiso": _nyiso}

# Datasets of a PROBES ISO that have no listing (known without a connection, at parse time).
UNWATCHED: frozenset[str] = frozenset()


def watched(spec: DatasetSpec) -> bool:
    """A real-time dataset whose DAG an asset watcher starts (see :data:`PROBES`)."""
    return spec.realtime and spec.iso in PROBES and spec.key not in UNWATCHED and _enabled()


def _enabled() -> bool:
    return bool(setting("PMP_WATCH"))


def _poll_seconds() -> float:
    return float(setting("PMP_WATCH_POLL_SECONDS"))


def asset_name(spec: DatasetSpec) -> str:
    return f"pmp.{spec.key}.published"


class NewDocumentTrigger(BaseEventTrigger):
    """Fires (a ``TriggerEvent`` with the dataset key, the time seen and a listing fingerprint)
    whenever the ISO's listing of ``iso``/``dataset`` changes. Runs until cancelled.

    :param iso: the ISO (a key of :data:`PROBES`).
    :param dataset: the registry dataset.
    :param poll_seconds: seconds between polls (raised to the connection's pacing if that is slower).
    :param conn_id: the ISO connection (default: the ISO hook's default connection).
    :param max_events: stop after this many events (tests; ``None``: run forever).
    """

    def __init__(self, iso: str, dataset: str, poll_seconds: float = DEFAULT_POLL_SECONDS,
                 conn_id: str | None = None, max_events: int | None = None) -> None:
        super().__init__()
        self.iso = iso
        self.dataset = dataset
        self.poll_seconds = float(poll_seconds)
        self.conn_id = conn_id
        self.max_events = max_events

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("pmp.triggers.NewDocumentTrigger",
                {"iso": self.iso, "dataset": self.dataset, "poll_seconds": self.poll_seconds,
                 "conn_id": self.conn_id, "max_events": self.max_events})

    @property
    def key(self) -> str:
        return f"{self.iso}.{self.dataset}"

    def _probe_sync(self) -> Probe | None:
        """The ISO hook bound to its connection (the lookup masks its secrets), then the probe."""
        from pmp import registry

        spec = registry.get(self.iso, self.dataset)
        adapter = registry.adapter(self.iso)
        hook = adapter.hook() if self.conn_id is None else type(adapter.hook())(self.conn_id)
        return PROBES[self.iso](spec, hook)

    async def probe(self) -> Probe | None:
        # the connection lookup and the hook's extras parsing are synchronous: off the event loop
        return await asyncio.to_thread(self._probe_sync)

    async def fingerprint(self, client: Any, probe: Probe, url: str) -> str | None:
        """A digest of one listing as served now (None when the request failed: logged, no secret)."""
        import httpx

        try:
            resp = await client.get(url)
        except httpx.HTTPError as exc:
            log.warning("%s: listing %s: %s", self.key, redact_url(url), type(exc).__name__)
            return None
        if resp.status_code != 200:
            log.warning("%s: listing %s: HTTP %d", self.key, redact_url(url), resp.status_code)
            return None
        return hashlib.sha256(resp.content).hexdigest()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        from pmp.http import USER_AGENT

        probe = await self.probe()
        if probe is None:
            raise ValueError(f"{self.key}: no listing to watch (pmp.triggers.PROBES)")
        spacing = max(self.poll_seconds, probe.min_interval * len(probe.urls))
        gap = probe.min_interval
        last: dict[str, str] = {}
        events = 0
        log.info("%s: watching %s every %.0fs", self.key, ", ".join(redact_url(u) for u in probe.urls), spacing)
        async with httpx.AsyncClient(auth=probe.auth, headers={"User-Agent": USER_AGENT}, timeout=30.0,
                                     follow_redirects=True) as client:
            while True:
                changed = []
                for i, url in enumerate(probe.urls):
                    if i:
                        await asyncio.sleep(gap)  # the ISO's pacing between two requests
                    fp = await self.fingerprint(client, probe, url)
                    if fp is None:
                        continue
                    if url in last and last[url] != fp:
                        changed.append(url)
                    last[url] = fp
                if changed:
                    events += 1
                    seen = datetime.now(UTC).isoformat()
                    log.info("%s: new document listed (%s)", self.key, ", ".join(redact_url(u) for u in changed))
                    yield TriggerEvent({"dataset": self.key, "seen_at": seen,
                                        "listings": [redact_url(u) for u in changed],
                                        "fingerprint": hashlib.sha256("".join(last[u] for u in changed).encode())
                                        .hexdigest()[:16]})
                    if self.max_events is not None and events >= self.max_events:
                        return
                await asyncio.sleep(spacing)


def realtime_schedule(spec: DatasetSpec, cron: Any) -> Any:
    """The real-time DAG's schedule: ``cron`` (the ``*/5`` timetable) or, for a watched dataset,
    the dataset's asset (updated by a :class:`NewDocumentTrigger` watcher) *or* ``cron``."""
    if not watched(spec):
        return cron
    from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher

    trigger = NewDocumentTrigger(spec.iso, spec.dataset, poll_seconds=_poll_seconds())
    asset = Asset(name=asset_name(spec), uri=f"pmp://{spec.iso}/{spec.dataset}",
                  watchers=[AssetWatcher(name=f"{spec.iso}_{spec.dataset}_listing", trigger=trigger)])
    return AssetOrTimeSchedule(timetable=cron, assets=[asset])
