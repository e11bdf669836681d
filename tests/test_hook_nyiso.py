"""NyisoHook and the adapter's routes against the simulator over real HTTP: P-list pages, daily CSVs,
monthly zips, pacing, retries, 404s, and credentials that never leak."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest

from pmp import registry
from pmp.http import IsoHttpError
from pmp.isos.nyiso.adapter import ADAPTER
from pmp.isos.nyiso.hook import NyisoHook
from pmp.payload import PayloadError
from pmp.simulator import nyiso

NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)  # 13:00 EST


def test_listing_and_download(use_simulator) -> None:
    use_simulator(now=NOW)
    hook = NyisoHook()
    files = {f.name: f for f in hook.listing("P-58B")}
    today = files["20241105pal.csv"]
    assert today.url.endswith("/nyiso/mis/public/csv/pal/20241105pal.csv")
    assert NOW - timedelta(minutes=5) < today.last_updated <= NOW
    payload, modified = hook.download(today.url, "pal")
    assert modified == today.last_updated and payload.startswith(b'"Time Stamp","Time Zone","Name"')
    archive, _ = hook.download(hook.monthly_url("damlbmp", "damlbmp_zone", date(2024, 10, 9)), "DAM archive")
    assert len(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == 31


def test_rate_limit_429_is_retried_after_retry_after(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    sim.set_faults({"rate_limit": 1})
    started = time.monotonic()
    assert NyisoHook().listing("P-2A")
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 honoured
    assert len([p for _, p in sim.requests if p.endswith("P-2Alist.htm")]) == 2


def test_client_side_pacing(use_simulator) -> None:
    use_simulator(now=NOW, extra={"nyiso_default": {"requests_per_minute": 600}})
    hook = NyisoHook()
    started = time.monotonic()
    for _ in range(6):
        hook.listing("P-63")
    assert time.monotonic() - started >= 0.5  # 600/min = one request per 0.1 s


def test_server_errors_retried_then_clear_failure(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    sim.set_faults({"server_error": 1})
    assert NyisoHook().listing("P-7")
    sim.set_faults({"server_error": -1})
    with pytest.raises(IsoHttpError, match=r"giving up after 5 attempts on http://127\.0\.0\.1:\d+/nyiso/mis/public/P-7list"):
        NyisoHook().listing("P-7")


def test_missing_file_fails_at_once(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    hook = NyisoHook()
    with pytest.raises(IsoHttpError) as err:
        hook.download(hook.daily_url("damlbmp", "damlbmp_zone", date(2024, 9, 1)), "old daily CSV")
    assert err.value.status == 404 and "404" in str(err.value)
    assert len([p for _, p in sim.requests if "20240901" in p]) == 1  # a 404 is not retried


def test_credentials_never_in_errors_or_logs(use_simulator, monkeypatch, caplog) -> None:
    from conftest import sim_conn

    sim = use_simulator(now=NOW)
    conn = sim_conn("nyiso_default", sim.url)
    conn["login"], conn["password"] = "mirror-user", "mirror-secret-789"
    conn["extra"]["mis_base_url"] = conn["extra"]["mis_base_url"].replace("http://", "http://u:url-secret-456@")
    monkeypatch.setenv("AIRFLOW_CONN_NYISO_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    assert NyisoHook().listing("P-2A")  # the mirror credentials work
    sim.set_faults({"server_error": -1})
    with pytest.raises(IsoHttpError) as err:
        NyisoHook().listing("P-2A")
    text = str(err.value) + caplog.text
    assert "mirror-secret-789" not in text and "url-secret-456" not in text and "P-2Alist" in str(err.value)


def test_discover_routes_daily_csv_recent_monthly_zip_history(use_simulator) -> None:
    use_simulator(now=NOW)
    spec = registry.get("nyiso", "lmp_dam")
    hook = ADAPTER.hook()
    day = datetime(2024, 11, 3, 4, tzinfo=UTC)
    recent = ADAPTER.discover(spec, day, day + timedelta(hours=25), hook=hook)
    assert [(r.name, r.route) for r in recent] == [("20241103damlbmp_gen.csv", "csv"), ("20241103damlbmp_zone.csv", "csv")]
    assert all(r.doc_id.startswith(r.name + "@2024110") for r in recent)
    old = datetime(2024, 3, 10, 5, tzinfo=UTC)
    history = ADAPTER.discover(spec, old, old + timedelta(hours=23), hook=hook)
    assert {r.route for r in history} == {"zip"} and history[0].url.endswith("20240301damlbmp_gen_csv.zip")
    docs = list(ADAPTER.fetch(spec, history, hook=hook))
    assert [d.ref.name for d in docs] == ["20240310damlbmp_gen.csv", "20240310damlbmp_zone.csv"]
    assert all(d.name.startswith("20240310damlbmp_") and d.name.endswith(".csv") for d in docs)
    assert all(d.payload.startswith(b"Time Stamp,Name,PTID") for d in docs)  # the member, byte for byte
    # the member's own time is the publication time (D-1 about 10:30 local)
    assert docs[0].ref.published.astimezone(UTC).date() == date(2024, 3, 9)


def test_realtime_discovery_and_404_fallback_to_archive(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    spec = registry.get("nyiso", "lmp_rt5m")
    hook = ADAPTER.hook()
    refs = ADAPTER.discover(spec, NOW - timedelta(minutes=30), NOW, hook=hook, realtime=True)
    assert sorted(r.name for r in refs) == ["20241105realtime_gen.csv", "20241105realtime_zone.csv"]
    daily = ADAPTER.discover(spec, datetime(2024, 11, 3, 4, tzinfo=UTC), datetime(2024, 11, 4, 5, tzinfo=UTC),
                             hook=hook)
    sim.set_faults({"nyiso_missing_file": 1})  # listed, then gone: the archive serves the same file
    docs = list(ADAPTER.fetch(spec, daily, hook=hook))
    assert sorted(d.ref.route for d in docs) == ["csv", "zip"]
    assert len({d.payload[:200] for d in docs}) == 2


def test_day_missing_from_partial_archive_fails_the_fetch(use_simulator) -> None:
    use_simulator(now=NOW)
    spec = registry.get("nyiso", "lmp_rt5m")
    hook = ADAPTER.hook()
    ref = ADAPTER.discover(spec, datetime(2024, 11, 3, 4, tzinfo=UTC), datetime(2024, 11, 4, 5, tzinfo=UTC),
                           hook=hook)[0]
    import dataclasses

    today = dataclasses.replace(ref, name="20241105realtime_gen.csv", route="zip",
                                url=hook.monthly_url("realtime", "realtime_gen", date(2024, 11, 5)))
    with pytest.raises(PayloadError, match="partial"):
        list(ADAPTER.fetch(spec, [today], hook=hook))


def test_a_day_with_a_file_missing_is_not_discovered_half(use_simulator) -> None:
    use_simulator(now=NOW)
    spec = registry.get("nyiso", "lmp_rt5m")
    start = datetime(2024, 12, 2, 5, tzinfo=UTC)  # no daily CSV and no December archive yet
    with pytest.raises(RuntimeError, match="20241202realtime_zone.csv is not published yet"):
        ADAPTER.discover(spec, start, start + timedelta(days=1), hook=ADAPTER.hook())


def test_listed_file_without_last_updated_fails_realtime_discovery_loudly(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    spec = registry.get("nyiso", "lmp_rt5m")
    hook = ADAPTER.hook()
    sim.set_faults({"nyiso_bad_listing": 1})  # P-24A shows its times in a format the hook cannot read
    with pytest.raises(RuntimeError) as err:
        ADAPTER.discover(spec, NOW - timedelta(minutes=30), NOW, hook=hook, realtime=True)
    message = str(err.value)
    assert "P-24Alist: no parseable 'Last Updated' time in the row of 20241105realtime_zone.csv" in message
    assert "2024-11-05 12:5" in message  # the row as shown on the page
    # a daily run of a final day tolerates it: the download's Last-Modified is the publication time
    sim.set_faults({"nyiso_bad_listing": 2})
    day = datetime(2024, 11, 4, 5, tzinfo=UTC)
    refs = ADAPTER.discover(spec, day, day + timedelta(days=1), hook=hook)
    assert [r.doc_id for r in refs] == ["20241104realtime_gen.csv@unversioned", "20241104realtime_zone.csv@unversioned"]
    docs = list(ADAPTER.fetch(spec, refs, hook=hook))
    final = nyiso.final_time(nyiso.FAMILIES["realtime_zone"], date(2024, 11, 4)).replace(microsecond=0)
    assert docs[1].ref.published == final
