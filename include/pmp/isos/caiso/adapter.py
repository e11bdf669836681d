"""CAISO adapter: which OASIS queries and Outlook files hold a market day, and how to get them.

OASIS is a query API, not a document store, so a "document" here is one request: a query over a
window. Routes:
* ``oasis``: ``SingleZip`` (one trade day, or one hour for real-time prices of all APnodes);
* ``groupzip``: ``GroupZip DAM_LMP_GRP`` (all nodes, one trade day), used for day-ahead LMPs
  older than SingleZip's rolling retention (extra ``dam_lmp_route``: ``auto`` (default),
  ``singlezip`` or ``groupzip``; ``singlezip_retention_days``, default 1095);
* ``outlook``: a Today's Outlook CSV (``history/YYYYMMDD`` for past days, ``current`` for today).

Document ids are the canonical names without extension, e.g.
``PRC_INTVL_LMP_RTM_20240310T0800Z_20240310T0900Z_v3``: a daily run and a real-time run ask for
the same hour under the same id, so whichever comes second finds it loaded. A real-time run also
fetches the current, still growing hour as a partial window whose id ends at the last published
interval; the full hour replaces those rows later (same keys, newer document).

Raw names: the canonical name plus 12 hex digits of the content hash. OASIS regenerates every zip
(member names and zip entry times carry the request time), so a re-fetch gets its own immutable raw
object; ``source`` is the canonical name either way (:func:`pmp.isos.caiso.normalize.source_name`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from pmp.isos.caiso.datasets import POOL, TZ
from pmp.isos.caiso.hook import CaisoHook
from pmp.isos.caiso.oasis import PT, trade_day_windows
from pmp.isos.caiso.outlook import DEMAND_COLUMN
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.timeutil import local_day_of, market_day_bounds

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

GROUPZIP_FIRST_DAY = date(2021, 4, 27)  # DAM_LMP_GRP goes back to here (third-party probes)
HOUR = timedelta(hours=1)


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def _floor(t: datetime, minutes: float) -> datetime:
    step = int(minutes * 60)
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


def storage_name(canonical: str, payload: bytes) -> str:
    stem, dot, ext = canonical.rpartition(".")
    return f"{stem}.{hashlib.sha256(payload).hexdigest()[:12]}{dot}{ext}"


class CaisoAdapter:
    iso = "caiso"
    pool = POOL
    # One request per document and one request per 5 s: a task carries at most a day of hours.
    batch_sizes = {"oasis": 25, "groupzip": 4, "outlook": 10}
    # History in monthly runs (pmp.history): a month's requests in one run's mapped fetches, so task
    # start-up and scheduling are paid once a month, not once a day (requests stay one per trade day:
    # OASIS's 31-day windows are not used yet).
    history_window = "month"
    # Documents that hold a whole market day (pmp.pipeline checks their intervals and entities before
    # staging them): CSVs without an end marker, which a truncation at a row boundary would read as a
    # shorter day. A past day's Today's Outlook file (``history/YYYYMMDD``: every 5-minute row of
    # the 23/24/25-hour day) and an OASIS answer (a zip of CSVs) whose window is one whole trade day
    # (:meth:`document_is_final`): not the Outlook ``current`` file (it grows through today), nor
    # the hour windows of real-time prices and the real-time runs' partial hours. Not listed:
    # load_forecast (SLD_FCST vintages cover other days than their issue day, counted by vintage)
    # and lmp_rt15m / lmp_rt5m (one document per hour, never a whole day).
    whole_day_documents = {
        "lmp_dam": ("oasis", "groupzip"), "as_dam": ("oasis",), "as_rt15m": ("oasis",),
        "load_actual": ("oasis", "outlook"), "fuel_mix": ("outlook",),
    }

    def hook(self) -> CaisoHook:
        return CaisoHook()

    # -- discovery ------------------------------------------------------------------------
    def _oasis_ref(self, hook: CaisoHook, start: datetime, end: datetime, *,
                   queryname: str, version: str, market_run_id: str, tag: str = "",
                   market_day: date | None = None, **query: str) -> DocumentRef:
        params = hook.single_zip_params(queryname, version, start, end, market_run_id=market_run_id, **query)
        stem = "_".join(p for p in (queryname, market_run_id, tag, _stamp(start), _stamp(end), f"v{version}") if p)
        day = market_day or local_day_of(start, TZ)
        return DocumentRef(doc_id=stem, name=stem + ".zip", published_at=None, market_day=day.isoformat(),
                           route="oasis", url=hook.oasis_url("SingleZip", params))

    def _groupzip_ref(self, spec: DatasetSpec, hook: CaisoHook, day: date) -> DocumentRef:
        start, end = market_day_bounds(day, TZ)
        groupid = spec.params["groupid"]
        params = hook.group_zip_params(groupid, spec.params["version"], start, end)
        stem = f"{groupid}_{_stamp(start)}_{_stamp(end)}_v{spec.params['version']}"
        return DocumentRef(doc_id=stem, name=stem + ".zip", published_at=None, market_day=day.isoformat(),
                           route="groupzip", url=hook.oasis_url("GroupZip", params))

    def _outlook_ref(self, name: str, hook: CaisoHook, day: date | None, slot: datetime | None = None) -> DocumentRef:
        if day is not None:
            stem = f"outlook_{name}_{day:%Y%m%d}"
            return DocumentRef(doc_id=stem, name=stem + ".csv", published_at=None, market_day=day.isoformat(),
                               route="outlook", url=hook.outlook_url(name, day))
        assert slot is not None
        stem = f"outlook_{name}_current_{_stamp(slot)}"  # the date is resolved when fetched
        return DocumentRef(doc_id=stem, name=stem + ".csv", published_at=None,
                           market_day=local_day_of(slot, TZ).isoformat(), route="outlook",
                           url=hook.outlook_url(name, None))

    def _dam_lmp_route(self, day: date, hook: CaisoHook) -> str:
        """SingleZip PRC_LMP keeps a rolling ~3 years; GroupZip DAM_LMP_GRP reaches back to 2021-04-27."""
        route = hook.extra("dam_lmp_route")
        if route in ("singlezip", "groupzip"):
            return route
        age = (datetime.now(PT).date() - day).days
        retention = hook.extra("singlezip_retention_days")
        return "groupzip" if age > retention and day >= GROUPZIP_FIRST_DAY else "singlezip"

    def _day_refs(self, spec: DatasetSpec, day: date, hook: CaisoHook) -> list[DocumentRef]:
        p = spec.params
        ((start, end),) = trade_day_windows(day, day, max_days=1)  # 07:00 or 08:00 UTC; 23/24/25 hours
        refs: list[DocumentRef] = []
        routes = p["route"] if isinstance(p["route"], tuple) else (p["route"],)
        if "outlook" in routes:
            refs.append(self._outlook_ref(p["outlook"], hook, day))
        if "oasis" not in routes:
            return refs
        common = {"queryname": p.get("queryname", ""), "version": p.get("version", "")}
        if spec.dataset == "lmp_dam" and self._dam_lmp_route(day, hook) == "groupzip":
            refs.append(self._groupzip_ref(spec, hook, day))
        elif spec.dataset == "load_forecast":
            refs.extend(self._forecast_refs(spec, hook, day))
        elif "per_product" in p:
            for product in p["per_product"]:
                refs.append(self._oasis_ref(hook, start, end, market_run_id=p["market_run_id"], tag=product,
                                            anc_type=product, **common, **p["query"]))
        elif p["window"] == "hour":
            t = start
            while t < end:
                refs.append(self._oasis_ref(hook, t, t + HOUR, market_run_id=p["market_run_id"],
                                            market_day=day, **common, **p["query"]))
                t += HOUR
        else:
            refs.append(self._oasis_ref(hook, start, end, market_run_id=p["market_run_id"], **common,
                                        **p["query"]))
        return refs

    def _forecast_refs(self, spec: DatasetSpec, hook: CaisoHook, day: date) -> list[DocumentRef]:
        """Forecasts *issued* on ``day``: DAM/2DA/7DA for the trade day 1/2/7 days later (issued at
        09:10 PT), RTPD/RTD for the intervals whose issue time (start - 22.5 / 2.5 min) falls in the day."""
        p = spec.params
        start, end = market_day_bounds(day, TZ)
        refs = []
        for run_id, execution, days_ahead, lead in p["vintages"].values():
            if days_ahead is not None:
                target = day + timedelta(days=days_ahead)
                w0, w1 = market_day_bounds(target, TZ)
                query = {}
            else:
                step = 5 if execution == "RTD" else 15
                # first interval whose issue time is >= start, up to the last issued before end
                w0 = _floor(start + timedelta(minutes=lead) + timedelta(minutes=step) - timedelta(seconds=1), step)
                w1 = _floor(end + timedelta(minutes=lead) + timedelta(minutes=step) - timedelta(seconds=1), step)
                query = {"execution_type": execution}
            refs.append(self._oasis_ref(hook, w0, w1, queryname=p["queryname"], version=p["version"],
                                        market_run_id=run_id, tag=execution or "", market_day=day, **query))
        return refs

    def _realtime_refs(self, spec: DatasetSpec, start: datetime, end: datetime, hook: CaisoHook) -> list[DocumentRef]:
        """Documents for intervals published in [start, end): whole hours (the ids daily runs use for
        hour windows) and the current hour up to its last published interval; Outlook ``current``."""
        p = spec.params
        refs: list[DocumentRef] = []
        routes = p["route"] if isinstance(p["route"], tuple) else (p["route"],)
        if "outlook" in routes:
            refs.append(self._outlook_ref(p["outlook"], hook, None, slot=_floor(end, 5)))
        if spec.dataset == "load_forecast":
            for model, (run_id, execution, days_ahead, _lead) in p["vintages"].items():
                if days_ahead is not None:
                    continue  # issued once a day: the daily DAG
                step = 5 if execution == "RTD" else 15
                lead = timedelta(minutes=p["realtime_lead_minutes"][model])
                refs += self._hour_refs(spec, hook, start + lead, end + lead, step, run_id=run_id, tag=execution,
                                        execution_type=execution)
        elif "step_minutes" in p and "oasis" in routes:
            lag = spec.publication_lag
            refs += self._hour_refs(spec, hook, start - lag, end - lag, p["step_minutes"], run_id=p["market_run_id"],
                                    **p["query"])
        return refs

    def _hour_refs(self, spec: DatasetSpec, hook: CaisoHook, lo: datetime, hi: datetime, step: int, *,
                   run_id: str, tag: str = "", **query: str) -> list[DocumentRef]:
        """Hour windows over interval starts; ``hi`` bounds the published interval *ends*."""
        cut = _floor(hi, step)  # intervals ending at or before here are published
        refs = []
        hour = _floor(lo, 60)
        while hour < cut:
            w1 = min(hour + HOUR, cut)
            refs.append(self._oasis_ref(hook, hour, w1, queryname=spec.params["queryname"],
                                        version=spec.params["version"], market_run_id=run_id, tag=tag, **query))
            hour += HOUR
        return refs

    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        """Daily: the documents of every market day in [start, end) (UTC). Real time: what was
        published in the window (see :meth:`_realtime_refs`)."""
        if realtime:
            return self._realtime_refs(spec, start, end, hook)
        refs: list[DocumentRef] = []
        day = local_day_of(start, TZ)
        while market_day_bounds(day, TZ)[0] < end:
            refs.extend(self._day_refs(spec, day, hook))
            day += timedelta(days=1)
        log.info("%s: %d request(s) for %s..%s", spec.key, len(refs), local_day_of(start, TZ), day - timedelta(days=1))
        return refs

    # -- download -------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        """One request per document. OASIS "no data" (1000) yields nothing, so the day's check
        reports what is missing and a later run asks again."""
        for ref in refs:
            if ref.route == "outlook":
                yield self._fetch_outlook(ref, hook)
                continue
            parts = urlsplit(ref.url or "")
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            endpoint = parts.path.rsplit("/", 1)[-1]
            payload = hook.get_oasis(endpoint, query, what=f"CAISO OASIS {ref.doc_id}")
            if payload is None:
                log.warning("%s: OASIS has no data for %s (outside its retention, or not published yet)",
                            spec.key, ref.doc_id)
                continue
            yield FetchedDocument(ref, storage_name(ref.name, payload), payload)

    def _fetch_outlook(self, ref: DocumentRef, hook: CaisoHook) -> FetchedDocument:
        path = urlsplit(ref.url or "").path
        name = path.rsplit("/", 1)[-1].removesuffix(".csv")
        if "/history/" in path:
            day = date.fromisoformat(ref.market_day)
            payload = hook.outlook(name, day)
            return FetchedDocument(ref, storage_name(ref.name, payload), payload)
        payload = hook.outlook(name, None)
        day = current_file_day(payload, datetime.now(UTC))
        canonical = ref.name.replace("_current_", f"_{day:%Y%m%d}_current_")
        ref = DocumentRef(ref.doc_id, canonical, ref.published_at, day.isoformat(), ref.route, ref.url, ref.size)
        return FetchedDocument(ref, storage_name(canonical, payload), payload)

    def document_is_final(self, spec: DatasetSpec, ref: DocumentRef) -> bool:
        """A declared document holds its whole day when its day's last interval is due by now (the
        day's end plus the publication lag) and it is an Outlook ``history/YYYYMMDD`` file (the
        history URL of today answers too, with the growing file; ``current`` never counts) or an
        OASIS query over exactly the trade day (its id carries the window, see the module doc)."""
        day = date.fromisoformat(ref.market_day)
        start, end = market_day_bounds(day, TZ)
        if end + spec.publication_lag > datetime.now(UTC):
            return False
        if ref.route == "outlook":
            return "/outlook/history/" in (ref.url or "")
        return f"_{_stamp(start)}_{_stamp(end)}_" in ref.doc_id

    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        from pmp.isos.caiso.normalize import normalize_payload  # pandas: not on the DAG-parse path

        return normalize_payload(spec.dataset, name, payload)


def current_file_day(payload: bytes, now: datetime) -> date:
    """The local date of an Outlook ``current`` file (its URL has none).

    Quirk: for a few minutes after midnight the ``current`` file still holds the previous day
    (gridstatus checks the same): if its newest measured row is later than the local clock, the
    file is yesterday's. Measured means ``Current demand`` in demand.csv (its forecast columns are
    filled ahead for the whole day) and any fuel in fuelsource.csv."""
    local = now.astimezone(PT)
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8-sig", "replace"))))
    if not rows:
        return local.date()
    header = [h.strip() for h in rows[0]]
    measured = [header.index(DEMAND_COLUMN)] if DEMAND_COLUMN in header else list(range(1, len(header)))
    newest = None
    for fields in rows[1:]:
        if len(fields) == len(header) and fields[0].strip() and any(fields[i].strip() for i in measured):
            newest = fields[0].strip()
    if newest is None:
        return local.date()
    hh, _, mm = newest.partition(":")
    try:
        label = int(hh) * 60 + int(mm)
    except ValueError:
        return local.date()
    if label > local.hour * 60 + local.minute + 10:
        return local.date() - timedelta(days=1)
    return local.date()


ADAPTER = CaisoAdapter()
