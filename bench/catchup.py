"""History catch-up through a real Airflow: how many dataset-days an hour this machine loads, and
how long 2019-01-01 to today would take for every dataset.

A local Airflow (``tests/live.py``: api-server, scheduler, dag-processor, triggerer, LocalExecutor,
metadata DB in the local PostgreSQL) runs the bundle's history DAGs against the ISO simulator
(``pmp simulate``'s server, in this process, on loopback), staging in SeaweedFS, loading a scratch
TimescaleDB warehouse. Every daily dataset of every ISO (or ``--datasets``) catches up the same
window of ``--days`` market days with ``airflow backfill create`` (the REST API's backfills), the
way a user loads history:

* the window is old history, the days just before the recent window (:func:`pmp.history.cutoff`):
  what a full catch-up consists of, so the ISOs' history routes are what is measured (archives,
  monthly zips), not their recent-day routes;
* an ISO with a monthly history DAG (:mod:`pmp.history`) takes the window's whole months through
  it, the rest of the window through its daily DAG, as a real catch-up would;
* a dataset whose first day is after the window's start catches up only the days it has.

``wall_s`` is from the first backfill to the last run finished; ``dataset_days_per_hour`` is the
dataset-days loaded (days × datasets) over it; ``full_history_hours`` projects that rate onto every
dataset of the registry from 2019-01-01 (or its first day) to yesterday. The simulator does not
pace like the ISOs: the ISO-pacing floor of the same catch-up (``pmp plan-history``, from the
documents and rows per day this run loaded) is printed on the line before. The measured figures are
written to ``--out`` (default ``bench/results/catchup.json``), where ``pmp plan-history`` reads them.

    .venv/bin/python bench/catchup.py [--days 31] [--datasets 'ercot.*,nyiso.lmp_dam'] [--parallelism 6]

Last line: ``catchup: days=<n> datasets=<n> wall_s=<s> dataset_days_per_hour=<x> full_history_hours=<projected>``
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "tests"))


@dataclass(frozen=True)
class Backfill:
    dag_id: str
    first: date  # first market day
    last: date  # last market day (inclusive)
    runs: int  # runs it makes: one per day, or one per month (history DAG)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def window(days: int, today: date) -> tuple[date, date]:
    """``days`` (or a few more) market days of old history: whole months ending the day before the
    recent window when ``days`` >= 28, else the last ``days`` days before it."""
    from pmp import history, registry

    cutoff = min(history.cutoff(s, today) for s in registry.datasets())
    last = cutoff - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    if days >= 28:
        first = first.replace(day=1)  # whole months: the monthly history DAGs take them in bulk
    return first, last


def backfills(spec: Any, first: date, last: date) -> list[Backfill]:
    """The backfills that catch ``spec`` up over [first, last]: whole months through its monthly
    history DAG where it has one, every other day through its daily DAG."""
    from pmp import history

    first = max(first, spec.first_date)
    out: list[Backfill] = []
    if first <= last and history.has_history_dag(spec):
        m0 = first if first.day == 1 else _next_month(first)
        m1, months = m0, 0
        while _next_month(m1) - timedelta(days=1) <= last:
            m1, months = _next_month(m1), months + 1
        if months:
            if first < m0:
                out.append(Backfill(spec.daily_dag_id, first, m0 - timedelta(days=1), (m0 - first).days))
            out.append(Backfill(history.history_dag_id(spec), m0, m1 - timedelta(days=1), months))
            first = m1
    if first <= last:
        out.append(Backfill(spec.daily_dag_id, first, last, (last - first).days + 1))
    return out


# The simulator without ISO pacing (the issue's condition for this benchmark): the clients' pacing is
# off already (tests/live.py sim_conn); these turn off the simulator's enforcement of each ISO's
# limits (429s, ISO-NE's 403 wall) so no request waits. The ISO-pacing floor is printed beside the
# result instead (``pmp plan-history``). Set one yourself to measure with that limit on.
UNPACED = {"PMP_SIM_CAISO_MIN_INTERVAL": "0", "PMP_SIM_ERCOT_RPM": "1000000", "PMP_SIM_MISO_API_PER_MINUTE": "1000000",
           "PMP_SIM_PJM_REQUESTS": "1000000000", "PMP_SIM_ISONE_BURST": "1000000000",
           "PMP_SIM_ISONE_WS_RPS": "1000000"}


def selected(patterns: str | None) -> list:
    from pmp import registry

    specs = registry.datasets()
    if not patterns:
        return specs
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    out = [s for s in specs if any(fnmatch.fnmatchcase(s.key, p) for p in wanted)]
    if not out:
        raise SystemExit(f"--datasets {patterns!r}: no dataset matches (keys look like ercot.lmp_dam)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=31, help="market days each dataset catches up (default 31)")
    ap.add_argument("--datasets", help="comma-separated globs of dataset keys (default: every dataset)")
    ap.add_argument("--parallelism", type=int, default=6, help="LocalExecutor task slots (default 6)")
    ap.add_argument("--max-active-runs", type=int, default=2, help="runs of one backfill at a time (default 2)")
    ap.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for the runs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "catchup.json")
    args = ap.parse_args()
    if args.days < 1:
        raise SystemExit("--days must be at least 1")

    import psycopg
    from live import LiveAirflow, scratch_warehouse

    from pmp import plan, registry
    from pmp.simulator.server import start_simulator

    for name, value in UNPACED.items():
        os.environ.setdefault(name, value)
    today = datetime.now(UTC).date()
    first, last = window(args.days, today)
    specs = selected(args.datasets)
    jobs = {s.key: backfills(s, first, last) for s in specs}
    jobs = {k: v for k, v in jobs.items() if v}
    if not jobs:
        raise SystemExit(f"no dataset has market days in {first}..{last}")
    dag_ids = sorted({b.dag_id for bs in jobs.values() for b in bs})
    dataset_days = sum(b.days for bs in jobs.values() for b in bs)
    print(f"window {first}..{last}: {len(jobs)} datasets, {dataset_days} dataset-days, "
          f"{len(dag_ids)} DAGs", flush=True)
    staging = f"s3://pmp-staging/bench-catchup-{uuid.uuid4().hex[:8]}/"
    with scratch_warehouse("pmp_bench_catchup") as (tsdb, dsn), start_simulator() as sim, \
            LiveAirflow(dag_ids, sim_url=sim.url, connections={"tsdb": tsdb}, parallelism=args.parallelism,
                        env={"PMP_STAGING_URL": staging, "PMP_DEADLINES": "false"},
                        # history alone on this worker (no real-time DAG): every slot may take
                        # history's CPU-heavy tasks (pmp.registry.HISTORY_POOL)
                        pool_slots={registry.HISTORY_POOL: args.parallelism},
                        start_timeout=600) as af:
        af.wait_serialized(dag_ids, timeout=900)
        started = time.monotonic()
        for bs in jobs.values():
            for b in bs:
                af.backfill(b.dag_id, f"{b.first}T00:00:00", f"{b.last}T12:00:00", via="api",
                            max_active_runs=args.max_active_runs)
        # unpaused after the backfills exist: the scheduler then finds the run of each DAG's latest
        # interval among them instead of inserting it while a backfill does (a UniqueViolation that
        # ends the scheduler's loop; see bench/freshness.py)
        af.unpause(*dag_ids)
        failed: list[str] = []
        runs = 0
        deadline = started + args.timeout
        for dag_id in dag_ids:
            done = af.wait_runs(dag_id, timeout=max(1.0, deadline - time.monotonic()),
                                until=lambda r: r["run_type"] != "backfill" or r["state"] in ("success", "failed"))
            backfilled = [r for r in done if r["run_type"] == "backfill"]
            runs += len(backfilled)
            failed += [f"{dag_id} {r['dag_run_id']}" for r in backfilled if r["state"] == "failed"]
        wall = time.monotonic() - started
        expected = sum(b.runs for bs in jobs.values() for b in bs)
        if runs != expected:
            failed.append(f"{expected - runs} backfill run(s) never created ({runs} of {expected})")
        with psycopg.connect(dsn) as conn:
            per_day = plan.measured_from_warehouse(conn)
        if failed:
            print(f"FAILED runs ({len(failed)}): " + "; ".join(failed[:20]), file=sys.stderr)
            print(af.diagnose(), file=sys.stderr)
    rate = dataset_days / wall * 3600
    result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "window": [str(first), str(last)],
              "days": (last - first).days + 1, "datasets": len(jobs), "runs": runs, "failed_runs": len(failed),
              "dataset_days": dataset_days, "wall_s": round(wall, 1), "dataset_days_per_hour": round(rate, 1),
              "parallelism": args.parallelism,
              "per_day": {k: {"documents": d, "rows": r} for k, (d, r) in sorted(per_day.items())}}
    figures = plan.measured({}, result, result_name=args.out.name)
    full = plan.plan(plan.daily_specs(), date(2019, 1, 1), today, figures)
    full_days = sum(p.days for p in full)
    floor = plan.floor_by_iso(full)
    result["full_history_dataset_days"] = full_days
    result["full_history_hours"] = round(full_days / rate, 1)
    result["iso_pacing_floor_hours"] = round(floor[1], 1) if floor else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{runs} runs ({len(failed)} failed) in {wall:.0f} s; results in {args.out}")
    print(f"iso_pacing_floor_hours={floor[1]:.1f} (pmp plan-history: the slowest ISO, {floor[0]}, of the "
          f"datasets measured here; a real ISO cannot be caught up faster)" if floor else
          "iso_pacing_floor_hours=? (nothing loaded)")
    print(f"catchup: days={(last - first).days + 1} datasets={len(jobs)} wall_s={wall:.0f} dataset_days_per_hour={rate:.0f} "
          f"full_history_hours={full_days / rate:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
