"""MISO hook and simulator over real HTTP: the bot wall's 403 challenge page and HTML answers give a
clear error (never a parse), the public API's one-call-a-minute limit (429 + Retry-After, and the
hook's machine-wide pacing), Data Exchange paging and key handling, reports' publication by HEAD."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

import pytest
import requests

from pmp.http import IsoHttpError
from pmp.isos.miso.hook import MisoChallengeError, MisoHook
from pmp.simulator import miso as sim

NOW = datetime(2024, 11, 12, 18, tzinfo=UTC)


@pytest.fixture
def miso(use_simulator, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PMP_SIM_MISO_API_PER_MINUTE", "1000")

    def start(**extra: object):
        handle = use_simulator(now=NOW, extra={"miso_default": dict(extra)})
        return handle, MisoHook(sleep=lambda s: None)

    return start


def test_challenge_page_is_a_clear_error_not_a_parse(miso) -> None:
    handle, hook = miso(challenge_retries=1)
    handle.set_faults({"miso_challenge": 2})
    with pytest.raises(MisoChallengeError) as err:
        hook.report("20241103_da_expost_lmp.csv")
    msg = str(err.value)
    assert "bot-challenge page" in msg and "2 attempts" in msg and "<html" not in msg.lower()
    handle.set_faults({"miso_challenge": 1})  # one challenge, then the wall lets the retry through
    body, modified = hook.report("20241103_da_expost_lmp.csv")
    assert body.startswith(b"Day Ahead Market ExPost LMPs\n") and modified == datetime(2024, 11, 2, 20, tzinfo=UTC)
    handle.set_faults({"miso_html_200": 3})
    with pytest.raises(MisoChallengeError, match="HTTP 200 with a bot-challenge page"):
        hook.api("FuelMix")


def test_reports_publication_by_head_and_404(miso) -> None:
    _, hook = miso()
    assert hook.report_published("20241103_rt_lmp_final.csv") == datetime(2024, 11, 8, 15, tzinfo=UTC)
    assert hook.report_published("20241112_rt_lmp_prelim.csv") is False  # due 11-13 06:00 EST
    assert hook.report("20241112_rt_lmp_prelim.csv") is None
    assert hook.report_published("20241111_5MIN_LMP.zip") == datetime(2024, 11, 11, 15, tzinfo=UTC)
    assert hook.report_published("20241112_5MIN_LMP.zip") is False  # weekly files are Monday-dated


def test_public_api_one_call_a_minute(miso, monkeypatch: pytest.MonkeyPatch) -> None:
    handle, _ = miso()
    monkeypatch.setenv("PMP_SIM_MISO_API_PER_MINUTE", "1")
    url = handle.url + "/miso/api/api/FuelMix"
    first = requests.get(url, timeout=10)
    assert first.status_code == 200 and first.json()["Fuel"]["Type"]
    second = requests.get(url, timeout=10)
    assert second.status_code == 429 and 1 <= int(second.headers["Retry-After"]) <= 60
    monkeypatch.setenv("PMP_SIM_MISO_API_PER_MINUTE", "60")  # one a second: the hook's pacer keeps to it
    hook = MisoHook()
    hook._cfg = {**hook.cfg, "api_pacer": MisoHook.shared_per_minute(60, f"miso-test {time.time()}")}
    t0 = time.monotonic()
    for _ in range(3):
        assert json.loads(hook.api("MarketPricing/GetAncillaryServicesMcp"))["MCPData"]["RealTimeMCP"]
    assert time.monotonic() - t0 >= 1.9  # three calls, two pauses of a second, no 429 met


def test_data_exchange_paging_and_key(miso, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMP_SIM_MISO_DX_PAGE_SIZE", "1000")
    _, hook = miso(dx_pricing_key="sim-miso-key")
    pages = hook.dx_pages("pricing/v1/real-time/2024-11-03/lmp-expost", {"preliminaryFinal": "Preliminary"})
    items = [i for p in pages for i in json.loads(p)["data"]]
    assert len(pages) == 7 and len(items) == 288 * len(sim.NODES)  # 6336 rows, 1000 a page
    assert items[0]["timeInterval"]["start"] == "2024-11-03 00:00:00.000"
    _, bad = miso(dx_pricing_key="not-the-key")
    with pytest.raises(IsoHttpError, match="subscription key of connection 'miso_default' was refused") as err:
        bad.dx_pages("pricing/v1/real-time/2024-11-03/lmp-expost", {})
    assert "not-the-key" not in str(err.value)
    _, none = miso()
    with pytest.raises(IsoHttpError, match="no extra.dx_pricing_key"):
        none.dx_pages("pricing/v1/real-time/2024-11-03/lmp-expost", {})


def test_simulator_weekly_and_daily_schedules() -> None:
    assert sim.published("20241111_5MIN_LMP.zip") == datetime(2024, 11, 11, 15, tzinfo=UTC)
    assert [d.isoformat() for d in sim.weekly_days(date(2024, 11, 11))][::6] == ["2024-10-28", "2024-11-03"]
    assert sim.published("20241103_df_al.xls") == datetime(2024, 11, 3, 12, tzinfo=UTC)
    assert sim.published("historical_gen_fuel_mix_2024.xlsx") == datetime(2025, 1, 5, 17, tzinfo=UTC)
    assert sim.published("20181231_da_expost_lmp.csv") is None
