"""History-at-scale benchmark (issue 15): ERCOT 15-minute settlement point prices, a year at a time,
raw archive -> Rust (pmp_bulk) -> Parquet -> TimescaleDB through the code the DAGs run.

Archives are built with the simulator's own ERCOT documents (pmp.simulator.ercot: NP6-905-CD,
one zipped CSV per 15 minutes, bundled as a zip of zips like the API's monthly bundles), one per
month, before any timing, ``--jobs`` processes at a time (the bytes are those of a serial build:
every zip member carries its document's posting time). Each archive is then staged (raw store),
normalized by ``pmp.bulk.normalize_manifest`` (the Rust operator's body) and loaded by
``pmp.pipeline.load`` (the load task's body) into a database of the benchmark's own.

End to end, ``--workers`` (2) archives go through at a time, each on its own thread with its own
connection and transaction, like the load tasks of two history runs at once (the history DAGs'
backfill runs with max_active_runs=2). The months are split into ``--workers`` contiguous ranges,
one per worker, like one backfill per range: two *consecutive* months at once wait on each other,
because a local month's archive reaches 5-6 hours into the next UTC month and the loader locks
every (table, ISO, UTC month) a batch touches (pmp.loader._lock). In one run:

1. baseline: ``psql \\copy`` of the first year's rows (CSV written beforehand) into the empty
   hypertable, one psql (PostgreSQL's own tool; the last line's ``pg_copy_ratio``); then, printed
   for comparison only, ``--copy-streams`` (2) psql ``\\copy`` at once of the same rows; emptied after each;
2. the first year end to end into the empty hypertable (``rows``, ``seconds``, ``rows_per_s``);
3. fill until the table holds ``--full-rows`` (50 M at full size; twice the first year with
   ``--full-rows 0``): ``--fill shift`` (default) copies the first year's rows inside the database,
   ``INSERT .. SELECT`` a UTC month at a time, shifted back by whole years (interval and
   publication times, ``source`` prefixed ``shift-<k>y:``; no ingest_log rows), ``--workers`` at a
   time; ``--fill load`` generates earlier years and loads them end to end (about 18 minutes a year
   at full size on 2 cores);
4. a different year (generated archives, end to end) into that table (``empty_vs_full`` = its
   rate / the first year's);
5. the first month of the first year again under new document ids: every key exists, so the
   loader takes its upsert path (``upsert_rows_per_s``).

    .venv/bin/python bench/history.py                    # 900+ points, 365 days (~32.6 M rows a year)
    .venv/bin/python bench/history.py --nodes 200 --days 181 --full-rows 0 --workers 1
    .venv/bin/python bench/history.py --tiny             # 10 nodes, 3 days (tests/test_bench.py)

Last line: ``history: rows=<n> seconds=<s> rows_per_s=<x> empty_vs_full=<ratio> upsert_rows_per_s=<x>
pg_copy_ratio=<ratio>`` (pg_copy_ratio: end-to-end rows/s over the single psql \\copy rows/s).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

import psycopg  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402

from pmp import airflow_settings  # noqa: E402

RUN = uuid.uuid4().hex[:8]
BENCH_DB = f"pmp_bench_history_{RUN}"
REPORT = 12301  # NP6-905-CD, settlement point prices every 15 minutes

Archive = tuple[date, date, bytes]


def months(year: int, days: int) -> list[tuple[date, date]]:
    """[first, last) market days of each month of the first ``days`` days of ``year``."""
    start, end = date(year, 1, 1), date(year, 1, 1) + timedelta(days=days)
    out, first = [], start
    while first < end:
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        out.append((first, min(nxt, end)))
        first = nxt
    return out


def archive(first: date, last: date) -> bytes:
    """A zip of zips of the simulator's NP6-905-CD documents for market days [first, last).
    Deterministic: each member is dated with its document's posting time (UTC)."""
    from pmp.simulator import ercot

    report = ercot.REPORTS[REPORT]
    lo, hi = ercot.day_bounds(first)[0], ercot.day_bounds(last)[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in report.keys(lo, hi):
            d = ercot.Doc(report, key)
            p = d.posted.astimezone(UTC)
            zf.writestr(zipfile.ZipInfo(d.constructed + ".zip", (p.year, p.month, p.day, p.hour, p.minute, p.second)),
                        d.zip_bytes())
    return buf.getvalue()


def archives(spans: list[tuple[date, date]], jobs: int) -> list[Archive]:
    """The archives of ``spans``, built by ``jobs`` processes (spawned: they inherit the
    environment, e.g. ``PMP_SIM_ERCOT_NODES``); the same bytes as ``jobs=1``."""
    if jobs <= 1 or len(spans) <= 1:
        data = [archive(a, b) for a, b in spans]
    else:
        with multiprocessing.get_context("spawn").Pool(min(jobs, len(spans))) as pool:
            data = pool.starmap(archive, spans, chunksize=1)
    return [(a, b, d) for (a, b), d in zip(spans, data, strict=True)]


def stage(store, data: bytes, first: date, last: date, tag: str) -> dict:
    """Put the archive in the raw stage; the stage manifest the DAG's normalize task receives."""
    from pmp.registry import DocumentRef
    from pmp.staging import raw_key, sha256

    name = f"NP6-905-CD_{first:%Y%m%d}_{last:%Y%m%d}_{tag}.zip"
    ref = DocumentRef(doc_id=f"bench-{tag}-{first}", name=name,
                      published_at=datetime.combine(last, datetime.min.time(), UTC).isoformat(),
                      market_day=first.isoformat(), route="bundle")
    key = raw_key("ercot", "lmp_rt15m", first, name)
    store.put(key, data, immutable=False)
    return {"ref": ref.to_dict(), "raw_key": key, "raw_uri": store.uri(key), "name": name,
            "checksum": sha256(data), "size": len(data)}


def lanes(items: list, n: int) -> list[list]:
    """``items`` split into at most ``n`` contiguous ranges of (nearly) equal length, in order."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, at = [], 0
    for i in range(n):
        take = size + (i < extra)
        out.append(items[at : at + take])
        at += take
    return out


def end_to_end(store, months_: list[Archive], tag: str, workers: int = 1) -> tuple[int, float]:
    """Stage -> Rust normalize -> load, archive by archive as the DAG's tasks do, ``workers``
    archives at a time (one thread, connection and transaction each); (rows, seconds)."""
    from pmp import bulk, pipeline

    def one_lane(lane: list[Archive]) -> int:
        rows = 0
        for first, last, data in lane:
            manifest = {"key": "ercot.lmp_rt15m", "docs": [stage(store, data, first, last, tag)], "revised": []}
            rows += pipeline.load(bulk.normalize_manifest(manifest))["rows"]
        return rows

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        rows = sum(pool.map(one_lane, lanes(months_, workers)))
    return rows, time.perf_counter() - t


def utc_months(year: int) -> list[tuple[datetime, datetime]]:
    return [(datetime(year, m, 1, tzinfo=UTC), datetime(year + (m == 12), m % 12 + 1, 1, tzinfo=UTC))
            for m in range(1, 13)]


def fill_shift(dsn: str, year: int, held: int, target: int, workers: int) -> int:
    """Copy ``year``'s rows inside the database, a UTC month at a time, shifted back by 1, 2, ..
    whole years (new ``source`` names), ``workers`` statements at a time, until the table holds
    ``target`` rows; returns the rows the table holds (counted)."""
    from pmp.schema import LMP

    cols = [c for c in LMP.columns if c not in ("interval_start", "interval_end", "published_at", "source")]
    shifted = ("interval_start - make_interval(years => %(k)s), interval_end - make_interval(years => %(k)s), "
               "published_at - make_interval(years => %(k)s), 'shift-' || %(k)s || 'y:' || source")
    stmt = (f"INSERT INTO lmp (interval_start, interval_end, published_at, source, {', '.join(cols)}) "
            f"SELECT {shifted}, {', '.join(cols)} FROM lmp "
            "WHERE interval_start >= %(lo)s AND interval_start < %(hi)s AND source NOT LIKE 'shift-%%'")
    with psycopg.connect(dsn) as conn:  # rows per UTC month of the year: plan just enough months
        conn.execute("SET TIME ZONE 'UTC'")
        per_month = dict(conn.execute(
            "SELECT date_trunc('month', interval_start), count(*) FROM lmp WHERE interval_start >= %s"
            " AND interval_start < %s GROUP BY 1", (datetime(year, 1, 1, tzinfo=UTC),
                                                     datetime(year + 1, 1, 1, tzinfo=UTC))).fetchall())
    if not per_month:
        raise RuntimeError(f"fill: the table holds no rows of {year} to shift")
    work, planned = [], held
    for k in range(1, 100):
        for lo, hi in utc_months(year):
            if planned >= target:
                break
            if per_month.get(lo):
                work.append((k, lo, hi))
                planned += per_month[lo]
    queue = iter(work)
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET TIME ZONE 'UTC'")  # whole years in the UTC calendar
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                k, lo, hi = item
                conn.execute(stmt, {"k": k, "lo": lo, "hi": hi})

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for f in [pool.submit(worker) for _ in range(max(1, workers))]:
            f.result()
    return count(dsn)


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT count(*) FROM lmp").fetchone()[0]  # type: ignore[index]


def psql_copy(dsn: str, paths: list[Path]) -> float:
    """``psql \\copy`` of each CSV file, one psql per file, all at once; seconds."""
    from pmp.schema import LMP

    params = conninfo_to_dict(dsn)
    env = dict(os.environ, PGPASSWORD=str(params["password"]))
    t = time.perf_counter()
    procs = [subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(params["host"]), "-p",
                               str(params["port"]), "-U", str(params["user"]), "-d", str(params["dbname"]), "-c",
                               f"\\copy lmp ({','.join(LMP.columns)}) FROM '{p}' WITH (FORMAT csv)"], env=env)
             for p in paths]
    codes = [p.wait() for p in procs]
    seconds = time.perf_counter() - t
    if any(codes):
        raise RuntimeError(f"psql \\copy failed: exit codes {codes}")
    return seconds


def empty(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("TRUNCATE lmp")
        c.execute("TRUNCATE ingest_log")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=900, help="resource nodes (+7 hubs, 8 zones x2, 4 DC ties x2)")
    ap.add_argument("--days", type=int, default=365, help="days of each year")
    ap.add_argument("--full-rows", type=int, default=50_000_000,
                    help="rows the table holds before the different year (0: twice the first year)")
    ap.add_argument("--fill", choices=("shift", "load"), default="shift",
                    help="shift: the first year's rows copied in the database, shifted by whole years; "
                         "load: earlier years generated and loaded end to end")
    ap.add_argument("--workers", type=int, default=2, help="archives end to end at a time (history runs at once)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes generating archives")
    ap.add_argument("--copy-streams", type=int, default=2,
                    help="also time this many psql \\copy at once (printed only; 0 or 1: skip)")
    ap.add_argument("--tiny", action="store_true", help="10 nodes, 3 days, full at twice the first year")
    args = ap.parse_args()
    if args.tiny:
        args.nodes, args.days, args.full_rows = 10, 3, 0
    os.environ["PMP_SIM_ERCOT_NODES"] = str(args.nodes)

    subprocess.run([str(ROOT / "scripts" / "services.sh"), "start"], check=True, stdout=subprocess.DEVNULL)
    conns = airflow_settings.connections()
    pg = conns["tsdb"]
    admin = {"host": pg["host"], "port": pg["port"], "user": pg["login"], "password": pg["password"]}
    with psycopg.connect(**admin, dbname=pg["schema"], autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    dsn = make_conninfo(**admin, dbname=BENCH_DB)
    os.environ["AIRFLOW_CONN_TSDB"] = json.dumps(dict(pg, schema=BENCH_DB))
    os.environ.setdefault("AIRFLOW_CONN_PMP_S3", json.dumps(conns["pmp_s3"]))
    os.environ["PMP_STAGING_URL"] = f"s3://{os.environ.get('PMP_S3_BUCKET', 'pmp-staging')}/bench-history-{RUN}/"
    from pmp import bulk, db
    from pmp.schema import LMP, conform
    from pmp.staging import open_store

    with psycopg.connect(dsn) as conn:
        db.migrate(conn)
    store = open_store()
    print(f"workers={args.workers} jobs={args.jobs} fill={args.fill} nodes={args.nodes} days={args.days}", flush=True)
    try:
        year1, year2 = 2023, 2024

        def build(*years: int) -> list[list[Archive]]:
            t = time.perf_counter()
            spans = [months(y, args.days) for y in years]
            built = archives([s for ys in spans for s in ys], args.jobs)
            out, at = [], 0
            for y, ys in zip(years, spans, strict=True):
                out.append(built[at : at + len(ys)])
                at += len(ys)
                print(f"{y}: {len(ys)} archive(s), {sum(len(x[2]) for x in out[-1]) / 1e6:.0f} MB", flush=True)
            print(f"generated in {time.perf_counter() - t:.0f}s ({args.jobs} process(es))", flush=True)
            return out

        # warm-up (imports, connections, S3 client), outside every timing; then emptied
        end_to_end(store, archives(months(2030, 2), 1), "w", args.workers)
        empty(dsn)
        first_year, second_year = build(year1, year2)
        with tempfile.TemporaryDirectory(prefix="pmp-bench-history-") as tmp:
            # 1. baseline: psql \copy of the same rows (normalized beforehand, outside the timing),
            # one CSV file per month (concatenated for the single psql)
            import pyarrow.parquet as pq

            parts = []
            for i, (_a, _b, data) in enumerate(first_year):
                raw, parquet, part = Path(tmp) / f"{i}.zip", Path(tmp) / f"{i}.parquet", Path(tmp) / f"{i}.csv"
                raw.write_bytes(data)
                bulk.process_files("ercot", "lmp_rt15m", [raw], parquet, names=[raw.name])
                pacsv.write_csv(conform(pq.read_table(parquet), LMP), part, pacsv.WriteOptions(include_header=False))
                raw.unlink()
                parquet.unlink()
                parts.append(part)
            csv_path = Path(tmp) / "rows.csv"
            with open(csv_path, "wb") as out:
                for part in parts:
                    out.write(part.read_bytes())
            copy_s = psql_copy(dsn, [csv_path])
            copied = count(dsn)
            empty(dsn)
            print(f"psql \\copy: {copied} rows in {copy_s:.1f}s ({copied / copy_s:.0f} rows/s)", flush=True)
            csv_path.unlink()
            if args.copy_streams > 1:
                streams = []
                for j, lane in enumerate(lanes(parts, args.copy_streams)):
                    streams.append(Path(tmp) / f"stream{j}.csv")
                    with open(streams[-1], "wb") as out:
                        for part in lane:
                            out.write(part.read_bytes())
                s_par = psql_copy(dsn, streams)
                assert count(dsn) == copied
                empty(dsn)
                print(f"{len(streams)} psql \\copy at once (not in the last line): {copied} rows in {s_par:.1f}s "
                      f"({copied / s_par:.0f} rows/s)", flush=True)

        # 2. the first year into the empty hypertable
        rows, seconds = end_to_end(store, first_year, "y1", args.workers)
        assert rows == copied == count(dsn), (rows, copied)
        rate_empty = rows / seconds
        print(f"{year1} into the empty table ({args.workers} worker(s)): {rows} rows in {seconds:.1f}s "
              f"({rate_empty:.0f} rows/s)", flush=True)

        # 3. fill the table until it holds --full-rows
        target = args.full_rows or 2 * rows
        t = time.perf_counter()
        if args.fill == "shift":
            held = fill_shift(dsn, year1, rows, target, args.workers)
        else:
            held, filler = rows, year1 - 1
            while held < target:
                n, s = end_to_end(store, build(filler)[0], f"f{filler}", args.workers)
                held += n
                print(f"{filler}: {n} rows end to end in {s:.1f}s; the table holds {held}", flush=True)
                filler -= 1
            held = count(dsn)
        print(f"filled ({args.fill}) to {held} rows in {time.perf_counter() - t:.0f}s", flush=True)

        # 4. a different year into the full table
        n2, s2 = end_to_end(store, second_year, "y2", args.workers)
        rate_full = n2 / s2
        print(f"{year2} into the table of {held} rows: {n2} rows in {s2:.1f}s ({rate_full:.0f} rows/s)", flush=True)

        # 5. the first month again under new document ids: the upsert path
        month = first_year[:1]
        nu, su = end_to_end(store, month, "rev", args.workers)
        print(f"upsert of {month[0][0]}..{month[0][1]}: {nu} rows in {su:.1f}s", flush=True)
        assert count(dsn) == held + n2
    finally:
        with psycopg.connect(**admin, dbname=pg["schema"], autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        _remove_prefix(store)
    print(f"history: rows={rows} seconds={seconds:.1f} rows_per_s={rate_empty:.0f} "
          f"empty_vs_full={rate_full / rate_empty:.2f} upsert_rows_per_s={nu / su:.0f} "
          f"pg_copy_ratio={rate_empty / (copied / copy_s):.2f}")
    return 0


def _remove_prefix(store) -> None:
    """Delete the benchmark's staged objects (its own prefix only)."""
    try:
        client, bucket = store.client, store.bucket
        for key in store.list(""):
            client.delete_object(Bucket=bucket, Key=store.prefix + key)
    except Exception as exc:
        print(f"note: staged objects under {store.uri('')} were not removed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
