"""ERCOT normalizers: raw MIS/API payloads -> the standard ``lmp`` table.

Every ERCOT quirk is handled in one named place below, with the reason next to it:
* :data:`COLUMN_ALIASES` - column spellings drift across years and access paths.
* :func:`_repeated_flags` - the fall-back repeated hour is marked on the *second* copy.
* :func:`_hour_ending` - ``24:00`` ends at next midnight; some files use 25 hour endings.
* :func:`_unflagged_repeats` - files without a flag column cannot tell the repeated hour's copies apart.
* :func:`_reject_duplicates` - one document holds one row per entity and interval.
* :func:`_location_names` - load zones are published twice (LZ and LZEW).
* :func:`published_at_from_name` - posting time is encoded in the constructed file name.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import pandas as pd
import pyarrow as pa

from pmp.errors import NormalizeError, utf8_text
from pmp.payload import PayloadError, iter_members, leaf_name
from pmp.schema import LMP, conform
from pmp.timeutil import TimeLabelError, floor_minutes, hour_ending_start, localize, market_day_hours

TZ = "America/Chicago"  # ERCOT publishes Central prevailing time everywhere


# Quirk: the same field is spelled differently by MIS CSVs, the API, older years and the annual
# workbooks (spaces, case, RepeatHourFlag vs RepeatedHourFlag vs DSTFlag, SCEDTimeStamp, ...).
# Headers are compared after removing spaces/underscores and lower-casing.
COLUMN_ALIASES: dict[str, str] = {
    "deliverydate": "delivery_date",
    "operday": "delivery_date",
    "hourending": "hour_ending",
    "deliveryhour": "delivery_hour",
    "deliveryinterval": "delivery_interval",
    "dstflag": "repeated",
    "repeatedhourflag": "repeated",
    "repeathourflag": "repeated",
    "scedtimestamp": "sced_timestamp",
    "settlementpoint": "location",
    "settlementpointname": "location",
    "settlementpointtype": "location_type",
    "settlementpointprice": "price",
    "lmp": "price",
}


def _canonical(header: str) -> str:
    key = re.sub(r"[\s_]+", "", header).lower()
    return COLUMN_ALIASES.get(key, header.strip())


def published_at_from_name(name: str) -> datetime | None:
    """Posting time from a constructed name ``cdr.<rtid>.<16 digits>.<YYYYMMDD>.<HHMMSS[fff]>.<stem>``
    (or ``rpt.<rtid>.<16 digits>.<YYYYMMDDHHMMSS>.<stem>``, the annual files).

    Quirk: the time is local Central time; during the repeated fall-back hour ERCOT adds ``xhr``
    to the second set of names, which is the only way to tell the two copies apart.
    """
    m = re.search(r"cdr\.\d+\.\d+\.(\d{8})\.(\d{6})\d*\.", leaf_name(name)) or re.search(
        r"rpt\.\d+\.\d+\.(\d{8})(\d{6})\.", leaf_name(name))
    if not m:
        return None
    naive = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    try:
        return localize(naive, TZ, repeated="xhr" in name.lower())
    except TimeLabelError:
        return None


def _read_csv(path: str, data: bytes, required: tuple[str, ...]) -> pd.DataFrame:
    text = utf8_text(path, data)
    if not text.strip():
        raise NormalizeError(path, None, None, "empty file")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise NormalizeError(path, None, None, f"malformed CSV ({exc})") from exc
    original = list(df.columns)
    df.columns = [_canonical(c) for c in original]
    df.attrs["headers"] = dict(zip(df.columns, original, strict=True))
    require_columns(path, df, required)
    for col in df.columns:
        df[col] = df[col].str.strip()
    return df


def require_columns(path: str, df: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        header = list(df.attrs.get("headers", {}).values()) or list(df.columns)
        raise NormalizeError(path, 1, missing[0], f"missing column; header is {header}")


def _line(idx: int) -> int:
    return int(idx) + 2  # header is line 1, data row 0 is line 2


def _first_bad(path: str, df: pd.DataFrame, mask: pd.Series, field: str, message: str) -> None:
    if mask.any():
        idx = mask[mask].index[0]
        raise NormalizeError(path, _line(idx), _header(df, field), f"{message}: {df.at[idx, field]!r}")


def _prices(path: str, df: pd.DataFrame, field: str = "price") -> pd.Series:
    values = pd.to_numeric(df[field], errors="coerce")
    _first_bad(path, df, values.isna() & (df[field] != ""), field, "not a number")
    _first_bad(path, df, df[field] == "", field, "empty price")
    return values.astype("float64")


def _dates(path: str, df: pd.DataFrame, field: str = "delivery_date") -> pd.Series:
    parsed = pd.to_datetime(df[field], format="%m/%d/%Y", errors="coerce")
    _first_bad(path, df, parsed.isna(), field, "not a MM/DD/YYYY date")
    return parsed.dt.date


def _repeated_flags(path: str, df: pd.DataFrame) -> pd.Series:
    """Quirk: ERCOT flags the *second* (standard-time) copy of the repeated hour with ``Y``.

    Older files have no flag column at all; then no row is a repeat (and a 25-hour day must use
    25 hour endings, handled in :func:`_hour_ending`).
    """
    if "repeated" not in df.columns:
        return pd.Series(False, index=df.index)
    flags = df["repeated"].str.upper()
    _first_bad(path, df, ~flags.isin(["Y", "N", "TRUE", "FALSE"]), "repeated", "flag must be Y or N")
    return flags.isin(["Y", "TRUE"])


def _hour_ending(path: str, df: pd.DataFrame, field: str, dates: pd.Series, repeated: pd.Series) -> pd.Series:
    """``HH:00`` or ``H`` labels -> int 1..24, rewriting the rare 25-hour-ending layout.

    Quirk: some ERCOT products ignore DST flags and number the fall-back day 1..25. There the
    third label is the repeated copy of the second hour, so labels >= 3 move back by one and the
    moved label 3 is marked as the repeat. Only the fall-back day has 25 hours: a label 25 on any
    other day is an error, never rewritten.
    """
    raw = df[field]
    parts = raw.str.partition(":")
    hours = pd.to_numeric(parts[0], errors="coerce")
    minutes = parts[2].replace("", "00")
    _first_bad(path, df, hours.isna() | (minutes != "00") | (hours < 1) | (hours > 25), field,
               "hour ending must be 01:00..24:00")
    hours = hours.astype(int)
    if (hours == 25).any():
        day_hours = dates.map(_day_hours)
        wrong = (hours == 25) & (day_hours != 25)
        if wrong.any():
            idx = wrong[wrong].index[0]
            raise NormalizeError(path, _line(idx), _header(df, field),
                                 f"hour ending 25 on {dates[idx]}, a {day_hours[idx]}-hour day (only the "
                                 f"fall-back day has 25 hours): {raw[idx]!r}")
        has_25 = hours.groupby(dates).transform("max") == 25
        shift = has_25 & (hours >= 3)
        repeated.loc[has_25 & (hours == 3)] = True
        hours = hours.where(~shift, hours - 1)
    return hours


@lru_cache(maxsize=4096)
def _day_hours(day: date) -> int:
    return market_day_hours(day, TZ)


def _header(df: pd.DataFrame, field: str) -> str:
    """A canonical column's header as the file spells it (errors name what the user sees)."""
    return df.attrs.get("headers", {}).get(field, field)


