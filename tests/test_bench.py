"""The benchmarks still run: each on a tiny input, through its real script, ending in its line.

Speed is not asserted here (benchmarks print ratios; see bench/); this only keeps a benchmark
from rotting when the schema or an API under it changes."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_bench(*args: str, timeout: float = 600) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.mark.integration
def test_load_benchmark_runs(services: dict) -> None:
    last = run_bench("bench/load.py", "--rows", "3000", "--repeat", "1")
    m = re.fullmatch(r"load: pipeline=(\d+) psql_copy=(\d+) ratio=(\d+\.\d\d)", last)
    assert m, last
    assert int(m[1]) > 0 and int(m[2]) > 0


@pytest.mark.integration
def test_coverage_benchmark_runs(services: dict) -> None:
    last = run_bench("bench/coverage.py", "--years", "1", "--repeat", "1")
    m = re.fullmatch(r"coverage: isos=(\d+) datasets=(\d+) days=(\d+) p50_s=(\d+\.\d+) max_s=(\d+\.\d+) "
                     r"span_vs_month=(\d+\.\d\d)", last)
    assert m, last
    assert int(m[1]) >= 7 and int(m[3]) == 366 and float(m[5]) >= float(m[4]) > 0


def test_taskstart_benchmark_runs() -> None:
    last = run_bench("bench/taskstart.py", "--rounds", "1")
    m = re.fullmatch(r"taskstart: cold_s=(\d+\.\d\d) warm_s=(\d+\.\d\d) ratio=(\d+\.\d\d)", last)
    assert m, last
    assert float(m[1]) > 0 and float(m[2]) > 0


def test_bulk_benchmark_runs() -> None:
    last = run_bench("bench/bulk.py", "--days", "1", "--nodes", "20", "--rounds", "1")
    m = re.fullmatch(r"bulk: rust=(\d+) pandas=(\d+) polars=(\d+) rust/pandas=(\d+\.\d) rust/polars=(\d+\.\d)", last)
    assert m, last
    assert all(int(m[i]) > 0 for i in (1, 2, 3))


@pytest.mark.live
@pytest.mark.xdist_group("live-airflow")
def test_catchup_benchmark_runs(services: dict, tmp_path: Path) -> None:
    """A real Airflow catch-up of two market days of two datasets (bench/catchup.py's tiny mode)."""
    import json

    out = tmp_path / "catchup.json"
    last = run_bench("bench/catchup.py", "--days", "2", "--datasets", "nyiso.lmp_dam,ercot.lmp_dam",
                     "--parallelism", "4", "--out", str(out), timeout=1800)
    m = re.fullmatch(r"catchup: days=(\d+) datasets=(\d+) wall_s=(\d+) dataset_days_per_hour=(\d+) "
                     r"full_history_hours=(\d+\.\d)", last)
    assert m, last
    assert (m[1], m[2]) == ("2", "2") and int(m[4]) > 0
    result = json.loads(out.read_text())
    assert result["runs"] == 4 and result["failed_runs"] == 0 and result["dataset_days"] == 4
    assert set(result["per_day"]) == {"nyiso.lmp_dam", "ercot.lmp_dam"}
    assert all(f["rows"] > 0 and f["documents"] > 0 for f in result["per_day"].values())
    assert result["iso_pacing_floor_hours"] > 0  # the plan's floor, from what this run loaded


@pytest.mark.integration
@pytest.mark.xdist_group("live-airflow")
def test_freshness_benchmark_runs(services: dict) -> None:
    """bench/freshness.py --tiny: a local Airflow, one real-time and one daily DAG, three minutes."""
    proc = subprocess.run([sys.executable, "bench/freshness.py", "--tiny"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    m = re.fullmatch(r"freshness: p50=(\d+) p95=(\d+) max=(\d+) docs=(\d+) missed=(\d+) history_days=(\d+) "
                     r"tasks_per_doc=(\d+\.\d\d)", lines[-1])
    assert m, lines[-1]
    p50, p95, worst, docs, missed, history_days = (int(m[i]) for i in range(1, 7))
    assert p50 <= p95 <= worst
    assert history_days >= 1  # the one backfilled day finished while real time ran
    assert float(m[7]) > 0  # the real-time DAG ran tasks in the window
    assert any(line.startswith("nyiso: ") for line in lines), lines[-5:]


@pytest.mark.integration
def test_history_benchmark_runs(services: dict) -> None:
    """bench/history.py --tiny: two workers end to end, the table filled by shifted copies."""
    proc = subprocess.run([sys.executable, "bench/history.py", "--tiny"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    m = re.fullmatch(r"history: rows=(\d+) seconds=(\d+\.\d) rows_per_s=(\d+) empty_vs_full=(\d+\.\d\d) "
                     r"upsert_rows_per_s=(\d+) pg_copy_ratio=(\d+\.\d\d)", lines[-1])
    assert m, lines[-1]
    rows = 3 * 96 * (10 + 7 + 2 * 8 + 2 * 4)  # 3 days x 96 intervals x the simulator's points
    assert int(m[1]) == rows
    assert int(m[3]) > 0 and int(m[5]) > 0
    assert f"filled (shift) to {2 * rows} rows" in proc.stdout, lines[-8:]  # the first year, shifted back a year


def test_history_archives_parallel_equal_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/history.py builds its archives in processes: byte for byte those of a serial build."""
    monkeypatch.setenv("PMP_SIM_ERCOT_NODES", "2")
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import history

    spans = history.months(2023, 33)  # January and two days of February
    assert len(spans) == 2
    serial = history.archives(spans, 1)
    assert history.archives(spans, 2) == serial
    assert [len(zipfile.ZipFile(io.BytesIO(d)).namelist()) for _, _, d in serial] == [31 * 96, 2 * 96]
