"""Loader: normalized Arrow/Parquet -> TimescaleDB, one transaction per document batch.

Path per batch (all inside one transaction, so a failure leaves nothing behind):
0. transaction-level advisory locks are taken, in one global order, on every document of the
   batch and on every (table, ISO, month) its rows fall in (:func:`_lock`): two loads of one
   document, or of overlapping keys (a re-run over a real-time run), run one after the other
   instead of both taking a new document for a first load or deadlocking inside their COPYs;
1. rows of *revised* documents (same source id, new checksum) are deleted: exactly the rows the
   previous version produced (its source name, within the interval range ingest_log recorded for
   it; sql/030 indexes (iso, source, interval_start), so only the chunks of that range are read);
2. the batch is COPYed straight into the hypertable inside a savepoint (the fast path for
   new data), in PostgreSQL's binary COPY format encoded column-wise from Arrow (no text for the
   server to parse; 1.17x the CSV-text COPY in bench/load.py);
3. if any key already exists (a re-run, or an overlapping publication), the savepoint is
   rolled back and the batch goes COPY -> temporary staging table -> INSERT .. ON CONFLICT
   DO UPDATE, where the newer publication wins (see :func:`_upsert_sql`; a row without a
   publication time never replaces one that has it);
4. one ingest_log row per document is written.
No row-by-row inserts anywhere.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from pmp.schema import TableSchema, conform

log = logging.getLogger(__name__)

COPY_BATCH_ROWS = 65_536


@dataclass
class DocumentLoad:
    """What the loader records about one source document."""

    source_id: str
    source_name: str
    checksum: str
    rows: int = 0
    published_at: datetime | None = None
    market_day: date | None = None
    source_url: str | None = None
    raw_uri: str | None = None
    # interval_start of the document's first and last row (None: taken from the batch's rows
    # whose source is ``source_name``); recorded in ingest_log to bound a later revision's DELETE
    rows_from: datetime | None = None
    rows_to: datetime | None = None

    _INSTANTS = ("published_at", "rows_from", "rows_to")

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in self._INSTANTS:
            d[k] = d[k].isoformat() if d[k] else None
        d["market_day"] = self.market_day.isoformat() if self.market_day else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DocumentLoad:
        d = dict(d)
        for k in cls._INSTANTS:
            if d.get(k):
                d[k] = datetime.fromisoformat(d[k])
        if d.get("market_day"):
            d["market_day"] = date.fromisoformat(d["market_day"])
        return cls(**d)


def row_range(table: pa.Table) -> tuple[datetime | None, datetime | None]:
    """The first and last ``interval_start`` of ``table`` (None, None when it has no rows)."""
    if table.num_rows == 0:
        return None, None
    bounds = pc.min_max(table.column("interval_start"))
    return bounds["min"].as_py(), bounds["max"].as_py()


@dataclass
class LoadResult:
    rows: int
    documents: int
    revised: list[str] = field(default_factory=list)
    path: str = "copy"  # "copy" (fast path) or "upsert"


class UndeclaredMarketError(ValueError):
    """Rows carry a market no registry entry declares (the registry is the list of markets)."""


def check_markets(table: pa.Table, schema: TableSchema, dataset: str) -> None:
    """Every ``market`` of the batch is one the registry declares for this table (see
    :func:`pmp.registry.markets`); raised before anything is written, naming market and dataset."""
    if "market" not in table.column_names or table.num_rows == 0:
        return
    from pmp import registry

    declared = registry.markets(schema.name)
    found = set(pc.unique(table.column("market")).to_pylist())
    unknown = sorted(str(m) for m in found - declared)
    if unknown:
        raise UndeclaredMarketError(
            f"{dataset}: {schema.name} rows with market {', '.join(map(repr, unknown))}, which no registry entry "
            f"declares (declared: {', '.join(sorted(declared))}); declare it with DatasetSpec.market in the "
            "ISO's datasets.py"
        )


def dedupe_latest(table: pa.Table, key: Iterable[str]) -> pa.Table:
    """Keep one row per key: the one with the latest published_at (last one on ties). A row with
    a publication time ranks above one without (the same rule as the upsert, :func:`_upsert_sql`)."""
    key = list(key)
    if table.num_rows == 0:
        return table
    distinct = _encoded_key(table, key).group_by(key).aggregate([]).num_rows
    if distinct == table.num_rows:
        return table
    indexed = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    indexed = indexed.append_column("__dated", pc.is_valid(indexed.column("published_at")))
    ordered = indexed.sort_by([("__dated", "ascending"), ("published_at", "ascending"), ("__row", "ascending")])
    last = ordered.group_by(key, use_threads=False).aggregate([("__row", "last")])
    keep = pc.sort_indices(last.column("__row_last"))
    rows = pc.take(last.column("__row_last"), keep)
    return table.take(rows)


def _encoded_key(table: pa.Table, key: list[str]) -> pa.Table:
    """The key columns with strings replaced by dictionary indices: the same groups, grouped
    several times faster than by the strings themselves."""
    cols = {}
    for c in key:
        col = table.column(c)
        cols[c] = pc.dictionary_encode(col).combine_chunks().indices if pa.types.is_string(col.type) else col
    return pa.table(cols)


def _timestamps_as_text(table: pa.Table) -> pa.Table:
    """Timestamp columns as COPY text (``2024-11-03 06:00:00.000000+0000``, microseconds exact).

    Formatting each value is most of the text path's client time (about 1.7 s per million), and a
    batch holds few distinct instants (intervals, publication times): each distinct one is formatted once."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            enc = pc.dictionary_encode(table.column(i)).combine_chunks()
            text = pc.strftime(enc.dictionary, format="%Y-%m-%d %H:%M:%S%z")
            table = table.set_column(i, f.name, pc.take(text, enc.indices))
    return table


