"""ISO-NE entries of the dataset registry.

``params`` hold what discovery needs to know about each product (see ``adapter.py``):
* ``report_page``: the ISO Express page whose session cookie and URL (Referer) the download needs;
* ``stages``: ``("prelim", "final")`` when a final publication replaces the preliminary one;
* ``final_due``: (days after the market day, local time) by which ISO-NE has posted the final file,
  and ``prelim_due`` likewise; Web Services JSON carries no publication time, so these scheduled
  instants are its ``published_at`` (the newer publication wins in the warehouse);
* ``catchup_days``: a daily run that could only get prelim files also collects the finals that
  came out for that many earlier days (how finals replace prelims without re-running old days);
* ``block_due_minutes``: how long after its 4-hour block a preliminary 5-minute LMP file is posted
  (the real-time DAG asks for a block from then on; a block not out yet answers 404 and is asked
  for again by the next run);
* ``current_due_seconds``: how long after its interval ends ISO-NE has posted the interval's
  preliminary 5-minute LMPs at the latest (one to two and a half minutes): the current-interval
  report is named by the newest interval due by now (``adapter._current_refs``), and the watcher
  wakes the real-time DAG at each due instant (``pmp.triggers``).

``realtime=True`` (a */5 DAG, ``adapter._realtime``): every product ISO-NE publishes during the
operating day. 5-minute LMPs and reserve prices come preliminary within minutes and are replaced by
the finals of the daily runs (the newer publication wins in the warehouse).
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp.registry import DatasetSpec

POOL = "isone_api"
TZ = "America/New_York"
FIRST = date(2019, 1, 1)
PRICING = "/isoexpress/web/reports/pricing/-/tree/"
LOAD = "/isoexpress/web/reports/load-and-demand/-/tree/"
# ISO-NE posts a day's final prices about two days later, but a final held back (price corrections,
# holidays) can come days later still; a week of look-back costs one HEAD per earlier day and run,
# and a final later than that is loaded by re-running its day (README "Discovery, prelim and final").
CATCHUP_DAYS = 7

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        iso="isone", dataset="lmp_dam", table="lmp", market="DAM",
        title="ISO-NE day-ahead hourly LMPs (every location)", source="WW_DALMP_ISO (Day-Ahead Hourly LMP Report)",
        timezone=TZ, interval_minutes=60, first_date=FIRST, pool=POOL,
        params={"report_page": PRICING + "lmps-da-hourly", "stages": ("final",), "final_due": (-1, "13:30")},
    ),
    DatasetSpec(
        iso="isone", dataset="lmp_rt5m", table="lmp", market="RT5M",
        title="ISO-NE real-time five-minute LMPs (prelim, then final)",
        source="lmp_5min (Real-Time Five-Minute LMP Reports, six 4-hour files a day)",
        timezone=TZ, interval_minutes=5, first_date=FIRST, pool=POOL, publication_lag=timedelta(minutes=20),
        realtime=True,
        params={"report_page": PRICING + "lmps-rt-five-minute", "stages": ("prelim", "final"),
                "prelim_due": (1, "00:30"), "final_due": (2, "12:00"), "catchup_days": CATCHUP_DAYS,
                "block_due_minutes": 15, "current_due_seconds": 150},
    ),
    DatasetSpec(
        iso="isone", dataset="lmp_rt60m", table="lmp", market="RT60M",
        title="ISO-NE real-time hourly LMPs (prelim, then final)",
        source="lmp_rt_prelim / lmp_rt_final (Real-Time Hourly LMP Reports)",
        timezone=TZ, interval_minutes=60, first_date=FIRST, pool=POOL, publication_lag=timedelta(minutes=30),
        params={"report_page": PRICING + "lmps-rt-hourly-final", "stages": ("prelim", "final"),
                "prelim_due": (1, "00:30"), "final_due": (2, "12:00"), "catchup_days": CATCHUP_DAYS},
    ),
    DatasetSpec(
        iso="isone", dataset="as_rt5m", table="ancillary_services", market="RT5M",
        title="ISO-NE five-minute real-time reserve prices by reserve zone (TMSR, TMNSR, TMOR; prelim, then final)",
        source="fiveminreserveprice (Five-Minute Reserve Zone Prices and Designations, prelim intraday, final)",
        timezone=TZ, interval_minutes=5, first_date=FIRST, pool=POOL, publication_lag=timedelta(minutes=30),
        realtime=True,
        params={"report_page": PRICING + "five-minute-reserve-prices", "stages": ("final",),
                "final_due": (1, "00:30")},
    ),
    DatasetSpec(
        iso="isone", dataset="load_actual", table="load", kind="actual",
        title="ISO-NE five-minute system load (native load)",
        source="fiveminutesystemload (Five-Minute System Load)",
        timezone=TZ, interval_minutes=5, first_date=FIRST, pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=10),
        params={"report_page": LOAD + "five-minute-system-load", "stages": ("final",)},
    ),
    DatasetSpec(
        iso="isone", dataset="load_forecast", table="load", kind="forecast",
        title="ISO-NE hourly system load forecast, every vintage",
        source="hourlyloadforecast (Web Services, all vintages) / wsclient systemload (ISO Express)",
        timezone=TZ, interval_minutes=60, first_date=FIRST, pool=POOL,
        # ISO-NE issues the system forecast at least three times a day (about 04:00, 09:10 and
        # 18:15 local, sometimes more); the daily run covers the forecasts issued that day. ISO
        # Express answers each hour's newest vintage only, so the real-time DAG captures the whole
        # horizon every 5 minutes and keeps each vintage while it is current (adapter._realtime).
        completeness="vintages", vintages_per_day=3, realtime=True,
        params={"report_page": LOAD + "hourly-load-forecast", "stages": ("final",), "horizon_days": 2},
    ),
    DatasetSpec(
        iso="isone", dataset="fuel_mix", table="fuel_mix",
        title="ISO-NE generation by fuel (snapshots, in the 5-minute interval they fall in)",
        source="genfuelmix (Generation Fuel Mix)",
        # Snapshots come at irregular instants (about every 5-10 minutes), so not every 5-minute
        # interval has one: completeness is "the day has rows".
        timezone=TZ, interval_minutes=5, first_date=FIRST, pool=POOL, publication_lag=timedelta(minutes=5),
        completeness="rows", realtime=True,
        params={"report_page": "/isoexpress/web/reports/operations/-/tree/gen-fuel-mix", "stages": ("final",)},
    ),
)
