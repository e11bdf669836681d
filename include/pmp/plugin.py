"""The Airflow plugin of the bundle: it registers :class:`pmp.alerts.MarketDayDeadline`, the custom
deadline reference of the daily DAGs, so the scheduler, the dag-processor and ``airflow backfill
create`` can evaluate it (Airflow finds custom deadline references only through plugins).

Registered as the ``airflow.plugins`` entry point of the installed ``pmp`` package (pyproject.toml),
so every installation (MWAA's requirements, the Astro image, a local venv) loads it;
``plugins/pmp_deadlines.py`` loads the same plugin from a plugins folder (Airflow skips the second
registration of a name). Without it, creating a run of a daily DAG
fails with ``Custom deadline reference class 'pmp.alerts.MarketDayDeadline' is not registered``.

It also mounts the coverage and freshness view (:mod:`pmp.coverage_view`) on the api-server, and
warms the processes that fork task processes (:func:`preload`).
"""

from __future__ import annotations

import logging
import os
import time

from airflow.plugins_manager import AirflowPlugin

from pmp.alerts import MarketDayDeadline

log = logging.getLogger(__name__)

#: the process that imported the bundle's modules with the plugin (``None``: ``PMP_PRELOAD=false``)
PRELOADED_BY: int | None = None


def preload() -> None:
    """Import, once per process, what every task process of the bundle imports before its task runs:
    the task runner, the DAG factory with the registry and every ISO's adapter and normalizer
    (pandas, pyarrow), the pipeline and the loader.

    The scheduler loads plugins before it starts its executor, and the LocalExecutor forks its
    workers from the scheduler and every task process from a worker (a Celery worker, as on MWAA,
    forks its task processes too): a task process then finds these modules already imported and
    only builds its DAG, about 0.7 s instead of 3-4 s on two cores (``bench/taskstart.py``). Every
    task of a run pays that start-up: six per daily run, one per real-time run. ``PMP_PRELOAD=false``
    turns it off (each task process imports them itself)."""
    global PRELOADED_BY
    from pmp.validate import setting

    if PRELOADED_BY is not None or not setting("PMP_PRELOAD"):
        return
    started = time.perf_counter()
    from airflow.sdk.execution_time import task_runner  # noqa: F401 (imported for the forks)

    from pmp import factory, loader, pipeline, registry  # noqa: F401

    registry.datasets()  # every ISO package
    PRELOADED_BY = os.getpid()
    log.debug("pmp: bundle modules preloaded in %.1f s (pid %d)", time.perf_counter() - started, PRELOADED_BY)


def _fastapi_apps() -> list[dict]:
    from pmp.coverage_view import app

    return [{"app": app, "url_prefix": "/pmp", "name": "PMP coverage and freshness"}]


class PmpPlugin(AirflowPlugin):
    name = "pmp"
    deadline_references = [MarketDayDeadline]
    # the coverage and freshness view (pmp.coverage_view), served by the api-server under /pmp and
    # shown in the UI's Browse menu (embedded at /plugin/pmp-coverage)
    fastapi_apps = _fastapi_apps()
    external_views = [{"name": "Coverage", "href": "/pmp/coverage", "destination": "nav", "category": "browse",
                       "url_route": "pmp-coverage"}]


preload()
