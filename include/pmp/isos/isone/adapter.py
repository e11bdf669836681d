"""ISO-NE adapter: which documents hold a market day, how to get them, and how to read them.

Routes (chosen by the connection's ``extra.source``; see ``hook.py``):
* ``csv``: ISO Express. Static historical reports (``/static-transform/csv/histRpts/...``) for the
  LMPs, generated reports (``/transform/csv/...``) for reserves, load and fuel mix, and the page
  JSON (``/ws/wsclient``) for the load forecast. No account; cookie + Referer; paced.
* ``ws``: Web Services (``webservices.iso-ne.com/api/v1.1``), JSON, HTTP Basic with the user's account.

ISO-NE has no document list, so discovery builds the document names from ISO-NE's naming and
publication schedule (``datasets.py``), and asks the ISO (a HEAD, or one Web Services call) whether
the final publication of a day is out yet.

Prelim and final are two documents (ISO-NE publishes two files: ``lmp_rt_prelim_…``/``lmp_rt_final_…``,
``5min-rt-prelim/…``/``5min-rt-final/…``), each with its own ``source_id`` and ``published_at``.
The final's rows replace the prelim's in the warehouse because the loader's upsert keeps the newer
publication; a prelim loaded (or re-loaded) after the final never overwrites it. Both stay in
``ingest_log`` (same ``dataset`` and ``market_day``), which is the lineage: see README.md.

Real time (``_realtime``): every dataset ISO-NE publishes during the operating day has a */5 path -
5-minute LMPs (the current interval's preliminary prices within minutes, then the 4-hour preliminary
files), preliminary reserve prices, system load, fuel mix and each load-forecast vintage; finals replace
the preliminary rows through the same newer-publication rule.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pyarrow as pa

from pmp.isos.isone.hook import IsoneHook
from pmp.isos.isone.normalize import (
    PRELIM_RESERVES_CLOSE,
    TWO_STAGE,
    current_interval,
    document_name,
    is_json,
    location_table,
    normalize_payload,
    prelim_reserve_rank,
)
from pmp.isos.isone.records import generated_at
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.schema import LMP
from pmp.staging import raw_key
from pmp.timeutil import local_day_of, localize, market_day_bounds, zone

log = logging.getLogger(__name__)

TZ = "America/New_York"
HIST = "/static-transform/csv/histRpts"
FIVE = timedelta(minutes=5)
BLOCKS = ("00-04", "04-08", "08-12", "12-16", "16-20", "20-24")
_BLOCK_DAY = re.compile(r"lmp_5min_(\d{8})_")
# The current-interval report, named by the interval it holds (``_current_refs``); ``_asof<run slot>``
# names are those of raw files staged before (re-derived from the raw stage as they were).
_CURRENT_INTERVAL = re.compile(r"(?:fiveminlmp_current_prelim|fiveminutelmp_prelim_current_all)_interval(\d{8}T\d{4})Z")
_CURRENT_ASOF = re.compile(r"fiveminlmp_current_prelim_asof(\d{8}T\d{4})Z")
# How many recent intervals' current reports stay listed while not loaded: a run that comes after
# the next interval is out loads what the report holds then (``_pick_current``); an interval that
# was current while no run came is gone from the report (the 4-hour block brings it later).
CURRENT_BACKLOG = 3
# Datasets with a real-time path (``_realtime``): what ISO-NE publishes during the operating day.
REALTIME = ("lmp_rt5m", "as_rt5m", "load_actual", "load_forecast", "fuel_mix")
_WS_STAGE_DAY = re.compile(r"_(prelim|final)_day_(\d{8})")


def _ymd(day: date) -> str:
    return f"{day:%Y%m%d}"


def _due(spec: DatasetSpec, day: date, key: str) -> datetime | None:
    """A scheduled publication instant from ``params[key] = (days after the market day, "HH:MM")``."""
    if key not in spec.params:
        return None
    days, hhmm = spec.params[key]
    h, m = (int(x) for x in hhmm.split(":"))
    return localize(datetime.combine(day + timedelta(days=days), time(h, m)), TZ)


def _asof(ref: DocumentRef, stamp: str) -> DocumentRef:
    """A report as it stands at a real-time run (``…@<UTC time>``, name ``…_asof<UTC time>``): partial by
    design, a new document every 5 minutes."""
    stem, _, ext = ref.name.rpartition(".")
    return replace(ref, doc_id=f"{ref.doc_id}@{stamp}", name=f"{stem}_asof{stamp}.{ext}")


def _block_bounds(day: date, block: str) -> tuple[datetime, datetime]:
    """A 4-hour block ``HH-HH`` of the 5-minute LMP files is local wall-clock [HH:00, HH:00) (five
    hours on the fall-back day, three on the spring-forward day)."""
    first, last = market_day_bounds(day, TZ)
    a, b = (int(x) for x in block.split("-"))
    start = localize(datetime.combine(day, time(a)), TZ) if a else first
    return start, localize(datetime.combine(day, time(b)), TZ) if b < 24 else last


def storage_name(name: str, payload: bytes) -> str:
    """Raw file name: the document name (``/`` -> ``~``) with a digest of its bytes before the extension
    (see :func:`pmp.isos.isone.normalize.document_name`, which reverses it)."""
    stem, dot, ext = name.replace("/", "~").rpartition(".")
    digest = hashlib.sha256(payload).hexdigest()[:12]
    return f"{stem}@{digest}.{ext}" if dot else f"{name}@{digest}"


def report_generated(payload: bytes) -> datetime | None:
    """The ``Report generated`` stamp of an ISO Express CSV (its publication time), from the head."""
    head = payload[:2048].decode("utf-8", "replace")
    return generated_at(head.split('"H"', 1)[0])


class IsoneAdapter:
    iso = "isone"
    pool = "isone_api"
    # One request per document, paced (about 10 s apart on ISO Express): 24 documents is a 4-minute task.
    batch_sizes = {"csv": 24, "ws": 48}
    # History in monthly runs (pmp.history): a month's documents in one run's mapped fetches, so task
    # start-up and scheduling are paid once a month instead of once a market day. Requests stay one
    # per document and day, paced as in a daily run: ISO Express's static reports and Web Services'
    # ``/day/{YYYYMMDD}`` paths are per day, and the generated reports' ``start``/``end`` ranges are
    # not used (date-range requests broke on DST days before, gridstatus gs#171; it asks per day).
    history_window = "month"

    def __init__(self) -> None:
        self._locations: dict[date, dict[str, tuple[str, str]]] = {}

    def hook(self) -> IsoneHook:
        return IsoneHook()

    # -- document names ------------------------------------------------------------------
    @staticmethod
    def _ref(route: str, name: str, url: str, day: date, published: datetime | None = None) -> DocumentRef:
        return DocumentRef(doc_id=f"{route}:{name}", name=name, published_at=published.isoformat() if published else None,
                           market_day=day.isoformat(), route=route, url=url)

    def _csv_refs(self, spec: DatasetSpec, day: date, stage: str, seen_on: date | None = None,
                  through: date | None = None) -> list[DocumentRef]:
        d, ds = _ymd(day), spec.dataset
        if ds == "lmp_dam":
            name = f"WW_DALMP_ISO_{d}.csv"
            return [self._ref("csv", name, f"{HIST}/da-lmp/{name}", day)]
        if ds == "lmp_rt60m":
            name = f"lmp_rt_{stage}_{d}.csv"
            return [self._ref("csv", name, f"{HIST}/rt-lmp/{name}", day)]
        if ds == "lmp_rt5m":
            # The 5-minute files carry Location IDs only: the day's DA file (every location's name and
            # type) travels with them, first, so the blocks can be normalized (normalize.py, _location).
            da = f"WW_DALMP_ISO_{d}.csv"
            refs = [self._ref("csv", da, f"{HIST}/da-lmp/{da}", day)]
            for block in BLOCKS:
                name = f"5min-rt-{stage}/lmp_5min_{d}_{block}.csv"
                refs.append(self._ref("csv", name, f"{HIST}/{name}", day))
            return refs
        if ds == "as_rt5m":  # final (the daily runs) or prelim (intraday, the real-time DAG)
            return [self._ref("csv", f"fiveminreserveprice_{stage}_{d}.csv",
                              f"/transform/csv/fiveminreserveprice?{urlencode({'type': stage, 'start': d, 'end': d})}",
                              day)]
        if ds == "load_actual":
            return [self._ref("csv", f"fiveminutesystemload_{d}.csv",
                              f"/transform/csv/fiveminutesystemload?{urlencode({'start': d, 'end': d})}", day)]
        if ds == "fuel_mix":
            return [self._ref("csv", f"genfuelmix_{d}.csv", f"/transform/csv/genfuelmix?start={d}", day)]
        if ds == "load_forecast":
            last = through or day  # the real-time capture asks for the whole horizon at once
            form = {"_nstmp_requestType": "systemload", "_nstmp_startDate": f"{day:%m/%d/%Y}",
                    "_nstmp_endDate": f"{last:%m/%d/%Y}", "_nstmp_forecast": "true", "_nstmp_actual": "false",
                    "_nstmp_cleared": "false", "_nstmp_priorDay": "false", "_nstmp_inclPumpLoad": "true",
                    "_nstmp_inclBtmPv": "true"}
            span = d if last == day else f"{d}-{_ymd(last)}"
            name = f"wsclient_systemload_{span}_seen{_ymd(seen_on or day)}.json"
            return [self._ref("csv", name, f"/ws/wsclient?{urlencode(form)}", seen_on or day)]
        raise KeyError(ds)

    def _ws_refs(self, spec: DatasetSpec, day: date, stage: str, seen_on: date | None = None) -> list[DocumentRef]:
        d, ds = _ymd(day), spec.dataset
        published = _due(spec, day, f"{stage}_due")
        if ds == "lmp_dam":
            paths = [f"hourlylmp/da/final/day/{d}"]
        elif ds == "lmp_rt60m":
            paths = [f"hourlylmp/rt/{stage}/day/{d}"]
        elif ds == "lmp_rt5m":  # one call per local start hour (23 or 24 of them; 01 holds both on fall-back)
            start, end = market_day_bounds(day, TZ)
            hours = sorted({_local_hour(start + timedelta(hours=i)) for i in range(int((end - start) / timedelta(hours=1)))})
            paths = [f"fiveminutelmp/{stage}/day/{d}/starthour/{h:02d}" for h in hours]
        elif ds == "as_rt5m":  # /day/{d} holds the preliminary prices posted so far, /final/day/{d} the final
            paths = [f"fiveminutereserveprice/{'final/' if stage == 'final' else ''}day/{d}"]
        elif ds == "load_actual":
            paths = [f"fiveminutesystemload/day/{d}"]
        elif ds == "fuel_mix":
            paths = [f"genfuelmix/day/{d}"]
        elif ds == "load_forecast":
            path = f"hourlyloadforecast/all/day/{d}"
            name = f"{path.replace('/', '_')}_seen{_ymd(seen_on or day)}.json"
            return [self._ref("ws", name, path, seen_on or day)]
        else:
            raise KeyError(ds)
        return [self._ref("ws", p.replace("/", "_") + ".json", p, day, published) for p in paths]

    def _refs(self, spec: DatasetSpec, route: str, day: date, stage: str, seen_on: date | None = None) -> list[DocumentRef]:
        return (self._ws_refs if route == "ws" else self._csv_refs)(spec, day, stage, seen_on)

    # -- discovery -----------------------------------------------------------------------
    @staticmethod
    def _route(hook: IsoneHook) -> str:
        if hook.source == "webservices":
            if not hook.ws_configured:
                raise RuntimeError(f"connection {hook.isone_conn_id!r} selects extra.source=webservices but has no "
                                   "login/password (a free ISO-NE account)")
            return "ws"
        return "csv"

    def _final_out(self, spec: DatasetSpec, route: str, day: date, hook: IsoneHook) -> bool:
        """Whether ISO-NE has posted the day's final publication (one cheap call: a HEAD on ISO Express,
        the last hour on Web Services; ISO-NE posts a day's finals together)."""
        ref = self._refs(spec, route, day, "final")[-1]
        if route == "csv":
            return hook.csv_exists(ref.url or "", report_page=spec.params["report_page"])
        body = hook.ws_get(ref.url or "")
        return body is not None and _ws_has_records(body)

    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        route = self._route(hook)
        if realtime:
            return self._realtime(spec, route, start, end)
        days = []
        day = local_day_of(start, TZ)
        while market_day_bounds(day, TZ)[0] < end:
            days.append(day)
            day += timedelta(days=1)
        refs: list[DocumentRef] = []
        for day in days:
            if spec.dataset == "load_forecast":
                # The run of issue day D wants the forecasts issued on D: they cover D .. D+horizon.
                for k in range(spec.params["horizon_days"] + 1):
                    refs += self._refs(spec, route, day + timedelta(days=k), "final", seen_on=day)
                continue
            stages = spec.params["stages"]
            if len(stages) == 1:
                refs += self._refs(spec, route, day, stages[0])
                continue
            if self._final_out(spec, route, day, hook):
                refs += self._refs(spec, route, day, "final")
                continue
            refs += self._refs(spec, route, day, "prelim")
            # Near real time the day's final is days away: collect the finals that came out since.
            for k in range(1, int(spec.params.get("catchup_days", 0)) + 1):
                earlier = day - timedelta(days=k)
                if earlier >= spec.first_date and self._final_out(spec, route, earlier, hook):
                    refs += self._refs(spec, route, earlier, "final")
        log.info("%s: %d document(s) for %s..%s via %s", spec.key, len(refs), days[0], days[-1], route)
        return refs

    def _realtime(self, spec: DatasetSpec, route: str, start: datetime, end: datetime) -> list[DocumentRef]:
        """Intra-day: what ISO-NE has published during the operating day, as of ``end`` (the run's now).

        * Generated day reports (load, fuel mix; reserves as their *preliminary* report): the report of
          each day of the window as it stands, a new document every 5 minutes (``_asof``); a load or
          fuel-mix day that is over gets its plain daily document (the daily run then finds it loaded).
          Preliminary reserve prices are asked for until their day's end + ``PRELIM_RESERVES_CLOSE``;
          the final report comes with the day's daily run and replaces them (newer publication).
        * 5-minute LMPs: the newest interval's preliminary prices (ISO Express ``fiveminlmp/current``, Web
          Services ``fiveminutelmp/prelim/current/all``), named by the interval ISO-NE has published by
          ``end`` and not by the run's slot (``_current_refs``), plus each 4-hour preliminary block due
          in the window (the same documents the daily run takes, so it finds them loaded; a block also
          fills an interval a missed run skipped). Finals replace them about two days later (daily runs).
        * Load forecast: ISO Express answers each hour's *newest* vintage only, so earlier vintages of
          later hours are gone once the next one is issued. Capturing the answer for the issue day and
          the two days after it (the whole horizon, one request) on every run keeps each vintage while
          it is current: that is how every vintage ends up stored on the ISO Express route.
        """
        if spec.dataset not in REALTIME:
            return []
        asof = end - timedelta(seconds=end.timestamp() % 300)
        stamp = f"{asof:%Y%m%dT%H%MZ}"
        if spec.dataset == "load_forecast":
            today = local_day_of(end, TZ)
            days = [today + timedelta(days=k) for k in range(spec.params["horizon_days"] + 1)]
            if route == "csv":
                refs = self._csv_refs(spec, days[0], "final", seen_on=today, through=days[-1])
            else:
                refs = [r for d in days for r in self._ws_refs(spec, d, "final", seen_on=today)]
            return [_asof(ref, stamp) for ref in refs]
        days = []
        day = local_day_of(start, TZ)
        while market_day_bounds(day, TZ)[0] < end:
            days.append(day)
            day += timedelta(days=1)
        if spec.dataset == "lmp_rt5m":
            return self._realtime_lmp(spec, route, days, start, end)
        out = []
        for day in days:
            close = market_day_bounds(day, TZ)[1]
            if spec.dataset == "as_rt5m":
                if end < close + PRELIM_RESERVES_CLOSE:
                    out += [_asof(ref, stamp) for ref in self._refs(spec, route, day, "prelim")]
                continue
            complete = close + spec.publication_lag <= end
            out += [ref if complete else _asof(ref, stamp) for ref in self._refs(spec, route, day, "final")]
        return out

    def _realtime_lmp(self, spec: DatasetSpec, route: str, days: list[date], start: datetime,
                      end: datetime) -> list[DocumentRef]:
        due = timedelta(minutes=spec.params["block_due_minutes"])
        out = []
        for day in days:
            refs = self._refs(spec, route, day, "prelim")
            if route == "csv":
                out.append(refs[0])  # the day's DA file: the location table of the blocks and current reports
            for block in BLOCKS:
                b_start, b_end = _block_bounds(day, block)
                # due in the window (each run until the look-back has passed asks again for a block that is
                # late, 404 until ISO-NE posts it; older blocks are the daily run's)
                if not start < b_end + due <= end:
                    continue
                if route == "csv":  # the file's own "Report generated" stamp dates it
                    out += [r for r in refs if r.name.endswith(f"_{block}.csv")]
                else:  # Web Services carry no time: the block's scheduled posting ranks its hours
                    out += [replace(r, published_at=(b_end + due).isoformat()) for r in refs
                            if b_start <= _ws_hour_start(day, r.name) < b_end]
        return [*out, *self._current_refs(spec, route, end)]

    def _current_refs(self, spec: DatasetSpec, route: str, now: datetime) -> list[DocumentRef]:
        """The current-interval report (ISO Express ``fiveminlmp/current?type=prelim``, Web Services
        ``fiveminutelmp/prelim/current/all``), one document per interval it holds, newest last.

        ISO-NE posts an interval's preliminary prices ``current_due_seconds`` at the latest after the
        interval ends (one to two and a half minutes), so the newest interval it has published by
        ``now`` is known from the clock without a request: that interval names the document (doc id
        ``…@<interval start UTC>``), whenever the run starts - a run that starts late, in the next
        */5 slot, asks for the interval published by then, and the next run for the one after it (a
        run's own slot never names it). The :data:`CURRENT_BACKLOG` intervals before it stay listed
        while not loaded; the fetch loads the report under the name of the interval it really holds
        (:meth:`_pick_current`). ``pmp.triggers`` wakes the real-time DAG at each due instant.
        """
        newest = newest_current_interval(spec, now)
        if route == "csv":
            stem, ext, url = "fiveminlmp_current_prelim", "csv", "/transform/csv/fiveminlmp/current?type=prelim"
        else:
            stem, ext, url = "fiveminutelmp_prelim_current_all", "json", "fiveminutelmp/prelim/current/all"
        return [self._ref(route, f"{stem}_interval{t:%Y%m%dT%H%MZ}.{ext}", url, local_day_of(t, TZ))
                for t in (newest - k * FIVE for k in range(CURRENT_BACKLOG - 1, -1, -1))]

    def _pick_current(self, spec: DatasetSpec, refs: list[DocumentRef], body: bytes) -> DocumentRef | None:
        """Which current-report document a downloaded report is: the listed (not yet loaded) one of the
        interval it holds; for an interval newer than the newest due when ISO-NE generated the report
        (posted early: no discovery has named it yet, a run in the last seconds before its due), that
        interval's document; None for another interval - an older one is loaded already (the next one
        is not out yet). Nothing is loaded under a name the report does not hold."""
        held = current_interval(refs[0].name, body)
        if held is None:
            return refs[-1]  # no row or unreadable: the normalize step (or _incomplete) names it
        listed = {current_start(r.name): r for r in refs}
        if held in listed:
            return listed[held]
        generated = report_generated(body)  # ISO Express's stamp (Web Services JSON carries none)
        if generated is None or held <= newest_current_interval(spec, generated):
            return None
        ref = refs[-1]
        name = _CURRENT_INTERVAL.sub(lambda m: m.group(0).replace(m.group(1), f"{held:%Y%m%dT%H%M}"), ref.name)
        return replace(ref, doc_id=f"{ref.route}:{name}", name=name, market_day=local_day_of(held, TZ).isoformat())

    # -- download ------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        # the current-interval report's listed intervals: one download, named by what it holds
        current = [r for r in refs if _CURRENT_INTERVAL.search(r.name)]
        for ref in refs:
            if ref in current[1:]:
                continue  # one download for every listed interval (_pick_current)
            path, _, query = (ref.url or "").partition("?")
            params = dict(parse_qsl(query))
            # Publication time (see README "published_at"): ISO Express CSVs carry their own stamp; Web
            # Services LMPs and reserves get ISO-NE's scheduled publication time (the discovery sets it:
            # it keeps a final above its prelim whenever either is fetched); every other document is
            # dated by the time it was asked for (what ISO-NE had published by then).
            asked = datetime.now(UTC).replace(microsecond=0)
            published = ref.published or asked
            if ref.route == "ws":
                body = hook.ws_get(ref.url or "")
                url = hook.ws_url(ref.url or "")
            elif path == "/ws/wsclient":
                body = hook.wsclient(params, report_page=spec.params["report_page"])
                url = hook.www_url(path)
            else:
                body = hook.download_csv(path, report_page=spec.params["report_page"], params=params or None)
                url = hook.www_url(path, params or None)
                # a stamp missing (or in an unknown zone) leaves a prelim/final undated, and the
                # normalizer refuses it (normalize._publication); other reports are dated when asked
                published = (report_generated(body) if body else None) or (
                    None if spec.dataset in TWO_STAGE else asked)
            # an intraday preliminary reserve report never outranks the day's final (normalize.prelim_reserve_rank)
            published = prelim_reserve_rank(spec.dataset, ref.name, published)
            if body is None:
                log.warning("%s: %s is not published (404); skipped", spec.key, ref.name)
                continue
            if ref in current[:1]:
                picked = self._pick_current(spec, current, body)
                if picked is None:
                    log.info("%s: the current report holds %s, none of %s; skipped", spec.key,
                             current_interval(ref.name, body), ", ".join(r.name for r in current))
                    continue
                ref = picked
            incomplete = _incomplete(spec, ref, body)
            if incomplete:
                # Not recorded, so the next run asks again (a loaded document is never re-fetched).
                log.warning("%s: %s %s; skipped until ISO-NE has published it", spec.key, ref.name, incomplete)
                continue
            ref = replace(ref, url=url, published_at=published.isoformat() if published else None)
            yield FetchedDocument(ref, storage_name(ref.name, body), body)

    # -- normalize -----------------------------------------------------------------------
    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        locations = None
        if spec.dataset == "lmp_rt5m" and not is_json(payload):
            doc = document_name(name)
            if doc.rsplit("/", 1)[-1].startswith("WW_DALMP_ISO_"):
                # The day's location table (see _csv_refs): remembered for the blocks, no 5-minute rows.
                table = location_table(payload, name)
                m = re.search(r"(\d{8})", doc)
                if m:
                    self._locations[datetime.strptime(m.group(1), "%Y%m%d").date()] = table
                return LMP.empty()
            if m := _BLOCK_DAY.search(doc):
                locations = self._location_table(spec, datetime.strptime(m.group(1), "%Y%m%d").date())
            elif m := _CURRENT_INTERVAL.search(doc):
                # the interval the report holds (its name): that local day's location table
                locations = self._location_table(spec, local_day_of(current_start(doc), TZ))
            elif m := _CURRENT_ASOF.search(doc):
                # the current interval is of the run's day, or of the day before just after midnight
                today = local_day_of(datetime.strptime(m.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC), TZ)
                locations = {**self._location_table(spec, today - timedelta(days=1)),
                             **self._location_table(spec, today)}
        if published_at is None and is_json(payload) and (m := _WS_STAGE_DAY.search(document_name(name))):
            # a Web Services LMP file normalized outside the pipeline (``pmp normalize``): its name says
            # which publication it is, so it gets the scheduled time the fetch would have recorded
            published_at = _due(spec, datetime.strptime(m.group(2), "%Y%m%d").date(), f"{m.group(1)}_due")
        return normalize_payload(spec.dataset, name, payload, published_at, locations)

    def _location_table(self, spec: DatasetSpec, day: date) -> dict[str, tuple[str, str]]:
        """The day's DA location table: from this process, or the raw stage (it was fetched with the
        blocks in an earlier run and is not re-staged)."""
        if day not in self._locations:
            try:
                from pmp.staging import open_store

                store = open_store()
                # the key prefix of the day's DA file (an empty name is no prefix: safe_name makes it "_")
                keys = store.list(raw_key(spec.iso, spec.dataset, day, f"WW_DALMP_ISO_{_ymd(day)}"))
                if keys:
                    self._locations[day] = location_table(store.get(keys[-1]), keys[-1].rsplit("/", 1)[-1])
            except Exception as exc:  # no stage configured (e.g. ``pmp normalize``): core locations only
                log.info("no staged location table for %s (%s)", day, exc)
        return self._locations.get(day, {})


