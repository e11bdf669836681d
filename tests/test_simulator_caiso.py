"""The CAISO simulator speaks OASIS and Today's Outlook as the reference and the real sample show them."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from helpers import samples_dir

from pmp.simulator import caiso
from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("caiso")
NOW = datetime(2024, 11, 20, 18, tzinfo=UTC)
AUP = "<html><body><p>CAISO Acceptable Use Policy Violation. Please retry your request after 5 seconds.</p></body></html>"


@pytest.fixture
def sim(monkeypatch):
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0")
    with start_simulator(now=NOW) as handle:
        yield handle


def get(sim, endpoint: str, **params: str) -> requests.Response:
    return requests.get(f"{sim.url}/caiso/oasis/oasisapi/{endpoint}", params={"resultformat": "6", **params},
                        timeout=30)


def day_params(day: date, **params: str) -> dict[str, str]:
    s, e = caiso.day_bounds(day)
    return {"startdatetime": s.strftime("%Y%m%dT%H:%M-0000"), "enddatetime": e.strftime("%Y%m%dT%H:%M-0000"),
            **params}


def unzip(resp: requests.Response) -> dict[str, str]:
    zf = zipfile.ZipFile(io.BytesIO(resp.content))
    return {n: zf.read(n).decode() for n in zf.namelist()}


def error_code(resp: requests.Response) -> int | None:
    files = unzip(resp)
    (name, text), = files.items()
    assert name.endswith(".xml") and "<m:OASISReport" in text and "<m:name>CAISO</m:name>" in text
    assert resp.headers["Content-Disposition"].endswith(".xml.zip;")
    return int(text.split("<m:ERR_CODE>")[1].split("<")[0])


def test_dam_lmp_matches_the_real_file_shape(sim) -> None:
    real = next(SAMPLES.glob("prc_lmp_dam*")).read_text()
    r = get(sim, "SingleZip", **day_params(date(2024, 6, 1), queryname="PRC_LMP", version="12", market_run_id="DAM",
                                           grp_type="ALL_APNODES"))
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-zip-compressed"
    assert r.headers["Content-Disposition"].startswith("inline; filename=20240601_20240601_PRC_LMP_DAM_")
    files = unzip(r)
    assert sorted(files) == [f"20240601_20240601_PRC_LMP_DAM_{t}_v12.csv" for t in ("LMP", "MCC", "MCE", "MCL", "MGHG")]
    for text in files.values():
        assert text.splitlines()[0] == real.splitlines()[0]  # same header, same column order
        assert "\r" not in text and '"' not in text and text.endswith("\n")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert all(r["GRP_TYPE"] == "ALL_APNODES" and r["OPR_INTERVAL"] == "0" and r["POS"] == "0" for r in rows)
        assert all(not r["MW"].endswith("0") or r["MW"] == "0" or "." not in r["MW"] for r in rows)  # 55.5152 style
    # explicit nodes: one file holding every LMP_TYPE, named with the generation time, like the sample
    r = get(sim, "SingleZip", **day_params(date(2024, 6, 1), queryname="PRC_LMP", version="1", market_run_id="DAM",
                                           node="TH_SP15_GEN-APND,DLAP_SCE-APND"))
    (name, text), = unzip(r).items()
    assert name.startswith("20240601_20240601_PRC_LMP_DAM_20241120_") and name.endswith("_v1.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["LMP_TYPE"] for r in rows} == {"LMP", "MCE", "MCC", "MCL", "MGHG"}
    assert len(rows) == 2 * 24 * 5
    assert {r["GROUP"] for r in rows if r["LMP_TYPE"] == "LMP"} == {"1"}  # as in the sample and reference rows
    # grp_type=ALL adds pnodes: reference row "0096WD_7_N001,...,ALL,1,74.63,1" has POS 1, APnodes POS 0
    r = get(sim, "SingleZip", **day_params(date(2024, 6, 1), queryname="PRC_LMP", version="12", market_run_id="DAM",
                                           grp_type="ALL"))
    rows = [row for text in unzip(r).values() for row in csv.DictReader(io.StringIO(text))]
    pos = {(row["GRP_TYPE"], row["POS"]) for row in rows}
    assert pos == {("ALL", "1"), ("ALL_APNODES", "0")}
    assert {row["NODE"] for row in rows if row["GRP_TYPE"] == "ALL"} == {"0096WD_7_N001", "LAPLMG1_7_B2"}


def test_real_time_and_as_layouts_differ_from_dam(sim) -> None:
    day = date(2024, 6, 1)
    s, _ = caiso.day_bounds(day)
    hour = {"startdatetime": s.strftime("%Y%m%dT%H:%M-0000"),
            "enddatetime": (s + timedelta(hours=1)).strftime("%Y%m%dT%H:%M-0000")}
    rt5 = unzip(get(sim, "SingleZip", queryname="PRC_INTVL_LMP", version="3", market_run_id="RTM",
                    grp_type="ALL_APNODES", **hour))
    rt15 = unzip(get(sim, "SingleZip", queryname="PRC_RTPD_LMP", version="3", market_run_id="RTPD",
                     grp_type="ALL_APNODES", **hour))
    head5 = next(iter(rt5.values())).splitlines()[0]
    assert head5 == ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,NODE_ID_XML,NODE_ID,NODE,MARKET_RUN_ID,"
                     "LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,VALUE,OPR_INTERVAL,GROUP")
    assert next(iter(rt15.values())).splitlines()[0] == head5.replace(",VALUE,", ",PRC,")
    rows5 = [r for t in rt5.values() for r in csv.DictReader(io.StringIO(t))]
    assert {r["OPR_INTERVAL"] for r in rows5} == {str(i) for i in range(1, 13)} and {r["OPR_HR"] for r in rows5} == {"01"}
    # reference 3.3 RT rows: MCC in GROUP 1, MCE in GROUP 2 (the DAM rows of type LMP carry 1)
    assert {(r["LMP_TYPE"], r["GROUP"]) for r in rows5} >= {("MCC", "1"), ("MCE", "2")}
    assert all(len(r["VALUE"].split(".")[1]) == 5 for r in rows5)  # 48.94640: fixed five decimals
    rows15 = [r for t in rt15.values() for r in csv.DictReader(io.StringIO(t))]
    assert {r["OPR_INTERVAL"] for r in rows15} == {"1", "2", "3", "4"}
    dam = unzip(get(sim, "SingleZip", **day_params(day, queryname="PRC_AS", version="12", market_run_id="DAM",
                                                   anc_type="RU", anc_region="ALL")))
    rt = unzip(get(sim, "SingleZip", **day_params(day, queryname="PRC_INTVL_AS", version="1", market_run_id="RTM",
                                                  anc_type="ALL", anc_region="ALL")))
    dam_text, rt_text = next(iter(dam.values())), next(iter(rt.values()))
    assert dam_text.splitlines()[0] == ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,"
                                        "OPR_TYPE,ANC_TYPE,ANC_REGION,MARKET_RUN_ID,XML_DATA_ITEM,MW,GROUP")
    assert rt_text.splitlines()[0] == ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_TYPE,ANC_TYPE,"
                                       "XML_DATA_ITEM,MARKET_RUN_ID,MW,ANC_REGION,OPR_INTERVAL,GROUP")
    dam_rows = list(csv.DictReader(io.StringIO(dam_text)))
    assert {r["XML_DATA_ITEM"] for r in dam_rows} == {"RU_CLR_PRC"}
    assert {r["ANC_REGION"] for r in dam_rows} == set(caiso.AS_REGIONS)
    rt_items = {(r["ANC_TYPE"], r["XML_DATA_ITEM"]) for r in csv.DictReader(io.StringIO(rt_text))}
    assert ("SR", "SP_CLR_PRC") in rt_items and ("NR", "NS_CLR_PRC") in rt_items
    sld = unzip(get(sim, "SingleZip", **day_params(day, queryname="SLD_FCST", version="1", market_run_id="ACTUAL")))
    assert next(iter(sld.values())).splitlines()[0] == (
        "INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,LOAD_TYPE,OPR_DT,OPR_HR,OPR_INTERVAL,MARKET_RUN_ID,TAC_AREA_NAME,"
        "LABEL,XML_DATA_ITEM,POS,MW,EXECUTION_TYPE,GROUP")


@pytest.mark.parametrize(("params", "code"), [
    ({"queryname": "PRC_LMP", "version": "12", "market_run_id": "DAM", "grp_type": "ALL_APNODES",
      "startdatetime": "20240601T07:00-0000", "enddatetime": "20240801T07:00-0000"}, 1004),
    ({"queryname": "PRC_LMP", "version": "12", "market_run_id": "DAM", "grp_type": "ALL_APNODES",
      "startdatetime": "2024-06-01 07:00", "enddatetime": "20240602T07:00-0000"}, 1002),
    ({"queryname": "PRC_NOPE", "version": "1", "market_run_id": "DAM",
      "startdatetime": "20240601T07:00-0000", "enddatetime": "20240602T07:00-0000"}, 1005),
    ({"queryname": "PRC_LMP", "version": "12", "market_run_id": "DAM", "node": ",".join((caiso.apnodes() + caiso.PNODES)[:11]),
      "startdatetime": "20240601T07:00-0000", "enddatetime": "20240602T07:00-0000"}, 1017),
    ({"queryname": "PRC_LMP", "version": "7", "market_run_id": "DAM", "grp_type": "ALL_APNODES",
      "startdatetime": "20240601T07:00-0000", "enddatetime": "20240602T07:00-0000"}, 1020),
    ({"queryname": "PRC_LMP", "version": "12", "market_run_id": "DAM", "grp_type": "ALL_APNODES",  # not yet published
      "startdatetime": "20241122T08:00-0000", "enddatetime": "20241123T08:00-0000"}, 1000),
    ({"queryname": "PRC_LMP", "version": "12", "market_run_id": "DAM", "grp_type": "ALL_APNODES",  # retention
      "startdatetime": "20210601T07:00-0000", "enddatetime": "20210602T07:00-0000"}, 1000),
])
def test_errors_are_xml_in_a_zip_with_http_200(sim, params: dict, code: int) -> None:
    r = get(sim, "SingleZip", **params)
    assert r.status_code == 200
    assert error_code(r) == code


def test_publication_follows_the_simulator_clock(sim) -> None:
    tomorrow = date(2024, 11, 21)
    query = day_params(tomorrow, queryname="PRC_LMP", version="12", market_run_id="DAM", grp_type="ALL_APNODES")
    sim.set_now(datetime(2024, 11, 20, 20, 59, tzinfo=UTC))  # 12:59 PST: DAM for tomorrow not out yet
    assert error_code(get(sim, "SingleZip", **query)) == 1000
    sim.set_now(datetime(2024, 11, 20, 21, 1, tzinfo=UTC))  # 13:01 PST
    assert len(unzip(get(sim, "SingleZip", **query))) == 5
    sim.set_now(datetime(2024, 11, 20, 18, 13, 30, tzinfo=UTC))
    hour = {"startdatetime": "20241120T18:00-0000", "enddatetime": "20241120T19:00-0000"}
    rows = [r for t in unzip(get(sim, "SingleZip", queryname="PRC_INTVL_LMP", version="3", market_run_id="RTM",
                                 grp_type="ALL_APNODES", **hour)).values() for r in csv.DictReader(io.StringIO(t))]
    # 5-minute intervals appear 2 minutes after they end: 18:00 and 18:05 are out at 18:13:30
    assert sorted({r["INTERVALENDTIME_GMT"] for r in rows}) == ["2024-11-20T18:05:00-00:00",
                                                                  "2024-11-20T18:10:00-00:00"]


def test_prc_as_all_types_returns_only_the_first_trade_day(sim) -> None:
    s, _ = caiso.day_bounds(date(2024, 6, 1))
    _, e = caiso.day_bounds(date(2024, 6, 3))
    window = {"startdatetime": s.strftime("%Y%m%dT%H:%M-0000"), "enddatetime": e.strftime("%Y%m%dT%H:%M-0000")}
    every = unzip(get(sim, "SingleZip", queryname="PRC_AS", version="12", market_run_id="DAM", anc_type="ALL",
                      anc_region="ALL", **window))
    one = unzip(get(sim, "SingleZip", queryname="PRC_AS", version="12", market_run_id="DAM", anc_type="RU",
                    anc_region="ALL", **window))
    days_every = {r["OPR_DT"] for t in every.values() for r in csv.DictReader(io.StringIO(t))}
    days_one = {r["OPR_DT"] for t in one.values() for r in csv.DictReader(io.StringIO(t))}
    assert days_every == {"2024-06-01"}
    assert days_one == {"2024-06-01", "2024-06-02", "2024-06-03"}


def test_groupzip_is_asynchronous(sim) -> None:
    query = day_params(date(2021, 6, 1), groupid="DAM_LMP_GRP", version="12")
    assert error_code(get(sim, "GroupZip", **query)) == 1015
    files = unzip(get(sim, "GroupZip", **query))  # asked again: ready, all nodes (pnodes too)
    assert len(files) == 5
    nodes = {r["NODE"] for t in files.values() for r in csv.DictReader(io.StringIO(t))}
    assert set(caiso.PNODES) <= nodes and set(caiso.apnodes()) <= nodes
    # GroupZip keeps 2021-06-01 although SingleZip's retention has dropped it
    single = get(sim, "SingleZip", **day_params(date(2021, 6, 1), queryname="PRC_LMP", version="12",
                                                market_run_id="DAM", grp_type="ALL"))
    assert error_code(single) == 1000
    early = day_params(date(2021, 4, 1), groupid="DAM_LMP_GRP", version="12")
    assert error_code(get(sim, "GroupZip", **early)) == 1015
    assert error_code(get(sim, "GroupZip", **early)) == 1000  # before 2021-04-27
    assert error_code(get(sim, "GroupZip", **day_params(date(2021, 6, 1), groupid="NOPE_GRP", version="12"))) == 1016


def test_throttle_answers_the_acceptable_use_page(monkeypatch) -> None:
    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0.4")
    with start_simulator(now=NOW) as sim:
        query = day_params(date(2024, 6, 1), queryname="SLD_FCST", version="1", market_run_id="ACTUAL")
        assert get(sim, "SingleZip", **query).status_code == 200
        r = get(sim, "SingleZip", **query)
        assert r.status_code == 429 and r.text == AUP and r.headers["Content-Type"] == "text/html"
        time.sleep(0.45)
        assert get(sim, "SingleZip", **query).status_code == 200
        sim.set_faults({"caiso_no_throttle": -1})
        assert [get(sim, "SingleZip", **query).status_code for _ in range(3)] == [200, 200, 200]
        sim.set_faults({"rate_limit": 1})  # the generic one-shot fault still answers 429
        assert get(sim, "SingleZip", **query).status_code == 429


def test_faults(sim) -> None:
    query = day_params(date(2024, 6, 1), queryname="SLD_FCST", version="1", market_run_id="ACTUAL")
    sim.set_faults({"caiso_no_data": 1})
    assert error_code(get(sim, "SingleZip", **query)) == 1000
    sim.set_faults({"caiso_system_error": 1})
    assert error_code(get(sim, "SingleZip", **query)) == 1010
    sim.set_faults({"caiso_window_error": 1})
    assert error_code(get(sim, "SingleZip", **query)) == 1004
    sim.set_faults({"corrupt_zip": 1})
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(get(sim, "SingleZip", **query).content)).testzip()
    sim.set_faults({"server_error": 1})
    assert get(sim, "SingleZip", **query).status_code == 500
    assert len(unzip(get(sim, "SingleZip", **query))) == 1  # all shots used up


def test_same_query_same_rows_new_bytes(sim) -> None:
    """Data are deterministic; zips are regenerated per request (entry times = generation time)."""
    query = day_params(date(2023, 2, 14), queryname="PRC_LMP", version="12", market_run_id="DAM",
                       grp_type="ALL_APNODES")
    first = get(sim, "SingleZip", **query)
    sim.set_now(NOW + timedelta(seconds=7))
    second = get(sim, "SingleZip", **query)
    assert unzip(first) == unzip(second)
    assert first.content != second.content


def outlook(sim, path: str) -> requests.Response:
    return requests.get(f"{sim.url}/caiso/www/outlook/{path}", params={"_": "1"}, timeout=30)


def test_outlook_history_shape(sim) -> None:
    r = outlook(sim, "history/20240601/fuelsource.csv")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    text = r.content.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == ("Time,Solar,Wind,Geothermal,Biomass,Biogas,Small hydro,Coal,Nuclear,Natural Gas,Large Hydro,"
                        "Batteries,Imports,Other")
    assert lines[1].startswith("00:00,") and lines[288].startswith("23:55,") and lines[289].startswith("00:00,")
    assert lines[-1] == ""  # CRLF-terminated
    old = outlook(sim, "history/20190601/fuelsource.csv").content.decode("utf-8-sig").splitlines()[0]
    assert "Natural gas" in old and "Large hydro" in old
    demand = outlook(sim, "history/20240601/demand.csv").text.splitlines()
    assert demand[0] == "Time,Day ahead forecast,Hour ahead forecast,Current demand"
    assert outlook(sim, "history/20241121/demand.csv").status_code == 404  # tomorrow
    assert outlook(sim, "history/20240601/storage.csv").status_code == 404


def test_outlook_current_grows_and_keeps_yesterday_after_midnight(sim) -> None:
    sim.set_now(datetime(2024, 11, 20, 20, 3, tzinfo=UTC))  # 12:03 PST
    rows = outlook(sim, "current/demand.csv").text.splitlines()[1:]
    filled = [r for r in rows if r.split(",")[3]]
    assert len(rows) == 288 and filled[-1].startswith("11:55,")  # ended 12:00, out 7 minutes later? not yet
    assert rows[-1].split(",")[1] and not rows[-1].split(",")[3]  # future: forecasts present, demand empty
    sim.set_now(datetime(2024, 11, 21, 8, 3, tzinfo=UTC))  # 00:03 PST on the 21st
    rows = outlook(sim, "current/fuelsource.csv").content.decode("utf-8-sig").splitlines()[1:]
    assert rows[-1].startswith("23:55,") and rows[-1].split(",")[1] != ""  # still the 20th, complete
