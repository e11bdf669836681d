"""Writes ``airflow_settings.yaml`` (and README's ISO tables) from the ISO packages, so a new ISO is
new files only.

The file stays a real Astro-format settings file (``astro dev start`` reads it; our scripts import
it; tests turn it into ``AIRFLOW_CONN_*``). Its ISO part is *generated*: one connection per ISO
hook (:attr:`pmp.isohook.IsoHttpHook.local`, pointed at ``pmp simulate`` on
:data:`SIMULATOR_URL`) and the pools each hook declares (:attr:`pmp.isohook.IsoHttpHook.pools`).
Everything else in the file (the warehouse and S3 connections, other pools, variables) is kept as
it is. ``tests/test_local_settings.py`` fails when the committed file differs from what this writes.

README.md's ISO table, the ISO rows of its connections table and its pools line are generated the
same way, between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` markers.

    python -m pmp.local_settings          # rewrite airflow_settings.yaml and README.md's ISO tables
    python -m pmp.local_settings --check  # exit 1 (and say what differs) when either is out of date
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import Any

import yaml

from pmp.isohook import IsoHttpHook, iso_hook_classes
from pmp.settings import REPO_ROOT

SETTINGS_FILE = REPO_ROOT / "airflow_settings.yaml"
README_FILE = REPO_ROOT / "README.md"
SIMULATOR_URL = "http://127.0.0.1:58080"  # where ``pmp simulate`` listens on local defaults

HEADER = """\
# Local connections and pools (Astro format: `astro dev start` loads it; our scripts import it with
# `pmp airflow-settings import`). LOCAL DEFAULTS ONLY: they point at the services started by
# scripts/services.sh and at the ISO simulator (`pmp simulate`). In production define the same
# connection ids in a secrets backend or as AIRFLOW_CONN_* variables with real credentials.
#
# The ISO connections and pools below are GENERATED from the ISO hooks (IsoHttpHook.local and
# .pools in include/pmp/isos/<iso>/hook.py): edit those, then run `python -m pmp.local_settings`.
# Other entries (warehouse, S3, variables) are kept as written here.
"""
CONN_FIELDS = ("conn_id", "conn_type", "conn_host", "conn_schema", "conn_login", "conn_password", "conn_port",
               "conn_extra")


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").strip()


def _block(value: Any, indent: int) -> list[str]:
    """A mapping as block YAML (nested mappings indented, scalars inline)."""
    pad = " " * indent
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{pad}{key}:")
            lines.extend(_block(item, indent + 2))
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}".rstrip())
    return lines


def _connection(conn: dict[str, Any], comment: str = "") -> list[str]:
    lines = [f"    # {comment}"] if comment else []
    first = True
    for key in CONN_FIELDS:
        prefix = "    - " if first else "      "
        first = False
        value = conn.get(key)
        if key == "conn_extra" and isinstance(value, dict) and value:
            lines.append(f"{prefix}{key}:")
            lines.extend(_block(value, 8))
        else:
            lines.append(f"{prefix}{key}: {_scalar(value)}".rstrip())
    return lines


def iso_connection(hook: type[IsoHttpHook], sim_url: str = SIMULATOR_URL) -> dict[str, Any]:
    local = hook.local
    extra = {k: v.replace("{sim}", sim_url) if isinstance(v, str) else v for k, v in local.extra.items()}
    return {"conn_id": hook.default_conn_name, "conn_type": hook.conn_type, "conn_login": local.login,
            "conn_password": local.password, "conn_extra": extra}


def render(existing: str) -> str:
    """The settings file: ``existing``'s non-ISO entries plus the ISO entries of every hook."""
    current = (yaml.safe_load(existing) or {}).get("airflow") or {}
    hooks = iso_hook_classes()
    iso_types = {h.conn_type for h in hooks}
    iso_pools = {name for h in hooks for name in h.all_pools()}
    lines = [HEADER.rstrip("\n"), "airflow:", "  connections:"]
    for conn in current.get("connections") or []:
        if conn.get("conn_type") not in iso_types:
            lines.extend(_connection(conn))
    for hook in hooks:
        lines.extend(_connection(iso_connection(hook), hook.local.comment))
    lines.append("  pools:")
    pools = [p for p in current.get("pools") or [] if p.get("pool_name") not in iso_pools]
    pools += [{"pool_name": name, "pool_slot": slots, "pool_description": text}
              for h in hooks for name, (slots, text) in h.all_pools().items()]
    for pool in pools:
        lines.append(f"    - pool_name: {_scalar(pool['pool_name'])}")
        lines.append(f"      pool_slot: {_scalar(pool['pool_slot'])}")
        lines.append(f"      pool_description: {_scalar(pool.get('pool_description', ''))}")
    variables = current.get("variables") or []
    if variables:
        lines.append("  variables:")
        lines.extend("    " + line for line in yaml.safe_dump(variables, sort_keys=False).splitlines())
    else:
        lines.append("  variables: []")
    return "\n".join(lines) + "\n"


def _readme_sections() -> dict[str, str]:
    from pmp import registry

    hooks = {h.conn_type: h for h in iso_hook_classes()}
    isos = [(iso, type(registry.adapter(iso).hook())) for iso in registry.isos()]
    table = ["| ISO | datasets | of which also real time (`*/5` DAG) | details |", "|---|---|---|---|"]
    for iso, hook in isos:
        specs = registry.datasets(iso)
        names = ", ".join(f"`{s.dataset}`" for s in specs)
        daily_only = [f"`{s.dataset}`" for s in specs if not s.realtime]
        realtime = "all" if not daily_only else "none" if len(daily_only) == len(specs) else (
            "all but " + ", ".join(daily_only))
        label = hook.hook_name.split(" (")[0]
        table.append(f"| {label} | {names} | {realtime} | "
                     f"[include/pmp/isos/{iso}/README.md](include/pmp/isos/{iso}/README.md) |")
    conns = [f"| `{hook.default_conn_name}` | {hook.conn_type} | {hook.summary or hook.hook_name} "
             f"([fields](include/pmp/isos/{iso}/README.md)) |" for iso, hook in isos]
    pools = "Pools: " + ", ".join(f"`{name}` ({slots})" for h in hooks.values() for name, (slots, _) in h.all_pools().items())
    return {"iso-table": "\n".join(table), "iso-connections": "\n".join(conns), "iso-pools": pools + "."}


def render_readme(text: str) -> str:
    for name, body in _readme_sections().items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"README.md: no <!-- generated:{name} --> ... <!-- /generated:{name} --> section")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pmp.local_settings", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is out of date")
    args = ap.parse_args(argv)
    stale = 0
    for path, make in ((SETTINGS_FILE, render), (README_FILE, render_readme)):
        existing = path.read_text()
        wanted = make(existing)
        if wanted == existing:
            print(f"{path}: up to date")
        elif args.check:
            diff = difflib.unified_diff(existing.splitlines(), wanted.splitlines(), str(path), "generated",
                                        lineterm="")
            print("\n".join(diff))
            print(f"{path} is out of date: run `python -m pmp.local_settings`", file=sys.stderr)
            stale += 1
        else:
            path.write_text(wanted)
            print(f"{path}: written")
    return 1 if stale else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
