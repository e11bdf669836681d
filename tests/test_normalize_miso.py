"""MISO normalizers: every real sample parses with its values checked; EST all year (both 2024 DST
days are 24-hour days, HE 3 of the spring-forward day exists); the simulator's files read back as
the samples do; bad input names file, line and field."""

from __future__ import annotations

import json
import math
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
