"""NYISO normalizers: MIS daily CSVs and monthly ``_csv.zip`` archives -> the standard tables.

Every NYISO quirk is handled in one named place below, with the reason next to it:

* :func:`canonical_header` - header spellings drift (the truncated ``($/MWH`` unit before mid-2016,
  ``Gen MW`` vs ``Gen MWh``, quoting); units are dropped before matching.
* :class:`_Clock` - local labels to UTC: files with a ``Time Zone`` column say EDT/EST; LBMP and
  isolf files have none and list the fall-back hour twice, first occurrence EDT (row order decides).
* :data:`STAMPS` - what a stamp means per file family (interval start, interval end, instantaneous
  reading) and how long the interval is.
* :func:`_on_schedule` - off-schedule RTD stamps (e.g. ``04:04:18``) are not 5-minute intervals:
  dropped from the 5-minute series (counted in the log), never mixed into it.
* :func:`_realized` - a row for an interval that ends after the document was published is not an
  actual: in today's partial ``realtime`` file these are the RTC 15-minute advisory tail. Dropped.
  Without a publication time :func:`_rtc_tail_by_shape` finds the tail from the file's shape.
* :func:`_lmp_components` - NYISO publishes congestion with the opposite sign: stored negated so
  ``lmp = energy + congestion + loss``; energy is derived with exact decimal arithmetic.
* :func:`_location_type` / :func:`_check_ptids` - zones, external proxies, generators and the
  reference bus keep NYISO's names and PTIDs (``location_id``); one name must map to one PTID per file.
* :func:`_system_total` - pal/palIntegrated publish zones only; SYSTEM is their exact sum.
* :func:`published_at_from_name` / :func:`source_name` - raw stage names carry the publication time.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import pyarrow as pa

from pmp.errors import NormalizeError, utf8_text
from pmp.payload import PayloadError, is_zip, iter_members, leaf_name
from pmp.schema import ANCILLARY_SERVICES, FUEL_MIX, LMP, LOAD, Rows, TableSchema, conform

log = logging.getLogger(__name__)

TZ = "America/New_York"
EASTERN = ZoneInfo(TZ)
ISO = "NYISO"
OFFSETS = {"EDT": timedelta(hours=-4), "EST": timedelta(hours=-5)}

# The 11 NYCA load zones (PTIDs 61752..61762) and the 4 external proxies of the zonal LBMP files.
ZONES = {"WEST": 61752, "GENESE": 61753, "CENTRL": 61754, "NORTH": 61755, "MHK VL": 61756, "CAPITL": 61757,
         "HUD VL": 61758, "MILLWD": 61759, "DUNWOD": 61760, "N.Y.C.": 61761, "LONGIL": 61762}
PROXIES = {"H Q": 61844, "NPX": 61845, "O H": 61846, "PJM": 61847}
REFERENCE_BUS = "NYISO_LBMP_REFERENCE"


# ----------------------------------------------------------------------------- headers
# Quirk: header spellings changed over the years. Units in parentheses are dropped before
# matching (files before mid-2016 end with a truncated "Marginal Cost Congestion ($/MWH"),
# case and spacing are ignored, and the fuel-mix value column was once "Gen MWh".
HEADER_ALIASES: dict[str, str] = {
    "time stamp": "time", "timestamp": "time", "time zone": "tz", "name": "name", "ptid": "ptid",
    "lbmp": "lbmp", "marginal cost losses": "loss", "marginal cost congestion": "congestion",
    "load": "load", "integrated load": "integrated_load",
    "fuel category": "fuel", "gen mw": "gen_mw", "gen mwh": "gen_mw",
}


def strip_unit(header: str) -> str:
    """``"LBMP ($/MWHr)"`` -> ``"LBMP"``; also cuts a truncated ``"($/MWH"``."""
    return re.sub(r"\s+", " ", re.sub(r"\s*\(.*$", "", header)).strip()


def canonical_header(header: str) -> str:
    base = strip_unit(header).lower()
    return HEADER_ALIASES.get(base, base)


# ----------------------------------------------------------------------------- CSV reading
@dataclass
class Csv:
    path: str
    headers: list[str]  # as published
    columns: list[str]  # canonical
    rows: list[tuple[int, list[str]]]  # (1-based line number, cells)
    header_line: int = 1

    def index(self, column: str) -> int:
        return self.columns.index(column)

    def header(self, column: str) -> str:
        return self.headers[self.columns.index(column)] if column in self.columns else column


def read_csv(path: str, data: bytes) -> Csv:
    """A real CSV parser: NYISO quotes some files and not others, serves CRLF, and some copies
    start with an empty line or lack the final newline."""
    text = utf8_text(path, data)
    reader = csv.reader(io.StringIO(text, newline=""))
    headers: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            cells = [c.strip() for c in cells]
            if headers is None:
                headers, header_line = cells, reader.line_num
                continue
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise NormalizeError(path, reader.line_num, None, f"malformed CSV ({exc})") from exc
    if headers is None:
        raise NormalizeError(path, None, None, "empty file")
    width = len(headers)
    for line, cells in rows:
        if len(cells) != width:
            raise NormalizeError(path, line, None, f"{len(cells)} fields, header has {width}")
    return Csv(path, headers, [canonical_header(h) for h in headers], rows, header_line)


# ----------------------------------------------------------------------------- time
_FORMATS = {19: "%m/%d/%Y %H:%M:%S", 16: "%m/%d/%Y %H:%M"}


class _Clock:
    """Local NYISO labels -> UTC instants, one rule per file kind.

    Quirk (DST): files with a ``Time Zone`` column label the repeated fall-back hour EDT then EST,
    so the label decides. LBMP files and isolf have no such column: on the fall-back day they list
    the 01:00 hour twice and the first occurrence is EDT, so the n-th occurrence of an ambiguous
    label *within its series* (one location, or the whole wide isolf file) decides. A label in the
    spring-forward gap, a third occurrence, or a Time Zone that contradicts the date is an error.
    """

    def __init__(self, f: Csv, time_col: str) -> None:
        self.f = f
        self.col = f.index(time_col)
        self.header = f.headers[self.col]
        self._naive: dict[str, datetime] = {}
        self._seen: dict[tuple[str, str], int] = {}
        self._utc: dict[tuple[str, str], datetime] = {}  # unambiguous labels, converted once

    def naive(self, line: int, label: str) -> datetime:
        value = self._naive.get(label)
        if value is None:
            fmt = _FORMATS.get(len(label))
            try:
                if fmt is None:
                    raise ValueError(label)
                value = datetime.strptime(label, fmt)
            except ValueError:
                raise NormalizeError(self.f.path, line, self.header,
                                     f"not a MM/DD/YYYY HH:MM[:SS] time stamp: {label!r}") from None
            self._naive[label] = value
        return value

    def _fail(self, line: int, message: str) -> NormalizeError:
        return NormalizeError(self.f.path, line, self.header, message)

    def with_zone(self, line: int, label: str, zone_label: str, tz_header: str) -> datetime:
        cached = self._utc.get((label, zone_label))
        if cached is not None:
            return cached
        value = self._with_zone(line, label, zone_label, tz_header)
        self._utc[(label, zone_label)] = value
        return value

    def _with_zone(self, line: int, label: str, zone_label: str, tz_header: str) -> datetime:
        naive = self.naive(line, label)
        offset = OFFSETS.get(zone_label.upper())
        if offset is None:
            raise NormalizeError(self.f.path, line, tz_header, f"time zone must be EDT or EST: {zone_label!r}")
        for fold in (0, 1):
            aware = naive.replace(tzinfo=EASTERN, fold=fold)
            if aware.utcoffset() == offset and aware.astimezone(UTC).astimezone(EASTERN).replace(tzinfo=None) == naive:
                return aware.astimezone(UTC)
        raise self._fail(line, f"{label} {zone_label} is not a time in Eastern prevailing time")

    def by_order(self, line: int, label: str, series: str) -> datetime:
        cached = self._utc.get((label, ""))
        if cached is not None:
            return cached
        naive = self.naive(line, label)
        first = naive.replace(tzinfo=EASTERN, fold=0)
        second = naive.replace(tzinfo=EASTERN, fold=1)
        if first.astimezone(UTC).astimezone(EASTERN).replace(tzinfo=None) != naive:
            raise self._fail(line, f"{label} does not exist in Eastern time (spring-forward gap)")
        if first.utcoffset() == second.utcoffset():
            self._utc[(label, "")] = first.astimezone(UTC)
            return self._utc[(label, "")]
        key = (series, label)
        n = self._seen.get(key, 0)
        self._seen[key] = n + 1
        if n > 1:
            raise self._fail(line, f"{label} listed a third time for {series!r} (the fall-back hour repeats once)")
        return (first if n == 0 else second).astimezone(UTC)


@dataclass(frozen=True)
class Stamp:
    """What a file family's ``Time Stamp`` means."""

    kind: str  # "start", "end" or "reading" (an instantaneous value, stored as [t, t + minutes))
    minutes: int

    def interval(self, instant: datetime) -> tuple[datetime, datetime]:
        step = timedelta(minutes=self.minutes)
        if self.kind == "end":
            return instant - step, instant
        return instant, instant + step

    def realized_at(self, start: datetime, end: datetime) -> datetime:
        return start if self.kind == "reading" else end


