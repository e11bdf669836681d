"""PJM in the simulator: Data Miner 2 (``api.pjm.com/api/v1/<feed>``), served at ``/pjm/api``.

As the real samples show it (``tests/samples/pjm``):
* the JSON envelope ``{"links":[self, next?, metadata],"items":[…],"searchSpecification":{…},
  "totalRows":N}``, compact, prices with 6 decimals, the self link rebuilt as
  ``RowCount=…&Order=Asc&StartRow=…&IsActiveMetadata=True&Fields=…&<filters>``; item order is
  not time order (an interval's rows stay together); ``fields=`` picks and orders the fields;
  ``download=true`` answers a bare array, gzip, with ``X-TotalRows``;
* paging: ``startRow`` (1-based) and ``rowCount`` (at most 50,000), both required as soon as any other
  parameter is given; ``links[rel=next]`` while rows remain; parameter names are case-insensitive;
* filters: a time range ``A toB`` on ``<time field>_ept`` or ``_utc`` (``MM/DD/YYYY HH:MM`` or ISO
  ``YYYY-MM-DDTHH:MM``), end *inclusive*; a single time means "from then on"; other fields by value,
  ``;`` for several, ``*`` as wildcard; the time filter is mandatory on the LMP feeds;
* the key: ``Ocp-Apim-Subscription-Key`` header (or ``subscription-key=``), 401 with Azure API
  Management's body when missing or unknown; per-key rate limit (``PMP_SIM_PJM_REQUESTS`` per
  ``PMP_SIM_PJM_WINDOW`` seconds, default 600 per 60: a member's limit) answered with 429 and
  ``Retry-After``;
* the archive: LMP rows older than 186 days (5-minute) / 731 days (hourly) cannot be filtered by
  node or any field, and a query may not span the cut-over, a year boundary of archived rows, or
  366 days (400 with a message);
* publication against the simulator clock: day-ahead LMPs and reserves for D on D-1 at 13:30/13:45;
  unverified 5-minute LMPs a minute after each interval, unverified hourly 5 minutes after each hour
  (both kept 7 days); verified LMPs for D on D+2 at 12:00 (values corrected here and there against
  the unverified ones); real-time reserves on D+1 11:30; metered load on D+1 08:00;
  instantaneous load a minute after each reading; generation by fuel 10 minutes after each hour;
  four 7-day load-forecast vintages a day (about 05:15, 11:15, 17:15 and 23:15), the 7-day feed
  holding the latest, the history feed each day's on the next day at 00:30;
* superseded LMP versions (``row_is_current`` false, ``version_nbr`` 1) for a few rows, a pricing
  node retired on 2024-06-01 and one new since 2021-01-01.
Data are deterministic for any day since 2019-01-01, DST days exact. ``PMP_SIM_PJM_BUSES`` (default 4)
adds generator buses to the zones and hubs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pmp.simulator.server import Request, Response, plugin
from pmp.validate import env_number, env_text

EPT = ZoneInfo("America/New_York")
FIRST_DAY = date(2019, 1, 1)
KEYS = {"sim-pjm-key"}
MAX_ROWS = 50_000
PAGING = {"startrow", "rowcount", "order", "sort", "fields", "isactivemetadata", "download", "format",
          "subscription-key"}


@dataclass(frozen=True)
class Pnode:
    id: int
    name: str
    type: str
    zone: str | None
    first: date | None = None
    retired: date | None = None  # first day without it


ZONES = [(1, "PJM-RTO"), (3, "MID-ATL/APS"), (51291, "AECO"), (51292, "BGE"), (51293, "DPL"), (51295, "JCPL"),
         (51296, "METED"), (51297, "PECO"), (51298, "PEPCO"), (51299, "PPL"), (51300, "PENELEC"), (51301, "PSEG"),
         (7633629, "RECO"), (8394954, "APS"), (8445784, "AEP"), (33092371, "COMED"), (34508503, "DAY"),
         (34964545, "DOM"), (37737283, "DUQ"), (116013753, "ATSI"), (124076095, "DEOK"), (970242670, "EKPC"),
         (1709725933, "OVEC")]
HUBS = [(51217, "EASTERN HUB"), (51287, "WEST INT HUB"), (51288, "WESTERN HUB"), (4669664, "NEW JERSEY HUB"),
        (33092311, "CHICAGO GEN HUB"), (33092313, "CHICAGO HUB"), (33092315, "N ILLINOIS HUB"),
        (34497125, "AEP GEN HUB"), (34497127, "AEP-DAYTON HUB"), (34497151, "OHIO HUB"), (35010337, "DOMINION HUB"),
        (116013751, "ATSI GEN HUB")]
RETIRED = Pnode(2156113001, "SIMRETIR 13 KV  UNIT1", "GEN", "PECO", retired=date(2024, 6, 1))
NEW = Pnode(2156113002, "SIMNEWBS 34 KV  UNIT1", "GEN", "DOM", first=date(2021, 1, 1))
LOAD_AREAS = {"AE": 1100, "AEP": 14000, "APS": 5200, "ATSI": 7400, "BC": 3400, "CE": 11500, "DAY": 1900,
              "DEOK": 3000, "DOM": 11000, "DPL": 2100, "DUQ": 1500, "EKPC": 1600, "JC": 2700, "ME": 1700,
              "PE": 4200, "PEP": 3300, "PL": 4400, "PN": 1800, "PS": 5000, "RECO": 170}
INST_AREAS = {"PJM RTO": 0.0, "MIDATL": 0.37, "WEST": 0.47, "SOUTH": 0.16}
FORECAST_AREAS = {"RTO_COMBINED": 1.0, "MID_ATLANTIC_REGION": 0.37, "WESTERN_REGION": 0.47, "SOUTHERN_REGION": 0.16}
FUELS = {"Coal": 16000, "Gas": 42000, "Hydro": 1500, "Multiple Fuels": 900, "Nuclear": 33000, "Oil": 300,
         "Other Renewables": 650, "Solar": 3500, "Storage": 50, "Wind": 3200}
LOCALES = {"DA": ["PJM RTO Reserve Zone", "Mid-Atlantic/Dominion Reserve Subzone"], "RT": ["PJM_RTO", "MAD"]}
RESERVES = ["SR", "PR", "30MIN"]
RT_RESERVES_5MIN_FROM = date(2022, 9, 1)


def pnodes() -> list[Pnode]:
    n = env_number("PMP_SIM_PJM_BUSES", 4)
    zones = [Pnode(i, name, "ZONE", None) for i, name in ZONES]
    hubs = [Pnode(i, name, "HUB", None) for i, name in HUBS]
    buses = [Pnode(2156200000 + k, f"SIMBUS{k:02d} 138 KV  T{k}", "GEN", ZONES[2 + k % 20][1]) for k in range(1, n + 1)]
    return [*zones, *hubs, *buses, RETIRED, NEW]


def active(day: date) -> list[Pnode]:
    return [p for p in pnodes() if (p.first is None or p.first <= day) and (p.retired is None or day < p.retired)]


# ------------------------------------------------------------------ helpers
def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_seed(*parts))


def local_day(t: datetime) -> date:
    return t.astimezone(EPT).date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=EPT).astimezone(UTC)


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EPT).astimezone(UTC)


def _shape(t: datetime) -> float:
    lt = t.astimezone(EPT)
    return 1 + 0.22 * math.sin((lt.hour + lt.minute / 60 - 9) / 24 * 2 * math.pi)


def _utc(t: datetime) -> str:
    return json.dumps(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))


def _ept(t: datetime) -> str:
    return json.dumps(t.astimezone(EPT).strftime("%Y-%m-%dT%H:%M:%S"))


def _n6(v: float) -> str:
    return f"{v:.6f}"


def _s(v: object) -> str:
    return json.dumps(v)


Row = dict[str, str]  # field -> JSON text of its value


# ------------------------------------------------------------------ feeds
@dataclass(frozen=True)
class SimFeed:
    name: str
    fields: tuple[str, ...]
    time_fields: tuple[str, ...]
    groups: Callable[[datetime, datetime], list[datetime]]  # group instants (interval starts or vintages) in range
    rows: Callable[[datetime], list[Row]]
    posted: Callable[[datetime], datetime]
    archive_days: int | None = None
    retention_days: int | None = None
    first_day: date = FIRST_DAY
    time_required: bool = False
    current_only: bool = False


def _steps(minutes: Callable[[datetime], int]) -> Callable[[datetime, datetime], list[datetime]]:
    """Interval starts in [lo, hi]: every 5 minutes, kept where the feed's resolution puts one."""

    def groups(lo: datetime, hi: datetime) -> list[datetime]:
        t = datetime.fromtimestamp(lo.timestamp() // 300 * 300, UTC)
        out = []
        while t <= hi:
            if t.minute % minutes(t) == 0:
                out.append(t)
            t += timedelta(minutes=5)
        return out

    return groups


def _lmp_values(kind: str, t: datetime, p: Pnode, corrected: bool) -> tuple[float, float, float]:
    rng = _rng("pjm-energy", kind, t.timestamp())
    energy = round(28 * _shape(t) + rng.gauss(0, 6 if kind == "RT" else 3), 2)
    if rng.random() < 0.003:
        energy *= 8  # scarcity
    cong = 0.0 if p.id == 1 else round(_rng("cong", kind, t.timestamp(), p.id).gauss(0, 2.5), 6)
    loss = 0.0 if p.id == 1 else round(((_seed("loss", p.id) % 2000) - 1000) / 1000 * energy * 0.03, 6)
    if corrected:
        cong = round(cong + 0.5, 6)  # verification moved this interval's congestion
    return energy, cong, loss


def _lmp_rows(kind: str, verified: bool) -> Callable[[datetime], list[Row]]:
    suffix = "da" if kind == "DA" else "rt"

    def rows(t: datetime) -> list[Row]:
        out: list[Row] = []
        for p in active(local_day(t)):
            corrected = verified and kind == "RT" and _seed("verify", t.timestamp(), p.id) % 97 == 0
            energy, cong, loss = _lmp_values(kind, t, p, corrected)
            total = energy + cong + loss
            if not verified:
                out.append({"congestion_price_rt": _n6(cong), "datetime_beginning_ept": _ept(t),
                            "datetime_beginning_utc": _utc(t), "marginal_loss_price_rt": _n6(loss),
                            "occ_check": _s("N"), "pnode_id": str(p.id), "pnode_name": _s(p.name),
                            "ref_caseid_used_multi_interval": _s(None), "total_lmp_rt": _n6(total), "type": _s(p.type)})
                continue
            base = {"datetime_beginning_utc": _utc(t), "datetime_beginning_ept": _ept(t), "pnode_id": str(p.id),
                    "pnode_name": _s(p.name), "voltage": _s(None), "equipment": _s(None), "type": _s(p.type),
                    "zone": _s(p.zone)}
            if _seed("version", kind, t.timestamp(), p.id) % 53 == 0:  # a superseded first version
                out.append({**base, f"system_energy_price_{suffix}": _n6(energy),
                            f"total_lmp_{suffix}": _n6(total + 1.25), f"congestion_price_{suffix}": _n6(cong + 1.25),
                            f"marginal_loss_price_{suffix}": _n6(loss), "row_is_current": "false", "version_nbr": "1"})
                version = "2"
            else:
                version = "1"
            out.append({**base, f"system_energy_price_{suffix}": _n6(energy), f"total_lmp_{suffix}": _n6(total),
                        f"congestion_price_{suffix}": _n6(cong), f"marginal_loss_price_{suffix}": _n6(loss),
                        "row_is_current": "true", "version_nbr": version})
        return out

    return rows


LMP_FIELDS = ("datetime_beginning_utc", "datetime_beginning_ept", "pnode_id", "pnode_name", "voltage", "equipment",
              "type", "zone")


def _lmp_fields(suffix: str) -> tuple[str, ...]:
    return (*LMP_FIELDS, f"system_energy_price_{suffix}", f"total_lmp_{suffix}", f"congestion_price_{suffix}",
            f"marginal_loss_price_{suffix}", "row_is_current", "version_nbr")


UNVERIFIED_FIELDS = ("congestion_price_rt", "datetime_beginning_ept", "datetime_beginning_utc", "marginal_loss_price_rt",
                     "occ_check", "pnode_id", "pnode_name", "ref_caseid_used_multi_interval", "total_lmp_rt", "type")


def _reserve_rows(market: str) -> Callable[[datetime], list[Row]]:
    def rows(t: datetime) -> list[Row]:
        rng = _rng("pjm-as", market, t.timestamp())
        out: list[Row] = []
        for li, locale in enumerate(LOCALES[market]):
            for si, service in enumerate(RESERVES + (["REG"] if market == "RT" and li == 0 else [])):
                price = round(abs(rng.gauss(4 - si, 3)) * (1.2 if li else 1), 2)
                row = {"datetime_beginning_ept": _ept(t), "datetime_beginning_utc": _utc(t), "locale": _s(locale),
                       "service": _s(service), "mcp": f"{price:.2f}", "mcp_capped": f"{price:.2f}",
                       "as_req_mw": f"{1500 + 300 * si + 200 * li:.1f}", "total_mw": f"{1700 + 310 * si:.1f}",
                       "as_mw": f"{1200 + 100 * si:.1f}", "ss_mw": "0.0", "ircmwt2": "0.0", "dsr_as_mw": "12.0",
                       "nsr_mw": "0.0"}
                if market == "RT":
                    reg = service == "REG"
                    row |= {"reg_ccp": f"{price * 0.8:.2f}" if reg else "null",
                            "reg_pcp": f"{price * 0.2:.2f}" if reg else "null", "tier1_mw": "0.0",
                            "regd_mw": "250.0" if reg else "null"}
                out.append(row)
        return out

    return rows


DA_AS_FIELDS = ("datetime_beginning_ept", "datetime_beginning_utc", "locale", "service", "mcp", "mcp_capped",
                "as_req_mw", "total_mw", "as_mw", "ss_mw", "ircmwt2", "dsr_as_mw", "nsr_mw")
RT_AS_FIELDS = (*DA_AS_FIELDS[:6], "reg_ccp", "reg_pcp", *DA_AS_FIELDS[6:10], "tier1_mw", *DA_AS_FIELDS[10:], "regd_mw")


def _metered_rows(t: datetime) -> list[Row]:
    rng = _rng("pjm-metered", t.timestamp())
    return [{"datetime_beginning_utc": _utc(t), "datetime_beginning_ept": _ept(t), "nerc_region": _s("RFC"),
             "mkt_region": _s("MIDATL" if a in ("AE", "BC", "DPL", "JC", "ME", "PE", "PEP", "PL", "PN", "PS", "RECO")
                              else "WEST"), "zone": _s(a), "load_area": _s(a),
             "mw": f"{mw * _shape(t) * (1 + rng.gauss(0, 0.01)):.3f}",
             "is_verified": "true" if local_day(t) < date(2024, 11, 1) else "false"} for a, mw in LOAD_AREAS.items()]


def _inst_rows(t: datetime) -> list[Row]:
    rng = _rng("pjm-inst", t.timestamp())
    rto = sum(LOAD_AREAS.values()) * _shape(t) * (1 + rng.gauss(0, 0.005))
    return [{"datetime_beginning_utc": _utc(t), "datetime_beginning_ept": _ept(t), "area": _s(area),
             "instantaneous_load": f"{(rto if not share else rto * share):.3f}"} for area, share in INST_AREAS.items()]


def _fuel_rows(t: datetime) -> list[Row]:
    rng = _rng("pjm-fuel", t.timestamp())
    return [{"datetime_beginning_utc": _utc(t), "datetime_beginning_ept": _ept(t), "fuel_type": _s(fuel),
             "mw": f"{max(0.0, round(mw * _shape(t) * (1 + rng.gauss(0, 0.03)))):.1f}",
             "is_renewable": "true" if fuel in ("Hydro", "Solar", "Wind", "Other Renewables") else "false"}
            for fuel, mw in FUELS.items()]


# -- the 7-day load forecast: four vintages a day, each for the issue day's local midnight + 7 days
def vintages(day: date) -> list[datetime]:
    return [at_local(day, h, 15) + timedelta(seconds=_seed("vintage", day, h) % 240) for h in (5, 11, 17, 23)]


def _forecast_rows(issued: datetime) -> list[Row]:
    day = local_day(issued)
    out: list[Row] = []
    t, end = day_start(day), day_start(day + timedelta(days=7))
    rng = _rng("pjm-forecast", issued.timestamp())
    while t < end:
        base = sum(LOAD_AREAS.values()) * _shape(t) * (1 + rng.gauss(0, 0.01))
        for area, share in FORECAST_AREAS.items():
            out.append({"evaluated_at_datetime_utc": _utc(issued), "evaluated_at_datetime_ept": _ept(issued),
                        "forecast_datetime_beginning_utc": _utc(t), "forecast_datetime_beginning_ept": _ept(t),
                        "forecast_datetime_ending_utc": _utc(t + timedelta(hours=1)),
                        "forecast_datetime_ending_ept": _ept(t + timedelta(hours=1)), "forecast_area": _s(area),
                        "forecast_load_mw": str(round(base * share))})
        t += timedelta(hours=1)
    return out


FORECAST_FIELDS = ("evaluated_at_datetime_utc", "evaluated_at_datetime_ept", "forecast_datetime_beginning_utc",
                   "forecast_datetime_beginning_ept", "forecast_datetime_ending_utc", "forecast_datetime_ending_ept",
                   "forecast_area", "forecast_load_mw")


def _vintage_groups(lo: datetime, hi: datetime) -> list[datetime]:
    d, out = local_day(lo), []
    while d <= local_day(hi):
        out += [v for v in vintages(d) if lo <= v <= hi]
        d += timedelta(days=1)
    return out


def _day_posted(days: int, hour: int, minute: int = 0) -> Callable[[datetime], datetime]:
    return lambda t: at_local(local_day(t) + timedelta(days=days), hour, minute)


def _every(minutes: int) -> Callable[[datetime], int]:
    return lambda t: minutes


def _reserve_minutes(t: datetime) -> int:
    return 5 if local_day(t) >= RT_RESERVES_5MIN_FROM else 60


FEEDS: dict[str, SimFeed] = {f.name: f for f in (
    SimFeed("da_hrl_lmps", _lmp_fields("da"), ("datetime_beginning",), _steps(_every(60)), _lmp_rows("DA", True),
            _day_posted(-1, 13, 30), archive_days=731, time_required=True),
    SimFeed("rt_hrl_lmps", _lmp_fields("rt"), ("datetime_beginning",), _steps(_every(60)), _lmp_rows("RT", True),
            _day_posted(2, 12), archive_days=731, time_required=True),
    SimFeed("rt_fivemin_hrl_lmps", _lmp_fields("rt"), ("datetime_beginning",), _steps(_every(5)),
            _lmp_rows("RT", True), _day_posted(2, 12), archive_days=186, time_required=True),
    SimFeed("rt_unverified_fivemin_lmps", UNVERIFIED_FIELDS, ("datetime_beginning",), _steps(_every(5)),
            _lmp_rows("RT", False), lambda t: t + timedelta(minutes=6), retention_days=7),
    SimFeed("rt_unverified_hrl_lmps", UNVERIFIED_FIELDS[:4] + UNVERIFIED_FIELDS[5:7] + UNVERIFIED_FIELDS[8:],
            ("datetime_beginning",), _steps(_every(60)), _lmp_rows("RT", False),
            lambda t: t + timedelta(minutes=65), retention_days=7),
    SimFeed("da_reserve_market_results", DA_AS_FIELDS, ("datetime_beginning",), _steps(_every(60)),
            _reserve_rows("DA"), _day_posted(-1, 13, 45), first_day=date(2022, 10, 1)),
    SimFeed("reserve_market_results", RT_AS_FIELDS, ("datetime_beginning",), _steps(_reserve_minutes),
            _reserve_rows("RT"), _day_posted(1, 11, 30)),
    SimFeed("hrl_load_metered", ("datetime_beginning_utc", "datetime_beginning_ept", "nerc_region", "mkt_region", "zone",
                                 "load_area", "mw", "is_verified"), ("datetime_beginning",), _steps(_every(60)),
            _metered_rows, _day_posted(1, 8)),
    SimFeed("inst_load", ("datetime_beginning_utc", "datetime_beginning_ept", "area", "instantaneous_load"),
            ("datetime_beginning",), _steps(_every(5)), _inst_rows, lambda t: t + timedelta(minutes=1)),
    SimFeed("gen_by_fuel", ("datetime_beginning_utc", "datetime_beginning_ept", "fuel_type", "mw", "is_renewable"),
            ("datetime_beginning",), _steps(_every(60)), _fuel_rows, lambda t: t + timedelta(minutes=70)),
    SimFeed("load_frcstd_hist", FORECAST_FIELDS, ("evaluated_at_datetime",), _vintage_groups, _forecast_rows,
            _day_posted(1, 0, 30)),
    SimFeed("load_frcstd_7_day", FORECAST_FIELDS, ("evaluated_at_datetime",), _vintage_groups, _forecast_rows,
            lambda t: t, current_only=True),
)}


# ------------------------------------------------------------------ queries
class QueryError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


def _parse_time(text: str) -> datetime:
    text = text.strip()
    for fmt in ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y"):
        try:
            return datetime.strptime(text.split(".")[0] if "T" in text else text, fmt)
        except ValueError:
            continue
    raise QueryError(f"Invalid datetime value '{text}'")


def _to_utc(naive: datetime, ept: bool, *, late: bool) -> datetime:
    if not ept:
        return naive.replace(tzinfo=UTC)
    return naive.replace(tzinfo=EPT, fold=1 if late else 0).astimezone(UTC)


def _match(value_json: str, wanted: str) -> bool:
    value = json.loads(value_json)
    text = "" if value is None else str(value).lower()
    for w in wanted.lower().split(";"):
        if "*" in w:
            parts = w.split("*")
            if text.startswith(parts[0]) and text.endswith(parts[-1]) and all(p in text for p in parts):
                return True
        elif text == w:
            return True
    return False


@dataclass
class Query:
    feed: SimFeed
    fields: list[str]
    filters: list[tuple[str, str]]  # as given (for the self link)
    start_row: int
    row_count: int
    download: bool


def parse_query(feed: SimFeed, query: dict[str, str]) -> Query:
    q = {k.lower(): (k, v) for k, v in query.items()}
    filters = [(k, v) for k, v in query.items() if k.lower() not in PAGING]
    download = q.get("download", ("", "false"))[1].lower() == "true"
    if (filters or "fields" in q) and not download and ("startrow" not in q or "rowcount" not in q):
        raise QueryError("startRow and rowCount are required when other parameters are given")
    try:
        start_row = int(q.get("startrow", ("", "1"))[1])
        row_count = int(q.get("rowcount", ("", str(MAX_ROWS)))[1])
    except ValueError:
        raise QueryError("startRow and rowCount must be integers") from None
    if start_row < 1 or not 1 <= row_count <= MAX_ROWS:
        raise QueryError(f"startRow must be >= 1 and rowCount between 1 and {MAX_ROWS}")
    fields = [f.strip() for f in q["fields"][1].split(",")] if "fields" in q else list(feed.fields)
    unknown = [f for f in fields if f not in feed.fields]
    if unknown:
        raise QueryError(f"Invalid field(s): {', '.join(unknown)}")
    return Query(feed, fields, filters, start_row, row_count, download)


def select(query: Query, now: datetime) -> list[Row]:
    """Every row the query matches at ``now``, in the order Data Miner pages them."""
    feed = query.feed
    time_names = {f"{tf}_{z}": (tf, z == "ept") for tf in feed.time_fields for z in ("utc", "ept")}
    window = [(k, v) for k, v in query.filters if k.lower() in time_names]
    others = [(k, v) for k, v in query.filters if k.lower() not in time_names]
    for k, _ in others:
        if k.lower() not in feed.fields:
            raise QueryError(f"Invalid filter: {k}")
    if feed.time_required and not window:
        raise QueryError(f"A {feed.time_fields[0]} filter is required for {feed.name}")
    lo_utc, hi_utc = day_start(feed.first_day), now
    lo_label = hi_label = None
    ept = False
    if window:
        name, value = window[-1]
        ept = time_names[name.lower()][1]
        a, sep, b = value.partition("to")
        lo_label = _parse_time(a)
        hi_label = _parse_time(b) if sep else None
        lo_utc = max(lo_utc, _to_utc(lo_label, ept, late=False) - timedelta(hours=1))
        if hi_label is not None:
            if (hi_label - lo_label).days >= 366:
                raise QueryError("The date range may not exceed 365 days")
            hi_utc = min(hi_utc, _to_utc(hi_label, ept, late=True) + timedelta(hours=1))
    if feed.archive_days is not None:
        cutover = local_day(now) - timedelta(days=feed.archive_days)
        first_day = lo_label.date() if lo_label else feed.first_day
        last_day = hi_label.date() if hi_label else local_day(now)
        if first_day < cutover <= last_day:
            raise QueryError(f"The query may not span the archive cut-over ({cutover:%m/%d/%Y}); split it")
        if last_day < cutover and first_day.year != last_day.year:
            raise QueryError("Archived data must be queried within one calendar year")
        if last_day < cutover and others:
            raise QueryError("Archived data cannot be filtered; only the datetime filter is allowed")
    if feed.retention_days is not None:
        lo_utc = max(lo_utc, now - timedelta(days=feed.retention_days))
    groups = [g for g in feed.groups(lo_utc, hi_utc) if feed.posted(g) <= now and local_day(g) >= feed.first_day]
    if window:
        groups = [g for g in groups if lo_label <= (g.astimezone(EPT) if ept else g).replace(tzinfo=None)
                  and (hi_label is None or (g.astimezone(EPT) if ept else g).replace(tzinfo=None) <= hi_label)]
    if feed.current_only:
        latest = _vintage_groups(now - timedelta(days=1), now)
        groups = latest[-1:] if not window else [g for g in groups if g in latest[-1:]]
    groups.sort(key=lambda g: _seed("order", feed.name, g.timestamp()))  # not time order, as served
    rows = [r for g in groups for r in _cached_rows(feed.name, g)]
    for k, v in others:
        rows = [r for r in rows if _match(r[k.lower()], v)]
    return rows


@lru_cache(maxsize=4096)
def _cached_rows(feed: str, group: datetime) -> tuple[Row, ...]:
    return tuple(FEEDS[feed].rows(group))


def _item(row: Row, fields: list[str]) -> str:
    return "{" + ",".join(f'"{f}":{row[f]}' for f in fields) + "}"


def render(query: Query, rows: list[Row], base: str) -> bytes:
    if query.download:
        return ("[" + ",".join(_item(r, query.fields) for r in rows) + "]").encode()
    page = rows[query.start_row - 1: query.start_row - 1 + query.row_count]

    def link(start: int) -> str:
        qs = (f"RowCount={query.row_count}&Order=Asc&StartRow={start}&IsActiveMetadata=True"
              f"&Fields={quote(','.join(query.fields), safe='')}")
        qs += "".join(f"&{k}={quote(v, safe='')}" for k, v in query.filters)
        return f"{base}/{query.feed.name}?{qs}"

    links = [{"rel": "self", "href": link(query.start_row)}]
    if query.start_row - 1 + query.row_count < len(rows):
        links.append({"rel": "next", "href": link(query.start_row + query.row_count)})
    links.append({"rel": "metadata", "href": f"{base}/{query.feed.name}/metadata"})
    spec = {"rowCount": query.row_count, "order": "Asc", "startRow": query.start_row, "isActiveMetadata": True,
            "fields": query.fields, "filters": [{k: v} for k, v in query.filters]}
    sep = (",", ":")
    return ('{"links":' + json.dumps(links, separators=sep) + ',"items":[' + ",".join(_item(r, query.fields) for r in page)
            + '],"searchSpecification":' + json.dumps(spec, separators=sep) + f',"totalRows":{len(rows)}}}').encode()


# ------------------------------------------------------------------ HTTP
_windows: dict[str, list[float]] = {}
_windows_lock = threading.Lock()


def _apim(status: int, message: str, **headers: str) -> Response:
    return Response(status, json.dumps({"statusCode": status, "message": message}).encode(), "application/json",
                    dict(headers))


def _rate_limited(key: str) -> int | None:
    """Seconds until the key's window has room again, or None when the request may pass."""
    limit = env_number("PMP_SIM_PJM_REQUESTS", 600)
    window = env_number("PMP_SIM_PJM_WINDOW", 60, float)
    now = time.monotonic()
    with _windows_lock:
        sent = [t for t in _windows.get(key, []) if now - t < window]
        if len(sent) >= limit:
            _windows[key] = sent
            return max(1, math.ceil(window - (now - sent[0])))
        sent.append(now)
        _windows[key] = sent
    return None


def known_keys() -> set[str]:
    return KEYS | {k for k in env_text("PMP_SIM_PJM_KEYS", "").split(",") if k}


@plugin("/pjm/api")
def dataminer(req: Request) -> Response:
    headers = {k.lower(): v for k, v in req.headers.items()}
    key = headers.get("ocp-apim-subscription-key") or next(
        (v for k, v in req.query.items() if k.lower() == "subscription-key"), None)
    if not key:
        return _apim(401, "Access denied due to missing subscription key. Make sure to include subscription key when "
                          "making requests to an API.")
    if key not in known_keys():
        return _apim(401, "Access denied due to invalid subscription key. Make sure to provide a valid key for an "
                          "active subscription.")
    wait = _rate_limited(key)
    if wait is None and req.sim.fire("rate_limit"):
        wait = 1
    if wait is not None:
        return _apim(429, f"Rate limit is exceeded. Try again in {wait} seconds.", **{"Retry-After": str(wait)})
    parts = req.path.strip("/").split("/")
    if len(parts) < 3 or parts[:2] != ["api", "v1"] or parts[2] not in FEEDS:
        return _apim(404, "Resource not found")
    feed = FEEDS[parts[2]]
    base = f"http://{headers.get('host', '127.0.0.1')}/pjm/api/api/v1"
    if parts[3:] == ["metadata"]:
        return Response.json({"name": feed.name, "fields": [{"name": f} for f in feed.fields],
                              "links": [{"rel": "self", "href": f"{base}/{feed.name}/metadata"}]})
    if len(parts) != 3:
        return _apim(404, "Resource not found")
    try:
        query = parse_query(feed, req.query)
        rows = select(query, req.sim.now())
    except QueryError as exc:
        return Response.json({"errors": [{"message": str(exc)}]}, 400)
    body = render(query, rows, base)
    extra = {"X-TotalRows": str(len(rows))} if query.download else {}
    if query.download or "gzip" in headers.get("accept-encoding", ""):
        # download=true bodies are gzip whatever the client asked (electricitymaps' sample)
        return Response(200, gzip.compress(body, mtime=0), "application/json; charset=utf-8",
                        {"Content-Encoding": "gzip", **extra})
    return Response(200, body, "application/json; charset=utf-8", extra)
