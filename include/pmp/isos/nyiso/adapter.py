"""NYISO adapter: which MIS files hold a market day, and how to get them.

Routes (chosen per file by what the P-list page lists now, not by a fixed age cutoff):
* ``csv``: the daily CSV ``/public/csv/{dir}/{YYYYMMDD}{suffix}.csv``. NYISO hosts these only for
  recent days (older ones answer 404), and rewrites today's file as intervals are published.
* ``zip``: the monthly archive ``/public/csv/{dir}/{YYYYMM}01{suffix}_csv.zip`` (back to 2019 and
  earlier). The current month's archive is partial: a day not in it yet fails the fetch, and the
  task retries later. The archive is a transport container: the day's member (NYISO's daily file,
  byte for byte) is the raw document, so each market day keeps one small raw file.

Document ids carry the file's version (its "Last Updated" time): today's growing files are new
documents each time NYISO rewrites them, and an unchanged file is never fetched twice. The real-time
DAGs take the current version of each recent day's file, so no version NYISO wrote is missed while
the DAG was paused, and a once-a-day forecast is loaded when P-7list shows it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.http import IsoHttpError
from pmp.isos.nyiso.datasets import TZ, FileFamily
from pmp.isos.nyiso.hook import Listed, NyisoHook
from pmp.isos.nyiso.normalize import normalize_payload, storage_name, zip_member_time
from pmp.payload import PayloadError
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.staging import sha256
from pmp.timeutil import local_day_of, market_day_bounds

log = logging.getLogger(__name__)


def _stamp(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") if t else "unversioned"


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = local_day_of(start, TZ), local_day_of(end - timedelta(microseconds=1), TZ)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _ref(family: FileFamily, day: date, listed: Listed, route: str) -> DocumentRef:
    name = family.daily_name(day)
    version = _stamp(listed.last_updated)
    doc_id = f"{name}@{version}" if route == "csv" else f"{name}@{listed.name}@{version}"
    return DocumentRef(
        doc_id=doc_id, name=name, route=route, url=listed.url, market_day=day.isoformat(),
        published_at=listed.last_updated.isoformat() if listed.last_updated else None,
    )


def _version(family: FileFamily, listed: Listed) -> datetime:
    """The "Last Updated" time of a file the real-time DAG needs. Without it the run cannot tell
    whether NYISO rewrote the file since the last run: skipping the file would load nothing and
    succeed silently (the freshness check would only notice much later), so it is an error naming
    the page and the row. (Daily routes tolerate a missing time: the day's file is final, and the
    download's ``Last-Modified`` then serves as its publication time.)"""
    if listed.last_updated is None:
        raise RuntimeError(f"NYISO MIS {family.page}list: no parseable 'Last Updated' time in the row of "
                           f"{listed.name} ({listed.row!r}); expected e.g. '11/05/2024 13:00:52 EST'")
    return listed.last_updated


class NyisoAdapter:
    iso = "nyiso"
    pool = "nyiso_mis"
    # csv: one request per document; zip: one archive download serves every day of its month.
    batch_sizes = {"csv": 50, "zip": 62}
    # Documents that hold a whole market day (pmp.pipeline checks their intervals and entities before
    # staging them): a CSV without an end marker, a server-side truncation at a row boundary would
    # read as a shorter day. Day-ahead files are whole when published. Real-time files (RTD and
    # hourly LBMP, RT AS, pal/palIntegrated, rtfuelmix) grow through their day: a monthly archive's
    # member is always a final day (NYISO adds it once the day's file is final), a daily CSV only
    # when :meth:`document_is_final` says its version was written after the day's last interval was
    # due. Not listed: load_forecast (isolf), a forecast vintage whose file covers its issue day and
    # the next five days, counted by issue (completeness "vintages"), not by a fixed interval set.
    whole_day_documents = {
        "lmp_dam": ("csv", "zip"), "as_dam": ("csv", "zip"),
        **{d: ("csv", "zip") for d in ("lmp_rt5m", "lmp_rt60m", "as_rt5m", "load_actual", "fuel_mix")},
    }
    # History in monthly bulk: a monthly history DAG per dataset (pmp.history) downloads each
    # month's archive once for all its days, instead of once per daily run.
    history_window = "month"
    history_archives = True

    def hook(self) -> NyisoHook:
        return NyisoHook()

    # -- discovery ------------------------------------------------------------------------
    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        """Daily: the files of the market days in [start, end), daily CSV if listed, else the monthly
        archive. Real time: the current version of the daily CSVs of the window's days, i.e. what NYISO
        rewrote since the last run (a version already loaded is dropped by its id before any download);
        for a forecast issued once a day (``isolf``) the day before the window too, so a run whose window
        holds no issue still has the newest vintage (a new deployment's first run, or after a pause)."""
        refs: list[DocumentRef] = []
        days = _days(start, end)
        if realtime and spec.completeness == "vintages":
            days = [days[0] - timedelta(days=1), *days]
        for family in spec.params["files"]:
            listed = {f.name.lower(): f for f in hook.listing(family.page)}
            for day in days:
                csv = listed.get(family.daily_name(day).lower())
                if realtime:
                    if csv and _version(family, csv) < end:
                        refs.append(_ref(family, day, csv, "csv"))
                    continue
                if csv:
                    refs.append(_ref(family, day, csv, "csv"))
                elif (archive := listed.get(family.monthly_name(day).lower())) is not None:
                    refs.append(_ref(family, day, archive, "zip"))
                else:
                    # A day is loaded whole or not at all: with one of its files missing (say the
                    # generator file) the check would count fewer entities and call the day complete.
                    raise RuntimeError(f"{spec.key}: {family.daily_name(day)} is not published yet "
                                       f"(neither listed on {family.page}list nor archived)")
        log.info("%s: %d document(s) for %s..%s (%s)", spec.key, len(refs), days[0], days[-1],
                 ", ".join(sorted({r.route for r in refs})) or "none listed")
        return sorted(refs, key=lambda r: (r.market_day, r.name, r.doc_id))

    # -- download -------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        archives: dict[str, list[DocumentRef]] = {}
        for ref in refs:
            if ref.route == "zip":
                archives.setdefault(ref.url or "", []).append(ref)
                continue
            try:
                payload, modified = hook.download(ref.url, f"NYISO MIS {ref.name}")
            except IsoHttpError as exc:
                if exc.status != 404:
                    raise
                # Listed a moment ago but gone now (NYISO keeps daily CSVs only for recent days):
                # the monthly archive holds the same file.
                family = next(f for f in spec.params["files"] if ref.name.endswith(f"{f.suffix}.csv"))
                day = date.fromisoformat(ref.market_day)
                url = hook.monthly_url(family.directory, family.suffix, day)
                log.info("%s: %s answered 404, using %s", spec.key, ref.name, url.rsplit("/", 1)[-1])
                archives.setdefault(url, []).append(dataclasses.replace(ref, url=url, route="zip"))
                continue
            published = modified or ref.published
            yield FetchedDocument(
                dataclasses.replace(ref, published_at=published.isoformat() if published else None),
                storage_name(ref.name, published, sha256(payload)), payload,
            )
        for url, group in archives.items():
            yield from self._from_archive(hook, url, group)

    def _from_archive(self, hook: Any, url: str, refs: list[DocumentRef]) -> Iterator[FetchedDocument]:
        zip_name = url.rsplit("/", 1)[-1]
        payload, _ = hook.download(url, f"NYISO MIS {zip_name}")
        try:
            archive = zipfile.ZipFile(io.BytesIO(payload))
            members = {i.filename.rsplit("/", 1)[-1].lower(): i for i in archive.infolist()}
            found = []
            for ref in refs:
                info = members.get(ref.name.lower())
                if info is None:
                    raise PayloadError(f"{zip_name}: no member {ref.name} yet (the current month's archive "
                                       f"is partial; it is added after the day's file is final)")
                found.append((ref, info, archive.read(info)))
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise PayloadError(f"{zip_name}: corrupt zip ({exc})") from exc
        for ref, info, data in found:
            published = zip_member_time(info)
            yield FetchedDocument(
                dataclasses.replace(ref, published_at=published.isoformat()),
                storage_name(ref.name, published, sha256(data)), data,
            )

    def document_is_final(self, spec: DatasetSpec, ref: DocumentRef) -> bool:
        """Whether a fetched document of ``whole_day_documents`` is its day's final file. Day-ahead
        files are final when published and archive members always are. A real-time dataset's daily
        CSV is the same URL the */5 DAG reads while today's file grows (and yesterday's gets its
        last intervals after midnight): final only when its version (``Last-Modified``, else the
        P-list's "Last Updated") is at or after the day's end plus the dataset's publication lag,
        the time by which its last interval is published (the daily run waits for the same moment,
        pmp.pipeline._wait_for_publication). An earlier version may be a growing file: not checked."""
        if ref.route != "csv" or not spec.realtime:
            return True
        published = ref.published
        _, end = market_day_bounds(date.fromisoformat(ref.market_day), TZ)
        return published is not None and published >= end + spec.publication_lag

    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        return normalize_payload(spec.dataset, name, payload, published_at)


ADAPTER = NyisoAdapter()
