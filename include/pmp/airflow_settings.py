"""``airflow_settings.yaml`` (Astro format): the one declaration of local connections and pools.

Used three ways: ``astro dev start`` reads it natively; the local scripts import it into an
Airflow metadata DB (``pmp airflow-settings import``); tests and the CLI turn it into
``AIRFLOW_CONN_*`` environment variables (``pmp airflow-settings env``).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pmp.settings import REPO_ROOT

SETTINGS_FILE = REPO_ROOT / "airflow_settings.yaml"


def read(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())["airflow"]


def connections(path: Path = SETTINGS_FILE) -> dict[str, dict[str, Any]]:
    out = {}
    for c in read(path).get("connections") or []:
        conn = {
            "conn_type": c["conn_type"],
            "host": c.get("conn_host"),
            "schema": c.get("conn_schema"),
            "login": c.get("conn_login"),
            "password": c.get("conn_password"),
            "port": c.get("conn_port"),
            "extra": c.get("conn_extra") or {},
        }
        out[c["conn_id"]] = {k: v for k, v in conn.items() if v not in (None, "")}
    return out


def pools(path: Path = SETTINGS_FILE) -> dict[str, dict[str, Any]]:
    return {
        p["pool_name"]: {"slots": int(p["pool_slot"]), "description": p.get("pool_description", ""),
                         "include_deferred": False}
        for p in read(path).get("pools") or []
    }


def env(path: Path = SETTINGS_FILE) -> dict[str, str]:
    return {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(c) for cid, c in connections(path).items()}


def import_into_airflow(path: Path = SETTINGS_FILE, airflow: str = "airflow") -> None:
    """Create/update pools and connections in the configured Airflow metadata DB."""
    with tempfile.TemporaryDirectory() as tmp:
        pools_file = Path(tmp) / "pools.json"
        pools_file.write_text(json.dumps(pools(path)))
        subprocess.run([airflow, "pools", "import", str(pools_file)], check=True, stdout=subprocess.DEVNULL)
        conns_file = Path(tmp) / "connections.json"
        conns_file.write_text(json.dumps(connections(path)))
        subprocess.run(
            [airflow, "connections", "import", "--overwrite", str(conns_file)],
            check=True, stdout=subprocess.DEVNULL,
        )


def shell_exports(path: Path = SETTINGS_FILE) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env(path).items())
