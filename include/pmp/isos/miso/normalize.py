"""MISO normalizers: market reports (CSV, xls, xlsx, zip) and API JSON -> the standard tables.

Every MISO quirk is handled in one named place below, with the reason next to it:

* :data:`EST` / :func:`est` - MISO stamps market time in Eastern *Standard* Time all year (UTC-5,
  no DST; every report says "All Hours-Ending are Eastern Standard Time (EST)"). Labels are placed
  with a fixed -5 h offset, never with ``America/New_York``: with that zone HE 3 of 2024-03-10
  would not exist, the 2024-11-03 file would seem an hour short, and every summer hour would be off
  by one. A MISO market day is 24 hours on every day, DST days included.
* :func:`_check_est_note` - the report's time note must say EST (a file in another time base is
  rejected, not shifted).
* :func:`read_report` - report CSVs have a preamble (title, date, blank, note) before the header
  on line 5 and may hold several tables separated by blank lines; the date line must be the file
  name's market day (``10/01/2026`` or, in RT files, ``9/26/2026`` without zero padding).
* :func:`_lmp_report` - Node x Value rows (``LMP``, ``MCC``, ``MLC``) x ``HE 1..HE 24`` columns;
  MISO publishes no energy component: ``energy = LMP - MCC - MLC`` in exact decimals. Numbers
  come as ``.61`` / ``-.79``. Exactly 24 hour columns (a 23/25-column "DST" file is an error).
* :func:`_asm_report` - ASM MCP reports hold a zonal table and a per-Pnode table; the zonal one is
  stored (the Pnode rows repeat their zone's price), MCP types mapped to MISO's codes (:data:`MCP_TYPES`).
* :func:`_five_min_zip` - the weekly ``5MIN_LMP`` archive: 4 preamble lines, ``MKTHOUR_EST`` =
  interval start, a footer after the rows; read column-wise (about 5 M rows a week).
* :func:`_api_lmp` - public API 5-minute ex-post JSON: numbers as strings, ``INTERVAL`` a naive EST
  interval *start* (the first interval of a day is ``T00:00:00``), node order arbitrary; the column
  order is read from ``headers``.
* :func:`_api_as` - GetAncillaryServicesMcp: MISO's field casing varies (``GenRegMCP`` / ``StrMcp``);
  generator-resource MCPs stored under the codes of :data:`API_PRODUCTS`.
* :func:`_fuel_api` - FuelMix ``INTERVALEST`` uses a 12-hour clock (``2026-10-02 4:45:00 PM``), newer
  copies ``12/03/2025 12:55:00``; categories are stored as MISO names them (a new one is logged, not refused).
* :func:`_load_api` - RealTimeTotalLoad: 5-minute system load labelled by interval start; stored as
  each complete hour's mean (the df_al report's hourly actuals replace it); its MTLF is a vintage
  named by the hour it was read in (the feed carries no issue time).
* :func:`_df_al` - the df_al ``.xls`` report: blocks per market day with repeated headers, Excel
  serial dates, blank future actuals, a disclaimer row; actuals of the days before the publication
  date, the MTLF of the days from it on (one vintage, issued when the report was posted).
* :func:`_fuel_annual` - the annual fuel-mix workbook: hourly RT state-estimated MW by region and
  fuel, summed over regions.
* :func:`_dx_lmp` - Data Exchange pages: ``timeInterval.start`` naive EST.
* :func:`prelim_rank` - preliminary rows (API, Data Exchange) are ranked no later than just before
  their final's due time, so a late fetch never outranks the final (newer publication wins).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pmp.errors import NormalizeError, utf8_text
from pmp.isos.miso.xls import is_xls, read_xls
from pmp.payload import PayloadError, is_zip, leaf_name
from pmp.schema import ANCILLARY_SERVICES, FUEL_MIX, LMP, LOAD, Rows, conform

log = logging.getLogger(__name__)

ISO = "MISO"
EST = timezone(timedelta(hours=-5), "EST")  # MISO market time, all year (see the module docstring)
HOURS = 24  # every MISO market day, DST days included
MARKETS = {"lmp_dam": "DAM", "lmp_dam_exante": "DAM_EXANTE", "lmp_rt60m": "RT60M", "lmp_rt5m": "RT5M",
           "as_dam": "DAM", "as_rt5m": "RT5M"}
# ASM report "MCP Type" -> product code (MISO's MCP codes without "MCP")
MCP_TYPES = {"regulation": "REG", "spinning": "SPIN", "spin": "SPIN", "supplemental": "SUPP", "supp": "SUPP",
             "str": "STR", "short-term reserve": "STR", "ramp capability up": "RCUP", "ramp up": "RCUP",
             "ramp capability down": "RCDOWN", "ramp down": "RCDOWN"}
# GetAncillaryServicesMcp fields (generator resources; DemandRegMcp etc. are the demand-response
# resources' prices and are not stored) -> product code
API_PRODUCTS = {"genregmcp": "REG", "genspinmcp": "SPIN", "gensuppmcp": "SUPP", "strmcp": "STR",
                "rcpupmcp": "RCUP", "rcpdownmcp": "RCDOWN"}
# weekly 5-minute ex-post MCP workbook columns -> product code
XLSX_PRODUCTS = {"rt mcp regulation": "REG", "rt mcp spin": "SPIN", "rt mcp supp": "SUPP", "rt mcp str": "STR",
                 "rt mcp ramp up": "RCUP", "rt mcp ramp down": "RCDOWN"}
KNOWN_FUELS = {"Coal", "Natural Gas", "Nuclear", "Wind", "Solar", "Hydro", "Battery Storage", "Storage", "Other",
               "Imports", "Oil", "Gas"}
REPORT_TITLES = {
    "da_expost_lmp": "day ahead market expost lmps", "da_exante_lmp": "day ahead market exante lmps",
    "rt_lmp_final": "realtime market lmps", "rt_lmp_prelim": "realtime market lmps",
    "asm_expost_damcp": "asm day ahead market expost mcps",
}
_NAME_DAY = re.compile(r"(?<!\d)(\d{8})_")
_STORED = re.compile(r"^(?P<stem>.+)\.(?P<ts>\d{8}T\d{6}Z)\.[0-9a-f]{8}(?P<ext>\.[A-Za-z0-9]+)$")


# ----------------------------------------------------------------------------- time
def est(naive: datetime) -> datetime:
    """A MISO wall-clock label (EST all year) -> UTC."""
    return naive.replace(tzinfo=EST).astimezone(UTC)


def he_start(day: date, he: int) -> datetime:
    """UTC start of hour-ending ``he`` (1..24) of a MISO market day: ``day`` 00:00 EST + (he - 1) h."""
    return est(datetime.combine(day, time())) + timedelta(hours=he - 1)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = est(datetime.combine(day, time()))
    return start, start + timedelta(hours=HOURS)


def excel_date(serial: float) -> date:
    return date(1899, 12, 30) + timedelta(days=int(serial))


def prelim_rank(fetched: datetime, final_due: datetime) -> datetime:
    """Quirk: a preliminary publication (API, Data Exchange) carries no publication time, so the
    fetch time stands in - but a fetch after the final is out must not outrank it. Preliminary rows
    rank no later than a minute before their final's due time."""
    return min(fetched, final_due - timedelta(minutes=1))


