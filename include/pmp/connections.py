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


def postgres_dsn(conn_id: str) -> str:
    """psycopg connection string for a Postgres connection id, or ``PMP_PG_DSN``."""
    import os

    conn = get_connection(conn_id)
    if conn is None:
        dsn = os.environ.get("PMP_PG_DSN")
        if not dsn:
            raise LookupError(
                f"no Airflow connection {conn_id!r} and no PMP_PG_DSN: configure the warehouse database"
            )
        return dsn
    mask(conn.password)
    from psycopg.conninfo import make_conninfo

    extra = conn.extra_dejson or {}
    params: dict[str, Any] = {
        "host": conn.host or "127.0.0.1",
        "port": conn.port or 5432,
        "dbname": conn.schema or "postgres",
        "user": conn.login,
        "password": conn.password,
        "application_name": "pmp",
    }
    for key in ("sslmode", "sslrootcert", "connect_timeout", "options"):
        if key in extra:
            params[key] = extra[key]
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})
