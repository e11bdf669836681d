"""Warm task processes (pmp.plugin.preload): the scheduler of a real local Airflow imports the
bundle's modules when it loads the plugin, before its LocalExecutor forks the workers that fork the
task processes, so every worker already holds them (``bench/taskstart.py`` measures the gain)."""

from __future__ import annotations

from pathlib import Path

import pytest
from live import LiveAirflow

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live-airflow")]

DAG = "ercot_lmp_dam_daily"


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _mapped(pid: int, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_executor_workers_start_with_the_bundle_imported(services: dict) -> None:
    with LiveAirflow([DAG]) as af:
        af.wait_serialized([DAG])
        scheduler = af.procs["scheduler"].pid
        # `airflow scheduler` may run under a wrapper: the process whose children are the workers
        procs = [scheduler, *_children(scheduler)]
        workers = [c for p in procs for c in _children(p)
                   if "LocalExecutor" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]
        assert len(workers) >= 2, (procs, [Path(f"/proc/{c}/cmdline").read_text(errors="replace")
                                           for p in procs for c in _children(p)])
        # pandas' and pyarrow's extension modules are mapped in every worker: imported before the fork
        assert all(_mapped(w, "pandas/_libs") and _mapped(w, "pyarrow/lib") for w in workers), workers
