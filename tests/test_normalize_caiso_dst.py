"""Every CAISO normalizer on simulator output for the 2024 DST days: 23- and 25-hour days exact."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from pmp.isos.caiso.normalize import normalize_payload
from pmp.simulator import caiso as sim
from pmp.timeutil import market_day_bounds

TZ = "America/Los_Angeles"
NOW = datetime(2024, 11, 20, tzinfo=UTC)  # everything about both days is published by then
SPRING, FALL = date(2024, 3, 10), date(2024, 11, 3)
HOURS = {SPRING: 23, FALL: 25}


def oasis(day: date, **query: str) -> bytes:
    start, end = market_day_bounds(day, TZ)
    q = {"resultformat": "6", "startdatetime": start.strftime("%Y%m%dT%H:%M-0000"),
         "enddatetime": end.strftime("%Y%m%dT%H:%M-0000"), **query}
    answer = sim.oasis_answer("SingleZip", q, NOW)
    assert answer.status == 200 and answer.filename and not answer.filename.endswith(".xml.zip"), answer.filename
    return answer.body


def members(payload: bytes) -> dict[str, str]:
    zf = zipfile.ZipFile(io.BytesIO(payload))
    return {n: zf.read(n).decode() for n in zf.namelist()}


def exact_series(rows: list[dict], key: tuple[str, ...], day: date, minutes: int) -> int:
    """Every entity has exactly the intervals of the local day, end = start + resolution."""
    start, end = market_day_bounds(day, TZ)
    n = int((end - start) / timedelta(minutes=minutes))
    expected = [start + i * timedelta(minutes=minutes) for i in range(n)]
    series: dict[tuple, list[datetime]] = defaultdict(list)
    for r in rows:
        assert r["interval_end"] - r["interval_start"] == timedelta(minutes=minutes)
        series[tuple(r[k] for k in key)].append(r["interval_start"])
    assert series
    for entity, starts in series.items():
        assert sorted(starts) == expected, (entity, len(starts), n)
    return len(series)


@pytest.mark.parametrize("day", [SPRING, FALL])
@pytest.mark.parametrize(("dataset", "query", "version", "market", "minutes"), [
    ("lmp_dam", "PRC_LMP", "12", "DAM", 60),
    ("lmp_rt15m", "PRC_RTPD_LMP", "3", "RTPD", 15),
    ("lmp_rt5m", "PRC_INTVL_LMP", "3", "RTM", 5),
])
def test_lmp_dst_days(day: date, dataset: str, query: str, version: str, market: str, minutes: int) -> None:
    payload = oasis(day, queryname=query, version=version, market_run_id=market, grp_type="ALL_APNODES")
    files = members(payload)
    assert len(files) == 5 and all(n.endswith(f"_{query}_{market}_{t}_v{version}.csv")
                                   for n, t in zip(sorted(files), ["LMP", "MCC", "MCE", "MCL", "MGHG"], strict=True))
    raw = [r for text in files.values() for r in csv.DictReader(io.StringIO(text))]
    hours = {int(r["OPR_HR"]) for r in raw}
    if day == FALL:
        assert 25 in hours and len(hours) == 25  # the repeated hour is OPR_HR 25
    else:
        assert 3 not in hours and len(hours) == 23  # hour ending 03 does not exist
    starts = [r["INTERVALSTARTTIME_GMT"] for r in raw]
    assert starts != sorted(starts), "OASIS rows come unsorted"
    rows = normalize_payload(dataset, "doc.zip", payload).to_pylist()
    nodes = exact_series(rows, ("location",), day, minutes)
    assert nodes == len(sim.apnodes())
    assert len(rows) * 5 == len(raw)  # five LMP_TYPE rows pivot into one
    for r in rows:
        parts = [r["energy"], r["congestion"], r["loss"], r["ghg"]]
        assert None not in parts and r["lmp"] is not None
        assert abs(r["lmp"] - sum(parts)) < 1e-6, r
    assert any(r["ghg"] for r in rows), "the GHG component is kept"
    assert {r["market"] for r in rows} == {dataset.removeprefix("lmp_").upper()}


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_as_dam_per_product_dst_days(day: date) -> None:
    rows = []
    for product in ("NR", "RD", "RMD", "RMU", "RU", "SR"):
        payload = oasis(day, queryname="PRC_AS", version="12", market_run_id="DAM", anc_type=product, anc_region="ALL")
        rows += normalize_payload("as_dam", f"{product}.zip", payload).to_pylist()
    assert exact_series(rows, ("region", "product"), day, 60) == 36
    assert {r["market"] for r in rows} == {"DAM"}
    assert any(r["clearing_price"] > 0 for r in rows if r["region"] == "AS_CAISO_EXP")


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_as_rt15m_dst_days(day: date) -> None:
    payload = oasis(day, queryname="PRC_INTVL_AS", version="1", market_run_id="RTM", anc_type="ALL", anc_region="ALL")
    header = next(iter(members(payload).values())).splitlines()[0]
    assert header.split(",")[4:9] == ["OPR_TYPE", "ANC_TYPE", "XML_DATA_ITEM", "MARKET_RUN_ID", "MW"]  # RT order
    rows = normalize_payload("as_rt15m", "doc.zip", payload).to_pylist()
    assert exact_series(rows, ("region", "product"), day, 15) == 36
    assert {r["market"] for r in rows} == {"RT15M"}


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_load_actual_hourly_by_tac_and_5_minute_outlook(day: date) -> None:
    hourly = normalize_payload("load_actual", "doc.zip", oasis(day, queryname="SLD_FCST", version="1",
                                                                  market_run_id="ACTUAL")).to_pylist()
    assert exact_series(hourly, ("area",), day, 60) == len(sim.TAC_AREAS)
    assert "SYSTEM" in {r["area"] for r in hourly} and "CA ISO-TAC" not in {r["area"] for r in hourly}
    assert all(r["forecast_issued_at"] == r["interval_end"] and r["model"] == "" and r["kind"] == "actual"
               for r in hourly)
    demand = sim.outlook_file("demand", day, NOW, trailing_midnight=True)
    five = normalize_payload("load_actual", f"outlook_demand_{day:%Y%m%d}.csv", demand).to_pylist()
    assert exact_series(five, ("area",), day, 5) == 1
    assert {r["area"] for r in five} == {"SYSTEM"}


def test_spring_forward_gap_rows_with_forecasts_only_are_dropped() -> None:
    """A gap-hour row (02:00..02:55 on 2024-03-10) whose forecast columns are filled but whose
    ``Current demand`` is empty stores nothing, so it must not fail the day; a measured value in
    that hour still does (it cannot be placed on the timeline)."""
    from pmp.errors import NormalizeError

    name = f"outlook_demand_{SPRING:%Y%m%d}.csv"
    plain = sim.outlook_file("demand", SPRING, NOW, trailing_midnight=True).decode()
    lines = plain.split("\r\n")
    gap = [i for i, line in enumerate(lines) if line.startswith("02:")]
    assert len(gap) == 12 and all(lines[i].endswith(",,,") for i in gap)  # the simulator's empty gap hour
    with_forecasts = list(lines)
    for i in gap:
        with_forecasts[i] = lines[i][:5] + ",25000,25100,"  # Day ahead, Hour ahead filled; no Current demand
    expected = normalize_payload("load_actual", name, plain.encode()).to_pylist()
    rows = normalize_payload("load_actual", name, "\r\n".join(with_forecasts).encode()).to_pylist()
    assert rows == expected and len(rows) == 23 * 12
    measured = list(with_forecasts)
    measured[gap[6]] = lines[gap[6]][:5] + ",25000,25100,24900"  # 02:30 with a measured value
    with pytest.raises(NormalizeError) as err:
        normalize_payload("load_actual", name, "\r\n".join(measured).encode())
    assert f"line {gap[6] + 1}" in str(err.value) and "'Time'" in str(err.value) and "02:30" in str(err.value)


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_fuel_mix_dst_days(day: date) -> None:
    payload = sim.outlook_file("fuelsource", day, NOW, trailing_midnight=True)
    labels = [line.split(",")[0] for line in payload.decode("utf-8-sig").splitlines()[1:]]
    if day == FALL:
        assert labels.count("01:30") == 2 and len(labels) == 300 + 1  # 25 hours + next day's midnight
    else:
        assert "02:30" in labels and len(labels) == 288 + 1  # the gap hour is listed, empty
    rows = normalize_payload("fuel_mix", f"outlook_fuelsource_{day:%Y%m%d}.csv", payload).to_pylist()
    assert exact_series(rows, ("fuel",), day, 5) == 13
    assert "Natural Gas" in {r["fuel"] for r in rows}


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_load_forecast_vintages_dst_days(day: date) -> None:
    """Day-ahead vintages for the DST day as target; RTPD/RTD vintages issued during the DST day."""
    hours = HOURS[day]
    for model, run_id in (("7DA", "7DA"), ("2DA", "2DA"), ("DAM", "DAM")):
        rows = normalize_payload("load_forecast", "doc.zip", oasis(day, queryname="SLD_FCST", version="1",
                                                                   market_run_id=run_id)).to_pylist()
        assert exact_series(rows, ("area",), day, 60) == len(sim.TAC_AREAS)
        issued = {r["forecast_issued_at"] for r in rows}
        ahead = {"7DA": 7, "2DA": 2, "DAM": 1}[model]
        issue_day = day - timedelta(days=ahead)
        assert issued == {market_day_bounds(issue_day, TZ)[0] + timedelta(hours=9, minutes=10)}, model
        assert {r["model"] for r in rows} == {model}
    start, end = market_day_bounds(day, TZ)
    for execution, lead, minutes in (("RTD", 2.5, 5), ("RTPD", 22.5, 15)):
        # intervals whose forecast was issued inside the day (issue = start - lead)
        w0 = start + timedelta(minutes=minutes * -(-lead // minutes))
        w1 = end + timedelta(minutes=minutes * -(-lead // minutes))
        q = {"resultformat": "6", "queryname": "SLD_FCST", "version": "1", "market_run_id": "RTM",
             "execution_type": execution, "startdatetime": w0.strftime("%Y%m%dT%H:%M-0000"),
             "enddatetime": w1.strftime("%Y%m%dT%H:%M-0000")}
        rows = normalize_payload("load_forecast", "doc.zip", sim.oasis_answer("SingleZip", q, NOW).body).to_pylist()
        issued = Counter(r["forecast_issued_at"] for r in rows)
        assert len(issued) == hours * 60 // minutes, execution
        assert set(issued.values()) == {len(sim.TAC_AREAS)}
        assert all(start <= t < end for t in issued)
        assert all(r["forecast_issued_at"] == r["interval_start"] - timedelta(minutes=lead) for r in rows)
        assert {r["model"] for r in rows} == {f"RTM_{execution}"}
