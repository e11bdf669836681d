"""The task bodies shared by the Airflow DAGs and ``pmp download``.

discover -> fetch (one call per batch) -> stage -> normalize -> load -> check.
Every function takes and returns JSON-serializable values (they travel through XCom) and does
its own I/O, so each runs on any worker.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pmp import lineage, metrics, registry
from pmp.loader import DocumentLoad, dedupe_latest, load_batch, loaded_checksums, row_range
from pmp.payload import PayloadError, validate
from pmp.registry import DatasetSpec, DocumentRef
from pmp.staging import normalized_key, open_store, put_raw, raw_key, sha256
from pmp.timeutil import local_day_of, market_day_bounds

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100
# How long ``discover`` waits in place for a day's last documents before it gives up with
# NotPublishedYet. A DAG task waits briefly only: sleeping would hold the ISO's pool slot (one slot
# for some ISOs, shared with the */5 DAGs), so a longer wait is an Airflow reschedule (the factory
# turns NotPublishedYet into AirflowRescheduleException), which frees the worker and the slot.
# ``pmp download`` (run_window) has no scheduler to come back later, so it waits up to MAX_WAIT.
DAG_MAX_WAIT = timedelta(minutes=2)
MAX_WAIT = timedelta(minutes=30)


class IncompleteDataError(RuntimeError):
    """The check found missing or extra intervals."""


class IncompleteDocumentError(PayloadError):
    """A document that holds a whole market day lacks intervals or entities (a publication or
    download cut at a row boundary): refused before it is staged, so a retry downloads it again."""


class NotPublishedYet(RuntimeError):
    """The ISO publishes the window's last documents later: come back at ``ready``."""

    def __init__(self, message: str, ready: datetime) -> None:
        super().__init__(message)
        self.ready = ready


def _spec(key: str) -> DatasetSpec:
    iso, dataset = key.split(".", 1)
    return registry.get(iso, dataset)


def _utc(value: str | datetime) -> datetime:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def market_days(spec: DatasetSpec, start: str | datetime, end: str | datetime) -> list[date]:
    start_utc, end_utc = _utc(start), _utc(end)
    day, days = local_day_of(start_utc, spec.timezone), []
    while market_day_bounds(day, spec.timezone)[0] < end_utc:
        days.append(day)
        day += timedelta(days=1)
    return days


def _wait_for_publication(spec: DatasetSpec, end: datetime, now: datetime | None = None, *,
                          max_wait: timedelta = DAG_MAX_WAIT) -> None:
    """Real-time products post a few minutes after each interval; a day run waits for the last one
    (at most ``max_wait`` in place, else :class:`NotPublishedYet` says when to come back)."""
    ready = end + spec.publication_lag
    now = now or datetime.now(UTC)
    if ready <= now:
        return
    if ready - now > max_wait:
        raise NotPublishedYet(
            f"{spec.key}: intervals up to {end.isoformat()} are published from {ready.isoformat()}", ready
        )
    log.info("%s: waiting %.0fs for the last documents of the day", spec.key, (ready - now).total_seconds())
    time.sleep((ready - now).total_seconds())


def discover(
    key: str, start: str, end: str, *, realtime: bool = False, reload: bool = False,
    max_wait: timedelta = DAG_MAX_WAIT,
) -> list[list[dict[str, Any]]]:
    """Batches of documents to fetch for [start, end) (UTC). Already-loaded documents are dropped
    unless ``reload`` (then a changed checksum becomes a revision at load time). A day whose last
    documents are due more than ``max_wait`` from now raises :class:`NotPublishedYet`."""
    spec = _spec(key)
    adapter = registry.adapter(spec.iso)
    hook = adapter.hook()
    start_utc, end_utc = _utc(start), _utc(end)
    if not realtime:
        _wait_for_publication(spec, end_utc, max_wait=max_wait)
    with metrics.scope(spec.iso, spec.dataset):
        refs = adapter.discover(spec, start_utc, end_utc, hook=hook, realtime=realtime)
    if not refs and not realtime:
        raise RuntimeError(f"{spec.key}: no documents published for {start}..{end} (yet)")
    if refs and not reload:
        from pmp import db

        with db.connect_ready() as conn:
            done = loaded_checksums(conn, spec.iso, spec.dataset, [r.doc_id for r in refs])
        refs = [r for r in refs if r.doc_id not in done]
    batches: list[list[dict[str, Any]]] = []
    for route in sorted({r.route for r in refs}):
        group = [r.to_dict() for r in refs if r.route == route]
        size = getattr(adapter, "batch_sizes", {}).get(route, DEFAULT_BATCH_SIZE)
        batches.extend(group[i : i + size] for i in range(0, len(group), size))
    log.info("%s: %d new document(s) in %d batch(es)", spec.key, len(refs), len(batches))
    return batches


