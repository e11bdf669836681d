"""ERCOT generation by fuel -> the standard ``fuel_mix`` table (fuel names as ERCOT publishes them).

Two sources at two resolutions (the ``fuel_mix`` key includes ``interval_end``, so they coexist):

* ``fuel-mix.json`` (dashboard, today and yesterday, 5-minute):
  ``{"lastUpdated": ..., "data": {"YYYY-MM-DD": {"YYYY-MM-DD HH:MM:SS-0500": {fuel: {"gen": MW}}}}}``.
  See :func:`dashboard_interval` and :func:`normalize_dashboard` for its two timestamp quirks.
* ``IntGenbyFuelYYYY.xlsx`` (history, 15-minute): one sheet per month (``Jan`` .. ``Dec``; other
  sheets such as ``Summary`` are ignored) with the header ``Date, Fuel, Settlement Type, Total``
  followed by one column per interval *ending* ``0:15 .. 23:45, 0:00`` and, in the month of the
  fall-back day, ``01:15 (DST) .. 02:00 (DST)``. See :func:`workbook_interval_start`. Values are
  energy per settlement interval (MWh); stored as the interval's average power,
  ``generation_mw = MWh x 4`` (exact in floating point), comparable with the dashboard's MW.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.isos.ercot.normalize import TZ
from pmp.isos.ercot.xlsx import cell_date, cell_number, is_xlsx, month_sheets
from pmp.payload import PayloadError, is_zip, leaf_name
from pmp.schema import FUEL_MIX, conform
from pmp.timeutil import TimeLabelError, localize, market_day_hours, zone

DASHBOARD_MINUTES = 5
WORKBOOK_MINUTES = 15
MWH_TO_MW = 60 // WORKBOOK_MINUTES  # MWh in 15 minutes -> average MW


def _table(rows: dict[str, list], minutes: int, published_at: datetime | None, source: str) -> pa.Table:
    n = len(rows["start"])
    ts = FUEL_MIX.arrow.field("interval_start").type
    table = pa.table({
        "interval_start": pa.array(rows["start"], ts),
        "interval_end": pa.array([s + timedelta(minutes=minutes) for s in rows["start"]], ts),
        "iso": pa.array(["ERCOT"] * n, pa.string()),
        "fuel": pa.array(rows["fuel"], pa.string()),
        "generation_mw": pa.array(rows["mw"], pa.float64()),
        "published_at": pa.array([published_at] * n, ts),
        "source": pa.array([source] * n, pa.string()),
    })
    return conform(table, FUEL_MIX)


# ------------------------------------------------------------------ dashboard JSON
def _parse_stamp(value: str) -> datetime:
    """``2026-09-25 19:20:04-0500`` (offset without colon; ISO forms accepted too)."""
    for fmt in ("%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    return datetime.fromisoformat(value.strip())


def dashboard_interval(stamp: datetime) -> datetime:
    """Quirk: dashboard stamps sit a few seconds after the 5-minute mark they stand for
    (``19:20:04``). Round to the nearest minute in UTC (as gridstatus does), then floor to the
    5-minute grid: the stamp marks the *start* of the 5-minute interval. The offset in the stamp
    makes fall-back and spring-forward days exact without any DST rule."""
    utc = stamp.astimezone(UTC)
    minute = (utc + timedelta(seconds=30)).replace(second=0, microsecond=0)
    return minute - timedelta(minutes=minute.minute % DASHBOARD_MINUTES)


def normalize_dashboard(name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    """Quirk: one interval is sometimes reported under two stamps a few seconds apart, each with
    part of the fuels. Both map to the same interval and are merged fuel by fuel; should a fuel
    appear under both, the later stamp wins."""
    try:
        doc = json.loads(payload.decode("utf-8-sig"))
        days = doc["data"]
        if not isinstance(days, dict):
            raise TypeError("'data' is not an object")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise NormalizeError(name, None, "data", f"not an ERCOT fuel-mix.json document ({exc})") from exc
    if published_at is None and doc.get("lastUpdated"):
        try:
            published_at = _parse_stamp(str(doc["lastUpdated"])).astimezone(UTC)
        except ValueError as exc:
            raise NormalizeError(name, None, "lastUpdated", f"bad timestamp {doc['lastUpdated']!r}") from exc
    merged: dict[tuple[datetime, str], tuple[datetime, float | None]] = {}
    for day, stamps in days.items():
        if not isinstance(stamps, dict):
            raise NormalizeError(name, None, f"data.{day}", "expected an object of timestamps")
        for raw_stamp, fuels in stamps.items():
            try:
                stamp = _parse_stamp(raw_stamp)
            except ValueError as exc:
                raise NormalizeError(name, None, f"data.{day}", f"bad timestamp {raw_stamp!r}") from exc
            if stamp.tzinfo is None:
                raise NormalizeError(name, None, f"data.{day}", f"timestamp without offset {raw_stamp!r}")
            start = dashboard_interval(stamp)
            for fuel, values in (fuels or {}).items():
                field = f"data.{day}.{raw_stamp}.{fuel}.gen"
                gen = values.get("gen") if isinstance(values, dict) else None
                if gen is not None and (isinstance(gen, bool) or not isinstance(gen, int | float)):
                    raise NormalizeError(name, None, field, f"not a number: {gen!r}")
                previous = merged.get((start, fuel))
                if previous is None or previous[0] <= stamp:
                    merged[(start, fuel)] = (stamp, None if gen is None else float(gen))
    rows: dict[str, list] = {"start": [], "fuel": [], "mw": []}
    for (start, fuel), (_, mw) in sorted(merged.items()):
        rows["start"].append(start)
        rows["fuel"].append(fuel)
        rows["mw"].append(mw)
    return _table(rows, DASHBOARD_MINUTES, published_at, leaf_name(name))


# ------------------------------------------------------------------ IntGenbyFuel workbooks
_LABEL = re.compile(r"^(\d{1,2}):(\d{2})(\s*\(DST\))?$", re.IGNORECASE)


@lru_cache(maxsize=65536)
def workbook_interval_start(day: date, label: str) -> datetime | None:
    """UTC start of the 15-minute interval a workbook column holds on ``day``; None when the label
    does not exist that day.

    Quirk (the labels are interval *endings* in local prevailing time):
    * ``0:00`` is the last column, ending at the next midnight;
    * fall-back day: the plain ``1:15 .. 2:00`` columns are the first (daylight-time) pass of the
      repeated hour (``2:00`` ends at the change, 01:00 CST on the wall) and ``01:15 (DST) ..
      02:00 (DST)`` the second, standard-time pass. Both are placed by their *start*, which is
      unambiguous once the pass is known;
    * spring-forward day: ``2:00 .. 2:45`` do not exist (must be empty); ``3:00`` ends at the change
      and is placed by its end (its start, 02:45, fell into the gap).
    """
    m = _LABEL.match(label.strip())
    if not m:
        return None
    hh, mm, dst = int(m[1]), int(m[2]), bool(m[3])
    if hh > 24 or mm % 15 or mm > 45:
        return None
    end = datetime.combine(day, time()) + timedelta(hours=hh, minutes=mm)
    if (hh, mm) == (0, 0):
        end += timedelta(days=1)
    tz = zone(TZ)
    if dst and market_day_hours(day, TZ) != 25:
        return None  # a repeated-hour column on a day without a repeated hour
    if end.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != end:
        return None  # the label itself is inside the gap (2:00 .. 2:45 on spring-forward day)
    try:
        return localize(end - timedelta(minutes=WORKBOOK_MINUTES), TZ, repeated=dst)
    except TimeLabelError:
        pass
    end_utc = localize(end, TZ)  # the start fell into the spring-forward gap: place it by its end
    start = end_utc - timedelta(minutes=WORKBOOK_MINUTES)
    return start if start.astimezone(tz).date() == day else None


def normalize_workbook(name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    rows: dict[str, list] = {"start": [], "fuel": [], "mw": []}
    for path, _month, lines in month_sheets(name, payload):  # Summary, notes, charts are skipped
        _read_month(path, lines, rows)
    return _table(rows, WORKBOOK_MINUTES, published_at, leaf_name(name))


def _read_month(path: str, lines: Any, rows: dict[str, list]) -> None:
    header: list[str] | None = None
    columns: list[tuple[int, str]] = []
    for line_no, line in enumerate(lines, start=1):
        cells = list(line)
        if header is None:
            names = [str(c).strip() if c is not None else "" for c in cells]
            if [n.lower() for n in names[:2]] == ["date", "fuel"]:
                header = names
                columns = [(i, n) for i, n in enumerate(names) if _LABEL.match(n)]
                if not columns:
                    raise NormalizeError(path, line_no, None, "no interval columns (0:15 .. 0:00) in the header")
            elif line_no > 10:
                raise NormalizeError(path, line_no, None, "no 'Date, Fuel, ...' header in the first 10 rows")
            continue
        if not any(c not in (None, "") for c in cells):
            continue  # blank separator rows
        day = cell_date(cells[0])
        if day is None:
            raise NormalizeError(path, line_no, header[0], f"not a date: {cells[0]!r}")
        fuel = str(cells[1]).strip() if len(cells) > 1 and cells[1] is not None else ""
        if not fuel:
            raise NormalizeError(path, line_no, header[1], "empty fuel name")
        for i, label in columns:
            value = cell_number(cells[i] if i < len(cells) else None)
            if value is None:
                continue
            if isinstance(value, str):
                raise NormalizeError(path, line_no, label, f"not a number: {value!r}")
            start = workbook_interval_start(day, label)
            if start is None:
                raise NormalizeError(path, line_no, label, f"interval {label!r} does not exist on {day} "
                                     "(DST change) but holds a value")
            rows["start"].append(start)
            rows["fuel"].append(fuel)
            rows["mw"].append(value * MWH_TO_MW)
    if header is None:
        raise NormalizeError(path, None, None, "empty sheet: no 'Date, Fuel, ...' header")


def normalize_fuel_payload(name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    """A raw fuel-mix payload as downloaded: the dashboard JSON, a workbook, or a zip of workbooks."""
    stripped = payload.lstrip()
    if stripped[:1] == b"{" or name.lower().endswith(".json"):
        return normalize_dashboard(name, payload, published_at)
    if is_xlsx(payload):
        return normalize_workbook(name, payload, published_at)
    if is_zip(payload):
        try:
            archive = zipfile.ZipFile(io.BytesIO(payload))
            members = [i for i in archive.infolist() if i.filename.lower().endswith((".xlsx", ".json"))]
            tables = [normalize_fuel_payload(f"{name}!{i.filename}", archive.read(i), published_at)
                      for i in members]
        except zipfile.BadZipFile as exc:
            raise PayloadError(f"{name}: corrupt zip ({exc})") from exc
        if not tables:
            raise PayloadError(f"{name}: no fuel-mix workbook or JSON member found")
        return pa.concat_tables(tables)
    raise PayloadError(f"{name}: neither fuel-mix.json nor an IntGenbyFuel workbook ({payload[:40]!r})")
