"""Load-path benchmark: pipeline loader (Parquet -> COPY -> hypertable) vs ``psql \\copy`` of the same rows.

Starts the services it needs (scripts/services.sh start), uses its own database, and alternates the
methods in the same run (the machines are noisy), reporting the median of each. ``pipeline`` is the
loader as the DAGs run it (binary COPY, pmp.loader.COPY_FORMAT); ``csv`` is the same loader with
its CSV-text COPY, printed on the line before the last as the side-by-side comparison of the two
COPY formats.

    .venv/bin/python bench/load.py [--rows 1000000] [--repeat 3]

Last line: ``load: pipeline=<rows/s> psql_copy=<rows/s> ratio=<x>``
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from pmp import airflow_settings, db, loader  # noqa: E402
from pmp.loader import DocumentLoad, load_batch  # noqa: E402
from pmp.schema import LMP, conform  # noqa: E402

BENCH_DB = "pmp_bench"


def make_table(rows: int) -> pa.Table:
    """ERCOT-shaped 5-minute prices: ~1,000 locations x N intervals."""
    locations = 1000
    intervals = max(1, rows // locations)
    t0 = datetime(2024, 1, 1, 6, tzinfo=UTC)
    starts = [t0 + timedelta(minutes=5 * i) for i in range(intervals)]
    n = intervals * locations
    start_col = pa.array([s for s in starts for _ in range(locations)], LMP.arrow.field("interval_start").type)
    end_col = pa.array([s + timedelta(minutes=5) for s in starts for _ in range(locations)],
                       LMP.arrow.field("interval_end").type)
    loc_names = [f"NODE_{i:04d}_RN" for i in range(locations)]
    return pa.table(
        {
            "interval_start": start_col,
            "interval_end": end_col,
            "iso": pa.array(["BENCH"] * n),
            "market": pa.array(["RT5M"] * n),
            "location": pa.array(loc_names * intervals),
            "location_type": pa.array(["RN"] * n),
            "lmp": pa.array([20.0 + (i % 997) * 0.0137 for i in range(n)], pa.float64()),
            "energy": pa.nulls(n, pa.float64()),
            "congestion": pa.nulls(n, pa.float64()),
            "loss": pa.nulls(n, pa.float64()),
            "ghg": pa.nulls(n, pa.float64()),
            "published_at": pa.array([t0] * n, LMP.arrow.field("published_at").type),
            "source": pa.array(["bench.csv"] * n),
        }
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    subprocess.run([str(ROOT / "scripts" / "services.sh"), "start", "postgres"], check=True,
                   stdout=subprocess.DEVNULL)
    pg = airflow_settings.connections()["tsdb"]
    admin = {"host": pg["host"], "port": pg["port"], "user": pg["login"], "password": pg["password"]}
    with psycopg.connect(**admin, dbname=pg["schema"], autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    dsn = make_conninfo(**admin, dbname=BENCH_DB)
    with psycopg.connect(dsn) as conn:
        db.migrate(conn)

    table = conform(make_table(args.rows), LMP)  # both methods get the table's exact column order
    n = table.num_rows
    parquet = io.BytesIO()
    pq.write_table(table, parquet, compression="zstd")
    parquet_bytes = parquet.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "rows.csv"
        pacsv.write_csv(table, csv_path, pacsv.WriteOptions(include_header=False))
        cols = ",".join(LMP.columns)

        def reset() -> None:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("TRUNCATE lmp")
                c.execute("TRUNCATE ingest_log")
                c.execute("CHECKPOINT")

        def pipeline(fmt: str = loader.COPY_FORMAT) -> float:
            reset()
            default, loader.COPY_FORMAT = loader.COPY_FORMAT, fmt
            try:
                t = time.perf_counter()
                loaded = pq.read_table(io.BytesIO(parquet_bytes))
                with psycopg.connect(dsn) as c:
                    load_batch(c, iso="bench", dataset="lmp_rt5m", schema=LMP, table=loaded,
                               documents=[DocumentLoad("bench", "bench.csv", "x", n)])
                return time.perf_counter() - t
            finally:
                loader.COPY_FORMAT = default

        def psql_copy() -> float:
            reset()
            params = conninfo_to_dict(dsn)
            env = dict(os.environ, PGPASSWORD=str(params["password"]))
            t = time.perf_counter()
            subprocess.run(
                ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(params["host"]), "-p", str(params["port"]),
                 "-U", str(params["user"]), "-d", BENCH_DB,
                 "-c", f"\\copy lmp ({cols}) FROM '{csv_path}' WITH (FORMAT csv)"],
                check=True, env=env,
            )
            return time.perf_counter() - t

        pipe_times, csv_times, psql_times = [], [], []
        for i in range(args.repeat):  # alternate so drift hits all equally
            pipe_times.append(pipeline())
            csv_times.append(pipeline("csv"))
            psql_times.append(psql_copy())
            print(f"round {i + 1}: pipeline ({loader.COPY_FORMAT} COPY) {pipe_times[-1]:.2f}s  "
                  f"csv COPY {csv_times[-1]:.2f}s  psql \\copy {psql_times[-1]:.2f}s", flush=True)
        with psycopg.connect(dsn) as c:
            assert c.execute("SELECT count(*) FROM lmp").fetchone()[0] == n
    with psycopg.connect(**admin, dbname=pg["schema"], autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    pipe = n / statistics.median(pipe_times)
    psql = n / statistics.median(psql_times)
    csv = n / statistics.median(csv_times)
    print(f"rows={n} repeat={args.repeat} (median of each)")
    print(f"copy formats: {loader.COPY_FORMAT}={pipe:.0f} csv={csv:.0f} {loader.COPY_FORMAT}/csv={pipe / csv:.2f}")
    print(f"load: pipeline={pipe:.0f} psql_copy={psql:.0f} ratio={pipe / psql:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
