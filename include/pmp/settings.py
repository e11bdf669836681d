"""Runtime settings: every knob is an environment variable with a local default.

Credentials are never settings: they come from Airflow connections (or the AWS/psycopg
default chains) and are resolved inside tasks, never at DAG-parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def pmp_home() -> Path:
    return Path(os.environ.get("PMP_HOME", REPO_ROOT / ".pmp"))


@dataclass(frozen=True)
class Settings:
    staging_url: str
    db_conn_id: str
    s3_conn_id: str

    @classmethod
    def from_env(cls) -> Settings:
        default_staging = (pmp_home() / "staging").as_uri() + "/"
        return cls(
            staging_url=os.environ.get("PMP_STAGING_URL", default_staging),
            db_conn_id=os.environ.get("PMP_DB_CONN_ID", "tsdb"),
            s3_conn_id=os.environ.get("PMP_S3_CONN_ID", "pmp_s3"),
        )


def settings() -> Settings:
    return Settings.from_env()
