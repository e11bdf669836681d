"""``pmp check-config``: a deployment's configuration checked before anything runs, one line per problem.

What is checked, for the DAGs this deployment builds (``PMP_DAGS``):

* every ``PMP_*`` environment variable (:data:`pmp.validate.SETTINGS`), misspelt setting names, and
  ``PMP_DAGS`` patterns that match no DAG;
* ``airflow_settings.yaml`` (the bundle's, or ``--settings-file``): YAML syntax (file, line,
  column), the Astro layout (unknown keys with the closest known one), duplicate ids, ports and
  pool slots that are no numbers, the extras of every ISO connection against its hook;
* the connections as a task resolves them (``AIRFLOW_CONN_*`` variables, a secrets backend or the
  metadata DB; the settings file's connections fill in what is not defined, as for the CLI):
  ``AIRFLOW_CONN_*`` values Airflow cannot read (it ignores them silently), missing connections,
  connection types, and each ISO connection's extras (malformed JSON, undeclared keys, bad values);
* pools: every pool a selected DAG's tasks use must be declared in the settings file and, with
  ``--airflow-pools``, exist with at least one slot in the Airflow metadata database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pmp import validate
from pmp.validate import suggestion

CONNECTION_KEYS = ("conn_id", "conn_type", "conn_host", "conn_schema", "conn_login", "conn_password",
                   "conn_port", "conn_extra", "conn_uri", "conn_description")
POOL_KEYS = ("pool_name", "pool_slot", "pool_description")
VARIABLE_KEYS = ("variable_name", "variable_value")
SECTIONS = ("connections", "pools", "variables")


def add_parser(sub: Any) -> None:
    c = sub.add_parser("check-config", help="check PMP_* settings, connections and their extras, "
                       "airflow_settings.yaml and pools; one line per problem, exit 1 if any")
    group = c.add_mutually_exclusive_group()
    group.add_argument("--settings-file", type=Path, metavar="YAML",
                       help="the airflow_settings.yaml to check (default: the bundle's own)")
    group.add_argument("--no-settings-file", action="store_true",
                       help="a deployment without one (MWAA): connections and pools from Airflow only")
    c.add_argument("--airflow-pools", action="store_true",
                   help="also check the pools in the Airflow metadata database (run where Airflow is configured)")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pmp import airflow_settings

    path = None if args.no_settings_file else args.settings_file or airflow_settings.SETTINGS_FILE
    explicit = args.settings_file is not None
    problems, checked = check(path if path is None or explicit or path.is_file() else None,
                              airflow_pools=args.airflow_pools)
    for line in problems:
        print(line)
    if problems:
        print(f"pmp check-config: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"pmp check-config: ok ({'; '.join(checked)})")
    return 0


def check(settings_file: Path | None, *, airflow_pools: bool = False) -> tuple[list[str], list[str]]:
    """Every problem (one sentence each) and what was checked."""
    problems = validate.settings_problems()
    checked = [f"{len(validate.SETTINGS)} settings"]
    settings_ok = not validate.settings_problems(names=False)
    if settings_ok:
        problems += validate.dag_selection_problems()
    declared_conns: dict[str, dict[str, Any]] = {}
    declared_pools: dict[str, int] | None = None
    if settings_file is not None:
        file_problems, declared_conns, declared_pools = settings_file_problems(settings_file)
        problems += file_problems
        checked.append(str(settings_file))
    if not settings_ok:
        return problems, checked  # the DAGs (and what they use) cannot be known
    used = used_pools()
    if declared_pools is not None:
        for pool, dags in used.items():
            if pool not in declared_pools:
                problems.append(f"pool {pool!r} (used by {_some(dags)}) is not declared in {settings_file}"
                                f"{suggestion(pool, declared_pools)}")
    if airflow_pools:
        problems += airflow_pool_problems(used)
    checked.append(f"{len(used)} pools")
    conn_problems, n = connection_problems(declared_conns, used)
    checked.append(f"{n} connections")
    return problems + conn_problems, checked


def _some(dags: list[str]) -> str:
    return ", ".join(dags[:2]) + (f" and {len(dags) - 2} more" if len(dags) > 2 else "")


# ------------------------------------------------------------------------------ airflow_settings.yaml
def settings_file_problems(path: Path) -> tuple[list[str], dict[str, dict[str, Any]], dict[str, int] | None]:
    """Problems of an Astro ``airflow_settings.yaml``, its connections (``conn_id`` -> Airflow's
    connection JSON, for those that are sound) and its pools (name -> slots), or ``None`` for the
    pools when the file cannot be read."""
    import yaml

    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        return [f"{name}: cannot be read ({exc.strerror or exc})"], {}, None
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return [f"{name}{where}: not valid YAML ({exc.problem or exc.context})"], {}, None
    except yaml.YAMLError as exc:
        return [f"{name}: not valid YAML ({validate.one_line(exc)})"], {}, None
    if not isinstance(doc, dict) or not isinstance(doc.get("airflow"), dict):
        return [f"{name}: expected a mapping with an 'airflow' key holding connections, pools and variables"], {}, None
    problems: list[str] = []
    top = doc["airflow"]
    for key in top:
        if key not in SECTIONS:
            problems.append(f"{name}: {validate.unknown('section', key, SECTIONS, where=' under airflow')}")
    conns: dict[str, dict[str, Any]] = {}
    pools: dict[str, int] = {}
    for i, entry in enumerate(_entries(top, "connections", name, problems), 1):
        conn_id, conn = _connection_entry(entry, f"{name}: connection {i}", problems)
        if conn_id is None:
            continue
        if conn_id in conns:
            problems.append(f"{name}: connection {conn_id!r} is declared twice")
        conns[conn_id] = conn
    for i, entry in enumerate(_entries(top, "pools", name, problems), 1):
        where = f"{name}: pool {entry.get('pool_name', i)!r}" if isinstance(entry, dict) else f"{name}: pool {i}"
        if not _keys(entry, POOL_KEYS, "pool_name", where, problems):
            continue
        slots = entry.get("pool_slot")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
            problems.append(f"{where}: pool_slot must be a whole number >= 0, not {slots!r}")
            slots = 0
        if entry["pool_name"] in pools:
            problems.append(f"{where}: declared twice")
        pools[str(entry["pool_name"])] = slots
    for i, entry in enumerate(_entries(top, "variables", name, problems), 1):
        _keys(entry, VARIABLE_KEYS, "variable_name", f"{name}: variable {i}", problems)
    for conn_id, conn in conns.items():
        problems += [f"{name}: {p}" for p in _hook_problems(conn_id, conn)]
    return problems, conns, pools


def _entries(top: dict[str, Any], section: str, name: str, problems: list[str]) -> list[Any]:
    value = top.get(section)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{name}: airflow.{section} must be a list, not {type(value).__name__}")
        return []
    return value


def _keys(entry: Any, known: tuple[str, ...], required: str, where: str, problems: list[str]) -> bool:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping of {', '.join(known)}, not {entry!r}")
        return False
    for key in entry:
        if key not in known:
            problems.append(f"{where}: {validate.unknown('key', key, known)}")
    if not entry.get(required):
        problems.append(f"{where}: {required} is missing")
        return False
    return True


def _connection_entry(entry: Any, where: str, problems: list[str]) -> tuple[str | None, dict[str, Any]]:
    if isinstance(entry, dict) and entry.get("conn_id"):
        where = where.rsplit(": ", 1)[0] + f": connection {entry['conn_id']!r}"
    if not _keys(entry, CONNECTION_KEYS, "conn_id", where, problems):
        return None, {}
    if not entry.get("conn_type") and not entry.get("conn_uri"):
        problems.append(f"{where}: conn_type is missing")
    port = entry.get("conn_port")
    if port not in (None, "") and (isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536):
        problems.append(f"{where}: conn_port must be a port number 1-65535, not {port!r}")
        port = None  # reported: the connection is checked further without it
    extra = entry.get("conn_extra")
    if extra is not None and not isinstance(extra, dict):
        problems.append(f"{where}: conn_extra must be a mapping, not {type(extra).__name__}")
        extra = None
    conn = {"conn_type": entry.get("conn_type"), "host": entry.get("conn_host"), "schema": entry.get("conn_schema"),
            "login": entry.get("conn_login"), "password": entry.get("conn_password"), "port": port,
            "extra": extra or {}}
    return str(entry["conn_id"]), {k: v for k, v in conn.items() if v not in (None, "")}


def _hook_problems(conn_id: str, conn: dict[str, Any]) -> list[str]:
    """A connection's problems for the ISO hook it belongs to (by type or by default id), if any."""
    from pmp.isohook import extra_problems

    for hook in _hooks():
        if conn.get("conn_type") == hook.conn_type or conn_id == hook.default_conn_name:
            out = []
            if conn.get("conn_type") not in (None, "", hook.conn_type):
                out.append(f"connection {conn_id!r}: conn_type {conn['conn_type']!r} is not {hook.conn_type!r} "
                           f"({hook.hook_name})")
            return out + extra_problems(hook.extras, conn_id, conn.get("extra"))[1]
    return []


