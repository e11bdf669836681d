"""ISO-NE normalizers: ISO Express CSVs and Web Services JSON -> the standard tables.

One entry point, :func:`normalize_payload`, reads either format (CSVs start with a record type,
JSON with ``{`` or ``[``). Every ISO-NE quirk is handled in one named place:

* :func:`pmp.isos.isone.records.parse` - the ``"C"/"H"/"D"/"T"`` record structure; no trailer = truncated.
* :func:`pmp.isos.isone.timelabels.hour_ending` - ``01``..``24`` and ``02X``.
* :class:`pmp.isos.isone.timelabels.LocalClock` - offset-free 5-minute/snapshot times, repeated hour by order.
* :data:`COLUMN_ALIASES` - the same field under two names in different reports.
* :func:`_location` - 5-minute LMP CSVs carry the Location ID only; names and types come from the
  core table or the day's day-ahead file.
* :func:`pmp.isos.isone.locations.canonical_name` - ``.H.INTERNALHUB`` vs ``.H.INTERNAL_HUB``.
* :func:`_records` - Web Services send one record as an object and an empty day as ``""``.
* :func:`_floor_five` - Web Services reserve ``BeginDate`` sometimes lands seconds past the mark.
* :func:`_snapshot_intervals` - fuel-mix snapshots come at irregular instants: 5-minute intervals.
* :func:`document_name` - raw storage names carry a content digest; ``source`` is the document name.
* :func:`_publication` - prelim/final rows must carry their publication time.
* :func:`prelim_reserve_rank` - a preliminary reserve report generated late never outranks the final.
* :func:`pmp.isos.isone.timelabels.latest_before` - the current-interval LMP report's offset-free label.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.isos.isone import records
from pmp.isos.isone.locations import CORE, canonical_name
from pmp.isos.isone.timelabels import LocalClock, hour_ending, latest_before, offset_instant
from pmp.payload import leaf_name
from pmp.schema import ANCILLARY_SERVICES, FUEL_MIX, LMP, LOAD, TableSchema, conform
from pmp.timeutil import TimeLabelError, market_day_bounds

ISO = "ISONE"
LMP_MARKETS = {"lmp_dam": ("DAM", 60), "lmp_rt60m": ("RT60M", 60), "lmp_rt5m": ("RT5M", 5)}
# Published twice (prelim, then final): the publication time decides which one the warehouse keeps.
TWO_STAGE = ("lmp_rt5m", "lmp_rt60m")
DATASETS = (*LMP_MARKETS, "as_rt5m", "load_actual", "load_forecast", "fuel_mix")
SYSTEM = "SYSTEM"  # the ISO-wide load area

# Quirk: reports name the same field differently (the hourly files say "Locational Marginal Price"
# and "Marginal Loss Component", the 5-minute files "LMP" and "Loss Component").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "Locational Marginal Price": ("LMP",),
    "Marginal Loss Component": ("Loss Component",),
}

# Reserve products (ISO-NE's own codes) and where each one's price, designation and requirement are.
# The ten-minute requirements are published for Rest of System only; TMNSR's requirement is the total
# ten-minute requirement (spinning + non-spinning), TMOR's the total thirty-minute requirement.
RESERVE_PRODUCTS = (
    # product, CSV price, CSV designation, CSV requirement, JSON price, JSON designation, JSON requirement
    ("TMSR", "TMSR Clearing Price", "TMSR Designated MW", "Ten Min Spin Requirement",
     "TmsrClearingPrice", "TmsrDesignatedMw", "TenMinSpinRequirement"),
    ("TMNSR", "TMNSR Clearing Price", "TMNSR Designated MW", "Total 10 Min Requirement",
     "TmnsrClearingPrice", "TmnsrDesignatedMw", "Total10MinRequirement"),
    ("TMOR", "TMOR Clearing Price", "TMOR Designated MW", "Total 30 Min Requirement",
     "TmorClearingPrice", "TmorDesignatedMw", "Total30MinRequirement"),
)

# The intraday preliminary reserve prices (ISO Express ``fiveminreserveprice?type=prelim``, Web Services
# ``/fiveminutereserveprice/day/{d}``; document names from the adapter) and how long after its day a
# preliminary value may still be posted: the rank of a preliminary report is capped there
# (:func:`prelim_reserve_rank`). ISO-NE posts the final reserve prices after that (about 00:20 the next day).
PRELIM_RESERVES = re.compile(r"(?:fiveminreserveprice_prelim|fiveminutereserveprice_day)_(\d{8})")
PRELIM_RESERVES_CLOSE = timedelta(minutes=15)

_DIGEST = re.compile(r"@[0-9a-f]{8,64}(?=\.[A-Za-z0-9]+$|$)")
_NAME_DAY = re.compile(r"(?<!\d)(20\d{6})(?!\d)")


def document_name(name: str) -> str:
    """The document a raw file holds (what ``source`` says): the raw storage name without its content
    digest, ``~`` standing for the ``/`` of a qualified name.

    Quirk: prelim and final 5-minute LMP files share a file name in two folders
    (``5min-rt-prelim/lmp_5min_…`` and ``5min-rt-final/lmp_5min_…``), and ISO Express reports are
    regenerated on request; raw keys therefore carry a digest of their bytes (a re-fetch with other
    bytes never collides with an immutable raw file) and the folder where names repeat.
    """
    return _DIGEST.sub("", leaf_name(name)).replace("~", "/")


# ------------------------------------------------------------------ helpers
def _number(value: str | float | int | None) -> float | None:
    """A price or quantity exactly as published (``float()``); empty = not published."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {value!r}")
    return v


