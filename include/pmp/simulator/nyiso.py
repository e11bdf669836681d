"""NYISO in the simulator: the public MIS tree of ``mis.nyiso.com``, served at ``/nyiso/mis``.

* ``/public/{page}list.htm``: P-list index pages (recent daily CSVs and every monthly archive, each
  with its "Last Updated" time in Eastern time with an EDT/EST suffix).
* ``/public/csv/{dir}/{YYYYMMDD}{suffix}.csv``: daily CSVs, only for the last ``PMP_SIM_NYISO_CSV_DAYS``
  (default 10) local days; older days answer 404 like the real site.
* ``/public/csv/{dir}/{YYYYMM}01{suffix}_csv.zip``: monthly archives of the daily files that are final;
  the current month's archive is partial. Members are the daily files byte for byte, stamped with the
  file's last modification time (local time, as zip stores it).

Layouts follow the reference and the real samples: CRLF line endings and a final CRLF; damlbmp,
damasp, rtasp and rtfuelmix unquoted; realtime, rtlbmp, pal, palIntegrated and isolf quoted (numbers
never quoted); LBMP files without a Time Zone column list the fall-back hour twice.

Publication cadence against the simulator clock: day-ahead files (damlbmp, damasp) for day D appear
on D-1 at about 10:30; the 5-minute RTD files (realtime, rtasp, rtfuelmix) get each interval a minute
or two after it ends, pal each reading about a minute after it is taken, the hourly files (rtlbmp,
palIntegrated) each hour about five minutes after it ends; isolf for day X is issued once on X at about
05:45. Today's ``realtime`` files end with RTC 15-minute advisory rows after the latest RTD interval,
today's ``pal`` lists a reading's rows with an empty ``Load`` from the moment it is taken until its
values arrive, and some days carry off-schedule RTD stamps (``04:04:18``) in realtime and pal.
Fault ``nyiso_bad_listing`` serves the next P-list page with "Last Updated" times the hook cannot read.

Data are deterministic for any date since 2019-01-01, and DST days are exact (23/25 hours).
``PMP_SIM_NYISO_GENERATORS`` sets how many generators the ``*_gen`` files list (default 4, plus
the reference bus).
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from pmp.simulator.server import Request, Response, plugin, register_faults
from pmp.validate import env_number

ET = ZoneInfo("America/New_York")
FIRST_DAY = date(2019, 1, 1)
CRLF = "\r\n"

register_faults("nyiso_bad_row", "nyiso_missing_file", "nyiso_bad_listing")

ZONES = [("CAPITL", 61757), ("CENTRL", 61754), ("DUNWOD", 61760), ("GENESE", 61753), ("HUD VL", 61758),
         ("LONGIL", 61762), ("MHK VL", 61756), ("MILLWD", 61759), ("N.Y.C.", 61761), ("NORTH", 61755),
         ("WEST", 61752)]
PROXIES = [("H Q", 61844), ("NPX", 61845), ("O H", 61846), ("PJM", 61847)]
ZONAL = sorted(ZONES + PROXIES)  # the real files list names alphabetically
ZONE_LOAD = {"CAPITL": 1250, "CENTRL": 1700, "DUNWOD": 650, "GENESE": 1000, "HUD VL": 1050, "LONGIL": 2300,
             "MHK VL": 850, "MILLWD": 300, "N.Y.C.": 5800, "NORTH": 600, "WEST": 1750}
ISOLF_COLUMNS = ["Capitl", "Centrl", "Dunwod", "Genese", "Hud Vl", "Longil", "Mhk Vl", "Millwd", "N.Y.C.",
                 "North", "West"]
FUELS = ["Dual Fuel", "Natural Gas", "Nuclear", "Other Fossil Fuels", "Other Renewables", "Wind", "Hydro"]
FUEL_MW = {"Dual Fuel": 4200, "Natural Gas": 3300, "Nuclear": 3100, "Other Fossil Fuels": 40,
           "Other Renewables": 320, "Wind": 1400, "Hydro": 2900}
RESERVE_REGION = {"WEST": "W", "GENESE": "W", "CENTRL": "W", "NORTH": "W", "MHK VL": "W", "CAPITL": "E",
                  "HUD VL": "E", "MILLWD": "E", "DUNWOD": "E", "N.Y.C.": "NYC", "LONGIL": "LI"}
AS_DAM = ["10 Min Spinning Reserve ($/MWHr)", "10 Min Non-Synchronous Reserve ($/MWHr)",
          "30 Min Operating Reserve ($/MWHr)", "NYCA Regulation Capacity ($/MWHr)"]
AS_RT = [*AS_DAM, "NYCA Regulation Movement ($/MW)"]
LBMP_HEADER = ["Time Stamp", "Name", "PTID", "LBMP ($/MWHr)", "Marginal Cost Losses ($/MWHr)",
               "Marginal Cost Congestion ($/MWHr)"]


def generators() -> list[tuple[str, int]]:
    n = env_number("PMP_SIM_NYISO_GENERATORS", 4)
    gens = [(f"SIM_GEN_{i:03d}", 323500 + i) for i in range(1, n + 1)]
    return [*gens, ("NYISO_LBMP_REFERENCE", 24008)]


# ------------------------------------------------------------------ time
def day_bounds(day: date) -> tuple[datetime, datetime]:
    s = datetime(day.year, day.month, day.day, tzinfo=ET).astimezone(UTC)
    n = day + timedelta(days=1)
    return s, datetime(n.year, n.month, n.day, tzinfo=ET).astimezone(UTC)


def local(t: datetime) -> datetime:
    return t.astimezone(ET)


def tz_label(t: datetime) -> str:
    return "EDT" if local(t).dst() else "EST"


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_seed(*parts))


def _cents(c: int) -> str:
    return f"{c / 100:.2f}"


def _trim(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def _shape(t: datetime) -> float:
    lt = local(t)
    return 1 + 0.25 * math.sin((lt.hour + lt.minute / 60 - 9) / 24 * 2 * math.pi)


# ------------------------------------------------------------------ file families
@dataclass(frozen=True)
class Family:
    directory: str
    suffix: str
    page: str
    title: str
    header: list[str]
    quoted: bool
    stamp: str  # "start", "end" or "reading"
    minutes: int
    time_fmt: str
    tz_column: bool
    schedule: str  # "dam", "rtd", "reading", "hourly", "isolf"
    rows: Callable[[Family, date, datetime, datetime, random.Random], list[str]]
    off_schedule: bool = False

    def daily_name(self, day: date) -> str:
        return f"{day:%Y%m%d}{self.suffix}.csv"

    def monthly_name(self, day: date) -> str:
        return f"{day:%Y%m}01{self.suffix}_csv.zip"

    def label(self, t: datetime) -> list[str]:
        cells = [local(t).strftime(self.time_fmt)]
        if self.tz_column:
            cells.append(tz_label(t))
        return cells

    def line(self, cells: list[str], quoted: int) -> str:
        """``quoted`` leading cells (the time stamp, time zone and names) are quoted in quoted files."""
        if self.quoted:
            cells = [f'"{c}"' if i < quoted else c for i, c in enumerate(cells)]
        return ",".join(cells)

    def header_line(self) -> str:
        return ",".join(f'"{h}"' for h in self.header) if self.quoted else ",".join(self.header)


def _lbmp_rows(locations: Callable[[], list[tuple[str, int]]], kind: str) -> Callable:
    def rows(fam: Family, day: date, stamp_at: datetime, start: datetime, rng: random.Random) -> list[str]:
        energy = int(2600 * _shape(start) + rng.gauss(0, 250 if kind == "RT" else 120))
        if rng.random() < 0.004:
            energy *= 6  # scarcity spike
        label = fam.label(stamp_at)
        out = []
        for name, ptid in locations():
            loss = int(energy * (_seed("loss", name) % 900 - 300) / 10_000)
            congestion = 0 if rng.random() < 0.7 else -int(abs(rng.gauss(0, 300)) * (2 if name == "N.Y.C." else 1))
            lbmp = energy + loss - congestion  # NYISO: LBMP = energy + losses - congestion (sign quirk)
            out.append(fam.line([*label, name, str(ptid), _cents(lbmp), _cents(loss),
                                 _cents(congestion)], 2))
        return out

    return rows


def _as_rows(fam: Family, day: date, stamp_at: datetime, start: datetime, rng: random.Random) -> list[str]:
    regions = {r: (int(abs(rng.gauss(300, 250))), int(abs(rng.gauss(40, 60)))) for r in ("W", "E", "NYC", "LI")}
    reg_capacity, movement = int(abs(rng.gauss(900, 300))), int(abs(rng.gauss(20, 10)))
    label = fam.label(stamp_at)
    out = []
    for name, ptid in ZONES:
        spin, nsync = regions[RESERVE_REGION[name]]
        prices = [spin, nsync, min(nsync, spin), reg_capacity] + ([movement] if len(fam.header) > 8 else [])
        out.append(fam.line([*label, name, str(ptid), *map(_cents, prices)], 3))
    return out


def _pal_rows(integrated: bool) -> Callable:
    def rows(fam: Family, day: date, stamp_at: datetime, start: datetime, rng: random.Random) -> list[str]:
        out, label, shape = [], fam.label(stamp_at), _shape(start)
        for name, ptid in ZONES:
            v = ZONE_LOAD[name] * shape * (1 + rng.gauss(0, 0.01))
            out.append(fam.line([*label, name, str(ptid), _trim(v, 4 if integrated else 1)], 3))
        return out

    return rows


def _fuel_rows(fam: Family, day: date, stamp_at: datetime, start: datetime, rng: random.Random) -> list[str]:
    label, shape = fam.label(stamp_at), _shape(start)
    return [fam.line([*label, fuel, f"{FUEL_MW[fuel] * shape * (1 + rng.gauss(0, 0.02)):.1f}"], 0) for fuel in FUELS]


def _isolf_rows(fam: Family, day: date, stamp_at: datetime, start: datetime, rng: random.Random) -> list[str]:
    shape = _shape(start)
    zones = [round(ZONE_LOAD[z.upper()] * shape * (1 + rng.gauss(0, 0.02))) for z in ISOLF_COLUMNS]
    return [fam.line([*fam.label(stamp_at), *map(str, zones), str(sum(zones))], 1)]


def _family(directory: str, suffix: str, page: str, title: str, header: list[str], quoted: bool, stamp: str,
            minutes: int, seconds: bool, tz_column: bool, schedule: str, rows: Callable, **kw: bool) -> Family:
    fmt = "%m/%d/%Y %H:%M:%S" if seconds else "%m/%d/%Y %H:%M"
    return Family(directory, suffix, page, title, header, quoted, stamp, minutes, fmt, tz_column, schedule, rows, **kw)


FAMILIES = {
    f.suffix: f
    for f in (
        _family("damlbmp", "damlbmp_zone", "P-2A", "Day-Ahead Market LBMP - Zonal", LBMP_HEADER, False,
                "start", 60, False, False, "dam", _lbmp_rows(lambda: ZONAL, "DA")),
        _family("damlbmp", "damlbmp_gen", "P-2B", "Day-Ahead Market LBMP - Generator", LBMP_HEADER, False,
                "start", 60, False, False, "dam", _lbmp_rows(generators, "DA")),
        _family("realtime", "realtime_zone", "P-24A", "Real-Time Market LBMP - Zonal", LBMP_HEADER, True,
                "end", 5, True, False, "rtd", _lbmp_rows(lambda: ZONAL, "RT"), off_schedule=True),
        _family("realtime", "realtime_gen", "P-24B", "Real-Time Market LBMP - Generator", LBMP_HEADER, True,
                "end", 5, True, False, "rtd", _lbmp_rows(generators, "RT"), off_schedule=True),
        _family("rtlbmp", "rtlbmp_zone", "P-4A", "Real-Time Market Hourly LBMP - Zonal", LBMP_HEADER, True,
                "start", 60, False, False, "hourly", _lbmp_rows(lambda: ZONAL, "RT")),
        _family("rtlbmp", "rtlbmp_gen", "P-4B", "Real-Time Market Hourly LBMP - Generator", LBMP_HEADER, True,
                "start", 60, False, False, "hourly", _lbmp_rows(generators, "RT")),
        _family("damasp", "damasp", "P-5", "Day-Ahead Market Ancillary Service Prices",
                ["Time Stamp", "Time Zone", "Name", "PTID", *AS_DAM], False, "start", 60, False, True, "dam",
                _as_rows),
        _family("rtasp", "rtasp", "P-6B", "Real-Time Market Ancillary Service Prices",
                ["Time Stamp", "Time Zone", "Name", "PTID", *AS_RT], False, "end", 5, False, True, "rtd", _as_rows),
        _family("pal", "pal", "P-58B", "Real-Time Actual Load", ["Time Stamp", "Time Zone", "Name", "PTID", "Load"],
                True, "reading", 5, True, True, "reading", _pal_rows(False), off_schedule=True),
        _family("palIntegrated", "palIntegrated", "P-58C", "Integrated Real-Time Actual Load",
                ["Time Stamp", "Time Zone", "Name", "PTID", "Integrated Load"], True, "start", 60, True, True,
                "hourly", _pal_rows(True)),
        _family("isolf", "isolf", "P-7", "ISO Load Forecast", ["Time Stamp", *ISOLF_COLUMNS, "NYISO"], True,
                "start", 60, False, False, "isolf", _isolf_rows),
        _family("rtfuelmix", "rtfuelmix", "P-63", "Real-Time Fuel Mix",
                ["Time Stamp", "Time Zone", "Fuel Category", "Gen MW"], False, "end", 5, True, True, "rtd",
                _fuel_rows),
    )
}
BY_PAGE = {f.page: f for f in FAMILIES.values()}


# ------------------------------------------------------------------ documents
def issue_time(day: date) -> datetime:
    """isolf for day X is issued once, on X at about 05:45 local."""
    return datetime(day.year, day.month, day.day, 5, 40, tzinfo=ET).astimezone(UTC) + timedelta(
        seconds=_seed("isolf", day) % 600)


def dam_time(day: date) -> datetime:
    """Day-ahead results for D post on D-1 at about 10:30 local."""
    prev = day - timedelta(days=1)
    return datetime(prev.year, prev.month, prev.day, 10, 30, tzinfo=ET).astimezone(UTC) + timedelta(
        seconds=_seed("dam", day) % 300)


def _off_schedule(fam: Family, day: date) -> list[datetime]:
    """Off-schedule RTD runs: on about a third of the days, 1-4 extra stamps with seconds."""
    if not fam.off_schedule:
        return []
    rng = _rng("offsched", day)
    if rng.random() > 0.35:
        return []
    start, end = day_bounds(day)
    slots = int((end - start).total_seconds() // 300)  # never the first or last slot of the day
    return sorted(start + timedelta(seconds=300 * rng.randrange(1, slots - 1) + rng.randrange(1, 299))
                  for _ in range(rng.randint(1, 4)))


def posted(fam: Family, day: date, t: datetime, stamp_at: datetime, regular: bool) -> datetime:
    """When the row for the interval starting ``t`` (stamped ``stamp_at``) appears in the file."""
    if fam.schedule == "dam":
        return dam_time(day)
    if fam.schedule == "isolf":
        return issue_time(day)
    if not regular:
        return stamp_at + timedelta(seconds=60)
    if fam.schedule == "hourly":
        return t + timedelta(hours=1, seconds=240 + _seed("hr", t.timestamp()) % 120)
    if fam.schedule == "reading":
        return t + timedelta(seconds=45 + _seed("rd", t.timestamp()) % 45)
    return stamp_at + timedelta(seconds=60 + _seed("rtd", stamp_at.timestamp()) % 60)


def _span(fam: Family, day: date) -> tuple[datetime, datetime]:
    start, end = day_bounds(day)
    if fam.schedule == "isolf":  # the file issued on X covers X 00:00 .. X+5 23:00
        end = day_bounds(day + timedelta(days=5))[1]
    return start, end


def _regular(fam: Family, t: datetime) -> tuple[datetime, datetime, bool]:
    """(interval start, stamp instant, regular) of the scheduled row for the interval starting ``t``."""
    return t, (t + timedelta(minutes=fam.minutes) if fam.stamp == "end" else t), True


@lru_cache(maxsize=128)
def day_rows(suffix: str, day: date) -> tuple[tuple[datetime, datetime, str, bool], ...]:
    """Every row of a family's file for ``day``: (publication time, stamp instant, CSV line, regular),
    in file order (stamp, then name)."""
    fam = FAMILIES[suffix]
    start, end = _span(fam, day)
    step = timedelta(minutes=fam.minutes)
    stamps = []
    t = start
    while t < end:
        stamps.append(_regular(fam, t))
        t += step
    stamps += [(x, x, False) for x in _off_schedule(fam, day)]
    stamps.sort(key=lambda s: s[1])
    out: list[tuple[datetime, datetime, str, bool]] = []
    for t, stamp_at, regular in stamps:
        if regular:
            rng = _rng(fam.directory, t.timestamp(), day if fam.schedule == "isolf" else "")
        else:
            rng = _rng(fam.directory, "off", stamp_at.timestamp())
        when = posted(fam, day, t, stamp_at, regular)
        out += [(when, stamp_at, line, regular) for line in fam.rows(fam, day, stamp_at, t, rng)]
    return tuple(out)


def first_time(fam: Family, day: date) -> datetime:
    start, _ = _span(fam, day)
    return posted(fam, day, *_regular(fam, start))


def final_time(fam: Family, day: date) -> datetime:
    _, end = _span(fam, day)
    return posted(fam, day, *_regular(fam, end - timedelta(minutes=fam.minutes)))


def _rtc_tail(fam: Family, day: date, last_end: datetime) -> list[str]:
    """RTC 15-minute advisory rows after the latest RTD interval of today's file (about two hours)."""
    out: list[str] = []
    day_end = day_bounds(day)[1]
    q = last_end + timedelta(minutes=15 - local(last_end).minute % 15)
    while q <= min(last_end + timedelta(hours=2), day_end):
        out += fam.rows(fam, day, q, q - timedelta(minutes=15), _rng("rtc", last_end.timestamp(), q.timestamp()))
        q += timedelta(minutes=15)
    return out


