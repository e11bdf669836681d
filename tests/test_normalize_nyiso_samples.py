"""NYISO normalizers on the real published files in ../shared/samples/nyiso, plus the header and
DST variants the reference documents (built from those real rows)."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.nyiso.normalize import normalize_payload, published_at_from_name, source_name, storage_name

SAMPLES = samples_dir("nyiso")


def sample(prefix: str) -> Path:
    found = sorted(SAMPLES.glob(f"{prefix}*"))
    assert found, f"sample {prefix}* missing under {SAMPLES}"
    return found[0]


def raw_rows(path: Path) -> list[dict[str, str]]:
    text = path.read_text().strip("\n")
    return list(csv.DictReader(io.StringIO(text)))


def test_every_real_sample_is_covered() -> None:
    names = sorted(p.name.split("__")[0] for p in SAMPLES.iterdir())
    assert names == ["integrated_load_palIntegrated", "load_forecast_isolf", "rt_actual_load_pal", "rt_zonal_lbmp"]


def test_realtime_zonal_lbmp_interval_end_sign_flip_and_identity() -> None:
    path = sample("rt_zonal_lbmp")
    raw = raw_rows(path)  # the file starts with an empty line and has no final newline
    rows = normalize_payload("lmp_rt5m", path.name, path.read_bytes()).to_pylist()
    assert len(rows) == len(raw) == 45
    for src, row in zip(raw, rows, strict=True):
        end_local = datetime.strptime(src["Time Stamp"], "%m/%d/%Y %H:%M:%S")
        # 02/18/2016 is EST (UTC-5); real-time stamps mark the interval END
        assert row["interval_end"] == (end_local + timedelta(hours=5)).replace(tzinfo=UTC)
        assert row["interval_start"] == row["interval_end"] - timedelta(minutes=5)
        assert (row["iso"], row["market"], row["location"]) == ("NYISO", "RT5M", src["Name"])
        assert row["lmp"] == float(src["LBMP ($/MWHr)"])
        assert row["loss"] == float(src["Marginal Cost Losses ($/MWHr)"])
        assert row["congestion"] == -float(src["Marginal Cost Congestion ($/MWHr)"])  # NYISO sign flipped
        exact = Decimal(src["LBMP ($/MWHr)"]) - Decimal(src["Marginal Cost Losses ($/MWHr)"]) + Decimal(
            src["Marginal Cost Congestion ($/MWHr)"])
        assert row["energy"] == float(exact)
        assert math.isclose(row["energy"] + row["congestion"] + row["loss"], row["lmp"], abs_tol=1e-9)
    types = {r["location"]: r["location_type"] for r in rows}
    assert types["CAPITL"] == "Zone" and types["H Q"] == "External" and types["PJM"] == "External"
    assert {r["source"] for r in rows} == {path.name}


def test_ptids_stored_as_location_id_from_daily_csv_and_monthly_zip() -> None:
    """Locations keep NYISO's names and PTIDs: zones and the external proxies of the real sample."""
    path = sample("rt_zonal_lbmp")
    expected = {(r["Time Stamp"], r["Name"]): r["PTID"] for r in raw_rows(path)}  # from the sample text
    assert expected[("02/18/2016 00:15:00", "CAPITL")] == "61757" and expected[("02/18/2016 00:15:00", "H Q")] == "61844"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("20160218realtime_zone.csv", path.read_bytes())
    for name, payload in [("20160218realtime_zone.csv", path.read_bytes()),
                          ("20160201realtime_zone_csv.zip", buf.getvalue())]:
        rows = normalize_payload("lmp_rt5m", name, payload).to_pylist()
        assert len(rows) == len(expected) == 45
        for row in rows:
            local = (row["interval_end"] - timedelta(hours=5)).strftime("%m/%d/%Y %H:%M:%S")  # EST
            assert row["location_id"] == expected[(local, row["location"])], (name, row)
        types = {(r["location_type"], r["location_id"]) for r in rows if r["location"] in ("WEST", "PJM")}
        assert types == {("Zone", "61752"), ("External", "61847")}
    gen = ("Time Stamp,Name,PTID,LBMP ($/MWHr),Marginal Cost Losses ($/MWHr),Marginal Cost Congestion ($/MWHr)\n"
           "11/04/2024 00:00,SIM_GEN_001,323501,30.00,1.00,0.00\n")
    (row,) = normalize_payload("lmp_dam", "20241104damlbmp_gen.csv", gen.encode()).to_pylist()
    assert (row["location"], row["location_type"], row["location_id"]) == ("SIM_GEN_001", "Generator", "323501")
    with pytest.raises(NormalizeError, match="not a PTID") as err:
        normalize_payload("lmp_dam", "20241104damlbmp_gen.csv", gen.replace("323501", "3235O1").encode())
    assert (err.value.line, err.value.field) == (2, "PTID")


