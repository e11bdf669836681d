"""CaisoHook against the simulator over real HTTP: zips, XML errors, GroupZip polling, 429, windows, secrets."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest

from pmp.http import IsoHttpError
from pmp.isos.caiso.hook import CaisoHook, OasisError
from pmp.isos.caiso.oasis import request_time, trade_day_windows

NOW = datetime(2024, 11, 20, 18, tzinfo=UTC)
DAY = (datetime(2024, 6, 1, 7, tzinfo=UTC), datetime(2024, 6, 2, 7, tzinfo=UTC))


@pytest.fixture
def sim(use_simulator, monkeypatch):
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0")
    return use_simulator(now=NOW)


def oasis_calls(sim) -> list[str]:
    return [p for _, p in sim.requests if "/oasisapi/" in p]


def test_single_zip_returns_the_zip_as_downloaded(sim) -> None:
    payload = CaisoHook().single_zip("PRC_LMP", "12", *DAY, market_run_id="DAM", grp_type="ALL_APNODES")
    names = zipfile.ZipFile(io.BytesIO(payload)).namelist()
    assert len(names) == 5 and all(n.endswith(".csv") for n in names)
    (path,) = oasis_calls(sim)
    # the documented URL form: GMT times with an unescaped colon, resultformat=6 for CSV
    assert "startdatetime=20240601T07:00-0000&enddatetime=20240602T07:00-0000" in path and "resultformat=6" in path


def test_no_data_is_an_empty_result(sim) -> None:
    hook = CaisoHook()
    future = (NOW + timedelta(days=3), NOW + timedelta(days=4))
    assert hook.single_zip("PRC_LMP", "12", *future, market_run_id="DAM", grp_type="ALL_APNODES") is None
    sim.set_faults({"caiso_no_data": 1})
    assert hook.single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL") is None
    assert len(oasis_calls(sim)) == 2  # no retry for "no data"


def test_windows_of_at_most_31_trade_days() -> None:
    windows = trade_day_windows(date(2024, 1, 1), date(2024, 12, 31))
    assert len(windows) == 12
    assert windows[0] == (datetime(2024, 1, 1, 8, tzinfo=UTC), datetime(2024, 2, 1, 8, tzinfo=UTC))
    assert all(e - s <= timedelta(days=31, hours=1) for s, e in windows)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    starts = {s.hour for s, _ in windows}
    assert starts == {7, 8}  # PDT months start at 07:00 UTC, PST months at 08:00 UTC
    march = trade_day_windows(date(2024, 3, 10), date(2024, 3, 10), max_days=1)
    assert march == [(datetime(2024, 3, 10, 8, tzinfo=UTC), datetime(2024, 3, 11, 7, tzinfo=UTC))]  # 23 h
    nov = trade_day_windows(date(2024, 11, 3), date(2024, 11, 3), max_days=1)
    assert nov == [(datetime(2024, 11, 3, 7, tzinfo=UTC), datetime(2024, 11, 4, 8, tzinfo=UTC))]  # 25 h
    assert request_time(nov[0][1]) == "20241104T08:00-0000"
    with pytest.raises(ValueError):
        trade_day_windows(date(2024, 1, 1), date(2024, 3, 1), max_days=32)


def test_window_over_31_days_refused_before_any_request(sim) -> None:
    with pytest.raises(ValueError, match="at most 31 days"):
        CaisoHook().single_zip("PRC_AS", "12", DAY[0], DAY[0] + timedelta(days=32), market_run_id="DAM")
    assert oasis_calls(sim) == []


def test_window_error_from_oasis_is_a_clear_failure(sim) -> None:
    sim.set_faults({"caiso_window_error": 1})
    with pytest.raises(OasisError) as err:
        CaisoHook().single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")
    assert err.value.code == 1004
    assert "31 days" in str(err.value) and "startdatetime" not in str(err.value)
    assert len(oasis_calls(sim)) == 1


def test_too_many_nodes_is_a_clear_failure(sim) -> None:
    nodes = ",".join(f"NODE_{i}" for i in range(11))
    with pytest.raises(OasisError, match="1017"):
        CaisoHook().single_zip("PRC_LMP", "12", *DAY, market_run_id="DAM", node=nodes)


def test_transient_system_error_is_retried(sim) -> None:
    sim.set_faults({"caiso_system_error": 2})
    assert CaisoHook().single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")
    assert len(oasis_calls(sim)) == 3


def test_groupzip_polls_while_processing(sim) -> None:
    hook = CaisoHook()
    payload = hook.group_zip("DAM_LMP_GRP", "12", datetime(2024, 6, 1, 7, tzinfo=UTC), datetime(2024, 6, 2, 7, tzinfo=UTC))
    assert len(zipfile.ZipFile(io.BytesIO(payload)).namelist()) == 5
    assert len(oasis_calls(sim)) == 2  # 1015 first, then the file
    sim.set_faults({"caiso_groupzip_processing": 3})
    hook.group_zip("DAM_LMP_GRP", "12", datetime(2024, 6, 2, 7, tzinfo=UTC), datetime(2024, 6, 3, 7, tzinfo=UTC))
    assert len(oasis_calls(sim)) == 2 + 1 + 3 + 1


def test_groupzip_gives_up_after_max_polls(use_simulator, monkeypatch) -> None:
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0")
    sim = use_simulator(now=NOW, extra={"caiso_default": {"groupzip_max_polls": 2}})
    sim.set_faults({"caiso_groupzip_processing": -1})
    with pytest.raises(OasisError, match="1015"):
        CaisoHook().group_zip("DAM_LMP_GRP", "12", *DAY)
    assert len(oasis_calls(sim)) == 3


def test_429_acceptable_use_page_waits_and_retries(use_simulator, monkeypatch) -> None:
    """The simulator allows one request per 0.2 s; without a client-side limiter the hook gets the
    429 page and retries with back-off until it gets through."""
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0.2")
    sim = use_simulator(now=NOW, extra={"caiso_default": {"retry_backoff_seconds": 0.1}})
    hook = CaisoHook()
    for _ in range(2):
        assert hook.single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")
    assert len(oasis_calls(sim)) > 2  # at least one 429 answered and retried


def test_client_side_limiter_keeps_oasis_happy_across_hooks(use_simulator, monkeypatch) -> None:
    """With the limiter at exactly OASIS' interval plus the margin, no request is ever refused
    (max_attempts=1: a 429 would fail), even from two hook instances (tasks) in a row: the limiter
    is shared through a lock file. The simulator, like OASIS, measures arrivals."""
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0.2")
    sim = use_simulator(now=NOW, extra={"caiso_default": {"min_request_interval_seconds": 0.2,
                                                          "request_margin_seconds": 0.05, "max_attempts": 1}})
    for _ in range(2):
        hook = CaisoHook()
        for _ in range(2):
            assert hook.single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")
    assert len(oasis_calls(sim)) == 4


def test_limiter_defaults_to_oasis_interval_plus_margin(monkeypatch) -> None:
    """Without extras: 5 s (OASIS' one request per 5 s) + 0.5 s for send-vs-arrival jitter."""
    from conftest import CONNS

    conn = json.loads(json.dumps(CONNS["caiso_default"]))
    for key in ("min_request_interval_seconds", "request_margin_seconds", "www_min_request_interval_seconds"):
        conn["extra"].pop(key, None)
    monkeypatch.setenv("AIRFLOW_CONN_CAISO_DEFAULT", json.dumps(conn))
    cfg = CaisoHook().cfg
    assert cfg["oasis_pacer"].min_interval == 5.5
    assert cfg["www_pacer"].min_interval == 1.0  # politeness towards www.caiso.com, no margin


def test_server_errors_retried_then_clear_failure(sim) -> None:
    sim.set_faults({"server_error": 1})
    assert CaisoHook().single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")
    sim.set_faults({"server_error": -1})
    with pytest.raises(IsoHttpError, match=r"giving up after \d+ attempts on http://127\.0\.0\.1:\d+/caiso/oasis/oasisapi"):
        CaisoHook().single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")


def test_outlook_history_current_and_cache_buster(use_simulator) -> None:
    sim = use_simulator(now=NOW, extra={"caiso_default": {"www_min_request_interval_seconds": 0}})
    hook = CaisoHook()
    history = hook.outlook("fuelsource", date(2024, 11, 3))
    assert history.decode("utf-8-sig").startswith("Time,Solar")
    current = hook.outlook("demand", None)
    assert current.startswith(b"Time,Day ahead forecast")
    paths = [p for _, p in sim.requests if "/outlook/" in p]
    assert paths[0].startswith("/caiso/www/outlook/history/20241103/fuelsource.csv?_=")
    assert paths[1].startswith("/caiso/www/outlook/current/demand.csv?_=")
    with pytest.raises(IsoHttpError, match="HTTP 404"):
        hook.outlook("fuelsource", date(2024, 12, 25))  # after the simulator's today


def test_proxy_credentials_never_in_errors_or_logs(use_simulator, monkeypatch, caplog) -> None:
    """CAISO needs no login; the only secrets a connection can hold are proxy credentials (and an
    unused password). An unreachable proxy fails with a message that names neither."""
    from conftest import sim_conn

    handle = use_simulator(now=NOW)
    conn = sim_conn("caiso_default", handle.url)
    conn["password"] = "conn-password-123"
    conn["extra"]["proxy_url"] = "http://proxyuser:proxy-secret-456@127.0.0.1:9"
    conn["extra"]["max_attempts"] = 2
    monkeypatch.setenv("AIRFLOW_CONN_CAISO_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IsoHttpError) as err:
        CaisoHook().single_zip("SLD_FCST", "1", *DAY, market_run_id="ACTUAL")
    text = str(err.value) + caplog.text
    assert "proxy-secret-456" not in text and "conn-password-123" not in text and "proxyuser" not in text
    assert "giving up after 2 attempts" in str(err.value)
