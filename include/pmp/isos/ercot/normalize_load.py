"""ERCOT load -> the standard ``load`` table.

``load_actual`` holds two ERCOT reports at two resolutions:

* NP6-345-CD "Actual System Load by Weather Zone", hourly:
  ``OperDay,HourEnding,COAST,EAST,FAR_WEST,NORTH,NORTH_C,SOUTHERN,SOUTH_C,WEST,TOTAL,DSTFlag``.
  Areas keep ERCOT's weather-zone names; ``TOTAL`` becomes ``SYSTEM`` (published as is, it may
  differ from the zone sum by 0.01).
* NP6-235-CD "System-Wide Demand", 15-minute: ``DeliveryDate,TimeEnding,Demand,DSTFlag`` -> area
  ``SYSTEM`` as well. The two ``SYSTEM`` series never collide: actuals carry
  ``forecast_issued_at = interval_end``, so the hourly and the 15-minute value starting at the same
  instant have different keys, and the resolution (``interval_end - interval_start``) tells them
  apart in queries and in the completeness checks.

``load_forecast``: NP3-565-CD "Seven-Day Load Forecast by Model and Weather Zone":
``DeliveryDate,HourEnding,Coast,...,SystemTotal,Model,InUseFlag,DSTFlag``. Each document is one
vintage; the file has no issue time, so ``forecast_issued_at`` is the document's publication time
(MIS ``PublishDate`` / API ``postDatetime``, else the posting time in the constructed file name).
``model`` is ERCOT's model name, ``InUseFlag`` -> ``in_use``; ``SystemTotal`` -> ``SYSTEM``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pandas as pd
import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.isos.ercot.normalize import (
    TZ,
    _dam,
    _dates,
    _first_bad,
    _line,
    _read_csv,
    _reject_duplicates,
    _repeated_flags,
    published_at_from_name,
)
from pmp.payload import leaf_name
from pmp.schema import LOAD, conform
from pmp.timeutil import TimeLabelError, localize, market_day_hours

# The ISO-wide total column of each report (stored as area SYSTEM).
TOTAL_COLUMNS = {"TOTAL", "SystemTotal", "System Total", "SYSTEM_TOTAL", "ERCOT"}
_META = {"delivery_date", "hour_ending", "repeated", "Model", "InUseFlag"}


def _areas(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in _META]


def _values(path: str, df: pd.DataFrame, field: str) -> pd.Series:
    """MW values as published; an empty cell is a missing value (NULL), text is an error."""
    values = pd.to_numeric(df[field], errors="coerce")
    _first_bad(path, df, values.isna() & (df[field] != ""), field, "not a number")
    return values.astype("float64")


def _long(
    path: str, df: pd.DataFrame, start: pd.Series, minutes: int, *, kind: str, issued: pd.Series | None,
    models: pd.Series | None, in_use: pd.Series | None, published_at: datetime | None,
) -> pa.Table:
    """Wide (one column per area) -> long rows of the ``load`` table."""
    start_utc = pd.to_datetime(start, utc=True)
    end_utc = start_utc + pd.Timedelta(minutes=minutes)
    parts = []
    for col in _areas(df):
        area = "SYSTEM" if col in TOTAL_COLUMNS else col
        parts.append(pd.DataFrame({
            "interval_start": start_utc,
            "interval_end": end_utc,
            "area": area,
            # actuals: the value is known when the interval ends
            "forecast_issued_at": end_utc if issued is None else issued,
            "model": "" if models is None else models,
            "load_mw": _values(path, df, col),
            "in_use": None if in_use is None else in_use,
        }))
    long = pd.concat(parts, ignore_index=True)
    n = len(long)
    ts = LOAD.arrow.field("interval_start").type
    table = pa.table({
        "interval_start": pa.array(long["interval_start"], ts),
        "interval_end": pa.array(long["interval_end"], ts),
        "iso": pa.array(["ERCOT"] * n, pa.string()),
        "area": pa.array(long["area"], pa.string()),
        "kind": pa.array([kind] * n, pa.string()),
        "forecast_issued_at": pa.array(pd.to_datetime(long["forecast_issued_at"], utc=True), ts),
        "model": pa.array(long["model"], pa.string()),
        "load_mw": pa.array(long["load_mw"], pa.float64()),
        "in_use": pa.array(long["in_use"], pa.bool_()) if in_use is not None else pa.nulls(n, pa.bool_()),
        "published_at": pa.array([published_at] * n, ts),
        "source": pa.array([leaf_name(path)] * n, pa.string()),
    })
    return conform(table, LOAD)


def normalize_actual_hourly(path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """NP6-345-CD (also NP6-346-CD by forecast zone: same layout)."""
    df = _read_csv(path, data, ("delivery_date", "hour_ending"))
    if df.empty:
        return LOAD.empty()
    if not _areas(df):
        raise NormalizeError(path, 1, None, "no load columns besides the date, hour and flag")
    start, minutes = _dam(path, df)
    return _long(path, df, start, minutes, kind="actual", issued=None, models=None, in_use=None,
                 published_at=published_at or published_at_from_name(path))


def _fall_back_transition_rows(
    path: str, dates: pd.Series, labels: pd.Series, repeated: pd.Series, candidates: list[int],
    ends: dict[int, datetime],
) -> dict[int, bool]:
    """Quirk (NP6-235-CD): the 15-minute interval that ends at the fall-back instant (02:00 CDT)
    is labelled by the wall clock after the change, ``01:00``, with flag ``N`` - the same label as
    the interval ending at 01:00 CDT an hour earlier. Which of the two a ``01:00``/``N`` row of a
    25-hour day is (``candidates``) does not depend on the order of the file's rows:

    * one such row closes the hour whose other rows the file holds (ERCOT posts one hour per
      document): it is the transition when the file has ``01:15`` .. ``01:45``/``N`` rows of that
      date and none of ``00:15`` .. ``00:45``, the first ``01:00`` in the opposite case;
    * two such rows: the earlier in time is the first ``01:00``; which row that is follows from
      the direction the file's other rows are sorted in (``ends``: ascending or descending);
    * anything else (one row with both neighbouring hours or neither, two rows in a file whose
      other rows are not sorted, three or more) is ambiguous and an error naming the row.

    Returns candidate index -> True for the transition interval."""
    out: dict[int, bool] = {}
    by_day: dict[date, list[int]] = {}
    for idx in candidates:
        by_day.setdefault(dates[idx], []).append(idx)
    for day, rows in by_day.items():
        present = {labels[i] for i in ends if dates[i] == day and not repeated[i]}
        if len(rows) == 1:
            before, after = bool(present & {"00:15", "00:30", "00:45"}), bool(present & {"01:15", "01:30", "01:45"})
            if before != after:
                out[rows[0]] = after
                continue
            reason = "the file holds both hours that can end with it" if before else "no neighbouring row tells"
        elif len(rows) == 2:
            order = [ends[i] for i in sorted(ends)]
            steps = [b - a for a, b in zip(order, order[1:], strict=False)]
            if steps and all(s > timedelta(0) for s in steps):
                out[rows[0]], out[rows[1]] = False, True  # ascending file: the earlier row is the first 01:00
                continue
            if steps and all(s < timedelta(0) for s in steps):
                out[rows[0]], out[rows[1]] = True, False
                continue
            reason = "the file's other rows are not sorted in time"
        else:
            reason = f"{len(rows)} such rows"
        raise NormalizeError(path, _line(rows[-1]), "TimeEnding",
                             f"'01:00' with flag N on the fall-back day {day} can end at 01:00 CDT or at the change "
                             f"(01:00 CST) and {reason}")
    return out


def normalize_system_demand(path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """NP6-235-CD: ``TimeEnding`` is the local wall-clock end of a 15-minute interval (``24:00`` =
    next midnight); ``DSTFlag=Y`` marks the intervals of the repeated hour's second copy; the
    spring-forward day goes ``01:45`` -> ``03:00``."""
    df = _read_csv(path, data, ("delivery_date", "TimeEnding", "Demand"))
    if df.empty:
        return LOAD.empty()
    dates = _dates(path, df)
    repeated = _repeated_flags(path, df)
    labels = df["TimeEnding"]
    bad = ~labels.str.fullmatch(r"\d{1,2}:(00|15|30|45)")
    _first_bad(path, df, bad, "TimeEnding", "time ending must be HH:MM on a quarter hour")
    cache: dict[tuple, datetime] = {}

    def end_of(idx: int, rep: bool) -> datetime:
        key = (dates[idx], labels[idx], rep)
        if key not in cache:
            d, label, _ = key
            hh, mm = (int(x) for x in label.split(":"))
            if hh > 24 or (hh == 24 and mm):
                raise NormalizeError(path, _line(idx), "TimeEnding", f"time ending out of range: {label!r}")
            naive = datetime.combine(d, time()) + timedelta(hours=hh, minutes=mm)
            try:
                cache[key] = localize(naive, TZ, repeated=rep)
            except TimeLabelError as exc:
                raise NormalizeError(path, _line(idx), "TimeEnding", str(exc)) from exc
        return cache[key]

    candidates = [i for i in df.index if labels[i] == "01:00" and not repeated[i]
                  and market_day_hours(dates[i], TZ) == 25]
    ends = {i: end_of(i, bool(repeated[i])) for i in df.index if i not in set(candidates)}
    transition = _fall_back_transition_rows(path, dates, labels, repeated, candidates, ends)
    ends.update({i: end_of(i, transition[i]) for i in candidates})
    start = pd.Series([ends[i] for i in df.index], index=df.index) - timedelta(minutes=15)
    _reject_duplicates(path, df, start, "TimeEnding")
    df = df.rename(columns={"Demand": "SYSTEM"}).drop(columns=["TimeEnding"])
    return _long(path, df, start, 15, kind="actual", issued=None, models=None, in_use=None,
                 published_at=published_at or published_at_from_name(path))


def normalize_load_actual(path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """Either report of ``load_actual``, told apart by its header."""
    head = data[:400].decode("utf-8-sig", errors="replace").split("\n", 1)[0]
    if re.search(r"(^|,)\s*TimeEnding\s*(,|$)", head, re.IGNORECASE):
        return normalize_system_demand(path, data, published_at)
    return normalize_actual_hourly(path, data, published_at)


def normalize_forecast(path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """NP3-565-CD: one vintage per document; every model's forecast kept, ``InUseFlag`` as ``in_use``."""
    df = _read_csv(path, data, ("delivery_date", "hour_ending", "Model"))
    if df.empty:
        return LOAD.empty()
    issued = published_at or published_at_from_name(path)
    if issued is None:
        raise NormalizeError(path, None, None, "forecast issue time unknown: no publication time given and "
                             "none in the file name (cdr.<rtid>.<id>.<YYYYMMDD>.<HHMMSS>.<stem>.csv)")
    _first_bad(path, df, df["Model"] == "", "Model", "empty model name")
    in_use = None
    if "InUseFlag" in df.columns:
        flags = df["InUseFlag"].str.upper()
        _first_bad(path, df, ~flags.isin(["Y", "N", "TRUE", "FALSE"]), "InUseFlag", "flag must be Y or N")
        in_use = flags.isin(["Y", "TRUE"])
    start, minutes = _dam(path, df)
    return _long(path, df, start, minutes, kind="forecast", issued=pd.Series(issued, index=df.index),
                 models=df["Model"], in_use=in_use, published_at=issued)
