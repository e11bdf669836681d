"""The ERCOT simulator speaks the real shapes: MIS JSON, zip layout, CSV bytes like the samples, DST days."""

from __future__ import annotations

import io
import math
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from helpers import samples_dir

from pmp.isos.ercot.normalize import normalize_payload
from pmp.simulator import ercot
from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("ercot")
NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)
TOKEN = "/ercot/b2c/ercotb2c.onmicrosoft.com/B2C_1_PUBAPI-ROPC-FLOW/oauth2/v2.0/token"
CLIENT_ID = "fec253ea-0d06-4272-a5e6-b478baeecd70"  # ERCOT's public B2C client (reference 2.1(b))
TOKEN_FORM = {"grant_type": "password", "username": "sim-user", "password": "sim-pass", "response_type": "id_token",
              "scope": f"openid {CLIENT_ID} offline_access", "client_id": CLIENT_ID}


@pytest.fixture
def sim():
    with start_simulator(now=NOW) as handle:
        yield handle


def mis_list(sim, rtid: int) -> list[dict]:
    r = requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS",
                     params={"reportTypeId": rtid, "_": 1730829600000}, timeout=30)
    r.raise_for_status()
    return [d["Document"] for d in r.json()["ListDocsByRptTypeRes"]["DocumentList"]]


def test_mis_list_fields_retention_and_twins(sim) -> None:
    docs = mis_list(sim, 12301)
    assert set(docs[0]) == {"ContentSize", "Extension", "ReportTypeID", "FriendlyName", "ConstructedName",
                            "DocID", "PublishDate", "ReportName"}
    csv = [d for d in docs if d["FriendlyName"].endswith("_csv")]
    xml = [d for d in docs if d["FriendlyName"].endswith("_xml")]
    assert len(csv) == len(xml)
    published = [datetime.fromisoformat(d["PublishDate"]) for d in csv]
    assert max(published) <= NOW and min(published) >= NOW - timedelta(days=7)
    assert published == sorted(published, reverse=True)  # newest first
    assert abs(len(csv) - 7 * 96) <= 4


def test_download_matches_sample_layout(sim) -> None:
    for rtid, sample in [(12331, "dam_spp_np4-190-cd"), (12301, "rt_spp_15min_np6-905-cd")]:
        doc = next(d for d in mis_list(sim, rtid) if d["FriendlyName"].endswith("_csv"))
        r = requests.get(f"{sim.url}/ercot/www/misdownload/servlets/mirDownload",
                         params={"doclookupId": doc["DocID"]}, timeout=30)
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        assert zf.namelist() == [doc["ConstructedName"].removesuffix(".zip")]
        text = zf.read(zf.namelist()[0]).decode()
        real = next(SAMPLES.glob(f"{sample}*")).read_text()
        assert text.splitlines()[0] == real.splitlines()[0]  # same header
        assert "\r" not in text and '"' not in text and text.endswith("\n")
        if rtid == 12331:
            assert all(", " in line for line in text.splitlines()[1:])  # leading-space price, as published


@pytest.mark.parametrize(
    ("dataset", "day", "per_location"),
    [("lmp_dam", date(2024, 3, 10), 23), ("lmp_dam", date(2024, 11, 3), 25), ("lmp_dam", date(2024, 6, 1), 24),
     ("lmp_rt15m", date(2024, 3, 10), 92), ("lmp_rt15m", date(2024, 11, 3), 100),
     ("lmp_rt5m", date(2024, 3, 10), 276), ("lmp_rt5m", date(2024, 11, 3), 300)],
)
def test_dst_days_exact_and_normalized(dataset: str, day: date, per_location: int) -> None:
    """Simulator files for the 2024 DST days normalize to exactly one row per location per interval."""
    report = next(r for r in ercot.REPORTS.values() if r.key == dataset)
    start, end = ercot.day_bounds(day)
    docs = [ercot.Doc(report, k) for k in report.keys(start, end)]
    rows = [r for d in docs for r in normalize_payload(dataset, d.constructed + ".zip", d.zip_bytes()).to_pylist()]
    by_loc: dict[str, list] = {}
    for r in rows:
        by_loc.setdefault(r["location"], []).append(r["interval_start"])
    step = (end - start) / per_location
    for loc, starts in by_loc.items():
        assert sorted(starts) == [start + i * step for i in range(per_location)], loc
    if dataset == "lmp_dam" and day.month == 11:
        flags = [line.rsplit(",", 1)[1] for line in ercot.csv_for(dataset, day).splitlines()[1:]]
        assert flags.count("Y") == len(by_loc)  # only the repeated HE 02:00 is flagged


def test_lz_and_lzew_differ() -> None:
    text = ercot.csv_for("lmp_rt15m", date(2024, 6, 1))
    lines = [line.split(",") for line in text.splitlines()[1:] if line.split(",")[1:3] == ["12", "1"]]
    lz = {p[3]: p[5] for p in lines if p[4] == "LZ"}
    ew = {p[3]: p[5] for p in lines if p[4] == "LZEW"}
    assert set(lz) == set(ew) == set(ercot.ZONES)
    assert any(lz[z] != ew[z] for z in lz)


