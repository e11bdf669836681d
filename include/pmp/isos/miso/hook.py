"""MISO hook: market reports (static files), the public real-time API (JSON) and, with a key,
the Data Exchange pricing API.

Connection ``miso_default`` (type ``miso``):
  * extra.reports_base_url (default https://docs.misoenergy.org/marketreports): the market reports
  * extra.api_base_url (default https://public-api.misoenergy.org/api): the public display API
  * extra.api_min_request_interval_seconds (default 60): MISO asks for at most one call a minute to
    the public API; the pause is shared by every task on the machine (a file lock), since the
    real-time DAGs of five datasets call it
  * extra.reports_requests_per_minute (default 30): politeness pacing of report downloads
  * extra.dx_base_url (default https://apim.misoenergy.org) and extra.dx_pricing_key (optional,
    secret): the Data Exchange pricing product (``Ocp-Apim-Subscription-Key``); with a key, the
    daily 5-minute LMP runs take days not yet in a weekly archive from it (100 calls/min)
  * extra.dx_requests_per_minute (default 90)
  * extra.retry_backoff_seconds (default 5): back-off of retries (429, 5xx, bot-wall 403s)
  * extra.challenge_retries (default 2): how often a 403 challenge page is retried before the task
    fails with an error that says so (MISO's sites sit behind a bot wall)
  * login / password: not used (reports and the public API need no account)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pmp.http import IsoHttpError, last_modified, redact_url, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection

log = logging.getLogger(__name__)

REPORTS_BASE_URL = "https://docs.misoenergy.org/marketreports"
API_BASE_URL = "https://public-api.misoenergy.org/api"
DX_BASE_URL = "https://apim.misoenergy.org"
_CHALLENGE_MARKERS = (b"just a moment", b"challenge", b"access denied", b"captcha", b"are you a robot",
                      b"cf-chl", b"incapsula", b"_incap_", b"akamai")


class MisoChallengeError(IsoHttpError):
    """MISO answered with a bot-wall challenge page (HTML) instead of the report or JSON."""


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in head


def is_challenge(body: bytes) -> bool:
    low = body[:4096].lower()
    return looks_like_html(body) and any(m in low for m in _CHALLENGE_MARKERS)


class MisoHook(IsoHttpHook):
    conn_name_attr = "miso_conn_id"
    default_conn_name = "miso_default"
    conn_type = "miso"
    hook_name = "MISO (market reports, public API, Data Exchange)"
    summary = ("market reports and the public API (no login; one API call a minute); optional "
               "`extra.dx_pricing_key` for the Data Exchange pricing API")
    extras = (
        Extra("reports_base_url", str, REPORTS_BASE_URL, show=True),
        Extra("api_base_url", str, API_BASE_URL, show=True),
        Extra("dx_base_url", str, DX_BASE_URL),
        Extra("dx_pricing_key", str, None, secret=True, show=True, example=""),
        Extra("api_min_request_interval_seconds", float, 60.0, show=True, example=60),
        Extra("reports_requests_per_minute", float, 30.0),
        Extra("dx_requests_per_minute", float, 90.0),
        Extra("retry_backoff_seconds", float, 5.0),
        Extra("challenge_retries", int, 2),
    )
    local = LocalConnection(
        comment="MISO: market reports (docs.misoenergy.org), the public API (one call a minute) and, with a "
                "key, Data Exchange (the simulator accepts sim-miso-key).",
        extra={"reports_base_url": "{sim}/miso/docs/marketreports", "api_base_url": "{sim}/miso/api/api",
               "dx_base_url": "{sim}/miso/dx", "api_min_request_interval_seconds": 60,
               "reports_requests_per_minute": 120, "retry_backoff_seconds": 0.5},
    )
    pools = {"miso_reports": (2, "MISO market reports and public API (one API call a minute)")}

    def __init__(self, miso_conn_id: str = default_conn_name, *, sleep: Callable[[float], None] = time.sleep,
                 **kwargs: Any) -> None:
        super().__init__(miso_conn_id, **kwargs)
        self._sleep = sleep

    def configure(self) -> dict[str, Any]:
        api = self.base_url("api_base_url")
        return {
            "reports": self.base_url("reports_base_url"),
            "api": api,
            "dx": self.base_url("dx_base_url"),
            "dx_key": self.extra("dx_pricing_key") or None,
            "reports_pacer": self.per_minute("reports_requests_per_minute"),
            # one call a minute to the public API, shared by every process on this machine
            "api_pacer": self.shared_per_minute(
                60.0 / s if (s := float(self.extra("api_min_request_interval_seconds"))) > 0 else 0.0,
                f"miso-public-api {api}"),
            "dx_pacer": self.per_minute("dx_requests_per_minute"),
            "backoff": float(self.extra("retry_backoff_seconds")),
            "challenge_retries": int(self.extra("challenge_retries")),
        }

    @property
    def has_dx_key(self) -> bool:
        return bool(self.cfg["dx_key"])

    # -- one request, with the bot wall told apart ---------------------------------------------
    def _get(self, url: str, *, what: str, pacer: Any, expect: str, method: str = "GET",
             headers: dict[str, str] | None = None, params: dict[str, Any] | None = None) -> Any | None:
        """A response, or None on 404 (not published). A 403 challenge page (or a 200 HTML page where
        a report or JSON was asked for) is retried ``challenge_retries`` times with back-off, then
        fails with :class:`MisoChallengeError`: never parsed as data."""
        c = self.cfg
        attempts = c["challenge_retries"] + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            try:
                resp = request(self.get_conn(), method, url, pacer=pacer, what=what, backoff=c["backoff"],
                               headers=headers, params=params, timeout=300)
            except IsoHttpError as exc:
                if exc.status == 404:
                    return None
                if exc.status != 403:
                    raise
                problem = ("HTTP 403 with a bot-challenge page" if exc.html
                           else "HTTP 403 (for Data Exchange: the daily quota of 24,000 calls)")
            else:
                body = resp.content if method != "HEAD" else b""
                ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if method == "HEAD" or not (ctype == "text/html" or looks_like_html(body)):
                    return resp
                problem = ("HTTP 200 with a bot-challenge page" if is_challenge(body)
                           else f"HTTP 200 with an HTML page instead of {expect}")
            if attempt < attempts:
                delay = c["backoff"] * attempt
                log.warning("%s: %s from %s (attempt %d/%d), retrying in %.1fs", what, problem, redact_url(url),
                            attempt, attempts, delay)
                self._sleep(delay)
        raise MisoChallengeError(
            f"{what}: {problem} from {redact_url(url)} instead of {expect} ({attempts} attempts). MISO's bot "
            "wall blocks this client: lower the request rate (connection extras), retry later, or use the "
            "Data Exchange API with a key (extra.dx_pricing_key) where it serves the dataset", 403)

    # -- market reports ------------------------------------------------------------------------
    def report_url(self, name: str) -> str:
        return f"{self.cfg['reports']}/{name}"

    def report(self, name: str) -> tuple[bytes, datetime | None] | None:
        """A market report's bytes as served and its ``Last-Modified`` (UTC), or None (404)."""
        resp = self._get(self.report_url(name), what=f"MISO market report {name}", pacer=self.cfg["reports_pacer"],
                         expect="the report")
        return None if resp is None else (resp.content, last_modified(resp.headers))

    def report_published(self, name: str) -> datetime | None | bool:
        """Whether a report is published (a HEAD): its ``Last-Modified``, True without one, or False."""
        resp = self._get(self.report_url(name), what=f"MISO market report HEAD {name}", method="HEAD",
                         pacer=self.cfg["reports_pacer"], expect="the report")
        if resp is None:
            return False
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "text/html":
            log.warning("MISO market report HEAD %s: text/html, taken as not published", name)
            return False
        return last_modified(resp.headers) or True

    # -- public API ------------------------------------------------------------------------------
    def api_url(self, path: str) -> str:
        return f"{self.cfg['api']}/{path.lstrip('/')}"

    def api(self, path: str) -> bytes:
        """One public-API feed (JSON bytes as served). Paced to one call a minute machine-wide."""
        resp = self._get(self.api_url(path), what=f"MISO public API {path}", pacer=self.cfg["api_pacer"],
                         expect="JSON", headers={"Accept": "application/json"})
        if resp is None:
            raise IsoHttpError(f"MISO public API {path}: HTTP 404 from {redact_url(self.api_url(path))}", 404)
        try:
            json.loads(resp.content)
        except ValueError as exc:
            raise IsoHttpError(f"MISO public API {path}: the answer is not JSON ({exc})") from None
        return resp.content

    # -- Data Exchange (keyed) -------------------------------------------------------------------
    def dx_pages(self, path: str, params: dict[str, Any]) -> list[bytes]:
        """Every page of one Data Exchange query (``pageNumber`` until ``page.lastPage``), JSON bytes."""
        c = self.cfg
        if not c["dx_key"]:
            raise IsoHttpError(f"MISO Data Exchange {path}: connection {self.conn_id!r} has no extra.dx_pricing_key")
        url = f"{c['dx']}/{path.lstrip('/')}"
        pages: list[bytes] = []
        number = 1
        while True:
            try:
                resp = self._get(url, what=f"MISO Data Exchange {path}", pacer=c["dx_pacer"], expect="JSON",
                                 headers={"Ocp-Apim-Subscription-Key": c["dx_key"], "Accept": "application/json"},
                                 params={**params, "pageNumber": number})
            except IsoHttpError as exc:
                if exc.status == 401:
                    raise IsoHttpError(f"MISO Data Exchange {path}: HTTP 401: the subscription key of connection "
                                       f"{self.conn_id!r} was refused (missing, wrong, or not for the pricing "
                                       "product)", 401) from None
                raise
            if resp is None:
                raise IsoHttpError(f"MISO Data Exchange {path}: HTTP 404 from {redact_url(url)}", 404)
            try:
                page = json.loads(resp.content).get("page") or {}
            except (ValueError, AttributeError) as exc:
                raise IsoHttpError(f"MISO Data Exchange {path} page {number}: not JSON ({exc})") from None
            pages.append(resp.content)
            if page.get("lastPage", True) or number >= int(page.get("totalPages") or number):
                return pages
            number += 1
