"""The Airflow plugin of the bundle: it registers :class:`pmp.alerts.MarketDayDeadline`, the custom
deadline reference of the daily DAGs, so the scheduler, the dag-processor and ``airflow backfill
create`` can evaluate it (Airflow finds custom deadline references only through plugins).

Loaded from ``plugins/pmp_deadlines.py`` (the plugins folder of Astro, MWAA's ``plugins.zip``, and
``AIRFLOW__CORE__PLUGINS_FOLDER`` of the local scripts). Without it, creating a run of a daily DAG
fails with ``Custom deadline reference class 'pmp.alerts.MarketDayDeadline' is not registered``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from pmp.alerts import MarketDayDeadline


class PmpPlugin(AirflowPlugin):
    name = "pmp"
    deadline_references = [MarketDayDeadline]
