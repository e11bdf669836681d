"""``pmp reprocess`` and the daily DAGs' ``reprocess`` param: re-derive market days from the raw
stage after a normalizer fix, without downloading, converging to the rows of a fresh load (issue 14).

The "normalizer bug" is injected into the warehouse as the rows a buggy normalizer would have
loaded from the same raw bytes: changed values, a missing row and a row at a key no fresh load
produces. Before, identical raw bytes were never loaded again (``--reload`` skips unchanged
checksums), so only deleting ingest_log rows by hand repaired them."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime

import psycopg
import pytest
from helpers import day_rows, run_daily

from pmp import registry
from pmp.cli import main
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

SPEC = registry.get("ercot", "lmp_dam")
DAY = date(2024, 11, 3)  # fall back: 25 hours


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _break_rows(dsn: str) -> None:
    """What a buggy normalizer would have loaded: values off, one row lost, one key that is not ERCOT's."""
    start, end = market_day_bounds(DAY, SPEC.timezone)
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE lmp SET lmp = lmp + 1 WHERE iso = 'ERCOT' AND market = 'DAM' AND interval_start = %s",
                     (start,))
        conn.execute("DELETE FROM lmp WHERE iso = 'ERCOT' AND market = 'DAM' AND ctid IN (SELECT ctid FROM lmp"
                     " WHERE iso = 'ERCOT' AND market = 'DAM' AND interval_start >= %s AND interval_start < %s"
                     " ORDER BY location LIMIT 1)", (start, end))
        conn.execute("INSERT INTO lmp (interval_start, interval_end, iso, market, location, lmp, source)"
                     " SELECT interval_start, interval_end, iso, market, 'NOT_A_NODE', 1, source FROM lmp"
                     " WHERE iso = 'ERCOT' AND market = 'DAM' AND interval_start >= %s AND interval_start < %s"
                     " LIMIT 1", (start, end))


def _no_iso(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ISO connection at a closed loopback port: any download would fail."""
    from conftest import SIM_CONNECTIONS, sim_conn

    url = f"http://127.0.0.1:{_closed_port()}"
    for conn_id in SIM_CONNECTIONS:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(sim_conn(conn_id, url)))


def _log(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT source_id, checksum, revision, rows FROM ingest_log WHERE iso = 'ercot'"
                            " AND dataset = 'lmp_dam' ORDER BY 1").fetchall()


def test_pmp_reprocess_rederives_a_day_from_the_raw_stage(private_warehouse, staging, use_simulator,
                                                          monkeypatch, capsys) -> None:
    use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    args = ["--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-03", "--end", "2024-11-04"]
    assert main(["download", *args, "--quiet"]) == 0
    fresh, log = day_rows(private_warehouse, SPEC, DAY), _log(private_warehouse)
    _break_rows(private_warehouse)
    assert day_rows(private_warehouse, SPEC, DAY) != fresh
    _no_iso(monkeypatch)
    assert main(["download", *args, "--reload", "--quiet"]) == 1  # no ISO: a download cannot repair it
    assert main(["reprocess", *args]) == 0
    assert "ercot.lmp_dam 2024-11-03: reprocessed docs=1" in capsys.readouterr().out
    assert day_rows(private_warehouse, SPEC, DAY) == fresh
    assert _log(private_warehouse) == log  # same bytes: not a revision
    assert main(["reprocess", *args]) == 0  # and again: the same rows
    assert day_rows(private_warehouse, SPEC, DAY) == fresh


def test_reprocess_names_a_raw_file_that_changed(private_warehouse, staging, use_simulator, monkeypatch,
                                                 capsys) -> None:
    use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    args = ["--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-03", "--end", "2024-11-04"]
    assert main(["download", *args, "--quiet"]) == 0
    with psycopg.connect(private_warehouse) as conn:
        conn.execute("UPDATE ingest_log SET checksum = 'feedface' || checksum WHERE iso = 'ercot'")
    assert main(["reprocess", *args]) == 1
    err = capsys.readouterr().err
    assert "ercot.lmp_dam 2024-11-03: FAILED" in err and "raw/ercot/lmp_dam/2024/11/03/" in err
    assert "no longer matches the checksum loaded" in err


def test_daily_dag_reprocess_param(env, dagbag, monkeypatch) -> None:
    """The daily DAG's ``reprocess`` param: the same re-derivation as a run (no fetch task runs)."""
    env["sim"](now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    run_daily(dagbag, SPEC, DAY)
    fresh = day_rows(env["dsn"], SPEC, DAY)
    _break_rows(env["dsn"])
    _no_iso(monkeypatch)
    dr = run_daily(dagbag, SPEC, DAY, reprocess=True)
    assert day_rows(env["dsn"], SPEC, DAY) == fresh
    fetched = [ti for ti in dr.get_task_instances() if ti.task_id == "fetch"]
    assert all(ti.state in (None, "skipped") for ti in fetched), [(ti.map_index, ti.state) for ti in fetched]
