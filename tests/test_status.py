"""``dataset_freshness`` (sql/089) and ``pmp status`` on a real warehouse: real-time runs against the
simulator over HTTP -> SeaweedFS -> TimescaleDB, in a warehouse of the test's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from pmp import checks, pipeline, registry
from pmp.cli import main

pytestmark = pytest.mark.integration

LOOKBACK = timedelta(minutes=60)


@pytest.fixture
def rt(private_warehouse, staging, use_simulator, monkeypatch, request) -> dict:
    monkeypatch.setenv("PMP_STAGING_URL", f"{staging}{request.node.name}/")
    return {"dsn": private_warehouse, "sim": use_simulator}


def run(key: str, end: datetime) -> dict:
    return pipeline.run_window(key, (end - LOOKBACK).isoformat(), end.isoformat(), realtime=True)


def view(dsn: str) -> dict[tuple[str, str], dict]:
    with psycopg.connect(dsn) as conn:
        cur = conn.execute("SELECT * FROM dataset_freshness")
        names = [c.name for c in cur.description]
        return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur}


def table(stdout: str) -> list[str]:
    """The rows of the printed table (the run's own log lines go to stdout before it)."""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:3] == ["ISO", "DATASET", "KIND"])
    return lines[head + 1:]


def test_fresh_datasets_show_their_newest_interval_and_documents(rt, capsys) -> None:
    rt["sim"]()  # the wall clock
    now = datetime.now(UTC)
    keys = ("isone.lmp_rt5m", "ercot.lmp_rt5m")
    for key in keys:
        run(key, now)
    rows = view(rt["dsn"])
    with psycopg.connect(rt["dsn"]) as conn:
        for key in keys:
            spec = registry.get(*key.split("."))
            row = rows[(spec.iso, spec.dataset)]
            assert row["newest_interval_end"] == checks.latest(conn, spec)  # the table's own newest end
            docs, published, loaded = conn.execute(
                "SELECT count(*), max(published_at), max(loaded_at) FROM ingest_log WHERE iso=%s AND dataset=%s",
                (spec.iso, spec.dataset)).fetchone()
            assert (row["documents"], row["newest_published_at"], row["newest_loaded_at"]) == (docs, published, loaded)
            assert row["lag"] < timedelta(minutes=row["max_lag_minutes"]) and row["behind"] is False
    assert main(["status", "--realtime"]) == 0
    out = table(capsys.readouterr().out)
    lines = {tuple(line.split()[:2]): line for line in out}
    for key in keys:
        assert lines[tuple(key.split("."))].endswith("ok")
    # every other real-time dataset is listed as never loaded, none left out
    realtime = {(s.iso, s.dataset) for s in registry.datasets() if s.realtime}
    assert set(lines) == realtime
    assert all(lines[k].endswith("never loaded") for k in realtime - {tuple(k.split(".")) for k in keys})


def test_a_dataset_loaded_hours_ago_is_behind_and_status_check_fails(rt, capsys) -> None:
    then = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=6)
    rt["sim"](now=then)  # the ISO stopped publishing six hours ago
    out = run("isone.lmp_rt5m", then)
    assert out["check"]["lag_minutes"] < 15  # fresh as of its own run
    row = view(rt["dsn"])[("isone", "lmp_rt5m")]
    assert row["behind"] is True and timedelta(hours=5, minutes=50) < row["lag"] < timedelta(hours=7)
    assert main(["status", "--iso", "isone", "--check"]) == 3
    captured = capsys.readouterr()
    # the stale dataset, and the never-loaded ones (the most behind of all), not the rest of the warehouse
    behind = captured.err.strip().removeprefix("behind their allowed lag: ").split(", ")
    assert set(behind) == {f"isone.{s.dataset}" for s in registry.datasets("isone") if s.realtime}
    line = next(x for x in table(captured.out) if x.split()[:2] == ["isone", "lmp_rt5m"])
    assert line.endswith("BEHIND") and (" 5h" in line or " 6h" in line)
    assert main(["status", "--iso", "isone"]) == 0  # without --check: a report, not a failure


def test_unknown_iso_is_bad_input(rt, capsys) -> None:
    assert main(["status", "--iso", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err
