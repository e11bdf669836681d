"""ERCOT: MIS documents, the Public API archive and bundles, dashboards and the fuel-mix workbooks.

See ``datasets.py`` (LMPs), ``products.py`` (ancillary services, load, forecasts, fuel mix),
``adapter.py`` (routes) and ``README.md``.
"""

from pmp.isos.ercot.adapter import ADAPTER
from pmp.isos.ercot.datasets import DATASETS as LMP_DATASETS
from pmp.isos.ercot.products import DATASETS as PRODUCT_DATASETS

DATASETS = LMP_DATASETS + PRODUCT_DATASETS

__all__ = ["ADAPTER", "DATASETS"]
