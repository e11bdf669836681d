"""MISO in the simulator: market reports, the public API and Data Exchange, in MISO's formats.

* ``/miso/docs/marketreports/{name}`` (``docs.misoenergy.org``): the market reports, GET and HEAD with
  ``Last-Modified``; 404 until published (simulator clock):
  - ``YYYYMMDD_da_expost_lmp.csv`` / ``_da_exante_lmp.csv`` (D-1 15:00 EST), ``_rt_lmp_prelim.csv``
    (D+1 06:00), ``_rt_lmp_final.csv`` (D+5 10:00): the 5-line preamble of the samples (title, date,
    blank, ``,,,All Hours-Ending are Eastern Standard Time (EST)``), ``Node,Type,Value,HE 1..HE 24``,
    LMP block then MCC then MLC; DA numbers without leading zero (``.61``) and LF, RT numbers with
    two decimals, an unpadded date line (``9/26/2026``) and CRLF;
  - ``YYYYMMDD_asm_expost_damcp.csv`` (D-1 15:00): a zonal table ``Zone,MCP Type,HE 1..HE 24``, two
    blank lines, a per-Pnode table (layout after a third-party parser: no real copy exists);
  - ``YYYYMMDD_5MIN_LMP.zip`` (Mondays 10:00; the file of Monday M holds M-14 .. M-8): one CSV,
    4 preamble lines, ``MKTHOUR_EST,PNODENAME,LMP,CON_LMP,LOSS_LMP``, a blank line and a footer;
  - ``YYYYMMDD_5min_expost_mcp.xlsx`` (the same weekly schedule): 3 title rows, ``Time (EST)``,
    ``Preliminary / Final``, ``Zone``, one ``RT MCP …`` column per product, a footer row;
  - ``YYYYMMDD_df_al.xls`` (P 07:00; BIFF8 as the real sample): blocks per market day P-1 .. P+5,
    actuals for P-1 only, MTLF for every day, disclaimer row;
  - ``historical_gen_fuel_mix_YYYY.xlsx`` (January 5 of the next year, 12:00).
* ``/miso/api/api/…`` (``public-api.misoenergy.org``): ``MarketPricing/GetRealTimeFiveMinExPost/
  {Current,Rolling,Previous}`` (``{"headers": […], "data": [[…strings…]]}``, interval start, nodes in
  arbitrary order; Rolling = the trailing 8 hours), ``MarketPricing/GetAncillaryServicesMcp``,
  ``FuelMix``, ``RealTimeTotalLoad``: compact JSON without a final newline, numbers as strings. Each
  5-minute interval is out 2 minutes after it ends. MISO asks for one call a minute: a client calling
  sooner gets 429 with ``Retry-After`` (``PMP_SIM_MISO_API_PER_MINUTE``, default 1).
* ``/miso/dx/pricing/v1/real-time/{YYYY-MM-DD}/lmp-expost`` (Data Exchange): needs
  ``Ocp-Apim-Subscription-Key: sim-miso-key`` (401 otherwise), ``pageNumber`` paging
  (``PMP_SIM_MISO_DX_PAGE_SIZE``, default 1000), 100 calls a minute (429).

Faults: ``miso_challenge`` (403 and an HTML bot-challenge page, on any MISO host),
``miso_html_200`` (a 200 HTML page instead of the file), ``miso_bad_value`` (the next report CSV
carries a price MISO never writes). Data are deterministic for any date since 2019-01-01. Preliminary
5-minute and hourly prices differ from the finals in about one interval in eight (price corrections).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import threading
import time
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime
from functools import lru_cache

from pmp.simulator.server import Request, Response, plugin, register_faults
from pmp.validate import env_number, env_text

EST = timezone(timedelta(hours=-5), "EST")
FIRST_DAY = date(2019, 1, 1)
STR_START = date(2021, 12, 1)  # short-term reserve cleared from this day on
DX_KEY = "sim-miso-key"

register_faults("miso_challenge", "miso_html_200", "miso_bad_value")

NODES = [("AECI", "Interface"), ("ALTE.ALTE", "Loadzone"), ("ARKANSAS.HUB", "Hub"), ("CIN.PSI", "Loadzone"),
         ("ILLINOIS.HUB", "Hub"), ("INDIANA.HUB", "Hub"), ("LEPA.LEPA", "Loadzone"), ("LGEE", "Interface"),
         ("LOUISIANA.HUB", "Hub"), ("MGE.AZ", "Hub"), ("MHEB", "Interface"), ("MICHIGAN.HUB", "Hub"),
         ("MINN.HUB", "Hub"), ("MS.HUB", "Hub"), ("ONT", "Interface"), ("PJMC", "Interface"), ("SOCO", "Interface"),
         ("SWPP", "Interface"), ("TEXAS.HUB", "Hub"), ("TVA", "Interface"), ("WEC.AZ", "Hub"), ("WPS.AZ", "Hub")]
# product code, ASM report MCP type, weekly workbook column, API field
PRODUCTS = [("REG", "Regulation", "RT MCP Regulation", "GenRegMCP"), ("SPIN", "Spinning", "RT MCP Spin", "GenSpinMCP"),
            ("SUPP", "Supplemental", "RT MCP Supp", "GenSuppMCP"), ("STR", "STR", "RT MCP STR", "StrMcp"),
            ("RCUP", "Ramp Capability Up", "RT MCP Ramp Up", "RcpUpMcp"),
            ("RCDOWN", "Ramp Capability Down", "RT MCP Ramp Down", "RcpDownMcp")]
AS_BASE = {"REG": 900, "SPIN": 150, "SUPP": 60, "STR": 20, "RCUP": 30, "RCDOWN": 5}  # cents
LRZ = [("LRZ1", 0.15), ("LRZ2_7", 0.24), ("LRZ3_5", 0.14), ("LRZ4", 0.065), ("LRZ6", 0.145), ("LRZ8_9_10", 0.26)]
FUELS = [("Coal", 0.30), ("Natural Gas", 0.34), ("Nuclear", 0.12), ("Wind", 0.13), ("Solar", 0.05),
         ("Battery Storage", 0.002), ("Other", 0.028), ("Imports", 0.03)]
REGIONS = [("Central", 0.45), ("North", 0.25), ("South", 0.30)]
DISCLAIMER = ("MISO MAKES NO REPRESENTATIONS OR WARRANTIES OF ANY KIND, EXPRESS OR IMPLIED, WITH RESPECT TO THE "
              "ACCURACY OR ADEQUACY OF THE INFORMATION CONTAINED HEREIN.")
# the df_al report's last row, word for word as in the real 20250310_df_al.xls
DF_AL_DISCLAIMER = ("MISO MAKES NO REPRESENTATIONS OR WARRANTIES OF ANY KIND, EXPRESS OR IMPLIED, WITH RESPECT TO THE "
                    "ACCURACY OR ADEQUACY OF THE INFORMATION CONTAINED HEREIN. MISO SHALL HAVE NO LIABILITY TO RECIPIENTS "
                    "OF THIS INFORMATION OR THIRD PARTIES FOR THE CONSEQUENCES ARISING FROM ERRORS OR DISCREPANCIES IN THIS "
                    "INFORMATION, FOR RECIPIENTS' OR THIRD PARTIES' RELIANCE UPON SUCH INFORMATION, OR FOR ANY CLAIM, LOSS "
                    "OR DAMAGE OF ANY KIND OR NATURE WHATSOEVER ARISING OUT OF OR IN CONNECTION WITH (i) THE DEFICIENCY OR "
                    "INADEQUACY OF THIS INFORMATION FOR ANY PURPOSE, WHETHER OR NOT KNOWN OR DISCLOSED TO MISO, (ii) ANY "
                    "ERROR OR DISCREPANCY IN THIS INFORMATION, (iii) THE USE OF THIS INFORMATION, OR (iv) ANY LOSS OF "
                    "BUSINESS OR OTHER CONSEQUENTIAL LOSS OR DAMAGE WHETHER OR NOT RESULTING FROM ANY OF THE FOREGOING.")
CHALLENGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head><body>"
             b"<noscript>Enable JavaScript and cookies to continue</noscript><div id=\"challenge-running\">"
             b"Checking if the site connection is secure</div></body></html>")


# ------------------------------------------------------------------ time and randomness
def est(day: date, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=EST).astimezone(UTC) + timedelta(minutes=minutes)


def at(day: date, days: int, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return est(day + timedelta(days=days), h * 60 + m)


_MASK = (1 << 64) - 1


def _mix(*parts: int) -> int:
    """splitmix64 over integer parts: a cheap deterministic hash (millions of values per file)."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK
        h ^= h >> 29
    return h