def _csv_number(r: records.Report, i: int, col: int, *, required: bool = False) -> float | None:
    raw = r.rows[i][col].strip()
    try:
        v = _number(raw)
    except ValueError:
        raise r.error(i, r.names[col], f"not a number: {raw!r}") from None
    if v is None and required:
        raise r.error(i, r.names[col], "empty value")
    return v


def _col(r: records.Report, name: str) -> int:
    return r.column(name, *COLUMN_ALIASES.get(name, ()))


def _csv_date(r: records.Report, i: int, col: int, cache: dict[str, date]) -> date:
    raw = r.rows[i][col].strip()
    if raw not in cache:
        try:
            cache[raw] = datetime.strptime(raw, "%m/%d/%Y").date()
        except ValueError:
            raise r.error(i, r.names[col], f"not a MM/DD/YYYY date: {raw!r}") from None
    return cache[raw]


def _local_clock(r: records.Report, i: int, col: int, clock: LocalClock, entity: Any, fmt: str,
                 day: date | None = None) -> datetime:
    raw = r.rows[i][col].strip()
    try:
        naive = datetime.strptime(raw, fmt)
        if day is not None:
            naive = datetime.combine(day, naive.time())
        return clock.instant(entity, naive)
    except ValueError as exc:
        if isinstance(exc, TimeLabelError):
            raise r.error(i, r.names[col], str(exc)) from None
        raise r.error(i, r.names[col], f"not a {fmt.replace('%', '')} time: {raw!r}") from None


def _latest_before(r: records.Report, i: int, col: int, anchor: datetime) -> datetime:
    raw = r.rows[i][col].strip()
    try:
        return latest_before(datetime.strptime(raw, "%m/%d/%Y %H:%M"), anchor)
    except TimeLabelError as exc:
        raise r.error(i, r.names[col], str(exc)) from None
    except ValueError:
        raise r.error(i, r.names[col], f"not a MM/DD/YYYY HH:MM time: {raw!r}") from None


def _report_day(r: records.Report, name: str) -> date:
    day = r.report_day
    if day is None:
        m = _NAME_DAY.search(leaf_name(name))
        if m:
            day = datetime.strptime(m.group(1), "%Y%m%d").date()
    if day is None:
        raise NormalizeError(r.path, None, None, 'no market day: neither a "Report for" comment nor a date in the name')
    return day


