"""Shared HTTP client behaviour for ISO hooks: pacing, retries, and secret-free errors."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth

from pmp import lineage, metrics
from pmp.validate import redact_url  # scheme, host, port, path: no credentials or query strings

log = logging.getLogger(__name__)

USER_AGENT = "power-market-pipeline/0.1 (+https://github.com/power-market-pipeline)"
MAX_RETRY_AFTER = 120.0  # seconds: a longer Retry-After fails at once (Airflow retries the task later)


class IsoHttpError(RuntimeError):
    """An ISO endpoint answered with an error. The message never contains credentials."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Pacer:
    """At most ``per_minute`` calls in any rolling minute, process-wide per instance.

    Airflow pools bound concurrency across workers; this bounds the request rate inside one
    task, so a task never trips the ISO's limit on its own.
    """

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            metrics.timing("pmp.rate_limit_waits", delay * 1000, reason="pacer")
            time.sleep(delay)


_PRIORITY: ContextVar[bool] = ContextVar("pmp_pacer_realtime", default=False)


@contextmanager
def realtime_priority() -> Iterator[None]:
    """Within this block the ISO's :class:`SharedPacer` serves this caller before any history
    caller (the real-time DAG's task runs in it: :class:`pmp.operators.RealtimeIngestOperator`)."""
    token = _PRIORITY.set(True)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


