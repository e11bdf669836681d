"""SPP DAGs for Airflow, generated from the dataset registry (``include/pmp/isos/spp/datasets.py``)."""

from pmp.factory import build_dags

globals().update(build_dags("spp"))
