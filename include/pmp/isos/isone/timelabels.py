"""ISO-NE time labels -> UTC interval starts. One function per labelling convention ISO-NE uses.

* :func:`hour_ending` - hourly files: ``Date`` + ``Hour Ending`` ``01``..``24``, ``02X`` for the
  repeated fall-back hour; on the spring-forward day the hour after 01:00 EST ends at 03:00 EDT and
  is labelled ``03`` (``02`` does not occur).
* :class:`LocalClock` - 5-minute and snapshot files: local wall-clock times **without offset**. The
  repeated fall-back hour is told apart only by order: per entity (location, zone, fuel) the series
  steps back in wall-clock time where standard time begins (the files are in time order; gridstatus
  infers it the same way, per location).
* :func:`latest_before` - the current-interval report: one date-and-time label per location without
  offset, so no series to order; the report's ``Report generated`` stamp (EDT/EST) decides.
* :func:`offset_instant` - Web Services ``BeginDate``/``CreationDate``: explicit UTC offsets,
  unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from datetime import UTC, date, datetime, time

from pmp.timeutil import TimeLabelError, localize
from pmp.timeutil import hour_ending_start as _hour_ending_start

TZ = "America/New_York"  # ISO-NE publishes Eastern prevailing time everywhere

_HE = re.compile(r"(\d{1,2})(X?)")


def _ambiguous(day: date, hour: int) -> bool:
    try:
        localize(datetime.combine(day, time(hour)), TZ)
    except TimeLabelError as exc:
        return "ambiguous" in str(exc)
    return False


def _skipped(day: date, hour: int) -> bool:
    try:
        localize(datetime.combine(day, time(hour)), TZ)
    except TimeLabelError as exc:
        return "does not exist" in str(exc)
    return False


def hour_ending(day: date, label: str) -> datetime:
    """UTC start of the hour labelled ``label`` on local ``day``. Raises :class:`TimeLabelError`."""
    m = _HE.fullmatch(label.strip())
    if not m:
        raise TimeLabelError(f"hour ending {label!r} is not 01..24 or 02X")
    he, repeated = int(m.group(1)), bool(m.group(2))
    if repeated and (he != 2 or not _ambiguous(day, 1)):
        raise TimeLabelError(f"hour ending {label!r} on {day}: only 02X on a fall-back day carries an X")
    if he == 2 and _skipped(day, 2):
        # ISO-NE labels the spring-forward day 01, 03, 04, ...: an 02 would duplicate the 03.
        raise TimeLabelError(f"hour ending 02 does not exist on {day} (spring forward: 01 is followed by 03)")
    return _hour_ending_start(day, he, TZ, repeated)


class LocalClock:
    """Offset-free local times in file order -> UTC, resolving the repeated hour per entity by order.

    Within one entity's series, a time in the ambiguous hour is daylight time until the series steps
    *back* in wall-clock time (01:55 -> 01:00, or 01:58:40 -> 01:02:27 for irregular snapshots); from
    then on that day's ambiguous times are standard time. A time seen twice in the same pass is a
    duplicate.
    """

    def __init__(self) -> None:
        self._last: dict[Hashable, datetime] = {}
        self._second: set[tuple[Hashable, date]] = set()
        self._seen: set[tuple[Hashable, datetime, bool]] = set()
        self._cache: dict[tuple[datetime, bool], datetime] = {}

    def instant(self, entity: Hashable, naive: datetime) -> datetime:
        prev = self._last.get(entity)
        self._last[entity] = naive
        repeated = False
        if _ambiguous(naive.date(), naive.hour):
            if prev is not None and prev.date() == naive.date() and naive <= prev:
                self._second.add((entity, naive.date()))
            repeated = (entity, naive.date()) in self._second
        if (entity, naive, repeated) in self._seen:
            raise TimeLabelError(f"{naive:%m/%d/%Y %H:%M:%S} occurs twice for {entity!r}")
        self._seen.add((entity, naive, repeated))
        key = (naive, repeated)
        if key not in self._cache:
            self._cache[key] = localize(naive, TZ, repeated=repeated)
        return self._cache[key]


def latest_before(naive: datetime, anchor: datetime) -> datetime:
    """UTC instant of an offset-free local time that is the newest interval of a report generated at
    ``anchor``: the latest instant with that wall-clock time not after ``anchor``.

    Quirk: ISO Express's current-interval report (``fiveminlmp/current``) lists one interval, labelled
    ``11/03/2024 01:05`` without an offset. In the repeated fall-back hour that label occurs twice and a
    single row per location gives no order to tell the passes apart (:class:`LocalClock` would take
    daylight time); the report was generated minutes after its interval, and its stamp carries EDT/EST,
    so the pass whose instant is the latest one not after the stamp is the one meant.
    """
    day, hour = naive.date(), naive.hour
    candidates = [localize(naive, TZ)] if not _ambiguous(day, hour) else [
        localize(naive, TZ, repeated=False), localize(naive, TZ, repeated=True)]
    earlier = [c for c in candidates if c <= anchor]
    if not earlier:
        raise TimeLabelError(f"{naive:%m/%d/%Y %H:%M} is after the report's generation time "
                             f"{anchor.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
    return max(earlier)


def offset_instant(value: str) -> datetime:
    """``2024-11-03T01:05:00.000-05:00`` -> UTC. A value without an offset is an error."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise TimeLabelError(f"{value!r} has no UTC offset")
    return dt.astimezone(UTC)
