"""The standard schema: one definition per warehouse table, shared by normalizers and the loader.

Column order here is the order of the normalized Parquet files and of the COPY column list.
``ingested_at`` is filled by the database and is not part of the normalized files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")

# Markets are declared by the registry (``DatasetSpec.market``; ``pmp.registry.markets``).


@dataclass(frozen=True)
class TableSchema:
    name: str
    arrow: pa.Schema
    key: tuple[str, ...]
    # columns a normalizer may leave out (they become NULL): only what some ISOs do not publish at
    # all. Every other column must be there, so a misnamed price or a dropped publication time
    # is an error, not a NULL.
    optional: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return list(self.arrow.names)

    def empty(self) -> pa.Table:
        return self.arrow.empty_table()


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(n, t, nullable=nullable) for n, t, nullable in fields])


LMP = TableSchema(
    "lmp",
    _schema(
        ("interval_start", UTC_TS, False),
        ("interval_end", UTC_TS, False),
        ("iso", pa.string(), False),
        ("market", pa.string(), False),
        ("location", pa.string(), False),
        ("location_type", pa.string(), True),
        # the ISO's own numeric id where it publishes one (NYISO PTID, ISO-NE Location ID): the
        # stable identity of a node across renames; NULL where the ISO keys by name only
        ("location_id", pa.string(), True),
        ("lmp", pa.float64(), True),
        ("energy", pa.float64(), True),
        ("congestion", pa.float64(), True),
        ("loss", pa.float64(), True),
        ("ghg", pa.float64(), True),
        ("published_at", UTC_TS, True),
        ("source", pa.string(), False),
    ),
    ("iso", "market", "location", "interval_start"),
    optional=("location_id",),
)

ANCILLARY_SERVICES = TableSchema(
    "ancillary_services",
    _schema(
        ("interval_start", UTC_TS, False),
        ("interval_end", UTC_TS, False),
        ("iso", pa.string(), False),
        ("market", pa.string(), False),
        ("region", pa.string(), False),
        ("product", pa.string(), False),
        ("clearing_price", pa.float64(), True),
        ("clearing_quantity", pa.float64(), True),
        ("requirement", pa.float64(), True),
        ("published_at", UTC_TS, True),
        ("source", pa.string(), False),
    ),
    ("iso", "market", "region", "product", "interval_start"),
)

LOAD = TableSchema(
    "load",
    _schema(
        ("interval_start", UTC_TS, False),
        ("interval_end", UTC_TS, False),
        ("iso", pa.string(), False),
        ("area", pa.string(), False),
        ("kind", pa.string(), False),
        ("forecast_issued_at", UTC_TS, False),
        ("model", pa.string(), False),
        ("load_mw", pa.float64(), True),
        ("in_use", pa.bool_(), True),
        ("published_at", UTC_TS, True),
        ("source", pa.string(), False),
    ),
    ("iso", "area", "kind", "model", "forecast_issued_at", "interval_start"),
)

FUEL_MIX = TableSchema(
    "fuel_mix",
    _schema(
        ("interval_start", UTC_TS, False),
        ("interval_end", UTC_TS, False),
        ("iso", pa.string(), False),
        ("fuel", pa.string(), False),
        ("generation_mw", pa.float64(), True),
        ("published_at", UTC_TS, True),
        ("source", pa.string(), False),
    ),
    ("iso", "fuel", "interval_start", "interval_end"),
)

TABLES: dict[str, TableSchema] = {t.name: t for t in (LMP, ANCILLARY_SERVICES, LOAD, FUEL_MIX)}


def conform(table: pa.Table, schema: TableSchema) -> pa.Table:
    """Select and cast columns into the standard order and types. A column of ``schema.optional``
    the source does not publish may be left out (it becomes NULL); any other missing column raises."""
    missing = [c for c in schema.columns if c not in table.column_names]
    required = [c for c in missing if c not in schema.optional]
    if required:
        raise ValueError(f"normalized table for {schema.name} lacks columns {required}")
    for c in missing:
        table = table.append_column(schema.arrow.field(c), pa.nulls(table.num_rows, schema.arrow.field(c).type))
    return table.select(schema.columns).cast(schema.arrow)


class Rows:
    """Column lists of one output table, built row by row by the hand-written normalizers (NYISO,
    MISO, SPP): ``interval_start``/``interval_end`` plus the named columns; :meth:`table` fills
    ``iso``, ``source`` and ``published_at`` and leaves what the ISO does not publish NULL. An ISO
    module subclasses it with its ``iso``."""

    iso = ""

    def __init__(self, *names: str) -> None:
        self.cols: dict[str, list[Any]] = {n: [] for n in ("interval_start", "interval_end", *names)}

    def add(self, start: Any, end: Any, **values: object) -> None:
        self.cols["interval_start"].append(start)
        self.cols["interval_end"].append(end)
        for k, v in values.items():
            self.cols[k].append(v)

    def __len__(self) -> int:
        return len(self.cols["interval_start"])

    def table(self, schema: TableSchema, source: str, published_at: Any) -> pa.Table:
        n = len(self)
        cols = dict(self.cols, iso=[self.iso] * n, source=[source] * n, published_at=[published_at] * n)
        arrays = {f.name: pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type)
                  for f in schema.arrow}
        return conform(pa.table(arrays), schema)
