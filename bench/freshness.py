"""Freshness while history loads: publication-to-commit latency of every real-time document.

Starts the services (``scripts/services.sh start``, idempotent), the ISO simulator on the wall
clock, a scratch warehouse and a real local Airflow (``tests/live.py``: api-server, scheduler,
dag-processor and triggerer, LocalExecutor) with

* every real-time DAG of the chosen ISOs (default the four seed ISOs: CAISO, ERCOT, ISO-NE,
  NYISO), unpaused, with the connections' real client-side pacing (CAISO one OASIS request per
  5 s; the simulator enforces each ISO's limits as well);
* at the same time ``airflow backfill create`` (REST API) of history for every daily dataset of
  those ISOs, routed as a catch-up (``PMP_CATCHUP=true``) routes it: the last whole month before
  the recent window through the dataset's monthly history DAG where its ISO has one
  (:mod:`pmp.history`), ``--history-days`` market days through its daily DAG otherwise
  (``--history-route daily``: ``--history-days`` days through every daily DAG, as before).

For ``--minutes`` of wall time, from ``--warmup`` seconds after the real-time DAGs are unpaused (the
first runs, with no listing state recorded yet, catch up what came before: the window measures
the steady state, watched runs waiting in the triggerer for their next document), it records, for every
document the simulator published in that window, its publication time and the time its rows were
committed:

* publication time: the ``published_at`` the ISO's own listing gives (ERCOT ``postDatetime``,
  NYISO's and ISO-NE's file times), read through the adapters' real-time discovery at the end of the
  window; where a listing carries none (CAISO OASIS is a query API: a document is a time window,
  published when its last interval is), the moment the adapter's discovery first names the
  document, polled every ``--poll`` seconds by the benchmark (CAISO's discovery needs no request);
* commit time: ``ingest_log.loaded_at`` (the load transaction's time), polled every few seconds so
  that each version of a document that grows during the day (NYISO's daily real-time files, same
  name, new ``Last-Modified``) counts as one publication. A CAISO window ``[h, t)`` counts as
  committed when a window ``[h, t')`` with ``t' >= t`` of the same query was loaded.

Printed per ISO and in total; last line::

    freshness: p50=<s> p95=<s> max=<s> docs=<n> missed=<n> history_days=<n> tasks_per_doc=<x>

``missed``: documents published more than 120 s before the end and not committed by then;
documents published in the last 120 s and not yet committed are left out of ``docs``.
``history_days``: dataset-days of the history runs that finished successfully in the window (a
daily run one, a monthly run every market day of its month).
``tasks_per_doc``: task instances of the real-time DAGs started per document published, both
counted from the window's start to ``MISSED_AFTER`` before its end (a ``*/5`` tick in the last two
minutes starts a task of every real-time DAG, while its documents, not committed yet, are left out
of ``docs``); ``--tiny``: every task since the real-time DAGs were unpaused, per document. A
document counts once (the first time it was named), however many times it was loaded.

    .venv/bin/python bench/freshness.py                 # full: 4 ISOs, 7 history days, 10 minutes
    .venv/bin/python bench/freshness.py --tiny          # a few minutes, one dataset of each kind
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

from pmp import registry  # noqa: E402
from pmp.registry import DatasetSpec, DocumentRef  # noqa: E402

SEED_ISOS = ("caiso", "ercot", "isone", "nyiso")
MISSED_AFTER = timedelta(seconds=120)
STAMP = re.compile(r"\d{8}T\d{4}(\d\d)?Z")  # a UTC stamp inside a document id (CAISO's)
TINY_REALTIME = ("nyiso_fuel_mix_realtime",)
TINY_DAILY = ("nyiso_lmp_dam_daily",)


def log(msg: str) -> None:
    print(f"[freshness {datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def bench_conn(conn_id: str, sim_url: str) -> dict[str, Any]:
    """The declared ISO connection pointed at the simulator, keeping its real pacing (unlike
    tests/live.py's ``sim_conn``, which turns pacing down for quick tests)."""
    from live import CONNS, sim_conn

    keep = {k: v for k, v in (CONNS[conn_id].get("extra") or {}).items()
            if k.endswith(("_per_minute", "_interval_seconds", "backoff_seconds", "_reuse_seconds"))}
    return sim_conn(conn_id, sim_url, **keep)


@dataclass
class Publication:
    iso: str
    dataset: str
    doc_id: str
    published: datetime
    committed: datetime | None = None

    @property
    def latency(self) -> float | None:
        return (self.committed - self.published).total_seconds() if self.committed else None


@dataclass
class Ledger:
    """What the warehouse committed (ingest_log, each version) and what the listings named."""

    loaded: dict[tuple[str, str, str, datetime | None], datetime] = field(default_factory=dict)
    first_seen: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def poll_ingest_log(self, dsn: str, since: datetime) -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, connect_timeout=5) as conn:
            # the backfill's documents are history, not real-time publications (an ISO-NE load
            # forecast fetched by a history run carries the time it was fetched as published_at)
            rows = conn.execute("SELECT iso, dataset, source_id, published_at, loaded_at FROM ingest_log "
                                "WHERE loaded_at >= %s AND (market_day IS NULL OR market_day >= %s)",
                                (since, since.date() - timedelta(days=2))).fetchall()
            with self.lock:
                for iso, dataset, source_id, published, loaded in rows:
                    self.loaded.setdefault((iso.lower(), dataset, source_id, published), loaded)

    def seen(self, spec: DatasetSpec, refs: list[DocumentRef], at: datetime) -> None:
        with self.lock:
            for r in refs:
                self.first_seen.setdefault((spec.iso, spec.dataset, r.doc_id), at)


