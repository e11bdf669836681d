"""OASIS protocol details shared by the hook, the adapter and the normalizers.

* Request times are GMT, formatted ``YYYYMMDDTHH:MM-0000``; a trade day (the US/Pacific day)
  starts at 08:00 UTC in PST and 07:00 UTC in PDT, so windows are built from local midnights.
* A request covers at most 31 days (error 1004 otherwise).
* Errors come back as HTTP 200 with a zip holding one XML file (``<m:ERR_CODE>``), not as HTTP
  errors; :func:`oasis_error` reads them.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pmp.payload import is_zip

TZ = "America/Los_Angeles"
PT = ZoneInfo(TZ)
MAX_WINDOW_DAYS = 31  # OASIS error 1004: "Data can be requested for period of 31 days only"
REQUEST_TIME_FORMAT = "%Y%m%dT%H:%M-0000"

# Error codes from the OASIS interface specification (see README.md for the full table).
NO_DATA = frozenset({1000, 1001})  # "No data returned for the specified selection": an empty result
GROUPZIP_PROCESSING = 1015  # GroupZip builds the file asynchronously: ask again later
TRANSIENT = frozenset({1003, 1010})  # timeout, system error: worth another try
ERROR_NAMES = {
    1000: "no data", 1001: "no data", 1002: "invalid datetime format", 1003: "timeout",
    1004: "window longer than 31 days", 1005: "bad report name", 1010: "system error",
    1014: "start date beyond limit", 1015: "GroupZip still processing", 1016: "bad GROUPID",
    1017: "more than 10 nodes", 1020: "version missing or invalid",
}

_ERR_CODE = re.compile(rb"<(?:\w+:)?ERR_CODE>\s*(\d+)\s*</(?:\w+:)?ERR_CODE>")
_ERR_DESC = re.compile(rb"<(?:\w+:)?ERR_DESC>(.*?)</(?:\w+:)?ERR_DESC>", re.S)


@dataclass(frozen=True)
class OasisErrorInfo:
    code: int
    description: str
    member: str  # the XML file inside the zip

    @property
    def no_data(self) -> bool:
        return self.code in NO_DATA

    def __str__(self) -> str:
        name = ERROR_NAMES.get(self.code, "error")
        return f"OASIS error {self.code} ({name}): {self.description}"


def parse_error_xml(member: str, text: bytes) -> OasisErrorInfo | None:
    m = _ERR_CODE.search(text)
    if not m:
        return None
    d = _ERR_DESC.search(text)
    desc = d.group(1).decode("utf-8", "replace").strip() if d else ""
    return OasisErrorInfo(int(m.group(1)), desc, member)


def oasis_error(payload: bytes) -> OasisErrorInfo | None:
    """The error an OASIS answer carries (an XML member with ``ERR_CODE``), or None for data."""
    if not is_zip(payload):
        return parse_error_xml("(body)", payload) if payload.lstrip()[:1] == b"<" else None
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            for info in zf.infolist():
                if info.filename.lower().endswith(".xml"):
                    found = parse_error_xml(info.filename, zf.read(info))
                    if found:
                        return found
    except zipfile.BadZipFile:
        return None
    return None


def csv_members(payload: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            return [n for n in zf.namelist() if n.lower().endswith(".csv")]
    except zipfile.BadZipFile:
        return []


def request_time(instant: datetime) -> str:
    """``YYYYMMDDTHH:MM-0000`` (GMT), the form OASIS documents for startdatetime/enddatetime."""
    if instant.tzinfo is None:
        raise ValueError("OASIS request times must be timezone-aware")
    return instant.astimezone(UTC).strftime(REQUEST_TIME_FORMAT)


def trade_day_start(day: date) -> datetime:
    """UTC start of a trade day: 08:00 UTC in PST, 07:00 UTC in PDT."""
    return datetime.combine(day, time(), PT).astimezone(UTC)


def trade_day_windows(first: date, last: date, max_days: int = MAX_WINDOW_DAYS) -> list[tuple[datetime, datetime]]:
    """[start, end) UTC windows covering the trade days ``first..last`` (inclusive), each at most
    ``max_days`` trade days long and each starting at a local midnight (07:00 or 08:00 UTC)."""
    if not 1 <= max_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"OASIS windows hold 1..{MAX_WINDOW_DAYS} days, not {max_days}")
    out = []
    day = first
    while day <= last:
        nxt = min(day + timedelta(days=max_days), last + timedelta(days=1))
        out.append((trade_day_start(day), trade_day_start(nxt)))
        day = nxt
    return out


def check_window(start: datetime, end: datetime) -> None:
    """Refuse a window OASIS would answer with error 1004 (or an empty/backwards one)."""
    if end <= start:
        raise ValueError(f"empty OASIS window {start.isoformat()}..{end.isoformat()}")
    # 31 trade days can be 31 x 24 h + 1 h when the window holds the fall-back day
    if end - start > timedelta(days=MAX_WINDOW_DAYS, hours=1):
        raise ValueError(
            f"OASIS serves at most {MAX_WINDOW_DAYS} days per request; split "
            f"{start.isoformat()}..{end.isoformat()} with trade_day_windows()"
        )