def test_congestion_identity_with_nonzero_congestion() -> None:
    text = ('"Time Stamp","Name","PTID","LBMP ($/MWHr)","Marginal Cost Losses ($/MWHr)",'
            '"Marginal Cost Congestion ($/MWHr)"\r\n"07/10/2024 15:05:00","N.Y.C.",61761,112.35,4.10,-67.42\r\n')
    (row,) = normalize_payload("lmp_rt5m", "20240710realtime_zone.csv", text.encode()).to_pylist()
    assert row["congestion"] == 67.42 and row["loss"] == 4.10 and row["energy"] == 40.83
    assert math.isclose(row["energy"] + row["congestion"] + row["loss"], 112.35, abs_tol=1e-9)


def test_pal_sample_five_minute_readings_system_total_and_empty_placeholders() -> None:
    path = sample("rt_actual_load_pal")
    raw = raw_rows(path)
    rows = normalize_payload("load_actual", path.name, path.read_bytes()).to_pylist()
    filled = [r for r in raw if r["Load"]]
    assert len(raw) == 55 and len(filled) == 44  # the 19:35 stamp is an empty placeholder
    zones = [r for r in rows if r["area"] != "SYSTEM"]
    assert len(zones) == len(filled)
    for src, row in zip(filled, zones, strict=False):
        assert row["load_mw"] == float(src["Load"])
    for src in filled:
        t = datetime.strptime(src["Time Stamp"], "%m/%d/%Y %H:%M:%S") + timedelta(hours=4)  # EDT
        match = [r for r in zones if r["area"] == src["Name"] and r["interval_start"] == t.replace(tzinfo=UTC)]
        assert len(match) == 1 and match[0]["load_mw"] == float(src["Load"])
        assert match[0]["interval_end"] - match[0]["interval_start"] == timedelta(minutes=5)
        assert match[0]["forecast_issued_at"] == match[0]["interval_end"]  # actuals convention
        assert (match[0]["kind"], match[0]["model"]) == ("actual", "")
    totals = {r["interval_start"]: r["load_mw"] for r in rows if r["area"] == "SYSTEM"}
    assert len(totals) == 4
    for start, total in totals.items():
        assert total == float(sum(Decimal(r["Load"]) for r in filled
                                  if (datetime.strptime(r["Time Stamp"], "%m/%d/%Y %H:%M:%S")
                                      + timedelta(hours=4)).replace(tzinfo=UTC) == start))


def test_pal_integrated_sample_crlf_hourly() -> None:
    path = sample("integrated_load_palIntegrated")
    assert b"\r\n" in path.read_bytes()
    raw = raw_rows(path)
    rows = normalize_payload("load_actual", path.name, path.read_bytes()).to_pylist()
    assert len(raw) == 77 and len(rows) == 77 + 7  # 7 hours x (11 zones + SYSTEM)
    first = next(r for r in rows if r["area"] == "CAPITL")
    assert first["interval_start"] == datetime(2013, 2, 25, 5, tzinfo=UTC)  # 00:00 EST, hour start
    assert first["interval_end"] == datetime(2013, 2, 25, 6, tzinfo=UTC)
    assert first["load_mw"] == 1164.6
    north = [r for r in rows if r["area"] == "NORTH"]
    assert north[-1]["load_mw"] == 804.0  # an integer in the file
    assert all(r["interval_end"] - r["interval_start"] == timedelta(hours=1) for r in rows)


def test_isolf_sample_vintage_from_publication_time() -> None:
    path = sample("load_forecast_isolf")
    raw = raw_rows(path)
    issued = datetime(2017, 11, 22, 10, 41, 37, tzinfo=UTC)  # a P-7list "Last Updated" time
    rows = normalize_payload("load_forecast", path.name, path.read_bytes(), issued).to_pylist()
    assert len(raw) == 144 and len(rows) == 144 * 12
    areas = sorted({r["area"] for r in rows})
    assert areas == sorted(["CAPITL", "CENTRL", "DUNWOD", "GENESE", "HUD VL", "LONGIL", "MHK VL", "MILLWD",
                            "N.Y.C.", "NORTH", "WEST", "SYSTEM"])
    assert {r["forecast_issued_at"] for r in rows} == {datetime(2017, 11, 22, 10, 41, tzinfo=UTC)}
    assert {r["published_at"] for r in rows} == {issued}
    assert {(r["kind"], r["model"]) for r in rows} == {("forecast", "")}
    starts = sorted({r["interval_start"] for r in rows})
    assert starts[0] == datetime(2017, 11, 22, 5, tzinfo=UTC) and starts[-1] == datetime(2017, 11, 28, 4, tzinfo=UTC)
    system = {r["interval_start"]: r["load_mw"] for r in rows if r["area"] == "SYSTEM"}
    assert system[starts[0]] == float(raw[0]["NYISO"]) == 13962.0
    hud = next(r for r in rows if r["area"] == "HUD VL" and r["interval_start"] == starts[0])
    assert hud["load_mw"] == float(raw[0]["Hud Vl"])


