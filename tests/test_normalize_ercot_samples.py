"""ERCOT normalizers on the real published files in ../shared/samples/ercot."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.ercot.normalize import normalize_payload, published_at_from_name

# The checkout sits beside ../shared (as in CI: a fresh clone with shared/ next to it).
SAMPLES = samples_dir("ercot")


def sample(prefix: str) -> Path:
    found = sorted(SAMPLES.glob(f"{prefix}*"))
    assert found, f"sample {prefix}* missing under {SAMPLES}"
    return found[0]


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_dam_sample_hour_ending_and_exact_prices() -> None:
    path = sample("dam_spp_np4-190-cd")
    raw = rows_of(path)
    table = normalize_payload("lmp_dam", path.name, path.read_bytes()).to_pylist()
    assert len(table) == len(raw) == 40
    for src, row in zip(raw, table, strict=True):
        he = int(src["HourEnding"].split(":")[0])
        # 09/29/2026 is CDT (UTC-5): hour ending HE starts at local HE-1
        assert row["interval_start"] == datetime(2026, 9, 29, 4 + he, tzinfo=UTC)
        assert row["interval_end"] - row["interval_start"] == timedelta(hours=1)
        assert row["lmp"] == float(src["SettlementPointPrice"])  # leading space, exact value
        assert row["location"] == src["SettlementPoint"]
        assert (row["iso"], row["market"]) == ("ERCOT", "DAM")
        assert row["energy"] is None and row["congestion"] is None and row["loss"] is None


def test_dam_sample_hubs_and_load_zones_get_the_types_real_time_files_give_them() -> None:
    """NP4-190-CD has no type column: hubs and load zones are typed by name, as NP6-905-CD types them."""
    dam = normalize_payload("lmp_dam", sample("dam_spp_np4-190-cd").name,
                            sample("dam_spp_np4-190-cd").read_bytes()).to_pylist()
    rt_path = sample("rt_spp_15min_np6-905-cd")
    published = {r["SettlementPointName"]: r["SettlementPointType"] for r in rows_of(rt_path)
                 if not r["SettlementPointType"].endswith("EW")}
    typed = {r["location"]: r["location_type"] for r in dam if r["location_type"] is not None}
    assert {"HB_NORTH", "HB_BUSAVG", "HB_HUBAVG", "LZ_HOUSTON"} <= set(typed)
    assert typed == {name: published[name] for name in typed}  # every typed name, the real-time file's type
    nodes = {r["location"] for r in dam if r["location_type"] is None}
    assert nodes and not any(n.startswith(("HB_", "LZ_")) for n in nodes)


def test_rt15_sample_keeps_lz_and_lzew_apart() -> None:
    path = sample("rt_spp_15min_np6-905-cd")
    raw = rows_of(path)
    table = normalize_payload("lmp_rt15m", path.name, path.read_bytes()).to_pylist()
    assert len(table) == len(raw) == 28
    keys = {(r["location"], r["interval_start"]) for r in table}
    assert len(keys) == len(table), "LZ and LZEW must not collide"
    for src, row in zip(raw, table, strict=True):
        # DeliveryHour 12 interval 1 on a CDT day = 11:00 local = 16:00 UTC
        assert row["interval_start"] == datetime(2026, 9, 29, 16, tzinfo=UTC)
        assert row["interval_end"] == datetime(2026, 9, 29, 16, 15, tzinfo=UTC)
        assert row["lmp"] == float(src["SettlementPointPrice"])
        assert row["location_type"] == src["SettlementPointType"]
        expected = src["SettlementPointName"] + ("_EW" if src["SettlementPointType"].endswith("EW") else "")
        assert row["location"] == expected
    lz = {r["location"]: r["lmp"] for r in table if r["location_type"] == "LZ"}
    ew = {r["location"].removesuffix("_EW"): r["lmp"] for r in table if r["location_type"] == "LZEW"}
    assert set(lz) == set(ew) and len(lz) >= 4


def test_sample_inside_mis_zip_with_constructed_name() -> None:
    path = sample("dam_spp_np4-190-cd")
    member = "cdr.00012331.0000000000000000.20260928.123229.DAMSPNP4190.csv"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, path.read_bytes())
    table = normalize_payload("lmp_dam", member + ".zip", buf.getvalue())
    assert table.num_rows == 40
    assert set(table.column("source").to_pylist()) == {member}
    # posting time comes from the constructed name (local Central time)
    assert set(table.column("published_at").to_pylist()) == {datetime(2026, 9, 28, 17, 32, 29, tzinfo=UTC)}


def test_published_at_from_name_repeated_hour() -> None:
    first = published_at_from_name("cdr.00012301.0000000000000000.20241103.011702.SPPHLZNP6905_20241103_0115.csv")
    second = published_at_from_name(
        "cdr.00012301.0000000000000000.20241103.011702.SPPHLZNP6905_20241103_0115xhr.csv"
    )
    assert second - first == timedelta(hours=1)


@pytest.mark.parametrize(
    ("mutate", "line", "field"),
    [
        (lambda lines: lines.__setitem__(4, lines[4].replace(" 24.46", " 2x.46")), 5, "SettlementPointPrice"),
        (lambda lines: lines.__setitem__(7, lines[7].replace("01:00", "01:30", 1)), 8, "HourEnding"),
        (lambda lines: lines.__setitem__(3, lines[3].replace("09/29/2026", "2026-09-29")), 4, "DeliveryDate"),
        (lambda lines: lines.__setitem__(9, lines[9][:-1] + "Q"), 10, "DSTFlag"),
    ],
)
def test_bad_input_names_file_line_field(mutate, line: int, field: str) -> None:
    path = sample("dam_spp_np4-190-cd")
    lines = path.read_text().splitlines()
    mutate(lines)
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", "bad.csv", ("\n".join(lines) + "\n").encode())
    assert (err.value.file, err.value.line, err.value.field) == ("bad.csv", line, field)
    assert f"bad.csv, line {line}, field '{field}'" in str(err.value)


def test_unknown_header_is_rejected() -> None:
    with pytest.raises(NormalizeError, match="missing column"):
        normalize_payload("lmp_dam", "x.csv", b"Foo,Bar\n1,2\n")


def test_crlf_line_endings_accepted() -> None:
    path = sample("rt_spp_15min_np6-905-cd")
    crlf = path.read_bytes().replace(b"\n", b"\r\n")
    assert normalize_payload("lmp_rt15m", path.name, crlf) == normalize_payload(
        "lmp_rt15m", path.name, path.read_bytes()
    )
