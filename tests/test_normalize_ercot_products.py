"""ERCOT ancillary-service, load, forecast and fuel-mix normalizers: on the real files in
../shared/samples/ercot and on simulator output for the 2024 DST days (23/25 hours exact)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.ercot.adapter import normalize_dataset
from pmp.simulator import ercot as sim
from pmp.timeutil import market_day_bounds

SAMPLES = samples_dir("ercot")
CT = "America/Chicago"
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)


def sample(prefix: str) -> Path:
    found = sorted(SAMPLES.glob(f"{prefix}*"))
    assert found, f"sample {prefix}* missing under {SAMPLES}"
    return found[0]


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


# ------------------------------------------------------------------ real files
def test_dam_as_mcpc_sample_every_row_exact() -> None:
    path = sample("dam_as_mcpc_np4-188-cd")
    raw = rows_of(path)
    table = normalize_dataset("as_dam", path.name, path.read_bytes()).to_pylist()
    assert len(table) == len(raw) == 10
    for src, row in zip(raw, table, strict=True):
        he = int(src["HourEnding"].split(":")[0])
        assert row["interval_start"] == datetime(2026, 9, 29, 4 + he, tzinfo=UTC)  # CDT: HE h starts h-1 local
        assert row["interval_end"] - row["interval_start"] == timedelta(hours=1)
        assert row["product"] == src["AncillaryType"]  # ERCOT's own codes, order as published
        assert row["clearing_price"] == float(src["MCPC"])
        assert (row["iso"], row["market"], row["region"]) == ("ERCOT", "DAM", "SYSTEM")
        assert row["clearing_quantity"] is None and row["requirement"] is None
    assert {r["product"] for r in table} == {"RRS", "NSPIN", "REGUP", "REGDN", "ECRS"}
    assert len({(r["product"], r["interval_start"]) for r in table}) == 10


def test_actual_load_by_weather_zone_sample_total_as_published() -> None:
    path = sample("actual_load_weather_zone_np6-345-cd")
    raw = rows_of(path)
    table = normalize_dataset("load_actual", path.name, path.read_bytes()).to_pylist()
    assert len(table) == len(raw) * 9  # 8 weather zones + TOTAL
    for src in raw:
        he = int(src["HourEnding"].split(":")[0])
        start = datetime(2026, 9, 28, 4 + he, tzinfo=UTC)
        got = {r["area"]: r for r in table if r["interval_start"] == start}
        assert set(got) == {"COAST", "EAST", "FAR_WEST", "NORTH", "NORTH_C", "SOUTHERN", "SOUTH_C", "WEST", "SYSTEM"}
        for col in ("COAST", "FAR_WEST", "NORTH_C", "SOUTH_C"):
            assert got[col]["load_mw"] == float(src[col])
        # TOTAL is stored as published even though it differs from the zone sum by 0.01
        assert got["SYSTEM"]["load_mw"] == float(src["TOTAL"])
        zones = sum(float(src[z]) for z in ("COAST", "EAST", "FAR_WEST", "NORTH", "NORTH_C", "SOUTHERN",
                                            "SOUTH_C", "WEST"))
        assert abs(zones - got["SYSTEM"]["load_mw"]) < 0.0151
        for r in got.values():
            assert (r["kind"], r["model"], r["in_use"]) == ("actual", "", None)
            assert r["forecast_issued_at"] == r["interval_end"] == start + timedelta(hours=1)


def test_samples_inside_mis_zips_take_posting_time_from_constructed_name() -> None:
    path = sample("dam_as_mcpc_np4-188-cd")
    member = "cdr.00012329.0000000000000000.20260928.123221.DAMCPCNP4188.csv"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, path.read_bytes())
    table = normalize_dataset("as_dam", member + ".zip", buf.getvalue())
    assert set(table.column("source").to_pylist()) == {member}
    assert set(table.column("published_at").to_pylist()) == {datetime(2026, 9, 28, 17, 32, 21, tzinfo=UTC)}


def test_crlf_and_bom_accepted() -> None:
    path = sample("actual_load_weather_zone_np6-345-cd")
    crlf = b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n")
    assert normalize_dataset("load_actual", path.name, crlf) == normalize_dataset(
        "load_actual", path.name, path.read_bytes())


@pytest.mark.parametrize(
    ("dataset", "prefix", "mutate", "line", "field"),
    [
        ("as_dam", "dam_as_mcpc", lambda ls: ls.__setitem__(3, ls[3].replace("0.83", "0.8x")), 4, "MCPC"),
        ("as_dam", "dam_as_mcpc", lambda ls: ls.__setitem__(5, ls[5].replace("01:00", "01:30")), 6, "HourEnding"),
        ("as_dam", "dam_as_mcpc", lambda ls: ls.__setitem__(2, ls[2].replace(",N", ",X")), 3, "DSTFlag"),
        ("load_actual", "actual_load", lambda ls: ls.__setitem__(2, ls[2].replace("1958.88", "n/a")), 3, "WEST"),
        ("load_actual", "actual_load", lambda ls: ls.__setitem__(1, ls[1].replace("09/28/2026", "2026-09-28")), 2,
         "OperDay"),
    ],
)
def test_bad_input_names_file_line_field(dataset: str, prefix: str, mutate, line: int, field: str) -> None:
    lines = sample(prefix).read_text().splitlines()
    mutate(lines)
    with pytest.raises(NormalizeError) as err:
        normalize_dataset(dataset, "bad.csv", ("\n".join(lines) + "\n").encode())
    assert (err.value.file, err.value.line, err.value.field) == ("bad.csv", line, field)


def test_error_inside_archive_names_the_member() -> None:
    lines = sample("dam_as_mcpc").read_text().splitlines()
    lines[4] = lines[4].replace("0.23", "zero")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("cdr.00012329.0000000000000000.20260928.123221.DAMCPCNP4188.csv", "\n".join(lines) + "\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("1234567.zip", inner.getvalue())
    with pytest.raises(NormalizeError) as err:
        normalize_dataset("as_dam", "bundle.zip", outer.getvalue())
    assert err.value.file == "bundle.zip!1234567.zip!cdr.00012329.0000000000000000.20260928.123221.DAMCPCNP4188.csv"
    assert (err.value.line, err.value.field) == (5, "MCPC")


# ------------------------------------------------------------------ simulator output, DST days
def docs_of(rtid: int, day: date) -> list[sim.Doc]:
    report = sim.REPORTS[rtid]
    start, end = market_day_bounds(day, CT)
    return [sim.Doc(report, k) for k in report.keys(start, end)]


def normalized(dataset: str, docs: list[sim.Doc]) -> list[dict]:
    return [r for d in docs for r in normalize_dataset(dataset, d.constructed + ".zip", d.zip_bytes()).to_pylist()]


def assert_exact(rows: list[dict], day: date, entity: str, minutes: int) -> Counter:
    start, end = market_day_bounds(day, CT)
    step = timedelta(minutes=minutes)
    expected = [start + i * step for i in range(int((end - start) / step))]
    by: dict[str, list] = {}
    for r in rows:
        if r["interval_end"] - r["interval_start"] == step:
            by.setdefault(r[entity], []).append(r["interval_start"])
    assert by
    for key, starts in by.items():
        assert sorted(starts) == expected, (key, len(starts))
    return Counter({k: len(v) for k, v in by.items()})


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (FALL, 25), (date(2024, 6, 1), 24)])
def test_as_dam_dst_days_exact(day: date, hours: int) -> None:
    counts = assert_exact(normalized("as_dam", docs_of(12329, day)), day, "product", 60)
    assert counts == {p: hours for p in ("REGUP", "REGDN", "RRS", "NSPIN", "ECRS")}


def test_as_dam_before_june_2023_has_no_ecrs() -> None:
    counts = assert_exact(normalized("as_dam", docs_of(12329, date(2023, 3, 12))), date(2023, 3, 12), "product", 60)
    assert set(counts) == {"REGUP", "REGDN", "RRS", "NSPIN"} and set(counts.values()) == {23}


@pytest.mark.parametrize(("day", "intervals"), [(date(2026, 3, 8), 92), (date(2026, 11, 1), 100)])
def test_as_rt15m_dst_days_exact(day: date, intervals: int) -> None:
    """NP6-331-CD starts 2025-12-05, so its DST days are 2026's; 2024 has no documents at all."""
    counts = assert_exact(normalized("as_rt15m", docs_of(24898, day)), day, "product", 15)
    assert set(counts.values()) == {intervals} and len(counts) == 5
    assert docs_of(24898, FALL) == [] and docs_of(24898, date(2025, 12, 4)) == []


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (FALL, 25)])
def test_load_actual_both_reports_dst_days_exact(day: date, hours: int) -> None:
    hourly = assert_exact(normalized("load_actual", docs_of(13101, day)), day, "area", 60)
    assert len(hourly) == 9 and set(hourly.values()) == {hours}
    quarter = assert_exact(normalized("load_actual", docs_of(12340, day)), day, "area", 15)
    assert quarter == {"SYSTEM": hours * 4}


