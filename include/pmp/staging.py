"""Staging store for raw payloads and normalized Parquet: ``file://`` or ``s3://``.

Layout (one home for every key):
  raw/{iso}/{dataset}/{yyyy}/{mm}/{dd}/{document}            immutable, written once
  normalized/{iso}/{dataset}/{yyyy}/{mm}/{dd}/{name}.parquet  derived, may be rewritten

Raw files are immutable: writing different bytes to an existing raw key is an error (a revised
publication has its own document name); writing identical bytes is a no-op, so re-runs are safe.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from pmp.settings import settings


class ImmutableObjectError(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_key(iso: str, dataset: str, day: date, document: str) -> str:
    return f"raw/{iso}/{dataset}/{day:%Y/%m/%d}/{document}"


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
        return self.root / key

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
        if immutable and self.exists(key):
            return _check_immutable(key, self.get(key), data)
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)
        return True

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents", []))
        return sorted(keys)


_CLIENTS: dict[tuple[str | None, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def s3_client(conn_id: str | None) -> Any:
    """boto3 S3 client from an Airflow AWS connection (endpoint_url honoured) or the default chain.

    Clients are thread-safe and costly to build (~0.5 s), so one is kept per connection (as
    configured now) for the life of the process.
    """
    from pmp.connections import get_connection

    conn = get_connection(conn_id) if conn_id else None
    key = (conn_id, conn.get_uri() if conn is not None else os.environ.get("PMP_S3_ENDPOINT", ""))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            if conn is not None:
                from airflow.providers.amazon.aws.hooks.s3 import S3Hook

                _CLIENTS[key] = S3Hook(aws_conn_id=conn_id).get_conn()
            else:
                import boto3

                _CLIENTS[key] = boto3.client("s3", endpoint_url=os.environ.get("PMP_S3_ENDPOINT") or None)
        return _CLIENTS[key]


def open_store(url: str | None = None, conn_id: str | None = None) -> Store:
    cfg = settings()
    url = url or cfg.staging_url
    scheme = urlparse(url).scheme
    if scheme == "file":
        return FileStore(url)
    if scheme == "s3":
        return S3Store(url, conn_id or cfg.s3_conn_id)
    raise ValueError(f"unsupported staging URL {url!r}: use file:///path or s3://bucket/prefix")
