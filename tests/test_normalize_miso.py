"""MISO normalizers: every real sample parses with its values checked; EST all year (both 2024 DST
days are 24-hour days, HE 3 of the spring-forward day exists); the simulator's files read back as
the samples do; bad input names file, line and field."""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.miso import normalize as nz
from pmp.isos.miso.datasets import TZ
from pmp.isos.miso.xls import read_xls, write_xls
from pmp.simulator import miso as sim
from pmp.timeutil import TimeLabelError, localize, market_day_bounds, market_day_hours

S = samples_dir("miso")
PUB = datetime(2026, 10, 2, 12, tzinfo=UTC)
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)


def rows(dataset: str, name: str, published: datetime | None = PUB) -> list[dict]:
    return nz.normalize_payload(dataset, name, (S / name).read_bytes(), published).to_pylist()


def by(rs: list[dict], **match: object) -> list[dict]:
    return [r for r in rs if all(r[k] == v for k, v in match.items())]


def test_da_expost_sample_values_and_energy() -> None:
    rs = rows("lmp_dam", "da_expost_lmp__ArenKDesai_miso-terminal__20261001_da_expost_lmp.csv")
    assert len(rs) == 22 * 24 and {r["market"] for r in rs} == {"DAM"}
    aeci = by(rs, location="AECI")
    assert aeci[0]["interval_start"] == datetime(2026, 10, 1, 5, tzinfo=UTC)  # HE 1 = 00:00-01:00 EST
    assert aeci[0]["lmp"] == 28.16 and aeci[0]["location_type"] == "Interface"
    assert aeci[-1]["interval_end"] == datetime(2026, 10, 2, 5, tzinfo=UTC)
    for he in range(24):  # MEC = LMP - MCC - MLC is the same at every node in an hour (SOURCES' check)
        energies = {round(r["energy"], 6) for r in rs if r["interval_start"] == aeci[he]["interval_start"]}
        assert len(energies) == 1
    for r in rs:
        assert math.isclose(r["energy"] + r["congestion"] + r["loss"], r["lmp"], abs_tol=1e-9)


def test_macrogauge_expost_and_exante_samples() -> None:
    rs = rows("lmp_dam", "da_expost_lmp__ewyluda_macrogauge__miso_da_expost.csv")
    il = by(rs, location="ILLINOIS.HUB")
    assert len(rs) == 72 and il[1]["congestion"] == 0.92 and il[1]["loss"] == -0.03  # ".92", "-.03"
    assert il[19]["lmp"] == 624.28 and il[19]["interval_start"] == datetime(2026, 7, 15, 0, tzinfo=UTC)  # HE 20
    ex = rows("lmp_dam_exante", "da_exante_lmp__MarkEnverus_claude-scraper-monorepo__sample_da_exante_lmp.csv")
    assert {r["market"] for r in ex} == {"DAM_EXANTE"} and len(ex) == 72
    assert by(ex, location="AECI.AMMO")[7]["lmp"] == 101.54
    assert all(r["energy"] is None and r["congestion"] is None for r in ex)  # the author kept LMP rows only


def test_five_minute_api_sample() -> None:
    rs = rows("lmp_rt5m", "rt_5min_expost_lmp__ArenKDesai_miso-terminal__GetRealTimeFiveMinExPost_"
                          "Previous.TRUNCATED-first-3-intervals.json")
    assert len(rs) == 66
    assert sorted({r["interval_start"] for r in rs}) == [datetime(2026, 10, 1, 5, m, tzinfo=UTC) for m in (0, 5, 10)]
    wps = by(rs, location="WPS.AZ")[0]
    assert (wps["lmp"], wps["loss"], wps["congestion"], wps["energy"]) == (26.77, 1.09, 0.0, 25.68)
    for t in {r["interval_start"] for r in rs}:
        assert len({round(r["energy"], 6) for r in rs if r["interval_start"] == t}) == 1


