"""PJM normalizers and Data Miner reading on the real files in tests/samples/pjm (values checked)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import samples_dir

from pmp.errors import NormalizeError
from pmp.isos.pjm.dataminer import read_page
from pmp.isos.pjm.normalize import normalize_payload
from pmp.simulator import pjm as sim

SAMPLES = samples_dir("pjm")


def sample(prefix: str) -> Path:
    return next(p for p in sorted(SAMPLES.iterdir()) if p.name.startswith(prefix))


def test_da_hrl_lmps_zones() -> None:
    path = sample("da_hrl_lmps")
    rows = normalize_payload("lmp_dam", path.name, path.read_bytes()).to_pylist()
    assert len(rows) == 552 and len({r["location"] for r in rows}) == 23
    first = rows[0]
    assert first["interval_start"] == datetime(2026, 6, 9, 4, tzinfo=UTC)  # 00:00 EDT, hour beginning
    assert first["interval_end"] - first["interval_start"] == timedelta(hours=1)
    assert (first["location"], first["location_id"], first["location_type"], first["lmp"]) == (
        "PJM-RTO", "1", "ZONE", 31.862345)
    assert first["energy"] is None and first["market"] == "DAM" and first["iso"] == "PJM"
    ovec = rows[-1]
    assert (ovec["location"], ovec["location_id"], ovec["lmp"]) == ("OVEC", "1709725933", 43.169104)
    assert ovec["interval_start"] == datetime(2026, 6, 10, 3, tzinfo=UTC)
    # the simulator's zones are the sample's, with PJM's ids
    assert {(r["location"], r["location_id"]) for r in rows} == {(n, str(i)) for i, n in sim.ZONES}


def test_rt_unverified_fivemin_not_time_ordered() -> None:
    path = sample("rt_unverified_fivemin_lmps")
    rows = normalize_payload("lmp_rt5m", path.name, path.read_bytes()).to_pylist()
    assert len(rows) == 154
    assert rows[0]["interval_start"] == datetime(2026, 6, 10, 19, 10, tzinfo=UTC)  # the first item is the last interval
    assert {r["interval_start"] for r in rows} == {datetime(2026, 6, 10, 18, 40, tzinfo=UTC) + timedelta(minutes=5 * i)
                                                   for i in range(7)}
    bge = next(r for r in rows if r["location"] == "BGE" and r["interval_start"].minute == 10)
    assert bge["lmp"] == 1070.33 and bge["interval_end"] - bge["interval_start"] == timedelta(minutes=5)


def test_gen_by_fuel_utc_and_ept_variants() -> None:
    utc = sample("gen_by_fuel__electricitymaps_electricitymaps-contrib__gen_by_fuel.json")
    rows = normalize_payload("fuel_mix", utc.name, utc.read_bytes()).to_pylist()
    assert len(rows) == 220 and {r["fuel"] for r in rows} == set(sim.FUELS)
    coal = rows[0]
    assert (coal["fuel"], coal["generation_mw"], coal["interval_start"]) == ("Coal", 16908.0,
                                                                            datetime(2025, 2, 9, tzinfo=UTC))
    # the first version of the sample carries EPT labels only: no UTC key, refused with file/item/field
    ept = sample("gen_by_fuel__electricitymaps_electricitymaps-contrib__gen_by_fuel_v1")
    with pytest.raises(NormalizeError, match=r"gen_by_fuel_v1_2025-02-09.json, line 1, field 'datetime_beginning_utc'"):
        normalize_payload("fuel_mix", ept.name, ept.read_bytes())
    assert len(read_page(ept.name, ept.read_bytes()).items) == 90


def test_load_forecast_gzip_bare_array_same_as_json() -> None:
    gz = next(p for p in SAMPLES.iterdir() if p.name.startswith("load_frcstd_7_day") and p.suffix == ".gz")
    plain = gz.with_suffix(".json")
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()
    a = normalize_payload("load_forecast", gz.name, gz.read_bytes()).to_pylist()
    b = normalize_payload("load_forecast", plain.name, plain.read_bytes()).to_pylist()
    assert [dict(r, source=None) for r in a] == [dict(r, source=None) for r in b]
    assert len(a) == 168 and {r["area"] for r in a} == {"SYSTEM"}  # RTO_COMBINED
    issued = datetime(2025, 3, 19, 9, 17, 53, tzinfo=UTC)
    assert {r["forecast_issued_at"] for r in a} == {issued} and {r["published_at"] for r in a} == {issued}
    assert (a[0]["interval_start"], a[0]["interval_end"], a[0]["load_mw"]) == (
        datetime(2025, 3, 19, 4, tzinfo=UTC), datetime(2025, 3, 19, 5, tzinfo=UTC), 76305.0)


def test_rt_hrl_lmps_csv_export_spring_forward() -> None:
    path = sample("rt_hrl_lmps")
    rows = normalize_payload("lmp_rt60m", path.name, path.read_bytes()).to_pylist()
    assert rows and all(r["market"] == "RT60M" for r in rows)
    first = rows[0]
    assert (first["location"], first["location_id"], first["interval_start"]) == (
        "EASTERN HUB", "51217", datetime(2018, 3, 11, 5, tzinfo=UTC))
    assert (first["lmp"], first["energy"], first["congestion"], first["loss"]) == (27.786668, 27.059999, 0.096249, 0.630419)
    assert {(r["location"], r["location_id"]) for r in rows} == {(n, str(i)) for i, n in sim.HUBS}
    # EPT jumps 01:00 -> 03:00; the UTC hours stay contiguous
    starts = sorted({r["interval_start"] for r in rows})
    assert starts == [starts[0] + timedelta(hours=i) for i in range(len(starts))]
    # totals are not the exact sum (energy rounded to cents): within a few thousandths
    assert max(abs(r["lmp"] - r["energy"] - r["congestion"] - r["loss"]) for r in rows) < 0.005


@pytest.mark.parametrize("prefix", ["da_marginal_value", "rt_marginal_value", "da_transconstraints"])
def test_constraint_cassettes_read_with_both_clocks(prefix: str) -> None:
    """The gridstatus cassettes (feeds this pipeline does not load) read with the shared page reader;
    the 2023-11-05 window holds the 25-hour fall-back day plus the inclusive end hour."""
    for path in sorted(SAMPLES.glob(f"{prefix}__*")):
        page = read_page(path.name, path.read_bytes())
        assert page.total_rows == len(page.items) and page.next_href is None
        if prefix == "da_marginal_value" and "2023-11-05" in path.name:
            hours = {i["datetime_beginning_utc"] for i in page.items}
            assert len(hours) == 50 and "2023-11-07T05:00:00" in hours  # 25 + 24 + the inclusive end


def test_bad_values_name_file_item_and_field() -> None:
    body = (b'{"links":[],"items":[{"datetime_beginning_utc":"2024-11-03T05:00:00","pnode_id":1,"pnode_name":"X",'
            b'"total_lmp_da":"abc"}],"totalRows":1}')
    with pytest.raises(NormalizeError, match=r"da_hrl_lmps_20241103.json, line 1, field 'total_lmp_da': not a number"):
        normalize_payload("lmp_dam", "da_hrl_lmps_20241103.json", body)
    clash = (b'{"items":[{"datetime_beginning_utc":"2024-11-03T05:00:00","datetime_beginning_ept":"2024-11-03T01:00:00",'
             b'"pnode_id":1,"pnode_name":"X","total_lmp_da":1}],"totalRows":1}')
    normalize_payload("lmp_dam", "da_hrl_lmps_a.json", clash)  # 05:00Z is 01:00 EDT
    with pytest.raises(NormalizeError, match="is not datetime_beginning_utc"):
        normalize_payload("lmp_dam", "da_hrl_lmps_a.json", clash.replace(b"T01:00", b"T02:00"))


def test_a_node_twice_across_pages_of_one_document_is_an_error() -> None:
    from pmp.isos.pjm.adapter import container

    page = (b'{"items":[{"datetime_beginning_utc":"2024-11-03T05:00:00","pnode_id":1,"pnode_name":"X",'
            b'"total_lmp_rt":1}],"totalRows":2}')
    with pytest.raises(NormalizeError, match=r"page-0002.json, line 1, field 'pnode_id': pnode 1 at 2024-11-03T05:00Z "
                                             r"again \(also .*page-0001.json item 1\)"):
        normalize_payload("lmp_rt60m", "rt_hrl_lmps_20241103.zip", container([page, page]))
    other = page.replace(b'"pnode_id":1', b'"pnode_id":2').replace(b"05:00", b"06:00")
    with pytest.raises(NormalizeError, match="'X' is pnode 2 here and pnode 1"):
        normalize_payload("lmp_rt60m", "rt_hrl_lmps_20241103.zip", container([page, other]))