def test_deterministic_bytes(sim) -> None:
    d = ercot.Doc(ercot.REPORTS[12300], datetime(2021, 2, 15, 12, 5, tzinfo=UTC))
    assert d.zip_bytes() == ercot.decode(d.doc_id).zip_bytes()
    r1 = requests.get(f"{sim.url}/ercot/www/misdownload/servlets/mirDownload", params={"doclookupId": d.doc_id})
    assert r1.status_code == 404  # long out of MIS retention: only the API archive serves it
    assert d.csv() == ercot.Doc(ercot.REPORTS[12300], d.key).csv()


def test_api_auth_rate_limit_and_archive(monkeypatch) -> None:
    monkeypatch.setenv("PMP_SIM_ERCOT_RPM", "5")
    with start_simulator() as sim:
        base = f"{sim.url}/ercot/api/api/public-reports"
        r = requests.get(f"{base}/archive/np4-190-cd")
        assert r.status_code == 401 and "subscription key" in r.json()["message"]
        tok = requests.post(f"{sim.url}{TOKEN}", data=TOKEN_FORM).json()
        headers = {"Authorization": f"Bearer {tok['id_token']}", "Ocp-Apim-Subscription-Key": "sim-key"}
        page = requests.get(f"{base}/archive/np6-905-cd", headers=headers, params={
            "postDatetimeFrom": "2024-03-10T00:00:00", "postDatetimeTo": "2024-03-10T23:59:59", "size": 50, "page": 2})
        body = page.json()
        # posted on the 23-hour day: its first 91 intervals and the previous day's last one
        assert body["_meta"]["totalRecords"] == 92 and body["_meta"]["totalPages"] == 2
        assert body["_meta"]["currentPage"] == 2 and len(body["archives"]) == 92 - 50
        ids = [a["docId"] for a in body["archives"][:3]]
        bundle = requests.post(f"{base}/archive/np6-905-cd/download", headers=headers, json={"docIds": ids})
        outer = zipfile.ZipFile(io.BytesIO(bundle.content))
        assert outer.namelist() == [f"{i}.zip" for i in ids]
        codes = [requests.get(f"{base}/archive/np4-190-cd", headers=headers).status_code for _ in range(4)]
        assert codes[-1] == 429
        limited = requests.get(f"{base}/archive/np4-190-cd", headers=headers)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_faults_switch_on_and_off(sim) -> None:
    sim.set_faults({"server_error": 1})
    assert requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS?reportTypeId=12331").status_code == 500
    assert requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS?reportTypeId=12331").status_code == 200
    r = requests.post(f"{sim.url}/__sim/faults", json={"corrupt_zip": 1})
    assert r.json()["corrupt_zip"] == 1
    doc = next(d for d in mis_list(sim, 12331) if d["FriendlyName"].endswith("_csv"))
    bad = requests.get(f"{sim.url}/ercot/www/misdownload/servlets/mirDownload", params={"doclookupId": doc["DocID"]})
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(bad.content))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("client_id", "00000000-0000-0000-0000-000000000000", "unauthorized_client"),
     ("response_type", "code", "unsupported_response_type"),
     ("scope", "openid offline_access", "invalid_request"),
     ("scope", f"openid {CLIENT_ID}", "invalid_request"),
     ("password", "wrong", "invalid_grant")],
)
def test_b2c_token_rejects_a_wrong_form_field(sim, field: str, value: str, error: str) -> None:
    r = requests.post(f"{sim.url}{TOKEN}", data={**TOKEN_FORM, field: value}, timeout=30)
    assert r.status_code == 400 and r.json()["error"] == error and "id_token" not in r.json()
    ok = requests.post(f"{sim.url}{TOKEN}", data=TOKEN_FORM, timeout=30)
    assert ok.status_code == 200 and ok.json()["id_token"]


def test_429_retry_after_names_when_the_window_reopens(monkeypatch) -> None:
    """3 calls per 3-second window (60/min): the fourth is refused with the seconds until the
    first call leaves the window; after waiting that long the call goes through."""
    import time

    monkeypatch.setenv("PMP_SIM_ERCOT_RPM", "60")
    monkeypatch.setenv("PMP_SIM_ERCOT_RATE_WINDOW", "3")
    with start_simulator() as s:
        tok = requests.post(f"{s.url}{TOKEN}", data=TOKEN_FORM, timeout=30).json()["id_token"]
        h = {"Authorization": f"Bearer {tok}", "Ocp-Apim-Subscription-Key": "sim-key"}
        url = f"{s.url}/ercot/api/api/public-reports/bundle/np4-188-cd"
        first = time.monotonic()
        assert [requests.get(url, headers=h, timeout=30).status_code for _ in range(3)] == [200] * 3
        refused = requests.get(url, headers=h, timeout=30)
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        # the first call was at `first` or a little later: the window reopens 3 s after it
        assert 1 <= wait <= math.ceil(first + 3 - time.monotonic()) + 1 <= 4
        assert f"Try again in {wait} seconds" in refused.json()["message"]
        time.sleep(wait)
        assert requests.get(url, headers=h, timeout=30).status_code == 200
        assert s.sim.state["ercot"]["throttled"] == 1
