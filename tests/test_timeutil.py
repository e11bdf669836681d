from datetime import UTC, date, datetime, timedelta

import pytest

from pmp.timeutil import (
    TimeLabelError,
    floor_minutes,
    hour_ending_start,
    localize,
    market_day_bounds,
    market_day_hours,
)

CT = "America/Chicago"


def z(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2024, 3, 10), 23), (date(2024, 11, 3), 25), (date(2024, 6, 1), 24), (date(2019, 1, 1), 24)],
)
def test_market_day_length(day: date, hours: int) -> None:
    assert market_day_hours(day, CT) == hours
    start, end = market_day_bounds(day, CT)
    assert (end - start) == timedelta(hours=hours)


def test_hour_ending_normal_day() -> None:
    assert hour_ending_start(date(2024, 6, 1), 1, CT) == z(2024, 6, 1, 5)
    # 24:00 ends at the next local midnight
    assert hour_ending_start(date(2024, 6, 1), 24, CT) + timedelta(hours=1) == z(2024, 6, 2, 5)


def test_hour_ending_spring_forward_skips_he02() -> None:
    day = date(2024, 3, 10)
    labels = [1] + list(range(3, 25))  # ERCOT omits HE 02:00
    starts = [hour_ending_start(day, h, CT) for h in labels]
    assert starts[0] == z(2024, 3, 10, 6)
    assert starts[1] == z(2024, 3, 10, 7)  # HE 03:00 = 01:00 CST .. 03:00 CDT
    assert starts[2] == z(2024, 3, 10, 8)
    assert all(b - a == timedelta(hours=1) for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] + timedelta(hours=1) == market_day_bounds(day, CT)[1]


def test_hour_ending_fall_back_repeated_flag() -> None:
    day = date(2024, 11, 3)
    first = hour_ending_start(day, 2, CT, repeated=False)
    second = hour_ending_start(day, 2, CT, repeated=True)
    assert first == z(2024, 11, 3, 6)
    assert second == z(2024, 11, 3, 7)
    assert hour_ending_start(day, 3, CT) == z(2024, 11, 3, 8)
    labels = [(1, False), (2, False), (2, True)] + [(h, False) for h in range(3, 25)]
    starts = [hour_ending_start(day, h, CT, r) for h, r in labels]
    assert len(set(starts)) == 25
    assert all(b - a == timedelta(hours=1) for a, b in zip(starts, starts[1:], strict=False))


def test_localize_rejects_gap_and_unflagged_ambiguity() -> None:
    with pytest.raises(TimeLabelError, match="does not exist"):
        localize(datetime(2024, 3, 10, 2, 30), CT)
    with pytest.raises(TimeLabelError, match="ambiguous"):
        localize(datetime(2024, 11, 3, 1, 30), CT)
    assert localize(datetime(2024, 11, 3, 1, 30), CT, repeated=True) == z(2024, 11, 3, 7, 30)


def test_floor_minutes() -> None:
    assert floor_minutes(z(2024, 1, 1, 10, 7, 31), 5) == z(2024, 1, 1, 10, 5)
    assert floor_minutes(z(2024, 1, 1, 10, 5), 5) == z(2024, 1, 1, 10, 5)
