"""PJM adapter: which Data Miner 2 queries hold a window, and how to keep their pages.

Routes:
* ``day`` (daily DAGs, history): one query per feed and local market day, filtered on the feed's
  ``*_ept`` time field from 00:00 to 23:59 (end inclusive; on the fall-back day both 01:00 hours
  carry the same EPT label, so both come back). Real-time LMPs come from the *verified* feeds.
* ``range`` (history runs over several market days, the monthly history DAG): one query per feed
  over the whole window, from the first day's 00:00 to the last day's 23:59 EPT, paged, for the
  feeds PJM keeps whole (no archive tier: reserves, load, forecasts, fuel mix; see ``RANGE_FEEDS``).
* ``rt`` (*/5 DAGs): one query per interval of the look-back window (``*_utc`` filter, an interval
  exactly) for feeds that publish interval by interval - the unverified LMPs, instantaneous load,
  generation by fuel; an interval PJM has not published yet answers no rows and is asked again next
  run. The 7-day load forecast holds only its latest vintage: one query a run, kept when the
  vintage is new.

A document is one query: its pages, each byte for byte as served, in a zip (``page-0001.json`` ...;
fixed member times, so the same answer is the same document). Nothing is filtered by node: every
pricing node PJM publishes is stored, retired ones too, and archived rows need no field filter.

Publication times: unverified intervals count as published at their end (PJM posts them within
minutes); everything else at the time PJM served it (the ``Date`` of the first page); forecasts at
their evaluation time. Verified rows are served days after the unverified ones, so the loader's
rule (the newer publication wins) replaces unverified with verified and never the reverse; the
``source`` column names the feed each row came from.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.http import IsoHttpError
from pmp.isos.pjm.dataminer import check_query, parse_stamp, range_filter, read_page, utc_range_filter
from pmp.isos.pjm.datasets import FEEDS, TZ, UNVERIFIED, Feed
from pmp.isos.pjm.hook import PjmHook
from pmp.isos.pjm.normalize import normalize_payload
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.timeutil import local_day_of, market_day_bounds

log = logging.getLogger(__name__)
ZIP_TIME = (2019, 1, 1, 0, 0, 0)


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = local_day_of(start, TZ), local_day_of(end - timedelta(microseconds=1), TZ)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def container(pages: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, body in enumerate(pages, 1):
            info = zipfile.ZipInfo(f"page-{i:04d}.json", ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body)
    return buf.getvalue()


def range_feed(feed: Feed) -> bool:
    """Whether a history run asks for ``feed`` over its whole window in one (paged) query.

    Data Miner 2 serves a datetime range up to 365 days with paging (reference new-isos.md, PJM):
    for the feeds PJM keeps whole (no ``archive_days``) a month is one or two pages of 50,000 rows,
    one query instead of ~30 at 6 a minute. The LMP feeds stay one query per market day: a month
    of every pricing node is millions of rows (~160 pages day-ahead, thousands for 5-minute), so a
    range saves about one request a day while holding the month in one document and one task, and
    an archived range may not span the archive cut-over (it moves daily) nor be filtered."""
    return feed.archive_days is None and not feed.current_only


class PjmAdapter:
    iso = "pjm"
    pool = "pjm_dataminer"
    # range: one query of a month (one or more pages) per fetch task
    batch_sizes = {"day": 4, "rt": 48, "range": 1}
    # History in monthly runs (pmp.history): a month's queries in one run's mapped fetches, so task
    # start-up and scheduling are paid once a month instead of once a market day, within the pool's
    # pacing (6 requests a minute for non-members); the feeds of RANGE_FEEDS in one query a month.
    history_window = "month"

    def history_archives(self, spec: DatasetSpec) -> bool:
        """Whether a history run asks every feed of ``spec`` once for its whole window (``range``),
        so its requests do not grow with its days (``pmp plan-history``, :mod:`pmp.history`)."""
        return all(range_feed(feed) for feed in spec.params["daily"])

    def hook(self) -> PjmHook:
        return PjmHook()

    def discover(self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any,
                 realtime: bool = False) -> list[DocumentRef]:
        refs: list[DocumentRef] = []
        if not realtime:
            days = _days(start, end)
            for feed in spec.params["daily"]:
                if len(days) > 1 and range_feed(feed):
                    first, last = days[0], days[-1]
                    refs.append(DocumentRef(doc_id=f"{feed.name}/{first}..{last}",
                                            name=f"{feed.name}_{first:%Y%m%d}-{last:%Y%m%d}.zip",
                                            published_at=None, market_day=first.isoformat(), route="range"))
                    continue
                for day in days:
                    refs.append(DocumentRef(doc_id=f"{feed.name}/{day}", name=f"{feed.name}_{day:%Y%m%d}.zip",
                                            published_at=None, market_day=day.isoformat(), route="day"))
            return refs
        for feed in spec.params["realtime"]:
            if feed.current_only:
                refs.append(DocumentRef(doc_id=f"{feed.name}@current {_stamp(end)}", name=f"{feed.name}.zip",
                                        published_at=None, market_day=local_day_of(end, TZ).isoformat(), route="rt"))
                continue
            step = timedelta(minutes=feed.minutes)
            t = datetime.fromtimestamp(start.timestamp() // step.total_seconds() * step.total_seconds(), UTC)
            while t < end:
                refs.append(DocumentRef(
                    doc_id=f"{feed.name}@{_stamp(t)}", name=f"{feed.name}_{_stamp(t)}.zip",
                    published_at=(t + step).isoformat() if feed.name in UNVERIFIED else None,
                    market_day=local_day_of(t, TZ).isoformat(), route="rt"))
                t += step
        return refs

    def _filters(self, feed: Feed, ref: DocumentRef) -> dict[str, str]:
        if ref.route == "day":
            day = date.fromisoformat(ref.market_day)
            check_query(feed.name, feed.archive_days, day, day, datetime.now(UTC), field_filters=False)
            return {f"{feed.time_field}_ept": range_filter(*market_day_bounds(day, TZ))}
        if ref.route == "range":  # "<feed>/<first day>..<last day>"
            first, last = (date.fromisoformat(d) for d in ref.doc_id.split("/", 1)[1].split(".."))
            check_query(feed.name, feed.archive_days, first, last, datetime.now(UTC), field_filters=False)
            return {f"{feed.time_field}_ept": range_filter(market_day_bounds(first, TZ)[0],
                                                           market_day_bounds(last, TZ)[1])}
        if feed.current_only:
            return {}
        t = datetime.strptime(ref.doc_id.rsplit("@", 1)[1], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        return {f"{feed.time_field}_utc": utc_range_filter(t, t + timedelta(minutes=feed.minutes))}

    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        for ref in refs:
            feed = FEEDS[re.split(r"[/@]", ref.doc_id, maxsplit=1)[0]]
            pages = list(hook.pages(feed.name, self._filters(feed, ref)))
            if not sum(p.rows for p in pages):
                if ref.route in ("day", "range"):
                    raise IsoHttpError(f"{spec.key}: PJM Data Miner {feed.name} has no rows for "
                                       f"{ref.doc_id.split('/', 1)[1]} yet")
                log.info("%s: %s not published yet", spec.key, ref.doc_id)
                continue
            if feed.current_only:
                ref = self._vintage(feed, ref, pages[0].body)
            elif ref.published_at is None:
                ref = dataclasses.replace(ref, published_at=pages[0].served_at.isoformat())
            yield FetchedDocument(ref, ref.name, container([p.body for p in pages]))

    @staticmethod
    def _vintage(feed: Feed, ref: DocumentRef, body: bytes) -> DocumentRef:
        """The 7-day forecast answers with its latest vintage: the document is that vintage."""
        first = read_page(feed.name, body).items[0]
        issued = parse_stamp(str(first["evaluated_at_datetime_utc"])).replace(tzinfo=UTC)
        return dataclasses.replace(ref, doc_id=f"{feed.name}@{_stamp(issued)}", name=f"{feed.name}_{_stamp(issued)}.zip",
                                   published_at=issued.isoformat(), market_day=local_day_of(issued, TZ).isoformat())

    def normalize(self, spec: DatasetSpec, name: str, payload: bytes, *,
                  published_at: datetime | None = None) -> pa.Table:
        return normalize_payload(spec.dataset, name, payload, published_at)


ADAPTER = PjmAdapter()
