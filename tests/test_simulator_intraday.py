"""What the simulator publishes during the operating day, over real HTTP, on its clock: ISO-NE's
preliminary 5-minute LMPs (current interval) and reserve prices, ERCOT's hourly NP6-235-CD load and
NP3-565-CD forecast postings on MIS, NYISO's isolf on P-7list, including the 2024 DST days."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from pmp.isos.nyiso.hook import parse_listing
from pmp.simulator import isone, nyiso
from pmp.simulator.server import start_simulator

PAGE = "/isoexpress/web/reports/pricing/-/tree/lmps-rt-five-minute"
WS_AUTH = ("sim-user", "sim-pass")


def express(sim, path: str, **params: str) -> requests.Response:
    s = requests.Session()
    s.get(f"{sim.url}/isone/www{PAGE}", timeout=10)
    return s.get(f"{sim.url}/isone/www{path}", params=params, headers={"Referer": f"{sim.url}/isone/www{PAGE}"},
                 timeout=10)


def ws(sim, path: str) -> dict:
    r = requests.get(f"{sim.url}/isone/ws/api/v1.1/{path}", auth=WS_AUTH, headers={"Accept": "application/json"},
                     timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    return r.json()


def records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(("now", "label", "zone"), [
    (datetime(2024, 11, 5, 15, 8, 40, tzinfo=UTC), "11/05/2024 10:00", "EST"),  # 10:00-10:05 posted 10:06-10:07:30
    (datetime(2024, 11, 3, 5, 33, tzinfo=UTC), "11/03/2024 01:25", "EDT"),  # first pass of the repeated hour
    (datetime(2024, 11, 3, 6, 33, tzinfo=UTC), "11/03/2024 01:25", "EST"),  # second pass: same label, EST stamp
    (datetime(2024, 3, 10, 7, 9, tzinfo=UTC), "03/10/2024 03:00", "EDT"),  # spring forward: 01:55 EST -> 03:00 EDT
])
def test_isone_current_interval_report(now: datetime, label: str, zone: str) -> None:
    """``fiveminlmp/current?type=prelim``: three comment lines (title, Report for, Report generated; no
    Filename), the newest interval's preliminary LMP at every location, dated ``Local Time`` without
    offset; only the stamp's EDT/EST tells the passes of the repeated hour apart."""
    with start_simulator(now=now) as sim:
        r = express(sim, "/transform/csv/fiveminlmp/current", type="prelim")
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv"
        rows = records(r.text)
        assert [row[0] for row in rows[:5]] == ["C", "C", "C", "H", "H"] and rows[-1][0] == "T"
        assert rows[1][1].startswith("Report for: ") and rows[2][1].startswith("Report generated: ")
        assert rows[2][1].endswith(zone) and rows[3][1:] == isone.FIVE_MIN_NAMES
        data = [row[1:] for row in rows if row[0] == "D"]
        assert {d[0] for d in data} == {label} and [d[1] for d in data] == [str(i) for i, _, _ in isone.locations()]
        start = isone.latest_prelim_interval(now)
        assert isone.local(start).strftime("%m/%d/%Y %H:%M") == label and isone.tz_abbr(start) == zone
        assert isone.prelim_available(start) <= now < isone.prelim_available(start + timedelta(minutes=5))
        hub = next(d for d in data if d[1] == "4000")
        assert [float(x) for x in hub[2:]] == list(isone.lmp("RT5", 4000, start, "prelim"))
        # Web Services: the same interval, its offset explicit
        recs = ws(sim, "fiveminutelmp/prelim/current/all")["FiveMinLmps"]["FiveMinLmp"]
        assert {x["BeginDate"] for x in recs} == {isone.iso_ms(start)} and len(recs) == len(isone.locations())