# ----------------------------------------------------------------------------- names
def storage_name(name: str, published_at: datetime | None, digest: str) -> str:
    """Raw stage name: ``20241103_rt_lmp_prelim.csv`` -> ``20241103_rt_lmp_prelim.20241104T110000Z.3fa2b1c9.csv``
    (the publication stamp and content hash give every version its own immutable key)."""
    leaf = leaf_name(name).replace("/", "_")
    stem, dot, ext = leaf.rpartition(".")
    if not dot or "/" in ext or len(ext) > 5:
        stem, ext = leaf, "json"
    stamp = (published_at or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stem}.{stamp}.{digest[:8]}.{ext}"


def published_at_from_name(path: str) -> datetime | None:
    m = _STORED.match(leaf_name(path))
    return datetime.strptime(m.group("ts"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if m else None


def source_name(path: str) -> str:
    leaf = leaf_name(path)
    m = _STORED.match(leaf)
    return f"{m.group('stem')}{m.group('ext')}" if m else leaf


def _name_day(path: str) -> date | None:
    m = _NAME_DAY.search(source_name(path))
    return datetime.strptime(m.group(1), "%Y%m%d").date() if m else None


# ----------------------------------------------------------------------------- values
def _dec(path: str, line: int | None, field: str, text: Any) -> Decimal | None:
    """``.61``, ``-.79``, ``200``, ``"17.53"``; empty -> None."""
    if text is None:
        return None
    s = str(text).strip().replace(",", "")
    if s == "":
        return None
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise NormalizeError(path, line, field, f"not a number: {text!r}") from None
    if not value.is_finite():
        raise NormalizeError(path, line, field, f"not a finite number: {text!r}")
    return value


def _f(v: Decimal | None) -> float | None:
    return None if v is None else float(v)


class _Rows(Rows):
    iso = ISO


# ----------------------------------------------------------------------------- report CSVs
class Report:
    """A market-report CSV: title, market-day line, time note, and its tables."""

    def __init__(self, path: str, title: str, day: date, note: str,
                 tables: list[tuple[int, list[str], list[tuple[int, list[str]]]]]) -> None:
        self.path, self.title, self.day, self.note, self.tables = path, title, day, note, tables


def _check_est_note(path: str, line: int, note: str) -> None:
    """Quirk: the 4th line says the file's time base; only EST (MISO's all-year standard time) is
    accepted - a file in another base would be silently shifted otherwise."""
    if "eastern standard time" not in note.lower() and "(est)" not in note.lower():
        raise NormalizeError(path, line, None, f"time note is not Eastern Standard Time (EST): {note!r}")


def read_report(path: str, data: bytes) -> Report:
    text = utf8_text(path, data)
    if text.lstrip().startswith("<"):
        raise NormalizeError(path, 1, None, "an HTML page, not a MISO report (a bot-challenge page?)")
    lines = text.splitlines()
    if len(lines) < 5:
        raise NormalizeError(path, None, None, f"{len(lines)} lines: not a MISO market report (preamble + header)")
    title = lines[0].strip().strip('"')
    day_text = lines[1].strip().strip(",").strip('"')
    try:
        day = datetime.strptime(day_text, "%m/%d/%Y").date()
    except ValueError:
        raise NormalizeError(path, 2, None, f"market-day line is not MM/DD/YYYY: {day_text!r}") from None
    expected = _name_day(path)
    if expected and expected != day:
        raise NormalizeError(path, 2, None, f"market day {day} differs from the file name's {expected}")
    note = lines[3].strip(", ")
    _check_est_note(path, 4, note)
    tables: list[tuple[int, list[str], list[tuple[int, list[str]]]]] = []
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(lines[4:])
    for offset, cells in enumerate(reader):
        line = 5 + offset
        if not cells or all(not c.strip() for c in cells):
            if header is not None:
                tables.append((header_line, header, rows))
                header, rows = None, []
            continue
        cells = [c.strip() for c in cells]
        if header is None:
            header, header_line = cells, line
            continue
        if len(cells) != len(header):
            if len(cells) == 1:  # a footer line (disclaimer) after the table
                continue
            raise NormalizeError(path, line, None, f"{len(cells)} fields, header (line {header_line}) has {len(header)}")
        rows.append((line, cells))
    if header is not None:
        tables.append((header_line, header, rows))
    if not tables:
        raise NormalizeError(path, 5, None, "no table after the preamble")
    return Report(path, title, day, note, tables)


def _he_columns(path: str, line: int, header: list[str]) -> list[tuple[int, int]]:
    """(column index, hour ending) of ``HE 1`` .. ``HE 24``: exactly 24 (EST has no DST days)."""
    out = []
    for i, h in enumerate(header):
        m = re.fullmatch(r"HE\s*(\d{1,2})", h, re.IGNORECASE)
        if m:
            out.append((i, int(m.group(1))))
    if [he for _, he in out] != list(range(1, HOURS + 1)):
        raise NormalizeError(path, line, "HE", f"expected hour columns HE 1..HE 24 (EST, every day 24 hours); "
                                                f"found {[header[i] for i, _ in out]}")
    return out


def _lmp_report(dataset: str, path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    rep = read_report(path, data)
    header_line, header, rows = rep.tables[0]
    idx = {h.lower(): i for i, h in enumerate(header)}
    for col in ("node", "type", "value"):
        if col not in idx:
            raise NormalizeError(path, header_line, col, f"missing column; header is {header}")
    hes = _he_columns(path, header_line, header)
    ni, ti, vi = idx["node"], idx["type"], idx["value"]
    values: dict[str, dict[str, tuple[int, list[Decimal | None]]]] = {}
    types: dict[str, str] = {}
    order: list[str] = []
    for line, cells in rows:
        node, kind = cells[ni], cells[vi].upper()
        if kind not in ("LMP", "MCC", "MLC"):
            raise NormalizeError(path, line, header[vi], f"value must be LMP, MCC or MLC, not {cells[vi]!r}")
        if node not in values:
            values[node], types[node] = {}, cells[ti]
            order.append(node)
        if kind in values[node]:
            raise NormalizeError(path, line, header[vi], f"{node} {kind} listed twice (line {values[node][kind][0]})")
        values[node][kind] = (line, [_dec(path, line, header[i], cells[i]) for i, _ in hes])
    market = MARKETS[dataset]
    out = _Rows("market", "location", "location_type", "lmp", "energy", "congestion", "loss")
    missing_components = 0
    for node in order:
        comp = values[node]
        if "LMP" not in comp:
            raise NormalizeError(path, comp[next(iter(comp))][0], header[vi], f"{node}: MCC/MLC rows without an LMP row")
        lmps = comp["LMP"][1]
        mccs = comp.get("MCC", (0, [None] * HOURS))[1]
        mlcs = comp.get("MLC", (0, [None] * HOURS))[1]
        if "MCC" not in comp or "MLC" not in comp:
            missing_components += 1
        for k, (_, he) in enumerate(hes):
            lmp, mcc, mlc = lmps[k], mccs[k], mlcs[k]
            if lmp is None:
                raise NormalizeError(path, comp["LMP"][0], f"HE {he}", f"{node}: empty LMP")
            energy = lmp - mcc - mlc if mcc is not None and mlc is not None else None
            start = he_start(rep.day, he)
            out.add(start, start + timedelta(hours=1), market=market, location=node, location_type=types[node],
                    lmp=float(lmp), energy=_f(energy), congestion=_f(mcc), loss=_f(mlc))
    if missing_components:
        log.warning("%s: %d node(s) without MCC/MLC rows: components stored as NULL", path, missing_components)
    return out.table(LMP, source_name(path), published_at)


def _asm_report(dataset: str, path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    rep = read_report(path, data)
    zonal = [t for t in rep.tables if {"zone", "mcp type"} <= {h.lower() for h in t[1]}
             and "pnode" not in {h.lower() for h in t[1]}]
    if not zonal:
        raise NormalizeError(path, rep.tables[0][0], None, "no zonal MCP table (columns Zone, MCP Type, HE 1..HE 24)")
    header_line, header, rows = zonal[0]
    idx = {h.lower(): i for i, h in enumerate(header)}
    hes = _he_columns(path, header_line, header)
    zi, mi = idx["zone"], idx["mcp type"]
    out = _Rows("market", "region", "product", "clearing_price")
    seen: dict[tuple[str, str], int] = {}
    for line, cells in rows:
        zone = _zone(path, line, header[zi], cells[zi])
        product = MCP_TYPES.get(cells[mi].strip().lower())
        if product is None:
            raise NormalizeError(path, line, header[mi], f"unknown MCP type {cells[mi]!r}; known: {sorted(MCP_TYPES)}")
        if (zone, product) in seen:
            raise NormalizeError(path, line, header[mi], f"{zone} {product} listed twice (line {seen[(zone, product)]})")
        seen[(zone, product)] = line
        for i, he in hes:
            start = he_start(rep.day, he)
            out.add(start, start + timedelta(hours=1), market=MARKETS[dataset], region=zone, product=product,
                    clearing_price=_f(_dec(path, line, header[i], cells[i])))
    return out.table(ANCILLARY_SERVICES, source_name(path), published_at)


def _zone(path: str, line: int | None, field: str, text: Any) -> str:
    """Reserve zones: ``Zone 3``, ``3``, ``Reserve Zone 3`` -> ``ZONE3``."""
    m = re.fullmatch(r"(?:reserve\s+)?(?:zone\s*)?(\d+)", str(text).strip().lower().replace(".0", ""))
    if not m:
        raise NormalizeError(path, line, field, f"not a reserve zone: {text!r}")
    return f"ZONE{int(m.group(1))}"


# ----------------------------------------------------------------------------- weekly 5-minute LMP zip
def _five_min_zip(path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    if not is_zip(data):
        raise NormalizeError(path, None, None, "the weekly 5MIN_LMP archive is not a zip")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [i for i in archive.infolist() if i.filename.lower().endswith(".csv")]
        if not members:
            raise NormalizeError(path, None, None, "no CSV member in the weekly 5MIN_LMP archive")
        tables = [_five_min_csv(f"{path}!{m.filename}", archive.read(m), published_at) for m in members]
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise PayloadError(f"{path}: corrupt zip ({exc})") from exc
    return pa.concat_tables(tables)


_FIVE_MIN_COLUMNS = ("MKTHOUR_EST", "PNODENAME", "LMP", "CON_LMP", "LOSS_LMP")


def _five_min_csv(path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    """Column-wise: the rows between the header (after 4 preamble lines) and the footer go through
    pyarrow's CSV reader with exact decimals, so energy = LMP - CON_LMP - LOSS_LMP is exact."""
    text = utf8_text(path, data)
    lines = text.split("\n")
    hidx = next((i for i, ln in enumerate(lines[:10]) if ln.strip().upper().startswith("MKTHOUR_EST")), None)
    if hidx is None:
        raise NormalizeError(path, None, "MKTHOUR_EST", "no MKTHOUR_EST header in the first lines")
    _check_est_note(path, hidx, " ".join(lines[:hidx]))
    header = [h.strip().upper() for h in lines[hidx].strip().split(",")]
    for col in _FIVE_MIN_COLUMNS:
        if col not in header:
            raise NormalizeError(path, hidx + 1, col, f"missing column; header is {header}")
    end = hidx + 1
    while end < len(lines) and lines[end].strip() and lines[end].count(",") == len(header) - 1:
        end += 1
    for j in range(end, len(lines)):  # only a footer may follow: a blank line and one text line
        if lines[j].strip() and lines[j].count(",") == len(header) - 1:
            raise NormalizeError(path, j + 1, None, "a data row after the footer")
    body = "\n".join([",".join(header), *lines[hidx + 1:end]]).encode()
    dec = pa.decimal128(18, 6)
    types = {"MKTHOUR_EST": pa.string(), "PNODENAME": pa.string(), "LMP": dec, "CON_LMP": dec, "LOSS_LMP": dec}
    try:
        t = pacsv.read_csv(io.BytesIO(body), convert_options=pacsv.ConvertOptions(
            column_types=types, include_columns=list(_FIVE_MIN_COLUMNS), strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise _first_bad_cell(path, lines, hidx, header, end) or NormalizeError(
            path, None, None, f"unreadable row ({exc})") from None
    for col in ("LMP", "CON_LMP", "LOSS_LMP"):
        if t.column(col).null_count:
            first = pc.index(pc.is_null(t.column(col)), True).as_py()
            raise NormalizeError(path, hidx + 2 + first, col, "empty price")
    naive = pc.strptime(t.column("MKTHOUR_EST"), format="%m/%d/%Y %H:%M", unit="us", error_is_null=True)
    if naive.null_count:
        first = pc.index(pc.is_null(naive), True).as_py()
        raise NormalizeError(path, hidx + 2 + first, "MKTHOUR_EST",
                             f"not MM/DD/YYYY HH:MM: {t.column('MKTHOUR_EST')[first].as_py()!r}")
    start = pc.add(pc.cast(naive, pa.timestamp("us")), pa.scalar(timedelta(hours=5)))  # EST -> UTC
    start = pc.cast(pc.cast(start, pa.int64()), pa.timestamp("us", tz="UTC"))
    end_t = pc.add(start, pa.scalar(timedelta(minutes=5)))
    lmp, con, loss = t.column("LMP"), t.column("CON_LMP"), t.column("LOSS_LMP")
    energy = pc.subtract(pc.subtract(lmp, con), loss)

    def num(col: Any) -> Any:  # decimal -> float64 through its text: correctly rounded (22.46, not 22.4599…)
        return pc.cast(pc.cast(col, pa.string()), pa.float64())

    n = t.num_rows
    table = pa.table({
        "interval_start": start, "interval_end": end_t, "iso": pa.array([ISO] * n),
        "market": pa.array(["RT5M"] * n), "location": t.column("PNODENAME"),
        "location_type": pa.nulls(n, pa.string()), "lmp": num(lmp),
        "energy": num(energy), "congestion": num(con), "loss": num(loss), "ghg": pa.nulls(n, pa.float64()),
        "published_at": pa.array([published_at] * n, pa.timestamp("us", tz="UTC")),
        "source": pa.array([source_name(path.split("!")[0])] * n),
    })
    keys = pc.binary_join_element_wise(pc.cast(pc.cast(start, pa.int64()), pa.string()), t.column("PNODENAME"), "|")
    if pc.count_distinct(keys).as_py() != n:
        seen: dict[str, int] = {}
        for i, key in enumerate(keys.to_pylist()):  # the error path only: which row repeats which
            if key in seen:
                raise NormalizeError(path, hidx + 2 + i, "PNODENAME", f"{key.split('|', 1)[1]} listed twice for one "
                                     f"interval (line {hidx + 2 + seen[key]})")
            seen[key] = i
    return conform(table, LMP)


def _first_bad_cell(path: str, lines: list[str], hidx: int, header: list[str], end: int) -> NormalizeError | None:
    """The error path of the column-wise read: the first row whose price is not a number, by line
    and column (pyarrow's message names neither the file line nor the field)."""
    cols = [(header.index(c), c) for c in ("LMP", "CON_LMP", "LOSS_LMP")]
    for j in range(hidx + 1, end):
        cells = lines[j].rstrip("\r").split(",")
        for i, col in cols:
            try:
                _dec(path, j + 1, col, cells[i])
            except NormalizeError as exc:
                return exc
    return None


# ----------------------------------------------------------------------------- public API JSON
def _json(path: str, data: bytes) -> Any:
    text = utf8_text(path, data)
    if text.lstrip().startswith("<"):
        raise NormalizeError(path, 1, None, "an HTML page, not MISO JSON (a bot-challenge page?)")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise NormalizeError(path, None, None, f"not JSON ({exc})") from None


def _api_lmp(path: str, doc: dict, published_at: datetime | None) -> pa.Table:
    headers = [str(h).upper() for h in doc.get("headers") or []]
    for col in ("INTERVAL", "CPNODE", "LMP", "MLC", "MCC"):
        if col not in headers:
            raise NormalizeError(path, None, col, f"missing from headers {headers}")
    ii, ni, li, xi, ci = (headers.index(c) for c in ("INTERVAL", "CPNODE", "LMP", "MLC", "MCC"))
    out = _Rows("market", "location", "location_type", "lmp", "energy", "congestion", "loss")
    seen: set[tuple[str, str]] = set()
    for k, rec in enumerate(doc.get("data") or []):
        where = f"data[{k}]"
        if len(rec) != len(headers):
            raise NormalizeError(path, None, where, f"{len(rec)} values, headers has {len(headers)}")
        try:
            naive = datetime.fromisoformat(str(rec[ii]))
        except ValueError:
            raise NormalizeError(path, None, f"{where}.INTERVAL", f"not a time stamp: {rec[ii]!r}") from None
        if naive.tzinfo is not None or naive.minute % 5 or naive.second:
            raise NormalizeError(path, None, f"{where}.INTERVAL", f"expected a naive EST 5-minute start: {rec[ii]!r}")
        key = (str(rec[ni]), str(rec[ii]))
        if key in seen:
            raise NormalizeError(path, None, where, f"{rec[ni]} at {rec[ii]} listed twice")
        seen.add(key)
        lmp, mlc, mcc = (_dec(path, None, f"{where}.{h}", rec[i]) for h, i in (("LMP", li), ("MLC", xi), ("MCC", ci)))
        if lmp is None:
            raise NormalizeError(path, None, f"{where}.LMP", "empty LMP")
        energy = lmp - mlc - mcc if mlc is not None and mcc is not None else None
        start = est(naive)
        out.add(start, start + timedelta(minutes=5), market="RT5M", location=str(rec[ni]), location_type=None,
                lmp=float(lmp), energy=_f(energy), congestion=_f(mcc), loss=_f(mlc))
    return out.table(LMP, source_name(path), published_at)


def _ref_instant(path: str, ref: str) -> datetime:
    """``02-Oct-2026 - Interval 16:45 EST`` -> UTC."""
    m = re.fullmatch(r"\s*(\d{2}-[A-Za-z]{3}-\d{4})\s*-\s*Interval\s+(\d{1,2}:\d{2})\s*(EST)?\s*", ref or "")
    if not m:
        raise NormalizeError(path, None, "RefId", f"not 'DD-Mon-YYYY - Interval HH:MM EST': {ref!r}")
    return est(datetime.strptime(f"{m.group(1)} {m.group(2)}", "%d-%b-%Y %H:%M"))


def _api_as(path: str, doc: dict, published_at: datetime | None) -> pa.Table:
    data = doc.get("MCPData")
    if not isinstance(data, dict) or not isinstance(data.get("RealTimeMCP"), dict):
        raise NormalizeError(path, None, "MCPData.RealTimeMCP", "missing")
    rt = data["RealTimeMCP"]
    try:
        day = datetime.strptime(str(data.get("MktDay")), "%m-%d-%Y").date()
        hm = datetime.strptime(str(rt.get("HourAndMin")), "%H:%M").time()
    except ValueError:
        raise NormalizeError(path, None, "MktDay/HourAndMin",
                             f"not MM-DD-YYYY / HH:MM: {data.get('MktDay')!r} {rt.get('HourAndMin')!r}") from None
    start = est(datetime.combine(day, hm))
    out = _Rows("market", "region", "product", "clearing_price")
    zones = rt.get("Zone") or []
    if not zones:
        raise NormalizeError(path, None, "RealTimeMCP.Zone", "no reserve zones")
    for k, z in enumerate(zones):
        zone = _zone(path, None, f"RealTimeMCP.Zone[{k}].number", z.get("number"))
        fields = {name.lower(): (name, value) for name, value in z.items()}  # MISO's casing varies (MCP/Mcp)
        for fname, product in API_PRODUCTS.items():
            if fname not in fields:
                raise NormalizeError(path, None, f"RealTimeMCP.Zone[{k}]", f"no {fname} (MCP field); has {sorted(z)}")
            name, value = fields[fname]
            out.add(start, start + timedelta(minutes=5), market="RT5M", region=zone, product=product,
                    clearing_price=_f(_dec(path, None, f"RealTimeMCP.Zone[{k}].{name}", value)))
    return out.table(ANCILLARY_SERVICES, source_name(path), published_at)


_FUEL_TIME = ("%Y-%m-%d %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")


def _fuel_api(path: str, doc: dict, published_at: datetime | None) -> pa.Table:
    types = (doc.get("Fuel") or {}).get("Type")
    if not isinstance(types, list) or not types:
        raise NormalizeError(path, None, "Fuel.Type", "no fuel categories")
    out = _Rows("fuel", "generation_mw")
    seen: set[tuple[str, datetime]] = set()
    for k, item in enumerate(types):
        stamp = str(item.get("INTERVALEST", ""))
        naive = None
        for fmt in _FUEL_TIME:
            try:
                naive = datetime.strptime(stamp, fmt)
                break
            except ValueError:
                continue
        if naive is None:
            raise NormalizeError(path, None, f"Fuel.Type[{k}].INTERVALEST", f"not a MISO time stamp: {stamp!r}")
        fuel = str(item.get("CATEGORY", "")).strip()
        if not fuel:
            raise NormalizeError(path, None, f"Fuel.Type[{k}].CATEGORY", "empty category")
        if fuel not in KNOWN_FUELS:
            log.warning("%s: fuel category %r is new (stored as MISO names it)", path, fuel)
        start = est(naive)
        if (fuel, start) in seen:
            raise NormalizeError(path, None, f"Fuel.Type[{k}]", f"{fuel} at {stamp} listed twice")
        seen.add((fuel, start))
        out.add(start, start + timedelta(minutes=5), fuel=fuel,
                generation_mw=_f(_dec(path, None, f"Fuel.Type[{k}].ACT", item.get("ACT"))))
    return out.table(FUEL_MIX, source_name(path), published_at)


def _load_api(dataset: str, path: str, doc: dict, published_at: datetime | None) -> pa.Table:
    info = doc.get("LoadInfo")
    if not isinstance(info, dict):
        raise NormalizeError(path, None, "LoadInfo", "missing")
    ref = _ref_instant(path, str(info.get("RefId", "")))
    day = (ref.astimezone(EST) - timedelta(minutes=0)).date()
    out = _Rows("area", "kind", "forecast_issued_at", "model", "load_mw")
    if dataset == "load_forecast":
        issued = ref.astimezone(EST).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        for k, item in enumerate(info.get("MediumTermLoadForecast") or []):
            f = item.get("Forecast") or {}
            he = _int(path, f"MediumTermLoadForecast[{k}].HourEnding", f.get("HourEnding"), 1, HOURS)
            start = he_start(day, he)
            value = _dec(path, None, f"MediumTermLoadForecast[{k}].LoadForecast", f.get("LoadForecast"))
            if value is not None:
                out.add(start, start + timedelta(hours=1), area="SYSTEM", kind="forecast", forecast_issued_at=issued,
                        model="MTLF", load_mw=float(value))
        return out.table(LOAD, source_name(path), published_at)
    readings: dict[datetime, Decimal] = {}
    for k, item in enumerate(info.get("FiveMinTotalLoad") or []):
        rec = item.get("Load") or {}
        try:
            hm = datetime.strptime(str(rec.get("Time")), "%H:%M").time()
        except ValueError:
            raise NormalizeError(path, None, f"FiveMinTotalLoad[{k}].Time", f"not HH:MM: {rec.get('Time')!r}") from None
        value = _dec(path, None, f"FiveMinTotalLoad[{k}].Value", rec.get("Value"))
        if value is not None:
            readings[est(datetime.combine(day, hm))] = value
    for he in range(1, HOURS + 1):
        start = he_start(day, he)
        five = [readings.get(start + timedelta(minutes=5 * i)) for i in range(12)]
        if all(v is not None for v in five):  # only complete hours: their mean is the hour's load
            mean = sum(five, Decimal(0)) / 12  # type: ignore[arg-type]
            out.add(start, start + timedelta(hours=1), area="SYSTEM", kind="actual",
                    forecast_issued_at=start + timedelta(hours=1), model="", load_mw=round(float(mean), 3))
    return out.table(LOAD, source_name(path), published_at)


def _int(path: str, field: str, value: Any, lo: int, hi: int) -> int:
    try:
        n = int(float(str(value)))
    except ValueError:
        raise NormalizeError(path, None, field, f"not an integer: {value!r}") from None
    if not lo <= n <= hi or float(str(value)) != n:
        raise NormalizeError(path, None, field, f"{value!r} outside {lo}..{hi}")
    return n


def _dx_lmp(path: str, payload: bytes, published_at: datetime | None) -> pa.Table:
    """A zip of Data Exchange pages (``page-0001.json`` ...), or one page."""
    pages: list[tuple[str, bytes]] = []
    if is_zip(payload):
        archive = zipfile.ZipFile(io.BytesIO(payload))
        pages = [(f"{path}!{i.filename}", archive.read(i)) for i in sorted(archive.infolist(), key=lambda i: i.filename)]
    else:
        pages = [(path, payload)]
    out = _Rows("market", "location", "location_type", "lmp", "energy", "congestion", "loss")
    seen: set[tuple[str, datetime]] = set()
    for ppath, body in pages:
        doc = _json(ppath, body)
        for k, item in enumerate(doc.get("data") or []):
            where = f"data[{k}]"
            ti = item.get("timeInterval") or {}
            try:
                naive = datetime.strptime(str(ti.get("start"))[:19], "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise NormalizeError(ppath, None, f"{where}.timeInterval.start", f"not a time: {ti.get('start')!r}") from None
            start = est(naive)
            node = str(item.get("node") or "")
            if not node:
                raise NormalizeError(ppath, None, f"{where}.node", "empty node")
            if (node, start) in seen:
                raise NormalizeError(ppath, None, where, f"{node} at {ti.get('start')} listed twice")
            seen.add((node, start))
            lmp, mlc, mcc = (_dec(ppath, None, f"{where}.{f}", item.get(f)) for f in ("lmp", "mlc", "mcc"))
            if lmp is None:
                raise NormalizeError(ppath, None, f"{where}.lmp", "empty LMP")
            energy = lmp - mlc - mcc if mlc is not None and mcc is not None else None
            out.add(start, start + timedelta(minutes=5), market="RT5M", location=node, location_type=None,
                    lmp=float(lmp), energy=_f(energy), congestion=_f(mcc), loss=_f(mlc))
    return out.table(LMP, source_name(path), published_at)


# ----------------------------------------------------------------------------- xls / xlsx
def _df_al(dataset: str, path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    rows = read_xls(path, data)
    published_day = None
    header: list[str] | None = None
    out = _Rows("area", "kind", "forecast_issued_at", "model", "load_mw")
    if dataset == "load_forecast" and published_at is None:
        raise NormalizeError(path, None, "forecast_issued_at", "df_al carries a publication date but no time: pass "
                             "--published-at ISO8601 (the report's Last-Modified), or a raw-stage name with its stamp")
    issued = published_at.astimezone(UTC).replace(second=0, microsecond=0) if published_at else None
    seen: set[tuple[date, int]] = set()
    for r, cells in enumerate(rows, start=1):
        first = cells[0] if cells else None
        if isinstance(first, str) and first.strip().lower().startswith("published date") and len(cells) > 1:
            if not isinstance(cells[1], float):
                raise NormalizeError(path, r, "Published Date", f"not an Excel date: {cells[1]!r}")
            published_day = excel_date(cells[1])
        elif isinstance(first, str) and first.strip().lower() == "market day":
            header = [str(c or "").strip() for c in cells]
        elif isinstance(first, float) and header is not None:
            day = excel_date(first)
            he = _int(path, f"row {r} HourEnding", cells[1], 1, HOURS)
            if (day, he) in seen:
                raise NormalizeError(path, r, "HourEnding", f"{day} HE {he} listed twice")
            seen.add((day, he))
            start = he_start(day, he)
            for c, h in enumerate(header):
                m = re.fullmatch(r"(.+?)\s+(MTLF|ActualLoad)\s*\(MWh\)", h)
                if not m or c >= len(cells) or cells[c] is None:
                    continue
                area = "SYSTEM" if m.group(1).upper() == "MISO" else m.group(1).upper()
                if not isinstance(cells[c], float):
                    raise NormalizeError(path, r, h, f"not a number: {cells[c]!r}")
                value = round(cells[c], 6)
                if m.group(2) == "ActualLoad" and dataset == "load_actual":
                    out.add(start, start + timedelta(hours=1), area=area, kind="actual",
                            forecast_issued_at=start + timedelta(hours=1), model="", load_mw=value)
                elif (m.group(2) == "MTLF" and dataset == "load_forecast" and published_day is not None
                      and day >= published_day):
                    # the MTLF of the days before the publication date is an earlier vintage's
                    out.add(start, start + timedelta(hours=1), area=area, kind="forecast", forecast_issued_at=issued,
                            model="MTLF", load_mw=value)
        elif isinstance(first, float) and header is None:
            raise NormalizeError(path, r, None, "a data row before the 'Market Day' header")
    if header is None or published_day is None:
        raise NormalizeError(path, None, None, "not a df_al report (no 'Published Date' or 'Market Day' header)")
    return out.table(LOAD, source_name(path), published_at)


_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _col(ref: str) -> int:
    n = 0
    for ch in ref:
        if ch.isalpha():
            n = n * 26 + ord(ch.upper()) - 64
        else:
            break
    return n - 1


def _xlsx_rows(path: str, data: bytes) -> Iterator[tuple[int, tuple]]:
    """The first worksheet's rows as value tuples (numbers as float, text as str), streamed with
    ElementTree: MISO's weekly and annual workbooks hold 10^4..10^5 rows, which openpyxl reads
    several times slower (dates stay text or serials, as MISO writes them)."""
    import xml.etree.ElementTree as ET

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        strings: list[str] = []
        if "xl/sharedStrings.xml" in names:
            for si in ET.fromstring(archive.read("xl/sharedStrings.xml")).iter(f"{_NS}si"):
                strings.append("".join(t.text or "" for t in si.iter(f"{_NS}t")))
        sheet = "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in names else min(
            n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml"))
        stream = archive.open(sheet)
    except (zipfile.BadZipFile, KeyError, ValueError, ET.ParseError) as exc:
        raise NormalizeError(path, None, None, f"not a readable xlsx workbook ({exc})") from None
    r = 0
    try:
        for _, el in ET.iterparse(stream, events=("end",)):
            if el.tag != f"{_NS}row":
                continue
            r = int(el.get("r") or r + 1)
            cells: dict[int, Any] = {}
            for k, c in enumerate(el.iter(f"{_NS}c")):
                ref, kind = c.get("r"), c.get("t")
                col = _col(ref) if ref else k
                v = c.find(f"{_NS}v")
                if kind == "inlineStr":
                    cells[col] = "".join(t.text or "" for t in c.iter(f"{_NS}t"))
                elif v is None or v.text is None:
                    continue
                elif kind == "s":
                    cells[col] = strings[int(v.text)]
                elif kind in ("str", "e"):
                    cells[col] = v.text
                elif kind == "b":
                    cells[col] = v.text == "1"
                else:
                    cells[col] = float(v.text)
            el.clear()
            width = max(cells) + 1 if cells else 0
            yield r, tuple(cells.get(i) for i in range(width))
    except (ET.ParseError, IndexError, ValueError) as exc:
        raise NormalizeError(path, r or None, None, f"corrupt xlsx sheet ({exc})") from None


def _xlsx_time(path: str, r: int, field: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, float):  # an Excel serial date-time
        return datetime(1899, 12, 30) + timedelta(days=value)
    for fmt in ("%Y-%m-%d %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y"):
        try:
            return datetime.strptime(str(value).strip(), fmt)
        except ValueError:
            continue
    raise NormalizeError(path, r, field, f"not a time: {value!r}")


def _as_weekly(path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    out = _Rows("market", "region", "product", "clearing_price")
    header: list[str] | None = None
    cols: dict[str, int] = {}
    seen: set[tuple[datetime, str]] = set()
    for r, row in _xlsx_rows(path, data):
        cells = list(row)
        if header is None:
            if cells and str(cells[0] or "").strip().lower() == "time (est)":
                header = [str(c or "").strip() for c in cells]
                cols = {h.lower(): i for i, h in enumerate(header)}
                if "zone" not in cols:
                    raise NormalizeError(path, r, "Zone", f"missing column; header is {header}")
            continue
        cells += [None] * (len(header) - len(cells))
        if cells[0] is None or all(c is None for c in cells[1:]):
            continue  # blank or footer row
        start = est(_xlsx_time(path, r, header[0], cells[0]))
        zone = _zone(path, r, "Zone", cells[cols["zone"]])
        if (start, zone) in seen:
            raise NormalizeError(path, r, "Zone", f"{zone} at {cells[0]} listed twice")
        seen.add((start, zone))
        for name, product in XLSX_PRODUCTS.items():
            if name in cols and cells[cols[name]] is not None:
                out.add(start, start + timedelta(minutes=5), market="RT5M", region=zone, product=product,
                        clearing_price=_f(_dec(path, r, header[cols[name]], cells[cols[name]])))
    if header is None:
        raise NormalizeError(path, None, "Time (EST)", "no 'Time (EST)' header row")
    return out.table(ANCILLARY_SERVICES, source_name(path), published_at)


def _fuel_annual(path: str, data: bytes, published_at: datetime | None) -> pa.Table:
    header: list[str] | None = None
    cols: dict[str, int] = {}
    totals: dict[tuple[datetime, str], Decimal] = {}
    seen: set[tuple[datetime, str, str]] = set()
    for r, row in _xlsx_rows(path, data):
        cells = list(row)
        if header is None:
            if cells and str(cells[0] or "").strip().lower() == "market date":
                header = [str(c or "").strip() for c in cells]
                cols = {h.lower().lstrip("["): i for i, h in enumerate(header)}
                for need in ("hourending", "region", "fuel type", "rt generation state estimator"):
                    if need not in cols:
                        raise NormalizeError(path, r, need, f"missing column; header is {header}")
            continue
        cells += [None] * (len(header) - len(cells))
        if cells[0] is None or cells[cols["hourending"]] is None:
            continue  # blank or footer row
        day_v = cells[0]
        day = day_v.date() if isinstance(day_v, datetime) else _xlsx_time(path, r, "Market Date", day_v).date()
        he = _int(path, f"row {r} HourEnding", cells[cols["hourending"]], 1, HOURS)
        fuel, region = str(cells[cols["fuel type"]]).strip(), str(cells[cols["region"]]).strip()
        start = he_start(day, he)
        if (start, region, fuel) in seen:
            raise NormalizeError(path, r, "Fuel Type", f"{region} {fuel} {day} HE {he} listed twice")
        seen.add((start, region, fuel))
        value = _dec(path, r, "RT Generation State Estimator", cells[cols["rt generation state estimator"]])
        if value is not None:
            totals[(start, fuel)] = totals.get((start, fuel), Decimal(0)) + value
    if header is None:
        raise NormalizeError(path, None, "Market Date", "no 'Market Date' header row")
    out = _Rows("fuel", "generation_mw")
    for (start, fuel), value in sorted(totals.items()):
        out.add(start, start + timedelta(hours=1), fuel=fuel, generation_mw=float(value))
    return out.table(FUEL_MIX, source_name(path), published_at)


# ----------------------------------------------------------------------------- dispatch
DATASETS = ("lmp_dam", "lmp_dam_exante", "lmp_rt60m", "lmp_rt5m", "as_dam", "as_rt5m", "load_actual",
            "load_forecast", "fuel_mix")


def normalize_payload(dataset: str, name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    """One MISO document (as downloaded, or a raw-stage copy) -> standard rows. ``published_at``
    defaults to the stamp of a raw-stage name."""
    if dataset not in DATASETS:
        raise KeyError(f"MISO dataset {dataset!r} has no normalizer; known: {', '.join(DATASETS)}")
    published = published_at or published_at_from_name(name)
    source = source_name(name).lower()
    if payload[:512].lstrip(b"\xef\xbb\xbf \r\n\t").lower().startswith((b"<!doctype html", b"<html")):
        raise NormalizeError(name, 1, None, "an HTML page, not a MISO document (a bot-challenge page?)")
    if dataset == "lmp_rt5m" and is_zip(payload) and "5min_lmp" in source:
        return _five_min_zip(name, payload, published)
    if dataset == "lmp_rt5m" and (is_zip(payload) or source.startswith("dx_")):
        return _dx_lmp(name, payload, published)
    if is_xls(payload):
        if dataset not in ("load_actual", "load_forecast"):
            raise NormalizeError(name, None, None, f"an .xls workbook is not a {dataset} document")
        return _df_al(dataset, name, payload, published)
    if is_zip(payload):  # xlsx
        if dataset == "as_rt5m":
            return _as_weekly(name, payload, published)
        if dataset == "fuel_mix":
            return _fuel_annual(name, payload, published)
        raise NormalizeError(name, None, None, f"a zip/xlsx document is not a {dataset} document")
    head = payload[:64].lstrip(b"\xef\xbb\xbf \r\n\t")
    if head.startswith((b"{", b"[")):
        doc = _json(name, payload)
        if not isinstance(doc, dict):
            raise NormalizeError(name, None, None, "expected a JSON object")
        if dataset == "lmp_rt5m":
            return _api_lmp(name, doc, published)
        if dataset == "as_rt5m":
            return _api_as(name, doc, published)
        if dataset == "fuel_mix":
            return _fuel_api(name, doc, published)
        if dataset in ("load_actual", "load_forecast"):
            return _load_api(dataset, name, doc, published)
        raise NormalizeError(name, None, None, f"a JSON document is not a {dataset} document")
    if dataset.startswith("lmp_"):
        return _lmp_report(dataset, name, payload, published)
    if dataset == "as_dam":
        return _asm_report(dataset, name, payload, published)
    raise NormalizeError(name, None, None, f"not a {dataset} document (unrecognized format)")
