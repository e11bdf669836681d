"""Airflow provider metadata: registers the ISO connection types so the UI shows their forms."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "power-market-pipeline",
        "name": "Power Market Pipeline",
        "description": "Hooks for US ISO market data (ERCOT, CAISO, NYISO, ISO-NE)",
        "versions": ["0.1.0"],
        "connection-types": [
            {"hook-class-name": "pmp.isos.ercot.hook.ErcotHook", "connection-type": "ercot"},
            {"hook-class-name": "pmp.isos.caiso.hook.CaisoHook", "connection-type": "caiso"},
            {"hook-class-name": "pmp.isos.nyiso.hook.NyisoHook", "connection-type": "nyiso"},
            {"hook-class-name": "pmp.isos.isone.hook.IsoneHook", "connection-type": "isone"},
        ],
    }