@cache
def _hooks() -> tuple[Any, ...]:
    from pmp.isohook import iso_hook_classes

    return tuple(iso_hook_classes())


# ------------------------------------------------------------------------------ pools
def used_pools() -> dict[str, list[str]]:
    """Every pool a task of the DAGs this deployment builds uses -> those DAG ids (the factory
    builds the DAGs, as a DAG file does, so no pool is missed)."""
    from pmp import factory, registry

    used: dict[str, list[str]] = {}
    quiet = logging.getLogger(factory.__name__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its PMP_DAGS warnings are reported already
    try:
        dags = {k: v for iso in registry.isos() for k, v in factory.build_dags(iso).items()}
    finally:
        quiet.setLevel(level)
    for dag_id, dag in dags.items():
        for pool in sorted({t.pool for t in dag.tasks if t.pool}):
            used.setdefault(pool, []).append(dag_id)
    used.pop("default_pool", None)
    return used


def airflow_pool_problems(used: dict[str, list[str]]) -> list[str]:
    """Pools used by the DAGs that the Airflow metadata database does not have (or gives no slot)."""
    try:
        from airflow.models.pool import Pool
        from airflow.utils.session import create_session

        with create_session() as session:
            slots = {p.pool: p.slots for p in session.query(Pool)}
    except Exception as exc:
        return [f"Airflow pools: cannot read the metadata database ({type(exc).__name__}: "
                f"{validate.one_line(exc)[:200]})"]
    problems = []
    for pool, dags in used.items():
        if pool not in slots:
            problems.append(f"pool {pool!r} (used by {_some(dags)}) does not exist in Airflow: create it "
                            f"(pmp airflow-settings import, airflow pools set, or the UI){suggestion(pool, slots)}")
        elif slots[pool] == 0:
            problems.append(f"pool {pool!r} (used by {_some(dags)}) has 0 slots in Airflow: its tasks never run")
    return problems


# ------------------------------------------------------------------------------ connections
@contextlib.contextmanager
def _with_declared(conns: dict[str, dict[str, Any]]) -> Iterator[None]:
    """The settings file's connections as ``AIRFLOW_CONN_*`` where none is defined (as the CLI does)."""
    added = []
    for conn_id, conn in conns.items():
        key = f"AIRFLOW_CONN_{conn_id.upper()}"
        if key not in os.environ:
            os.environ[key] = json.dumps(conn)
            added.append(key)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def env_connection_problems() -> list[str]:
    """``AIRFLOW_CONN_*`` values Airflow cannot read: it says the connection is not defined."""
    problems = []
    for key, value in sorted(os.environ.items()):
        if not key.startswith("AIRFLOW_CONN_"):
            continue
        text = value.strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{key}: not valid JSON ({exc.msg} at column {exc.colno}); Airflow ignores it "
                                "and reports the connection as not defined")
                continue
            if not isinstance(doc.get("conn_type"), str) or not doc.get("conn_type"):
                problems.append(f"{key}: the JSON has no conn_type")
        elif "://" not in text:
            problems.append(f"{key}: neither a JSON object nor a connection URI (type://login:password@host:port/schema)")
    return problems