def test_system_demand_fall_back_labels_as_published() -> None:
    """The interval ending at the change is labelled 01:00 N (a second time): it ends at 07:00 UTC."""
    docs = docs_of(12340, FALL)
    lines = "".join(d.csv() for d in docs).splitlines()
    one = [line.split(",")[3] for line in lines if line.startswith("11/03/2024,01:00,")]
    assert one == ["N", "N"]  # two rows labelled 01:00, both flagged N
    rows = normalized("load_actual", docs)
    ends = sorted(r["interval_end"] for r in rows)
    assert ends[3:9] == [datetime(2024, 11, 3, 6, 0, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(6)]


@pytest.mark.parametrize(("day", "vintages"), [(SPRING, 23), (FALL, 25)])
def test_load_forecast_vintages_dst_days(day: date, vintages: int) -> None:
    import pyarrow as pa

    docs = docs_of(14837, day)
    df = pa.concat_tables(
        [normalize_dataset("load_forecast", d.constructed + ".zip", d.zip_bytes()) for d in docs]).to_pandas()
    issued = sorted(df["forecast_issued_at"].unique())
    assert len(issued) == vintages == len(docs)
    start, end = market_day_bounds(day, CT)
    assert all(start <= t < end for t in issued)
    # every vintage has exactly one row per (model, area, hour); one model in use per hour
    assert not df.duplicated(["forecast_issued_at", "model", "area", "interval_start"]).any()
    in_use = df[df["in_use"] & (df["area"] == "SYSTEM")].groupby(["forecast_issued_at", "interval_start"]).size()
    assert set(in_use) == {1}
    assert len(in_use) == df[df["area"] == "SYSTEM"].groupby(["forecast_issued_at", "interval_start"]).ngroups
    # forecast hours are whole hours on the UTC timeline, DST days included
    assert ((df["interval_end"] - df["interval_start"]) == timedelta(hours=1)).all()
    assert set(df["kind"]) == {"forecast"} and set(df["model"]) == {"A3", "A6", "E"}
    assert set(df["area"]) == {"SYSTEM", "Coast", "East", "FarWest", "North", "NorthCentral", "SouthCentral",
                               "Southern", "West"}


def test_forecast_issue_time_in_the_repeated_hour_uses_xhr() -> None:
    docs = docs_of(14837, FALL)
    repeated = [d for d in docs if "xhr" in d.constructed]
    assert len(repeated) == 1
    first = next(d for d in docs if d.constructed.split(".")[4] == repeated[0].constructed.split(".")[4]
                 and d is not repeated[0])
    t1 = normalized("load_forecast", [first])[0]["forecast_issued_at"]
    t2 = normalized("load_forecast", [repeated[0]])[0]["forecast_issued_at"]
    assert t2 - t1 == timedelta(hours=1)


def test_forecast_without_issue_time_is_rejected() -> None:
    d = docs_of(14837, FALL)[0]
    with pytest.raises(NormalizeError, match="issue time unknown"):
        normalize_dataset("load_forecast", "forecast.csv", d.csv().encode())


@pytest.mark.parametrize(("day", "intervals"), [(SPRING, 276), (FALL, 300)])
def test_fuel_mix_dashboard_dst_days_exact_and_split_stamps_merged(day: date, intervals: int) -> None:
    now = market_day_bounds(day, CT)[1] + timedelta(hours=3)
    doc = sim.fuel_mix_json(now)
    stamps = doc["data"][day.isoformat()]
    assert len(stamps) > intervals  # some intervals are split across two stamps
    rows = normalize_dataset("fuel_mix", "fuel-mix.json", json.dumps(doc).encode()).to_pylist()
    counts = assert_exact([r for r in rows if r["interval_start"] < market_day_bounds(day, CT)[1]], day, "fuel", 5)
    assert set(counts.values()) == {intervals} and len(counts) == 8
    assert {r["published_at"] for r in rows} == {datetime.strptime(doc["lastUpdated"], "%Y-%m-%d %H:%M:%S%z")}


@pytest.mark.parametrize(("day", "intervals"), [(SPRING, 92), (FALL, 100)])
def test_fuel_mix_workbook_dst_days_exact(day: date, intervals: int) -> None:
    rows = normalize_dataset("fuel_mix", "IntGenbyFuel2024.xlsx",
                             sim.workbook_bytes(2024, day.month, day.month)).to_pylist()
    start, end = market_day_bounds(day, CT)
    counts = assert_exact([r for r in rows if start <= r["interval_start"] < end], day, "fuel", 15)
    assert set(counts.values()) == {intervals} and len(counts) == 9
    # MWh per 15 minutes -> average MW (x 4, exact)
    t = start + timedelta(hours=12)
    gas = next(r for r in rows if r["fuel"] == "Gas-CC" and r["interval_start"] == t)
    assert gas["generation_mw"] == round(sim.fuel_gen_workbook("Gas-CC", t) / 4, 2) * 4


def test_fuel_mix_workbook_value_in_a_missing_interval_is_rejected() -> None:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(sim.workbook_bytes(2024, 3, 3)))
    ws = wb["Mar"]
    header = [c.value for c in ws[1]]
    col = header.index("2:15") + 1
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value.date() == SPRING)
    ws.cell(row, col).value = 123.0
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(NormalizeError) as err:
        normalize_dataset("fuel_mix", "IntGenbyFuel2024.xlsx", buf.getvalue())
    assert (err.value.file, err.value.line, err.value.field) == ("IntGenbyFuel2024.xlsx!Mar", row, "2:15")


