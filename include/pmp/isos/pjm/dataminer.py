"""Data Miner 2's wire format and rules, in one place (used by the hook, adapter and normalizer).

* :func:`read_page` - a response body -> its items: the JSON envelope ``{links, items,
  searchSpecification, totalRows}``, the bare array of ``download=true`` (which PJM may gzip even
  when asked not to), or the CSV export (``1/1/2018 5:00:00 AM`` 12-hour stamps).
* :func:`range_filter` - a time filter value ``MM/DD/YYYY HH:MMtoMM/DD/YYYY HH:MM``; PJM's end is
  *inclusive*, so a window [a, b) is asked as ``a`` to ``b - 1 minute`` (no interval starts in between).
* :func:`archive_cutover` / :func:`check_query` - rows older than the archive cut-over (186 days for
  5-minute LMPs, 731 for hourly) cannot be filtered by node or any other field, and an archived
  query may not span the cut-over or a year boundary. The adapter's queries are one local market
  day each (the cut-over is a local midnight), so they never span it; :func:`check_query` refuses
  a query that would break a rule before it is sent.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pmp.errors import NormalizeError, utf8_text

EPT = ZoneInfo("America/New_York")
MAX_ROW_COUNT = 50_000  # PJM's largest page
MAX_SPAN_DAYS = 365  # a query spans less than 366 days


class ArchiveRuleError(ValueError):
    """A query Data Miner would refuse for archived rows (raised before anything is sent)."""


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total_rows: int | None  # None for a bare array or CSV (download=true puts it in X-TotalRows)
    next_href: str | None


def _ungzip(path: str, data: bytes) -> bytes:
    # Quirk: download=true bodies are gzip even with Accept-Encoding: identity, and since a
    # 2025-09 change not always labelled so (electricitymaps' load-forecast sample): sniff the magic.
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise NormalizeError(path, None, None, f"corrupt gzip body ({exc})") from exc
    return data


def read_page(path: str, data: bytes) -> Page:
    """One response body (or one exported CSV) -> its rows."""
    data = _ungzip(path, data)
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise NormalizeError(path, None, None, f"not JSON ({exc})") from exc
        if isinstance(body, list):  # download=true: a bare array, no envelope
            items, total, nxt = body, None, None
        elif isinstance(body, dict) and isinstance(body.get("items"), list):
            items, total = body["items"], body.get("totalRows")
            nxt = next((link.get("href") for link in body.get("links") or []
                        if isinstance(link, dict) and link.get("rel") == "next"), None)
        else:
            raise NormalizeError(path, None, None, "JSON without Data Miner's items (expected {links, items, "
                                                   "searchSpecification, totalRows} or an array)")
        if not all(isinstance(i, dict) for i in items):
            raise NormalizeError(path, None, None, "items that are not JSON objects")
        return Page(items, int(total) if total is not None else None, nxt)
    text = utf8_text(path, data)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows and not text.strip():
        raise NormalizeError(path, None, None, "empty body")
    return Page([{k.strip(): (v if v != "" else None) for k, v in r.items()} for r in rows], None, None)


_STAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M")


def parse_stamp(value: str) -> datetime:
    """A naive Data Miner time: ``2024-11-03T05:00:00`` (optionally ``.0000000``) or the export's
    ``3/11/2018 5:00:00 AM``. Raises ValueError."""
    text = value.strip()
    if "." in text and "T" in text:  # Quirk: some feeds carry fractional seconds (up to 7 digits)
        text, _, frac = text.partition(".")
        if not frac.isdigit():
            raise ValueError(value)
    for fmt in _STAMP_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(value)


def ept_label(t: datetime) -> str:
    return t.astimezone(EPT).strftime("%m/%d/%Y %H:%M")


def range_filter(start: datetime, end: datetime) -> str:
    """The EPT filter value for the half-open UTC window [start, end) (end inclusive on PJM's side)."""
    return f"{ept_label(start)}to{ept_label(end - timedelta(minutes=1))}"


def utc_range_filter(start: datetime, end: datetime) -> str:
    """The same on a ``*_utc`` field (used for single intervals: unambiguous on the fall-back day)."""
    last = end - timedelta(minutes=1)
    return f"{start:%Y-%m-%dT%H:%M}to{last:%Y-%m-%dT%H:%M}"


def archive_cutover(archive_days: int | None, now: datetime) -> date | None:
    """First EPT day that is *not* archived (rows of earlier days are), or None for feeds PJM keeps whole."""
    if archive_days is None:
        return None
    return now.astimezone(EPT).date() - timedelta(days=archive_days)


def check_query(feed: str, archive_days: int | None, first: date, last: date, now: datetime, *,
                field_filters: bool) -> None:
    """Refuse what Data Miner refuses: spans of 366 days or more; for archived rows, a span across
    the cut-over or a year boundary, or any filter besides time."""
    if (last - first).days >= MAX_SPAN_DAYS + 1:
        raise ArchiveRuleError(f"{feed}: {first}..{last} spans 366 days or more")
    cutover = archive_cutover(archive_days, now)
    if cutover is None or last >= cutover > first or first >= cutover:
        if cutover is not None and last >= cutover > first:
            raise ArchiveRuleError(f"{feed}: {first}..{last} spans the archive cut-over ({cutover})")
        return
    if first.year != last.year:
        raise ArchiveRuleError(f"{feed}: archived query {first}..{last} spans a year boundary")
    if field_filters:
        raise ArchiveRuleError(f"{feed}: rows before {cutover} are archived and cannot be filtered by node or field")
