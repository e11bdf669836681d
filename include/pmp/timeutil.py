"""Local market time -> UTC interval conversion.

Every ISO labels intervals in local prevailing time, and every ISO handles the two
daylight-saving transitions differently. This module holds the *generic* rules; each ISO
module decides which rule its labels follow and documents why, next to its parser.

All functions return timezone-aware UTC datetimes. Interval ends are always computed in
UTC (start + duration) so 23- and 25-hour days come out exact.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


class TimeLabelError(ValueError):
    """A local time label that cannot be placed on the UTC timeline."""


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _is_nonexistent(naive: datetime, tz: ZoneInfo) -> bool:
    """True when the wall-clock time falls in the spring-forward gap."""
    aware = naive.replace(tzinfo=tz)
    round_trip = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return round_trip != naive


def _is_ambiguous(naive: datetime, tz: ZoneInfo) -> bool:
    """True when the wall-clock time occurs twice (fall-back repeated hour)."""
    return naive.replace(tzinfo=tz, fold=0).utcoffset() != naive.replace(tzinfo=tz, fold=1).utcoffset()


def localize(naive: datetime, tz_name: str, *, repeated: bool | None = None) -> datetime:
    """Place a local wall-clock instant on the UTC timeline.

    ``repeated`` resolves the fall-back ambiguity: ``False`` = first occurrence (daylight
    time), ``True`` = second occurrence (standard time). An ambiguous time without a flag,
    or a time in the spring-forward gap, raises :class:`TimeLabelError`.
    """
    tz = zone(tz_name)
    if _is_nonexistent(naive, tz):
        raise TimeLabelError(f"{naive.isoformat()} does not exist in {tz_name} (spring-forward gap)")
    if _is_ambiguous(naive, tz):
        if repeated is None:
            raise TimeLabelError(f"{naive.isoformat()} is ambiguous in {tz_name} and no repeated-hour flag")
        return naive.replace(tzinfo=tz, fold=1 if repeated else 0).astimezone(UTC)
    return naive.replace(tzinfo=tz).astimezone(UTC)


@lru_cache(maxsize=4096)
def hour_ending_start(day: date, hour_ending: int, tz_name: str, repeated: bool = False) -> datetime:
    """UTC start of the hour labelled ``hour_ending`` (1..24) on the local market ``day``.

    Rule (ERCOT, ISO-NE and others that label hours by their local end):
    * the hour starts at local ``hour_ending - 1``:00; ``24`` therefore starts at 23:00;
    * on the fall-back day the start 01:00 occurs twice and ``repeated`` picks the copy;
    * on the spring-forward day the label after the gap (e.g. HE 03:00 when 02:00 is skipped)
      has a start inside the gap; its *end* label is a real wall-clock time, so the hour is
      placed by its end: start = localize(end) - 1 h.
    """
    if not 1 <= hour_ending <= 24:
        raise TimeLabelError(f"hour ending {hour_ending} outside 1..24")
    naive_start = datetime.combine(day, time()) + timedelta(hours=hour_ending - 1)
    tz = zone(tz_name)
    if _is_nonexistent(naive_start, tz):
        naive_end = naive_start + timedelta(hours=1)
        return localize(naive_end, tz_name) - timedelta(hours=1)
    return localize(naive_start, tz_name, repeated=repeated)


def market_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """UTC [start, end) of a local market day: 23, 24 or 25 hours long."""
    start = localize(datetime.combine(day, time()), tz_name)
    end = localize(datetime.combine(day + timedelta(days=1), time()), tz_name)
    return start, end


def market_day_hours(day: date, tz_name: str) -> int:
    start, end = market_day_bounds(day, tz_name)
    return int((end - start).total_seconds() // 3600)


def local_day_of(instant: datetime, tz_name: str) -> date:
    """Local market day that contains the UTC instant."""
    return instant.astimezone(zone(tz_name)).date()


def floor_minutes(instant: datetime, minutes: int) -> datetime:
    """Floor a UTC instant to a multiple of ``minutes`` (whole-hour offsets keep this exact locally)."""
    epoch = int(instant.timestamp())
    step = minutes * 60
    return datetime.fromtimestamp(epoch - epoch % step, UTC)
