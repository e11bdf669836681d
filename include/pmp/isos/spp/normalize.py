"""SPP normalizers: marketplace file-browser CSVs and the chart API -> the standard tables.

Every SPP quirk is handled in one named place below, with the reason next to it:

* :func:`canonical` - header spellings drift between interval and daily files (``GMTIntervalEnd`` /
  ``GMT Interval`` / ``GMTInterval``, ``Settlement Location`` / ``Settlement Location Name``,
  ``Pnode`` / ``PNODE Name``) and carry stray spaces (``" RegDNMile"``): stripped and aliased.
* :class:`_Clock` - rows carry GMT interval-end stamps: they alone place a row on the UTC timeline
  (the local ``Interval`` label repeats in the fall-back hour). The local label is *checked* against
  the GMT stamp, so a file whose two clocks disagree is rejected, not half-trusted.
* :func:`_location_type` - hubs (``*_HUB``) and the external interfaces are told from names.
* :func:`_as_products` - reserve prices are wide (one column per product, SPP's own codes); products
  a file does not publish (ramp and uncertainty before 2022-03) are simply absent, an empty cell is NULL.
* :func:`_mtlf` - the mid-term load forecast file carries no issue time: its *name* does (local
  issue hour, ``d`` for the repeated fall-back hour); its past 24 hours carry ``Averaged Actual``.
* :func:`_baa_areas` - since SPP's RTO West expansion files carry a ``BAA`` column (SPP / SWPW): the
  load is stored per BAA and ``SYSTEM`` is their sum (before, the whole file is the SPP BA = SYSTEM).
* :func:`_genmix_csv` / :func:`_genmix_chart` - generation mix: ``<Fuel> Market`` + ``<Fuel> Self``
  summed per fuel; stamps are interval *ends* (the chart's ``lastModifiedDate`` is 28 s after its
  last label), so a reading is stored as the 5 minutes ending at it.
* :func:`storage_name` / :func:`source_name` - raw-stage names keep SPP's file name plus a content hash.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from pmp.errors import NormalizeError, utf8_text
from pmp.isos.spp.files import CENTRAL, FileNameError, name_instant
from pmp.payload import leaf_name
from pmp.schema import ANCILLARY_SERVICES, FUEL_MIX, LMP, LOAD, Rows, conform

log = logging.getLogger(__name__)

ISO = "SPP"
FIVE_MIN = timedelta(minutes=5)

# Quirk: interval files, daily roll-ups and forecast files spell the same columns differently and
# some headers carry leading spaces. Keys are lower-case with spaces removed.
ALIASES = {
    "interval": "local", "gmtintervalend": "gmt", "gmtinterval": "gmt", "gmtintervalending": "gmt",
    "settlementlocation": "location", "settlementlocationname": "location",
    "pnode": "pnode", "pnodename": "pnode", "reservezone": "zone", "baa": "baa",
    "lmp": "lmp", "mlc": "mlc", "mcc": "mcc", "mec": "mec",
    "mtlf": "mtlf", "averagedactual": "actual",
    "gmtmktinterval": "gmt_iso", "gmttime": "gmt_iso",
}
INTERFACES = frozenset({
    "AECI", "ALTW", "AMRN", "BLKW", "CLEC", "DPC", "EDDY", "EES", "ERCOTE", "ERCOTN", "GRE", "LAM345", "MCWEST",
    "MDU", "MEC", "MISO", "NSP", "OTP", "RCEAST", "SCSE", "SGE", "SPA", "SPC",
})
# generation-mix columns that are not a fuel
GENMIX_OTHER = {"load", "averageactualload", "shorttermloadforecast", "baa"}


def canonical(header: str) -> str:
    key = re.sub(r"\s+", "", header).lower()
    return ALIASES.get(key, key)


# ----------------------------------------------------------------------------- CSV
@dataclass
class Csv:
    path: str
    headers: list[str]  # stripped, as published
    columns: list[str]  # canonical
    rows: list[tuple[int, list[str]]]

    def index(self, column: str) -> int:
        try:
            return self.columns.index(column)
        except ValueError:
            raise NormalizeError(self.path, 1, column, f"missing column; header is {self.headers}") from None

    def has(self, column: str) -> bool:
        return column in self.columns

    def header(self, column: str) -> str:
        return self.headers[self.columns.index(column)] if column in self.columns else column


def read_csv(path: str, data: bytes) -> Csv:
    """SPP CSVs: LF or CRLF, header on line 1 (stray spaces stripped), no quoting of note."""
    if not data.strip():
        # Quirk: SPP serves some interval files empty (a real 0-byte RTBM file is among the samples):
        # the adapter treats them as missing; a bare empty file given to ``pmp normalize`` is rejected.
        raise NormalizeError(path, None, None, "empty file (SPP serves some interval files empty; "
                                               "they count as missing intervals)")
    reader = csv.reader(io.StringIO(utf8_text(path, data), newline=""))
    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if headers is None:
                headers = [c.strip() for c in cells]
                continue
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise NormalizeError(path, reader.line_num, None, f"malformed CSV ({exc})") from exc
    assert headers is not None
    width = len(headers)
    for line, cells in rows:
        if len(cells) != width:
            raise NormalizeError(path, line, None, f"{len(cells)} fields, header has {width}")
    return Csv(path, headers, [canonical(h) for h in headers], rows)


# ----------------------------------------------------------------------------- time
class _Clock:
    """GMT interval-end stamps -> UTC, checked against the local ``Interval`` label.

    Quirk: SPP writes both clocks on every row: ``Interval`` is local Central prevailing time,
    interval *ending* (the day-ahead HE24 is the next day's ``00:00:00``), and it repeats during the
    fall-back hour; ``GMTIntervalEnd`` is unambiguous. The GMT stamp is used; the local label must
    show the same instant's Central wall time, else the row is bad input (which clock is right cannot
    be told)."""

    FMT = "%m/%d/%Y %H:%M:%S"

    def __init__(self, f: Csv) -> None:
        self.f = f
        self.gi = f.index("gmt")
        self.li = f.index("local") if f.has("local") else None
        self._gmt: dict[str, datetime] = {}
        self._checked: set[tuple[str, str]] = set()

    def end(self, line: int, cells: list[str]) -> datetime:
        label = cells[self.gi].strip()
        t = self._gmt.get(label)
        if t is None:
            try:
                t = datetime.strptime(label, self.FMT).replace(tzinfo=UTC)
            except ValueError:
                raise NormalizeError(self.f.path, line, self.f.headers[self.gi],
                                     f"not a MM/DD/YYYY HH:MM:SS GMT stamp: {label!r}") from None
            self._gmt[label] = t
        if self.li is not None:
            local_label = cells[self.li].strip()
            if (local_label, label) not in self._checked:
                shown = t.astimezone(CENTRAL).strftime(self.FMT)
                if local_label != shown:
                    raise NormalizeError(self.f.path, line, self.f.headers[self.li],
                                         f"local {local_label!r} is not GMT {label!r} in Central time ({shown})")
                self._checked.add((local_label, label))
        return t


def _number(f: Csv, line: int, column: int, value: str) -> float | None:
    value = value.strip()
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise NormalizeError(f.path, line, f.headers[column], f"not a number: {value!r}")
    return number


class _Rows(Rows):
    iso = ISO


def _once(f: Csv, seen: dict[tuple[str, datetime], tuple[int, tuple]], key: tuple[str, datetime], line: int,
          values: tuple) -> bool:
    """True the first time ``key`` is seen; an exact repeat is skipped (False), a repeat with other
    values is bad input (which is right cannot be told)."""
    previous = seen.get(key)
    if previous is None:
        seen[key] = (line, values)
        return True
    if previous[1] != values:
        raise NormalizeError(f.path, line, None, f"{key[0]!r} at {key[1]:%Y-%m-%dT%H:%MZ} listed again (line "
                                                 f"{previous[0]}) with other values")
    return False


# ----------------------------------------------------------------------------- tables
def _location_type(name: str) -> str:
    """SPP's settlement locations include its two trading hubs and the external interfaces."""
    if name.endswith("_HUB"):
        return "Hub"
    return "Interface" if name in INTERFACES else "Settlement Location"


