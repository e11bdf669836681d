"""``pmp normalize --iso caiso`` on raw payloads exactly as the adapter downloads them (OASIS zips,
Outlook CSVs) for the 25-hour 2024-11-03 (both DST days: test_normalize_caiso_dst), and on OASIS
error answers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pmp import registry
from pmp.cli import main
from pmp.isos.caiso.adapter import ADAPTER
from pmp.isos.caiso.hook import CaisoHook
from pmp.schema import TABLES
from pmp.simulator import caiso as sim
from pmp.timeutil import market_day_bounds

TZ = "America/Los_Angeles"
FALL = date(2024, 11, 3)
# rows per entity on the 25-hour day, and entities
EXPECTED = {
    "lmp_dam": (25, len(sim.apnodes())),
    "lmp_rt15m": (100, len(sim.apnodes())),
    "lmp_rt5m": (300, len(sim.apnodes())),
    "as_dam": (25, 36),
    "as_rt15m": (100, 36),
    "fuel_mix": (300, 13),
}


@pytest.fixture(scope="module")
def raw_days(tmp_path_factory) -> dict[tuple[str, date], list[Path]]:
    """Every dataset's raw documents for both DST days, fetched over HTTP from the simulator."""
    import json
    import os

    from conftest import sim_conn

    from pmp.simulator.server import start_simulator

    os.environ["PMP_SIM_CAISO_MIN_INTERVAL"] = "0"
    out: dict[tuple[str, date], list[Path]] = {}
    saved = os.environ.get("AIRFLOW_CONN_CAISO_DEFAULT")
    with start_simulator(now=datetime(2024, 11, 20, 18, tzinfo=UTC)) as handle:
        conn = sim_conn("caiso_default", handle.url, www_min_request_interval_seconds=0)
        os.environ["AIRFLOW_CONN_CAISO_DEFAULT"] = json.dumps(conn)
        try:
            hook = CaisoHook()
            for spec in registry.datasets("caiso"):
                for day in (FALL,):
                    folder = tmp_path_factory.mktemp(f"{spec.dataset}-{day:%m%d}")
                    start, end = market_day_bounds(day, TZ)
                    refs = ADAPTER.discover(spec, start, end, hook=hook)
                    files = []
                    for doc in ADAPTER.fetch(spec, refs, hook=hook):
                        path = folder / doc.name
                        path.write_bytes(doc.payload)
                        files.append(path)
                    assert len(files) == len(refs)
                    out[(spec.dataset, day)] = files
        finally:
            os.environ.pop("PMP_SIM_CAISO_MIN_INTERVAL", None)
            if saved is None:
                os.environ.pop("AIRFLOW_CONN_CAISO_DEFAULT", None)
            else:
                os.environ["AIRFLOW_CONN_CAISO_DEFAULT"] = saved
    return out


@pytest.mark.parametrize("day", [FALL])
@pytest.mark.parametrize("dataset", [s.dataset for s in registry.datasets("caiso")])
def test_normalize_raw_payloads_of_a_dst_day(raw_days, tmp_path: Path, capsys, dataset: str, day: date) -> None:
    files = raw_days[(dataset, day)]
    out = tmp_path / "out.parquet"
    assert main(["normalize", "--iso", "caiso", "--dataset", dataset, *map(str, files), "--out", str(out)]) == 0
    table = pq.read_table(out)
    spec = registry.get("caiso", dataset)
    assert table.schema.equals(TABLES[spec.table].arrow, check_metadata=False)
    assert f"{table.num_rows} rows" in capsys.readouterr().out
    rows = table.to_pylist()
    if dataset in EXPECTED:
        per_entity, entities = EXPECTED[dataset]
        key = {"lmp": ("location",), "ancillary_services": ("region", "product"), "fuel_mix": ("fuel",)}[spec.table]
        counts = Counter(tuple(r[k] for k in key) for r in rows)
        assert len(counts) == entities and set(counts.values()) == {per_entity}
    elif dataset == "load_actual":
        res = Counter((r["interval_end"] - r["interval_start"]).seconds // 60 for r in rows)
        assert res == {60: 25 * len(sim.TAC_AREAS), 5: 300}
    else:
        models = Counter(r["model"] for r in rows)
        areas = len(sim.TAC_AREAS)
        # issued on the DST day: RTD every 5 minutes and RTPD every 15 minutes of the 25 hours
        assert models["RTM_RTD"] == 300 * areas and models["RTM_RTPD"] == 100 * areas
        assert {models[m] for m in ("DAM", "2DA", "7DA")} == {24 * areas}  # targets: normal days
    sources = {r["source"] for r in rows}
    assert sources == {f.name[:-len(".0123456789ab.zip")] + ".zip" if f.suffix == ".zip"
                       else f.name[:-len(".0123456789ab.csv")] + ".csv" for f in files}


def test_normalize_oasis_error_answers(tmp_path: Path, capsys) -> None:
    now = datetime(2024, 11, 20, 18, tzinfo=UTC)
    no_data = tmp_path / "no_data.zip"
    no_data.write_bytes(sim.error_answer(1000, "20241201_20241201_PRC_LMP_DAM_x_v12", now).body)
    out = tmp_path / "empty.parquet"
    assert main(["normalize", "--iso", "caiso", "--dataset", "lmp_dam", str(no_data), "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 0  # "no data" is an empty result
    window = tmp_path / "window.zip"
    window.write_bytes(sim.error_answer(1004, "20240101_20240301_PRC_LMP_DAM_x_v12", now).body)
    capsys.readouterr()
    assert main(["normalize", "--iso", "caiso", "--dataset", "lmp_dam", str(window), "--out",
                 str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "window.zip!20240101_20240301_PRC_LMP_DAM_x_v12.xml, field 'ERR_CODE': OASIS error 1004" in err
    assert not (tmp_path / "x.parquet").exists()


def test_normalize_bad_outlook_file_names_file_line_field(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "outlook_fuelsource_20240310.csv"
    bad.write_text("Time,Solar,Wind\r\n00:00,1,2\r\n00:05,1,2\r\n02:05,3,4\r\n")  # 02:05 did not exist that day
    assert main(["normalize", "--iso", "caiso", "--dataset", "fuel_mix", str(bad), "--out",
                 str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "outlook_fuelsource_20240310.csv, line 4, field 'Time': 02:05 does not exist on 2024-03-10" in err
    assert not (tmp_path / "x.parquet").exists()


def test_outlook_file_without_a_date_is_refused(tmp_path: Path, capsys) -> None:
    undated = tmp_path / "fuelsource.csv"
    undated.write_text("Time,Solar\r\n00:00,1\r\n")
    assert main(["normalize", "--iso", "caiso", "--dataset", "fuel_mix", str(undated), "--out",
                 str(tmp_path / "y.parquet")]) == 2
    assert "the date comes from the URL" in capsys.readouterr().err
