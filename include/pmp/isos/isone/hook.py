"""ISO-NE hook: ISO Express CSVs (session cookie + Referer) and Web Services JSON (HTTP Basic).

Connection ``isone_default`` (type ``isone``):
  * extra.source: ``"csv"`` (default: ISO Express, no account needed) or ``"webservices"`` (the
    Web Services API for the same datasets; needs login/password)
  * login / password: the user's free ISO-NE account (Web Services only)
  * extra.www_base_url (default https://www.iso-ne.com) and extra.ws_base_url (default
    https://webservices.iso-ne.com/api/v1.1): point them at ``pmp simulate`` for offline runs
  * extra.min_request_interval_seconds (default 10: ISO Express puts hammering clients behind a 403
    wall; a third party paced 9-11 s) and extra.ws_min_request_interval_seconds (default 1)
  * extra.retry_backoff_seconds (default 20): back-off unit after a 403 wall (20, 40, 60 s, ...) and
    for 429/5xx retries
  * extra.max_attempts (default 4): attempts per document through 403 walls and non-CSV answers
  * extra.session_reuse_seconds (default 900): how long an ISO Express session (its cookie and the
    report page opened for it) is reused by the next task on this machine after its last use
    (:class:`SessionCache`); 0: every hook opens its own
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pmp.http import IsoHttpError, SharedPacer, redact_url, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection
from pmp.isos.isone.records import is_complete_csv

log = logging.getLogger(__name__)

WWW_BASE_URL = "https://www.iso-ne.com"
WS_BASE_URL = "https://webservices.iso-ne.com/api/v1.1"
# Any ISO Express report page sets the session cookie and serves as the Referer of the downloads.
DEFAULT_REPORT_PAGE = "/isoexpress/web/reports/pricing/-/tree/lmps-da-hourly"
SOURCES = ("csv", "webservices")


class SessionCache:
    """The ISO Express session of this machine's tasks, kept between them.

    Quirk: an ISO Express download needs the session cookie a report page sets and that page as the
    Referer. Each Airflow task runs in a process of its own with a new hook, so without this every
    task opened the page again: two paced requests per document instead of one. With five
    real-time datasets at one request per 10 s, that was 50 s more before the last of a tick's
    documents. The cookie (of a public site: no credential; the file is the owner's only, 0600) and
    the page it was opened with live in a small file per base URL and page; a task reuses them
    while younger than ``reuse_seconds`` since their last use (ISO Express forgets an idle session;
    a */5 task touches it every five minutes). A reused session that ISO Express no longer accepts
    (403) is dropped and a new one opened at once: no back-off for that one.
    """

    def __init__(self, www: str, page: str, reuse_seconds: float) -> None:
        digest = hashlib.sha256(f"{www}\n{page}".encode()).hexdigest()[:16]
        self.path = Path(tempfile.gettempdir()) / f"pmp-isone-session-{digest}.json"
        self.reuse_seconds = reuse_seconds

    def load(self) -> list[dict[str, Any]] | None:
        """The cookies of a session still young enough, or None."""
        if self.reuse_seconds <= 0:
            return None
        try:
            saved = json.loads(self.path.read_text())
            if time.time() - float(saved["used"]) < self.reuse_seconds:
                return list(saved["cookies"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # none yet, or unreadable: open a new session
        return None

    def save(self, cookies: list[dict[str, Any]]) -> None:
        if self.reuse_seconds <= 0:
            return
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"used": time.time(), "cookies": cookies}, fh)
            os.replace(tmp, self.path)  # atomic: a reader sees the old file or the new one
        except OSError as exc:  # a read-only temp dir costs a page request per task, nothing more
            log.debug("ISO Express session not kept: %s", exc)

    def drop(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _cookies(session: Any) -> list[dict[str, Any]]:
    return [{"name": c.name, "value": c.value, "domain": c.domain, "path": c.path} for c in session.cookies]


class IsoneHook(IsoHttpHook):
    conn_name_attr = "isone_conn_id"
    default_conn_name = "isone_default"
    conn_type = "isone"
    hook_name = "ISO New England (ISO Express and Web Services)"
    summary = "ISO Express CSVs (cookie + Referer), or `extra.source: webservices` with the user's account"
    extras = (
        Extra("source", str, "csv", show=True, choices=SOURCES),
        Extra("www_base_url", str, WWW_BASE_URL, show=True),
        Extra("ws_base_url", str, WS_BASE_URL, show=True),
        Extra("min_request_interval_seconds", float, 10.0, show=True, example=10),
        Extra("ws_min_request_interval_seconds", float, 1.0),
        Extra("retry_backoff_seconds", float, 20.0),
        Extra("max_attempts", int, 4),
        Extra("session_reuse_seconds", float, 900.0),
    )
    relabeling = {"login": "Web Services username (email)", "password": "Web Services password"}
    local = LocalConnection(
        comment="ISO-NE: ISO Express CSVs (session cookie + Referer) and, with an account, Web Services "
                '(extra.source "webservices").',
        login="sim-user", password="sim-pass",
        extra={"www_base_url": "{sim}/isone/www", "ws_base_url": "{sim}/isone/ws/api/v1.1", "source": "csv",
               "min_request_interval_seconds": 5, "ws_min_request_interval_seconds": 1,
               "retry_backoff_seconds": 0.5, "session_reuse_seconds": 900},
    )
    pools = {"isone_api": (1, "ISO-NE ISO Express / Web Services (paced; 403 walls when hammered)")}
    # Five real-time datasets: two slots overlap one run's parsing and loading with the next one's
    # request (the shared pacer still spaces ISO Express requests).
    realtime_slots = {"isone_api": 2}

    def __init__(self, isone_conn_id: str = default_conn_name, *, sleep: Callable[[float], None] = time.sleep,
                 **kwargs: Any) -> None:
        super().__init__(isone_conn_id, **kwargs)
        self._sleep = sleep  # the back-off waits (tests pass a recording sleep that still sleeps)
        self._warm_page: str | None = None
        self._reused = False  # the current session came from the SessionCache (not opened by us)

    # -- configuration -------------------------------------------------------------------
    def configure(self) -> dict[str, Any]:
        conn = self.connection
        source = self.extra("source")  # one of SOURCES (checked with the other extras)
        www, ws = self.base_url("www_base_url"), self.base_url("ws_base_url")
        return {
            "source": source,
            "www": www,
            "ws": ws,
            "username": conn.login,
            "password": conn.password,
            # shared by every task on the machine (a history and a real-time task run side by side,
            # each in its own pool): ISO Express's 403 wall counts the client, not the task; real
            # time is served first (pmp.http.SharedPacer)
            "www_pacer": SharedPacer(float(self.extra("min_request_interval_seconds")), f"isone-www {www}"),
            "ws_pacer": SharedPacer(float(self.extra("ws_min_request_interval_seconds")), f"isone-ws {ws}"),
            "backoff": self.extra("retry_backoff_seconds"),
            "max_attempts": self.extra("max_attempts"),
            "session_reuse": float(self.extra("session_reuse_seconds")),
        }

    @property
    def source(self) -> str:
        """The route the adapter uses: ``csv`` (ISO Express) or ``webservices``."""
        return self.cfg["source"]

    @property
    def ws_configured(self) -> bool:
        return bool(self.cfg["username"] and self.cfg["password"])

    # -- ISO Express ---------------------------------------------------------------------
    def _cache(self, page: str) -> SessionCache:
        return SessionCache(self.cfg["www"], page, self.cfg["session_reuse"])

    def _warm_up(self, page: str) -> str:
        """Open a report page: it sets the session cookie, and its URL is the Referer of the download
        (or reuse the session an earlier task opened with it: :class:`SessionCache`)."""
        url = self.cfg["www"] + page
        if self._warm_page != page and (cookies := self._cache(page).load()):
            session = self.get_conn()
            for c in cookies:
                session.cookies.set(c["name"], c["value"], domain=c.get("domain") or "", path=c.get("path") or "/")
            self._warm_page, self._reused = page, True
        if self._warm_page != page:
            try:
                request(self.get_conn(), "GET", url, pacer=self.cfg["www_pacer"], what="ISO Express report page",
                        backoff=self.cfg["backoff"])
            except IsoHttpError as exc:
                if exc.status == 404:  # a wrong page path is a configuration error, not "not published"
                    raise IsoHttpError(f"ISO Express report page {page}: HTTP 404", None) from None
                raise
            self._warm_page, self._reused = page, False
            self._cache(page).save(_cookies(self.get_conn()))
        return url

    def _used(self) -> None:
        """A download went through: the session is good for the next task a while longer."""
        if self._warm_page is not None and self._session is not None:
            self._cache(self._warm_page).save(_cookies(self._session))

    def _reset_session(self) -> bool:
        """Drop the session (and its cached copy); True when it was a reused one (stale, not a wall)."""
        reused = self._reused
        if self._warm_page is not None:
            self._cache(self._warm_page).drop()
        if self._session is not None:
            self._session.close()
        self._session, self._warm_page, self._reused = None, None, False
        return reused

    def _express(self, method: str, path: str, *, what: str, report_page: str, expect_csv: bool,
                 params: dict[str, str] | None = None, data: dict[str, str] | None = None) -> bytes | None:
        """One ISO Express request through the session/Referer dance.

        403 (the wall, or a lost session) -> back off 1x, 2x, 3x ``retry_backoff_seconds`` with a new
        session each time. A 200 that is not what was asked for (an HTML page instead of the CSV, or a
        CSV cut off before its trailer) is retried the same way and never returned. 404 -> None (not
        published yet). 429/5xx/connection errors are retried by :func:`pmp.http.request`.
        """
        c = self.cfg
        url = c["www"] + path
        problem = ""
        for attempt in range(1, c["max_attempts"] + 1):
            try:
                referer = self._warm_up(report_page)
                resp = request(self.get_conn(), method, url, params=params, data=data, pacer=c["www_pacer"],
                               what=what, backoff=c["backoff"], headers={"Referer": referer})
            except IsoHttpError as exc:
                if exc.status == 404:
                    return None
                if exc.status != 403:
                    raise
                problem = "HTTP 403 (ISO Express access wall)"
            else:
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                body = resp.content
                if not expect_csv:
                    if ctype == "application/json":
                        return body
                    problem = f"HTTP 200 with {ctype or 'no content type'} instead of JSON"
                elif ctype != "text/csv" or not body.lstrip(b"\xef\xbb\xbf").startswith((b'"C"', b'"H"')):
                    problem = f"HTTP 200 with {ctype or 'no content type'} instead of CSV"
                elif not is_complete_csv(body):
                    problem = 'a CSV cut off before its "T" trailer'
                else:
                    self._used()
                    return body
            if self._reset_session() and problem.startswith("HTTP 403"):
                log.info("%s: the reused ISO Express session was refused; a new one", what)
                continue  # a session ISO Express forgot: a new one at once, no back-off
            if attempt == c["max_attempts"]:
                break  # no wait after the last attempt
            delay = c["backoff"] * attempt
            log.warning("%s: %s from %s (attempt %d/%d); new session in %.1fs", what, problem, redact_url(url),
                        attempt, c["max_attempts"], delay)
            self._sleep(delay)
        raise IsoHttpError(f"{what}: giving up after {c['max_attempts']} attempts on {redact_url(url)} "
                           f"(last: {problem})", 403 if "403" in problem else None)

    def download_csv(self, path: str, *, report_page: str = DEFAULT_REPORT_PAGE,
                     params: dict[str, str] | None = None) -> bytes | None:
        """An ISO Express CSV (bytes exactly as served), or None when it is not published (404)."""
        return self._express("GET", path, params=params, what=f"ISO Express {path.rsplit('/', 1)[-1]}",
                             report_page=report_page, expect_csv=True)

    def csv_exists(self, path: str, *, report_page: str = DEFAULT_REPORT_PAGE) -> bool:
        """Whether a static ISO Express report is published (a HEAD, so nothing is downloaded).

        Only a 200 with the CSV content type counts, as for the download: a 200 HTML page (a soft 404
        or a maintenance page) is "not published", so discovery does not pick a final that is not
        there (its download would then spend every back-off on HTML before failing).
        """
        c = self.cfg
        what = f"ISO Express HEAD {path.rsplit('/', 1)[-1]}"
        for attempt in range(1, c["max_attempts"] + 1):
            try:
                referer = self._warm_up(report_page)
                resp = request(self.get_conn(), "HEAD", c["www"] + path, pacer=c["www_pacer"], backoff=c["backoff"],
                               what=what, headers={"Referer": referer})
            except IsoHttpError as exc:
                if exc.status == 404:
                    return False
                if exc.status != 403 or attempt == c["max_attempts"]:
                    raise
            else:
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype == "text/csv":
                    self._used()
                    return True
                log.warning("%s: HTTP 200 with %s instead of CSV: taken as not published", what,
                            ctype or "no content type")
                return False
            if not self._reset_session():  # a reused session ISO Express forgot: a new one at once
                self._sleep(c["backoff"] * attempt)
        return False  # pragma: no cover - the loop returns or raises

    def wsclient(self, form: dict[str, str], *, report_page: str) -> bytes | None:
        """``POST /ws/wsclient`` (the JSON behind ISO Express pages, e.g. the system load forecast)."""
        return self._express("POST", "/ws/wsclient", data=form, report_page=report_page, expect_csv=False,
                             what=f"ISO Express wsclient {form.get('_nstmp_requestType', '')}")

    # -- Web Services --------------------------------------------------------------------
    def ws_get(self, path: str) -> bytes | None:
        """A Web Services resource as JSON bytes (``path`` below ``/api/v1.1``); None on 404."""
        c = self.cfg
        if not self.ws_configured:
            raise IsoHttpError(
                f"ISO-NE Web Services need login and password (a free ISO-NE account) on connection "
                f"{self.isone_conn_id!r}"
            )
        url = f"{c['ws']}/{path.lstrip('/')}"
        try:
            resp = request(self.get_conn(), "GET", url, pacer=c["ws_pacer"], what=f"ISO-NE Web Services {path}",
                           backoff=c["backoff"], auth=(c["username"], c["password"]),
                           headers={"Accept": "application/json"})
        except IsoHttpError as exc:
            if exc.status == 404:
                return None
            if exc.status == 401:
                raise IsoHttpError(f"ISO-NE Web Services {path}: HTTP 401 from {redact_url(url)}: the login/password "
                                   f"of connection {self.isone_conn_id!r} were refused", 401) from None
            raise
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise IsoHttpError(f"ISO-NE Web Services {path}: HTTP 200 with {ctype or 'no content type'} "
                               f"instead of JSON from {redact_url(url)}")
        return resp.content

    def ws_url(self, path: str) -> str:
        return f"{self.cfg['ws']}/{path.lstrip('/')}"

    def www_url(self, path: str, params: dict[str, str] | None = None) -> str:
        return self.cfg["www"] + path + (f"?{urlencode(params)}" if params else "")