def test_fuel_mix_bad_dashboard_names_the_field() -> None:
    doc = sim.fuel_mix_json(datetime(2024, 6, 1, 18, tzinfo=UTC))
    day = next(iter(doc["data"]))
    stamp = next(iter(doc["data"][day]))
    doc["data"][day][stamp]["Wind"]["gen"] = "lots"
    with pytest.raises(NormalizeError) as err:
        normalize_dataset("fuel_mix", "fuel-mix.json", json.dumps(doc).encode())
    assert err.value.field == f"data.{day}.{stamp}.Wind.gen"


# ------------------------------------------------------------------ pmp normalize on raw payloads
def _raw_files(tmp_path: Path, dataset: str) -> list[Path]:
    """Raw payloads exactly as downloaded: MIS zips, an API bundle (zip of zips), the dashboard
    JSON, a workbook."""
    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    def mis(rtid: int, day: date, n: int) -> list[Path]:
        return [write(d.constructed + ".zip", d.zip_bytes()) for d in docs_of(rtid, day)[:n]]

    if dataset == "as_dam":
        report = sim.REPORTS[12329]
        return mis(12329, FALL, 1) + [write(sim.bundle_name(report, (2024, 3)) + ".zip",
                                            sim.bundle_zip(report, (2024, 3)))]
    if dataset == "as_rt15m":
        return mis(24898, date(2026, 11, 1), 8)
    if dataset == "load_actual":
        return mis(13101, FALL, 1) + mis(12340, FALL, 3)
    if dataset == "load_forecast":
        return mis(14837, FALL, 2)
    doc = sim.fuel_mix_json(datetime(2024, 11, 4, 18, tzinfo=UTC))
    return [write("fuel-mix_20241104T175500Z.json", json.dumps(doc).encode()),
            write("IntGenbyFuel2024_20240407.xlsx", sim.workbook_bytes(2024, 3, 3))]