def _placeholder(fam: Family, row: tuple[datetime, datetime, str, bool], now: datetime) -> str | None:
    """pal lists a reading's rows as soon as it is taken, with an empty ``Load``, and fills the values
    in when they arrive (the real sample ends with such a stamp: ``"09/10/2014 19:35:00","EDT",
    "CAPITL",61757,``). So today's file fetched between a reading and its values ends with empty
    placeholders for the newest stamp."""
    posted_at, stamp_at, line, regular = row
    if fam.suffix == "pal" and regular and stamp_at <= now < posted_at:
        return line.rsplit(",", 1)[0] + ","
    return None


def content(fam: Family, day: date, now: datetime) -> tuple[str, datetime] | None:
    """The daily file as NYISO serves it at ``now`` (None before its first row is published), and
    its last modification time."""
    rows = day_rows(fam.suffix, day)
    lines: list[str] = []
    modified: datetime | None = None
    shown = 0
    for row in rows:
        if row[0] <= now:
            lines.append(row[2])
            shown += 1
            modified = row[0] if modified is None else max(modified, row[0])
        elif (empty := _placeholder(fam, row, now)) is not None:
            lines.append(empty)
            modified = row[1] if modified is None else max(modified, row[1])
    if not shown or modified is None:
        return None
    if fam.suffix.startswith("realtime_") and shown < len(rows):
        lines += _rtc_tail(fam, day, max(r[1] for r in rows if r[3] and r[0] <= now))
    return fam.header_line() + CRLF + "".join(line + CRLF for line in lines), modified


