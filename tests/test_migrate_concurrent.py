"""Migrations on a new warehouse from several first tasks at once (a new deployment's first runs)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from pmp import db

pytestmark = pytest.mark.integration


def test_concurrent_first_migrations_all_succeed(private_warehouse: str) -> None:
    """Eight connections migrate an empty database at the same moment: every one succeeds and
    each migration is applied once (the advisory lock covers the bookkeeping table's creation)."""
    n = 8
    barrier, errors, reports = threading.Barrier(n), [], []

    def run() -> None:
        with psycopg.connect(private_warehouse) as conn:
            barrier.wait()
            try:
                reports.append(db.migrate(conn))
            except Exception as exc:  # collected and asserted below
                errors.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert len(reports) == n
    applied = [name for r in reports for name in r.applied]
    assert sorted(applied) == sorted(set(applied)) and applied  # each migration once, by one of them
    with psycopg.connect(private_warehouse) as conn:
        (count,) = conn.execute("SELECT count(*) FROM pmp_migrations").fetchone()
    assert count == len(applied)
