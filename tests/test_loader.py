"""Loader against the real TimescaleDB: idempotent, revisions replace, failures leave nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pytest
from helpers import cleared_connection

from pmp import db
from pmp.loader import DocumentLoad, UndeclaredMarketError, dedupe_latest, load_batch
from pmp.schema import LMP

pytestmark = pytest.mark.integration

T0 = datetime(2024, 11, 3, 5, tzinfo=UTC)


def lmp_rows(source: str, n_loc: int, n_int: int, price: float, published: datetime | None, market: str = "DAM"):
    rows = []
    for i in range(n_int):
        for loc in range(n_loc):
            start = T0 + timedelta(hours=i)
            rows.append(
                {"interval_start": start, "interval_end": start + timedelta(hours=1), "iso": "TEST",
                 "market": market, "location": f"L{loc:03d}", "location_type": "HU",
                 "lmp": price + loc + i / 100, "energy": None, "congestion": None, "loss": None, "ghg": None,
                 "published_at": published, "source": source}
            )
    return pa.Table.from_pylist(rows, schema=LMP.arrow)


def doc(source: str, checksum: str, rows: int, published: datetime | None) -> DocumentLoad:
    return DocumentLoad(source_id=source, source_name=source, checksum=checksum, rows=rows, published_at=published)


@pytest.fixture
def conn(warehouse: str):
    yield from cleared_connection(warehouse, "test")


def snapshot(conn) -> list[tuple]:
    rows = conn.execute(
        "SELECT iso, market, location, interval_start, interval_end, lmp, published_at, source FROM lmp"
        " WHERE iso = 'TEST' ORDER BY 1, 2, 3, 4"
    ).fetchall()
    conn.commit()
    return rows


def test_migrate_is_idempotent_and_makes_hypertables(conn) -> None:
    again = db.migrate(conn)
    assert again.applied == [] and "001_standard_schema.sql" in again.skipped
    hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
    assert {"lmp", "ancillary_services", "load", "fuel_mix"} <= hypertables
    assert "compression skipped" in again.timescale or "compression after" in again.timescale
    conn.commit()


def test_load_twice_is_identical(conn) -> None:
    pub = datetime(2024, 11, 2, 18, tzinfo=UTC)
    table = lmp_rows("docA", 5, 25, 20.0, pub)
    first = load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=table,
                       documents=[doc("docA", "c1", 125, pub)])
    assert first.path == "copy" and first.rows == 125
    before = snapshot(conn)
    second = load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=table,
                        documents=[doc("docA", "c1", 125, pub)])
    assert second.path == "upsert"
    assert snapshot(conn) == before
    assert len(before) == 125
    log = conn.execute("SELECT revision, rows FROM ingest_log WHERE iso='test' AND source_id='docA'").fetchall()
    assert log == [(1, 125)]
    conn.commit()


def test_revision_replaces_rows_and_keeps_lineage(conn) -> None:
    pub = datetime(2024, 11, 2, 18, tzinfo=UTC)
    load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=lmp_rows("docA", 4, 3, 20.0, pub),
               documents=[doc("docA", "c1", 12, pub)])
    later = pub + timedelta(hours=2)
    revised = lmp_rows("docA", 3, 3, 99.0, later)  # one location dropped in the revision
    result = load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=revised,
                        documents=[doc("docA", "c2", 9, later)])
    assert result.revised == ["docA"]
    rows = snapshot(conn)
    assert len(rows) == 9 and all(r[5] >= 99.0 for r in rows)
    rev, prev = conn.execute(
        "SELECT revision, previous_checksums FROM ingest_log WHERE iso='test' AND source_id='docA'"
    ).fetchone()
    assert (rev, prev) == (2, ["c1"])
    conn.commit()


def test_older_publication_never_overwrites_newer(conn) -> None:
    new, old = datetime(2024, 11, 3, 12, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC)
    load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=lmp_rows("new", 2, 2, 50.0, new),
               documents=[doc("new", "n", 4, new)])
    load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=lmp_rows("old", 2, 2, 10.0, old),
               documents=[doc("old", "o", 4, old)])
    assert {r[7] for r in snapshot(conn)} == {"new"}


def test_undated_rows_never_overwrite_dated_ones(conn) -> None:
    """A publication without a time (NULL ``published_at``) can not prove itself newer: it never
    replaces a dated row, is replaced by any dated one, and replaces only undated rows (a re-run)."""
    final = datetime(2024, 11, 5, 15, tzinfo=UTC)

    def load(source: str, price: float, published: datetime | None, market: str) -> None:
        load_batch(conn, iso="test", dataset="lmp", schema=LMP, table=lmp_rows(source, 2, 1, price, published, market),
                   documents=[doc(source, source, 2, published)])

    def stored(market: str) -> list[tuple]:
        return [(r[5], r[6], r[7]) for r in snapshot(conn) if r[1] == market]

    load("final", 50.0, final, "RT60M")
    load("undated", 10.0, None, "RT60M")  # e.g. a prelim whose stamp could not be read
    assert stored("RT60M") == [(50.0, final, "final"), (51.0, final, "final")]
    load("u1", 10.0, None, "RT5M")
    load("u2", 20.0, None, "RT5M")  # undated over undated: replaced (a re-run)
    assert stored("RT5M") == [(20.0, None, "u2"), (21.0, None, "u2")]
    load("dated", 30.0, final, "RT5M")  # any dated row replaces an undated one
    load("u3", 40.0, None, "RT5M")
    assert stored("RT5M") == [(30.0, final, "dated"), (31.0, final, "dated")]


def test_failure_mid_load_leaves_nothing(conn) -> None:
    pub = datetime(2024, 11, 2, 18, tzinfo=UTC)
    good = lmp_rows("docA", 50, 24, 20.0, pub)
    bad = lmp_rows("docB", 50, 24, 20.0, pub, market="BOGUS")  # a market no registry entry declares
    table = pa.concat_tables([good, bad])
    with pytest.raises(UndeclaredMarketError, match=r"test\.lmp_dam: lmp rows with market 'BOGUS'.*declared: DAM"):
        load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=table,
                   documents=[doc("docA", "a", 1200, pub), doc("docB", "b", 1200, pub)])
    assert snapshot(conn) == []
    assert conn.execute("SELECT count(*) FROM ingest_log WHERE iso='test'").fetchone()[0] == 0
    conn.commit()
    # and the same batch, fixed, loads on re-run
    load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=good,
               documents=[doc("docA", "a", 1200, pub)])
    assert len(snapshot(conn)) == 1200


def test_database_failure_mid_copy_leaves_nothing(conn) -> None:
    """A row the database refuses (interval_end not after interval_start) fails the COPY half-way:
    the whole batch rolls back, ingest_log included."""
    pub = datetime(2024, 11, 2, 18, tzinfo=UTC)
    good = lmp_rows("docA", 50, 24, 20.0, pub)
    bad = lmp_rows("docB", 2, 1, 20.0, pub).to_pylist()
    for row in bad:
        row["location"], row["interval_end"] = "LBAD" + row["location"], row["interval_start"]
    table = pa.concat_tables([good, pa.Table.from_pylist(bad, schema=LMP.arrow)])
    with pytest.raises(psycopg.errors.CheckViolation):
        load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=table,
                   documents=[doc("docA", "a", 1200, pub), doc("docB", "b", 2, pub)])
    assert snapshot(conn) == []
    assert conn.execute("SELECT count(*) FROM ingest_log WHERE iso='test'").fetchone()[0] == 0


def test_prices_round_trip_exactly(conn) -> None:
    pub = datetime(2024, 11, 2, 18, tzinfo=UTC)
    values = [0.1 + 0.2, 28.4, -12.34567, 1e-5, 9117.83, 123456.78901, 2.0**-30]
    rows = lmp_rows("docP", len(values), 1, 0.0, pub)
    rows = rows.set_column(rows.schema.get_field_index("lmp"), "lmp", pa.array(values, pa.float64()))
    load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=rows, documents=[doc("docP", "p", 7, pub)])
    assert [r[5] for r in snapshot(conn)] == values


def test_dedupe_latest_keeps_newest_publication() -> None:
    a = lmp_rows("a", 2, 2, 1.0, datetime(2024, 1, 1, tzinfo=UTC))
    b = lmp_rows("b", 2, 2, 2.0, datetime(2024, 1, 2, tzinfo=UTC))
    out = dedupe_latest(pa.concat_tables([b, a]), LMP.key)
    assert out.num_rows == 4 and set(out.column("source").to_pylist()) == {"b"}
    undated = lmp_rows("u", 2, 2, 3.0, None)  # inside one batch too, a dated row wins over an undated one
    for tables in ([a, undated], [undated, a]):
        out = dedupe_latest(pa.concat_tables(tables), LMP.key)
        assert out.num_rows == 4 and set(out.column("source").to_pylist()) == {"a"}


def test_timestamps_round_trip_exactly(conn) -> None:
    """The loader formats each distinct instant once: every row still gets its own instant, to the
    microsecond, NULL stays NULL, and tables made of several chunks keep their row order."""
    published = [datetime(2024, 11, 3, 6, 59, 59, 999_999, tzinfo=UTC), None,
                 datetime(2019, 1, 1, 0, 0, 0, 1, tzinfo=UTC)]
    chunks = []
    for k, pub in enumerate(published):
        t = lmp_rows(f"docT{k}", 3, 2, float(k), pub)
        starts = [T0 + timedelta(hours=i, microseconds=k) for i in range(2) for _ in range(3)]
        t = t.set_column(0, "interval_start", pa.array(starts, LMP.arrow.field("interval_start").type))
        chunks.append(t.set_column(t.schema.get_field_index("location"), "location",
                                   pa.array([f"L{k}{j}" for j in range(6)])))
    table = pa.concat_tables(chunks)
    assert table.column("interval_start").num_chunks == 3
    load_batch(conn, iso="test", dataset="lmp_dam", schema=LMP, table=table,
               documents=[doc("docT", "t", table.num_rows, None)])
    got = {(r[2], r[3], r[6]) for r in snapshot(conn)}
    want = set(zip(table.column("location").to_pylist(), table.column("interval_start").to_pylist(),
                   table.column("published_at").to_pylist(), strict=True))
    assert got == want and len(got) == 18
