"""ERCOT adapter: which documents hold a market day, and how to get them.

Routes:
* ``mis``: the MIS document list + per-document download. MIS keeps 5-31 days depending on the
  product, so it serves the recent past and the real-time DAGs.
* ``archive``: the Public API archive (listing + bulk POST of up to 1,000 documents as a zip of
  zips). Serves everything older than MIS keeps; needs API credentials.
* ``bundle``: the API's monthly bundles (one zip of zips per product and posting month), used
  instead of ``archive`` when the connection sets ``archive_bundles`` and ERCOT has bundled every
  month the day's documents were posted in.
* ``annual``: the annual hub and load-zone files (NP4-180-ER, NP6-785-ER, NP4-181-ER; MIS, no
  auth; ``params["annual"]``) for history days the Public API cannot serve - no credentials on
  the connection, or its archive has nothing for the day. One document per (file, month): the
  first run of a month downloads the file and loads that month's sheet, later days of the month
  find it in ``ingest_log``. Hubs and load zones only: resource nodes are not in these files.
* ``dashboard`` / ``workbook``: fuel mix only - ``fuel-mix.json`` (today and yesterday, 5-minute)
  and the ``IntGenbyFuelYYYY.xlsx`` workbooks listed on the generation page (history, 15-minute).

A dataset may combine several ERCOT reports (``params["reports"]``, e.g. ``load_actual`` =
NP6-345-CD hourly + NP6-235-CD 15-minute); each report picks its route by its own retention.

The route for a day is chosen by looking at what MIS still holds, not by a fixed cutoff: ERCOT's
retention differs per product and has changed over time.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.isos.ercot.hook import ARCHIVE_MAX_DOCS, ErcotHook
from pmp.isos.ercot.normalize import TZ, normalize_payload
from pmp.isos.ercot.normalize_annual import document_name
from pmp.payload import PayloadError, iter_members, leaf_name
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.timeutil import TimeLabelError, local_day_of, localize, market_day_bounds, zone

log = logging.getLogger(__name__)

_NAME_STAMP = re.compile(r"_(\d{8})_(\d{4,6})(xhr)?", re.IGNORECASE)


def _parse_local(value: str, name: str = "") -> datetime:
    """ERCOT posting time: ISO 8601 with offset (MIS ``PublishDate``) or without (API archive
    ``postDatetime``, local time), as an aware local time.

    Quirk: during the repeated fall-back hour the wall-clock time occurs twice; the API gives no
    offset and the MIS offset may be wrong. ERCOT adds ``xhr`` to the names of the second pass, so
    the local time is re-placed with that marker (gridstatus does the same)."""
    dt = datetime.fromisoformat(value)
    try:
        return localize(dt.replace(tzinfo=None), TZ, repeated="xhr" in name.lower()).astimezone(zone(TZ))
    except TimeLabelError:  # not a wall-clock time of Central time: keep what was published
        return dt if dt.tzinfo else dt.replace(tzinfo=zone(TZ))


def report_day(rule: str, name: str, published: datetime) -> date | None:
    """Market day a document belongs to, by the product's rule (``doc_day`` of each report):

    * ``publish_plus_1``: DAM results for day D are posted on D-1;
    * ``publish_minus_1``: actual load of day D is posted the morning of D+1;
    * ``publish_day``: forecasts belong to the day they were issued (posted);
    * ``name_interval_end`` / ``name_hour_end``: ``<STEM>_YYYYMMDD_HHMM`` names the local *end* of
      the document's 15-minute interval / hour (``..._0000`` is the last one of the day before);
    * ``name_run_time``: SCED files name the local run time.
    """
    local = published.astimezone(zone(TZ)).date()
    if rule == "publish_plus_1":
        return local + timedelta(days=1)
    if rule == "publish_minus_1":
        return local - timedelta(days=1)
    if rule == "publish_day":
        return local
    m = _NAME_STAMP.search(name)
    if not m:
        return None
    stamp = datetime.strptime(m.group(1) + m.group(2)[:4], "%Y%m%d%H%M")
    if rule == "name_interval_end":
        return (stamp - timedelta(minutes=15)).date()
    if rule == "name_hour_end":
        return (stamp - timedelta(minutes=60)).date()
    return stamp.date()


def doc_day(spec: DatasetSpec, name: str, published: datetime) -> date | None:
    """Market day a document of a single-report dataset belongs to (``params['doc_day']``)."""
    return report_day(spec.params["doc_day"], name, published)


def reports(spec: DatasetSpec) -> list[dict[str, Any]]:
    """The ERCOT reports a dataset is made of (``params['reports']``, or the params themselves)."""
    return [dict(r) for r in spec.params.get("reports") or [spec.params]]


def report_of(spec: DatasetSpec, name: str) -> dict[str, Any]:
    """The report a document belongs to, by its stem (``DAMSPNP4190``, ``SYSWIDEDEMANDNP6235``)."""
    reps = reports(spec)
    if len(reps) == 1:
        return reps[0]
    leaf = leaf_name(name)
    for rep in reps:
        if rep["stem"].lower() in leaf.lower():
            return rep
    raise ValueError(f"{spec.key}: document {name!r} matches none of the stems {[r['stem'] for r in reps]}")


def _post_window(rule: str, days: list[date]) -> tuple[datetime, datetime]:
    """Local posting times that can hold the documents of ``days`` (API listing filter)."""
    first, last = min(days), max(days)
    start_of = datetime.min.time()
    if rule == "publish_plus_1":
        return (datetime.combine(first - timedelta(days=1), start_of),
                datetime.combine(last - timedelta(days=1), datetime.max.time()).replace(microsecond=0))
    if rule == "publish_minus_1":
        return (datetime.combine(first + timedelta(days=1), start_of),
                datetime.combine(last + timedelta(days=1), datetime.max.time()).replace(microsecond=0))
    if rule == "publish_day":
        return (datetime.combine(first, start_of),
                datetime.combine(last, datetime.max.time()).replace(microsecond=0))
    # posted during the day, the last intervals shortly after midnight
    return (datetime.combine(first, start_of),
            datetime.combine(last + timedelta(days=1), start_of) + timedelta(hours=2))


def _months(lo: datetime, hi: datetime) -> list[tuple[int, int]]:
    out, y, m = [], lo.year, lo.month
    while (y, m) <= (hi.year, hi.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _is_csv(doc: dict[str, Any]) -> bool:
    return str(doc.get("FriendlyName", "")).lower().endswith("_csv") or str(
        doc.get("ConstructedName", "")
    ).lower().endswith(".csv.zip")


class ErcotAdapter:
    iso = "ercot"
    pool = "ercot_api"
    # MIS: one request per document, so a task carries 100; archive: one bulk POST of <= 1,000;
    # a monthly bundle, a dashboard snapshot or an annual workbook is one task each.
    # The months of one annual file share a download (a batch of up to 12).
    batch_sizes = {"mis": 100, "archive": ARCHIVE_MAX_DOCS, "bundle": 1, "dashboard": 1, "workbook": 1, "annual": 12}
    # Routes whose every document holds one whole market day (pmp.pipeline checks its intervals
    # before staging it): the DAM settlement point price report of a day, from MIS or the API's
    # archive. Its CSV has no end marker; a cut at a row boundary is still a valid zip.
    whole_day_documents = {"lmp_dam": ("mis", "archive")}
    # History in monthly runs (pmp.history): the Public API archive lists and downloads a month's
    # documents in up to 1,000 per request (monthly bundles where available), once per run.
    history_window = "month"
    history_docs_per_request = ARCHIVE_MAX_DOCS

    def hook(self) -> ErcotHook:
        return ErcotHook()

    # -- discovery ------------------------------------------------------------------------
    def _mis_refs(
        self, spec: DatasetSpec, hook: ErcotHook, rep: dict[str, Any] | None = None
    ) -> tuple[list[DocumentRef], date | None]:
        rep = rep or reports(spec)[0]
        refs: list[DocumentRef] = []
        oldest: date | None = None
        for doc in hook.list_documents(rep["rtid"]):
            if not _is_csv(doc):
                continue
            published = _parse_local(doc["PublishDate"], doc.get("FriendlyName", ""))
            day = report_day(rep["doc_day"], doc["FriendlyName"], published)
            if day is None:
                continue
            oldest = day if oldest is None or day < oldest else oldest
            refs.append(
                DocumentRef(
                    doc_id=str(doc["DocID"]), name=doc["ConstructedName"], published_at=published.isoformat(),
                    market_day=day.isoformat(), route="mis", size=int(doc.get("ContentSize") or 0) or None,
                )
            )
        return refs, oldest

    def _archive_refs(
        self, spec: DatasetSpec, days: list[date], hook: ErcotHook, rep: dict[str, Any] | None = None
    ) -> list[DocumentRef]:
        rep = rep or reports(spec)[0]
        window = _post_window(rep["doc_day"], days)
        if hook.use_bundles:
            bundled = self._bundle_refs(rep, window, hook)
            if bundled is not None:
                return bundled
        refs = []
        wanted = set(days)
        for item in hook.archive_list(rep["emil"], window[0].isoformat(), window[1].isoformat()):
            name = item.get("friendlyName", "")
            if name.lower().endswith("_xml"):
                continue
            published = _parse_local(item["postDatetime"], name)
            day = report_day(rep["doc_day"], name, published)
            if day in wanted:
                refs.append(
                    DocumentRef(
                        doc_id=str(item["docId"]), name=name, published_at=published.isoformat(),
                        market_day=day.isoformat(), route="archive",
                    )
                )
        return refs

    def _bundle_refs(
        self, rep: dict[str, Any], window: tuple[datetime, datetime], hook: ErcotHook
    ) -> list[DocumentRef] | None:
        """The monthly bundles of every posting month in the window, or None when one is missing
        (then the archive listing serves the days). A bundle is one raw document (a zip of the
        month's document zips, loaded whole); its rows take their publication time from the
        constructed names inside, so ``published_at`` stays empty here."""
        cache = hook.__dict__.setdefault("_pmp_bundles", {})
        if rep["emil"] not in cache:
            cache[rep["emil"]] = {
                str(b.get("friendlyName", ""))[-7:]: b for b in hook.bundle_list(rep["emil"])
            }
        by_month = cache[rep["emil"]]
        refs = []
        for y, m in _months(*window):
            bundle = by_month.get(f"{y:04d}-{m:02d}")
            if bundle is None:
                log.info("%s: no monthly bundle for %04d-%02d, using the archive listing", rep["emil"], y, m)
                return None
            refs.append(DocumentRef(
                doc_id=str(bundle["docId"]), name=f"{bundle['friendlyName']}.zip", published_at=None,
                market_day=date(y, m, 1).isoformat(), route="bundle",
            ))
        return refs

    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        """Documents for the market days in [start, end) (UTC). Real-time: MIS documents of the window."""
        if spec.params.get("source") == "fuel_mix":
            return self._fuel_discover(spec, start, end, hook=hook, realtime=realtime)
        if realtime:
            found = [r for rep in reports(spec) for r in self._mis_refs(spec, hook, rep)[0]]
            return sorted(
                (r for r in found if start <= datetime.fromisoformat(r.published_at) < end),
                key=lambda r: (r.published_at, r.doc_id),
            )
        days = _days(start, end)
        if max(days) < spec.first_date:
            raise RuntimeError(f"{spec.key}: {days[0]}..{days[-1]} is before the product's first day "
                               f"{spec.first_date} (ERCOT did not publish it yet)")
        days = [d for d in days if d >= spec.first_date]
        refs: list[DocumentRef] = []
        for rep in reports(spec):
            mis, oldest = self._mis_refs(spec, hook, rep)
            if oldest is not None and oldest < min(days):
                wanted = {d.isoformat() for d in days}
                found = [r for r in mis if r.market_day in wanted]
                route = "mis"
            elif hook.api_configured:
                found = self._archive_refs(spec, days, hook, rep)
                route = found[0].route if found else "archive"
                # bundles cover whole months (and fall back to the listing when one is missing)
                covered = {r.market_day for r in found} if route == "archive" else {d.isoformat() for d in days}
                missing = [d for d in days if d.isoformat() not in covered]
                if missing and rep.get("annual"):
                    found += self._annual_refs(spec, rep, missing, hook, "the Public API archive has nothing for it")
                    route = f"{route} + annual" if covered else "annual"
            elif rep.get("annual"):
                found = self._annual_refs(spec, rep, days, hook, f"the Public API is not configured on connection "
                                          f"{hook.ercot_conn_id!r}")
                route = "annual"
            else:
                raise RuntimeError(
                    f"{spec.key}: {days[0]} is older than what ERCOT MIS keeps and the Public API is not "
                    f"configured on connection {hook.ercot_conn_id!r} (login, password, extra.subscription_key)"
                )
            log.info("%s %s: %d document(s) for %s..%s via %s", spec.key, rep["emil"], len(found), days[0],
                     days[-1], route)
            refs.extend(found)
        return sorted(refs, key=lambda r: (r.published_at or "", r.doc_id))

    def _annual_refs(
        self, spec: DatasetSpec, rep: dict[str, Any], days: list[date], hook: ErcotHook, why: str
    ) -> list[DocumentRef]:
        """The months of the annual files (MIS ``<STEM>_YYYY``, the newest posting of each year)
        that hold ``days``. ERCOT re-posts the current year's file weekly with the days before
        the posting, so a day on or after the posting day is not in it yet."""
        ann = rep["annual"]
        stem = re.compile(rf"{re.escape(ann['stem'])}_(\d{{4}})", re.IGNORECASE)
        latest: dict[int, tuple[dict[str, Any], datetime]] = {}
        for doc in hook.list_documents(ann["rtid"]):
            m = stem.fullmatch(str(doc.get("FriendlyName", "")))
            if m:
                published = _parse_local(doc["PublishDate"])
                if int(m[1]) not in latest or published > latest[int(m[1])][1]:
                    latest[int(m[1])] = (doc, published)
        refs: dict[str, DocumentRef] = {}
        for day in days:
            if day.year not in latest:
                raise RuntimeError(f"{spec.key}: {day} is older than what ERCOT MIS keeps, {why}, and MIS lists no "
                                   f"annual file {ann['stem']}_{day.year} ({ann['emil']}, report type {ann['rtid']})")
            doc, published = latest[day.year]
            if published.astimezone(zone(TZ)).date() <= day:
                raise RuntimeError(f"{spec.key}: {day} is not in {doc['FriendlyName']} yet (posted {published.isoformat()};"
                                   " ERCOT re-posts it weekly with the days before the posting)")
            doc_id = f"{doc['DocID']}@{day:%Y-%m}"  # one document per month of the file
            refs[doc_id] = DocumentRef(
                doc_id=doc_id, name=document_name(doc["ConstructedName"], day.year, day.month),
                published_at=published.isoformat(), market_day=day.replace(day=1).isoformat(), route="annual",
            )
        log.info("%s %s: %s..%s is older than what ERCOT MIS keeps and %s: using the annual file(s) %s (%s) - "
                 "hubs and load zones only, these files have no resource nodes", spec.key, rep["emil"], days[0],
                 days[-1], why, ", ".join(sorted({r.name for r in refs.values()})), ann["emil"])
        return list(refs.values())

    # -- fuel mix: dashboard (recent) and annual workbooks (history) ------------------------
    def _dashboard_ref(self, payload: bytes, fallback_day: date | None = None) -> DocumentRef:
        updated = _dashboard_updated(payload)
        day = updated.astimezone(zone(TZ)).date() if updated else fallback_day
        stamp = f"{updated.astimezone(UTC):%Y%m%dT%H%M%SZ}" if updated else "unknown"
        return DocumentRef(
            doc_id=f"fuel-mix@{stamp}", name=f"fuel-mix_{stamp}.json",
            published_at=updated.astimezone(zone(TZ)).isoformat() if updated else None,
            market_day=(day or date.today()).isoformat(), route="dashboard",
        )

    def _fuel_discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool
    ) -> list[DocumentRef]:
        payload = hook.dashboard("fuel-mix")
        if realtime:
            return [self._dashboard_ref(payload)]
        days = [d for d in _days(start, end) if d >= spec.first_date]
        covered = _dashboard_days(payload)
        refs: dict[str, DocumentRef] = {}
        workbooks: dict[int, str] | None = None
        for day in days:
            if day in covered:
                ref = self._dashboard_ref(payload, day)
            else:
                workbooks = hook.fuel_workbooks() if workbooks is None else workbooks
                ref = _workbook_ref(spec, day, workbooks.get(day.year))
            refs[ref.doc_id] = ref
        log.info("%s: %s", spec.key, ", ".join(f"{r.route} {r.name}" for r in refs.values()))
        return list(refs.values())

    # -- download -------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        mis = [r for r in refs if r.route == "mis"]
        archive = [r for r in refs if r.route == "archive"]
        for ref in mis:  # the URL travels with the document: errors and ingest_log name where it came from
            yield FetchedDocument(dataclasses.replace(ref, url=ref.url or hook.document_url(ref.doc_id)),
                                  _storage_name(ref.name), hook.download_document(ref.doc_id))
        by_report: dict[str, list[DocumentRef]] = {}
        for ref in archive:
            by_report.setdefault(report_of(spec, ref.name)["emil"], []).append(ref)
        for emil, group in by_report.items():
            for i in range(0, len(group), ARCHIVE_MAX_DOCS):
                batch = group[i : i + ARCHIVE_MAX_DOCS]
                bundle = hook.archive_download(emil, [r.doc_id for r in batch])
                yield from _split_bundle(batch, bundle)
        annual: dict[str, bytes] = {}  # the months of one annual file: one download
        for ref in refs:
            if ref.route == "annual":
                mis_id = ref.doc_id.split("@", 1)[0]
                if mis_id not in annual:
                    annual[mis_id] = hook.download_document(mis_id)
                yield FetchedDocument(ref, ref.name, annual[mis_id])
            elif ref.route == "bundle":
                payload = hook.bundle_download(report_of(spec, ref.name)["emil"], ref.doc_id)
                yield FetchedDocument(ref, ref.name, payload)
            elif ref.route == "workbook":
                yield FetchedDocument(ref, ref.name, hook.download_url(ref.url))
            elif ref.route == "dashboard":
                payload = hook.dashboard("fuel-mix")
                # the feed moves every five minutes: the document is what was actually downloaded
                fetched = self._dashboard_ref(payload, date.fromisoformat(ref.market_day))
                yield FetchedDocument(fetched, fetched.name, payload)

    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        return normalize_dataset(spec.dataset, name, payload, published_at)


def normalize_dataset(dataset: str, name: str, payload: bytes, published_at: datetime | None = None) -> pa.Table:
    """Raw payload (CSV, MIS zip, archive zip of zips, bundle, JSON, workbook, annual file) -> standard rows."""
    from pmp.isos.ercot.normalize import LMP_LAYOUTS
    from pmp.isos.ercot.normalize_annual import ANNUAL_DATASETS, normalize_annual
    from pmp.isos.ercot.xlsx import is_workbook

    if dataset in ANNUAL_DATASETS and is_workbook(payload):  # routed by payload type, whatever the name
        return normalize_annual(dataset, name, payload, published_at)
    if dataset in LMP_LAYOUTS:
        return normalize_payload(dataset, name, payload, published_at)
    if dataset == "fuel_mix":
        from pmp.isos.ercot.normalize_fuel import normalize_fuel_payload

        return normalize_fuel_payload(name, payload, published_at)
    from pmp.isos.ercot.normalize_as import AS_LAYOUTS, normalize_as_csv
    from pmp.isos.ercot.normalize_load import normalize_forecast, normalize_load_actual

    if dataset in AS_LAYOUTS:
        def parse(path: str, data: bytes) -> pa.Table:
            return normalize_as_csv(dataset, path, data, published_at)
    elif dataset == "load_actual":
        def parse(path: str, data: bytes) -> pa.Table:
            return normalize_load_actual(path, data, published_at)
    elif dataset == "load_forecast":
        def parse(path: str, data: bytes) -> pa.Table:
            return normalize_forecast(path, data, published_at)
    else:
        raise KeyError(f"ERCOT dataset {dataset!r} has no normalizer")
    tables = [parse(path, data) for path, data in iter_members(name, payload)]
    if not tables:
        raise PayloadError(f"{name}: no CSV member found")
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _days(start: datetime, end: datetime) -> list[date]:
    days = []
    day = local_day_of(start, TZ)
    while localize(datetime.combine(day, datetime.min.time()), TZ) < end:
        days.append(day)
        day += timedelta(days=1)
    return days


def _dashboard_json(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise PayloadError(f"fuel-mix.json: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise PayloadError("fuel-mix.json: no 'data' object")
    return doc


def _dashboard_updated(payload: bytes) -> datetime | None:
    from pmp.isos.ercot.normalize_fuel import _parse_stamp

    value = _dashboard_json(payload).get("lastUpdated")
    try:
        return _parse_stamp(str(value)) if value else None
    except ValueError:
        return None


def _dashboard_days(payload: bytes) -> set[date]:
    """Local days the feed holds *completely* (its last 5-minute interval is there)."""
    from pmp.isos.ercot.normalize_fuel import _parse_stamp, dashboard_interval

    out = set()
    for key, stamps in _dashboard_json(payload)["data"].items():
        try:
            day = date.fromisoformat(key)
            last = max(dashboard_interval(_parse_stamp(s)) for s in stamps)
        except (ValueError, TypeError):
            continue
        if last + timedelta(minutes=5) >= market_day_bounds(day, TZ)[1]:
            out.add(day)
    return out


def _workbook_ref(spec: DatasetSpec, day: date, url: str | None) -> DocumentRef:
    """The annual ``IntGenbyFuelYYYY.xlsx``. ERCOT re-posts the current year's workbook about once
    a month (the posting date is in its URL, ``/files/docs/YYYY/MM/DD/``) with the months completed
    before it; a day on or after the posting month's start is not in it yet."""
    if url is None:
        raise RuntimeError(f"{spec.key}: {day} is neither in fuel-mix.json (today and yesterday) nor in an "
                           f"IntGenbyFuel{day.year} workbook on the generation page (yet)")
    m = re.search(r"/(\d{4})/(\d{2})/(\d{2})/[^/]*$", url)
    posted = date(int(m[1]), int(m[2]), int(m[3])) if m else None
    if posted is not None and day >= posted.replace(day=1):
        raise RuntimeError(f"{spec.key}: {day} is not in IntGenbyFuel{day.year} yet (posted {posted}, it holds "
                           f"the months before {posted:%B %Y}); fuel-mix.json only holds today and yesterday")
    stem = leaf_name(url).removesuffix(".xlsx")
    path = re.search(r"files/docs/.*$", url)  # the same document id whatever the host
    return DocumentRef(
        doc_id=path[0] if path else url, name=f"{stem}_{posted:%Y%m%d}.xlsx" if posted else leaf_name(url),
        published_at=None, market_day=date(day.year, 1, 1).isoformat(), route="workbook", url=url,
    )


def _storage_name(name: str) -> str:
    """Raw file name: the constructed CSV name + ``.zip`` whatever the route, so one document has one key."""
    name = leaf_name(name)
    return name if name.lower().endswith(".zip") else name + ".zip"


def _split_bundle(refs: list[DocumentRef], bundle: bytes) -> Iterator[FetchedDocument]:
    """API bulk download: a zip whose members are ``<docId>.zip``, each the document's own zip."""
    by_id = {r.doc_id: r for r in refs}
    try:
        outer = zipfile.ZipFile(io.BytesIO(bundle))
    except zipfile.BadZipFile as exc:
        raise PayloadError(f"ERCOT archive bundle of {len(refs)} documents: corrupt zip ({exc})") from exc
    seen = set()
    for info in outer.infolist():
        doc_id = info.filename.rsplit("/", 1)[-1].removesuffix(".zip")
        ref = by_id.get(doc_id)
        if ref is None:
            continue
        try:
            inner = outer.read(info)
            members = zipfile.ZipFile(io.BytesIO(inner)).namelist()
        except (zipfile.BadZipFile, EOFError) as exc:
            raise PayloadError(f"ERCOT archive bundle member {info.filename}: corrupt zip ({exc})") from exc
        csv_name = next((m for m in members if m.lower().endswith(".csv")), ref.name)
        seen.add(doc_id)
        yield FetchedDocument(ref, _storage_name(csv_name), inner)
    missing = sorted(set(by_id) - seen)
    if missing:
        raise PayloadError(f"ERCOT archive bundle lacks {len(missing)} requested document(s), e.g. {missing[:3]}")


ADAPTER = ErcotAdapter()
