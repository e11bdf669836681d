"""SPP's monthly history DAG end to end with ``dag.test()``: simulator (marketplace files over real
HTTP) -> SeaweedFS -> TimescaleDB. One run takes a whole month (one request per daily file; the
generation mix cut from one archive download), checks and reports every market day, the DST days
(23 and 25 hours) included, and a re-run does not duplicate a row (:mod:`pmp.history`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import FALL_MONTH, SPRING_MONTH, assert_history_month

from pmp import history, registry

pytestmark = pytest.mark.integration

NOW = datetime(2024, 11, 8, 18, tzinfo=UTC)
# dataset -> a month holding a DST day (tests/helpers.py)
MONTHS = {"lmp_dam": SPRING_MONTH, "fuel_mix": FALL_MONTH}


@pytest.mark.parametrize("dataset", sorted(MONTHS))
def test_a_month_in_one_run_checked_day_by_day_and_rerun_without_duplicates(env, dagbag, private_warehouse, dataset: str) -> None:
    first, dst_day, dst_hours = MONTHS[dataset]
    sim = env["sim"](now=NOW)
    spec = registry.get("spp", dataset)
    assert history.has_history_dag(spec)
    days = assert_history_month(dagbag, private_warehouse, spec, first, dst_day, dst_hours)
    got = [p for m, p in sim.requests if m == "GET" and "/spp/" in p]
    if dataset == "fuel_mix":  # every day cut from the archives, each downloaded once a run (and re-run)
        archives = [p for p in got if "GenMix" in p]
        assert archives and len(archives) == 2 * len(set(archives)) <= 4, archives
    else:  # one day-ahead file per operating day, downloaded once a run (and once by the re-run)
        for day in days:
            assert sum(f"{day:%Y%m%d}" in p for p in got) == 2, day
