"""SPP entries of the dataset registry.

Each dataset names its file-browser source in ``params``: ``route`` says how its documents are
found (``rt5m``: 5-minute interval files plus the By_Day roll-up; ``da``: one day-ahead file per
operating day; ``mtlf``: hourly forecast issues; ``genmix``: the generation-mix archives and chart).
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp.isos.spp.files import TZ, Family
from pmp.registry import DatasetSpec, Vintages

POOL = "spp_portal"
FIRST = date(2019, 1, 1)

RTBM_LMP = Family("rtbm-lmp-by-location", "RTBM-LMP-SL", "RTBM-LMP-DAILY-SL")
RTBM_MCP = Family("rtbm-mcp", "RTBM-MCP", "RTBM-MCP-DAILY")
DA_LMP = Family("da-lmp-by-settlement-location", "DA-LMP-SL")
DA_MCP = Family("da-mcp", "DA-MCP")
MTLF = Family("mtlf-vs-actual", "OP-MTLF")
GENMIX = Family("generation-mix-historical", "GenMix")
GENMIX_CHART = "gen-mix"  # chart-api/gen-mix/asChart: the rolling two hours

# SPP's reserve products as its files name them. Ramp capability (RampUP/RampDN) and uncertainty
# (UncUP) appear from 2022-03-01 on ("where published"): only the others are required every day.
DA_PRODUCTS = ("RegUP", "RegDN", "Spin", "Supp")
RT_PRODUCTS = ("RegUPService", "RegDNService", "RegUpMile", "RegDNMile", "Spin", "Supp")
RAMP_FROM = date(2022, 3, 1)


def _spec(dataset: str, table: str, title: str, minutes: int, source: str, **kw: object) -> DatasetSpec:
    return DatasetSpec(iso="spp", dataset=dataset, table=table, title=title, source=source, timezone=TZ,
                       interval_minutes=minutes, first_date=FIRST, pool=POOL, **kw)  # type: ignore[arg-type]


DATASETS: tuple[DatasetSpec, ...] = (
    _spec("lmp_dam", "lmp", "SPP day-ahead LMP by settlement location (hourly)", 60,
          "da-lmp-by-settlement-location DA-LMP-SL", market="DAM", params={"route": "da", "family": DA_LMP}),
    # the By_Day roll-up of day D is posted about half an hour after D ends; until then (and if it
    # is late) the day's 288 interval files serve
    _spec("lmp_rt5m", "lmp", "SPP real-time balancing market (RTBM) LMP by settlement location (5-minute)", 5,
          "rtbm-lmp-by-location RTBM-LMP-SL / RTBM-LMP-DAILY-SL", market="RT5M", realtime=True,
          publication_lag=timedelta(minutes=40), params={"route": "rt5m", "family": RTBM_LMP}),
    _spec("as_dam", "ancillary_services", "SPP day-ahead market clearing prices for reserves (hourly)", 60,
          "da-mcp DA-MCP", market="DAM", expected_entities={"product": DA_PRODUCTS},
          params={"route": "da", "family": DA_MCP}),
    _spec("as_rt5m", "ancillary_services", "SPP RTBM market clearing prices for reserves (5-minute)", 5,
          "rtbm-mcp RTBM-MCP / RTBM-MCP-DAILY", market="RT5M", realtime=True, publication_lag=timedelta(minutes=40),
          expected_entities={"product": RT_PRODUCTS}, params={"route": "rt5m", "family": RTBM_MCP}),
    # hourly averaged actual load, as the mid-term forecast files carry it for their past 24 hours
    _spec("load_actual", "load", "SPP averaged actual load, hourly (mtlf-vs-actual)", 60,
          "mtlf-vs-actual OP-MTLF (Averaged Actual)", kind="actual", realtime=True,
          publication_lag=timedelta(minutes=15), params={"route": "mtlf", "family": MTLF, "column": "actual"}),
    _spec("load_forecast", "load", "SPP mid-term load forecast (7 days, hourly), every hourly issue", 60,
          "mtlf-vs-actual OP-MTLF (MTLF)", kind="forecast", realtime=True, completeness="vintages",
          model_vintages={"MTLF": Vintages(every_minutes=60)},
          params={"route": "mtlf", "family": MTLF, "column": "forecast"}),
    _spec("fuel_mix", "fuel_mix", "SPP generation mix (5-minute, market + self-committed)", 5,
          "generation-mix-historical GenMix_YYYY / GenMix365_SPP, chart-api gen-mix", realtime=True,
          publication_lag=timedelta(minutes=15), params={"route": "genmix", "family": GENMIX}),
)
