"""ErcotHook's bundle, dashboard, workbook and archive-paging calls against the simulator over real
HTTP: token refresh after an hour, 30 requests/min with 429 back-off, secrets never leaked."""

from __future__ import annotations

import io
import json
import logging
import os
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from pmp.http import IsoHttpError
from pmp.isos.ercot import hook as hook_module
from pmp.isos.ercot.hook import ErcotHook

NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)


def calls(sim, needle: str) -> list[str]:
    return [p for _, p in sim.requests if needle in p]


def test_bundle_list_and_download(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    hook = ErcotHook()
    bundles = hook.bundle_list("NP4-188-CD")
    march = next(b for b in bundles if b["friendlyName"] == "DAMCPCNP4188_2024-03")
    payload = hook.bundle_download("NP4-188-CD", str(march["docId"]))
    outer = zipfile.ZipFile(io.BytesIO(payload))
    assert len(outer.namelist()) == 31 and all(n.endswith("DAMCPCNP4188.csv.zip") for n in outer.namelist())
    assert len(calls(sim, "oauth2")) == 1


def test_archive_listing_follows_pages(use_simulator) -> None:
    """Sixty days of hourly forecast vintages are 1,440 documents: two pages of 1,000."""
    sim = use_simulator()
    listed = ErcotHook().archive_list("NP3-565-CD", "2024-01-01T00:00:00", "2024-02-29T23:59:59")
    assert len(listed) == 60 * 24 and len({a["docId"] for a in listed}) == len(listed)
    pages = calls(sim, "/archive/np3-565-cd")
    assert len(pages) == 2 and "page=2" in pages[1]


def test_token_refreshed_after_one_hour(use_simulator, monkeypatch) -> None:
    """The hook logs in again before the id_token's hour is up (it cannot be refreshed), and a 401
    for an expired token triggers one re-login."""
    sim = use_simulator(now=NOW)
    clock = {"t": 1000.0}

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return clock["t"]

        @staticmethod
        def time() -> float:
            return 1.7e9 + clock["t"]

    monkeypatch.setattr(hook_module, "time", FakeTime)
    hook = ErcotHook()
    hook.bundle_list("NP4-188-CD")
    clock["t"] += 3000  # 50 minutes: still valid
    hook.bundle_list("NP4-188-CD")
    assert len(calls(sim, "oauth2")) == 1
    clock["t"] += 400  # 56 minutes: within the 5-minute margin, log in again first
    hook.bundle_list("NP4-188-CD")
    assert len(calls(sim, "oauth2")) == 2
    sim.set_now(NOW + timedelta(hours=2))  # the server now sees the token as expired -> 401 -> re-login
    assert hook.bundle_list("NP4-188-CD")
    assert len(calls(sim, "oauth2")) == 3


def test_rate_limit_429_on_bundle_download_is_retried(use_simulator) -> None:
    from pmp.simulator.ercot import REPORTS, bundle_id

    sim = use_simulator(now=NOW)
    sim.set_faults({"rate_limit": 2})  # first calls of the minute: "Try again in 1 seconds"
    payload = ErcotHook().bundle_download("NP6-345-CD", str(bundle_id(REPORTS[13101], (2024, 2))))
    assert zipfile.ZipFile(io.BytesIO(payload)).namelist()
    assert len(calls(sim, "/bundle/np6-345-cd/download")) == 3  # two 429s, then the zip


def test_client_pacing_defaults_to_a_little_under_30_requests_per_minute(use_simulator, monkeypatch) -> None:
    """Without the extra the hook paces API calls at 28/min (one every 60/28 s); the waits are
    recorded (the shared pacer stamps each call when it is sent)."""
    sim = use_simulator(now=NOW)
    conn = json.loads(os.environ["AIRFLOW_CONN_ERCOT_DEFAULT"])
    del conn["extra"]["api_requests_per_minute"]
    monkeypatch.setenv("AIRFLOW_CONN_ERCOT_DEFAULT", json.dumps(conn))
    slept: list[float] = []
    sleep = time.sleep

    def recorded(seconds: float) -> None:  # slept for real: a history caller re-checks its turn after
        slept.append(seconds)
        sleep(seconds)

    monkeypatch.setattr("pmp.http.time.sleep", recorded)
    hook = ErcotHook()
    for _ in range(4):
        hook.bundle_list("NP4-188-CD")
    assert len(calls(sim, "/bundle/np4-188-cd")) == 4
    assert len(slept) == 3 and all(abs(s - 60 / 28) < 0.3 for s in slept), slept


def test_two_hooks_together_stay_under_the_api_limit(use_simulator, monkeypatch) -> None:
    """Two tasks' hooks (here two threads) calling the API at once share one pace: the simulator
    allows 60/min over a 3-second window (3 calls), the connection asks for 56/min, and the six
    calls of the two hooks arrive one every ~1.07 s without a single 429. Each hook pacing only
    itself (the old per-task pacer) would send two calls at once and four within 1.1 s."""
    import threading
    import time

    monkeypatch.setenv("PMP_SIM_ERCOT_RPM", "60")
    monkeypatch.setenv("PMP_SIM_ERCOT_RATE_WINDOW", "3")
    sim = use_simulator(now=NOW, extra={"ercot_default": {"api_requests_per_minute": 56}})
    errors: list[BaseException] = []

    def work() -> None:
        try:
            hook = ErcotHook()
            for _ in range(3):
                hook.bundle_list("NP4-188-CD")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not errors, errors
    assert sim.sim.state["ercot"].get("throttled", 0) == 0, "the simulator answered 429"
    assert len(calls(sim, "/bundle/np4-188-cd")) == 6
    assert elapsed >= 5 * 60 / 56 - 0.1  # six calls, one pace: five gaps of 60/56 s


def test_dashboard_and_fuel_workbooks(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    hook = ErcotHook()
    doc = json.loads(hook.dashboard("fuel-mix"))
    assert sorted(doc["data"]) == ["2024-11-04", "2024-11-05"]
    books = hook.fuel_workbooks()
    assert sorted(books) == list(range(2019, 2025))
    assert books[2024].startswith(sim.url + "/ercot/www/files/docs/2024/10/07/")
    march = books[2024].replace("/2024/10/07/", "/2024/04/07/")  # an earlier posting (January-March)
    assert hook.download_url(march)[:2] == b"PK"
    with pytest.raises(IsoHttpError, match="HTTP 404"):
        hook.dashboard("no-such-feed")


def test_bundle_errors_never_leak_credentials(use_simulator, monkeypatch, caplog) -> None:
    from conftest import ercot_conn

    sim = use_simulator(now=NOW)
    conn = ercot_conn(sim.url)
    conn["extra"]["subscription_key"] = "wrong-key-789"
    monkeypatch.setenv("AIRFLOW_CONN_ERCOT_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IsoHttpError) as err:
        ErcotHook().bundle_list("NP4-188-CD")
    text = str(err.value) + caplog.text
    assert "HTTP 401" in str(err.value) and "subscription key" in str(err.value)
    assert "wrong-key-789" not in text and "sim-pass" not in text