def _incomplete(spec: DatasetSpec, ref: DocumentRef, body: bytes) -> str | None:
    """Why a downloaded document is not (yet) the whole publication, or None.

    Quirk: generated ISO Express reports and Web Services answer 200 for days not (fully) published
    yet - with no data rows, ``""``, or the intervals published so far. A day report of a daily run
    must reach the end of its day (load) or its last half hour (fuel-mix snapshots are irregular);
    real-time documents (``_asof``) are partial by design.
    """
    if is_json(body):
        try:
            doc = json.loads(body)
        except ValueError:
            return None  # malformed: the normalize task names the problem
        empty = (not doc[0].get("data", {}).get("forecast")) if isinstance(doc, list) and doc and isinstance(
            doc[0], dict) else not _ws_has_records(body)
    else:
        empty = b'\n"D",' not in body
    if empty:
        return "has no data yet"
    if spec.dataset not in ("load_actual", "fuel_mix") or "_asof" in ref.name:
        return None
    try:
        table = normalize_payload(spec.dataset, ref.name, body)
    except ValueError:
        return None  # the normalize task reports it, naming file, line and field
    day_end = market_day_bounds(date.fromisoformat(ref.market_day), TZ)[1]
    last = max(table.column("interval_start").to_pylist())
    if spec.dataset == "load_actual" and last + timedelta(minutes=5) < day_end:
        return f"ends at {last.isoformat()}, before the end of the day"
    if spec.dataset == "fuel_mix" and last < day_end - timedelta(minutes=30):
        return f"has no snapshot after {last.isoformat()}"
    return None


