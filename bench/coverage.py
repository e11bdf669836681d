"""Coverage-view benchmark: how long the UI's coverage page (pmp.coverage_view) takes for six years
of days of every dataset, over HTTP on loopback, against the same page for one month side by side.

Starts PostgreSQL (scripts/services.sh start postgres), uses its own database, records a check for
every market day of every dataset of every ISO over ``--years`` (mostly complete, about 3 % partial
with missing intervals, 1 % missing, as ``pmp catalog --record`` and the daily checks write them)
and a freshness row for every real-time dataset, then serves the view's FastAPI app with uvicorn on
127.0.0.1 and GETs ``/coverage?iso=<iso>&start=<years ago>`` for each ISO, alternating with the
one-month page, ``--repeat`` times. The sign-in (the api-server's JWT check, a few milliseconds) is
left out: this measures the view's queries and rendering.

    .venv/bin/python bench/coverage.py [--years 6] [--repeat 5]

Last line: ``coverage: isos=<n> datasets=<n> days=<n> p50_s=<s> max_s=<s> span_vs_month=<ratio>``
where ``p50_s``/``max_s`` are over every page of the full span and ``span_vs_month`` is the median
full-span page time over the median one-month page time. Target: ``max_s`` < 1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from pmp import airflow_settings, db, registry  # noqa: E402

BENCH_DB = "pmp_bench_coverage"


def fill(conn: psycopg.Connection, start: date, end: date) -> int:
    """One check per day per dataset in ``[start, end)``; the number of rows written."""
    total = 0
    for spec in registry.datasets():
        cur = conn.execute(
            "INSERT INTO coverage_days (iso, dataset, market_day, status, rows, detail, missing)"
            " SELECT %s, %s, d::date,"
            "   CASE WHEN h < 0.01 THEN 'missing' WHEN h < 0.04 THEN 'partial' ELSE 'complete' END,"
            "   CASE WHEN h < 0.01 THEN 0 ELSE 24 * 900 END,"
            "   CASE WHEN h < 0.01 THEN 'no rows' WHEN h < 0.04 THEN '3 of 24 intervals missing' ELSE '' END,"
            "   CASE WHEN h >= 0.01 AND h < 0.04 THEN ARRAY[to_char(d + interval '5 hours', 'YYYY-MM-DD\"T\"HH24:MI:SSZ'),"
            "     to_char(d + interval '6 hours', 'YYYY-MM-DD\"T\"HH24:MI:SSZ'),"
            "     to_char(d + interval '7 hours', 'YYYY-MM-DD\"T\"HH24:MI:SSZ')] ELSE '{}' END"
            " FROM (SELECT d, abs(hashtext(%s || d::text)) / 2147483647.0 AS h"
            "       FROM generate_series(%s::date, %s::date - 1, interval '1 day') AS d) AS days",
            (spec.iso, spec.dataset, spec.key, start, end))
        total += cur.rowcount
        if spec.realtime:
            conn.execute("INSERT INTO freshness (iso, dataset, newest, lag_minutes, max_lag_minutes)"
                         " VALUES (%s, %s, now() - interval '7 minutes', 7, 30)", (spec.iso, spec.dataset))
    return total


def bench_database() -> dict:
    """PostgreSQL started, ``BENCH_DB`` created empty and made the ``tsdb`` connection of this
    process; the admin connection parameters."""
    subprocess.run([str(ROOT / "scripts" / "services.sh"), "start", "postgres"], check=True,
                   stdout=subprocess.DEVNULL)
    tsdb = airflow_settings.connections()["tsdb"]
    admin = {"host": tsdb["host"], "port": tsdb["port"], "user": tsdb["login"], "password": tsdb["password"],
             "dbname": tsdb["schema"]}
    with psycopg.connect(**admin, autocommit=True) as conn:
        for statement in (f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)", f"CREATE DATABASE {BENCH_DB}"):
            conn.execute(statement)
    os.environ["AIRFLOW_CONN_TSDB"] = json.dumps(dict(tsdb, schema=BENCH_DB))
    return admin


def serve() -> tuple[str, threading.Thread, object]:
    import uvicorn

    from pmp.coverage_view import app, authorized

    app.dependency_overrides[authorized] = lambda: None  # see the module docstring
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            return url, thread, server
        time.sleep(0.05)
    raise RuntimeError(f"the coverage app did not start on {url}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    admin = bench_database()
    try:
        today = datetime.now(UTC).date()
        start, month = today - timedelta(days=365 * args.years), today - timedelta(days=30)
        with psycopg.connect(make_conninfo(**dict(admin, dbname=BENCH_DB))) as conn:
            db.migrate(conn)
            cells = fill(conn, start, today + timedelta(days=1))
            conn.execute("ANALYZE coverage_days")
        print(f"recorded {cells} day checks of {len(registry.datasets())} datasets, {start} to {today}", flush=True)

        url, _, server = serve()
        span_times: list[float] = []
        month_times: list[float] = []
        with httpx.Client(base_url=url, timeout=60) as http:
            http.get("/coverage", params={"iso": registry.isos()[0], "start": month.isoformat()}).raise_for_status()
            for _ in range(args.repeat):
                for iso in registry.isos():
                    for since, times in ((start, span_times), (month, month_times)):
                        t0 = time.perf_counter()
                        resp = http.get("/coverage", params={"iso": iso, "start": since.isoformat()})
                        elapsed = time.perf_counter() - t0
                        resp.raise_for_status()
                        if since == start and f'data-day="{start.isoformat()}"' not in resp.text:
                            raise SystemExit(f"{iso}: the page does not show {start}")
                        times.append(elapsed)
        server.should_exit = True  # type: ignore[attr-defined]
        days = (today - start).days + 1
        for label, times in (("full span", span_times), ("one month", month_times)):
            print(f"{label}: pages={len(times)} p50={statistics.median(times):.3f}s max={max(times):.3f}s")
        ratio = statistics.median(span_times) / statistics.median(month_times)
        print(f"coverage: isos={len(registry.isos())} datasets={len(registry.datasets())} days={days} "
              f"p50_s={statistics.median(span_times):.3f} max_s={max(span_times):.3f} span_vs_month={ratio:.2f}")
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
