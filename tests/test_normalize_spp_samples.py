"""SPP: every real sample of tests/samples/spp parses, values checked; SPP's file names on both 2024 DST
days (local Central names, folder from the interval start, ``d`` on the repeated hour); the quirks."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from helpers import samples_dir

from pmp import registry
from pmp.errors import NormalizeError
from pmp.isos.spp import files
from pmp.isos.spp.adapter import day_slice
from pmp.isos.spp.normalize import normalize_payload, source_name, storage_name
from pmp.timeutil import market_day_bounds

SAMPLES = samples_dir("spp")


def sample(part: str) -> tuple[str, bytes]:
    path = next(p for p in SAMPLES.iterdir() if part in p.name)
    return path.name.rsplit("__", 1)[-1], path.read_bytes()


def rows(dataset: str, part: str) -> list[dict]:
    name, data = sample(part)
    return registry.adapter("spp").normalize(registry.get("spp", dataset), name, data).to_pylist()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_da_lmp_2025_every_location_and_hour() -> None:
    got = rows("lmp_dam", "DA-LMP-SL-202503190100")
    assert len(got) == 29_616 and len({r["location"] for r in got}) == 1_234
    starts = sorted({r["interval_start"] for r in got})
    assert starts == [utc(2025, 3, 19, 5) + timedelta(hours=h) for h in range(24)]  # CDT day, HE24 = 00:00
    first = got[0]
    assert first == {**first, "interval_start": utc(2025, 3, 19, 5), "interval_end": utc(2025, 3, 19, 6),
                     "market": "DAM", "location": "AEC", "location_id": "SOUC", "location_type": "Settlement Location",
                     "lmp": 9.6667, "loss": 0.1410, "congestion": -2.1891, "energy": 11.7148, "ghg": None,
                     "iso": "SPP", "source": "DA-LMP-SL-202503190100.csv"}
    for r in got:  # LMP = MLC + MCC + MEC to the published 4 decimals
        assert math.isclose(r["energy"] + r["congestion"] + r["loss"], r["lmp"], abs_tol=5e-5)
    kinds = {r["location"]: r["location_type"] for r in got}
    assert kinds["SPPNORTH_HUB"] == kinds["SPPSOUTH_HUB"] == "Hub" and kinds["AECI"] == kinds["ERCOTE"] == "Interface"


def test_da_lmp_2026_with_the_baa_column() -> None:
    got = rows("lmp_dam", "spp_da_lmp_sl_20261004")
    assert len(got) == 74
    north = [r for r in got if r["location"] == "SPPNORTH_HUB"]
    assert len(north) == 24 and north[0]["lmp"] == 30.5987 and north[0]["location_id"] == "SPPNORTH_H"
    assert north[0]["interval_end"] == utc(2026, 10, 4, 6)
    aeso = next(r for r in got if r["location"] == "AESO")  # an RTO West (SWPW) location
    assert (aeso["lmp"], aeso["energy"], aeso["interval_end"]) == (35.6874, 35.3238, utc(2026, 10, 4, 6))


@pytest.mark.parametrize("stamp", ["202503310840", "202503310850", "202503310855", "202503310900", "202503310910"])
def test_rtbm_interval_files(stamp: str) -> None:
    got = rows("lmp_rt5m", f"RTBM-LMP-SL-{stamp}")
    end = files.name_instant(f"RTBM-LMP-SL-{stamp}.csv")  # the local (CDT) name = the GMT stamps inside
    assert len(got) == 1_234 and {r["interval_end"] for r in got} == {end}
    assert {r["interval_start"] for r in got} == {end - timedelta(minutes=5)}
    assert {r["market"] for r in got} == {"RT5M"}
    for r in got:
        assert math.isclose(r["energy"] + r["congestion"] + r["loss"], r["lmp"], abs_tol=5e-5)
    if stamp == "202503310840":  # the congestion event of the real file
        aec = next(r for r in got if r["location"] == "AEC")
        assert (aec["lmp"], aec["congestion"], aec["energy"], aec["loss"]) == (35.6875, -247.3823, 290.0589, -6.9891)
        assert end == utc(2025, 3, 31, 13, 40)


def test_the_empty_interval_file_is_rejected_by_name() -> None:
    name, data = sample("RTBM-LMP-SL-202503310845")
    assert data == b""
    with pytest.raises(NormalizeError, match=r"RTBM-LMP-SL-202503310845.csv: empty file"):
        normalize_payload("lmp_rt5m", name, data)


def test_rtbm_mcp_latest_interval_with_its_leading_space_header() -> None:
    got = rows("as_rt5m", "rtbm-mcp-latest-interval")
    assert {r["interval_end"] for r in got} == {utc(2026, 7, 27, 21, 25)}  # 16:25 CDT
    assert {r["region"] for r in got} == {"1", "2", "21", "3", "4", "5", "SPP", "SWPW"}
    products = {r["product"] for r in got}
    assert products == {"RegUPService", "RegDNService", "RegUpMile", "RegDNMile", "RampUP", "RampDN", "Spin", "Supp",
                        "UncUP"}  # " RegDNMile" stripped; BAA is not a product
    price = {(r["region"], r["product"]): r["clearing_price"] for r in got}
    assert price[("21", "RegDNService")] == 35.4132 and price[("1", "RegUPService")] == 8.0133
    assert price[("SWPW", "Supp")] == 7.2444 and price[("3", "RegDNMile")] == 0.5
    assert len(got) == 8 * 9 and {r["market"] for r in got} == {"RT5M"}


def test_gen_mix_chart() -> None:
    got = rows("fuel_mix", "spp-chart-api-gen-mix")
    assert len(got) == 24 * 10
    assert {r["fuel"] for r in got} == {"Coal", "Diesel Fuel Oil", "Hydro", "Natural Gas", "Nuclear", "Solar",
                                        "Waste Disposal Services", "Wind", "Waste Heat", "Other"}
    coal = sorted((r for r in got if r["fuel"] == "Coal"), key=lambda r: r["interval_end"])
    assert (coal[0]["interval_end"], coal[0]["generation_mw"]) == (utc(2026, 7, 27, 19, 25), 14915.1)
    assert (coal[-1]["interval_end"], coal[-1]["generation_mw"]) == (utc(2026, 7, 27, 21, 20), 14217.4)
    assert coal[0]["interval_start"] == utc(2026, 7, 27, 19, 20)  # labels are interval ends
    assert {r["published_at"] for r in got} == {datetime(2026, 7, 27, 21, 20, 28, 332000, tzinfo=UTC)}


def test_the_404_sample_is_an_empty_body() -> None:
    assert sample("TieFlows_SWPW_Feb2025")[1] == b""


# ---------------------------------------------------------------------------------------- names
def names(prefix: str, day: date) -> list[str]:
    lo, hi = market_day_bounds(day, files.TZ)
    return [files.interval_path(prefix, end) for end in files.interval_ends(lo, hi)]


def test_interval_file_names_on_the_fall_back_day() -> None:
    got = names("RTBM-LMP-SL", date(2024, 11, 3))
    assert len(got) == 300  # 25 hours
    assert got[0] == "/2024/11/By_Interval/03/RTBM-LMP-SL-202411030005.csv"
    assert got[-1] == "/2024/11/By_Interval/03/RTBM-LMP-SL-202411040000.csv"  # 00:00 file in the day's folder
    second_pass = [f"/2024/11/By_Interval/03/RTBM-LMP-SL-20241103{t}d.csv" for t in
                   ("0100", "0105", "0110", "0115", "0120", "0125", "0130", "0135", "0140", "0145", "0150", "0155")]
    first_pass = [p.replace("d.csv", ".csv") for p in second_pass]
    assert [p for p in got if p.endswith("d.csv")] == second_pass
    assert all(p in got for p in first_pass)  # 01:00 CDT .. 01:55 CDT too
    assert got.index(second_pass[0]) == got.index(first_pass[-1]) + 1  # 01:55 CDT, then 01:00 CST
    assert files.name_instant(second_pass[1]) == utc(2024, 11, 3, 7, 5)
    assert files.name_instant(first_pass[1]) == utc(2024, 11, 3, 6, 5)
    assert len(set(got)) == 300


def test_interval_file_names_on_the_spring_forward_day() -> None:
    got = names("RTBM-MCP", date(2024, 3, 10))
    assert len(got) == 276  # 23 hours, no 02:xx names and no d
    assert "/2024/03/By_Interval/10/RTBM-MCP-202403100155.csv" in got
    i = got.index("/2024/03/By_Interval/10/RTBM-MCP-202403100155.csv")
    assert got[i + 1] == "/2024/03/By_Interval/10/RTBM-MCP-202403100300.csv"  # 07:55Z, then 08:00Z = 03:00 CDT
    assert files.name_instant(got[i + 1]) == utc(2024, 3, 10, 8)
    assert not any("-2024031002" in p or p.endswith("d.csv") for p in got)
    assert got[-1] == "/2024/03/By_Interval/10/RTBM-MCP-202403110000.csv"
    with pytest.raises(files.FileNameError, match="spring-forward gap"):
        files.name_instant("RTBM-MCP-202403100205.csv")


def test_day_files_and_forecast_issue_names() -> None:
    assert files.daily_path("RTBM-LMP-DAILY-SL", date(2024, 11, 3)) == "/2024/11/By_Day/RTBM-LMP-DAILY-SL-20241103.csv"
    assert files.da_path("DA-LMP-SL", date(2024, 3, 10)) == "/2024/03/By_Day/DA-LMP-SL-202403100100.csv"
    assert files.da_path("DA-MCP", date(2024, 3, 10), by_day=False) == "/2024/03/DA-MCP-202403100100.csv"
    fall_lo, fall_hi = market_day_bounds(date(2024, 11, 3), files.TZ)
    issues = [files.vintage_path("OP-MTLF", t).rsplit("/", 1)[1] for t in files.hours(fall_lo, fall_hi)]
    assert issues[:4] == ["OP-MTLF-202411030000.csv", "OP-MTLF-202411030100.csv", "OP-MTLF-202411030100d.csv",
                          "OP-MTLF-202411030200.csv"] and len(issues) == 25
    spring_lo, spring_hi = market_day_bounds(date(2024, 3, 10), files.TZ)
    issues = [files.vintage_path("OP-MTLF", t).rsplit("/", 1)[1] for t in files.hours(spring_lo, spring_hi)]
    assert issues[1:3] == ["OP-MTLF-202403100100.csv", "OP-MTLF-202403100300.csv"] and len(issues) == 23
    assert files.vintage_path("OP-MTLF", utc(2024, 11, 3, 7)) == "/2024/11/03/OP-MTLF-202411030100d.csv"
    # a "d" on a time that is not repeated (gridstatus saw OP-MTLF-202511020200d) reads as that time
    assert files.name_instant("OP-MTLF-202511020200d.csv") == utc(2025, 11, 2, 8)


# ---------------------------------------------------------------------------------------- quirks
HEAD = "Interval,GMTIntervalEnd,Settlement Location,Pnode,LMP,MLC,MCC,MEC\n"


def test_local_label_must_match_the_gmt_stamp() -> None:
    bad = HEAD + "11/03/2024 01:05:00,11/03/2024 07:05:00,AEC,SOUC,1.0000,0.0000,0.0000,1.0000\n"
    got = normalize_payload("lmp_rt5m", "RTBM-LMP-SL-202411030105d.csv", bad.encode())  # 01:05 CST = 07:05Z
    assert got.column("interval_end").to_pylist() == [utc(2024, 11, 3, 7, 5)]
    wrong = HEAD + "11/03/2024 02:05:00,11/03/2024 07:05:00,AEC,SOUC,1.0000,0.0000,0.0000,1.0000\n"
    with pytest.raises(NormalizeError, match=r"x.csv, line 2, field 'Interval': local '11/03/2024 02:05:00' is not"):
        normalize_payload("lmp_rt5m", "x.csv", wrong.encode())
    with pytest.raises(NormalizeError, match=r"line 2, field 'LMP': not a number: 'n/a'"):
        normalize_payload("lmp_rt5m", "x.csv", (HEAD + "11/03/2024 01:05:00,11/03/2024 06:05:00,AEC,SOUC,n/a,0,0,1\n"
                                                ).encode())


def test_daily_rollup_header_spellings() -> None:
    text = ("Interval, GMT Interval, Settlement Location Name, PNODE Name, LMP, MLC, MCC, MEC\r\n"
            "11/03/2024 00:05:00,11/03/2024 05:05:00,AEC,SOUC,2.5000,0.5000,-1.0000,3.0000\r\n")
    got = normalize_payload("lmp_rt5m", "RTBM-LMP-DAILY-SL-20241103.0a1b2c3d.csv", text.encode())
    assert got.to_pylist()[0]["location_id"] == "SOUC" and got.column("source")[0].as_py() == "RTBM-LMP-DAILY-SL-20241103.csv"


def test_mtlf_vintage_from_the_name_and_actuals() -> None:
    text = ("Interval,GMTIntervalEnd,MTLF,Averaged Actual\n"
            "11/03/2024 01:00:00,11/03/2024 07:00:00,,30100.5\n"
            "11/03/2024 02:00:00,11/03/2024 08:00:00,30200.0,\n")
    name = "OP-MTLF-202411030100d.csv"
    forecast = normalize_payload("load_forecast", name, text.encode()).to_pylist()
    assert [(r["interval_end"], r["load_mw"], r["forecast_issued_at"], r["model"], r["area"]) for r in forecast] == [
        (utc(2024, 11, 3, 8), 30200.0, utc(2024, 11, 3, 7), "MTLF", "SYSTEM")]
    actual = normalize_payload("load_actual", name, text.encode()).to_pylist()
    assert [(r["interval_start"], r["load_mw"], r["forecast_issued_at"], r["kind"]) for r in actual] == [
        (utc(2024, 11, 3, 6), 30100.5, utc(2024, 11, 3, 7), "actual")]
    with_baa = ("Interval,GMTIntervalEnd,MTLF,Averaged Actual,BAA\n"
                "10/04/2026 01:00:00,10/04/2026 06:00:00,,30000.0,SPP\n"
                "10/04/2026 01:00:00,10/04/2026 06:00:00,,2500.5,SWPW\n")
    areas = {r["area"]: r["load_mw"] for r in normalize_payload("load_actual", "OP-MTLF-202610040100.csv",
                                                                 with_baa.encode()).to_pylist()}
    assert areas == {"SPP": 30000.0, "SWPW": 2500.5, "SYSTEM": 32500.5}


def test_genmix_csv_sums_market_and_self_and_day_slices() -> None:
    text = (b"GMT MKT Interval,Coal Market,Coal Self,Wind Market,Wind Self,Load\n"
            b"2024-11-03T05:00:00Z,1.0,2.0,3.0,4.0,9.9\n"  # ends at local midnight: the day before
            b"2024-11-03T05:05:00Z,10.5,2.0,3.0,,9.9\n"
            b"2024-11-04T06:00:00Z,1.0,1.0,1.0,1.0,9.9\n")
    cut = day_slice("GenMix365_SPP.csv", text, date(2024, 11, 3))
    assert cut == b"".join(text.splitlines(keepends=True)[i] for i in (0, 2, 3))  # byte for byte
    got = normalize_payload("fuel_mix", "GenMix365_SPP-20241103.01234567.csv", cut).to_pylist()
    assert [(r["fuel"], r["generation_mw"], r["interval_end"]) for r in got[:2]] == [
        ("Coal", 12.5, utc(2024, 11, 3, 5, 5)), ("Wind", 3.0, utc(2024, 11, 3, 5, 5))]
    assert storage_name("GenMix365_SPP-20241103.csv", "0123456789") == "GenMix365_SPP-20241103.01234567.csv"
    assert source_name("RTBM-LMP-SL-202411030105d.0a1b2c3d.csv") == "RTBM-LMP-SL-202411030105d.csv"


@pytest.mark.parametrize("part", ["DA-LMP-SL-202503190100", "spp_da_lmp_sl_20261004", "RTBM-LMP-SL-202503310840"])
def test_vectorized_lmp_path_equals_the_reference(part: str) -> None:
    """The pipeline's Arrow-kernel LMP path gives exactly the row-by-row reference's rows; anything
    unusual falls back to the reference, which names the line and field."""
    from pmp.isos.spp.normalize import MARKET, _lmp, lmp_vectorized, read_csv

    name, data = sample(part)
    dataset = "lmp_dam" if name.startswith("DA-") or "da_lmp" in name else "lmp_rt5m"
    fast = lmp_vectorized(data, *MARKET[dataset], name, None)
    assert fast is not None and fast.equals(_lmp(read_csv(name, data), *MARKET[dataset], name, None))
    lines = data.decode().splitlines(keepends=True)
    repeated = "".join([*lines, lines[1]]).encode()  # an exact repeat: the reference drops it
    assert lmp_vectorized(repeated, *MARKET[dataset], name, None) is None
    assert normalize_payload(dataset, name, repeated).num_rows == fast.num_rows


def test_spp_benchmark_runs() -> None:
    import re
    import subprocess
    import sys

    from helpers import ROOT

    out = subprocess.run([sys.executable, "bench/spp_rt5m.py", "--locations", "30", "--intervals", "12", "--rounds",
                          "1"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"spp_rt5m: normalize=(\d+) reference=(\d+) pyarrow=(\d+) normalize/reference=(\d+\.\d) "
                     r"normalize/pyarrow=(\d+\.\d\d) mb=(\d+\.\d)", last)
    assert m and all(int(m[i]) > 0 for i in (1, 2, 3)), last