def test_isolf_without_issue_time_is_rejected_but_raw_stage_name_carries_it() -> None:
    path = sample("load_forecast_isolf")
    with pytest.raises(NormalizeError, match="no issue time") as err:
        normalize_payload("load_forecast", path.name, path.read_bytes())
    assert err.value.field == "forecast_issued_at"
    issued = datetime(2017, 11, 22, 10, 41, 37, tzinfo=UTC)
    stored = storage_name("20171122isolf.csv", issued, "0123456789abcdef")
    assert stored == "20171122isolf.20171122T104137Z.01234567.csv"
    assert published_at_from_name(stored) == issued and source_name(stored) == "20171122isolf.csv"
    rows = normalize_payload("load_forecast", stored, path.read_bytes()).to_pylist()
    assert {r["source"] for r in rows} == {"20171122isolf.csv"}
    assert {r["forecast_issued_at"] for r in rows} == {datetime(2017, 11, 22, 10, 41, tzinfo=UTC)}


def test_monthly_zip_member_time_is_the_vintage() -> None:
    path = sample("load_forecast_isolf")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("20171122isolf.csv", (2017, 11, 22, 5, 41, 36)), path.read_bytes())
    rows = normalize_payload("load_forecast", "20171101isolf_csv.zip", buf.getvalue()).to_pylist()
    assert len(rows) == 144 * 12
    # member time is local (EST): 05:41:36 EST = 10:41:36 UTC; the vintage is that minute
    assert {r["forecast_issued_at"] for r in rows} == {datetime(2017, 11, 22, 10, 41, tzinfo=UTC)}
    assert {r["source"] for r in rows} == {"20171122isolf.csv"}


def test_truncated_congestion_header_before_mid_2016() -> None:
    """Files before 2016-07 cut the header short (``($/MWH``); the row is the reference's real one."""
    text = ("Time Stamp,Name,PTID,LBMP ($/MWHr),Marginal Cost Losses ($/MWHr),Marginal Cost Congestion ($/MWH\n"
            '"03/01/2016 00:00","CAPITL",61757,14.16,0.47,-7.20\n')
    (row,) = normalize_payload("lmp_dam", "20160301damlbmp_zone.csv", text.encode()).to_pylist()
    assert row["interval_start"] == datetime(2016, 3, 1, 5, tzinfo=UTC)  # DAM: interval start
    assert row["interval_end"] == datetime(2016, 3, 1, 6, tzinfo=UTC)
    assert (row["lmp"], row["loss"], row["congestion"]) == (14.16, 0.47, 7.20)
    assert row["energy"] == 6.49 and row["market"] == "DAM"


def test_fuel_mix_header_variants_and_interval_end() -> None:
    for header in ("Time Stamp,Time Zone,Fuel Category,Gen MW", "Time Stamp,Time Zone,Fuel Category,Gen MWh"):
        text = f"{header}\r\n12/18/2017 00:05:00,EST,Dual Fuel,2391.0\r\n12/18/2017 00:05:00,EST,Nuclear,4400.0\r\n"
        rows = normalize_payload("fuel_mix", "20171218rtfuelmix.csv", text.encode()).to_pylist()
        assert [(r["fuel"], r["generation_mw"]) for r in rows] == [("Dual Fuel", 2391.0), ("Nuclear", 4400.0)]
        assert rows[0]["interval_start"] == datetime(2017, 12, 18, 5, tzinfo=UTC)
        assert rows[0]["interval_end"] == datetime(2017, 12, 18, 5, 5, tzinfo=UTC)


