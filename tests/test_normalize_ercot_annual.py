"""ERCOT's annual hub and load-zone files (NP4-180-ER, NP6-785-ER, NP4-181-ER) as the simulator
serves them: a zip of one xlsx, a sheet per month, spaced headers, one all-null row a year.

Workbooks here hold only the days a test needs (the simulator's ``days=``): a year of 15-minute
prices is ~800k rows. Expected values come from the simulator's price functions (its inputs) and
from the sheet cells themselves, and the annual route must equal the CSV route for the same day.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from pmp.errors import NormalizeError
from pmp.isos.ercot.adapter import normalize_dataset
from pmp.isos.ercot.normalize import normalize_payload
from pmp.isos.ercot.normalize_annual import document_name, month_of
from pmp.simulator import ercot as sim
from pmp.timeutil import market_day_bounds

CT = "America/Chicago"
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
DST = {SPRING: 23, FALL: 25}
RTID = {"lmp_dam": 13060, "lmp_rt15m": 13061, "as_dam": 13091}
MINUTES = {"lmp_dam": 60, "lmp_rt15m": 15, "as_dam": 60}
ENTITY = {"lmp_dam": "location", "lmp_rt15m": "location", "as_dam": "product"}


def annual_zip(dataset: str, year: int, days: tuple[date, ...]) -> tuple[str, bytes]:
    """A simulator annual file holding only ``days`` (as ERCOT zips it: one xlsx member)."""
    report = sim.ANNUAL[RTID[dataset]]
    doc = sim.AnnualDoc(report, year, sim.annual_postings(report, year)[-1])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(doc.constructed.removesuffix(".zip") + ".xlsx",
                    sim.annual_workbook(report.rtid, year, date(year, 12, 31), days=days))
    return doc.constructed, buf.getvalue()


@pytest.fixture(scope="module")
def dst_files() -> dict[str, tuple[str, bytes]]:
    return {ds: annual_zip(ds, 2024, (SPRING, FALL)) for ds in RTID}


def expected_value(dataset: str, entity: str, start: datetime) -> float:
    if dataset == "lmp_dam":
        return sim.price("DAM", entity, start)
    if dataset == "lmp_rt15m":  # the simulator prices LZEW under "<zone>EW"; we store "<zone>_EW"
        return sim.price("RT", entity.replace("_EW", "EW"), start)
    return sim.mcpc("DAM", entity, start)


@pytest.mark.parametrize("dataset", sorted(RTID))
@pytest.mark.parametrize("day", sorted(DST), ids=str)
def test_dst_days_exact_with_values(dst_files, dataset: str, day: date) -> None:
    constructed, payload = dst_files[dataset]
    name = document_name(constructed, day.year, day.month)  # the raw name the pipeline stores
    table = normalize_dataset(dataset, name, payload)
    rows = table.to_pylist()
    start, end = market_day_bounds(day, CT)
    step = timedelta(minutes=MINUTES[dataset])
    expected = [start + i * step for i in range(DST[day] * 60 // MINUTES[dataset])]
    by: dict[str, list[datetime]] = {}
    for r in rows:
        assert r["interval_end"] - r["interval_start"] == step
        assert r["clearing_price" if dataset == "as_dam" else "lmp"] == expected_value(
            dataset, r[ENTITY[dataset]], r["interval_start"]), r
        by.setdefault(r[ENTITY[dataset]], []).append(r["interval_start"])
    assert all(sorted(v) == expected for v in by.values())
    entities = {"lmp_dam": 15, "lmp_rt15m": 23, "as_dam": 5}[dataset]  # hubs + zones (+ LZEW); 5 products
    assert len(by) == entities and len(rows) == entities * len(expected)  # the all-null row is dropped
    if dataset == "lmp_rt15m":
        assert "LZ_HOUSTON" in by and "LZ_HOUSTON_EW" in by and not any(k.endswith("_RN") for k in by)
    if dataset == "as_dam":
        assert "REGUP" in by  # published as "REGUP " (trailing space)
    assert {r["source"] for r in rows} == {constructed.removesuffix(".zip") + ".xlsx"}
    assert {r["published_at"] for r in rows} == {sim.AnnualDoc(sim.ANNUAL[RTID[dataset]], 2024, sim.annual_postings(
        sim.ANNUAL[RTID[dataset]], 2024)[-1]).posted.replace(microsecond=0)}


def sheet_rows(payload: bytes, sheet: str) -> list[tuple]:
    from openpyxl import load_workbook

    (member,) = zipfile.ZipFile(io.BytesIO(payload)).namelist()
    wb = load_workbook(io.BytesIO(zipfile.ZipFile(io.BytesIO(payload)).read(member)), read_only=True)
    try:
        return list(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()


def test_fall_back_copies_take_the_values_of_their_own_sheet_rows(dst_files) -> None:
    """The N and Y copies of hour ending 02:00 (DAM) and of delivery hour 2 (RT) land on the right
    UTC hour with the value of *their* cell: 06:00 UTC is 01:00 CDT, 07:00 UTC 01:00 CST."""
    cells = sheet_rows(dst_files["lmp_dam"][1], "Nov")
    assert sum(1 for r in cells if all(v is None for v in r)) == 1  # ERCOT's one all-null row a year
    published = {(r[1], r[2]): r[4] for r in cells if r[0] == "11/03/2024" and r[3] == "HB_NORTH"}
    assert published[("02:00", "N")] != published[("02:00", "Y")]
    dam = {r["interval_start"]: r["lmp"] for r in normalize_dataset("lmp_dam", "f.xlsx", dst_files["lmp_dam"][1])
           .to_pylist() if r["location"] == "HB_NORTH"}
    assert dam[datetime(2024, 11, 3, 6, tzinfo=UTC)] == published[("02:00", "N")]
    assert dam[datetime(2024, 11, 3, 7, tzinfo=UTC)] == published[("02:00", "Y")]
    assert dam[datetime(2024, 11, 3, 8, tzinfo=UTC)] == published[("03:00", "N")]  # 02:00 CST
    cells = sheet_rows(dst_files["lmp_rt15m"][1], "Nov")
    published = {(r[1], r[2], r[3]): r[6] for r in cells if r[0] == "11/03/2024" and (r[4], r[5]) == ("LZ_WEST", "LZEW")}
    rt = {r["interval_start"]: r["lmp"] for r in normalize_dataset("lmp_rt15m", "f.xlsx", dst_files["lmp_rt15m"][1])
          .to_pylist() if r["location"] == "LZ_WEST_EW"}
    assert published[(2, 3, "N")] != published[(2, 3, "Y")]
    assert rt[datetime(2024, 11, 3, 6, 30, tzinfo=UTC)] == published[(2, 3, "N")]
    assert rt[datetime(2024, 11, 3, 7, 30, tzinfo=UTC)] == published[(2, 3, "Y")]


@pytest.mark.parametrize("dataset", ["lmp_dam", "lmp_rt15m"])
def test_annual_route_equals_the_csv_route_for_hubs_and_zones(dst_files, dataset: str) -> None:
    report = sim.REPORTS[{"lmp_dam": 12331, "lmp_rt15m": 12301}[dataset]]
    start, end = sim.day_bounds(FALL)
    csv = pa.concat_tables([normalize_payload(dataset, d.constructed + ".zip", d.zip_bytes())
                            for d in (sim.Doc(report, k) for k in report.keys(start, end))]).to_pylist()
    annual = normalize_dataset(dataset, document_name(dst_files[dataset][0], 2024, 11), dst_files[dataset][1])
    got = {(r["location"], r["interval_start"]): (r["lmp"], r["location_type"]) for r in annual.to_pylist()
           if start <= r["interval_start"] < end}
    want = {(r["location"], r["interval_start"]): (r["lmp"], r["location_type"]) for r in csv
            if (r["location"], r["interval_start"]) in got}
    assert len(got) == {"lmp_dam": 15 * 25, "lmp_rt15m": 23 * 100}[dataset]
    assert got == want


def test_month_in_the_name_reads_only_that_sheet(dst_files) -> None:
    constructed, payload = dst_files["lmp_dam"]
    assert month_of(document_name(constructed, 2024, 3)) == (2024, 3)
    march = normalize_dataset("lmp_dam", document_name(constructed, 2024, 3), payload)
    whole = normalize_dataset("lmp_dam", constructed, payload)  # as downloaded: every sheet
    assert {r["interval_start"].astimezone(sim.CT).date() for r in march.to_pylist()} == {SPRING}
    assert march.num_rows == 15 * 23 and whole.num_rows == 15 * (23 + 25)
    with pytest.raises(NormalizeError, match=r"no sheet for month\(s\) \[6\]"):
        normalize_dataset("lmp_dam", document_name(constructed, 2024, 6), payload)


def tiny_workbook(rows: list[list], sheet: str = "Nov") -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


DAM_HEADER = ["Delivery Date", "Hour Ending", "Repeated Hour Flag", "Settlement Point", "Settlement Point Price"]


def test_typed_cells_and_bad_input_name_sheet_row_and_field() -> None:
    good = tiny_workbook([DAM_HEADER, [datetime(2024, 11, 3), "02:00", "Y", "HB_WEST", 17.5]])
    (row,) = normalize_dataset("lmp_dam", "DAMLZHBSPP_2024.xlsx", good).to_pylist()  # an Excel date cell
    assert (row["interval_start"], row["lmp"]) == (datetime(2024, 11, 3, 7, tzinfo=UTC), 17.5)
    bad = tiny_workbook([DAM_HEADER, ["11/03/2024", "01:00", "N", "HB_WEST", 1.0],
                         ["11/03/2024", "02:00", "N", "HB_WEST", "n/a"]])
    with pytest.raises(NormalizeError) as err:
        normalize_dataset("lmp_dam", "DAMLZHBSPP_2024.xlsx", bad)
    assert (err.value.file, err.value.line, err.value.field) == ("DAMLZHBSPP_2024.xlsx!Nov", 3, "Settlement Point Price")
    partial = tiny_workbook([DAM_HEADER, ["11/03/2024", None, "N", "HB_WEST", 1.0]])
    with pytest.raises(NormalizeError, match=r"Nov, line 2, field 'Hour Ending'"):
        normalize_dataset("lmp_dam", "DAMLZHBSPP_2024.xlsx", partial)  # only all-null rows are dropped
    with pytest.raises(NormalizeError, match="no 'Delivery Date, ...' header"):
        normalize_dataset("lmp_dam", "DAMLZHBSPP_2024.xlsx", tiny_workbook([["Foo", "Bar"]] * 12))
    with pytest.raises(NormalizeError, match=r"no monthly sheet"):
        normalize_dataset("lmp_dam", "DAMLZHBSPP_2024.xlsx", tiny_workbook([DAM_HEADER], sheet="Summary"))


def test_simulator_annual_workbook_is_deterministic() -> None:
    days = (date(2019, 1, 1),)
    assert sim.annual_workbook(13091, 2019, date(2019, 12, 31), days) == sim.annual_workbook(
        13091, 2019, date(2019, 12, 31), days)


AS_HEADER = ["Delivery Date", "Hour Ending", "Repeated Hour Flag", "REGDN", "REGUP ", "RRS", "NSPIN", "ECRS"]


def test_as_product_drift_fails_naming_the_header() -> None:
    """NP4-181-ER's wide sheet: a renamed, dropped or added product column is an error at the header
    (every column would otherwise become a product and pass every check); the 2023 file's ECRS
    column may be empty before ECRS's first day, and is required after it."""
    row = ["11/03/2024", "01:00", "N", 1.0, 2.0, 3.0, 4.0, 5.0]
    got = normalize_dataset("as_dam", "DAMASMCPC_2024.xlsx", tiny_workbook([AS_HEADER, row]))
    assert sorted(got.column("product").to_pylist()) == ["ECRS", "NSPIN", "REGDN", "REGUP", "RRS"]
    renamed = [*AS_HEADER[:5], "RRSX", *AS_HEADER[6:]]
    with pytest.raises(NormalizeError) as err:
        normalize_dataset("as_dam", "DAMASMCPC_2024.xlsx", tiny_workbook([renamed, row]))
    assert (err.value.file, err.value.line, err.value.field) == ("DAMASMCPC_2024.xlsx!Nov", 1, "RRSX")
    dropped = [h for h in AS_HEADER if h != "NSPIN"]
    with pytest.raises(NormalizeError, match=r"Nov, line 1: product column\(s\) NSPIN missing"):
        normalize_dataset("as_dam", "DAMASMCPC_2024.xlsx", tiny_workbook([dropped, [*row[:6], row[7]]]))
    with pytest.raises(NormalizeError, match=r"product column\(s\) ECRS missing"):  # after 2023-06-10
        normalize_dataset("as_dam", "DAMASMCPC_2024.xlsx", tiny_workbook([AS_HEADER[:7], row[:7]]))
    before = ["05/01/2023", "01:00", "N", 1.0, 2.0, 3.0, 4.0]  # no ECRS yet: the four products
    got = normalize_dataset("as_dam", "DAMASMCPC_2023.xlsx", tiny_workbook([AS_HEADER[:7], before], sheet="May"))
    assert sorted(got.column("product").to_pylist()) == ["NSPIN", "REGDN", "REGUP", "RRS"]
