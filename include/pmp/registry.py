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
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Protocol

import pyarrow as pa

from pmp.schema import TABLES, TableSchema
from pmp.validate import one_of, unknown

# What "one row per entity per interval" means in each table (the checks and the catalog).
DEFAULT_ENTITY: dict[str, tuple[str, ...]] = {
    "lmp": ("location",),
    "ancillary_services": ("region", "product"),
    "load": ("area", "model", "forecast_issued_at"),
    "fuel_mix": ("fuel",),
}


@dataclass(frozen=True)
class Vintages:
    """How many vintages of one forecast model a complete issue day holds: a fixed number a day
    (``per_day``) or one every ``every_minutes`` (so 23- and 25-hour days scale)."""

    per_day: int | None = None
    every_minutes: int | None = None

    def __post_init__(self) -> None:
        if (self.per_day is None) == (self.every_minutes is None):
            raise ValueError("Vintages: give exactly one of per_day and every_minutes")
        if (self.per_day or self.every_minutes or 0) <= 0:
            raise ValueError("Vintages: the count or the interval must be positive")

    def expected(self, hours: int) -> int:
        if self.every_minutes:
            return hours * 60 // self.every_minutes
        assert self.per_day is not None
        return self.per_day


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """One (ISO, dataset): where it comes from, where it goes and how a complete day looks."""

    iso: str
    dataset: str
    table: str
    title: str
    source: str  # the ISO's own product id, e.g. "NP4-190-CD"
    timezone: str  # ISO local market time zone
    interval_minutes: int  # the dataset's main resolution (other resolutions may be present too)
    # Resolutions that stand in for the main one on a day that has no ``interval_minutes`` rows
    # (e.g. ERCOT fuel mix: 15-minute workbooks for history, 5-minute dashboard for recent days).
    alt_interval_minutes: tuple[int, ...] = ()
    first_date: date
    pool: str
    market: str | None = None  # lmp / ancillary_services: which market's rows are this dataset's
    kind: str | None = None  # load: "actual" or "forecast"
    realtime: bool = False  # also gets a */5 DAG
    max_active_runs: int = 2
    # How long after an interval ends the ISO has published it: a daily run for a day that just
    # ended waits that long before discovering documents (in place for up to 2 minutes, else the
    # task is rescheduled and frees its pool slot; ``pmp download`` waits up to 30 minutes).
    publication_lag: timedelta = timedelta(0)
    # Completeness of a market day: "intervals" (every interval of the 23/24/25-hour day, one row
    # per entity each, per resolution present), "vintages" (forecasts: the vintages issued that
    # day, see ``vintage_minutes`` / ``vintages_per_day`` / ``model_vintages``), or "rows" (any
    # rows at all). ``expected_entities`` / ``required_resolutions`` add to "intervals".
    completeness: str = "intervals"
    entity: tuple[str, ...] = ()  # default: DEFAULT_ENTITY[table]
    vintage_minutes: int | None = None  # forecasts issued every N minutes (23/25-hour days scale)
    vintages_per_day: int | None = None  # or a fixed number a day
    # Or per forecast model (``load.model``): each listed model must have its own vintages issued
    # that day, counted as distinct ``forecast_issued_at`` of that model's rows (models that share
    # issue times cannot stand in for each other). Models not listed are not checked.
    model_vintages: Mapping[str, Vintages] = field(default_factory=dict)
    # "intervals": what must be there besides "every interval of what is present". Each
    # resolution present must hold, per column, every listed value (a tuple) or at least that
    # many distinct values (an int), e.g. {"product": ("NR", "RU")}: a product whose request
    # came back empty is reported instead of the day counting entities from what arrived.
    expected_entities: Mapping[str, tuple[str, ...] | int] = field(default_factory=dict)
    # "intervals": resolutions (minutes) that must each be present, e.g. (60, 5) for a dataset
    # fed by an hourly and a 5-minute source.
    required_resolutions: tuple[int, ...] = ()
    # The Rust bulk processor (``rust_operators/``) normalizes this dataset in the daily DAGs
    # (``RustBulkProcessOperator``); the Python normalizer stays the reference and the real-time path.
    bulk_processor: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.table not in TABLES:
            raise ValueError(f"{self.iso}.{self.dataset}: unknown table {self.table!r}")
        if self.completeness not in ("intervals", "vintages", "rows"):
            raise ValueError(f"{self.iso}.{self.dataset}: unknown completeness {self.completeness!r}")
        if self.model_vintages and (self.completeness != "vintages" or "model" not in self.schema.columns):
            raise ValueError(f"{self.key}: model_vintages needs completeness 'vintages' on a table with a model column")
        if self.model_vintages and (self.vintage_minutes or self.vintages_per_day):
            raise ValueError(f"{self.key}: give model_vintages or vintage_minutes/vintages_per_day, not both")
        if (self.expected_entities or self.required_resolutions) and self.completeness != "intervals":
            raise ValueError(f"{self.key}: expected_entities/required_resolutions need completeness 'intervals'")
        for column, want in self.expected_entities.items():
            if column not in self.schema.columns:
                raise ValueError(f"{self.key}: expected_entities names unknown column {column!r}")
            if isinstance(want, str) or not (isinstance(want, tuple) or (isinstance(want, int) and want > 0)):
                raise ValueError(f"{self.key}: expected_entities[{column!r}] must be a tuple of values or a count > 0")

    @property
    def key(self) -> str:
        return f"{self.iso}.{self.dataset}"

    @property
    def schema(self) -> TableSchema:
        return TABLES[self.table]

    @property
    def filters(self) -> dict[str, str]:
        """Column values that select this dataset's rows in its table (besides ``iso``)."""
        out = {}
        if self.market:
            out["market"] = self.market
        if self.kind:
            out["kind"] = self.kind
        return out

    @property
    def entity_columns(self) -> tuple[str, ...]:
        if self.entity:
            return self.entity
        if self.table == "load" and self.kind == "actual":  # actuals: one value per area and interval
            return ("area", "model")
        return DEFAULT_ENTITY[self.table]

    @property
    def daily_dag_id(self) -> str:
        return f"{self.iso}_{self.dataset}_daily"

    @property
    def realtime_dag_id(self) -> str:
        return f"{self.iso}_{self.dataset}_realtime"

    @property
    def realtime_pool(self) -> str:
        """The pool of the real-time DAG's one task: the ISO's own, never shared with history, so a
        real-time run never waits behind a backfill for a slot (:func:`realtime_pool`)."""
        return realtime_pool(self.pool)


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
    # Documents per mapped ``fetch`` task, by route (what one request or one task should carry).
    batch_sizes: Mapping[str, int]

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


