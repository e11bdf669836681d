"""CAISO: OASIS queries (prices, ancillary services, load) and Today's Outlook CSVs (load, fuel mix).
See ``README.md`` in this folder, ``datasets.py`` and ``adapter.py``."""

from pmp.isos.caiso.adapter import ADAPTER
from pmp.isos.caiso.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
