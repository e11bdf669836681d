"""pmp.triggers.NewDocumentTrigger against the simulator over loopback (issue 12 point 2).

The simulator's clock is frozen (speed 0), so the listing only changes when a test moves the
clock on by one publication interval: no event before that, one event after it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import SIM_CONNECTIONS, sim_conn

from pmp import registry, triggers
from pmp.simulator.server import SimHandle, start_simulator

LISTING = "/nyiso/mis/public/P-63list.htm"  # NYISO's real-time fuel mix P-list page


@pytest.fixture
def frozen_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimHandle]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with start_simulator(now=now, speed=0) as sim:
        for conn_id in SIM_CONNECTIONS:
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(sim_conn(conn_id, sim.url)))
        yield sim


def _listing_requests(sim: SimHandle) -> int:
    return sum(1 for _, path in sim.requests if path.startswith(LISTING))


async def _until(predicate: Any, what: str, limit: float = 60) -> None:
    for _ in range(int(limit / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not seen: {what}")


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_fires_once_when_a_new_document_is_listed_and_not_before(frozen_sim: SimHandle) -> None:
    trigger = triggers.NewDocumentTrigger("nyiso", "fuel_mix", poll_seconds=0.05)

    async def scenario() -> Any:
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        # three polls of an unchanged listing: nothing new, no event
        await _until(lambda: _listing_requests(frozen_sim) >= 3, "three listing polls")
        assert not first.done()
        frozen_sim.set_now(frozen_sim.sim.now() + timedelta(minutes=5))  # NYISO posts the next 5 minutes
        event = await first
        polls = _listing_requests(frozen_sim)
        second = asyncio.ensure_future(events.__anext__())
        await _until(lambda: _listing_requests(frozen_sim) >= polls + 3, "three more polls")
        assert not second.done()  # the same listing again: no second event
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second
        return event

    event = _run(scenario())
    assert event.payload["dataset"] == "nyiso.fuel_mix"
    assert event.payload["listings"] == [frozen_sim.url + LISTING]
    assert datetime.fromisoformat(event.payload["seen_at"]).tzinfo is not None


def test_a_failed_poll_is_skipped_not_fatal_and_never_an_event(frozen_sim: SimHandle) -> None:
    """5xx answers (the ISO's bad minute) neither end the trigger nor look like a new document."""
    trigger = triggers.NewDocumentTrigger("nyiso", "fuel_mix", poll_seconds=0.05, max_events=1)

    async def scenario() -> Any:
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        await _until(lambda: _listing_requests(frozen_sim) >= 1, "the first poll")
        frozen_sim.set_faults({"server_error": 3})
        polls = _listing_requests(frozen_sim)
        await _until(lambda: _listing_requests(frozen_sim) >= polls + 5, "polls through the errors")
        assert frozen_sim.sim.faults["server_error"] == 0 and not first.done()
        frozen_sim.set_now(frozen_sim.sim.now() + timedelta(minutes=5))
        event = await first
        with pytest.raises(StopAsyncIteration):  # max_events=1
            await events.__anext__()
        return event

    assert _run(scenario()).payload["dataset"] == "nyiso.fuel_mix"


def test_polls_within_the_connections_rate_limit(frozen_sim: SimHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll interval shorter than the connection's pacing is stretched to it (NYISO's
    requests_per_minute), and the probe carries the connection's base URL and credentials."""
    conn = sim_conn("nyiso_default", frozen_sim.url, requests_per_minute=6)
    conn.update(login="mirror-user", password="mirror-s3cret-pw")
    monkeypatch.setenv("AIRFLOW_CONN_NYISO_DEFAULT", json.dumps(conn))
    probe = _run(triggers.NewDocumentTrigger("nyiso", "fuel_mix", poll_seconds=0.05).probe())
    assert probe.urls == (frozen_sim.url + LISTING,)
    assert probe.auth == ("mirror-user", "mirror-s3cret-pw")
    assert probe.min_interval == pytest.approx(10.0)
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    assert "mirror-s3cret-pw" not in str(redact("password mirror-s3cret-pw"))  # the hook masked it

    async def two_polls() -> float:
        events = triggers.NewDocumentTrigger("nyiso", "fuel_mix", poll_seconds=0.05).run()
        task = asyncio.ensure_future(events.__anext__())
        await _until(lambda: _listing_requests(frozen_sim) >= 1, "the first poll")
        await asyncio.sleep(1.0)
        task.cancel()
        return _listing_requests(frozen_sim)

    assert _run(two_polls()) == 1  # the next poll is 10 s away, not 0.05 s


def test_serializes_for_the_triggerer() -> None:
    trigger = triggers.NewDocumentTrigger("nyiso", "lmp_rt5m", poll_seconds=7, conn_id="nyiso_mirror")
    path, kwargs = trigger.serialize()
    assert path == "pmp.triggers.NewDocumentTrigger"
    again = triggers.NewDocumentTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)


