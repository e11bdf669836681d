"""Event-driven real time through the real scheduler and triggerer (issue 12 point 2).

A local Airflow (tests/live.py) runs ``nyiso_fuel_mix_realtime`` against a simulator whose clock is
frozen: nothing new is published until the test moves the clock on by five minutes, which is
NYISO posting the next 5-minute fuel mix. The DAG's asset watcher (``pmp.triggers``, running in
the triggerer) sees the listing change and an ``asset_triggered`` run loads the new interval; no
such run exists before the publication (the ``*/5`` runs are ``scheduled`` ones).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from live import LiveAirflow, once_per_worker, scratch_warehouse

from pmp.simulator.server import start_simulator

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live-airflow")]

DAG_ID = "nyiso_fuel_mix_realtime"
LISTING = "/nyiso/mis/public/P-63list.htm"
TIMEOUT = 420


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _newest(dsn: str) -> datetime | None:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT max(interval_end) FROM fuel_mix WHERE iso = 'NYISO'").fetchone()[0]


def _polls(sim: Any) -> int:
    return sum(1 for _, path in sim.requests if path.startswith(LISTING))


def _wait(predicate: Any, what: str, af: LiveAirflow, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"not seen in {timeout:.0f}s: {what}\n" + af.diagnose()
        time.sleep(1)


@pytest.fixture(scope="module")
def scenario(services: dict, staging: str) -> dict[str, Any]:
    return once_per_worker("triggers", _run_scenario)  # one local Airflow, however often set up


def _run_scenario() -> dict[str, Any]:
    # the simulator's clock stays behind the wall clock, as an ISO's does: a real-time run lists
    # what was published up to its own now, and NYISO never publishes ahead of it
    frozen = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    with scratch_warehouse() as (tsdb, dsn), start_simulator(now=frozen, speed=0) as sim, \
            LiveAirflow([DAG_ID], sim_url=sim.url, connections={"tsdb": tsdb},
                        env={"PMP_WATCH_POLL_SECONDS": "1"}) as af:
        af.wait_serialized([DAG_ID])
        af.unpause(DAG_ID)
        # the run unpausing creates (the latest */5 tick) loads what is listed so far
        _wait(lambda: any(r["state"] == "success" for r in af.runs(DAG_ID)), "a first successful run", af)
        _wait(lambda: "watching" in af.component_log("triggerer") and _polls(sim) >= 3,
              "the watcher polling the listing", af)
        before = {r["dag_run_id"]: r for r in af.runs(DAG_ID)}
        newest_before = _newest(dsn)
        polls = _polls(sim)
        time.sleep(3)  # a few more polls of the unchanged listing
        unchanged_polls = _polls(sim) - polls
        quiet = [r for r in af.runs(DAG_ID) if r["run_type"] == "asset_triggered"]
        published = datetime.now(UTC)
        sim.set_now(frozen + timedelta(minutes=5))  # NYISO posts the next five minutes
        _wait(lambda: any(r["run_type"] == "asset_triggered" and r["state"] in ("success", "failed")
                          for r in af.runs(DAG_ID)), "an asset-triggered run that finished", af)
        runs = af.runs(DAG_ID)
        events = af.api("GET", "/api/v2/assets/events", params={"limit": 20})["asset_events"]
        return {"before": before, "quiet": quiet, "published": published, "runs": runs, "events": events,
               "newest_before": newest_before, "newest_after": _newest(dsn), "frozen": frozen,
               "unchanged_polls": unchanged_polls, "triggerer_log": af.component_log("triggerer"),
               "diagnose": af.diagnose()}


def test_a_publication_starts_a_run_through_the_triggerer(scenario: dict[str, Any]) -> None:
    assert scenario["unchanged_polls"] >= 1  # the watcher kept polling an unchanged listing...
    assert scenario["quiet"] == []  # ...and started nothing
    assert all(r["run_type"] != "asset_triggered" for r in scenario["before"].values())
    event_runs = [r for r in scenario["runs"] if r["run_type"] == "asset_triggered"]
    assert event_runs, scenario["diagnose"]
    run = event_runs[0]
    assert run["state"] == "success", scenario["diagnose"]
    queued = _when(run["queued_at"])
    assert queued >= scenario["published"]
    print(f"asset-triggered run queued {(queued - scenario['published']).total_seconds():.1f}s after publication")
    # the asset event came from the watcher's trigger, with the dataset it watches
    from_trigger = [e for e in scenario["events"] if (e.get("extra") or {}).get("from_trigger")]
    assert from_trigger and from_trigger[0]["extra"]["payload"]["dataset"] == "nyiso.fuel_mix"
    assert "nyiso.fuel_mix: new document listed" in scenario["triggerer_log"]


def test_the_new_interval_is_loaded(scenario: dict[str, Any]) -> None:
    before, after = scenario["newest_before"], scenario["newest_after"]
    assert before is not None and after is not None, scenario["diagnose"]
    assert after - before == timedelta(minutes=5)
