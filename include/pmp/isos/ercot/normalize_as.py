"""ERCOT ancillary-service prices -> the standard ``ancillary_services`` table.

* ``as_dam``: NP4-188-CD "DAM Clearing Prices for Capacity" (hourly, hour ending + ``DSTFlag``),
  ``DeliveryDate,HourEnding,AncillaryType,MCPC,DSTFlag``.
* ``as_rt15m``: NP6-331-CD real-time MCPC per 15-minute settlement interval (since RTC+B,
  2025-12-05), ``DeliveryDate,DeliveryHour,DeliveryInterval,RepeatedHourFlag,ASType,MCPC``.

Products are ERCOT's own codes as published (``REGUP``, ``REGDN``, ``RRS``, ``NSPIN``, ``ECRS``;
ECRS only from June 2023). Prices are system-wide, so ``region`` is ``SYSTEM``. The label rules
(hour ending, the repeated hour flagged on its second copy, 25-hour-ending files) are the ones of
the LMP files and reuse :mod:`pmp.isos.ercot.normalize`.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pyarrow as pa

from pmp.isos.ercot.normalize import (
    _dam,
    _first_bad,
    _prices,
    _read_csv,
    _rt15,
    published_at_from_name,
    require_columns,
)
from pmp.payload import leaf_name
from pmp.schema import ANCILLARY_SERVICES, conform

# dataset -> (market, product column, required columns, interval parser)
AS_LAYOUTS = {
    "as_dam": ("DAM", "AncillaryType", ("delivery_date", "hour_ending", "AncillaryType", "MCPC"), _dam),
    "as_rt15m": ("RT15M", "ASType",
                 ("delivery_date", "delivery_hour", "delivery_interval", "ASType", "MCPC"), _rt15),
}


def normalize_as_csv(dataset: str, path: str, data: bytes, published_at: datetime | None = None) -> pa.Table:
    return normalize_as_frame(dataset, path, _read_csv(path, data, AS_LAYOUTS[dataset][2]), published_at)


def normalize_as_frame(
    dataset: str, path: str, df: pd.DataFrame, published_at: datetime | None = None, source: str | None = None
) -> pa.Table:
    """Rows of one document (canonical columns, text cells; a CSV or an annual workbook's sheet)."""
    market, product_col, required, parse = AS_LAYOUTS[dataset]
    require_columns(path, df, required)
    if df.empty:
        return ANCILLARY_SERVICES.empty()
    start, minutes = parse(path, df)
    prices = _prices(path, df, "MCPC")
    products = df[product_col].str.upper()
    _first_bad(path, df, products == "", product_col, "empty ancillary service type")
    published = published_at or published_at_from_name(path)
    start_utc = pd.to_datetime(start, utc=True)
    n = len(df)
    ts = ANCILLARY_SERVICES.arrow.field("interval_start").type
    table = pa.table(
        {
            "interval_start": pa.array(start_utc, ts),
            "interval_end": pa.array(start_utc + pd.Timedelta(minutes=minutes), ts),
            "iso": pa.array(["ERCOT"] * n, pa.string()),
            "market": pa.array([market] * n, pa.string()),
            "region": pa.array(["SYSTEM"] * n, pa.string()),  # ERCOT clears AS system-wide
            "product": pa.array(products, pa.string()),
            "clearing_price": pa.array(prices, pa.float64()),
            "clearing_quantity": pa.nulls(n, pa.float64()),  # not in these reports
            "requirement": pa.nulls(n, pa.float64()),
            "published_at": pa.array([published] * n, ts),
            "source": pa.array([source or leaf_name(path)] * n, pa.string()),
        }
    )
    return conform(table, ANCILLARY_SERVICES)
