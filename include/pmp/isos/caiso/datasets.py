"""CAISO entries of the dataset registry.

``params`` carries what discovery needs to build the OASIS / Today's Outlook requests of a market
day (see :mod:`pmp.isos.caiso.adapter`):

* ``route``: ``oasis`` (SingleZip query), ``outlook`` (Today's Outlook CSV) or a list of both;
* ``queryname`` / ``version`` / ``market_run_id`` and extra OASIS parameters (``query``);
* ``window``: ``day`` (one request per trade day) or ``hour`` (one per hour: OASIS only allows
  one hour per request for real-time prices of all APnodes);
* ``realtime_lead_minutes``: forecasts are issued ahead of their interval (RTD 2.5 min, RTPD
  22.5 min); a real-time run treats an interval as published when ``now + lead >= start``.
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp.registry import DatasetSpec, Vintages

POOL = "caiso_oasis"
TZ = "America/Los_Angeles"  # US/Pacific: the CAISO trade day (OPR_DT) and the Outlook clock
FIRST_DATE = date(2019, 1, 1)

# ANC_TYPE codes of PRC_AS / PRC_INTVL_AS (the product ids stored in ancillary_services.product).
AS_PRODUCTS = ("NR", "RD", "RMD", "RMU", "RU", "SR")

# SLD_FCST vintages stored in load.model: the OASIS MARKET_RUN_ID, RTM split by EXECUTION_TYPE.
FORECAST_VINTAGES = ("7DA", "2DA", "DAM", "RTM_RTPD", "RTM_RTD")

# Completeness beyond "every interval of what arrived" (pmp.checks): an all-APnode price answer
# always holds the three trading hubs (reference 3.5), so a day without one of them is not whole.
TRADING_HUBS = ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND")
AS_ENTITIES = {"product": AS_PRODUCTS}  # every ANC_TYPE, even if its own request answered "no data"

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        iso="caiso", dataset="lmp_dam", table="lmp", market="DAM",
        title="CAISO day-ahead LMP by APnode, with energy/congestion/loss/GHG (hourly)",
        source="OASIS PRC_LMP (DAM)", timezone=TZ, interval_minutes=60, first_date=FIRST_DATE, pool=POOL,
        expected_entities={"location": TRADING_HUBS},
        params={"route": "oasis", "queryname": "PRC_LMP", "version": "12", "market_run_id": "DAM",
                "query": {"grp_type": "ALL_APNODES"}, "window": "day", "groupid": "DAM_LMP_GRP"},
    ),
    DatasetSpec(
        iso="caiso", dataset="lmp_rt15m", table="lmp", market="RT15M",
        title="CAISO fifteen-minute market (RTPD/FMM) LMP by APnode", source="OASIS PRC_RTPD_LMP (RTPD)",
        timezone=TZ, interval_minutes=15, first_date=FIRST_DATE, pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=5), expected_entities={"location": TRADING_HUBS},
        params={"route": "oasis", "queryname": "PRC_RTPD_LMP", "version": "3", "market_run_id": "RTPD",
                "query": {"grp_type": "ALL_APNODES"}, "window": "hour", "step_minutes": 15},
    ),
    DatasetSpec(
        iso="caiso", dataset="lmp_rt5m", table="lmp", market="RT5M",
        title="CAISO real-time dispatch (RTD) five-minute LMP by APnode", source="OASIS PRC_INTVL_LMP (RTM)",
        timezone=TZ, interval_minutes=5, first_date=FIRST_DATE, pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=5), expected_entities={"location": TRADING_HUBS},
        params={"route": "oasis", "queryname": "PRC_INTVL_LMP", "version": "3", "market_run_id": "RTM",
                "query": {"grp_type": "ALL_APNODES"}, "window": "hour", "step_minutes": 5},
    ),
    DatasetSpec(
        iso="caiso", dataset="as_dam", table="ancillary_services", market="DAM",
        title="CAISO day-ahead ancillary service clearing prices by region and product (hourly)",
        source="OASIS PRC_AS (DAM)", timezone=TZ, interval_minutes=60, first_date=FIRST_DATE, pool=POOL,
        # Quirk: anc_type=ALL silently returns only one trade day, so one request per product; a
        # product whose request answered "no data" is skipped by fetch, and reported by the check.
        expected_entities=AS_ENTITIES,
        params={"route": "oasis", "queryname": "PRC_AS", "version": "12", "market_run_id": "DAM",
                "query": {"anc_region": "ALL"}, "per_product": AS_PRODUCTS, "window": "day"},
    ),
    DatasetSpec(
        iso="caiso", dataset="as_rt15m", table="ancillary_services", market="RT15M",
        title="CAISO fifteen-minute market ancillary service prices by region and product",
        source="OASIS PRC_INTVL_AS (RTM)", timezone=TZ, interval_minutes=15, first_date=FIRST_DATE, pool=POOL,
        realtime=True, publication_lag=timedelta(minutes=5), expected_entities=AS_ENTITIES,
        params={"route": "oasis", "queryname": "PRC_INTVL_AS", "version": "1", "market_run_id": "RTM",
                "query": {"anc_type": "ALL", "anc_region": "ALL"}, "window": "day", "step_minutes": 15},
    ),
    DatasetSpec(
        iso="caiso", dataset="load_actual", table="load", kind="actual",
        title="CAISO actual load: hourly by TAC area (OASIS) and 5-minute system demand (Today's Outlook)",
        source="OASIS SLD_FCST (ACTUAL) + Outlook demand.csv", timezone=TZ, interval_minutes=60,
        first_date=FIRST_DATE, pool=POOL, realtime=True, publication_lag=timedelta(minutes=30),
        # two sources, two resolutions in one area: hourly SLD_FCST by TAC area and 5-minute
        # Outlook system demand; each must be there, and each must hold the system total
        required_resolutions=(60, 5), expected_entities={"area": ("SYSTEM",)},
        params={"route": ("oasis", "outlook"), "queryname": "SLD_FCST", "version": "1", "market_run_id": "ACTUAL",
                "query": {}, "window": "day", "outlook": "demand"},
    ),
    DatasetSpec(
        iso="caiso", dataset="load_forecast", table="load", kind="forecast",
        title="CAISO load forecasts by TAC area: 7-day, 2-day, day-ahead, RTPD and RTD vintages",
        source="OASIS SLD_FCST (7DA, 2DA, DAM, RTM)", timezone=TZ, interval_minutes=60,
        first_date=FIRST_DATE, pool=POOL, realtime=True,
        # The day is the issue day: DAM/2DA/7DA are issued once at 09:10 PT, RTPD every 15 minutes
        # and RTD every 5 minutes. Counted per model: RTPD issue times (start - 22.5 min) are also
        # RTD ones (start - 2.5 min) and the three day-ahead models share 09:10, so a total count
        # would not notice a missing model.
        completeness="vintages",
        model_vintages={"7DA": Vintages(per_day=1), "2DA": Vintages(per_day=1), "DAM": Vintages(per_day=1),
                        "RTM_RTPD": Vintages(every_minutes=15), "RTM_RTD": Vintages(every_minutes=5)},
        params={"route": "oasis", "queryname": "SLD_FCST", "version": "1",
                "vintages": {
                    # model: (market_run_id, execution_type, days ahead | None, lead minutes)
                    "7DA": ("7DA", None, 7, None),
                    "2DA": ("2DA", None, 2, None),
                    "DAM": ("DAM", None, 1, None),
                    "RTM_RTPD": ("RTM", "RTPD", None, 22.5),
                    "RTM_RTD": ("RTM", "RTD", None, 2.5),
                },
                "realtime_lead_minutes": {"RTM_RTPD": 15, "RTM_RTD": 0}},
    ),
    DatasetSpec(
        iso="caiso", dataset="fuel_mix", table="fuel_mix",
        title="CAISO generation by fuel (5-minute, Today's Outlook)", source="Outlook fuelsource.csv",
        timezone=TZ, interval_minutes=5, first_date=FIRST_DATE, pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=10),
        params={"route": "outlook", "outlook": "fuelsource"},
    ),
)