def modified_at(fam: Family, day: date, now: datetime) -> datetime:
    """The daily file's last modification at ``now`` (it must exist by then)."""
    final = final_time(fam, day)
    if final <= now:
        return final
    made = content(fam, day, now)
    assert made is not None, f"{fam.daily_name(day)} does not exist at {now}"
    return made[1]


def final_content(fam: Family, day: date) -> str:
    text = content(fam, day, final_time(fam, day))
    assert text is not None
    return text[0]


def csv_days() -> int:
    return env_number("PMP_SIM_NYISO_CSV_DAYS", 10)


def daily_listed(fam: Family, day: date, now: datetime) -> bool:
    today = local(now).date()
    return day >= max(FIRST_DAY, today - timedelta(days=csv_days())) and first_time(fam, day) <= now


def month_days(month: date) -> list[date]:
    d, out = month.replace(day=1), []
    while d.month == month.month:
        out.append(d)
        d += timedelta(days=1)
    return out


def archive_members(fam: Family, month: date, now: datetime) -> list[date]:
    """Days of the month whose file is final: the current month's archive is partial."""
    if month.replace(day=1) < FIRST_DAY.replace(day=1):
        return []
    return [d for d in month_days(month) if d >= FIRST_DAY and final_time(fam, d) <= now]


