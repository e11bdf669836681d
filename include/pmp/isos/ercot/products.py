"""ERCOT entries of the dataset registry beyond the LMPs: ancillary services, load, load
forecasts and fuel mix (the LMP entries are in ``datasets.py``).

Each report of a dataset names its MIS report type (``rtid``), its EMIL id for the Public API
archive and bundles (``emil``), the stem of its file names (``stem``), how long MIS keeps it
(``mis_retention_days``), the rule that maps a document to its market day (``doc_day``, see
:func:`pmp.isos.ercot.adapter.report_day`) and, where ERCOT publishes one, its annual file
(``annual``).
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp.registry import DatasetSpec

POOL = "ercot_api"
TZ = "America/Chicago"
RTC_FIRST_DAY = date(2025, 12, 5)  # RTC+B go-live: the first operating day of NP6-331-CD

AS_DAM = {"rtid": 12329, "emil": "NP4-188-CD", "stem": "DAMCPCNP4188", "mis_retention_days": 31,
          "doc_day": "publish_plus_1", "query": "np4-188-cd/dam_clear_price_for_cap",
          "annual": {"rtid": 13091, "emil": "NP4-181-ER", "stem": "DAMASMCPC"}}
AS_RT15M = {"rtid": 24898, "emil": "NP6-331-CD", "stem": "RTMCPCNP6331", "mis_retention_days": 7,
            "doc_day": "name_interval_end", "query": "np6-331-cd/rt_clear_price_cap"}
LOAD_WEATHER_ZONE = {"rtid": 13101, "emil": "NP6-345-CD", "stem": "ACTUALSYSLOADWZNP6345", "mis_retention_days": 31,
                     "doc_day": "publish_minus_1", "query": "np6-345-cd/act_sys_load_by_wzn"}
SYSTEM_DEMAND = {"rtid": 12340, "emil": "NP6-235-CD", "stem": "SYSWIDEDEMANDNP6235", "mis_retention_days": 7,
                 "doc_day": "name_hour_end", "query": "np6-235-cd/system_wide_demand"}
LOAD_FORECAST = {"rtid": 14837, "emil": "NP3-565-CD", "stem": "LFMODWEATHERNP3565", "mis_retention_days": 7,
                 "doc_day": "publish_day", "query": "np3-565-cd/lf_by_model_weather_zone"}

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        iso="ercot", dataset="as_dam", table="ancillary_services", market="DAM",
        title="ERCOT day-ahead ancillary service clearing prices (MCPC, hourly)", source="NP4-188-CD",
        # ECRS only changes the product list (from June 2023): the report itself reaches 2019
        timezone=TZ, interval_minutes=60, first_date=date(2019, 1, 1), pool=POOL,
        params=AS_DAM,
    ),
    DatasetSpec(
        iso="ercot", dataset="as_rt15m", table="ancillary_services", market="RT15M",
        title="ERCOT real-time ancillary service clearing prices (MCPC, 15-minute, RTC+B)", source="NP6-331-CD",
        timezone=TZ, interval_minutes=15, first_date=RTC_FIRST_DAY, pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=20),
        params=AS_RT15M,
    ),
    DatasetSpec(
        iso="ercot", dataset="load_actual", table="load", kind="actual",
        title="ERCOT actual load by weather zone (hourly) and system-wide demand (15-minute)",
        source="NP6-345-CD, NP6-235-CD",
        # NP6-345-CD for day D is posted at about 05:50 on D+1: a run that starts at midnight
        # stops with "not published yet" (the pipeline waits at most 30 minutes) and succeeds
        # when re-run after 06:00. Intraday, NP6-235-CD posts each hour's four 15-minute values
        # about three minutes after the hour: the */5 DAG loads each posting from MIS (and the
        # NP6-345-CD posting of the morning), so today's load is there within minutes of ERCOT's
        # post instead of a day later
        timezone=TZ, interval_minutes=60, first_date=date(2019, 1, 1), pool=POOL, realtime=True,
        publication_lag=timedelta(hours=6),
        params={"reports": (LOAD_WEATHER_ZONE, SYSTEM_DEMAND)},
    ),
    DatasetSpec(
        iso="ercot", dataset="load_forecast", table="load", kind="forecast",
        title="ERCOT seven-day load forecast by model and weather zone (every hourly vintage)",
        source="NP3-565-CD",
        # the day is the issue day: one vintage posted every hour at about HH:30 (23 / 25 on DST
        # days), so the last one of the day is out before midnight; the */5 DAG loads each vintage
        # from MIS as it is posted
        timezone=TZ, interval_minutes=60, first_date=date(2019, 1, 1), pool=POOL, realtime=True,
        completeness="vintages", vintage_minutes=60, publication_lag=timedelta(minutes=5),
        params=LOAD_FORECAST,
    ),
    DatasetSpec(
        iso="ercot", dataset="fuel_mix", table="fuel_mix",
        title="ERCOT generation by fuel (5-minute dashboard, 15-minute annual workbooks)",
        source="fuel-mix.json, IntGenbyFuel",
        timezone=TZ, interval_minutes=15, alt_interval_minutes=(5,), first_date=date(2019, 1, 1), pool=POOL,
        realtime=True, publication_lag=timedelta(minutes=2),
        params={"source": "fuel_mix", "dashboard": "fuel-mix"},
    ),
)
