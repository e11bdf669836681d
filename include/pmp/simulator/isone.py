"""ISO-NE in the simulator: ISO Express CSVs (www.iso-ne.com) and Web Services JSON (webservices.iso-ne.com).

Hosts: ``/isone/www`` = www.iso-ne.com, ``/isone/ws`` = webservices.iso-ne.com (the real paths follow,
e.g. ``/isone/ws/api/v1.1/hourlylmp/da/final/day/20241103``).

ISO Express (what the reference and the real samples show):
* every CSV request needs the session cookie set by a report page *and* a Referer from a report page,
  otherwise an Akamai-style ``403 Access Denied`` HTML page; a *client* (by address, so a new
  session does not get round it) sending more than ``PMP_SIM_ISONE_BURST`` requests within 10 s
  (default 40) hits the same 403 wall for ``PMP_SIM_ISONE_WALL_SECONDS`` (default 30);
* files use the record structure ``"C"`` comments, two ``"H"`` rows (names, then types), ``"D"`` data
  and a ``"T"`` trailer, LF line endings, strings quoted, numbers bare, and no newline after the
  trailer (like the real seven-day wind forecast file);
* hour-ending labels ``01``..``24`` with ``02X`` for the repeated fall-back hour (and no ``02`` on the
  spring-forward day); 5-minute files carry ``Local Time`` without an offset;
* static historical reports (``/static-transform/csv/histRpts/...``) appear at their publication
  time and 404 before; ``/transform/csv/...`` reports are generated on request from what has been
  published so far (``Report generated`` is the request time); prelim prices are later replaced by
  final files in a sibling folder;
* during the operating day: each interval's preliminary 5-minute LMP and reserve prices one to two and
  a half minutes after it ends (``/transform/csv/fiveminlmp/current?type=prelim``, the newest interval;
  ``/transform/csv/fiveminreserveprice?type=prelim``, the day so far), each 4-hour prelim LMP file 10-15
  minutes after its block, system load two minutes and fuel-mix snapshots a minute after they are taken.

Web Services: HTTP Basic (``PMP_SIM_ISONE_USERNAME``/``PMP_SIM_ISONE_PASSWORD``, default
``sim-user``/``sim-pass``), JSON only with ``Accept: application/json`` or a ``.json`` suffix
(XML otherwise), explicit UTC offsets in ``BeginDate``, a single record sent as an object rather
than a list, ``""`` for an empty day, and 429 + ``Retry-After`` above ``PMP_SIM_ISONE_WS_RPS``
requests per second (default 25). Intraday: ``/fiveminutelmp/prelim/current/all`` (the newest interval's
preliminary LMPs), ``/fiveminutereserveprice/day/{d}`` (the day's preliminary reserve prices so far;
``/fiveminutereserveprice/final/day/{d}`` has the final ones once the day is published).

Data are deterministic for any date since 2019-01-01; DST days are exact (23/25 hours). A handful of
locations by default: the hub, the eight load zones, the six external interfaces and
``PMP_SIM_ISONE_NODES`` network nodes (default 6, real names first).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from pmp.simulator.server import Request, Response, plugin, register_faults
from pmp.validate import env_number, env_text

ET = ZoneInfo("America/New_York")
FIRST_DAY = date(2019, 1, 1)
HOUR = timedelta(hours=1)
FIVE = timedelta(minutes=5)

register_faults(
    "isone_403",  # ISO Express answers 403 Access Denied (the wall)
    "isone_html",  # ISO Express answers 200 with an HTML page instead of the CSV
    "isone_truncated",  # the CSV is cut off before its "T" trailer
    "isone_bad_price",  # a well-formed CSV with a non-numeric price in one data row
)

# ------------------------------------------------------------------ locations
HUB = [(4000, ".H.INTERNAL_HUB", "HUB")]
ZONES = [(4001, ".Z.MAINE"), (4002, ".Z.NEWHAMPSHIRE"), (4003, ".Z.VERMONT"), (4004, ".Z.CONNECTICUT"),
         (4005, ".Z.RHODEISLAND"), (4006, ".Z.SEMASS"), (4007, ".Z.WCMASS"), (4008, ".Z.NEMASSBOST")]
INTERFACES = [(4010, ".I.SALBRYNB345 1"), (4011, ".I.ROSETON 345 1"), (4012, ".I.HQ_P1_P2345 5"),
              (4013, ".I.HQHIGATE120 2"), (4014, ".I.SHOREHAM138 99"), (4017, ".I.NRTHPORT138 5")]
REAL_NODES = [(321, "UN.FRNKLNSQ13.810CC"), (322, "UN.FRNKLNSQ13.811CC"), (323, "UN.FRNKLNSQ13.89CC"),
              (324, "UN.CDEC    13.8AETN"), (326, "UN.ALTRESCO13.8ALTR"), (327, "UN.EDDY    34.5AMOS")]
RESERVE_ZONES = [(7000, "ROS"), (7001, "SWCT"), (7002, "CT"), (7003, "NEMABSTN")]
FUELS = [("Coal", "Coal"), ("Hydro", "Hydro"), ("Landfill Gas", "Renewables"), ("Natural Gas", "Natural Gas"),
         ("Nuclear", "Nuclear"), ("Oil", "Oil"), ("Other", "Other"), ("Refuse", "Renewables"),
         ("Solar", "Renewables"), ("Wind", "Renewables"), ("Wood", "Renewables")]
BLOCKS = ["00-04", "04-08", "08-12", "12-16", "16-20", "20-24"]


def locations() -> list[tuple[int, str, str]]:
    """(Location ID, Location Name, Location Type), in the order the ISO lists them (by id)."""
    n = env_number("PMP_SIM_ISONE_NODES", 6)
    nodes = REAL_NODES[:n] + [(10_000 + i, f"UN.SIMNODE{i:03d}13.8SIM{i % 10}") for i in range(max(0, n - 6))]
    out = [(i, name, "NETWORK NODE") for i, name in nodes] + HUB
    out += [(i, name, "LOAD ZONE") for i, name in ZONES] + [(i, name, "EXT. NODE") for i, name in INTERFACES]
    return sorted(out)


# ------------------------------------------------------------------ time
def local(t: datetime) -> datetime:
    return t.astimezone(ET)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    s = datetime(day.year, day.month, day.day, tzinfo=ET).astimezone(UTC)
    nxt = day + timedelta(days=1)
    return s, datetime(nxt.year, nxt.month, nxt.day, tzinfo=ET).astimezone(UTC)


def steps(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += step
    return out


def at_local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """UTC instant of a local wall-clock time (never inside a DST gap for the times used here)."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=ET).astimezone(UTC)


