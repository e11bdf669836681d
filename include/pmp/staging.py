"""Staging store for raw payloads and normalized Parquet: ``file://`` or ``s3://``.

Layout (one home for every key):
  raw/{iso}/{dataset}/{yyyy}/{mm}/{dd}/{document}            immutable, written once
  normalized/{iso}/{dataset}/{yyyy}/{mm}/{dd}/{name}.parquet  derived, may be rewritten

Raw files are immutable: writing different bytes to an existing raw key is an error (a revised
publication has its own document name); writing identical bytes is a no-op, so re-runs are safe.
A re-download of a document whose bytes differ from the raw file already staged under its name (the
first download was truncated or drifted and failed normalize; the ISO re-served it complete) is
staged beside it under its content hash, ``raw/.../{dd}/{sha256[:16]}/{document}`` (:func:`put_raw`):
the first bytes stay as they were, and the retry loads the new ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from pmp.settings import settings
from pmp.validate import redact_url, setting

log = logging.getLogger(__name__)

class ImmutableObjectError(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_name(document: str) -> str:
    """A remote document name as one key component: path separators and control characters become
    ``_``, a name of dots only (``..``) and leading dots are escaped. Names come from ISOs (ERCOT's
    API ``friendlyName``, a listing's link text): ``../../x`` must not leave its day's folder of a
    ``file://`` stage or address another S3 key. Ordinary names are unchanged (keys stay stable)."""
    name = _UNSAFE.sub("_", document)
    if name.startswith("."):
        name = "_" + name.lstrip(".")
    return name or "_"


def raw_key(iso: str, dataset: str, day: date, document: str) -> str:
    return f"raw/{iso}/{dataset}/{day:%Y/%m/%d}/{safe_name(document)}"


def content_key(key: str, data: bytes) -> str:
    """The raw key of bytes that differ from those already at ``key``: the same document name, in a
    folder named after the bytes' content hash (one key per distinct content, never an overwrite)."""
    head, _, name = key.rpartition("/")
    return f"{head}/{sha256(data)[:16]}/{name}"


def put_raw(store: Store, key: str, data: bytes) -> tuple[str, bool]:
    """Stage raw bytes at ``key``, or at :func:`content_key` when ``key`` holds other bytes; the key
    used and whether bytes were written (identical bytes at either key: nothing is written)."""
    try:
        return key, store.put(key, data, immutable=True)
    except ImmutableObjectError:
        other = content_key(key, data)
        log.warning("raw %s already holds other bytes (an earlier download); staging this one at %s", key, other)
        return other, store.put(other, data, immutable=True)


def normalized_key(iso: str, dataset: str, day: date, name: str) -> str:
    return f"normalized/{iso}/{dataset}/{day:%Y/%m/%d}/{name}.parquet"


class Store(Protocol):
    url: str

    def uri(self, key: str) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def put(self, key: str, data: bytes, *, immutable: bool) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...


def _check_immutable(key: str, existing: bytes, data: bytes) -> bool:
    if existing == data:
        return False
    raise ImmutableObjectError(
        f"raw object {key} already exists with different content "
        f"(sha256 {sha256(existing)[:12]} != {sha256(data)[:12]}); raw files are never overwritten"
    )


@dataclass
class FileStore:
    url: str

    @property
    def root(self) -> Path:
        return Path(urlparse(self.url).path)

    def uri(self, key: str) -> str:
        return self.url.rstrip("/") + "/" + key

    def _path(self, key: str) -> Path:
        path = self.root / key
        if ".." in Path(key).parts or not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"staging key {key!r} leaves the stage {self.url}")
        return path

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def put(self, key: str, data: bytes, *, immutable: bool) -> bool:
        """Write atomically; returns True when bytes were written."""
        path = self._path(key)
        if immutable and path.exists():
            return _check_immutable(key, path.read_bytes(), data)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if immutable:
            try:
                os.link(tmp, path)  # fails if another writer won the race
            except FileExistsError:
                os.unlink(tmp)
                return _check_immutable(key, path.read_bytes(), data)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
        return True

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())


