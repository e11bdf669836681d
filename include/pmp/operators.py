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