def test_ancillary_api_sample() -> None:
    rs = rows("as_rt5m", "as_mcp__ArenKDesai_miso-terminal__GetAncillaryServicesMcp.json")
    assert len(rs) == 8 * 6
    assert {r["interval_start"] for r in rs} == {datetime(2026, 10, 2, 21, 45, tzinfo=UTC)}  # 16:45 EST
    z1 = {r["product"]: r["clearing_price"] for r in by(rs, region="ZONE1")}
    assert z1 == {"REG": 17.53, "SPIN": 0.32, "SUPP": 0.17, "STR": 0.0, "RCUP": 0.0, "RCDOWN": 0.0}


def test_fuel_mix_samples(caplog: pytest.LogCaptureFixture) -> None:
    rs = rows("fuel_mix", "fuel_mix__ArenKDesai_miso-terminal__FuelMix.json")
    assert {r["fuel"]: r["generation_mw"] for r in rs}["Imports"] == 705.0 and len(rs) == 8
    assert sum(r["generation_mw"] for r in rs) == 82084  # TotalMW
    assert rs[0]["interval_start"] == datetime(2026, 10, 2, 21, 45, tzinfo=UTC)  # "4:45:00 PM" EST
    newer = rows("fuel_mix", "fuel_mix__MarkEnverus_claude-scraper-monorepo__sample_fuel_mix.json")
    assert newer[0]["interval_start"] == datetime(2025, 12, 3, 17, 55, tzinfo=UTC) and newer[0]["generation_mw"] == 28601
    old = rows("fuel_mix", "fuel_mix__electricitymaps_electricitymaps-contrib__MISO.html.EDITED-antimatter.json")
    assert by(old, fuel="Antimatter")[0]["generation_mw"] == 256 and "Antimatter" in caplog.text


def test_realtime_total_load_sample() -> None:
    name = "load__ArenKDesai_miso-terminal__RealTimeTotalLoad.json"
    actual = rows("load_actual", name)
    assert len(actual) == 16  # 00:00..16:45 EST: 16 complete hours
    doc = json.loads((S / name).read_bytes())
    first = [int(x["Load"]["Value"]) for x in doc["LoadInfo"]["FiveMinTotalLoad"][:12]]
    assert actual[0]["load_mw"] == round(sum(first) / 12, 3) and actual[0]["area"] == "SYSTEM"
    fc = rows("load_forecast", name)
    assert len(fc) == 24 and fc[0]["load_mw"] == 72137 and fc[-1]["load_mw"] == 67976
    assert {r["forecast_issued_at"] for r in fc} == {datetime(2026, 10, 2, 21, tzinfo=UTC)}  # the 16:00 EST hour


def test_df_al_sample_on_the_spring_forward_week() -> None:
    name = "df_al_load__electricitymaps_electricitymaps-contrib__20250310_df_al.xls"
    actual = rows("load_actual", name)
    assert len(actual) == 24 * 7  # 2025-03-09 (DST start) has 24 hours, 6 zones + SYSTEM
    system = by(actual, area="SYSTEM")
    assert system[0]["interval_start"] == datetime(2025, 3, 9, 5, tzinfo=UTC) and system[0]["load_mw"] == 65773.06
    assert system[2]["interval_start"] == datetime(2025, 3, 9, 7, tzinfo=UTC)  # HE 3 exists: EST has no gap
    assert by(actual, area="LRZ2_7")[1]["load_mw"] == 14594.36
    fc = rows("load_forecast", name, datetime(2025, 3, 10, 12, 30, 41, tzinfo=UTC))
    assert len(fc) == 6 * 24 * 7  # the MTLF of 03-10 .. 03-15 is this vintage; 03-09's is an older one
    assert {r["forecast_issued_at"] for r in fc} == {datetime(2025, 3, 10, 12, 30, tzinfo=UTC)}
    assert by(fc, area="SYSTEM")[0]["load_mw"] == 63085.0
    with pytest.raises(NormalizeError, match="publication date but no time"):
        nz.normalize_payload("load_forecast", name, (S / name).read_bytes())