def _floor_five(t: datetime) -> datetime:
    """Quirk (gridstatus, Web Services reserve prices): ``BeginDate`` sometimes reads ``:01``/``:02``
    past the 5-minute mark. Floored in UTC (Eastern offsets are whole hours). Also used for the
    fuel-mix snapshot instants (:func:`_snapshot_intervals`)."""
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % 300, UTC)


def _unique(path: str, keys: Iterable[tuple], where: Callable[[int], tuple[int | None, str]]) -> None:
    """A document holds each key once (a duplicate would silently overwrite a row)."""
    seen: set[tuple] = set()
    for i, k in enumerate(keys):
        if k in seen:
            line, what = where(i)
            raise NormalizeError(path, line, None, f"duplicate {what}")
        seen.add(k)


def _table(schema: TableSchema, columns: dict[str, list]) -> pa.Table:
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = {}
    for f in schema.arrow:
        values = columns.get(f.name)
        arrays[f.name] = pa.array(values, f.type) if values is not None else pa.nulls(n, f.type)
    return conform(pa.table(arrays), schema)


# ------------------------------------------------------------------ LMP
def _location(r: records.Report, i: int, loc_id: str, table: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """Quirk: the 5-minute LMP CSVs identify locations by ``Location ID`` only (reference 5.5). The
    name and type come from ISO-NE's fixed core locations or from the day's day-ahead LMP file,
    which lists every location (the adapter stages it beside the 5-minute files). The id itself is
    kept in ``location_id`` on every route."""
    found = table.get(loc_id) or CORE.get(loc_id)
    if found is None:
        raise r.error(i, "Location ID", f"location id {loc_id!r} has no name: the day's day-ahead LMP file "
                                        "(WW_DALMP_ISO_<day>.csv) must be normalized first")
    return canonical_name(found[0]), found[1]


def location_table(data: bytes, path: str = "WW_DALMP_ISO.csv") -> dict[str, tuple[str, str]]:
    """Location ID -> (name, type) from an hourly LMP CSV (the day-ahead file lists every location)."""
    r = records.parse(path, data)
    c_id, c_name, c_type = r.column("Location ID"), r.column("Location Name"), r.column("Location Type")
    return {row[c_id].strip(): (row[c_name], row[c_type].strip()) for row in r.rows}


def _lmp_csv(dataset: str, r: records.Report, name: str, source: str, published: datetime | None,
             locations: dict[str, tuple[str, str]] | None) -> pa.Table:
    market, minutes = LMP_MARKETS[dataset]
    c_lmp, c_e, c_c, c_l = (_col(r, n) for n in ("Locational Marginal Price", "Energy Component",
                                                  "Congestion Component", "Marginal Loss Component"))
    c_id = r.column("Location ID")
    starts, locs, types, lmps, energy, cong, loss = [], [], [], [], [], [], []
    ids = [row[c_id].strip() or None for row in r.rows]  # ISO-NE's Location ID, kept as published
    if minutes == 60:
        c_date, c_he, c_name, c_type = (r.column(n) for n in ("Date", "Hour Ending", "Location Name", "Location Type"))
        dates: dict[str, date] = {}
        hours: dict[tuple[date, str], datetime] = {}
        for i, row in enumerate(r.rows):
            day = _csv_date(r, i, c_date, dates)
            key = (day, row[c_he].strip())
            if key not in hours:
                try:
                    hours[key] = hour_ending(*key)
                except TimeLabelError as exc:
                    raise r.error(i, r.names[c_he], str(exc)) from None
            starts.append(hours[key])
            locs.append(canonical_name(row[c_name]))
            types.append(row[c_type].strip())
    else:
        c_time = r.column("Local Time")
        if r.rows and " " in r.rows[0][c_time].strip():
            # the current-interval report: date and time, its newest interval just before its stamp
            assert isinstance(published, datetime)  # _publication refused a report without its stamp
            starts = [_latest_before(r, i, c_time, published) for i in range(len(r.rows))]
        else:  # the 4-hour files: time of day; the date is the report's day
            day = _report_day(r, name)
            clock = LocalClock()
            starts = [_local_clock(r, i, c_time, clock, row[c_id].strip(), "%H:%M", day) for i, row in enumerate(r.rows)]
        for i, row in enumerate(r.rows):
            loc, typ = _location(r, i, row[c_id].strip(), locations or {})
            locs.append(loc)
            types.append(typ)
    for i in range(len(r.rows)):
        lmps.append(_csv_number(r, i, c_lmp, required=True))
        energy.append(_csv_number(r, i, c_e))
        cong.append(_csv_number(r, i, c_c))
        loss.append(_csv_number(r, i, c_l))
    _unique(r.path, zip(locs, starts, strict=True), lambda i: (r.lines[i], f"location {locs[i]!r} and interval"))
    return _lmp_table(starts, minutes, market, locs, types, ids, lmps, energy, cong, loss, published, source)


def _lmp_table(starts: list[datetime], minutes: int, market: str, locs: list[str], types: list[str | None],
               ids: list[str | None], lmps: list, energy: list, cong: list, loss: list,
               published: datetime | list | None, source: str) -> pa.Table:
    n = len(starts)
    step = timedelta(minutes=minutes)
    return _table(LMP, {
        "interval_start": starts, "interval_end": [s + step for s in starts], "iso": [ISO] * n,
        "market": [market] * n, "location": locs, "location_type": types, "location_id": ids, "lmp": lmps,
        "energy": energy, "congestion": cong, "loss": loss,
        "published_at": published if isinstance(published, list) else [published] * n, "source": [source] * n,
    })


def _records(path: str, doc: Any, wrapper: str, inner: str) -> list[dict[str, Any]]:
    """Quirk: Web Services send a single record as an object instead of a one-element list, and a day
    without data as ``""`` (or an empty element)."""
    if not isinstance(doc, dict) or wrapper not in doc:
        raise NormalizeError(path, None, wrapper, f"not a {wrapper} document (keys: {sorted(doc)[:5] if isinstance(doc, dict) else type(doc).__name__})")
    outer = doc[wrapper]
    if outer in ("", None) or outer == {}:
        return []
    if not isinstance(outer, dict) or inner not in outer:
        raise NormalizeError(path, None, inner, f"{wrapper} without {inner} records")
    recs = outer[inner]
    recs = [recs] if isinstance(recs, dict) else recs
    if not isinstance(recs, list) or not all(isinstance(x, dict) for x in recs):
        raise NormalizeError(path, None, inner, "records are not objects")
    return recs


def _json_field(path: str, i: int, rec: dict[str, Any], key: str, *, required: bool = True) -> Any:
    if key not in rec or rec[key] is None:
        if required:
            raise NormalizeError(path, None, key, f"record {i}: missing")
        return None
    return rec[key]


def _json_number(path: str, i: int, rec: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    value = _json_field(path, i, rec, key, required=required)
    try:
        v = _number(value)
    except (TypeError, ValueError):
        raise NormalizeError(path, None, key, f"record {i}: not a number: {value!r}") from None
    if v is None and required:
        raise NormalizeError(path, None, key, f"record {i}: empty value")
    return v


def _json_instant(path: str, i: int, rec: dict[str, Any], key: str) -> datetime:
    value = _json_field(path, i, rec, key)
    try:
        return offset_instant(str(value))
    except ValueError as exc:
        raise NormalizeError(path, None, key, f"record {i}: {exc}") from None


def _lmp_json(dataset: str, path: str, doc: Any, source: str, published: datetime | None) -> pa.Table:
    market, minutes = LMP_MARKETS[dataset]
    wrapper, inner = ("HourlyLmps", "HourlyLmp") if minutes == 60 else ("FiveMinLmps", "FiveMinLmp")
    recs = _records(path, doc, wrapper, inner)
    starts, locs, types, ids, lmps, energy, cong, loss = [], [], [], [], [], [], [], []
    for i, rec in enumerate(recs):
        starts.append(_json_instant(path, i, rec, "BeginDate"))
        loc = _json_field(path, i, rec, "Location")
        if not isinstance(loc, dict) or not loc.get("$"):
            raise NormalizeError(path, None, "Location", f"record {i}: no location name")
        locs.append(canonical_name(str(loc["$"])))
        types.append(loc.get("@LocType"))
        ids.append(str(loc.get("@LocId") or "").strip() or None)  # ISO-NE's Location ID (4000 = the hub)
        lmps.append(_json_number(path, i, rec, "LmpTotal", required=True))
        energy.append(_json_number(path, i, rec, "EnergyComponent"))
        cong.append(_json_number(path, i, rec, "CongestionComponent"))
        loss.append(_json_number(path, i, rec, "LossComponent"))
    _unique(path, zip(locs, starts, strict=True), lambda i: (None, f"record {i}: location {locs[i]!r} and interval"))
    return _lmp_table(starts, minutes, market, locs, types, ids, lmps, energy, cong, loss, published, source)


def current_interval(name: str, payload: bytes) -> datetime | None:
    """Start (UTC) of the interval a current-interval LMP report holds (ISO Express
    ``fiveminlmp/current``: the first row's offset-free ``Local Time``, placed by the report's own
    ``Report generated`` stamp; Web Services ``fiveminutelmp/prelim/current/all``: the first
    ``BeginDate``), or None when the payload has no row or cannot be read (the normalize step then
    names the problem). The adapter names a fetched current report by it (``adapter._name_current``)."""
    path = leaf_name(name)
    try:
        if is_json(payload):
            recs = _records(path, json.loads(records.decode(path, payload)), "FiveMinLmps", "FiveMinLmp")
            return _json_instant(path, 0, recs[0], "BeginDate").astimezone(UTC) if recs else None
        r = records.parse(path, payload)
        if not r.rows or r.generated is None:
            return None
        return _latest_before(r, 0, r.column("Local Time"), r.generated).astimezone(UTC)
    except (NormalizeError, ValueError, KeyError):
        return None


# ------------------------------------------------------------------ reserves
def _as_table(starts: list[datetime], regions: list[str], products: list[str], prices: list, qty: list,
              req: list, published: datetime | None, source: str) -> pa.Table:
    n = len(starts)
    return _table(ANCILLARY_SERVICES, {
        "interval_start": starts, "interval_end": [s + timedelta(minutes=5) for s in starts], "iso": [ISO] * n,
        "market": ["RT5M"] * n, "region": regions, "product": products, "clearing_price": prices,
        "clearing_quantity": qty, "requirement": req, "published_at": [published] * n, "source": [source] * n,
    })


def _as_csv(r: records.Report, source: str, published: datetime | None) -> pa.Table:
    c_time, c_zone = r.column("Local Time"), r.column("Reserve Zone Name")
    cols = [(p, r.column(price), r.column(des), r.column(req)) for p, price, des, req, *_ in RESERVE_PRODUCTS]
    clock = LocalClock()
    starts, regions, products, prices, qty, reqs, lines = [], [], [], [], [], [], []
    for i, row in enumerate(r.rows):
        zone = row[c_zone].strip()
        if not zone:
            raise r.error(i, r.names[c_zone], "empty reserve zone")
        start = _floor_five(_local_clock(r, i, c_time, clock, zone, "%m/%d/%Y %H:%M"))
        for product, c_price, c_des, c_req in cols:
            starts.append(start)
            regions.append(zone)
            products.append(product)
            prices.append(_csv_number(r, i, c_price))
            qty.append(_csv_number(r, i, c_des))
            reqs.append(_csv_number(r, i, c_req))
            lines.append(r.lines[i])
    _unique(r.path, zip(regions, products, starts, strict=True), lambda k: (lines[k], f"zone {regions[k]!r} interval"))
    return _as_table(starts, regions, products, prices, qty, reqs, published, source)


def _as_json(path: str, doc: Any, source: str, published: datetime | None) -> pa.Table:
    recs = _records(path, doc, "FiveMinReservePrices", "FiveMinReservePrice")
    starts, regions, products, prices, qty, reqs = [], [], [], [], [], []
    for i, rec in enumerate(recs):
        start = _floor_five(_json_instant(path, i, rec, "BeginDate"))
        zone = str(_json_field(path, i, rec, "ReserveZoneName")).strip()
        for product, *_csv_cols, k_price, k_des, k_req in RESERVE_PRODUCTS:
            starts.append(start)
            regions.append(zone)
            products.append(product)
            prices.append(_json_number(path, i, rec, k_price))
            qty.append(_json_number(path, i, rec, k_des))
            reqs.append(_json_number(path, i, rec, k_req))
    _unique(path, zip(regions, products, starts, strict=True), lambda k: (None, f"record {k // 3}: zone interval"))
    return _as_table(starts, regions, products, prices, qty, reqs, published, source)


# ------------------------------------------------------------------ load
def _load_table(starts: list[datetime], minutes: int, kind: str, issued: list[datetime] | None, values: list,
                published: datetime | list | None, source: str) -> pa.Table:
    n = len(starts)
    ends = [s + timedelta(minutes=minutes) for s in starts]
    return _table(LOAD, {
        "interval_start": starts, "interval_end": ends, "iso": [ISO] * n, "area": [SYSTEM] * n, "kind": [kind] * n,
        # actuals: known at the end of their interval; forecasts: the vintage's issue time
        "forecast_issued_at": ends if issued is None else issued, "model": [""] * n, "load_mw": values,
        "published_at": published if isinstance(published, list) else [published] * n, "source": [source] * n,
    })


def _load_actual_csv(r: records.Report, source: str, published: datetime | None) -> pa.Table:
    c_time, c_load = r.column("Date/Time"), r.column("Native Load")
    clock = LocalClock()
    starts = [_local_clock(r, i, c_time, clock, SYSTEM, "%m/%d/%Y %H:%M") for i in range(len(r.rows))]
    values = [_csv_number(r, i, c_load, required=True) for i in range(len(r.rows))]
    return _load_table(starts, 5, "actual", None, values, published, source)


def _load_actual_json(path: str, doc: Any, source: str, published: datetime | None) -> pa.Table:
    recs = _records(path, doc, "FiveMinSystemLoads", "FiveMinSystemLoad")
    starts = [_json_instant(path, i, rec, "BeginDate") for i, rec in enumerate(recs)]
    values = [_json_number(path, i, rec, "NativeLoad", required=True) for i, rec in enumerate(recs)]
    _unique(path, ((s,) for s in starts), lambda i: (None, f"record {i}: interval"))
    return _load_table(starts, 5, "actual", None, values, published, source)


def _load_forecast_json(path: str, doc: Any, source: str) -> pa.Table:
    """Web Services ``HourlyLoadForecasts`` (every vintage) or the ISO Express ``wsclient`` answer
    (``[{"data": {"forecast": [...]}}]``, the newest vintage per hour). Each row's vintage is its
    ``CreationDate``, which is also its publication time."""
    if isinstance(doc, list):
        try:
            recs = doc[0]["data"]["forecast"] or []
        except (IndexError, KeyError, TypeError):
            raise NormalizeError(path, None, "forecast", "wsclient answer without data.forecast") from None
        value_key = "Mw"
    else:
        recs = _records(path, doc, "HourlyLoadForecasts", "HourlyLoadForecast")
        value_key = "LoadMw"
    starts = [_json_instant(path, i, rec, "BeginDate") for i, rec in enumerate(recs)]
    issued = [_json_instant(path, i, rec, "CreationDate") for i, rec in enumerate(recs)]
    values = [_json_number(path, i, rec, value_key, required=True) for i, rec in enumerate(recs)]
    _unique(path, zip(starts, issued, strict=True), lambda i: (None, f"record {i}: vintage and hour"))
    return _load_table(starts, 60, "forecast", issued, values, list(issued), source)


# ------------------------------------------------------------------ fuel mix
def _snapshot_intervals(instants: list[datetime], fuels: list[str]) -> list[int]:
    """Quirk: generation by fuel is published as snapshots at irregular instants (seconds to ten
    minutes apart, reference and gridstatus). Like ERCOT's SCED timestamps, a snapshot stands for the
    5-minute interval it falls in (floored in UTC); when two fall in one interval (ISO-NE sometimes
    posts two a few seconds apart) the later one is the interval's value. Returns the rows to keep."""
    keep: dict[tuple[str, datetime], int] = {}
    for i in sorted(range(len(instants)), key=lambda k: instants[k]):
        keep[(fuels[i], _floor_five(instants[i]))] = i
    return sorted(keep.values())


def _fuel_table(instants: list[datetime], fuels: list[str], values: list, published: datetime | None,
                source: str) -> pa.Table:
    rows = _snapshot_intervals(instants, fuels)
    starts = [_floor_five(instants[i]) for i in rows]
    n = len(rows)
    return _table(FUEL_MIX, {
        "interval_start": starts, "interval_end": [s + timedelta(minutes=5) for s in starts], "iso": [ISO] * n,
        "fuel": [fuels[i] for i in rows], "generation_mw": [values[i] for i in rows],
        "published_at": [published] * n, "source": [source] * n,
    })


def _fuel_csv(r: records.Report, name: str, source: str, published: datetime | None) -> pa.Table:
    c_date, c_time, c_fuel, c_mw = (r.column(n) for n in ("Date", "Time", "Fuel Category", "Gen Mw"))
    clock = LocalClock()
    starts, fuels, values = [], [], []
    for i, row in enumerate(r.rows):
        fuel = row[c_fuel].strip()
        if not fuel:
            raise r.error(i, r.names[c_fuel], "empty fuel category")
        raw = f"{row[c_date].strip()} {row[c_time].strip()}"
        try:
            starts.append(clock.instant(fuel, datetime.strptime(raw, "%m/%d/%Y %H:%M:%S")))
        except ValueError as exc:
            msg = str(exc) if isinstance(exc, TimeLabelError) else f"not a MM/DD/YYYY HH:MM:SS time: {raw!r}"
            raise r.error(i, r.names[c_time], msg) from None
        fuels.append(fuel)
        values.append(_csv_number(r, i, c_mw))
    return _fuel_table(starts, fuels, values, published, source)


def _fuel_json(path: str, doc: Any, source: str, published: datetime | None) -> pa.Table:
    recs = _records(path, doc, "GenFuelMixes", "GenFuelMix")
    starts = [_json_instant(path, i, rec, "BeginDate") for i, rec in enumerate(recs)]
    fuels = [str(_json_field(path, i, rec, "FuelCategory")).strip() for i, rec in enumerate(recs)]
    values = [_json_number(path, i, rec, "GenMw") for i, rec in enumerate(recs)]
    _unique(path, zip(fuels, starts, strict=True), lambda i: (None, f"record {i}: fuel and instant"))
    return _fuel_table(starts, fuels, values, published, source)


# ------------------------------------------------------------------ publication time
def _publication(dataset: str, path: str, published: datetime | None, r: records.Report | None = None) -> datetime | None:
    """The rows' ``published_at``: a CSV's own ``Report generated`` stamp, else what the fetch recorded.

    Quirk guard: for the prelim/final products the publication time is what keeps a final above its
    prelim in the warehouse (the loader's newer-publication-wins upsert). A stamp that is missing or
    in a zone other than EDT/EST would leave the rows without one, so such a document is refused
    (naming the comment line) instead of loaded undated.
    """
    if published is not None or dataset not in TWO_STAGE:
        return published
    if r is None:  # Web Services JSON carries no publication time: the fetch records the scheduled one
        raise NormalizeError(path, None, None, "no publication time given for a Web Services prelim/final "
                                               "document: prelim and final rows need it to rank them")
    line, text = r.generated_line()
    why = f"{text!r} is not 'MM/DD/YYYY HH:MM:SS EDT|EST'" if text else 'no "Report generated" comment'
    raise NormalizeError(path, line, "Report generated",
                         f"{why}: prelim and final rows need their publication time to rank them")


def prelim_reserve_rank(dataset: str, name: str, published: datetime | None) -> datetime | None:
    """The publication time that ranks the rows of an intraday preliminary reserve report.

    Quirk guard: ISO Express generates the preliminary report on request (``Report generated`` is the
    request time) and Web Services carry no time at all, so a preliminary report of day D fetched after
    the day's final (a late real-time run) would carry the later time and the loader's newer-publication-
    wins upsert would put preliminary prices back over final ones. Every preliminary value of D is posted
    by D's end + :data:`PRELIM_RESERVES_CLOSE`, before ISO-NE posts the final report, so that instant
    bounds the rank: a preliminary report never outranks the final, and later preliminary reports of the
    day still replace earlier ones (same values, more intervals)."""
    m = PRELIM_RESERVES.search(document_name(name)) if dataset == "as_rt5m" else None
    if m is None or published is None:
        return published
    close = market_day_bounds(datetime.strptime(m.group(1), "%Y%m%d").date(), "America/New_York")[1]
    return min(published, (close + PRELIM_RESERVES_CLOSE).astimezone(published.tzinfo))


# ------------------------------------------------------------------ entry point
EMPTY = {"lmp_dam": LMP, "lmp_rt60m": LMP, "lmp_rt5m": LMP, "as_rt5m": ANCILLARY_SERVICES, "load_actual": LOAD,
         "load_forecast": LOAD, "fuel_mix": FUEL_MIX}


def is_json(payload: bytes) -> bool:
    return payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def normalize_payload(dataset: str, name: str, payload: bytes, published_at: datetime | None = None,
                      locations: dict[str, tuple[str, str]] | None = None) -> pa.Table:
    """A raw ISO-NE document (CSV or JSON, as downloaded) -> rows of the dataset's standard table.

    ``name`` is the raw file name (errors name it; ``source`` is :func:`document_name` of it).
    ``locations`` maps Location IDs to (name, type) for the 5-minute LMP CSVs (see :func:`_location`).
    """
    if dataset not in DATASETS:
        raise KeyError(f"ISO-NE dataset {dataset!r} has no normalizer; known: {sorted(DATASETS)}")
    path = leaf_name(name)
    source = document_name(name)
    if is_json(payload):
        try:
            doc = json.loads(records.decode(path, payload))
        except json.JSONDecodeError as exc:
            raise NormalizeError(path, exc.lineno, None, f"malformed JSON ({exc.msg})") from exc
        if dataset in LMP_MARKETS:
            return _lmp_json(dataset, path, doc, source, _publication(dataset, path, published_at))
        if dataset == "as_rt5m":
            return _as_json(path, doc, source, prelim_reserve_rank(dataset, name, published_at))
        if dataset == "load_actual":
            return _load_actual_json(path, doc, source, published_at)
        if dataset == "load_forecast":
            return _load_forecast_json(path, doc, source)
        return _fuel_json(path, doc, source, published_at)
    if dataset == "load_forecast":
        raise NormalizeError(path, 1, None, "ISO-NE load forecasts are JSON (Web Services or wsclient), not CSV")
    r = records.parse(path, payload)
    published = _publication(dataset, path, r.generated or published_at, r)
    if dataset in LMP_MARKETS:
        return _lmp_csv(dataset, r, name, source, published, locations)
    if dataset == "as_rt5m":
        return _as_csv(r, source, prelim_reserve_rank(dataset, name, published))
    if dataset == "load_actual":
        return _load_actual_csv(r, source, published)
    return _fuel_csv(r, name, source, published)