# Columns that identify a row's entity besides its interval (the key of the row's table).
ENTITY_COLUMNS = ("location", "location_type", "AncillaryType", "ASType", "Model")


def _entities(df: pd.DataFrame) -> list[str]:
    return [c for c in ENTITY_COLUMNS if c in df.columns]


def _unflagged_repeats(path: str, df: pd.DataFrame, field: str, keys: pd.DataFrame) -> None:
    """Quirk guard: files without a flag column (older years) cannot tell the two copies of the
    fall-back repeated hour apart. On a 25-hour day such a file either numbers the hours 1..25
    (rewritten by :func:`_hour_ending`) or lists the repeated hour twice with the same label;
    the latter would put both copies on the same instant and silently keep one, so it is an error
    naming the second copy."""
    if "repeated" in df.columns or df.empty:
        return
    on_25 = keys["d"].map(_day_hours) == 25
    if not on_25.any():
        return
    ents = _entities(df)
    dup = pd.concat([df[ents], keys], axis=1).duplicated(keep="first") & on_25
    if dup.any():
        idx = dup[dup].index[0]
        who = "/".join(str(df.at[idx, c]) for c in ents)
        raise NormalizeError(path, _line(idx), _header(df, field),
                             f"{df.at[idx, field]!r} appears twice{' for ' + who if who else ''} on the 25-hour "
                             f"day {keys.at[idx, 'd']} and the file has no repeated-hour flag column (DSTFlag) to "
                             "tell the two copies apart")