def hour_label(start: datetime) -> tuple[date, str]:
    """ISO-NE hour ending of the hour starting at ``start`` (UTC): local start hour + 1, two digits;
    the repeated fall-back hour is ``02X``; on the spring-forward day the hour starting at 01:00 EST
    ends at 03:00 EDT, so ``02`` does not occur."""
    ls, le = local(start), local(start + HOUR)
    he = ls.hour + 1
    if (le.hour - ls.hour) % 24 == 2:
        he = ls.hour + 2
    label = f"{he:02d}"
    if ls.fold == 1 and _ambiguous(ls):
        label += "X"
    return ls.date(), label


def _ambiguous(t: datetime) -> bool:
    wall = t.replace(tzinfo=None)
    return wall.replace(tzinfo=ET, fold=0).utcoffset() != wall.replace(tzinfo=ET, fold=1).utcoffset()


def block_bounds(day: date, block: str) -> tuple[datetime, datetime]:
    """A 4-hour block is local wall-clock [HH:00, HH+4:00) (five hours on the fall-back day)."""
    a, b = (int(x) for x in block.split("-"))
    start = at_local(day, a) if a else day_bounds(day)[0]
    end = day_bounds(day)[1] if b == 24 else at_local(day, b)
    return start, end


def tz_abbr(t: datetime) -> str:
    return local(t).tzname() or "EST"


def stamp(t: datetime) -> str:
    """``03/16/2026 13:07:54 EDT``: the ``Report generated`` line."""
    return local(t).strftime("%m/%d/%Y %H:%M:%S ") + tz_abbr(t)


def iso_ms(t: datetime) -> str:
    """Web Services ``BeginDate``: local time with milliseconds and an explicit offset."""
    return local(t).isoformat(timespec="milliseconds")


# ------------------------------------------------------------------ values
def _u(*parts: object) -> float:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def num(v: float) -> str:
    """Numbers as ISO-NE prints them: shortest repr, ``0.0`` for zero."""
    r = repr(round(v, 2) + 0.0)
    return "0.0" if r == "-0.0" else r