@dataclass
class S3Store:
    url: str
    conn_id: str | None = None
    _client: Any = None

    @property
    def bucket(self) -> str:
        return urlparse(self.url).netloc

    @property
    def prefix(self) -> str:
        p = urlparse(self.url).path.strip("/")
        return f"{p}/" if p else ""

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(self.conn_id)
        return self._client

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def put(self, key: str, data: bytes, *, immutable: bool) -> bool:
        """Write ``data``; returns True when bytes were written.

        An immutable (raw) object is created with a conditional put (``If-None-Match: *``): the
        store itself refuses to replace an existing key, so two writers racing on one key cannot
        both win, and the loser compares bytes (identical: a no-op re-run; different: an error).
        Stores that ignore the condition (probed once per bucket, :meth:`conditional_writes`) get
        check-then-write plus a read-back, which turns a lost race into an error instead of a
        silent overwrite.
        """
        if not immutable:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
            return True
        if not self.conditional_writes():
            if self.exists(key):
                return _check_immutable(key, self.get(key), data)
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
            _check_immutable(key, self.get(key), data)  # another writer's bytes landed after ours
            return True
        for attempt in range(5):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, IfNoneMatch="*")
                return True
            except Exception as exc:
                code = _error_code(exc)
                if code in _PRECONDITION_FAILED:
                    return _check_immutable(key, self.get(key), data)
                if code not in _CONDITIONAL_CONFLICT or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))  # a concurrent conditional write is in flight: retry
        raise AssertionError("unreachable")  # pragma: no cover

    def conditional_writes(self) -> bool:
        """Whether the store honours ``If-None-Match: *`` on PUT (AWS S3 does since 2024-08,
        SeaweedFS does): one probe object per bucket and prefix, written at most twice, cached
        for the life of the process."""
        cache_key = (id(self.client), self.bucket, self.prefix)
        with _CLIENTS_LOCK:
            known = _CONDITIONAL.get(cache_key)
        if known is not None:
            return known
        probe = self.prefix + CONDITIONAL_PROBE_KEY
        honoured = False
        for _ in range(2):  # absent: the first put creates it and the second must be refused
            try:
                self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"pmp", IfNoneMatch="*")
            except Exception as exc:
                code = _error_code(exc)
                if code in _PRECONDITION_FAILED:
                    honoured = True
                    break
                if code in _NOT_IMPLEMENTED:
                    break
                raise
        if not honoured:
            log.warning(
                "S3 store %s ignores conditional puts (If-None-Match): raw objects are written with "
                "check-then-write and verified by reading them back", self.url,
            )
        with _CLIENTS_LOCK:
            _CONDITIONAL[cache_key] = honoured
        return honoured

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents", []))
        return sorted(keys)


# Kept by the conditional-write probe (S3Store.conditional_writes); never a raw key.
CONDITIONAL_PROBE_KEY = "_pmp/conditional-put-probe"
_PRECONDITION_FAILED = {"PreconditionFailed", "412"}
_CONDITIONAL_CONFLICT = {"ConditionalRequestConflict", "409"}
_NOT_IMPLEMENTED = {"NotImplemented", "501"}

_CLIENTS: dict[tuple[str | None, str], Any] = {}
_CONDITIONAL: dict[tuple[int, str, str], bool] = {}
_CLIENTS_LOCK = threading.Lock()


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def s3_client(conn_id: str | None) -> Any:
    """The boto3 S3 client of the provider's ``S3Hook`` for an Airflow AWS connection
    (``endpoint_url``, ``config_kwargs``, role assumption… as the amazon provider reads them).

    Without that connection: ``PMP_S3_ENDPOINT`` names an S3-compatible endpoint for the default
    credential chain, otherwise ``S3Hook(aws_conn_id=None)`` uses the default chain itself (an MWAA
    execution role, instance profile, ``AWS_*`` variables). Clients are thread-safe and costly to
    build (~0.5 s), so one is kept per connection (as configured now) for the life of the process.
    """
    from pmp.connections import get_connection

    conn = get_connection(conn_id) if conn_id else None
    endpoint = (setting("PMP_S3_ENDPOINT") or "") if conn is None else ""
    key = (conn_id, conn.get_uri() if conn is not None else endpoint)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            if endpoint:
                import boto3

                _CLIENTS[key] = boto3.client("s3", endpoint_url=endpoint)
            else:
                from airflow.providers.amazon.aws.hooks.s3 import S3Hook

                _CLIENTS[key] = S3Hook(aws_conn_id=conn_id if conn is not None else None).conn
        return _CLIENTS[key]


def open_store(url: str | None = None, conn_id: str | None = None) -> Store:
    cfg = settings()
    url = url or cfg.staging_url
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileStore(url)
    if scheme == "s3":
        return S3Store(url, conn_id or cfg.s3_conn_id)
    raise ValueError(f"unsupported staging URL {redact_url(url)!r}: use file:///path or s3://bucket/prefix")
