"""Daily hub-price summary: an Airflow DAG scheduled on the day-ahead price Assets (pmp.summary)."""

from pmp.summary import build_dags

globals().update(build_dags())
