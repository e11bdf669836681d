"""ERCOT: MIS documents and the Public API archive. See ``datasets.py`` and ``adapter.py``."""

from pmp.isos.ercot.adapter import ADAPTER
from pmp.isos.ercot.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
