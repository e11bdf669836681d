"""ERCOT's annual hub and load-zone files -> standard rows.

* NP6-785-ER ``RTMLZHBSPP_YYYY`` (MIS report type 13061) -> ``lmp_rt15m``: ``Delivery Date,
  Delivery Hour, Delivery Interval, Repeated Hour Flag, Settlement Point Name, Settlement Point
  Type, Settlement Point Price`` (hubs ``HU``/``SH``/``AH``, load zones ``LZ`` and ``LZEW``).
* NP4-180-ER ``DAMLZHBSPP_YYYY`` (13060) -> ``lmp_dam``: ``Delivery Date, Hour Ending, Repeated
  Hour Flag, Settlement Point, Settlement Point Price``.
* NP4-181-ER ``DAMASMCPC_YYYY`` (13091) -> ``as_dam``: wide, one row per hour and one column per
  product after ``Delivery Date, Hour Ending, Repeated Hour Flag`` (``REGDN, REGUP, RRS, NSPIN``
  and, from 2023, ``ECRS``, empty before its first day).

Each file is a zip holding one xlsx with one sheet per month (``Jan`` .. ``Dec``), refreshed weekly
for the current year. They hold hubs and load zones only, never resource nodes. The rows go
through the same parsers as the CSVs (:mod:`pmp.isos.ercot.normalize`: hour endings, the repeated
hour's flag, the LZ/LZEW pair); what is particular to the workbooks is handled here:

* :func:`_sheet_frame` - spaced headers (``Delivery Date``; compared without spaces like every
  ERCOT header, trailing spaces included: the AS file's ``REGUP ``), typed cells (numbers, dates)
  turned into the text the CSVs hold, and the one all-null row a year that the files carry, dropped.
* :func:`month_of` - the pipeline keeps one raw document per (annual file, month) whose name ends
  ``.month-YYYY-MM.zip`` (:func:`document_name`); only that month's sheet is read. A file without
  the marker (``pmp normalize`` on a download) is read whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.isos.ercot.normalize import _canonical, normalize_frame, published_at_from_name
from pmp.isos.ercot.normalize_as import normalize_as_frame
from pmp.isos.ercot.xlsx import cell_text, month_sheets, workbooks
from pmp.payload import PayloadError, leaf_name

ANNUAL_DATASETS = ("lmp_dam", "lmp_rt15m", "as_dam")
_MONTH = re.compile(r"\.month-(\d{4})-(\d{2})\.zip$", re.IGNORECASE)
_AS_META = ("delivery_date", "hour_ending", "repeated")
# NP4-181-ER's product columns. Every non-key column of the wide sheet becomes a product, so without
# this list a renamed or dropped product column would load a different product set that every check
# passes (issue 14: silent drift). The four products ERCOT has cleared since before 2019, and ECRS
# from its launch on 2023-06-10 (the 2023 file carries the column, empty before that day).
AS_CORE_PRODUCTS = ("REGDN", "REGUP", "RRS", "NSPIN")
AS_ECRS, ECRS_FIRST_DAY = "ECRS", date(2023, 6, 10)


def document_name(constructed: str, year: int, month: int) -> str:
    """Raw file name of one month of an annual file (the file's constructed name + the month)."""
    return f"{leaf_name(constructed).removesuffix('.zip')}.month-{year:04d}-{month:02d}.zip"


def month_of(name: str) -> tuple[int, int] | None:
    m = _MONTH.search(leaf_name(name))
    return (int(m[1]), int(m[2])) if m else None


def _sheet_frame(path: str, rows: Iterator[tuple[Any, ...]]) -> pd.DataFrame:
    """A monthly sheet -> the frame a CSV of the same report reads into: canonical column names
    (``df.attrs["headers"]`` keeps the published ones), text cells, index = sheet row - 2 (so
    errors name the sheet's own row numbers)."""
    header: list[str] | None = None
    header_line = 1
    data: list[list[str]] = []
    index: list[int] = []
    for line_no, row in enumerate(rows, start=1):
        cells = [cell_text(c) for c in row]
        if header is None:
            if cells and _canonical(cells[0]) == "delivery_date":
                header = list(cells)
                header_line = line_no
                while header and not header[-1]:
                    header.pop()
            elif line_no >= 10:
                raise NormalizeError(path, line_no, None, "no 'Delivery Date, ...' header in the first 10 rows")
            continue
        if not any(cells):
            continue  # the all-null row ERCOT's annual files carry once a year
        cells = (cells + [""] * len(header))[: len(header)]
        data.append(cells)
        index.append(line_no - 2)
    if header is None:
        raise NormalizeError(path, None, None, "empty sheet: no 'Delivery Date, ...' header")
    canonical = [_canonical(h) for h in header]
    df = pd.DataFrame(data, columns=canonical, index=index, dtype=str) if data else pd.DataFrame(
        columns=canonical, dtype=str)
    df.attrs["headers"] = dict(zip(canonical, header, strict=True))
    df.attrs["header_line"] = header_line
    return df


def _check_products(path: str, df: pd.DataFrame, products: list[str]) -> None:
    """The sheet's product columns are NP4-181-ER's (see :data:`AS_CORE_PRODUCTS`): an unknown
    column (a renamed or new product) or a missing one fails naming the header, nothing is loaded."""
    headers, line = df.attrs["headers"], df.attrs.get("header_line", 1)
    named = {p.upper(): p for p in products}
    unknown = [p for p in named if p not in (*AS_CORE_PRODUCTS, AS_ECRS)]
    if unknown:
        raise NormalizeError(path, line, headers[named[unknown[0]]].strip(),
                             f"not an NP4-181-ER product (expected {', '.join(AS_CORE_PRODUCTS)} and "
                             f"{AS_ECRS} from {ECRS_FIRST_DAY}): a renamed or new product column")
    days = pd.to_datetime(df["delivery_date"], format="%m/%d/%Y", errors="coerce") if len(df) else None
    ecrs_due = days is not None and days.max() is not pd.NaT and days.max().date() >= ECRS_FIRST_DAY
    missing = [p for p in (*AS_CORE_PRODUCTS, *((AS_ECRS,) if ecrs_due else ())) if p not in named]
    if missing:
        raise NormalizeError(path, line, None, f"product column(s) {', '.join(missing)} missing: header is "
                             f"{list(headers.values())}")


def _as_long(path: str, df: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """The wide AS sheet -> one long frame per product column (empty cells: not cleared that hour,
    e.g. ECRS before June 2023)."""
    if "AncillaryType" in df.columns:  # a long layout, as NP4-188-CD
        yield df
        return
    products = [c for c in df.columns if c not in _AS_META]
    if not products:
        raise NormalizeError(path, 1, None, f"no product columns; header is {list(df.attrs['headers'].values())}")
    _check_products(path, df, products)
    for product in products:
        part = df.loc[df[product] != "", [c for c in _AS_META if c in df.columns]].copy()
        part["AncillaryType"] = product.upper()
        part["MCPC"] = df.loc[part.index, product]
        part.attrs["headers"] = {**df.attrs["headers"], "MCPC": df.attrs["headers"][product]}
        yield part


def normalize_annual(dataset: str, name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    """An annual file as downloaded (zip of one xlsx, or the xlsx) -> standard rows of the month
    its name carries, or of the whole file."""
    if dataset not in ANNUAL_DATASETS:
        raise KeyError(f"ERCOT dataset {dataset!r} has no annual file; those are {ANNUAL_DATASETS}")
    month = month_of(name)
    tables = []
    for book, data in workbooks(name, payload):
        published = published_at or published_at_from_name(book) or published_at_from_name(name)
        source = leaf_name(book)
        for path, _m, rows in month_sheets(book, data, months=[month[1]] if month else None):
            df = _sheet_frame(path, rows)
            if dataset == "as_dam":
                tables += [normalize_as_frame(dataset, path, part, published, source) for part in _as_long(path, df)]
            else:
                tables.append(normalize_frame(dataset, path, df, published, source))
    if not tables:
        raise PayloadError(f"{name}: no xlsx workbook found")
    return pa.concat_tables(tables)
