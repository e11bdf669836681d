"""NYISO entries of the dataset registry.

Every dataset reads one or two NYISO MIS file families (``params["files"]``): the directory under
``/public/csv/``, the file suffix after ``YYYYMMDD`` and the P-list index page that lists the
family's daily CSVs and monthly ``_csv.zip`` archives with their "Last Updated" times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pmp.registry import DatasetSpec

POOL = "nyiso_mis"
TZ = "America/New_York"  # NYISO labels everything in Eastern prevailing time
FIRST = date(2019, 1, 1)


@dataclass(frozen=True)
class FileFamily:
    """One NYISO MIS file family: ``/public/csv/{directory}/{YYYYMMDD}{suffix}.csv``."""

    directory: str
    suffix: str
    page: str  # P-list index page id, e.g. "P-2A" -> /public/P-2Alist.htm

    def daily_name(self, day: date) -> str:
        return f"{day:%Y%m%d}{self.suffix}.csv"

    def monthly_name(self, day: date) -> str:
        return f"{day:%Y%m}01{self.suffix}_csv.zip"


DAMLBMP_ZONE = FileFamily("damlbmp", "damlbmp_zone", "P-2A")
DAMLBMP_GEN = FileFamily("damlbmp", "damlbmp_gen", "P-2B")
REALTIME_ZONE = FileFamily("realtime", "realtime_zone", "P-24A")
REALTIME_GEN = FileFamily("realtime", "realtime_gen", "P-24B")
RTLBMP_ZONE = FileFamily("rtlbmp", "rtlbmp_zone", "P-4A")
RTLBMP_GEN = FileFamily("rtlbmp", "rtlbmp_gen", "P-4B")
DAMASP = FileFamily("damasp", "damasp", "P-5")
RTASP = FileFamily("rtasp", "rtasp", "P-6B")
PAL = FileFamily("pal", "pal", "P-58B")
PAL_INTEGRATED = FileFamily("palIntegrated", "palIntegrated", "P-58C")
ISOLF = FileFamily("isolf", "isolf", "P-7")
RTFUELMIX = FileFamily("rtfuelmix", "rtfuelmix", "P-63")

FAMILIES: tuple[FileFamily, ...] = (
    DAMLBMP_ZONE, DAMLBMP_GEN, REALTIME_ZONE, REALTIME_GEN, RTLBMP_ZONE, RTLBMP_GEN,
    DAMASP, RTASP, PAL, PAL_INTEGRATED, ISOLF, RTFUELMIX,
)


def _spec(dataset: str, table: str, title: str, minutes: int, files: tuple[FileFamily, ...], **kw: object) -> DatasetSpec:
    return DatasetSpec(
        iso="nyiso", dataset=dataset, table=table, title=title,
        source=" + ".join(f"{f.suffix} ({f.page})" for f in files),
        timezone=TZ, interval_minutes=minutes, first_date=FIRST, pool=POOL,
        params={"files": files}, **kw,  # type: ignore[arg-type]
    )


DATASETS: tuple[DatasetSpec, ...] = (
    _spec("lmp_dam", "lmp", "NYISO day-ahead LBMP, zones and generators (hourly)", 60,
          (DAMLBMP_ZONE, DAMLBMP_GEN), market="DAM"),
    _spec("lmp_rt5m", "lmp", "NYISO real-time (RTD) LBMP, zones and generators (5-minute)", 5,
          (REALTIME_ZONE, REALTIME_GEN), market="RT5M", realtime=True, publication_lag=timedelta(minutes=10)),
    # rtlbmp is rewritten about five minutes after each hour: the */5 DAG loads each new version
    _spec("lmp_rt60m", "lmp", "NYISO real-time hourly integrated LBMP, zones and generators", 60,
          (RTLBMP_ZONE, RTLBMP_GEN), market="RT60M", realtime=True, publication_lag=timedelta(minutes=15)),
    _spec("as_dam", "ancillary_services", "NYISO day-ahead ancillary service prices (hourly)", 60,
          (DAMASP,), market="DAM"),
    _spec("as_rt5m", "ancillary_services", "NYISO real-time ancillary service prices (5-minute)", 5,
          (RTASP,), market="RT5M", realtime=True, publication_lag=timedelta(minutes=10)),
    _spec("load_actual", "load", "NYISO actual load by zone: 5-minute (pal) and hourly integrated", 5,
          (PAL, PAL_INTEGRATED), kind="actual", realtime=True, publication_lag=timedelta(minutes=15)),
    # isolf is issued once a day at about 05:45: the */5 DAG loads it when P-7list shows the new
    # version, instead of the daily run after the issue day has ended
    _spec("load_forecast", "load", "NYISO ISO load forecast by zone (hourly, one vintage per issue)", 60,
          (ISOLF,), kind="forecast", completeness="vintages", vintages_per_day=1, realtime=True),
    _spec("fuel_mix", "fuel_mix", "NYISO real-time generation by fuel category (5-minute)", 5,
          (RTFUELMIX,), realtime=True, publication_lag=timedelta(minutes=10)),
)
