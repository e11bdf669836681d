"""SPP's marketplace file browser layout: which file holds which interval, by name.

Every SPP public file lives at ``/file-browser-api/download/{folder}?path={path}`` and is named in
local Central prevailing time (``America/Chicago``), while the rows inside carry GMT interval-end
stamps (``GMTIntervalEnd``). This module is the one place the two are related:

* :func:`interval_path` - a 5-minute interval file (``By_Interval``): the **folder comes from the
  interval start** (the file of the interval ending at 00:00 sits in the previous day's folder), the
  **file name from the interval end**, and the end labels of the repeated fall-back hour's second pass
  (CST) carry a ``d`` suffix (``RTBM-LMP-SL-202411030105d.csv``).
* :func:`daily_path`, :func:`da_path` - one file per operating day (``By_Day``, ``…0100.csv``).
* :func:`vintage_path` - hourly issues of the mid-term load forecast, named by their issue hour
  (``OP-MTLF-202411030100d.csv`` for the second 01:00).
* :func:`name_instant` - the inverse: the UTC instant a file name's local stamp (and ``d``) means.

The name is only ever a *locator*; the UTC interval of a row is always its own GMT stamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

TZ = "America/Chicago"
CENTRAL = ZoneInfo(TZ)
FIVE = timedelta(minutes=5)


def local(t: datetime) -> datetime:
    return t.astimezone(CENTRAL)


def second_pass(t: datetime) -> bool:
    """True when the UTC instant ``t`` shows a local wall time that occurs twice (the fall-back
    hour) and this is its second, standard-time occurrence: SPP appends ``d`` to such names."""
    lt = local(t)
    naive = lt.replace(tzinfo=None)
    first = naive.replace(tzinfo=CENTRAL, fold=0)
    second = naive.replace(tzinfo=CENTRAL, fold=1)
    return first.utcoffset() != second.utcoffset() and lt.utcoffset() == second.utcoffset()


def stamp(t: datetime, fmt: str = "%Y%m%d%H%M") -> str:
    """A file-name stamp: the local wall time of ``t``, plus ``d`` on the repeated hour's second pass."""
    return local(t).strftime(fmt) + ("d" if second_pass(t) else "")


@dataclass(frozen=True)
class Family:
    """One SPP file family in one file-browser folder (``fs``)."""

    fs: str  # file-browser folder, e.g. "rtbm-lmp-by-location"
    prefix: str  # file name prefix, e.g. "RTBM-LMP-SL"
    daily_prefix: str | None = None  # By_Day file of the same data, e.g. "RTBM-LMP-DAILY-SL"

    def interval_path(self, end: datetime) -> str:
        return interval_path(self.prefix, end)

    def daily_path(self, day: date) -> str:
        assert self.daily_prefix
        return daily_path(self.daily_prefix, day)

    def latest_path(self) -> str:
        return f"/{self.prefix}-latestInterval.csv"


def interval_path(prefix: str, end: datetime, minutes: int = 5) -> str:
    """``/{YYYY}/{MM}/By_Interval/{DD}/{prefix}-{YYYYMMDDHHMM}[d].csv`` of the interval ending at
    ``end`` (UTC): folder from the local interval *start*, name from the local interval *end*."""
    start = local(end - timedelta(minutes=minutes))
    return f"/{start:%Y}/{start:%m}/By_Interval/{start:%d}/{prefix}-{stamp(end)}.csv"


def daily_path(prefix: str, day: date) -> str:
    """``/{YYYY}/{MM}/By_Day/{prefix}-{YYYYMMDD}.csv`` (the RTBM daily roll-ups)."""
    return f"/{day:%Y}/{day:%m}/By_Day/{prefix}-{day:%Y%m%d}.csv"


def da_path(prefix: str, day: date, *, by_day: bool = True) -> str:
    """Day-ahead files are named after the operating day's first hour ending, ``…{YYYYMMDD}0100.csv``:
    DA LMPs under ``By_Day``, DA MCPs directly in the month folder."""
    folder = f"/{day:%Y}/{day:%m}" + ("/By_Day" if by_day else "")
    return f"{folder}/{prefix}-{day:%Y%m%d}0100.csv"


def vintage_path(prefix: str, issued: datetime) -> str:
    """``/{YYYY}/{MM}/{DD}/{prefix}-{YYYYMMDDHH}00[d].csv``: an hourly forecast issue, in the folder
    of its local issue day, named by its local issue hour."""
    lt = local(issued)
    return f"/{lt:%Y}/{lt:%m}/{lt:%d}/{prefix}-{lt:%Y%m%d%H}00{'d' if second_pass(issued) else ''}.csv"


_NAME_STAMP = re.compile(r"-(?P<ts>\d{12})(?P<d>d?)\.csv$", re.IGNORECASE)


class FileNameError(ValueError):
    """A file name whose local stamp cannot be placed on the UTC timeline."""


def name_instant(name: str) -> datetime:
    """The UTC instant of a name's ``YYYYMMDDHHMM[d]`` stamp (interval end, or issue hour).

    ``d`` picks the second (CST) occurrence of a repeated fall-back time. A ``d`` on a time that is
    not repeated (gridstatus records an ``OP-MTLF-…0200d`` file on 2025-11-02) is read as that
    wall time; a stamp in the spring-forward gap is an error."""
    m = _NAME_STAMP.search(name)
    if not m:
        raise FileNameError(f"{name}: no -YYYYMMDDHHMM[d].csv stamp in the name")
    naive = datetime.strptime(m.group("ts"), "%Y%m%d%H%M")
    aware = naive.replace(tzinfo=CENTRAL, fold=1 if m.group("d") else 0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(CENTRAL).replace(tzinfo=None) != naive:
        raise FileNameError(f"{name}: {naive:%Y-%m-%d %H:%M} does not exist in {TZ} (spring-forward gap)")
    return utc


def interval_ends(start: datetime, end: datetime, minutes: int = 5) -> list[datetime]:
    """Interval ends (UTC) of every ``minutes`` interval that starts in [start, end), on the clock's
    ``minutes`` grid (Central's offsets are whole hours, so the UTC grid is the local one)."""
    step = timedelta(minutes=minutes)
    seconds = minutes * 60
    epoch = int(start.timestamp())
    t = datetime.fromtimestamp(-(-epoch // seconds) * seconds, UTC) + step
    out = []
    while t - step < end:
        out.append(t)
        t += step
    return out


def hours(start: datetime, end: datetime) -> list[datetime]:
    """Every whole UTC hour in [start, end) (SPP's local hours are whole UTC hours too)."""
    t = start.replace(minute=0, second=0, microsecond=0)
    if t < start:
        t += timedelta(hours=1)
    out = []
    while t < end:
        out.append(t)
        t += timedelta(hours=1)
    return out