def _csv_chunks(table: pa.Table) -> Iterable[bytes]:
    """COPY ``FORMAT csv`` blocks (the text path, kept for the benchmark's side-by-side run)."""
    opts = pacsv.WriteOptions(include_header=False, batch_size=COPY_BATCH_ROWS)
    for batch in _timestamps_as_text(table).to_batches(max_chunksize=COPY_BATCH_ROWS):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, opts)
        yield buf.getvalue()


# PostgreSQL's binary COPY format (https://www.postgresql.org/docs/15/sql-copy.html, "Binary Format"):
# a signature, flags and header-extension length; per row an int16 field count, then per field an
# int32 byte length (-1: NULL) and the value in the type's send format (big-endian); an int16 -1 ends it.
_PG_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_TRAILER = b"\xff\xff"
_PG_NULL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC, PostgreSQL's timestamp origin, in Unix microseconds


def _prefixed(values: np.ndarray) -> pa.Array:
    """Fixed-width big-endian values, each behind its int32 length, as one binary array."""
    width = values.dtype.itemsize
    rec = np.empty(len(values), dtype=[("n", ">i4"), ("v", values.dtype)])
    rec["n"] = width
    rec["v"] = values
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 + width), len(values), [None, pa.py_buffer(rec.tobytes())])
    return fixed.cast(pa.binary())


def _binary_field(column: pa.Array) -> pa.Array:
    """One column as binary COPY fields (length + send format), vectorized: timestamptz is int64
    microseconds since 2000-01-01 UTC, float8 the IEEE double's bytes (every value exact, NaN and
    infinities included), bool one byte, text its UTF-8 bytes. NULL is the length -1 alone."""
    t = column.type
    if pa.types.is_timestamp(t):
        us = pc.cast(column, pa.timestamp("us", tz=t.tz)).cast(pa.int64()).fill_null(0).to_numpy()
        out = _prefixed((us - _PG_EPOCH_US).astype(">i8"))
    elif pa.types.is_float64(t):
        out = _prefixed(column.fill_null(0.0).to_numpy().astype(">f8"))
    elif pa.types.is_boolean(t):
        out = _prefixed(column.fill_null(False).to_numpy(zero_copy_only=False).astype(">u1"))
    elif pa.types.is_string(t):
        data = column.cast(pa.binary()).fill_null(b"")
        lengths = pc.binary_length(data).to_numpy().astype(">i4")
        prefix = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(lengths), [None, pa.py_buffer(lengths.tobytes())])
        out = pc.binary_join_element_wise(prefix.cast(pa.binary()), data, b"")
    else:  # the standard schema has no other types (pmp.schema)
        raise TypeError(f"binary COPY: no encoding for Arrow type {t} (column types are pmp.schema's)")
    return pc.if_else(pc.is_null(column), _PG_NULL, out) if column.null_count else out


def _binary_rows(batch: pa.RecordBatch) -> bytes:
    count = pa.scalar(len(batch.columns).to_bytes(2, "big"), pa.binary())
    rows = pc.binary_join_element_wise(count, *(_binary_field(c) for c in batch.columns), b"")
    _, offsets, data = rows.buffers()
    at = np.frombuffer(offsets, dtype=np.int32)
    return data[int(at[rows.offset]) : int(at[rows.offset + len(rows)])].to_pybytes()


