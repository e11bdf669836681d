"""The ERCOT simulator's new reports, bundles, dashboards and workbooks speak the real shapes."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from helpers import samples_dir

from pmp.simulator import ercot
from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("ercot")
NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)
API = "/ercot/api/api/public-reports"
TOKEN = "/ercot/b2c/ercotb2c.onmicrosoft.com/B2C_1_PUBAPI-ROPC-FLOW/oauth2/v2.0/token"
CONSTRUCTED = re.compile(r"^cdr\.(\d{8})\.0{16}\.(\d{8})\.(\d{6})\.([A-Z0-9_]+?)(xhr)?\.csv$")


@pytest.fixture
def sim():
    with start_simulator(now=NOW) as handle:
        yield handle


def mis_list(sim, rtid: int) -> list[dict]:
    r = requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS", params={"reportTypeId": rtid},
                     timeout=30)
    r.raise_for_status()
    return [d["Document"] for d in r.json()["ListDocsByRptTypeRes"]["DocumentList"] if d["Document"]["FriendlyName"]
            .endswith("_csv")]


def download(sim, doc: dict) -> tuple[str, str]:
    r = requests.get(f"{sim.url}/ercot/www/misdownload/servlets/mirDownload", params={"doclookupId": doc["DocID"]},
                     timeout=30)
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    (name,) = zf.namelist()
    return name, zf.read(name).decode()


CLIENT_ID = "fec253ea-0d06-4272-a5e6-b478baeecd70"  # ERCOT's public B2C client (reference 2.1(b))
TOKEN_FORM = {"grant_type": "password", "username": "sim-user", "password": "sim-pass", "response_type": "id_token",
              "scope": f"openid {CLIENT_ID} offline_access", "client_id": CLIENT_ID}


def headers(sim) -> dict[str, str]:
    tok = requests.post(sim.url + TOKEN, data=TOKEN_FORM, timeout=30).json()["id_token"]
    return {"Authorization": f"Bearer {tok}", "Ocp-Apim-Subscription-Key": "sim-key"}


@pytest.mark.parametrize(
    ("rtid", "stem", "retention", "per_day"),
    [(12329, "DAMCPCNP4188", 31, 1), (13101, "ACTUALSYSLOADWZNP6345", 31, 1), (12340, "SYSWIDEDEMANDNP6235", 7, 24),
     (14837, "LFMODWEATHERNP3565", 7, 24)],
)
def test_mis_lists_retention_cadence_and_names(sim, rtid: int, stem: str, retention: int, per_day: int) -> None:
    docs = mis_list(sim, rtid)
    published = [datetime.fromisoformat(d["PublishDate"]) for d in docs]
    assert published == sorted(published, reverse=True) and max(published) <= NOW
    assert min(published) >= NOW - timedelta(days=retention)
    assert abs(len(docs) - retention * per_day) <= 2
    for d in docs[:30]:
        m = CONSTRUCTED.match(d["ConstructedName"].removesuffix(".zip"))
        assert m and int(m[1]) == rtid and m[4].startswith(stem), d["ConstructedName"]
        local = datetime.fromisoformat(d["PublishDate"])
        assert (m[2], m[3]) == (f"{local:%Y%m%d}", f"{local:%H%M%S}")  # the name carries the posting time


def test_dam_as_file_matches_the_real_sample_layout(sim) -> None:
    doc = next(d for d in mis_list(sim, 12329))
    name, text = download(sim, doc)
    real = next(SAMPLES.glob("dam_as_mcpc_np4-188-cd*")).read_text()
    assert name == doc["ConstructedName"].removesuffix(".zip")
    assert text.splitlines()[0] == real.splitlines()[0]
    assert "\r" not in text and '"' not in text and text.endswith("\n")
    lines = [line.split(",") for line in text.splitlines()[1:]]
    assert len(lines) == 24 * 5  # 121 lines with the header, as in a real 2026 file
    orders = {tuple(p[2] for p in lines if p[1] == he) for he in {p[1] for p in lines}}
    assert len(orders) > 1, "the product order changes from hour to hour (as in the sample)"
    assert all(re.fullmatch(r"\d+(\.\d{1,2})?", p[3]) for p in lines)


def test_actual_load_file_matches_the_real_sample_layout(sim) -> None:
    doc = mis_list(sim, 13101)[0]
    _, text = download(sim, doc)
    real = next(SAMPLES.glob("actual_load_weather_zone_np6-345-cd*")).read_text()
    assert text.splitlines()[0] == real.splitlines()[0]
    for line in text.splitlines()[1:]:
        cells = line.split(",")
        assert all(re.fullmatch(r"\d+\.\d{2}", c) for c in cells[2:11])  # two fixed decimals ("9970.70")
        assert abs(sum(float(c) for c in cells[2:10]) - float(cells[10])) < 0.0151
    # posted on the morning after the operating day
    day = datetime.strptime(text.splitlines()[1].split(",")[0], "%m/%d/%Y").date()
    assert datetime.fromisoformat(doc["PublishDate"]).date() == day + timedelta(days=1)


def test_reports_before_their_first_day_do_not_exist() -> None:
    rt = ercot.REPORTS[24898]
    assert list(rt.keys(datetime(2025, 12, 1, tzinfo=UTC), datetime(2025, 12, 5, 6, tzinfo=UTC))) == []
    assert len(list(rt.keys(datetime(2025, 12, 5, 6, tzinfo=UTC), datetime(2025, 12, 6, 6, tzinfo=UTC)))) == 96
    text = ercot.csv_for("as_dam", date(2023, 6, 9))
    assert "ECRS" not in text and "ECRS" in ercot.csv_for("as_dam", date(2023, 6, 10))


def test_bundles_list_and_download_in_the_real_layout(sim) -> None:
    h = headers(sim)
    body = requests.get(f"{sim.url}{API}/bundle/np6-345-cd", headers=h, timeout=30).json()
    bundles = body["bundles"]
    assert set(body) >= {"_meta", "product", "bundles"} and body["product"]["emilId"] == "NP6-345-CD"
    assert bundles[0]["friendlyName"] == "ACTUALSYSLOADWZNP6345_2024-10"  # newest first; November not over yet
    assert bundles[-1]["friendlyName"] == "ACTUALSYSLOADWZNP6345_2019-01"
    assert body["_meta"]["totalRecords"] == len(bundles) == 70
    b = next(x for x in bundles if x["friendlyName"].endswith("2024-03"))
    assert b["docId"] < 0 and b["postDatetime"] == "2024-03-31T23:59:59.000"
    r = requests.post(f"{sim.url}{API}/bundle/np6-345-cd/download", headers=h, json={"docIds": [b["docId"]]},
                      timeout=60)
    assert r.headers["Content-Type"] == "application/zip"
    outer = zipfile.ZipFile(io.BytesIO(r.content))
    names = outer.namelist()
    assert len(names) == 31  # documents *posted* in March: the operating days Feb 29 .. Mar 30
    for n in names:
        inner = zipfile.ZipFile(io.BytesIO(outer.read(n)))
        assert inner.namelist() == [n.removesuffix(".zip")]
        assert CONSTRUCTED.match(n.removesuffix(".zip"))[2].startswith("202403")
    again = requests.post(f"{sim.url}{API}/bundle/np6-345-cd/download", headers=h, json={"docIds": [b["docId"]]},
                          timeout=60)
    assert again.content == r.content  # a document is the same bytes on every download
    href = b["_links"]["endpoint"]["href"]  # the listing's link serves that same bundle
    assert href.startswith(f"{sim.url}{API}/bundle/np6-345-cd?download=")
    linked = requests.get(href, headers=h, timeout=60)
    assert linked.status_code == 200 and linked.content == r.content
    future = requests.post(f"{sim.url}{API}/bundle/np6-345-cd/download", headers=h,
                           json={"docIds": [ercot.bundle_id(ercot.REPORTS[13101], (2024, 11))]}, timeout=30)
    assert future.status_code == 400 and future.json()["status"] == "BAD_REQUEST"
    assert requests.get(f"{sim.url}{API}/bundle/np6-345-cd", timeout=30).status_code == 401
    sim.set_faults({"ercot_no_bundles": 1})
    assert requests.get(f"{sim.url}{API}/bundle/np6-345-cd", headers=h, timeout=30).json()["bundles"] == []


def test_fuel_mix_dashboard_shape_quirks_and_caching(sim) -> None:
    url = f"{sim.url}/ercot/www/api/1/services/read/dashboards/fuel-mix.json"
    r = requests.get(url, timeout=30)
    assert r.headers["Cache-Control"] == "max-age=60"
    doc = r.json()
    assert set(doc) == {"lastUpdated", "monthlyCapacity", "data"}
    assert sorted(doc["data"]) == ["2024-11-04", "2024-11-05"]  # yesterday and today (Central)
    stamps = [s for day in doc["data"].values() for s in day]
    parsed = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S%z") for s in stamps]
    assert all(0 < p.second for p in parsed), "stamps sit a few seconds past the mark"
    assert {p.strftime("%z") for p in parsed} == {"-0600"}
    assert any(len(v) < len(ercot.FUELS) for day in doc["data"].values() for v in day.values()), "split stamps"
    assert set().union(*(v.keys() for day in doc["data"].values() for v in day.values())) == set(ercot.FUELS)
    assert datetime.strptime(doc["lastUpdated"], "%Y-%m-%d %H:%M:%S%z") <= NOW
    sim.set_faults({"ercot_stale_dashboard": 1})
    stale = requests.get(url, timeout=30).json()
    assert stale["lastUpdated"] < doc["lastUpdated"]
    old = requests.get(f"{sim.url}/ercot/www/api/1/services/read/dashboards/fuelMix.json", allow_redirects=False,
                       timeout=30)
    assert old.status_code == 302
    sd = requests.get(f"{sim.url}/ercot/www/api/1/services/read/dashboards/supply-demand.json", timeout=30).json()
    assert set(sd) == {"lastUpdated", "data", "forecast"} and len(sd["forecast"]) == 24
    assert set(sd["data"][0]) == {"timestamp", "epoch", "demand", "capacity", "available", "forecast"}


def test_generation_page_and_fuel_workbooks(sim) -> None:
    from openpyxl import load_workbook

    html = requests.get(f"{sim.url}/ercot/www/gridinfo/generation", timeout=30).text
    links = dict((int(y), h) for h, y in re.findall(r'href="([^"]+IntGenbyFuel(\d{4})\.xlsx)"', html))
    assert sorted(links) == list(range(2019, 2025))
    assert links[2024] == "/files/docs/2024/10/07/IntGenbyFuel2024.xlsx"  # re-posted monthly (Jan..Sep)
    assert links[2023] == "/files/docs/2024/01/07/IntGenbyFuel2023.xlsx"  # final version
    r = requests.get(f"{sim.url}/ercot/www/files/docs/2024/04/07/IntGenbyFuel2024.xlsx", timeout=60)
    ercot.workbook_bytes.cache_clear()  # regenerated: still the same bytes (raw files are immutable)
    assert requests.get(f"{sim.url}/ercot/www/files/docs/2024/04/07/IntGenbyFuel2024.xlsx", timeout=60).content \
        == r.content
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    assert wb.sheetnames == ["Summary", "Jan", "Feb", "Mar"]
    head = next(wb["Mar"].iter_rows(values_only=True))
    assert list(head[:6]) == ["Date", "Fuel", "Settlement Type", "Total", "0:15", "0:30"]
    assert head[-1] == "0:00" and len(head) == 4 + 96
    assert requests.get(f"{sim.url}/ercot/www/files/docs/2024/12/07/IntGenbyFuel2024.xlsx",
                        timeout=30).status_code == 404  # not posted yet at the simulator's clock


def test_fall_back_month_has_dst_columns() -> None:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(ercot.workbook_bytes(2024, 11, 11)), read_only=True)
    head = next(wb["Nov"].iter_rows(values_only=True))
    assert list(head[-4:]) == ["01:15 (DST)", "01:30 (DST)", "01:45 (DST)", "02:00 (DST)"]
    width = len(head)  # read-only rows stop at their last value: pad them
    rows = [tuple(r) + (None,) * (width - len(r)) for r in wb["Nov"].iter_rows(min_row=2, values_only=True)]
    fall = [r for r in rows if r[0].date() == date(2024, 11, 3)]
    other = [r for r in rows if r[0].date() == date(2024, 11, 4)]
    assert all(v is not None for r in fall for v in r[-4:]) and all(v is None for r in other for v in r[-4:])
    spring = load_workbook(io.BytesIO(ercot.workbook_bytes(2024, 3, 3)), read_only=True)
    head = next(spring["Mar"].iter_rows(values_only=True))
    day = [r for r in spring["Mar"].iter_rows(min_row=2, values_only=True) if r[0].date() == date(2024, 3, 10)]
    for label in ("2:00", "2:15", "2:30", "2:45"):
        assert all(r[head.index(label)] is None for r in day)
    assert all(r[head.index("3:00")] is not None for r in day)


ANNUAL_NAME = re.compile(r"^rpt\.(\d{8})\.0{16}\.(\d{14})\.([A-Z]+)_(\d{4})\.zip$")


@pytest.mark.parametrize(("rtid", "stem"), [(13060, "DAMLZHBSPP"), (13061, "RTMLZHBSPP"), (13091, "DAMASMCPC")])
def test_annual_files_listed_on_mis(sim, rtid: int, stem: str) -> None:
    r = requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS", params={"reportTypeId": rtid},
                     timeout=30)
    docs = [d["Document"] for d in r.json()["ListDocsByRptTypeRes"]["DocumentList"]]
    assert [d["FriendlyName"] for d in docs] == [f"{stem}_{y}" for y in range(2024, 2018, -1)]  # one per year
    for d in docs:
        m = ANNUAL_NAME.match(d["ConstructedName"])
        assert m and (int(m[1]), m[3], m[4]) == (rtid, stem, d["FriendlyName"][-4:])
        assert d["Extension"] == "zip" and d["ReportTypeID"] == str(rtid) and int(d["ContentSize"]) > 0
        posted = datetime.fromisoformat(d["PublishDate"])
        assert posted.weekday() == 0 and posted.hour == 5  # re-posted on Mondays
        assert m[2] == f"{posted:%Y%m%d%H%M%S}"
    assert docs[0]["PublishDate"].startswith("2024-11-04T05:00")  # this week's posting of the current year
    assert docs[1]["PublishDate"].startswith("2024-01-01T05:00")  # 2023's final posting: the whole year


def test_annual_as_file_download_layout(sim) -> None:
    """NP4-181-ER of 2024 as posted on 2024-11-04: a zip of one xlsx, sheets Jan..Nov, wide, REGUP
    with its trailing space, the days before the posting, and one all-null row."""
    from openpyxl import load_workbook

    r = requests.get(f"{sim.url}/ercot/www/misapp/servlets/IceDocListJsonWS", params={"reportTypeId": 13091},
                     timeout=30)
    doc = r.json()["ListDocsByRptTypeRes"]["DocumentList"][0]["Document"]
    z = requests.get(f"{sim.url}/ercot/www/misdownload/servlets/mirDownload", params={"doclookupId": doc["DocID"]},
                     timeout=60)
    assert z.status_code == 200 and z.headers["Content-Type"] == "application/zip"
    outer = zipfile.ZipFile(io.BytesIO(z.content))
    assert outer.namelist() == [doc["ConstructedName"].removesuffix(".zip") + ".xlsx"]
    wb = load_workbook(io.BytesIO(outer.read(outer.namelist()[0])), read_only=True)
    assert wb.sheetnames == ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]
    rows = list(wb["Nov"].iter_rows(values_only=True))
    assert rows[0] == ("Delivery Date", "Hour Ending", "Repeated Hour Flag", "REGDN", "REGUP ", "RRS", "NSPIN", "ECRS")
    data = [row for row in rows[1:] if any(v is not None for v in row)]
    assert len(rows) - 1 - len(data) == 1  # the all-null row
    assert {row[0] for row in data} == {"11/01/2024", "11/02/2024", "11/03/2024"}  # up to the posting day
    assert [row[1:3] for row in data if row[0] == "11/03/2024"][1:3] == [("02:00", "N"), ("02:00", "Y")]
    he2y = next(row for row in data if row[0] == "11/03/2024" and row[1:3] == ("02:00", "Y"))
    assert he2y[3:] == tuple(ercot.mcpc("DAM", p, datetime(2024, 11, 3, 7, tzinfo=UTC))
                             for p in ["REGDN", "REGUP", "RRS", "NSPIN", "ECRS"])
    wb.close()
    report = ercot.ANNUAL[13091]
    postings = ercot.annual_postings(report, 2024)
    current = ercot.decode_annual(doc["DocID"])
    assert current is not None and f"{current.posted.astimezone(ercot.CT):%Y-%m-%d}" == "2024-11-04"
    nxt = ercot.AnnualDoc(report, 2024, postings[postings.index(current.posted) + 1]).doc_id
    future = requests.get(f"{sim.url}/ercot/www/misdownload/servlets/mirDownload", params={"doclookupId": nxt},
                          timeout=30)
    assert future.status_code == 404  # next week's posting is not out yet