def test_watched_datasets_and_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    watched = {s.key for s in registry.datasets() if triggers.watched(s)}
    assert watched == {s.key for iso in ("nyiso", "ercot") for s in registry.datasets(iso) if s.realtime} | {
        "isone.lmp_rt5m"}  # ISO-NE's day-so-far reports keep */5 only
    monkeypatch.setenv("PMP_WATCH", "false")
    assert not any(triggers.watched(s) for s in registry.datasets())



ERCOT_ARCHIVE = "/ercot/api/api/public-reports/archive/np6-788-cd"  # SCED LMPs, the Public API's listing


def test_ercot_watches_the_public_api_archive_list_within_the_shared_budget(frozen_sim: SimHandle) -> None:
    """ERCOT's watcher polls the archive list of the SCED product posted since a little before now
    (a token from the B2C flow, the subscription key), through the ISO's shared API pacer, and fires
    once when ERCOT posts the next SCED file, not before."""
    probe = _run(triggers.NewDocumentTrigger("ercot", "lmp_rt5m").probe())
    assert probe is not None and len(probe.urls) == 1
    assert probe.urls[0].startswith(frozen_sim.url + ERCOT_ARCHIVE + "?postDatetimeFrom=")
    assert dict(probe.headers)["Authorization"].startswith("Bearer ")
    assert probe.pacer is not None and probe.min_spacing == triggers.ERCOT_MIN_SPACING
    assert probe.renew_after is not None
    trigger = triggers.NewDocumentTrigger("ercot", "lmp_rt5m", poll_seconds=0.05)

    def polls() -> int:
        return sum(1 for _, path in frozen_sim.requests if path.startswith(ERCOT_ARCHIVE))

    async def scenario() -> Any:
        events = trigger.run()
        first = asyncio.ensure_future(events.__anext__())
        await _until(lambda: polls() >= 1, "a first listing poll")
        assert not first.done()
        frozen_sim.set_now(frozen_sim.sim.now() + timedelta(minutes=5))  # the next SCED run posts
        event = await first
        after = polls()
        second = asyncio.ensure_future(events.__anext__())
        await _until(lambda: polls() >= after + 3, "three more polls")
        assert not second.done()  # the same listing again: no second event
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second
        return event

    triggers.ERCOT_MIN_SPACING, saved = 0.2, triggers.ERCOT_MIN_SPACING
    try:
        event = _run(scenario())
    finally:
        triggers.ERCOT_MIN_SPACING = saved
    assert event.payload["dataset"] == "ercot.lmp_rt5m"
    assert event.payload["listings"][0].startswith(frozen_sim.url + ERCOT_ARCHIVE)
    assert "Bearer" not in repr(event.payload) and "sim-key" not in repr(event.payload)


