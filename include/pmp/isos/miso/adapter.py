"""MISO adapter: which documents hold a market day, and how to get them.

Routes (``DocumentRef.route``):
* ``reports``: the market reports (``docs.misoenergy.org/marketreports``), static files named by
  market day; discovery asks with a HEAD whether a report is out and takes its ``Last-Modified``
  as the publication time (the document id carries it, so a re-posted file is a new version).
* ``weekly``: the Monday archives of the 5-minute finals (``5MIN_LMP.zip``, ``5min_expost_mcp.xlsx``):
  the file of Monday M holds M-14 .. M-8, so a day's finals come 8 to 14 days after it.
* ``api``: the public API (``public-api.misoenergy.org``), one call a minute: the real-time feeds,
  and yesterday's 5-minute prices (``GetRealTimeFiveMinExPost/Previous``).
* ``dx``: with ``extra.dx_pricing_key``, Data Exchange's preliminary 5-minute ex-post LMPs for the
  days between yesterday and their weekly archive (one query per date, paged).

Preliminary and final are two documents each with its own publication time; the loader keeps the
newer publication, so the finals (``rt_lmp_final``, the weekly archives) replace the preliminary
rows, and a preliminary fetched late never outranks a final (``normalize.prelim_rank``). A daily run
that could only take preliminary data also takes the finals out since (``catchup_days``, and the
two weekly archives before the day's own), so the finals replace prelims without re-running old days.

Real time (``realtime=True``, the */5 DAGs): ``lmp_rt5m`` GetRealTimeFiveMinExPost (Rolling: the
trailing 8 hours, or Current for a window of 10 minutes or less), ``as_rt5m``
GetAncillaryServicesMcp, ``fuel_mix`` FuelMix, ``load_actual`` / ``load_forecast``
RealTimeTotalLoad (and today's df_al once posted, for the forecast).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa

from pmp.http import IsoHttpError
from pmp.isos.miso.hook import MisoHook
from pmp.isos.miso.normalize import EST, normalize_payload, prelim_rank, storage_name
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.staging import sha256

log = logging.getLogger(__name__)

REALTIME_FEEDS = {"lmp_rt5m": "MarketPricing/GetRealTimeFiveMinExPost/Rolling",
                  "as_rt5m": "MarketPricing/GetAncillaryServicesMcp", "fuel_mix": "FuelMix",
                  "load_actual": "RealTimeTotalLoad", "load_forecast": "RealTimeTotalLoad"}
PREVIOUS = "MarketPricing/GetRealTimeFiveMinExPost/Previous"
DX_LMP = "pricing/v1/real-time/{day}/lmp-expost"
WEEKLY_DUE = "10:00"  # Mondays, EST
ROLLING = timedelta(hours=8)


def _est_day(t: datetime) -> date:
    return t.astimezone(EST).date()


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = _est_day(start), _est_day(end - timedelta(microseconds=1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _at(day: date, days: int, hhmm: str) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day + timedelta(days=days), time(h, m), EST).astimezone(UTC)


def weekly_monday(day: date) -> date:
    """The Monday whose weekly archive holds ``day`` (M-14 .. M-8)."""
    return day - timedelta(days=day.weekday()) + timedelta(days=14)


def weekly_due(day: date) -> datetime:
    return _at(weekly_monday(day), 0, WEEKLY_DUE)


def final_due(spec: DatasetSpec, day: date) -> datetime:
    """When the final publication that replaces a preliminary one for ``day`` is due."""
    if "weekly" in spec.params:
        return weekly_due(day)
    if "annual" in spec.params:
        days, hhmm = spec.params["annual_due"]
        return _at(date(day.year + 1, 1, 1), days, hhmm)
    if spec.dataset == "load_actual":
        days, hhmm = spec.params["due"]["df_al.xls"]
        return _at(day, days, hhmm)
    return datetime.max.replace(tzinfo=UTC)


def _stamp(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") if t else "undated"


def _not_published(spec: DatasetSpec, what: str, ready: datetime) -> Exception:
    from pmp.pipeline import NotPublishedYet

    return NotPublishedYet(f"{spec.key}: {what} is published from {ready.isoformat()}", ready)


class MisoAdapter:
    iso = "miso"
    pool = "miso_reports"
    # reports: one small file per request; api/dx/weekly: one call (or archive) per fetch task
    batch_sizes = {"reports": 20, "weekly": 1, "api": 1, "dx": 1}
    # History in monthly runs (pmp.history): a month's reports in one run's mapped fetches, so task
    # start-up and scheduling are paid once a month instead of once a market day. MISO publishes one
    # file per market day (a weekly archive per week, the annual fuel mix per year: discovery keeps
    # one document of those for all the days they hold), so requests stay one per document.
    history_window = "month"

    def hook(self) -> MisoHook:
        return MisoHook()

    # -- discovery ------------------------------------------------------------------------
    def _report_ref(self, hook: MisoHook, name: str, day: date, route: str = "reports") -> DocumentRef | None:
        published = hook.report_published(name)
        if published is False:
            return None
        when = published if isinstance(published, datetime) else None
        return DocumentRef(doc_id=f"{name}@{_stamp(when)}", name=name, route=route, url=hook.report_url(name),
                           market_day=day.isoformat(), published_at=when.isoformat() if when else None)

    def _api_ref(self, hook: MisoHook, feed: str, day: date, now: datetime) -> DocumentRef:
        minute = now.astimezone(UTC).replace(second=0, microsecond=0)
        name = feed.rsplit("/", 2)[-2] + "_" + feed.rsplit("/", 1)[-1] if feed.count("/") >= 2 else feed.rsplit("/", 1)[-1]
        return DocumentRef(doc_id=f"{feed}@{_stamp(minute)}", name=f"{name}.json", route="api", url=hook.api_url(feed),
                           market_day=day.isoformat(), published_at=None)

    def discover(self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any,
                 realtime: bool = False) -> list[DocumentRef]:
        now = datetime.now(UTC)
        if realtime:
            refs = self._realtime(spec, start, end, hook, now)
        else:
            refs = []
            for day in _days(start, end):
                refs.extend(self._daily(spec, day, hook, now))
        unique = {r.doc_id: r for r in refs}
        log.info("%s: %d document(s) for %s..%s (%s)", spec.key, len(unique), _est_day(start), _est_day(end),
                 ", ".join(sorted({r.route for r in unique.values()})) or "none")
        return sorted(unique.values(), key=lambda r: (r.market_day, r.name, r.doc_id))

    def _realtime(self, spec: DatasetSpec, start: datetime, end: datetime, hook: MisoHook,
                  now: datetime) -> list[DocumentRef]:
        feed = REALTIME_FEEDS[spec.dataset]
        first_day = _est_day(start)
        if spec.dataset == "lmp_rt5m":
            if end - start <= timedelta(minutes=10):
                feed = "MarketPricing/GetRealTimeFiveMinExPost/Current"
            else:
                first_day = _est_day(min(start, end - ROLLING))
        refs = [self._api_ref(hook, feed, first_day if spec.dataset == "lmp_rt5m" else _est_day(end), now)]
        if spec.dataset == "load_forecast":  # today's df_al vintage, once MISO has posted it
            today = _est_day(end)
            ref = self._report_ref(hook, f"{today:%Y%m%d}_df_al.xls", today)
            if ref:
                refs.append(ref)
        return refs

    def _daily(self, spec: DatasetSpec, day: date, hook: MisoHook, now: datetime) -> list[DocumentRef]:
        if "weekly" in spec.params:
            return self._weekly_day(spec, day, hook, now)
        if "annual" in spec.params:
            name = spec.params["annual"].format(year=day.year)
            ref = self._report_ref(hook, name, date(day.year, 1, 1), route="weekly")
            if ref is None:
                raise _not_published(spec, f"{name} (MISO posts the year's hourly fuel mix after it closes; "
                                     "the real-time DAG loads the current year's 5-minute mix)", final_due(spec, day))
            return [ref]
        refs: list[DocumentRef] = []
        report_day = day + timedelta(days=1) if spec.dataset == "load_actual" else day
        families = spec.params["reports"]
        for family in families:  # in order of preference: the final first
            name = f"{report_day:%Y%m%d}_{family}" + ("" if "." in family else ".csv")
            ref = self._report_ref(hook, name, day)
            if ref:
                refs.append(ref)
                break
        else:
            days, hhmm = spec.params["due"][families[-1]]
            due = _at(report_day, days, hhmm) if spec.dataset != "load_actual" else _at(day, days, hhmm)
            raise _not_published(spec, f"{report_day:%Y%m%d}_{families[-1]} for {day}",
                                 max(due, now + timedelta(minutes=15)))
        if len(families) > 1 and refs[0].name.endswith(f"_{families[-1]}.csv"):
            refs.extend(self._catchup_finals(spec, day, hook, families[0]))
        return refs

    def _catchup_finals(self, spec: DatasetSpec, day: date, hook: MisoHook, family: str) -> list[DocumentRef]:
        """The finals out now for the ``catchup_days`` days before a day that only had its preliminary
        report (one HEAD each; finals already loaded are dropped by their id before any download)."""
        refs = []
        for back in range(1, int(spec.params.get("catchup_days", 0)) + 1):
            d = day - timedelta(days=back)
            if d < spec.first_date:
                break
            ref = self._report_ref(hook, f"{d:%Y%m%d}_{family}.csv", d)
            if ref:
                refs.append(ref)
        return refs

    def _weekly_day(self, spec: DatasetSpec, day: date, hook: MisoHook, now: datetime) -> list[DocumentRef]:
        suffix = spec.params["weekly"]
        monday = weekly_monday(day)
        ref = self._report_ref(hook, f"{monday:%Y%m%d}_{suffix}", monday - timedelta(days=14), route="weekly")
        if ref:
            return [ref]
        refs: list[DocumentRef] = []
        yesterday = _est_day(now) - timedelta(days=1)
        if spec.dataset == "lmp_rt5m" and hook.has_dx_key:
            refs.append(DocumentRef(doc_id=f"dx:{DX_LMP.format(day=day)}@{_stamp(now.replace(second=0, microsecond=0))}",
                                    name=f"dx_{day:%Y%m%d}_lmp-expost.zip", route="dx",
                                    url=None, market_day=day.isoformat(), published_at=None))
        elif spec.dataset == "lmp_rt5m" and day == yesterday:
            refs.append(self._api_ref(hook, PREVIOUS, day, now))
        if not refs:
            raise _not_published(spec, f"{monday:%Y%m%d}_{suffix} (the weekly final holding {day}; until then only "
                                 "the real-time DAG's preliminary rows" + (", or Data Exchange with a key"
                                                                          if spec.dataset == "lmp_rt5m" else "") + ")",
                                 weekly_due(day))
        # the two weekly archives before the day's own: the finals of earlier days that came out
        # since, which replace their preliminary rows (already loaded ones are dropped by their id)
        for back in (7, 14):
            earlier = monday - timedelta(days=back)
            ref = self._report_ref(hook, f"{earlier:%Y%m%d}_{suffix}", earlier - timedelta(days=14), route="weekly")
            if ref:
                refs.append(ref)
        return refs

    # -- download -------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        for ref in refs:
            day = date.fromisoformat(ref.market_day)
            if ref.route in ("reports", "weekly"):
                got = hook.report(ref.name)
                if got is None:
                    raise IsoHttpError(f"MISO market report {ref.name}: HTTP 404 (listed by discovery a moment ago)", 404)
                payload, modified = got
                published = modified or ref.published
            elif ref.route == "api":
                feed = ref.doc_id.split("@", 1)[0]
                fetched = datetime.now(UTC)
                payload = hook.api(feed)
                published = prelim_rank(fetched, final_due(spec, day))
            elif ref.route == "dx":
                fetched = datetime.now(UTC)
                pages = hook.dx_pages(DX_LMP.format(day=day), {"preliminaryFinal": "Preliminary",
                                                                 "timeResolution": "5min"})
                payload = _zip_pages(pages)
                published = prelim_rank(fetched, final_due(spec, day))
            else:
                raise ValueError(f"{spec.key}: unknown route {ref.route!r}")
            stamp = published.isoformat() if published else None
            yield FetchedDocument(dataclasses.replace(ref, published_at=stamp),
                                  storage_name(ref.name, published, sha256(payload)), payload)

    def normalize(self, spec: DatasetSpec, name: str, payload: bytes, *,
                  published_at: datetime | None = None) -> pa.Table:
        return normalize_payload(spec.dataset, name, payload, published_at)


def _zip_pages(pages: list[bytes]) -> bytes:
    """Data Exchange pages byte for byte in one zip document (the zip is only transport)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, body in enumerate(pages, start=1):
            zf.writestr(zipfile.ZipInfo(f"page-{i:04d}.json", (2000, 1, 1, 0, 0, 0)), body, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


ADAPTER = MisoAdapter()