@pytest.mark.parametrize("dataset", ["as_dam", "as_rt15m", "load_actual", "load_forecast", "fuel_mix"])
def test_pmp_normalize_cli_on_raw_payloads(tmp_path: Path, dataset: str) -> None:
    import pyarrow.parquet as pq

    from pmp import registry
    from pmp.cli import main
    from pmp.loader import dedupe_latest

    spec = registry.get("ercot", dataset)
    files = _raw_files(tmp_path, dataset)
    out = tmp_path / "out.parquet"
    assert main(["normalize", "--iso", "ercot", "--dataset", dataset, *map(str, files), "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.schema.names == spec.schema.columns
    import pyarrow as pa

    expected = dedupe_latest(pa.concat_tables(
        [normalize_dataset(dataset, f.name, f.read_bytes()) for f in files]), spec.schema.key)
    assert table.num_rows == expected.num_rows > 0
    assert sorted(set(table.column("source").to_pylist())) == sorted(set(expected.column("source").to_pylist()))


def test_pmp_normalize_cli_bad_file_exits_nonzero(tmp_path: Path, capsys) -> None:
    from pmp.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text("OperDay,HourEnding,COAST,TOTAL,DSTFlag\n09/28/2026,01:00,12.5,abc,N\n")
    assert main(["normalize", "--iso", "ercot", "--dataset", "load_actual", str(bad), "--out",
                 str(tmp_path / "x.parquet")]) == 2
    assert "bad.csv, line 2, field 'TOTAL'" in capsys.readouterr().err
