"""SPP: the Integrated Marketplace portal's file browser and chart API. See ``README.md``."""

from pmp.isos.spp.adapter import ADAPTER
from pmp.isos.spp.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