def test_xls_writer_reads_back_like_the_sample() -> None:
    data = (S / "df_al_load__electricitymaps_electricitymaps-contrib__20250310_df_al.xls").read_bytes()
    cells = read_xls("sample.xls", data)
    assert read_xls("copy.xls", write_xls(cells)) == cells
    with pytest.raises(NormalizeError, match="not an OLE2"):
        read_xls("bad.xls", b"<html>nope</html>" * 40)


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_est_all_year_on_both_dst_days(day: date) -> None:
    start, end = market_day_bounds(day, TZ)
    assert (start, end - start) == (datetime(day.year, day.month, day.day, 5, tzinfo=UTC), timedelta(hours=24))
    assert [nz.he_start(day, he) for he in range(1, 25)] == [start + timedelta(hours=h) for h in range(24)]
    # the trap: read as America/New_York the same labels give a 23- or 25-hour day, and on the
    # spring day HE 3 (02:00-03:00) does not exist at all
    assert market_day_hours(day, "America/New_York") == (23 if day == SPRING else 25)
    if day == SPRING:
        with pytest.raises(TimeLabelError):
            localize(datetime(2024, 3, 10, 2), "America/New_York")
    rs = nz.normalize_payload("lmp_dam", f"{day:%Y%m%d}_da_expost_lmp.csv", sim.lmp_report("da_expost_lmp", day)
                              ).to_pylist()
    starts = sorted({r["interval_start"] for r in rs})
    assert starts == [start + timedelta(hours=h) for h in range(24)]
    he3 = by(rs, location="ILLINOIS.HUB", interval_start=start + timedelta(hours=2))[0]
    assert he3["lmp"] == sim.lmp_parts("DAM", "ILLINOIS.HUB", start + timedelta(hours=2))[0] / 100


def test_simulator_files_keep_the_samples_layout() -> None:
    da = sim.lmp_report("da_expost_lmp", FALL).decode()
    sample = (S / "da_expost_lmp__ewyluda_macrogauge__miso_da_expost.csv").read_text()
    assert da.split("\n")[2:5] == sample.split("\n")[2:5] and da.split("\n")[0] == sample.split("\n")[0]
    assert da.endswith("\n") and "\r" not in da and ",0." not in da  # ".61", not "0.61"
    rt = sim.lmp_report("rt_lmp_final", SPRING).decode()
    assert rt.split("\r\n")[:2] == ["Realtime Market LMPs", "3/10/2024"]
    api = sim.five_min_api([sim.est(FALL)])
    real = (S / "rt_5min_expost_lmp__ArenKDesai_miso-terminal__GetRealTimeFiveMinExPost_Previous.TRUNCATED-"
                 "first-3-intervals.json").read_bytes()
    prefix = b'{"headers":["INTERVAL","CPNODE","LMP","MLC","MCC"],"data":[["'
    assert real.startswith(prefix) and api.startswith(prefix + b'2024-11-03T00:00:00",')
    fuel = sim.fuel_api(sim.est(FALL, 16 * 60 + 45))
    assert b'"INTERVALEST":"2024-11-03 4:45:00 PM"' in fuel and b'"Imports (' in fuel and not fuel.endswith(b"\n")


def test_bad_input_names_file_line_and_field() -> None:
    bad = sim.lmp_report("da_expost_lmp", FALL, bad=True)
    with pytest.raises(NormalizeError, match=r"20241103_da_expost_lmp.csv, line 6, field 'HE 3': not a number"):
        nz.normalize_payload("lmp_dam", "20241103_da_expost_lmp.csv", bad)
    text = sim.lmp_report("da_expost_lmp", FALL).decode().replace(",HE 24", ",HE 24,HE 25", 1)
    lines = text.split("\n")
    lines[5:] = [ln + ",1" if ln else ln for ln in lines[5:]]
    with pytest.raises(NormalizeError, match="HE 1..HE 24"):
        nz.normalize_payload("lmp_dam", "20241103_da_expost_lmp.csv", "\n".join(lines).encode())
    with pytest.raises(NormalizeError, match="differs from the file name"):
        nz.normalize_payload("lmp_dam", "20241104_da_expost_lmp.csv", sim.lmp_report("da_expost_lmp", FALL))
    with pytest.raises(NormalizeError, match="HTML page"):
        nz.normalize_payload("lmp_dam", "20241103_da_expost_lmp.csv", sim.CHALLENGE)
    with pytest.raises(NormalizeError, match="HTML page"):
        nz.normalize_payload("fuel_mix", "FuelMix.json", sim.CHALLENGE)
    edt = sim.lmp_report("da_expost_lmp", FALL).replace(b"Eastern Standard Time (EST)", b"Eastern Prevailing Time")
    with pytest.raises(NormalizeError, match="line 4.*not Eastern Standard Time"):
        nz.normalize_payload("lmp_dam", "20241103_da_expost_lmp.csv", edt)


