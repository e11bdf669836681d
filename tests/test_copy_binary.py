"""The loader's COPY formats against the real TimescaleDB: every value round-trips exactly.

The loader COPYs in PostgreSQL's binary format (pmp.loader._binary_chunks, the faster path: see
bench/load.py); the CSV text path stays for the side-by-side benchmark. Both must store the same
bits: doubles (signed zero, subnormals, the largest finite, NaN, infinities), microsecond
timestamps on both sides of PostgreSQL's 2000-01-01 origin and across DST changes, NULL versus
the empty string, non-ASCII text with quotes, commas and newlines, booleans and NULL booleans."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pytest

from pmp import db, loader
from pmp.loader import DocumentLoad, load_batch
from pmp.schema import LMP, LOAD, conform

pytestmark = pytest.mark.integration

DOUBLES = [0.1, -0.0, 0.0, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -123456.789012345678,
           math.nan, math.inf, -math.inf, None, 20.25, -1e-300]
STARTS = [
    datetime(1999, 12, 31, 23, 45, 0, 999_999, tzinfo=UTC),  # before PostgreSQL's epoch: negative microseconds
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2019, 1, 1, 6, tzinfo=UTC),
    datetime(2024, 3, 10, 7, 59, 59, 123_456, tzinfo=UTC),  # spring-forward night in Central time
    datetime(2024, 3, 10, 8, tzinfo=UTC),
    datetime(2024, 11, 3, 6, 0, 0, 1, tzinfo=UTC),  # the repeated (fall-back) hour
    datetime(2024, 11, 3, 7, tzinfo=UTC),
]
TEXTS = ["", "Ünïcödé — ✓", 'has "quotes", commas\nand a newline', "back\\slash\ttab", None, "HB_HOUSTON", "LZ_NORTH"]


def lmp_table() -> pa.Table:
    rows = []
    for i, price in enumerate(DOUBLES):
        start = STARTS[i % len(STARTS)] + timedelta(days=i // len(STARTS))
        rows.append({
            "interval_start": start, "interval_end": start + timedelta(minutes=15), "iso": "RT",
            "market": "RT15M", "location": f"L{i:02d}", "location_type": TEXTS[i % len(TEXTS)],
            "location_id": None if i % 3 else f"id,{i}", "lmp": price, "energy": DOUBLES[-1 - i],
            "congestion": None, "loss": -0.0, "ghg": None,
            "published_at": None if i % 4 == 0 else start + timedelta(minutes=17, microseconds=i),
            "source": TEXTS[(i + 1) % len(TEXTS)] or "src.csv",
        })
    return conform(pa.Table.from_pylist(rows), LMP)


def bits(v: float | None) -> bytes | None:
    return None if v is None else struct.pack(">d", v)


def same(a: object, b: object) -> bool:
    """Equal, doubles bit for bit (NaN equals NaN, -0.0 differs from 0.0)."""
    if isinstance(a, float) or isinstance(b, float):
        return bits(a) == bits(b)  # type: ignore[arg-type]
    return a == b


@pytest.fixture
def conn(warehouse: str):
    with psycopg.connect(warehouse) as c:
        db.migrate(c)
        yield c


@pytest.mark.parametrize("fmt", sorted(loader.COPY_FORMATS))
def test_lmp_values_round_trip_exactly(conn, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "COPY_FORMAT", fmt)
    iso = f"RT{fmt.upper()}"
    table = lmp_table()
    table = table.set_column(table.schema.get_field_index("iso"), "iso", pa.array([iso] * table.num_rows))
    conn.execute("DELETE FROM lmp WHERE iso = %s", (iso,))
    conn.commit()
    load_batch(conn, iso=iso.lower(), dataset="lmp_rt15m", schema=LMP, table=table,
               documents=[DocumentLoad(f"rt-{fmt}", "rt.csv", "c", table.num_rows)])
    cols = ", ".join(LMP.columns)
    got = conn.execute(f"SELECT {cols} FROM lmp WHERE iso = %s ORDER BY location", (iso,)).fetchall()
    conn.commit()
    want = [tuple(r[c] for c in LMP.columns) for r in table.sort_by("location").to_pylist()]
    assert len(got) == len(want) == len(DOUBLES)
    for g, w in zip(got, want, strict=True):
        bad = [(c, x, y) for c, x, y in zip(LMP.columns, g, w, strict=True) if not same(x, y)]
        assert not bad, f"{fmt}: stored differently (column, stored, loaded): {bad}"


def test_booleans_and_nulls_round_trip(conn) -> None:
    assert loader.COPY_FORMAT == "binary"  # the loader's path
    start = datetime(2024, 11, 3, 5, tzinfo=UTC)
    rows = [{"interval_start": start + timedelta(hours=i), "interval_end": start + timedelta(hours=i + 1),
             "iso": "RTB", "area": "NORTH", "kind": "forecast", "forecast_issued_at": start, "model": "E",
             "load_mw": DOUBLES[i], "in_use": [True, False, None][i % 3], "published_at": None, "source": "f.csv"}
            for i in range(6)]
    table = conform(pa.Table.from_pylist(rows), LOAD)
    conn.execute("DELETE FROM load WHERE iso = 'RTB'")
    conn.commit()
    load_batch(conn, iso="rtb", dataset="load_forecast", schema=LOAD, table=table,
               documents=[DocumentLoad("rtb", "f.csv", "c", 6)])
    got = conn.execute("SELECT load_mw, in_use, published_at FROM load WHERE iso = 'RTB' ORDER BY interval_start"
                       ).fetchall()
    conn.commit()
    assert [g[1] for g in got] == [True, False, None, True, False, None]
    assert [bits(g[0]) for g in got] == [bits(d) for d in DOUBLES[:6]]
    assert all(g[2] is None for g in got)


def test_binary_and_text_blocks_describe_the_same_rows(conn) -> None:
    """The two encoders, COPYed into two temporary tables, give identical rows (text compared as
    PostgreSQL prints them, so NaN, -0 and NULL are compared too)."""
    table = lmp_table()
    cols = ", ".join(LMP.columns)
    with conn.cursor() as cur:
        for fmt in loader.COPY_FORMATS:
            cur.execute(f"CREATE TEMP TABLE t_{fmt} (LIKE lmp INCLUDING DEFAULTS) ON COMMIT DROP")
            loader._copy(cur, psycopg.sql.Identifier(f"t_{fmt}"), LMP.columns, table, fmt)
        text = {fmt: cur.execute(f"SELECT ({cols})::text FROM t_{fmt} ORDER BY location").fetchall()
                for fmt in loader.COPY_FORMATS}
    conn.rollback()
    assert text["binary"] == text["csv"]
    assert len(text["binary"]) == len(DOUBLES)


def test_binary_copy_of_an_unknown_type_is_refused() -> None:
    with pytest.raises(TypeError, match="no encoding for Arrow type int8"):
        list(loader._binary_chunks(pa.table({"x": pa.array([1], pa.int8())})))
