"""SPP adapter: which marketplace files hold a window, and how to get them.

Routes (``DocumentRef.route``):

* ``day``: one file per operating day that must exist: day-ahead LMPs and MCPs (``…0100.csv``) and
  the RTBM ``By_Day`` roll-ups (``RTBM-LMP-DAILY-SL-…``, ``RTBM-MCP-DAILY-…``), one request each.
* ``interval``: the 5-minute ``By_Interval`` files (folder from the interval start, name from its end,
  ``d`` for the repeated hour: :mod:`pmp.isos.spp.files`). A daily run takes them only when the
  day's ``By_Day`` file is not there (yet); the real-time DAGs always. **Some interval files are simply
  missing at SPP** (404, or served empty): such a file is skipped and logged, never staged, so it is not
  in ``ingest_log`` and every later run asks for it again; the day's check names the missing intervals
  until a later run finds the file (or the ``By_Day`` roll-up) and fills them.
* ``vintage`` / ``recent``: hourly mid-term load forecast issues (``OP-MTLF-…``). ``vintage`` must exist
  (daily runs); ``recent`` (real time) may not be posted yet and is then tried again by the next run.
* ``genmix``: a market day cut from the generation-mix archives: the closed year's ``GenMix_{YYYY}.csv``
  or the rolling ``SPP/GenMix365_SPP.csv`` (whichever holds the day; one download serves a whole fetch
  batch). The day's document is the file's header and the day's lines, byte for byte.
* ``chart``: the rolling two-hour ``chart-api/gen-mix/asChart`` (real time).

Real-time discovery of the 5-minute files first reads the family's ``…-latestInterval.csv`` (one small
request): its GMT stamp is the newest interval SPP has posted, so the run asks only for files that
exist or are missing, never for the future ones.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.http import IsoHttpError
from pmp.isos.spp.datasets import GENMIX_CHART
from pmp.isos.spp.files import TZ, Family, da_path, hours, interval_ends, local, vintage_path
from pmp.isos.spp.hook import SppHook
from pmp.isos.spp.normalize import genmix_stamp, normalize_payload, read_csv, storage_name
from pmp.payload import PayloadError
from pmp.registry import DatasetSpec, DocumentRef, FetchedDocument
from pmp.staging import sha256
from pmp.timeutil import local_day_of, market_day_bounds

log = logging.getLogger(__name__)

ROLLING_GENMIX = "/SPP/GenMix365_SPP.csv"
ROLLING_DAYS = 365


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = local_day_of(start, TZ), local_day_of(end - timedelta(microseconds=1), TZ)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _ref(route: str, folder: str, path: str, day: date, url: str, published: datetime | None = None) -> DocumentRef:
    return DocumentRef(doc_id=f"{folder}{path}", name=path.rsplit("/", 1)[-1], route=route, url=url,
                       market_day=day.isoformat(), published_at=published.isoformat() if published else None)


def _split(ref: DocumentRef) -> tuple[str, str]:
    folder, _, rest = ref.doc_id.partition("/")
    return folder, "/" + rest


def latest_interval_end(hook: SppHook, family: Family) -> datetime | None:
    """The newest interval SPP has posted: the GMT stamp of ``{prefix}-latestInterval.csv``."""
    got = hook.download(family.fs, family.latest_path())
    if got is None or not got[0].strip():
        return None
    f = read_csv(f"{family.prefix}-latestInterval.csv", got[0])
    gi = f.index("gmt")
    if not f.rows:
        return None
    return max(datetime.strptime(cells[gi].strip(), "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC) for _, cells in f.rows)


class SppAdapter:
    iso = "spp"
    pool = "spp_portal"
    # day/vintage/recent: one request per document; interval: 6 hours of 5-minute files per fetch
    # task; genmix: a month of days cut from one archive download.
    batch_sizes = {"day": 10, "interval": 72, "vintage": 25, "recent": 25, "genmix": 62, "chart": 1}
    # History in monthly runs (pmp.history): a month's files in one run's mapped fetches, so task
    # start-up and scheduling are paid once a month instead of once a market day. The marketplace
    # serves one file per operating day (or interval, or forecast issue), so requests stay one per
    # file; the generation mix is already cut from one archive download per fetch batch.
    history_window = "month"

    def hook(self) -> SppHook:
        return SppHook()

    # -- discovery ------------------------------------------------------------------------
    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        route = spec.params["route"]
        family: Family = spec.params["family"]
        if route == "da":
            by_day = family.fs.startswith("da-lmp")
            refs = [_ref("day", family.fs, p, d, hook.file_url(family.fs, p))
                    for d in _days(start, end) for p in [da_path(family.prefix, d, by_day=by_day)]]
        elif route == "rt5m":
            refs = self._rt5m(hook, family, start, end, realtime)
        elif route == "mtlf":
            refs = self._mtlf(spec, hook, family, start, end, realtime)
        else:
            refs = self._genmix(hook, family, start, end, realtime)
        log.info("%s: %d document(s) for %s..%s (%s)", spec.key, len(refs), start, end,
                 ", ".join(sorted({r.route for r in refs})) or "none")
        return sorted(refs, key=lambda r: (r.market_day, r.doc_id))

    def _rt5m(self, hook: Any, family: Family, start: datetime, end: datetime, realtime: bool) -> list[DocumentRef]:
        refs: list[DocumentRef] = []
        windows: list[tuple[datetime, datetime]] = []
        if realtime:
            windows.append((start, end))
        else:
            for day in _days(start, end):
                path = family.daily_path(day)
                if hook.exists(family.fs, path):
                    refs.append(_ref("day", family.fs, path, day, hook.file_url(family.fs, path)))
                else:
                    log.info("%s not posted (yet): using the day's 5-minute interval files", path)
                    windows.append(market_day_bounds(day, TZ))
        if not windows:
            return refs
        newest = latest_interval_end(hook, family)
        if newest is None:
            raise IsoHttpError(f"SPP {family.fs}: {family.latest_path()} is missing or empty")
        for lo, hi in windows:
            for t in interval_ends(lo, hi):
                if t <= newest:
                    path = family.interval_path(t)
                    day = local(t - timedelta(minutes=5)).date()
                    refs.append(_ref("interval", family.fs, path, day, hook.file_url(family.fs, path)))
        return refs

    def _mtlf(self, spec: DatasetSpec, hook: Any, family: Family, start: datetime, end: datetime,
              realtime: bool) -> list[DocumentRef]:
        if realtime:
            issues = [(t, local(t).date()) for t in hours(start, end + timedelta(microseconds=1))]
            route = "recent"
        elif spec.params["column"] == "forecast":  # every vintage issued during the window
            issues = [(t, local(t).date()) for t in hours(start, end)]
            route = "vintage"
        else:  # actuals of a day: the issues at local noon and at the day's end cover its 23-25 hours
            issues = []
            for day in _days(start, end):
                lo, hi = market_day_bounds(day, TZ)
                noon = datetime(day.year, day.month, day.day, 12, tzinfo=local(lo).tzinfo).astimezone(UTC)
                issues += [(noon, day), (hi, day)]
            route = "vintage"
        return [_ref(route, family.fs, p, day, hook.file_url(family.fs, p))
                for t, day in issues for p in [vintage_path(family.prefix, t)]]

    def _genmix(self, hook: Any, family: Family, start: datetime, end: datetime, realtime: bool) -> list[DocumentRef]:
        if realtime:
            slot = datetime.fromtimestamp(int(end.timestamp()) // 300 * 300, UTC)
            return [DocumentRef(doc_id=f"chart-api/{GENMIX_CHART}/asChart@{slot:%Y%m%dT%H%MZ}",
                                name=f"{GENMIX_CHART}-asChart.json", route="chart", market_day=local(slot).date().isoformat(),
                                published_at=None, url=f"{hook.cfg['base']}/chart-api/{GENMIX_CHART}/asChart")]
        return [DocumentRef(doc_id=f"{family.fs}/SPP/{d:%Y%m%d}", name=f"GenMix_SPP-{d:%Y%m%d}.csv", route="genmix",
                            market_day=d.isoformat(), published_at=None, url=hook.file_url(family.fs, ROLLING_GENMIX))
                for d in _days(start, end)]

    # -- download -------------------------------------------------------------------------
    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        genmix = [r for r in refs if r.route == "genmix"]
        for ref in refs:
            if ref.route == "genmix":
                continue
            if ref.route == "chart":
                payload = hook.chart(GENMIX_CHART)
                yield FetchedDocument(ref, storage_name(ref.name, sha256(payload)), payload)
                continue
            folder, path = _split(ref)
            got = hook.download(folder, path)
            if got is None or not got[0].strip():
                if ref.route in ("interval", "recent"):
                    # Quirk: SPP simply lacks some interval files (404) or serves them empty. Skipped,
                    # not staged: the next run asks again, and the day's check names the interval.
                    log.warning("%s: %s %s at SPP; skipped (asked again by the next run)", spec.key, ref.name,
                                "missing" if got is None else "empty")
                    continue
                raise IsoHttpError(f"SPP {folder} {ref.name}: not published (yet)", 404)
            payload, modified = got
            yield FetchedDocument(_published(ref, modified), storage_name(ref.name, sha256(payload)), payload)
        if genmix:
            yield from self._genmix_days(hook, spec.params["family"], genmix)

    def _genmix_days(self, hook: Any, family: Family, refs: list[DocumentRef]) -> Iterator[FetchedDocument]:
        """Each day cut from the archive that holds it: the closed year's ``GenMix_{YYYY}.csv`` for days
        older than the rolling file's 365 days, else ``SPP/GenMix365_SPP.csv``; the other one if the
        first does not have the day (not yet archived, or already rolled out)."""
        now = datetime.now(UTC).date()
        files: dict[str, tuple[bytes, datetime | None] | None] = {}

        def get(path: str) -> tuple[bytes, datetime | None] | None:
            if path not in files:
                files[path] = hook.download(family.fs, path)
            return files[path]

        for ref in refs:
            day = date.fromisoformat(ref.market_day)
            annual = f"/GenMix_{day.year}.csv"
            order = [annual, ROLLING_GENMIX] if (now - day).days > ROLLING_DAYS else [ROLLING_GENMIX, annual]
            for path in order:
                got = get(path)
                cut = day_slice(path, got[0], day) if got else None
                if cut:
                    container = path.rsplit("/", 1)[-1]
                    fixed = DocumentRef(**{**ref.to_dict(), "name": container, "url": hook.file_url(family.fs, path)})
                    yield FetchedDocument(_published(fixed, got[1] if got else None),
                                          storage_name(container, sha256(cut)), cut)  # the day is in the raw key
                    break
            else:
                raise PayloadError(f"SPP generation mix {day}: in neither {annual} nor {ROLLING_GENMIX} (yet)")

    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        return normalize_payload(spec.dataset, name, payload, published_at)


def _published(ref: DocumentRef, modified: datetime | None) -> DocumentRef:
    if modified is None:
        return ref
    return DocumentRef(**{**ref.to_dict(), "published_at": modified.isoformat()})


def day_slice(path: str, data: bytes, day: date) -> bytes | None:
    """The header line and every line of one local market day (stamps are GMT interval ends in
    (day start, day end]), byte for byte as published; None when the file has no line of that day."""
    lo, hi = market_day_bounds(day, TZ)
    lines = data.splitlines(keepends=True)
    if not lines:
        return None
    header = next(csv.reader(io.StringIO(lines[0].decode("utf-8-sig"))))
    try:
        ti = next(i for i, h in enumerate(header) if h.strip().replace(" ", "").lower() in ("gmtmktinterval", "gmttime"))
    except StopIteration:
        raise NormalizeError(path, 1, "GMT MKT Interval", f"no time column; header is {header}") from None
    keep = []
    for n, line in enumerate(lines[1:], start=2):
        text = line.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        cell = text.split(",", ti + 1)[ti]
        t = genmix_stamp(path, n, cell)
        if lo < t <= hi:
            keep.append(line)
    return lines[0] + b"".join(keep) if keep else None


ADAPTER = SppAdapter()