# Quirk: the stamp means something different in each family (reference section 4.1/4.3):
# day-ahead, hourly RT and isolf stamps mark the interval start; the 5-minute RTD price files
# (realtime, rtasp) mark the interval end (a day runs 00:05 .. next day 00:00).
# pal and rtfuelmix are both instantaneous readings (reference 4.1; gridstatus treats both as
# "instantaneous"), yet their day files are cut differently, so each is stored as the 5 minutes its
# own day file assigns it: pal's day runs 00:00 .. 23:55 (the real sample's first stamp is
# 00:00:00), stored [t, t + 5 min); rtfuelmix's day starts at 00:05:00 (the reference's real 2017
# rows and third-party files live-verified in 2024 both begin "00:05:00"; so the midnight reading is
# taken to close the previous day's file, as in the RTD files - the file's end is not verified),
# stored [t - 5 min, t) like the RTD files. Either way the reading instant
# is an interval edge, and it is the realization time (`Stamp.realized_at`); storing rtfuelmix as
# [t, t + 5) instead would make a day's file cover 00:05 .. 24:05, one interval into the next market
# day, so no day's file would be its market day. To line up a pal and a fuel-mix reading taken at the
# same instant, match pal's interval_start with fuel_mix's interval_end.
STAMPS: dict[str, Stamp] = {
    "lmp_dam": Stamp("start", 60), "lmp_rt5m": Stamp("end", 5), "lmp_rt60m": Stamp("start", 60),
    "as_dam": Stamp("start", 60), "as_rt5m": Stamp("end", 5),
    "pal": Stamp("reading", 5), "palIntegrated": Stamp("start", 60),
    "load_forecast": Stamp("start", 60), "fuel_mix": Stamp("end", 5),
}
MARKETS = {"lmp_dam": "DAM", "lmp_rt5m": "RT5M", "lmp_rt60m": "RT60M", "as_dam": "DAM", "as_rt5m": "RT5M"}
# Datasets of actuals: a row cannot describe an interval after the document was published.
ACTUALS = {"lmp_rt5m", "lmp_rt60m", "as_rt5m", "pal", "palIntegrated", "fuel_mix"}