def _u(*parts: int) -> float:
    """Uniform in [0, 1) from integer parts."""
    return _mix(*parts) / 2.0**64


def _iv(lo: int, hi: int, *parts: int) -> int:
    return lo + _mix(*parts) % (hi - lo + 1)


def _m(t: datetime) -> int:
    """Minutes since the epoch: the integer key of an instant."""
    return int(t.timestamp()) // 60


_NAMES: dict[str, int] = {}


def _k(name: str) -> int:
    """A stable small integer for a name (node, product, fuel, market)."""
    key = _NAMES.get(name)
    if key is None:
        key = _NAMES[name] = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=6).digest(), "big")
    return key


class _Rnd:
    """random.Random-like helpers over :func:`_mix` (deterministic per key)."""

    def __init__(self, *parts: int) -> None:
        self.parts, self.n = parts, 0

    def _next(self) -> int:
        self.n += 1
        return _mix(*self.parts, self.n)

    def random(self) -> float:
        return self._next() / 2.0**64

    def randint(self, lo: int, hi: int) -> int:
        return lo + self._next() % (hi - lo + 1)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.random()

    def shuffle(self, items: list) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self._next() % (i + 1)
            items[i], items[j] = items[j], items[i]


def _rng(*parts: object) -> _Rnd:
    return _Rnd(*(p if isinstance(p, int) else _m(p) if isinstance(p, datetime) else _k(str(p)) for p in parts))


