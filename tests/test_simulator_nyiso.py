"""The NYISO simulator speaks the real shapes: P-list pages, daily CSV bytes like the samples, monthly
zips (current month partial), RTC tail and off-schedule stamps, exact DST days, switchable faults."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.nyiso.hook import parse_listing
from pmp.isos.nyiso.normalize import normalize_payload
from pmp.simulator import nyiso
from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("nyiso")
NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)  # 13:00 EST


@pytest.fixture
def sim():
    with start_simulator(now=NOW) as handle:
        yield handle


def get(sim, path: str) -> requests.Response:
    return requests.get(f"{sim.url}/nyiso/mis/public/{path}", timeout=60)


def sample_lines(prefix: str) -> list[str]:
    return next(SAMPLES.glob(f"{prefix}*")).read_bytes().decode().replace("\r\n", "\n").strip("\n").split("\n")


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [("rt_zonal_lbmp", "realtime_zone"), ("rt_actual_load_pal", "pal"),
     ("integrated_load_palIntegrated", "palIntegrated"), ("load_forecast_isolf", "isolf")],
)
def test_daily_csv_matches_sample_layout(sim, prefix: str, suffix: str) -> None:
    fam = nyiso.FAMILIES[suffix]
    r = get(sim, f"csv/{fam.directory}/20241104{suffix}.csv")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv"
    text = r.content.decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # CRLF throughout
    lines = text.split("\r\n")[:-1]
    real = sample_lines(prefix)
    assert lines[0] == real[0]  # same header, same quoting

    def shape(line: str) -> str:  # quoting and field kinds, values abstracted away
        return re.sub(r"-?\d+(\.\d+)?(?=,|$)", "9", re.sub(r'"[^"]*"', '"s"', line))

    assert {shape(x) for x in lines[1:]} == {shape(x) for x in real[1:] if not x.endswith(",")}


def test_unquoted_day_ahead_and_fuel_mix_layouts(sim) -> None:
    dam = get(sim, "csv/damlbmp/20241104damlbmp_gen.csv").content.decode().split("\r\n")
    assert dam[0] == ("Time Stamp,Name,PTID,LBMP ($/MWHr),Marginal Cost Losses ($/MWHr),"
                      "Marginal Cost Congestion ($/MWHr)")
    assert re.fullmatch(r"11/04/2024 00:00,SIM_GEN_001,\d+,-?\d+\.\d\d,-?\d+\.\d\d,-?\d+\.\d\d", dam[1])
    assert any("NYISO_LBMP_REFERENCE" in line for line in dam)
    fuel = get(sim, "csv/rtfuelmix/20241104rtfuelmix.csv").content.decode().split("\r\n")
    assert fuel[0] == "Time Stamp,Time Zone,Fuel Category,Gen MW"
    assert fuel[1].startswith("11/04/2024 00:05:00,EST,Dual Fuel,")  # interval end: first stamp 00:05
    asp = get(sim, "csv/rtasp/20241104rtasp.csv").content.decode().split("\r\n")
    assert asp[0].endswith("NYCA Regulation Capacity ($/MWHr),NYCA Regulation Movement ($/MW)")


def test_plist_pages_routes_and_retention(sim) -> None:
    r = get(sim, "P-2Alist.htm")
    assert r.status_code == 200 and "CSV Files" in r.text and "Last Updated" in r.text
    listed = {f.name: f for f in parse_listing(f"{sim.url}/nyiso/mis/public/P-2Alist.htm", r.text)}
    daily = sorted(n for n in listed if n.endswith(".csv"))
    # last 10 days, plus tomorrow's day-ahead file (posted the day before)
    assert daily[0] == "20241026damlbmp_zone.csv" and daily[-1] == "20241106damlbmp_zone.csv"
    assert listed["20241103damlbmp_zone.csv"].last_updated == nyiso.dam_time(date(2024, 11, 3)).replace(microsecond=0)
    zips = sorted(n for n in listed if n.endswith(".zip"))
    assert zips[0] == "20190101damlbmp_zone_csv.zip" and zips[-1] == "20241101damlbmp_zone_csv.zip"
    assert len(zips) == 6 * 12 - 1
    assert get(sim, "csv/damlbmp/20241025damlbmp_zone.csv").status_code == 404  # too old for a daily CSV
    assert get(sim, "csv/damlbmp/20181201damlbmp_zone_csv.zip").status_code == 404
    assert get(sim, "P-99list.htm").status_code == 404
    # the current month's archive is partial: final files only (DAM of tomorrow is final already)
    z = zipfile.ZipFile(io.BytesIO(get(sim, "csv/damlbmp/20241101damlbmp_zone_csv.zip").content))
    assert z.namelist() == [f"202411{d:02d}damlbmp_zone.csv" for d in range(1, 7)]
    rt = zipfile.ZipFile(io.BytesIO(get(sim, "csv/realtime/20241101realtime_zone_csv.zip").content))
    assert rt.namelist() == [f"202411{d:02d}realtime_zone.csv" for d in range(1, 5)]  # today's is still growing
    info = rt.getinfo("20241103realtime_zone.csv")
    final = nyiso.final_time(nyiso.FAMILIES["realtime_zone"], date(2024, 11, 3)).astimezone(nyiso.ET)
    assert datetime(*info.date_time) == final.replace(tzinfo=None, microsecond=0, second=final.second // 2 * 2)
    # members are the daily files byte for byte
    assert rt.read("20241103realtime_zone.csv") == get(sim, "csv/realtime/20241103realtime_zone.csv").content


def test_daily_csv_last_modified_matches_listing(sim) -> None:
    r = get(sim, "csv/pal/20241105pal.csv")
    listing = {f.name: f for f in parse_listing(f"{sim.url}/nyiso/mis/public/x", get(sim, "P-58Blist.htm").text)}
    modified = datetime.strptime(r.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert modified == listing["20241105pal.csv"].last_updated
    assert NOW - timedelta(minutes=5) < modified <= NOW


def test_todays_realtime_file_has_rtc_tail_which_the_normalizer_drops(sim) -> None:
    r = get(sim, "csv/realtime/20241105realtime_zone.csv")
    published = datetime.strptime(r.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    stamps = [line.split(",")[0].strip('"') for line in r.content.decode().split("\r\n")[1:-1]]
    ends = sorted({datetime.strptime(s, "%m/%d/%Y %H:%M:%S") for s in stamps})
    last_rtd = (published - timedelta(hours=5)).replace(tzinfo=None)  # EST
    tail = [t for t in ends if t > last_rtd]
    assert tail and all(t.minute % 15 == 0 for t in tail)  # RTC quarter-hour advisory rows
    assert all(b - a == timedelta(minutes=15) for a, b in zip(tail[1:], tail[2:], strict=False))
    rows = normalize_payload("lmp_rt5m", "20241105realtime_zone.csv", r.content, published).to_pylist()
    assert max(r["interval_end"] for r in rows) <= published
    starts = sorted({r["interval_start"] for r in rows})
    day_start = datetime(2024, 11, 5, 5, tzinfo=UTC)
    assert starts == [day_start + timedelta(minutes=5 * i) for i in range(len(starts))]  # no gap, no 15-min row
    assert len(rows) == len(starts) * 15


def test_todays_pal_ends_with_empty_placeholders_which_the_normalizer_drops(sim, caplog) -> None:
    """At 13:00:00 EST the 13:00 reading is taken but its values are not in yet: NYISO lists its rows
    with an empty Load, like the real sample's 19:35 stamp."""
    r = get(sim, "csv/pal/20241105pal.csv")
    lines = r.content.decode().split("\r\n")[1:-1]
    empty = [line for line in lines if line.endswith(",")]
    real_empty = [x for x in sample_lines("rt_actual_load_pal") if x.endswith(",")]
    assert len(empty) == 11 and lines[-11:] == empty  # the newest stamp, every zone
    assert {line.split(",")[0] for line in empty} == {'"11/05/2024 13:00:00"'}
    shape = re.compile(r'"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d","E[DS]T","[^"]+",\d+,')
    assert all(shape.fullmatch(x) for x in empty + real_empty)  # the real placeholder layout
    published = datetime.strptime(r.headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert published == NOW  # the placeholder rows were written at the reading time
    caplog.set_level(logging.INFO, logger="pmp.isos.nyiso.normalize")
    for given in (published, None):
        caplog.clear()
        rows = normalize_payload("load_actual", "20241105pal.csv", r.content, given).to_pylist()
        starts = sorted({row["interval_start"] for row in rows})
        day_start = datetime(2024, 11, 5, 5, tzinfo=UTC)
        assert starts == [day_start + timedelta(minutes=5 * i) for i in range(12 * 13)]  # 00:00 .. 12:55
        assert all(len([x for x in rows if x["interval_start"] == t]) == 12 for t in starts)  # 11 zones + SYSTEM
        assert "11 empty rows" in caplog.text


def test_off_schedule_stamps_in_raw_dropped_from_five_minute_series() -> None:
    fam = nyiso.FAMILIES["realtime_zone"]
    day = next(d for d in (date(2024, 6, 1) + timedelta(days=i) for i in range(30)) if nyiso._off_schedule(fam, d))
    text = nyiso.final_content(fam, day)
    odd = [s for s in {line.split(",")[0].strip('"') for line in text.split("\r\n")[1:-1]} if not s.endswith(":00")]
    assert odd and len(odd) == len(nyiso._off_schedule(fam, day))
    rows = normalize_payload("lmp_rt5m", fam.daily_name(day), text.encode()).to_pylist()
    assert len({r["interval_start"] for r in rows}) == 288
    assert all((r["interval_end"] - r["interval_start"]) == timedelta(minutes=5) for r in rows)
    assert all(r["interval_end"].second == 0 and r["interval_end"].minute % 5 == 0 for r in rows)
    pal = nyiso.FAMILIES["pal"]
    pal_day = next(d for d in (date(2024, 6, 1) + timedelta(days=i) for i in range(30)) if nyiso._off_schedule(pal, d))
    pal_rows = normalize_payload("load_actual", pal.daily_name(pal_day), nyiso.final_content(pal, pal_day).encode())
    assert len(set(pal_rows.column("interval_start").to_pylist())) == 288


# dataset -> families, and intervals per entity on (23 h, 25 h) days
DST = {
    "lmp_dam": (("damlbmp_zone", "damlbmp_gen"), (23, 25)),
    "lmp_rt5m": (("realtime_zone", "realtime_gen"), (276, 300)),
    "lmp_rt60m": (("rtlbmp_zone", "rtlbmp_gen"), (23, 25)),
    "as_dam": (("damasp",), (23, 25)),
    "as_rt5m": (("rtasp",), (276, 300)),
    "load_actual": (("pal", "palIntegrated"), (276 + 23, 300 + 25)),
    "load_forecast": (("isolf",), (23 + 120, 25 + 120)),
    "fuel_mix": (("rtfuelmix",), (276, 300)),
}


@pytest.mark.parametrize("dataset", sorted(DST))
@pytest.mark.parametrize("day", [date(2024, 3, 10), date(2024, 11, 3)])
def test_dst_days_exact_for_every_dataset(dataset: str, day: date) -> None:
    suffixes, counts = DST[dataset]
    expected = counts[0] if day.month == 3 else counts[1]
    rows = []
    for suffix in suffixes:
        fam = nyiso.FAMILIES[suffix]
        published = nyiso.final_time(fam, day)
        rows += normalize_payload(dataset, fam.daily_name(day), nyiso.final_content(fam, day).encode(),
                                  published).to_pylist()
    entity = {"lmp": ("location",), "as": ("region", "product"), "load": ("area",), "fuel": ("fuel",)}[
        dataset.split("_")[0]]
    by_entity: dict[tuple, list] = {}
    for r in rows:
        by_entity.setdefault(tuple(r[c] for c in entity), []).append((r["interval_start"], r["interval_end"]))
    assert len(by_entity) > 1
    start, end = nyiso.day_bounds(day)
    for key, intervals in by_entity.items():
        assert len(intervals) == len(set(intervals)) == expected, (key, len(intervals))
        for step in {e - s for s, e in intervals}:
            series = sorted(s for s, e in intervals if e - s == step)
            last = end if dataset != "load_forecast" else nyiso.day_bounds(day + timedelta(days=5))[1]
            assert series == [start + i * step for i in range(int((last - start) / step))], key
    if dataset.startswith("lmp_"):
        for r in rows:
            assert abs(r["energy"] + r["congestion"] + r["loss"] - r["lmp"]) < 1e-9


def test_fall_back_files_repeat_the_hour_without_time_zone() -> None:
    text = nyiso.final_content(nyiso.FAMILIES["damlbmp_zone"], date(2024, 11, 3))
    west = [line for line in text.split("\r\n") if ",WEST," in line]
    assert [line.split(",")[0] for line in west].count("11/03/2024 01:00") == 2 and len(west) == 25
    assert len(text.split("\r\n")) - 2 == 25 * 15  # 375 rows + header (reference: 376 lines)
    pal = nyiso.final_content(nyiso.FAMILIES["pal"], date(2024, 11, 3))
    assert '"11/03/2024 01:00:00","EDT","WEST"' in pal and '"11/03/2024 01:00:00","EST","WEST"' in pal


def test_deterministic_bytes(sim) -> None:
    a = get(sim, "csv/damlbmp/20240301damlbmp_gen_csv.zip").content
    b = get(sim, "csv/damlbmp/20240301damlbmp_gen_csv.zip").content
    assert a == b and zipfile.ZipFile(io.BytesIO(a)).testzip() is None


def test_faults(sim) -> None:
    sim.set_faults({"rate_limit": 1})
    r = get(sim, "P-2Alist.htm")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert get(sim, "P-2Alist.htm").status_code == 200
    sim.set_faults({"server_error": 1})
    assert get(sim, "P-2Alist.htm").status_code == 500
    sim.set_faults({"nyiso_missing_file": 1})
    assert get(sim, "csv/damlbmp/20241104damlbmp_zone.csv").status_code == 404  # listed, yet gone
    assert get(sim, "csv/damlbmp/20241104damlbmp_zone.csv").status_code == 200
    sim.set_faults({"corrupt_zip": 1})
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(get(sim, "csv/damlbmp/20241001damlbmp_zone_csv.zip").content))
    sim.set_faults({"nyiso_bad_row": 1})
    bad = get(sim, "csv/damlbmp/20241104damlbmp_zone.csv")
    with pytest.raises(NormalizeError, match="not a number") as err:
        normalize_payload("lmp_dam", "20241104damlbmp_zone.csv", bad.content)
    assert err.value.line == 4 and err.value.field == "Marginal Cost Congestion ($/MWHr)"
