"""ERCOT adapter: which documents hold a market day, and how to get them.

Routes:
* ``mis``: the MIS document list + per-document download. MIS keeps 5-31 days depending on the
  product, so it serves the recent past and the real-time DAGs.
* ``archive``: the Public API archive (listing + bulk POST of up to 1,000 documents as a zip of
  zips). Serves everything older than MIS keeps; needs API credentials.

The route for a day is chosen by looking at what MIS still holds, not by a fixed cutoff: ERCOT's
retention differs per product and has changed over time.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.isos.ercot.hook import ARCHIVE_MAX_DOCS, ErcotHook
from pmp.isos.ercot.normalize import TZ, normalize_payload
from pmp.payload import PayloadError, leaf_name
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.timeutil import local_day_of, localize, zone

log = logging.getLogger(__name__)

_NAME_STAMP = re.compile(r"_(\d{8})_(\d{4,6})(xhr)?", re.IGNORECASE)


def _parse_local(value: str) -> datetime:
    """ERCOT posting time: ISO 8601 with offset (MIS) or without (API archive, local time)."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=zone(TZ))
    return dt


def doc_day(spec: DatasetSpec, name: str, published: datetime) -> date | None:
    """Market day a document belongs to (the ISO's rule per product, see ``params['doc_day']``)."""
    rule = spec.params["doc_day"]
    if rule == "publish_plus_1":  # DAM results for day D are posted on D-1
        return published.astimezone(zone(TZ)).date() + timedelta(days=1)
    m = _NAME_STAMP.search(name)
    if not m:
        return None
    stamp = datetime.strptime(m.group(1) + m.group(2)[:4], "%Y%m%d%H%M")
    if rule == "name_interval_end":  # SPPHLZNP6905_YYYYMMDD_HHMM names the interval's local end
        return (stamp - timedelta(minutes=15)).date()
    return stamp.date()  # SCED files name the local run time


def _is_csv(doc: dict[str, Any]) -> bool:
    return str(doc.get("FriendlyName", "")).lower().endswith("_csv") or str(
        doc.get("ConstructedName", "")
    ).lower().endswith(".csv.zip")


class ErcotAdapter:
    iso = "ercot"
    pool = "ercot_api"
    # MIS: one request per document, so a task carries 100; archive: one bulk POST of <= 1,000.
    batch_sizes = {"mis": 100, "archive": ARCHIVE_MAX_DOCS}

    def hook(self) -> ErcotHook:
        return ErcotHook()

    # -- discovery ------------------------------------------------------------------------
    def _mis_refs(self, spec: DatasetSpec, hook: ErcotHook) -> tuple[list[DocumentRef], date | None]:
        refs: list[DocumentRef] = []
        oldest: date | None = None
        for doc in hook.list_documents(spec.params["rtid"]):
            if not _is_csv(doc):
                continue
            published = _parse_local(doc["PublishDate"])
            day = doc_day(spec, doc["FriendlyName"], published)
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

    def _archive_refs(self, spec: DatasetSpec, days: list[date], hook: ErcotHook) -> list[DocumentRef]:
        first, last = min(days), max(days)
        if spec.params["doc_day"] == "publish_plus_1":
            post_from, post_to = first - timedelta(days=1), last - timedelta(days=1)
            window = (datetime.combine(post_from, datetime.min.time()),
                      datetime.combine(post_to, datetime.max.time()).replace(microsecond=0))
        else:  # posted during the day, the last intervals shortly after midnight
            window = (datetime.combine(first, datetime.min.time()),
                      datetime.combine(last + timedelta(days=1), datetime.min.time()) + timedelta(hours=2))
        refs = []
        wanted = set(days)
        for item in hook.archive_list(spec.params["emil"], window[0].isoformat(), window[1].isoformat()):
            name = item.get("friendlyName", "")
            if name.lower().endswith("_xml"):
                continue
            published = _parse_local(item["postDatetime"])
            day = doc_day(spec, name, published)
            if day in wanted:
                refs.append(
                    DocumentRef(
                        doc_id=str(item["docId"]), name=name, published_at=published.isoformat(),
                        market_day=day.isoformat(), route="archive",
                    )
                )
        return refs

    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        """Documents for the market days in [start, end) (UTC). Real-time: MIS documents of the window."""
        if realtime:
            refs, _ = self._mis_refs(spec, hook)
            return sorted(
                (r for r in refs if start <= datetime.fromisoformat(r.published_at) < end),
                key=lambda r: (r.published_at, r.doc_id),
            )
        days = []
        day = local_day_of(start, TZ)
        while localize(datetime.combine(day, datetime.min.time()), TZ) < end:
            days.append(day)
            day += timedelta(days=1)
        mis, oldest = self._mis_refs(spec, hook)
        if oldest is not None and oldest < min(days):
            wanted = {d.isoformat() for d in days}
            refs = [r for r in mis if r.market_day in wanted]
            route = "mis"
        elif hook.api_configured:
            refs = self._archive_refs(spec, days, hook)
            route = "archive"
        else:
            raise RuntimeError(
                f"{spec.key}: {days[0]} is older than what ERCOT MIS keeps and the Public API is not "
                f"configured on connection {hook.ercot_conn_id!r} (login, password, extra.subscription_key)"
            )
        log.info("%s: %d document(s) for %s..%s via %s", spec.key, len(refs), days[0], days[-1], route)
        return sorted(refs, key=lambda r: (r.published_at or "", r.doc_id))

    # -- download -------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        mis = [r for r in refs if r.route == "mis"]
        archive = [r for r in refs if r.route == "archive"]
        for ref in mis:
            yield FetchedDocument(ref, _storage_name(ref.name), hook.download_document(ref.doc_id))
        for i in range(0, len(archive), ARCHIVE_MAX_DOCS):
            batch = archive[i : i + ARCHIVE_MAX_DOCS]
            bundle = hook.archive_download(spec.params["emil"], [r.doc_id for r in batch])
            yield from _split_bundle(batch, bundle)

    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        return normalize_payload(spec.dataset, name, payload, published_at)


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
