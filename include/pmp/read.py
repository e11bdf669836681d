"""Data back out: the warehouse as pandas DataFrames, in the shape gridstatus users know.

    from pmp import read

    read.lmp("ercot", "2024-11-03", "2024-11-04", market="RT15M", locations=["HB_HOUSTON", "HB_NORTH"])
    read.load_forecast("nyiso", "2024-11-04", as_of="2024-11-03T12:00Z")   # the vintage a backtest saw
    read.Warehouse(source="lake").fuel_mix("nyiso", "2024-11-03", wide=True)
    read.iso("ercot").get_spp("2024-11-03", market="REAL_TIME_15_MIN")      # gridstatus method names

Every frame has tz-aware UTC ``interval_start`` / ``interval_end`` (``[start, end)``), and with
``local_time=True`` an ``interval_start_local`` column in the ISO's market time zone. The
window is half-open on ``interval_start``: ``start <= interval_start < end``. ``start`` and ``end``
accept a ``date`` or ``"YYYY-MM-DD"`` (that day's local midnight in the ISO's time zone, so a
date range covers whole market days of 23, 24 or 25 hours), a ``datetime`` (naive = ISO local
time, as gridstatus reads it), ``"today"``, ``"now"``, and ``start="latest"`` (the newest
interval, or the newest forecast vintage). Without ``end`` one local market day is returned.

``source="db"`` (default) reads TimescaleDB; ``source="lake"`` reads the Parquet lake
(:mod:`pmp.lake`) with DuckDB, running the same SQL text, so both give identical frames (the
tests compare them frame for frame). DuckDB is only imported for the lake: the Airflow workers
and ``source="db"`` need only pandas, pyarrow and psycopg.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from pmp import registry
from pmp.registry import DatasetSpec
from pmp.schema import TABLES
from pmp.timeutil import local_day_of, localize
from pmp.validate import InputError

if TYPE_CHECKING:
    import pandas as pd

Source = Literal["db", "lake"]
TimeLike = date | datetime | str

# gridstatus's market names -> ours (either spelling is accepted, case-insensitively)
MARKET_ALIASES: dict[str, str] = {
    "DAY_AHEAD_HOURLY": "DAM", "REAL_TIME_5_MIN": "RT5M", "REAL_TIME_15_MIN": "RT15M",
    "REAL_TIME_HOURLY": "RT60M", "DAM": "DAM", "RT5M": "RT5M", "RT15M": "RT15M", "RT60M": "RT60M",
    "HASP": "HASP",
}

# Per table: the columns that name one series (resampling groups by them) and the values.
ENTITY: dict[str, tuple[str, ...]] = {
    "lmp": ("market", "location", "location_type", "location_id"),
    "ancillary_services": ("market", "region", "product"),
    "load": ("area", "model"),
    "fuel_mix": ("fuel",),
}
VALUES: dict[str, tuple[str, ...]] = {
    "lmp": ("lmp", "energy", "congestion", "loss", "ghg"),
    "ancillary_services": ("clearing_price", "clearing_quantity", "requirement"),
    "load": ("load_mw",),
    "fuel_mix": ("generation_mw",),
}
ACTUAL_LOAD_COLUMNS = ("interval_start", "interval_end", "iso", "area", "load_mw", "published_at", "source")
AGGREGATIONS = ("mean", "sum", "min", "max", "first", "last")


# --------------------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Window:
    """UTC ``[start, end)`` on ``interval_start``; ``end=None`` is open-ended; ``latest`` asks for
    the newest interval (or forecast vintage) instead of a range."""

    start: datetime | None
    end: datetime | None
    latest: bool = False


def _local_midnight(day: date, tz: str) -> datetime:
    return localize(datetime.combine(day, time()), tz)


def _parse(value: TimeLike, tz: str, now: datetime) -> datetime | date | str:
    """A date, an aware UTC datetime, or the keyword ``latest``."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "today":
            return local_day_of(now, tz)
        if word in ("latest", "now"):
            return word if word == "latest" else now
        try:
            parsed = date.fromisoformat(value) if len(value.strip()) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise InputError(
                f"not a time: {value!r} (use YYYY-MM-DD, an ISO 8601 time, 'today', 'now' or 'latest')"
            ) from None
        return _parse(parsed, tz, now)
    if isinstance(value, datetime):
        if hasattr(value, "to_pydatetime"):  # pandas.Timestamp: a plain datetime for the SQL drivers
            value = value.to_pydatetime()
        if value.tzinfo is None:  # naive: the ISO's local time, as gridstatus reads it
            try:
                return localize(value, tz)
            except ValueError as exc:
                raise InputError(f"{exc}: give the time with its UTC offset") from None
        return value.astimezone(UTC)
    if isinstance(value, date):
        return value
    raise TypeError(f"start/end must be a date, datetime or string, not {type(value).__name__}")


