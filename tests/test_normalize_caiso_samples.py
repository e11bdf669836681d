"""CAISO normalizers on the real published files in ../shared/samples/caiso."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.caiso.normalize import normalize_payload, source_name
from pmp.schema import LMP

SAMPLES = samples_dir("caiso")
DATASETS = ["lmp_dam", "lmp_rt15m", "lmp_rt5m", "as_dam", "as_rt15m", "load_actual", "load_forecast", "fuel_mix"]


def sample(prefix: str) -> Path:
    found = sorted(SAMPLES.glob(f"{prefix}*"))
    assert found, f"sample {prefix}* missing under {SAMPLES}"
    return found[0]


def test_every_caiso_sample_is_covered_here() -> None:
    """A new real file in the samples folder must get a test (prefixes handled in this module)."""
    handled = ("prc_lmp_dam", "daily_renewables_watch")
    assert sorted(p.name.split("__")[0] for p in SAMPLES.iterdir()) == sorted(handled)


def test_prc_lmp_dam_sample_unsorted_rows_pivot_by_gmt() -> None:
    path = sample("prc_lmp_dam")
    raw = list(csv.DictReader(io.StringIO(path.read_text())))
    rows = normalize_payload("lmp_dam", path.name, path.read_bytes()).to_pylist()
    # 8 LMP rows and one MCC row for the same node: one row per hour, components where published
    hours = sorted({r["INTERVALSTARTTIME_GMT"] for r in raw})
    assert len(rows) == len(hours) == 8
    assert [r["interval_start"] for r in rows] == sorted(r["interval_start"] for r in rows)
    by_start = {r["interval_start"]: r for r in rows}
    for src in raw:
        start = datetime.fromisoformat(src["INTERVALSTARTTIME_GMT"])
        row = by_start[start]
        assert row["interval_end"] == datetime.fromisoformat(src["INTERVALENDTIME_GMT"]) == start + timedelta(hours=1)
        column = {"LMP": "lmp", "MCC": "congestion"}[src["LMP_TYPE"]]
        assert row[column] == float(src["MW"])  # exact as published
    # PST (UTC-8): OPR_HR 17 (16:00-17:00 local) starts at 00:00 UTC the next day
    assert min(by_start) == datetime(2020, 1, 2, 0, tzinfo=UTC)
    he20 = by_start[datetime(2020, 1, 2, 3, tzinfo=UTC)]
    assert he20["congestion"] == 0.0 and he20["lmp"] == 36.26838
    others = [r for s, r in by_start.items() if s != he20["interval_start"]]
    assert all(r["congestion"] is None for r in others)
    assert all(r["energy"] is None and r["loss"] is None and r["ghg"] is None for r in rows)
    assert {(r["iso"], r["market"], r["location"], r["location_type"]) for r in rows} == {
        ("CAISO", "DAM", "AFPR_1_TOT_GEN-APND", "AP Node")}
    assert {r["source"] for r in rows} == {path.name}


def test_prc_lmp_dam_sample_inside_an_oasis_zip_and_split_by_component() -> None:
    """The same rows as OASIS ships them for an all-APnode query: one CSV per LMP_TYPE in a zip."""
    path = sample("prc_lmp_dam")
    header, *lines = path.read_text().splitlines()
    lmp = [line for line in lines if ",LMP," in line]
    mcc = [line for line in lines if ",MCC," in line]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("20200101_20200101_PRC_LMP_DAM_LMP_v12.csv", "\n".join([header, *lmp]) + "\n")
        zf.writestr("20200101_20200101_PRC_LMP_DAM_MCC_v12.csv", "\r\n".join([header, *mcc]) + "\r\n")
    name = "PRC_LMP_DAM_20200101T0800Z_20200102T0800Z_v12.0123456789ab.zip"
    zipped = normalize_payload("lmp_dam", name, buf.getvalue())
    bare = normalize_payload("lmp_dam", path.name, path.read_bytes())
    assert zipped.drop(["source"]) == bare.drop(["source"])
    assert set(zipped.column("source").to_pylist()) == {"PRC_LMP_DAM_20200101T0800Z_20200102T0800Z_v12.zip"}
    assert zipped.schema.equals(LMP.arrow, check_metadata=False)


def test_daily_renewables_watch_is_another_product_and_is_refused() -> None:
    """The Daily Renewables Watch (tab-separated, hours 1-24 even on the 25-hour 2017-11-05) is not
    a source of any CAISO dataset here: every normalizer refuses it, naming file, line and field."""
    path = sample("daily_renewables_watch")
    for dataset in DATASETS:
        with pytest.raises(NormalizeError) as err:
            normalize_payload(dataset, path.name, path.read_bytes())
        assert err.value.file == path.name, dataset
        assert err.value.line in (None, 1), dataset
        assert err.value.field in ("INTERVALSTARTTIME_GMT", "Time"), dataset


def lines_of_sample() -> list[str]:
    return sample("prc_lmp_dam").read_text().splitlines()


@pytest.mark.parametrize(
    ("mutate", "line", "field"),
    [
        (lambda ls: ls.__setitem__(2, ls[2].replace(",36.23535,", ",36.2x535,")), 3, "MW"),
        (lambda ls: ls.__setitem__(5, ls[5].replace("2020-01-02T00:00:00-00:00", "2020-01-02 00:00", 1)), 6,
         "INTERVALSTARTTIME_GMT"),
        (lambda ls: ls.__setitem__(1, ls[1].replace("T02:00:00-00:00", "T02:15:00-00:00")), 2, "INTERVALENDTIME_GMT"),
        (lambda ls: ls.__setitem__(7, ls[7].replace(",2020-01-01,", ",2020-01-02,")), 8, "OPR_DT"),
        (lambda ls: ls.__setitem__(9, ls[9].replace(",MCC,", ",MXX,")), 10, "LMP_TYPE"),
        (lambda ls: ls.__setitem__(9, ls[9].replace(",LMP_CONG_PRC,", ",LMP_LOSS_PRC,")), 10, "XML_DATA_ITEM"),
        (lambda ls: ls.__setitem__(4, ls[4].replace(",DAM,", ",RTM,")), 5, "MARKET_RUN_ID"),
        (lambda ls: ls.append(ls[1]), 11, "LMP_TYPE"),  # the same node, hour and type twice
    ],
)
def test_bad_input_names_file_line_field(mutate, line: int, field: str) -> None:
    lines = lines_of_sample()
    mutate(lines)
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", "bad.csv", ("\n".join(lines) + "\n").encode())
    assert (err.value.file, err.value.line, err.value.field) == ("bad.csv", line, field)
    assert f"bad.csv, line {line}, field '{field}'" in str(err.value)


def test_error_inside_a_zip_names_the_member() -> None:
    lines = lines_of_sample()
    lines[7] = lines[7].replace(",34.04259,", ",,")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("20200101_20200101_PRC_LMP_DAM_LMP_v12.csv", "\n".join(lines) + "\n")
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", "doc.zip", buf.getvalue())
    assert err.value.file == "doc.zip!20200101_20200101_PRC_LMP_DAM_LMP_v12.csv"
    assert (err.value.line, err.value.field) == (8, "MW") and "empty value" in str(err.value)


def test_sample_is_the_wrong_file_for_other_markets() -> None:
    path = sample("prc_lmp_dam")
    with pytest.raises(NormalizeError, match="lmp_rt5m market must be one of"):
        normalize_payload("lmp_rt5m", path.name, path.read_bytes())
    with pytest.raises(NormalizeError, match="missing column"):
        normalize_payload("as_dam", path.name, path.read_bytes())


def test_crlf_and_bom_accepted() -> None:
    path = sample("prc_lmp_dam")
    variant = b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n")
    assert normalize_payload("lmp_dam", path.name, variant) == normalize_payload("lmp_dam", path.name, path.read_bytes())


def test_source_name_strips_only_the_content_hash() -> None:
    assert source_name("raw.zip!PRC_AS_DAM_RU_20240310T0800Z_20240311T0700Z_v12.0a1b2c3d4e5f.zip") == \
        "PRC_AS_DAM_RU_20240310T0800Z_20240311T0700Z_v12.zip"
    assert source_name("outlook_demand_20240310.csv") == "outlook_demand_20240310.csv"
    assert source_name("x.notahash12345.zip") == "x.notahash12345.zip"
