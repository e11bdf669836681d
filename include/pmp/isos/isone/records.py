"""The ISO Express CSV record structure, read strictly.

Every line starts with its record type (reference 5.1 and the real samples):
``"C"`` comments (report title, ``Filename:``, ``Report for:``, ``Report generated:``), a first
``"H"`` line with the field names, a second ``"H"`` line with their types, ``"D"`` data lines and
one ``"T"`` trailer. A file without its trailer was cut off in transit and is rejected, so a
truncated download is never half-loaded. Line numbers in errors are physical file lines (1-based).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from pmp.errors import NormalizeError

# Quirk: the report stamp carries a time-zone abbreviation, not an offset; EDT/EST are the only two
# ISO-NE prints, and the abbreviation is what disambiguates the repeated fall-back hour.
TZ_ABBREVIATIONS = {"EDT": timezone(timedelta(hours=-4)), "EST": timezone(timedelta(hours=-5))}

_GENERATED = re.compile(r"Report generated:?\s*(\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2})\s*([A-Z]{3})")
_REPORT_FOR = re.compile(r"Report for:?\s*(\d{2}/\d{2}/\d{4})")
_FILENAME = re.compile(r"Filename:\s*(\S.*?)\s*$")


def decode(path: str, data: bytes) -> str:
    """UTF-8 (with or without BOM); Windows-1252 as the fallback some ISO Express exports use."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise NormalizeError(path, None, None, f"not a text file ({exc})") from exc


@dataclass
class Report:
    path: str
    comments: list[str] = field(default_factory=list)
    comment_lines: list[int] = field(default_factory=list)  # physical line of each comment
    names: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    header_line: int | None = None
    rows: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # physical line of each data row
    trailer: str | None = None

    # -- comments ------------------------------------------------------------------------
    def _comment(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        for c in self.comments:
            m = pattern.search(c)
            if m:
                return m
        return None

    @property
    def title(self) -> str | None:
        return self.comments[0] if self.comments else None

    @property
    def filename(self) -> str | None:
        m = self._comment(_FILENAME)
        return m.group(1) if m else None

    @property
    def report_day(self) -> date | None:
        m = self._comment(_REPORT_FOR)
        return datetime.strptime(m.group(1), "%m/%d/%Y").date() if m else None

    @property
    def generated(self) -> datetime | None:
        """``Report generated`` as an aware instant (None when absent or in an unknown zone)."""
        return next((t for t in map(generated_at, self.comments) if t), None)

    def generated_line(self) -> tuple[int | None, str | None]:
        """(physical line, text) of the ``Report generated`` comment, or (None, None)."""
        for line, c in zip(self.comment_lines, self.comments, strict=True):
            if "Report generated" in c:
                return line, c
        return None, None

    # -- data ----------------------------------------------------------------------------
    def column(self, name: str, *aliases: str) -> int:
        """Index of a field by its name (or an alias); a missing field names the header line."""
        for candidate in (name, *aliases):
            if candidate in self.names:
                return self.names.index(candidate)
        raise NormalizeError(self.path, self.header_line, name, f"missing column; header is {self.names}")

    def has(self, name: str) -> bool:
        return name in self.names

    def error(self, i: int, field_name: str | None, message: str) -> NormalizeError:
        return NormalizeError(self.path, self.lines[i], field_name, message)


def parse(path: str, data: bytes) -> Report:
    """Read an ISO Express CSV (LF or CRLF) into comments, header, types, data rows and trailer."""
    text = decode(path, data)
    if not text.strip():
        raise NormalizeError(path, None, None, "empty file")
    report = Report(path)
    last = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        last = lineno
        try:
            fields = next(csv.reader([line]))
        except csv.Error as exc:
            raise NormalizeError(path, lineno, None, f"malformed CSV ({exc})") from exc
        kind, values = fields[0], fields[1:]
        if report.trailer is not None:
            raise NormalizeError(path, lineno, None, f'record {kind!r} after the "T" trailer')
        if kind == "C":
            report.comments.append(",".join(values))
            report.comment_lines.append(lineno)
        elif kind == "H":
            if not report.names:
                report.names, report.header_line = values, lineno
            elif not report.types and not report.rows:
                report.types = values
            else:
                raise NormalizeError(path, lineno, None, 'unexpected third "H" record')
        elif kind == "D":
            if not report.names:
                raise NormalizeError(path, lineno, None, 'data record before the "H" header')
            if len(values) != len(report.names):
                raise NormalizeError(path, lineno, None,
                                     f"{len(values)} fields where the header has {len(report.names)}")
            report.rows.append(values)
            report.lines.append(lineno)
        elif kind == "T":
            report.trailer = ",".join(values)
        else:
            raise NormalizeError(path, lineno, None,
                                 f'unknown record type {kind[:20]!r}: not an ISO Express CSV ("C"/"H"/"D"/"T")')
    if not report.names:
        raise NormalizeError(path, None, None, 'no "H" header record: not an ISO Express CSV')
    if report.trailer is None:
        raise NormalizeError(path, last, None, 'no "T" trailer: the file is truncated')
    return report


def generated_at(text: str) -> datetime | None:
    """The ``Report generated: 03/16/2026 13:07:54 EDT`` stamp in ``text`` as an aware instant."""
    m = _GENERATED.search(text)
    if not m or m.group(2) not in TZ_ABBREVIATIONS:
        return None
    return datetime.strptime(m.group(1), "%m/%d/%Y %H:%M:%S").replace(tzinfo=TZ_ABBREVIATIONS[m.group(2)])


def is_complete_csv(data: bytes) -> bool:
    """Cheap check for the hook: starts with a record type and ends with the ``"T"`` trailer."""
    head = data.lstrip(b"\xef\xbb\xbf")[:4]
    if not (head.startswith(b'"C"') or head.startswith(b'"H"')):
        return False
    tail = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    return tail.startswith(b'"T"')
