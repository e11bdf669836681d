"""The dataset registry: one entry per (iso, dataset), the single source for DAGs, the CLI and checks.

Each ISO lives in its own package ``pmp.isos.<iso>`` and exposes ``ADAPTER`` (an
:class:`IsoAdapter`) and ``DATASETS`` (a tuple of :class:`DatasetSpec`). The registry finds
them by scanning the package, so adding an ISO adds files and edits nothing here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, Protocol

import pyarrow as pa

from pmp.schema import TABLES, TableSchema


@dataclass(frozen=True)
class DatasetSpec:
    iso: str
    dataset: str
    table: str
    market: str | None
    title: str
    source: str  # the ISO's own product id, e.g. "NP4-190-CD"
    timezone: str  # ISO local market time zone
    interval_minutes: int
    first_date: date
    pool: str
    realtime: bool = False  # also gets a */5 DAG
    max_active_runs: int = 2
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.iso}.{self.dataset}"

    @property
    def schema(self) -> TableSchema:
        return TABLES[self.table]

    @property
    def daily_dag_id(self) -> str:
        return f"{self.iso}_{self.dataset}_daily"

    @property
    def realtime_dag_id(self) -> str:
        return f"{self.iso}_{self.dataset}_realtime"


@dataclass(frozen=True)
class DocumentRef:
    """A source document an ISO published. JSON-serializable (it travels through XCom)."""

    doc_id: str
    name: str  # file name as published (e.g. ERCOT ConstructedName)
    published_at: str | None  # ISO 8601 with offset
    market_day: str  # ISO date of the market day the document belongs to
    route: str  # which access path serves it (e.g. "mis", "archive")
    url: str | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DocumentRef:
        return cls(**d)

    @property
    def published(self) -> datetime | None:
        return datetime.fromisoformat(self.published_at) if self.published_at else None


@dataclass(frozen=True)
class FetchedDocument:
    ref: DocumentRef
    name: str  # storage file name of the raw payload
    payload: bytes


class IsoAdapter(Protocol):
    """What every ISO module provides. All network I/O goes through the ISO's Airflow hook."""

    iso: str
    pool: str

    def hook(self) -> Any:
        """A hook instance built from the ISO's Airflow connection."""

    def discover(
        self, spec: DatasetSpec, start: datetime, end: datetime, *, hook: Any, realtime: bool = False
    ) -> list[DocumentRef]:
        """Documents that hold the intervals in [start, end) (UTC)."""

    def fetch(self, spec: DatasetSpec, refs: list[DocumentRef], *, hook: Any) -> Iterator[FetchedDocument]:
        """Download documents (batched where the ISO allows it)."""

    def normalize(
        self, spec: DatasetSpec, name: str, payload: bytes, *, published_at: datetime | None = None
    ) -> pa.Table:
        """Raw payload as downloaded (zip or CSV) -> rows of the dataset's standard table."""


@cache
def _iso_modules() -> dict[str, Any]:
    import pmp.isos as isos_pkg

    modules = {}
    for info in sorted(pkgutil.iter_modules(isos_pkg.__path__), key=lambda i: i.name):
        if info.ispkg:
            modules[info.name] = importlib.import_module(f"pmp.isos.{info.name}")
    return modules


def isos() -> list[str]:
    return list(_iso_modules())


def adapter(iso: str) -> IsoAdapter:
    try:
        return _iso_modules()[iso].ADAPTER
    except KeyError:
        raise KeyError(f"unknown ISO {iso!r}; known: {', '.join(isos())}") from None


def datasets(iso: str | None = None) -> list[DatasetSpec]:
    specs: list[DatasetSpec] = []
    for name, module in _iso_modules().items():
        if iso is None or iso == name:
            specs.extend(module.DATASETS)
    return sorted(specs, key=lambda s: (s.iso, s.dataset))


def get(iso: str, dataset: str) -> DatasetSpec:
    for spec in datasets(iso):
        if spec.dataset == dataset:
            return spec
    known = ", ".join(s.dataset for s in datasets(iso))
    raise KeyError(f"unknown dataset {dataset!r} for ISO {iso!r}; known: {known}")


def pools() -> dict[str, str]:
    """Every pool the DAGs reference, with a description."""
    return {s.pool: f"{s.iso.upper()} API rate limit" for s in datasets()}
