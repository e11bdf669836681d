"""CAISO normalizers: raw OASIS zips and Outlook CSVs -> the standard tables.

One function per product family; quirks are handled in named places:
* :mod:`pmp.isos.caiso.oasis_csv` - zips of CSV, XML errors, GMT keys, OPR_HR 25 / no 3;
* :func:`lmp_table` - five ``LMP_TYPE`` rows per node and interval (unsorted, possibly split
  over one CSV per component) pivot into one row; ``MGHG`` is kept as ``ghg``;
* :func:`as_table` - the price is in the column named ``MW``; regions nest (kept as published);
* :func:`load_table` - ``CA ISO-TAC`` is the system (area ``SYSTEM``); forecast issue times;
* :mod:`pmp.isos.caiso.outlook` - HH:MM labels, the date from the URL, DST rows;
* :func:`source_name` - the stored name carries a content hash; ``source`` is the document name.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pandas as pd
import pyarrow as pa

from pmp.errors import NormalizeError
from pmp.isos.caiso.oasis import PT
from pmp.isos.caiso.oasis_csv import (
    FILE,
    LINE,
    check_values,
    fail_first,
    floats,
    gmt_intervals,
    read_members,
    utc_column,
)
from pmp.isos.caiso.outlook import DEMAND_COLUMN, demand_rows, fuel_rows, read_outlook
from pmp.payload import is_zip, leaf_name
from pmp.schema import ANCILLARY_SERVICES, FUEL_MIX, LMP, LOAD, TableSchema, conform

ISO = "CAISO"
SYSTEM_AREA = "CA ISO-TAC"  # the CAISO balancing area total in SLD_FCST; stored as area 'SYSTEM'

# dataset -> (market stored, OASIS MARKET_RUN_ID values accepted, interval minutes)
LMP_MARKETS = {"lmp_dam": ("DAM", {"DAM"}, 60), "lmp_rt15m": ("RT15M", {"RTPD"}, 15),
               "lmp_rt5m": ("RT5M", {"RTM"}, 5)}
AS_MARKETS = {"as_dam": ("DAM", {"DAM"}, 60), "as_rt15m": ("RT15M", {"RTM", "RTPD"}, 15)}

# LMP_TYPE -> (column, XML_DATA_ITEM)
LMP_TYPES = {"LMP": ("lmp", "LMP_PRC"), "MCE": ("energy", "LMP_ENE_PRC"), "MCC": ("congestion", "LMP_CONG_PRC"),
             "MCL": ("loss", "LMP_LOSS_PRC"), "MGHG": ("ghg", "LMP_GHG_PRC")}
LMP_VALUE_COLUMNS = ("MW", "PRC", "VALUE")  # DAM, RTPD and RTM files name the value column differently

# ANC_TYPE -> XML_DATA_ITEM prefix of its clearing price (spinning is SP, non-spinning NS)
AS_ITEMS = {"NR": "NS", "RD": "RD", "RMD": "RMD", "RMU": "RMU", "RU": "RU", "SR": "SP"}

# SLD_FCST: model -> interval minutes; issue time rules in _issued_at
FORECAST_MINUTES = {"7DA": 60, "2DA": 60, "DAM": 60, "RTM_RTPD": 15, "RTM_RTD": 5}
DAYS_AHEAD = {"7DA": 7, "2DA": 2, "DAM": 1}
DAILY_ISSUE = time(9, 10)  # OASIS publications schedule: DAM/2DA/7DA forecasts at 09:10 PT (gs#291)
RT_LEAD = {"RTM_RTPD": timedelta(minutes=22.5), "RTM_RTD": timedelta(minutes=2.5)}  # gridstatus' publish times

_HASHED = re.compile(r"^(?P<stem>.+)\.[0-9a-f]{12}(?P<ext>\.[A-Za-z0-9]+)$")


def source_name(name: str) -> str:
    """The document name stored in ``source``: the stored raw name without its content hash
    (``PRC_LMP_..._v12.3fa9c2e1b0d4.zip`` -> ``PRC_LMP_..._v12.zip``)."""
    leaf = leaf_name(name)
    m = _HASHED.match(leaf)
    return m.group("stem") + m.group("ext") if m else leaf


def location_type(node: str) -> str:
    """CAISO publishes no type column: Trading Hub, DLAP, AP Node or Node, from the name (as gridstatus)."""
    if node.startswith("TH_"):
        return "Trading Hub"
    if node.startswith("DLAP_"):
        return "DLAP"
    if node.endswith("-APND"):
        return "AP Node"
    return "Node"


def _table(schema: TableSchema, columns: dict[str, object], n: int, source: str) -> pa.Table:
    data: dict[str, pa.Array] = {}
    for field in schema.arrow:
        if field.name == "iso":
            data["iso"] = pa.array([ISO] * n, pa.string())
        elif field.name == "source":
            data["source"] = pa.array([source] * n, pa.string())
        elif field.name in columns:
            data[field.name] = pa.array(columns[field.name], field.type, from_pandas=True)
        else:
            data[field.name] = pa.nulls(n, field.type)
    return conform(pa.table(data), schema)


def _no_duplicates(df: pd.DataFrame, keys: list[str], field: str) -> None:
    fail_first(df, df.duplicated(keys, keep="first"), field, "duplicate row for the same key")


def lmp_table(dataset: str, name: str, payload: bytes) -> pa.Table:
    market, run_ids, minutes = LMP_MARKETS[dataset]
    df = read_members(name, payload, ("INTERVALSTARTTIME_GMT", "INTERVALENDTIME_GMT", "MARKET_RUN_ID", "LMP_TYPE"))
    if df.empty:
        return LMP.empty()
    node_col = "NODE" if "NODE" in df.columns else "NODE_ID"
    value_col = next((c for c in LMP_VALUE_COLUMNS if c in df.columns), None)
    if node_col not in df.columns or value_col is None:
        missing = node_col if node_col not in df.columns else "/".join(LMP_VALUE_COLUMNS)
        raise NormalizeError(str(df[FILE].iloc[0]), 1, missing, "missing column")
    check_values(df, "MARKET_RUN_ID", run_ids, f"{dataset} market")
    check_values(df, "LMP_TYPE", LMP_TYPES, "LMP_TYPE")
    if "XML_DATA_ITEM" in df.columns:
        expected = df["LMP_TYPE"].map({k: v[1] for k, v in LMP_TYPES.items()})
        fail_first(df, df["XML_DATA_ITEM"] != expected, "XML_DATA_ITEM", "does not match LMP_TYPE")
    fail_first(df, df[node_col] == "", node_col, "empty node name")
    start, _ = gmt_intervals(df, minutes)
    values = floats(df, value_col)
    long = pd.DataFrame({"node": df[node_col], "start": start, "type": df["LMP_TYPE"], "value": values,
                         FILE: df[FILE], LINE: df[LINE], "LMP_TYPE": df["LMP_TYPE"]})
    _no_duplicates(long, ["node", "start", "type"], "LMP_TYPE")
    wide = long.pivot(index=["node", "start"], columns="type", values="value")
    wide = wide.reindex(columns=list(LMP_TYPES)).sort_index().reset_index()
    starts = wide["start"]
    cols: dict[str, object] = {
        "interval_start": utc_column(starts),
        "interval_end": utc_column(starts + pd.Timedelta(minutes=minutes)),
        "market": [market] * len(wide),
        "location": wide["node"].tolist(),
        "location_type": [location_type(n) for n in wide["node"]],
    }
    for lmp_type, (column, _) in LMP_TYPES.items():
        cols[column] = wide[lmp_type].astype("float64")
    return _table(LMP, cols, len(wide), source_name(name))


def as_table(dataset: str, name: str, payload: bytes) -> pa.Table:
    market, run_ids, minutes = AS_MARKETS[dataset]
    df = read_members(name, payload, ("INTERVALSTARTTIME_GMT", "INTERVALENDTIME_GMT", "ANC_TYPE", "ANC_REGION",
                                      "MARKET_RUN_ID", "XML_DATA_ITEM", "MW"))
    if df.empty:
        return ANCILLARY_SERVICES.empty()
    check_values(df, "MARKET_RUN_ID", run_ids, f"{dataset} market")
    check_values(df, "ANC_TYPE", AS_ITEMS, "ANC_TYPE")
    if "OPR_TYPE" in df.columns:
        check_values(df, "OPR_TYPE", {"MCP"}, "OPR_TYPE (market clearing price)")
    expected = df["ANC_TYPE"].map(AS_ITEMS) + "_CLR_PRC"
    fail_first(df, df["XML_DATA_ITEM"] != expected, "XML_DATA_ITEM", "is not the clearing price of ANC_TYPE")
    fail_first(df, df["ANC_REGION"] == "", "ANC_REGION", "empty region")
    start, end = gmt_intervals(df, minutes)
    price = floats(df, "MW")  # quirk: the $/MW clearing price lives in the column named MW
    rows = pd.DataFrame({"start": start, "region": df["ANC_REGION"], "product": df["ANC_TYPE"], "price": price,
                         FILE: df[FILE], LINE: df[LINE], "ANC_TYPE": df["ANC_TYPE"]})
    _no_duplicates(rows, ["region", "product", "start"], "ANC_TYPE")
    rows = rows.sort_values(["region", "product", "start"], kind="stable")
    cols = {
        "interval_start": utc_column(rows["start"]),
        "interval_end": utc_column(rows["start"] + pd.Timedelta(minutes=minutes)),
        "market": [market] * len(rows),
        "region": rows["region"].tolist(),
        "product": rows["product"].tolist(),
        "clearing_price": rows["price"],
    }
    return _table(ANCILLARY_SERVICES, cols, len(rows), source_name(name))


def _forecast_models(df: pd.DataFrame) -> pd.Series:
    """MARKET_RUN_ID, with RTM split by EXECUTION_TYPE (or, if that column is absent or empty, by
    the interval length: RTD is 5-minute, RTPD 15-minute)."""
    models = df["MARKET_RUN_ID"].copy()
    rtm = models == "RTM"
    if rtm.any():
        execution = df["EXECUTION_TYPE"] if "EXECUTION_TYPE" in df.columns else pd.Series("", index=df.index)
        start = pd.to_datetime(df["INTERVALSTARTTIME_GMT"], format="%Y-%m-%dT%H:%M:%S%z", errors="coerce")
        end = pd.to_datetime(df["INTERVALENDTIME_GMT"], format="%Y-%m-%dT%H:%M:%S%z", errors="coerce")
        by_length = ((end - start).dt.total_seconds() / 60).map({5.0: "RTD", 15.0: "RTPD"}).fillna("")
        kind = execution.where(execution != "", by_length)
        fail_first(df, rtm & ~kind.isin(["RTD", "RTPD"]), "EXECUTION_TYPE", "RTM forecast must be RTD or RTPD")
        models = models.where(~rtm, "RTM_" + kind)
    return models


def _issued_at(model: str, starts: pd.Series) -> pd.Series:
    """When each forecast value was issued.

    DAM / 2DA / 7DA: 09:10 Pacific, 1 / 2 / 7 days before the local date of the interval (the
    OASIS publications schedule, gs#291). RTPD / RTD: 22.5 / 2.5 minutes before the interval
    starts (the binding-run lead times gridstatus uses)."""
    if model in RT_LEAD:
        return starts - RT_LEAD[model]
    days = DAYS_AHEAD[model]
    local_dates = starts.dt.tz_convert(PT).dt.date
    issue = {d: datetime.combine(d - timedelta(days=days), DAILY_ISSUE, PT) for d in set(local_dates)}
    return pd.to_datetime(local_dates.map(issue), utc=True)


def load_table(dataset: str, name: str, payload: bytes) -> pa.Table:
    """SLD_FCST (OASIS) or, for actual load, the Outlook ``demand.csv`` (5-minute system demand)."""
    if dataset == "load_actual" and not _is_oasis(payload):
        return _outlook_demand(name, payload)
    df = read_members(name, payload, ("INTERVALSTARTTIME_GMT", "INTERVALENDTIME_GMT", "MARKET_RUN_ID",
                                      "TAC_AREA_NAME", "MW"))
    if df.empty:
        return LOAD.empty()
    actual = dataset == "load_actual"
    check_values(df, "MARKET_RUN_ID", {"ACTUAL"} if actual else {"7DA", "2DA", "DAM", "RTM"}, f"{dataset} market")
    fail_first(df, df["TAC_AREA_NAME"] == "", "TAC_AREA_NAME", "empty TAC area")
    models = pd.Series("", index=df.index) if actual else _forecast_models(df)
    minutes = pd.Series(60.0, index=df.index) if actual else models.map(FORECAST_MINUTES).astype("float64")
    start, end = gmt_intervals(df, minutes)
    mw = floats(df, "MW")
    area = df["TAC_AREA_NAME"].where(df["TAC_AREA_NAME"] != SYSTEM_AREA, "SYSTEM")
    rows = pd.DataFrame({"start": start, "end": end, "area": area, "model": models, "mw": mw,
                         FILE: df[FILE], LINE: df[LINE], "TAC_AREA_NAME": df["TAC_AREA_NAME"]})
    if actual:
        rows["issued"] = rows["end"]  # an actual is known when its interval ends
    else:
        parts = [_issued_at(m, rows.loc[rows["model"] == m, "start"]) for m in rows["model"].unique()]
        rows["issued"] = pd.concat(parts).reindex(rows.index)
    _no_duplicates(rows, ["area", "model", "issued", "start"], "TAC_AREA_NAME")
    rows = rows.sort_values(["area", "model", "issued", "start"], kind="stable")
    cols = {
        "interval_start": utc_column(rows["start"]),
        "interval_end": utc_column(rows["end"]),
        "area": rows["area"].tolist(),
        "kind": ["actual" if actual else "forecast"] * len(rows),
        "forecast_issued_at": utc_column(rows["issued"]),
        "model": rows["model"].tolist(),
        "load_mw": rows["mw"],
    }
    return _table(LOAD, cols, len(rows), source_name(name))


def _outlook_demand(name: str, payload: bytes) -> pa.Table:
    f = read_outlook(name, payload, ("Time", DEMAND_COLUMN))
    rows = demand_rows(f)
    starts = [s for s, _ in rows]
    ends = [s + timedelta(minutes=5) for s in starts]
    cols = {"interval_start": starts, "interval_end": ends, "area": ["SYSTEM"] * len(rows),
            "kind": ["actual"] * len(rows), "forecast_issued_at": ends, "model": [""] * len(rows),
            "load_mw": [v for _, v in rows]}
    return _table(LOAD, cols, len(rows), source_name(name))


def fuel_mix_table(dataset: str, name: str, payload: bytes) -> pa.Table:
    if _is_oasis(payload):
        raise NormalizeError(name, None, None, "fuel mix comes from the Outlook fuelsource.csv, not OASIS")
    f = read_outlook(name, payload, ("Time",))
    if len(f.header) < 2:
        raise NormalizeError(name, 1, None, f"no fuel columns; header is {f.header}")
    rows = fuel_rows(f)
    starts = [s for s, _, _ in rows]
    cols = {"interval_start": starts, "interval_end": [s + timedelta(minutes=5) for s in starts],
            "fuel": [fuel for _, fuel, _ in rows], "generation_mw": [v for _, _, v in rows]}
    return _table(FUEL_MIX, cols, len(rows), source_name(name))


def _is_oasis(payload: bytes) -> bool:
    """OASIS answers are zips (or, saved by hand, a CSV starting with INTERVALSTARTTIME_GMT)."""
    head = payload[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return is_zip(payload) or head.startswith((b"INTERVALSTARTTIME_GMT", b"<"))


NORMALIZERS = {
    "lmp_dam": lmp_table, "lmp_rt15m": lmp_table, "lmp_rt5m": lmp_table,
    "as_dam": as_table, "as_rt15m": as_table,
    "load_actual": load_table, "load_forecast": load_table,
    "fuel_mix": fuel_mix_table,
}


def normalize_payload(dataset: str, name: str, payload: bytes) -> pa.Table:
    """A raw payload as downloaded (OASIS zip, bare OASIS CSV or Outlook CSV) -> standard rows.
    ``name`` names the file in errors; ``source`` is the document name (see :func:`source_name`)."""
    try:
        fn = NORMALIZERS[dataset]
    except KeyError:
        raise KeyError(f"CAISO dataset {dataset!r} has no normalizer; known: {sorted(NORMALIZERS)}") from None
    if not payload:
        raise NormalizeError(name, None, None, "empty payload")
    return fn(dataset, name, payload)
