"""ISO-NE: ISO Express CSVs and Web Services JSON. See ``datasets.py``, ``adapter.py`` and README.md."""

from pmp.isos.isone.adapter import ADAPTER
from pmp.isos.isone.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