def fetch(key: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Download one batch and write each raw payload, unchanged, to the raw stage."""
    spec = _spec(key)
    adapter = registry.adapter(spec.iso)
    store = open_store()
    refs = [DocumentRef.from_dict(d) for d in batch]
    staged = []
    with metrics.scope(spec.iso, spec.dataset), lineage.documents_read() as urls:
        staged = _fetch_into(spec, adapter, refs, store)
    lineage.report(urls, [d["raw_uri"] for d in staged])
    log.info("%s: staged %d raw document(s)", spec.key, len(staged))
    return staged


def _fetch_into(spec: DatasetSpec, adapter: Any, refs: list[DocumentRef], store: Any) -> list[dict[str, Any]]:
    staged = []
    for doc in adapter.fetch(spec, refs, hook=adapter.hook()):
        validate(doc.name, doc.payload, url=doc.ref.url)  # a failed download raises here, nothing is written
        if holds_whole_day(spec, adapter, doc.ref):
            _check_whole_day(spec, adapter, doc)
        metrics.incr("pmp.documents_fetched")
        metrics.incr("pmp.bytes_fetched", len(doc.payload))
        day = date.fromisoformat(doc.ref.market_day)
        # a re-download whose bytes differ from an earlier one (that one failed normalize) is staged
        # under its content hash beside it: raw files are never overwritten (pmp.staging.put_raw)
        k, written = put_raw(store, raw_key(spec.iso, spec.dataset, day, doc.name), doc.payload)
        staged.append(
            {"ref": doc.ref.to_dict(), "raw_key": k, "raw_uri": store.uri(k), "name": doc.name,
             "checksum": sha256(doc.payload), "size": len(doc.payload), "written": written}
        )
    return staged


def holds_whole_day(spec: DatasetSpec, adapter: Any, ref: DocumentRef) -> bool:
    """Whether a fetched document holds its whole market day and is checked before staging: its
    route is declared in the adapter's ``whole_day_documents`` for the dataset, and the adapter's
    optional ``document_is_final(spec, ref)`` agrees for this document. (A route may serve a past
    day's final file and today's growing one alike, e.g. NYISO's daily real-time CSVs: only the
    adapter can tell them apart, from the document's URL or version.)"""
    if ref.route not in getattr(adapter, "whole_day_documents", {}).get(spec.dataset, ()):
        return False
    final = getattr(adapter, "document_is_final", None)
    return final is None or bool(final(spec, ref))


def _check_whole_day(spec: DatasetSpec, adapter: Any, doc: Any) -> None:
    """A document the adapter declares to hold its whole market day (``whole_day_documents``, by
    dataset and route) is normalized once here and must have every interval and entity of the day
    (:func:`pmp.checks.document_problems`), else :class:`IncompleteDocumentError` and nothing is
    staged: a CSV without an end marker cut at a row boundary would otherwise load as a short day,
    and a retry would re-read the same raw file instead of downloading it again."""
    from pmp import checks

    day = date.fromisoformat(doc.ref.market_day)
    try:
        table = adapter.normalize(spec, doc.name, doc.payload, published_at=doc.ref.published)
    except Exception:  # a bad value or drift: the normalize step reports it, naming file, row and field
        return
    problems = checks.document_problems(spec, table, day)
    if problems:
        from pmp.validate import redact_url

        where = f" from {redact_url(doc.ref.url)}" if doc.ref.url else ""
        raise IncompleteDocumentError(
            f"{spec.key} {day}: {doc.name}{where} does not hold the whole market day: {'; '.join(problems)}"
            " (a publication or download cut short; nothing was staged, a retry downloads it again)"
        )


def stage(key: str, fetched: list[list[dict[str, Any]]], *, reload: bool = False) -> dict[str, Any]:
    """Collect the fetched batches into one manifest; drop documents already loaded unchanged."""
    spec = _spec(key)
    docs = [d for batch in fetched for d in batch]
    from pmp import db

    with db.connect_ready() as conn:
        done = loaded_checksums(conn, spec.iso, spec.dataset, [d["ref"]["doc_id"] for d in docs])
    fresh = [d for d in docs if done.get(d["ref"]["doc_id"]) != d["checksum"]]
    revised = [d["ref"]["doc_id"] for d in fresh if d["ref"]["doc_id"] in done]
    if len(fresh) < len(docs):
        log.info("%s: %d document(s) already loaded with the same checksum", spec.key, len(docs) - len(fresh))
    return {"key": key, "docs": fresh, "revised": revised}


def normalize(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Raw stage -> standard rows -> one Parquet file in the normalized stage."""
    spec = _spec(manifest["key"])
    docs = manifest["docs"]
    if not docs:
        return None
    adapter = registry.adapter(spec.iso)
    store = open_store()
    tables, loads = [], []
    for d in docs:
        ref = DocumentRef.from_dict(d["ref"])
        table = adapter.normalize(spec, d["name"], store.get(d["raw_key"]), published_at=ref.published)
        tables.append(table)
        first, last = row_range(table)
        loads.append(
            DocumentLoad(
                source_id=ref.doc_id, source_name=_source_names(table, d["name"]), checksum=d["checksum"],
                rows=table.num_rows, published_at=ref.published, market_day=date.fromisoformat(ref.market_day),
                source_url=ref.url, raw_uri=d["raw_uri"], rows_from=first, rows_to=last,
            ).to_dict()
        )
    table = dedupe_latest(pa.concat_tables(tables), spec.schema.key)
    days = sorted({d["ref"]["market_day"] for d in docs})
    digest = hashlib.sha256("|".join(sorted(d["checksum"] for d in docs)).encode()).hexdigest()[:16]
    out = normalized_key(spec.iso, spec.dataset, date.fromisoformat(days[0]), f"{days[-1]}-{digest}")
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    store.put(out, buf.getvalue(), immutable=False)
    lineage.report([d["raw_uri"] for d in docs], [store.uri(out)])
    log.info("%s: normalized %d document(s) into %d rows -> %s", spec.key, len(docs), table.num_rows, out)
    return {"key": spec.key, "parquet_key": out, "rows": table.num_rows, "documents": loads}


def _source_names(table: pa.Table, default: str) -> str:
    names = table.column("source").unique().to_pylist() if table.num_rows else []
    return names[0] if len(names) == 1 else default


def reprocess_manifest(key: str, start: str, end: str) -> dict[str, Any]:
    """The stage manifest of every document loaded for the market days of [start, end), read from
    ingest_log and the raw stage, without a download: what ``normalize`` and ``load(...,
    reprocess=True)`` re-derive after a normalizer fix (``pmp reprocess``, the daily DAGs'
    ``reprocess`` param). A raw file that is missing or whose bytes no longer match the checksum
    loaded fails naming it (raw files are immutable: a mismatch is damage, not a revision)."""
    spec = _spec(key)
    days = market_days(spec, start, end)
    from pmp import db

    with db.connect_ready() as conn:
        found = conn.execute(
            "SELECT source_id, raw_uri, checksum, published_at, market_day, source_url FROM ingest_log"
            " WHERE iso = %s AND dataset = %s AND market_day = ANY(%s) ORDER BY market_day, source_id",
            (spec.iso, spec.dataset, days),
        ).fetchall()
    store = open_store()
    prefix = store.uri("")
    docs = []
    for doc_id, uri, checksum, published, day, url in found:
        if not uri or not uri.startswith(prefix):
            raise RuntimeError(f"{spec.key} {day}: document {doc_id!r} was staged at {uri!r}, outside the raw "
                               f"stage {prefix!r}: reprocess with PMP_STAGING_URL of that stage")
        raw = uri[len(prefix):]
        try:
            payload = store.get(raw)
        except Exception as exc:
            raise RuntimeError(f"{spec.key} {day}: raw file {raw} of document {doc_id!r} cannot be read "
                               f"({type(exc).__name__}): it cannot be re-derived; re-fetch it with "
                               "pmp download --reload") from exc
        if sha256(payload) != checksum:
            raise RuntimeError(f"{spec.key} {day}: raw file {raw} no longer matches the checksum loaded "
                               f"({sha256(payload)[:12]} != {checksum[:12]})")
        name = raw.rsplit("/", 1)[-1]
        ref = DocumentRef(doc_id=doc_id, name=name, published_at=published.isoformat() if published else None,
                          market_day=day.isoformat(), route="raw", url=url)
        docs.append({"ref": ref.to_dict(), "raw_key": raw, "raw_uri": uri, "name": name, "checksum": checksum,
                     "size": len(payload), "written": False})
    log.info("%s: %d loaded document(s) to re-derive from the raw stage for %s..%s", spec.key, len(docs),
             start, end)
    return {"key": key, "docs": docs, "revised": [], "reprocess": True}


def load(normalized: dict[str, Any] | None, *, reprocess: bool = False) -> dict[str, Any]:
    """Normalized Parquet -> warehouse, one transaction, recorded in ingest_log. With ``reprocess``
    every document already loaded is replaced like a revision (its previous rows deleted first),
    even with the same checksum: a fixed normalizer's rows converge to those of a fresh load."""
    if not normalized:
        return {"rows": 0, "documents": 0, "path": "none"}
    spec = _spec(normalized["key"])
    store = open_store()
    table = pq.read_table(io.BytesIO(store.get(normalized["parquet_key"])))
    from pmp import db

    started = time.monotonic()
    with db.connect_ready() as conn:
        result = load_batch(
            conn, iso=spec.iso, dataset=spec.dataset, schema=spec.schema, table=table,
            documents=[DocumentLoad.from_dict(d) for d in normalized["documents"]], replace=reprocess,
        )
    with metrics.scope(spec.iso, spec.dataset):
        metrics.timing("pmp.load_duration", (time.monotonic() - started) * 1000, path=result.path)
        metrics.incr("pmp.rows_loaded", result.rows)
    from pmp import assets

    lineage.report([store.uri(normalized["parquet_key"])], [assets.uri(spec)])
    return {"rows": result.rows, "documents": result.documents, "path": result.path, "revised": result.revised,
            **_loaded_span(table, normalized["documents"])}


def _loaded_span(table: pa.Table, documents: list[dict[str, Any]]) -> dict[str, Any]:
    """What a load covered, for its asset event (:mod:`pmp.assets`): the UTC interval range of its
    rows and the local market days of its documents."""
    import pyarrow.compute as pc

    span: dict[str, Any] = {"market_days": sorted({str(d["market_day"]) for d in documents if d.get("market_day")})}
    if table.num_rows:
        span["interval_start"] = _utc(pc.min(table.column("interval_start")).as_py()).isoformat()
        span["interval_end"] = _utc(pc.max(table.column("interval_end")).as_py()).isoformat()
    return span


def check(key: str, start: str, end: str, *, realtime: bool = False, max_lag_minutes: int = 60) -> dict[str, Any]:
    """Daily: every market day in [start, end) is complete (see :mod:`pmp.checks`).
    Real-time: the newest interval (or forecast vintage) is no older than ``max_lag_minutes``."""
    spec = _spec(key)
    with metrics.scope(spec.iso, spec.dataset):
        try:
            return _check(spec, start, end, realtime=realtime, max_lag_minutes=max_lag_minutes)
        except IncompleteDataError:
            metrics.incr("pmp.check_failures", kind="realtime" if realtime else "daily")
            raise


def _check(spec: DatasetSpec, start: str, end: str, *, realtime: bool, max_lag_minutes: int) -> dict[str, Any]:
    from pmp import checks, coverage, db

    with db.connect_ready() as conn:
        if realtime:
            newest = checks.latest(conn, spec)
            lag = (_utc(end) - newest) if newest else None
            if lag is not None:  # an interval still running ends after now: no lag (and StatsD reads a
                # negative gauge as a decrement)
                metrics.gauge("pmp.freshness_lag", max(lag.total_seconds(), 0.0) / 60)
            # an hourly series posted after each hour is up to ~70 minutes old just before its next
            # posting: two intervals, not the default 60 minutes, is stale for it (PJM gen_by_fuel)
            limit = max(timedelta(minutes=max_lag_minutes), _vintage_staleness(spec),
                        timedelta(minutes=2 * spec.interval_minutes))
            coverage.record_freshness(conn, spec, newest, lag, limit)  # the UI's freshness (pmp.coverage)
            conn.commit()
            if lag is None or lag > limit:
                raise IncompleteDataError(f"{spec.key}: newest data ends {newest}, lag {lag} > {limit}")
            return {"latest": newest.isoformat(), "lag_minutes": lag.total_seconds() / 60}
        # a monthly history run may start before the dataset's first day (pmp.history)
        days = [d for d in market_days(spec, start, end) if d >= spec.first_date]
        results = checks.check_days(conn, spec, days)
        coverage.record(conn, spec, results)  # kept for the UI's coverage view, failed days too
        conn.commit()
    for r in results:
        log.info("%s %s", spec.key, r.summary())
    bad = [r for r in results if not r.complete]
    if bad:
        raise IncompleteDataError(
            "; ".join(f"{spec.key} {r.day}: " + ("; ".join(r.problems) or "no rows") for r in bad)
        )
    return {"days": [r.to_dict() for r in results]}


def _vintage_staleness(spec: DatasetSpec) -> timedelta:
    """How old the newest vintage of a forecast issued a fixed number of times a day (at irregular
    hours, e.g. 04:00, 09:10, 18:15) may be before the real-time check calls it stale: twice the mean
    spacing, since the longest gap (overnight) is well above the mean."""
    if spec.completeness == "vintages" and spec.vintages_per_day and not spec.vintage_minutes:
        return timedelta(days=2) / spec.vintages_per_day
    return timedelta(0)


def reprocess_window(key: str, start: str, end: str) -> dict[str, Any]:
    """``pmp reprocess``: re-normalize and reload [start, end) from the raw stage, then check it
    (nothing is downloaded)."""
    manifest = reprocess_manifest(key, start, end)
    if not manifest["docs"]:
        raise RuntimeError(f"{key}: nothing loaded for {start}..{end} to reprocess (load it with pmp download)")
    loaded = load(normalize(manifest), reprocess=True)
    return {"documents": len(manifest["docs"]), "loaded": loaded, "check": check(key, start, end)}


def run_window(key: str, start: str, end: str, *, realtime: bool = False, reload: bool = False,
               progress: Any = None, max_wait: timedelta = MAX_WAIT, max_lag_minutes: int = 60) -> dict[str, Any]:
    """All steps in one process: ``pmp download`` and the real-time DAG's one task
    (:class:`pmp.operators.RealtimeIngestOperator`), the same code the history DAGs' tasks run.
    When nothing new is listed, nothing is fetched, staged, normalized or loaded: only the check
    runs (one query; for real time the freshness check, which must still fail when data is stale)."""
    batches = discover(key, start, end, realtime=realtime, reload=reload, max_wait=max_wait)
    if batches:
        fetched = []
        for batch in batches:
            fetched.append(fetch(key, batch))
            if progress is not None:
                progress.update(len(batch))
        loaded = load(normalize(stage(key, fetched, reload=reload)))
    else:
        loaded = load(None)
    checked = check(key, start, end, realtime=realtime, max_lag_minutes=max_lag_minutes)
    return {"documents": sum(len(b) for b in batches), "loaded": loaded, "check": checked}
