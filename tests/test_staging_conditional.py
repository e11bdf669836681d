"""Raw objects on S3 are created with a conditional put (If-None-Match: *), on the real SeaweedFS.

Immutability must hold when writers race (two task attempts, two workers): the store itself
refuses the second create, so exactly one set of bytes lands. A store that ignores the condition is
detected by a probe and handled by check-then-write with a read-back, which turns a lost race into
an error rather than a silent overwrite; that path is exercised on the same SeaweedFS through a
client whose requests lose the If-None-Match header (botocore's own event hooks).
"""

from __future__ import annotations

import threading
import uuid
from datetime import date

import pytest

from pmp.staging import CONDITIONAL_PROBE_KEY, ImmutableObjectError, S3Store, open_store, raw_key

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_store(staging: str) -> S3Store:
    store = open_store(staging + f"cond-{uuid.uuid4().hex[:6]}/")
    assert isinstance(store, S3Store)
    return store


def _race(store, key: str, payloads: list[bytes]) -> tuple[list[bool], list[Exception]]:
    barrier = threading.Barrier(len(payloads))
    results: list[bool] = []
    errors: list[Exception] = []

    def write(data: bytes) -> None:
        barrier.wait()
        try:
            results.append(store.put(key, data, immutable=True))
        except ImmutableObjectError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_seaweedfs_honours_conditional_puts(s3_store) -> None:
    assert s3_store.conditional_writes() is True
    assert s3_store.exists(CONDITIONAL_PROBE_KEY)  # the probe object, kept so later probes cost one request
    assert s3_store.list("raw/") == []  # never mistaken for a raw document


def test_racing_writers_of_different_bytes_leave_exactly_one(s3_store) -> None:
    for n in range(5):
        key = raw_key("ercot", "lmp_dam", date(2024, 3, 10), f"race-{n}.zip")
        payloads = [f"writer {i} ".encode() * 200 for i in range(6)]
        results, errors = _race(s3_store, key, payloads)
        assert results == [True] and len(errors) == 5, (results, errors)
        assert s3_store.get(key) in payloads
        assert all("never overwritten" in str(e) for e in errors)


def test_racing_writers_of_the_same_bytes_all_succeed_once(s3_store) -> None:
    key = raw_key("ercot", "lmp_dam", date(2024, 3, 10), "same.zip")
    results, errors = _race(s3_store, key, [b"identical"] * 6)
    assert errors == [] and sorted(results) == [False] * 5 + [True]
    assert s3_store.get(key) == b"identical"


def _drop_if_none_match(params: dict, **_: object) -> None:
    params.pop("IfNoneMatch", None)


def test_store_ignoring_the_condition_falls_back_to_check_then_write(s3_store, caplog) -> None:
    import boto3
    from botocore.config import Config

    from pmp import airflow_settings

    conn = airflow_settings.connections()["pmp_s3"]
    client = boto3.client("s3", endpoint_url=conn["extra"]["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id=conn["login"], aws_secret_access_key=conn["password"],
                          config=Config(s3={"addressing_style": "path"}))
    client.meta.events.register("provide-client-params.s3.PutObject", _drop_if_none_match)
    store = S3Store(s3_store.url, _client=client)
    assert store.conditional_writes() is False
    assert "ignores conditional puts" in caplog.text
    key = raw_key("nyiso", "lmp_dam", date(2024, 3, 10), "doc.csv")
    assert store.put(key, b"v1", immutable=True) is True
    assert store.put(key, b"v1", immutable=True) is False
    with pytest.raises(ImmutableObjectError, match="never overwritten"):
        store.put(key, b"v2", immutable=True)
    assert store.get(key) == b"v1"
