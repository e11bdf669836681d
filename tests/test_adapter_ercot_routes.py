"""Every ERCOT dataset through the history routes of the adapter (the Python path), against the
simulator over real HTTP: the API archive reaches each product's first day (2019-01-01, or
2025-12-05 for NP6-331-CD), monthly bundles serve every report, fuel mix resolves to its workbook."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from pmp import registry
from pmp.isos.ercot.adapter import ADAPTER, normalize_dataset, report_day, report_of, reports
from pmp.isos.ercot.normalize import published_at_from_name
from pmp.payload import iter_members, leaf_name
from pmp.timeutil import market_day_bounds

CT = "America/Chicago"
CSV_DATASETS = ["lmp_dam", "lmp_rt15m", "lmp_rt5m", "as_dam", "as_rt15m", "load_actual", "load_forecast"]
ENTITY = {"lmp": "location", "ancillary_services": "product", "load": "area"}


def _normalized(spec, docs) -> pa.Table:
    return pa.concat_tables([normalize_dataset(spec.dataset, d.name, d.payload, d.ref.published) for d in docs])


def _assert_day_exact(spec, table: pa.Table, day: date) -> None:
    start, end = market_day_bounds(day, CT)
    df = table.to_pandas()
    if spec.completeness == "vintages":
        issued = df["forecast_issued_at"].unique()
        assert len(issued) == 24 and all(start <= t < end for t in issued)
        return
    for minutes in sorted({int(x.total_seconds() // 60) for x in df["interval_end"] - df["interval_start"]}):
        part = df[(df["interval_end"] - df["interval_start"] == timedelta(minutes=minutes))
                  & (df["interval_start"] >= start) & (df["interval_start"] < end)]
        expected = int((end - start) / timedelta(minutes=minutes))
        per_entity = part.groupby(ENTITY[spec.table])["interval_start"].nunique()
        assert set(per_entity) == {expected}, (spec.key, minutes, per_entity.to_dict())
        assert len(part) == expected * len(per_entity)


@pytest.mark.parametrize("dataset", CSV_DATASETS)
def test_api_archive_reaches_the_first_day(use_simulator, dataset: str) -> None:
    spec = registry.get("ercot", dataset)
    sim = use_simulator()  # wall clock: the first day is years out of MIS
    start, end = market_day_bounds(spec.first_date, CT)
    hook = ADAPTER.hook()
    refs = ADAPTER.discover(spec, start, end, hook=hook)
    assert refs and {r.route for r in refs} == {"archive"}
    assert {r.market_day for r in refs} == {spec.first_date.isoformat()}
    docs = list(ADAPTER.fetch(spec, refs, hook=hook))
    assert sorted(d.ref.doc_id for d in docs) == sorted(r.doc_id for r in refs)  # one raw file per document
    _assert_day_exact(spec, _normalized(spec, docs), spec.first_date)
    downloads = [p for _, p in sim.requests if p.endswith("/download")]
    assert len(downloads) == len(reports(spec))  # one bulk POST per report (<= 1,000 documents each)


@pytest.mark.parametrize("dataset", CSV_DATASETS)
def test_monthly_bundles_serve_every_dataset(use_simulator, dataset: str) -> None:
    """Discovery picks the bundle of every posting month the day's documents can be in. The
    light bundles are downloaded and normalized here; a month of SCED, 15-minute price or
    hourly forecast files is tens of MB (their download is the same call, see the hook tests)."""
    spec = registry.get("ercot", dataset)
    use_simulator(extra={"ercot_default": {"archive_bundles": True}})
    day = spec.first_date + timedelta(days=14)
    start, end = market_day_bounds(day, CT)
    hook = ADAPTER.hook()
    refs = ADAPTER.discover(spec, start, end, hook=hook)
    assert {r.route for r in refs} == {"bundle"}
    month = f"{day:%Y-%m}"
    assert sorted(r.name for r in refs) == sorted(f"{rep['stem']}_{month}.zip" for rep in reports(spec))
    if dataset in ("lmp_rt15m", "lmp_rt5m", "load_forecast"):
        return
    docs = list(ADAPTER.fetch(spec, refs, hook=hook))
    assert [d.name for d in docs] == [r.name for r in refs]
    # the bundle is one raw document; normalize the members of the day (a month of 15-minute
    # files takes a minute, not what a unit test should spend)
    tables = []
    for d in docs:
        rep = report_of(spec, d.name)
        members = list(iter_members(d.name, d.payload))
        assert len(members) >= 28 * (1 if rep["doc_day"].startswith("publish") else 24)
        for path, data in members:
            if report_day(rep["doc_day"], leaf_name(path), published_at_from_name(path)) == day:
                tables.append(normalize_dataset(spec.dataset, path, data))
    _assert_day_exact(spec, pa.concat_tables(tables), day)


def test_bundles_fall_back_to_the_archive_listing_when_a_month_is_missing(use_simulator) -> None:
    spec = registry.get("ercot", "as_dam")
    sim = use_simulator(extra={"ercot_default": {"archive_bundles": True}})
    sim.set_faults({"ercot_no_bundles": 1})
    start, end = market_day_bounds(date(2021, 2, 15), CT)
    refs = ADAPTER.discover(spec, start, end, hook=ADAPTER.hook())
    assert [r.route for r in refs] == ["archive"]


def test_fuel_mix_history_resolves_to_the_annual_workbook(use_simulator) -> None:
    spec = registry.get("ercot", "fuel_mix")
    use_simulator()
    hook = ADAPTER.hook()
    start, end = market_day_bounds(date(2019, 1, 1), CT)
    (ref,) = ADAPTER.discover(spec, start, end, hook=hook)
    assert (ref.route, ref.name) == ("workbook", "IntGenbyFuel2019_20200107.xlsx")  # the final 2019 posting
    assert ref.doc_id == "files/docs/2020/01/07/IntGenbyFuel2019.xlsx" and ref.market_day == "2019-01-01"


def test_fuel_mix_day_not_yet_in_any_source_fails_clearly(use_simulator) -> None:
    spec = registry.get("ercot", "fuel_mix")
    use_simulator(now=datetime(2024, 4, 20, 18, tzinfo=UTC))
    start, end = market_day_bounds(date(2024, 4, 10), CT)  # after the April posting, before yesterday
    with pytest.raises(RuntimeError, match="not in IntGenbyFuel2024 yet"):
        ADAPTER.discover(spec, start, end, hook=ADAPTER.hook())


def test_days_before_the_first_day_are_refused(use_simulator) -> None:
    spec = registry.get("ercot", "as_rt15m")
    use_simulator()
    start, end = market_day_bounds(date(2025, 6, 1), CT)
    with pytest.raises(RuntimeError, match="before the product's first day 2025-12-05"):
        ADAPTER.discover(spec, start, end, hook=ADAPTER.hook())


# ------------------------------------------------------------------ annual hub / load-zone files
ANNUAL_NOW = datetime(2019, 2, 20, 18, tzinfo=UTC)  # the 2019 files were last re-posted Monday 2019-02-18


def test_annual_file_serves_history_without_api_credentials(use_simulator, caplog) -> None:
    """No Public API credentials: a day older than MIS comes from NP4-180-ER (MIS, no auth), one
    document for the month, the same values as the DAM report for the hubs and load zones."""
    from pmp.simulator import ercot as simulator

    spec = registry.get("ercot", "lmp_dam")
    sim = use_simulator(now=ANNUAL_NOW, extra={"ercot_default": {"subscription_key": ""}})
    hook = ADAPTER.hook()
    assert not hook.api_configured
    day = date(2019, 1, 5)
    caplog.set_level(logging.INFO, logger="pmp.isos.ercot.adapter")
    (ref,) = ADAPTER.discover(spec, *market_day_bounds(day, CT), hook=hook)
    assert (ref.route, ref.market_day) == ("annual", "2019-01-01")
    assert ref.name.endswith(".DAMLZHBSPP_2019.month-2019-01.zip") and ref.doc_id.endswith("@2019-01")
    assert "the Public API is not configured" in caplog.text and "no resource nodes" in caplog.text
    (doc,) = ADAPTER.fetch(spec, [ref], hook=hook)
    table = normalize_dataset(spec.dataset, doc.name, doc.payload, ref.published)
    assert table.num_rows == 31 * 24 * 15  # January only (the file holds up to 2019-02-17)
    assert set(table.column("published_at").to_pylist()) == {ref.published}
    start, end = market_day_bounds(day, CT)
    rows = [r for r in table.to_pylist() if start <= r["interval_start"] < end]
    assert len(rows) == 24 * 15
    for r in rows:  # the simulator's hourly DAM price of that hub or zone
        assert r["lmp"] == simulator.price("DAM", r["location"], r["interval_start"]), r
    assert not any("/ercot/api/" in p for _, p in sim.requests), "no Public API call without credentials"


def test_annual_file_when_the_api_archive_has_nothing(use_simulator, caplog) -> None:
    spec = registry.get("ercot", "as_dam")
    sim = use_simulator(now=ANNUAL_NOW)
    sim.set_faults({"ercot_no_archive": -1})
    hook = ADAPTER.hook()
    caplog.set_level(logging.INFO, logger="pmp.isos.ercot.adapter")
    day = date(2019, 1, 6)
    (ref,) = ADAPTER.discover(spec, *market_day_bounds(day, CT), hook=hook)
    assert ref.route == "annual" and ref.name.endswith(".DAMASMCPC_2019.month-2019-01.zip")
    assert "the Public API archive has nothing for it" in caplog.text
    (doc,) = ADAPTER.fetch(spec, [ref], hook=hook)
    table = normalize_dataset(spec.dataset, doc.name, doc.payload, ref.published)
    _assert_day_exact(spec, table, day)
    assert set(table.column("product").to_pylist()) == {"REGDN", "REGUP", "RRS", "NSPIN"}  # no ECRS in 2019


def test_annual_file_missing_for_the_year_fails_clearly(use_simulator) -> None:
    """On 2019-01-01 MIS holds no day older than the first one and the first 2019 file is only
    posted the next Monday: without API credentials the run says what is missing."""
    spec = registry.get("ercot", "lmp_rt15m")
    use_simulator(now=datetime(2019, 1, 1, 18, tzinfo=UTC), extra={"ercot_default": {"subscription_key": ""}})
    start, end = market_day_bounds(date(2019, 1, 1), CT)
    with pytest.raises(RuntimeError, match=r"MIS lists no annual file RTMLZHBSPP_2019 \(NP6-785-ER, report type 13061"):
        ADAPTER.discover(spec, start, end, hook=ADAPTER.hook())
