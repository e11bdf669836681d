"""OpenLineage for the tasks that move data, through Airflow's hook-lineage collector.

Each step reports what it read and wrote (:func:`report`); the OpenLineage provider's listener
turns that into the task's ``inputs`` and ``outputs`` (its extractor of ``@task`` functions finds no
datasets of its own and falls back to the hook lineage):

=============  ====================================  =======================================
step           inputs                                outputs
=============  ====================================  =======================================
``fetch``      the ISO documents' URLs               the raw objects (``s3://…`` / ``file://``)
``normalize``  the raw objects                       the normalized Parquet object
``load``       the normalized Parquet object         the warehouse table (the dataset's Asset URI)
=============  ====================================  =======================================

The provider names S3 objects ``s3://<bucket>`` / ``<key>``, files ``file://<host>`` / ``<path>``,
the table ``postgres://<host>:<port>`` / ``<database>.public.<table>`` (from ``PMP_ASSET_WAREHOUSE``,
like the Assets) and an ISO URL ``https://<host>`` / ``<path>`` (:func:`http_to_openlineage`, the
converter this package's provider registers; no query string, so no key or token reaches an event).
Outside an Airflow task (``pmp download``) nothing is collected and nothing is imported.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from pmp.validate import redact_url

log = logging.getLogger(__name__)

_CONTEXT = object()  # the "hook" the collector files our entries under (one per process)
_URLS: ContextVar[list[str] | None] = ContextVar("pmp_lineage_urls", default=None)


@contextlib.contextmanager
def documents_read() -> Iterator[list[str]]:
    """Collect the URLs of the documents the block downloads (every successful GET of the shared
    HTTP client, :func:`pmp.http.request`, calls :func:`read_url`)."""
    urls: list[str] = []
    token = _URLS.set(urls)
    try:
        yield urls
    finally:
        _URLS.reset(token)


def read_url(url: str) -> None:
    urls = _URLS.get()
    if urls is not None:
        clean = redact_url(url)
        if clean not in urls:
            urls.append(clean)


def _collector() -> Any:
    if "airflow.sdk.execution_time.task_runner" not in sys.modules:  # not inside an Airflow task
        return None
    from airflow.sdk.lineage import get_hook_lineage_collector

    return get_hook_lineage_collector()


def report(inputs: Iterable[str], outputs: Iterable[str]) -> None:
    """The URIs one step read and wrote (URLs are redacted: scheme, host, port and path only)."""
    collector = _collector()
    if collector is None:
        return
    try:
        for uri in inputs:
            collector.add_input_asset(context=_CONTEXT, uri=_clean(uri))
        for uri in outputs:
            collector.add_output_asset(context=_CONTEXT, uri=_clean(uri))
    except Exception:  # lineage never fails the data path
        log.debug("lineage not collected", exc_info=True)


def _clean(uri: str) -> str:
    return redact_url(uri) if uri.startswith(("http://", "https://")) else uri


def http_to_openlineage(asset: Any, lineage_context: Any) -> Any:
    """An ``https://host/path`` Asset as the OpenLineage dataset ``https://host`` / ``path``."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path or "/")
