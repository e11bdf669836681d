"""History-at-scale benchmark (issue 15): ERCOT 15-minute settlement point prices, a year at a time,
raw archive -> Rust (pmp_bulk) -> Parquet -> TimescaleDB through the code the DAGs run.

Archives are built with the simulator's own ERCOT documents (pmp.simulator.ercot: NP6-905-CD,
one zipped CSV per 15 minutes, bundled as a zip of zips like the API's monthly bundles), one per
month, before any timing. Each archive is then staged (raw store), normalized by
``pmp.bulk.normalize_manifest`` (the Rust operator's body) and loaded by ``pmp.pipeline.load``
(the load task's body) into a database of the benchmark's own. In one run:

1. baseline: ``psql \\copy`` of the first year's rows (CSV written beforehand) into the empty
   hypertable, then emptied;
2. the first year end to end into the empty hypertable (``rows``, ``seconds``, ``rows_per_s``);
3. earlier years end to end until the table holds ``--full-rows`` (50 M at full size);
4. a different year end to end into that table (``empty_vs_full`` = its rate / the first year's);
5. the first month of the first year again under new document ids: every key exists, so the
   loader takes its upsert path (``upsert_rows_per_s``).

    .venv/bin/python bench/history.py                    # 900+ points, 365 days (~30 M rows a year)
    .venv/bin/python bench/history.py --nodes 100 --days 60
    .venv/bin/python bench/history.py --tiny             # 10 nodes, 3 days (tests/test_bench.py)

Last line: ``history: rows=<n> seconds=<s> rows_per_s=<x> empty_vs_full=<ratio> upsert_rows_per_s=<x>
pg_copy_ratio=<ratio>`` (pg_copy_ratio: end-to-end rows/s over the psql \\copy rows/s).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
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
    """A zip of zips of the simulator's NP6-905-CD documents for market days [first, last)."""
    from pmp.simulator import ercot

    report = ercot.REPORTS[REPORT]
    lo, hi = ercot.day_bounds(first)[0], ercot.day_bounds(last)[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in report.keys(lo, hi):
            d = ercot.Doc(report, key)
            zf.writestr(d.constructed + ".zip", d.zip_bytes())
    return buf.getvalue()


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


def end_to_end(store, archives: list[tuple[date, date, bytes]], tag: str) -> tuple[int, float]:
    """Stage -> Rust normalize -> load, archive by archive, as the DAG's tasks do; (rows, seconds)."""
    from pmp import bulk, pipeline

    rows, t = 0, time.perf_counter()
    for first, last, data in archives:
        manifest = {"key": "ercot.lmp_rt15m", "docs": [stage(store, data, first, last, tag)], "revised": []}
        result = pipeline.load(bulk.normalize_manifest(manifest))
        rows += result["rows"]
    return rows, time.perf_counter() - t


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT count(*) FROM lmp").fetchone()[0]  # type: ignore[index]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=900, help="resource nodes (+7 hubs, 8 zones x2, 4 DC ties x2)")
    ap.add_argument("--days", type=int, default=365, help="days of each year")
    ap.add_argument("--full-rows", type=int, default=50_000_000, help="rows the table holds before the second year")
    ap.add_argument("--tiny", action="store_true", help="10 nodes, 3 days, full at 2.5 years' rows")
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
    try:
        year1, year2 = 2023, 2024

        def build(year: int) -> list[tuple[date, date, bytes]]:
            t = time.perf_counter()
            out = [(a, b, archive(a, b)) for a, b in months(year, args.days)]
            print(f"{year}: {len(out)} archive(s), {sum(len(x[2]) for x in out) / 1e6:.0f} MB "
                  f"(generated in {time.perf_counter() - t:.0f}s)", flush=True)
            return out

        # warm-up (imports, connections, S3 client), outside every timing; then emptied
        end_to_end(store, [(date(2030, 1, 1), date(2030, 1, 2), archive(date(2030, 1, 1), date(2030, 1, 2)))], "w")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("TRUNCATE lmp")
            c.execute("TRUNCATE ingest_log")
        first_year = build(year1)
        with tempfile.TemporaryDirectory(prefix="pmp-bench-history-") as tmp:
            # 1. baseline: psql \copy of the same rows (normalized beforehand, outside the timing)
            csv_path = Path(tmp) / "rows.csv"
            with open(csv_path, "wb") as out:
                for i, (_a, _b, data) in enumerate(first_year):
                    raw, parquet = Path(tmp) / f"{i}.zip", Path(tmp) / f"{i}.parquet"
                    raw.write_bytes(data)
                    bulk.process_files("ercot", "lmp_rt15m", [raw], parquet, names=[raw.name])
                    import pyarrow.parquet as pq

                    pacsv.write_csv(conform(pq.read_table(parquet), LMP), out,
                                    pacsv.WriteOptions(include_header=(False)))
            params = conninfo_to_dict(dsn)
            env = dict(os.environ, PGPASSWORD=str(params["password"]))
            t = time.perf_counter()
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(params["host"]), "-p",
                            str(params["port"]), "-U", str(params["user"]), "-d", BENCH_DB, "-c",
                            f"\\copy lmp ({','.join(LMP.columns)}) FROM '{csv_path}' WITH (FORMAT csv)"],
                           check=True, env=env)
            copy_s = time.perf_counter() - t
            copied = count(dsn)
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("TRUNCATE lmp")
                c.execute("TRUNCATE ingest_log")
        print(f"psql \\copy: {copied} rows in {copy_s:.1f}s ({copied / copy_s:.0f} rows/s)", flush=True)

        # 2. the first year into the empty hypertable
        rows, seconds = end_to_end(store, first_year, "y1")
        assert rows == copied == count(dsn), (rows, copied)
        rate_empty = rows / seconds
        print(f"{year1} into the empty table: {rows} rows in {seconds:.1f}s ({rate_empty:.0f} rows/s)", flush=True)

        # 3. earlier years until the table holds --full-rows
        filler = year1 - 1
        while (held := count(dsn)) < max(args.full_rows, 2 * rows):
            n, s = end_to_end(store, build(filler), f"f{filler}")
            print(f"{filler}: {n} rows in {s:.1f}s; the table holds {held + n}", flush=True)
            filler -= 1

        # 4. a different year into the full table
        held = count(dsn)
        n2, s2 = end_to_end(store, build(year2), "y2")
        rate_full = n2 / s2
        print(f"{year2} into the table of {held} rows: {n2} rows in {s2:.1f}s ({rate_full:.0f} rows/s)", flush=True)

        # 5. the first month again under new document ids: the upsert path
        month = first_year[:1]
        nu, su = end_to_end(store, month, "rev")
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
