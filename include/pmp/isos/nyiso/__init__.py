"""NYISO: the public MIS CSV tree (daily CSVs, monthly zips, P-list pages). See ``README.md``."""

from pmp.isos.nyiso.adapter import ADAPTER
from pmp.isos.nyiso.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