def lmp_vectorized(data: bytes, market: str, minutes: int, source: str, published: datetime | None) -> pa.Table | None:
    """The LMP normalizer in Arrow kernels (a By_Day roll-up is ~355 000 rows: row by row in Python
    that is the slowest step of a history load, see README "The Rust bulk path"). Same rows as
    :func:`_lmp`; returns None on anything unusual (a bad number or stamp, a repeated row, a local label
    that disagrees with its GMT stamp), and the row-by-row reference then names the file, line and field."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        head = next(csv.reader(io.StringIO(data[:4096].decode("utf-8-sig").split("\n", 1)[0])))
        columns = [canonical(h) for h in head]
        numeric = {c: pa.float64() for c in ("lmp", "mlc", "mcc", "mec")}
        t = pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1),
                           convert_options=pacsv.ConvertOptions(
                               column_types={c: numeric.get(c, pa.string()) for c in columns},
                               null_values=[""], strings_can_be_null=False, quoted_strings_can_be_null=False))
        if t.num_rows == 0 or t.column("lmp").null_count:
            return None
        gmt = pc.utf8_trim_whitespace(t.column("gmt"))
        end = pc.strptime(gmt, format="%m/%d/%Y %H:%M:%S", unit="us").cast(pa.timestamp("us", tz="UTC"))
        if "local" in t.column_names:  # both clocks agree: checked once per distinct pair
            pairs = pc.unique(pc.binary_join_element_wise(pc.utf8_trim_whitespace(t.column("local")), gmt, "|"))
            for pair in pairs.to_pylist():
                local_label, gmt_label = pair.split("|")
                shown = datetime.strptime(gmt_label, _Clock.FMT).replace(tzinfo=UTC).astimezone(CENTRAL)
                if shown.strftime(_Clock.FMT) != local_label:
                    return None
        location = pc.utf8_trim_whitespace(t.column("location"))
        keys = pa.table({"l": location, "e": end}).group_by(["l", "e"]).aggregate([])
        if keys.num_rows != t.num_rows:
            return None  # repeated rows: the reference path decides (exact repeat or conflict)
    except (pa.ArrowInvalid, ValueError, KeyError, StopIteration, UnicodeDecodeError):
        return None
    n = t.num_rows
    kind = pc.if_else(pc.ends_with(location, "_HUB"), "Hub",
                      pc.if_else(pc.is_in(location, pa.array(sorted(INTERFACES))), "Interface", "Settlement Location"))
    pnode = pc.utf8_trim_whitespace(t.column("pnode")) if "pnode" in t.column_names else pa.nulls(n, pa.string())
    table = pa.table({
        "interval_start": pc.subtract(end, pa.scalar(timedelta(minutes=minutes), pa.duration("us"))),
        "interval_end": end, "iso": pa.repeat(ISO, n), "market": pa.repeat(market, n), "location": location,
        "location_type": kind, "location_id": pnode, "lmp": t.column("lmp"), "energy": t.column("mec"),
        "congestion": t.column("mcc"), "loss": t.column("mlc"), "ghg": pa.nulls(n, pa.float64()),
        "published_at": pa.repeat(pa.scalar(published, pa.timestamp("us", tz="UTC")), n),
        "source": pa.repeat(source, n),
    })
    return conform(table, LMP)


def _lmp(f: Csv, market: str, minutes: int, source: str, published: datetime | None) -> pa.Table:
    clock, step = _Clock(f), timedelta(minutes=minutes)
    li, pi = f.index("location"), f.index("pnode") if f.has("pnode") else None
    xi = [f.index(c) for c in ("lmp", "mec", "mcc", "mlc")]
    rows = _Rows(*("market", "location", "location_type", "location_id", "lmp", "energy", "congestion", "loss"))
    seen: dict[tuple[str, datetime], tuple[int, tuple]] = {}
    types: dict[str, str] = {}
    for line, cells in f.rows:
        end = clock.end(line, cells)
        name = cells[li].strip()
        lmp, energy, congestion, loss = (_number(f, line, i, cells[i]) for i in xi)
        if lmp is None:
            raise NormalizeError(f.path, line, f.headers[xi[0]], "empty price")
        pnode = cells[pi].strip() if pi is not None else None
        if not _once(f, seen, (name, end), line, (lmp, energy, congestion, loss, pnode)):
            continue
        kind = types.get(name) or types.setdefault(name, _location_type(name))
        rows.add(end - step, end, market=market, location=name, location_type=kind, location_id=pnode, lmp=lmp,
                 energy=energy, congestion=congestion, loss=loss)
    return rows.table(LMP, source, published)


_AS_KEYS = {"local", "gmt", "zone", "baa"}


def _as_products(f: Csv) -> list[tuple[int, str]]:
    """SPP's reserve products, one price column each, named by SPP's codes (stripped): day-ahead
    ``RegUP RegDN RampUP RampDN Spin Supp UncUP``, real-time ``RegUPService RegDNService RegUpMile
    RegDNMile RampUP RampDN Spin Supp UncUP``. Whatever columns a file has are its products."""
    products = [(i, h) for i, (h, c) in enumerate(zip(f.headers, f.columns, strict=True)) if c not in _AS_KEYS]
    if not products:
        raise NormalizeError(f.path, 1, None, f"no reserve price columns; header is {f.headers}")
    return products


def _ancillary(f: Csv, market: str, minutes: int, source: str, published: datetime | None) -> pa.Table:
    clock, step = _Clock(f), timedelta(minutes=minutes)
    zi = f.index("zone")
    products = _as_products(f)
    rows = _Rows(*("market", "region", "product", "clearing_price"))
    seen: dict[tuple[str, datetime], tuple[int, tuple]] = {}
    for line, cells in f.rows:
        end = clock.end(line, cells)
        zone = cells[zi].strip()
        prices = tuple(_number(f, line, i, cells[i]) for i, _ in products)
        if not _once(f, seen, (zone, end), line, prices):
            continue
        for (_, product), price in zip(products, prices, strict=True):
            rows.add(end - step, end, market=market, region=zone, product=product, clearing_price=price)
    return rows.table(ANCILLARY_SERVICES, source, published)


def _baa_areas(values: dict[str, float], baas: set[str]) -> list[tuple[str, float]]:
    """Quirk: files since SPP's RTO West expansion list each BAA (``SPP``, ``SWPW``) on its own row.
    Each is stored as its own area and ``SYSTEM`` is their sum, written only when every BAA of the
    file has a value for the interval. Files without a ``BAA`` column are the SPP BA alone: SYSTEM."""
    if "" in values:
        return [("SYSTEM", values[""])]
    out = sorted(values.items())
    if set(values) == baas:
        out.append(("SYSTEM", sum(values.values())))
    return out


def _mtlf(f: Csv, path: str, column: str, source: str, published: datetime | None) -> pa.Table:
    """Quirk: an ``OP-MTLF-{YYYYMMDDHH}00[d].csv`` file carries no issue time; its name gives the local
    issue hour (``d`` = the repeated fall-back hour's second pass), which is the vintage of its
    ``MTLF`` column (the next 7 days). Its past 24 hours carry ``Averaged Actual`` instead."""
    try:
        issued = name_instant(source)
    except FileNameError as exc:
        raise NormalizeError(path, None, "forecast_issued_at", str(exc)) from None
    clock, step = _Clock(f), timedelta(hours=1)
    vi = f.index("mtlf" if column == "forecast" else "actual")
    bi = f.index("baa") if f.has("baa") else None
    by_end: dict[datetime, dict[str, float]] = {}
    baas: set[str] = set()
    for line, cells in f.rows:
        end = clock.end(line, cells)
        baa = cells[bi].strip() if bi is not None else ""
        baas.add(baa)
        value = _number(f, line, vi, cells[vi])
        if value is None:
            continue
        previous = by_end.setdefault(end, {}).setdefault(baa, value)
        if previous != value:
            raise NormalizeError(f.path, line, f.headers[vi], f"{end:%Y-%m-%dT%H:%MZ} {baa or 'SPP'} listed twice")
    rows = _Rows(*("area", "kind", "forecast_issued_at", "model", "load_mw"))
    for end, values in sorted(by_end.items()):
        for area, mw in _baa_areas(values, baas):
            if column == "forecast":
                rows.add(end - step, end, area=area, kind="forecast", forecast_issued_at=issued, model="MTLF",
                         load_mw=mw)
            else:
                rows.add(end - step, end, area=area, kind="actual", forecast_issued_at=end, model="", load_mw=mw)
    return rows.table(LOAD, source, published or issued)


_ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?(\.\d+)?Z$")


def genmix_stamp(path: str, line: int | None, label: str) -> datetime:
    label = label.strip()
    try:
        if _ISO_Z.match(label):
            return datetime.fromisoformat(label.replace("Z", "+00:00"))
        return datetime.strptime(label, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        pass
    raise NormalizeError(path, line, "GMT MKT Interval", f"not a GMT time stamp: {label!r}")


def _fuels(f: Csv) -> dict[str, list[int]]:
    """Quirk: since 2018 every fuel is split into ``<Fuel> Market`` and ``<Fuel> Self`` (market- vs
    self-committed) columns; older files have one column per fuel. The stored fuel is SPP's fuel name
    (as the chart labels it), its MW the sum of its columns."""
    out: dict[str, list[int]] = {}
    for i, (h, c) in enumerate(zip(f.headers, f.columns, strict=True)):
        if c in ("gmt_iso", "local", "gmt") or c in GENMIX_OTHER:
            continue
        fuel = re.sub(r"\s+(Market|Self)$", "", h).strip()
        fuel = {"Gas": "Natural Gas"}.get(fuel, fuel)
        out.setdefault(fuel, []).append(i)
    return out


def _genmix_csv(f: Csv, source: str, published: datetime | None) -> pa.Table:
    ti = f.index("gmt_iso")
    fuels = _fuels(f)
    rows = _Rows(*("fuel", "generation_mw"))
    seen: dict[tuple[str, datetime], tuple[int, tuple]] = {}
    for line, cells in f.rows:
        end = genmix_stamp(f.path, line, cells[ti])
        values = {fuel: [_number(f, line, i, cells[i]) for i in cols] for fuel, cols in fuels.items()}
        if not _once(f, seen, ("", end), line, tuple(tuple(v) for v in values.values())):
            continue
        for fuel, parts in values.items():
            known = [v for v in parts if v is not None]
            if known:
                rows.add(end - FIVE_MIN, end, fuel=fuel, generation_mw=sum(known))
    return rows.table(FUEL_MIX, source, published)



def _genmix_chart(path: str, data: bytes, source: str) -> pa.Table:
    """``chart-api/gen-mix/asChart``: Chart.js JSON, ``response.labels`` = UTC interval ends,
    ``response.datasets[].{label, data}`` one series per fuel; ``lastModifiedDate`` (epoch ms) is
    the publication time. A null point (``spanGaps``) is skipped."""
    try:
        doc = json.loads(utf8_text(path, data))
        resp = doc["response"]
        labels, series = resp["labels"], resp["datasets"]
        published = datetime.fromtimestamp(int(resp["lastModifiedDate"]) / 1000, UTC)
    except (ValueError, KeyError, TypeError) as exc:
        raise NormalizeError(path, None, None, f"not a gen-mix chart document ({exc!r})") from None
    ends = [genmix_stamp(path, None, str(label)) for label in labels]
    rows = _Rows(*("fuel", "generation_mw"))
    for s in series:
        fuel, values = s.get("label"), s.get("data") or []
        if not isinstance(fuel, str) or len(values) != len(ends):
            raise NormalizeError(path, None, "datasets", f"series {fuel!r}: {len(values)} points for {len(ends)} labels")
        for end, value in zip(ends, values, strict=True):
            if value is None:
                continue
            if not isinstance(value, int | float):
                raise NormalizeError(path, None, fuel, f"not a number: {value!r}")
            rows.add(end - FIVE_MIN, end, fuel=fuel, generation_mw=float(value))
    return rows.table(FUEL_MIX, source, published)


# ----------------------------------------------------------------------------- names
_STORED = re.compile(r"^(?P<stem>.+?)\.(?P<hash>[0-9a-f]{8})\.(?P<ext>csv|json)$", re.IGNORECASE)


def storage_name(name: str, digest: str) -> str:
    """Raw-stage name: SPP's file name plus the content hash (``RTBM-LMP-SL-202411030105d.3fa2b1c9.csv``),
    so a file SPP reposts with other prices (repricing) gets its own immutable key."""
    stem, _, ext = leaf_name(name).rpartition(".")
    return f"{stem}.{digest[:8]}.{ext}"


def source_name(path: str) -> str:
    """``source`` = SPP's own file name (the raw stage's hash removed)."""
    leaf = leaf_name(path)
    m = _STORED.match(leaf)
    return f"{m.group('stem')}.{m.group('ext')}" if m else leaf


# ----------------------------------------------------------------------------- entry point
Normalizer = Callable[[Csv, str, datetime | None], pa.Table]
MARKET = {"lmp_dam": ("DAM", 60), "lmp_rt5m": ("RT5M", 5), "as_dam": ("DAM", 60), "as_rt5m": ("RT5M", 5)}
DATASETS = ("lmp_dam", "lmp_rt5m", "as_dam", "as_rt5m", "load_actual", "load_forecast", "fuel_mix")


def normalize_payload(dataset: str, path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """One SPP document -> standard rows. ``path`` names the file in errors; ``source`` is its SPP
    file name; ``published_at`` is the download's ``Last-Modified`` (forecasts: their issue time)."""
    if dataset not in DATASETS:
        raise KeyError(f"SPP dataset {dataset!r} has no normalizer; known: {', '.join(DATASETS)}")
    source = source_name(path)
    if dataset == "fuel_mix" and data.lstrip()[:1] == b"{":
        return _genmix_chart(path, data, source)
    if dataset.startswith("lmp_") and data.strip():
        market, minutes = MARKET[dataset]
        fast = lmp_vectorized(data, market, minutes, source, published_at)
        if fast is not None:
            return fast
    f = read_csv(path, data)
    if dataset in MARKET:
        market, minutes = MARKET[dataset]
        make = _lmp if dataset.startswith("lmp_") else _ancillary
        return make(f, market, minutes, source, published_at)
    if dataset in ("load_actual", "load_forecast"):
        return _mtlf(f, path, "actual" if dataset == "load_actual" else "forecast", source, published_at)
    return _genmix_csv(f, source, published_at)