def archive_bytes(fam: Family, month: date, now: datetime, bad_row: bool = False) -> tuple[bytes, datetime] | None:
    days = archive_members(fam, month, now)
    if not days:
        return None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in days:
            t = local(final_time(fam, d))
            info = zipfile.ZipInfo(fam.daily_name(d), (t.year, t.month, t.day, t.hour, t.minute, t.second))
            info.compress_type = zipfile.ZIP_DEFLATED
            text = final_content(fam, d)
            zf.writestr(info, _corrupt_row(text) if bad_row and d == days[0] else text)
    return buf.getvalue(), max(final_time(fam, d) for d in days)


def _corrupt_row(text: str) -> str:
    """A value NYISO would never publish, on the third data line (fault ``nyiso_bad_row``)."""
    lines = text.split(CRLF)
    cells = lines[3].split(",")
    cells[-1] = "#VALUE!"
    lines[3] = ",".join(cells)
    return CRLF.join(lines)


# ------------------------------------------------------------------ P-list pages
def _updated(t: datetime, bad: bool = False) -> str:
    """The "Last Updated" cell: Eastern time with its EDT/EST label; with the fault
    ``nyiso_bad_listing`` in a format the hook does not know (ISO style, no label)."""
    lt = local(t)
    return f"{lt:%Y-%m-%d %H:%M:%S}" if bad else f"{lt:%m/%d/%Y %H:%M:%S} {tz_label(t)}"


