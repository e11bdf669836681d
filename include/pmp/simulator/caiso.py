"""CAISO in the simulator: OASIS ``SingleZip``/``GroupZip`` and the Today's Outlook CSVs.

Hosts: ``/caiso/oasis`` = oasis.caiso.com, ``/caiso/www`` = www.caiso.com.

OASIS, as the reference and the real sample show it:
* ``resultformat=6`` answers HTTP 200 with a zip of CSV (LF line endings, no quoting, a trailing
  newline); an "all APnodes" price query (``grp_type``) splits into one CSV per ``LMP_TYPE``
  (``<d0>_<d1>_<QUERY>_<MARKET>_<TYPE>_v<ver>.csv``), other queries give one CSV named with the
  generation time (``<d0>_<d1>_<QUERY>_<MARKET>_<YYYYMMDD_HH_MM_SS>_v<ver>.csv``). Zip entry times
  are the generation time, so two downloads of the same query differ in bytes, as on OASIS;
* rows are unsorted; five LMP_TYPE rows per node and interval (LMP = MCE + MCC + MCL + MGHG);
  ``OPR_HR`` is hour ending with 25 for the repeated fall-back hour and no 3 on spring-forward;
* column orders differ between the DAM and real-time files (``MW``/``PRC``/``VALUE`` columns);
* errors are HTTP 200 zips holding ``<stem>.xml`` with ``<m:ERR_CODE>``: 1000 no data, 1002 bad
  time, 1004 window over 31 days, 1005 unknown query, 1015 GroupZip still processing (the first
  request of a group window; ask again), 1016 bad group, 1017 more than 10 nodes, 1020 version;
* one request per 5 seconds: faster requests get HTTP 429 with the "Acceptable Use Policy
  Violation" page (``PMP_SIM_CAISO_MIN_INTERVAL`` seconds, default 5; the switch
  ``caiso_no_throttle`` turns it off);
* ``PRC_AS`` with ``anc_type=ALL`` returns only the first trade day of a longer window;
* retention: PRC_LMP-family SingleZip keeps 39 months before the simulator clock, GroupZip
  ``DAM_LMP_GRP`` starts 2021-04-27; other queries serve every day since 2019-01-01.

Publication relative to the simulator clock: DAM prices at 13:00 PT the day before; real-time
prices 2 minutes after the interval ends; actual load 30 minutes after the hour; DAM/2DA/7DA load
forecasts at 09:10 PT 1/2/7 days ahead; RTPD/RTD forecasts 22.5/2.5 minutes before the interval.

Today's Outlook: ``/outlook/history/YYYYMMDD/{fuelsource,demand}.csv`` and ``/outlook/current/...``:
``HH:MM`` local labels only, CRLF, a UTF-8 BOM on fuelsource, future rows present with empty
values, the spring-forward gap hour present with empty values, the fall-back hour listed twice,
a trailing ``00:00`` row (next day's midnight) in past days' files, ``Natural gas``/``Large hydro``
spellings before 2020, and ``current`` serving yesterday's file until today's first interval.

Faults (``register_faults``): ``caiso_no_throttle`` (switch), ``caiso_no_data`` (answer 1000),
``caiso_system_error`` (1010), ``caiso_window_error`` (1004), ``caiso_groupzip_processing``
(extra 1015 answers), ``caiso_bad_row`` (a valid zip whose first CSV row has a malformed time);
generic ``rate_limit`` (one 429 page) and ``corrupt_zip`` (truncated zip).
Data are deterministic for any date since 2019-01-01; ``PMP_SIM_CAISO_NODES`` adds APnodes.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from pmp.simulator.server import Request, Response, plugin, register_faults
from pmp.validate import env_number

register_faults("caiso_no_throttle", "caiso_no_data", "caiso_system_error", "caiso_window_error",
                "caiso_groupzip_processing", "caiso_bad_row")

PT = ZoneInfo("America/Los_Angeles")
FIRST_DAY = date(2019, 1, 1)
GROUPZIP_FIRST_DAY = date(2021, 4, 27)
PRC_RETENTION_DAYS = 1187  # about 39 months
MAX_WINDOW = timedelta(days=31, hours=1)

HUBS = ["TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND"]
DLAPS = ["DLAP_PGAE-APND", "DLAP_SCE-APND", "DLAP_SDGE-APND", "DLAP_VEA-APND"]
REAL_APNODES = ["AFPR_1_TOT_GEN-APND", "ALAMIT_7_B1-APND", "LAPLMG1_7_B2-APND"]
PNODES = ["0096WD_7_N001", "LAPLMG1_7_B2"]  # only with grp_type=ALL and in GroupZip
LMP_TYPES = [("LMP", "LMP_PRC"), ("MCC", "LMP_CONG_PRC"), ("MCE", "LMP_ENE_PRC"), ("MCL", "LMP_LOSS_PRC"),
             ("MGHG", "LMP_GHG_PRC")]
# GROUP of an LMP_TYPE's rows. Reference 3.3: DAM LMP rows carry 1, RT rows MCC 1 and MCE 2; the
# rest of the RT order (MCL 3, MGHG 4, LMP 5) and the DAM order after LMP are [assumed].
LMP_GROUP = {"DAM": {t: i for i, (t, _) in enumerate(LMP_TYPES, start=1)},
             "RT": {t: i for i, t in enumerate(["MCC", "MCE", "MCL", "MGHG", "LMP"], start=1)}}
AS_REGIONS = ["AS_CAISO", "AS_CAISO_EXP", "AS_NP26", "AS_NP26_EXP", "AS_SP26", "AS_SP26_EXP"]
AS_TYPES = {"NR": "NS", "RD": "RD", "RMD": "RMD", "RMU": "RMU", "RU": "RU", "SR": "SP"}
TAC_AREAS = ["CA ISO-TAC", "MWD-TAC", "PGE-TAC", "SCE-TAC", "SDGE-TAC", "VEA-TAC"]
FUELS = ["Solar", "Wind", "Geothermal", "Biomass", "Biogas", "Small hydro", "Coal", "Nuclear", "Natural Gas",
         "Large Hydro", "Batteries", "Imports", "Other"]
OLD_SPELLING = {"Natural Gas": "Natural gas", "Large Hydro": "Large hydro"}
OLD_SPELLING_UNTIL = date(2020, 1, 1)  # [R] the year the header changed is not documented
DEMAND_HEADER = "Time,Day ahead forecast,Hour ahead forecast,Current demand"

AUP_PAGE = (b"<html><body><p>CAISO Acceptable Use Policy Violation. Please retry your request after 5 seconds."
            b"</p></body></html>")
ERRORS = {
    1000: "No data returned for the specified selection",
    1002: "Invalid Date Format, Please use format YYYYMMDDTHH24:MI-HHMM",
    1004: "Data can be requested for period of 31 days only",
    1005: "Invalid Report Name",
    1010: "System Error, Please try again later",
    1015: "GroupZip DownLoad is in Processing, Please Submit request after Sometime",
    1016: "Invalid GROUPID",
    1017: "Please select a maximum of 10 nodes or use the ALL option",
    1020: "Version is missing or invalid",
}


def apnodes() -> list[str]:
    n = env_number("PMP_SIM_CAISO_NODES", 0)
    return HUBS + DLAPS + REAL_APNODES + [f"SIM_{i:03d}_GEN-APND" for i in range(n)]


# ------------------------------------------------------------------ time labels
def local(t: datetime) -> datetime:
    return t.astimezone(PT)


def _repeated(t: datetime) -> bool:
    """Inside the second (PST) copy of the fall-back hour."""
    loc = local(t)
    wall = loc.replace(tzinfo=None)
    return loc.fold == 1 and wall.replace(tzinfo=PT, fold=0).utcoffset() != wall.replace(tzinfo=PT, fold=1).utcoffset()


def opr_hr(t: datetime) -> int:
    """Hour ending of the hour holding ``t``: local start hour + 1, and 25 for the repeated
    fall-back hour (so 1, 2, 25, 3, ... that day); spring-forward skips 3 (1, 2, 4, ...)."""
    return 25 if _repeated(t) else local(t).hour + 1


def gmt(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    s = datetime.combine(day, dtime(), PT).astimezone(UTC)
    e = datetime.combine(day + timedelta(days=1), dtime(), PT).astimezone(UTC)
    return s, e


def _steps(start: datetime, end: datetime, minutes: int) -> Iterator[datetime]:
    step = minutes * 60
    t = -(-int(start.timestamp()) // step) * step
    while t < end.timestamp():
        yield datetime.fromtimestamp(t, UTC)
        t += step


# ------------------------------------------------------------------ values
def _u(*parts: object) -> float:
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def _shape(t: datetime) -> float:
    """Duck curve: cheap at midday (solar), dear in the evening ramp."""
    h = local(t).hour + local(t).minute / 60
    return 1 + 0.35 * math.sin((h - 13) / 24 * 2 * math.pi) - 0.25 * math.exp(-((h - 12.5) ** 2) / 8)


def lmp_parts(market: str, node: str, t: datetime) -> dict[str, float]:
    energy = round(42 * _shape(t) + 10 * _u("e", market, local(t).date()) + (_u("e", market, t) - 0.5)
                   * (3 if market == "DAM" else 12), 5)
    if _u("neg", market, t) > 0.985:
        energy = round(-abs(energy) / 5, 5)
    cong = 0.0 if _u("c0", node, t) < 0.6 else round((_u("c", market, node, t) - 0.45) * 9, 5)
    loss = round((_u("l", node) - 0.5) * 0.08 * energy, 5)
    ghg = 0.0 if node.startswith(("TH_", "DLAP_")) or _u("g", node) < 0.5 else round(_u("g", node, t) * 2.5, 5)
    return {"MCE": energy, "MCC": cong, "MCL": loss, "MGHG": ghg, "LMP": round(energy + cong + loss + ghg, 5)}


def as_price(market: str, product: str, region: str, t: datetime) -> float:
    base = {"NR": 0.6, "RD": 8.0, "RMD": 0.1, "RMU": 0.2, "RU": 12.0, "SR": 6.0}[product]
    if region != "AS_CAISO_EXP":  # nested regions add to the system price and are usually 0
        return round(base * _u("sub", region, t), 2) if _u("subnz", market, product, region, t) > 0.9 else 0.0
    return round(base * _shape(t) * (0.6 + 0.8 * _u("as", market, product, t)), 2)


def area_load(area: str, t: datetime) -> float:
    share = {"MWD-TAC": 0.012, "PGE-TAC": 0.42, "SCE-TAC": 0.46, "SDGE-TAC": 0.1, "VEA-TAC": 0.008}
    if area == "CA ISO-TAC":
        return round(sum(area_load(a, t) for a in share), 2)
    h = local(t).hour + local(t).minute / 60
    system = 24000 + 8000 * math.sin((h - 10) / 24 * 2 * math.pi) + 1500 * _u("d", local(t).date())
    return round(system * share[area] * (0.98 + 0.04 * _u("a", area, t)), 2)


def forecast_load(area: str, vintage: str, t: datetime) -> float:
    spread = {"7DA": 0.06, "2DA": 0.03, "DAM": 0.02, "RTPD": 0.01, "RTD": 0.005}[vintage]
    if area == "CA ISO-TAC":
        return round(sum(forecast_load(a, vintage, t) for a in TAC_AREAS[1:]), 2)
    return round(area_load(area, t) * (1 + spread * (_u("f", vintage, area, t) - 0.5)), 2)


def fuel_mw(fuel: str, t: datetime) -> int:
    h = local(t).hour + local(t).minute / 60
    sun = max(0.0, math.sin((h - 6) / 13 * math.pi)) if 6 <= h <= 19 else 0.0
    wobble = _u("fuel", fuel, t)
    if fuel == "Solar":
        return round(13000 * sun + (wobble - 0.5) * 200) if sun else -round(3 + 30 * wobble)
    if fuel == "Batteries":
        return round(-2500 * sun + 4000 * (1 if 17 <= h <= 21 else 0) + (wobble - 0.5) * 300)
    base = {"Wind": 3000, "Geothermal": 900, "Biomass": 310, "Biogas": 205, "Small hydro": 160, "Coal": 4,
            "Nuclear": 2240, "Natural Gas": 9000 * (1.4 - sun), "Large Hydro": 1800, "Imports": 6500 * (1.2 - sun),
            "Other": 0}[fuel]
    return round(base * (0.93 + 0.14 * wobble))


# ------------------------------------------------------------------ publication
def _trade_day(t: datetime) -> date:
    return local(t).date()


def _at(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, dtime(hh, mm), PT).astimezone(UTC)


def published(query: str, market: str, execution: str, t: datetime, minutes: int) -> datetime:
    if market == "DAM" and query in ("PRC_LMP", "PRC_AS"):
        return _at(_trade_day(t) - timedelta(days=1), 13, 0)
    if query == "SLD_FCST":
        if market == "ACTUAL":
            return t + timedelta(minutes=minutes + 30)
        if market in ("DAM", "2DA", "7DA"):
            return _at(_trade_day(t) - timedelta(days={"DAM": 1, "2DA": 2, "7DA": 7}[market]), 9, 10)
        return t - timedelta(minutes=22.5 if execution == "RTPD" else 2.5)
    return t + timedelta(minutes=minutes + 2)


# ------------------------------------------------------------------ OASIS answers
@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str
    filename: str = ""


class OasisFault(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _zip(members: list[tuple[str, str]], gen: datetime) -> bytes:
    stamp = local(gen)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members:
            info = zipfile.ZipInfo(name, (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode())
    return buf.getvalue()


def error_answer(code: int, stem: str, gen: datetime) -> Answer:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<m:OASISReport xmlns:m="http://www.caiso.com/soa/OASISReport_v1.xsd"><m:MessageHeader>'
        f"<m:TimeDate>{gmt(gen)}</m:TimeDate><m:Source>OASIS</m:Source><m:Version>v20131201</m:Version>"
        "</m:MessageHeader><m:MessagePayload><m:RTO><m:name>CAISO</m:name><m:ERROR>"
        f"<m:ERR_CODE>{code}</m:ERR_CODE><m:ERR_DESC>{ERRORS.get(code, 'Error')}</m:ERR_DESC>"
        "</m:ERROR></m:RTO></m:MessagePayload></m:OASISReport>\n"
    )
    return Answer(200, _zip([(f"{stem}.xml", xml)], gen), "application/x-zip-compressed", f"{stem}.xml.zip")


def _parse_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H:%M%z").astimezone(UTC)
    except ValueError:
        raise OasisFault(1002) from None


def _csv(header: list[str], rows: list[list[str]], *, shuffle: bool = True) -> str:
    lines = [",".join(r) for r in rows]
    if shuffle:  # OASIS rows come unsorted
        lines.sort(key=lambda line: _u("order", line))
    return ",".join(header) + "\n" + "".join(line + "\n" for line in lines)


def _fmt_dam(v: float) -> str:
    s = f"{v:.5f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _fmt_rt(v: float) -> str:
    return f"{v:.5f}"


def _fmt2(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


@dataclass(frozen=True)
class Query:
    versions: frozenset[str]
    markets: frozenset[str]
    build: Callable[[dict[str, str], datetime, datetime, datetime], list[tuple[str, list[str], list[list[str]]]]]


LMP_DAM_HEADER = ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,NODE_ID_XML,NODE_ID,NODE,"
                  "MARKET_RUN_ID,LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,MW,GROUP").split(",")
LMP_RT_HEADER = ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,NODE_ID_XML,NODE_ID,NODE,MARKET_RUN_ID,"
                 "LMP_TYPE,XML_DATA_ITEM,PNODE_RESMRID,GRP_TYPE,POS,VALUE,OPR_INTERVAL,GROUP").split(",")
LMP_RTPD_HEADER = [("PRC" if c == "VALUE" else c) for c in LMP_RT_HEADER]  # same order, PRC for VALUE
AS_DAM_HEADER = ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_INTERVAL,OPR_TYPE,ANC_TYPE,ANC_REGION,"
                 "MARKET_RUN_ID,XML_DATA_ITEM,MW,GROUP").split(",")
AS_RT_HEADER = ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,OPR_DT,OPR_HR,OPR_TYPE,ANC_TYPE,XML_DATA_ITEM,"
                "MARKET_RUN_ID,MW,ANC_REGION,OPR_INTERVAL,GROUP").split(",")
SLD_HEADER = ("INTERVALSTARTTIME_GMT,INTERVALENDTIME_GMT,LOAD_TYPE,OPR_DT,OPR_HR,OPR_INTERVAL,MARKET_RUN_ID,"
              "TAC_AREA_NAME,LABEL,XML_DATA_ITEM,POS,MW,EXECUTION_TYPE,GROUP").split(",")
SLD_LABELS = {"ACTUAL": ("Total Actual Hourly Integrated Load", "SYS_FCST_ACT_MW"),
              "DAM": ("Demand Forecast Day Ahead", "SYS_FCST_DA_MW"),
              "2DA": ("Demand Forecast 2-Day Ahead", "SYS_FCST_2DA_MW"),
              "7DA": ("Demand Forecast 7-Day Ahead", "SYS_FCST_7DA_MW"),
              "RTPD": ("Demand Forecast RTPD", "SYS_FCST_15MIN_MW"),
              "RTD": ("Demand Forecast RTD", "SYS_FCST_5MIN_MW")}


def _lmp_retained(q: dict[str, str], t: datetime, now: datetime) -> bool:
    """SingleZip price queries keep a rolling window; GroupZip (``retention=off``) keeps its own."""
    if q.get("retention") == "off":
        return True
    return _trade_day(t) >= local(now).date() - timedelta(days=PRC_RETENTION_DAYS)


def _lmp_nodes(q: dict[str, str]) -> tuple[list[str], bool]:
    """(nodes, split by LMP_TYPE). ``grp_type=ALL`` adds pnodes to the APnodes."""
    if q.get("node"):
        nodes = [n for n in q["node"].split(",") if n]
        if len(nodes) > 10:
            raise OasisFault(1017)
        known = set(apnodes() + PNODES)
        return [n for n in nodes if n in known], False
    grp = q.get("grp_type", "")
    if grp == "ALL":
        return apnodes() + PNODES, True
    if grp == "ALL_APNODES":
        return apnodes(), True
    raise OasisFault(1017)


def _lmp_build(query: str, minutes: int) -> Callable:
    def build(q: dict[str, str], start: datetime, end: datetime, now: datetime) -> list:
        market = q["market_run_id"]
        nodes, split = _lmp_nodes(q)
        dam = query == "PRC_LMP"
        header = LMP_DAM_HEADER if dam else LMP_RTPD_HEADER if query == "PRC_RTPD_LMP" else LMP_RT_HEADER
        by_type: dict[str, list[list[str]]] = {t: [] for t, _ in LMP_TYPES}
        for t in _steps(start, end, minutes):
            if published(query, market, "", t, minutes) > now or _trade_day(t) < FIRST_DAY:
                continue
            if not _lmp_retained(q, t, now):
                continue
            e = t + timedelta(minutes=minutes)
            hr = opr_hr(t)
            interval = 0 if dam else local(t).minute // minutes + 1
            groups = LMP_GROUP["DAM" if dam else "RT"]
            for node in nodes:
                parts = lmp_parts(market if not dam else "DAM", node, t)
                grp = "ALL_APNODES" if node.endswith("-APND") else "ALL"
                pos = "1" if grp == "ALL" else "0"  # reference 3.3: the GRP_TYPE ALL pnode row has POS 1
                for lmp_type, item in LMP_TYPES:
                    v, group = parts[lmp_type], groups[lmp_type]
                    if dam:
                        row = [gmt(t), gmt(e), f"{_trade_day(t)}", str(hr), "0", node, node, node, market, lmp_type,
                               item, node, grp, pos, _fmt_dam(v), str(group)]
                    else:
                        row = [gmt(t), gmt(e), f"{_trade_day(t)}", f"{hr:02d}", node, node, node, market, lmp_type,
                               item, node, grp, pos, _fmt_rt(v), str(interval), str(group)]
                    by_type[lmp_type].append(row)
        if split:
            return [(lmp_type, header, rows) for lmp_type, rows in by_type.items() if rows]
        mixed = [r for rows in by_type.values() for r in rows]
        return [("", header, mixed)] if mixed else []

    return build


def _as_build(query: str, minutes: int) -> Callable:
    def build(q: dict[str, str], start: datetime, end: datetime, now: datetime) -> list:
        market = q["market_run_id"]
        types = sorted(AS_TYPES) if q.get("anc_type", "ALL") == "ALL" else [q["anc_type"]]
        regions = AS_REGIONS if q.get("anc_region", "ALL") == "ALL" else [q["anc_region"]]
        if any(t not in AS_TYPES for t in types) or any(r not in AS_REGIONS for r in regions):
            return []
        if query == "PRC_AS" and q.get("anc_type", "ALL") == "ALL":
            # quirk: anc_type=ALL silently returns only the first trade day of the window
            end = min(end, day_bounds(_trade_day(start))[1])
        rows = []
        for t in _steps(start, end, minutes):
            if published(query, market, "", t, minutes) > now or _trade_day(t) < FIRST_DAY:
                continue
            e = t + timedelta(minutes=minutes)
            hr = opr_hr(t)
            for group, product in enumerate(types, start=1):
                item = f"{AS_TYPES[product]}_CLR_PRC"
                for region in regions:
                    price = _fmt2(as_price(market, product, region, t))
                    if query == "PRC_AS":
                        rows.append([gmt(t), gmt(e), f"{_trade_day(t)}", str(hr), "0", "MCP", product, region, market,
                                     item, price, str(group)])
                    else:
                        rows.append([gmt(t), gmt(e), f"{_trade_day(t)}", str(hr), "MCP", product, item, market, price,
                                     region, str(local(t).minute // minutes + 1), str(group)])
        return [("", AS_DAM_HEADER if query == "PRC_AS" else AS_RT_HEADER, rows)] if rows else []

    return build


def _sld_build(q: dict[str, str], start: datetime, end: datetime, now: datetime) -> list:
    market = q["market_run_id"]
    executions = [q["execution_type"]] if market == "RTM" and q.get("execution_type") else (
        ["RTPD", "RTD"] if market == "RTM" else [""])
    areas = TAC_AREAS if q.get("tac_area_name", "ALL") == "ALL" else [q["tac_area_name"]]
    rows = []
    for execution in executions:
        if execution not in ("", "RTPD", "RTD"):
            return []
        minutes = {"RTPD": 15, "RTD": 5}.get(execution, 60)
        label, item = SLD_LABELS[execution or market]
        for t in _steps(start, end, minutes):
            if published("SLD_FCST", market, execution, t, minutes) > now or _trade_day(t) < FIRST_DAY:
                continue
            e = t + timedelta(minutes=minutes)
            interval = 0 if minutes == 60 else local(t).minute // minutes + 1
            for group, area in enumerate(areas, start=1):
                mw = area_load(area, t) if market == "ACTUAL" else forecast_load(area, execution or market, t)
                rows.append([gmt(t), gmt(e), "0", f"{_trade_day(t)}", str(opr_hr(t)), str(interval), market, area,
                             label, item, "0", _fmt2(mw), execution or market, str(group)])
    return [("", SLD_HEADER, rows)] if rows else []


QUERIES: dict[str, Query] = {
    "PRC_LMP": Query(frozenset({"1", "12"}), frozenset({"DAM"}), _lmp_build("PRC_LMP", 60)),
    "PRC_RTPD_LMP": Query(frozenset({"3"}), frozenset({"RTPD"}), _lmp_build("PRC_RTPD_LMP", 15)),
    "PRC_INTVL_LMP": Query(frozenset({"3"}), frozenset({"RTM"}), _lmp_build("PRC_INTVL_LMP", 5)),
    "PRC_AS": Query(frozenset({"1", "12"}), frozenset({"DAM", "HASP"}), _as_build("PRC_AS", 60)),
    "PRC_INTVL_AS": Query(frozenset({"1"}), frozenset({"RTM"}), _as_build("PRC_INTVL_AS", 15)),
    "SLD_FCST": Query(frozenset({"1"}), frozenset({"ACTUAL", "DAM", "2DA", "7DA", "RTM"}), _sld_build),
}


def _stem(query: str, market: str, start: datetime, end: datetime, tail: str, version: str) -> str:
    d0, d1 = local(start).date(), local(end - timedelta(seconds=1)).date()
    return f"{d0:%Y%m%d}_{d1:%Y%m%d}_{query}_{market}_{tail}_v{version}"


def _data_answer(q: dict[str, str], query: str, members: list, start: datetime, end: datetime,
                 now: datetime) -> Answer:
    market, version = q.get("market_run_id", ""), q.get("version", "")
    gen = f"{local(now):%Y%m%d_%H_%M_%S}"
    files = []
    for tag, header, rows in members:
        files.append((_stem(query, market, start, end, tag or gen, version) + ".csv", _csv(header, rows)))
    return Answer(200, _zip(files, now), "application/x-zip-compressed",
                  _stem(query, market, start, end, gen, version) + ".zip")


def oasis_answer(endpoint: str, q: dict[str, str], now: datetime, state: dict | None = None) -> Answer:
    """The OASIS answer to ``/oasisapi/<endpoint>?<q>`` at simulated time ``now`` (no throttling)."""
    state = state if state is not None else {}
    name = q.get("queryname") or q.get("groupid") or "INVALID_REQUEST"
    stem = f"{name}_{local(now):%Y%m%d_%H_%M_%S}"
    try:
        start, end = _parse_time(q.get("startdatetime", "")), _parse_time(q.get("enddatetime", ""))
        stem = _stem(name, q.get("market_run_id", "DAM"), start, end, f"{local(now):%Y%m%d_%H_%M_%S}",
                     q.get("version", ""))
        if end - start > MAX_WINDOW:
            raise OasisFault(1004)
        if end <= start:
            raise OasisFault(1002)
        if q.get("resultformat") != "6":  # an XML report: the hook always asks for CSV
            xml = '<?xml version="1.0"?><m:OASISReport xmlns:m="http://www.caiso.com/soa/OASISReport_v1.xsd"/>\n'
            return Answer(200, _zip([(stem + ".xml", xml)], now), "application/x-zip-compressed", stem + ".xml.zip")
        if endpoint == "GroupZip":
            return _group_zip(q, start, end, now, state, stem)
        if endpoint != "SingleZip":
            raise OasisFault(1005)
        spec = QUERIES.get(q.get("queryname", ""))
        if spec is None:
            raise OasisFault(1005)
        if q.get("version") not in spec.versions:
            raise OasisFault(1020)
        if q.get("market_run_id") not in spec.markets:
            raise OasisFault(1000)
        members = spec.build(q, start, end, now)
        if not members:
            raise OasisFault(1000)
        return _data_answer(q, q["queryname"], members, start, end, now)
    except OasisFault as fault:
        return error_answer(fault.code, stem, now)


def _group_zip(q: dict[str, str], start: datetime, end: datetime, now: datetime, state: dict, stem: str) -> Answer:
    """GroupZip is asynchronous: the first request for a (group, window) starts building it (1015)."""
    if q.get("groupid") != "DAM_LMP_GRP":
        raise OasisFault(1016)
    if q.get("version") != "12":
        raise OasisFault(1020)
    key = (q["groupid"], start, end)
    prepared = state.setdefault("groupzip_ready", set())
    if key not in prepared:
        prepared.add(key)
        raise OasisFault(1015)
    if _trade_day(start) < GROUPZIP_FIRST_DAY:
        raise OasisFault(1000)
    qq = {**q, "market_run_id": "DAM", "grp_type": "ALL", "version": "12", "retention": "off"}
    members = _lmp_build("PRC_LMP", 60)(qq, start, end, now)  # all nodes, split by LMP_TYPE
    if not members:
        raise OasisFault(1000)
    return _data_answer(qq, "PRC_LMP", members, start, end, now)


def _state(req: Request) -> dict:
    return req.sim.state.setdefault("caiso", {"lock": threading.Lock(), "last": None})


def _throttled(req: Request) -> bool:
    """One request per interval (wall clock) across all clients; a refused request does not count."""
    if req.sim.fire("rate_limit"):
        return True
    if req.sim.faults.get("caiso_no_throttle", 0):
        return False
    interval = env_number("PMP_SIM_CAISO_MIN_INTERVAL", 5, float)
    st = _state(req)
    with st["lock"]:
        now = time.monotonic()
        if st["last"] is not None and now - st["last"] < interval:
            return True
        st["last"] = now
    return False


@plugin("/caiso/oasis")
def oasis(req: Request) -> Response:
    endpoint = req.path.removeprefix("/oasisapi/")
    if not req.path.startswith("/oasisapi/") or endpoint not in ("SingleZip", "GroupZip"):
        return Response(404, b"<html><body>Not Found</body></html>", "text/html")
    if _throttled(req):
        return Response(429, AUP_PAGE, "text/html")
    now = req.sim.now()
    forced = next((c for f, c in (("caiso_no_data", 1000), ("caiso_system_error", 1010),
                                  ("caiso_window_error", 1004)) if req.sim.fire(f)), None)
    if endpoint == "GroupZip" and req.sim.fire("caiso_groupzip_processing"):
        forced = 1015
    if forced is not None:
        answer = error_answer(forced, f"{req.query.get('queryname') or req.query.get('groupid', 'REQUEST')}", now)
    else:
        answer = oasis_answer(endpoint, req.query, now, _state(req))
    body = answer.body
    if not answer.filename.endswith(".xml.zip") and req.sim.fire("caiso_bad_row"):
        body = _spoil_first_row(body, now)
    if req.sim.fire("corrupt_zip"):
        body = body[: len(body) // 2]
    return Response(answer.status, body, answer.content_type,
                    {"Content-Disposition": f"inline; filename={answer.filename};"})


def _spoil_first_row(body: bytes, now: datetime) -> bytes:
    """Fault ``caiso_bad_row``: the first data row of the first CSV gets an unreadable GMT time."""
    zf = zipfile.ZipFile(io.BytesIO(body))
    files = [(n, zf.read(n).decode()) for n in zf.namelist()]
    name, text = files[0]
    lines = text.split("\n")
    lines[1] = "N/A" + lines[1][lines[1].index(","):]
    files[0] = (name, "\n".join(lines))
    return _zip(files, now)


# ------------------------------------------------------------------ Today's Outlook (www.caiso.com)
def day_labels(day: date) -> list[tuple[str, datetime | None]]:
    """(HH:MM, UTC start) of every row of a day's file, in file order: the spring-forward gap hour
    is listed with no instant, the fall-back hour twice."""
    s, e = day_bounds(day)
    out: list[tuple[str, datetime | None]] = []
    for t in _steps(s, e, 5):
        lt = local(t)
        if out and out[-1][1] is not None:
            prev = local(out[-1][1])
            gap = (lt.hour * 60 + lt.minute) - (prev.hour * 60 + prev.minute)
            if gap > 5:  # spring-forward: CAISO keeps the nonexistent hour, with empty values
                m = prev.hour * 60 + prev.minute + 5
                while m < lt.hour * 60 + lt.minute:
                    out.append((f"{m // 60:02d}:{m % 60:02d}", None))
                    m += 5
        out.append((f"{lt:%H:%M}", t))
    return out


def _outlook_published(t: datetime, now: datetime) -> bool:
    return t + timedelta(minutes=7) <= now


def outlook_file(name: str, day: date, now: datetime, *, trailing_midnight: bool) -> bytes:
    """``fuelsource`` or ``demand`` CSV for a local day as it looks at ``now``."""
    rows: list[str] = []
    labels = day_labels(day)
    if trailing_midnight:
        labels.append(("00:00", day_bounds(day)[1]))
    for label, t in labels:
        if name == "fuelsource":
            values = [str(fuel_mw(f, t)) if t and _outlook_published(t, now) else "" for f in FUELS]
        else:
            if t is None:
                values = ["", "", ""]
            else:
                da = round(forecast_load("CA ISO-TAC", "DAM", t - timedelta(minutes=local(t).minute)))
                ha = round(forecast_load("CA ISO-TAC", "RTPD", t))
                cur = str(round(area_load("CA ISO-TAC", t))) if _outlook_published(t, now) else ""
                values = [str(da), str(ha), cur]
        rows.append(",".join([label, *values]))
    if name == "fuelsource":
        header = "Time," + ",".join(OLD_SPELLING.get(f, f) if day < OLD_SPELLING_UNTIL else f for f in FUELS)
        text = "\ufeff" + header
    else:
        text = DEMAND_HEADER
    return (text + "\r\n" + "".join(r + "\r\n" for r in rows)).encode()


@plugin("/caiso/www")
def www(req: Request) -> Response:
    parts = req.path.strip("/").split("/")
    not_found = Response(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
    if len(parts) < 3 or parts[0] != "outlook" or not parts[-1].endswith(".csv"):
        return not_found
    name = parts[-1].removesuffix(".csv")
    if name not in ("fuelsource", "demand"):
        return not_found
    now = req.sim.now()
    today = local(now).date()
    if parts[1] == "history" and len(parts) == 4:
        try:
            day = datetime.strptime(parts[2], "%Y%m%d").date()
        except ValueError:
            return not_found
        if day < FIRST_DAY or day > today:
            return not_found
        body = outlook_file(name, day, now, trailing_midnight=day < today)
    elif parts[1] == "current" and len(parts) == 3:
        # quirk: until today's first interval is published, "current" still holds yesterday
        day = today if _outlook_published(day_bounds(today)[0], now) else today - timedelta(days=1)
        body = outlook_file(name, day, now, trailing_midnight=False)
    else:
        return not_found
    return Response(200, body, "text/csv", {"Cache-Control": "max-age=60"})
