"""SPP in the simulator: the Integrated Marketplace portal (``portal.spp.org``), served at ``/spp/portal``.

* ``/file-browser-api/download/{folder}?path={path}`` - the file browser, in SPP's layout:

  ========================================  =====================================================
  ``da-lmp-by-settlement-location``          ``/YYYY/MM/By_Day/DA-LMP-SL-YYYYMMDD0100.csv``
  ``rtbm-lmp-by-location``                   ``/YYYY/MM/By_Interval/DD/RTBM-LMP-SL-YYYYMMDDHHMM[d].csv``,
                                             ``/YYYY/MM/By_Day/RTBM-LMP-DAILY-SL-YYYYMMDD.csv``,
                                             ``/RTBM-LMP-SL-latestInterval.csv``
  ``da-mcp``                                 ``/YYYY/MM/DA-MCP-YYYYMMDD0100.csv``
  ``rtbm-mcp``                               ``/YYYY/MM/By_Interval/DD/RTBM-MCP-YYYYMMDDHHMM[d].csv``,
                                             ``/YYYY/MM/By_Day/RTBM-MCP-DAILY-YYYYMMDD.csv``,
                                             ``/RTBM-MCP-latestInterval.csv``
  ``mtlf-vs-actual``                         ``/YYYY/MM/DD/OP-MTLF-YYYYMMDDHH00[d].csv``
  ``generation-mix-historical``              ``/GenMix_YYYY.csv`` (closed years), ``/SPP/GenMix365_SPP.csv``
  ========================================  =====================================================

  Interval folders come from the interval start and names from the interval end, both local Central
  time; the fall-back hour's second pass carries ``d`` (:mod:`pmp.isos.spp.files` is the one
  definition of the layout, shared with the hook, so the two cannot drift apart; the tests check
  names against hand-written ones on both 2024 DST days). Rows carry ``Interval`` (local, interval
  ending) and ``GMTIntervalEnd``. Unknown files answer 404 with an empty body, as SPP does.
* ``/chart-api/gen-mix/asChart`` - the rolling two hours of generation mix (Chart.js JSON).

Shapes follow the real samples: the 8-column LMP header (9 with ``BAA`` from 2026-02-01, SWPW
locations and reserve zone ``21`` with aggregate rows ``SPP``/``SWPW`` then), the RTBM MCP header with
its leading-space ``" RegDNMile"``, 4-decimal prices with ``LMP = MLC + MCC + MEC`` exactly, LF line
endings, DA HE24 written as the next day's ``00:00:00``; daily roll-ups use the daily files' own
header spellings (``GMT Interval``, ``Settlement Location Name``, ``PNODE Name``, stray spaces).
Ramp capability and uncertainty prices exist from 2022-03-01.

Publication against the simulator clock: day-ahead files for D on D-1 about 16:05; an RTBM LMP interval
file 1-2.5 minutes after its interval ends, an MCP file about 4.5 minutes *before* (SPP posts the
binding interval's prices early); the ``By_Day`` roll-ups about half an hour after the day; each hourly
MTLF issue 2-4 minutes after its hour; the rolling generation mix 2 minutes after each interval.

Faults: the common ``server_error``, ``rate_limit`` (429 + ``Retry-After``), ``slow``; ``spp_bad_row``
(consumed per day-ahead file: ``#VALUE!`` in line 4's ``LMP`` or ``Spin``); and
``spp_missing_intervals`` (while non-zero, about one interval file in 30 of each 5-minute family is
missing: half answer 404, half 200 with an empty body - :func:`missing_intervals` lists them) and
``spp_no_daily_file`` (while non-zero, every ``By_Day`` roll-up answers 404). Neither is consumed by a
request: set them to 0 and the files "appear".

Data are deterministic for any date since 2019-01-01. ``PMP_SIM_SPP_LOCATIONS`` (default 8) sets how
many settlement locations the LMP files list.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache

from pmp.isos.spp.datasets import DA_LMP, DA_MCP, MTLF, RAMP_FROM, RTBM_LMP, RTBM_MCP
from pmp.isos.spp.files import (
    CENTRAL,
    Family,
    da_path,
    hours,
    interval_ends,
    local,
    name_instant,
    vintage_path,
)
from pmp.simulator.server import Request, Response, plugin, register_faults
from pmp.validate import env_number

FIRST_DAY = date(2019, 1, 1)
BAA_FROM = date(2026, 2, 1)  # Public Data release 1.35 / RTO West: BAA column, SWPW rows
FIVE = timedelta(minutes=5)
FMT = "%m/%d/%Y %H:%M:%S"

register_faults("spp_missing_intervals", "spp_no_daily_file", "spp_bad_row")

LOCATIONS = [("AEC", "SOUC"), ("AECC_CSWS", "CSWS_AECC_LA"), ("SPPNORTH_HUB", "SPPNORTH_H"),
             ("SPPSOUTH_HUB", "SPPSOUTH_H"), ("AECI", "AECI"), ("ERCOTE", "ERCOTE"), ("EDE_EDE", "EDE_LA"),
             ("GRDA.COFF10", "GRDACOFFEYGRUNCOFF10_RA"), ("KCPL_KCPL", "KCPL_LA"), ("OKGE_OKGE", "OKGE_LA"),
             ("SPS_SPS", "SPS_LA"), ("WR_WR", "WR_LA")]
SWPW_LOCATIONS = [("AESO", "AESO"), ("AVA", "AVA")]
ZONES = ["1", "2", "3", "4", "5"]
FUELS = ["Coal", "Diesel Fuel Oil", "Hydro", "Natural Gas", "Nuclear", "Solar", "Waste Disposal Services", "Wind",
         "Waste Heat", "Other"]
FUEL_MW = {"Coal": 14000, "Diesel Fuel Oil": 60, "Hydro": 900, "Natural Gas": 9000, "Nuclear": 1900, "Solar": 700,
           "Waste Disposal Services": 10, "Wind": 12000, "Waste Heat": 30, "Other": 20}
PIE_COLORS = ["#99CAEB", "#9F3A52", "#004988", "#E8CF79", "#ADB4BC", "#FC7C55", "#b08462", "#008F81", "#b26a34",
              "#D8A178"]


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_seed(*parts))


def _p4(n: int) -> str:
    """A price in ten-thousandths as SPP writes it (``-247.3823``, ``0.0000``)."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    return f"{sign}{n // 10000}.{n % 10000:04d}"


def _shape(t: datetime) -> float:
    lt = local(t)
    return 1 + 0.3 * math.sin((lt.hour + lt.minute / 60 - 10) / 24 * 2 * math.pi)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    nxt = day + timedelta(days=1)
    return (datetime(day.year, day.month, day.day, tzinfo=CENTRAL).astimezone(UTC),
            datetime(nxt.year, nxt.month, nxt.day, tzinfo=CENTRAL).astimezone(UTC))


def baa_era(day: date) -> bool:
    return day >= BAA_FROM


def locations(day: date) -> list[tuple[str, str, str]]:
    """The settlement locations of a file, in SPP's order (the real files list an interval's rows
    sorted by location name)."""
    n = env_number("PMP_SIM_SPP_LOCATIONS", 8)
    out = [(name, pnode, "SPP") for name, pnode in LOCATIONS[:n]]
    return sorted(out + ([(name, pnode, "SWPW") for name, pnode in SWPW_LOCATIONS] if baa_era(day) else []))


def _labels(end: datetime) -> list[str]:
    return [local(end).strftime(FMT), end.strftime(FMT)]


# ------------------------------------------------------------------ LMP
def _lmp_lines(end: datetime, market: str, day: date) -> list[list[str]]:
    """One interval's rows: MEC shared by every location, MCC/MLC per location, LMP their exact sum."""
    rng = _rng("lmp", market, end.timestamp())
    mec = int(250_000 * _shape(end) + rng.gauss(0, 30_000 if market == "RT" else 12_000))
    if rng.random() < 0.01:
        mec *= 8  # scarcity
    event = rng.random() < 0.05  # a binding constraint (the real 08:40 sample: MCC about -247)
    out = []
    for name, pnode, baa in locations(day):
        mlc = int(mec * ((_seed("mlc", name) % 600) - 300) / 10_000 + rng.gauss(0, 200))
        mcc = int(rng.gauss(-2_400_000, 50_000)) if event and baa == "SPP" else int(rng.gauss(0, 3_000))
        cells = [*_labels(end), *([baa] if baa_era(day) else []), name, pnode, _p4(mec + mlc + mcc), _p4(mlc),
                 _p4(mcc), _p4(mec)]
        out.append(cells)
    return out


def lmp_header(day: date, daily: bool = False) -> str:
    if daily:  # the By_Day roll-up spells its columns differently, with stray spaces
        cols = ["Interval", " GMT Interval", *([" BAA"] if baa_era(day) else []), " Settlement Location Name",
                " PNODE Name", " LMP", " MLC", " MCC", " MEC"]
    else:
        cols = ["Interval", "GMTIntervalEnd", *(["BAA"] if baa_era(day) else []), "Settlement Location", "Pnode",
                "LMP", "MLC", "MCC", "MEC"]
    return ",".join(cols)


# ------------------------------------------------------------------ MCP
def _mcp_products(day: date, market: str) -> list[str]:
    ramp = day >= RAMP_FROM
    if market == "DA":
        return ["RegUP", "RegDN", *(["RampUP", "RampDN"] if ramp else []), "Spin", "Supp", *(["UncUP"] if ramp else [])]
    return ["RegUPService", "RegDNService", "RegUpMile", " RegDNMile", *(["RampUP", "RampDN"] if ramp else []),
            "Spin", "Supp", *(["UncUP"] if ramp else [])]


def _mcp_lines(end: datetime, market: str, day: date) -> list[list[str]]:
    rng = _rng("mcp", market, end.timestamp())
    products = _mcp_products(day, market)
    base = {p.strip(): int(abs(rng.gauss(60_000, 40_000))) for p in products}
    # zones sorted as text, then the aggregate rows, as the real file lists them (1, 2, 21, 3, ..., SPP, SWPW)
    zones = sorted(ZONES + (["21"] if baa_era(day) else []))
    aggregates = ["SPP", "SWPW"] if baa_era(day) else []
    out = []
    for zone in zones + aggregates:
        west = zone in ("21", "SWPW")
        prices = [_p4(base[p.strip()] * (2 if west else 1) + (_seed(zone, p, end.timestamp()) % 3 if west else 0))
                  for p in products]
        baa = ["SWPW" if west else "SPP"] if baa_era(day) else []
        out.append([*_labels(end), zone, *prices, *baa])
    return out


def mcp_header(day: date, market: str, daily: bool = False) -> str:
    cols = ["Interval", "GMTIntervalEnd", "Reserve Zone", *_mcp_products(day, market), *(["BAA"] if baa_era(day) else [])]
    return (", " if daily else ",").join(c.strip() if daily else c for c in cols)


# ------------------------------------------------------------------ families
RT = {RTBM_LMP.fs: (RTBM_LMP, _lmp_lines, lmp_header), RTBM_MCP.fs: (RTBM_MCP, _mcp_lines, None)}


def _rows_text(header: str, rows: list[list[str]]) -> bytes:
    return (header + "\n" + "".join(",".join(r) + "\n" for r in rows)).encode()


def _header(fs: str, day: date, daily: bool) -> str:
    return lmp_header(day, daily) if fs == RTBM_LMP.fs else mcp_header(day, "RT", daily)


def interval_file(fs: str, end: datetime) -> bytes:
    family, lines, _ = RT[fs]
    day = local(end - FIVE).date()
    return _rows_text(_header(fs, day, False), lines(end, "RT", day))


def interval_posted(fs: str, end: datetime) -> datetime:
    if fs == RTBM_MCP.fs:  # MCPs of the binding interval are posted about 5 minutes before it ends
        return end - FIVE + timedelta(seconds=20 + _seed("mcp-post", end.timestamp()) % 30)
    return end + timedelta(seconds=60 + _seed("lmp-post", end.timestamp()) % 90)


def daily_posted(day: date) -> datetime:
    return day_bounds(day)[1] + timedelta(minutes=25, seconds=_seed("daily", day) % 600)


@lru_cache(maxsize=64)
def daily_file(fs: str, day: date) -> bytes:
    family, lines, _ = RT[fs]
    lo, hi = day_bounds(day)
    rows = [cells for end in interval_ends(lo, hi) for cells in lines(end, "RT", day)]
    return _rows_text(_header(fs, day, True), rows)


def missing_intervals(fs: str, day: date) -> dict[datetime, str]:
    """With fault ``spp_missing_intervals``: interval ends (UTC) of the day whose file is missing,
    -> ``"404"`` or ``"empty"`` (SPP serves a few interval files with no bytes)."""
    lo, hi = day_bounds(day)
    out = {}
    for end in interval_ends(lo, hi):
        k = _seed("missing", fs, end.timestamp()) % 60
        if k in (0, 1):
            out[end] = "404" if k == 0 else "empty"
    return out


def da_posted(day: date) -> datetime:
    prev = day - timedelta(days=1)
    return datetime(prev.year, prev.month, prev.day, 16, 5, tzinfo=CENTRAL).astimezone(UTC) + timedelta(
        seconds=_seed("da", day) % 300)


@lru_cache(maxsize=64)
def da_file(fs: str, day: date) -> bytes:
    lo, hi = day_bounds(day)
    ends = [t + timedelta(hours=1) for t in hours(lo, hi)]
    if fs == DA_LMP.fs:
        return _rows_text(lmp_header(day), [c for e in ends for c in _lmp_lines(e, "DA", day)])
    return _rows_text(mcp_header(day, "DA"), [c for e in ends for c in _mcp_lines(e, "DA", day)])


BAD_LINE = 4  # the file line (header = 1) that fault spp_bad_row spoils


def bad_row(body: bytes, column: str) -> bytes:
    """A value SPP never publishes in ``column`` of line ``BAD_LINE`` (fault ``spp_bad_row``)."""
    lines = body.split(b"\n")
    i = [c.strip() for c in lines[0].decode().split(",")].index(column)
    cells = lines[BAD_LINE - 1].split(b",")
    cells[i] = b"#VALUE!"
    lines[BAD_LINE - 1] = b",".join(cells)
    return b"\n".join(lines)


# ------------------------------------------------------------------ MTLF
def _load(end: datetime, baa: str) -> float:
    base = 34_000 if baa == "SPP" else 2_600
    return round(base * _shape(end) * (1 + 0.02 * math.sin(end.timestamp() / 7_200)), 1)


def mtlf_posted(issued: datetime) -> datetime:
    return issued + timedelta(seconds=120 + _seed("mtlf", issued.timestamp()) % 120)


@lru_cache(maxsize=256)
def mtlf_file(issued: datetime) -> bytes:
    """An hourly issue: the past 24 hours with ``Averaged Actual`` (``MTLF`` empty), the next 7 days
    with ``MTLF`` (actual empty); hour-ending rows; per BAA from 2026-02-01."""
    day = local(issued).date()
    baas = ["SPP", "SWPW"] if baa_era(day) else [""]
    rows = []
    for h in range(-23, 169):
        end = issued + timedelta(hours=h)
        for baa in baas:
            actual = _load(end, baa or "SPP")
            if h <= 0:
                values = ["", f"{actual:.1f}"]
            else:
                err = 1 + 0.004 * min(h, 48) ** 0.5 * math.sin(_seed("err", issued.timestamp(), h) % 628 / 100)
                values = [f"{actual * err:.1f}", ""]
            rows.append([*_labels(end), *values, *([baa] if baa else [])])
    header = "Interval,GMTIntervalEnd,MTLF,Averaged Actual" + (",BAA" if baas != [""] else "")
    return _rows_text(header, rows)


# ------------------------------------------------------------------ generation mix
SELF_SHARE = {fuel: _seed("self", fuel) % 40 for fuel in FUELS}  # percent self-committed


_MASK = (1 << 64) - 1


@lru_cache(maxsize=800)
def _mix_day(day: date) -> dict[datetime, tuple[tuple[int, int], ...]]:
    """(market, self) MW in tenths per fuel (``FUELS`` order) for every interval end of the day
    (a cheap 64-bit LCG for the noise: the rolling 365-day file is about 105 000 rows)."""
    x = _seed("mix", day)
    lo, hi = day_bounds(day)
    offset = local(lo).utcoffset() or timedelta(0)
    out = {}
    for end in interval_ends(lo, hi):
        hour = ((end + offset).hour + (end + offset).minute / 60) % 24
        shape = 1 + 0.3 * math.sin((hour - 10) / 24 * 2 * math.pi)
        solar = max(0.0, math.sin((hour - 6) / 12 * math.pi))
        row = []
        for fuel in FUELS:
            x = (x * 6364136223846793005 + 1442695040888963407) & _MASK
            noise = 1 + ((x >> 33) / 2**31 - 0.5) * 0.04
            tenths = max(0, int(FUEL_MW[fuel] * (solar if fuel == "Solar" else shape) * noise * 10))
            own = tenths * SELF_SHARE[fuel] // 100
            row.append((tenths - own, own))
        out[end] = tuple(row)
    return out


def _mix(end: datetime) -> tuple[tuple[int, int], ...]:
    return _mix_day(local(end - FIVE).date())[end]


GENMIX_HEADER = "GMT MKT Interval," + ",".join(f"{f} Market,{f} Self" for f in FUELS) + ",Load"


def _genmix_line(end: datetime, mix: tuple[tuple[int, int], ...] | None = None) -> str:
    cells = [end.strftime("%Y-%m-%dT%H:%M:%SZ")]
    for market, own in mix or _mix(end):
        cells += [f"{market // 10}.{market % 10}", f"{own // 10}.{own % 10}"]
    cells.append(f"{_load(end, 'SPP'):.1f}")
    return ",".join(cells) + "\n"


@lru_cache(maxsize=800)
def _genmix_day(day: date) -> str:
    return "".join(_genmix_line(e, mix) for e, mix in _mix_day(day).items())


def genmix_rolling(now: datetime) -> bytes:
    return _genmix_rolling(datetime.fromtimestamp(int((now - timedelta(minutes=2)).timestamp()) // 300 * 300, UTC))


@lru_cache(maxsize=2)
def _genmix_rolling(newest: datetime) -> bytes:
    oldest = newest - timedelta(days=365)
    first, last = local(oldest).date(), local(newest).date()
    parts, d = [], first
    while d <= last:
        lo, hi = day_bounds(d)
        if oldest < lo and hi <= newest:
            parts.append(_genmix_day(d))
        else:
            parts.append("".join(_genmix_line(e) for e in interval_ends(lo, hi) if oldest < e <= newest))
        d += timedelta(days=1)
    return (GENMIX_HEADER + "\n" + "".join(parts)).encode()


def genmix_annual(year: int, now: datetime) -> bytes | None:
    if year < FIRST_DAY.year or local(now).date() < date(year + 1, 1, 2):
        return None  # only closed years are archived
    d, parts = date(year, 1, 1), []
    while d.year == year:
        parts.append(_genmix_day(d))
        d += timedelta(days=1)
    return (GENMIX_HEADER + "\n" + "".join(parts)).encode()


def genmix_chart(now: datetime) -> bytes:
    newest = datetime.fromtimestamp(int((now - timedelta(minutes=1)).timestamp()) // 300 * 300, UTC)
    ends = [newest - FIVE * i for i in range(23, -1, -1)]
    mixes = [_mix(e) for e in ends]
    datasets = [{"backgroundColor": "black", "borderColor": "black", "borderWidth": 2,
                 "data": [round(sum(m[i]) / 10, 1) for m in mixes], "fill": False, "hoverRadius": 3,
                 "label": fuel, "pointRadius": 0, "pointStyle": "rectRot", "spanGaps": True, "tension": 0}
                for i, fuel in enumerate(FUELS)]
    doc = {"pieColors": PIE_COLORS, "pieLabels": FUELS,
           "response": {"datasets": datasets, "labels": [e.strftime("%Y-%m-%dT%H:%M:%SZ") for e in ends],
                        "lastModifiedDate": int((newest + timedelta(seconds=28)).timestamp() * 1000)}}
    return json.dumps(doc, separators=(",", ":")).encode()


# ------------------------------------------------------------------ HTTP
def _not_found() -> Response:
    return Response(404, b"", "text/plain")  # SPP's "no such file": 404, empty body


def _csv(body: bytes, modified: datetime) -> Response:
    return Response(200, body, "text/csv", {"Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True)})


def _rt(req: Request, family: Family, path: str, now: datetime) -> Response:
    name = path.rsplit("/", 1)[-1]
    if path == family.latest_path():
        end = datetime.fromtimestamp(int((now + 2 * FIVE).timestamp()) // 300 * 300, UTC)
        while interval_posted(family.fs, end) > now:
            end -= FIVE
        return _csv(interval_file(family.fs, end), interval_posted(family.fs, end))
    if "/By_Day/" in path:
        day = _day_of(name, family.daily_prefix or "")
        if (day is None or day < FIRST_DAY or path != family.daily_path(day) or daily_posted(day) > now
                or req.sim.faults.get("spp_no_daily_file", 0)):
            return _not_found()
        return _csv(daily_file(family.fs, day), daily_posted(day))
    try:
        end = name_instant(name)
    except ValueError:
        return _not_found()
    if path != family.interval_path(end) or end.minute % 5 or local(end).date() < FIRST_DAY:
        return _not_found()  # wrong folder, wrong or missing "d": SPP has no such file
    if interval_posted(family.fs, end) > now:
        return _not_found()
    if req.sim.faults.get("spp_missing_intervals", 0):
        gone = missing_intervals(family.fs, local(end - FIVE).date()).get(end)
        if gone == "404":
            return _not_found()
        if gone == "empty":
            return _csv(b"", interval_posted(family.fs, end))
    return _csv(interval_file(family.fs, end), interval_posted(family.fs, end))


def _day_of(name: str, prefix: str) -> date | None:
    stem = name.removesuffix(".csv").removeprefix(prefix + "-")
    try:
        return datetime.strptime(stem[:8], "%Y%m%d").date() if stem[:8].isdigit() and stem[8:] in ("", "0100") else None
    except ValueError:
        return None


def _download(req: Request, folder: str, path: str, now: datetime) -> Response:
    if folder in RT:
        return _rt(req, RT[folder][0], path, now)
    name = path.rsplit("/", 1)[-1]
    if folder in (DA_LMP.fs, DA_MCP.fs):
        fam = DA_LMP if folder == DA_LMP.fs else DA_MCP
        day = _day_of(name, fam.prefix)
        if (day is None or day < FIRST_DAY or path != da_path(fam.prefix, day, by_day=fam is DA_LMP)
                or da_posted(day) > now):
            return _not_found()
        body = da_file(folder, day)
        return _csv(bad_row(body, "LMP" if fam is DA_LMP else "Spin") if req.sim.fire("spp_bad_row") else body,
                    da_posted(day))
    if folder == MTLF.fs:
        try:
            issued = name_instant(name)
        except ValueError:
            return _not_found()
        if (path != vintage_path(MTLF.prefix, issued) or issued.minute or local(issued).date() < FIRST_DAY
                or mtlf_posted(issued) > now):
            return _not_found()
        return _csv(mtlf_file(issued), mtlf_posted(issued))
    if folder == "generation-mix-historical":
        if path == "/SPP/GenMix365_SPP.csv":
            return _csv(genmix_rolling(now), now - timedelta(minutes=2))
        if path.startswith("/GenMix_") and path[8:12].isdigit() and path[12:] == ".csv":
            body = genmix_annual(int(path[8:12]), now)
            if body is not None:
                return _csv(body, datetime(int(path[8:12]) + 1, 1, 1, 6, tzinfo=UTC))
    return _not_found()


@plugin("/spp/portal")
def portal(req: Request) -> Response:
    if req.sim.fire("rate_limit"):
        return Response(429, b"Too Many Requests", "text/plain", {"Retry-After": "1"})
    now = req.sim.now()
    prefix = "/file-browser-api/download/"
    if req.path.startswith(prefix) and "path" in req.query:
        return _download(req, req.path[len(prefix):], req.query["path"], now)
    if req.path == "/chart-api/gen-mix/asChart":
        return Response(200, genmix_chart(now), "application/json")
    return _not_found()
