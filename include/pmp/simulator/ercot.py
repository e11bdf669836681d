"""ERCOT in the simulator: MIS document list/download, the Public API (B2C token, subscription key,
30 requests/min, archive listing, bulk zip-of-zips download, DAM query endpoint), the annual hub
and load-zone files on MIS (NP6-785-ER, NP4-180-ER, NP4-181-ER: a zip of one xlsx, a sheet per
month, the same values as the per-interval reports), dashboards and fuel-mix workbooks.

Hosts: ``/ercot/www`` = www.ercot.com, ``/ercot/api`` = api.ercot.com, ``/ercot/b2c`` =
ercotb2c.b2clogin.com. Files match the real samples: LF endings, no quoting, a trailing newline,
DAM prices with a leading space, prices without fixed decimals.

Document ids are decodable: ``<kind><UTC epoch of the document's key instant><0 csv | 1 xml>``; annual files
``9<report><year><UTC epoch of the posting>``.
Data are deterministic for any date since 2019-01-01, and DST days are exact (23/25 hours).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import secrets
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from pmp.simulator.server import Request, Response, plugin, register_faults
from pmp.validate import env_number, env_text

CT = ZoneInfo("America/Chicago")
# ERCOT-specific fault switches (besides the server's generic ones):
# * ercot_stale_dashboard: the CDN answers the previous fuel-mix.json (max-age=60 caching)
# * ercot_no_bundles: the API lists no monthly bundles (clients fall back to the archive listing)
# * ercot_no_archive: the API archive lists nothing (clients fall back to the annual files)
register_faults("ercot_stale_dashboard", "ercot_no_bundles", "ercot_no_archive")
FIRST_DAY = date(2019, 1, 1)
HUBS = [("HB_BUSAVG", "SH"), ("HB_HOUSTON", "HU"), ("HB_HUBAVG", "AH"), ("HB_NORTH", "HU"),
        ("HB_PAN", "HU"), ("HB_SOUTH", "HU"), ("HB_WEST", "HU")]
ZONES = ["LZ_AEN", "LZ_CPS", "LZ_HOUSTON", "LZ_LCRA", "LZ_NORTH", "LZ_RAYBN", "LZ_SOUTH", "LZ_WEST"]
DC_TIES = ["DC_E", "DC_L", "DC_N", "DC_R"]
REAL_NODES = ["7RNCHSLR_ALL", "A4_DGR1_RN", "A4_DGR2_RN", "ABINDUST_RN", "ADL_RN"]


def resource_nodes() -> list[str]:
    n = env_number("PMP_SIM_ERCOT_NODES", 20)
    extra = [f"SIM_{i:03d}_RN" for i in range(max(0, n - len(REAL_NODES)))]
    return sorted(REAL_NODES[:n] + extra)


# ------------------------------------------------------------------ time labels
def _local(t: datetime) -> datetime:
    return t.astimezone(CT)


def _repeated(t: datetime) -> bool:
    """Second (standard-time) occurrence of an ambiguous wall-clock time."""
    loc = _local(t)
    wall = loc.replace(tzinfo=None)
    return wall.replace(tzinfo=CT, fold=0).utcoffset() != wall.replace(tzinfo=CT, fold=1).utcoffset() and loc.fold == 1


def hour_label(hour_start: datetime) -> tuple[date, int, bool]:
    """(delivery date, hour ending 1..24, repeated flag) of the hour starting at ``hour_start`` (UTC).

    ERCOT convention: hour ending = local start hour + 1; the fall-back repeat keeps its label with
    flag Y; on the spring-forward day the hour after 01:00 CST ends at 03:00 CDT, so HE 02 is skipped.
    """
    ls = _local(hour_start)
    le = _local(hour_start + timedelta(hours=1))
    he = ls.hour + 1
    if (le.hour - ls.hour) % 24 == 2:  # spring-forward gap inside this hour
        he = ls.hour + 2
    return ls.date(), he, _repeated(hour_start)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    s = datetime(day.year, day.month, day.day, tzinfo=CT).astimezone(UTC)
    e = datetime.combine(day + timedelta(days=1), datetime.min.time(), CT).astimezone(UTC)
    return s, e


# ------------------------------------------------------------------ prices
def _u(*parts: object) -> float:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def price(kind: str, location: str, start: datetime) -> float:
    loc = _local(start)
    shape = 28 + 14 * math.sin((loc.hour + loc.minute / 60 - 9) / 24 * 2 * math.pi)
    base = shape + 6 * _u(location, start.date()) - 3
    noise = (_u(kind, location, start.timestamp()) - 0.5) * (4 if kind == "DAM" else 9)
    value = base + noise
    if _u("spike", kind, start.timestamp()) > 0.995:
        value *= 8
    if _u("neg", location, start.timestamp()) > 0.98:
        value = -abs(value) / 4
    v = round(value, 2)
    return v if _u("int", location, start.timestamp()) > 0.05 else float(round(v))


def fmt(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


# ------------------------------------------------------------------ reports
@dataclass(frozen=True)
class Report:
    kind: int  # first digit of the doc id
    key: str
    rtid: int
    emil: str
    name: str
    retention_days: int
    header: str
    step: timedelta  # spacing of the document key instants
    offset: timedelta  # run instant after the key (SCED runs a few seconds past the mark)
    post_delay: timedelta  # posting after the document's end
    rows: Callable[[datetime], Iterator[str]]
    stem: Callable[[datetime], str]
    # "dam": one document per market day, posted the day before (~12:30); "day_after": one per
    # operating day, posted the next morning (~05:50); "": one per ``step`` (key instants).
    cadence: str = ""
    first_day: date = FIRST_DAY  # products that did not exist before (RT MCPC: RTC+B go-live)

    @property
    def daily(self) -> bool:
        return self.kind == 1 or self.cadence in ("dam", "day_after")

    def posted(self, key: datetime) -> datetime:
        if self.kind == 1 or self.cadence == "dam":  # DAM for day D posts on D-1 at about 12:30 local
            d = _local(key).date() - timedelta(days=1)
            return datetime(d.year, d.month, d.day, 12, 30, 0, tzinfo=CT).astimezone(UTC) + timedelta(
                seconds=int(_u("post", key.timestamp()) * 240))
        if self.cadence == "day_after":  # actual load of day D posts on D+1 at about 05:50 local
            d = _local(key).date() + timedelta(days=1)
            return datetime(d.year, d.month, d.day, 5, 50, 0, tzinfo=CT).astimezone(UTC) + timedelta(
                seconds=int(_u("post", self.kind, key.timestamp()) * 60))
        return key + self.offset + self.step + self.post_delay

    def keys(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Document key instants in [start, end) (UTC)."""
        if self.daily:
            day = max(_local(start).date(), self.first_day)
            while True:
                k = day_bounds(day)[0]
                if k >= end:
                    return
                if k >= start:
                    yield k
                day += timedelta(days=1)
        step = int(self.step.total_seconds())
        t = max(int(start.timestamp()), int(day_bounds(self.first_day)[0].timestamp()))
        t = -(-t // step) * step
        while t < end.timestamp():
            yield datetime.fromtimestamp(t, UTC)
            t += step


def _dam_rows(key: datetime) -> Iterator[str]:
    s, e = day_bounds(_local(key).date())
    points = sorted(resource_nodes() + [h for h, _ in HUBS] + ZONES)
    t = s
    while t < e:
        d, he, rep = hour_label(t)
        for p in points:
            yield f"{d:%m/%d/%Y},{he:02d}:00,{p}, {fmt(price('DAM', p, t))},{'Y' if rep else 'N'}"
        t += timedelta(hours=1)


def _rt15_rows(key: datetime) -> Iterator[str]:
    hour_start = key - timedelta(minutes=_local(key).minute)
    d, he, rep = hour_label(hour_start)
    interval = _local(key).minute // 15 + 1
    flag = "Y" if rep else "N"
    pts = [(n, "RN") for n in resource_nodes()] + HUBS
    for z in ZONES:  # real files list LZ/LZEW pairs in no fixed order
        pair = [(z, "LZ"), (z, "LZEW")]
        pts += pair if _u("order", z, key.timestamp()) < 0.5 else pair[::-1]
    for dc in DC_TIES:
        pts += [(dc, "LZ_DC"), (dc, "LZ_DCEW")]
    for name, typ in pts:
        v = price("RT", name + ("EW" if typ.endswith("EW") else ""), key)
        yield f"{d:%m/%d/%Y},{he},{interval},{name},{typ},{fmt(v)},{flag}"


def _sced_rows(key: datetime) -> Iterator[str]:
    run = key + timedelta(seconds=10 + int(_u("sced", key.timestamp()) * 10))
    stamp = _local(run).strftime("%m/%d/%Y %H:%M:%S")
    flag = "Y" if _repeated(run) else "N"
    for p in sorted(resource_nodes() + [h for h, _ in HUBS] + ZONES):
        yield f"{stamp},{flag},{p},{fmt(price('SCED', p, key))}"


def _xhr(*instants: datetime) -> str:
    """ERCOT tags names produced during the repeated fall-back hour with ``xhr``; without it the
    second pass would reuse the first pass's wall-clock names."""
    return "xhr" if any(_repeated(t) for t in instants) else ""


def _rt15_stem(key: datetime) -> str:
    end = _local(key + timedelta(minutes=15))
    posted = REPORTS[12301].posted(key)
    return f"SPPHLZNP6905_{end:%Y%m%d}_{end:%H%M}{_xhr(key, posted)}"


def _sced_stem(key: datetime) -> str:
    run = key + timedelta(seconds=10 + int(_u("sced", key.timestamp()) * 10))
    return f"LMPSROSNODENP6788_{_local(run):%Y%m%d}_{_local(run):%H%M%S}{_xhr(run, REPORTS[12300].posted(key))}"


# ------------------------------------------------------------------ ancillary services, load, forecasts
AS_TYPES = ["REGUP", "REGDN", "RRS", "NSPIN", "ECRS"]
ECRS_FIRST_DAY = date(2023, 6, 10)  # ERCOT Contingency Reserve Service went live in June 2023
RTC_FIRST_DAY = date(2025, 12, 5)  # RTC+B: first real-time MCPC (NP6-331-CD) operating day
WEATHER_ZONES = ["COAST", "EAST", "FAR_WEST", "NORTH", "NORTH_C", "SOUTHERN", "SOUTH_C", "WEST"]
FORECAST_ZONES = ["Coast", "East", "FarWest", "North", "NorthCentral", "SouthCentral", "Southern", "West"]
ZONE_BASE = dict(zip(WEATHER_ZONES, [15000.0, 2000.0, 7400.0, 1700.0, 16000.0, 5000.0, 9800.0, 1800.0], strict=True))


def as_types(day: date) -> list[str]:
    return [t for t in AS_TYPES if t != "ECRS" or day >= ECRS_FIRST_DAY]


def mcpc(kind: str, product: str, start: datetime) -> float:
    loc = _local(start)
    base = {"REGUP": 1.2, "REGDN": 0.6, "RRS": 0.4, "NSPIN": 1.8, "ECRS": 0.5}[product]
    shape = 1 + 0.8 * math.sin((loc.hour - 12) / 24 * 2 * math.pi)
    v = base * shape * (0.5 + _u(kind, product, start.timestamp()))
    if _u("as-spike", kind, start.timestamp()) > 0.997:
        v *= 40
    return round(v, 2)


def load_mw(zone: str, start: datetime, step_minutes: int = 60) -> float:
    loc = _local(start)
    shape = 1 + 0.25 * math.sin((loc.hour + loc.minute / 60 - 10) / 24 * 2 * math.pi)
    noise = (_u("load", zone, step_minutes, start.timestamp()) - 0.5) * 0.04
    return ZONE_BASE.get(zone, 60000.0) * (shape + noise) * (0.9 + 0.2 * _u("load-day", zone, loc.date()))


@lru_cache(maxsize=8192)
def _zone_loads(t: datetime) -> tuple[float, ...]:
    """Hourly weather-zone loads (shared by the overlapping forecast vintages)."""
    return tuple(load_mw(z, t) for z in WEATHER_ZONES)


def _as_dam_rows(key: datetime) -> Iterator[str]:
    day = _local(key).date()
    s, e = day_bounds(day)
    t = s
    while t < e:
        d, he, rep = hour_label(t)
        types = as_types(day)
        types.sort(key=lambda p: _u("as-order", p, t.timestamp()))  # real files: order changes hourly
        for p in types:
            yield f"{d:%m/%d/%Y},{he:02d}:00,{p},{fmt(mcpc('DAM', p, t))},{'Y' if rep else 'N'}"
        t += timedelta(hours=1)


def _as_rt_rows(key: datetime) -> Iterator[str]:
    hour_start = key - timedelta(minutes=_local(key).minute)
    d, he, rep = hour_label(hour_start)
    interval = _local(key).minute // 15 + 1
    for p in AS_TYPES:
        yield f"{d:%m/%d/%Y},{he},{interval},{'Y' if rep else 'N'},{p},{fmt(mcpc('RT', p, key))}"


def _actual_load_rows(key: datetime) -> Iterator[str]:
    """NP6-345-CD: one row per hour, zones with two fixed decimals, TOTAL within 0.01 of the sum."""
    s, e = day_bounds(_local(key).date())
    t = s
    while t < e:
        d, he, rep = hour_label(t)
        values = [round(load_mw(z, t), 2) for z in WEATHER_ZONES]
        total = round(sum(values) + (int(_u("total", t.timestamp()) * 3) - 1) / 100, 2)
        cells = ",".join(f"{v:.2f}" for v in [*values, total])
        yield f"{d:%m/%d/%Y},{he:02d}:00,{cells},{'Y' if rep else 'N'}"
        t += timedelta(hours=1)


def _demand_label(start: datetime) -> tuple[date, str, str]:
    """NP6-235-CD label of the 15-minute interval starting at ``start``: the local wall-clock time
    of its end (``24:00`` for midnight) and a flag ``Y`` on the intervals of the repeated hour.

    ERCOT quirk kept on purpose: the interval ending at the fall-back instant (02:00 CDT) is
    labelled by the wall clock after the change, ``01:00``, with flag ``N``, so ``01:00 N`` occurs
    twice that day; the spring-forward day goes ``01:45`` -> ``03:00``.
    """
    end = _local(start + timedelta(minutes=15))
    label = "24:00" if (end.hour, end.minute) == (0, 0) else f"{end:%H:%M}"
    return _local(start).date(), label, "Y" if _repeated(start) else "N"


def _system_demand_rows(key: datetime) -> Iterator[str]:
    for q in range(4):
        start = key + timedelta(minutes=15 * q)
        d, label, flag = _demand_label(start)
        yield f"{d:%m/%d/%Y},{label},{fmt4(load_mw('SYSTEM', start, 15))},{flag}"


def fmt4(v: float) -> str:
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def forecast_models() -> list[str]:
    n = env_number("PMP_SIM_ERCOT_MODELS", 3)
    return ["A3", "A6", "E", "E1", "E2", "M", "MI"][: max(1, n)]


def _forecast_rows(key: datetime) -> Iterator[str]:
    """NP3-565-CD vintage issued in the hour starting ``key``: every model's hourly forecast from
    the next hour to the end of the sixth day after the issue day, one ``InUseFlag=Y`` model."""
    models = forecast_models()
    in_use = models[int(_u("in-use", _local(key).date()) * len(models))]
    first = key + timedelta(hours=1)
    last = day_bounds(_local(key).date() + timedelta(days=6))[1]
    t = first
    while t < last:
        d, he, rep = hour_label(t)
        base = _zone_loads(t)
        for m in models:
            bias = 1 + (_u("bias", m, key.timestamp()) - 0.5) * 0.06
            values = [round(v * bias, 2) for v in base]
            cells = ",".join(fmt(v) for v in [*values, round(sum(values), 2)])
            yield f"{d:%m/%d/%Y},{he:02d}:00,{cells},{m},{'Y' if m == in_use else 'N'},{'Y' if rep else 'N'}"
        t += timedelta(hours=1)


def _dated_stem(prefix: str, rtid: int, minutes: int) -> Callable[[datetime], str]:
    """``<PREFIX>_<YYYYMMDD>_<HHMM>``: the local end of the document's interval (+``xhr``)."""
    def stem(key: datetime) -> str:
        end = _local(key + timedelta(minutes=minutes))
        return f"{prefix}_{end:%Y%m%d}_{end:%H%M}{_xhr(key, REPORTS[rtid].posted(key))}"

    return stem


def _forecast_stem(key: datetime) -> str:
    return "LFMODWEATHERNP3565" + _xhr(REPORTS[14837].posted(key))


REPORTS = {
    r.rtid: r
    for r in (
        Report(1, "lmp_dam", 12331, "NP4-190-CD", "DAM Settlement Point Prices", 31,
               "DeliveryDate,HourEnding,SettlementPoint,SettlementPointPrice,DSTFlag", timedelta(days=1),
               timedelta(0), timedelta(0), _dam_rows, lambda k: "DAMSPNP4190"),
        Report(2, "lmp_rt15m", 12301, "NP6-905-CD", "Settlement Point Prices at Resource Nodes, Hubs and Load Zones",
               7, "DeliveryDate,DeliveryHour,DeliveryInterval,SettlementPointName,SettlementPointType,"
               "SettlementPointPrice,DSTFlag", timedelta(minutes=15), timedelta(0), timedelta(seconds=107),
               _rt15_rows, _rt15_stem),
        Report(3, "lmp_rt5m", 12300, "NP6-788-CD", "LMPs by Resource Nodes, Load Zones and Trading Hubs", 5,
               "SCEDTimestamp,RepeatedHourFlag,SettlementPoint,LMP", timedelta(minutes=5), timedelta(0),
               timedelta(seconds=-235), _sced_rows, _sced_stem),
        Report(4, "as_dam", 12329, "NP4-188-CD", "DAM Clearing Prices for Capacity", 31,
               "DeliveryDate,HourEnding,AncillaryType,MCPC,DSTFlag", timedelta(days=1), timedelta(0),
               timedelta(0), _as_dam_rows, lambda k: "DAMCPCNP4188", cadence="dam"),
        Report(5, "as_rt15m", 24898, "NP6-331-CD", "Real-Time Clearing Prices for Capacity by 15-minute Settlement "
               "Interval", 7, "DeliveryDate,DeliveryHour,DeliveryInterval,RepeatedHourFlag,ASType,MCPC",
               timedelta(minutes=15), timedelta(0), timedelta(seconds=95), _as_rt_rows,
               _dated_stem("RTMCPCNP6331", 24898, 15), first_day=RTC_FIRST_DAY),
        Report(6, "load_actual", 13101, "NP6-345-CD", "Actual System Load by Weather Zone", 31,
               "OperDay,HourEnding," + ",".join(WEATHER_ZONES) + ",TOTAL,DSTFlag", timedelta(days=1),
               timedelta(0), timedelta(0), _actual_load_rows, lambda k: "ACTUALSYSLOADWZNP6345",
               cadence="day_after"),
        Report(7, "load_actual_15m", 12340, "NP6-235-CD", "System-Wide Demand", 7,
               "DeliveryDate,TimeEnding,Demand,DSTFlag", timedelta(hours=1), timedelta(0),
               timedelta(seconds=170), _system_demand_rows, _dated_stem("SYSWIDEDEMANDNP6235", 12340, 60)),
        Report(8, "load_forecast", 14837, "NP3-565-CD", "Seven-Day Load Forecast by Model and Weather Zone", 7,
               "DeliveryDate,HourEnding," + ",".join(FORECAST_ZONES) + ",SystemTotal,Model,InUseFlag,DSTFlag",
               timedelta(hours=1), timedelta(0), timedelta(minutes=-30), _forecast_rows, _forecast_stem),
    )
}
BY_KIND = {r.kind: r for r in REPORTS.values()}
BY_EMIL = {r.emil.lower(): r for r in REPORTS.values()}


@dataclass(frozen=True)
class Doc:
    report: Report
    key: datetime
    xml: bool = False

    @property
    def doc_id(self) -> str:
        return f"{self.report.kind}{int(self.key.timestamp()):010d}{int(self.xml)}"

    @property
    def posted(self) -> datetime:
        return self.report.posted(self.key)

    @property
    def stem(self) -> str:
        return self.report.stem(self.key)

    @property
    def constructed(self) -> str:
        p = _local(self.posted)
        return f"cdr.{self.report.rtid:08d}.0000000000000000.{p:%Y%m%d}.{p:%H%M%S}.{self.stem}." + (
            "xml" if self.xml else "csv")

    @property
    def friendly(self) -> str:
        return f"{self.stem}_{'xml' if self.xml else 'csv'}"

    def csv(self) -> str:
        return self.report.header + "\n" + "".join(r + "\n" for r in self.report.rows(self.key))

    def zip_bytes(self) -> bytes:
        if self.xml:
            data = f"<?xml version=\"1.0\"?><Report name=\"{self.stem}\"/>\n".encode()
        else:
            data = self.csv().encode()
        buf = io.BytesIO()
        p = _local(self.posted)
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(zipfile.ZipInfo(self.constructed, (p.year, p.month, p.day, p.hour, p.minute, p.second)),
                        data, zipfile.ZIP_DEFLATED)
        return buf.getvalue()


def decode(doc_id: str) -> Doc | None:
    if not (doc_id.isdigit() and len(doc_id) == 12) or int(doc_id[0]) not in BY_KIND:
        return None
    return Doc(BY_KIND[int(doc_id[0])], datetime.fromtimestamp(int(doc_id[1:11]), UTC), doc_id[-1] == "1")


def documents(report: Report, posted_from: datetime, posted_to: datetime) -> list[Doc]:
    """CSV documents posted in [posted_from, posted_to], oldest first."""
    lead = timedelta(days=2)
    # day-ahead documents are keyed by the market day after their posting
    ahead = timedelta(days=2) if report.cadence == "dam" or report.kind == 1 else timedelta(minutes=1)
    out = [Doc(report, k) for k in report.keys(posted_from - lead, posted_to + ahead)]
    return [d for d in out if posted_from <= d.posted <= posted_to]


def csv_for(dataset: str, day: date) -> str:
    """All CSV documents of a dataset for a market day, concatenated (one header each)."""
    report = next(r for r in REPORTS.values() if r.key == dataset)
    s, e = day_bounds(day)
    if report.kind == 8:  # forecasts: the vintages issued that day
        return "".join(Doc(report, k).csv() for k in report.keys(s, e))
    return "".join(Doc(report, k).csv() for k in report.keys(s, e))


# ------------------------------------------------------------------ MIS (www.ercot.com)
def _mis_doc(d: Doc) -> dict:
    return {"Document": {
        "ContentSize": str(len(d.zip_bytes()) if d.report.kind == 1 else 4096 + len(d.stem)),
        "Extension": "zip", "ReportTypeID": str(d.report.rtid), "FriendlyName": d.friendly,
        "ConstructedName": d.constructed + ".zip", "DocID": d.doc_id,
        "PublishDate": _local(d.posted).isoformat(timespec="seconds"), "ReportName": d.report.name,
    }}


@plugin("/ercot/www")
def www(req: Request) -> Response:
    if req.path == "/misapp/servlets/IceDocListJsonWS":
        rtid = int(req.query.get("reportTypeId", "0") or 0)
        report = REPORTS.get(rtid)
        docs: list[dict] = []
        now = req.sim.now()
        if report:
            for d in reversed(documents(report, now - timedelta(days=report.retention_days), now)):
                docs += [_mis_doc(d), _mis_doc(Doc(d.report, d.key, xml=True))]
        elif rtid in ANNUAL:  # annual files: every year, no _csv/_xml twins
            docs = [_mis_annual_doc(a) for a in annual_docs(ANNUAL[rtid], now)]
        return Response.json({"ListDocsByRptTypeRes": {"DocumentList": docs}})
    if req.path == "/misdownload/servlets/mirDownload":
        now = req.sim.now()
        annual = decode_annual(req.query.get("doclookupId", ""))
        if annual is not None:
            if annual.posted > now:
                return Response(404, b"<html><body>Document not found</body></html>", "text/html")
            return _zip_response(req, annual.zip_bytes(), annual.constructed)
        d = decode(req.query.get("doclookupId", ""))
        if d is None or d.posted > now or d.posted < now - timedelta(days=d.report.retention_days):
            return Response(404, b"<html><body>Document not found</body></html>", "text/html")
        return _zip_response(req, d.zip_bytes(), d.constructed + ".zip")
    if req.path.startswith(DASHBOARDS):
        return _dashboard(req, req.path[len(DASHBOARDS):])
    if req.path == "/gridinfo/generation":
        return _generation_page(req)
    if req.path.startswith("/files/docs/"):
        return _workbook_file(req)
    return Response(404, b"Not Found", "text/plain")


def _zip_response(req: Request, data: bytes, name: str) -> Response:
    if req.sim.fire("corrupt_zip"):
        data = data[: len(data) // 2]
    return Response(200, data, "application/zip", {"Content-Disposition": f'attachment; filename="{name}"'})


# ------------------------------------------------------------------ B2C token
def _api_state(req: Request) -> dict:
    return req.sim.state.setdefault("ercot", {"tokens": {}, "calls": {}})


B2C_CLIENT_ID = "fec253ea-0d06-4272-a5e6-b478baeecd70"


def _b2c_error(code: str, description: str) -> Response:
    return Response.json({"error": code, "error_description": description}, 400)


@plugin("/ercot/b2c")
def b2c(req: Request) -> Response:
    if not req.path.endswith("/oauth2/v2.0/token") or req.method != "POST":
        return Response(404, b"Not Found", "text/plain")
    form = {k: v[-1] for k, v in parse_qs(req.body.decode()).items()}
    user = env_text("PMP_SIM_ERCOT_USERNAME", "sim-user")
    pw = env_text("PMP_SIM_ERCOT_PASSWORD", "sim-pass")
    # the ROPC flow of ERCOT's B2C tenant: a fixed public client id, an id_token answer and the
    # client id among the scopes (reference 2.1(b)); what B2C answers when one is off
    if form.get("client_id") != B2C_CLIENT_ID:
        return _b2c_error("unauthorized_client", f"AADB2C90057: The provided application '{form.get('client_id')}' "
                          "is not configured to allow the 'OAuth' Implicit flow.")
    if form.get("response_type") != "id_token":
        return _b2c_error("unsupported_response_type", "AADB2C90079: The response type "
                          f"'{form.get('response_type')}' is not supported.")
    if set((form.get("scope") or "").split()) != {"openid", B2C_CLIENT_ID, "offline_access"}:
        return _b2c_error("invalid_request", f"AADB2C90055: The scope '{form.get('scope')}' provided in request must "
                          "specify 'openid' and the application's client id, and 'offline_access'.")
    if form.get("grant_type") != "password" or form.get("username") != user or form.get("password") != pw:
        return _b2c_error("invalid_grant", "AADB2C90225: The username or password provided is invalid.")
    token = secrets.token_urlsafe(48)
    _api_state(req)["tokens"][token] = req.sim.now()
    return Response.json({"access_token": token, "id_token": token, "token_type": "Bearer",
                          "not_before": str(int(time.time())), "expires_in": "3600",
                          "id_token_expires_in": "3600", "refresh_token": secrets.token_urlsafe(32)})


# ------------------------------------------------------------------ Public API (api.ercot.com)
API = "/api/public-reports"


def _authorize(req: Request) -> Response | None:
    key = req.headers.get("Ocp-Apim-Subscription-Key") or req.query.get("subscription-key")
    if key != env_text("PMP_SIM_ERCOT_SUBSCRIPTION_KEY", "sim-key"):
        return Response.json({"statusCode": 401, "message": "Access denied due to missing subscription key. "
                              "Make sure to include subscription key when making requests to an API."}, 401)
    state = _api_state(req)
    # ERCOT: about 30 requests a minute per subscription key, counted over a sliding window.
    # PMP_SIM_ERCOT_RATE_WINDOW (seconds, default 60) shrinks the window for tests, the limit
    # scaled with it (PMP_SIM_ERCOT_RPM requests a minute = RPM x window / 60 per window).
    rpm = env_number("PMP_SIM_ERCOT_RPM", 30, float)
    window = env_number("PMP_SIM_ERCOT_RATE_WINDOW", 60, float)
    limit = max(1, round(rpm * window / 60))
    calls: deque = state["calls"].setdefault(key, deque())
    now = time.monotonic()
    while calls and now - calls[0] >= window:
        calls.popleft()
    if req.sim.fire("rate_limit") or len(calls) >= limit:
        # the window reopens when its oldest call leaves it: name that time (whole seconds, up)
        wait = 1 if len(calls) < limit else max(1, math.ceil(calls[0] + window - now))
        state["throttled"] = state.get("throttled", 0) + 1
        return Response.json({"statusCode": 429, "message": f"Rate limit is exceeded. Try again in {wait} seconds."},
                             429, **{"Retry-After": str(wait)})
    calls.append(now)
    auth = req.headers.get("Authorization", "")
    issued = state["tokens"].get(auth.removeprefix("Bearer ").strip())
    if req.sim.fire("token_expired") or issued is None or req.sim.now() - issued > timedelta(seconds=3600):
        return Response.json({"statusCode": 401, "message": "Invalid or expired token."}, 401)
    return None


def _local_naive(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=CT).astimezone(UTC)


@plugin("/ercot/api")
def api(req: Request) -> Response:
    if not req.path.startswith(API + "/"):
        return Response(404, b"Not Found", "text/plain")
    denied = _authorize(req)
    if denied:
        return denied
    parts = req.path[len(API) + 1:].split("/")
    now = req.sim.now()
    if parts[0] == "archive" and len(parts) >= 2:
        report = BY_EMIL.get(parts[1].lower())
        if report is None:
            return Response.json({"statusCode": 404, "message": "Resource not found"}, 404)
        if len(parts) == 3 and parts[2] == "download" and req.method == "POST":
            ids = [str(i) for i in json.loads(req.body or b"{}").get("docIds", [])]
            if len(ids) > 1000:
                return Response.json({"statusCode": 400, "message": "At most 1000 docIds per request"}, 400)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
                for i in ids:
                    d = decode(i)
                    if d and d.report is report and d.posted <= now:
                        zf.writestr(f"{i}.zip", d.zip_bytes())
            return _zip_response(req, buf.getvalue(), f"{report.emil}.zip")
        if "download" in req.query:
            d = decode(req.query["download"])
            if d is None or d.report is not report or d.posted > now:
                return Response.json({"statusCode": 404, "message": "Document not found"}, 404)
            return _zip_response(req, d.zip_bytes(), d.constructed + ".zip")
        lo = _local_naive(req.query.get("postDatetimeFrom", "2019-01-01T00:00:00"))
        hi = min(_local_naive(req.query["postDatetimeTo"]) if "postDatetimeTo" in req.query else now, now)
        docs = [] if req.sim.fire("ercot_no_archive") else documents(report, lo, hi)
        size, page = int(req.query.get("size", "1000")), int(req.query.get("page", "1"))
        chunk = docs[(page - 1) * size: page * size]
        base = req.headers.get("Host", "127.0.0.1")
        return Response.json({
            "_meta": {"totalRecords": len(docs), "pageSize": size, "totalPages": max(1, -(-len(docs) // size)),
                      "currentPage": page},
            "report": {"reportEMILId": report.emil, "reportName": report.name},
            "archives": [{"docId": int(d.doc_id), "friendlyName": d.friendly,
                          "postDatetime": _local(d.posted).strftime("%Y-%m-%dT%H:%M:%S"),
                          "_links": {"endpoint": {"href": f"http://{base}/ercot/api{API}/archive/"
                                                          f"{report.emil.lower()}?download={d.doc_id}"}}}
                         for d in chunk],
        })
    if parts[0] == "bundle" and len(parts) >= 2:
        report = BY_EMIL.get(parts[1].lower())
        if report is None:
            return Response.json({"statusCode": 404, "message": "Resource not found"}, 404)
        if len(parts) == 3 and parts[2] == "download" and req.method == "POST":
            ids = [int(i) for i in json.loads(req.body or b"{}").get("docIds", [])]
            month = decode_bundle(ids[0]) if len(ids) == 1 else None
            if month is None or month[0] is not report or bundle_posted(month[1]) > now:
                return Response.json({"statusCode": 400, "status": "BAD_REQUEST", "message": "The request may be "
                                      "malformed or the URL may not exist."}, 400)
            return _zip_response(req, bundle_zip(report, month[1]), f"{bundle_name(report, month[1])}.zip")
        if "download" in req.query:  # the listing's _links.endpoint.href: the same bundle by GET
            month = decode_bundle(int(req.query["download"])) if req.query["download"].lstrip("-").isdigit() else None
            if month is None or month[0] is not report or bundle_posted(month[1]) > now:
                return Response.json({"statusCode": 404, "message": "Document not found"}, 404)
            return _zip_response(req, bundle_zip(report, month[1]), f"{bundle_name(report, month[1])}.zip")
        return _bundle_list(req, report, now)
    if "/".join(parts) == "np4-190-cd/dam_stlmnt_pnt_prices":
        return _dam_query(req, now)
    return Response.json({"statusCode": 404, "message": "Resource not found"}, 404)


def _dam_query(req: Request, now: datetime) -> Response:
    start = date.fromisoformat(req.query.get("deliveryDateFrom", FIRST_DAY.isoformat()))
    end = date.fromisoformat(req.query.get("deliveryDateTo", start.isoformat()))
    report = REPORTS[12331]
    rows = []
    day = start
    while day <= end:
        d = Doc(report, day_bounds(day)[0])
        if d.posted <= now:
            for line in d.report.rows(d.key):
                dd, he, sp, pr, flag = line.split(",")
                mm, dd_, yy = dd.split("/")
                rows.append([f"{yy}-{mm}-{dd_}", he, sp, float(pr), flag == "Y"])
        day += timedelta(days=1)
    size, page = int(req.query.get("size", "100000")), int(req.query.get("page", "1"))
    return Response.json({
        "_meta": {"totalRecords": len(rows), "pageSize": size, "totalPages": max(1, -(-len(rows) // size)),
                  "currentPage": page},
        "report": {"reportEMILId": report.emil, "reportName": report.name},
        "fields": [{"name": n, "label": n, "dataType": t} for n, t in (
            ("deliveryDate", "DATE"), ("hourEnding", "STRING"), ("settlementPoint", "STRING"),
            ("settlementPointPrice", "DOUBLE"), ("DSTFlag", "BOOLEAN"))],
        "data": rows[(page - 1) * size: page * size],
    })


# ------------------------------------------------------------------ monthly bundles (GET /bundle/{emilId})
def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=CT).astimezone(UTC)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def bundle_id(report: Report, month: tuple[int, int]) -> int:
    """Bundles carry negative document ids (as ERCOT's do); ours decode to (product, month)."""
    return -(report.kind * 1_000_000 + month[0] * 100 + month[1])


def decode_bundle(doc_id: int) -> tuple[Report, tuple[int, int]] | None:
    if doc_id >= 0 or (-doc_id) // 1_000_000 not in BY_KIND:
        return None
    rest = (-doc_id) % 1_000_000
    year, month = divmod(rest, 100)
    if not 1 <= month <= 12 or year < FIRST_DAY.year:
        return None
    return BY_KIND[(-doc_id) // 1_000_000], (year, month)


def bundle_posted(month: tuple[int, int]) -> datetime:
    """A month's bundle appears once the month is over (its postDatetime is the month's last second)."""
    return _month_start(*_next_month(*month))


def bundle_name(report: Report, month: tuple[int, int]) -> str:
    return f"{report.stem(report.keys(_month_start(*month), _month_start(*_next_month(*month))).__next__())}" \
        .split("_")[0].removesuffix("xhr") + f"_{month[0]:04d}-{month[1]:02d}"


def bundle_docs(report: Report, month: tuple[int, int]) -> list[Doc]:
    """The CSV documents *posted* in the month, oldest first."""
    lo = _month_start(*month)
    hi = _month_start(*_next_month(*month)) - timedelta(microseconds=1)
    return documents(report, lo, hi)


def bundle_zip(report: Report, month: tuple[int, int]) -> bytes:
    """A zip of zips: one member per document, named by its constructed name (``cdr....csv.zip``).
    Byte for byte the same on every download (member times are the documents' posting times)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for d in bundle_docs(report, month):
            p = _local(d.posted)
            zf.writestr(zipfile.ZipInfo(d.constructed + ".zip", (p.year, p.month, p.day, p.hour, p.minute, p.second)),
                        d.zip_bytes())
    return buf.getvalue()


def _fixed_zip(data: bytes, when: datetime, parts: dict[str, bytes] | None = None, level: int = 6) -> bytes:
    """Rewrite an xlsx (a zip) with fixed member times and document-property times, so the same
    posting is the same bytes on every download (openpyxl stamps the wall clock). ``parts``
    replaces members by name (new names are appended)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    src = zipfile.ZipFile(io.BytesIO(data))
    extra = dict(parts or {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as out:
        for filename in src.namelist() + [n for n in extra if n not in src.namelist()]:
            body = extra.pop(filename) if filename in extra else src.read(filename)
            if filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rb"\g<1>" + stamp.encode() + rb"\g<2>",
                              body)
            out.writestr(zipfile.ZipInfo(filename, when.timetuple()[:6]), body, zipfile.ZIP_DEFLATED, level)
    return buf.getvalue()


_SST = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def fast_xlsx(sheets: list[tuple[str, list[str], Iterator[tuple]]], when: datetime) -> bytes:
    """A deterministic xlsx of large sheets: ``(title, header, rows)``, cells str / int / float /
    None. openpyxl (write_only) lays out the package - workbook, sheet names, styles, content
    types - but writes ~10k rows/s, so the rows are spliced in as XML with a shared-strings table,
    the way Excel writes them (and with a ``<dimension>``, without which a read-only reader parses
    each sheet twice). The same input is the same bytes (:func:`_fixed_zip`)."""
    from xml.sax.saxutils import escape

    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, _, _ in sheets:
        wb.create_sheet(title)
    skeleton = io.BytesIO()
    wb.save(skeleton)
    strings: dict[str, int] = {}

    def cell(v: object) -> str:
        if v is None:
            return "<c/>"
        if isinstance(v, str):
            i = strings.get(v)
            if i is None:
                i = strings[v] = len(strings)
            return f'<c t="s"><v>{i}</v></c>'
        return f"<c><v>{v!r}</v></c>"

    src = zipfile.ZipFile(io.BytesIO(skeleton.getvalue()))
    parts: dict[str, bytes] = {}
    for n, (_, header, rows) in enumerate(sheets, start=1):
        part = f"xl/worksheets/sheet{n}.xml"
        lines = ["<row>" + "".join(cell(h) for h in header) + "</row>"]
        lines += ["<row>" + "".join(cell(v) for v in row) + "</row>" for row in rows]
        dim = f'<dimension ref="A1:{chr(64 + len(header))}{len(lines)}"/>'.encode()
        body = src.read(part).replace(b"<sheetViews>", dim + b"<sheetViews>", 1)
        parts[part] = body.replace(b"<sheetData></sheetData>", b"<sheetData>" + "".join(lines).encode() + b"</sheetData>")
    sst = "".join(f'<si><t xml:space="preserve">{escape(k)}</t></si>' if k != k.strip() else f"<si><t>{escape(k)}</t></si>"
                  for k in strings)
    parts["xl/sharedStrings.xml"] = (f'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                                     f'count="{len(strings)}" uniqueCount="{len(strings)}">{sst}</sst>').encode()
    parts["[Content_Types].xml"] = src.read("[Content_Types].xml").replace(
        b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    parts["xl/_rels/workbook.xml.rels"] = src.read("xl/_rels/workbook.xml.rels").replace(
        b"</Relationships>", f'<Relationship Type="{_SST}" Target="sharedStrings.xml" Id="rIdSST"/>'
        .encode() + b"</Relationships>")
    return _fixed_zip(skeleton.getvalue(), when, parts, level=1)


def _bundle_list(req: Request, report: Report, now: datetime) -> Response:
    months: list[tuple[int, int]] = []
    if not req.sim.fire("ercot_no_bundles"):
        m = (max(FIRST_DAY, report.first_day).year, max(FIRST_DAY, report.first_day).month)
        while bundle_posted(m) <= now:
            months.append(m)
            m = _next_month(*m)
    months.reverse()  # newest first, as ERCOT sorts them ("postDatetime: DESC")
    size, page = int(req.query.get("size", "1000")), int(req.query.get("page", "1"))
    chunk = months[(page - 1) * size: page * size]
    base = req.headers.get("Host", "127.0.0.1")
    return Response.json({
        "_meta": {"totalRecords": len(months), "pageSize": size, "totalPages": max(1, -(-len(months) // size)),
                  "currentPage": page, "query": {"parameterCount": 0, "parameters": {},
                                                 "sortedBy": "postDatetime: DESC"}},
        "product": {"emilId": report.emil, "name": report.name, "reportTypeId": report.rtid},
        "bundles": [{"docId": bundle_id(report, m), "friendlyName": bundle_name(report, m),
                     "postDatetime": (_local(bundle_posted(m)) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
                     + ".000",
                     "_links": {"endpoint": {"href": f"http://{base}/ercot/api{API}/bundle/{report.emil.lower()}"
                                                     f"?download={bundle_id(report, m)}"}}}
                    for m in chunk],
    })


# ------------------------------------------------------------------ dashboards (www.ercot.com JSON)
DASHBOARDS = "/api/1/services/read/dashboards/"
FUELS = ["Coal and Lignite", "Hydro", "Nuclear", "Power Storage", "Solar", "Wind", "Natural Gas", "Other"]
FUEL_BASE = {"Coal and Lignite": 9000.0, "Hydro": 150.0, "Nuclear": 5000.0, "Power Storage": 400.0,
             "Solar": 12000.0, "Wind": 14000.0, "Natural Gas": 30000.0, "Other": 60.0}


def fuel_gen(fuel: str, start: datetime, minutes: int) -> float:
    loc = _local(start)
    hour = loc.hour + loc.minute / 60
    if fuel == "Solar":
        shape = max(0.0, math.sin((hour - 6.5) / 13 * math.pi))
    elif fuel == "Power Storage":  # charges at midday, discharges in the evening
        shape = math.sin((hour - 13) / 24 * 2 * math.pi) * 4
    else:
        shape = 1 + 0.2 * math.sin((hour - 10) / 24 * 2 * math.pi)
    noise = 1 + (_u("fuel", fuel, minutes, start.timestamp()) - 0.5) * 0.05
    return round(FUEL_BASE[fuel] * shape * noise, 1)


def _fmt_stamp(t: datetime) -> str:
    return _local(t).strftime("%Y-%m-%d %H:%M:%S%z")


def fuel_mix_json(now: datetime) -> dict:
    """``fuel-mix.json`` as of ``now``: yesterday and today (local), one entry per 5-minute
    interval published so far, stamped a few seconds past the interval's start; about one interval
    in 40 is split across two stamps a few seconds apart, each holding part of the fuels."""
    today = _local(now).date()
    start = day_bounds(today - timedelta(days=1))[0]
    data: dict[str, dict[str, dict]] = {}
    t, last = start, None
    while t + timedelta(seconds=30) <= now:
        stamp = t + timedelta(seconds=1 + int(_u("stamp", t.timestamp()) * 15))
        if stamp > now:
            break
        fuels = {f: {"gen": fuel_gen(f, t, 5)} for f in FUELS}
        day = data.setdefault(_local(t).date().isoformat(), {})
        if _u("split", t.timestamp()) < 0.025:
            cut = 1 + int(_u("cut", t.timestamp()) * (len(FUELS) - 1))
            second = stamp + timedelta(seconds=2 + int(_u("gap", t.timestamp()) * 4))
            day[_fmt_stamp(stamp)] = dict(list(fuels.items())[:cut])
            day[_fmt_stamp(second)] = dict(list(fuels.items())[cut:])
        else:
            day[_fmt_stamp(stamp)] = fuels
        last = t
        t += timedelta(minutes=5)
    return {
        "lastUpdated": _fmt_stamp(last) if last else _fmt_stamp(now),
        "monthlyCapacity": {"Natural Gas": 69599, "Solar": 40957, "Wind": 40405, "Power Storage": 22376,
                            "Coal and Lignite": 13705, "Nuclear": 5268, "Hydro": 579, "Other": 663},
        "data": data,
    }


def supply_demand_json(now: datetime) -> dict:
    """``supply-demand.json``: today's 5-minute demand so far plus the hourly forecast."""
    today = _local(now).date()
    s, e = day_bounds(today)
    rows, t = [], s
    while t < e:
        actual = t <= now
        rows.append({"timestamp": _local(t).isoformat(), "epoch": int(t.timestamp() * 1000),
                     "demand": round(load_mw("SYSTEM", t, 5), 2), "capacity": 85000.0, "available": 80000.0,
                     "forecast": 0 if actual else 1})
        t += timedelta(minutes=5)
    forecast, t = [], s
    while t < e:
        d, he, rep = hour_label(t)
        forecast.append({"deliveryDate": d.isoformat(), "hourEnding": he, "dstFlag": rep,
                         "availCapGen": 80000.0, "forecastedDemand": round(load_mw("SYSTEM", t), 2),
                         "timestamp": _local(t).isoformat(), "epoch": int(t.timestamp() * 1000)})
        t += timedelta(hours=1)
    return {"lastUpdated": _local(now).isoformat(timespec="seconds"), "data": rows, "forecast": forecast}


def _dashboard(req: Request, name: str) -> Response:
    now = req.sim.now()
    if req.sim.fire("ercot_stale_dashboard"):
        now -= timedelta(minutes=5)  # the CDN still serves the copy of five minutes ago
    builders = {"fuel-mix.json": fuel_mix_json, "supply-demand.json": supply_demand_json}
    if name not in builders:
        if name in ("fuelMix.json", "systemWidePrices.json"):  # old names redirect
            return Response(302, b"", "text/html", {"Location": f"/ercot/www{DASHBOARDS}fuel-mix.json"})
        return Response(404, b"<html><body>Page not found</body></html>", "text/html")
    body = json.dumps(builders[name](now), separators=(",", ":")).encode()
    return Response(200, body, "application/json", {"Cache-Control": "max-age=60"})


# ------------------------------------------------------------------ IntGenbyFuel workbooks (gridinfo/generation)
WORKBOOK_FUELS = ["Biomass", "Coal", "Gas", "Gas-CC", "Hydro", "Nuclear", "Other", "Solar", "Wind"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def workbook_postings(year: int) -> list[tuple[date, int]]:
    """(posting date, months covered): the current year's file is re-posted on the 7th of each
    month with the months completed so far; the final version on 7 January of the next year."""
    return [(date(year, m + 1, 7) if m < 12 else date(year + 1, 1, 7), m) for m in range(1, 13)]


def latest_workbook(year: int, today: date) -> tuple[date, int] | None:
    posted = [p for p in workbook_postings(year) if p[0] <= today]
    return posted[-1] if posted else None


def workbook_columns(day: date) -> list[tuple[str, datetime | None]]:
    """The interval columns of one sheet row and the UTC start each holds on ``day`` (None: empty).

    Labels are interval *endings* ``0:15 .. 23:45, 0:00``; on the fall-back day four extra columns
    ``01:15 (DST) .. 02:00 (DST)`` hold the repeated hour; on the spring-forward day the labels
    ``2:00 .. 2:45`` are empty (the interval ending at 02:00 CST is labelled 3:00)."""
    s, e = day_bounds(day)
    by_label: dict[str, datetime] = {}
    dst: dict[str, datetime] = {}
    t = s
    while t < e:
        end = _local(t + timedelta(minutes=15))
        if _repeated(t):
            dst[f"{end:%H:%M} (DST)"] = t
        else:
            # the first pass of the repeated hour ends at the change (01:00 CST on the wall):
            # it keeps its daylight-time label 2:00 (wall-clock arithmetic on the aware time)
            wall = end + timedelta(hours=1) if _repeated(t + timedelta(minutes=15)) else end
            by_label[f"{wall.hour}:{wall.minute:02d}"] = t
        t += timedelta(minutes=15)
    labels = [f"{(m // 60) % 24}:{m % 60:02d}" for m in range(15, 24 * 60 + 15, 15)]
    cols = [(lbl, by_label.get(lbl)) for lbl in labels]
    return cols + sorted(dst.items())


@lru_cache(maxsize=8)
def workbook_bytes(year: int, months: int, first: int = 1) -> bytes:
    """The workbook as posted with ``months`` months (tests may start at month ``first``)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    summary = wb.create_sheet("Summary")
    summary.append([f"ERCOT Generation by Fuel Type {year}"])
    summary.append(["Energy in MWh per 15-minute settlement interval"])
    base_labels = [lbl for lbl, _ in workbook_columns(date(year, 1, 2))]
    for m in range(first, months + 1):
        ws = wb.create_sheet(MONTHS[m - 1])
        day = date(year, m, 1)
        days = []
        while day.month == m:
            days.append(day)
            day += timedelta(days=1)
        extra = sorted({lbl for d in days for lbl, _ in workbook_columns(d) if "(DST)" in lbl})
        ws.append(["Date", "Fuel", "Settlement Type", "Total", *base_labels, *extra])
        for d in days:
            cols = dict(workbook_columns(d))
            for fuel in WORKBOOK_FUELS:
                values = []
                for lbl in [*base_labels, *extra]:
                    start = cols.get(lbl)
                    values.append(None if start is None else round(fuel_gen_workbook(fuel, start) / 4, 2))
                total = round(sum(v for v in values if v is not None), 2)
                settlement = "FINAL" if (year, m) < (2026, 1) else "INITIAL"
                ws.append([datetime(d.year, d.month, d.day), fuel, settlement, total, *values])
    buf = io.BytesIO()
    wb.save(buf)
    posted = next(p for p, m in workbook_postings(year) if m == months)
    return _fixed_zip(buf.getvalue(), datetime(posted.year, posted.month, posted.day, 8, 0, 0))


def fuel_gen_workbook(fuel: str, start: datetime) -> float:
    mapping = {"Biomass": ("Other", 0.5), "Coal": ("Coal and Lignite", 1.0), "Gas": ("Natural Gas", 0.3),
               "Gas-CC": ("Natural Gas", 0.7), "Hydro": ("Hydro", 1.0), "Nuclear": ("Nuclear", 1.0),
               "Other": ("Other", 0.5), "Solar": ("Solar", 1.0), "Wind": ("Wind", 1.0)}
    src, share = mapping[fuel]
    return abs(fuel_gen(src, start, 15)) * share


def _generation_page(req: Request) -> Response:
    today = _local(req.sim.now()).date()
    links = []
    for year in range(today.year, FIRST_DAY.year - 1, -1):
        latest = latest_workbook(year, today)
        if latest:
            p = latest[0]
            links.append(f'<li><a href="/files/docs/{p:%Y/%m/%d}/IntGenbyFuel{year}.xlsx" '
                         f'title="IntGenbyFuel{year}">Fuel Mix Report: {year}</a></li>')
    html = ("<!DOCTYPE html><html><head><title>Generation | ERCOT</title></head><body>"
            "<h1>Generation</h1><h2>Fuel Mix Report</h2><ul>" + "".join(links) + "</ul></body></html>")
    return Response(200, html.encode(), "text/html; charset=utf-8")


def _workbook_file(req: Request) -> Response:
    m = re.fullmatch(r"/files/docs/(\d{4})/(\d{2})/(\d{2})/IntGenbyFuel(\d{4})\.xlsx", req.path)
    if not m:
        return Response(404, b"<html><body>Page not found</body></html>", "text/html")
    posted, year = date(int(m[1]), int(m[2]), int(m[3])), int(m[4])
    match = [p for p in workbook_postings(year) if p[0] == posted]
    if not match or posted > _local(req.sim.now()).date() or year < FIRST_DAY.year:
        return Response(404, b"<html><body>Page not found</body></html>", "text/html")
    return Response(200, workbook_bytes(year, match[0][1]),
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    {"Content-Disposition": f'attachment; filename="IntGenbyFuel{year}.xlsx"'})


# ------------------------------------------------------------------ annual hub / load-zone files (MIS, no auth)
@dataclass(frozen=True)
class Annual:
    """An annual MIS report: one zip per year holding one xlsx, one sheet per month, re-posted
    weekly (Mondays about 05:00) with the days before the posting; the final version on the first
    Monday of the next year. Only hubs and load zones."""

    index: int  # second digit of the doc id
    key: str
    rtid: int
    emil: str
    stem: str
    name: str
    header: Callable[[int], list[str]]
    rows: Callable[[date], Iterator[tuple]]
    size: int  # about what ERCOT's file weighs (MIS ContentSize), bytes per year


ANNUAL_RT_POINTS = sorted([*HUBS, *((z, "LZ") for z in ZONES), *((z, "LZEW") for z in ZONES)])
ANNUAL_DAM_POINTS = sorted([h for h, _ in HUBS] + ZONES)
ANNUAL_AS = ["REGDN", "REGUP", "RRS", "NSPIN", "ECRS"]


def _annual_rt_rows(day: date) -> Iterator[tuple]:
    """NP6-785-ER: the values of NP6-905-CD for the same hubs and zones (LZ and LZEW)."""
    s, e = day_bounds(day)
    t = s
    while t < e:
        d, he, rep = hour_label(t - timedelta(minutes=_local(t).minute))
        interval, flag = _local(t).minute // 15 + 1, "Y" if rep else "N"
        for name, typ in ANNUAL_RT_POINTS:
            yield (f"{d:%m/%d/%Y}", he, interval, flag, name, typ,
                   price("RT", name + ("EW" if typ.endswith("EW") else ""), t))
        t += timedelta(minutes=15)


def _annual_dam_rows(day: date) -> Iterator[tuple]:
    """NP4-180-ER: the values of NP4-190-CD for the hubs and load zones."""
    s, e = day_bounds(day)
    t = s
    while t < e:
        d, he, rep = hour_label(t)
        for p in ANNUAL_DAM_POINTS:
            yield (f"{d:%m/%d/%Y}", f"{he:02d}:00", "Y" if rep else "N", p, price("DAM", p, t))
        t += timedelta(hours=1)


def _annual_as_products(year: int) -> list[str]:
    return [p for p in ANNUAL_AS if p != "ECRS" or year >= ECRS_FIRST_DAY.year]


def _annual_as_header(year: int) -> list[str]:
    # ERCOT quirk kept on purpose: the REGUP header carries a trailing space
    return ["Delivery Date", "Hour Ending", "Repeated Hour Flag",
            *("REGUP " if p == "REGUP" else p for p in _annual_as_products(year))]


def _annual_as_rows(day: date) -> Iterator[tuple]:
    """NP4-181-ER, wide: the MCPCs of NP4-188-CD, one column per product (ECRS empty before its day)."""
    s, e = day_bounds(day)
    t = s
    while t < e:
        d, he, rep = hour_label(t)
        values = [None if p not in as_types(day) else mcpc("DAM", p, t) for p in _annual_as_products(day.year)]
        yield (f"{d:%m/%d/%Y}", f"{he:02d}:00", "Y" if rep else "N", *values)
        t += timedelta(hours=1)


ANNUAL = {
    a.rtid: a
    for a in (
        Annual(0, "lmp_rt15m", 13061, "NP6-785-ER", "RTMLZHBSPP", "Historical RTM Load Zone and Hub Prices",
               lambda y: ["Delivery Date", "Delivery Hour", "Delivery Interval", "Repeated Hour Flag",
                          "Settlement Point Name", "Settlement Point Type", "Settlement Point Price"],
               _annual_rt_rows, 13_300_000),
        Annual(1, "lmp_dam", 13060, "NP4-180-ER", "DAMLZHBSPP", "Historical DAM Load Zone and Hub Prices",
               lambda y: ["Delivery Date", "Hour Ending", "Repeated Hour Flag", "Settlement Point",
                          "Settlement Point Price"], _annual_dam_rows, 2_050_000),
        Annual(2, "as_dam", 13091, "NP4-181-ER", "DAMASMCPC", "Historical DAM Clearing Prices for Capacity",
               _annual_as_header, _annual_as_rows, 85_000),
    )
}
ANNUAL_BY_INDEX = {a.index: a for a in ANNUAL.values()}


@lru_cache(maxsize=64)
def annual_postings(report: Annual, year: int) -> tuple[datetime, ...]:
    """UTC posting times of a year's file: every Monday after 1 January at about 05:00 local, the
    last one on the first Monday of the next year (the complete year)."""
    d = date(year, 1, 2)
    d += timedelta(days=(7 - d.weekday()) % 7)
    out = []
    while True:
        p = datetime(d.year, d.month, d.day, 5, 0, tzinfo=CT).astimezone(UTC)
        out.append(p + timedelta(seconds=int(_u("annual", report.rtid, p.timestamp()) * 40)))
        if d >= date(year + 1, 1, 1):
            return tuple(out)
        d += timedelta(days=7)


@dataclass(frozen=True)
class AnnualDoc:
    report: Annual
    year: int
    posted: datetime

    @property
    def doc_id(self) -> str:
        return f"9{self.report.index}{self.year:04d}{int(self.posted.timestamp()):010d}"

    @property
    def friendly(self) -> str:
        return f"{self.report.stem}_{self.year}"

    @property
    def constructed(self) -> str:
        return f"rpt.{self.report.rtid:08d}.0000000000000000.{_local(self.posted):%Y%m%d%H%M%S}.{self.friendly}.zip"

    @property
    def last_day(self) -> date:
        """The last day the posting holds (the day before its posting day, within its year)."""
        return min(_local(self.posted).date() - timedelta(days=1), date(self.year, 12, 31))

    def zip_bytes(self) -> bytes:
        return annual_zip(self.report.rtid, self.year, self.posted)


def decode_annual(doc_id: str) -> AnnualDoc | None:
    if not (doc_id.isdigit() and len(doc_id) == 16 and doc_id[0] == "9") or int(doc_id[1]) not in ANNUAL_BY_INDEX:
        return None
    report, year = ANNUAL_BY_INDEX[int(doc_id[1])], int(doc_id[2:6])
    posted = datetime.fromtimestamp(int(doc_id[6:]), UTC)
    if year < FIRST_DAY.year or posted not in annual_postings(report, year):
        return None
    return AnnualDoc(report, year, posted)


def annual_docs(report: Annual, now: datetime) -> list[AnnualDoc]:
    """What MIS lists: the latest posting of every year since 2019, newest first."""
    out = []
    for year in range(_local(now).year, FIRST_DAY.year - 1, -1):
        posted = [p for p in annual_postings(report, year) if p <= now]
        if posted:
            out.append(AnnualDoc(report, year, posted[-1]))
    return out


def annual_workbook(rtid: int, year: int, last_day: date, days: tuple[date, ...] | None = None) -> bytes:
    """The xlsx of a year's file holding the days up to ``last_day``: a sheet per month
    (``Jan`` ..), one all-null row a year (after the first day of the last sheet, as ERCOT's files
    carry one). ``days`` keeps only those days (small workbooks for unit tests)."""
    report = ANNUAL[rtid]
    header = report.header(year)
    by_month: dict[int, list[date]] = {}
    day = date(year, 1, 1)
    while day <= last_day:
        if days is None or day in days:
            by_month.setdefault(day.month, []).append(day)
        day += timedelta(days=1)
    last = max(by_month) if by_month else None

    def rows(month: int) -> Iterator[tuple]:
        for i, d in enumerate(by_month[month]):
            yield from report.rows(d)
            if month == last and i == 0:
                yield (None,) * len(header)

    sheets = [(MONTHS[m - 1], header, rows(m)) for m in sorted(by_month)]
    return fast_xlsx(sheets, datetime.combine(last_day + timedelta(days=1), datetime.min.time()).replace(hour=5))


@lru_cache(maxsize=4)
def annual_zip(rtid: int, year: int, posted: datetime) -> bytes:
    """The annual file as MIS serves it: a zip holding ``rpt.<rtid>....<STEM>_<YYYY>.xlsx``.
    Generated on first download and kept (a year of 15-minute prices takes a few seconds)."""
    doc = AnnualDoc(ANNUAL[rtid], year, posted)
    p = _local(posted)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(zipfile.ZipInfo(doc.constructed.removesuffix(".zip") + ".xlsx",
                                    (p.year, p.month, p.day, p.hour, p.minute, p.second)),
                    annual_workbook(rtid, year, doc.last_day), zipfile.ZIP_STORED)
    return buf.getvalue()


def _mis_annual_doc(d: AnnualDoc) -> dict:
    share = (d.last_day - date(d.year, 1, 1)).days + 1
    return {"Document": {
        "ContentSize": str(d.report.size * share // 365), "Extension": "zip", "ReportTypeID": str(d.report.rtid),
        "FriendlyName": d.friendly, "ConstructedName": d.constructed, "DocID": d.doc_id,
        "PublishDate": _local(d.posted).isoformat(timespec="seconds"), "ReportName": d.report.name,
    }}