def test_weekly_archives_and_asm_report() -> None:
    monday = date(2024, 11, 11)
    t = nz.normalize_payload("lmp_rt5m", "20241111_5MIN_LMP.zip", sim.five_min_zip(monday))
    assert t.num_rows == 7 * 288 * len(sim.NODES)
    starts = t.column("interval_start").to_pylist()
    assert min(starts) == datetime(2024, 10, 28, 5, tzinfo=UTC) and max(starts) == datetime(2024, 11, 4, 4, 55, tzinfo=UTC)
    r = t.slice(0, 1).to_pylist()[0]
    lmp, mcc, mlc = sim.lmp_parts("RT5M", r["location"], r["interval_start"])
    assert (r["lmp"], r["congestion"], r["loss"]) == (lmp / 100, mcc / 100, mlc / 100)
    assert r["energy"] == (lmp - mcc - mlc) / 100  # exact decimals, not float noise
    asm = nz.normalize_payload("as_dam", "20241103_asm_expost_damcp.csv", sim.asm_report(FALL)).to_pylist()
    assert len(asm) == 8 * 6 * 24 and {r["region"] for r in asm} == {f"ZONE{n}" for n in range(1, 9)}
    old = nz.normalize_payload("as_dam", "20200301_asm_expost_damcp.csv", sim.asm_report(date(2020, 3, 1)))
    assert "STR" not in set(old.column("product").to_pylist())  # short-term reserve from 2021-12-01 only


def test_prelim_rank_never_outranks_the_final() -> None:
    due = datetime(2024, 11, 11, 15, tzinfo=UTC)
    assert nz.prelim_rank(datetime(2024, 11, 4, tzinfo=UTC), due) == datetime(2024, 11, 4, tzinfo=UTC)
    assert nz.prelim_rank(datetime(2024, 12, 1, tzinfo=UTC), due) < due


# ----------------------------------------------------------------------------- the simulator as the samples
_NUM = re.compile(rb"(?<![\w.])-?(?:\d+(?:\.\d+)?|\.\d+)(?![\w.])")
API_AT = sim.est(date(2026, 10, 2), 16 * 60 + 45)  # the miso-terminal API samples: "Interval 16:45 EST"


def skeleton(data: bytes) -> bytes:
    """The bytes with every number (``28.16``, ``.61``, ``"82084"``, ``16:45``, dates) replaced by ``#``:
    everything else - preamble, header, separators, quoting, field order, spacing, line ends, the
    final newline or its absence - must be the sample's byte for byte."""
    return _NUM.sub(b"#", re.sub(rb"\d[\d,]* MW\)", b"# MW)", data))  # FuelMix labels: "(25,287 MW)", "(705 MW)"


def _lines_of(data: bytes, nodes: set[bytes]) -> bytes:
    """The report with only the preamble, the header and the given nodes' rows (author-trimmed samples)."""
    lines = data.split(b"\n")
    return b"\n".join(ln for i, ln in enumerate(lines) if i < 5 or not ln or ln.split(b",")[0] in nodes)


