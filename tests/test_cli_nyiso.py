"""``pmp normalize --iso nyiso`` on files named as NYISO names them (not raw-stage names, which carry
their version time): ``--published-at`` supplies the publication time a bare file lacks. isolf needs it
for its vintage; a partial ``realtime`` file served by the simulator loses its RTC 15-minute advisory
tail with or without it."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
from helpers import samples_dir

from pmp.cli import main
from pmp.simulator import nyiso
from pmp.simulator.server import start_simulator

SAMPLES = samples_dir("nyiso")
TODAY = date(2024, 11, 5)  # EST (UTC-5)


def normalize(dataset: str, path: Path, out: Path, *extra: str) -> int:
    return main(["normalize", "--iso", "nyiso", "--dataset", dataset, str(path), "--out", str(out), *extra])


def test_bare_isolf_needs_published_at_and_gets_its_vintage_from_it(tmp_path: Path, capsys) -> None:
    bare = tmp_path / "20171122isolf.csv"  # the real sample under its NYISO name: no issue time anywhere
    bare.write_bytes(next(SAMPLES.glob("load_forecast_isolf__*")).read_bytes())
    out = tmp_path / "lf.parquet"
    assert normalize("load_forecast", bare, out) == 2
    err = capsys.readouterr().err
    assert "20171122isolf.csv, field 'forecast_issued_at'" in err and "pass --published-at" in err
    assert not out.exists()
    # a P-7list "Last Updated" of 11/22/2017 05:41:37 EST, given with its offset
    assert normalize("load_forecast", bare, out, "--published-at", "2017-11-22T05:41:37-05:00") == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 144 * 12  # 144 hourly rows x (11 zones + SYSTEM)
    assert {r["published_at"] for r in rows} == {datetime(2017, 11, 22, 10, 41, 37, tzinfo=UTC)}
    assert {r["forecast_issued_at"] for r in rows} == {datetime(2017, 11, 22, 10, 41, tzinfo=UTC)}  # the minute
    assert {r["source"] for r in rows} == {"20171122isolf.csv"}


@pytest.mark.parametrize("value", ["2017-11-22T05:41:37", "yesterday"])
def test_published_at_must_be_an_instant(tmp_path: Path, capsys, value: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        normalize("load_forecast", tmp_path / "20171122isolf.csv", tmp_path / "x.parquet", "--published-at", value)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--published-at" in err and ("no UTC offset" in err if "T" in value else "not an ISO 8601 time" in err)


@pytest.fixture(scope="module")
def sim():
    with start_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC)) as handle:
        yield handle


# Simulator clock (EST) -> minute of the last RTD interval end mod 15, i.e. how the RTC tail joins on:
# 12:35 -> RTD to 12:30 (:00, tail from 12:45, 15 minutes on: ambiguous), 12:40 -> RTD to 12:35 (:05, tail
# from 12:45, 10 minutes on), 13:00 -> RTD to 12:55 (:10, tail from 13:00, only 5 minutes on).
CLOCKS = {"17:35": 0, "17:40": 5, "18:00": 10}


@pytest.mark.parametrize("clock", sorted(CLOCKS))
def test_partial_realtime_file_loses_its_rtc_tail_without_published_at(
        sim, tmp_path: Path, caplog, clock: str) -> None:
    hour, minute = map(int, clock.split(":"))
    now = datetime(2024, 11, 5, hour, minute, tzinfo=UTC)
    sim.set_now(now)
    fam = nyiso.FAMILIES["realtime_zone"]
    r = requests.get(f"{sim.url}/nyiso/mis/public/csv/realtime/20241105realtime_zone.csv", timeout=60)
    assert r.status_code == 200
    path = tmp_path / "20241105realtime_zone.csv"
    path.write_bytes(r.content)
    # the truth, from the simulator's inputs: RTD intervals published by now, and the RTC rows after them
    rtd_ends = {stamp for posted, stamp, _, regular in nyiso.day_rows(fam.suffix, TODAY) if regular and posted <= now}
    last_rtd = max(rtd_ends)
    assert last_rtd.minute % 15 == CLOCKS[clock]
    tail_lines = nyiso._rtc_tail(fam, TODAY, last_rtd)
    tail_ends = {(datetime.strptime(x.split(",")[0].strip('"'), "%m/%d/%Y %H:%M:%S") + timedelta(hours=5))
                 .replace(tzinfo=UTC) for x in tail_lines}  # EST stamps
    assert tail_ends and min(tail_ends) > last_rtd and r.text.endswith("\r\n".join(tail_lines) + "\r\n")

    out = tmp_path / "rt.parquet"
    caplog.set_level(logging.WARNING, logger="pmp.isos.nyiso.normalize")
    assert normalize("lmp_rt5m", path, out) == 0
    rows = pq.read_table(out).to_pylist()
    ends = {row["interval_end"] for row in rows}
    # the RTD ending on a quarter hour right before a tail 15 minutes on may be its first RTC row: dropped
    ambiguous = {last_rtd} if CLOCKS[clock] == 0 else set()
    assert ends == rtd_ends - ambiguous  # every RTD interval but the ambiguous one; no RTC row
    assert all(row["interval_end"] - row["interval_start"] == timedelta(minutes=5) for row in rows)
    assert len(rows) == 15 * len(ends) and {row["market"] for row in rows} == {"RT5M"}
    dropped = len(tail_lines) + 15 * len(ambiguous)
    assert f"dropped {dropped} rows of the RTC 15-minute advisory tail" in caplog.text

    # with the file's publication time (its Last-Modified) the tail goes by time, and the last RTD stays
    published = parsedate_to_datetime(r.headers["Last-Modified"]).astimezone(UTC)
    out2 = tmp_path / "rt2.parquet"
    assert normalize("lmp_rt5m", path, out2, "--published-at", published.isoformat()) == 0
    rows2 = pq.read_table(out2).to_pylist()
    assert {row["interval_end"] for row in rows2} == rtd_ends
    assert {row["published_at"] for row in rows2} == {published}


def test_final_realtime_file_keeps_every_interval_without_published_at(tmp_path: Path) -> None:
    fam = nyiso.FAMILIES["realtime_zone"]
    path = tmp_path / "20241104realtime_zone.csv"
    path.write_text(nyiso.final_content(fam, date(2024, 11, 4)), newline="")
    out = tmp_path / "rt.parquet"
    assert normalize("lmp_rt5m", path, out) == 0
    ends = sorted({row["interval_end"] for row in pq.read_table(out).to_pylist()})
    first = datetime(2024, 11, 4, 5, 5, tzinfo=UTC)  # 00:05 EST
    assert ends == [first + timedelta(minutes=5 * i) for i in range(288)]  # 00:05 .. next day 00:00 kept
