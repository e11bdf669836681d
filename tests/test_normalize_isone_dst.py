"""ISO-NE normalizers on simulator output for the 2024 DST days: every dataset, both formats, exact.

2024-03-10 has 23 hours (01:00 EST is followed by 03:00 EDT), 2024-11-03 has 25 (01:00-02:00 twice:
``02X`` in hourly files, the same ``Local Time`` twice in 5-minute and snapshot files).
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from pmp import registry
from pmp.isos.isone.adapter import ADAPTER
from pmp.isos.isone.normalize import location_table, normalize_payload
from pmp.simulator import isone as sim
from pmp.timeutil import market_day_bounds

TZ = "America/New_York"
NOW = datetime(2024, 11, 20, tzinfo=UTC)  # every document of both days is published
DAYS = [date(2024, 3, 10), date(2024, 11, 3)]
INTERVALS = {  # dataset -> (minutes, entity columns)
    "lmp_dam": (60, ("location",)), "lmp_rt60m": (60, ("location",)), "lmp_rt5m": (5, ("location",)),
    "as_rt5m": (5, ("region", "product")), "load_actual": (5, ("area",)),
}


@functools.cache
def csv_rows(dataset: str, day: date, stage: str = "final") -> list[dict]:
    locations = location_table(sim.da_csv(day).render(NOW)) if dataset == "lmp_rt5m" else None
    rows = []
    for name, data in sim.all_csv_documents(dataset, day, NOW, stage):
        rows += normalize_payload(dataset, name, data, locations=locations).to_pylist()
    return rows


@functools.cache
def ws_rows(dataset: str, day: date, stage: str = "final") -> list[dict]:
    rows = []
    for path in sim.iter_ws_paths(dataset, day, stage):
        wrapper, recs = sim.ws_payload(path, NOW)
        data = json.dumps(sim.ws_json(wrapper, recs or [])).encode()
        # through the adapter, as ``pmp normalize`` does: a prelim/final file gets its scheduled publication
        rows += ADAPTER.normalize(registry.get("isone", dataset), path.replace("/", "_") + ".json", data).to_pylist()
    return rows


def by_entity(rows: list[dict], cols: tuple[str, ...]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        out[tuple(r[c] for c in cols)].append(r)
    return out


@pytest.mark.parametrize("fmt", ["csv", "ws"])
@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("dataset", list(INTERVALS))
def test_interval_datasets_exact_on_dst_days(dataset: str, day: date, fmt: str) -> None:
    minutes, cols = INTERVALS[dataset]
    rows = (csv_rows if fmt == "csv" else ws_rows)(dataset, day)
    start, end = market_day_bounds(day, TZ)
    step = timedelta(minutes=minutes)
    expected = [start + i * step for i in range(int((end - start) / step))]
    assert len(expected) == {23: 23, 25: 25}.get(int((end - start) / timedelta(hours=1))) * 60 // minutes
    groups = by_entity(rows, cols)
    assert groups
    for key, group in groups.items():
        assert sorted(r["interval_start"] for r in group) == expected, key
        assert all(r["interval_end"] - r["interval_start"] == step for r in group)
    if dataset.startswith("lmp"):
        assert {k[0] for k in groups} >= {".H.INTERNAL_HUB", ".Z.NEMASSBOST", ".I.ROSETON 345 1", "UN.CDEC    13.8AETN"}
        types = {r["location"]: r["location_type"] for r in rows}
        assert types[".H.INTERNAL_HUB"] == "HUB" and types[".Z.MAINE"] == "LOAD ZONE"
        assert types[".I.HQ_P1_P2345 5"] == "EXT. NODE" and types["UN.FRNKLNSQ13.810CC"] == "NETWORK NODE"
        assert all(abs(r["energy"] + r["congestion"] + r["loss"] - r["lmp"]) < 0.011 for r in rows)
    if dataset == "as_rt5m":
        assert {k[1] for k in groups} == {"TMSR", "TMNSR", "TMOR"}
        assert {k[0] for k in groups} == {"ROS", "SWCT", "CT", "NEMABSTN"}
        ros = [r for r in rows if r["region"] == "ROS"]
        assert all(r["requirement"] is not None for r in ros)
        assert all(r["requirement"] is None for r in rows if r["region"] != "ROS" and r["product"] != "TMOR")
    if dataset == "load_actual":
        assert {(r["kind"], r["model"]) for r in rows} == {("actual", "")}
        assert all(r["forecast_issued_at"] == r["interval_end"] for r in rows)


@pytest.mark.parametrize("day", DAYS, ids=str)
@pytest.mark.parametrize("dataset", [*INTERVALS, "fuel_mix"])
def test_both_routes_give_the_same_rows(dataset: str, day: date) -> None:
    """ISO Express CSVs and Web Services JSON are two views of the same publication."""
    def key(r: dict) -> tuple:
        return tuple(v for k, v in sorted(r.items()) if k not in ("published_at", "source"))

    a, b = sorted(map(key, csv_rows(dataset, day))), sorted(map(key, ws_rows(dataset, day)))
    assert a == b and a


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_fall_back_repeat_and_spring_gap_in_the_hourly_labels(day: date) -> None:
    rows = [r for r in csv_rows("lmp_dam", day) if r["location"] == ".H.INTERNAL_HUB"]
    text = sim.da_csv(day).render(NOW).decode()
    labels = [line.split(",")[2].strip('"') for line in text.splitlines() if ".H.INTERNAL_HUB" in line]
    if day.month == 11:
        assert labels[:4] == ["01", "02", "02X", "03"] and len(labels) == 25
        starts = sorted(r["interval_start"] for r in rows)
        assert starts[1:3] == [datetime(2024, 11, 3, 5, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC)]
    else:
        assert labels[:3] == ["01", "03", "04"] and len(labels) == 23


def floor5(t: datetime) -> datetime:
    return datetime.fromtimestamp(int(t.timestamp()) // 300 * 300, UTC)


@pytest.mark.parametrize("fmt", ["csv", "ws"])
@pytest.mark.parametrize("day", DAYS, ids=str)
def test_fuel_mix_snapshots_become_five_minute_intervals(day: date, fmt: str) -> None:
    rows = (csv_rows if fmt == "csv" else ws_rows)("fuel_mix", day)
    start, end = market_day_bounds(day, TZ)
    snapshots = sim.fuel_snapshots(day)
    last_in: dict[datetime, datetime] = {}
    for t in snapshots:  # irregular instants; the last one in a 5-minute interval is its value
        last_in[floor5(t)] = t
    groups = by_entity(rows, ("fuel",))
    assert set(k[0] for k in groups) == {f for f, _ in sim.FUELS}
    for (fuel,), group in groups.items():
        group.sort(key=lambda r: r["interval_start"])
        assert [r["interval_start"] for r in group] == sorted(last_in), fuel
        assert all(r["interval_end"] - r["interval_start"] == timedelta(minutes=5) for r in group)
        assert [r["generation_mw"] for r in group] == [sim.fuel_mw(fuel, last_in[r["interval_start"]]) for r in group]
        assert start <= group[0]["interval_start"] and group[-1]["interval_end"] <= end
    if day.month == 11:  # both passes through 01:xx are there: EDT (05:xx UTC) and EST (06:xx UTC)
        hours = {r["interval_start"].hour for r in rows if r["interval_start"].date() == day}
        assert {5, 6} <= hours


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_forecast_vintages_on_dst_days(day: date) -> None:
    start, end = market_day_bounds(day, TZ)
    hours = [start + timedelta(hours=i) for i in range(int((end - start) / timedelta(hours=1)))]
    rows = ws_rows("load_forecast", day)
    vintages = by_entity(rows, ("forecast_issued_at",))
    issued_today = [v for (v,) in vintages if start <= v < end]
    assert len(issued_today) == 3
    for (issued,), group in vintages.items():
        starts = sorted(r["interval_start"] for r in group)
        assert starts == hours[len(hours) - len(starts):], issued  # each vintage runs to the end of the day
        assert all(r["interval_end"] - r["interval_start"] == timedelta(hours=1) for r in group)
        assert all(r["published_at"] == issued and r["kind"] == "forecast" and r["area"] == "SYSTEM" for r in group)
        assert all(r["interval_start"] >= issued for r in group)  # a forecast is issued before its hour
    # the ISO Express page answers one vintage per hour: the newest issued before that hour
    page = csv_forecast(day)
    assert sorted(r["interval_start"] for r in page) == hours
    ws_keys = {(r["interval_start"], r["forecast_issued_at"], r["load_mw"]) for r in rows}
    assert {(r["interval_start"], r["forecast_issued_at"], r["load_mw"]) for r in page} <= ws_keys
    assert set(issued_today) <= {r["forecast_issued_at"] for r in page}


def csv_forecast(day: date) -> list[dict]:
    from pmp.simulator.server import Request, Simulator

    form = f"_nstmp_requestType=systemload&_nstmp_startDate={day:%m/%d/%Y}&_nstmp_endDate={day:%m/%d/%Y}"
    req = Request("POST", "/ws/wsclient", {}, {}, form.encode(), Simulator(now=NOW))
    data = sim._wsclient(req, NOW).body
    return normalize_payload("load_forecast", "wsclient_systemload.json", data).to_pylist()


def test_prelim_and_final_differ_and_both_normalize() -> None:
    day = DAYS[1]
    locations = location_table(sim.da_csv(day).render(NOW))
    for make in (lambda stage: sim.rt_hourly_csv(day, stage), lambda stage: sim.five_min_csv(day, "00-04", stage)):
        stages = {}
        for stage in ("prelim", "final"):
            doc = make(stage)
            rows = normalize_payload("lmp_rt5m" if "5min" in doc.filename else "lmp_rt60m", doc.filename,
                                     doc.render(NOW), locations=locations).to_pylist()
            stages[stage] = {(r["location"], r["interval_start"]): r["lmp"] for r in rows}
        assert stages["prelim"].keys() == stages["final"].keys()
        changed = sum(stages["prelim"][k] != stages["final"][k] for k in stages["prelim"])
        assert 0 < changed < len(stages["prelim"]) / 2
