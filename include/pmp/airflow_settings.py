"""``airflow_settings.yaml`` (Astro format): the one declaration of local connections and pools.

Used three ways: ``astro dev start`` reads it natively; the local scripts import it into an
Airflow metadata DB (``pmp airflow-settings import``); tests and the CLI turn it into
``AIRFLOW_CONN_*`` environment variables (``pmp airflow-settings env``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pmp.settings import data_file

# The repository's file in a checkout; its copy (package data) in an installed wheel.
SETTINGS_FILE = data_file("airflow_settings.yaml")


def read(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no airflow_settings.yaml (a wheel ships it as pmp/_data/)")
    return yaml.safe_load(path.read_text())["airflow"]


# The loopback ports airflow_settings.yaml names (local defaults) and the variables the local
# scripts move them with (scripts/services.sh: PMP_PG_PORT, PMP_S3_PORT; scripts/demo.sh and
# `pmp simulate`: PMP_SIM_PORT). A checkout that runs its own simulator on another port gets
# connections that follow it, instead of requests to another checkout's simulator.
LOCAL_PORTS: dict[int, str] = {55432: "PMP_PG_PORT", 58333: "PMP_S3_PORT", 58080: "PMP_SIM_PORT"}


def _moved_port(port: int) -> int:
    value = os.environ.get(LOCAL_PORTS.get(port, ""), "").strip()
    if not value:
        return port
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{LOCAL_PORTS[port]}={value!r}: not a TCP port")
    return int(value)


def _local(value: Any) -> Any:
    """``value`` with each loopback URL's port moved as :data:`LOCAL_PORTS` says."""
    if isinstance(value, dict):
        return {k: _local(v) for k, v in value.items()}
    if isinstance(value, str):
        return _LOOPBACK_URL.sub(lambda m: m.group(0).replace(m.group(1), str(_moved_port(int(m.group(1))))), value)
    return value


def connections(path: Path = SETTINGS_FILE, *, moved: bool = True) -> dict[str, dict[str, Any]]:
    """The declared connections, their loopback ports moved by the local port variables
    (``moved=False``: exactly as declared)."""
    out = {}
    for c in read(path).get("connections") or []:
        port = c.get("conn_port")
        if moved and port not in (None, "") and c.get("conn_host") in ("127.0.0.1", "localhost"):
            port = _moved_port(int(port))
        conn = {
            "conn_type": c["conn_type"],
            "host": c.get("conn_host"),
            "schema": c.get("conn_schema"),
            "login": c.get("conn_login"),
            "password": c.get("conn_password"),
            "port": port,
            "extra": _local(c.get("conn_extra") or {}) if moved else c.get("conn_extra") or {},
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


# Inside `astro dev` (docker-compose.override.yml) the local services are containers reached by
# service name: (loopback port here) -> (service, port in the compose network).
ASTRO_SERVICES: dict[int, tuple[str, int]] = {
    55432: ("timescaledb", 5432),  # scripts/services.sh PostgreSQL + TimescaleDB
    58333: ("seaweedfs", 8333),  # scripts/services.sh SeaweedFS S3
    58080: ("simulator", 58080),  # pmp simulate
}
_LOOPBACK_URL = re.compile(r"//(?:127\.0\.0\.1|localhost):(\d+)")


def for_astro(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    """The settings with every loopback host and URL pointed at its ``astro dev`` service, for
    ``astro dev start --settings-file`` (127.0.0.1 inside a container is the container itself).
    A loopback address without a service raises, so a new local service cannot be forgotten."""

    def service(port: int, where: str) -> tuple[str, int]:
        if port not in ASTRO_SERVICES:
            raise ValueError(f"{where}: loopback port {port} has no astro dev service (ASTRO_SERVICES)")
        return ASTRO_SERVICES[port]

    def urls(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: urls(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, str):
            return _LOOPBACK_URL.sub(lambda m: "//{}:{}".format(*service(int(m.group(1)), where)), value)
        return value

    doc = yaml.safe_load(path.read_text())
    for c in doc["airflow"].get("connections") or []:
        where = f"connection {c['conn_id']}"
        if c.get("conn_host") in ("127.0.0.1", "localhost"):
            c["conn_host"], c["conn_port"] = service(int(c["conn_port"]), where)
        c["conn_extra"] = urls(c.get("conn_extra") or {}, where)
    return doc
