"""PJM: Data Miner 2 (``api.pjm.com/api/v1/<feed>``), JSON pages. See ``README.md``."""

from pmp.isos.pjm.adapter import ADAPTER
from pmp.isos.pjm.datasets import DATASETS

__all__ = ["ADAPTER", "DATASETS"]