def _covers(loaded_id: str, listed_id: str) -> bool:
    """``loaded_id`` holds every interval of ``listed_id``: the same id, or the same id but for one
    later UTC stamp, i.e. a CAISO OASIS window of the same query and start that ends later
    (``<query>_<run>_<tag>_<start>_<end>_v<n>``) or a later snapshot of an Outlook ``current`` file
    (``outlook_<name>_current_<slot>``)."""
    if loaded_id == listed_id:
        return True
    a, b = loaded_id.split("_"), listed_id.split("_")
    if len(a) != len(b) or len(a) < 3:
        return False
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(differ) == 1 and all(STAMP.fullmatch(x[differ[0]]) for x in (a, b)) and a[differ[0]] > b[differ[0]]


def _discover(spec: DatasetSpec, start: datetime, end: datetime) -> list[DocumentRef]:
    adapter = registry.adapter(spec.iso)
    return list(adapter.discover(spec, start, end, hook=adapter.hook(), realtime=True))


def _poller(specs: list[DatasetSpec], ledger: Ledger, every: float, stop: threading.Event) -> None:
    """First sight of each document of listings that carry no publication time."""
    while not stop.wait(every):
        now = datetime.now(UTC)
        for spec in specs:
            try:
                ledger.seen(spec, _discover(spec, now - timedelta(hours=3), now), now)
            except Exception as exc:  # a busy simulator: next round
                log(f"poll {spec.key}: {exc}")