def _reject_duplicates(path: str, df: pd.DataFrame, start: pd.Series, field: str) -> None:
    """One document holds one row per entity and interval: a second row for the same key would
    be dropped silently by the loader's dedupe, so it is an error naming both lines."""
    ents = _entities(df)
    keys = pd.concat([df[ents], start.rename("__start")], axis=1)
    dup = keys.duplicated(keep="first")
    if not dup.any():
        return
    idx = dup[dup].index[0]
    same = (keys == keys.loc[idx]).all(axis=1)
    first = same[same].index[0]
    who = "/".join(str(df.at[idx, c]) for c in ents)
    when = pd.Timestamp(start[idx]).tz_convert(UTC).isoformat()
    raise NormalizeError(path, _line(idx), _header(df, field),
                         f"duplicate row{' for ' + who if who else ''}: the interval starting {when} is already "
                         f"on line {_line(first)} ({df.at[idx, field]!r})")


def _starts(keys: pd.DataFrame, fn: object, path: str, df: pd.DataFrame, field: str) -> pd.Series:
    """Convert each distinct local label once (files repeat the same label for every location)."""
    uniq = keys.drop_duplicates()
    out: dict[tuple, datetime] = {}
    for idx, row in uniq.iterrows():
        try:
            out[tuple(row)] = fn(*row)  # type: ignore[operator]
        except TimeLabelError as exc:
            raise NormalizeError(path, _line(idx), field, str(exc)) from exc
    return pd.Series([out[tuple(r)] for r in keys.itertuples(index=False)], index=keys.index)


def type_from_name(location: pd.Series) -> pd.Series:
    """Quirk: the day-ahead file (NP4-190-CD) has no settlement point type column, so its hubs and
    load zones would not reach ``hub_prices``/``zone_prices``. ERCOT's names carry the type:
    ``HB_BUSAVG`` is the system hub (``SH``), ``HB_HUBAVG`` the hub average (``AH``), other ``HB_``
    names hubs (``HU``), ``LZ_`` names load zones (``LZ``): the types the real-time files publish for
    the same names. Other names (resource nodes) stay without a type. Same rule in the Rust processor.
    """
    upper = location.str.upper()
    typ = pd.Series(None, index=location.index, dtype=object)
    typ[upper.str.match(r"HB_.", na=False)] = "HU"
    typ[upper.str.match(r"LZ_.", na=False)] = "LZ"
    typ[upper == "HB_BUSAVG"] = "SH"
    typ[upper == "HB_HUBAVG"] = "AH"
    return typ


def _location_names(df: pd.DataFrame) -> tuple[pd.Series, pd.Series | None]:
    """Quirk: real-time files list every load zone twice, as type ``LZ`` and as the energy-weighted
    ``LZEW`` (also ``LZ_DC``/``LZ_DCEW``), with different prices. The EW copy gets an ``_EW`` suffix
    (gridstatus' convention) so both survive under the (location, interval) key; the type is kept.
    """
    loc = df["location"]
    if "location_type" not in df.columns:
        return loc, type_from_name(loc)
    typ = df["location_type"]
    ew = typ.str.upper().str.endswith("EW")
    return loc.where(~ew, loc + "_EW"), typ


def _lmp_table(
    df: pd.DataFrame, start: pd.Series, minutes: int, market: str, prices: pd.Series, source: str,
    published_at: datetime | None,
) -> pa.Table:
    location, location_type = _location_names(df)
    start_utc = pd.to_datetime(start, utc=True)
    n = len(df)
    table = pa.table(
        {
            "interval_start": pa.array(start_utc, LMP.arrow.field("interval_start").type),
            "interval_end": pa.array(start_utc + pd.Timedelta(minutes=minutes), LMP.arrow.field("interval_end").type),
            "iso": pa.array(["ERCOT"] * n, pa.string()),
            "market": pa.array([market] * n, pa.string()),
            "location": pa.array(location, pa.string()),
            "location_type": pa.array(location_type if location_type is not None else [None] * n, pa.string()),
            "lmp": pa.array(prices, pa.float64()),
            "energy": pa.nulls(n, pa.float64()),
            "congestion": pa.nulls(n, pa.float64()),
            "loss": pa.nulls(n, pa.float64()),
            "ghg": pa.nulls(n, pa.float64()),
            "published_at": pa.array([published_at] * n, LMP.arrow.field("published_at").type),
            "source": pa.array([source] * n, pa.string()),
        }
    )
    return conform(table, LMP)


