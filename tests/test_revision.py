"""Revisions delete exactly the rows their document produced before, and concurrent loads of one
document or of overlapping keys serialize instead of double-counting or deadlocking (issue 14)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pytest
from helpers import cleared_connection

from pmp import loader
from pmp.loader import DocumentLoad, load_batch
from pmp.schema import LMP

pytestmark = pytest.mark.integration

PUB = datetime(2024, 12, 31, 18, tzinfo=UTC)


def month_rows(source: str, month: int, price: float, n_loc: int = 3, hours: int = 4) -> pa.Table:
    """Rows of one monthly document cut from an annual workbook (every month has the same source)."""
    rows = []
    for h in range(hours):
        start = datetime(2024, month, 10, h, tzinfo=UTC)
        for loc in range(n_loc):
            rows.append({"interval_start": start, "interval_end": start + timedelta(hours=1), "iso": "REV",
                         "market": "DAM", "location": f"L{loc}", "location_type": "HU", "lmp": price + loc,
                         "energy": None, "congestion": None, "loss": None, "ghg": None, "published_at": PUB,
                         "source": source})
    return pa.Table.from_pylist(rows, schema=LMP.arrow)


def doc(doc_id: str, source: str, checksum: str, table: pa.Table) -> DocumentLoad:
    return DocumentLoad(source_id=doc_id, source_name=source, checksum=checksum, rows=table.num_rows,
                        published_at=PUB)


@pytest.fixture
def conn(warehouse: str):
    yield from cleared_connection(warehouse, "rev")


def stored(conn) -> dict[int, set[float]]:
    out: dict[int, set[float]] = {}
    for month, price in conn.execute(
        "SELECT extract(month FROM interval_start)::int, lmp FROM lmp WHERE iso = 'REV'"
    ).fetchall():
        out.setdefault(month, set()).add(price)
    conn.commit()
    return out


def test_revision_of_one_month_keeps_the_other_months_of_the_workbook(conn) -> None:
    """Twelve monthly documents share the workbook's source name; a revision of March deletes
    March's old rows only (before: every row of the source, so eleven months vanished)."""
    src = "rpt.00013060.0000000000000000.20241231.DAMASMCPCNP4181.xlsx"
    for m in range(1, 13):
        t = month_rows(src, m, 10.0 * m)
        load_batch(conn, iso="rev", dataset="as_annual", schema=LMP, table=t, documents=[doc(f"m{m}", src, "v1", t)])
    revised = month_rows(src, 3, 1000.0, n_loc=2)  # one location dropped in the revision
    result = load_batch(conn, iso="rev", dataset="as_annual", schema=LMP, table=revised,
                        documents=[doc("m3", src, "v2", revised)])
    assert result.revised == ["m3"]
    after = stored(conn)
    assert sorted(after) == list(range(1, 13))
    assert after[3] == {1000.0, 1001.0}
    assert all(after[m] == {10.0 * m, 10.0 * m + 1, 10.0 * m + 2} for m in range(1, 13) if m != 3)
    bounds = conn.execute(
        "SELECT rows_from, rows_to, revision FROM ingest_log WHERE iso = 'rev' AND source_id = 'm3'"
    ).fetchone()
    conn.commit()
    assert bounds == (datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 10, 3, tzinfo=UTC), 2)


def test_revision_removes_rows_outside_the_new_versions_range(conn) -> None:
    """The bound is the *previous* version's range: a revision that no longer covers an hour still
    removes that hour's old rows."""
    src = "doc.csv"
    first = month_rows(src, 5, 1.0, hours=6)
    load_batch(conn, iso="rev", dataset="d", schema=LMP, table=first, documents=[doc("x", src, "a", first)])
    shorter = month_rows(src, 5, 2.0, hours=2)
    load_batch(conn, iso="rev", dataset="d", schema=LMP, table=shorter, documents=[doc("x", src, "b", shorter)])
    n = conn.execute("SELECT count(*), min(lmp) FROM lmp WHERE iso = 'REV'").fetchone()
    conn.commit()
    assert n == (6, 2.0)


def test_revision_delete_uses_the_source_index_in_the_documents_chunks_only(conn) -> None:
    """The revision DELETE reads the chunks of the document's range through (iso, source,
    interval_start), not every chunk of the table (sql/030)."""
    src = "wb.xlsx"
    for m in (1, 6, 11):
        t = month_rows(src, m, 1.0)
        load_batch(conn, iso="rev", dataset="d", schema=LMP, table=t, documents=[doc(f"m{m}", src, "a", t)])
    conn.execute("ANALYZE lmp")
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN DELETE FROM lmp WHERE iso = 'REV' AND source = %s AND interval_start >= %s AND interval_start <= %s",
        (src, datetime(2024, 6, 10, tzinfo=UTC), datetime(2024, 6, 10, 3, tzinfo=UTC)),
    ).fetchall())
    conn.rollback()
    chunks = conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'lmp'").fetchone()[0]
    conn.commit()
    assert chunks >= 3
    assert len(set(re.findall(r"_hyper_\d+_\d+_chunk\b", plan))) == 1, plan  # June's chunk only
    indexed = {r[0] for r in conn.execute(
        "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%(iso, source, interval_start)'").fetchall()}
    conn.commit()
    assert {"lmp", "ancillary_services", "load", "fuel_mix"} <= indexed  # and each chunk of them
    assert sum(t.startswith("_hyper_") for t in indexed) >= chunks


