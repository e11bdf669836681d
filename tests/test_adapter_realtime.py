"""The adapters' real-time discovery (``discover(..., realtime=True)``) of the intraday datasets against
the simulator over HTTP: what each */5 run finds newly published in its window, on the 2024 DST days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pmp import registry
from pmp.isos.ercot.adapter import ADAPTER as ERCOT
from pmp.isos.ercot.hook import ErcotHook
from pmp.isos.isone.adapter import ADAPTER as ISONE
from pmp.isos.isone.hook import IsoneHook
from pmp.isos.nyiso.adapter import ADAPTER as NYISO
from pmp.isos.nyiso.hook import NyisoHook
from pmp.simulator import ercot as sim_ercot
from pmp.simulator import isone as sim_isone
from pmp.simulator import nyiso as sim_nyiso
from pmp.timeutil import market_day_bounds

LOOKBACK = timedelta(minutes=180)  # the real-time DAG's default discovery window


def current_ids(route: str, *stamps: str) -> list[str]:
    """The current-interval report's listed documents, named by the intervals they hold (oldest first)."""
    stem = "fiveminlmp_current_prelim" if route == "csv" else "fiveminutelmp_prelim_current_all"
    return [f"{route}:{stem}_interval{s}Z.{'csv' if route == 'csv' else 'json'}" for s in stamps]


def isone_realtime(dataset: str, now: datetime) -> tuple[list, list]:
    spec, hook = registry.get("isone", dataset), IsoneHook()
    refs = ISONE.discover(spec, now - LOOKBACK, now, hook=hook, realtime=True)
    docs = list(ISONE.fetch(spec, refs, hook=hook))
    return refs, [(d, ISONE.normalize(spec, d.name, d.payload, published_at=d.ref.published)) for d in docs]