def _dam(path: str, df: pd.DataFrame) -> tuple[pd.Series, int]:
    dates = _dates(path, df)
    repeated = _repeated_flags(path, df)
    hours = _hour_ending(path, df, "hour_ending", dates, repeated)
    keys = pd.DataFrame({"d": dates, "h": hours, "r": repeated})
    _unflagged_repeats(path, df, "hour_ending", keys)
    start = _starts(keys, lambda d, h, r: hour_ending_start(d, int(h), TZ, bool(r)), path, df, "hour_ending")
    _reject_duplicates(path, df, start, "hour_ending")
    return start, 60


def _rt15(path: str, df: pd.DataFrame) -> tuple[pd.Series, int]:
    dates = _dates(path, df)
    repeated = _repeated_flags(path, df)
    hours = _hour_ending(path, df, "delivery_hour", dates, repeated)
    interval = pd.to_numeric(df["delivery_interval"], errors="coerce")
    _first_bad(path, df, ~interval.isin([1, 2, 3, 4]), "delivery_interval", "interval must be 1..4")
    keys = pd.DataFrame({"d": dates, "h": hours, "r": repeated, "i": interval.astype(int)})
    _unflagged_repeats(path, df, "delivery_hour", keys)

    def start_of(d: date, h: int, r: bool, i: int) -> datetime:
        return hour_ending_start(d, int(h), TZ, bool(r)) + timedelta(minutes=15 * (int(i) - 1))

    start = _starts(keys, start_of, path, df, "delivery_hour")
    _reject_duplicates(path, df, start, "delivery_hour")
    return start, 15


def _sced(path: str, df: pd.DataFrame) -> tuple[pd.Series, int]:
    """SCED runs are stamped with their local run time (seconds included). The price holds for the
    5-minute interval the run falls in, so the start is the run time floored to 5 minutes (in UTC,
    exact because Central time offsets are whole hours)."""
    stamps = pd.to_datetime(df["sced_timestamp"], format="%m/%d/%Y %H:%M:%S", errors="coerce")
    _first_bad(path, df, stamps.isna(), "sced_timestamp", "not a MM/DD/YYYY HH:MM:SS timestamp")
    repeated = _repeated_flags(path, df)
    keys = pd.DataFrame({"t": stamps.dt.to_pydatetime(), "r": repeated})
    start = _starts(keys, lambda t, r: floor_minutes(localize(t, TZ, repeated=bool(r)), 5), path, df, "sced_timestamp")
    _reject_duplicates(path, df, start, "sced_timestamp")
    return start, 5


# dataset -> (market, required columns, interval parser)
LMP_LAYOUTS = {
    "lmp_dam": ("DAM", ("delivery_date", "hour_ending", "location", "price"), _dam),
    "lmp_rt15m": ("RT15M", ("delivery_date", "delivery_hour", "delivery_interval", "location", "price"), _rt15),
    "lmp_rt5m": ("RT5M", ("sced_timestamp", "location", "price"), _sced),
}


def normalize_csv(dataset: str, path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    """One ERCOT CSV -> standard rows. ``path`` names the file in errors and becomes ``source``."""
    try:
        market, required, parse = LMP_LAYOUTS[dataset]
    except KeyError:
        raise KeyError(f"ERCOT dataset {dataset!r} has no normalizer; known: {sorted(LMP_LAYOUTS)}") from None
    return normalize_frame(dataset, path, _read_csv(path, data, required), published_at)


def normalize_frame(
    dataset: str, path: str, df: pd.DataFrame, published_at: datetime | None = None, source: str | None = None
) -> pa.Table:
    """Rows read from one document (canonical column names, text cells as in the CSVs; a CSV or
    a sheet of an annual workbook) -> standard rows. Line numbers are ``index + 2``; ``source``
    defaults to the file name of ``path``."""
    market, required, parse = LMP_LAYOUTS[dataset]
    require_columns(path, df, required)
    if df.empty:
        return LMP.empty()
    start, minutes = parse(path, df)
    prices = _prices(path, df)
    published = published_at or published_at_from_name(path)
    return _lmp_table(df, start, minutes, market, prices, source or leaf_name(path), published)


def normalize_payload(
    dataset: str, name: str, payload: bytes, published_at: datetime | None = None
) -> pa.Table:
    """A raw payload as downloaded (CSV, MIS zip, or API archive zip of zips) -> standard rows."""
    tables = []
    for path, data in iter_members(name, payload):
        tables.append(normalize_csv(dataset, path, data, published_at))
    if not tables:
        raise PayloadError(f"{name}: no CSV member found")
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)
