"""The ISO-NE simulator speaks the real shapes: ISO Express records like the samples, cookie + Referer,
publication times, Web Services auth/JSON quirks, and switchable faults."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, date, datetime

import pytest
import requests
from helpers import samples_dir

from pmp.simulator import isone
from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("isone")
NOW = datetime(2024, 11, 6, 18, tzinfo=UTC)
DA = "/static-transform/csv/histRpts/da-lmp/WW_DALMP_ISO_20241103.csv"
PAGE = "/isoexpress/web/reports/pricing/-/tree/lmps-da-hourly"


@pytest.fixture
def sim():
    with start_simulator(now=NOW) as handle:
        yield handle


def session(sim) -> tuple[requests.Session, dict[str, str]]:
    s = requests.Session()
    r = s.get(f"{sim.url}/isone/www{PAGE}", timeout=10)
    assert r.status_code == 200 and "JSESSIONID" in s.cookies
    return s, {"Referer": f"{sim.url}/isone/www{PAGE}"}


def records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_da_file_has_the_shape_of_the_real_sample(sim) -> None:
    s, ref = session(sim)
    r = s.get(f"{sim.url}/isone/www{DA}", headers=ref, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv"
    text = r.text
    real = next(SAMPLES.glob("dam_hourly_lmp_HEAD_ONLY*")).read_text()
    ours, theirs = records(text), records(real)
    assert [row[0] for row in ours[:7]] == [row[0] for row in theirs] == ["C", "C", "C", "C", "H", "H", "D"]
    assert ours[0] == theirs[0]  # report title
    for i, prefix in [(1, "Filename: "), (2, "Report for: "), (3, "Report generated: ")]:
        assert ours[i][1].startswith(prefix) and theirs[i][1].startswith(prefix)
    assert ours[1][1] == "Filename: WW_DALMP_ISO_20241103.csv" and ours[2][1] == "Report for: 11/03/2024 - 11/03/2024"
    assert ours[3][1].endswith(("EDT", "EST")) and ours[3][1][18:20] == "11"
    assert ours[4] == theirs[4] and ours[5] == theirs[5]  # field names and types, byte for byte
    # quoting as published: strings quoted, numbers bare
    data_line = next(line for line in text.splitlines() if line.startswith('"D"'))
    real_line = next(line for line in real.splitlines() if line.startswith('"D"'))
    shape = [f.startswith('"') for f in data_line.split(",")]
    assert shape == [f.startswith('"') for f in real_line.split(",")]
    assert "\r" not in text and not text.endswith("\n") and text.splitlines()[-1].startswith('"T",')
    # every location each hour; the hour ending labels of a fall-back day
    hub = [row for row in ours if row[0] == "D" and row[4] == ".H.INTERNAL_HUB"]
    assert [row[2] for row in hub][:4] == ["01", "02", "02X", "03"] and len(hub) == 25
    assert ours[-1] == ["T", f"{sum(row[0] == 'D' for row in ours)} lines"]


def test_cookie_and_referer_are_both_required(sim) -> None:
    url = f"{sim.url}/isone/www{DA}"
    assert requests.get(url, timeout=10).status_code == 403
    assert requests.get(url, headers={"Referer": f"{sim.url}/isone/www{PAGE}"}, timeout=10).status_code == 403
    s, ref = session(sim)
    no_ref = s.get(url, timeout=10)
    assert no_ref.status_code == 403 and "Access Denied" in no_ref.text and no_ref.headers["Content-Type"] == "text/html"
    assert s.get(url, headers=ref, timeout=10).status_code == 200


def test_publication_times_follow_the_simulated_clock(sim) -> None:
    s, ref = session(sim)
    base = f"{sim.url}/isone/www/static-transform/csv/histRpts"
    # 2024-11-05 at NOW (11-06 13:00 EST): DA out, prelim out, final not yet (due 11-07 ~10:00)
    assert s.get(f"{base}/rt-lmp/lmp_rt_prelim_20241105.csv", headers=ref, timeout=10).status_code == 200
    assert s.get(f"{base}/rt-lmp/lmp_rt_final_20241105.csv", headers=ref, timeout=10).status_code == 404
    assert s.get(f"{base}/rt-lmp/lmp_rt_final_20241104.csv", headers=ref, timeout=10).status_code == 200
    assert s.get(f"{base}/da-lmp/WW_DALMP_ISO_20241106.csv", headers=ref, timeout=10).status_code == 200
    assert s.get(f"{base}/da-lmp/WW_DALMP_ISO_20241108.csv", headers=ref, timeout=10).status_code == 404
    # a 5-minute block is out ten minutes after it ends; generated reports hold what is published so far
    sim.set_now(datetime(2024, 11, 6, 14, 25, tzinfo=UTC))  # 09:25 EST
    assert s.get(f"{base}/5min-rt-prelim/lmp_5min_20241106_04-08.csv", headers=ref, timeout=10).status_code == 200
    assert s.get(f"{base}/5min-rt-prelim/lmp_5min_20241106_08-12.csv", headers=ref, timeout=10).status_code == 404
    load = s.get(f"{sim.url}/isone/www/transform/csv/fiveminutesystemload", params={"start": "20241106", "end": "20241106"},
                 headers=ref, timeout=10).text
    stamps = [row[1] for row in records(load) if row[0] == "D"]
    assert stamps[0] == "11/06/2024 00:00" and stamps[-1] == "11/06/2024 09:15"  # 09:15-09:20 ends 09:20, +2 min
    assert "Report generated: 11/06/2024 09:25:" in load


def test_web_services_auth_json_and_quirks(sim) -> None:
    base = f"{sim.url}/isone/ws/api/v1.1"
    path = f"{base}/hourlylmp/da/final/day/20241103"
    r = requests.get(path, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(path, auth=("sim-user", "wrong"), timeout=10).status_code == 401
    xml = requests.get(path, auth=("sim-user", "sim-pass"), timeout=10)
    assert xml.headers["Content-Type"] == "application/xml" and xml.text.startswith("<?xml")
    for url, headers in [(path, {"Accept": "application/json"}), (path + ".json", {})]:
        doc = requests.get(url, auth=("sim-user", "sim-pass"), headers=headers, timeout=10).json()
        recs = doc["HourlyLmps"]["HourlyLmp"]
        assert len(recs) == 25 * len(isone.locations())
        assert recs[0]["BeginDate"] == "2024-11-03T00:00:00.000-04:00"
        assert recs[0]["Location"].keys() == {"@LocId", "@LocType", "$"}
        assert {r["BeginDate"][11:] for r in recs if r["BeginDate"][11:13] == "01"} == {
            "01:00:00.000-04:00", "01:00:00.000-05:00"}  # the repeated hour carries its own offset
    unpublished = requests.get(f"{base}/hourlylmp/rt/final/day/20241110", auth=("sim-user", "sim-pass"),
                               headers={"Accept": "application/json"}, timeout=10).json()
    assert unpublished == {"HourlyLmps": ""}
    sim.set_now(datetime(2024, 11, 6, 5, 8, 30, tzinfo=UTC))  # 00:08 EST: one 5-minute load value so far
    single = requests.get(f"{base}/fiveminutesystemload/day/20241106.json", auth=("sim-user", "sim-pass"), timeout=10)
    assert isinstance(single.json()["FiveMinSystemLoads"]["FiveMinSystemLoad"], dict)  # one record: an object


def test_wsclient_forecast_answer(sim) -> None:
    s, _ = session(sim)
    page = f"{sim.url}/isone/www/isoexpress/web/reports/load-and-demand/-/tree/hourly-load-forecast"
    s.get(page, timeout=10)
    r = s.post(f"{sim.url}/isone/www/ws/wsclient", headers={"Referer": page}, timeout=10,
               data={"_nstmp_requestType": "systemload", "_nstmp_startDate": "11/03/2024", "_nstmp_endDate": "11/03/2024"})
    body = r.json()
    assert r.headers["Content-Type"] == "application/json"
    forecast = body[0]["data"]["forecast"]
    assert len(forecast) == 25 and set(forecast[0]) == {"BeginDate", "CreationDate", "Mw"}


@pytest.mark.parametrize("fault", ["isone_403", "isone_html", "isone_truncated", "isone_bad_price", "server_error"])
def test_faults_switch_on_and_off(sim, fault: str) -> None:
    s, ref = session(sim)
    url = f"{sim.url}/isone/www{DA}"
    good = s.get(url, headers=ref, timeout=10).content
    sim.set_faults({fault: 1})
    bad = s.get(url, headers=ref, timeout=10)
    if fault == "isone_403":
        assert bad.status_code == 403 and b"Access Denied" in bad.content
    elif fault == "isone_html":
        assert bad.status_code == 200 and bad.headers["Content-Type"].startswith("text/html")
    elif fault == "isone_truncated":
        assert bad.status_code == 200 and len(bad.content) < len(good) and not bad.content.rstrip().endswith(b'lines"')
    elif fault == "isone_bad_price":
        assert bad.status_code == 200 and b"n/a" in bad.content and len(bad.content.splitlines()) == len(good.splitlines())
    else:
        assert bad.status_code == 500
    assert s.get(url, headers=ref, timeout=10).content == good  # one shot only, and deterministic


def test_a_hammering_client_hits_the_wall_whatever_its_session(sim, monkeypatch) -> None:
    monkeypatch.setenv("PMP_SIM_ISONE_BURST", "3")
    monkeypatch.setenv("PMP_SIM_ISONE_WALL_SECONDS", "0.6")
    s, ref = session(sim)
    codes = [s.get(f"{sim.url}/isone/www{DA}", headers=ref, timeout=10).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [403, 403]
    fresh, ref2 = session(sim)  # the wall is per client address: a new session does not get round it
    assert fresh.get(f"{sim.url}/isone/www{DA}", headers=ref2, timeout=10).status_code == 403
    time.sleep(0.7)  # waited out
    assert fresh.get(f"{sim.url}/isone/www{DA}", headers=ref2, timeout=10).status_code == 200


def test_web_services_rate_limit(sim, monkeypatch) -> None:
    monkeypatch.setenv("PMP_SIM_ISONE_WS_RPS", "2")
    url = f"{sim.url}/isone/ws/api/v1.1/genfuelmix/day/20241103.json"
    codes = [requests.get(url, auth=("sim-user", "sim-pass"), timeout=10) for _ in range(4)]
    assert [r.status_code for r in codes[:2]] == [200, 200]
    assert codes[-1].status_code == 429 and codes[-1].headers["Retry-After"] == "1"


def test_deterministic_and_small_by_default() -> None:
    a = isone.five_min_csv(date(2021, 2, 15), "12-16", "prelim").render(NOW)
    b = isone.five_min_csv(date(2021, 2, 15), "12-16", "prelim").render(NOW)
    assert a == b
    assert len(isone.locations()) == 21  # hub, 8 zones, 6 interfaces, 6 nodes
    body = json.dumps(isone.ws_json(*isone.ws_payload("genfuelmix/day/20190101", NOW)))
    assert '"BeginDate": "2019-01-01T00:' in body