def plist(fam: Family, now: datetime, bad_times: bool = False) -> str:
    today = local(now).date()
    rows = []
    for i in range(-1, csv_days() + 1):
        d = today - timedelta(days=i)
        if daily_listed(fam, d, now):
            rows.append(f'<TR><TD><A HREF="csv/{fam.directory}/{fam.daily_name(d)}">{d:%m-%d-%Y}</A></TD>'
                        f"<TD>{_updated(modified_at(fam, d, now), bad_times)}</TD></TR>")
    zips = []
    month = today.replace(day=1)
    while month >= FIRST_DAY:
        days = archive_members(fam, month, now)
        if days:
            updated = max(final_time(fam, d) for d in days)
            zips.append(f'<TR><TD><A HREF="csv/{fam.directory}/{fam.monthly_name(month)}">{month:%m-%Y}</A></TD>'
                        f"<TD>{_updated(updated, bad_times)}</TD></TR>")
        month = (month - timedelta(days=1)).replace(day=1)
    return CRLF.join([
        "<HTML>", f"<HEAD><TITLE>{fam.title}</TITLE></HEAD>", "<BODY>",
        '<TABLE BORDER="1" CELLPADDING="2">',
        f'<TR><TD COLSPAN="2"><B>{fam.title} ({fam.page})</B></TD></TR>',
        '<TR><TD COLSPAN="2">Times are Eastern Prevailing Time</TD></TR>',
        "<TR><TH>CSV Files</TH><TH>Last Updated</TH></TR>", *rows, "</TABLE>", "<BR>",
        '<TABLE BORDER="1" CELLPADDING="2">',
        '<TR><TD COLSPAN="2"><B>Archived Files</B></TD></TR>',
        '<TR><TD COLSPAN="2">One zip file per month of daily CSV files</TD></TR>',
        "<TR><TH>Zip Files</TH><TH>Last Updated</TH></TR>", *zips, "</TABLE>", "</BODY>", "</HTML>", "",
    ])