def _backend_waiting_or_flag(dsn: str, app: str, flag: threading.Event) -> str:
    """Block until the connection named ``app`` waits on a lock or ``flag`` is set: which one."""
    with psycopg.connect(dsn, autocommit=True) as watch:
        while not flag.is_set():
            row = watch.execute(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = %s", (app,)
            ).fetchone()
            if row and row[0] == "Lock":
                return f"waits on {row[1]}"
            flag.wait(0.05)
    return "reached the COPY"


def _race(run: Callable[..., None], first: tuple, second: tuple, first_in_copy: threading.Event) -> None:
    """``run(*first)`` in a thread until it is inside its COPY, then ``run(*second)`` beside it; both joined."""
    a = threading.Thread(target=run, args=first, name="A")
    a.start()
    first_in_copy.wait()
    b = threading.Thread(target=run, args=second, name="B")
    b.start()
    a.join()
    b.join()


def _gate_copies(dsn: str, monkeypatch) -> tuple[threading.Event, list[str]]:
    """Thread A, at its first COPY, holds until thread B either waits on a lock or reaches its own
    COPY, and records which (deterministic: no sleep decides the interleaving)."""
    a_in_copy, b_in_copy = threading.Event(), threading.Event()
    seen: list[str] = []
    real_copy = loader._copy

    def copy(cur, target, columns, table):
        name = threading.current_thread().name
        if name == "A" and not a_in_copy.is_set():
            a_in_copy.set()
            seen.append(_backend_waiting_or_flag(dsn, "load-B", b_in_copy))
        elif name == "B":
            b_in_copy.set()
        return real_copy(cur, target, columns, table)

    monkeypatch.setattr(loader, "_copy", copy)
    return a_in_copy, seen


def test_two_concurrent_loads_of_one_new_document_serialize(warehouse: str, conn, monkeypatch) -> None:
    """Two runs load the same new document at once (CAISO: each download's zip differs, so the
    checksums differ). The second waits for the first and is then a revision of it: the rows are
    exactly the second version's. Before, both took the document for new, the second's upsert
    left the first version's extra rows behind and ingest_log still counted a revision."""
    first = month_rows("oasis.zip", 7, 5.0, n_loc=3)
    second = month_rows("oasis.zip", 7, 6.0, n_loc=2)
    a_in_copy, seen = _gate_copies(warehouse, monkeypatch)
    errors: list[BaseException] = []

    def run(app: str, table: pa.Table, checksum: str) -> None:
        try:
            with psycopg.connect(warehouse, application_name=app) as c:
                load_batch(c, iso="rev", dataset="oasis", schema=LMP, table=table,
                           documents=[doc("oasis-2024-07-10", "oasis.zip", checksum, table)])
        except BaseException as exc:
            errors.append(exc)

    _race(run, ("load-A", first, "zip1"), ("load-B", second, "zip2"), a_in_copy)
    assert not errors, errors
    assert seen == ["waits on advisory"]
    assert stored(conn) == {7: {6.0, 7.0}}
    log = conn.execute("SELECT revision, checksum, rows FROM ingest_log WHERE iso = 'rev'").fetchall()
    conn.commit()
    assert log == [(2, "zip2", 8)]


def test_overlapping_loads_of_different_documents_wait_for_each_other(warehouse: str, conn, monkeypatch) -> None:
    """A real-time run and a daily run over the same hours (different documents, same keys): the
    second waits on the first's (table, ISO, month) lock before it writes anything, so their
    COPYs never interleave (the interleaving that can deadlock)."""
    daily = month_rows("daily.csv", 8, 1.0)
    realtime = month_rows("rt.csv", 8, 2.0)
    a_in_copy, seen = _gate_copies(warehouse, monkeypatch)

    def run(app: str, table: pa.Table, doc_id: str) -> None:
        with psycopg.connect(warehouse, application_name=app) as c:
            load_batch(c, iso="rev", dataset="lmp", schema=LMP, table=table,
                       documents=[doc(doc_id, table.column("source")[0].as_py(), doc_id, table)])

    _race(run, ("load-A", daily, "daily"), ("load-B", realtime, "rt"), a_in_copy)
    assert seen == ["waits on advisory"]
    assert stored(conn) == {8: {2.0, 3.0, 4.0}}