def test_pal_and_fuel_mix_readings_of_one_instant_line_up_on_opposite_edges() -> None:
    """Both are instantaneous readings; pal's day file starts at 00:00 (the real sample), rtfuelmix's at
    00:05, so a reading at t is pal [t, t+5) and fuel mix [t-5, t) (README, Time conventions)."""
    path = sample("rt_actual_load_pal")
    pal = normalize_payload("load_actual", path.name, path.read_bytes()).to_pylist()
    fuel_text = "Time Stamp,Time Zone,Fuel Category,Gen MW\r\n09/10/2014 00:05:00,EDT,Nuclear,4400.0\r\n"
    (fuel,) = normalize_payload("fuel_mix", "20140910rtfuelmix.csv", fuel_text.encode()).to_pylist()
    reading = datetime(2014, 9, 10, 4, 5, tzinfo=UTC)  # 00:05:00 EDT
    capitl = next(r for r in pal if r["area"] == "CAPITL" and r["interval_start"] == reading)
    assert capitl["load_mw"] == 1180.0  # the sample's 00:05:00 CAPITL reading
    assert (fuel["interval_start"], fuel["interval_end"]) == (reading - timedelta(minutes=5), reading)


def test_damasp_wide_products_time_zone_column() -> None:
    text = ("Time Stamp,Time Zone,Name,PTID,10 Min Spinning Reserve ($/MWHr),10 Min Non-Synchronous Reserve ($/MWHr),"
            "30 Min Operating Reserve ($/MWHr),NYCA Regulation Capacity ($/MWHr)\r\n"
            "09/15/2026 00:00,EDT,WEST,61752,3.20,0.50,0.50,9.85\r\n")
    rows = normalize_payload("as_dam", "20260915damasp.csv", text.encode()).to_pylist()
    assert [(r["product"], r["clearing_price"]) for r in rows] == [
        ("10 Min Spinning Reserve", 3.2), ("10 Min Non-Synchronous Reserve", 0.5),
        ("30 Min Operating Reserve", 0.5), ("NYCA Regulation Capacity", 9.85)]
    assert {(r["region"], r["market"]) for r in rows} == {("WEST", "DAM")}
    assert {r["interval_start"] for r in rows} == {datetime(2026, 9, 15, 4, tzinfo=UTC)}


def test_damlbmp_fall_back_day_first_occurrence_is_edt() -> None:
    """No Time Zone column: 01:00 is listed twice and row order decides (WEST 50.72 then 48.63, uepi-2)."""
    lines = ["Time Stamp,Name,PTID,LBMP ($/MWHr),Marginal Cost Losses ($/MWHr),Marginal Cost Congestion ($/MWHr)"]
    for label, west in [("00:00", "47.10"), ("01:00", "50.72"), ("01:00", "48.63"), ("02:00", "45.00")]:
        lines += [f"11/03/2024 {label},CAPITL,61757,{west},0.50,0.00", f"11/03/2024 {label},WEST,61752,{west},0.00,0.00"]
    rows = normalize_payload("lmp_dam", "20241103damlbmp_zone.csv", ("\n".join(lines) + "\n").encode()).to_pylist()
    west = [(r["interval_start"], r["lmp"]) for r in rows if r["location"] == "WEST"]
    assert west == [(datetime(2024, 11, 3, 4, tzinfo=UTC), 47.10), (datetime(2024, 11, 3, 5, tzinfo=UTC), 50.72),
                    (datetime(2024, 11, 3, 6, tzinfo=UTC), 48.63), (datetime(2024, 11, 3, 7, tzinfo=UTC), 45.00)]


def test_time_zone_column_settles_the_repeated_hour() -> None:
    path = sample("rt_actual_load_pal")
    text = path.read_text().replace("09/10/2014", "11/03/2024")
    lines = text.splitlines()
    # the first stamp's rows become the EDT copy of 01:00, the second stamp's the EST copy
    lines = [lines[0]] + [ln.replace("00:00:00", "01:00:00") for ln in lines[1:12]] + [
        ln.replace("00:05:00", "01:00:00").replace('"EDT"', '"EST"') for ln in lines[12:23]]
    rows = normalize_payload("load_actual", "20241103pal.csv", "\n".join(lines).encode()).to_pylist()
    starts = sorted({r["interval_start"] for r in rows})
    assert starts == [datetime(2024, 11, 3, 5, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC)]
    # values, not only stamps: 01:00 EDT (05:00Z) carries the sample's 00:00 readings, 01:00 EST (06:00Z)
    # its 00:05 readings, so swapped copies of the repeated hour fail here
    raw = raw_rows(path)
    for stamp, start in [("09/10/2014 00:00:00", starts[0]), ("09/10/2014 00:05:00", starts[1])]:
        want = {r["Name"]: float(r["Load"]) for r in raw if r["Time Stamp"] == stamp}
        got = {r["area"]: r["load_mw"] for r in rows if r["interval_start"] == start and r["area"] != "SYSTEM"}
        assert len(want) == 11 and got == want, stamp
    assert {r["load_mw"] for r in rows if r["area"] == "CAPITL"} == {1173.2, 1180.0}  # sample text


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda c: c.__setitem__(3, "2x.53"), "LBMP ($/MWHr)", "not a number"),
        (lambda c: c.__setitem__(0, '"2016-02-18 00:15"'), "Time Stamp", "time stamp"),
        (lambda c: c.__setitem__(0, '"03/10/2024 02:30:00"'), "Time Stamp", "spring-forward gap"),
        (lambda c: c.__setitem__(3, ""), "LBMP ($/MWHr)", "empty price"),
    ],
)
def test_bad_input_names_file_line_field(mutate, field: str, message: str) -> None:
    path = sample("rt_zonal_lbmp")
    lines = path.read_text().split("\n")
    cells = lines[7].split(",")  # the empty first line is line 1, the header line 2
    mutate(cells)
    lines[7] = ",".join(cells)
    with pytest.raises(NormalizeError, match=message) as err:
        normalize_payload("lmp_rt5m", "20160218realtime_zone.csv", "\n".join(lines).encode())
    assert (err.value.file, err.value.line, err.value.field) == ("20160218realtime_zone.csv", 8, field)
    assert f"20160218realtime_zone.csv, line 8, field '{field}'" in str(err.value)


