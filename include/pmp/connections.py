"""Connection lookup shared by hooks, the loader and the CLI.

Airflow connections are the source of truth (``AIRFLOW_CONN_*`` env vars, the metadata DB
or a secrets backend). Secrets read here are registered with Airflow's secrets masker so
they are redacted from task logs.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def get_connection(conn_id: str) -> Any | None:
    """Return the Airflow connection or None when it is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def mask(*secrets: str | None) -> None:
    """Register secrets with Airflow's masker (no-op for empty values)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow is a hard dependency
        return
    for secret in secrets:
        if secret and len(secret) >= 5:
            mask_secret(secret)


def mask_url(url: str | None) -> None:
    """Register a URL that may carry a token (a webhook's path or query, its user info) with the
    masker: the whole URL and each secret-bearing part."""
    if not url:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    mask(url, parts.password, parts.query, parts.path if len(parts.path.strip("/")) >= 8 else None)


def postgres_connection(conn_id: str, *, autocommit: bool = False) -> tuple[Any, tuple[str, ...]]:
    """An open psycopg 3 connection for a Postgres connection id, and the database it reaches.

    Through the provider's ``PostgresHook`` (psycopg 3 with SQLAlchemy 2, as Airflow 3.3 installs
    it): every extra the hook knows works, e.g. ``sslmode``, ``options`` or ``iam`` (RDS IAM
    tokens, with ``aws_conn_id``). Without such a connection, ``PMP_PG_DSN`` (a libpq string) is
    used as it is.
    """
    import psycopg

    from pmp.validate import setting

    if get_connection(conn_id) is None:
        dsn = setting("PMP_PG_DSN")
        if not dsn:
            raise LookupError(
                f"no Airflow connection {conn_id!r} and no PMP_PG_DSN: configure the warehouse database"
            )
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        mask(dsn, params.get("password"))  # the whole string and its password: never in a task log
        target = ("dsn", str(params.get("host")), str(params.get("port")), str(params.get("dbname")))
        return psycopg.connect(dsn, autocommit=autocommit), target

    from airflow.providers.postgres.hooks.postgres import USE_PSYCOPG3, PostgresHook

    if not USE_PSYCOPG3:  # pragma: no cover - the constraints install psycopg 3 and SQLAlchemy 2
        raise RuntimeError("PostgresHook is not on psycopg 3 (needs psycopg and SQLAlchemy >= 2)")
    hook = PostgresHook(postgres_conn_id=conn_id)
    c = hook.connection
    mask(c.password)
    conn = hook.get_conn()
    if not isinstance(conn, psycopg.Connection):  # pragma: no cover - guarded by USE_PSYCOPG3
        raise TypeError(f"PostgresHook returned {type(conn).__name__}, not a psycopg 3 connection")
    conn.autocommit = autocommit
    return conn, (conn_id, str(c.host), str(c.port), str(c.schema))
