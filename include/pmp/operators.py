"""Custom Airflow operators of the bundle."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class RustBulkProcessOperator(BaseOperator):
    """Normalize a batch of staged raw archives with the Rust bulk processor.

    Pulls the documents of a stage manifest from the staging store (``s3://`` or ``file://``),
    runs ``pmp_bulk`` on all cores (plain CSV, zip, zips of zips at any depth), stages the one
    normalized Parquet file under ``normalized/…`` and returns the load manifest the ``load`` task
    takes, the same contract as the Python normalize task. Documents the processor does not read
    (xlsx workbooks: ERCOT's annual hub and load-zone files) go to the Python normalizer within
    the same task, per document by payload type, and are logged (:func:`pmp.bulk.normalize_manifest`).
    All I/O happens in :meth:`execute`.

    :param dataset_key: ``"<iso>.<dataset>"`` of a dataset the processor handles (templated).
    :param manifest: the ``stage`` task's output (an XComArg or a dict; templated).
    :param strict: fail on the first bad row (default), naming archive, member, line and field;
        with ``False`` bad rows are skipped and counted in the returned statistics.
    :param threads: worker threads (default: all cores).
    """

    template_fields = ("dataset_key", "manifest")
    ui_color = "#dea584"  # Rust

    def __init__(
        self, *, dataset_key: str, manifest: Any, strict: bool = True, threads: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_key = dataset_key
        self.manifest = manifest
        self.strict = strict
        self.threads = threads

    def execute(self, context: Any) -> dict[str, Any] | None:
        from pmp import bulk, pipeline

        manifest = dict(self.manifest or {})
        manifest.setdefault("key", self.dataset_key)
        if manifest["key"] != self.dataset_key:
            raise ValueError(f"manifest for {manifest['key']!r} given to the operator of {self.dataset_key!r}")
        if not bulk.enabled():
            self.log.info("PMP_BULK_ENGINE=python: normalizing with the Python reference normalizer")
            return pipeline.normalize(manifest)
        return bulk.normalize_manifest(manifest, strict=self.strict, threads=self.threads)


class RealtimeIngestOperator(BaseOperator):
    """A real-time (``*/5``) run in one task: discover → fetch → stage → normalize → load → check.

    A real-time run usually finds one small document or none, so six task starts (most of a run's
    wall time, and about 28,000 task instances a day over the real-time DAGs) cost far more than
    the work. This operator runs the same pipeline functions the history DAGs' separate tasks run
    (:func:`pmp.pipeline.run_window`), in one process. When nothing new is listed it fetches,
    stages and loads nothing and ends with success after the freshness check (one query): the run
    has nothing to do, but a dataset that stopped publishing must still fail here (a skipped task
    would leave a stale dataset's runs green). A stale dataset fails the task at once, without
    retries, as the separate ``check`` task did (the run's deadline alert follows); a failed
    download is retried like ``fetch``.

    ``watch=True`` (a dataset with a listing to watch, :func:`pmp.triggers.watched`): the task
    *starts in the triggerer* (``start_from_trigger``, no worker process) with a waiting
    :class:`pmp.triggers.NewDocumentTrigger`, which fires when the ISO lists a new document (or
    listed one since the last successful run), or after ``PMP_REALTIME_WAIT_MINUTES`` without one.
    Then the task runs on a worker (:meth:`execute_complete`): the same ingestion as above, and it
    records the listing state it started from (:func:`pmp.triggers.save_state`). One worker start
    per new document, seconds after publication.

    Its requests are served first by the ISO's shared pacer (:func:`pmp.http.realtime_priority`)
    and it takes the ISO's real-time pool (``<pool>_realtime``), never a history task's slot.
    All I/O happens in :meth:`execute` / :meth:`execute_complete`; it reads nothing from upstream XCom.

    :param dataset_key: ``"<iso>.<dataset>"`` of a real-time dataset (templated).
    :param lookback_minutes: discovery window ending now (templated; default: the run's
        ``lookback_minutes`` param, else 180).
    :param max_lag_minutes: freshness threshold (templated; default: the run's ``max_lag_minutes``
        param, else 60).
    :param watch: wait in the triggerer for a new document first (see above).
    """

    template_fields = ("dataset_key", "lookback_minutes", "max_lag_minutes")
    ui_color = "#b5e3c4"

    def __init__(self, *, dataset_key: str, lookback_minutes: int | str | None = None,
                 max_lag_minutes: int | str | None = None, watch: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset_key = dataset_key
        self.lookback_minutes = lookback_minutes
        self.max_lag_minutes = max_lag_minutes
        if watch:
            from airflow.triggers.base import StartTriggerArgs

            from pmp import registry, triggers

            spec = registry.get(*dataset_key.split(".", 1))
            self.start_from_trigger = True
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls="pmp.triggers.NewDocumentTrigger", trigger_kwargs=triggers.waiting_kwargs(spec),
                next_method="execute_complete", next_kwargs=None, timeout=None)

    def execute(self, context: Any) -> dict[str, Any]:
        from datetime import UTC, datetime, timedelta

        from airflow.sdk.exceptions import AirflowFailException

        from pmp import assets, factory, http, pipeline, registry

        factory.check_conf(context.get("dag_run"), context.get("dag"))
        params = context.get("params") or {}
        lookback = int(self.lookback_minutes or params.get("lookback_minutes") or 180)
        max_lag = int(self.max_lag_minutes or params.get("max_lag_minutes") or 60)
        end = datetime.now(UTC)
        start = end - timedelta(minutes=lookback)
        with http.realtime_priority():
            try:
                out = pipeline.run_window(self.dataset_key, start.isoformat(), end.isoformat(), realtime=True,
                                          reload=bool(params.get("reload")), max_wait=pipeline.DAG_MAX_WAIT,
                                          max_lag_minutes=max_lag)
            except pipeline.IncompleteDataError as exc:  # stale: fail now, as the check task did (no retry)
                raise AirflowFailException(str(exc)) from exc
        if not out["documents"]:
            self.log.info("%s: nothing new listed; freshness checked (lag %.1f min)", self.dataset_key,
                          out["check"]["lag_minutes"])
        assets.record(context.get("outlet_events"), registry.get(*self.dataset_key.split(".", 1)), out["loaded"])
        return out

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """After the trigger fired: ingest, then record the listing state the trigger saw."""
        from pmp import triggers

        event = event or {}
        self.log.info("%s: %s%s", self.dataset_key, {
            "listed": "new document listed", "since_last_run": "listing changed since the last run",
            "first": "no listing state recorded yet", "due": "publication due",
            "timeout": "nothing new listed while waiting: checking anyway",
            "unwatched": "no listing to watch"}.get(str(event.get("reason")), str(event.get("reason"))),
            f" ({', '.join(event['listings'])})" if event.get("listings") else "")
        out = self.execute(context)
        state = event.get("state")
        if state:
            iso, dataset = self.dataset_key.split(".", 1)
            triggers.save_state(iso, dataset, dict(state), event.get("seen_at"))
        out["trigger"] = {k: event.get(k) for k in ("reason", "seen_at", "listings")}
        return out
