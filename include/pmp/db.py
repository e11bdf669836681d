"""Warehouse database: connections, ordered migrations and TimescaleDB setup."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pmp.connections import postgres_connection
from pmp.settings import data_file, settings

log = logging.getLogger(__name__)

# Chunk intervals sized for the data volume: node-level 5-minute prices of all ISOs are a few
# million rows a day, so lmp gets daily chunks; the other tables are 10-100x smaller.
HYPERTABLES: dict[str, str] = {
    "lmp": "1 day",
    "ancillary_services": "7 days",
    "load": "7 days",
    "fuel_mix": "30 days",
}
# Compress chunks older than this (only with the Timescale-licensed edition).
COMPRESS_AFTER = "30 days"


def migrations_dir() -> Path:
    """The migrations: the repository's ``sql/``, or its copy in an installed wheel."""
    return data_file("sql")


SQL_DIR = migrations_dir()


@contextmanager
def connect(conn_id: str | None = None, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection to the warehouse (``PostgresHook`` of the ``tsdb`` connection);
    committed when the block succeeds, rolled back when it raises, closed either way."""
    conn, _ = postgres_connection(conn_id or settings().db_conn_id, autocommit=autocommit)
    with conn:
        yield conn


_MIGRATED: set[str] = set()


@contextmanager
def connect_ready(conn_id: str | None = None) -> Iterator[psycopg.Connection]:
    """A connection to a warehouse whose schema is current (migrated once per process and database)."""
    conn, target = postgres_connection(conn_id or settings().db_conn_id)
    with conn:
        if target not in _MIGRATED:
            migrate(conn)
            _MIGRATED.add(target)
        yield conn


@dataclass
class MigrationReport:
    applied: list[str]
    skipped: list[str]
    timescale: str


def _migration_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.glob("[0-9][0-9][0-9]_*.sql"))
    if not files:
        raise FileNotFoundError(
            f"no migrations (NNN_*.sql) in {directory}: a checkout keeps them in sql/, a wheel in pmp/_data/sql "
            "(build it with scripts/package.sh or pip wheel .)"
        )
    return files


def migrate(conn: psycopg.Connection, sql_dir: Path | None = None) -> MigrationReport:
    """Apply pending migrations in order, one transaction each, then set up TimescaleDB."""
    # One migrator at a time (parallel tasks may call migrate on first use), from the very first
    # statement: CREATE TABLE IF NOT EXISTS is not safe against a concurrent create (two first tasks
    # of a new deployment failed with a UniqueViolation on pg_type for pmp_migrations).
    conn.execute("SELECT pg_advisory_lock(hashtext('pmp_migrations'))")
    conn.commit()
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS pmp_migrations (
                   version text PRIMARY KEY, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        conn.commit()
        done = dict(conn.execute("SELECT version, checksum FROM pmp_migrations").fetchall())
        applied, skipped = [], []
        for path in _migration_files(sql_dir or migrations_dir()):
            text = path.read_text()
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if path.name in done:
                if done[path.name] != checksum:
                    raise RuntimeError(
                        f"migration {path.name} changed after it was applied; add a new migration instead"
                    )
                skipped.append(path.name)
                continue
            with conn.transaction():
                conn.execute(text)  # type: ignore[arg-type]
                conn.execute(
                    "INSERT INTO pmp_migrations (version, checksum) VALUES (%s, %s)", (path.name, checksum)
                )
            log.info("applied migration %s", path.name)
            applied.append(path.name)
        conn.commit()
        status = setup_timescale(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext('pmp_migrations'))")
        conn.commit()
    return MigrationReport(applied, skipped, status)


def setup_timescale(conn: psycopg.Connection) -> str:
    """Hypertables (and compression where licensed). Idempotent; returns a status line."""
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not available:
        msg = "WARNING: TimescaleDB extension not available; tables stay plain PostgreSQL tables"
        log.warning(msg)
        return msg
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname='timescaledb'").fetchone()[0]
    for table, chunk in HYPERTABLES.items():
        conn.execute(
            "SELECT create_hypertable(%s::regclass, by_range('interval_start', %s::interval),"
            " if_not_exists => true, migrate_data => true)",
            (table, chunk),
        )
    license_ = conn.execute("SHOW timescaledb.license").fetchone()[0]
    if license_ != "timescale":
        msg = (
            f"TimescaleDB {version} ({license_} license): hypertables ready; compression skipped "
            "because this edition does not include it"
        )
    else:
        for table in HYPERTABLES:
            segment = "iso"
            conn.execute(
                f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segment}')"
            )
            conn.execute(
                "SELECT add_compression_policy(%s::regclass, %s::interval, if_not_exists => true)",
                (table, COMPRESS_AFTER),
            )
        msg = f"TimescaleDB {version} (timescale license): hypertables and compression after {COMPRESS_AFTER}"
    conn.commit()
    log.info(msg)
    return msg
