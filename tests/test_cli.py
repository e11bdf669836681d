"""The ``pmp`` command line: normalize real files and raw zips, download + catalog against real services."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import samples_dir

from pmp.cli import main
from pmp.schema import LMP
from pmp.simulator import ercot

SAMPLES = samples_dir("ercot")


def test_normalize_real_files_to_standard_parquet(tmp_path: Path, capsys) -> None:
    files = [str(next(SAMPLES.glob("rt_spp_15min_np6-905-cd*")))]
    out = tmp_path / "rt.parquet"
    assert main(["normalize", "--iso", "ercot", "--dataset", "lmp_rt15m", *files, "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.schema.equals(LMP.arrow, check_metadata=False)
    assert table.num_rows == 28
    assert set(table.column("interval_start").to_pylist()) == {datetime(2026, 9, 29, 16, tzinfo=UTC)}
    assert "28 rows" in capsys.readouterr().out


def test_normalize_raw_mis_zips_of_a_fall_back_day(tmp_path: Path) -> None:
    report = ercot.REPORTS[12331]
    doc = ercot.Doc(report, ercot.day_bounds(date(2024, 11, 3))[0])
    raw = tmp_path / (doc.constructed + ".zip")
    raw.write_bytes(doc.zip_bytes())
    out = tmp_path / "dam.parquet"
    assert main(["normalize", "--iso", "ercot", "--dataset", "lmp_dam", str(raw), "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    per_loc = {}
    for r in rows:
        per_loc.setdefault(r["location"], set()).add(r["interval_start"])
    assert {len(v) for v in per_loc.values()} == {25}
    assert {r["source"] for r in rows} == {doc.constructed}
    assert {r["published_at"] for r in rows} == {doc.posted.replace(microsecond=0)}


def test_normalize_bad_file_exits_nonzero_naming_file_line_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
                   "09/29/2026,01:00,HB_NORTH, 28.4,N\n09/29/2026,01:00,HB_WEST, abc,N\n")
    out = subprocess.run([sys.executable, "-m", "pmp.cli", "normalize", "--iso", "ercot", "--dataset", "lmp_dam",
                          str(bad), "--out", str(tmp_path / "x.parquet")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "bad.csv, line 3, field 'SettlementPointPrice': not a number: 'abc'" in out.stderr
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.integration
def test_download_then_catalog(private_warehouse, staging, use_simulator, capsys) -> None:
    use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    assert main(["download", "--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-02",
                 "--end", "2024-11-05", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["catalog", "--iso", "ercot", "--days"]) == 0
    text = capsys.readouterr().out
    dam = next(line for line in text.splitlines() if line.startswith("ercot  lmp_dam"))
    assert dam.split()[-1] == "0"  # no missing intervals
    for day, hours in [("2024-11-02", 24), ("2024-11-03", 25), ("2024-11-04", 24)]:
        line = next(line for line in text.splitlines() if day in line and "intervals" in line)
        assert f"{hours} h" in line and f"{hours}/{hours}x60min intervals" in line and line.endswith("complete")
    assert not [line for line in text.splitlines() if line.strip().startswith("2024-11-05")]  # --end is exclusive
    assert main(["download", "--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-02",
                 "--end", "2024-11-02", "--quiet"]) == 2  # an empty range is an error, not a no-op
    from pmp import catalog, db

    with db.connect() as conn:
        row = next(r for r in catalog.catalog(conn, "ercot") if r.dataset == "lmp_dam")
    assert row.rows == row.entities * (24 + 25 + 24) and row.missing_intervals == 0
    assert json.dumps(row.first_interval.isoformat()) == json.dumps("2024-11-02T05:00:00+00:00")
    # one market day only
    assert main(["catalog", "--iso", "ercot", "--days", "--start", "2024-11-03", "--end", "2024-11-04"]) == 0
    days = [line.split()[0] for line in capsys.readouterr().out.splitlines() if " h " in line]
    assert days and set(days) == {"2024-11-03"}


def test_day_status_tells_unfinished_days_from_incomplete_ones() -> None:
    from pmp.checks import DayCheck

    assert DayCheck("2024-11-03", 25, 10).status == "complete"
    assert DayCheck("2024-11-03", 25, 10, problems=["3/100 15min intervals"]).status == \
        "INCOMPLETE: 3/100 15min intervals"
    assert DayCheck("2024-11-03", 25, 10, problems=["3/100 15min intervals"], in_progress=True).status == "in progress"
    assert DayCheck("2024-11-03", 25, 0).status == "INCOMPLETE: no rows"


def test_simulate_command_serves_and_stops(tmp_path) -> None:
    """``pmp simulate --host --port --now --fault`` (the demo's invocation) serves the ISOs."""
    import socket
    import time

    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmp.cli", "simulate", "--host", "127.0.0.1", "--port", str(port),
         "--now", "2024-11-05T12:00:00-06:00", "--fault", "rate_limit=2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # up to a minute to start on a busy machine
            try:
                faults = requests.get(f"{url}/__sim/faults", timeout=1).json()
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            raise AssertionError(proc.stdout.read() if proc.poll() is not None else "simulator did not answer")
        assert faults["rate_limit"] == 2
        listing = requests.get(f"{url}/ercot/www/misapp/servlets/IceDocListJsonWS", params={"reportTypeId": 12331},
                               timeout=10).json()
        docs = listing["ListDocsByRptTypeRes"]["DocumentList"]
        assert docs and docs[0]["Document"]["PublishDate"] <= "2024-11-05T12:00:00-06:00"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_normalize_an_annual_hub_and_zone_file(tmp_path: Path) -> None:
    """``pmp normalize`` on NP4-180-ER as downloaded from MIS (a zip of one xlsx, no month in its
    name): every sheet, the hubs and load zones, posting time from the ``rpt.`` name."""
    report = ercot.ANNUAL[13060]
    doc = next(d for d in ercot.annual_docs(report, datetime(2019, 2, 20, 18, tzinfo=UTC)) if d.year == 2019)
    raw = tmp_path / doc.constructed
    raw.write_bytes(doc.zip_bytes())
    out = tmp_path / "annual.parquet"
    assert main(["normalize", "--iso", "ercot", "--dataset", "lmp_dam", str(raw), "--out", str(out)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == (31 + 17) * 24 * 15  # January 1 to February 17 (posted Monday 2019-02-18)
    assert {r["location"] for r in rows} == set(ercot.ANNUAL_DAM_POINTS)
    assert {r["published_at"] for r in rows} == {doc.posted.replace(microsecond=0)}
    for r in rows[:: len(rows) // 50]:
        assert r["lmp"] == ercot.price("DAM", r["location"], r["interval_start"])
