"""Reading OASIS CSV answers: every member of a zip into one frame that remembers where each row
came from (file, line), with the checks every OASIS product shares.

CAISO quirks handled here, each in one place:
* :func:`read_members` - answers are zips of CSV (``resultformat=6``); an "all nodes" query splits
  into one CSV per LMP component; errors come as an XML file in the zip (1000/1001 = no data).
* :func:`gmt_intervals` - the ``*_GMT`` columns are the key. ``OPR_HR`` is hour ending in local
  time: 25 on the fall-back day (filed between hours 2 and 3), no 3 on the spring-forward day,
  so it is never used to place an interval; ``OPR_DT`` is checked against the GMT start instead.
* :func:`floats` - prices parsed with ``float()`` (correctly rounded, exactly as published).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable

import pandas as pd

from pmp.errors import NormalizeError, utf8_text
from pmp.isos.caiso.oasis import TZ, parse_error_xml
from pmp.payload import PayloadError, iter_members

FILE, LINE = "__file", "__line"
GMT_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # 2024-03-10T08:00:00-00:00


def _looks_like_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def _read_csv(path: str, data: bytes, required: Iterable[str]) -> pd.DataFrame:
    """One CSV member as strings (cleaned later, once per document, in :func:`read_members`)."""
    text = utf8_text(path, data)
    if not text.strip():
        raise NormalizeError(path, None, None, "empty file")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise NormalizeError(path, None, None, f"malformed CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise NormalizeError(path, 1, missing[0], f"missing column; header is {list(df.columns)}")
    df[FILE] = path
    df[LINE] = range(2, len(df) + 2)  # header is line 1; blank lines are kept so numbers stay exact
    return df


def read_members(name: str, payload: bytes, required: tuple[str, ...]) -> pd.DataFrame:
    """All CSV rows of an OASIS answer (zip, or a bare CSV as saved from a browser).

    An XML member is an OASIS error report: 1000/1001 ("no data") contribute no rows, any other
    code is a :class:`NormalizeError` naming the code; an XML data report (a request without
    ``resultformat=6``) is refused. Values are stripped and blank lines dropped.
    """
    frames = []
    try:
        for path, data in iter_members(name, payload, suffixes=(".csv", ".xml")):
            if path.lower().endswith(".xml") or _looks_like_xml(data):
                info = parse_error_xml(path, data)
                if info is None:
                    raise NormalizeError(path, None, None, "XML report, not CSV: request it with resultformat=6")
                if info.no_data:
                    continue
                raise NormalizeError(path, None, "ERR_CODE", str(info))
            frames.append(_read_csv(path, data, required))
    except PayloadError as exc:
        raise NormalizeError(name, None, None, str(exc)) from exc
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in (*required, FILE)} | {LINE: pd.Series(dtype=int)})
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    values = [c for c in df.columns if c not in (FILE, LINE)]
    df[values] = df[values].fillna("")  # blank lines, and columns a member lacks
    for col in values:
        df[col] = df[col].str.strip()
    return df[(df[values] != "").any(axis=1)]


def fail_first(df: pd.DataFrame, bad: pd.Series, field: str, message: str) -> None:
    """Raise for the first flagged row, naming its file, line and field."""
    if bad.any():
        idx = bad[bad].index[0]
        value = df.at[idx, field] if field in df.columns else None
        raise NormalizeError(str(df.at[idx, FILE]), int(df.at[idx, LINE]), field,
                             message + (f": {value!r}" if value is not None else ""))


def check_values(df: pd.DataFrame, field: str, allowed: Iterable[str], what: str) -> None:
    allowed = set(allowed)
    fail_first(df, ~df[field].isin(allowed), field, f"{what} must be one of {sorted(allowed)}")


def floats(df: pd.DataFrame, field: str, *, allow_empty: bool = False) -> pd.Series:
    """Values parsed with ``float()``: correctly rounded, exactly as published; non-finite refused."""
    out: list[float] = []
    for idx, raw in zip(df.index, df[field], strict=True):
        if raw == "" and allow_empty:
            out.append(math.nan)
            continue
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise NormalizeError(str(df.at[idx, FILE]), int(df.at[idx, LINE]), field,
                                 f"{'empty value' if raw == '' else 'not a number'}: {raw!r}")
        out.append(v)
    return pd.Series(out, index=df.index, dtype="float64")


def gmt_intervals(df: pd.DataFrame, minutes: int | pd.Series) -> tuple[pd.Series, pd.Series]:
    """UTC interval start/end from ``INTERVALSTARTTIME_GMT`` / ``INTERVALENDTIME_GMT``.

    Checks: both parse, the length is the product's (``minutes``, or one value per row),
    and ``OPR_DT`` (the local trade date) is the Pacific date of the start. ``OPR_HR`` is not
    used: it repeats (25) or skips (3) on DST days.
    """
    start = pd.to_datetime(df["INTERVALSTARTTIME_GMT"], format=GMT_FORMAT, errors="coerce", utc=True)
    fail_first(df, start.isna(), "INTERVALSTARTTIME_GMT", "not a YYYY-MM-DDTHH:MM:SS-00:00 timestamp")
    end = pd.to_datetime(df["INTERVALENDTIME_GMT"], format=GMT_FORMAT, errors="coerce", utc=True)
    fail_first(df, end.isna(), "INTERVALENDTIME_GMT", "not a YYYY-MM-DDTHH:MM:SS-00:00 timestamp")
    length = (end - start).dt.total_seconds() / 60
    expected = minutes if isinstance(minutes, pd.Series) else pd.Series(float(minutes), index=df.index)
    what = "interval length" if isinstance(minutes, pd.Series) else f"{minutes} minutes"
    fail_first(df, length != expected, "INTERVALENDTIME_GMT", f"interval length is not the product's {what}")
    if "OPR_DT" in df.columns:
        local_day = start.dt.tz_convert(TZ).dt.strftime("%Y-%m-%d")
        fail_first(df, local_day != df["OPR_DT"], "OPR_DT", "trade date is not the Pacific date of the GMT start")
    return start, end


def utc_column(series: pd.Series) -> list:
    """pandas UTC timestamps -> python datetimes for pyarrow."""
    return list(series.dt.to_pydatetime())
