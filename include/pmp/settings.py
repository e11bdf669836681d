"""Runtime settings: every knob is an environment variable with a local default.

Credentials are never settings: they come from Airflow connections (or the AWS/psycopg
default chains) and are resolved inside tasks, never at DAG-parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pmp.validate import setting

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]
# A source checkout (include/pmp of a repository), as opposed to an installed wheel.
IN_CHECKOUT = (REPO_ROOT / "include" / "pmp") == PACKAGE_DIR and (REPO_ROOT / "pyproject.toml").is_file()


def data_file(name: str) -> Path:
    """A file of the repository root that the wheel ships as package data (``sql``,
    ``airflow_settings.yaml``): ``pmp/_data/<name>`` in an installed wheel (copied there at build
    time by setup.py), the repository's own file in a checkout (editable installs, the tests)."""
    return REPO_ROOT / name if IN_CHECKOUT else PACKAGE_DIR / "_data" / name


def default_home() -> Path:
    return REPO_ROOT / ".pmp" if IN_CHECKOUT else Path.home() / ".pmp"


def pmp_home() -> Path:
    """Local state (file staging, logs): ``PMP_HOME``; by default ``.pmp`` in a checkout, ``~/.pmp``
    for an installed wheel."""
    return Path(setting("PMP_HOME"))


@dataclass(frozen=True)
class Settings:
    staging_url: str
    db_conn_id: str
    s3_conn_id: str

    @classmethod
    def from_env(cls) -> Settings:
        # validated (pmp.validate.SETTINGS): a bad value is one sentence naming it
        return cls(
            staging_url=setting("PMP_STAGING_URL"),
            db_conn_id=setting("PMP_DB_CONN_ID"),
            s3_conn_id=setting("PMP_S3_CONN_ID"),
        )


def settings() -> Settings:
    return Settings.from_env()
