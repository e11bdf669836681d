"""Airflow provider metadata: registers the ISO connection types so the UI shows their forms.

The list comes from the ISO packages: every class deriving from ``IsoHttpHook`` in
``pmp/isos/<iso>/hook.py`` with its ``conn_type``, so a new ISO adds its hook and nothing here.
The hook modules are *read*, not imported: Airflow calls this while it loads its own configuration,
before ``airflow.sdk`` (which the hooks import) can be imported.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

ISOS_DIR = Path(__file__).resolve().parent / "isos"


def iso_hooks() -> list[dict[str, str]]:
    """``{"class", "conn_type", "hook_name"}`` of every ISO hook, in ISO package order."""
    out = []
    for path in sorted(ISOS_DIR.glob("*/hook.py")):
        module = f"pmp.isos.{path.parent.name}.hook"
        for node in ast.parse(path.read_text(), str(path)).body:
            if not isinstance(node, ast.ClassDef) or not any(
                    isinstance(b, ast.Name) and b.id == "IsoHttpHook" for b in node.bases):
                continue
            attrs = {t.id: s.value.value for s in node.body if isinstance(s, ast.Assign)
                     for t in s.targets if isinstance(t, ast.Name) and isinstance(s.value, ast.Constant)}
            out.append({"class": f"{module}.{node.name}", "conn_type": str(attrs["conn_type"]),
                        "hook_name": str(attrs.get("hook_name", node.name))})
    return out


def get_provider_info() -> dict[str, Any]:
    hooks = iso_hooks()
    return {
        "package-name": "power-market-pipeline",
        "name": "Power Market Pipeline",
        "description": "Hooks for US ISO market data (" + ", ".join(h["hook_name"].split(" (")[0] for h in hooks) + ")",
        "versions": ["0.1.0"],
        "connection-types": [{"hook-class-name": h["class"], "connection-type": h["conn_type"]} for h in hooks],
        # the ISO documents' URLs as OpenLineage inputs (pmp.lineage): no other provider converts them
        "asset-uris": [{"schemes": ["http", "https"], "handler": None,
                        "to_openlineage_converter": "pmp.lineage.http_to_openlineage"}],
    }
