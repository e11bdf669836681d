"""Bulk history routes: one run per calendar month for the days beyond the recent window.

A daily run pays task start-up, scheduling and pacing once per market day; where an ISO serves
history in bulk (NYISO's monthly ``_csv.zip`` archives: one download holds every day of the month)
a run per market day downloads the same archive again for each of its days. An ISO adapter that
declares ``history_window = "month"`` gets, besides its daily DAGs, a monthly history DAG per
dataset (``<iso>_<dataset>_history``, :func:`pmp.factory.build_history`): the same tasks over a
month's data interval, so discovery lists every day of the month, ``fetch`` downloads each archive
once for all of them, and ``check`` checks and reports each market day it covers (a failed day
fails the run, naming the day). Where the ISO serves one document per day (CAISO's trade-day
queries, ISO-NE's reports, MISO's and SPP's daily files, PJM's LMP queries) the requests stay per
day and within the ISO's pacing, and the monthly run still pays task start-up and scheduling once a
month instead of once a day; bulk answers are used where the ISO has them (NYISO's zips, ERCOT's
archive, PJM's range queries of the feeds it keeps whole).

Which DAG runs which days when they catch up (``PMP_CATCHUP=true``): the history DAG the whole
months before :func:`cutoff` (the first of the month that holds the first day of the recent window:
those archives are complete), the daily DAG every market day from the cutoff (today's growing
files, a partial current-month archive, late revisions). The cutoff moves forward a month at a
time, so each month is taken by the history DAG once it is old. With ``PMP_CATCHUP=false`` (local
demos, tests) both DAGs keep the dataset's first day and either can be backfilled over any range.
"""

from __future__ import annotations

from datetime import date, timedelta

from pmp import registry
from pmp.registry import DatasetSpec

# Days before today that keep one run per market day: NYISO hosts its daily CSVs for about a week
# (reference 4.1; gridstatus takes the daily CSV within the last 7 days, the archive otherwise).
RECENT_DAYS = 7


def has_history_dag(spec: DatasetSpec) -> bool:
    """Whether ``spec``'s ISO serves history in monthly bulk (its adapter's ``history_window``)."""
    return getattr(registry.adapter(spec.iso), "history_window", None) == "month"


def archive_runs(spec: DatasetSpec) -> bool:
    """Whether one download serves every day of a history run (``history_archives`` of the adapter:
    NYISO's monthly zip; or a method of the dataset deciding per dataset: PJM's range queries), so
    a run's requests do not grow with its days."""
    archives = getattr(registry.adapter(spec.iso), "history_archives", False)
    return bool(archives(spec) if callable(archives) else archives)


def docs_per_request(spec: DatasetSpec) -> int:
    """Documents one download request of a history run carries (``history_docs_per_request`` of the
    adapter: ERCOT's Public API archive takes 1,000 document ids a request; default one)."""
    return max(1, int(getattr(registry.adapter(spec.iso), "history_docs_per_request", 1)))


def cutoff(spec: DatasetSpec, today: date) -> date:
    """The first market day the daily DAG catches up (history DAG: whole months before it)."""
    recent = today - timedelta(days=RECENT_DAYS)
    return max(spec.first_date, recent.replace(day=1))


def history_dag_id(spec: DatasetSpec) -> str:
    return f"{spec.iso}_{spec.dataset}_history"
