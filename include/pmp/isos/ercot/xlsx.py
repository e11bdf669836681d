"""Reading ERCOT's Excel workbooks (openpyxl, read-only): the monthly sheets (``Jan`` .. ``Dec``)
of the ``IntGenbyFuelYYYY.xlsx`` fuel-mix workbooks and of the annual hub and load-zone price
files (NP6-785-ER, NP4-180-ER, NP4-181-ER), and their cell values.

Shared by :mod:`pmp.isos.ercot.normalize_fuel` and :mod:`pmp.isos.ercot.normalize_annual`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import Any

from pmp.errors import NormalizeError
from pmp.payload import is_zip

MONTH_SHEETS = {m.lower(): i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}


def sheet_month(title: str) -> int | None:
    """Month number of a monthly sheet (``Jan``, ``January``, `` feb ``), None for other sheets."""
    return MONTH_SHEETS.get(title.strip().lower()[:3])


def is_xlsx(payload: bytes) -> bool:
    """An xlsx package itself (a zip holding ``xl/workbook.xml``)."""
    if not is_zip(payload):
        return False
    try:
        return "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(payload)).namelist()
    except zipfile.BadZipFile:
        return False


def is_workbook(payload: bytes) -> bool:
    """An xlsx, or a zip holding one (ERCOT's annual files: a zip with one ``.xlsx`` member)."""
    if is_xlsx(payload):
        return True
    if not is_zip(payload):
        return False
    try:
        return any(n.lower().endswith(".xlsx") for n in zipfile.ZipFile(io.BytesIO(payload)).namelist())
    except zipfile.BadZipFile:
        return False


def workbooks(name: str, payload: bytes) -> Iterator[tuple[str, bytes]]:
    """``(path, xlsx bytes)`` of the payload itself or of each ``.xlsx`` member of a zip."""
    if is_xlsx(payload):
        yield name, payload
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        for info in archive.infolist():
            if info.filename.lower().endswith(".xlsx"):
                yield f"{name}!{info.filename}", archive.read(info)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise NormalizeError(name, None, None, f"corrupt zip ({exc})") from exc


def month_sheets(
    name: str, payload: bytes, months: Iterable[int] | None = None
) -> Iterator[tuple[str, int, Iterator[tuple[Any, ...]]]]:
    """``(path, month, rows)`` of every monthly sheet of an xlsx workbook, in workbook order.

    ``path`` is ``name!Sheet`` (errors name it); ``rows`` yields each row's cell values (1-based
    row numbers are the enumeration order). With ``months``, only those sheets are parsed: a
    sheet is a separate part of the package, so the others cost nothing. Sheets that are not
    monthly (``Summary``, notes, charts) are skipped; a workbook without any monthly sheet, or
    without the requested ones, is an error.
    """
    from openpyxl import load_workbook

    wanted = set(months) if months is not None else None
    try:
        wb = load_workbook(io.BytesIO(payload), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise NormalizeError(name, None, None, f"not a readable xlsx workbook ({exc})") from exc
    found = 0
    try:
        for ws in wb.worksheets:
            month = sheet_month(ws.title)
            if month is None or (wanted is not None and month not in wanted):
                continue
            found += 1
            yield f"{name}!{ws.title}", month, ws.iter_rows(values_only=True)
    finally:
        wb.close()
    if not found:
        which = "monthly sheet (Jan..Dec)" if wanted is None else f"sheet for month(s) {sorted(wanted)}"
        raise NormalizeError(name, None, None, f"no {which}; sheets are {wb.sheetnames}")


def cell_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        for fmt in ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y"):
            try:
                return datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                continue
    return None


def cell_number(value: Any) -> float | None | str:
    """A number, None for an empty cell, or the offending text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return str(value)


def cell_text(value: Any) -> str:
    """A cell as the text a CSV of the same report would hold: dates ``MM/DD/YYYY``, whole numbers
    without a decimal point (hour 2, not 2.0), other numbers exactly (``repr``), empty cells ``""``."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return f"{value:%m/%d/%Y}"
    if isinstance(value, time):  # an hour ending stored as an Excel time
        return f"{value:%H:%M}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value).strip()