def window(start: TimeLike, end: TimeLike | None, tz: str, *, now: datetime | None = None) -> Window:
    """Resolve ``start`` / ``end`` for an ISO whose market time zone is ``tz``."""
    now = now or datetime.now(UTC)
    try:
        first = _parse(start, tz, now)
    except InputError as exc:
        raise InputError(f"start: {exc}") from None
    if first == "latest":
        return Window(None, None, latest=True)
    assert not isinstance(first, str)
    start_utc = first if isinstance(first, datetime) else _local_midnight(first, tz)
    if end is None:  # one local market day: the one that start falls in
        stop: datetime | None = _local_midnight(local_day_of(start_utc, tz) + timedelta(days=1), tz)
    else:
        try:
            last = _parse(end, tz, now)
        except InputError as exc:
            raise InputError(f"end: {exc}") from None
        if last == "latest":
            stop = None
        else:
            assert not isinstance(last, str)
            stop = last if isinstance(last, datetime) else _local_midnight(last, tz)
    if stop is not None and stop <= start_utc:
        raise InputError(f"end {stop.isoformat()} is not after start {start_utc.isoformat()} (end is exclusive)")
    return Window(start_utc, stop)


def market_code(market: str) -> str:
    try:
        return MARKET_ALIASES[market.strip().upper()]
    except KeyError:
        raise InputError(f"unknown market {market!r}; use one of DAM, RT5M, RT15M, RT60M, HASP "
                         "or gridstatus's DAY_AHEAD_HOURLY, REAL_TIME_5_MIN, REAL_TIME_15_MIN, REAL_TIME_HOURLY") from None


def _values(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``"A,B"``, ``["A", "B"]``, ``None`` / ``"ALL"`` (no filter)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(v).strip() for v in items if str(v).strip()]
    if not items or (len(items) == 1 and items[0].upper() == "ALL"):
        return None
    return tuple(dict.fromkeys(items))


def _filters(**by_column: str | Iterable[str] | None) -> dict[str, tuple[Any, ...]]:
    """Column -> the values asked for (markets in our codes); columns asked for nothing are left out."""
    out: dict[str, tuple[Any, ...]] = {}
    for column, value in by_column.items():
        if (values := _values(value)) is not None:
            out[column] = tuple(dict.fromkeys(map(market_code, values))) if column == "market" else values
    return out


# -------------------------------------------------------------------------------------- query


