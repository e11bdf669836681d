"""The Parquet lake: the warehouse's rows as Hive-partitioned Parquet that DuckDB, Athena, Spark
or pandas read without a database.

Layout, under ``PMP_LAKE_URL`` (default ``<PMP_STAGING_URL>/lake/``, ``file://`` or ``s3://``)::

    iso=ERCOT/dataset=lmp_rt15m/date=2024-11-03/data.parquet

* one file per dataset and **market day** (``date`` = the ISO-local day of ``interval_start``; a
  forecast's rows live under the day they forecast, so one file holds every vintage for that
  day). ``iso`` is the warehouse's own value (upper case), so ``WHERE iso = 'ERCOT'`` means
  the same in SQL on the warehouse and on the lake; the files carry every other column of the
  standard table (:mod:`pmp.schema`), in its order and types.
* a day's file is written **from the warehouse rows of that day** and replaces the previous file
  (a day with no rows has no file), so a reload, a revision or a real-time batch loaded twice
  never adds rows to the lake: it holds exactly the warehouse's numbers. The daily DAG's ``lake``
  task (after ``check``) rewrites the days its run touched, which also compacts the day's
  real-time batches into that one file; ``pmp lake compact`` builds or repairs any range.
* writers of the same day file are serialized by a PostgreSQL advisory lock, and each reads the
  warehouse after taking it, so the last file written holds every committed row.

Only pyarrow and psycopg are needed to write the lake (the Airflow workers); reading it through
:mod:`pmp.read` adds DuckDB.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql

from pmp import registry
from pmp.checks import where
from pmp.registry import DatasetSpec
from pmp.schema import TableSchema
from pmp.settings import settings
from pmp.staging import FileStore, S3Store, Store, open_store
from pmp.timeutil import market_day_bounds
from pmp.validate import setting

log = logging.getLogger(__name__)

FILE_NAME = "data.parquet"
_DATE = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")


def lake_url() -> str:
    return setting("PMP_LAKE_URL") or settings().staging_url.rstrip("/") + "/lake/"


def open_lake(url: str | None = None) -> Store:
    return open_store(url or lake_url())


def dataset_prefix(spec: DatasetSpec) -> str:
    return f"iso={spec.iso.upper()}/dataset={spec.dataset}/"


def day_key(spec: DatasetSpec, day: date) -> str:
    return f"{dataset_prefix(spec)}date={day.isoformat()}/{FILE_NAME}"


def file_schema(table: TableSchema) -> pa.Schema:
    """The columns of a lake file: the standard table's, without ``iso`` (the partition)."""
    return pa.schema([f for f in table.arrow if f.name != "iso"])


def list_days(store: Store, spec: DatasetSpec) -> list[date]:
    """The market days the lake holds a file for, in order."""
    days = []
    for key in store.list(dataset_prefix(spec)):
        m = _DATE.search("/" + key)
        if m and key.endswith("/" + FILE_NAME):
            days.append(date.fromisoformat(m.group(1)))
    return sorted(days)


def read_days(store: Store, spec: DatasetSpec, days: list[date], *, filters: list[tuple] | None = None) -> pa.Table:
    """The rows of the given day files (days :func:`list_days` lists), in the file schema, with
    pyarrow ``filters`` applied while reading; files written before a column was added to the
    table get it as NULL."""
    schema = file_schema(spec.schema)
    tables = []
    for day in days:
        table = pq.read_table(io.BytesIO(store.get(day_key(spec, day))), filters=filters)
        for f in schema:
            if f.name not in table.column_names:
                table = table.append_column(f, pa.nulls(table.num_rows, f.type))
        tables.append(table.select(schema.names).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _delete(store: Store, key: str) -> None:
    if isinstance(store, FileStore):
        path = store.root / key
        if path.exists():
            path.unlink()
    elif isinstance(store, S3Store):
        store.client.delete_object(Bucket=store.bucket, Key=store.prefix + key)
    else:  # pragma: no cover - the two stores pmp.staging knows
        raise TypeError(f"cannot delete from {type(store).__name__}")


def _order_term(table: TableSchema, column: str) -> sql.Composable:
    """Byte order for text (the same file bytes whatever the database's collation)."""
    ident = sql.Identifier(column)
    return sql.SQL('{} COLLATE "C"').format(ident) if table.arrow.field(column).type == pa.string() else ident


def warehouse_day(conn: Any, spec: DatasetSpec, day: date) -> pa.Table:
    """The dataset's warehouse rows whose interval starts on the local market ``day``, in key order."""
    from pmp.read import fetch_arrow

    schema = file_schema(spec.schema)
    cond, params = where(spec)
    start, end = market_day_bounds(day, spec.timezone)
    q = sql.SQL("SELECT {cols} FROM {t} WHERE {c} AND interval_start >= %s AND interval_start < %s ORDER BY {key}").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, schema.names)), t=sql.Identifier(spec.table), c=cond,
        key=sql.SQL(", ").join(_order_term(spec.schema, k) for k in spec.schema.key if k != "iso"),
    )
    return fetch_arrow(conn, q.as_string(conn), [*params, start, end], schema)


