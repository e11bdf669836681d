"""ISO-NE normalizers on the real ISO Express files in ../shared/samples/isone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.isone import records
from pmp.isos.isone.adapter import storage_name
from pmp.isos.isone.normalize import document_name, normalize_payload

# The checkout sits beside ../shared (as in CI: a fresh clone with shared/ next to it).
SAMPLES = samples_dir("isone")


def sample(prefix: str) -> Path:
    found = sorted(SAMPLES.glob(f"{prefix}*"))
    assert found, f"sample {prefix}* missing under {SAMPLES}"
    return found[0]


def with_trailer(data: bytes, n: int) -> bytes:
    """The DA sample is the head of a real file; a real file ends with its "T" trailer."""
    return data.rstrip(b"\n") + f'\n"T","{n} lines"'.encode()


def test_dam_head_sample_is_rejected_as_truncated() -> None:
    """The sample is cut after its first data row, exactly what a broken download looks like."""
    path = sample("dam_hourly_lmp_HEAD_ONLY")
    lines = path.read_bytes().splitlines()
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", path.name, path.read_bytes())
    assert (err.value.file, err.value.line) == (path.name, len(lines))
    assert "truncated" in str(err.value)


def test_dam_sample_row_exactly_as_published() -> None:
    path = sample("dam_hourly_lmp_HEAD_ONLY")
    data = with_trailer(path.read_bytes(), 1)
    raw = [r for r in csv.reader(io.StringIO(data.decode())) if r[0] == "D"]
    header = next(r for r in csv.reader(io.StringIO(data.decode())) if r[0] == "H")[1:]
    rows = normalize_payload("lmp_dam", "WW_DALMP_ISO_20260317.csv", data).to_pylist()
    assert len(rows) == len(raw) == 1
    src, row = dict(zip(header, raw[0][1:], strict=True)), rows[0]
    # 03/17/2026 is EDT (UTC-4): hour ending 01 starts at local 00:00 = 04:00 UTC
    assert row["interval_start"] == datetime(2026, 3, 17, 4, tzinfo=UTC)
    assert row["interval_end"] - row["interval_start"] == timedelta(hours=1)
    assert (row["iso"], row["market"]) == ("ISONE", "DAM")
    assert row["location"] == src["Location Name"] == "UN.FRNKLNSQ13.810CC"
    assert row["location_type"] == src["Location Type"] == "NETWORK NODE"
    assert row["location_id"] == src["Location ID"] == "321"  # '"D","03/17/2026","01","321",...'
    assert row["lmp"] == float(src["Locational Marginal Price"])
    assert (row["energy"], row["congestion"], row["loss"]) == (
        float(src["Energy Component"]), float(src["Congestion Component"]), float(src["Marginal Loss Component"]))
    assert abs(row["energy"] + row["congestion"] + row["loss"] - row["lmp"]) < 1e-9
    assert row["ghg"] is None
    # "Report generated: 03/16/2026 13:07:54 EDT" is the publication time
    assert row["published_at"] == datetime(2026, 3, 16, 17, 7, 54, tzinfo=UTC)
    assert row["source"] == "WW_DALMP_ISO_20260317.csv"


def test_dam_sample_crlf_and_storage_name_give_the_same_rows() -> None:
    data = with_trailer(sample("dam_hourly_lmp_HEAD_ONLY").read_bytes(), 1)
    plain = normalize_payload("lmp_dam", "WW_DALMP_ISO_20260317.csv", data)
    crlf = normalize_payload("lmp_dam", "WW_DALMP_ISO_20260317.csv", data.replace(b"\n", b"\r\n"))
    stored = normalize_payload("lmp_dam", storage_name("WW_DALMP_ISO_20260317.csv", data), data)
    assert plain == crlf == stored


def test_record_structure_of_the_full_real_report() -> None:
    """The seven-day wind forecast is a complete real file in the same C/H/D/T structure."""
    path = sample("seven_day_wind_power_forecast")
    r = records.parse(path.name, path.read_bytes())
    assert r.title == "ISO New England Inc. Seven Day Wind Power Forecast Report"
    assert r.filename == "seven_day_wind_power_forecast_20250225.csv"
    assert r.report_day == date(2025, 2, 25)
    assert r.generated == datetime(2025, 2, 25, 15, 8, 14, tzinfo=UTC)  # "10:08:14 EST"
    assert r.names[2:] == [f"Day {i}" for i in range(1, 9)]
    assert r.trailer == "24 lines"
    hours = [row for row in r.rows if row[0] == ""]
    assert [row[1] for row in hours] == [f"{h:02d}" for h in range(1, 25)]
    assert r.lines[-1] == 31 and len(r.rows) == 26
    assert hours[0][2:] == ["", "205", "352", "470", "408", "991", "690", "283"]  # empty past hours kept empty
    assert records.is_complete_csv(path.read_bytes())  # no newline after the trailer, like real files


@pytest.mark.parametrize("dataset", ["lmp_dam", "lmp_rt60m", "lmp_rt5m", "as_rt5m", "load_actual", "fuel_mix"])
def test_other_report_layouts_are_refused_naming_the_header(dataset: str) -> None:
    path = sample("seven_day_wind_power_forecast")
    with pytest.raises(NormalizeError) as err:
        normalize_payload(dataset, path.name, path.read_bytes())
    assert (err.value.file, err.value.line) == (path.name, 5)  # the "H" names line
    assert "missing column" in str(err.value) and err.value.field


def _mutated(mutate) -> bytes:
    lines = with_trailer(sample("dam_hourly_lmp_HEAD_ONLY").read_bytes(), 1).decode().split("\n")
    mutate(lines)
    return "\n".join(lines).encode()


@pytest.mark.parametrize(
    ("mutate", "line", "field", "message"),
    [
        (lambda ls: ls.__setitem__(6, ls[6].replace("27.93", "2x.93")), 7, "Locational Marginal Price", "not a number"),
        (lambda ls: ls.__setitem__(6, ls[6].replace('"01"', '"25"')), 7, "Hour Ending", "hour ending"),
        (lambda ls: ls.__setitem__(6, ls[6].replace('"01"', '"02X"')), 7, "Hour Ending", "02X"),
        (lambda ls: ls.__setitem__(6, ls[6].replace("03/17/2026", "2026-03-17")), 7, "Date", "MM/DD/YYYY"),
        (lambda ls: ls.__setitem__(6, ls[6].replace(",0.18", "")), 7, None, "8 fields where the header has 9"),
        (lambda ls: ls.insert(6, '"X","what"'), 7, None, "unknown record type"),
        (lambda ls: ls.append('"D","03/17/2026","02","321","UN.X","NETWORK NODE",1,1,0,0'), 9, None, "after the"),
        (lambda ls: ls.insert(7, ls[6]), 8, None, "duplicate location"),
    ],
)
def test_bad_input_names_file_line_field(mutate, line: int, field: str | None, message: str) -> None:
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", "bad.csv", _mutated(mutate))
    assert (err.value.file, err.value.line, err.value.field) == ("bad.csv", line, field)
    assert message in str(err.value)
    assert str(err.value).startswith(f"bad.csv, line {line}")


@pytest.mark.parametrize(("stamp", "why"), [
    (None, 'no "Report generated" comment'),
    ('"C","Report generated: 03/16/2026 13:07:54 CET"', "is not 'MM/DD/YYYY HH:MM:SS EDT|EST'"),
])
def test_prelim_and_final_need_their_publication_time(stamp: str | None, why: str) -> None:
    """The sample's rows as a real-time hourly report: without a readable ``Report generated`` stamp
    a prelim/final can not be ranked against the other publication, so it is refused; a day-ahead
    file (published once) is loaded with the time the fetch recorded."""
    lines = with_trailer(sample("dam_hourly_lmp_HEAD_ONLY").read_bytes(), 1).decode().split("\n")
    assert lines[3].startswith('"C","Report generated:')
    if stamp is None:
        del lines[3]
    else:
        lines[3] = stamp
    data = "\n".join(lines).encode()
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_rt60m", "lmp_rt_prelim_20260317.csv", data)
    assert (err.value.file, err.value.line, err.value.field) == (
        "lmp_rt_prelim_20260317.csv", None if stamp is None else 4, "Report generated")
    assert why in str(err.value)
    fetched = datetime(2026, 3, 16, 18, tzinfo=UTC)
    (row,) = normalize_payload("lmp_dam", "WW_DALMP_ISO_20260317.csv", data, fetched).to_pylist()
    assert row["published_at"] == fetched


def test_document_names_round_trip_through_storage_names() -> None:
    for name in ["WW_DALMP_ISO_20241103.csv", "5min-rt-final/lmp_5min_20241103_00-04.csv",
                 "hourlyloadforecast_all_day_20241104_seen20241103.json"]:
        stored = storage_name(name, b"payload")
        assert "/" not in stored and "@" in stored
        assert document_name(stored) == name
    assert storage_name("a.csv", b"1") != storage_name("a.csv", b"2")  # other bytes, other raw key