def publications(specs: list[DatasetSpec], ledger: Ledger, t0: datetime, t1: datetime) -> list[Publication]:
    out: dict[tuple[str, str, str, datetime], Publication] = {}
    with ledger.lock:
        loaded = dict(ledger.loaded)
        first_seen = dict(ledger.first_seen)
    by_dataset: dict[tuple[str, str], list[tuple[str, datetime | None, datetime]]] = {}
    for (iso, dataset, source_id, published), at in loaded.items():
        by_dataset.setdefault((iso, dataset), []).append((source_id, published, at))

    def committed(spec: DatasetSpec, doc_id: str, published: datetime | None) -> datetime | None:
        times = [at for sid, pub, at in by_dataset.get((spec.iso, spec.dataset), [])
                 if _covers(sid, doc_id) and (published is None or pub is None or pub >= published)]
        return min(times) if times else None

    for spec in specs:
        # what the listing names at the end (documents published in the window and not loaded, too)
        try:
            refs = _discover(spec, t0 - timedelta(hours=3), t1)
        except Exception as exc:
            log(f"final listing of {spec.key} failed: {exc}")
            refs = []
        for r in refs:
            pub = r.published or first_seen.get((spec.iso, spec.dataset, r.doc_id))
            if pub is None or not t0 <= pub <= t1:
                continue
            out[(spec.iso, spec.dataset, r.doc_id, pub)] = Publication(
                spec.iso, spec.dataset, r.doc_id, pub, committed(spec, r.doc_id, r.published))
        # every document the poller saw (a CAISO window superseded by a longer one before a run
        # came is not in the final listing any more)
        for (iso, dataset, doc_id), seen in first_seen.items():
            if (iso, dataset) == (spec.iso, spec.dataset) and t0 <= seen <= t1:
                out.setdefault((iso, dataset, doc_id, seen),
                               Publication(iso, dataset, doc_id, seen, committed(spec, doc_id, None)))
        # every version the warehouse committed (a growing file's earlier versions are not listed any more)
        for sid, pub, at in by_dataset.get((spec.iso, spec.dataset), []):
            pub = pub or first_seen.get((spec.iso, spec.dataset, sid))
            if pub is None or not t0 <= pub <= t1:
                continue
            key = (spec.iso, spec.dataset, sid, pub)
            if key not in out:
                out[key] = Publication(spec.iso, spec.dataset, sid, pub, at)
            elif out[key].committed is None or at < out[key].committed:
                out[key].committed = at
    # one publication per document: a document id names one version in every ISO here (NYISO's
    # growing files carry their version in the id), but a document the poller saw first can come
    # again from ingest_log with the ISO's own later stamp (ISO-NE's "report generated" time, set
    # when the report is asked for); it counts once, from the earlier time, committed when first loaded
    unique: dict[tuple[str, str, str], Publication] = {}
    for p in sorted(out.values(), key=lambda p: p.published):
        first = unique.setdefault((p.iso, p.dataset, p.doc_id), p)
        if first is not p and p.committed is not None and (first.committed is None or p.committed < first.committed):
            first.committed = p.committed
    # a document first seen by the poller after it was loaded (the pipeline was quicker): its
    # publication time is unknown to within the poll interval; it counts with latency 0 at worst
    for p in unique.values():
        if p.committed is not None and p.committed < p.published:
            p.committed = p.published
    return sorted(unique.values(), key=lambda p: p.published)


def history_jobs(specs: list[DatasetSpec], days: int, today: Any, *, monthly: bool) -> list[tuple[str, Any, Any]]:
    """(DAG id, first, last market day) of each backfill: days before the recent window (inside
    CAISO's SingleZip retention). ``monthly``: as a catch-up (``PMP_CATCHUP=true``) runs them, the
    last whole month before the recent window through the monthly history DAG of a dataset that has
    one (:mod:`pmp.history`), ``days`` days through the daily DAG of the others."""
    from pmp import history

    cutoff = min(history.cutoff(s, today) for s in specs)
    last = cutoff - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    month = (last.replace(day=1), last)
    out = []
    for spec in specs:
        if monthly and history.has_history_dag(spec) and spec.first_date <= month[0]:
            out.append((history.history_dag_id(spec), *month))
        else:
            out.append((spec.daily_dag_id, max(first, spec.first_date), last))
    return out