@dataclass(frozen=True)
class Query:
    """One read: the SQL is written once and runs unchanged on PostgreSQL and on DuckDB."""

    table: str
    iso: str  # registry name (lower case); the table column holds it upper case
    columns: tuple[str, ...]
    window: Window
    filters: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    interval_minutes: int | None = None
    as_of: datetime | None = None
    latest_vintage: bool = False  # forecasts: one row per (area, model, interval), the newest issue
    order: tuple[str, ...] = ()

    @property
    def timezone(self) -> str:
        return timezone_of(self.iso)

    @property
    def forecasts(self) -> bool:
        return self.table == "load" and self.filters.get("kind") == ("forecast",)

    @property
    def schema(self) -> pa.Schema:
        arrow = TABLES[self.table].arrow
        return pa.schema([arrow.field(c) for c in self.columns])

    def conditions(self, *, timed: bool = True) -> tuple[list[str], list[Any]]:
        conds, params = ["iso = ?"], [self.iso.upper()]
        for column, values in self.filters.items():
            conds.append(f"{column} = ?" if len(values) == 1 else f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        if self.interval_minutes:
            conds.append("interval_end - interval_start = ?")
            params.append(timedelta(minutes=self.interval_minutes))
        if self.as_of is not None:
            conds.append("forecast_issued_at <= ?")
            params.append(self.as_of)
        if timed:
            if self.window.start is not None:
                conds.append("interval_start >= ?")
                params.append(self.window.start)
            if self.window.end is not None:
                conds.append("interval_start < ?")
                params.append(self.window.end)
        return conds, params

    def sql(self) -> tuple[str, list[Any]]:
        conds, params = self.conditions()
        cols = ", ".join(self.columns)
        where = " AND ".join(conds)
        if self.latest_vintage:
            on = "area, model, interval_start, interval_end"
            return (f"SELECT DISTINCT ON ({on}) {cols} FROM {self.table} WHERE {where}"
                    f" ORDER BY {on}, forecast_issued_at DESC"), params
        return f"SELECT {cols} FROM {self.table} WHERE {where}", params

    def newest_sql(self) -> tuple[str, list[Any]]:
        """The newest interval start (forecasts: the newest issue time) the filters match."""
        conds, params = self.conditions(timed=False)
        column = "forecast_issued_at" if self.forecasts else "interval_start"
        return f"SELECT max({column}) FROM {self.table} WHERE {' AND '.join(conds)}", params


def timezone_of(iso: str) -> str:
    """The ISO's market time zone (every dataset of an ISO shares it)."""
    return registry.datasets(registry.known_iso(iso.lower()))[0].timezone  # unknown: the registry's error


def datasets_of(query: Query) -> list[DatasetSpec]:
    """The registry datasets whose rows the query can match (the lake holds one tree per dataset)."""
    out = []
    for spec in registry.datasets(query.iso):
        if spec.table != query.table:
            continue
        if all(column not in query.filters or value in query.filters[column] for column, value in spec.filters.items()):
            out.append(spec)
    return out


def rows_to_arrow(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Database rows (tuples in ``schema`` order) -> an Arrow table of exactly that schema."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pa.table([pa.array(col, f.type) for col, f in zip(columns, schema, strict=True)], schema=schema)


FETCH_ROWS = 100_000


def fetch_arrow(conn: Any, text: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Run a query (psycopg placeholders) and collect its rows as Arrow, ``FETCH_ROWS`` at a time
    through a server-side cursor, so a day of nodal prices never sits in memory as Python tuples."""
    import uuid

    with conn.cursor(name=f"pmp_read_{uuid.uuid4().hex[:8]}") as cur:
        cur.execute(text, params)
        parts = []
        while rows := cur.fetchmany(FETCH_ROWS):
            parts.append(rows_to_arrow(rows, schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


class _Db:
    """TimescaleDB through psycopg (the ``tsdb`` connection, or ``conn_id``)."""

    def __init__(self, conn_id: str | None) -> None:
        self.conn_id = conn_id

    def table(self, query: Query) -> pa.Table:
        from pmp import db

        text, params = query.sql()
        with db.connect(self.conn_id) as conn:
            return fetch_arrow(conn, text.replace("?", "%s"), params, query.schema)

    def newest(self, query: Query) -> datetime | None:
        from pmp import db

        text, params = query.newest_sql()
        with db.connect(self.conn_id) as conn:
            return conn.execute(text.replace("?", "%s"), params).fetchone()[0]  # type: ignore[arg-type,index]


class _Lake:
    """The Parquet lake (:mod:`pmp.lake`) through DuckDB: the day files a query needs are read into
    one Arrow table, exposed to DuckDB as a view named like the warehouse table (with the ``iso``
    column the Hive partition carries), and the warehouse's SQL runs on it unchanged."""

    def __init__(self, url: str | None) -> None:
        from pmp import lake

        self.store = lake.open_lake(url)

    def _window_days(self, query: Query) -> tuple[date, date]:
        start, end = query.window.start, query.window.end
        first = local_day_of(start, query.timezone) if start else date.min
        last = local_day_of(end - timedelta(microseconds=1), query.timezone) if end else date.max
        return first, last

    def _listed(self, query: Query) -> dict[str, list[date]]:
        from pmp import lake

        return {spec.dataset: lake.list_days(self.store, spec) for spec in datasets_of(query)}

    def _connect(self, query: Query, first: date, last: date) -> Any:
        """DuckDB with the view ``query.table`` over the day files dated ``first`` .. ``last``."""
        try:
            import duckdb
        except ImportError:
            raise ImportError("source='lake' needs DuckDB: pip install 'power-market-pipeline[read]'") from None

        from pmp import lake

        # text filters go to the Parquet reader too: files are in key order, so row groups of other
        # locations are skipped by their statistics (DuckDB applies every filter again)
        pushed = [(c, "in", list(v)) for c, v in query.filters.items() if TABLES[query.table].arrow.field(c).type
                  == pa.string() and c != "iso"]
        parts = []
        for spec in datasets_of(query):
            days = [d for d in lake.list_days(self.store, spec) if first <= d <= last]
            parts.append(lake.read_days(self.store, spec, days, filters=pushed or None))
        schema = lake.file_schema(TABLES[query.table])
        rows = pa.concat_tables(parts) if parts else schema.empty_table()
        con = duckdb.connect()
        con.register("lake_rows", rows)
        con.execute(f"CREATE VIEW {query.table} AS SELECT *, '{query.iso.upper()}' AS iso FROM lake_rows")
        return con

    def _sql(self, query: Query, text: str, params: list[Any], first: date, last: date) -> Any:
        con = self._connect(query, first, last)
        try:
            return con.sql(text, params=params).to_arrow_table()
        finally:
            con.close()

    def table(self, query: Query) -> pa.Table:
        result = self._sql(query, *query.sql(), *self._window_days(query))
        return result.select(list(query.columns)).cast(query.schema)

    def newest(self, query: Query) -> datetime | None:
        """Scan day files from the newest back (7 days, then 14, ...) until one matches. Files are
        dated by interval start, so the first match holds the newest interval; for forecasts the
        newest vintage issued by ``as_of`` may sit in older files than one a longer-range vintage
        reaches, so the days from the day before the match's issue day are read again."""
        days = sorted({d for listed in self._listed(query).values() for d in listed})
        text, params = query.newest_sql()

        def newest_in(first: date, last: date) -> datetime | None:
            value = self._sql(query, text, params, first, last).column(0)[0].as_py()
            return value.astimezone(UTC) if value is not None else None

        hi, chunk = len(days), 7
        while hi > 0:
            lo = max(0, hi - chunk)
            found = newest_in(days[lo], days[hi - 1])
            if found is not None:
                if query.forecasts:
                    found = newest_in(min(days[lo], local_day_of(found, query.timezone) - timedelta(days=1)),
                                      days[hi - 1])
                return found
            hi, chunk = lo, chunk * 2
        return None


# ---------------------------------------------------------------------------------- reshaping


def _resample(df: pd.DataFrame, query: Query, freq: str, how: str) -> pd.DataFrame:
    """Mean (or ``how``) over buckets of ``freq``: steps that divide an hour are floored in UTC
    (every US market time zone is a whole-hour offset, so buckets are local hours too); ``1D``
    buckets are local market days (23, 24 or 25 hours)."""
    import pandas as pd

    if how not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")
    step = pd.to_timedelta(freq)
    entity = [c for c in (*ENTITY[query.table], "forecast_issued_at") if c in df.columns]
    if query.latest_vintage:
        entity = [c for c in entity if c != "forecast_issued_at"]
    values = [c for c in VALUES[query.table] if c in df.columns]
    keys = ["interval_start", "interval_end", "iso", *entity]
    if df.empty:
        return df[[*keys, *values]]
    lengths = sorted({pd.Timedelta(v) for v in (df["interval_end"] - df["interval_start"]).unique()})
    if len(lengths) > 1:
        shown = ", ".join(f"{int(v.total_seconds() // 60)}" for v in lengths)
        raise InputError(f"rows of several resolutions ({shown} minutes): choose one with interval_minutes=")
    if step % lengths[0] or step < lengths[0]:
        raise InputError(f"cannot resample {lengths[0]} intervals to {freq}: use a multiple of {lengths[0]}")
    tz = query.timezone
    if step == pd.Timedelta(days=1):
        local = df["interval_start"].dt.tz_convert(tz).dt.normalize()
        start = local.dt.tz_convert("UTC")
        end = (local.dt.tz_localize(None) + step).dt.tz_localize(tz).dt.tz_convert("UTC")
    elif pd.Timedelta(hours=1) % step == pd.Timedelta(0):
        start = df["interval_start"].dt.floor(step)
        end = start + step
    else:
        raise InputError(f"resample {freq!r}: use a step that divides one hour (5min, 15min, 1h) or 1D")
    out = df.assign(interval_start=start, interval_end=end)
    grouped = out.groupby(keys, dropna=False, sort=False)[values].agg(how).reset_index()
    order = ["interval_start", *[c for c in query.order if c in entity]]
    return grouped.sort_values(order, kind="stable").reset_index(drop=True)


def _frame(table: pa.Table, query: Query, *, resample: str | None, how: str, local_time: bool) -> pd.DataFrame:
    df = table.to_pandas()
    if query.order:
        df = df.sort_values(list(query.order), kind="stable").reset_index(drop=True)
    if resample:
        df = _resample(df, query, resample, how)
    if local_time:
        df.insert(2, "interval_start_local", df["interval_start"].dt.tz_convert(query.timezone))
    return df


# ------------------------------------------------------------------------------------- client


class Warehouse:
    """Reads the warehouse (``source="db"``, TimescaleDB through the ``tsdb`` connection or
    ``conn_id``) or the Parquet lake (``source="lake"``, at ``lake_url`` or ``PMP_LAKE_URL``,
    default ``<staging>/lake/``). Every method returns a pandas DataFrame; see the module doc."""

    def __init__(self, source: Source = "db", *, conn_id: str | None = None, lake_url: str | None = None,
                 now: datetime | None = None) -> None:
        if source not in ("db", "lake"):
            raise InputError(f"source must be 'db' or 'lake', not {source!r}")
        self.source, self.conn_id, self.lake_url, self.now = source, conn_id, lake_url, now

    def _engine(self) -> _Db | _Lake:
        return _Db(self.conn_id) if self.source == "db" else _Lake(self.lake_url)

    def _query(self, table: str, iso: str, start: TimeLike, end: TimeLike | None, **kw: Any) -> Query:
        iso = iso.lower()
        tz = timezone_of(iso)
        return Query(table=table, iso=iso, window=window(start, end, tz, now=self.now), **kw)

    def _read(self, query: Query, *, resample: str | None, agg: str, local_time: bool) -> pd.DataFrame:
        engine = self._engine()
        if query.window.latest:
            newest = engine.newest(query)
            if newest is None:
                return _frame(query.schema.empty_table(), query, resample=resample, how=agg, local_time=local_time)
            if query.forecasts:  # the newest vintage: every interval it forecasts
                day = local_day_of(newest, query.timezone) - timedelta(days=1)
                query = replace(query, window=Window(_local_midnight(day, query.timezone), None),
                                filters=query.filters | {"forecast_issued_at": (newest,)}, latest_vintage=False)
            else:
                query = replace(query, window=Window(newest, newest + timedelta(microseconds=1)))
        return _frame(engine.table(query), query, resample=resample, how=agg, local_time=local_time)

    def lmp(self, iso: str, start: TimeLike = "today", end: TimeLike | None = None, *,
            market: str | Iterable[str] | None = None, locations: str | Iterable[str] | None = None,
            location_type: str | Iterable[str] | None = None, interval_minutes: int | None = None,
            resample: str | None = None, agg: str = "mean", local_time: bool = False) -> pd.DataFrame:
        """Locational marginal prices (gridstatus ``get_lmp`` / ERCOT ``get_spp``): one row per market,
        location and interval; ``market`` in our codes or gridstatus's names (default: every market)."""
        filters = _filters(market=market, location=locations, location_type=location_type)
        q = self._query("lmp", iso, start, end, columns=tuple(TABLES["lmp"].columns), filters=filters,
                        interval_minutes=interval_minutes, order=("interval_start", "market", "location"))
        return self._read(q, resample=resample, agg=agg, local_time=local_time)

    def ancillary_services(self, iso: str, start: TimeLike = "today", end: TimeLike | None = None, *,
                           market: str | Iterable[str] | None = None, products: str | Iterable[str] | None = None,
                           regions: str | Iterable[str] | None = None, interval_minutes: int | None = None,
                           resample: str | None = None, agg: str = "mean", local_time: bool = False) -> pd.DataFrame:
        """Ancillary service clearing prices (gridstatus ``get_as_prices``), long: one row per
        market, region, product and interval (``df.pivot`` gives gridstatus's wide shape)."""
        filters = _filters(market=market, product=products, region=regions)
        q = self._query("ancillary_services", iso, start, end, columns=tuple(TABLES["ancillary_services"].columns),
                        filters=filters, interval_minutes=interval_minutes,
                        order=("interval_start", "market", "region", "product"))
        return self._read(q, resample=resample, agg=agg, local_time=local_time)

    def load(self, iso: str, start: TimeLike = "today", end: TimeLike | None = None, *, kind: str = "actual",
             areas: str | Iterable[str] | None = None, interval_minutes: int | None = None,
             resample: str | None = None, agg: str = "mean", local_time: bool = False,
             **forecast: Any) -> pd.DataFrame:
        """Actual load (gridstatus ``get_load``) by area (``SYSTEM`` = the ISO total); ``kind="forecast"``
        is :meth:`load_forecast` (``as_of=``, ``vintages=``, ``models=`` pass through)."""
        if kind == "forecast":
            return self.load_forecast(iso, start, end, areas=areas, interval_minutes=interval_minutes,
                                      resample=resample, agg=agg, local_time=local_time, **forecast)
        if kind != "actual" or forecast:
            raise InputError(f"load: kind must be 'actual' or 'forecast' (got {kind!r}, {sorted(forecast)})")
        filters = {"kind": ("actual",), **_filters(area=areas)}
        q = self._query("load", iso, start, end, columns=ACTUAL_LOAD_COLUMNS, filters=filters,
                        interval_minutes=interval_minutes, order=("interval_start", "interval_end", "area"))
        return self._read(q, resample=resample, agg=agg, local_time=local_time)

    def load_forecast(self, iso: str, start: TimeLike = "today", end: TimeLike | None = None, *,
                      as_of: TimeLike | None = None, vintages: Literal["latest", "all"] = "latest",
                      areas: str | Iterable[str] | None = None, models: str | Iterable[str] | None = None,
                      interval_minutes: int | None = None, resample: str | None = None, agg: str = "mean",
                      local_time: bool = False) -> pd.DataFrame:
        """Load forecasts for the intervals in ``[start, end)`` (gridstatus ``get_load_forecast``).

        ``vintages="latest"``: per area, model and interval the newest vintage issued at or before
        ``as_of`` (default: the newest there is) - what a backtest at ``as_of`` could have known.
        ``vintages="all"``: every vintage issued by ``as_of`` (one row per ``forecast_issued_at``)."""
        if vintages not in ("latest", "all"):
            raise InputError(f"vintages must be 'latest' or 'all', not {vintages!r}")
        filters = {"kind": ("forecast",), **_filters(area=areas, model=models)}
        cutoff = None
        if as_of is not None:
            tz = timezone_of(iso.lower())
            try:
                parsed = _parse(as_of, tz, self.now or datetime.now(UTC))
            except InputError as exc:
                raise InputError(f"as_of: {exc}") from None
            if isinstance(parsed, str):
                raise InputError("as_of: give a time (or 'now'), not 'latest'")
            cutoff = parsed if isinstance(parsed, datetime) else _local_midnight(parsed, tz)
        columns = tuple(c for c in TABLES["load"].columns if c != "kind")
        order = ("interval_start", "interval_end", "area", "model")
        q = self._query("load", iso, start, end, columns=columns, filters=filters, interval_minutes=interval_minutes,
                        as_of=cutoff, latest_vintage=vintages == "latest",
                        order=order if vintages == "latest" else (*order, "forecast_issued_at"))
        return self._read(q, resample=resample, agg=agg, local_time=local_time)

    def fuel_mix(self, iso: str, start: TimeLike = "today", end: TimeLike | None = None, *,
                 fuels: str | Iterable[str] | None = None, wide: bool = False, interval_minutes: int | None = None,
                 resample: str | None = None, agg: str = "mean", local_time: bool = False) -> pd.DataFrame:
        """Generation by fuel (gridstatus ``get_fuel_mix``): long, or ``wide=True`` for one column per
        fuel (gridstatus's shape; resolutions are kept apart by ``interval_end``)."""
        filters = _filters(fuel=fuels)
        q = self._query("fuel_mix", iso, start, end, columns=tuple(TABLES["fuel_mix"].columns), filters=filters,
                        interval_minutes=interval_minutes, order=("interval_start", "interval_end", "fuel"))
        df = self._read(q, resample=resample, agg=agg, local_time=local_time)
        if not wide:
            return df
        index = [c for c in ("interval_start", "interval_end", "interval_start_local", "iso") if c in df.columns]
        out = df.pivot(index=index, columns="fuel", values="generation_mw").reset_index()
        out.columns.name = None
        return out

    def iso(self, name: str) -> IsoReader:
        return IsoReader(name, self)


class IsoReader:
    """gridstatus's method names on one ISO (``gridstatus.Ercot().get_spp(...)`` ->
    ``pmp.read.iso("ercot").get_spp(...)``): ``date`` / ``end`` as gridstatus takes them."""

    def __init__(self, name: str, warehouse: Warehouse) -> None:
        self.name, self.warehouse = name.lower(), warehouse
        timezone_of(self.name)  # unknown ISO: fail here

    def get_lmp(self, date: TimeLike = "today", end: TimeLike | None = None, market: str | None = None,
                locations: str | Iterable[str] | None = None, **kw: Any) -> pd.DataFrame:
        return self.warehouse.lmp(self.name, date, end, market=market, locations=locations, **kw)

    get_spp = get_lmp  # ERCOT's settlement point prices

    def get_as_prices(self, date: TimeLike = "today", end: TimeLike | None = None, **kw: Any) -> pd.DataFrame:
        return self.warehouse.ancillary_services(self.name, date, end, **kw)

    def get_load(self, date: TimeLike = "today", end: TimeLike | None = None, **kw: Any) -> pd.DataFrame:
        return self.warehouse.load(self.name, date, end, **kw)

    def get_load_forecast(self, date: TimeLike = "today", end: TimeLike | None = None, **kw: Any) -> pd.DataFrame:
        return self.warehouse.load_forecast(self.name, date, end, **kw)

    def get_fuel_mix(self, date: TimeLike = "today", end: TimeLike | None = None, **kw: Any) -> pd.DataFrame:
        return self.warehouse.fuel_mix(self.name, date, end, **kw)


# ------------------------------------------------------------------------- module-level calls


def lmp(iso: str, start: TimeLike = "today", end: TimeLike | None = None, *, source: Source = "db",
        **kw: Any) -> pd.DataFrame:
    return Warehouse(source).lmp(iso, start, end, **kw)


def ancillary_services(iso: str, start: TimeLike = "today", end: TimeLike | None = None, *, source: Source = "db",
                       **kw: Any) -> pd.DataFrame:
    return Warehouse(source).ancillary_services(iso, start, end, **kw)


def load(iso: str, start: TimeLike = "today", end: TimeLike | None = None, *, source: Source = "db",
         **kw: Any) -> pd.DataFrame:
    return Warehouse(source).load(iso, start, end, **kw)


def load_forecast(iso: str, start: TimeLike = "today", end: TimeLike | None = None, *, source: Source = "db",
                  **kw: Any) -> pd.DataFrame:
    return Warehouse(source).load_forecast(iso, start, end, **kw)


def fuel_mix(iso: str, start: TimeLike = "today", end: TimeLike | None = None, *, source: Source = "db",
             **kw: Any) -> pd.DataFrame:
    return Warehouse(source).fuel_mix(iso, start, end, **kw)


def iso(name: str, *, source: Source = "db") -> IsoReader:
    return Warehouse(source).iso(name)