def _on_schedule(local_label: datetime, stamp: Stamp) -> bool:
    """Quirk: RTD sometimes runs off schedule and the 5-minute files (realtime, rtasp, pal,
    rtfuelmix) then carry extra stamps such as ``04:04:18`` (one day had 296 stamps instead of 288).
    They are not 5-minute intervals, so they are dropped from the 5-minute series (the raw file
    keeps them); the regular stamp that follows keeps its nominal 5-minute interval. Hourly files
    never have them: an off-hour stamp there is bad input."""
    if local_label.second or local_label.microsecond:
        return False
    return local_label.minute % stamp.minutes == 0 if stamp.minutes < 60 else local_label.minute == 0


def _realized(end_or_reading: datetime, published_at: datetime | None) -> bool:
    """Quirk: today's partial ``realtime`` file ends with RTC 15-minute advisory rows for intervals
    that have not happened yet (after the latest RTD interval). A row of actuals whose interval ends
    (or reading is taken) after the document's publication time cannot be an actual, so it is
    dropped; it never enters the 5-minute series. Without a known publication time the tail is
    found from the file's shape instead (:func:`_rtc_tail_by_shape`)."""
    return published_at is None or end_or_reading <= published_at


_FIVE, _QUARTER = timedelta(minutes=5), timedelta(minutes=15)


