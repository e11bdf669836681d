"""Event-driven freshness: a trigger in the triggerer that notices a new document within seconds.

:class:`NewDocumentTrigger` polls the cheapest listing an ISO has for one real-time dataset (a
NYISO P-list index page: a few kB naming each daily file with its "Last Updated" time; ERCOT's
Public API archive list of a report posted in the last hour and a half) with
``httpx.AsyncClient``, within the ISO's rate limit, and yields a ``TriggerEvent`` when the
listing changes, i.e. when the ISO publishes a new document or a new version of one.

How the real-time DAGs use it (:class:`pmp.operators.RealtimeIngestOperator`): the ``ingest`` task
of a watched dataset's ``*/5`` run *starts in the triggerer* (Airflow's ``start_from_trigger``: no
worker process yet) with this trigger in its waiting form (``max_events=1``, ``wait_seconds``,
``remember=True``):

* it compares the listing with what the last successful run of the dataset saw (``listing_state``,
  sql/010, written by the task after it loaded): changed or never seen, it fires at once, so a
  document published between two runs is not left for the next publication;
* otherwise it polls until the listing changes and fires then: the task resumes on a worker and
  loads the new document in the same task instance, seconds after publication;
* after ``wait_seconds`` (``PMP_REALTIME_WAIT_MINUTES``, less than the run's deadline) without a
  change it fires a ``timeout`` event: the task runs its discovery and freshness check anyway (the
  safety net: a listing that stays the same while a document is missing, a stale dataset must fail).

So one real-time run costs one worker start per new document, and a dataset published every 15 or
60 minutes no longer runs a task every five (its run waits; the ``*/5`` schedule starts the next
run once this one is done). The trigger is a ``BaseEventTrigger``, so it can also drive an
``AssetWatcher`` (fire on every change, for as long as the watcher exists: ``max_events=None``).

* One home per ISO: :data:`PROBES` maps an ISO to the function that names the listing URLs of a
  dataset from the ISO's own hook (base URL, credentials and request budget come from the Airflow
  connection, as for every task; the hook registers the connection's secrets with the masker).
  An ISO without a probe keeps its ``*/5`` schedule only. A probe may be a clock instead
  (``Probe.wake``: ISO-NE, no listing but a known publication delay): the trigger then fires at
  each due instant and sends no request.
* Rate limit: one listing request per ``poll_seconds`` (default ``PMP_WATCH_POLL_SECONDS``, 20 s),
  never faster than the connection's own pacing (NYISO ``requests_per_minute``).
* Without ``remember`` the first poll only records the listing (no event). With it, a dataset
  without a listing to watch (no probe, its connection not configured for one) fires at once: the
  task then runs as an unwatched one would.
* A failed poll (a 5xx, a timeout, the ISO unreachable) is logged without URL query or
  credentials and retried at the next poll; it never ends the trigger.

Nothing here does I/O at import or when a DAG file is parsed (``waiting_kwargs`` only reads
settings); ``httpx`` is imported in the triggerer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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
    sends no request at all and fires at each such instant (``urls`` is empty). ``last_due``: the
    latest such instant at or before a given one (what a waiting trigger compares with the state
    the last run saw).

    ``digest``: what of a listing's body counts as "the same listing" (default: all of it; ERCOT's
    listing window moves with every new trigger, so only its newest posting counts)."""

    urls: tuple[str, ...]
    auth: tuple[str, str] | None = None
    min_interval: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    min_spacing: float = 0.0
    pacer: Any = None
    renew_after: float | None = None
    wake: Callable[[datetime], datetime] | None = None
    last_due: Callable[[datetime], datetime] | None = None
    digest: Callable[[bytes], str] | None = None


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
# postDatetimeFrom: before the probe is built by more than the longest cadence (hourly load
# forecasts), so the newest posting of every report is in every trigger's window
ERCOT_LISTING_WINDOW = timedelta(minutes=90)
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
                 pacer=hook.cfg["api_pacer"], renew_after=ERCOT_RENEW_SECONDS, digest=ercot_newest_posting)


