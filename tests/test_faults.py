"""The fault-injection harness (bench/faults.py) runs: its fast subset, through the real script,
against the simulator, TimescaleDB and SeaweedFS, ends in its line at target (issue 14)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^faults: injected=(\d+) survived=(\d+) clear=(\d+) silent=(\d+) lost=(\d+) extra=(\d+) "
                  r"value_diffs=(\d+)$")

pytestmark = pytest.mark.integration


def test_fault_harness_fast_subset_at_target(services: dict) -> None:
    listed = subprocess.run([sys.executable, "bench/faults.py", "--fast", "--list"], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=300).stdout.split()
    assert len(listed) >= 5
    out = subprocess.run([sys.executable, "bench/faults.py", "--fast"], cwd=ROOT, capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    m = LINE.match(lines[-1])
    assert m, lines[-5:]
    injected, survived, clear, silent, lost, extra, diffs = map(int, m.groups())
    assert injected == len(listed) and survived + clear == injected, "\n".join(lines)
    assert (silent, lost, extra, diffs) == (0, 0, 0, 0), "\n".join(lines)
    for name in listed:  # one scored line per scenario
        assert any(line.startswith(name + " ") for line in lines), name
