"""Deadline alerts: every DAG carries one, and the callback alerts late runs (not history runs)
over real HTTP to a webhook on loopback, without leaking the webhook's token to the log."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pmp import alerts, factory, registry


def test_every_dag_has_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference

    monkeypatch.setenv("PMP_DEADLINES", "true")
    specs = registry.datasets()
    assert specs
    for spec in specs:
        daily = factory.build_daily(spec)
        (alert,) = daily.deadline if isinstance(daily.deadline, list) else [daily.deadline]
        assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
        # a 25-hour day, then the ISO's publication lag, then 3 hours of grace
        assert alert.interval == timedelta(hours=28) + spec.publication_lag, spec.key
        assert isinstance(alert.callback, AsyncCallback)
        assert alert.callback.path == "pmp.alerts.deadline_missed"
        assert alert.callback.kwargs["dataset"] == spec.key
        if spec.realtime:
            rt = factory.build_realtime(spec)
            (alert,) = rt.deadline if isinstance(rt.deadline, list) else [rt.deadline]
            assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
            assert alert.interval == timedelta(minutes=15)


def test_deadlines_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMP_DEADLINES", "false")
    assert not factory.build_daily(registry.datasets()[0]).deadline


def test_callback_path_is_an_awaitable_the_triggerer_can_import() -> None:
    module, name = alerts.CALLBACK.rsplit(".", 1)
    assert asyncio.iscoroutinefunction(getattr(importlib.import_module(module), name))


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    monkeypatch.setenv("PMP_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hooks/s3cr3t-token")
    yield _Hook.received
    server.shutdown()


def _context(*, run_type: str, queued: datetime, deadline: datetime) -> dict:
    """The shape Airflow's scheduler gives the callback (``Deadline.handle_miss``): the DAG run as
    the REST API's DAGRunResponse, and the deadline."""
    return {
        "dag_run": {"dag_run_id": "scheduled__2026-12-01T06:00:00+00:00", "dag_id": "ercot_lmp_dam_daily",
                    "run_type": run_type, "state": "running", "queued_at": queued.isoformat(),
                    "data_interval_start": "2026-12-01T06:00:00Z", "data_interval_end": "2026-12-02T06:00:00Z"},
        "deadline": {"id": "0199", "deadline_time": deadline},
    }


def test_late_run_alerts_the_webhook_without_logging_its_token(webhook, caplog: pytest.LogCaptureFixture) -> None:
    queued = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    deadline = queued + timedelta(hours=3)
    with caplog.at_level(logging.INFO, logger="pmp.alerts"):
        asyncio.run(alerts.deadline_missed("ercot.lmp_dam", "the day is loaded",
                                           context=_context(run_type="scheduled", queued=queued, deadline=deadline)))
    assert len(webhook) == 1
    path, payload = webhook[0]
    assert path == "/hooks/s3cr3t-token"
    assert payload["dataset"] == "ercot.lmp_dam" and payload["dag_id"] == "ercot_lmp_dam_daily"
    assert payload["run_id"] == "scheduled__2026-12-01T06:00:00+00:00"
    assert payload["deadline"] == deadline.isoformat()
    assert "DEADLINE MISSED ercot.lmp_dam" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_a_run_created_late_for_yesterday_still_alerts(webhook) -> None:
    """The scheduler was down: yesterday's run is queued 18 hours after its deadline. The day is
    still missing from the warehouse, so that is an alert, not history."""
    deadline = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    asyncio.run(alerts.deadline_missed("ercot.lmp_dam", "the day is loaded",
                                       context=_context(run_type="scheduled", queued=deadline + timedelta(hours=18),
                                                        deadline=deadline)))
    assert [p["dataset"] for _, p in webhook] == ["ercot.lmp_dam"]


@pytest.mark.parametrize("run_type, late_by", [("backfill", timedelta(hours=-1)), ("scheduled", timedelta(days=2500))])
def test_history_runs_are_not_alerted(webhook, run_type: str, late_by: timedelta,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """A backfill run, or a catch-up run queued long after its day's deadline, is not late."""
    deadline = datetime(2019, 1, 2, 10, 0, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="pmp.alerts"):
        asyncio.run(alerts.deadline_missed("ercot.lmp_dam", "the day is loaded",
                                           context=_context(run_type=run_type, queued=deadline + late_by,
                                                            deadline=deadline)))
    assert webhook == []
    assert "no alert" in caplog.text and "DEADLINE MISSED" not in caplog.text


def test_a_broken_webhook_still_logs_the_alert(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PMP_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens-here")
    queued = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="pmp.alerts"):
        asyncio.run(alerts.deadline_missed("caiso.lmp_rt5m", "a */5 run finishes",
                                           context=_context(run_type="scheduled", queued=queued,
                                                            deadline=queued + timedelta(minutes=15))))
    assert "DEADLINE MISSED caiso.lmp_rt5m" in caplog.text
    assert "alert webhook failed (ConnectionError)" in caplog.text
