"""The Rust bulk processor (``pmp_bulk``) against the Python reference normalizer.

Identical output (schema, types, values, row order) on every real ERCOT sample and on simulator
archives of both 2024 DST days, as plain CSV, MIS zips, API bundles (zip of zips) and monthly
archives (zip of zips of zips); schema evolution; clear errors; no partial output.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from pathlib import Path

import pmp_bulk
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import samples_dir

from pmp import bulk
from pmp.isos.ercot.normalize import normalize_payload
from pmp.simulator import ercot as sim

SAMPLES = samples_dir("ercot")
SAMPLE_DATASETS = {"dam_spp_np4-190-cd": "lmp_dam", "rt_spp_15min_np6-905-cd": "lmp_rt15m"}
REPORT = {"lmp_dam": 12331, "lmp_rt15m": 12301, "lmp_rt5m": 12300}
DST_DAYS = [date(2024, 3, 10), date(2024, 11, 3)]


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def rust(tmp_path: Path, dataset: str, files: list[tuple[str, bytes]], **kwargs) -> tuple[pa.Table, dict]:
    paths = []
    for i, (name, data) in enumerate(files):
        p = tmp_path / f"in{i}-{name}"
        p.write_bytes(data)
        paths.append(p)
    out = tmp_path / "out.parquet"
    stats = pmp_bulk.process([str(p) for p in paths], dataset, str(out), names=[n for n, _ in files], **kwargs)
    return pq.read_table(out), stats


def python(dataset: str, files: list[tuple[str, bytes]], published: list[datetime | None] | None = None) -> pa.Table:
    tables = [normalize_payload(dataset, name, data, (published or [None] * len(files))[i])
              for i, (name, data) in enumerate(files)]
    return pa.concat_tables(tables)


def assert_identical(got: pa.Table, want: pa.Table) -> None:
    assert got.schema == want.schema, f"{got.schema}\n!=\n{want.schema}"
    assert got.num_rows == want.num_rows
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def day_docs(dataset: str, day: date) -> list[sim.Doc]:
    report = sim.REPORTS[REPORT[dataset]]
    start, end = sim.day_bounds(day)
    return [sim.Doc(report, k) for k in report.keys(start, end)]


@pytest.mark.parametrize("sample", sorted(SAMPLE_DATASETS))
def test_real_samples_identical_in_every_wrapping(tmp_path: Path, sample: str) -> None:
    path = next(SAMPLES.glob(f"{sample}*"))
    dataset, data = SAMPLE_DATASETS[sample], path.read_bytes()
    member = "cdr.00012331.0000000000000000.20260928.123229.DAMSPNP4190.csv"
    mis_zip = zip_of([(member, data)])
    for files in (
        [(path.name, data)],  # plain CSV as published
        [(path.name, data.replace(b"\n", b"\r\n"))],  # CRLF
        [(member + ".zip", mis_zip)],  # MIS download: zip holding the CSV (posting time from its name)
        [("bundle.zip", zip_of([("1001.zip", mis_zip), ("1002.zip", mis_zip)]))],  # API bulk download
    ):
        got, stats = rust(tmp_path, dataset, files)
        assert_identical(got, python(dataset, files))
        assert stats["rows"] == got.num_rows > 0 and stats["rejected_rows"] == 0


@pytest.mark.parametrize("dataset", sorted(REPORT))
@pytest.mark.parametrize("day", DST_DAYS, ids=str)
def test_simulator_dst_days_identical(tmp_path: Path, dataset: str, day: date) -> None:
    docs = day_docs(dataset, day)
    # one document per input (the operator's shape), with publication times from the listing
    files = [(d.constructed + ".zip", d.zip_bytes()) for d in docs]
    published = [d.posted for d in docs]
    got, stats = rust(tmp_path, dataset, files, published_at=[bulk.micros(p) for p in published])
    per_doc = [normalize_payload(dataset, name, data, p) for (name, data), p in zip(files, published, strict=True)]
    assert_identical(got, pa.concat_tables(per_doc))
    assert stats["rows_per_input"] == [t.num_rows for t in per_doc]
    assert stats["source_per_input"] == [d.constructed for d in docs]
    # the same day as an API bundle nested in a monthly archive: zip of zips of zips
    bundle = zip_of([(f"{d.doc_id}.zip", d.zip_bytes()) for d in docs])
    month = [("NP-month.zip", zip_of([(f"{day:%Y%m%d}.zip", bundle), ("README.txt", b"x")]))]
    got, stats = rust(tmp_path, dataset, month)
    assert_identical(got, python(dataset, month))
    assert stats["files"] == len(docs) and stats["skipped_members"] == 1
    # 23 / 25 hours of intervals, exactly
    hours = {date(2024, 3, 10): 23, date(2024, 11, 3): 25}[day]
    minutes = {"lmp_dam": 60, "lmp_rt15m": 15, "lmp_rt5m": 5}[dataset]
    starts = got.column("interval_start").to_pylist()
    assert len(set(starts)) == hours * 60 // minutes
    assert (max(starts) - min(starts)).total_seconds() == (hours * 60 - minutes) * 60


EVOLVED = {
    "no flag column (older years)": (
        "lmp_dam", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n01/05/2019,01:00,HB_NORTH,20.5\n"),
    "spaced annual-workbook names": (
        "lmp_rt15m", "Delivery Date,Delivery Hour,Delivery Interval,Repeated Hour Flag,Settlement Point Name,"
        "Settlement Point Type,Settlement Point Price\n11/03/2024,2,3,Y,LZ_WEST,LZEW,31.25\n"),
    "RepeatHourFlag and SCEDTimeStamp": (
        "lmp_rt5m", "SCEDTimeStamp,RepeatHourFlag,SettlementPoint,LMP\n11/03/2024 01:04:59,Y,HB_WEST,18\n"),
    "extra columns": (
        "lmp_dam", "DeliveryDate,HourEnding,SettlementPoint,Extra,SettlementPointPrice,DSTFlag,More\n"
        "03/10/2024,03:00,HB_NORTH,x, 1e1,N,y\n"),
    "quoted fields and BOM": (
        "lmp_dam", '\ufeff"DeliveryDate","HourEnding","SettlementPoint","SettlementPointPrice","DSTFlag"\n'
        '"11/03/2024","02:00","HB_HUBAVG","-0.125","Y"\n'),
}


@pytest.mark.parametrize("case", sorted(EVOLVED))
def test_schema_evolution_identical(tmp_path: Path, case: str) -> None:
    dataset, text = EVOLVED[case]
    files = [("evolved.csv", text.encode())]
    got, _ = rust(tmp_path, dataset, files)
    want = python(dataset, files)
    assert_identical(got, want)
    assert got.schema.field("lmp").type == pa.float64() and got.num_rows == 1


def test_bad_input_names_archive_member_line_and_leaves_no_output(tmp_path: Path) -> None:
    doc = day_docs("lmp_rt15m", date(2024, 11, 3))[0]
    lines = doc.csv().splitlines()
    fields = lines[3].split(",")
    fields[5] = "abc"  # SettlementPointPrice of file line 4
    lines[3] = ",".join(fields)
    bad = zip_of([("cdr.bad.csv", ("\n".join(lines) + "\n").encode())])
    archive = zip_of([("1.zip", doc.zip_bytes()), ("2.zip", bad)])
    with pytest.raises(pmp_bulk.BulkProcessError) as err:
        rust(tmp_path, "lmp_rt15m", [("month.zip", archive)])
    e = err.value
    assert (e.archive, e.member, e.line, e.field) == ("month.zip", "2.zip!cdr.bad.csv", 4, "SettlementPointPrice")
    assert str(e) == "month.zip!2.zip!cdr.bad.csv, line 4, field 'SettlementPointPrice': not a number: 'abc'"
    truncated = zip_of([("1.zip", doc.zip_bytes()[:200])])
    with pytest.raises(pmp_bulk.BulkProcessError, match=r"^month.zip!1.zip: corrupt zip"):
        rust(tmp_path, "lmp_rt15m", [("month.zip", truncated)])
    with pytest.raises(pmp_bulk.BulkProcessError, match="missing column"):
        rust(tmp_path, "lmp_dam", [("x.csv", b"Foo,Bar\n1,2\n")])
    with pytest.raises(pmp_bulk.BulkProcessError, match="unknown ERCOT dataset"):
        rust(tmp_path, "lmp_nope", [("x.csv", b"a\n")])
    # nothing written: neither the output nor a temporary file
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("in")) == []


REFUSED = {
    # no DSTFlag column and the repeated hour listed twice: both copies would land on 06:00Z
    "unflagged repeated hour": ("lmp_dam", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n"
                                "11/03/2024,01:00,HB_NORTH,10\n11/03/2024,02:00,HB_NORTH,20\n"
                                "11/03/2024,02:00,HB_NORTH,21\n", 4),
    "hour ending 25 on a 24-hour day": ("lmp_dam", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n"
                                        + "".join(f"11/04/2024,{h:02d}:00,HB_NORTH,{h}\n" for h in range(1, 26)), 26),
    "duplicate row": ("lmp_rt15m", "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,"
                      "SettlementPointType,SettlementPointPrice,DSTFlag\n06/01/2024,1,1,HB_WEST,HU,20,N\n"
                      "06/01/2024,1,1,HB_NORTH,HU,21,N\n06/01/2024,1,1,HB_WEST,HU,22,N\n", 4),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_both_engines_refuse_the_same_bad_files_on_the_same_line(tmp_path: Path, case: str) -> None:
    from pmp.errors import NormalizeError

    dataset, text, line = REFUSED[case]
    files = [("bad.csv", text.encode())]
    with pytest.raises(pmp_bulk.BulkProcessError) as rust_err:
        rust(tmp_path, dataset, files)
    with pytest.raises(NormalizeError) as python_err:
        python(dataset, files)
    assert rust_err.value.line == line, str(rust_err.value)
    assert f"line {line}" in str(python_err.value), str(python_err.value)


def test_lenient_mode_counts_rejected_rows(tmp_path: Path) -> None:
    text = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n" \
           "09/29/2026,01:00,A,1,N\n09/29/2026,01:00,B,,N\n09/29/2026,26:00,C,3,N\n09/29/2026,02:00,D,4,N\n"
    got, stats = rust(tmp_path, "lmp_dam", [("x.csv", text.encode())], strict=False)
    assert got.column("location").to_pylist() == ["A", "D"]
    assert stats["rejected_rows"] == 2 and len(stats["errors"]) == 2
    assert "x.csv, line 3, field 'SettlementPointPrice': empty price" in stats["errors"][0]


def test_threads_option_and_stats(tmp_path: Path) -> None:
    docs = day_docs("lmp_rt5m", date(2024, 6, 1))[:30]
    files = [(d.constructed + ".zip", d.zip_bytes()) for d in docs]
    one, s1 = rust(tmp_path, "lmp_rt5m", files, threads=1)
    two, s2 = rust(tmp_path, "lmp_rt5m", files, threads=2)
    assert one.equals(two) and s1["files"] == s2["files"] == 30 and s1["seconds"] > 0
    # no publication times given: each document's comes from its constructed name (local time)
    assert set(one.column("published_at").to_pylist()) == {d.posted for d in docs}


def test_manifest_sends_annual_workbooks_to_the_python_normalizer(tmp_path: Path, monkeypatch, caplog) -> None:
    """A batch of an MIS CSV zip (Rust) and an annual NP4-180-ER file (xlsx: Python) for the same
    day: one Parquet file, per-document row counts, one row per key, the later publication (the
    annual file, posted weeks after) winning where both hold a location and hour."""
    import logging

    from pmp.isos.ercot.normalize_annual import document_name
    from pmp.registry import DocumentRef
    from pmp.staging import open_store, sha256

    monkeypatch.setenv("PMP_STAGING_URL", (tmp_path / "stage").as_uri() + "/")
    store = open_store()
    day = date(2024, 11, 3)
    (csv_doc,) = day_docs("lmp_dam", day)
    report = sim.ANNUAL[13060]
    annual = sim.AnnualDoc(report, 2024, sim.annual_postings(report, 2024)[-1])
    workbook = zip_of([(annual.constructed.removesuffix(".zip") + ".xlsx",
                        sim.annual_workbook(13060, 2024, date(2024, 12, 31), days=(day,)))])
    inputs = [
        (DocumentRef(csv_doc.doc_id, csv_doc.constructed + ".zip", csv_doc.posted.isoformat(), day.isoformat(), "mis"),
         csv_doc.constructed + ".zip", csv_doc.zip_bytes()),
        (DocumentRef(f"{annual.doc_id}@2024-11", document_name(annual.constructed, 2024, 11), annual.posted.isoformat(),
                     "2024-11-01", "annual"), document_name(annual.constructed, 2024, 11), workbook),
    ]
    docs = []
    for ref, name, payload in inputs:
        key = f"raw/ercot/lmp_dam/{name}"
        store.put(key, payload, immutable=True)
        docs.append({"ref": ref.to_dict(), "raw_key": key, "raw_uri": store.uri(key), "name": name,
                     "checksum": sha256(payload)})
    caplog.set_level(logging.INFO, logger="pmp.bulk")
    result = bulk.normalize_manifest({"key": "ercot.lmp_dam", "docs": docs})
    assert result["engine"] == "rust+python"
    assert "are xlsx workbooks" in caplog.text and "Python normalizer" in caplog.text
    got = pq.read_table(io.BytesIO(store.get(result["parquet_key"]))).to_pylist()
    csv_rows = normalize_payload("lmp_dam", inputs[0][1], inputs[0][2], csv_doc.posted).to_pylist()
    hubs = set(sim.ANNUAL_DAM_POINTS)
    assert [d["rows"] for d in result["documents"]] == [len(csv_rows), 15 * 25]
    assert result["documents"][1]["source_name"] == annual.constructed.removesuffix(".zip") + ".xlsx"
    assert len(got) == len(csv_rows) == result["rows"]  # the annual rows replace the CSV's hub/zone rows
    by_key = {(r["location"], r["interval_start"]): r for r in got}
    assert len(by_key) == len(got)
    for r in csv_rows:
        g = by_key[(r["location"], r["interval_start"])]
        assert g["lmp"] == r["lmp"]  # both publications carry the same prices
        assert g["source"] == (annual.constructed.removesuffix(".zip") + ".xlsx" if r["location"] in hubs
                               else csv_doc.constructed)


def test_zip_bombs_are_refused_with_the_python_limits(tmp_path: Path, monkeypatch) -> None:
    """The processor holds zips to pmp.payload's limits: nesting deeper than MAX_DEPTH, a member
    compressing more than MAX_RATIO (the values passed in by pmp.bulk) and a member inflating past
    the size it declares are errors naming the archive and member, and nothing is written."""
    from pmp import payload

    doc = day_docs("lmp_rt15m", date(2024, 6, 1))[0].zip_bytes()
    nested = doc
    for level in range(payload.MAX_DEPTH):  # the document's own zip plus MAX_DEPTH around it
        nested = zip_of([(f"{level}.zip", nested)])
    with pytest.raises(pmp_bulk.BulkProcessError) as err:
        rust(tmp_path, "lmp_rt15m", [("deep.zip", nested)])
    assert err.value.archive == "deep.zip" and err.value.member == "3.zip!2.zip!1.zip!0.zip", str(err.value)
    assert f"nested deeper than {payload.MAX_DEPTH} levels" in str(err.value)

    bomb = tmp_path / "in-bomb.zip"
    bomb.write_bytes(zip_of([("bomb.csv", b"0" * (1 << 20))]))  # ~1000:1
    monkeypatch.setattr(payload, "RATIO_MIN_BYTES", 1 << 16)  # reaches the processor through pmp.bulk
    with pytest.raises(pmp_bulk.BulkProcessError, match=r"^bomb.zip!bomb.csv: compressed \d+:1, above the limit of 200:1"):
        bulk.process_files("ercot", "lmp_rt15m", [bomb], tmp_path / "out.parquet", names=["bomb.zip"])

    liar = bytearray(zip_of([("liar.csv", b"0" * (1 << 20))]))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size: 100 bytes
        at = liar.index(sig)
        liar[at + offset:at + offset + 4] = (100).to_bytes(4, "little")
    with pytest.raises(pmp_bulk.BulkProcessError, match=r"^liar.zip!liar.csv: corrupt zip member \(.*declared"):
        rust(tmp_path, "lmp_rt15m", [("liar.zip", bytes(liar))])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("in")) == []