def test_error_inside_a_monthly_zip_names_the_member() -> None:
    path = sample("rt_zonal_lbmp")
    bad = path.read_bytes().replace(b"21.53", b"N/A", 1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("20160217realtime_zone.csv", path.read_bytes().replace(b"02/18/2016", b"02/17/2016"))
        zf.writestr("20160218realtime_zone.csv", bad)
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_rt5m", "20160201realtime_zone_csv.zip", buf.getvalue())
    assert err.value.file == "20160201realtime_zone_csv.zip!20160218realtime_zone.csv" and err.value.line == 3


def test_missing_column_and_conflicting_duplicates_rejected() -> None:
    with pytest.raises(NormalizeError, match="missing column"):
        normalize_payload("lmp_dam", "x.csv", b"Time Stamp,Name\r\n11/03/2024 00:00,WEST\r\n")
    dup = ("Time Stamp,Name,PTID,LBMP ($/MWHr),Marginal Cost Losses ($/MWHr),Marginal Cost Congestion ($/MWHr)\n"
           "06/03/2024 00:00,WEST,61752,20.00,0.00,0.00\n06/03/2024 00:00,WEST,61752,21.00,0.00,0.00\n")
    with pytest.raises(NormalizeError, match="listed again") as err:
        normalize_payload("lmp_dam", "d.csv", dup.encode())
    assert err.value.line == 3
    ptid = dup.replace("61752,21.00", "99999,21.00").replace("06/03/2024 00:00,WEST,99999", "06/03/2024 01:00,WEST,99999")
    with pytest.raises(NormalizeError, match="PTID"):
        normalize_payload("lmp_dam", "d.csv", ptid.encode())


def test_crlf_and_lf_give_identical_rows() -> None:
    path = sample("rt_actual_load_pal")
    crlf = path.read_bytes().replace(b"\n", b"\r\n")
    assert normalize_payload("load_actual", path.name, crlf) == normalize_payload(
        "load_actual", path.name, path.read_bytes())


@pytest.mark.parametrize("header, problem", [
    ("10 Min Spinning Reserve ($/MWHr),10 Min Non-Sync Reserve ($/MWHr),30 Min Operating Reserve ($/MWHr),"
     "NYCA Regulation Capacity ($/MWHr)", "field '10 Min Non-Sync Reserve': not a declared as_dam product"),
    ("10 Min Spinning Reserve ($/MWHr),30 Min Operating Reserve ($/MWHr),NYCA Regulation Capacity ($/MWHr)",
     "product column(s) 10 Min Non-Synchronous Reserve missing"),
])
def test_damasp_products_are_declared(header: str, problem: str) -> None:
    """A renamed or dropped product column of the wide AS file fails at its header (issue 14: before,
    every non-key column became a product, so the drift loaded a different product set)."""
    values = ",".join(["1.0"] * header.count("$"))
    text = f"Time Stamp,Time Zone,Name,PTID,{header}\r\n09/15/2026 00:00,EDT,WEST,61752,{values}\r\n"
    with pytest.raises(NormalizeError) as err:
        normalize_payload("as_dam", "20260915damasp.csv", text.encode())
    assert "20260915damasp.csv, line 1" in str(err.value) and problem in str(err.value), str(err.value)