def connection_problems(declared: dict[str, dict[str, Any]], used: dict[str, list[str]]) -> tuple[list[str], int]:
    """Problems of the connections the selected DAGs (``used``: pool -> DAG ids) and the loader
    use, as Airflow resolves them."""
    from pmp import registry
    from pmp.connections import get_connection

    problems = env_connection_problems()
    selected_isos = {d.split("_", 1)[0] for dags in used.values() for d in dags}
    with _with_declared(declared):
        db_id, s3_id = validate.setting("PMP_DB_CONN_ID"), validate.setting("PMP_S3_CONN_ID")
        n = 0
        db = _lookup(db_id, get_connection, problems)
        n += 1
        if db is None and not validate.setting("PMP_PG_DSN"):
            problems.append(f"connection {db_id!r} (PMP_DB_CONN_ID, the warehouse) is not defined and PMP_PG_DSN "
                            "is unset: no task can load")
        elif db is not None and db.conn_type not in ("postgres", "postgresql"):
            problems.append(f"connection {db_id!r} (the warehouse): conn_type {db.conn_type!r} is not 'postgres'")
        if validate.setting("PMP_STAGING_URL").startswith("s3://"):
            n += 1
            s3 = _lookup(s3_id, get_connection, problems)
            if s3 is not None and s3.conn_type != "aws":
                problems.append(f"connection {s3_id!r} (PMP_S3_CONN_ID, the staging bucket): conn_type "
                                f"{s3.conn_type!r} is not 'aws'")
            elif s3 is not None and s3.extra:
                try:
                    json.loads(s3.extra)
                except json.JSONDecodeError as exc:
                    problems.append(f"connection {s3_id!r}: extra is not valid JSON ({exc.msg} at column {exc.colno})")
        for hook in _hooks():
            iso = hook.__module__.split(".")[2]
            if iso not in selected_isos or iso not in registry.isos():
                continue
            n += 1
            conn = _lookup(hook.default_conn_name, get_connection, problems)
            if conn is None:
                problems.append(f"connection {hook.default_conn_name!r} ({hook.hook_name}) is not defined: the {iso} "
                                "DAGs cannot run")
            else:
                problems += hook.connection_problems(conn)
    return problems, n


def _lookup(conn_id: str, get_connection: Any, problems: list[str]) -> Any:
    try:
        return get_connection(conn_id)
    except Exception as exc:  # a secrets backend that fails, a URI Airflow cannot parse
        problems.append(f"connection {conn_id!r}: cannot be read ({type(exc).__name__}: {validate.one_line(exc)[:200]})")
        return None