def ercot_newest_posting(body: bytes) -> str:
    """What of an ERCOT archive listing counts: its newest ``postDatetime`` and the documents posted
    then. Each trigger's window starts at its own "90 minutes ago", so older documents drop out of
    the listing from one trigger to the next; a new document is a newer posting."""
    archives = json.loads(body).get("archives") or []
    if not archives:
        return "none"
    newest = max(str(a["postDatetime"]) for a in archives)
    return newest + " " + " ".join(sorted(str(a["docId"]) for a in archives if str(a["postDatetime"]) == newest))


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
    return Probe(urls=(), wake=lambda now: isone_wake(spec, now), last_due=lambda now: isone_last_due(spec, now))


ISONE_WAKE_MARGIN = timedelta(seconds=2)  # after the due instant: clocks a little apart


def isone_wake(spec: DatasetSpec, now: datetime) -> datetime:
    """The first instant after ``now`` at which ISO-NE's current-interval report surely holds a newer
    interval than at ``now``: the next interval's due instant, plus the margin."""
    from pmp.isos.isone.adapter import FIVE, current_due, newest_current_interval

    return current_due(spec, newest_current_interval(spec, now - ISONE_WAKE_MARGIN) + FIVE) + ISONE_WAKE_MARGIN


def isone_last_due(spec: DatasetSpec, now: datetime) -> datetime:
    """The latest wake-up instant at or before ``now`` (the due instant of the newest interval)."""
    from pmp.isos.isone.adapter import current_due, newest_current_interval

    return current_due(spec, newest_current_interval(spec, now - ISONE_WAKE_MARGIN)) + ISONE_WAKE_MARGIN


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
    """A real-time dataset whose ``ingest`` task waits in the triggerer for a new document (see
    :data:`PROBES`; ``PMP_WATCH=false``: every real-time task runs at its ``*/5`` tick)."""
    return spec.realtime and spec.iso in PROBES and spec.key not in UNWATCHED and _enabled()


def _enabled() -> bool:
    return bool(setting("PMP_WATCH"))


def poll_seconds() -> float:
    return float(setting("PMP_WATCH_POLL_SECONDS"))


def wait_seconds() -> float:
    """How long a real-time run waits in the triggerer for a new document (``PMP_REALTIME_WAIT_MINUTES``)."""
    return float(setting("PMP_REALTIME_WAIT_MINUTES")) * 60.0


def waiting_kwargs(spec: DatasetSpec) -> dict[str, Any]:
    """The trigger of a watched real-time ``ingest`` task (``StartTriggerArgs.trigger_kwargs``)."""
    return {"iso": spec.iso, "dataset": spec.dataset, "poll_seconds": poll_seconds(), "conn_id": None,
            "max_events": 1, "wait_seconds": wait_seconds(), "remember": True}


# What a waiting trigger compares with: the listing as the last successful run of the dataset saw it
# (sql/010_listing_state.sql), one digest per listing, keyed by the listing's path (ERCOT's query
# names a window that moves; a path names the report).
def listing_key(url: str) -> str:
    return urlsplit(url).path or url


def load_state(iso: str, dataset: str) -> dict[str, str] | None:
    """The listing state the last successful run recorded (None: never recorded)."""
    from pmp import db

    with db.connect_ready() as conn:
        row = conn.execute("SELECT state FROM listing_state WHERE iso = %s AND dataset = %s",
                           (iso, dataset)).fetchone()
    return dict(row[0]) if row else None


def save_state(iso: str, dataset: str, state: dict[str, str], seen_at: str | None = None) -> None:
    """Record the listing state a successful run started from (the task calls this after loading)."""
    from pmp import db

    with db.connect_ready() as conn:
        conn.execute(
            """INSERT INTO listing_state (iso, dataset, state, seen_at, recorded_at)
               VALUES (%s, %s, %s, COALESCE(%s::timestamptz, now()), now())
               ON CONFLICT (iso, dataset) DO UPDATE SET state = EXCLUDED.state, seen_at = EXCLUDED.seen_at,
                   recorded_at = EXCLUDED.recorded_at""",
            (iso, dataset, json.dumps(state, sort_keys=True), seen_at))


def _changed(now: dict[str, str], before: dict[str, str]) -> list[str]:
    """Listings whose digest differs from ``before`` (a listing missing from ``now``, its poll failed: not)."""
    return [k for k, v in now.items() if before.get(k) != v]


