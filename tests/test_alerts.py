"""Deadline alerts: every DAG carries one, and the callback alerts late runs (not history runs)
over real HTTP to a webhook on loopback, without leaking the webhook's token to the log."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from live import ROOT, WebhookReceiver

from pmp import alerts, factory, registry


def test_every_dag_has_its_deadline_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference

    monkeypatch.setenv("PMP_DEADLINES", "true")
    specs = registry.datasets()
    assert specs
    for spec in specs:
        daily = factory.build_daily(spec)
        current, history = daily.deadline
        assert isinstance(current.reference, alerts.MarketDayDeadline) and current.reference.rule == "market_day"
        assert isinstance(history.reference, alerts.MarketDayDeadline) and history.reference.rule == "history"
        # a 25-hour day, then the ISO's publication lag, then 3 hours of grace
        assert current.reference.offset_seconds == (timedelta(hours=28) + spec.publication_lag).total_seconds()
        assert current.interval == timedelta(hours=1) and history.interval == timedelta(hours=3)
        for alert in (current, history):
            assert isinstance(alert.callback, AsyncCallback)
            assert alert.callback.path == "pmp.alerts.deadline_missed"
            assert alert.callback.kwargs["dataset"] == spec.key
            assert alert.callback.kwargs["expectation"] == alert.name
            assert len(alert.name) <= 250  # Airflow's deadline_alert.name column
            assert alert.name in daily.doc_md
            # the UI translates the reference type through i18next: no key or namespace separators
            assert not set(alert.reference.serialize_reference()["reference_type"]) & set(".:")
        assert history.callback.kwargs["history"] is True and "history" not in current.callback.kwargs
        assert current.name.startswith(f"{spec.iso.upper()} {spec.dataset} market day loaded by ")
        if spec.realtime:
            rt = factory.build_realtime(spec)
            (alert,) = rt.deadline
            assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
            assert alert.interval == timedelta(minutes=15)
            assert alert.name == f"{spec.iso.upper()} {spec.dataset} real-time run finishes successfully within 15 min of being queued"
            assert alert.name in rt.doc_md


def test_the_deadline_text_is_in_the_datasets_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.get("ercot", "lmp_rt15m")
    assert spec.publication_lag == timedelta(minutes=20)
    assert alerts.market_day_name(spec).startswith(
        "ERCOT lmp_rt15m market day loaded by 28 h 20 min after local midnight "
        "(25 h + publication lag 20 min + grace 3 h), and not sooner than 1 h after the run is queued")
    ref = alerts.MarketDayDeadline.market_day(spec)
    assert ref.serialize_reference()["reference_type"] == (
        "the later of queue time and 27 h 20 min after local midnight of the market day")
    monkeypatch.setenv("PMP_REALTIME_DEADLINE_MINUTES", "2")
    assert alerts.realtime_name(spec).endswith("within 2 min of being queued")
    monkeypatch.setenv("PMP_DAILY_RUN_MINUTES", "0")
    with pytest.raises(ValueError, match=r"PMP_DAILY_RUN_MINUTES=.0.: expected whole minutes > 0"):
        alerts.daily_run_time()


def test_the_reference_survives_serialization() -> None:
    ref = alerts.MarketDayDeadline.history(registry.get("nyiso", "lmp_dam"))
    data = ref.serialize_reference()
    back = alerts.MarketDayDeadline.deserialize_reference(data)
    assert back == ref and hash(back) == hash(ref)
    from airflow.serialization.encoders import encode_deadline_reference

    assert encode_deadline_reference(ref)["__class_path"] == "pmp.alerts.MarketDayDeadline"


def test_the_plugin_registers_the_reference() -> None:
    from pmp.plugin import PmpPlugin

    assert PmpPlugin.deadline_references == [alerts.MarketDayDeadline]
    source = (ROOT / "plugins" / "pmp_deadlines.py").read_text()
    assert "from pmp.plugin import PmpPlugin" in source


MIDNIGHT = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 2026-12-01 00:00 America/New_York
OFFSET = timedelta(hours=28)  # 25 h + no lag + 3 h grace
HOUR = timedelta(hours=1)


def _deadline(rule: str, queued: datetime, run_type: str = "scheduled", **kw: object) -> datetime | None:
    return alerts.deadline_time(rule, offset=OFFSET, run_time=HOUR if rule == "market_day" else 3 * HOUR,
                                run_type=run_type, queued_at=queued, day_start=MIDNIGHT, **kw)  # type: ignore[arg-type]


def test_a_current_day_keeps_its_publication_deadline() -> None:
    queued = MIDNIGHT + timedelta(hours=24, minutes=1)  # the scheduler queues it when the day ends
    assert _deadline("market_day", queued) == MIDNIGHT + OFFSET
    assert _deadline("history", queued) is None


def test_a_day_queued_late_gets_the_time_a_run_needs_and_is_not_missed_at_creation() -> None:
    for late in (timedelta(hours=27, minutes=30), timedelta(hours=40), timedelta(days=3)):
        queued = MIDNIGHT + late
        due = _deadline("market_day", queued)
        assert due is not None and due >= queued + HOUR, late
    # the scheduler was down for a day: still the current-day rule (and alert)
    assert _deadline("market_day", MIDNIGHT + timedelta(hours=40)) == MIDNIGHT + timedelta(hours=41)


@pytest.mark.parametrize("queued, run_type", [
    (MIDNIGHT + OFFSET + timedelta(days=2), "scheduled"),  # catch-up, two days after its deadline
    (MIDNIGHT + timedelta(days=2500), "scheduled"),  # catch-up from 2019
    (MIDNIGHT + timedelta(hours=25), "backfill"),  # a backfill of yesterday is history too
])
def test_history_runs_get_only_a_finish_in_reasonable_time_deadline(queued: datetime, run_type: str) -> None:
    assert _deadline("market_day", queued, run_type) is None
    assert _deadline("history", queued, run_type) == queued + 3 * HOUR
    # a run of no market day (a manual run without logical date) gets the history rule too
    no_day = alerts.deadline_time("history", offset=OFFSET, run_time=HOUR, run_type="manual", queued_at=queued,
                                  day_start=None)
    assert no_day == queued + HOUR


def test_a_backfill_queues_all_its_runs_at_once_so_later_ones_wait_their_turn() -> None:
    queued = MIDNIGHT + timedelta(days=900)
    dues = [_deadline("history", queued, "backfill", ahead=k, slots=2) for k in range(5)]
    assert dues == [queued + 3 * HOUR, queued + 3 * HOUR, queued + 6 * HOUR, queued + 6 * HOUR, queued + 9 * HOUR]


def test_an_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown deadline rule 'x'"):
        _deadline("x", MIDNIGHT)


def test_deadlines_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMP_DEADLINES", "false")
    assert not factory.build_daily(registry.datasets()[0]).deadline


def test_callback_path_is_an_awaitable_the_triggerer_can_import() -> None:
    module, name = alerts.CALLBACK.rsplit(".", 1)
    assert asyncio.iscoroutinefunction(getattr(importlib.import_module(module), name))


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A receiver on a free loopback port, named by PMP_ALERT_WEBHOOK_URL."""
    with WebhookReceiver() as hook:
        monkeypatch.setenv("PMP_ALERT_WEBHOOK_URL", hook.url)
        yield hook


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
    assert len(webhook.received) == 1
    _, path, payload = webhook.received[0]
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
    assert [p["dataset"] for p in webhook.payloads] == ["ercot.lmp_dam"]


