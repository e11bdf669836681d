"""Issue 12.4: the ``dataset_freshness`` view (sql/010) and ``pmp status``, against real TimescaleDB
with documents loaded through the pipeline from the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from pmp import registry
from pmp.cli import main


@pytest.mark.integration
def test_dataset_freshness_view_and_pmp_status(private_warehouse, staging, use_simulator, capsys) -> None:
    use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    assert main(["download", "--iso", "ercot", "--dataset", "lmp_dam", "--start", "2024-11-03",
                 "--end", "2024-11-05", "--quiet"]) == 0  # the fall-back day and the day after
    capsys.readouterr()
    with psycopg.connect(private_warehouse) as conn:
        newest = conn.execute("SELECT max(interval_end) FROM lmp WHERE iso = 'ERCOT' AND market = 'DAM'").fetchone()[0]
        published, loaded, docs = conn.execute(
            "SELECT max(published_at), max(loaded_at), count(*) FROM ingest_log"
            " WHERE iso = 'ercot' AND dataset = 'lmp_dam'").fetchone()
        view = conn.execute("SELECT newest_interval_end, lag, newest_published_at, newest_loaded_at, documents,"
                            " now() FROM dataset_freshness WHERE iso = 'ercot' AND dataset = 'lmp_dam'").fetchone()
        others = conn.execute("SELECT count(*) FROM dataset_freshness WHERE dataset <> 'lmp_dam'").fetchone()[0]
    # the market day 11-04 ends at local midnight, 06:00 UTC (CST), not 05:00 (CDT, before the fall-back)
    assert newest == datetime(2024, 11, 5, 6, tzinfo=UTC)
    assert view[0] == newest and view[1] == view[5] - newest
    assert (view[2], view[3], view[4]) == (published, loaded, docs) and docs >= 2 and published is not None
    assert others == 0

    assert main(["status", "--iso", "ercot"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["iso", "dataset", "rt", "newest"]
    by_dataset = {line.split()[1]: line for line in lines[2:-1]}
    assert set(by_dataset) == {s.dataset for s in registry.datasets("ercot")}  # every dataset listed
    dam = by_dataset["lmp_dam"]
    assert "2024-11-05 06:00:00Z" in dam and dam.split()[-1] == str(docs)
    lag_days = (datetime.now(UTC) - newest) // timedelta(days=1)
    assert dam.split()[4].split("d")[0] in (str(lag_days), str(lag_days + 1))  # the lag column
    assert by_dataset["lmp_rt5m"].split()[2:] == ["*", "-", "-", "-", "-", "0"]  # never loaded, real time
    assert main(["status", "--iso", "ercott"]) == 2  # a misspelt ISO: one line, exit 2
