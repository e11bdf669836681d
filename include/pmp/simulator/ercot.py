"""ERCOT in the simulator: MIS document list/download, the Public API (B2C token, subscription key,
30 requests/min, archive listing, bulk zip-of-zips download, DAM query endpoint).

Hosts: ``/ercot/www`` = www.ercot.com, ``/ercot/api`` = api.ercot.com, ``/ercot/b2c`` =
ercotb2c.b2clogin.com. Files match the real samples: LF endings, no quoting, a trailing newline,
DAM prices with a leading space, prices without fixed decimals.

Document ids are decodable: ``<kind><UTC epoch of the document's key instant><0 csv | 1 xml>``.
Data are deterministic for any date since 2019-01-01, and DST days are exact (23/25 hours).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from pmp.simulator.server import Request, Response, plugin

CT = ZoneInfo("America/Chicago")
FIRST_DAY = date(2019, 1, 1)
HUBS = [("HB_BUSAVG", "SH"), ("HB_HOUSTON", "HU"), ("HB_HUBAVG", "AH"), ("HB_NORTH", "HU"),
        ("HB_PAN", "HU"), ("HB_SOUTH", "HU"), ("HB_WEST", "HU")]
ZONES = ["LZ_AEN", "LZ_CPS", "LZ_HOUSTON", "LZ_LCRA", "LZ_NORTH", "LZ_RAYBN", "LZ_SOUTH", "LZ_WEST"]
DC_TIES = ["DC_E", "DC_L", "DC_N", "DC_R"]
REAL_NODES = ["7RNCHSLR_ALL", "A4_DGR1_RN", "A4_DGR2_RN", "ABINDUST_RN", "ADL_RN"]


def resource_nodes() -> list[str]:
    n = int(os.environ.get("PMP_SIM_ERCOT_NODES", "20"))
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

    def posted(self, key: datetime) -> datetime:
        if self.kind == 1:  # DAM for day D posts on D-1 at about 12:30 local
            d = _local(key).date() - timedelta(days=1)
            return datetime(d.year, d.month, d.day, 12, 30, 0, tzinfo=CT).astimezone(UTC) + timedelta(
                seconds=int(_u("post", key.timestamp()) * 240))
        return key + self.offset + self.step + self.post_delay

    def keys(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Document key instants in [start, end) (UTC)."""
        if self.kind == 1:
            day = max(_local(start).date(), FIRST_DAY)
            while True:
                k = day_bounds(day)[0]
                if k >= end:
                    return
                if k >= start:
                    yield k
                day += timedelta(days=1)
        step = int(self.step.total_seconds())
        t = max(int(start.timestamp()), int(day_bounds(FIRST_DAY)[0].timestamp()))
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
    out = [Doc(report, k) for k in report.keys(posted_from - lead, posted_to + timedelta(minutes=1))]
    return [d for d in out if posted_from <= d.posted <= posted_to]


def csv_for(dataset: str, day: date) -> str:
    """All CSV documents of a dataset for a market day, concatenated (one header each)."""
    report = next(r for r in REPORTS.values() if r.key == dataset)
    s, e = day_bounds(day)
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
        report = REPORTS.get(int(req.query.get("reportTypeId", "0") or 0))
        docs: list[dict] = []
        if report:
            now = req.sim.now()
            for d in reversed(documents(report, now - timedelta(days=report.retention_days), now)):
                docs += [_mis_doc(d), _mis_doc(Doc(d.report, d.key, xml=True))]
        return Response.json({"ListDocsByRptTypeRes": {"DocumentList": docs}})
    if req.path == "/misdownload/servlets/mirDownload":
        d = decode(req.query.get("doclookupId", ""))
        now = req.sim.now()
        if d is None or d.posted > now or d.posted < now - timedelta(days=d.report.retention_days):
            return Response(404, b"<html><body>Document not found</body></html>", "text/html")
        return _zip_response(req, d.zip_bytes(), d.constructed + ".zip")
    return Response(404, b"Not Found", "text/plain")


def _zip_response(req: Request, data: bytes, name: str) -> Response:
    if req.sim.fire("corrupt_zip"):
        data = data[: len(data) // 2]
    return Response(200, data, "application/zip", {"Content-Disposition": f'attachment; filename="{name}"'})


# ------------------------------------------------------------------ B2C token
def _api_state(req: Request) -> dict:
    return req.sim.state.setdefault("ercot", {"tokens": {}, "calls": {}})


@plugin("/ercot/b2c")
def b2c(req: Request) -> Response:
    if not req.path.endswith("/oauth2/v2.0/token") or req.method != "POST":
        return Response(404, b"Not Found", "text/plain")
    form = {k: v[-1] for k, v in parse_qs(req.body.decode()).items()}
    user = os.environ.get("PMP_SIM_ERCOT_USERNAME", "sim-user")
    pw = os.environ.get("PMP_SIM_ERCOT_PASSWORD", "sim-pass")
    if form.get("grant_type") != "password" or form.get("username") != user or form.get("password") != pw:
        return Response.json({"error": "invalid_grant",
                              "error_description": "AADB2C90225: The username or password provided is invalid."}, 400)
    token = secrets.token_urlsafe(48)
    _api_state(req)["tokens"][token] = req.sim.now()
    return Response.json({"access_token": token, "id_token": token, "token_type": "Bearer",
                          "not_before": str(int(time.time())), "expires_in": "3600",
                          "id_token_expires_in": "3600", "refresh_token": secrets.token_urlsafe(32)})


# ------------------------------------------------------------------ Public API (api.ercot.com)
API = "/api/public-reports"


def _authorize(req: Request) -> Response | None:
    key = req.headers.get("Ocp-Apim-Subscription-Key") or req.query.get("subscription-key")
    if key != os.environ.get("PMP_SIM_ERCOT_SUBSCRIPTION_KEY", "sim-key"):
        return Response.json({"statusCode": 401, "message": "Access denied due to missing subscription key. "
                              "Make sure to include subscription key when making requests to an API."}, 401)
    state = _api_state(req)
    rpm = int(os.environ.get("PMP_SIM_ERCOT_RPM", "30"))
    calls: deque = state["calls"].setdefault(key, deque())
    now = time.monotonic()
    while calls and now - calls[0] > 60:
        calls.popleft()
    if req.sim.fire("rate_limit") or len(calls) >= rpm:
        wait = 1 if not calls else max(1, int(61 - (now - calls[0])))
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
        docs = documents(report, lo, hi)
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