def test_ercot_without_the_public_api_has_no_watcher(frozen_sim: SimHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = sim_conn("ercot_default", frozen_sim.url)
    conn.pop("login", None)
    conn.pop("password", None)
    conn["extra"].pop("subscription_key", None)
    monkeypatch.setenv("AIRFLOW_CONN_ERCOT_DEFAULT", json.dumps(conn))
    assert _run(triggers.NewDocumentTrigger("ercot", "lmp_rt5m").probe()) is None
    fuel = _run(triggers.NewDocumentTrigger("ercot", "fuel_mix").probe())  # the dashboard needs no API
    assert fuel is not None and fuel.urls == (frozen_sim.url + "/ercot/www/api/1/services/read/dashboards/fuel-mix.json",)


def test_isone_wakes_when_each_interval_is_due_and_iso_ne_has_posted_it() -> None:
    """ISO-NE's watcher is a clock (no cheap listing): the wake-up after any instant is the next
    interval's due instant plus the margin; by then the simulator (ISO-NE's one-to-two-and-a-half
    minute delay) has posted that interval, the real-time discovery names it, and no due instant
    lies between (so a wake-up is never early, and never skips an interval)."""
    from pmp.isos.isone.adapter import newest_current_interval
    from pmp.simulator import isone as sim_isone

    spec = registry.get("isone", "lmp_rt5m")
    start = datetime(2024, 11, 3, 4, 0, tzinfo=UTC)  # the fall-back day (UTC-based: no local gap or repeat)
    for k in range(0, 2 * 86400, 37):
        now = start + timedelta(seconds=k)
        wake = triggers.isone_wake(spec, now)
        assert timedelta(0) < wake - now <= timedelta(minutes=5), now
        named = newest_current_interval(spec, wake)
        assert named == newest_current_interval(spec, now - triggers.ISONE_WAKE_MARGIN) + timedelta(minutes=5), now
        assert newest_current_interval(spec, wake - timedelta(seconds=3)) < named  # not before it is due
        assert sim_isone.prelim_available(named) <= wake  # posted by then
        assert sim_isone.latest_prelim_interval(wake) == named  # ... and the current report holds it
    # 15:00 is due at 15:07:30 (its end + 150 s): woken at 15:07:32; from then on the next is 15:05's
    at = datetime(2024, 11, 5, 15, 7, 31, tzinfo=UTC)
    assert triggers.isone_wake(spec, at) == datetime(2024, 11, 5, 15, 7, 32, tzinfo=UTC)
    assert triggers.isone_wake(spec, at + timedelta(seconds=1)) == datetime(2024, 11, 5, 15, 12, 32, tzinfo=UTC)


def test_isone_watcher_fires_once_at_the_next_due_instant_and_sends_no_request(frozen_sim: SimHandle) -> None:
    """The ISO-NE watcher (built through the connection like every probe) has no URL: it fires at each
    due instant and not before, without a request to ISO-NE (none of its rate limit spent), and its
    event names the dataset and the instant, no secret."""
    trigger = triggers.NewDocumentTrigger("isone", "lmp_rt5m", max_events=2)
    probe = _run(trigger.probe())
    assert probe is not None and probe.urls == () and probe.wake is not None
    # the triggerer's loop, on the wall clock, with the next two due instants a second apart
    first_due = datetime.now(UTC) + timedelta(seconds=1.5)
    dues = iter([first_due, first_due + timedelta(seconds=1)])
    sent = len(frozen_sim.requests)

    async def scenario() -> list[tuple[Any, datetime]]:
        out = []
        async for event in trigger._clock(triggers.Probe(urls=(), wake=lambda now: next(dues)), None,
                                          time.monotonic()):
            out.append((event, datetime.now(UTC)))
            if len(out) == 2:
                break
        return out

    (one, at_one), (two, at_two) = _run(scenario())
    assert first_due <= at_one < first_due + timedelta(seconds=1)  # not before its due, and not much after
    assert first_due + timedelta(seconds=1) <= at_two
    assert one.payload["due"] == first_due.isoformat() and two.payload["due"] != one.payload["due"]
    assert one.payload["dataset"] == "isone.lmp_rt5m" and one.payload["listings"] == []
    assert "sim-pass" not in repr(one.payload) and "sim-user" not in repr(one.payload)
    assert len(frozen_sim.requests) == sent  # a clock: no request to ISO-NE

    # run() itself: the ISO-NE probe's real schedule; no event in the first second unless a due falls in it
    spec = registry.get("isone", "lmp_rt5m")

    async def first_second() -> bool:
        task = asyncio.ensure_future(triggers.NewDocumentTrigger("isone", "lmp_rt5m").run().__anext__())
        await asyncio.sleep(1.0)
        done = task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return done

    t0 = datetime.now(UTC)
    fired = _run(first_second())
    assert fired == (triggers.isone_wake(spec, t0) <= t0 + timedelta(seconds=1.2))
    assert len(frozen_sim.requests) == sent


# ---------------------------------------------------------------- the waiting form (a real-time task's start)
def _waiting(iso: str, dataset: str, wait: float = 30.0) -> triggers.NewDocumentTrigger:
    return triggers.NewDocumentTrigger(iso, dataset, poll_seconds=0.05, max_events=1, wait_seconds=wait,
                                       remember=True)


async def _one(trigger: triggers.NewDocumentTrigger) -> Any:
    events = [e async for e in trigger.run()]
    assert len(events) == 1  # max_events=1: the task resumes once
    return events[0]


def test_waiting_fires_at_once_without_state_then_waits_for_the_next_publication(
        frozen_sim: SimHandle, private_warehouse: str) -> None:
    """A real-time run's trigger: never recorded -> at once; recorded -> only when the listing
    changes; changed since the recorded state (published between two runs) -> at once again."""
    first = _run(_one(_waiting("nyiso", "fuel_mix")))
    assert first.payload["reason"] == "first" and list(first.payload["state"]) == [LISTING]
    assert _listing_requests(frozen_sim) == 1
    triggers.save_state("nyiso", "fuel_mix", first.payload["state"], first.payload["seen_at"])
    assert triggers.load_state("nyiso", "fuel_mix") == first.payload["state"]

    async def waits_then_fires() -> Any:
        task = asyncio.ensure_future(_one(_waiting("nyiso", "fuel_mix")))
        polls = _listing_requests(frozen_sim)
        await _until(lambda: _listing_requests(frozen_sim) >= polls + 3, "three polls of the same listing")
        assert not task.done()  # the listing as the last run saw it: nothing to do yet
        frozen_sim.set_now(frozen_sim.sim.now() + timedelta(minutes=5))  # NYISO posts the next 5 minutes
        return await task

    listed = _run(waits_then_fires())
    assert listed.payload["reason"] == "listed" and listed.payload["listings"] == [frozen_sim.url + LISTING]
    assert listed.payload["state"] != first.payload["state"]
    # the run that loaded it failed (nothing recorded), and NYISO posted once more: the next run goes at once
    frozen_sim.set_now(frozen_sim.sim.now() + timedelta(minutes=5))
    again = _run(_one(_waiting("nyiso", "fuel_mix")))
    assert again.payload["reason"] == "since_last_run"
    assert again.payload["listings"] == [frozen_sim.url + LISTING]


def test_waiting_ends_with_a_timeout_event_when_nothing_is_published(
        frozen_sim: SimHandle, private_warehouse: str) -> None:
    """The safety net: no change in ``wait_seconds`` -> a ``timeout`` event (the task then runs its
    discovery and freshness check), carrying the listing as it stands."""
    seen = _run(_one(_waiting("nyiso", "fuel_mix")))
    triggers.save_state("nyiso", "fuel_mix", seen.payload["state"])
    began = time.monotonic()
    out = _run(_one(_waiting("nyiso", "fuel_mix", wait=0.6)))
    assert out.payload["reason"] == "timeout" and out.payload["listings"] == []
    assert out.payload["state"] == seen.payload["state"]
    assert time.monotonic() - began >= 0.6
    assert _listing_requests(frozen_sim) >= 3  # it kept polling while it waited


def test_waiting_without_a_listing_runs_at_once(frozen_sim: SimHandle, private_warehouse: str) -> None:
    """CAISO has no listing (pmp.triggers.PROBES), nor ERCOT without its Public API: the waiting
    form fires at once and the task runs as an unwatched one would; the watcher form still refuses."""
    out = _run(_one(_waiting("caiso", "lmp_rt5m")))
    assert out.payload["reason"] == "unwatched" and out.payload["state"] == {}
    with pytest.raises(ValueError, match="no listing to watch"):
        _run(triggers.NewDocumentTrigger("caiso", "lmp_rt5m").run().__anext__())


def test_waiting_clock_fires_for_a_due_instant_since_the_last_run(frozen_sim: SimHandle,
                                                                   private_warehouse: str) -> None:
    """ISO-NE's clock in its waiting form: no state -> at once, naming the latest due instant; that
    instant recorded -> it waits for the next one (here: the wait ends first, a timeout), sending no
    request to ISO-NE either way."""
    spec = registry.get("isone", "lmp_rt5m")
    now = datetime.now(UTC)
    last = triggers.isone_last_due(spec, now)
    assert last <= now < triggers.isone_wake(spec, now) <= last + timedelta(minutes=5, seconds=1)
    sent = len(frozen_sim.requests)
    first = _run(_one(_waiting("isone", "lmp_rt5m")))
    assert first.payload["reason"] == "first"
    assert first.payload["state"]["clock"] in (last.isoformat(), triggers.isone_last_due(spec, datetime.now(UTC))
                                               .isoformat())
    triggers.save_state("isone", "lmp_rt5m", first.payload["state"])
    wait = max(0.1, min(0.5, (triggers.isone_wake(spec, datetime.now(UTC)) - datetime.now(UTC)).total_seconds() - 0.5))
    out = _run(_one(_waiting("isone", "lmp_rt5m", wait=wait)))
    if triggers.isone_last_due(spec, datetime.now(UTC)).isoformat() == first.payload["state"]["clock"]:
        assert out.payload["reason"] == "timeout"
    else:  # a due instant fell between the two runs: then it must have fired for it
        assert out.payload["reason"] in ("since_last_run", "due")
    assert len(frozen_sim.requests) == sent


def test_ercot_counts_only_the_newest_posting_of_its_moving_window() -> None:
    """Each ERCOT trigger lists from its own "90 minutes ago": older documents dropping out of the
    window are no new document; a newer posting is."""
    def body(*docs: tuple[int, str]) -> bytes:
        return json.dumps({"archives": [{"docId": d, "postDatetime": p} for d, p in docs]}).encode()

    wide = body((1, "2026-12-07T10:00:05"), (2, "2026-12-07T10:05:05"), (3, "2026-12-07T10:10:05"))
    narrow = body((2, "2026-12-07T10:05:05"), (3, "2026-12-07T10:10:05"))
    newer = body((2, "2026-12-07T10:05:05"), (3, "2026-12-07T10:10:05"), (4, "2026-12-07T10:15:05"))
    assert triggers.ercot_newest_posting(wide) == triggers.ercot_newest_posting(narrow)
    assert triggers.ercot_newest_posting(newer) != triggers.ercot_newest_posting(narrow)
    assert triggers.ercot_newest_posting(body()) == "none"
    with pytest.raises(ValueError):
        triggers.ercot_newest_posting(b"<html>maintenance</html>")


def test_the_wait_must_end_before_the_deadline() -> None:
    from pmp import validate

    assert not validate.settings_problems({"PMP_REALTIME_WAIT_MINUTES": "10"}, names=False)
    problems = validate.settings_problems({"PMP_REALTIME_WAIT_MINUTES": "20", "PMP_REALTIME_DEADLINE_MINUTES": "15"},
                                          names=False)
    assert problems == ["PMP_REALTIME_WAIT_MINUTES=20 must be less than PMP_REALTIME_DEADLINE_MINUTES=15 "
                        "(a run that waits for a document must still finish before its deadline)"]