class SharedPacer(Pacer):
    """At least ``interval`` seconds between two requests of *every* hook on this machine that
    names the same ``scope`` (e.g. ``"ercot-api https://api.ercot.com"``), real-time callers first.

    An Airflow pool bounds how many tasks run at once, not how fast they call: four tasks of a
    4-slot pool, each pacing itself to the ISO's limit, would together send four times too much.
    Each task runs in its own process, so the time of the last request lives in a small file
    under an exclusive lock (threads of one process share a lock too). The time is stamped when
    the request is *sent*; ``margin`` seconds are added to absorb network jitter between our
    sending and the ISO's counting. Deployments with several worker machines divide the ISO's
    limit between them (the connection's rate extra), since a lock file is per machine.

    Priority: a real-time caller (inside :func:`realtime_priority`) holds a shared lock on a second
    file (``….realtime``) while it waits for its turn; a history caller takes the next request
    only when it is due *and* no real-time caller is waiting, and sleeps outside every lock, so a
    real-time request waits at most for the one history request already being sent, never behind
    a queue of history requests. History gets every slot real time leaves unused (no share of the
    rate sits idle while history loads).
    """

    def __init__(self, interval: float, scope: str, *, margin: float = 0.0) -> None:
        super().__init__(None)
        self.min_interval = max(0.0, interval + margin) if interval > 0 else 0.0
        digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
        self.path = Path(tempfile.gettempdir()) / f"pmp-pacer-{digest}"
        self.realtime_path = self.path.with_name(self.path.name + ".realtime")
        self._thread_lock = threading.Lock()

    @classmethod
    def per_minute(cls, per_minute: float | None, scope: str, *, margin: float = 0.0) -> SharedPacer:
        return cls(60.0 / per_minute if per_minute else 0.0, scope, margin=margin)

    def wait(self) -> None:
        if not self.min_interval:
            return
        if _PRIORITY.get():
            with open(self.realtime_path, "a+b") as waiting:
                fcntl.flock(waiting, fcntl.LOCK_SH)  # "a real-time caller waits": history steps aside
                self._take(realtime=True)
            return
        waited = 0.0
        while (delay := self._take(realtime=False)) > 0:
            waited += delay
            time.sleep(delay)  # outside every lock: a real-time caller can take the next request
        if waited:
            metrics.timing("pmp.rate_limit_waits", waited * 1000, reason="pacer")

    def _realtime_waiting(self) -> bool:
        with open(self.realtime_path, "a+b") as waiting:
            try:
                fcntl.flock(waiting, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    def _take(self, *, realtime: bool) -> float:
        """Stamp the next request as ours and return 0, or (history only) return how long to sleep
        before trying again. A real-time caller sleeps here, holding the lock, until it is due."""
        with self._thread_lock, open(self.path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
            fh.seek(0)
            try:
                last = float(fh.read() or 0)
            except ValueError:
                last = 0.0
            # clamped: a wall clock stepped backwards must not stall every process for the step
            delay = min(last + self.min_interval - time.time(), self.min_interval)
            if not realtime:
                if delay > 0:
                    return delay
                if self._realtime_waiting():
                    return max(0.01, self.min_interval / 10)  # its turn first; then ours is due
            elif delay > 0:
                metrics.timing("pmp.rate_limit_waits", delay * 1000, reason="pacer")
                time.sleep(delay)
            fh.seek(0)
            fh.truncate()
            fh.write(repr(time.time()).encode())
            fh.flush()
            return 0.0


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    pacer: Pacer,
    what: str,
    max_attempts: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 60.0,
    on_unauthorized: Callable[[], Mapping[str, str]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> requests.Response:
    """One logical request with retries on 429 (Retry-After honoured), 5xx and connection errors.

    ``on_unauthorized`` lets a hook refresh its token once on a 401 and retry with new headers.
    Other 4xx answers fail at once with a message naming the endpoint (never the query or headers).
    """
    safe = redact_url(url)
    refreshed = False
    last: str = ""
    for attempt in range(1, max_attempts + 1):
        pacer.wait()
        sent = time.monotonic()
        try:
            resp = session.request(method, url, timeout=timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            # a body cut mid-transfer (urllib3 ProtocolError: IncompleteRead, connection reset) is
            # a transient failure like a refused connection: retried, never returned as a short body
            metrics.incr("pmp.http_requests", status="error")
            last = f"{type(exc).__name__}"
            if attempt == max_attempts:
                break
            delay = min(max_backoff, backoff * 2 ** (attempt - 1))
            log.warning("%s: %s on %s (attempt %d/%d), retrying in %.1fs", what, last, safe, attempt,
                        max_attempts, delay)
            sleep(delay)
            continue
        metrics.incr("pmp.http_requests", status=resp.status_code)
        metrics.timing("pmp.http_request_latency", (time.monotonic() - sent) * 1000, status=resp.status_code)
        if resp.status_code == 401 and on_unauthorized and not refreshed:
            refreshed = True
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **on_unauthorized()}
            log.info("%s: 401 from %s, refreshed credentials and retrying", what, safe)
            continue
        if resp.status_code == 429 or resp.status_code >= 500:
            last = f"HTTP {resp.status_code}"
            if attempt == max_attempts:
                break
            delay = min(max_backoff, backoff * 2 ** (attempt - 1))
            try:  # the ISO says when its window reopens: wait that long (a shorter wait burns an attempt)
                delay = max(float(resp.headers["Retry-After"]), 0.0)
            except (KeyError, ValueError):
                pass
            if delay > MAX_RETRY_AFTER:  # never sleep for minutes holding the ISO's pool slot
                raise IsoHttpError(f"{what}: {last} from {safe} asks to wait {delay:.0f}s; giving up this "
                                   "attempt (the task is retried later)", resp.status_code)
            log.warning("%s: %s from %s (attempt %d/%d), retrying in %.1fs", what, last, safe, attempt,
                        max_attempts, delay)
            if resp.status_code == 429:
                metrics.timing("pmp.rate_limit_waits", delay * 1000, reason="retry_after")
            sleep(delay)
            continue
        if resp.status_code >= 400:
            raise IsoHttpError(f"{what}: HTTP {resp.status_code} from {safe}: {safe_snippet(resp)}",
                               resp.status_code)
        if method.upper() == "GET":
            lineage.read_url(url)  # an input of the fetch step's lineage (pmp.lineage)
        return resp
    raise IsoHttpError(f"{what}: giving up after {max_attempts} attempts on {safe} (last: {last})")


SNIPPET_CHARS = 80
_SECRETISH = re.compile(r"(?i)(key|token|secret|password|passwd|pwd|auth|sig|signature|credential)"
                        r"([\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;<>]+")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/_\-.=]{24,}")  # bearer tokens, JWTs, keys


def safe_snippet(resp: requests.Response) -> str:
    """At most :data:`SNIPPET_CHARS` characters of an error body, for an error message: tags and
    URLs' query strings dropped, ``key=…``/``token: …`` values and long token-like strings replaced,
    then the secrets masker applied (an ISO that echoes the request's key or a session cookie in
    its 4xx page must not put it into a log or a task's error)."""
    text = resp.text[:4096] if resp.content else ""
    text = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"(https?://[^\s?#\"'<>]*)[?#][^\s\"'<>]*", r"\1", text)
    text = _SECRETISH.sub(r"\1\2***", text)
    text = _LONG_TOKEN.sub("***", text)
    text = " ".join(text.split())
    try:
        from airflow.sdk._shared.secrets_masker import redact

        text = str(redact(text))
    except ImportError:  # pragma: no cover - Airflow is a hard dependency
        pass
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "") if text else "(empty body)"


class HostBoundBasicAuth(requests.auth.AuthBase):
    """HTTP Basic credentials sent only to the origin (scheme, host, port) of ``base_url``.

    ``session.auth = (login, password)`` sends them with every request of the session, also to an
    absolute link of a listing page that points at another host; this refuses those (requests
    already drops the header on a redirect to another host)."""

    def __init__(self, login: str, password: str, base_url: str) -> None:
        self._basic = requests.auth.HTTPBasicAuth(login, password)
        self.origin = _origin(base_url)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if _origin(r.url or "") == self.origin:
            return self._basic(r)
        log.info("not sending credentials to %s (they are for %s://%s)", redact_url(r.url or ""), *self.origin[:2])
        return r


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def last_modified(headers: Any) -> datetime | None:
    """A response's ``Last-Modified`` as a UTC datetime (None when absent or unreadable): the
    publication time the file-tree ISOs (NYISO, MISO, SPP) give for each document."""
    value = headers.get("Last-Modified")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None