@pytest.mark.parametrize(("source", "now", "expected", "block_intervals"), [
    # fall-back day, 04:16 EST: the five-hour block 00-04 was due at 04:15; the current interval 04:05 EST
    # (09:05 UTC) was due at 09:12:30 (its end + 2.5 min), 09:10 is due at 09:17:30; the two before stay
    # listed while not loaded
    ("csv", datetime(2024, 11, 3, 9, 16, tzinfo=UTC),
     ["csv:WW_DALMP_ISO_20241103.csv", "csv:5min-rt-prelim/lmp_5min_20241103_00-04.csv",
      *current_ids("csv", "20241103T0855", "20241103T0900", "20241103T0905")], 60),
    ("csv", datetime(2024, 11, 3, 9, 14, tzinfo=UTC),  # 04:14 EST: the block is not due yet
     ["csv:WW_DALMP_ISO_20241103.csv", *current_ids("csv", "20241103T0855", "20241103T0900", "20241103T0905")], 0),
    # 01:33 EDT: the window reaches back to 22:33 the day before, whose last block (due 00:15) is in it;
    # its earlier blocks were due before the window (the daily run's)
    ("csv", datetime(2024, 11, 3, 5, 33, tzinfo=UTC),
     ["csv:WW_DALMP_ISO_20241102.csv", "csv:5min-rt-prelim/lmp_5min_20241102_20-24.csv",
      "csv:WW_DALMP_ISO_20241103.csv", *current_ids("csv", "20241103T0515", "20241103T0520", "20241103T0525")],
     48),
    # spring-forward day, 04:20 EDT: the three-hour block 00-04 (start hours 00, 01, 03) on Web Services
    ("webservices", datetime(2024, 3, 10, 8, 20, tzinfo=UTC),
     [f"ws:fiveminutelmp_prelim_day_20240310_starthour_{h}.json" for h in ("00", "01", "03")]
     + current_ids("ws", "20240310T0800", "20240310T0805", "20240310T0810"), 36),
])
def test_isone_five_minute_lmps_in_real_time(use_simulator, source: str, now: datetime, expected: list[str],
                                             block_intervals: int) -> None:
    use_simulator(now=now, extra={"isone_default": {"source": source}})
    refs, tables = isone_realtime("lmp_rt5m", now)
    assert [r.doc_id for r in refs] == expected
    n_loc = len(sim_isone.locations())
    current = sim_isone.latest_prelim_interval(now)
    *blocks, (cur_doc, cur) = [(d, t) for d, t in tables if t.num_rows]
    assert sum(t.num_rows for _, t in blocks) == block_intervals * n_loc
    # the current interval: the newest prelim prices, with ISO-NE's names from the day's DA file
    assert set(cur.column("interval_start").to_pylist()) == {current} and cur.num_rows == n_loc
    rows = {r["location_id"]: r for r in cur.to_pylist()}
    assert rows["4000"]["location"] == ".H.INTERNAL_HUB" and rows["321"]["location"] == "UN.FRNKLNSQ13.810CC"
    assert (rows["4000"]["lmp"], rows["4000"]["energy"]) == sim_isone.lmp("RT5", 4000, current, "prelim")[:2]
    assert cur_doc.ref.published_at is not None and cur_doc.ref.published > current
    assert cur_doc.ref.doc_id == current_ids("csv" if source == "csv" else "ws", f"{current:%Y%m%dT%H%M}")[0]
    if source == "webservices":  # no time in the JSON: the block's scheduled posting (its end + 15 min)
        assert {d.ref.published for d, _ in blocks} == {datetime(2024, 3, 10, 8, 15, tzinfo=UTC)}
    for _, t in blocks:  # every block row is a prelim value of its interval
        for r in t.to_pylist()[:: max(1, t.num_rows // 40)]:
            assert r["lmp"] == sim_isone.lmp("RT5", int(r["location_id"]), r["interval_start"], "prelim")[0]


def test_isone_current_report_is_loaded_only_under_the_interval_it_holds(use_simulator) -> None:
    """One download for every listed interval; the report is loaded as the one it holds, and not at all
    when that one is not among those listed (loaded already; the others are gone or not out yet)."""
    now = datetime(2024, 11, 5, 15, 8, tzinfo=UTC)  # 15:00 UTC was due at 15:07:30
    sim = use_simulator(now=now)
    spec, hook = registry.get("isone", "lmp_rt5m"), IsoneHook()
    refs = [r for r in ISONE.discover(spec, now - LOOKBACK, now, hook=hook, realtime=True) if "current" in r.doc_id]
    assert [r.doc_id for r in refs] == current_ids("csv", "20241105T1450", "20241105T1455", "20241105T1500")
    held = sim_isone.latest_prelim_interval(now)
    assert held == datetime(2024, 11, 5, 15, 0, tzinfo=UTC)

    def downloads() -> int:
        return sum(1 for _, path in sim.requests if "/fiveminlmp/current?" in path)

    before = downloads()
    assert [d.ref.doc_id for d in ISONE.fetch(spec, refs, hook=hook)] == current_ids("csv", "20241105T1500")
    assert downloads() == before + 1
    # 15:00 loaded (the pipeline drops it), 14:50 and 14:55 never were: the report holds 15:00 only
    assert list(ISONE.fetch(spec, refs[:2], hook=hook)) == []
    assert downloads() == before + 2
    # 15:05 posted before its due (15:12:30): a run in between loads it under its own name (no run has
    # listed it yet), and one that lists it later finds it loaded
    early = sim_isone.prelim_available(held + timedelta(minutes=5)) + timedelta(seconds=1)
    assert early < held + timedelta(minutes=12, seconds=30)
    sim.set_now(early)
    listed = [r for r in ISONE.discover(spec, early - LOOKBACK, early, hook=hook, realtime=True) if "current" in r.doc_id]
    assert [r.doc_id for r in listed] == current_ids("csv", "20241105T1450", "20241105T1455", "20241105T1500")
    assert [d.ref.doc_id for d in ISONE.fetch(spec, listed[:2], hook=hook)] == current_ids("csv", "20241105T1505")


def test_isone_current_interval_in_both_passes_of_the_repeated_hour(use_simulator) -> None:
    """The current-interval report says ``11/03/2024 01:25`` twice an hour apart: its EST/EDT stamp
    places each on its own UTC interval."""
    sim = use_simulator(now=datetime(2024, 11, 3, 5, 33, tzinfo=UTC))
    seen = []
    for now in (datetime(2024, 11, 3, 5, 33, tzinfo=UTC), datetime(2024, 11, 3, 6, 33, tzinfo=UTC)):
        sim.set_now(now)
        _, tables = isone_realtime("lmp_rt5m", now)
        (doc, cur), = [(d, t) for d, t in tables if "current" in d.name]
        seen += sorted(set(cur.column("interval_start").to_pylist()))
    assert seen == [datetime(2024, 11, 3, 5, 25, tzinfo=UTC), datetime(2024, 11, 3, 6, 25, tzinfo=UTC)]


@pytest.mark.parametrize("source", ["csv", "webservices"])
def test_isone_preliminary_reserves_until_just_after_their_day(use_simulator, source: str) -> None:
    day = date(2024, 11, 3)
    close = market_day_bounds(day, "America/New_York")[1]  # 05:00 UTC on 11-04
    sim = use_simulator(now=close + timedelta(minutes=5, seconds=30), extra={"isone_default": {"source": source}})
    prelim = "csv:fiveminreserveprice_prelim" if source == "csv" else "ws:fiveminutereserveprice_day"
    refs, tables = isone_realtime("as_rt5m", close + timedelta(minutes=5, seconds=30))
    assert [r.doc_id for r in refs] == [f"{prelim}_20241103.{'csv' if source == 'csv' else 'json'}@20241104T0505Z",
                                        f"{prelim}_20241104.{'csv' if source == 'csv' else 'json'}@20241104T0505Z"]
    (doc, table), = [(d, t) for d, t in tables if t.num_rows]  # 11-04 has no interval posted yet: skipped
    assert table.num_rows == 300 * 4 * 3  # the whole 25-hour day: 4 zones x 3 products
    for r in table.to_pylist()[::97]:
        price = {"TMSR": "TmsrClearingPrice", "TMNSR": "TmnsrClearingPrice", "TMOR": "TmorClearingPrice"}[r["product"]]
        zone = dict((z, i) for i, z in sim_isone.RESERVE_ZONES)[r["region"]]
        assert r["clearing_price"] == sim_isone.reserve_record(r["interval_start"], zone, "prelim")[price]
    # a run that discovered 11-03's prelim report but fetches it hours later (a queued task): the report is
    # generated then, yet ranks no later than the day's end + 15 minutes, before ISO-NE posts the final
    sim.set_now(close + timedelta(hours=3))
    spec, hook = registry.get("isone", "as_rt5m"), IsoneHook()
    late = [d for d in ISONE.fetch(spec, refs[:1], hook=hook)]
    ranked = ISONE.normalize(spec, late[0].name, late[0].payload, published_at=late[0].ref.published)
    assert late[0].ref.published == close + timedelta(minutes=15)
    assert set(ranked.column("published_at").to_pylist()) == {close + timedelta(minutes=15)}
    assert close + timedelta(minutes=15) < sim_isone.reserve_published(day)
    # from 00:15 on the next day only that day's preliminary report is asked for
    assert [r.doc_id.split("@")[0] for r in ISONE.discover(spec, close + timedelta(minutes=16) - LOOKBACK,
                                                           close + timedelta(minutes=16), hook=hook, realtime=True)] \
        == [f"{prelim}_20241104.{'csv' if source == 'csv' else 'json'}"]


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2024, 3, 10, 7, 40, tzinfo=UTC),  # 03:40 EDT on the spring-forward day
     ["csv:genfuelmix_20240309.csv", "csv:genfuelmix_20240310.csv@20240310T0740Z"]),
    (datetime(2024, 11, 3, 6, 40, tzinfo=UTC),  # 01:40 EST: the repeated hour's second pass so far
     ["csv:genfuelmix_20241102.csv", "csv:genfuelmix_20241103.csv@20241103T0640Z"]),
])
def test_isone_fuel_mix_day_so_far_and_the_day_before_whole(use_simulator, now: datetime, expected: list[str]) -> None:
    use_simulator(now=now)
    refs, tables = isone_realtime("fuel_mix", now)
    assert [r.doc_id for r in refs] == expected
    today = tables[-1][1]
    day = date.fromisoformat(refs[-1].market_day)
    snapshots = [t for t in sim_isone.fuel_snapshots(day) if t + timedelta(minutes=1) <= now]
    assert sorted(set(today.column("interval_start").to_pylist())) == sorted(
        {datetime.fromtimestamp(int(t.timestamp()) // 300 * 300, UTC) for t in snapshots})


@pytest.mark.parametrize(("label", "problem"), [
    ("11/05/2024 10:20", "is after the report's generation time"),  # later than the stamp
    ("03/10/2024 02:30", "does not exist"),  # in the spring-forward gap
    ("2024-11-05 10:00", "not a MM/DD/YYYY HH:MM time"),
])
def test_isone_current_report_label_checked_against_its_stamp(label: str, problem: str) -> None:
    from pmp.errors import NormalizeError
    from pmp.isos.isone.normalize import normalize_payload

    now = datetime(2024, 11, 5, 15, 8, 40, tzinfo=UTC)  # 10:08:40 EST: the current interval is 10:00
    doc = sim_isone.current_lmp_csv(now)
    text = doc.render(now).decode().replace('"11/05/2024 10:00"', f'"{label}"', 2)
    with pytest.raises(NormalizeError) as err:
        normalize_payload("lmp_rt5m", "fiveminlmp_current_prelim_asof20241105T1505Z.csv", text.encode())
    assert err.value.line == 6 and err.value.field == "Local Time" and problem in str(err.value)


@pytest.mark.parametrize("day", [date(2024, 11, 3), date(2024, 3, 10)])
def test_ercot_every_hourly_load_and_forecast_posting_found_once(use_simulator, day: date) -> None:
    """*/5 runs through a DST day (windows back to back): every NP6-235-CD hour (25 / 23, the repeated
    hour's ``xhr`` names included), the day's NP6-345-CD (posted the next morning) and every NP3-565-CD
    vintage issued that day are discovered, each exactly once, in the window where ERCOT posted it."""
    start, end = market_day_bounds(day, "America/Chicago")
    sim = use_simulator(now=start)
    hook = ErcotHook()
    found: dict[str, list[str]] = {"load_actual": [], "load_forecast": []}
    t = start + timedelta(minutes=10)
    while t - LOOKBACK < end + timedelta(hours=8):  # through the next morning (NP6-345-CD ~05:50)
        sim.set_now(t)
        for dataset, ids in found.items():
            refs = ERCOT.discover(registry.get("ercot", dataset), t - LOOKBACK, t, hook=hook, realtime=True)
            assert all(t - LOOKBACK <= r.published <= t for r in refs)
            ids += [r.doc_id for r in refs]
        t += LOOKBACK
    hours = int((end - start) / timedelta(hours=1))
    load = [sim_ercot.Doc(sim_ercot.REPORTS[12340], start + timedelta(hours=h)).doc_id for h in range(hours)]
    load.append(sim_ercot.Doc(sim_ercot.REPORTS[13101], start).doc_id)
    assert set(load) <= set(found["load_actual"]) and len(found["load_actual"]) == len(set(found["load_actual"]))
    vintages = [sim_ercot.Doc(sim_ercot.REPORTS[14837], start + timedelta(hours=h)).doc_id for h in range(hours)]
    assert set(vintages) <= set(found["load_forecast"])
    assert len(found["load_forecast"]) == len(set(found["load_forecast"]))


@pytest.mark.parametrize("day", [date(2024, 11, 3), date(2024, 3, 10)])
def test_nyiso_isolf_found_when_p7list_shows_it(use_simulator, day: date) -> None:
    """Before the issue a run finds the day before's vintage (the newest there is); from the issue on,
    the day's; hours later still the day's (the current version of the window's day)."""
    issued = sim_nyiso.issue_time(day)
    sim = use_simulator(now=issued - timedelta(minutes=1))
    spec, hook = registry.get("nyiso", "load_forecast"), NyisoHook()

    def found(now: datetime) -> list:
        sim.set_now(now)
        return NYISO.discover(spec, now - LOOKBACK, now, hook=hook, realtime=True)

    before = day - timedelta(days=1)
    assert [(r.name, r.published) for r in found(issued - timedelta(minutes=1))] == [
        (f"{before:%Y%m%d}isolf.csv", sim_nyiso.issue_time(before).replace(microsecond=0))]
    for now in (issued + timedelta(minutes=5), issued + timedelta(hours=8)):
        ref = found(now)[-1]
        assert ref.name == f"{day:%Y%m%d}isolf.csv" and ref.market_day == day.isoformat()
        assert ref.published == issued.replace(microsecond=0) and ref.doc_id.startswith(f"{day:%Y%m%d}isolf.csv@")
