"""The fall-back day's two copies of the repeated hour, value by value, through the real ERCOT
parsers: every flag spelling, the 25-hour-ending layout, files without a flag column, duplicate
rows, and NP6-235-CD's transition interval in any row order.

2024-11-03 (America/Chicago): 01:00-02:00 happens twice, first in CDT (UTC-5, 06:00-07:00 UTC),
then in CST (UTC-6, 07:00-08:00 UTC). Each CSV below gives the two copies distinct prices, often
with the second copy first in the file, so a swap of the copies or a reliance on row order fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pmp.errors import NormalizeError
from pmp.isos.ercot.adapter import normalize_dataset
from pmp.isos.ercot.normalize import normalize_payload


def utc(h: int, m: int = 0, day: int = 3) -> datetime:
    return datetime(2024, 11, day, h, m, tzinfo=UTC)


def values(dataset: str, text: str, key: str = "lmp", entity: str = "location") -> dict[tuple, float]:
    rows = normalize_dataset(dataset, "x.csv", text.encode()).to_pylist()
    return {(r[entity], r["interval_start"]): r[key] for r in rows}


def test_dam_dstflag_places_each_copy() -> None:
    text = ("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
            "11/03/2024,02:00,HB_NORTH, 22.75,Y\n11/03/2024,01:00,HB_NORTH, 10.5,N\n"
            "11/03/2024,02:00,HB_NORTH, 21.25,N\n11/03/2024,03:00,HB_NORTH, 30,N\n")
    assert values("lmp_dam", text) == {
        ("HB_NORTH", utc(5)): 10.5,  # HE 01: 00:00 CDT
        ("HB_NORTH", utc(6)): 21.25,  # HE 02 N: 01:00 CDT
        ("HB_NORTH", utc(7)): 22.75,  # HE 02 Y: 01:00 CST
        ("HB_NORTH", utc(8)): 30.0,  # HE 03: 02:00 CST
    }


def test_rt15_spaced_repeated_hour_flag_places_each_copy() -> None:
    """The annual files' spelling ``Repeated Hour Flag`` (with spaced names everywhere)."""
    text = ("Delivery Date,Delivery Hour,Delivery Interval,Repeated Hour Flag,Settlement Point Name,"
            "Settlement Point Type,Settlement Point Price\n"
            "11/03/2024,2,1,Y,HB_WEST,HU,31.5\n11/03/2024,2,1,N,HB_WEST,HU,12.5\n"
            "11/03/2024,2,4,N,HB_WEST,HU,14\n11/03/2024,2,4,Y,HB_WEST,HU,33\n"
            "11/03/2024,2,4,Y,LZ_WEST,LZEW,44\n")
    assert values("lmp_rt15m", text) == {
        ("HB_WEST", utc(6)): 12.5, ("HB_WEST", utc(7)): 31.5,
        ("HB_WEST", utc(6, 45)): 14.0, ("HB_WEST", utc(7, 45)): 33.0,
        ("LZ_WEST_EW", utc(7, 45)): 44.0,
    }


def test_rt15_repeated_hour_flag_spelling() -> None:
    text = ("DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
            "SettlementPointPrice,RepeatedHourFlag\n"
            "11/03/2024,2,2,HB_PAN,HU,-5.5,Y\n11/03/2024,2,2,HB_PAN,HU,5.5,N\n")
    assert values("lmp_rt15m", text) == {("HB_PAN", utc(6, 15)): 5.5, ("HB_PAN", utc(7, 15)): -5.5}


def test_sced_repeathourflag_and_scedtimestamp_spellings() -> None:
    """Older SCED files: ``SCEDTimeStamp`` and ``RepeatHourFlag``. The run at 01:04:59 of the second
    pass (Y) prices 07:00-07:05 UTC, the first pass's (N) 06:00-06:05."""
    text = ("SCEDTimeStamp,RepeatHourFlag,SettlementPoint,LMP\n"
            "11/03/2024 01:04:59,Y,HB_WEST,41\n11/03/2024 01:04:59,N,HB_WEST,18\n"
            "11/03/2024 02:00:12,N,HB_WEST,19.5\n")
    assert values("lmp_rt5m", text) == {
        ("HB_WEST", utc(7)): 41.0, ("HB_WEST", utc(6)): 18.0, ("HB_WEST", utc(8)): 19.5,
    }


