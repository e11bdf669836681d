"""Today's Outlook CSVs (``www.caiso.com/outlook/{history/YYYYMMDD|current}/{fuelsource|demand}.csv``).

The rows carry only a local ``HH:MM`` label; every quirk of turning that into UTC lives here:
* :func:`outlook_day` - the date exists only in the URL, so the stored file name carries it
  (``outlook_<file>_<YYYYMMDD>...csv``); a file without a date in its name is refused.
* :func:`interval_starts` - DST, decided from the file's row order:
  - fall-back: the file holds 25 hours; the labels 01:00..01:55 appear twice, in time order, so
    the first run is PDT and the second PST (a label seen once is taken as PDT: the day then
    lacks the PST hour and the completeness check reports it, instead of guessing);
  - spring-forward: CAISO keeps the nonexistent 02:00..02:55 rows with empty values; they are
    dropped, and a value in them is an error (it cannot be placed on the timeline). Only the
    columns that are stored count: demand.csv forecast columns there are ignored (``demand_rows``);
  - a last row labelled ``00:00`` is the next day's midnight: dropped (the next day's file holds it);
  - rows with an empty ``Time`` (trailing filler) are skipped; labels must move forward in time.
* :data:`FUEL_ALIASES` - older files spell ``Natural gas`` / ``Large hydro``.
* The file may start with a UTF-8 byte-order mark, and use CRLF or LF line endings.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pmp.errors import NormalizeError, utf8_text
from pmp.isos.caiso.oasis import PT
from pmp.payload import leaf_name

STEP = timedelta(minutes=5)
FUEL_ALIASES = {"Natural gas": "Natural Gas", "Large hydro": "Large Hydro"}
DEMAND_COLUMN = "Current demand"
_DAY_IN_NAME = re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")
_LABEL = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass
class OutlookFile:
    path: str
    day: date
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line number, fields)


def outlook_day(path: str) -> date:
    """The local date of an Outlook file, from its (stored) name."""
    m = _DAY_IN_NAME.search(leaf_name(path))
    if not m:
        raise NormalizeError(path, None, None, "Outlook CSVs carry only HH:MM; the date comes from the URL "
                             "(history/YYYYMMDD/...), so the file name must contain it as YYYYMMDD")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise NormalizeError(path, None, None, f"bad date in file name ({exc})") from exc


def read_outlook(path: str, data: bytes, required: tuple[str, ...]) -> OutlookFile:
    text = utf8_text(path, data)
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if not lines or not any(f.strip() for f in lines[0]):
        raise NormalizeError(path, None, None, "empty file")
    header = [h.strip() for h in lines[0]]
    for col in required:
        if col not in header:
            raise NormalizeError(path, 1, col, f"missing column; header is {header}")
    rows = []
    for n, fields in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in fields]
        if not any(fields):
            continue
        if len(fields) != len(header):
            raise NormalizeError(path, n, None, f"{len(fields)} fields, header has {len(header)}")
        rows.append((n, fields))
    return OutlookFile(path, outlook_day(path), header, rows)


def _label(path: str, line: int, raw: str) -> time:
    m = _LABEL.match(raw)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(2)) % 5:
        raise NormalizeError(path, line, "Time", f"not a 5-minute HH:MM label: {raw!r}")
    return time(int(m.group(1)), int(m.group(2)))


def _kind(naive: datetime) -> str:
    """'gap' (spring-forward), 'ambiguous' (fall-back repeat) or 'normal' in US/Pacific."""
    early, late = naive.replace(tzinfo=PT, fold=0), naive.replace(tzinfo=PT, fold=1)
    if early.utcoffset() == late.utcoffset():
        return "normal"
    round_trip = early.astimezone(UTC).astimezone(PT).replace(tzinfo=None)
    return "gap" if round_trip != naive else "ambiguous"


def interval_starts(f: OutlookFile, has_values: list[bool]) -> list[datetime | None]:
    """UTC start of each row of ``f.rows`` (None: a row that is dropped, see the module doc)."""
    time_col = f.header.index("Time")
    out: list[datetime | None] = []
    seen: set[time] = set()
    previous: datetime | None = None
    last = len(f.rows) - 1
    for i, (line, fields) in enumerate(f.rows):
        raw = fields[time_col]
        if raw == "":
            if has_values[i]:
                raise NormalizeError(f.path, line, "Time", "values without a time label")
            out.append(None)
            continue
        label = _label(f.path, line, raw)
        if label == time(0, 0) and i == last and i > 0:
            out.append(None)  # next day's midnight
            continue
        naive = datetime.combine(f.day, label)
        kind = _kind(naive)
        if kind == "gap":
            if has_values[i]:
                raise NormalizeError(f.path, line, "Time", f"{raw} does not exist on {f.day} (spring-forward) "
                                     "but the row has values")
            out.append(None)
            continue
        fold = 1 if kind == "ambiguous" and label in seen else 0
        seen.add(label)
        start = naive.replace(tzinfo=PT, fold=fold).astimezone(UTC)
        if previous is not None and start <= previous:
            raise NormalizeError(f.path, line, "Time", f"{raw} is not after the previous row")
        previous = start
        out.append(start)
    return out


def number(f: OutlookFile, line: int, field: str, raw: str) -> float | None:
    if raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise NormalizeError(f.path, line, field, f"not a number: {raw!r}")
    return v


def fuel_rows(f: OutlookFile) -> list[tuple[datetime, str, float | None]]:
    """(interval start, fuel, MW) for every fuel of every row that has any value."""
    fuels = [(i, FUEL_ALIASES.get(h, h)) for i, h in enumerate(f.header) if h != "Time" and h]
    has = [any(fields[i] != "" for i, _ in fuels) for _, fields in f.rows]
    out = []
    for (line, fields), start, any_value in zip(f.rows, interval_starts(f, has), has, strict=True):
        if start is None or not any_value:
            continue  # dropped rows, and future intervals (present with empty values)
        for i, fuel in fuels:
            out.append((start, fuel, number(f, line, f.header[i], fields[i])))
    return out


def demand_rows(f: OutlookFile) -> list[tuple[datetime, float]]:
    """(interval start, MW) of ``Current demand``; rows without it (future intervals) are skipped.

    Only ``Current demand`` is stored, so only it decides whether a row has values: a
    spring-forward gap row (or an unlabelled row) carrying just the forecast columns is dropped
    like an empty one; a measured value there is still an error, as it cannot be placed in time."""
    col = f.header.index(DEMAND_COLUMN)
    has = [fields[col] != "" for _, fields in f.rows]
    out = []
    for (line, fields), start in zip(f.rows, interval_starts(f, has), strict=True):
        value = number(f, line, DEMAND_COLUMN, fields[col])
        if start is None or value is None:
            continue
        out.append((start, value))
    return out