def _shape(t: datetime) -> float:
    lt = t.astimezone(EST)
    return 1 + 0.3 * math.sin((lt.hour + lt.minute / 60 - 9) / 24 * 2 * math.pi)


def da_num(cents: int) -> str:
    """DA reports: no leading zero, no trailing zeros (``.61``, ``-.79``, ``0``, ``200``)."""
    s = f"{cents / 100:.2f}".rstrip("0").rstrip(".")
    s = s.replace("0.", ".", 1) if s.startswith("0.") else s.replace("-0.", "-.", 1)
    return "0" if s in ("", "-0", "-") else s


def rt_num(cents: int) -> str:
    return f"{cents / 100:.2f}"


# ------------------------------------------------------------------ prices (cents)
@lru_cache(maxsize=65536)
def _energy(market: str, minute: int) -> int:
    t = datetime.fromtimestamp(minute * 60, UTC)
    base = {"DAM": 2800, "DAM_EXANTE": 2790, "RT60M": 2900, "RT5M": 2900}[market]
    energy = int(base * _shape(t)) + _iv(-300, 300, _k(market if market != "DAM_EXANTE" else "DAM"), minute)
    if market == "DAM_EXANTE":
        energy += _iv(-40, 40, _k("exante"), minute)
    return energy


def lmp_parts(market: str, node: str, t: datetime, *, final: bool = True) -> tuple[int, int, int]:
    """(lmp, mcc, mlc) in cents; lmp = energy + mcc + mlc. ``final=False``: the preliminary price,
    which differs from the final in about one interval in eight."""
    minute = _m(t)
    energy = _energy(market, minute)
    h = _mix(_k(market), _k(node), minute)
    mcc = (h % 501) - 250 if (h >> 20) % 10 < 6 else 0
    mlc = ((h >> 40) % 241) - 120
    if market in ("RT5M", "RT60M") and not final and _u(_k("corr"), _k(market), minute) < 0.125:
        energy -= 75  # the preliminary energy price before MISO's correction
    return energy + mcc + mlc, mcc, mlc