def test_as_and_forecast_flags_place_each_copy() -> None:
    text = ("DeliveryDate,HourEnding,AncillaryType,MCPC,DSTFlag\n"
            "11/03/2024,02:00,RRS,9.25,Y\n11/03/2024,02:00,RRS,1.75,N\n")
    assert values("as_dam", text, "clearing_price", "product") == {("RRS", utc(6)): 1.75, ("RRS", utc(7)): 9.25}
    forecast = ("DeliveryDate,HourEnding,Coast,SystemTotal,Model,InUseFlag,DSTFlag\n"
                "11/03/2024,02:00,200,400,A3,Y,Y\n11/03/2024,02:00,100,300,A3,Y,N\n")
    rows = normalize_dataset("load_forecast", "f.csv", forecast.encode(), utc(1)).to_pylist()
    got = {(r["area"], r["interval_start"]): r["load_mw"] for r in rows}
    assert got == {("Coast", utc(6)): 100.0, ("SYSTEM", utc(6)): 300.0,
                   ("Coast", utc(7)): 200.0, ("SYSTEM", utc(7)): 400.0}


def test_hour_ending_25_layout() -> None:
    """No flag column, hours 01..25: hour ending 03 is the second copy of the repeated hour and
    every later label moves back one; 25 hours from 05:00 UTC on, each hour its own price."""
    lines = [f"11/03/2024,{he:02d}:00,HB_NORTH,{he}" for he in range(25, 0, -1)]  # descending on purpose
    text = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n" + "\n".join(lines) + "\n"
    got = values("lmp_dam", text)
    assert got == {("HB_NORTH", utc(5) + timedelta(hours=he - 1)): float(he) for he in range(1, 26)}
    assert got[("HB_NORTH", utc(6))] == 2.0 and got[("HB_NORTH", utc(7))] == 3.0  # 01:00 CDT, 01:00 CST


def test_hour_ending_25_only_on_the_fall_back_day() -> None:
    text = "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n11/04/2024,24:00,HB_NORTH,1\n" \
           "11/04/2024,25:00,HB_NORTH,2\n"
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", "he25.csv", text.encode())
    assert (err.value.file, err.value.line, err.value.field) == ("he25.csv", 3, "HourEnding")
    assert "hour ending 25 on 2024-11-04, a 24-hour day" in str(err.value)


def test_repeated_hour_twice_without_a_flag_column_is_an_error() -> None:
    """Both copies of hour ending 02:00 without a flag: telling them apart by row order would be a
    guess, merging them loses one; the error names the second copy."""
    text = ("DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice\n"
            "11/03/2024,01:00,HB_NORTH,1\n11/03/2024,02:00,HB_NORTH,2\n11/03/2024,02:00,HB_NORTH,3\n")
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_dam", "old.csv", text.encode())
    assert (err.value.line, err.value.field) == (4, "HourEnding")
    assert "appears twice for HB_NORTH on the 25-hour day 2024-11-03" in str(err.value)
    rt = ("DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,SettlementPointPrice\n"
          "11/03/2024,2,1,HB_WEST,HU,1\n11/03/2024,2,1,HB_WEST,HU,2\n")
    with pytest.raises(NormalizeError, match=r"old.csv, line 3, field 'DeliveryHour': '2' appears twice"):
        normalize_payload("lmp_rt15m", "old.csv", rt.encode())
    other_day = text.replace("11/03/2024", "11/04/2024")  # not a 25-hour day: a plain duplicate
    with pytest.raises(NormalizeError, match=r"line 4, field 'HourEnding': duplicate row for HB_NORTH"):
        normalize_payload("lmp_dam", "old.csv", other_day.encode())


