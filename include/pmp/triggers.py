"""Event-driven freshness: a trigger in the triggerer that notices a new document within seconds.

:class:`NewDocumentTrigger` polls the cheapest listing an ISO has for one real-time dataset (a
NYISO P-list index page: a few kB naming each daily file with its "Last Updated" time; ERCOT's
Public API archive list of a report posted in the last half hour) with
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
  An ISO without a probe keeps its ``*/5`` schedule only. A probe may be a clock instead
  (``Probe.wake``: ISO-NE, no listing but a known publication delay): the trigger then fires at
  each due instant and sends no request.
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
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from pmp.registry import DatasetSpec
from pmp.validate import redact_url, setting

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 20.0


@dataclass(frozen=True)
class Probe:
    """What to poll for one dataset: absolute URLs, optional basic auth or headers, the least
    seconds between two requests the ISO allows this client, the least seconds between two polls,
    the ISO's shared request budget (a :class:`pmp.http.SharedPacer` the tasks use too: the watcher
    waits its turn there, served first like real-time work), and after how many seconds the probe
    must be built again (a bearer token's lifetime).

    ``wake``: for an ISO with no cheap listing but a known publication schedule, the next instant
    after a given one by which the ISO has surely published a new document; the trigger then
    sends no request at all and fires at each such instant (``urls`` is empty)."""

    urls: tuple[str, ...]
    auth: tuple[str, str] | None = None
    min_interval: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    min_spacing: float = 0.0
    pacer: Any = None
    renew_after: float | None = None
    wake: Callable[[datetime], datetime] | None = None


def _nyiso(spec: DatasetSpec, hook: Any) -> Probe | None:
    """NYISO MIS: the P-list index page of each file family (the realtime DAG's own discovery
    reads the same pages); a new 5-minute version of a daily CSV changes its "Last Updated" cell."""
    pages = sorted({family.page for family in spec.params["files"]})
    per_minute = float(hook.extra("requests_per_minute") or 0)
    return Probe(urls=tuple(hook.url(f"{page}list.htm") for page in pages), auth=hook.cfg["auth"],
                 min_interval=60.0 / per_minute if per_minute else 0.0)


# ERCOT's listing cost: the Public API archive list of one product filtered by posting time is a
# few hundred bytes (MIS's document list of the same product is about 1 MB: every document of five
# days). Its requests count against ERCOT's 30 per minute per subscription key, so they go through
# the same shared pacer as the tasks (real-time first) and poll at most every 30 s: the five API
# datasets cost 10 of the 30 requests a minute. The fuel mix has no archive: its dashboard feed
# (MIS host, no documented limit) is the listing.
ERCOT_MIN_SPACING = 30.0
ERCOT_LISTING_WINDOW = timedelta(minutes=30)  # postDatetimeFrom: a little before the probe is built
ERCOT_RENEW_SECONDS = 1800.0  # a new token and window every half hour (the B2C token lives an hour)
# ERCOT reports a real-time dataset is made of that post during the operating day (the daily
# actual-load report NP6-345-CD posts the day after: the daily DAG's)
ERCOT_DAY_AFTER = frozenset({"NP6-345-CD"})


def _ercot(spec: DatasetSpec, hook: Any) -> Probe | None:
    """ERCOT: the Public API archive list of each report posted since a little before now (local
    time, ERCOT's ``postDatetimeFrom``); the fuel mix: its dashboard feed."""
    from pmp.isos.ercot.adapter import reports
    from pmp.timeutil import zone

    mis_per_minute = float(hook.extra("mis_requests_per_minute") or 0)
    if spec.params.get("source") == "fuel_mix":
        return Probe(urls=(f"{hook.cfg['mis']}/api/1/services/read/dashboards/fuel-mix.json",),
                     min_interval=60.0 / mis_per_minute if mis_per_minute else 0.0, min_spacing=ERCOT_MIN_SPACING)
    if not hook.api_configured:
        log.warning("%s: ERCOT Public API not configured on %r: no watcher (the */5 runs stay)", spec.key,
                    hook.ercot_conn_id)
        return None
    since = (datetime.now(UTC) - ERCOT_LISTING_WINDOW).astimezone(zone(spec.timezone))
    urls = tuple(f"{hook.cfg['api']}/archive/{rep['emil'].lower()}?postDatetimeFrom={since:%Y-%m-%dT%H:%M:%S}"
                 "&size=1000" for rep in reports(spec) if rep.get("emil") not in ERCOT_DAY_AFTER)
    return Probe(urls=urls, headers=tuple(hook._headers().items()), min_spacing=ERCOT_MIN_SPACING,
                 pacer=hook.cfg["api_pacer"], renew_after=ERCOT_RENEW_SECONDS)


def _isone(spec: DatasetSpec, hook: Any) -> Probe | None:
    """ISO-NE has no document list, and the only thing to poll for a new interval's 5-minute LMPs
    is the current-interval report itself (every location's prices: a probe would cost as much as
    the download, out of ISO Express's budget of about one request per 10 s that the history runs
    share). ISO-NE posts each interval's preliminary prices at most ``current_due_seconds`` after it
    ends, and the real-time discovery names the report by the newest interval due by now
    (:meth:`pmp.isos.isone.adapter.IsoneAdapter._current_refs`), so the watcher is a clock: it fires
    at each interval's due instant (plus :data:`ISONE_WAKE_MARGIN`), sending no request."""
    if spec.dataset != "lmp_rt5m":
        return None
    return Probe(urls=(), wake=lambda now: isone_wake(spec, now))


ISONE_WAKE_MARGIN = timedelta(seconds=2)  # after the due instant: clocks a little apart


def isone_wake(spec: DatasetSpec, now: datetime) -> datetime:
    """The first instant after ``now`` at which ISO-NE's current-interval report surely holds a newer
    interval than at ``now``: the next interval's due instant, plus the margin."""
    from pmp.isos.isone.adapter import FIVE, current_due, newest_current_interval

    return current_due(spec, newest_current_interval(spec, now - ISONE_WAKE_MARGIN) + FIVE) + ISONE_WAKE_MARGIN


# ISO -> probe builder (the ISO's hook, already bound to its connection; None: this dataset has
# no listing to watch). ISOs not listed keep their */5 schedule only: CAISO OASIS and ISO-NE have
# no listing (their real-time discovery computes document names from the clock); ISO-NE's 5-minute
# LMPs are watched by the clock (_isone: a wake-up when each interval is due). ERCOT's MIS
# document list is no cheap listing: about 1 MB for the SCED LMPs (every document of five days);
# in the one bench/freshness.py run that polled its six report lists every 20 s, 34 real-time task
# instances ran in 10 minutes against 176 without watching (the machine was loaded by other work
# too, so not measured apart): ERCOT is watched through its Public API archive list instead (_ercot).
PROBES: dict[str, Callable[[DatasetSpec, Any], Probe | None]] = {"nyiso": _nyiso, "ercot": _ercot,
                                                                  "isone": _isone}

# Datasets of a PROBES ISO that have no listing (known without a connection, at parse time): ISO-NE's
# day-so-far reports (reserve prices, load, fuel mix, load-forecast vintages) keep their */5 runs.
UNWATCHED: frozenset[str] = frozenset({"isone.as_rt5m", "isone.load_actual", "isone.load_forecast",
                                       "isone.fuel_mix"})


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

        if probe.pacer is not None:
            await asyncio.to_thread(_paced, probe.pacer)
        try:
            resp = await client.get(url, headers=dict(probe.headers))
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
        if probe.wake is not None:
            async for event in self._clock(probe.wake):
                yield event
            return
        built = time.monotonic()
        last: dict[str, str] = {}
        events = 0
        async with httpx.AsyncClient(auth=probe.auth, headers={"User-Agent": USER_AGENT}, timeout=30.0,
                                     follow_redirects=True) as client:
            while True:
                if probe.renew_after is not None and time.monotonic() - built > probe.renew_after:
                    # a new token (and listing window): the first poll of the new URLs only records them
                    probe, built = await self.probe() or probe, time.monotonic()
                    last = {u: fp for u, fp in last.items() if u in probe.urls}
                spacing = max(self.poll_seconds, probe.min_spacing, probe.min_interval * len(probe.urls))
                gap = probe.min_interval
                if not events and not last:
                    log.info("%s: watching %s every %.0fs", self.key,
                             ", ".join(redact_url(u) for u in probe.urls), spacing)
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


    async def _clock(self, wake: Callable[[datetime], datetime]) -> AsyncIterator[TriggerEvent]:
        """An event at each instant ``wake`` names (the ISO's publication schedule), none before it."""
        events = 0
        due = wake(datetime.now(UTC))
        log.info("%s: waking at each publication due, next %s", self.key, due.isoformat())
        while True:
            while (left := (due - datetime.now(UTC)).total_seconds()) > 0:
                await asyncio.sleep(min(left, 60.0))  # re-read the clock: a suspended host wakes late, not never
            events += 1
            log.info("%s: publication due %s", self.key, due.isoformat())
            yield TriggerEvent({"dataset": self.key, "seen_at": datetime.now(UTC).isoformat(), "due": due.isoformat(),
                                "listings": [], "fingerprint": hashlib.sha256(due.isoformat().encode()).hexdigest()[:16]})
            if self.max_events is not None and events >= self.max_events:
                return
            due = wake(max(due, datetime.now(UTC)))  # after a long stall: the next due, not a burst of old ones


def _paced(pacer: Any) -> None:
    """Wait for the ISO's shared request budget as real-time work (served before history)."""
    from pmp.http import realtime_priority

    with realtime_priority():
        pacer.wait()


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
