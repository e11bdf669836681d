"""Issue 12.3: a real-time run is one task (``RealtimeIngestOperator``); a run that lists nothing new
fetches nothing and still fails, in that one task, when the dataset is stale (dag.test, simulator,
SeaweedFS, TimescaleDB). The run that loads and the run with nothing new are in tests/test_e2e_ercot.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest


@pytest.mark.integration
def test_nothing_new_and_stale_fails_in_the_one_task_without_fetching(env, private_warehouse, dagbag,
                                                                       capfd: Any) -> None:
    from airflow.sdk import DagRunState

    # the simulator's clock two years back: nothing is published in the run's window (the last
    # 180 minutes of the wall clock), and this warehouse of the test's own has no ERCOT rows at all
    sim = env["sim"](now=datetime(2024, 11, 5, 12, tzinfo=UTC))
    dag = dagbag.get_dag("ercot_lmp_rt5m_realtime")
    dr = dag.test()
    out, err = capfd.readouterr()
    assert dr.state == DagRunState.FAILED
    assert [(ti.task_id, ti.state) for ti in dr.get_task_instances()] == [("ingest", "failed")]
    assert "ercot.lmp_rt5m: newest data ends None" in out + err  # the freshness check's own error
    assert sim.requests, "the run listed what is published"
    assert not [path for _, path in sim.requests if "download" in path.lower()], sim.requests  # nothing fetched