@pytest.mark.parametrize(
    ("dataset", "text", "line", "field"),
    [
        ("lmp_dam", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
         "06/01/2024,05:00,HB_NORTH,1,N\n06/01/2024,06:00,HB_NORTH,2,N\n06/01/2024,05:00,HB_NORTH,3,N\n", 4, "HourEnding"),
        # a Y flag on an hour that is not repeated lands on the same instant as its N row
        ("lmp_dam", "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag\n"
         "11/03/2024,05:00,HB_NORTH,1,N\n11/03/2024,05:00,HB_NORTH,2,Y\n", 3, "HourEnding"),
        ("as_dam", "DeliveryDate,HourEnding,AncillaryType,MCPC,DSTFlag\n"
         "06/01/2024,05:00,RRS,1,N\n06/01/2024,05:00,REGUP,1,N\n06/01/2024,05:00,RRS,2,N\n", 4, "HourEnding"),
        ("lmp_rt5m", "SCEDTimestamp,RepeatedHourFlag,SettlementPoint,LMP\n"
         "06/01/2024 10:00:11,N,HB_WEST,1\n06/01/2024 10:03:40,N,HB_WEST,2\n", 3, "SCEDTimestamp"),
        ("load_actual", "OperDay,HourEnding,COAST,TOTAL,DSTFlag\n"
         "06/01/2024,01:00,1,2,N\n06/01/2024,01:00,3,4,N\n", 3, "HourEnding"),
        ("load_actual", "DeliveryDate,TimeEnding,Demand,DSTFlag\n"
         "06/01/2024,01:00,1,N\n06/01/2024,01:15,1,N\n06/01/2024,01:00,2,N\n", 4, "TimeEnding"),
    ],
)
def test_duplicate_rows_in_one_document_are_rejected(dataset: str, text: str, line: int, field: str) -> None:
    with pytest.raises(NormalizeError) as err:
        normalize_dataset(dataset, "dup.csv", text.encode())
    assert (err.value.file, err.value.line, err.value.field) == ("dup.csv", line, field)
    assert "duplicate row" in str(err.value) and "already on line" in str(err.value)


# ------------------------------------------------------------------ NP6-235-CD (system-wide demand)
DEMAND_HEADER = "DeliveryDate,TimeEnding,Demand,DSTFlag\n"
# The fall-back day from 00:00 to 02:00 CST as ERCOT labels it: 12 intervals, value i for the
# i-th interval in time, which therefore starts at 05:00 UTC + 15 (i - 1) minutes.
FALL_BACK = ["00:15,N", "00:30,N", "00:45,N", "01:00,N", "01:15,N", "01:30,N", "01:45,N", "01:00,N",
             "01:15,Y", "01:30,Y", "01:45,Y", "02:00,Y"]


def demand(lines: list[str]) -> dict[datetime, float]:
    rows = normalize_dataset("load_actual", "SYSWIDEDEMANDNP6235.csv", (DEMAND_HEADER + "".join(
        f"11/03/2024,{x}\n" for x in lines)).encode()).to_pylist()
    assert all(r["interval_end"] - r["interval_start"] == timedelta(minutes=15) for r in rows)
    return {r["interval_start"]: r["load_mw"] for r in rows}


def labelled(indexes: list[int]) -> list[str]:
    return [f"{FALL_BACK[i].split(',')[0]},{i + 1},{FALL_BACK[i].split(',')[1]}" for i in indexes]


@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_system_demand_whole_fall_back_in_either_order(order: str) -> None:
    idx = list(range(12)) if order == "ascending" else list(range(11, -1, -1))
    assert demand(labelled(idx)) == {utc(5) + timedelta(minutes=15 * i): float(i + 1) for i in range(12)}


@pytest.mark.parametrize("hour", [range(0, 4), range(4, 8), range(8, 12)], ids=["00-01 CDT", "01-02 CDT", "01-02 CST"])
@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_system_demand_one_hour_documents_in_either_order(hour: range, order: str) -> None:
    """ERCOT posts one hour per document; the hour ending at the change holds the second 01:00 N."""
    idx = list(hour) if order == "ascending" else list(reversed(hour))
    assert demand(labelled(idx)) == {utc(5) + timedelta(minutes=15 * i): float(i + 1) for i in hour}


@pytest.mark.parametrize(
    "indexes",
    [[3], [2, 3, 4], [1, 0, 3, 7, 2]],
    ids=["a lone 01:00", "both neighbouring hours", "two copies, unsorted"],
)
def test_system_demand_ambiguous_transition_is_an_error(indexes: list[int]) -> None:
    with pytest.raises(NormalizeError, match=r"field 'TimeEnding': '01:00' with flag N on the fall-back day 2024-11-03"):
        demand(labelled(indexes))