def as_price(market: str, zone: int, product: str, t: datetime) -> int:
    r = _rng("as", market, zone, product, t)
    return max(0, int(AS_BASE[product] * _shape(t)) + r.randint(-AS_BASE[product] // 4, AS_BASE[product] // 4))


def products_on(day: date) -> list[tuple[str, str, str, str]]:
    return [p for p in PRODUCTS if p[0] != "STR" or day >= STR_START]


def system_load(t: datetime) -> float:
    """MW, interval starting at t."""
    return round(72000 * _shape(t) + _rng("load", t).uniform(-400, 400), 2)


def hourly_actual(area_share: float, start: datetime) -> float:
    return round(sum(system_load(start + timedelta(minutes=5 * i)) for i in range(12)) / 12 * area_share, 2)


def mtlf(area_share: float, start: datetime, issued: date | datetime) -> float:
    r = _rng("mtlf", start, str(issued))
    return float(round(72000 * _shape(start) * area_share * (1 + r.uniform(-0.02, 0.02))))


def fuel_mw(fuel: str, share: float, t: datetime) -> int:
    return int(78000 * share * _shape(t) * (1 + 0.1 * _u(_k(fuel), _m(t)) - 0.05))


# ------------------------------------------------------------------ publication
DAILY_DUE = {"da_expost_lmp": (-1, "15:00"), "da_exante_lmp": (-1, "15:00"), "asm_expost_damcp": (-1, "15:00"),
             "rt_lmp_prelim": (1, "06:00"), "rt_lmp_final": (5, "10:00"), "df_al": (0, "07:00")}
WEEKLY = ("5MIN_LMP", "5min_expost_mcp")
ANNUAL_FUEL = re.compile(r"historical_gen_fuel_mix_(\d{4})\.xlsx")
_DAILY = re.compile(r"(\d{8})_(da_expost_lmp|da_exante_lmp|rt_lmp_prelim|rt_lmp_final|asm_expost_damcp)\.csv|"
                    r"(\d{8})_(df_al)\.xls|(\d{8})_(5MIN_LMP)\.zip|(\d{8})_(5min_expost_mcp)\.xlsx")


def published(name: str) -> datetime | None:
    """When MISO posts a report (None: no such report)."""
    m = ANNUAL_FUEL.fullmatch(name)
    if m:
        year = int(m.group(1))
        return at(date(year + 1, 1, 1), 4, "12:00") if year >= FIRST_DAY.year else None
    m = _DAILY.fullmatch(name)
    if not m:
        return None
    groups = [g for g in m.groups() if g]
    day, kind = datetime.strptime(groups[0], "%Y%m%d").date(), groups[1]
    if kind in WEEKLY:
        if day.weekday() != 0 or day - timedelta(days=14) < FIRST_DAY - timedelta(days=6):
            return None
        return at(day, 0, "10:00")
    if day < FIRST_DAY:
        return None
    days, hhmm = DAILY_DUE[kind]
    return at(day, days, hhmm)


def weekly_days(monday: date) -> list[date]:
    return [monday - timedelta(days=14 - i) for i in range(7)]


# ------------------------------------------------------------------ report bodies
def lmp_report(kind: str, day: date, bad: bool = False) -> bytes:
    market = {"da_expost_lmp": "DAM", "da_exante_lmp": "DAM_EXANTE", "rt_lmp_final": "RT60M",
              "rt_lmp_prelim": "RT60M"}[kind]
    rt = kind.startswith("rt_")
    title = {"da_expost_lmp": "Day Ahead Market ExPost LMPs", "da_exante_lmp": "Day Ahead Market ExAnte LMPs"}.get(
        kind, "Realtime Market LMPs")
    num = rt_num if rt else da_num
    nl = "\r\n" if rt else "\n"
    date_line = f"{day.month}/{day.day}/{day.year}" if rt else f"{day:%m/%d/%Y}"
    lines = [title, date_line, "", ",,,All Hours-Ending are Eastern Standard Time (EST)",
             "Node,Type,Value," + ",".join(f"HE {h}" for h in range(1, 25))]
    parts = {node: [lmp_parts(market, node, est(day, 60 * h), final=kind != "rt_lmp_prelim") for h in range(24)]
             for node, _ in NODES}
    for k, value in enumerate(("LMP", "MCC", "MLC")):
        for node, ntype in NODES:
            cells = [num(p[k]) for p in parts[node]]
            if bad and k == 0 and node == NODES[0][0]:
                cells[2] = "n/a"
            lines.append(f"{node},{ntype},{value}," + ",".join(cells))
    return (nl.join(lines) + nl).encode()


def asm_report(day: date) -> bytes:
    nl = "\r\n"
    he = ",".join(f"HE {h}" for h in range(1, 25))
    lines = ["ASM Day Ahead Market ExPost MCPs", f"{day:%m/%d/%Y}", "",
             ",,,All Hours-Ending are Eastern Standard Time (EST)", f"Zone,MCP Type,{he}"]
    for zone in range(1, 9):
        for code, mcp_type, _, _ in products_on(day):
            lines.append(f"Zone {zone},{mcp_type}," + ",".join(
                rt_num(as_price("DAM", zone, code, est(day, 60 * h))) for h in range(24)))
    lines += ["", "", f"Pnode,Zone,MCP Type,{he}"]
    for node, zone in (("ALTE.ALTE", 2), ("CIN.PSI", 6)):
        for code, mcp_type, _, _ in products_on(day):
            lines.append(f"{node},{zone},{mcp_type}," + ",".join(
                rt_num(as_price("DAM", zone, code, est(day, 60 * h))) for h in range(24)))
    return (nl.join(lines) + nl).encode()


def _zip(member: str, data: bytes, when: datetime) -> bytes:
    buf = io.BytesIO()
    local = when.astimezone(EST)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(zipfile.ZipInfo(member, (local.year, local.month, local.day, local.hour, local.minute,
                                             local.second)), data, zipfile.ZIP_DEFLATED, 1)
    return buf.getvalue()


@lru_cache(maxsize=8)
def five_min_zip(monday: date) -> bytes:
    days = weekly_days(monday)
    out = io.StringIO()
    out.write("Real-Time 5 Minute Ex-Post LMPs (Final)\r\n")
    out.write(f"{days[0]:%m/%d/%Y} - {days[-1]:%m/%d/%Y}\r\n\r\n")
    out.write(",,,All Intervals are Eastern Standard Time (EST)\r\n")
    out.write("MKTHOUR_EST,PNODENAME,LMP,CON_LMP,LOSS_LMP\r\n")
    for day in days:
        for i in range(288):
            t = est(day, 5 * i)
            label = t.astimezone(EST).strftime("%m/%d/%Y %H:%M")
            for node, _ in NODES:
                lmp, mcc, mlc = lmp_parts("RT5M", node, t)
                out.write(f"{label},{node},{rt_num(lmp)},{rt_num(mcc)},{rt_num(mlc)}\r\n")
    out.write(f"\r\n{DISCLAIMER}\r\n")
    return _zip(f"{monday:%Y%m%d}_5MIN_LMP.csv", out.getvalue().encode(), at(monday, 0, "10:00"))


def _xlsx(rows: list[list[object]], when: datetime) -> bytes:
    from pmp.simulator.ercot import fast_xlsx

    width = max(len(r) for r in rows)
    padded = [list(r) + [None] * (width - len(r)) for r in rows]
    return fast_xlsx([("Sheet1", padded[0], iter(padded[1:]))], when.replace(tzinfo=None))  # type: ignore[arg-type]


@lru_cache(maxsize=8)
def as_weekly_xlsx(monday: date) -> bytes:
    days = weekly_days(monday)
    cols = [p[2] for p in PRODUCTS]
    rows: list[list[object]] = [["Real-Time 5-Minute Ex-Post ASM MCPs"], [f"{days[0]:%m/%d/%Y} - {days[-1]:%m/%d/%Y}"],
                                ["All times are Eastern Standard Time (EST)"],
                                ["Time (EST)", "Preliminary / Final", "Zone", *cols]]
    for day in days:
        present = {p[0] for p in products_on(day)}
        for i in range(288):
            t = est(day, 5 * i)
            label = t.astimezone(EST).strftime("%Y-%m-%d %I:%M:%S %p")
            for zone in range(1, 9):
                rows.append([label, "Final", f"Zone {zone}",
                             *[as_price("RT5M", zone, code, t) / 100 if code in present else None
                               for code, _, _, _ in PRODUCTS]])
    rows.append([DISCLAIMER])
    return _xlsx(rows, at(monday, 0, "10:00"))


@lru_cache(maxsize=4)
def _fuel_annual_xlsx(year: int, months: str) -> bytes:
    rows: list[list[object]] = [["Historical Generation Fuel Mix"], [f"{year}"],
                                ["Market Date", "HourEnding", "Region", "Fuel Type", "DA Cleared UDS Generation",
                                 "[RT Generation State Estimator"]]
    day = date(year, 1, 1)
    # PMP_SIM_MISO_ANNUAL_MONTHS (e.g. "3,11") keeps only those months: the whole year is ~180k rows,
    # which the test suite does not need to generate and parse for its two DST days
    keep = {int(m) for m in months.split(",") if m.strip()}
    while day.year == year:
        if keep and day.month not in keep:
            day += timedelta(days=1)
            continue
        label = f"{day:%m/%d/%Y}"
        for he in range(1, 25):
            t = est(day, 60 * (he - 1))
            for region, rshare in REGIONS:
                for fuel, fshare in FUELS:
                    if fuel == "Imports":
                        continue
                    mw = round(fuel_mw(fuel, fshare, t) * rshare, 2)
                    rows.append([label, he, region, fuel, round(mw * 0.98, 2), mw])
        day += timedelta(days=1)
    return _xlsx(rows, at(date(year + 1, 1, 1), 4, "12:00"))


def df_al_xls(pub: date) -> bytes:
    from pmp.isos.miso.xls import write_xls

    def serial(d: date) -> float:
        return float((d - date(1899, 12, 30)).days)

    header = ["Market Day", "HourEnding"]
    for area, _ in LRZ:
        header += [f"{area} MTLF (MWh)", f"{area} ActualLoad (MWh)"]
    header += ["MISO MTLF (MWh)", "MISO ActualLoad (MWh)"]
    first, last = pub - timedelta(days=1), pub + timedelta(days=5)
    rows: list[list[object]] = [["FORECASTED AND "], ["ACTUAL LOAD REPORT"], ["Published Date:", serial(pub)],
                                ["Reporting Period:", serial(first), "through", serial(last)]]
    day = first
    while day <= last:
        rows.append(list(header))
        rows.append([day.strftime("%B %d, %Y")])
        for he in range(1, 25):
            start = est(day, 60 * (he - 1))
            issued = pub if day >= pub else pub - timedelta(days=1)
            row: list[object] = [serial(day), float(he)]
            total_f, total_a = 0.0, 0.0
            for _, share in LRZ:
                f = mtlf(share, start, issued)
                a = hourly_actual(share, start) if day < pub else None
                total_f += f
                total_a += a or 0.0
                row += [f, a]
            row += [total_f, round(total_a, 2) if day < pub else None]
            rows.append(row)
        day += timedelta(days=1)
    rows.append([DF_AL_DISCLAIMER])
    width = len(header)
    return write_xls([r + [None] * (width - len(r)) for r in rows])


def report_body(name: str, bad: bool = False) -> bytes | None:
    m = ANNUAL_FUEL.fullmatch(name)
    if m:
        return _fuel_annual_xlsx(int(m.group(1)), env_text("PMP_SIM_MISO_ANNUAL_MONTHS", ""))
    m = _DAILY.fullmatch(name)
    if not m:
        return None
    groups = [g for g in m.groups() if g]
    day, kind = datetime.strptime(groups[0], "%Y%m%d").date(), groups[1]
    if kind == "5MIN_LMP":
        return five_min_zip(day)
    if kind == "5min_expost_mcp":
        return as_weekly_xlsx(day)
    if kind == "df_al":
        return df_al_xls(day)
    if kind == "asm_expost_damcp":
        return asm_report(day)
    return lmp_report(kind, day, bad)


CONTENT_TYPES = {".csv": "text/csv", ".zip": "application/x-zip-compressed", ".xls": "application/vnd.ms-excel",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _html_fault(req: Request) -> Response | None:
    if req.sim.fire("miso_challenge"):
        return Response(403, CHALLENGE, "text/html; charset=UTF-8", {"cf-mitigated": "challenge"})
    if req.sim.fire("miso_html_200"):
        return Response(200, CHALLENGE, "text/html; charset=UTF-8")
    return None


@plugin("/miso/docs")
def docs(req: Request) -> Response:
    fault = _html_fault(req)
    if fault:
        return fault
    if not req.path.startswith("/marketreports/"):
        return Response(404, b"Not Found", "text/plain")
    name = req.path.rsplit("/", 1)[-1]
    due = published(name)
    if due is None or due > req.sim.now():
        return Response(404, b"<html><body>404 - File or directory not found.</body></html>", "text/html")
    headers = {"Last-Modified": format_datetime(due, usegmt=True)}
    ext = name[name.rfind("."):]
    if req.method == "HEAD":
        return Response(200, b"", CONTENT_TYPES[ext], headers)
    body = report_body(name, bad=ext == ".csv" and req.sim.fire("miso_bad_value"))
    assert body is not None
    return Response(200, body, CONTENT_TYPES[ext], headers)


# ------------------------------------------------------------------ public API
def _published_interval(now: datetime) -> datetime:
    """Start of the newest 5-minute interval whose ex-post values are out (2 minutes after its end)."""
    ready = now - timedelta(minutes=2)
    epoch = int(ready.timestamp()) // 300 * 300
    return datetime.fromtimestamp(epoch, UTC) - timedelta(minutes=5)


def _ref(t: datetime) -> str:
    return t.astimezone(EST).strftime("%d-%b-%Y - Interval %H:%M EST")


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def five_min_api(starts: list[datetime]) -> bytes:
    data = []
    for t in starts:
        label = t.astimezone(EST).strftime("%Y-%m-%dT%H:%M:%S")
        nodes = list(NODES)
        _rng("order", t).shuffle(nodes)  # node order within an interval is arbitrary
        for node, _ in nodes:
            lmp, mcc, mlc = lmp_parts("RT5M", node, t, final=False)
            data.append([label, node, rt_num(lmp), rt_num(mlc), rt_num(mcc)])
    return _compact({"headers": ["INTERVAL", "CPNODE", "LMP", "MLC", "MCC"], "data": data})


def as_api(t: datetime) -> bytes:
    day = t.astimezone(EST).date()
    hour_start = t.astimezone(EST).replace(minute=0)
    present = {p[0] for p in products_on(day)}

    def zones(market: str, when: datetime) -> list[dict[str, str]]:
        out = []
        for zone in range(1, 9):
            price = {field: rt_num(as_price(market, zone, code, when) if code in present else 0)
                     for code, _, _, field in PRODUCTS}
            # MISO's field order: the generator MCPs and STR, the demand-response copies, then ramp
            out.append({"number": str(zone), **{f: price[f] for f in ("GenRegMCP", "GenSpinMCP", "GenSuppMCP", "StrMcp")},
                        "DemandRegMcp": price["GenRegMCP"], "DemandSpinMcp": price["GenSpinMCP"],
                        "DemandSuppMcp": price["GenSuppMCP"], "RcpUpMcp": price["RcpUpMcp"],
                        "RcpDownMcp": price["RcpDownMcp"]})
        return out

    return _compact({"MCPData": {
        "RefId": _ref(t), "MktDay": day.strftime("%m-%d-%Y"),
        "RealTimeMCP": {"HourAndMin": t.astimezone(EST).strftime("%H:%M"), "Zone": zones("RT5M", t)},
        "DayAheadMCP": {"HourEnding": str(hour_start.hour + 1), "Zone": zones("DAM", hour_start.astimezone(UTC))}}})


def fuel_api(t: datetime) -> bytes:
    label = re.sub(r" 0(\d):", r" \1:", t.astimezone(EST).strftime("%Y-%m-%d %I:%M:%S %p"))
    items, total = [], 0
    for fuel, share in FUELS:
        mw = fuel_mw(fuel, share, t)
        total += mw
        sep = " " if fuel == "Imports" else "  "  # MISO's spacing: two blanks before "(" except Imports
        items.append({"INTERVALEST": label, "CATEGORY": fuel, "ACT": str(mw), "FUEL_CATEGORY": f"{fuel}{sep}({mw:,} MW)"})
    return _compact({"RefId": _ref(t), "TotalMW": str(total), "Fuel": {"Type": items}})


def load_api(t: datetime) -> bytes:
    day = t.astimezone(EST).date()
    issued = t.astimezone(EST).replace(minute=0, second=0, microsecond=0)
    cleared = [{"ClearedMWHourly": {"Hour": str(h), "Value": str(int(system_load(est(day, 60 * (h - 1))) * 0.99))}}
               for h in range(1, 25)]
    forecast = [{"Forecast": {"HourEnding": str(h), "LoadForecast": str(int(mtlf(1.0, est(day, 60 * (h - 1)),
                                                                                   issued)))}} for h in range(1, 25)]
    five = []
    s = est(day)
    while s <= t:
        five.append({"Load": {"Time": s.astimezone(EST).strftime("%H:%M"), "Value": str(int(system_load(s)))}})
        s += timedelta(minutes=5)
    return _compact({"LoadInfo": {"RefId": _ref(t), "ClearedMW": cleared, "MediumTermLoadForecast": forecast,
                                  "FiveMinTotalLoad": five}})


_api_lock = threading.Lock()


def _rate_limited(req: Request, scope: str, per_minute: float) -> Response | None:
    now = time.monotonic()
    with _api_lock:
        calls = req.sim.state.setdefault(f"miso-{scope}", {}).setdefault(req.client, [])
        calls[:] = [c for c in calls if now - c < 60]
        if len(calls) >= per_minute:
            wait = max(1, math.ceil(60 - (now - calls[0])))
            return Response.json({"message": "Rate limit is exceeded. Try again later."}, 429, **{"Retry-After": str(wait)})
        calls.append(now)
    return None


@plugin("/miso/api")
def public_api(req: Request) -> Response:
    fault = _html_fault(req)
    if fault:
        return fault
    limited = _rate_limited(req, "api", env_number("PMP_SIM_MISO_API_PER_MINUTE", 1, float))
    if limited:
        return limited
    now = req.sim.now()
    latest = _published_interval(now)
    path = req.path.removeprefix("/api/").rstrip("/")
    if path == "MarketPricing/GetRealTimeFiveMinExPost/Current":
        body = five_min_api([latest])
    elif path == "MarketPricing/GetRealTimeFiveMinExPost/Rolling":
        body = five_min_api([latest - timedelta(minutes=5 * i) for i in range(95, -1, -1)])
    elif path == "MarketPricing/GetRealTimeFiveMinExPost/Previous":
        yesterday = now.astimezone(EST).date() - timedelta(days=1)
        body = five_min_api([est(yesterday, 5 * i) for i in range(288)])
    elif path == "MarketPricing/GetAncillaryServicesMcp":
        body = as_api(latest)
    elif path == "FuelMix":
        body = fuel_api(latest)
    elif path == "RealTimeTotalLoad":
        body = load_api(latest)
    else:
        return Response.json({"message": "Resource not found"}, 404)
    return Response(200, body, "application/json; charset=utf-8")


# ------------------------------------------------------------------ Data Exchange
_DX = re.compile(r"/pricing/v1/real-time/(\d{4}-\d{2}-\d{2})/lmp-expost")


@plugin("/miso/dx")
def data_exchange(req: Request) -> Response:
    fault = _html_fault(req)
    if fault:
        return fault
    key = req.headers.get("Ocp-Apim-Subscription-Key") or req.query.get("subscription-key")
    if key != DX_KEY:
        return Response.json({"statusCode": 401, "message": "Access denied due to missing subscription key. Make sure "
                              "to include subscription key when making requests to an API."}, 401)
    limited = _rate_limited(req, "dx", 100)
    if limited:
        return limited
    m = _DX.fullmatch(req.path)
    if not m:
        return Response.json({"statusCode": 404, "message": "Resource not found"}, 404)
    day = date.fromisoformat(m.group(1))
    now = req.sim.now()
    final = req.query.get("preliminaryFinal", "Preliminary").lower() == "final"
    items = []
    for i in range(288):
        t = est(day, 5 * i)
        if t + timedelta(minutes=7) > now:
            break
        start = t.astimezone(EST)
        for node, _ in NODES:
            lmp, mcc, mlc = lmp_parts("RT5M", node, t, final=final)
            items.append({"node": node, "lmp": lmp / 100, "mcc": mcc / 100, "mlc": mlc / 100,
                          "timeInterval": {"resolution": "5min", "start": start.strftime("%Y-%m-%d %H:%M:%S.000"),
                                           "end": (start + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.000"),
                                           "value": start.strftime("%H:%M")}})
    size = env_number("PMP_SIM_MISO_DX_PAGE_SIZE", 1000, minimum=1)
    pages = max(1, math.ceil(len(items) / size))
    number = int(req.query.get("pageNumber", "1") or 1)
    chunk = items[(number - 1) * size:number * size]
    return Response.json({"data": chunk, "page": {"pageNumber": number, "pageSize": size, "totalElements": len(items),
                                                  "totalPages": pages, "lastPage": number >= pages}})