def _backfill(af: Any, dag_id: str, first: str, last: str) -> None:
    """``POST /api/v2/backfills``, tried again on a 5xx (the shared PostgreSQL under load: the
    api-server's small connection pool timed out once); a 409 means it exists already."""
    from live import AirflowError

    for attempt in range(5):
        try:
            af.backfill(dag_id, first, last, via="api")
            return
        except AirflowError as exc:
            if "HTTP 409" in str(exc):
                return
            if "HTTP 5" not in str(exc) or attempt == 4:
                raise
            log(f"backfill of {dag_id}: {str(exc).splitlines()[0][:120]}; trying again")
            time.sleep(5 * (attempt + 1))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summary(pubs: list[Publication], t1: datetime) -> tuple[dict[str, float], int, int]:
    due = [p for p in pubs if p.committed is not None or p.published <= t1 - MISSED_AFTER]
    missed = sum(1 for p in due if p.committed is None)
    lat = sorted(p.latency for p in due if p.latency is not None)
    stats = {"p50": _pct(lat, 50), "p95": _pct(lat, 95), "max": max(lat) if lat else 0.0}
    return stats, len(due), missed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="measured wall time (default 10)")
    ap.add_argument("--isos", default=",".join(SEED_ISOS))
    ap.add_argument("--history-days", type=int, default=7, help="market days backfilled per daily DAG")
    ap.add_argument("--parallelism", type=int, default=8, help="Airflow core.parallelism")
    ap.add_argument("--poll", type=float, default=5.0, help="seconds between listing polls")
    ap.add_argument("--json", type=Path, help="also write every publication (times, ids) to this file")
    ap.add_argument("--history-route", choices=("catchup", "daily"), default="catchup",
                    help="catchup (default): history as a catch-up runs it, the last whole month before the "
                         "recent window through the monthly history DAG of each ISO that has one and "
                         "--history-days days through the daily DAG of the others; daily: --history-days "
                         "days through every daily DAG")
    ap.add_argument("--warmup", type=float, default=60.0,
                    help="seconds between unpausing and opening the window (the first runs' catch-up)")
    ap.add_argument("--tiny", action="store_true",
                    help="a few minutes, one real-time and one daily dataset, one history day")
    args = ap.parse_args(argv)
    if args.tiny:
        args.minutes = min(args.minutes, 3.0)
        args.history_days = min(args.history_days, 1)
        realtime_ids, daily_ids = list(TINY_REALTIME), list(TINY_DAILY)
    else:
        isos = [registry.known_iso(i.strip()) for i in args.isos.split(",") if i.strip()]
        realtime_ids = [s.realtime_dag_id for s in registry.datasets() if s.iso in isos and s.realtime]
        daily_ids = [s.daily_dag_id for s in registry.datasets() if s.iso in isos]
    specs = [s for s in registry.datasets() if s.realtime_dag_id in realtime_ids]
    jobs = history_jobs([s for s in registry.datasets() if s.daily_dag_id in daily_ids], args.history_days,
                        datetime.now(UTC).date(), monthly=args.history_route == "catchup" and not args.tiny)
    history_ids = sorted({j[0] for j in jobs})

    subprocess.run([str(ROOT / "scripts" / "services.sh"), "start"], check=True, stdout=sys.stderr)
    from live import CONNS, SIM_CONNECTIONS, LiveAirflow, scratch_warehouse

    from pmp.simulator.server import start_simulator

    staging = f"s3://{os.environ.get('PMP_S3_BUCKET', 'pmp-staging')}/bench-freshness-{uuid.uuid4().hex[:8]}/"
    port = int(os.environ.get("PMP_SIM_PORT") or 0)
    with start_simulator(port=port) as sim, scratch_warehouse("pmp_bench_fresh") as (tsdb, dsn):
        conns = {cid: bench_conn(cid, sim.url) for cid in SIM_CONNECTIONS}
        for cid, conn in {**conns, "tsdb": tsdb, "pmp_s3": CONNS["pmp_s3"]}.items():
            os.environ[f"AIRFLOW_CONN_{cid.upper()}"] = json.dumps(conn)  # this process's discovery
        env = {"PMP_STAGING_URL": staging, "PMP_TASK_RETRIES": "1", "PMP_CATCHUP": "false"}
        log(f"simulator {sim.url}; Airflow with {len(realtime_ids)} real-time and {len(history_ids)} history DAGs")
        with LiveAirflow([*realtime_ids, *history_ids], connections={**conns, "tsdb": tsdb}, env=env,
                         parallelism=args.parallelism, start_timeout=300) as af:
            af.wait_serialized([*realtime_ids, *history_ids], timeout=600)
            ledger = Ledger()
            unpaused = datetime.now(UTC)
            af.unpause(*realtime_ids)
            # history at the same time: backfills of past days (inside CAISO's SingleZip retention)
            # each backfill before its DAG is unpaused: unpausing makes the scheduler create the run
            # of the DAG's latest interval (the month backfilled here), and a backfill created at
            # that moment inserts the same (dag_id, logical_date) - the scheduler loop then dies of the
            # UniqueViolation (seen: "Exception when executing SchedulerJob._run_scheduler_loop").
            # Created first, the backfill's run is the one the scheduler finds and skips.
            for dag_id, first, last in jobs:
                _backfill(af, dag_id, f"{first}T00:00:00", f"{last}T12:00:00")
                af.unpause(dag_id)
            for dag_id, first, last in jobs:
                log(f"backfill {dag_id} {first}..{last}")
            # steady state, not start-up: the first runs (no listing state recorded yet) catch up
            # what came before and record the listings their successors wait on
            time.sleep(min(args.warmup, 10.0) if args.tiny else args.warmup)
            t0 = datetime.now(UTC)
            log(f"window opened {t0:%H:%M:%S} ({args.warmup:.0f} s after unpausing)")
            # listings without publication times: the poller's first sight stands in for it
            unstamped = []
            for spec in specs:
                now = datetime.now(UTC)
                refs = _discover(spec, now - timedelta(hours=3), now)
                if refs and all(r.published is None for r in refs):
                    unstamped.append(spec)
                    ledger.seen(spec, refs, datetime.min.replace(tzinfo=UTC))  # published before the window
            stop = threading.Event()
            poller = threading.Thread(target=_poller, args=(unstamped, ledger, args.poll, stop), daemon=True)
            poller.start()
            t1 = t0 + timedelta(minutes=args.minutes)
            while datetime.now(UTC) < t1:
                ledger.poll_ingest_log(dsn, t0)
                af._check_alive()
                time.sleep(3)
            ledger.poll_ingest_log(dsn, t0)
            stop.set()
            poller.join(timeout=60)
            pubs = publications(specs, ledger, t0, t1)
            # dataset-days: a daily run is one, a monthly run the market days of its month
            history_by_dag = dict(af.sql(
                "SELECT dag_id, sum(round(extract(epoch FROM data_interval_end - data_interval_start) / 86400)) "
                "FROM dag_run WHERE dag_id = ANY(%s) AND state = 'success' "
                "AND end_date BETWEEN %s AND %s GROUP BY dag_id", (history_ids, t0, t1)))
            history_by_dag = {k: int(v) for k, v in history_by_dag.items()}
            history_days = sum(history_by_dag.values())
            # --tiny: three minutes may hold no publication and no */5 tick, and a run that started
            # before the window (unpausing starts the latest interval's) may be what loads its one
            # document: count from the unpause there, so the smoke test sees the real-time DAG ran
            tasks = af.sql(
                "SELECT count(*) FROM task_instance WHERE dag_id = ANY(%s) AND start_date BETWEEN %s AND %s",
                (realtime_ids, unpaused if args.tiny else t0, t1))[0][0]
            # tasks_per_doc over one span for both: tasks started, and documents published, before
            # the last MISSED_AFTER (a tick in the last two minutes starts every DAG's task, while
            # its documents, not committed yet, are left out of docs)
            settled = t1 - MISSED_AFTER
            tasks_settled = af.sql(
                "SELECT count(*) FROM task_instance WHERE dag_id = ANY(%s) AND start_date BETWEEN %s AND %s",
                (realtime_ids, t0, settled))[0][0]
            load1 = os.getloadavg()

    if args.json:
        args.json.write_text(json.dumps([{"iso": p.iso, "dataset": p.dataset, "doc_id": p.doc_id,
                                          "published": p.published.isoformat(),
                                          "committed": p.committed.isoformat() if p.committed else None}
                                         for p in pubs], indent=1))
    for iso in sorted({s.iso for s in specs}):
        stats, docs, missed = summary([p for p in pubs if p.iso == iso], t1)
        days = sum(n for dag_id, n in history_by_dag.items() if dag_id.startswith(f"{iso}_"))
        print(f"{iso}: p50={stats['p50']:.0f} p95={stats['p95']:.0f} max={stats['max']:.0f} docs={docs} "
              f"missed={missed} history_days={days}")
        slowest = sorted((p for p in pubs if p.iso == iso and p.latency is not None), key=lambda p: -(p.latency or 0))
        for p in slowest[:3]:  # where the tail comes from
            print(f"  slowest {p.dataset} {p.doc_id} published {p.published.astimezone(UTC):%H:%M:%S} UTC "
                  f"latency {p.latency:.0f} s")
        for p in pubs:
            if p.iso == iso and p.committed is None and p.published <= t1 - MISSED_AFTER:
                print(f"  missed {p.dataset} {p.doc_id} published {p.published.astimezone(UTC):%H:%M:%S} UTC")
    stats, docs, missed = summary(pubs, t1)
    if args.tiny:  # three minutes: every task since the unpause per document
        per_doc = tasks / docs if docs else float(tasks or 0)
    else:
        docs_settled = sum(1 for p in pubs if p.published <= settled)
        per_doc = tasks_settled / docs_settled if docs_settled else float(tasks_settled or 0)
        print(f"tasks per document: {tasks_settled} task instances started and {docs_settled} documents "
              f"published {t0:%H:%M:%S}..{settled:%H:%M:%S} UTC (the whole window: {tasks} and {docs})")
    print(f"window {t0:%H:%M:%S}..{t1:%H:%M:%S} UTC, real-time task instances {tasks}, "
          f"load average {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    print(f"freshness: p50={stats['p50']:.0f} p95={stats['p95']:.0f} max={stats['max']:.0f} docs={docs} "
          f"missed={missed} history_days={history_days} tasks_per_doc={per_doc:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
