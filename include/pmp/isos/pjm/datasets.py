"""PJM entries of the dataset registry.

Every dataset reads Data Miner 2 feeds (``params["daily"]``: the history route, one query per feed
and market day; ``params["realtime"]``: what the */5 DAG polls). A :class:`Feed` says how a feed is
filtered by time, how long its intervals are and whether PJM archives it (see ``dataminer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pmp.registry import DatasetSpec

POOL = "pjm_dataminer"
TZ = "America/New_York"  # PJM labels in Eastern prevailing time (EPT); every feed also carries UTC
FIRST = date(2019, 1, 1)
# PJM verifies real-time LMPs days after the operating day (unverified feeds carry them meanwhile):
# the simulator posts day D's verified rows on D+2 at about 12:00 EPT, so the daily run waits that long.
VERIFIED_LAG = timedelta(hours=37)


@dataclass(frozen=True)
class Feed:
    """One Data Miner 2 feed as this pipeline queries it."""

    name: str  # e.g. "rt_fivemin_hrl_lmps"
    time_field: str  # filtered as "<time_field>_ept" / "_utc", e.g. "datetime_beginning"
    minutes: int  # interval length (the feed's main resolution)
    archive_days: int | None = None  # rows older than this many days are archived (no field filters)
    per_interval: bool = False  # realtime: one query per interval (documents that never change)
    current_only: bool = False  # realtime: the feed holds only the latest vintage (no time filter)


DA_LMP = Feed("da_hrl_lmps", "datetime_beginning", 60, archive_days=731)
RT_LMP_5 = Feed("rt_fivemin_hrl_lmps", "datetime_beginning", 5, archive_days=186)
RT_LMP_5_UNVERIFIED = Feed("rt_unverified_fivemin_lmps", "datetime_beginning", 5, per_interval=True)
RT_LMP_60 = Feed("rt_hrl_lmps", "datetime_beginning", 60, archive_days=731)
RT_LMP_60_UNVERIFIED = Feed("rt_unverified_hrl_lmps", "datetime_beginning", 60, per_interval=True)
DA_RESERVES = Feed("da_reserve_market_results", "datetime_beginning", 60)
RT_RESERVES = Feed("reserve_market_results", "datetime_beginning", 5)
METERED_LOAD = Feed("hrl_load_metered", "datetime_beginning", 60)
INST_LOAD = Feed("inst_load", "datetime_beginning", 5, per_interval=True)
LOAD_FORECAST_HIST = Feed("load_frcstd_hist", "evaluated_at_datetime", 60)
LOAD_FORECAST_7DAY = Feed("load_frcstd_7_day", "evaluated_at_datetime", 60, current_only=True)
GEN_BY_FUEL = Feed("gen_by_fuel", "datetime_beginning", 60, per_interval=True)

FEEDS = {f.name: f for f in (DA_LMP, RT_LMP_5, RT_LMP_5_UNVERIFIED, RT_LMP_60, RT_LMP_60_UNVERIFIED, DA_RESERVES,
                             RT_RESERVES, METERED_LOAD, INST_LOAD, LOAD_FORECAST_HIST, LOAD_FORECAST_7DAY,
                             GEN_BY_FUEL)}
UNVERIFIED = frozenset({RT_LMP_5_UNVERIFIED.name, RT_LMP_60_UNVERIFIED.name})
# PJM's real-time reserve results changed from hourly to 5-minute intervals on this day.
RT_RESERVES_5MIN_FROM = date(2022, 9, 1)
AS_PRODUCTS = ("SR", "PR", "30MIN")  # synchronized, primary, thirty-minute reserves (both markets)


def _spec(dataset: str, table: str, title: str, minutes: int, daily: tuple[Feed, ...],
          realtime: tuple[Feed, ...] = (), **kw: object) -> DatasetSpec:
    return DatasetSpec(
        iso="pjm", dataset=dataset, table=table, title=title,
        source=" + ".join(f.name for f in (*daily, *realtime)),
        timezone=TZ, interval_minutes=minutes, first_date=kw.pop("first_date", FIRST), pool=POOL,  # type: ignore[arg-type]
        realtime=bool(realtime), params={"daily": daily, "realtime": realtime}, **kw,  # type: ignore[arg-type]
    )


DATASETS: tuple[DatasetSpec, ...] = (
    _spec("lmp_dam", "lmp", "PJM day-ahead hourly LMPs, every pricing node", 60, (DA_LMP,), market="DAM"),
    _spec("lmp_rt5m", "lmp", "PJM real-time 5-minute LMPs: verified (history), unverified (recent intervals)", 5,
          (RT_LMP_5,), (RT_LMP_5_UNVERIFIED,), market="RT5M", publication_lag=VERIFIED_LAG),
    _spec("lmp_rt60m", "lmp", "PJM real-time hourly LMPs: verified (history), unverified (recent hours)", 60,
          (RT_LMP_60,), (RT_LMP_60_UNVERIFIED,), market="RT60M", publication_lag=VERIFIED_LAG),
    _spec("as_dam", "ancillary_services", "PJM day-ahead reserve market results (hourly, since 2022-10-01)", 60,
          (DA_RESERVES,), market="DAM", first_date=date(2022, 10, 1),
          expected_entities={"product": AS_PRODUCTS}),
    # one market "RT": the results are hourly before 2022-09-01 and 5-minute since (RT_RESERVES_5MIN_FROM)
    _spec("as_rt", "ancillary_services", "PJM real-time reserve and regulation market results", 5,
          (RT_RESERVES,), market="RT", alt_interval_minutes=(60,), publication_lag=timedelta(hours=12),
          expected_entities={"product": (*AS_PRODUCTS, "REG")}),
    _spec("load_actual", "load", "PJM metered hourly load by load area and instantaneous (5-minute) load", 5,
          (METERED_LOAD, INST_LOAD), (INST_LOAD,), kind="actual", required_resolutions=(60, 5),
          publication_lag=timedelta(hours=9)),
    _spec("load_forecast", "load", "PJM 7-day load forecast, every vintage (evaluation)", 60,
          (LOAD_FORECAST_HIST,), (LOAD_FORECAST_7DAY,), kind="forecast", completeness="vintages",
          vintages_per_day=4, publication_lag=timedelta(hours=1)),
    _spec("fuel_mix", "fuel_mix", "PJM generation by fuel type (hourly)", 60, (GEN_BY_FUEL,), (GEN_BY_FUEL,),
          publication_lag=timedelta(minutes=15)),
)