def compact_day(conn: Any, store: Store, spec: DatasetSpec, day: date) -> int:
    """Rewrite one day file from the warehouse (delete it when the day has no rows); the row count."""
    key = day_key(spec, day)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"pmp-lake:{key}"])
        table = warehouse_day(conn, spec, day)
        if table.num_rows:
            buf = io.BytesIO()
            pq.write_table(table, buf, compression="zstd")
            store.put(key, buf.getvalue(), immutable=False)
        else:
            _delete(store, key)
    return table.num_rows


def days_touched(conn: Any, spec: DatasetSpec, start: datetime, end: datetime) -> list[date]:
    """The day files a load of ``[start, end)`` changes: its market days, or for forecasts (whose
    day is the issue day) every day the vintages issued in the window forecast."""
    from pmp.pipeline import market_days

    if spec.completeness != "vintages":
        return market_days(spec, start, end)
    cond, params = where(spec)
    q = sql.SQL("SELECT DISTINCT (interval_start AT TIME ZONE %s)::date FROM {t} WHERE {c}"
                " AND forecast_issued_at >= %s AND forecast_issued_at < %s").format(t=sql.Identifier(spec.table), c=cond)
    rows = conn.execute(q, [spec.timezone, *params, start, end]).fetchall()
    return sorted(r[0] for r in rows)


def compact_days(spec: DatasetSpec, days: list[date], *, store: Store | None = None,
                 progress: Any = None) -> dict[str, int]:
    """Rewrite the day files of ``days``: ``{day: rows}``."""
    from pmp import db

    store = store or open_lake()
    out = {}
    with db.connect_ready() as conn:
        for day in days:
            out[day.isoformat()] = compact_day(conn, store, spec, day)
            if progress is not None:
                progress.update(1)
    return out


def compact_window(key: str, start: str, end: str) -> dict[str, Any]:
    """The daily DAG's ``lake`` task: rewrite the day files the run's window touched."""
    from pmp import db

    iso, dataset = key.split(".", 1)
    spec = registry.get(iso, dataset)
    with db.connect_ready() as conn:
        days = days_touched(conn, spec, datetime.fromisoformat(start), datetime.fromisoformat(end))
        conn.commit()
    written = compact_days(spec, days)
    log.info("%s: lake day files rewritten: %s", spec.key, ", ".join(f"{d} ({n} rows)" for d, n in written.items()))
    return {"lake": lake_url(), "days": written}


def wire_daily(spec: DatasetSpec) -> None:
    """Add the ``lake`` task after ``check`` to the daily DAG being defined (called inside its
    ``@dag`` function, after the pipeline's tasks are wired). ``PMP_LAKE=false`` leaves it out."""
    from airflow.sdk import task

    from pmp.registry import HISTORY_POOL

    if not setting("PMP_LAKE"):
        return
    key = spec.key

    @task(task_id="lake", pool=HISTORY_POOL)  # Parquet day files: CPU, like normalize and load
    def lake(data_interval_start: Any = None, data_interval_end: Any = None) -> dict:
        return compact_window(key, data_interval_start.isoformat(), data_interval_end.isoformat())

    compacted = lake()
    dag = compacted.operator.dag
    dag.get_task("check") >> compacted.operator

