"""Staging stores: the same contract on file:// and on the real S3 endpoint (SeaweedFS)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from pmp.staging import ImmutableObjectError, normalized_key, open_store, raw_key


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return open_store(tmp_path.as_uri() + "/")
    url = request.getfixturevalue("staging")
    return open_store(url + f"store-{uuid.uuid4().hex[:6]}/")


def test_layout() -> None:
    assert raw_key("ercot", "lmp_dam", date(2024, 3, 10), "a.csv.zip") == "raw/ercot/lmp_dam/2024/03/10/a.csv.zip"
    assert normalized_key("ercot", "lmp_dam", date(2024, 3, 10), "x") == "normalized/ercot/lmp_dam/2024/03/10/x.parquet"


def test_raw_objects_are_immutable(store) -> None:
    key = raw_key("ercot", "lmp_dam", date(2024, 3, 10), "doc.csv.zip")
    assert store.put(key, b"v1", immutable=True) is True
    assert store.put(key, b"v1", immutable=True) is False  # identical re-run: no-op
    with pytest.raises(ImmutableObjectError, match="never overwritten"):
        store.put(key, b"v2", immutable=True)
    assert store.get(key) == b"v1"
    assert store.exists(key) and not store.exists(key + ".missing")


def test_normalized_objects_can_be_rewritten_and_listed(store) -> None:
    key = normalized_key("ercot", "lmp_dam", date(2024, 3, 10), "batch")
    store.put(key, b"a", immutable=False)
    store.put(key, b"b", immutable=False)
    assert store.get(key) == b"b"
    assert store.list("normalized/ercot/") == [key]
    assert store.uri(key).endswith(key)
