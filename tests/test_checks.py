"""Completeness checks (``pmp.checks``) against the real TimescaleDB.

Rows are written with plain COPY into a database of this module's own (created like the
``warehouse`` fixture), so the days hold exactly what each test says. Each CAISO rule is shown
failing on the incomplete day and passing on the complete one; the same data checked by a spec
without the new fields passes, which is how every ISO that does not opt in keeps behaving.
Expected counts are written out by hand from the day's length (23 / 24 / 25 hours).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from conftest import RUN_ID
from psycopg import sql

from pmp import checks, registry
from pmp.registry import DatasetSpec, Vintages

pytestmark = pytest.mark.integration

PT = ZoneInfo("America/Los_Angeles")
SPRING, NORMAL, FALL = date(2024, 3, 10), date(2024, 6, 4), date(2024, 11, 3)
HOURS = {SPRING: 23, NORMAL: 24, FALL: 25}
AS_REGIONS = ("AS_CAISO", "AS_CAISO_EXP", "AS_NP26", "AS_NP26_EXP", "AS_SP26", "AS_SP26_EXP")
AS_PRODUCTS = ("NR", "RD", "RMD", "RMU", "RU", "SR")
HUBS = ("TH_NP15_GEN-APND", "TH_SP15_GEN-APND", "TH_ZP26_GEN-APND")
MIN, HOUR = timedelta(minutes=1), timedelta(hours=1)


@pytest.fixture(scope="module")
def dsn(services: dict) -> Iterator[str]:
    from conftest import migrated_database

    with migrated_database(f"pmp_checks_{RUN_ID}") as url:
        yield url


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn) as c:
        for table in ("lmp", "ancillary_services", "load", "fuel_mix"):
            c.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        c.commit()
        yield c


def insert(conn: psycopg.Connection, table: str, rows: list[dict]) -> None:
    cols = list(rows[0])
    q = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, cols)))
    with conn.cursor() as cur, cur.copy(q) as copy:
        for r in rows:
            copy.write_row([r[c] for c in cols])
    conn.commit()


def delete(conn: psycopg.Connection, table: str, where: str, *params: object) -> None:
    conn.execute(sql.SQL("DELETE FROM {} WHERE ").format(sql.Identifier(table)) + sql.SQL(where), params)
    conn.commit()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), PT).astimezone(UTC)


def starts(day: date, minutes: int) -> list[datetime]:
    return [day_start(day) + i * minutes * MIN for i in range(HOURS[day] * 60 // minutes)]


def check(conn: psycopg.Connection, spec: DatasetSpec, day: date) -> checks.DayCheck:
    result = checks.check_day(conn, spec, day)
    conn.commit()
    return result


def spec(dataset: str) -> DatasetSpec:
    return registry.get("caiso", dataset)


# ---------------------------------------------------------------- load_forecast: per-model vintages
def forecast_rows(day: date) -> list[dict]:
    """The vintages CAISO issues on ``day`` (two areas): DAM/2DA/7DA at 09:10 PT for their target
    day, RTPD every 15 minutes (22.5 min before its interval), RTD every 5 (2.5 min before)."""
    rows = []

    def add(model: str, issued: datetime, start: datetime, minutes: int) -> None:
        for area in ("SYSTEM", "PGE-TAC"):
            rows.append({"interval_start": start, "interval_end": start + minutes * MIN, "iso": "CAISO",
                         "area": area, "kind": "forecast", "forecast_issued_at": issued, "model": model,
                         "load_mw": 25000.0, "source": f"{model}.zip"})

    nine_ten = datetime.combine(day, time(9, 10), PT)
    for model, ahead in (("DAM", 1), ("2DA", 2), ("7DA", 7)):
        target = day + timedelta(days=ahead)
        for i in range(24):
            add(model, nine_ten, day_start(target) + i * HOUR, 60)
    for i in range(HOURS[day] * 4):  # issued at :07:30, :22:30, ... - every one also an RTD issue time
        issued = day_start(day) + 7.5 * MIN + i * 15 * MIN
        add("RTM_RTPD", issued, issued + 22.5 * MIN, 15)
    for i in range(HOURS[day] * 12):  # issued at :02:30, :07:30, ...
        issued = day_start(day) + 2.5 * MIN + i * 5 * MIN
        add("RTM_RTD", issued, issued + 2.5 * MIN, 5)
    return rows


@pytest.mark.parametrize("day", [SPRING, FALL])
def test_load_forecast_counts_each_model_on_its_own(conn, day: date) -> None:
    s, h = spec("load_forecast"), HOURS[day]
    insert(conn, "load", forecast_rows(day))
    complete = check(conn, s, day)
    assert complete.complete, complete.problems
    assert complete.vintages_by_model == {"7DA": (1, 1), "2DA": (1, 1), "DAM": (1, 1),
                                          "RTM_RTPD": (h * 4, h * 4), "RTM_RTD": (h * 12, h * 12)}
    assert (complete.vintages, complete.expected_vintages) == (h * 16 + 3, h * 16 + 3)
    assert json.loads(json.dumps(complete.to_dict()))["vintages_by_model"]["RTM_RTD"] == [h * 12, h * 12]

    # one RTPD run lost: only that model is short
    delete(conn, "load", "model = 'RTM_RTPD' AND forecast_issued_at = %s", day_start(day) + 7.5 * MIN)
    one_short = check(conn, s, day)
    assert one_short.problems == [f"RTM_RTPD: {h * 4 - 1}/{h * 4} forecast vintages issued"]
    assert f"RTM_RTPD {h * 4 - 1}/{h * 4}" in one_short.summary()

    # the audit's day: only RTD arrived. RTD issue times alone make one per 5 minutes, so the old
    # total count (vintage_minutes=5) calls it complete; counted per model it is not.
    delete(conn, "load", "model <> 'RTM_RTD'")
    rtd_only = check(conn, s, day)
    assert not rtd_only.complete
    assert rtd_only.problems == ["7DA: 0/1 forecast vintages issued", "2DA: 0/1 forecast vintages issued",
                                 "DAM: 0/1 forecast vintages issued",
                                 f"RTM_RTPD: 0/{h * 4} forecast vintages issued"]
    total_count = dataclasses.replace(s, model_vintages={}, vintage_minutes=5)
    assert check(conn, total_count, day).complete  # the hole this rule closes


# ---------------------------------------------------------------- as_dam: a product that never arrived
def as_rows(day: date) -> list[dict]:
    return [{"interval_start": t, "interval_end": t + HOUR, "iso": "CAISO", "market": "DAM", "region": region,
             "product": product, "clearing_price": 4.12, "source": f"PRC_AS_DAM_{product}.zip"}
            for t in starts(day, 60) for region in AS_REGIONS for product in AS_PRODUCTS]


def test_as_dam_reports_a_missing_product(conn) -> None:
    s = spec("as_dam")
    insert(conn, "ancillary_services", as_rows(FALL))
    complete = check(conn, s, FALL)
    assert complete.complete, complete.problems
    assert [(r.minutes, r.intervals, r.expected_intervals, r.entities) for r in complete.resolutions] == [
        (60.0, 25, 25, 36)]
    # the RMU request answered "no data" (fetch logs and skips it): every interval is still there
    # for the other 30 entities, so counting entities from what is present would pass
    delete(conn, "ancillary_services", "product = 'RMU'")
    missing = check(conn, s, FALL)
    assert missing.problems == ["60min rows: no product RMU"]
    assert check(conn, dataclasses.replace(s, expected_entities={}), FALL).complete


# ---------------------------------------------------------------- load_actual: both resolutions
def actual_rows(day: date) -> list[dict]:
    rows = []
    for minutes, areas in ((60, ("SYSTEM", "PGE-TAC", "SCE-TAC")), (5, ("SYSTEM",))):
        for t in starts(day, minutes):
            for area in areas:
                end = t + minutes * MIN
                rows.append({"interval_start": t, "interval_end": end, "iso": "CAISO", "area": area,
                             "kind": "actual", "forecast_issued_at": end, "model": "", "load_mw": 21000.0,
                             "source": "SLD_FCST.zip" if minutes == 60 else "outlook_demand.csv"})
    return rows


def test_load_actual_needs_the_hourly_and_the_5_minute_source(conn) -> None:
    s = spec("load_actual")
    insert(conn, "load", actual_rows(SPRING))
    complete = check(conn, s, SPRING)
    assert complete.complete, complete.problems
    assert {r.minutes: (r.intervals, r.entities) for r in complete.resolutions} == {60.0: (23, 3), 5.0: (276, 1)}

    # the Outlook demand file never arrived: the hourly rows alone are a complete 60-minute series
    delete(conn, "load", "interval_end - interval_start = interval '5 minutes'")
    hourly_only = check(conn, s, SPRING)
    assert hourly_only.problems == ["no 5-minute intervals"]
    assert check(conn, dataclasses.replace(s, required_resolutions=()), SPRING).complete

    # both resolutions, but the hourly answer lacks the system total (CA ISO-TAC)
    insert(conn, "load", [r for r in actual_rows(SPRING) if r["interval_end"] - r["interval_start"] == 5 * MIN])
    delete(conn, "load", "area = 'SYSTEM' AND interval_end - interval_start = interval '1 hour'")
    no_total = check(conn, s, SPRING)
    assert no_total.problems == ["60min rows: no area SYSTEM"]


# ---------------------------------------------------------------- LMP: named hubs, and a minimum count
def lmp_rows(day: date, nodes: tuple[str, ...]) -> list[dict]:
    return [{"interval_start": t, "interval_end": t + HOUR, "iso": "CAISO", "market": "DAM", "location": node,
             "lmp": 30.0, "source": "PRC_LMP.zip"} for t in starts(day, 60) for node in nodes]


def test_lmp_needs_the_trading_hubs_and_a_minimum_count(conn) -> None:
    s = spec("lmp_dam")
    insert(conn, "lmp", lmp_rows(NORMAL, (*HUBS, "DLAP_PGAE-APND", "AFPR_1_TOT_GEN-APND")))
    assert check(conn, s, NORMAL).complete
    at_least = dataclasses.replace(s, expected_entities={"location": 6})
    assert check(conn, at_least, NORMAL).problems == ["60min rows: 5 distinct location, expected at least 6"]
    assert check(conn, dataclasses.replace(s, expected_entities={"location": 5}), NORMAL).complete
    delete(conn, "lmp", "location = 'TH_ZP26_GEN-APND'")
    assert check(conn, s, NORMAL).problems == ["60min rows: no location TH_ZP26_GEN-APND"]


# ---------------------------------------------------------------- registry validation (no database)
@pytest.mark.parametrize(("fields", "message"), [
    ({"model_vintages": {"A": Vintages(per_day=1)}}, "model_vintages needs completeness 'vintages'"),
    ({"completeness": "vintages", "vintage_minutes": 5, "model_vintages": {"A": Vintages(per_day=1)}}, "not both"),
    ({"completeness": "vintages", "expected_entities": {"area": ("SYSTEM",)}}, "need completeness 'intervals'"),
    ({"expected_entities": {"zone": ("X",)}}, "unknown column 'zone'"),
    ({"expected_entities": {"area": "SYSTEM"}}, "tuple of values or a count"),
])
def test_registry_refuses_inconsistent_completeness_fields(fields: dict, message: str) -> None:
    base = dict(iso="test", dataset="d", table="load", kind="actual", title="t", source="s", timezone="UTC",
                interval_minutes=60, first_date=NORMAL, pool="p")
    with pytest.raises(ValueError, match=message):
        DatasetSpec(**{**base, **fields})


def test_vintage_rule_scales_with_the_day() -> None:
    assert [Vintages(every_minutes=15).expected(h) for h in (23, 24, 25)] == [92, 96, 100]
    assert Vintages(per_day=3).expected(25) == 3
    with pytest.raises(ValueError, match="exactly one"):
        Vintages(per_day=1, every_minutes=5)
    with pytest.raises(ValueError, match="exactly one"):
        Vintages()
