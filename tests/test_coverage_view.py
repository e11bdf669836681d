"""The coverage and freshness view (pmp.coverage, pmp.coverage_view): what the daily and real-time
checks record, and the page the plugin serves. In a real browser through a real Airflow:
tests/test_browser.py."""

from __future__ import annotations

import re
from datetime import date, timedelta

import psycopg
import pytest
from helpers import run_daily

from pmp import checks, coverage, db, pipeline, registry
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

DAY, HOLE = date(2024, 3, 12), date(2024, 3, 13)


@pytest.fixture
def client():
    from fastapi.testclient import TestClient

    from pmp.coverage_view import app, authorized

    # signed in: the sign-in itself is the api-server's (tests/test_browser.py checks it there, with a
    # real token and the UI's cookie); these tests read what the pages show
    app.dependency_overrides[authorized] = lambda: None
    yield TestClient(app)
    app.dependency_overrides.clear()


def _cell(page: str, dataset: str, day: date) -> tuple[str, str]:
    block = page.split(f'<div class="ds" data-dataset="{dataset}">', 1)[1].split('<div class="ds"', 1)[0]
    m = re.search(rf'<span class="d (\w+)" data-day="{day}" title="([^"]*)"', block)
    assert m, f"no cell for {dataset} {day}"
    return m.group(1), m.group(2)


def test_checks_are_recorded_and_shown_day_by_day(env, private_warehouse, dagbag, client) -> None:
    spec = registry.get("ercot", "lmp_dam")
    env["sim"]()
    run_daily(dagbag, spec, DAY)  # its check task records the day
    run_daily(dagbag, spec, HOLE)
    start, _ = market_day_bounds(HOLE, spec.timezone)
    gone = start + timedelta(hours=5)
    with psycopg.connect(private_warehouse) as conn:  # an interval lost after the load
        conn.execute("DELETE FROM lmp WHERE iso = 'ERCOT' AND market = 'DAM' AND interval_start = %s", (gone,))
    with pytest.raises(pipeline.IncompleteDataError):
        pipeline.check(spec.key, *(t.isoformat() for t in market_day_bounds(HOLE, spec.timezone)))
    with db.connect_ready() as conn:
        (row,) = [r for r in coverage.grid(conn, "ercot", DAY, HOLE + timedelta(days=1)) if r.spec == spec]
        expected = {d.day: d for d in checks.check_days(conn, spec, [DAY, HOLE])}  # the checks themselves
    assert {c.day.isoformat(): c.status for c in row.cells.values()} == {
        d: coverage.status_of(c) for d, c in expected.items()} == {DAY.isoformat(): "complete",
                                                                   HOLE.isoformat(): "partial"}
    assert row.cells[HOLE].missing == [gone.strftime("%Y-%m-%dT%H:%MZ")]

    page = client.get("/coverage", params={"iso": "ercot"})
    assert page.status_code == 200 and "Coverage and freshness" in page.text
    assert _cell(page.text, "lmp_dam", DAY)[0] == "complete"
    status, tip = _cell(page.text, "lmp_dam", HOLE)
    assert status == "partial" and gone.strftime("%Y-%m-%dT%H:%MZ") in tip and "23/24" in tip
    assert _cell(page.text, "lmp_dam", DAY - timedelta(days=1))[0] == "unchecked"
    assert page.text.count('class="ds"') == len(registry.datasets("ercot"))
    # every year since the dataset's first day: 2019 .. this year
    assert re.search(r'<span class="yl">2019</span>', page.text)
    data = client.get("/coverage.json", params={"iso": "ercot", "start": "2024-03-01", "end": "2024-04-01"}).json()
    assert data["datasets"]["lmp_dam"][HOLE.isoformat()]["missing"] == [gone.strftime("%Y-%m-%dT%H:%MZ")]


def test_realtime_checks_record_freshness(private_warehouse, client) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    with pytest.raises(pipeline.IncompleteDataError):
        pipeline.check("ercot.fuel_mix", now, now, realtime=True)  # nothing loaded: stale
    with db.connect_ready() as conn:
        fresh = {f.spec.dataset: f for f in coverage.freshness(conn, "ercot")}
    assert set(fresh) == {s.dataset for s in registry.datasets("ercot") if s.realtime}
    assert fresh["fuel_mix"].checked_at is not None and fresh["fuel_mix"].newest is None
    assert fresh["lmp_rt5m"].checked_at is None  # never checked
    page = client.get("/coverage", params={"iso": "ercot"}).text
    assert '<table id="freshness">' in page and 'data-dataset="fuel_mix"' in page


def test_unknown_iso_and_bad_span_are_clear_errors(client) -> None:
    r = client.get("/coverage", params={"iso": "ercott"})
    assert r.status_code == 404 and "unknown ISO 'ercott'" in r.text
    r = client.get("/coverage", params={"iso": "ercot", "start": "2024-03-02", "end": "2024-03-01"})
    assert r.status_code == 400


def test_the_view_needs_a_signed_in_user() -> None:
    from fastapi.testclient import TestClient

    from pmp.coverage_view import app

    anonymous = TestClient(app)
    for path in ("/coverage?iso=ercot", "/coverage.json?iso=ercot"):
        resp = anonymous.get(path)
        assert resp.status_code == 401 and resp.json()["detail"] == "Not authenticated", (path, resp.text)


def test_the_plugin_mounts_the_view_and_adds_it_to_the_navigation() -> None:
    from pmp.coverage_view import app
    from pmp.plugin import PmpPlugin

    assert PmpPlugin.fastapi_apps == [{"app": app, "url_prefix": "/pmp", "name": "PMP coverage and freshness"}]
    (view,) = PmpPlugin.external_views
    assert view["href"] == "/pmp/coverage" and view["destination"] == "nav"
