"""IsoneHook and the adapter's discovery against the simulator over real HTTP: the cookie/Referer
dance, 403 walls, non-CSV answers, pacing, Web Services auth and 429s, paging, secrets."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from pmp import registry
from pmp.http import IsoHttpError
from pmp.isos.isone.adapter import ADAPTER
from pmp.isos.isone.hook import IsoneHook
from pmp.timeutil import market_day_bounds

NOW = datetime(2024, 11, 6, 18, tzinfo=UTC)
DA = "/static-transform/csv/histRpts/da-lmp/WW_DALMP_ISO_20241103.csv"
TZ = "America/New_York"


def csv_requests(sim) -> list[str]:
    return [p for _, p in sim.requests if "/isone/www/" in p]


def test_csv_download_opens_a_report_page_first_and_reuses_the_session(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    hook = IsoneHook()
    first = hook.download_csv(DA, report_page="/isoexpress/web/reports/pricing/-/tree/lmps-da-hourly")
    second = hook.download_csv(DA, report_page="/isoexpress/web/reports/pricing/-/tree/lmps-da-hourly")
    assert first == second and first.startswith(b'"C","Day-Ahead Energy Market Hourly LMP Report"')
    paths = csv_requests(sim)
    assert sum("/isoexpress/web/reports/" in p for p in paths) == 1 and len(paths) == 3
    assert hook.download_csv(DA.replace("20241103", "20241120")) is None  # 404: not published yet
    assert hook.csv_exists(DA) and not hook.csv_exists(DA.replace("20241103", "20241120"))
    assert [m for m, p in sim.requests if p.endswith("WW_DALMP_ISO_20241120.csv")] == ["GET", "HEAD"]


def test_a_head_answered_with_an_html_page_is_not_published(use_simulator) -> None:
    """A soft 404 (200 with an HTML page) must not make discovery pick a final that is not there."""
    sim = use_simulator(now=NOW)
    sim.set_faults({"isone_html": 1})
    sleep = RecordedSleep()
    hook = IsoneHook(sleep=sleep)
    assert hook.csv_exists(DA) is False
    assert [m for m, p in sim.requests if p.endswith(DA)] == ["HEAD"] and sleep.waits == []  # no retries
    assert hook.csv_exists(DA) is True  # the same report, answered as CSV


@pytest.mark.parametrize("fault", ["isone_403", "isone_html", "isone_truncated"])
def test_walls_and_non_csv_answers_are_retried_with_a_new_session(use_simulator, fault: str) -> None:
    sim = use_simulator(now=NOW)
    sim.set_faults({fault: 2})
    body = IsoneHook().download_csv(DA)
    assert body and body.rstrip().endswith(b'lines"')
    paths = csv_requests(sim)
    assert sum(p.endswith("WW_DALMP_ISO_20241103.csv") for p in paths) == 3
    assert sum("/isoexpress/web/reports/" in p for p in paths) == 3  # a fresh session after each failure


class RecordedSleep:
    """time.sleep that also records each wait (the hook really waits; nothing is faked)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def test_persistent_wall_gives_up_with_a_clear_error(use_simulator) -> None:
    sim = use_simulator(now=NOW)  # retry_backoff_seconds 0.05 (tests' connection)
    sim.set_faults({"isone_403": -1})
    sleep = RecordedSleep()
    with pytest.raises(IsoHttpError, match=r"giving up after 4 attempts on http://127\.0\.0\.1:\d+/isone/www/.*403") as err:
        IsoneHook(sleep=sleep).download_csv(DA)
    assert err.value.status == 403
    assert sleep.waits == pytest.approx([0.05, 0.10, 0.15])  # 1x, 2x, 3x; no wait after the 4th attempt
    sim.set_faults({"isone_html": -1, "isone_403": 0})
    with pytest.raises(IsoHttpError, match="text/html instead of CSV"):
        IsoneHook().download_csv(DA)


def test_the_wall_of_a_hammering_client_is_waited_out(use_simulator, monkeypatch) -> None:
    """The wall is per client, so a new session alone does not get past it: the back-off does.
    Burst 4, wall 1.5 s, back-off 0.6 s: the 5th download meets the wall, the retry after 0.6 s still
    does, the one after 1.2 s more (1.8 s after the wall went up) gets through."""
    monkeypatch.setenv("PMP_SIM_ISONE_BURST", "4")
    monkeypatch.setenv("PMP_SIM_ISONE_WALL_SECONDS", "1.5")
    sim = use_simulator(now=NOW, extra={"isone_default": {"retry_backoff_seconds": 0.6}})
    sleep = RecordedSleep()
    hook = IsoneHook(sleep=sleep)
    start = time.monotonic()
    for _ in range(8):  # twice the burst
        assert hook.download_csv(DA)
    assert sleep.waits == pytest.approx([0.6, 1.2])
    assert time.monotonic() - start >= 1.8
    downloads = [p for p in csv_requests(sim) if p.endswith("WW_DALMP_ISO_20241103.csv")]
    assert len(downloads) == 8 + 2  # two refused by the wall
    assert sum("/isoexpress/web/reports/" in p for p in csv_requests(sim)) == 3  # a new session each time


