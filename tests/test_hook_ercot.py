"""ErcotHook against the simulator over real HTTP: MIS, B2C token, API archive, retries, secrets."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import UTC, datetime

import pytest

from pmp.http import IsoHttpError
from pmp.isos.ercot.hook import ErcotHook

NOW = datetime(2024, 11, 5, 18, tzinfo=UTC)


def test_mis_list_and_download(use_simulator) -> None:
    use_simulator(now=NOW)
    hook = ErcotHook()
    docs = hook.list_documents(12331)
    csv_docs = [d for d in docs if d["FriendlyName"].endswith("_csv")]
    assert csv_docs and all(d["ConstructedName"].endswith(".csv.zip") for d in csv_docs)
    payload = hook.download_document(csv_docs[0]["DocID"])
    names = zipfile.ZipFile(io.BytesIO(payload)).namelist()
    assert names == [csv_docs[0]["ConstructedName"].removesuffix(".zip")]


def test_api_token_archive_and_bulk_download(use_simulator) -> None:
    sim = use_simulator()
    hook = ErcotHook()
    listed = hook.archive_list("NP4-190-CD", "2024-03-08T00:00:00", "2024-03-09T23:59:59")
    assert len(listed) == 2
    bundle = hook.archive_download("NP4-190-CD", [str(a["docId"]) for a in listed])
    outer = zipfile.ZipFile(io.BytesIO(bundle))
    assert sorted(outer.namelist()) == sorted(f"{a['docId']}.zip" for a in listed)
    token_calls = [p for _, p in sim.requests if "oauth2" in p]
    assert len(token_calls) == 1, "the token is reused for an hour"


def test_rate_limit_429_is_retried(use_simulator) -> None:
    sim = use_simulator()
    sim.set_faults({"rate_limit": 2})
    hook = ErcotHook()
    assert hook.archive_list("NP4-190-CD", "2024-03-08T00:00:00", "2024-03-08T23:59:59")
    api_calls = [p for _, p in sim.requests if "/archive/" in p]
    assert len(api_calls) == 3  # two 429s, then the answer


def test_server_errors_retried_then_clear_failure(use_simulator) -> None:
    sim = use_simulator(now=NOW)
    sim.set_faults({"server_error": 1})
    assert ErcotHook().list_documents(12331)
    sim.set_faults({"server_error": -1})
    with pytest.raises(IsoHttpError, match=r"giving up after \d+ attempts on http://127\.0\.0\.1:\d+/ercot/www/misapp"):
        ErcotHook().list_documents(12331)


def test_expired_token_is_refreshed(use_simulator) -> None:
    sim = use_simulator()
    hook = ErcotHook()
    hook.archive_list("NP4-190-CD", "2024-03-08T00:00:00", "2024-03-08T23:59:59")
    sim.set_faults({"token_expired": 1})
    assert hook.archive_list("NP4-190-CD", "2024-03-08T00:00:00", "2024-03-08T23:59:59")
    assert len([p for _, p in sim.requests if "oauth2" in p]) == 2


def test_credentials_never_in_errors_or_logs(use_simulator, monkeypatch, caplog) -> None:
    from conftest import ercot_conn

    sim = use_simulator()
    conn = ercot_conn(sim.url)
    conn["password"] = "wrong-password-123"
    conn["extra"]["subscription_key"] = "secret-key-456"
    monkeypatch.setenv("AIRFLOW_CONN_ERCOT_DEFAULT", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IsoHttpError) as err:
        ErcotHook().archive_list("NP4-190-CD", "2024-03-08T00:00:00", "2024-03-08T23:59:59")
    text = str(err.value) + caplog.text
    assert "wrong-password-123" not in text and "secret-key-456" not in text
    assert "B2C token" in str(err.value)