def _rtc_tail_by_shape(ends: list[datetime]) -> set[datetime]:
    """Quirk (RTC tail, no publication time): the interval ends of a ``realtime`` file that belong to
    its RTC 15-minute advisory tail, told from the file's shape alone. ``ends`` are the file's sorted,
    distinct, on-schedule interval ends (UTC).

    RTD rows step by 5 minutes; the tail follows the last of them on quarter hours stepping by 15
    minutes (the first one 10 or 15 minutes after the last RTD row, or only 5 when the last RTD
    interval ends at :10/:25/:40/:55). So the tail is everything after the last 5-minute step,
    provided it has that shape (on quarter hours, 15 minutes apart, the first at most 15 minutes on);
    a file without a 5-minute step, or whose last rows have another shape (holes in the RTD series),
    has no tail. When the 5-minute run itself ends on a quarter hour followed 15 minutes later by the
    tail, that stamp may be RTD or the tail's first row (the simulator's 13:00 after a 12:55 RTD): it
    is dropped too, so an advisory price never enters RT5M; a real RTD row lost that way comes back
    with the next version of the file. A tail of one quarter-hour row right after a 5-minute step
    (RTD up to 23:55, RTC 00:00) looks exactly like a complete day and is kept: use the publication
    time (``--published-at``) for files fetched in that minute."""
    last_step = next((i for i in range(len(ends) - 1, 0, -1) if ends[i] - ends[i - 1] == _FIVE), None)
    if last_step is None or last_step == len(ends) - 1:
        return set()
    tail = ends[last_step + 1:]
    if any(t.minute % 15 or t.second for t in tail) or tail[0] - ends[last_step] > _QUARTER or any(
            b - a != _QUARTER for a, b in zip(tail, tail[1:], strict=False)):
        return set()
    run_end = ends[last_step]
    if run_end.minute % 15 == 0 and tail[0] - run_end == _QUARTER:
        return {run_end, *tail}
    return set(tail)


# ----------------------------------------------------------------------------- values
def _number(f: Csv, line: int, column: str, value: str) -> Decimal | None:
    if value == "":
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite():
        raise NormalizeError(f.path, line, f.header(column), f"not a number: {value!r}")
    return d


def _float(d: Decimal | None) -> float | None:
    return None if d is None else float(d)  # correctly rounded, exactly as published


def _lmp_components(
    lbmp: Decimal, loss: Decimal | None, congestion_published: Decimal | None
) -> tuple[float, float | None, float | None, float | None]:
    """Quirk: NYISO publishes ``Marginal Cost Congestion`` with the opposite sign
    (LBMP = energy + losses - congestion). It is stored negated so the standard identity
    ``lmp = energy + congestion + loss`` holds; energy = LBMP - loss - congestion, computed in
    exact decimal arithmetic from the published strings, then rounded once to a float."""
    congestion = None if congestion_published is None else -congestion_published
    energy = None if loss is None or congestion is None else lbmp - loss - congestion
    return float(lbmp), _no_negative_zero(energy), _no_negative_zero(congestion), _float(loss)


def _no_negative_zero(d: Decimal | None) -> float | None:
    """A published ``0.00`` congestion negates to -0.0; store plain 0.0."""
    return None if d is None else (float(d) or 0.0)


def _location_type(family: str, name: str) -> str:
    """NYISO's location kinds: the 11 load zones, the external proxies (``H Q``, ``NPX``, ``O H``,
    ``PJM``) of the zonal files, generators, and the reference bus listed in the generator files."""
    if name == REFERENCE_BUS:
        return "Reference Bus"
    if family == "zone" or (family == "" and (name in ZONES or name in PROXIES)):
        return "Zone" if name in ZONES else "External"
    return "Generator"


def _family(path: str) -> str:
    name = leaf_name(path).lower()
    return "zone" if "_zone" in name else "gen" if "_gen" in name else ""


def _check_ptids(f: Csv) -> dict[str, str]:
    """Locations keep NYISO's names and PTIDs: the PTID (NYISO's numeric point id of a zone, external
    proxy, generator or the reference bus) is stored as ``location_id``, as published. A PTID that
    is not a whole number is bad input, and a name listed with two PTIDs in one file would collide
    under the (location, interval) key, so both are errors, not guesses. Returns name -> PTID."""
    if "ptid" not in f.columns or "name" not in f.columns:
        return {}
    ni, pi = f.index("name"), f.index("ptid")
    seen: dict[str, str] = {}
    for line, cells in f.rows:
        ptid = cells[pi]
        if not (ptid.isascii() and ptid.isdigit()):
            raise NormalizeError(f.path, line, f.header("ptid"), f"not a PTID (a whole number): {ptid!r}")
        prev = seen.setdefault(cells[ni], ptid)
        if prev != ptid:
            raise NormalizeError(f.path, line, f.header("ptid"),
                                 f"{cells[ni]!r} listed with PTID {ptid} and {prev}")
    return seen


# ----------------------------------------------------------------------------- names
_STORED = re.compile(r"^(?P<stem>.+?)\.(?P<ts>\d{8}T\d{6}Z)\.(?P<hash>[0-9a-f]{8})\.csv$", re.IGNORECASE)


