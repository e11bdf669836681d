"""ERCOT entries of the dataset registry.

``params["annual"]`` names the annual hub and load-zone file of a report (MIS report type, EMIL
id, FriendlyName stem ``<STEM>_YYYY``): the route for history days when the Public API cannot
serve them (see :mod:`pmp.isos.ercot.adapter`).
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp.registry import DatasetSpec

POOL = "ercot_api"
TZ = "America/Chicago"

DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        iso="ercot", dataset="lmp_dam", table="lmp", bulk_processor=True, market="DAM",
        title="ERCOT day-ahead settlement point prices (hourly)", source="NP4-190-CD",
        timezone=TZ, interval_minutes=60, first_date=date(2019, 1, 1), pool=POOL,
        params={"rtid": 12331, "emil": "NP4-190-CD", "stem": "DAMSPNP4190", "mis_retention_days": 31,
                "doc_day": "publish_plus_1", "query": "np4-190-cd/dam_stlmnt_pnt_prices",
                "annual": {"rtid": 13060, "emil": "NP4-180-ER", "stem": "DAMLZHBSPP"}},
    ),
    DatasetSpec(
        iso="ercot", dataset="lmp_rt15m", table="lmp", bulk_processor=True, market="RT15M",
        title="ERCOT real-time settlement point prices (15-minute)", source="NP6-905-CD",
        timezone=TZ, interval_minutes=15, first_date=date(2019, 1, 1), pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=20),
        params={"rtid": 12301, "emil": "NP6-905-CD", "stem": "SPPHLZNP6905", "mis_retention_days": 7,
                "doc_day": "name_interval_end", "query": "np6-905-cd/spp_node_zone_hub",
                "annual": {"rtid": 13061, "emil": "NP6-785-ER", "stem": "RTMLZHBSPP"}},
    ),
    DatasetSpec(
        iso="ercot", dataset="lmp_rt5m", table="lmp", bulk_processor=True, market="RT5M",
        title="ERCOT SCED LMPs by settlement point (5-minute)", source="NP6-788-CD",
        timezone=TZ, interval_minutes=5, first_date=date(2019, 1, 1), pool=POOL, realtime=True,
        publication_lag=timedelta(minutes=15),
        params={"rtid": 12300, "emil": "NP6-788-CD", "stem": "LMPSROSNODENP6788", "mis_retention_days": 5,
                "doc_day": "name_run_time", "query": "np6-788-cd/lmp_node_zone_hub"},
    ),
)
