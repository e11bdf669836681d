"""A CSV cut at a row boundary (issue 14): no end marker (NYISO, CAISO Outlook, ERCOT's zipped
CSVs), so a server-side truncation reads as a valid, shorter file. A document that holds a whole
market day is checked for every interval and entity before it is staged; the run fails naming the
file and the intervals it lacks, nothing is staged or loaded, and the retry downloads it again. A
re-download with other bytes than a raw file already staged gets a raw key of its own (content
hash): raw files are never overwritten."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from pmp import checks, pipeline, registry
from pmp.simulator.server import truncated_csv
from pmp.staging import FileStore, ImmutableObjectError, content_key, open_store, put_raw, sha256
from pmp.timeutil import market_day_bounds

FALL, SPRING = date(2024, 11, 3), date(2024, 3, 10)


def _window(spec: registry.DatasetSpec, day: date) -> tuple[str, str]:
    start, end = market_day_bounds(day, spec.timezone)
    return start.isoformat(), end.isoformat()


def _rows(dsn: str, spec: registry.DatasetSpec, day: date) -> tuple[int, int, int]:
    start, end = _window(spec, day)
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT interval_start), count(DISTINCT location) FROM lmp"
            " WHERE iso = %s AND market = %s AND interval_start >= %s AND interval_start < %s",
            (spec.iso.upper(), spec.market, start, end),
        ).fetchone()


def _lmp_table(starts: list[datetime], locations: list[list[str]]) -> pa.Table:
    rows = [(s, loc) for s, locs in zip(starts, locations, strict=True) for loc in locs]
    return pa.table({
        "market": ["DAM"] * len(rows), "location": [r[1] for r in rows],
        "interval_start": pa.array([r[0] for r in rows], pa.timestamp("us", "UTC")),
        "interval_end": pa.array([r[0] + timedelta(hours=1) for r in rows], pa.timestamp("us", "UTC")),
    })


@pytest.mark.parametrize(("day", "hours"), [(FALL, 25), (SPRING, 23), (date(2024, 11, 4), 24)])
def test_document_problems_on_whole_and_cut_days(day: date, hours: int) -> None:
    spec = registry.get("ercot", "lmp_dam")
    start, end = market_day_bounds(day, spec.timezone)
    starts = [start + timedelta(hours=h) for h in range(hours)]
    assert start + timedelta(hours=hours) == end
    whole = _lmp_table(starts, [["HB_NORTH", "LZ_WEST"]] * hours)
    assert checks.document_problems(spec, whole, day) == []
    cut = _lmp_table(starts[:-3] + [starts[-3]], [["HB_NORTH", "LZ_WEST"]] * (hours - 3) + [["HB_NORTH"]])
    problems = checks.document_problems(spec, cut, day)
    last = starts[-1].astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    assert problems[0].startswith(f"{hours - 2}/{hours} 60min intervals (missing ") and problems[0].endswith(f"{last})")
    assert problems[1] == (f"1 60min interval(s) without all 2 entities (first "
                           f"{starts[-3].astimezone(UTC):%Y-%m-%dT%H:%MZ})")
    other_day = _lmp_table([s + timedelta(days=2) for s in starts], [["HB_NORTH"]] * hours)
    assert checks.document_problems(spec, other_day, day)[0].startswith(f"no rows for the market day {day}")


def test_the_simulators_truncation_keeps_a_valid_zip_cut_at_a_row_boundary() -> None:
    import io
    import zipfile

    csv = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(10))
    assert truncated_csv(csv, "text/csv") == b"a,b\n0,x\n1,x\n2,x\n3,x\n4,x\n"
    assert truncated_csv(b'{"a": 1}', "application/json") is None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("d.csv", csv)
    cut = truncated_csv(buf.getvalue(), "application/zip")
    assert cut is not None and zipfile.ZipFile(io.BytesIO(cut)).read("d.csv") == b"a,b\n0,x\n1,x\n2,x\n3,x\n4,x\n"


def test_a_different_redownload_is_staged_beside_the_first_never_over_it(tmp_path) -> None:
    store = FileStore(f"file://{tmp_path}/")
    key = "raw/ercot/lmp_dam/2024/11/03/doc.csv.zip"
    assert put_raw(store, key, b"short") == (key, True)
    assert put_raw(store, key, b"short") == (key, False)  # a re-run with the same bytes: a no-op
    other = content_key(key, b"whole")
    assert other == f"raw/ercot/lmp_dam/2024/11/03/{sha256(b'whole')[:16]}/doc.csv.zip"
    assert put_raw(store, key, b"whole") == (other, True)
    assert put_raw(store, key, b"whole") == (other, False)
    assert store.get(key) == b"short" and store.get(other) == b"whole"
    with pytest.raises(ImmutableObjectError, match="never overwritten"):
        store.put(key, b"whole", immutable=True)


@pytest.fixture
def stage(staging: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    url = f"{staging}{request.node.name.replace('/', '_')}/"
    monkeypatch.setenv("PMP_STAGING_URL", url)
    return url


@pytest.mark.integration
@pytest.mark.parametrize("day", [FALL, SPRING])
def test_ercot_day_cut_at_a_row_boundary_is_refused_then_the_retry_loads_it(private_warehouse, stage,
                                                                           use_simulator, day: date) -> None:
    sim = use_simulator(now=datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=18))
    spec = registry.get("ercot", "lmp_dam")
    hours = 25 if day == FALL else 23
    start, end = _window(spec, day)
    sim.set_faults({"truncated_csv": 1})
    with pytest.raises(pipeline.IncompleteDocumentError,
                       match=rf"ercot.lmp_dam {day}: cdr\.\S+DAMSPNP4190\.csv\.zip from http://127\.0\.0\.1:\d+/ercot/www/"
                             rf"misdownload/servlets/mirDownload does not hold the whole market "
                             rf"day: 1\d/{hours} 60min intervals \(missing .*\).* nothing was staged, a retry "
                             "downloads it again"):
        pipeline.run_window(spec.key, start, end)
    assert sim.sim.faults["truncated_csv"] == 0  # the fault fired: the document was cut
    assert _rows(private_warehouse, spec, day)[0] == 0
    assert open_store().list(f"raw/ercot/lmp_dam/{day:%Y/%m/%d}/") == []
    pipeline.run_window(spec.key, start, end)  # the retry downloads the day again, whole
    rows, intervals, locations = _rows(private_warehouse, spec, day)
    assert intervals == hours and locations > 1 and rows == hours * locations


@pytest.mark.integration
def test_nyiso_dam_file_cut_at_a_row_boundary_is_refused_naming_file_and_url(private_warehouse, stage,
                                                                            use_simulator) -> None:
    sim = use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC))
    spec = registry.get("nyiso", "lmp_dam")
    start, end = _window(spec, FALL)
    sim.set_faults({"truncated_csv": 1})
    with pytest.raises(pipeline.IncompleteDocumentError,
                       match=r"nyiso.lmp_dam 2024-11-03: 20241103damlbmp_(zone|gen)\.\S+\.csv from http://127\.0\.0\.1:\d+/"
                             r"\S+ does not hold the whole market day: 1\d/25 60min intervals"):
        pipeline.run_window(spec.key, start, end)
    assert _rows(private_warehouse, spec, FALL)[0] == 0
    pipeline.run_window(spec.key, start, end)
    rows, intervals, locations = _rows(private_warehouse, spec, FALL)
    assert intervals == 25 and rows == 25 * locations


# Every other dataset whose daily documents hold a whole market day in a CSV without an end marker
# (the adapters' whole_day_documents): (iso, dataset, day, simulator clock). NYISO's real-time
# families come from the monthly archive here (more than PMP_SIM_NYISO_CSV_DAYS days back): its
# members are final days; a daily CSV of a real-time family is checked only when its version is
# after the day's last interval was due (test_nyiso_realtime_csv_is_checked_only_once_final).
WHOLE_DAY_CASES = [
    ("caiso", "fuel_mix", SPRING, datetime(2024, 3, 12, 18, tzinfo=UTC)),
    ("caiso", "load_actual", FALL, datetime(2024, 11, 5, 18, tzinfo=UTC)),
    ("caiso", "lmp_dam", FALL, datetime(2024, 11, 5, 18, tzinfo=UTC)),
    ("caiso", "as_dam", SPRING, datetime(2024, 3, 12, 18, tzinfo=UTC)),
    ("caiso", "as_rt15m", FALL, datetime(2024, 11, 5, 18, tzinfo=UTC)),
    ("nyiso", "lmp_rt5m", SPRING, datetime(2024, 3, 25, 18, tzinfo=UTC)),
    ("nyiso", "lmp_rt60m", FALL, datetime(2024, 11, 20, 18, tzinfo=UTC)),
    ("nyiso", "as_rt5m", FALL, datetime(2024, 11, 20, 18, tzinfo=UTC)),
    ("nyiso", "load_actual", SPRING, datetime(2024, 3, 25, 18, tzinfo=UTC)),
    ("nyiso", "fuel_mix", FALL, datetime(2024, 11, 20, 18, tzinfo=UTC)),
]


def _golden_keys(spec: registry.DatasetSpec, day: date) -> tuple[list[str], set[tuple[Any, ...]]]:
    """The table keys of the day's rows in the untruncated documents, fetched from the simulator
    (fault cleared) and normalized by the adapter itself."""
    adapter = registry.adapter(spec.iso)
    hook = adapter.hook()
    start, end = market_day_bounds(day, spec.timezone)
    refs = adapter.discover(spec, start, end, hook=hook)
    keys: set[tuple[Any, ...]] = set()
    cols: list[str] = []
    for doc in adapter.fetch(spec, refs, hook=hook):
        table = adapter.normalize(spec, doc.name, doc.payload, published_at=doc.ref.published)
        cols = [c for c in spec.schema.key if c in table.column_names]
        for row in table.select(cols).to_pylist():
            if start <= row["interval_start"] < end:
                keys.add(tuple(row[c] for c in cols))
    return cols, keys


@pytest.mark.integration
@pytest.mark.parametrize(("iso", "dataset", "day", "now"), WHOLE_DAY_CASES,
                         ids=[f"{c[0]}.{c[1]}-{c[2]}" for c in WHOLE_DAY_CASES])
def test_whole_day_document_cut_at_a_row_boundary_is_refused_then_the_retry_loads_it(
        private_warehouse, stage, use_simulator, monkeypatch: pytest.MonkeyPatch,
        iso: str, dataset: str, day: date, now: datetime) -> None:
    from helpers import assert_day_complete, day_rows

    monkeypatch.setenv("PMP_SIM_CAISO_MIN_INTERVAL", "0")
    sim = use_simulator(now=now, extra={"caiso_default": {"min_request_interval_seconds": 0,
                                                          "www_min_request_interval_seconds": 0}})
    spec = registry.get(iso, dataset)
    adapter = registry.adapter(iso)
    assert dataset in adapter.whole_day_documents
    start, end = _window(spec, day)
    hours = 25 if day == FALL else 23
    sim.set_faults({"truncated_csv": -1})  # every CSV answered is cut after half its lines
    with pytest.raises(pipeline.IncompleteDocumentError) as refused:
        pipeline.run_window(spec.key, start, end)
    message = str(refused.value)
    assert message.startswith(f"{spec.key} {day}: "), message
    # the file is named (its raw name: canonical name + content hash), with the URL it came from
    assert re.search(r"\S+\.(csv|zip) from http://127\.0\.0\.1:\d+/\S+ does not hold the whole market day: ",
                     message), message
    # what the cut took: intervals (a file in time order), or entities of intervals (OASIS answers
    # are sorted by node or area first, so the cut keeps every hour of the first entities)
    counted = re.search(r"(\d+)/(\d+) (\d+)min intervals \(missing 20", message)
    short = re.search(r"(\d+) (\d+)min interval\(s\) without all (\d+) entities \(first 20", message)
    assert counted or short, message
    if counted:
        present, expected, minutes = map(int, counted.groups())
        assert expected == hours * 60 // minutes and 0 < present < expected, message
    else:
        assert short is not None and int(short.group(1)) > 0 and int(short.group(3)) > 1, message
    assert "nothing was staged, a retry downloads it again" in message
    assert day_rows(private_warehouse, spec, day) == []
    assert open_store().list(f"raw/{iso}/{dataset}/{day:%Y/%m/%d}/") == []
    sim.set_faults({"truncated_csv": 0})
    pipeline.run_window(spec.key, start, end)  # the retry downloads the day again, whole
    result = assert_day_complete(private_warehouse, spec, day)
    assert result.hours == hours
    loaded = day_rows(private_warehouse, spec, day)
    cols, golden = _golden_keys(spec, day)
    assert "interval_start" in cols and len(golden) > hours
    at = [list(spec.schema.columns).index(c) for c in cols]
    assert len(loaded) == len(golden)
    assert {tuple(r[i] for i in at) for r in loaded} == golden


def _ref(doc_id: str, route: str, day: date, url: str = "", published: datetime | None = None) -> registry.DocumentRef:
    return registry.DocumentRef(doc_id=doc_id, name=doc_id + ".csv", route=route, url=url, market_day=day.isoformat(),
                                published_at=published.isoformat() if published else None)


def test_only_a_days_final_documents_are_checked_never_a_growing_one() -> None:
    """A real-time/current-day file grows through its day: only a past day's final file is
    checked (else the */5 DAGs would refuse every file they read), and forecasts never are."""
    ny = registry.adapter("nyiso")
    rt5m, dam = registry.get("nyiso", "lmp_rt5m"), registry.get("nyiso", "lmp_dam")
    _, end = market_day_bounds(FALL, rt5m.timezone)
    due = end + rt5m.publication_lag
    for published, checked in ((None, False), (end - timedelta(hours=6), False), (due - timedelta(seconds=1), False),
                               (due, True), (due + timedelta(days=3), True)):
        ref = _ref("20241103realtime_zone.csv@v", "csv", FALL, published=published)
        assert pipeline.holds_whole_day(rt5m, ny, ref) is checked, published
    # an archive member is a final day; a day-ahead file is whole when published (the day before)
    assert pipeline.holds_whole_day(rt5m, ny, _ref("20241103realtime_zone.csv@zip", "zip", FALL))
    assert pipeline.holds_whole_day(dam, ny, _ref("20241103damlbmp_zone.csv@v", "csv", FALL,
                                                  published=end - timedelta(days=1)))
    isolf = registry.get("nyiso", "load_forecast")
    assert not pipeline.holds_whole_day(isolf, ny, _ref("20241103isolf.csv@zip", "zip", FALL))

    ca = registry.adapter("caiso")
    fuel = registry.get("caiso", "fuel_mix")
    www = "http://127.0.0.1:9/caiso/www/outlook"
    assert pipeline.holds_whole_day(fuel, ca, _ref("outlook_fuelsource_20241103", "outlook", FALL,
                                                   f"{www}/history/20241103/fuelsource.csv"))
    assert not pipeline.holds_whole_day(fuel, ca, _ref("outlook_fuelsource_current_20241103T2000Z", "outlook", FALL,
                                                       f"{www}/current/fuelsource.csv"))
    today = datetime.now(UTC).date()  # the history URL of today answers with the growing file
    assert not pipeline.holds_whole_day(fuel, ca, _ref(f"outlook_fuelsource_{today:%Y%m%d}", "outlook", today,
                                                       f"{www}/history/{today:%Y%m%d}/fuelsource.csv"))
    as15 = registry.get("caiso", "as_rt15m")
    assert pipeline.holds_whole_day(as15, ca, _ref("PRC_INTVL_AS_RTM_20241103T0700Z_20241104T0800Z_v1", "oasis", FALL))
    # a real-time run's hour (or partial hour) of the same query is not the whole day
    assert not pipeline.holds_whole_day(as15, ca, _ref("PRC_INTVL_AS_RTM_20241103T0700Z_20241103T0800Z_v1", "oasis",
                                                       FALL))
    rt5 = registry.get("caiso", "lmp_rt5m")
    assert not pipeline.holds_whole_day(rt5, ca, _ref("PRC_INTVL_LMP_RTM_20241103T0700Z_20241104T0800Z_v3", "oasis",
                                                      FALL))
    fcst = registry.get("caiso", "load_forecast")
    assert not pipeline.holds_whole_day(fcst, ca, _ref("SLD_FCST_DAM_20241104T0800Z_20241105T0800Z_v1", "oasis", FALL))