def test_isone_prelim_prices_within_minutes_finals_after_the_day() -> None:
    day = date(2024, 11, 3)
    now = datetime(2024, 11, 3, 6, 40, tzinfo=UTC)  # 01:40 EST, second pass of the repeated hour
    with start_simulator(now=now) as sim:
        prelim = records(express(sim, "/transform/csv/fiveminreserveprice", type="prelim", start="20241103",
                                 end="20241103").text)
        final = records(express(sim, "/transform/csv/fiveminreserveprice", type="final", start="20241103",
                                end="20241103").text)
        assert "(Preliminary)" in prelim[0][1] and not [row for row in final if row[0] == "D"]
        stamps = [row[1] for row in prelim if row[0] == "D" and row[3] == "ROS"]
        # 00:00 EDT .. 01:30 EST: the repeated hour listed twice, each interval posted minutes after it ends
        assert stamps[0] == "11/03/2024 00:00" and stamps.count("11/03/2024 01:00") == 2
        assert len(stamps) == len(isone.reserve_intervals(day, now, "prelim")) == 12 + 12 + 7
        assert stamps[-1] == "11/03/2024 01:30"
        assert ws(sim, "fiveminutereserveprice/final/day/20241103") == {"FiveMinReservePrices": ""}
        recs = ws(sim, "fiveminutereserveprice/day/20241103")["FiveMinReservePrices"]["FiveMinReservePrice"]
        assert len(recs) == len(stamps) * len(isone.RESERVE_ZONES)
        assert recs[-1]["BeginDate"] == "2024-11-03T01:30:00.000-05:00"
        sim.set_now(datetime(2024, 11, 4, 5, 30, tzinfo=UTC))  # 00:30 EST the next day: the final is out
        final = records(express(sim, "/transform/csv/fiveminreserveprice", type="final", start="20241103",
                                end="20241103").text)
        assert sum(row[0] == "D" for row in final) == 300 * len(isone.RESERVE_ZONES)
    # preliminary and final prices differ in some intervals, never in the designations or requirements
    steps = isone.steps(*isone.day_bounds(day), timedelta(minutes=5))
    pairs = [(isone.reserve_record(t, z), isone.reserve_record(t, z, "prelim")) for t in steps for z, _ in
             isone.RESERVE_ZONES]
    differ = [f for f, p in pairs if f != p]
    assert 0.1 < len(differ) / len(pairs) < 0.3
    assert all({k: v for k, v in f.items() if "Price" not in k} == {k: v for k, v in p.items() if "Price" not in k}
               for f, p in pairs)


def test_ercot_load_and_forecast_posted_on_mis_during_the_day() -> None:
    """NP6-235-CD posts each hour's 15-minute demand about three minutes after the hour, NP3-565-CD a
    vintage at HH:30: MIS lists each from its posting time on (the fall-back night with ``xhr`` names)."""
    with start_simulator(now=datetime(2024, 11, 3, 8, 2, 40, tzinfo=UTC)) as sim:  # 02:02:40 CST
        def listed(rtid: int) -> list[tuple[str, str]]:
            r = requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS", params={"reportTypeId": rtid},
                             timeout=30)
            return [(d["Document"]["FriendlyName"], d["Document"]["PublishDate"])
                    for d in r.json()["ListDocsByRptTypeRes"]["DocumentList"]
                    if d["Document"]["FriendlyName"].endswith("_csv")]

        # newest first: the hour 01:00-02:00 CDT (ending 01:00 CST, posted in the repeated hour), 00:00-01:00 CDT
        assert listed(12340)[:2] == [("SYSWIDEDEMANDNP6235_20241103_0100xhr_csv", "2024-11-03T01:02:50-06:00"),
                                     ("SYSWIDEDEMANDNP6235_20241103_0100_csv", "2024-11-03T01:02:50-05:00")]
        assert listed(14837)[:3] == [("LFMODWEATHERNP3565xhr_csv", "2024-11-03T01:30:00-06:00"),
                                     ("LFMODWEATHERNP3565_csv", "2024-11-03T01:30:00-05:00"),
                                     ("LFMODWEATHERNP3565_csv", "2024-11-03T00:30:00-05:00")]
        sim.set_now(datetime(2024, 11, 3, 8, 3, tzinfo=UTC))  # 02:03 CST: the hour ending 02:00 CST is posted
        assert listed(12340)[0] == ("SYSWIDEDEMANDNP6235_20241103_0200xhr_csv", "2024-11-03T02:02:50-06:00")


def test_nyiso_isolf_appears_on_p7list_at_its_issue_time() -> None:
    day = date(2024, 3, 10)
    issued = nyiso.issue_time(day)
    with start_simulator(now=issued - timedelta(seconds=1)) as sim:
        def today() -> list:
            url = f"{sim.url}/nyiso/mis/public/P-7list.htm"
            return [f for f in parse_listing(url, requests.get(url, timeout=30).text) if f.name == "20240310isolf.csv"]

        assert today() == []
        sim.set_now(issued + timedelta(seconds=1))
        (listed,) = today()
        assert listed.last_updated == issued.replace(microsecond=0)  # Eastern with its EST label, on a DST day