def storage_name(nyiso_name: str, published_at: datetime | None, digest: str) -> str:
    """Raw stage name of one version of a NYISO daily file: ``20241103realtime_zone.csv`` ->
    ``20241103realtime_zone.20241103T151502Z.3fa2b1c9.csv``. NYISO rewrites the same file name as a
    day fills up; the version stamp and content hash give every version its own immutable key."""
    stem = leaf_name(nyiso_name).removesuffix(".csv")
    stamp = (published_at or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stem}.{stamp}.{digest[:8]}.csv"


def published_at_from_name(path: str) -> datetime | None:
    m = _STORED.match(leaf_name(path))
    if not m:
        return None
    return datetime.strptime(m.group("ts"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def source_name(path: str) -> str:
    """``source`` = NYISO's own daily file name (the raw stage's version suffix removed)."""
    leaf = leaf_name(path)
    m = _STORED.match(leaf)
    return f"{m.group('stem')}.csv" if m else leaf


def zip_member_time(info: zipfile.ZipInfo) -> datetime:
    """A monthly archive member's modification time: local Eastern wall time (2-second resolution);
    during the repeated fall-back hour the first (EDT) reading is taken."""
    return datetime(*info.date_time, tzinfo=EASTERN).astimezone(UTC)


# ----------------------------------------------------------------------------- tables
def _table(schema: TableSchema, cols: dict[str, list]) -> pa.Table:
    n = len(cols["interval_start"])
    arrays = {}
    for field in schema.arrow:
        values = cols.get(field.name)
        arrays[field.name] = pa.nulls(n, field.type) if values is None else pa.array(values, field.type)
    return conform(pa.table(arrays), schema)


class _Rows(Rows):
    """Column lists for one output table, with the shared columns filled per row."""

    def drop_ends(self, ends: set[datetime]) -> int:
        """Remove the rows whose interval ends at one of ``ends``; returns how many were removed."""
        keep = [e not in ends for e in self.cols["interval_end"]]
        for name, values in self.cols.items():
            self.cols[name] = [v for v, k in zip(values, keep, strict=True) if k]
        return keep.count(False)


@dataclass
class _Ctx:
    dataset: str
    f: Csv
    source: str
    published_at: datetime | None
    dropped_off_schedule: int = 0
    dropped_unrealized: int = 0
    dropped_rtc_tail: int = 0
    dropped_empty: int = 0

    def finish(self, schema: TableSchema, rows: _Rows) -> pa.Table:
        n = len(rows)
        rows.cols["iso"] = [ISO] * n
        rows.cols["published_at"] = [self.published_at] * n
        rows.cols["source"] = [self.source] * n
        if self.dropped_off_schedule or self.dropped_unrealized or self.dropped_empty:
            log.info("%s: dropped %d off-schedule, %d not-yet-realized (RTC advisory / future), %d empty rows",
                     self.f.path, self.dropped_off_schedule, self.dropped_unrealized, self.dropped_empty)
        if self.dropped_rtc_tail:
            log.warning("%s: no publication time; dropped %d rows of the RTC 15-minute advisory tail "
                        "(told from the file's shape)", self.f.path, self.dropped_rtc_tail)
        return _table(schema, rows.cols)


def _require(f: Csv, *columns: str) -> None:
    for c in columns:
        if c not in f.columns:
            raise NormalizeError(f.path, _header_line(f), c, f"missing column; header is {f.headers}")


def _header_line(f: Csv) -> int:
    return f.header_line


def _interval(ctx: _Ctx, stamp: Stamp, clock: _Clock, line: int, label: str, instant: datetime,
              ) -> tuple[datetime, datetime] | None:
    """The row's UTC interval, or None when the row is off schedule or not yet realized."""
    if not _on_schedule(clock.naive(line, label), stamp):
        if stamp.minutes >= 60:
            raise NormalizeError(ctx.f.path, line, clock.header, f"{label} is not on the hour")
        ctx.dropped_off_schedule += 1
        return None
    start, end = stamp.interval(instant)
    if ctx.dataset in ACTUALS and not _realized(stamp.realized_at(start, end), ctx.published_at):
        ctx.dropped_unrealized += 1
        return None
    return start, end


def _lmp(ctx: _Ctx) -> pa.Table:
    f = ctx.f
    _require(f, "time", "name", "lbmp")
    ptids = _check_ptids(f)
    stamp, market, family = STAMPS[ctx.dataset], MARKETS[ctx.dataset], _family(f.path)
    clock = _Clock(f, "time")
    ti, ni, li = f.index("time"), f.index("name"), f.index("lbmp")
    xi = f.index("loss") if "loss" in f.columns else None
    ci = f.index("congestion") if "congestion" in f.columns else None
    rows = _Rows(*("market", "location", "location_type", "location_id", "lmp", "energy", "congestion", "loss"))
    seen: dict[tuple[str, datetime], tuple[int, tuple]] = {}
    for line, cells in f.rows:
        name = cells[ni]
        instant = clock.by_order(line, cells[ti], name)
        interval = _interval(ctx, stamp, clock, line, cells[ti], instant)
        if interval is None:
            continue
        lbmp = _number(f, line, "lbmp", cells[li])
        if lbmp is None:
            raise NormalizeError(f.path, line, f.header("lbmp"), "empty price")
        loss = _number(f, line, "loss", cells[xi]) if xi is not None else None
        cong = _number(f, line, "congestion", cells[ci]) if ci is not None else None
        values = _lmp_components(lbmp, loss, cong)
        previous = seen.get((name, interval[0]))
        if previous is not None:  # an exact repeat is harmless; a different price is not
            if previous[1] != values:
                raise NormalizeError(f.path, line, f.header("name"),
                                     f"{name!r} {cells[ti]} listed again (line {previous[0]}) with other prices")
            continue
        seen[(name, interval[0])] = (line, values)
        lmp_v, energy, congestion, loss_v = values
        rows.add(*interval, market=market, location=name, location_type=_location_type(family, name),
                 location_id=ptids.get(name), lmp=lmp_v, energy=energy, congestion=congestion, loss=loss_v)
    if ctx.dataset == "lmp_rt5m" and ctx.published_at is None:
        ctx.dropped_rtc_tail = rows.drop_ends(_rtc_tail_by_shape(sorted(set(rows.cols["interval_end"]))))
    return ctx.finish(LMP, rows)


_AS_KEYS = {"time", "tz", "name", "ptid"}


def _repeat(f: Csv, seen: dict, key: tuple[str, datetime], line: int, cells: list[str]) -> bool:
    """True for an exact repeat of an earlier row (skipped); a repeat with other values is an error."""
    previous = seen.get(key)
    if previous is None:
        seen[key] = (line, cells)
        return False
    if previous[1] != cells:
        raise NormalizeError(f.path, line, None, f"{key[0]!r} at this time listed again (line {previous[0]}) "
                                                  "with other values")
    return True


# The products of NYISO's wide AS files (damasp, rtasp; rtasp adds Regulation Movement). Every
# non-key column becomes a product, so without this list a renamed or dropped product column would
# load a different product set that every check passes (issue 14: silent drift in wide files).
AS_PRODUCTS = {
    "as_dam": ("10 Min Spinning Reserve", "10 Min Non-Synchronous Reserve", "30 Min Operating Reserve",
               "NYCA Regulation Capacity"),
}
AS_PRODUCTS["as_rt5m"] = (*AS_PRODUCTS["as_dam"], "NYCA Regulation Movement")


def _check_products(f: Csv, dataset: str, products: list[str]) -> None:
    """The file's product columns are the declared ones (:data:`AS_PRODUCTS`): an unknown column (a
    renamed or new product) or a missing one fails at the header naming it; nothing is loaded."""
    declared = AS_PRODUCTS.get(dataset)
    if declared is None:
        return
    unknown = [p for p in products if p not in declared]
    if unknown:
        raise NormalizeError(f.path, _header_line(f), unknown[0], f"not a declared {dataset} product (expected "
                             f"{', '.join(declared)}): a renamed or new product column")
    missing = [p for p in declared if p not in products]
    if missing:
        raise NormalizeError(f.path, _header_line(f), None, f"product column(s) {', '.join(missing)} missing: "
                             f"header is {f.headers}")


def _ancillary(ctx: _Ctx) -> pa.Table:
    """Wide AS prices -> one row per (region, product). ``product`` is NYISO's own column name
    without its unit (e.g. ``10 Min Spinning Reserve``; ``NYCA Regulation Movement`` is $/MW);
    ``region`` is the ``Name`` column (zones)."""
    f = ctx.f
    _require(f, "time", "tz", "name")
    stamp, market = STAMPS[ctx.dataset], MARKETS[ctx.dataset]
    products = [(i, strip_unit(h)) for i, (h, c) in enumerate(zip(f.headers, f.columns, strict=True))
                if c not in _AS_KEYS]
    if not products:
        raise NormalizeError(f.path, _header_line(f), None, f"no price columns; header is {f.headers}")
    _check_products(f, ctx.dataset, [p for _, p in products])
    clock = _Clock(f, "time")
    ti, zi, ni = f.index("time"), f.index("tz"), f.index("name")
    rows = _Rows(*("market", "region", "product", "clearing_price"))
    seen: dict[tuple[str, datetime], tuple[int, list[str]]] = {}
    for line, cells in f.rows:
        instant = clock.with_zone(line, cells[ti], cells[zi], f.headers[zi])
        interval = _interval(ctx, stamp, clock, line, cells[ti], instant)
        if interval is None or _repeat(f, seen, (cells[ni], interval[0]), line, cells):
            continue
        for i, product in products:
            price = _number(f, line, f.columns[i], cells[i])
            rows.add(*interval, market=market, region=cells[ni], product=product, clearing_price=_float(price))
    return ctx.finish(ANCILLARY_SERVICES, rows)


def _system_total(values: dict[str, Decimal], names: set[str]) -> Decimal | None:
    """pal and palIntegrated publish the 11 zones only. The ISO-wide ``SYSTEM`` area is their exact
    decimal sum, and only when every zone of the file reported for that interval."""
    return sum(values.values(), Decimal(0)) if names and set(values) == names else None


def _actual_load(ctx: _Ctx, family: str) -> pa.Table:
    f = ctx.f
    value_col = "integrated_load" if family == "palIntegrated" else "load"
    _require(f, "time", "tz", "name", value_col)
    _check_ptids(f)
    stamp = STAMPS[family]
    ctx.dataset = family  # pal / palIntegrated: both are actuals (see ACTUALS)
    clock = _Clock(f, "time")
    ti, zi, ni, vi = f.index("time"), f.index("tz"), f.index("name"), f.index(value_col)
    names = {cells[ni] for _, cells in f.rows}
    # Quirk: pal repeats stamps now and then; de-duplicated on (time, zone), the later row wins.
    by_interval: dict[tuple[datetime, datetime], dict[str, Decimal]] = {}
    for line, cells in f.rows:
        instant = clock.with_zone(line, cells[ti], cells[zi], f.headers[zi])
        interval = _interval(ctx, stamp, clock, line, cells[ti], instant)
        if interval is None:
            continue
        value = _number(f, line, value_col, cells[vi])
        if value is None:  # a placeholder for a reading not in yet (seen at the tail of pal files)
            ctx.dropped_empty += 1
            continue
        by_interval.setdefault(interval, {})[cells[ni]] = value
    rows = _Rows(*("area", "kind", "forecast_issued_at", "model", "load_mw"))
    for (start, end), values in sorted(by_interval.items()):
        total = _system_total(values, names)
        items = sorted(values.items()) + ([("SYSTEM", total)] if total is not None else [])
        for area, v in items:
            rows.add(start, end, area=area, kind="actual", forecast_issued_at=end, model="", load_mw=float(v))
    return ctx.finish(LOAD, rows)


def isolf_area(header: str) -> str:
    """isolf spells zones in mixed case (``Capitl``, ``Hud Vl``); they are the same NYISO zones as in
    every other file, so they are stored upper case (``CAPITL``, ``HUD VL``); ``NYISO`` is the
    ISO-wide total, stored as ``SYSTEM``."""
    name = strip_unit(header).upper()
    return "SYSTEM" if name == "NYISO" else name


def forecast_vintage(published_at: datetime) -> datetime:
    """The vintage key of an isolf issue: its publication time floored to the minute, so the
    P-list "Last Updated" (seconds) and the monthly zip member time (2-second resolution) name
    the same vintage."""
    return published_at.astimezone(UTC).replace(second=0, microsecond=0)


def _forecast(ctx: _Ctx) -> pa.Table:
    """Quirk: isolf carries no issue time. The vintage is the file's publication time: the P-7list
    "Last Updated" (daily CSV route) or the archive member's time (monthly zip route); the raw stage
    name records it. Without one the file cannot be placed and is rejected."""
    f = ctx.f
    _require(f, "time", "nyiso")
    if ctx.published_at is None:
        raise NormalizeError(f.path, None, "forecast_issued_at",
                             "isolf files carry no issue time: pass --published-at ISO8601 (pmp normalize; "
                             "the P-7list 'Last Updated' time), or give a raw-stage name with its version "
                             "stamp, or the monthly zip")
    stamp, clock = STAMPS["load_forecast"], _Clock(f, "time")
    ti = f.index("time")
    areas = [(i, isolf_area(h)) for i, h in enumerate(f.headers) if i != ti]
    issued = forecast_vintage(ctx.published_at)
    rows = _Rows(*("area", "kind", "forecast_issued_at", "model", "load_mw"))
    for line, cells in f.rows:
        instant = clock.by_order(line, cells[ti], "")
        interval = _interval(ctx, stamp, clock, line, cells[ti], instant)
        if interval is None:
            continue
        for i, area in areas:
            value = _number(f, line, f.columns[i], cells[i])
            if value is None:
                ctx.dropped_empty += 1
                continue
            rows.add(*interval, area=area, kind="forecast", forecast_issued_at=issued, model="", load_mw=float(value))
    return ctx.finish(LOAD, rows)


def _fuel_mix(ctx: _Ctx) -> pa.Table:
    f = ctx.f
    _require(f, "time", "tz", "fuel", "gen_mw")
    stamp, clock = STAMPS["fuel_mix"], _Clock(f, "time")
    ti, zi, fi, vi = f.index("time"), f.index("tz"), f.index("fuel"), f.index("gen_mw")
    rows = _Rows(*("fuel", "generation_mw"))
    seen: dict[tuple[str, datetime], tuple[int, list[str]]] = {}
    for line, cells in f.rows:
        instant = clock.with_zone(line, cells[ti], cells[zi], f.headers[zi])
        interval = _interval(ctx, stamp, clock, line, cells[ti], instant)
        if interval is None or _repeat(f, seen, (cells[fi], interval[0]), line, cells):
            continue
        value = _number(f, line, "gen_mw", cells[vi])
        if value is None:
            ctx.dropped_empty += 1
            continue
        rows.add(*interval, fuel=cells[fi], generation_mw=float(value))
    return ctx.finish(FUEL_MIX, rows)


DATASETS = ("lmp_dam", "lmp_rt5m", "lmp_rt60m", "as_dam", "as_rt5m", "load_actual", "load_forecast", "fuel_mix")


def normalize_csv(dataset: str, path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """One NYISO CSV -> standard rows. ``path`` names the file (member) in errors; ``source`` is its
    NYISO file name. ``published_at`` defaults to the version stamp of a raw-stage name."""
    if dataset not in DATASETS:
        raise KeyError(f"NYISO dataset {dataset!r} has no normalizer; known: {', '.join(DATASETS)}")
    f = read_csv(path, data)
    published = published_at or published_at_from_name(path)
    ctx = _Ctx(dataset, f, source_name(path), published)
    if dataset.startswith("lmp_"):
        return _lmp(ctx)
    if dataset.startswith("as_"):
        return _ancillary(ctx)
    if dataset == "load_forecast":
        return _forecast(ctx)
    if dataset == "fuel_mix":
        return _fuel_mix(ctx)
    # load_actual: 5-minute pal and hourly palIntegrated, told apart by their value column
    if "integrated_load" in f.columns:
        return _actual_load(ctx, "palIntegrated")
    return _actual_load(ctx, "pal")


def iter_csvs(name: str, payload: bytes) -> Iterator[tuple[str, bytes, datetime | None]]:
    """``(path, bytes, member time)`` of every CSV in a payload: a daily CSV as is, or each daily
    member of a monthly ``_csv.zip`` (with the member's modification time)."""
    if not is_zip(payload):
        yield name, payload, None
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise PayloadError(f"{name}: corrupt zip ({exc})") from exc
    for info in infos:
        if info.is_dir():
            continue
        lower = info.filename.lower()
        path = f"{name}!{info.filename}"
        try:
            data = archive.read(info)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise PayloadError(f"{path}: corrupt zip member ({exc})") from exc
        if is_zip(data):
            for inner, inner_data in iter_members(path, data):
                yield inner, inner_data, None
        elif lower.endswith(".csv"):
            yield path, data, zip_member_time(info)


def normalize_payload(dataset: str, name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    """A raw payload (daily CSV, raw-stage CSV, or monthly zip) -> standard rows. A zip member's own
    modification time is its publication time; otherwise ``published_at`` (or the raw-stage name)."""
    tables = [normalize_csv(dataset, path, data, member_time or published_at)
              for path, data, member_time in iter_csvs(name, payload)]
    if not tables:
        raise PayloadError(f"{name}: no CSV member found")
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