def _binary_chunks(table: pa.Table) -> Iterable[bytes]:
    """COPY ``FORMAT binary`` blocks: the server parses no text (no float or timestamp input
    functions), which makes this the faster path (bench/history.py, bench/load.py measure both)."""
    yield _PG_SIGNATURE
    for batch in table.combine_chunks().to_batches(max_chunksize=COPY_BATCH_ROWS):
        yield _binary_rows(batch)
    yield _PG_TRAILER


COPY_FORMATS = {"binary": _binary_chunks, "csv": _csv_chunks}
# The format load_batch COPYs in; bench/ switches it to run the text path side by side.
COPY_FORMAT = "binary"


def _copy(cur: psycopg.Cursor, target: sql.Composable, columns: list[str], table: pa.Table,
          fmt: str | None = None) -> None:
    fmt = fmt or COPY_FORMAT
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(fmt)
    )
    with cur.copy(stmt) as copy:
        for chunk in COPY_FORMATS[fmt](table):
            copy.write(chunk)


def _upsert_sql(schema: TableSchema, staging: str) -> sql.Composed:
    """INSERT .. ON CONFLICT DO UPDATE where the newer publication wins.

    An existing row is replaced by a row published at the same time or later (a re-run, a
    revision, a final after its prelim), never by an older one. A row without a publication
    time (``published_at`` NULL) never replaces a row that has one, and is replaced by any row:
    an unknown time can not prove itself newer, so a source that cannot say when it published
    can never overwrite one that can (e.g. a final by a re-fetched prelim).
    """
    cols = schema.columns
    non_key = [c for c in cols if c not in schema.key]
    updates = [sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in non_key]
    updates.append(sql.SQL("ingested_at = now()"))
    target = sql.Identifier(schema.name)
    return sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging} "
        "ON CONFLICT ({key}) DO UPDATE SET {updates} "
        "WHERE {target}.published_at IS NULL "
        "OR (excluded.published_at IS NOT NULL AND excluded.published_at >= {target}.published_at)"
    ).format(
        target=target,
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        staging=sql.Identifier(staging),
        key=sql.SQL(", ").join(map(sql.Identifier, schema.key)),
        updates=sql.SQL(", ").join(updates),
    )


def load_batch(
    conn: psycopg.Connection,
    *,
    iso: str,
    dataset: str,
    schema: TableSchema,
    table: pa.Table,
    documents: list[DocumentLoad],
) -> LoadResult:
    """Load one batch of documents atomically. The caller's connection must not be in a transaction."""
    table = dedupe_latest(conform(table, schema), schema.key)
    check_markets(table, schema, f"{iso}.{dataset}")
    ids = [d.source_id for d in documents]
    _fill_ranges(table, documents)
    result = LoadResult(rows=table.num_rows, documents=len(documents))
    with conn.transaction(), conn.cursor() as cur:
        _lock(cur, iso, dataset, schema.name, table, documents)
        found = cur.execute(
            "SELECT source_id, checksum, rows_from, rows_to FROM ingest_log WHERE iso = %s AND dataset = %s"
            " AND source_id = ANY(%s) FOR UPDATE",
            (iso, dataset, ids),
        ).fetchall()
        previous = {r[0]: r[1] for r in found}
        ranges = {r[0]: (r[2], r[3]) for r in found}
        revised = [d for d in documents if d.source_id in previous and previous[d.source_id] != d.checksum]
        if revised:
            result.revised = [d.source_id for d in revised]
            removed = 0
            for d in revised:
                removed += _delete_previous(cur, schema.name, iso, d, ranges[d.source_id])
            log.info("revision of %d document(s): %d old rows removed", len(revised), removed)
        if table.num_rows:
            try:
                with conn.transaction():  # savepoint: fast path straight into the hypertable
                    _copy(cur, sql.Identifier(schema.name), schema.columns, table)
            except psycopg.errors.UniqueViolation:
                result.path = "upsert"
                staging = f"_pmp_stage_{schema.name}"
                cur.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP"
                    ).format(sql.Identifier(staging), sql.Identifier(schema.name))
                )
                _copy(cur, sql.Identifier(staging), schema.columns, table)
                cur.execute(_upsert_sql(schema, staging))
        _record(cur, iso, dataset, schema.name, documents, previous)
    log.info(
        "loaded %d rows from %d document(s) into %s via %s", result.rows, len(documents), schema.name, result.path
    )
    return result