def current_start(name: str) -> datetime:
    """Interval start (UTC) that names a current-interval report document (``…_interval<stamp>Z``)."""
    m = _CURRENT_INTERVAL.search(name)
    if m is None:
        raise ValueError(f"{name!r} is not a current-interval report name")
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)


def newest_current_interval(spec: DatasetSpec, now: datetime) -> datetime:
    """Start of the newest 5-minute interval whose preliminary prices ISO-NE has posted by ``now``:
    the latest ``t`` with ``t + 5 min + current_due_seconds <= now``."""
    due = FIVE + timedelta(seconds=spec.params["current_due_seconds"])
    epoch = int((now - due).timestamp())
    return datetime.fromtimestamp(epoch - epoch % 300, UTC)


def current_due(spec: DatasetSpec, interval: datetime) -> datetime:
    """When ISO-NE has surely posted the interval's preliminary prices (the wake-up of ``pmp.triggers``)."""
    return interval + FIVE + timedelta(seconds=spec.params["current_due_seconds"])


def _local_hour(t: datetime) -> int:
    return t.astimezone(zone(TZ)).hour


def _ws_hour_start(day: date, name: str) -> datetime:
    """First instant of a Web Services 5-minute page (``…_starthour_HH.json``): local HH:00 of the day
    (on the fall-back day ``01`` holds both passes and starts at the first)."""
    hour = int(name.rsplit("_", 1)[-1].split(".")[0])
    return localize(datetime.combine(day, time(hour)), TZ, repeated=False)


def _ws_has_records(body: bytes) -> bool:
    try:
        doc = json.load(io.BytesIO(body))
    except ValueError:
        return False
    return isinstance(doc, dict) and any(v not in ("", None, {}) for v in doc.values())


ADAPTER = IsoneAdapter()