def lmp(kind: str, loc_id: int, start: datetime, stage: str = "final") -> tuple[float, float, float, float]:
    """(LMP, energy, congestion, loss) for a location and interval. ``kind``: DA, RT60 or RT5.
    Final real-time prices differ from the prelim ones in about one interval in four."""
    loc = local(start)
    shape = 34 + 16 * math.sin((loc.hour + loc.minute / 60 - 9) / 24 * 2 * math.pi)
    energy = shape + 8 * _u("day", start.date()) - 4 + (_u(kind, "e", start.timestamp()) - 0.5) * 6
    if _u("spike", kind, start.timestamp()) > 0.996:
        energy *= 6
    if stage == "final" and kind != "DA" and _u("revise", kind, start.timestamp()) > 0.75:
        energy += (_u("adj", kind, start.timestamp()) - 0.5) * 3
    congestion = 0.0
    if _u("cong", loc_id, start.timestamp() // 3600) > 0.8:
        congestion = round((_u("c", kind, loc_id, start.timestamp()) - 0.3) * 12, 2)
    loss = round((_u("loss", loc_id) - 0.5) * 0.06 * energy, 2)
    energy = round(energy, 2)
    return round(energy + congestion + loss, 2), energy, congestion, loss


def native_load(t: datetime) -> float:
    loc = local(t)
    h = loc.hour + loc.minute / 60
    base = 13_500 + 3_000 * math.sin((h - 10) / 24 * 2 * math.pi) + 1_500 * math.cos(loc.timetuple().tm_yday / 58)
    return round(base + (_u("load", t.timestamp()) - 0.5) * 120, 2)


def ard_demand(t: datetime) -> float:
    return round(80 + 160 * _u("ard", t.timestamp() // 900), 2)


# ------------------------------------------------------------------ CSV rendering
def _q(v: str) -> str:
    return '"' + v.replace('"', '""') + '"'


def render_csv(title: str, filename: str | None, report_for: str, generated: datetime, names: list[str],
               types: list[str], rows: list[list[str]]) -> bytes:
    """The ISO Express record structure. ``rows`` hold already-rendered fields (quoted or bare).
    Reports generated for the current interval carry no ``Filename`` comment (``filename=None``):
    three comment lines before the header, as gridstatus reads them (``skiprows=[0, 1, 2, 4]``)."""
    lines = [f'"C",{_q(title)}'] + ([f'"C",{_q("Filename: " + filename)}'] if filename else []) + [
        f'"C",{_q("Report for: " + report_for)}', f'"C",{_q("Report generated: " + stamp(generated))}',
        '"H",' + ",".join(map(_q, names)), '"H",' + ",".join(map(_q, types)),
    ]
    lines += ['"D",' + ",".join(r) for r in rows]
    lines.append(f'"T",{_q(f"{len(rows)} lines")}')
    return "\n".join(lines).encode()


def _day_for(day: date) -> str:
    return f"{day:%m/%d/%Y} - {day:%m/%d/%Y}"


LMP_NAMES = ["Date", "Hour Ending", "Location ID", "Location Name", "Location Type", "Locational Marginal Price",
             "Energy Component", "Congestion Component", "Marginal Loss Component"]
LMP_TYPES = ["Date", "HE", "String", "String", "String", "Number", "Number", "Number", "Number"]


def _hourly_rows(kind: str, day: date, stage: str) -> list[list[str]]:
    rows = []
    for t in steps(*day_bounds(day), HOUR):
        d, he = hour_label(t)
        for loc_id, name, typ in locations():
            total, e, c, lo = lmp(kind, loc_id, t, stage)
            rows.append([_q(f"{d:%m/%d/%Y}"), _q(he), _q(str(loc_id)), _q(name), _q(typ), num(total), num(e),
                         num(c), num(lo)])
    return rows


# ------------------------------------------------------------------ publication schedule (the ISO's)
def da_published(day: date) -> datetime:
    return at_local(day - timedelta(days=1), 13, 0) + timedelta(seconds=int(_u("da", day) * 600))


def rt_hourly_published(day: date, stage: str) -> datetime:
    nxt = day + timedelta(days=1)
    if stage == "prelim":
        return at_local(nxt, 0, 15) + timedelta(seconds=int(_u("rth", day) * 600))
    return at_local(nxt + timedelta(days=1), 10, 0) + timedelta(seconds=int(_u("rthf", day) * 1800))


def block_published(day: date, block: str, stage: str) -> datetime:
    if stage == "prelim":
        return block_bounds(day, block)[1] + timedelta(minutes=10, seconds=int(_u("blk", day, block) * 300))
    return at_local(day + timedelta(days=2), 11, 0) + timedelta(seconds=int(_u("blkf", day, block) * 1800))


def prelim_available(start: datetime) -> datetime:
    """ISO-NE posts the preliminary price of a 5-minute interval (LMP and reserve) one to two and a half
    minutes after the interval ends (the current-interval reports and the Web Services ``current``)."""
    return start + FIVE + timedelta(seconds=60 + int(_u("rt5p", start.timestamp()) * 90))


def latest_prelim_interval(now: datetime) -> datetime:
    """Start of the newest 5-minute interval whose preliminary prices are posted by ``now``."""
    t = datetime.fromtimestamp(int(now.timestamp()) // 300 * 300, UTC) - FIVE
    while prelim_available(t) > now:
        t -= FIVE
    return t


def reserve_published(day: date) -> datetime:
    return at_local(day + timedelta(days=1), 0, 20) + timedelta(seconds=int(_u("res", day) * 300))


def load_available(start: datetime) -> datetime:
    """A 5-minute system load value appears two minutes after its interval ends."""
    return start + FIVE + timedelta(minutes=2)


def fuel_snapshots(day: date) -> list[datetime]:
    """Generation-by-fuel snapshots come at irregular instants (seconds included), about every 7.5
    minutes, as in the real feed."""
    s, e = day_bounds(day)
    out, k = [], 0
    while True:
        t = s + timedelta(seconds=450 * k + 30 + int(_u("fm", s.timestamp(), k) * 400))
        if t >= e:
            return out
        out.append(t)
        k += 1


def forecast_vintages(day: date) -> list[datetime]:
    """System load forecasts issued at about 04:00, 09:10 and 18:15 local each day."""
    return [at_local(day, h, m) + timedelta(seconds=int(_u("vint", day, h) * 240))
            for h, m in ((4, 0), (9, 10), (18, 15))]


def _ceil_hour(t: datetime) -> datetime:
    base = t.replace(minute=0, second=0, microsecond=0)
    return base if base == t else base + HOUR


def vintage_covers(issued: datetime, hour_start: datetime) -> bool:
    """A vintage forecasts every hour from the first one starting after its issue through the end of
    the second local day after its issue day."""
    last = day_bounds(local(issued).date() + timedelta(days=2))[1]
    return _ceil_hour(issued) <= hour_start < last


def forecast_mw(issued: datetime, hour_start: datetime) -> int:
    horizon = (hour_start - issued).total_seconds() / 3600
    err = (_u("ferr", issued.timestamp(), hour_start.timestamp()) - 0.5) * (40 + 8 * horizon)
    return int(round((native_load(hour_start) + 200 + err) / 10) * 10)


def vintages_for(hour_start: datetime, now: datetime) -> list[datetime]:
    """Vintages (issued by ``now``) that forecast the hour, oldest first."""
    d0 = local(hour_start).date()
    out = []
    for d in (d0 - timedelta(days=3), d0 - timedelta(days=2), d0 - timedelta(days=1), d0):
        out += [v for v in forecast_vintages(d) if v <= now and vintage_covers(v, hour_start)]
    return out


# ------------------------------------------------------------------ documents
@dataclass(frozen=True)
class Csv:
    filename: str
    published: datetime | None  # static reports: publication time (404 before); None = generated on request
    render: Callable[[datetime], bytes]  # generation time -> bytes


def da_csv(day: date) -> Csv:
    name = f"WW_DALMP_ISO_{day:%Y%m%d}.csv"
    pub = da_published(day)
    return Csv(name, pub, lambda _g: render_csv(
        "Day-Ahead Energy Market Hourly LMP Report", name, _day_for(day), pub, LMP_NAMES, LMP_TYPES,
        _hourly_rows("DA", day, "final")))


def rt_hourly_csv(day: date, stage: str) -> Csv:
    name = f"lmp_rt_{stage}_{day:%Y%m%d}.csv"
    pub = rt_hourly_published(day, stage)
    title = f"Real-Time Energy Market Hourly {'Preliminary' if stage == 'prelim' else 'Final'} LMP Report"
    return Csv(name, pub, lambda _g: render_csv(title, name, _day_for(day), pub, LMP_NAMES, LMP_TYPES,
                                                _hourly_rows("RT60", day, stage)))


def five_min_csv(day: date, block: str, stage: str) -> Csv:
    name = f"lmp_5min_{day:%Y%m%d}_{block}.csv"
    pub = block_published(day, block, stage)
    title = f"Real-Time Energy Market Five-Minute {'Preliminary' if stage == 'prelim' else 'Final'} LMP Report"

    def render(_g: datetime) -> bytes:
        rows = []
        for t in steps(*block_bounds(day, block), FIVE):
            for loc_id, _name, _typ in locations():
                total, e, c, lo = lmp("RT5", loc_id, t, stage)
                rows.append([_q(local(t).strftime("%H:%M")), _q(str(loc_id)), num(total), num(e), num(c), num(lo)])
        return render_csv(title, name, _day_for(day), pub,
                          FIVE_MIN_NAMES, ["Time", "String", "Number", "Number", "Number", "Number"], rows)

    return Csv(name, pub, render)


FIVE_MIN_NAMES = ["Local Time", "Location ID", "LMP", "Energy Component", "Congestion Component", "Loss Component"]


def current_lmp_csv(now: datetime) -> Csv:
    """``/transform/csv/fiveminlmp/current?type=prelim``: generated on request, the newest interval's
    preliminary 5-minute LMP at every location. Its ``Local Time`` carries the date and no offset (in the
    repeated fall-back hour only the ``Report generated`` stamp, EDT or EST, tells which pass it is)."""
    t = latest_prelim_interval(now)

    def render(gen: datetime) -> bytes:
        rows = []
        for loc_id, _name, _typ in locations():
            total, e, c, lo = lmp("RT5", loc_id, t, "prelim")
            rows.append([_q(local(t).strftime("%m/%d/%Y %H:%M")), _q(str(loc_id)), num(total), num(e), num(c),
                         num(lo)])
        day = local(t).date()
        return render_csv("Real-Time Energy Market Five-Minute Preliminary LMP Report - Current Interval", None,
                          _day_for(day), gen, FIVE_MIN_NAMES,
                          ["Date/Time", "String", "Number", "Number", "Number", "Number"], rows)

    return Csv("fiveminlmp_current_prelim.csv", None, render)


RESERVE_NAMES = ["Local Time", "Reserve Zone ID", "Reserve Zone Name", "Ten Min Spin Requirement",
                 "Total 10 Min Requirement", "Total 30 Min Requirement", "TMSR Designated MW", "TMNSR Designated MW",
                 "TMOR Designated MW", "TMSR Clearing Price", "TMNSR Clearing Price", "TMOR Clearing Price"]
RESERVE_TYPES = ["Date/Time", "Number", "String"] + ["Number"] * 9


def reserve_record(t: datetime, zone_id: int, stage: str = "final") -> dict[str, float | None]:
    """One 5-minute reserve zone record. Only Rest of System (7000) carries the ten-minute requirements;
    prices cascade (TMSR >= TMNSR >= TMOR) and are mostly zero. The preliminary prices (posted within
    minutes) differ from the final ones (posted after the day) in about one interval in five."""
    k = t.timestamp()
    tmor = 0.0 if _u("tmor", zone_id, k // 1800) < 0.85 else round(_u("p30", zone_id, k) * 40, 2)
    tmnsr = round(tmor + (0.0 if _u("tmnsr", k // 900) < 0.8 else _u("p10", k) * 25), 2)
    tmsr = round(tmnsr + (0.0 if _u("tmsr", k // 600) < 0.6 else _u("ps", k) * 15), 2)
    if stage == "prelim" and _u("res-rev", zone_id, k) > 0.8:
        bump = round(0.5 + _u("res-adj", zone_id, k) * 4, 2)
        tmor, tmnsr, tmsr = round(tmor + bump, 2), round(tmnsr + bump, 2), round(tmsr + bump, 2)
    ros = zone_id == 7000
    return {
        "TenMinSpinRequirement": round(650 + 250 * _u("tsr", k // 3600), 1) if ros else None,
        "Total10MinRequirement": round(1700 + 400 * _u("t10", k // 3600), 1) if ros else None,
        "Total30MinRequirement": round((2400 if ros else 600) + 500 * _u("t30", zone_id, k // 3600), 1),
        "TmsrDesignatedMw": round(300 + 900 * _u("dsr", zone_id, k), 1),
        "TmnsrDesignatedMw": round(200 + 1200 * _u("dnsr", zone_id, k), 1),
        "TmorDesignatedMw": round(100 + 900 * _u("dor", zone_id, k), 1),
        "TmsrClearingPrice": tmsr, "TmnsrClearingPrice": tmnsr, "TmorClearingPrice": tmor,
    }


def reserve_intervals(day: date, now: datetime, stage: str) -> list[datetime]:
    """The day's 5-minute reserve intervals published by ``now``: preliminary ones within minutes of each
    interval, final ones all at once after the day (``reserve_published``)."""
    if stage == "prelim":
        return [t for t in steps(*day_bounds(day), FIVE) if prelim_available(t) <= now]
    return steps(*day_bounds(day), FIVE) if reserve_published(day) <= now else []


def reserve_csv(day: date, now: datetime, stage: str = "final") -> Csv:
    """``/transform/csv/fiveminreserveprice?type={prelim|final}&start=&end=``, generated on request."""
    name = f"fiveminreserveprice_{stage}_{day:%Y%m%d}.csv"

    def render(gen: datetime) -> bytes:
        rows = []
        for t in reserve_intervals(day, now, stage):
            for zone_id, zone in RESERVE_ZONES:
                r = reserve_record(t, zone_id, stage)
                rows.append([_q(local(t).strftime("%m/%d/%Y %H:%M")), _q(str(zone_id)), _q(zone)]
                            + ["" if v is None else num(v) for v in r.values()])
        title = "Preliminary" if stage == "prelim" else "Final"
        return render_csv(f"Five-Minute Real-Time Reserve Zone Prices and Designations ({title})", name,
                          _day_for(day), gen, RESERVE_NAMES, RESERVE_TYPES, rows)

    return Csv(name, None, render)


def system_load_csv(day: date, now: datetime) -> Csv:
    name = f"fiveminutesystemload_{day:%Y%m%d}.csv"

    def render(gen: datetime) -> bytes:
        rows = [[_q(local(t).strftime("%m/%d/%Y %H:%M")), num(native_load(t)), num(ard_demand(t))]
                for t in steps(*day_bounds(day), FIVE) if load_available(t) <= now]
        return render_csv("Five-Minute System Load", name, _day_for(day), gen,
                          ["Date/Time", "Native Load", "Asset Related Demand"], ["Date/Time", "Number", "Number"], rows)

    return Csv(name, None, render)


def fuel_mw(fuel: str, t: datetime) -> int:
    loc = local(t)
    h = loc.hour + loc.minute / 60
    base = {"Natural Gas": 6500, "Nuclear": 3300, "Hydro": 900, "Wind": 500, "Solar": 0, "Refuse": 300,
            "Wood": 190, "Landfill Gas": 4, "Oil": 10, "Coal": 0, "Other": 15}[fuel]
    if fuel == "Solar":
        base = max(0.0, 2500 * math.sin((h - 6) / 13 * math.pi)) if 6 <= h <= 19 else 0
    wobble = (_u("fuel", fuel, t.timestamp() // 1800) - 0.5) * 0.1 * max(base, 10)
    return max(0, int(round(base + wobble)))


def marginal(fuel: str, t: datetime) -> str:
    return "Y" if fuel == ("Natural Gas" if _u("marg", t.timestamp()) < 0.8 else "Hydro") else "N"


def fuel_csv(day: date, now: datetime) -> Csv:
    name = f"genfuelmix_{day:%Y%m%d}.csv"

    def render(gen: datetime) -> bytes:
        rows = []
        for t in fuel_snapshots(day):
            if t + timedelta(minutes=1) > now:
                break
            lt = local(t)
            for fuel, rollup in FUELS:
                rows.append([_q(f"{lt:%m/%d/%Y}"), _q(f"{lt:%H:%M:%S}"), _q(fuel), str(fuel_mw(fuel, t)),
                             _q(rollup), _q(marginal(fuel, t))])
        return render_csv("Generation Fuel Mix", name, _day_for(day), gen,
                          ["Date", "Time", "Fuel Category", "Gen Mw", "Fuel Category Rollup", "Marginal Flag"],
                          ["Date", "Time", "String", "Number", "String", "String"], rows)

    return Csv(name, None, render)


def _day(s: str) -> date | None:
    try:
        d = datetime.strptime(s, "%Y%m%d").date()
    except ValueError:
        return None
    return d if d >= FIRST_DAY else None


def csv_document(path: str, query: dict[str, str], now: datetime) -> Csv | None:
    """The ISO Express CSV behind a path (None: not a known report)."""
    hist = "/static-transform/csv/histRpts/"
    if path.startswith(hist):
        folder, _, name = path[len(hist):].partition("/")
        stem = name.removesuffix(".csv")
        parts = stem.split("_")
        if folder == "da-lmp" and stem.startswith("WW_DALMP_ISO_") and (d := _day(parts[-1])):
            return da_csv(d)
        if folder == "rt-lmp" and len(parts) == 4 and parts[:2] == ["lmp", "rt"] and parts[2] in ("prelim", "final") \
                and (d := _day(parts[3])):
            return rt_hourly_csv(d, parts[2])
        if folder in ("5min-rt-prelim", "5min-rt-final") and len(parts) == 4 and parts[:2] == ["lmp", "5min"] \
                and parts[3] in BLOCKS and (d := _day(parts[2])):
            return five_min_csv(d, parts[3], folder.split("-")[-1])
        return None
    if path == "/transform/csv/fiveminlmp/current" and query.get("type") == "prelim":
        return current_lmp_csv(now)
    start = _day(query.get("start", ""))
    if start is None:
        return None
    if path == "/transform/csv/fiveminreserveprice" and query.get("type", "final") in ("prelim", "final"):
        return reserve_csv(start, now, query.get("type", "final"))
    if path == "/transform/csv/fiveminutesystemload":
        return system_load_csv(start, now)
    if path == "/transform/csv/genfuelmix":
        return fuel_csv(start, now)
    return None


def all_csv_documents(dataset: str, day: date, now: datetime, stage: str = "final") -> list[tuple[str, bytes]]:
    """Every CSV of a dataset for a market day as the ISO serves it at ``now`` (tests use this)."""
    docs: list[Csv]
    if dataset == "lmp_dam":
        docs = [da_csv(day)]
    elif dataset == "lmp_rt60m":
        docs = [rt_hourly_csv(day, stage)]
    elif dataset == "lmp_rt5m":
        docs = [five_min_csv(day, b, stage) for b in BLOCKS]
    elif dataset == "as_rt5m":
        docs = [reserve_csv(day, now, stage)]
    elif dataset == "load_actual":
        docs = [system_load_csv(day, now)]
    elif dataset == "fuel_mix":
        docs = [fuel_csv(day, now)]
    else:
        raise KeyError(dataset)
    return [(d.filename, d.render(d.published or now)) for d in docs]


# ------------------------------------------------------------------ ISO Express (www.iso-ne.com)
NOT_FOUND = (b"<!DOCTYPE html><html><head><title>Page Not Found | ISO New England</title></head>"
             b"<body><h1>Page Not Found</h1><p>The page you requested could not be found.</p></body></html>")
MAINTENANCE = (b"<!DOCTYPE html><html><head><title>ISO Express</title></head><body><h1>ISO Express</h1>"
               b"<p>ISO Express is temporarily unavailable. Please try again later.</p></body></html>")


def _denied(req: Request, path: str) -> Response:
    ref = secrets.token_hex(4)
    body = ("<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n \n"
            f"You don't have permission to access \"http&#58;&#47;&#47;www&#46;iso&#45;ne&#46;com{path}\" on this "
            f"server.<P>\nReference&#32;&#35;18&#46;{ref}&#46;{int(time.time())}\n</BODY>\n</HTML>\n")
    return Response(403, body.encode(), "text/html")


def _www_state(req: Request) -> dict:
    return req.sim.state.setdefault("isone_www", {"sessions": set(), "hits": {}, "walled_until": {}})


def _cookie(req: Request) -> str | None:
    for part in req.headers.get("Cookie", "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == "JSESSIONID":
            return v
    return None


def _client(req: Request) -> str:
    """The client's address: the wall is per client, not per session (a new cookie does not help)."""
    return req.client


def _walled(req: Request) -> bool:
    """More than ``PMP_SIM_ISONE_BURST`` requests from one client within 10 s: Akamai's 403 wall for
    ``PMP_SIM_ISONE_WALL_SECONDS`` from then on, whatever session the client presents. Requests
    refused by the wall do not count (waiting it out is enough)."""
    burst = env_number("PMP_SIM_ISONE_BURST", 40)
    wall = env_number("PMP_SIM_ISONE_WALL_SECONDS", 30, float)
    state, client = _www_state(req), _client(req)
    now = time.monotonic()
    with req.sim.lock:
        if now < state["walled_until"].get(client, 0.0):
            return True
        hits: deque = state["hits"].setdefault(client, deque())
        while hits and now - hits[0] > 10:
            hits.popleft()
        hits.append(now)
        if len(hits) > burst:
            state["walled_until"][client] = now + wall
            hits.clear()
            return True
        return False


@plugin("/isone/www")
def www(req: Request) -> Response:
    state = _www_state(req)
    if req.path.startswith("/isoexpress/web/reports/"):
        sid = secrets.token_hex(16).upper()
        with req.sim.lock:
            state["sessions"].add(sid)
        page = (f"<!DOCTYPE html><html><head><title>ISO Express Reports</title></head><body>"
                f"<h1>{req.path.rsplit('/', 1)[-1]}</h1><a href=\"/transform/csv/\">Download CSV</a></body></html>")
        return Response(200, page.encode(), "text/html;charset=UTF-8",
                        {"Set-Cookie": f"JSESSIONID={sid}; Path=/; HttpOnly"})
    session = _cookie(req)
    referer = req.headers.get("Referer", "")
    if session not in state["sessions"] or "/isoexpress/web/reports/" not in referer:
        return _denied(req, req.path)  # cookie or Referer alone is not enough
    if req.sim.fire("isone_403") or _walled(req):
        return _denied(req, req.path)
    if req.sim.fire("isone_html"):
        return Response(200, MAINTENANCE, "text/html;charset=UTF-8")
    now = req.sim.now()
    if req.path == "/ws/wsclient" and req.method == "POST":
        return _wsclient(req, now)
    doc = csv_document(req.path, req.query, now)
    if doc is None or (doc.published is not None and doc.published > now):
        return Response(404, NOT_FOUND, "text/html;charset=UTF-8")
    body = doc.render(doc.published or now)
    if req.sim.fire("isone_truncated"):
        body = body[: int(len(body) * 0.6)]
    elif req.sim.fire("isone_bad_price"):
        lines = body.split(b"\n")
        i = next((k for k in range(len(lines) // 2, len(lines)) if lines[k].startswith(b'"D"')), None)
        if i is not None:
            fields = lines[i].split(b",")
            fields[-1] = b"n/a"
            lines[i] = b",".join(fields)
        body = b"\n".join(lines)
    return Response(200, body, "text/csv", {"Content-Disposition": f'attachment; filename="{doc.filename}"'})


def _wsclient(req: Request, now: datetime) -> Response:
    """``POST /ws/wsclient`` with ``_nstmp_requestType=systemload``: the page's JSON. Forecast rows hold,
    for each hour of the requested days, the newest vintage issued by now that covers the hour."""
    form = {k: v[-1] for k, v in parse_qs(req.body.decode()).items()}
    if form.get("_nstmp_requestType") != "systemload":
        return Response.json([{"data": {}}])
    try:
        first = datetime.strptime(form["_nstmp_startDate"], "%m/%d/%Y").date()
        last = datetime.strptime(form.get("_nstmp_endDate", form["_nstmp_startDate"]), "%m/%d/%Y").date()
    except (KeyError, ValueError):
        return Response.json([{"data": {}, "error": "invalid date"}], 400)
    forecast = []
    d = first
    while d <= last:
        for h in steps(*day_bounds(d), HOUR):
            vs = vintages_for(h, now)
            if vs:
                forecast.append({"BeginDate": iso_ms(h), "CreationDate": iso_ms(vs[-1]), "Mw": forecast_mw(vs[-1], h)})
        d += timedelta(days=1)
    return Response.json([{"data": {"forecast": forecast, "actual": [], "cleared": []}}])


# ------------------------------------------------------------------ Web Services (webservices.iso-ne.com)
API = "/api/v1.1/"


def ws_payload(path: str, now: datetime) -> tuple[str, object] | None:
    """(wrapper element, records or None) for a Web Services path without the ``/api/v1.1/`` prefix."""
    p = path.removesuffix(".json").strip("/").split("/")
    if len(p) >= 5 and p[0] == "hourlylmp" and p[1:4] in (["da", "final", "day"], ["rt", "prelim", "day"],
                                                            ["rt", "final", "day"]) and (d := _day(p[4])):
        kind = "DA" if p[1] == "da" else "RT60"
        pub = da_published(d) if kind == "DA" else rt_hourly_published(d, p[2])
        recs = [] if pub > now else [_lmp_record(kind, t, loc, p[2]) for t in steps(*day_bounds(d), HOUR)
                                       for loc in locations()]
        return "HourlyLmps", recs
    if len(p) == 6 and p[0] == "fiveminutelmp" and p[1] in ("prelim", "final") and p[2] == "day" and p[4] == "starthour" \
            and (d := _day(p[3])) and p[5].isdigit():
        hour = int(p[5])
        recs = []
        for blk in BLOCKS:
            a, b = (int(x) for x in blk.split("-"))
            if a <= hour < b and block_published(d, blk, p[1]) <= now:
                recs = [_lmp_record("RT5", t, loc, p[1]) for t in steps(*day_bounds(d), FIVE)
                        if local(t).hour == hour for loc in locations()]
        return "FiveMinLmps", recs
    if p[:2] == ["fiveminutelmp", "prelim"] and p[2:] == ["current", "all"]:
        t = latest_prelim_interval(now)
        return "FiveMinLmps", [_lmp_record("RT5", t, loc, "prelim") for loc in locations()]
    if (p[:2] == ["fiveminutereserveprice", "day"] and len(p) == 3
            or p[:3] == ["fiveminutereserveprice", "final", "day"] and len(p) == 4) and (d := _day(p[-1])):
        stage = "final" if len(p) == 4 else "prelim"  # /day/{d}: preliminary prices so far; /final/day/{d}
        recs = []
        for t in reserve_intervals(d, now, stage):
            for zone_id, zone in RESERVE_ZONES:
                r = {k: v for k, v in reserve_record(t, zone_id, stage).items() if v is not None}
                recs.append({"BeginDate": iso_ms(t), "ReserveZoneId": zone_id, "ReserveZoneName": zone, **r})
        return "FiveMinReservePrices", recs
    if p[:2] == ["fiveminutesystemload", "day"] and len(p) == 3 and (d := _day(p[2])):
        recs = [{"BeginDate": iso_ms(t), "LoadMw": round(native_load(t) + ard_demand(t), 2), "NativeLoad": native_load(t),
                 "ArdDemand": ard_demand(t), "SystemLoadBtmPv": round(native_load(t) + ard_demand(t) + 350, 2),
                 "NativeLoadBtmPv": round(native_load(t) + 350, 2)}
                for t in steps(*day_bounds(d), FIVE) if load_available(t) <= now]
        return "FiveMinSystemLoads", recs
    if p[:3] == ["hourlyloadforecast", "all", "day"] and len(p) == 4 and (d := _day(p[3])):
        recs = [{"BeginDate": iso_ms(h), "CreationDate": iso_ms(v), "LoadMw": forecast_mw(v, h),
                 "NetLoadMw": forecast_mw(v, h) - 150}
                for h in steps(*day_bounds(d), HOUR) for v in vintages_for(h, now)]
        return "HourlyLoadForecasts", recs
    if p[:2] == ["genfuelmix", "day"] and len(p) == 3 and (d := _day(p[2])):
        recs = [{"BeginDate": iso_ms(t), "GenMw": fuel_mw(f, t), "FuelCategoryRollup": r, "FuelCategory": f,
                 "MarginalFlag": marginal(f, t)}
                for t in fuel_snapshots(d) if t + timedelta(minutes=1) <= now for f, r in FUELS]
        return "GenFuelMixes", recs
    return None


def _lmp_record(kind: str, t: datetime, loc: tuple[int, str, str], stage: str) -> dict:
    total, e, c, lo = lmp(kind, loc[0], t, stage)
    return {"BeginDate": iso_ms(t), "Location": {"@LocId": str(loc[0]), "@LocType": loc[2], "$": loc[1]},
            "LmpTotal": total, "EnergyComponent": e, "CongestionComponent": c, "LossComponent": lo}


WS_RECORD = {"HourlyLmps": "HourlyLmp", "FiveMinLmps": "FiveMinLmp", "FiveMinReservePrices": "FiveMinReservePrice",
             "FiveMinSystemLoads": "FiveMinSystemLoad", "HourlyLoadForecasts": "HourlyLoadForecast",
             "GenFuelMixes": "GenFuelMix"}


def ws_json(wrapper: str, records: list[dict]) -> dict:
    """Quirks of the service: a single record is an object, not a one-element list; no records is ``""``."""
    inner = WS_RECORD[wrapper]
    if not records:
        return {wrapper: ""}
    return {wrapper: {inner: records[0] if len(records) == 1 else records}}


def _ws_state(req: Request) -> dict:
    return req.sim.state.setdefault("isone_ws", {"calls": deque()})


@plugin("/isone/ws")
def ws(req: Request) -> Response:
    if not req.path.startswith(API):
        return Response(404, b"Not Found", "text/plain")
    user = env_text("PMP_SIM_ISONE_USERNAME", "sim-user")
    pw = env_text("PMP_SIM_ISONE_PASSWORD", "sim-pass")
    expected = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    if req.headers.get("Authorization") != expected:
        return Response(401, b"<html><body><h1>HTTP Status 401 - Unauthorized</h1></body></html>", "text/html",
                        {"WWW-Authenticate": 'Basic realm="ISO New England Web Services"'})
    calls: deque = _ws_state(req)["calls"]
    rps = env_number("PMP_SIM_ISONE_WS_RPS", 25)
    now_m = time.monotonic()
    with req.sim.lock:
        while calls and now_m - calls[0] > 1:
            calls.popleft()
        limited = len(calls) >= rps
        if not limited:
            calls.append(now_m)
    if req.sim.fire("rate_limit") or limited:
        return Response(429, b"Too Many Requests", "text/plain", {"Retry-After": "1"})
    found = ws_payload(req.path[len(API):], req.sim.now())
    if found is None:
        return Response(404, b"<html><body><h1>HTTP Status 404 - Not Found</h1></body></html>", "text/html")
    wrapper, records = found
    wants_json = req.path.endswith(".json") or "application/json" in req.headers.get("Accept", "")
    if not wants_json:  # the service answers XML unless asked for JSON
        xml = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><{wrapper} '
               f'xmlns="http://WEBSERVICES.iso-ne.com/"/>')
        return Response(200, xml.encode(), "application/xml")
    return Response(200, json.dumps(ws_json(wrapper, records or [])).encode(), "application/json")


def iter_ws_paths(dataset: str, day: date, stage: str = "final") -> Iterator[str]:
    """Web Services paths of a dataset's day (without ``/api/v1.1/``), as the adapter requests them."""
    if dataset == "lmp_dam":
        yield f"hourlylmp/da/final/day/{day:%Y%m%d}"
    elif dataset == "lmp_rt60m":
        yield f"hourlylmp/rt/{stage}/day/{day:%Y%m%d}"
    elif dataset == "lmp_rt5m":
        for h in sorted({local(t).hour for t in steps(*day_bounds(day), HOUR)}):
            yield f"fiveminutelmp/{stage}/day/{day:%Y%m%d}/starthour/{h:02d}"
    elif dataset == "as_rt5m":
        yield f"fiveminutereserveprice/final/day/{day:%Y%m%d}"
    elif dataset == "load_actual":
        yield f"fiveminutesystemload/day/{day:%Y%m%d}"
    elif dataset == "load_forecast":
        yield f"hourlyloadforecast/all/day/{day:%Y%m%d}"
    elif dataset == "fuel_mix":
        yield f"genfuelmix/day/{day:%Y%m%d}"
    else:
        raise KeyError(dataset)