def test_pacing_spaces_requests(use_simulator) -> None:
    use_simulator(now=NOW, extra={"isone_default": {"min_request_interval_seconds": 0.25}})
    hook = IsoneHook()
    start = time.monotonic()
    for _ in range(3):
        hook.download_csv(DA)
    assert time.monotonic() - start >= 0.25 * 3  # page + 3 downloads = 4 paced requests


def test_web_services_basic_auth_and_429_retries(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    sim.set_faults({"rate_limit": 2})
    hook = IsoneHook()
    body = json.loads(hook.ws_get("genfuelmix/day/20241103"))
    assert len(body["GenFuelMixes"]["GenFuelMix"]) > 100
    calls = [p for _, p in sim.requests if "/genfuelmix/" in p]
    assert len(calls) == 3  # two 429s, then the answer
    assert hook.ws_get("nosuchservice/day/20241103") is None


def test_credentials_never_in_errors_or_logs(use_simulator, monkeypatch, caplog) -> None:
    from conftest import sim_conn

    sim = use_simulator(now=NOW)
    conn = sim_conn("isone_default", sim.url)
    conn["login"], conn["password"] = "someone@example.com", "wrong-password-123"
    monkeypatch.setenv("AIRFLOW_CONN_ISONE_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IsoHttpError) as err:
        IsoneHook().ws_get("genfuelmix/day/20241103")
    text = str(err.value) + caplog.text
    assert err.value.status == 401 and "refused" in str(err.value)
    assert "wrong-password-123" not in text and "d3JvbmctcGFzc3dvcmQtMTIz" not in text  # nor its base64


def test_webservices_source_needs_credentials(use_simulator, monkeypatch) -> None:
    from conftest import sim_conn

    sim = use_simulator(now=NOW)
    conn = sim_conn("isone_default", sim.url, source="webservices")
    conn["login"] = conn["password"] = None
    monkeypatch.setenv("AIRFLOW_CONN_ISONE_DEFAULT", json.dumps(conn))
    spec = registry.get("isone", "lmp_dam")
    with pytest.raises(RuntimeError, match="extra.source=webservices but has no login/password"):
        ADAPTER.discover(spec, *market_day_bounds(date(2024, 11, 3), TZ), hook=IsoneHook())
    monkeypatch.setenv("AIRFLOW_CONN_ISONE_DEFAULT", json.dumps(sim_conn("isone_default", sim.url, source="ftp")))
    with pytest.raises(ValueError, match="extra.source must be one of"):
        IsoneHook().source  # noqa: B018


@pytest.mark.parametrize(("source", "day", "expected"), [
    ("csv", date(2024, 11, 3), ["WW_DALMP_ISO_20241103.csv"] + [f"5min-rt-final/lmp_5min_20241103_{b}.csv" for b in
                                                                ("00-04", "04-08", "08-12", "12-16", "16-20", "20-24")]),
    ("webservices", date(2024, 3, 10), [f"fiveminutelmp_final_day_20240310_starthour_{h:02d}.json"
                                        for h in range(24) if h != 2]),
    ("webservices", date(2024, 11, 3), [f"fiveminutelmp_final_day_20241103_starthour_{h:02d}.json" for h in range(24)]),
])
def test_five_minute_paging(use_simulator, source: str, day: date, expected: list[str]) -> None:
    """ISO-NE pages a 5-minute day into six 4-hour files (ISO Express) or 23/24 start hours (Web Services)."""
    use_simulator(now=NOW, extra={"isone_default": {"source": source}})
    spec = registry.get("isone", "lmp_rt5m")
    hook = IsoneHook()
    refs = ADAPTER.discover(spec, *market_day_bounds(day, TZ), hook=hook)
    assert [r.name for r in refs] == expected
    docs = list(ADAPTER.fetch(spec, refs, hook=hook))
    rows = sum(ADAPTER.normalize(spec, d.name, d.payload, published_at=d.ref.published).num_rows for d in docs)
    assert rows == (23 if day.month == 3 else 25) * 12 * 21


def test_prelim_until_the_final_is_out_then_the_final_and_catch_up(use_simulator) -> None:
    spec = registry.get("isone", "lmp_rt60m")
    day = date(2024, 11, 3)
    sim = use_simulator(now=datetime(2024, 11, 4, 6, tzinfo=UTC))  # 01:00 EST the next day
    # the day's prelim, and the finals of the 7 days before that came out since: ISO-NE posts a final
    # about D+2 10:00, so 11-02's is not out yet, 11-01's .. 10-27's are
    assert [r.name for r in ADAPTER.discover(spec, *market_day_bounds(day, TZ), hook=IsoneHook())] == [
        "lmp_rt_prelim_20241103.csv", "lmp_rt_final_20241101.csv",
        *(f"lmp_rt_final_202410{d}.csv" for d in (31, 30, 29, 28, 27))]
    sim.set_now(datetime(2024, 11, 5, 18, tzinfo=UTC))  # final of 11-03 out, 11-04 still prelim
    later = ADAPTER.discover(spec, *market_day_bounds(date(2024, 11, 4), TZ), hook=IsoneHook())
    assert [(r.name, r.market_day) for r in later] == [
        ("lmp_rt_prelim_20241104.csv", "2024-11-04"),
        *((f"lmp_rt_final_{d:%Y%m%d}.csv", d.isoformat()) for d in (date(2024, 11, 3) - timedelta(days=k)
                                                                  for k in range(7)))]
    assert [r.name for r in ADAPTER.discover(spec, *market_day_bounds(day, TZ), hook=IsoneHook())] == [
        "lmp_rt_final_20241103.csv"]


def test_fetch_records_publication_time_and_skips_unpublished(use_simulator) -> None:
    use_simulator(now=datetime(2024, 11, 4, 5, 1, tzinfo=UTC))  # 00:01 EST: the 11-03 load is not complete
    hook = IsoneHook()
    load = registry.get("isone", "load_actual")
    refs = ADAPTER.discover(load, *market_day_bounds(date(2024, 11, 3), TZ), hook=hook)
    assert list(ADAPTER.fetch(load, refs, hook=hook)) == []  # partial day report: not taken, asked again later
    dam = registry.get("isone", "lmp_dam")
    refs = ADAPTER.discover(dam, *market_day_bounds(date(2024, 11, 3), TZ), hook=hook)
    (doc,) = ADAPTER.fetch(dam, refs, hook=hook)
    assert doc.ref.published.astimezone(UTC).date() == date(2024, 11, 2)  # "Report generated" on D-1
    assert doc.ref.url.endswith("/isone/www" + DA) and doc.name.startswith("WW_DALMP_ISO_20241103@")


def test_a_session_is_reused_by_the_next_hook_on_the_machine(use_simulator) -> None:
    """Each Airflow task has a hook of its own: with ``session_reuse_seconds`` the second hook (the
    next task) sends its download without opening the report page again; a reused session that
    ISO Express refuses (the server forgot it: a new simulator, same cache) is dropped and a new one
    opened at once, without a back-off wait; a session older than the reuse time is not reused."""
    sim = use_simulator(now=NOW, extra={"isone_default": {"session_reuse_seconds": 60}})
    page = f"/isoexpress/web/reports/pricing/-/tree/lmps-da-hourly-{time.time_ns()}"  # a cache entry of its own
    assert IsoneHook().download_csv(DA, report_page=page)
    assert IsoneHook().download_csv(DA, report_page=page) and IsoneHook().csv_exists(DA, report_page=page)
    assert sum("/isoexpress/web/reports/" in p for p in csv_requests(sim)) == 1 and len(csv_requests(sim)) == 4

    with sim.sim.lock:
        sim.sim.state.clear()  # ISO Express forgets every session; the cache still holds ours
    sleep = RecordedSleep()
    assert IsoneHook(sleep=sleep).download_csv(DA, report_page=page)
    assert sleep.waits == []  # a stale session is no wall: no back-off
    tail = csv_requests(sim)[4:]
    assert [("/isoexpress/web/reports/" in p, p.endswith(DA)) for p in tail] == [(False, True), (True, False),
                                                                                (False, True)], tail

    hook = IsoneHook()
    cache = hook._cache(page)
    saved = json.loads(cache.path.read_text())
    cache.path.write_text(json.dumps({**saved, "used": time.time() - 61}))  # idle longer than the reuse time
    assert hook.download_csv(DA, report_page=page)
    assert sum("/isoexpress/web/reports/" in p for p in csv_requests(sim)[7:]) == 1
    assert oct(cache.path.stat().st_mode & 0o777) == "0o600"


def test_without_session_reuse_every_hook_opens_its_own(use_simulator) -> None:
    sim = use_simulator(now=NOW)  # the tests' connection: session_reuse_seconds 0
    for _ in range(2):
        assert IsoneHook().download_csv(DA)
    assert sum("/isoexpress/web/reports/" in p for p in csv_requests(sim)) == 2
