"""MISO: market reports, the public real-time API and (with a key) Data Exchange. See ``README.md``."""

from pmp.isos.miso.adapter import ADAPTER
from pmp.isos.miso.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