def known_iso(iso: str) -> str:
    """``iso`` itself, or the one error for a name no ISO package has (with a close match)."""
    return one_of("ISO", iso, isos())


def adapter(iso: str) -> IsoAdapter:
    return _iso_modules()[known_iso(iso)].ADAPTER


def datasets(iso: str | None = None) -> list[DatasetSpec]:
    if iso is not None:
        known_iso(iso)  # an unknown ISO is an error, never an empty list
    specs: list[DatasetSpec] = []
    for name, module in _iso_modules().items():
        if iso is None or iso == name:
            specs.extend(module.DATASETS)
    return sorted(specs, key=lambda s: (s.iso, s.dataset))


def get(iso: str, dataset: str) -> DatasetSpec:
    for spec in datasets(iso):
        if spec.dataset == dataset:
            return spec
    raise unknown("dataset", dataset, [s.dataset for s in datasets(iso)], where=f" for ISO {iso!r}")


def markets(table: str) -> frozenset[str]:
    """Every market some registry entry declares for ``table`` (``lmp``, ``ancillary_services``):
    the values the loader accepts in its ``market`` column (the database no longer lists them)."""
    return frozenset(s.market for s in datasets() if s.table == table and s.market)


# History's CPU share: the CPU-heavy tasks of every history DAG (normalize, load, the lake's day
# files) take a slot of this one pool, whatever their ISO. A month of archives parsed and loaded
# keeps a core busy (the loading PostgreSQL backend, at full CPU priority, as much as the task):
# slots = the cores history may use, the rest stays free for real time, the scheduler and the
# database (1 locally, on two cores; a catch-up on a worker of its own raises it: README).
HISTORY_POOL = "pmp_history"


def realtime_pool(pool: str) -> str:
    """The real-time counterpart of an ISO pool (``caiso_oasis`` -> ``caiso_oasis_realtime``)."""
    return f"{pool}_realtime"


def pools() -> dict[str, str]:
    """Every pool the DAGs reference, with a description."""
    out = {s.pool: f"{s.iso.upper()} API rate limit" for s in datasets()}
    out |= {s.realtime_pool: f"{s.iso.upper()} real-time runs" for s in datasets() if s.realtime}
    out[HISTORY_POOL] = "History's CPU-heavy tasks (normalize, load, lake), every ISO"
    return out