class NewDocumentTrigger(BaseEventTrigger):
    """Fires (a ``TriggerEvent`` with the dataset key, the time seen, why, and the listing state)
    when the ISO's listing of ``iso``/``dataset`` changes.

    :param iso: the ISO (a key of :data:`PROBES`).
    :param dataset: the registry dataset.
    :param poll_seconds: seconds between polls (raised to the connection's pacing if that is slower).
    :param conn_id: the ISO connection (default: the ISO hook's default connection).
    :param max_events: stop after this many events (``None``: run until cancelled, as a watcher).
    :param wait_seconds: fire a ``timeout`` event and stop after this long without a change
        (``None``: wait for ever).
    :param remember: compare the first poll with the state the last successful run recorded
        (:func:`load_state`) and fire at once if it differs or was never recorded; a dataset with
        no listing to watch then fires at once too (the task runs as an unwatched one).

    The event's ``reason``: ``listed`` (the listing changed while polling), ``due`` (a clock probe's
    instant came), ``since_last_run`` (changed since the last run's state), ``first`` (no state
    recorded), ``unwatched`` (no listing), ``timeout``. Its ``state`` (listing key -> digest, or
    ``clock`` -> due instant) is what the task records after it loaded.
    """

    def __init__(self, iso: str, dataset: str, poll_seconds: float = DEFAULT_POLL_SECONDS,
                 conn_id: str | None = None, max_events: int | None = None, wait_seconds: float | None = None,
                 remember: bool = False) -> None:
        super().__init__()
        self.iso = iso
        self.dataset = dataset
        self.poll_seconds = float(poll_seconds)
        self.conn_id = conn_id
        self.max_events = max_events
        self.wait_seconds = None if wait_seconds is None else float(wait_seconds)
        self.remember = bool(remember)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("pmp.triggers.NewDocumentTrigger",
                {"iso": self.iso, "dataset": self.dataset, "poll_seconds": self.poll_seconds,
                 "conn_id": self.conn_id, "max_events": self.max_events, "wait_seconds": self.wait_seconds,
                 "remember": self.remember})

    @property
    def key(self) -> str:
        return f"{self.iso}.{self.dataset}"

    def _probe_sync(self) -> Probe | None:
        """The ISO hook bound to its connection (the lookup masks its secrets), then the probe."""
        from pmp import registry

        spec = registry.get(self.iso, self.dataset)
        if self.iso not in PROBES:
            return None
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
        body = resp.content
        if probe.digest is not None:
            try:
                body = probe.digest(body).encode()
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.warning("%s: listing %s: unreadable (%s)", self.key, redact_url(url), type(exc).__name__)
                return None
        return hashlib.sha256(body).hexdigest()

    def _event(self, reason: str, state: dict[str, str], changed: list[str], **extra: Any) -> TriggerEvent:
        return TriggerEvent({"dataset": self.key, "seen_at": datetime.now(UTC).isoformat(), "reason": reason,
                             "listings": changed, "state": dict(state),
                             "fingerprint": hashlib.sha256(json.dumps(state, sort_keys=True).encode())
                             .hexdigest()[:16], **extra})

    async def _baseline(self) -> dict[str, str] | None:
        """The state to compare the first poll with (``remember``): the last run's, ``{}`` if none
        was ever recorded (everything counts as new), None: do not compare (not ``remember``, or the
        warehouse could not be read: then wait for a change, and the timeout is the safety net)."""
        if not self.remember:
            return None
        try:
            state = await asyncio.to_thread(load_state, self.iso, self.dataset)
        except Exception as exc:
            log.warning("%s: listing state not read (%s): waiting for a change", self.key, type(exc).__name__)
            return None
        return {} if state is None else state

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        from pmp.http import USER_AGENT

        started = time.monotonic()
        try:
            probe = await self.probe()
        except Exception as exc:
            if not self.remember:
                raise
            # the task's own discovery reports a bad connection with its whole error
            log.warning("%s: no listing probe (%s): running now", self.key, type(exc).__name__)
            probe = None
        if probe is None:
            if self.remember:
                yield self._event("unwatched", {}, [])
                return
            raise ValueError(f"{self.key}: no listing to watch (pmp.triggers.PROBES)")
        baseline = await self._baseline()
        if probe.wake is not None:
            async for event in self._clock(probe, baseline, started):
                yield event
            return
        built = time.monotonic()
        last: dict[str, str] = {}
        events = 0
        async with httpx.AsyncClient(auth=probe.auth, headers={"User-Agent": USER_AGENT}, timeout=30.0,
                                     follow_redirects=True) as client:
            while True:
                if probe.renew_after is not None and time.monotonic() - built > probe.renew_after:
                    # a new token (and listing window): the same listing keys, compared as before
                    probe, built = await self.probe() or probe, time.monotonic()
                spacing = max(self.poll_seconds, probe.min_spacing, probe.min_interval * len(probe.urls))
                if not events and not last:
                    log.info("%s: watching %s every %.0fs", self.key,
                             ", ".join(redact_url(u) for u in probe.urls), spacing)
                named = {listing_key(u): redact_url(u) for u in probe.urls}
                now: dict[str, str] = {}
                for i, url in enumerate(probe.urls):
                    if i:
                        await asyncio.sleep(probe.min_interval)  # the ISO's pacing between two requests
                    fp = await self.fingerprint(client, probe, url)
                    if fp is not None:
                        now[listing_key(url)] = fp
                if baseline is not None and not events and not last and now:
                    changed = _changed(now, baseline)  # since the last run (everything, if it recorded none)
                    last.update(now)
                    if changed:
                        events += 1
                        reason = "since_last_run" if baseline else "first"
                        log.info("%s: %s (%s)", self.key, "listing changed since the last run" if baseline
                                 else "no listing state recorded yet", ", ".join(named[k] for k in changed))
                        yield self._event(reason, last, [named[k] for k in changed])
                        if self.max_events is not None and events >= self.max_events:
                            return
                    now = {}
                first = not last
                changed = [] if first else _changed(now, last)
                last.update(now)
                if changed:
                    events += 1
                    log.info("%s: new document listed (%s)", self.key, ", ".join(named[k] for k in changed))
                    yield self._event("listed", last, [named[k] for k in changed])
                    if self.max_events is not None and events >= self.max_events:
                        return
                left = None if self.wait_seconds is None else self.wait_seconds - (time.monotonic() - started)
                if left is not None and left <= 0:
                    log.info("%s: nothing new listed in %.0fs", self.key, self.wait_seconds)
                    yield self._event("timeout", last, [])
                    return
                await asyncio.sleep(spacing if left is None else min(spacing, left))

    async def _clock(self, probe: Probe, baseline: dict[str, str] | None,
                     started: float) -> AsyncIterator[TriggerEvent]:
        """An event at each instant ``probe.wake`` names (the ISO's publication schedule), none before
        it; waiting (``remember``): at once if an instant passed since the last run's state."""
        wake = probe.wake
        assert wake is not None
        events = 0
        if baseline is not None and probe.last_due is not None:
            last = probe.last_due(datetime.now(UTC)).isoformat()
            if baseline.get("clock") != last:
                log.info("%s: publication due %s since the last run", self.key, last)
                yield self._event("since_last_run" if baseline else "first", {"clock": last}, [], due=last)
                return
        due = wake(datetime.now(UTC))
        log.info("%s: waking at each publication due, next %s", self.key, due.isoformat())
        while True:
            while (left := (due - datetime.now(UTC)).total_seconds()) > 0:
                if self.wait_seconds is not None:
                    budget = self.wait_seconds - (time.monotonic() - started)
                    if budget <= 0:
                        log.info("%s: no publication due in %.0fs", self.key, self.wait_seconds)
                        yield self._event("timeout", {"clock": (baseline or {}).get("clock", "")}, [])
                        return
                    left = min(left, budget)
                await asyncio.sleep(min(left, 60.0))  # re-read the clock: a suspended host wakes late, not never
            events += 1
            log.info("%s: publication due %s", self.key, due.isoformat())
            yield self._event("due", {"clock": due.isoformat()}, [], due=due.isoformat())
            if self.max_events is not None and events >= self.max_events:
                return
            due = wake(max(due, datetime.now(UTC)))  # after a long stall: the next due, not a burst of old ones


def _paced(pacer: Any) -> None:
    """Wait for the ISO's shared request budget as real-time work (served before history)."""
    from pmp.http import realtime_priority

    with realtime_priority():
        pacer.wait()
