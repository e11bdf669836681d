"""MISO entries of the dataset registry.

MISO stamps market time in Eastern Standard Time all year (UTC-5, no daylight saving): a MISO
market day is always 24 hours, 05:00Z to 05:00Z, even on the days the US changes clocks. The
registry's time zone is therefore the fixed zone ``Etc/GMT+5`` (IANA's name for UTC-5: the sign is
POSIX's, inverted), never ``America/New_York``; the daily DAGs run once per EST day and the checks
expect 24 hourly / 288 five-minute intervals on every day, DST days included.

``params`` say where each dataset's documents come from (see ``adapter.py`` for the routes):
* ``reports``: the market-report families (``docs.misoenergy.org/marketreports/{YYYYMMDD}_{name}``),
  in order of preference (a final report before its preliminary one);
* ``weekly``: a weekly archive published on Mondays for an earlier week (the file dated Monday M
  holds M-14 .. M-8);
* ``due``: when MISO has posted a report, as (days after the market day, "HH:MM" EST) - the
  simulator's schedule and the daily runs' publication wait;
* ``catchup_days``: a daily run that could only get a preliminary report also takes the finals
  that came out for that many earlier days (how finals replace prelims without re-running days).
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp.registry import DatasetSpec

POOL = "miso_reports"
TZ = "Etc/GMT+5"  # MISO market time: EST all year (UTC-5); see the module docstring
FIRST = date(2019, 1, 1)
CATCHUP_DAYS = 10
# Reserve products (``ancillary_services.product``), MISO's own MCP codes without the "MCP" suffix
# (the consolidated LMP table's REGMCP, SPINMCP, SUPPMCP, STRMCP, RCUPMCP, RCDOWNMCP).
PRODUCTS = ("REG", "SPIN", "SUPP", "STR", "RCUP", "RCDOWN")
# Short-term reserve is cleared from 2021-12-01 only; every other product on every day.
ALWAYS_PRODUCTS = ("REG", "SPIN", "SUPP", "RCUP", "RCDOWN")
RESERVE_ZONES = tuple(f"ZONE{n}" for n in range(1, 9))
# Load Resource Zones of the df_al report (combined zones as MISO publishes them) + SYSTEM (MISO total)
LOAD_AREAS = ("LRZ1", "LRZ2_7", "LRZ3_5", "LRZ4", "LRZ6", "LRZ8_9_10", "SYSTEM")


def _spec(dataset: str, table: str, title: str, minutes: int, source: str, **kw: object) -> DatasetSpec:
    return DatasetSpec(iso="miso", dataset=dataset, table=table, title=title, source=source, timezone=TZ,
                       interval_minutes=minutes, first_date=FIRST, pool=POOL, **kw)  # type: ignore[arg-type]


DATASETS: tuple[DatasetSpec, ...] = (
    _spec("lmp_dam", "lmp", "MISO day-ahead ex-post LMPs, every CPNode (hourly)", 60,
          "da_expost_lmp (Day-Ahead Ex-Post LMPs, market reports)", market="DAM",
          params={"reports": ("da_expost_lmp",), "due": {"da_expost_lmp": (-1, "15:00")}}),
    # the ex-ante prices of the same market (MISO publishes both; ex-post settles)
    _spec("lmp_dam_exante", "lmp", "MISO day-ahead ex-ante LMPs, every CPNode (hourly)", 60,
          "da_exante_lmp (Day-Ahead Ex-Ante LMPs, market reports)", market="DAM_EXANTE",
          params={"reports": ("da_exante_lmp",), "due": {"da_exante_lmp": (-1, "15:00")}}),
    _spec("lmp_rt60m", "lmp", "MISO real-time hourly ex-post LMPs (preliminary, then final)", 60,
          "rt_lmp_prelim / rt_lmp_final (Real-Time Ex-Post LMPs, market reports)", market="RT60M",
          publication_lag=timedelta(hours=6),
          params={"reports": ("rt_lmp_final", "rt_lmp_prelim"), "catchup_days": CATCHUP_DAYS,
                  "due": {"rt_lmp_prelim": (1, "06:00"), "rt_lmp_final": (5, "10:00")}}),
    _spec("lmp_rt5m", "lmp", "MISO real-time five-minute ex-post LMPs (API preliminary, weekly final)", 5,
          "5MIN_LMP weekly zip (final) / public API GetRealTimeFiveMinExPost / Data Exchange lmp-expost",
          market="RT5M", realtime=True, publication_lag=timedelta(minutes=15),
          params={"weekly": "5MIN_LMP.zip", "api": "MarketPricing/GetRealTimeFiveMinExPost"}),
    _spec("as_dam", "ancillary_services", "MISO day-ahead ex-post reserve MCPs by reserve zone (hourly)", 60,
          "asm_expost_damcp (ASM Day-Ahead Ex-Post MCPs, market reports)", market="DAM",
          expected_entities={"product": ALWAYS_PRODUCTS, "region": RESERVE_ZONES},
          params={"reports": ("asm_expost_damcp",), "due": {"asm_expost_damcp": (-1, "15:00")}}),
    _spec("as_rt5m", "ancillary_services", "MISO real-time five-minute reserve MCPs by reserve zone", 5,
          "5min_expost_mcp weekly xlsx (final) / public API GetAncillaryServicesMcp (current interval)",
          market="RT5M", realtime=True, publication_lag=timedelta(minutes=15),
          expected_entities={"product": ALWAYS_PRODUCTS, "region": RESERVE_ZONES},
          params={"weekly": "5min_expost_mcp.xlsx", "api": "MarketPricing/GetAncillaryServicesMcp"}),
    _spec("load_actual", "load", "MISO actual load by Load Resource Zone and system (hourly)", 60,
          "df_al (Daily Forecasted and Actual Load, market reports) / public API RealTimeTotalLoad",
          kind="actual", realtime=True, publication_lag=timedelta(hours=7),
          expected_entities={"area": LOAD_AREAS},
          params={"reports": ("df_al.xls",), "due": {"df_al.xls": (1, "07:00")}, "api": "RealTimeTotalLoad"}),
    # every vintage: each day's df_al MTLF (by zone, issued when the report is posted) and, in real
    # time, the system MTLF of RealTimeTotalLoad as MISO revises it through the day
    _spec("load_forecast", "load", "MISO medium-term load forecast (MTLF), every vintage (hourly)", 60,
          "df_al MTLF (market reports) / public API RealTimeTotalLoad MediumTermLoadForecast",
          kind="forecast", completeness="vintages", vintages_per_day=1, realtime=True,
          params={"reports": ("df_al.xls",), "due": {"df_al.xls": (0, "07:00")}, "api": "RealTimeTotalLoad"}),
    # 5-minute snapshots from the public API in real time; hourly state-estimated generation by fuel
    # from the annual archive (published after the year closes). Two resolutions that never cover a
    # day together, so completeness is "the day has rows".
    _spec("fuel_mix", "fuel_mix", "MISO generation by fuel (5-minute real time, hourly history)", 5,
          "public API FuelMix / historical_gen_fuel_mix_{YYYY}.xlsx (annual)", alt_interval_minutes=(60,),
          completeness="rows", realtime=True, publication_lag=timedelta(minutes=10),
          params={"annual": "historical_gen_fuel_mix_{year}.xlsx", "annual_due": (4, "12:00"), "api": "FuelMix"}),
)