# ------------------------------------------------------------------ HTTP
NOT_FOUND = (b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
             b"<p>The requested URL was not found on this server.</p></body></html>")


def _not_found() -> Response:
    return Response(404, NOT_FOUND, "text/html")


def _file(body: bytes, content_type: str, modified: datetime) -> Response:
    return Response(200, body, content_type, {"Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True)})


@plugin("/nyiso/mis")
def mis(req: Request) -> Response:
    if req.sim.fire("rate_limit"):
        return Response(429, b"<html><body><h1>Too Many Requests</h1></body></html>", "text/html",
                        {"Retry-After": "1"})
    now = req.sim.now()
    path = req.path
    if path.startswith("/public/") and path.endswith("list.htm"):
        fam = BY_PAGE.get(path[len("/public/"):-len("list.htm")])
        if fam is None:
            return _not_found()
        return Response(200, plist(fam, now, bad_times=req.sim.fire("nyiso_bad_listing")).encode(), "text/html")
    parts = path.split("/")
    if len(parts) != 5 or parts[:3] != ["", "public", "csv"]:
        return _not_found()
    directory, name = parts[3], parts[4]
    stem = name.removesuffix("_csv.zip").removesuffix(".csv")
    fam = FAMILIES.get(stem[8:])
    if fam is None or fam.directory != directory or not stem[:8].isdigit():
        return _not_found()
    try:
        day = date(int(stem[:4]), int(stem[4:6]), int(stem[6:8]))
    except ValueError:
        return _not_found()
    if name.endswith("_csv.zip"):
        if day.day != 1:
            return _not_found()
        made = archive_bytes(fam, day, now, bad_row=req.sim.fire("nyiso_bad_row"))
        if made is None:
            return _not_found()
        data, modified = made
        if req.sim.fire("corrupt_zip"):
            data = data[: len(data) // 2]
        return _file(data, "application/zip", modified)
    if day < FIRST_DAY or not daily_listed(fam, day, now) or req.sim.fire("nyiso_missing_file"):
        return _not_found()
    text = content(fam, day, now)
    if text is None:
        return _not_found()
    body = _corrupt_row(text[0]) if req.sim.fire("nyiso_bad_row") else text[0]
    return _file(body.encode(), "text/csv", text[1])