@pytest.mark.parametrize(("sample", "render"), [
    ("da_expost_lmp__ArenKDesai_miso-terminal__20261001_da_expost_lmp.csv",
     lambda: sim.lmp_report("da_expost_lmp", date(2026, 10, 1))),
    ("da_expost_lmp__ewyluda_macrogauge__miso_da_expost.csv",
     lambda: _lines_of(sim.lmp_report("da_expost_lmp", date(2026, 7, 14)),
                       {b"ILLINOIS.HUB", b"INDIANA.HUB", b"MICHIGAN.HUB"})),
    ("da_exante_lmp__MarkEnverus_claude-scraper-monorepo__sample_da_exante_lmp.csv",  # AECI.ALTW/.AMMO: not ours
     lambda: b"\n".join(sim.lmp_report("da_exante_lmp", date(2025, 12, 2)).split(b"\n")[:6])),
    ("as_mcp__ArenKDesai_miso-terminal__GetAncillaryServicesMcp.json", lambda: sim.as_api(API_AT)),
    ("fuel_mix__ArenKDesai_miso-terminal__FuelMix.json", lambda: sim.fuel_api(API_AT)),
    ("load__ArenKDesai_miso-terminal__RealTimeTotalLoad.json", lambda: sim.load_api(API_AT)),
])
def test_simulator_writes_the_samples_bytes_but_the_numbers(sample: str, render) -> None:
    real, ours = (S / sample).read_bytes(), render()
    if "exante" in sample:  # the preamble, the header and the AECI row (AECI.ALTW, AECI.AMMO: not our nodes)
        real = b"\n".join(real.split(b"\n")[:6])
    assert skeleton(ours) == skeleton(real)
    if sample.endswith(".csv"):  # DA numbers: no leading zero, no trailing zeros, as MISO writes them
        cells = [c for ln in ours.decode().split("\n")[5:] if ln for c in ln.split(",")[3:]]
        assert all(re.fullmatch(r"-?(?:[1-9]\d*(?:\.\d?[1-9])?|\.\d?[1-9]|0)", c) for c in cells)


def test_simulator_five_minute_api_is_the_samples_bytes_but_the_numbers_and_node_order() -> None:
    real = (S / "rt_5min_expost_lmp__ArenKDesai_miso-terminal__GetRealTimeFiveMinExPost_Previous.TRUNCATED-"
                 "first-3-intervals.json").read_bytes()
    ours = sim.five_min_api([sim.est(date(2026, 10, 1), m) for m in (0, 5, 10)])
    a, b = json.loads(real), json.loads(ours)
    assert sim._compact(a) == real and sim._compact(b) == ours  # both compact JSON, no final newline
    assert [r[:2] for r in a["data"]] != sorted(r[:2] for r in a["data"])  # MISO's node order is arbitrary
    assert skeleton(sim._compact({**b, "data": sorted(b["data"])})) == skeleton(sim._compact({**a, "data": sorted(
        a["data"])}))
    assert all(re.fullmatch(r"-?\d+\.\d\d", v) for r in a["data"] + b["data"] for v in r[2:])


def test_simulator_df_al_has_the_samples_cells_but_the_numbers() -> None:
    real = read_xls("real.xls", (S / "df_al_load__electricitymaps_electricitymaps-contrib__20250310_df_al.xls")
                    .read_bytes())
    ours = read_xls("ours.xls", sim.df_al_xls(date(2025, 3, 10)))

    def shape(cells: list[list]) -> list[list]:
        return [["#" if isinstance(c, float) and r[0] not in ("Published Date:", "Reporting Period:") else c
                 for c in r] for r in cells]

    assert shape(ours) == shape(real)  # 187 x 16: every label, header, blank, Excel date and disclaimer
    assert [r[:2] for r in ours if isinstance(r[0], float)] == [r[:2] for r in real if isinstance(r[0], float)]


