"""CaisoAdapter discovery and fetch: trade-day windows on DST days, routes, real-time ids, raw names."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from pmp import registry
from pmp.isos.caiso.adapter import ADAPTER, current_file_day, storage_name
from pmp.isos.caiso.hook import CaisoHook
from pmp.timeutil import market_day_bounds

TZ = "America/Los_Angeles"
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)


@pytest.fixture
def hook(use_simulator, monkeypatch) -> CaisoHook:
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0")
    use_simulator(now=datetime(2024, 11, 20, 18, tzinfo=UTC))
    return CaisoHook()


def discover(hook: CaisoHook, dataset: str, day: date, **kw) -> list:
    start, end = market_day_bounds(day, TZ)
    return ADAPTER.discover(registry.get("caiso", dataset), start, end, hook=hook, **kw)


def query(ref) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(ref.url).query).items()}


def window(ref) -> tuple[datetime, datetime]:
    q = query(ref)
    return tuple(datetime.strptime(q[k], "%Y%m%dT%H:%M-0000").replace(tzinfo=UTC)
                 for k in ("startdatetime", "enddatetime"))


@pytest.mark.parametrize(("day", "hours", "first"), [(SPRING, 23, 8), (FALL, 25, 7), (date(2024, 6, 1), 24, 7)])
def test_trade_day_windows_start_at_07_or_08_utc(hook, day: date, hours: int, first: int) -> None:
    (dam,) = discover(hook, "lmp_dam", day)
    s, e = window(dam)
    assert s.hour == first and (e - s) == timedelta(hours=hours)
    assert query(dam)["grp_type"] == "ALL_APNODES"
    assert query(dam)["queryname"] == "PRC_LMP" and query(dam)["version"] == "12" and query(dam)["resultformat"] == "6"
    rt = discover(hook, "lmp_rt5m", day)
    assert len(rt) == hours and [window(r)[0] for r in rt] == [s + timedelta(hours=i) for i in range(hours)]
    assert all(r.market_day == day.isoformat() for r in rt)
    assert rt[0].doc_id == f"PRC_INTVL_LMP_RTM_{s:%Y%m%dT%H%M}Z_{s + timedelta(hours=1):%Y%m%dT%H%M}Z_v3"


def test_ancillary_services_one_request_per_product(hook) -> None:
    refs = discover(hook, "as_dam", SPRING)
    assert sorted(query(r)["anc_type"] for r in refs) == ["NR", "RD", "RMD", "RMU", "RU", "SR"]
    assert len({r.doc_id for r in refs}) == 6
    (rt,) = discover(hook, "as_rt15m", SPRING)
    assert query(rt)["anc_type"] == "ALL" and query(rt)["queryname"] == "PRC_INTVL_AS"


def test_load_routes(hook) -> None:
    refs = discover(hook, "load_actual", FALL)
    assert sorted(r.route for r in refs) == ["oasis", "outlook"]
    outlook = next(r for r in refs if r.route == "outlook")
    assert outlook.url.endswith("/outlook/history/20241103/demand.csv") and outlook.name == "outlook_demand_20241103.csv"
    (fuel,) = discover(hook, "fuel_mix", FALL)
    assert fuel.url.endswith("/outlook/history/20241103/fuelsource.csv")


def test_load_forecast_documents_of_an_issue_day(hook) -> None:
    """Forecasts issued on 2024-11-02: DAM for the 25-hour 11-03, 2DA for 11-04, 7DA for 11-09, and
    RTPD/RTD for intervals whose issue time (start - 22.5 / 2.5 min) falls inside 11-02."""
    day = date(2024, 11, 2)
    refs = {(query(r)["market_run_id"], query(r).get("execution_type", "")): r for r in discover(hook, "load_forecast", day)}
    assert set(refs) == {("DAM", ""), ("2DA", ""), ("7DA", ""), ("RTM", "RTPD"), ("RTM", "RTD")}
    for (run, _), target in ((("DAM", ""), 1), (("2DA", ""), 2), (("7DA", ""), 7)):
        assert window(refs[(run, "")]) == market_day_bounds(day + timedelta(days=target), TZ)
    start, end = market_day_bounds(day, TZ)
    assert window(refs[("RTM", "RTD")]) == (start + timedelta(minutes=5), end + timedelta(minutes=5))
    assert window(refs[("RTM", "RTPD")]) == (start + timedelta(minutes=30), end + timedelta(minutes=30))
    assert all(r.market_day == "2024-11-02" for r in refs.values())


def test_dam_lmp_route_by_retention(use_simulator, monkeypatch) -> None:
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0")
    use_simulator()
    hook = CaisoHook()
    old, recent, ancient = date.today() - timedelta(days=1500), date.today() - timedelta(days=30), date(2020, 6, 1)
    assert discover(hook, "lmp_dam", recent)[0].route == "oasis"
    (grp,) = discover(hook, "lmp_dam", old)
    assert grp.route == "groupzip" and query(grp)["groupid"] == "DAM_LMP_GRP" and grp.url.split("?")[0].endswith(
        "/oasisapi/GroupZip")
    assert discover(hook, "lmp_dam", ancient)[0].route == "oasis"  # older than GroupZip: nothing better to try
    use_simulator(extra={"caiso_default": {"dam_lmp_route": "groupzip"}})
    assert discover(CaisoHook(), "lmp_dam", recent)[0].route == "groupzip"


def test_realtime_refs_reuse_daily_hour_ids_plus_a_partial_hour(hook) -> None:
    spec = registry.get("caiso", "lmp_rt5m")
    now = datetime(2024, 11, 20, 18, 23, 40, tzinfo=UTC)
    refs = ADAPTER.discover(spec, now - timedelta(minutes=90), now, hook=hook, realtime=True)
    windows = [window(r) for r in refs]
    # published up to 18:15 (5 minutes of lag, 5-minute steps): 16:00 and 17:00 whole, 18:00-18:15 partial
    assert windows == [(datetime(2024, 11, 20, 16, tzinfo=UTC), datetime(2024, 11, 20, 17, tzinfo=UTC)),
                       (datetime(2024, 11, 20, 17, tzinfo=UTC), datetime(2024, 11, 20, 18, tzinfo=UTC)),
                       (datetime(2024, 11, 20, 18, tzinfo=UTC), datetime(2024, 11, 20, 18, 15, tzinfo=UTC))]
    daily = {r.doc_id for r in discover(hook, "lmp_rt5m", date(2024, 11, 20))}
    assert refs[0].doc_id in daily and refs[1].doc_id in daily and refs[2].doc_id not in daily
    fc = ADAPTER.discover(registry.get("caiso", "load_forecast"), now - timedelta(minutes=30), now, hook=hook,
                          realtime=True)
    kinds = {query(r)["execution_type"] for r in fc}
    assert kinds == {"RTD", "RTPD"} and all(window(r)[1] <= now + timedelta(minutes=15) for r in fc)
    (cur,) = ADAPTER.discover(registry.get("caiso", "fuel_mix"), now - timedelta(minutes=30), now, hook=hook,
                              realtime=True)
    assert cur.url.endswith("/outlook/current/fuelsource.csv") and cur.doc_id == "outlook_fuelsource_current_20241120T1820Z"


def test_fetch_names_raw_files_by_content_and_skips_no_data(hook, use_simulator) -> None:
    spec = registry.get("caiso", "as_dam")
    refs = discover(hook, "as_dam", FALL)[:2]
    docs = list(ADAPTER.fetch(spec, refs, hook=hook))
    assert [d.ref for d in docs] == refs
    for d in docs:
        assert re.fullmatch(re.escape(d.ref.doc_id) + r"\.[0-9a-f]{12}\.zip", d.name)
        assert d.name == storage_name(d.ref.name, d.payload)
    future = discover(hook, "as_dam", date(2024, 12, 20))[:1]  # after the simulator's clock
    assert list(ADAPTER.fetch(spec, future, hook=hook)) == []


def test_fetch_current_outlook_resolves_the_date(hook) -> None:
    spec = registry.get("caiso", "fuel_mix")
    now = datetime.now(UTC)
    (ref,) = ADAPTER.discover(spec, now - timedelta(minutes=30), now, hook=hook, realtime=True)
    (doc,) = ADAPTER.fetch(spec, [ref], hook=hook)
    day = current_file_day(doc.payload, datetime.now(UTC))
    assert doc.ref.market_day == day.isoformat() and f"_{day:%Y%m%d}_current_" in doc.name


def test_current_file_day_after_midnight_and_with_forecasts_ahead() -> None:
    demand = (b"Time,Day ahead forecast,Hour ahead forecast,Current demand\r\n00:00,1,1,5\r\n00:05,1,1,6\r\n"
              b"00:10,1,1,\r\n23:55,1,1,\r\n")
    at = datetime(2024, 11, 20, 8, 12, tzinfo=UTC)  # 00:12 PST
    assert current_file_day(demand, at) == date(2024, 11, 20)  # forecasts for 23:55 do not count
    yesterday = "\ufeffTime,Solar\r\n00:00,1\r\n23:55,2\r\n".encode()
    assert current_file_day(yesterday, at) == date(2024, 11, 19)