@pytest.mark.parametrize("run_type, late_by", [("backfill", timedelta(hours=-1)), ("scheduled", timedelta(days=2500))])
def test_history_runs_are_not_alerted(webhook, run_type: str, late_by: timedelta,
                                      caplog: pytest.LogCaptureFixture) -> None:
    """A backfill run, or a catch-up run queued long after its day's deadline, is not late."""
    deadline = datetime(2019, 1, 2, 10, 0, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="pmp.alerts"):
        asyncio.run(alerts.deadline_missed("ercot.lmp_dam", "the day is loaded",
                                           context=_context(run_type=run_type, queued=deadline + late_by,
                                                            deadline=deadline)))
    assert webhook.received == []
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


def test_a_missed_history_rule_is_logged_not_alerted(webhook, caplog: pytest.LogCaptureFixture) -> None:
    """The history rule's own deadline (a slow catch-up run) is shown and logged, never alerted."""
    queued = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    with caplog.at_level(logging.INFO, logger="pmp.alerts"):
        asyncio.run(alerts.deadline_missed("ercot.lmp_dam", "history run finishes within 3 h", history=True,
                                           context=_context(run_type="scheduled", queued=queued,
                                                            deadline=queued + timedelta(hours=3))))
    assert webhook.received == []
    assert "slower than expected" in caplog.text and "DEADLINE MISSED" not in caplog.text


def test_the_simulator_withholds_what_a_fault_names() -> None:
    """``withhold:<path fragment>``: those documents answer 404, everything else is served."""
    import requests

    from pmp.simulator.server import start_simulator

    with start_simulator(faults={"withhold:/csv/realtime/": -1}) as sim:
        day = datetime.now(ZoneInfo("America/New_York")).strftime("%Y%m%d")  # NYISO's day (UTC's is ahead in the evening)
        base = f"{sim.url}/nyiso/mis/public/csv"
        assert requests.get(f"{base}/realtime/{day}realtime_zone.csv", timeout=10).status_code == 404
        assert requests.get(f"{base}/rtfuelmix/{day}rtfuelmix.csv", timeout=10).status_code == 200
        sim.set_faults({"withhold:/csv/realtime/": 0})
        assert requests.get(f"{base}/realtime/{day}realtime_zone.csv", timeout=10).status_code == 200