def _fill_ranges(table: pa.Table, documents: list[DocumentLoad]) -> None:
    """Documents that do not say which interval range their rows span take it from the batch's rows
    of their source name (a caller that knows each document's own rows sets ``rows_from``/``rows_to``)."""
    missing = [d for d in documents if d.rows_from is None]
    if not missing or table.num_rows == 0:
        return
    for d in missing:
        d.rows_from, d.rows_to = row_range(table.filter(pc.equal(table.column("source"), d.source_name)))


def _delete_previous(
    cur: psycopg.Cursor, target: str, iso: str, doc: DocumentLoad, before: tuple[datetime | None, datetime | None]
) -> int:
    """Delete the rows the previous version of ``doc`` produced: its source name within the interval
    range ingest_log recorded for it (a version loaded before that range was recorded: the range of
    the new version's rows). Never the rows of another document of the same source name (ERCOT's
    monthly documents cut from one annual workbook) outside that range, never an unbounded scan."""
    low, high = before if before[0] is not None else (doc.rows_from, doc.rows_to)
    if low is None or high is None:
        return 0  # neither version has rows: nothing to remove
    cur.execute(
        sql.SQL(
            "DELETE FROM {} WHERE iso = %s AND source = %s AND interval_start >= %s AND interval_start <= %s"
        ).format(sql.Identifier(target)),
        (iso.upper(), doc.source_name, low, high),  # data tables use the upper-case ISO name
    )
    return cur.rowcount


def _lock_key(text: str) -> int:
    """A signed 64-bit advisory-lock key for ``text`` (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _lock(
    cur: psycopg.Cursor, iso: str, dataset: str, target: str, table: pa.Table, documents: list[DocumentLoad]
) -> None:
    """Transaction-level advisory locks on every document of the batch and every (table, ISO,
    UTC month) its rows touch, taken in ascending key order: every loader takes its locks in one
    global order, so two loads can wait for each other but never deadlock, and two loads of one
    document see each other's ingest_log row (the second is a re-run or a revision, never a
    second first load). Months bound the count (a year-long annual workbook: 12 locks) while loads
    of different months (a parallel backfill) still run side by side."""
    keys = {_lock_key(f"doc|{iso}|{dataset}|{d.source_id}") for d in documents}
    if table.num_rows:
        months = pc.unique(pc.strftime(table.column("interval_start"), format="%Y-%m")).to_pylist()
        keys.update(_lock_key(f"rows|{target}|{iso.upper()}|{m}") for m in months)
    for key in sorted(keys):
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))


def _record(
    cur: psycopg.Cursor,
    iso: str,
    dataset: str,
    table: str,
    documents: list[DocumentLoad],
    previous: dict[str, str],
) -> None:
    cur.executemany(
        """INSERT INTO ingest_log (iso, dataset, source_id, source_name, source_url, raw_uri, checksum,
                                   published_at, market_day, target_table, rows, rows_from, rows_to)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (iso, dataset, source_id) DO UPDATE SET
               source_name = excluded.source_name, source_url = excluded.source_url,
               raw_uri = excluded.raw_uri, published_at = excluded.published_at,
               market_day = excluded.market_day, rows = excluded.rows, loaded_at = now(),
               rows_from = excluded.rows_from, rows_to = excluded.rows_to,
               revision = ingest_log.revision
                   + CASE WHEN ingest_log.checksum <> excluded.checksum THEN 1 ELSE 0 END,
               previous_checksums = CASE WHEN ingest_log.checksum <> excluded.checksum
                   THEN ingest_log.previous_checksums || ingest_log.checksum
                   ELSE ingest_log.previous_checksums END,
               checksum = excluded.checksum""",
        [
            (
                iso, dataset, d.source_id, d.source_name, d.source_url, d.raw_uri, d.checksum,
                d.published_at, d.market_day, table, d.rows, d.rows_from, d.rows_to,
            )
            for d in documents
        ],
    )


def loaded_checksums(conn: psycopg.Connection, iso: str, dataset: str, ids: list[str]) -> dict[str, str]:
    rows = conn.execute(
        "SELECT source_id, checksum FROM ingest_log WHERE iso = %s AND dataset = %s AND source_id = ANY(%s)",
        (iso, dataset, ids),
    ).fetchall()
    conn.commit()
    return dict(rows)
