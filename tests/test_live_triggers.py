"""Event-driven real time through the real scheduler and triggerer (issue 12 points 2 and 3).

A local Airflow (tests/live.py) runs ``nyiso_fuel_mix_realtime`` against a simulator whose clock is
frozen: nothing new is published until the test moves the clock on by five minutes, which is
NYISO posting the next 5-minute fuel mix. The run's one task, ``ingest``, starts *in the triggerer*
(``start_from_trigger``): its trigger (``pmp.triggers``) polls NYISO's listing while the task
instance is deferred, without a worker process; when the listing changes the task resumes on a
worker and loads the new interval in the same task instance (one try, one worker start).
The first run, with no listing state recorded yet, goes at once and records what it saw.
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


def _listing_state(dsn: str) -> tuple[Any, datetime] | None:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT state, recorded_at FROM listing_state WHERE iso = 'nyiso' AND dataset = 'fuel_mix'"
                            ).fetchone()


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


def _ingest_tis(af: LiveAirflow) -> list[dict[str, Any]]:
    rows = af.sql("SELECT run_id, state, try_number, next_method, trigger_id IS NOT NULL, start_date, end_date "
                  "FROM task_instance WHERE dag_id = %s AND task_id = 'ingest' ORDER BY start_date NULLS LAST",
                  (DAG_ID,))
    keys = ("run_id", "state", "try_number", "next_method", "has_trigger", "start_date", "end_date")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _trigger_log(af: LiveAirflow, run_id: str) -> str:
    """The log of a task instance's trigger (``attempt=N.log.trigger.<id>.log``: the UI shows it in the task's log)."""
    assert af.home is not None
    return "\n".join(p.read_text(errors="replace") for p in (af.home / "airflow" / "logs").rglob("*.trigger.*.log")
                     if f"run_id={run_id}" in str(p))


def _run_scenario() -> dict[str, Any]:
    # the simulator's clock stays behind the wall clock, as an ISO's does: a real-time run lists
    # what was published up to its own now, and NYISO never publishes ahead of it
    frozen = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    with scratch_warehouse() as (tsdb, dsn), start_simulator(now=frozen, speed=0) as sim, \
            LiveAirflow([DAG_ID], sim_url=sim.url, connections={"tsdb": tsdb},
                        env={"PMP_WATCH_POLL_SECONDS": "1"}) as af:
        af.wait_serialized([DAG_ID])
        af.unpause(DAG_ID)
        # the run unpausing creates (the latest */5 tick): no state recorded, so it goes at once
        _wait(lambda: any(r["state"] == "success" for r in af.runs(DAG_ID)), "a first successful run", af)
        first_state = _listing_state(dsn)
        newest_before = _newest(dsn)
        # the next run (a manual one now; a */5 tick may queue behind it): the listing is as the
        # first run recorded it, so its task waits, deferred, in the triggerer
        run_id = af.trigger(DAG_ID)
        _wait(lambda: any(t["run_id"] == run_id and t["state"] == "deferred" for t in _ingest_tis(af)),
              "the next run's task deferred", af)
        polls = _polls(sim)
        _wait(lambda: _polls(sim) >= polls + 3, "three polls of the unchanged listing", af)
        waiting = [t for t in _ingest_tis(af) if t["run_id"] == run_id][0]
        published = datetime.now(UTC)
        sim.set_now(frozen + timedelta(minutes=5))  # NYISO posts the next five minutes
        done = af.wait_run(DAG_ID, run_id, timeout=TIMEOUT)
        return {"first_state": first_state, "newest_before": newest_before, "waiting": waiting,
                "published": published, "run": done, "tis": _ingest_tis(af), "frozen": frozen,
                "newest_after": _newest(dsn), "state_after": _listing_state(dsn),
                "trigger_log": _trigger_log(af, run_id), "task_logs": af.task_logs(DAG_ID),
                "diagnose": af.diagnose()}


def test_the_task_waits_in_the_triggerer_and_runs_once_when_a_document_is_published(
        scenario: dict[str, Any]) -> None:
    waiting = scenario["waiting"]
    # while nothing new was listed, the task was deferred on its trigger: no worker had run it
    assert waiting["state"] == "deferred" and waiting["has_trigger"], scenario["diagnose"]
    assert waiting["next_method"] == "execute_complete"
    run = scenario["run"]
    assert run["state"] == "success", scenario["diagnose"]
    mine = [t for t in scenario["tis"] if t["run_id"] == run["dag_run_id"]]
    assert len(mine) == 1 and mine[0]["try_number"] == 1  # one task instance, one try
    ended = _when(run["end_date"])
    assert ended >= scenario["published"]
    print(f"run ended {(ended - scenario['published']).total_seconds():.1f}s after publication")
    # the trigger polled and fired in the triggerer (its log is the task's), then the worker loaded
    assert "nyiso.fuel_mix: watching" in scenario["trigger_log"], scenario["diagnose"]
    assert "nyiso.fuel_mix: new document listed" in scenario["trigger_log"]
    assert "Trigger fired event" in scenario["trigger_log"]
    assert "nyiso.fuel_mix: new document listed" in scenario["task_logs"]


def test_the_first_run_records_the_listing_and_the_next_the_new_one(scenario: dict[str, Any]) -> None:
    assert scenario["first_state"] is not None, scenario["diagnose"]
    assert list(scenario["first_state"][0]) == [LISTING]
    state, recorded = scenario["state_after"]
    assert state != scenario["first_state"][0] and recorded > scenario["published"]


def test_the_new_interval_is_loaded(scenario: dict[str, Any]) -> None:
    before, after = scenario["newest_before"], scenario["newest_after"]
    assert before is not None and after is not None, scenario["diagnose"]
    assert after - before == timedelta(minutes=5)