# ----------------------------------------------------------------------------- bad input, every format
def _rezip(data: bytes, edit) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        member = z.infolist()[0]
        text = edit(z.read(member).decode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        out.writestr(member.filename, text)
    return buf.getvalue()


def _json_edit(data: bytes, edit) -> bytes:
    doc = json.loads(data)
    edit(doc)
    return json.dumps(doc).encode()


def _df_al_edit(r: int, c: int, value: object) -> bytes:
    cells = read_xls("in.xls", sim.df_al_xls(date(2024, 11, 4)))
    cells[r][c] = value
    return write_xls(cells)


def _dup_line(text: str, src: int, dst: int) -> str:
    lines = text.split("\r\n")
    lines[dst - 1] = lines[src - 1]
    return "\r\n".join(lines)


WEEK = date(2024, 11, 11)
T10 = sim.est(FALL, 600)
BAD = [  # dataset, file, bytes, the error's start (file, line, field), its reason
    ("lmp_rt5m", "20241111_5MIN_LMP.zip", lambda: _rezip(sim.five_min_zip(WEEK), lambda t: t.replace(
        "\r\n10/28/2024 00:05,AECI,", "\r\n10/28/2024 00:05,AECI,n/a", 1)),
     "20241111_5MIN_LMP.zip!20241111_5MIN_LMP.csv, line 28, field 'LMP'", "not a number"),
    ("lmp_rt5m", "20241111_5MIN_LMP.zip", lambda: _rezip(sim.five_min_zip(WEEK), lambda t: t.replace(
        "\r\n10/28/2024 00:05,", "\r\n10/28/2024 24:05,", 1)),
     "20241111_5MIN_LMP.zip!20241111_5MIN_LMP.csv, line 28, field 'MKTHOUR_EST'", "not MM/DD/YYYY HH:MM"),
    ("lmp_rt5m", "20241111_5MIN_LMP.zip", lambda: _rezip(sim.five_min_zip(WEEK), lambda t: _dup_line(t, 7, 8)),
     "20241111_5MIN_LMP.zip!20241111_5MIN_LMP.csv, line 8, field 'PNODENAME'", "ALTE.ALTE listed twice for one interval (line 7)"),
    ("lmp_rt5m", "GetRealTimeFiveMinExPost_Previous.json", lambda: _json_edit(
        sim.five_min_api([sim.est(FALL)]), lambda d: d["data"][7].__setitem__(2, "n/a")),
     "GetRealTimeFiveMinExPost_Previous.json, field 'data[7].LMP'", "not a number"),
    ("as_rt5m", "GetAncillaryServicesMcp.json", lambda: _json_edit(
        sim.as_api(T10), lambda d: d["MCPData"]["RealTimeMCP"]["Zone"][2].__setitem__("GenSpinMCP", "--")),
     "GetAncillaryServicesMcp.json, field 'RealTimeMCP.Zone[2].GenSpinMCP'", "not a number"),
    ("fuel_mix", "FuelMix.json", lambda: _json_edit(
        sim.fuel_api(T10), lambda d: d["Fuel"]["Type"][3].__setitem__("ACT", "x")),
     "FuelMix.json, field 'Fuel.Type[3].ACT'", "not a number"),
    ("load_actual", "RealTimeTotalLoad.json", lambda: _json_edit(
        sim.load_api(T10), lambda d: d["LoadInfo"]["FiveMinTotalLoad"][7]["Load"].__setitem__("Value", "x")),
     "RealTimeTotalLoad.json, field 'FiveMinTotalLoad[7].Value'", "not a number"),
    ("load_forecast", "RealTimeTotalLoad.json", lambda: _json_edit(
        sim.load_api(T10), lambda d: d["LoadInfo"]["MediumTermLoadForecast"][7]["Forecast"].__setitem__(
            "LoadForecast", "x")),
     "RealTimeTotalLoad.json, field 'MediumTermLoadForecast[7].LoadForecast'", "not a number"),
    ("load_actual", "20241104_df_al.xls", lambda: _df_al_edit(10, 5, "n/a"),
     "20241104_df_al.xls, line 11, field 'LRZ2_7 ActualLoad (MWh)'", "not a number"),
    ("as_dam", "20241103_asm_expost_damcp.csv", lambda: sim.asm_report(FALL).replace(
        b"Zone 3,Spinning,", b"Zone 3,Spinning,x", 1),
     "20241103_asm_expost_damcp.csv, line 19, field 'HE 1'", "not a number"),
    ("as_dam", "20241103_asm_expost_damcp.csv", lambda: sim.asm_report(FALL).replace(
        b"Zone 3,Spinning,", b"Zone 3,Spinning Reserve,", 1),
     "20241103_asm_expost_damcp.csv, line 19, field 'MCP Type'", "unknown MCP type"),
    ("lmp_rt60m", "20241103_rt_lmp_final.csv", lambda: sim.lmp_report("rt_lmp_final", FALL, bad=True),
     "20241103_rt_lmp_final.csv, line 6, field 'HE 3'", "not a number"),
    ("as_rt5m", "20241111_5min_expost_mcp.xlsx", lambda: sim._xlsx(
        [["Real-Time 5-Minute Ex-Post ASM MCPs"], ["Time (EST)", "Preliminary / Final", "Zone", "RT MCP Regulation"],
         ["2024-10-28 12:00:00 AM", "Final", "Zone 1", 9.5], ["2024-10-28 12:00:00 AM", "Final", "Zone 2", "x"]], T10),
     "20241111_5min_expost_mcp.xlsx, line 4, field 'RT MCP Regulation'", "not a number"),
]


@pytest.mark.parametrize(("dataset", "name", "payload", "where", "why"), BAD,
                         ids=[f"{b[0]}-{b[3].rsplit('field ', 1)[1].strip(chr(39))}" for b in BAD])
def test_bad_input_in_every_format_names_file_line_and_field(dataset, name, payload, where, why) -> None:
    with pytest.raises(NormalizeError) as err:
        nz.normalize_payload(dataset, name, payload(), PUB)
    assert str(err.value).startswith(f"{where}: {why}"), str(err.value)


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_api_feeds_and_df_al_on_both_dst_days(day: date) -> None:
    """The real-time sources (JSON feeds) and the load report as EST on the 2024 DST days: 288
    five-minute starts and 24 hours from 05:00Z; 02:00 EST (inside New York's spring gap) is 07:00Z."""
    start, _ = market_day_bounds(day, TZ)
    two_am = start + timedelta(hours=2)
    lmp = nz.normalize_payload("lmp_rt5m", "GetRealTimeFiveMinExPost_Previous.json",
                               sim.five_min_api([sim.est(day, 5 * i) for i in range(288)]), PUB)
    assert sorted(set(lmp.column("interval_start").to_pylist())) == [start + timedelta(minutes=5 * i)
                                                                    for i in range(288)]
    for dataset, body in (("as_rt5m", sim.as_api(two_am)), ("fuel_mix", sim.fuel_api(two_am))):
        t = nz.normalize_payload(dataset, f"{dataset}.json", body, PUB)
        assert set(t.column("interval_start").to_pylist()) == {two_am}, dataset
    assert b'"INTERVALEST":"%s 2:00:00 AM"' % f"{day:%Y-%m-%d}".encode() in sim.fuel_api(two_am)
    late = sim.load_api(start + timedelta(hours=23, minutes=55))
    actual = nz.normalize_payload("load_actual", "RealTimeTotalLoad.json", late, PUB).to_pylist()
    assert [r["interval_start"] for r in actual] == [start + timedelta(hours=h) for h in range(24)]
    assert actual[2]["load_mw"] == round(sum(int(sim.system_load(two_am + timedelta(minutes=5 * i)))
                                             for i in range(12)) / 12, 3)  # the mean of HE 3's readings
    fc = nz.normalize_payload("load_forecast", "RealTimeTotalLoad.json", late, PUB).to_pylist()
    assert [r["interval_start"] for r in fc] == [start + timedelta(hours=h) for h in range(24)]
    report = f"{day + timedelta(days=1):%Y%m%d}_df_al.xls"
    rows_ = nz.normalize_payload("load_actual", report, sim.df_al_xls(day + timedelta(days=1)), PUB).to_pylist()
    system = [r for r in rows_ if r["area"] == "SYSTEM"]
    assert [r["interval_start"] for r in system] == [start + timedelta(hours=h) for h in range(24)]
