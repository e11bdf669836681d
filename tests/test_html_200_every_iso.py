"""An HTML page served with 200 instead of the document, for every ISO (issue 14): the run fails
with an error naming the URL the page came from, nothing is staged in the raw stage and nothing is
loaded; the next run (a task retry) downloads the document and loads the day.

The simulator's ``html_200:<path>`` fault answers the document's own URL with its maintenance page
(listings, tokens and HEADs answer as usual), so each ISO's hook or the pipeline's payload check,
not a listing parser, is what meets the page."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import psycopg
import pytest

from pmp import pipeline, registry
from pmp.staging import open_store
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

DAY = date(2024, 11, 3)  # the fall-back day (25 hours)
# the URL of each ISO's day-ahead LMP document, as served by the simulator (prefix + real path)
DOCUMENTS = {
    "ercot": "/ercot/www/misdownload/servlets/mirDownload",
    "caiso": "/caiso/oasis/oasisapi/SingleZip",
    "nyiso": "/nyiso/mis/public/csv/damlbmp/20241103damlbmp_",
    "isone": "/isone/www/static-transform/csv/histRpts/da-lmp/WW_DALMP_ISO_20241103.csv",
    "pjm": "/pjm/api/api/v1/da_hrl_lmps",
    "miso": "/miso/docs/marketreports/20241103_da_expost_lmp.csv",
    "spp": "/spp/portal/file-browser-api/download/da-lmp-by-settlement-location",
}


@pytest.fixture
def stage(staging: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    monkeypatch.setenv("PMP_STAGING_URL", f"{staging}{request.node.name.replace('/', '_')}/")
    return staging


def _rows(dsn: str, spec: registry.DatasetSpec) -> int:
    start, end = market_day_bounds(DAY, spec.timezone)
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM lmp WHERE iso = %s AND market = %s AND interval_start >= %s"
                            " AND interval_start < %s", (spec.iso.upper(), spec.market, start, end)).fetchone()[0]


@pytest.mark.parametrize("iso", sorted(DOCUMENTS))
def test_html_page_with_200_instead_of_the_document(iso: str, private_warehouse: str, stage: str,
                                                    use_simulator) -> None:
    sim = use_simulator(now=datetime(2024, 11, 5, 18, tzinfo=UTC),
                        extra={"caiso_default": {"min_request_interval_seconds": 5}})
    spec = registry.get(iso, "lmp_dam")
    start, end = (t.isoformat() for t in market_day_bounds(DAY, spec.timezone))
    path = DOCUMENTS[iso]
    sim.set_faults({f"html_200:{path}": -1})
    with pytest.raises(Exception) as failed:  # each ISO its own error type: the message is what is checked
        pipeline.run_window(spec.key, start, end)
    message = str(failed.value)
    assert re.search(r"html", message, re.IGNORECASE), message
    assert f"{sim.url}{path}" in message, message  # names the URL, without its query string
    assert "?" not in message.split(sim.url, 1)[1].split()[0], message
    assert "<" not in message, message  # no markup of the page
    assert any(path in p for _, p in sim.requests), "the document was asked for"
    assert open_store().list(f"raw/{iso}/") == [], "nothing staged"
    assert _rows(private_warehouse, spec) == 0
    sim.set_faults({f"html_200:{path}": 0})
    pipeline.run_window(spec.key, start, end)  # the retry downloads the document itself
    assert _rows(private_warehouse, spec) > 0
    assert open_store().list(f"raw/{iso}/"), "the document is staged"
