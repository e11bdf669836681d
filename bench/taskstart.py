"""Task start-up benchmark: what a task process of the bundle costs before its task runs, forked
from a cold process (the LocalExecutor or Celery worker as Airflow starts it) and from a warm one
(after :func:`pmp.plugin.preload`, as the scheduler has it once it loaded the plugin).

Each round forks a child the way the worker forks a task process (``os.fork`` from a process that
has imported the Task SDK's supervisor); the child does what a task process does before the task's
own code: it imports the task runner, parses one DAG file of the bundle (``dags/<iso>.py``, one
DAG selected by ``PMP_DAGS`` as a task process's parse would build it) and imports the pipeline.
Cold and warm rounds alternate, in two processes side by side (the machines are noisy).

    .venv/bin/python bench/taskstart.py [--rounds 8] [--dag ercot_lmp_dam_daily]

Last line: ``taskstart: cold_s=<median s> warm_s=<median s> ratio=<cold/warm>``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import os, runpy, sys, time
sys.path.insert(0, {include!r})
from airflow.sdk.execution_time import supervisor  # noqa: F401 (the worker has it)
if {warm!r}:
    from pmp import plugin
    plugin.preload()
    assert plugin.PRELOADED_BY == os.getpid()
for _ in range({rounds}):
    sys.stdin.readline()  # the next round
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        from airflow.sdk.execution_time import task_runner  # noqa: F401
        runpy.run_path({dag_file!r})
        import pmp.pipeline  # noqa: F401
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, status
    print(f"round {{time.perf_counter() - t:.4f}}", flush=True)
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--dag", default="ercot_lmp_dam_daily")
    args = ap.parse_args()

    iso = args.dag.split("_", 1)[0]
    env = dict(os.environ, PMP_DAGS=args.dag, PMP_PRELOAD="true")
    procs = {}
    for mode in ("cold", "warm"):
        code = CHILD.format(include=str(ROOT / "include"), warm=mode == "warm", rounds=args.rounds,
                            dag_file=str(ROOT / "dags" / f"{iso}.py"))
        procs[mode] = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    times: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(args.rounds):
        for mode, proc in procs.items():  # one round of each, in turn
            assert proc.stdin and proc.stdout
            proc.stdin.write("\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            while line and not line.startswith("round "):  # log lines of the imports
                line = proc.stdout.readline()
            if not line:
                raise SystemExit(f"the {mode} process ended early (exit {proc.wait()})")
            times[mode].append(float(line.split()[1]))
    for proc in procs.values():
        if proc.wait(timeout=60) != 0:
            raise SystemExit(f"a benchmark process failed (exit {proc.returncode})")
    for mode, values in times.items():
        print(f"{mode}: {' '.join(f'{v:.2f}' for v in values)}")
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    print(f"taskstart: cold_s={cold:.2f} warm_s={warm:.2f} ratio={cold / warm:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
