"""CAISO DAGs for Airflow, generated from the dataset registry (``include/pmp/isos/caiso/datasets.py``).

Thin on purpose: the factory builds one daily history DAG per dataset and a */5 real-time DAG
for the real-time datasets; task bodies live in ``pmp.pipeline``.
"""

from pmp.factory import build_dags

globals().update(build_dags("caiso"))
