"""Flat cost as the warehouse grows (issue 15): the plans PostgreSQL runs, read from the real
TimescaleDB on a hypertable of several daily chunks.

* a revision's DELETE and the upsert's INSERT .. ON CONFLICT touch only the chunks of the
  document's time range (the loader's own statements, captured with auto_explain while it runs);
* the reads users run (one location over a long window; all hubs of one day, through the read API
  and the hub_prices view) use an index on every chunk they read, never a sequential scan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pmp.loader import DocumentLoad, load_batch
from pmp.read import Warehouse, _filters
from pmp.schema import LMP, conform

pytestmark = pytest.mark.integration

DAY0 = datetime(2024, 3, 1, 6, tzinfo=UTC)  # ERCOT market days start at 06:00 UTC (CST)
DAYS = 8
NODES = [(f"N{i:04d}_RN", "RN") for i in range(300)]
HUBS = [("HB_HOUSTON", "HU"), ("HB_NORTH", "HU"), ("HB_BUSAVG", "SH")]
POINTS = NODES + HUBS + [("LZ_WEST", "LZ"), ("LZ_NORTH", "LZ")]


def day_rows(day: int, price: float, source: str, published: datetime) -> pa.Table:
    starts = [DAY0 + timedelta(days=day, minutes=15 * k) for k in range(96)]
    n = len(starts) * len(POINTS)
    return conform(pa.table({
        "interval_start": pa.array([s for s in starts for _ in POINTS], LMP.arrow.field("interval_start").type),
        "interval_end": pa.array([s + timedelta(minutes=15) for s in starts for _ in POINTS],
                                 LMP.arrow.field("interval_end").type),
        "iso": ["ERCOT"] * n, "market": ["RT15M"] * n,
        "location": [p for _ in starts for p, _t in POINTS], "location_type": [t for _ in starts for _p, t in POINTS],
        "lmp": [price + i % 97 for i in range(n)],
        **{c: pa.nulls(n, pa.float64()) for c in ("energy", "congestion", "loss", "ghg")},
        "published_at": pa.array([published] * n, LMP.arrow.field("published_at").type),
        "source": [source] * n,
    }), LMP)


def doc(day: int, checksum: str = "v1") -> DocumentLoad:
    return DocumentLoad(f"plan-day-{day}", f"rt15m_day{day}.csv", checksum, 96 * len(POINTS))


@pytest.fixture(scope="module")
def warehouse_with_chunks(services: dict) -> Iterator[str]:
    """A database of this module's own: eight market days of 15-minute prices at 305 points, one
    document per day, spread over nine daily chunks, analyzed."""
    import uuid

    from conftest import migrated_database

    with migrated_database(f"pmp_plans_{uuid.uuid4().hex[:8]}") as dsn:
        with psycopg.connect(dsn) as conn:
            for d in range(DAYS):
                load_batch(conn, iso="ercot", dataset="lmp_rt15m", schema=LMP,
                           table=day_rows(d, 20.0, doc(d).source_name, DAY0), documents=[doc(d)])
            conn.execute("ANALYZE lmp")
            conn.commit()
        yield dsn


@pytest.fixture
def conn(warehouse_with_chunks: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_with_chunks) as c:
        yield c


def chunks_overlapping(conn: psycopg.Connection, lo: datetime, hi: datetime) -> set[str]:
    rows = conn.execute(
        "SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_name = 'lmp'"
        " AND range_start <= %s AND range_end > %s", (hi, lo)).fetchall()
    conn.commit()
    return {r[0] for r in rows}


def all_chunks(conn: psycopg.Connection) -> set[str]:
    return chunks_overlapping(conn, datetime(1970, 1, 2, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def captured_plans(conn: psycopg.Connection) -> list[str]:
    """Plans of every statement the connection runs from now on (auto_explain, sent to the client
    as notices)."""
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    conn.execute("SET auto_explain.log_min_duration = 0")
    conn.execute("SET auto_explain.log_level = 'notice'")
    conn.execute("SET client_min_messages = 'notice'")
    conn.commit()
    return plans


def test_revision_deletes_only_in_the_chunks_of_its_time_range(conn) -> None:
    chunks = all_chunks(conn)
    assert len(chunks) >= DAYS  # a hypertable of several chunks
    plans = captured_plans(conn)
    day = 4
    result = load_batch(conn, iso="ercot", dataset="lmp_rt15m", schema=LMP,
                        table=day_rows(day, 30.0, doc(day).source_name, DAY0 + timedelta(days=30)),
                        documents=[doc(day, checksum="v2")])
    assert result.revised == [doc(day).source_id]
    deletes = [p for p in plans if "Delete on" in p]
    assert len(deletes) == 1, plans
    touched = set(re.findall(r"Delete on (_hyper_\d+_\d+_chunk)", deletes[0]))
    lo, hi = DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1) - timedelta(minutes=15)
    expected = chunks_overlapping(conn, lo, hi)
    assert touched == expected, deletes[0]
    assert len(expected) < len(chunks)
    n = conn.execute("SELECT count(*), min(lmp) FROM lmp WHERE source = %s", (doc(day).source_name,)).fetchone()
    assert n == (96 * len(POINTS), 30.0)  # the revision replaced every row of the day


def test_upsert_scans_no_chunk_of_the_hypertable(conn) -> None:
    """A re-published day under a new document id hits existing keys: the loader upserts through
    its staging table; the INSERT .. ON CONFLICT reads only the staging table (the conflict check
    probes the primary-key index of the one chunk each row goes to)."""
    plans = captured_plans(conn)
    day = 6
    result = load_batch(conn, iso="ercot", dataset="lmp_rt15m", schema=LMP,
                        table=day_rows(day, 40.0, "rt15m_day6_again.csv", DAY0 + timedelta(days=31)),
                        documents=[DocumentLoad("plan-day-6-again", "rt15m_day6_again.csv", "v1", 96 * len(POINTS))])
    assert result.path == "upsert"
    inserts = [p for p in plans if 'INSERT INTO "lmp"' in p]
    assert len(inserts) == 1, plans
    assert "Conflict Resolution: UPDATE" in inserts[0] and "_pmp_stage_lmp" in inserts[0], inserts[0]
    assert not re.search(r"_hyper_\d+_\d+_chunk", inserts[0]), inserts[0]
    assert conn.execute("SELECT count(*) FROM lmp WHERE source = 'rt15m_day6_again.csv' AND lmp >= 40").fetchone() \
        == (96 * len(POINTS),)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def chunk_scans(conn: psycopg.Connection, text: str, params: list[Any]) -> dict[str, str]:
    """Chunk -> the scan the planner picks for it (``Bitmap Heap Scan`` reads through an index too)."""
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) {text}", params).fetchone()[0]  # type: ignore[index]
    conn.commit()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return {n["Relation Name"]: n["Node Type"] for n in plan_nodes(plan[0]["Plan"])
            if n.get("Relation Name", "").startswith("_hyper_")}


INDEXED = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def read_sql(**kw: Any) -> tuple[str, list[Any]]:
    wh = Warehouse(now=DAY0 + timedelta(days=DAYS + 1))
    q = wh._query("lmp", "ercot", kw.pop("start"), kw.pop("end"), columns=tuple(LMP.columns), filters=_filters(**kw))
    text, params = q.sql()
    return text.replace("?", "%s"), params


def test_one_location_over_a_long_window_uses_an_index(conn) -> None:
    text, params = read_sql(start="2024-01-01", end="2025-01-01", location="HB_NORTH")  # every market
    scans = chunk_scans(conn, text, params)
    assert len(scans) >= DAYS
    assert set(scans.values()) <= INDEXED, scans


def test_all_hubs_of_one_day_use_an_index(conn) -> None:
    day = (DAY0 + timedelta(days=3)).date()
    text, params = read_sql(start=day, end=day + timedelta(days=1), location_type=("HU", "SH"))
    scans = chunk_scans(conn, text, params)
    assert 1 <= len(scans) <= 2, scans  # the market day's chunks only
    assert set(scans.values()) <= INDEXED, scans
    lo = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
    view = chunk_scans(conn, "SELECT * FROM hub_prices WHERE iso = %s AND interval_start >= %s AND interval_start < %s",
                       ["ERCOT", lo, lo + timedelta(days=1)])
    assert 1 <= len(view) <= 2 and set(view.values()) <= INDEXED, view


def test_a_revision_covering_less_removes_every_old_row(conn) -> None:
    """The DELETE is bounded by the range of the *previous* version (ingest_log), so a revision
    that covers less time leaves none of the old rows behind."""
    day = 7
    half = day_rows(day, 50.0, doc(day).source_name, DAY0 + timedelta(days=40))
    half = half.filter(pc.less(half.column("interval_start"),
                               pa.scalar(DAY0 + timedelta(days=day, hours=12), half.column("interval_start").type)))
    load_batch(conn, iso="ercot", dataset="lmp_rt15m", schema=LMP, table=half, documents=[doc(day, "v3")])
    got = conn.execute("SELECT count(*), min(lmp) FROM lmp WHERE source = %s", (doc(day).source_name,)).fetchone()
    bounds = conn.execute("SELECT rows_from, rows_to FROM ingest_log WHERE source_id = %s",
                          (doc(day).source_id,)).fetchone()
    conn.commit()
    assert got == (half.num_rows, 50.0)
    assert bounds == (DAY0 + timedelta(days=day), DAY0 + timedelta(days=day, hours=11, minutes=45))
