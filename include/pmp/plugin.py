"""The Airflow plugin of the bundle: it registers :class:`pmp.alerts.MarketDayDeadline`, the custom
deadline reference of the daily DAGs, so the scheduler, the dag-processor and ``airflow backfill
create`` can evaluate it (Airflow finds custom deadline references only through plugins).

Registered as the ``airflow.plugins`` entry point of the installed ``pmp`` package (pyproject.toml),
so every installation (MWAA's requirements, the Astro image, a local venv) loads it;
``plugins/pmp_deadlines.py`` loads the same plugin from a plugins folder (Airflow skips the second
registration of a name). Without it, creating a run of a daily DAG
fails with ``Custom deadline reference class 'pmp.alerts.MarketDayDeadline' is not registered``.

It also mounts the coverage and freshness view (:mod:`pmp.coverage_view`) on the api-server.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pmp.alerts import MarketDayDeadline


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
