"""PJM normalizers: Data Miner 2 pages (one query's pages in a zip, or one body) -> standard tables.

Every PJM quirk is handled in one named place below:

* :func:`feed_of` - which feed a file is (raw names start with the feed name); the feed decides the
  market, the interval length and the field suffix (``_da`` / ``_rt``).
* :class:`_Times` - times: the ``*_utc`` column is the key (EPT labels repeat on the fall-back day),
  the paired ``*_ept`` label must agree with it (a file whose two clocks disagree is refused); labels
  are interval *beginning*; fractional seconds and the CSV export's 12-hour clock are accepted.
* :func:`_current` - archived queries cannot ask for ``row_is_current=TRUE``, so superseded versions
  of a row come along: only current rows are kept (a version conflict is an error, not a guess).
* :func:`_lmp` - unverified feeds publish no system energy price: energy = total - congestion - loss.
  Totals are not asserted to be the exact sum (PJM rounds the energy component). Every pricing
  node is kept as published, retired ones included (the node list is never a filter); one name
  must map to one pnode id within a document, else an error names both.
* :func:`_reserves` - locales and services are spelled out in some feeds and abbreviated in others:
  both map to PJM's codes (regions ``PJM_RTO``, ``MAD``; products ``SR``, ``PR``, ``30MIN``, ``REG``;
  the regulation capability/performance prices as ``REG-CCP`` / ``REG-PCP``). Real-time results
  are hourly before 2022-09-01 and 5-minute since.
* :func:`_metered_load` / :func:`_inst_load` - metered load comes by load area (SYSTEM = their sum);
  instantaneous load names the RTO ``PJM RTO`` (stored as SYSTEM).
* :func:`_forecast` - every vintage is kept: ``evaluated_at`` is the issue time; ``RTO_COMBINED`` is SYSTEM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.isos.pjm.dataminer import EPT, parse_stamp, read_page
from pmp.isos.pjm.datasets import FEEDS, RT_RESERVES_5MIN_FROM, UNVERIFIED, Feed
from pmp.payload import iter_members, leaf_name
from pmp.schema import ANCILLARY_SERVICES, FUEL_MIX, LMP, LOAD, TableSchema, conform

log = logging.getLogger(__name__)

ISO = "PJM"
LMP_MARKETS = {"lmp_dam": "DAM", "lmp_rt5m": "RT5M", "lmp_rt60m": "RT60M"}
LOCALES = {"PJM RTO Reserve Zone": "PJM_RTO", "Mid-Atlantic/Dominion Reserve Subzone": "MAD"}
SERVICES = {"Synchronized Reserve": "SR", "Primary Reserve": "PR", "Thirty Minutes Reserve": "30MIN",
            "Regulation": "REG"}
SYSTEM_AREAS = {"PJM RTO": "SYSTEM", "RTO_COMBINED": "SYSTEM"}


def feed_of(name: str) -> Feed:
    """The feed of a raw document or sample, by its name (``rt_fivemin_hrl_lmps_20241103.zip``)."""
    leaf = leaf_name(name).lower()
    matches = [f for key, f in FEEDS.items() if leaf.startswith(key)]
    if not matches:
        raise NormalizeError(name, None, None, f"no known Data Miner feed in the name (known: {', '.join(FEEDS)})")
    return max(matches, key=lambda f: len(f.name))


class _Items:
    """The items of one document with the file/item/field an error must name."""

    def __init__(self, path: str, items: list[dict[str, Any]]) -> None:
        self.path, self.items = path, items

    def error(self, index: int | None, field: str | None, message: str) -> NormalizeError:
        # "line" = the item's 1-based position in the page (JSON has no lines)
        return NormalizeError(self.path, index + 1 if index is not None else None, field, message)

    def has(self, field: str) -> bool:
        return bool(self.items) and field in self.items[0]

    def column(self, field: str, *, optional: bool = False) -> list[Any]:
        try:
            return [it[field] for it in self.items]
        except KeyError:
            if optional:
                return [it.get(field) for it in self.items]
            bad = next(i for i, it in enumerate(self.items) if field not in it)
            raise self.error(bad, field, "missing") from None

    def numbers(self, field: str, *, optional: bool = False) -> list[float | None]:
        out: list[float | None] = []
        for i, v in enumerate(self.column(field, optional=optional)):
            if v is None or v == "":
                out.append(None)
                continue
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                raise self.error(i, field, f"not a number: {v!r}") from None
        return out

    def texts(self, field: str) -> list[str]:
        values = self.column(field)
        for i, v in enumerate(values):
            if v is None or str(v).strip() == "":
                raise self.error(i, field, "empty")
        return [str(v).strip() for v in values]


class _Times:
    """UTC instants of a ``<name>_utc`` column, each distinct label parsed once; the ``<name>_ept``
    twin, when present, must be the same instant in Eastern prevailing time."""

    def __init__(self, items: _Items) -> None:
        self.items = items

    def utc(self, name: str) -> list[datetime]:
        utc_field, ept_field = f"{name}_utc", f"{name}_ept"
        labels = self.items.column(utc_field)
        parsed: dict[Any, datetime] = {}
        out = []
        for i, label in enumerate(labels):
            t = parsed.get(label)
            if t is None:
                try:
                    t = parse_stamp(str(label)).replace(tzinfo=UTC)
                except ValueError:
                    raise self.items.error(i, utc_field, f"not a Data Miner time: {label!r}") from None
                parsed[label] = t
            out.append(t)
        if self.items.has(ept_field):
            checked: set[tuple[Any, Any]] = set()
            for i, (t, ept) in enumerate(zip(out, self.items.column(ept_field, optional=True), strict=True)):
                if ept is None or (t, ept) in checked:
                    continue
                try:
                    local = parse_stamp(str(ept))
                except ValueError:
                    raise self.items.error(i, ept_field, f"not a Data Miner time: {ept!r}") from None
                if t.astimezone(EPT).replace(tzinfo=None) != local:
                    raise self.items.error(i, ept_field, f"{ept!r} is not {utc_field} {labels[i]!r} in EPT")
                checked.add((t, ept))
        return out


def _pages(name: str, payload: bytes) -> Iterator[_Items]:
    """Each page of a document: the members of the raw zip (one per page, as served), or one body."""
    suffixes = (".json", ".csv", ".gz")
    for path, data in iter_members(name, payload, suffixes):
        yield _Items(path, read_page(path, data).items)


def _current(items: _Items) -> list[int]:
    """Indices of the rows to keep: ``row_is_current`` true (or absent)."""
    if not items.has("row_is_current"):
        return list(range(len(items.items)))
    keep = []
    for i, v in enumerate(items.column("row_is_current", optional=True)):
        if v in (True, None) or str(v).strip().lower() == "true":
            keep.append(i)
        elif not (v is False or str(v).strip().lower() == "false"):
            raise items.error(i, "row_is_current", f"not a boolean: {v!r}")
    return keep


def _lmp(dataset: str, items: _Items, feed: Feed, published: datetime | None, state: dict) -> dict[str, list]:
    suffix = "da" if feed.name.startswith("da_") else "rt"
    starts = _Times(items).utc("datetime_beginning")
    ids = [str(int(float(v))) if v is not None else None for v in items.column("pnode_id")]
    names = items.texts("pnode_name")
    types = items.column("type", optional=True)
    total = items.numbers(f"total_lmp_{suffix}")
    congestion = items.numbers(f"congestion_price_{suffix}", optional=True)
    loss = items.numbers(f"marginal_loss_price_{suffix}", optional=True)
    energy = items.numbers(f"system_energy_price_{suffix}", optional=True)
    if not items.has(f"system_energy_price_{suffix}"):  # unverified feeds: derived
        energy = [round(t - c - m, 6) if None not in (t, c, m) else None  # type: ignore[operator]
                  for t, c, m in zip(total, congestion, loss, strict=True)]
    keep = _current(items)
    # across the pages of one document: one name is one node, one current row per node and interval
    owner: dict[str, tuple[str, tuple[str, int]]] = state.setdefault("owner", {})
    seen: dict[tuple[str, datetime], tuple[str, int]] = state.setdefault("seen", {})
    step = timedelta(minutes=feed.minutes)
    out: dict[str, list] = {k: [] for k in ("interval_start", "interval_end", "market", "location", "location_type",
                                            "location_id", "lmp", "energy", "congestion", "loss", "ghg")}
    for i in keep:
        name, pid = names[i], ids[i]
        if pid is None:
            raise items.error(i, "pnode_id", "empty")
        here = (items.path, i)
        first = owner.setdefault(name, (pid, here))
        if first[0] != pid:
            raise items.error(i, "pnode_name", f"{name!r} is pnode {pid} here and pnode {first[0]} in {first[1][0]} "
                                               f"item {first[1][1] + 1}: "
                                               "one name, two nodes")
        if (prior := seen.setdefault((pid, starts[i]), here)) != here:
            raise items.error(i, "pnode_id", f"pnode {pid} at {starts[i]:%Y-%m-%dT%H:%MZ} again (also {prior[0]} "
                                             f"item {prior[1] + 1}); "
                                             "only one current version may exist")
        out["interval_start"].append(starts[i])
        out["interval_end"].append(starts[i] + step)
        out["market"].append(LMP_MARKETS[dataset])
        out["location"].append(name)
        out["location_type"].append(types[i])
        out["location_id"].append(pid)
        out["lmp"].append(total[i])
        out["energy"].append(energy[i])
        out["congestion"].append(congestion[i])
        out["loss"].append(loss[i])
        out["ghg"].append(None)  # PJM has no greenhouse-gas component
    dropped = len(items.items) - len(keep)
    if dropped:
        log.info("%s: %d superseded row version(s) (row_is_current false) dropped", items.path, dropped)
    return out


def _reserves(dataset: str, items: _Items, feed: Feed, published: datetime | None, state: dict) -> dict[str, list]:
    starts = _Times(items).utc("datetime_beginning")
    locales, services = items.texts("locale"), items.texts("service")
    mcp, total, req = items.numbers("mcp"), items.numbers("total_mw", optional=True), items.numbers(
        "as_req_mw", optional=True)
    ccp, pcp = items.numbers("reg_ccp", optional=True), items.numbers("reg_pcp", optional=True)
    market = "DAM" if dataset == "as_dam" else "RT"
    out: dict[str, list] = {k: [] for k in ("interval_start", "interval_end", "market", "region", "product",
                                            "clearing_price", "clearing_quantity", "requirement")}

    def add(i: int, product: str, price: float | None, quantity: float | None, requirement: float | None) -> None:
        start = starts[i]
        minutes = 60 if market == "DAM" or start.astimezone(EPT).date() < RT_RESERVES_5MIN_FROM else 5
        out["interval_start"].append(start)
        out["interval_end"].append(start + timedelta(minutes=minutes))
        out["market"].append(market)
        out["region"].append(LOCALES.get(locales[i], locales[i]))
        out["product"].append(product)
        out["clearing_price"].append(price)
        out["clearing_quantity"].append(quantity)
        out["requirement"].append(requirement)

    for i in range(len(items.items)):
        product = SERVICES.get(services[i], services[i])
        add(i, product, mcp[i], total[i], req[i])
        if product == "REG":
            for code, values in (("REG-CCP", ccp), ("REG-PCP", pcp)):
                if values[i] is not None:
                    add(i, code, values[i], None, None)
    return out


def _actual(starts: list[datetime], minutes: int, areas: list[str], mw: list[float | None]) -> dict[str, list]:
    step = timedelta(minutes=minutes)
    ends = [s + step for s in starts]
    return {"interval_start": starts, "interval_end": ends, "area": areas, "kind": ["actual"] * len(starts),
            "forecast_issued_at": ends, "model": [""] * len(starts), "load_mw": mw, "in_use": [None] * len(starts)}


def _metered_load(dataset: str, items: _Items, feed: Feed, published: datetime | None, state: dict) -> dict[str, list]:
    starts = _Times(items).utc("datetime_beginning")
    areas, mw = items.texts("load_area"), items.numbers("mw")
    totals: dict[datetime, float] = {}
    for i, (t, v) in enumerate(zip(starts, mw, strict=True)):
        if v is None:
            raise items.error(i, "mw", "empty")
        totals[t] = totals.get(t, 0.0) + v
    system = sorted(totals)
    return _actual([*starts, *system], 60, [*areas, *["SYSTEM"] * len(system)],
                   [*mw, *(round(totals[t], 3) for t in system)])


def _inst_load(dataset: str, items: _Items, feed: Feed, published: datetime | None, state: dict) -> dict[str, list]:
    starts = _Times(items).utc("datetime_beginning")
    areas = [SYSTEM_AREAS.get(a, a) for a in items.texts("area")]
    return _actual(starts, 5, areas, items.numbers("instantaneous_load"))


def _forecast(dataset: str, items: _Items, feed: Feed, published: datetime | None, state: dict) -> dict[str, list]:
    times = _Times(items)
    issued = times.utc("evaluated_at_datetime")
    starts, ends = times.utc("forecast_datetime_beginning"), times.utc("forecast_datetime_ending")
    areas = [SYSTEM_AREAS.get(a, a) for a in items.texts("forecast_area")]
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        if e <= s:
            raise items.error(i, "forecast_datetime_ending_utc", "not after the beginning")
    return {"interval_start": starts, "interval_end": ends, "area": areas, "kind": ["forecast"] * len(starts),
            "forecast_issued_at": issued, "model": [""] * len(starts),
            "load_mw": items.numbers("forecast_load_mw"), "in_use": [None] * len(starts), "published_at": issued}


def _fuel(dataset: str, items: _Items, feed: Feed, published: datetime | None, state: dict) -> dict[str, list]:
    starts = _Times(items).utc("datetime_beginning")
    return {"interval_start": starts, "interval_end": [s + timedelta(hours=1) for s in starts],
            "fuel": items.texts("fuel_type"), "generation_mw": items.numbers("mw")}


NORMALIZERS: dict[str, tuple[TableSchema, Callable[..., dict[str, list]]]] = {
    "da_hrl_lmps": (LMP, _lmp), "rt_fivemin_hrl_lmps": (LMP, _lmp), "rt_hrl_lmps": (LMP, _lmp),
    "rt_unverified_fivemin_lmps": (LMP, _lmp), "rt_unverified_hrl_lmps": (LMP, _lmp),
    "da_reserve_market_results": (ANCILLARY_SERVICES, _reserves),
    "reserve_market_results": (ANCILLARY_SERVICES, _reserves),
    "hrl_load_metered": (LOAD, _metered_load), "inst_load": (LOAD, _inst_load),
    "load_frcstd_hist": (LOAD, _forecast), "load_frcstd_7_day": (LOAD, _forecast),
    "gen_by_fuel": (FUEL_MIX, _fuel),
}


def source_name(name: str) -> str:
    """The document as the ``source`` column records it (its raw name): the feed name leads, so a
    row says whether it came from an unverified or a verified feed."""
    return leaf_name(name) if "!" not in name else name.split("!", 1)[0].rsplit("/", 1)[-1]


def normalize_payload(dataset: str, name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    feed = feed_of(name)
    schema, parse = NORMALIZERS[feed.name]
    columns: dict[str, list] = {}
    state: dict = {}
    for items in _pages(name, payload):
        if not items.items:
            continue
        part = parse(dataset, items, feed, published_at, state)
        for key, values in part.items():
            columns.setdefault(key, []).extend(values)
    n = len(columns.get("interval_start", []))
    columns.setdefault("published_at", [published_at] * n)
    table = pa.table({"iso": [ISO] * n, "source": [source_name(name)] * n, **columns}) if n else schema.empty()
    return conform(table, schema)


def is_unverified(name: str) -> bool:
    return feed_of(name).name in UNVERIFIED


def market_day(t: datetime) -> date:
    return t.astimezone(EPT).date()
