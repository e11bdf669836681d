"""Warehouse connections go through the postgres provider's PostgresHook (psycopg 3), on the real
PostgreSQL: every extra the hook understands reaches the server, PMP_PG_DSN stands in when no
connection exists, and the migrations are found where a checkout or a wheel keeps them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from pmp import db
from pmp.settings import IN_CHECKOUT, REPO_ROOT

pytestmark = pytest.mark.integration


def test_connections_come_from_postgres_hook_with_its_extras(private_warehouse: str, monkeypatch) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_TSDB"])
    conn.setdefault("extra", {})["options"] = "-c application_name=pmp-hook-test -c statement_timeout=12345"
    monkeypatch.setenv("AIRFLOW_CONN_TSDB", json.dumps(conn))
    with db.connect() as c:
        assert isinstance(c, psycopg.Connection) and not c.autocommit
        assert c.execute("SHOW application_name").fetchone()[0] == "pmp-hook-test"
        assert c.execute("SHOW statement_timeout").fetchone()[0] == "12345ms"
        assert c.execute("SELECT current_database()").fetchone()[0] == conn["schema"]
    with db.connect(autocommit=True) as c:
        assert c.autocommit
    with db.connect_ready() as c:  # migrates the private database on first use
        assert c.execute("SELECT count(*) FROM pmp_migrations").fetchone()[0] == len(list(db.migrations_dir().glob("*.sql")))


def test_a_block_that_raises_rolls_back(private_warehouse: str) -> None:
    with db.connect() as c:
        c.execute("CREATE TABLE hook_tx (x int)")
    with pytest.raises(RuntimeError), db.connect() as c:
        c.execute("INSERT INTO hook_tx VALUES (1)")
        raise RuntimeError("boom")
    with db.connect() as c:
        assert c.execute("SELECT count(*) FROM hook_tx").fetchone()[0] == 0


def test_pmp_pg_dsn_without_a_connection(private_warehouse: str, monkeypatch) -> None:
    monkeypatch.setenv("PMP_DB_CONN_ID", "pmp_no_such_connection")
    monkeypatch.setenv("PMP_PG_DSN", private_warehouse)
    with db.connect() as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    monkeypatch.delenv("PMP_PG_DSN")
    with pytest.raises(LookupError, match="pmp_no_such_connection"):
        db.connect().__enter__()


def test_migrations_are_the_checkouts_sql_dir(tmp_path: Path, private_warehouse: str) -> None:
    assert IN_CHECKOUT and db.migrations_dir() == REPO_ROOT / "sql"
    with db.connect() as c, pytest.raises(FileNotFoundError, match="no migrations"):
        db.migrate(c, tmp_path)
