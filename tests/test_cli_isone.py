"""``pmp normalize --iso isone``: raw ISO-NE files as downloaded -> standard Parquet, for every dataset."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pmp import registry
from pmp.cli import main
from pmp.isos.isone.adapter import storage_name
from pmp.simulator import isone as sim
from pmp.simulator.server import Request, Simulator

NOW = datetime(2024, 11, 20, tzinfo=UTC)
FALL = date(2024, 11, 3)
PER_DAY = {"lmp_dam": 25 * 21, "lmp_rt60m": 25 * 21, "lmp_rt5m": 300 * 21, "as_rt5m": 300 * 4 * 3,
           "load_actual": 300, "load_forecast": 25,  # fuel mix: the 5-minute intervals with a snapshot
           "fuel_mix": len({int(t.timestamp()) // 300 for t in sim.fuel_snapshots(FALL)}) * len(sim.FUELS)}


def raw_files(tmp_path: Path, dataset: str) -> list[str]:
    """The day's raw documents, as the pipeline stages them (digest names) or as downloaded."""
    docs: list[tuple[str, bytes]]
    if dataset == "load_forecast":
        form = f"_nstmp_requestType=systemload&_nstmp_startDate={FALL:%m/%d/%Y}&_nstmp_endDate={FALL:%m/%d/%Y}"
        body = sim._wsclient(Request("POST", "/ws/wsclient", {}, {}, form.encode(), Simulator(now=NOW)), NOW).body
        docs = [("wsclient_systemload_20241103_seen20241103.json", body)]
    else:
        docs = sim.all_csv_documents(dataset, FALL, NOW)
        if dataset == "lmp_rt5m":  # the day's DA file first: the 5-minute files carry Location IDs only
            docs = [(f"5min-rt-final/{n}", d) for n, d in docs]
            docs.insert(0, ("WW_DALMP_ISO_20241103.csv", sim.da_csv(FALL).render(NOW)))
    paths = []
    for name, data in docs:
        path = tmp_path / storage_name(name, data)
        path.write_bytes(data)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("dataset", sorted(PER_DAY))
def test_normalize_raw_files_of_the_fall_back_day(tmp_path: Path, capsys, dataset: str) -> None:
    spec = registry.get("isone", dataset)
    out = tmp_path / "out.parquet"
    assert main(["normalize", "--iso", "isone", "--dataset", dataset, *raw_files(tmp_path, dataset),
                 "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.schema.equals(spec.schema.arrow, check_metadata=False)
    assert table.num_rows == PER_DAY[dataset]
    assert f"{PER_DAY[dataset]} rows" in capsys.readouterr().out
    sources = set(table.column("source").to_pylist())
    assert all("@" not in s for s in sources)  # the document names, not the digest storage names
    if dataset == "lmp_rt5m":
        assert "UN.CDEC    13.8AETN" in table.column("location").to_pylist()
        assert sources == {f"5min-rt-final/lmp_5min_20241103_{b}.csv" for b in sim.BLOCKS}


def test_normalize_bad_file_exits_nonzero_naming_file_line_field(tmp_path: Path, capsys) -> None:
    name, data = sim.all_csv_documents("lmp_rt60m", FALL, NOW)[0]
    lines = data.decode().split("\n")
    i = next(k for k, line in enumerate(lines) if '"02X"' in line)  # the repeated fall-back hour
    lines[i] = lines[i].replace('"02X"', '"02Y"')
    bad = tmp_path / name
    bad.write_text("\n".join(lines))
    out = tmp_path / "x.parquet"
    assert main(["normalize", "--iso", "isone", "--dataset", "lmp_rt60m", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{name}, line {i + 1}, field 'Hour Ending': hour ending '02Y' is not 01..24 or 02X" in err
    assert not out.exists()


def test_normalize_five_minute_files_without_their_location_table(tmp_path: Path, capsys, monkeypatch) -> None:
    """Core locations (hub, zones, interfaces) are known; a node id without its DA file is an error."""
    monkeypatch.setenv("PMP_STAGING_URL", (tmp_path / "empty-stage").as_uri() + "/")  # nothing staged either
    day = date(2024, 6, 1)
    name, data = sim.all_csv_documents("lmp_rt5m", day, NOW)[0]
    path = tmp_path / storage_name(f"5min-rt-final/{name}", data)
    path.write_bytes(data)
    assert main(["normalize", "--iso", "isone", "--dataset", "lmp_rt5m", str(path), "--out",
                 str(tmp_path / "x.parquet")]) == 2
    assert "field 'Location ID': location id '321' has no name" in capsys.readouterr().err
