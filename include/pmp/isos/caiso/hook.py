"""CAISO hook: OASIS (``SingleZip`` / ``GroupZip``) and the Today's Outlook CSVs.

Connection ``caiso_default`` (type ``caiso``); CAISO needs no credentials. Extras:
  * ``oasis_base_url`` (default https://oasis.caiso.com) and ``www_base_url`` (default
    https://www.caiso.com): point them at ``pmp simulate`` for offline runs;
  * ``min_request_interval_seconds`` (default 5): OASIS allows one request per 5 seconds and
    answers HTTP 429 beyond that. The limiter is shared by every hook in every process on the
    machine (a lock file), on top of the ``caiso_oasis`` Airflow pool (1 slot);
  * ``request_margin_seconds`` (default 0.5): added to that interval. The limiter stamps a request
    when it is sent, OASIS counts when it arrives: with exactly 5 s on both sides, a request that
    travels faster than the one before it (a reused connection after a new TLS handshake, say)
    lands under 5 s after it and gets a 429. Half a second absorbs that jitter for 10% of speed;
  * ``www_min_request_interval_seconds`` (default 1): politeness towards www.caiso.com;
  * ``retry_backoff_seconds`` (default 5), ``max_attempts`` (default 5), ``groupzip_max_polls``
    (default 24): retries of 429/5xx/transient OASIS errors and GroupZip's "still processing";
  * ``verify_ssl`` (default true) and ``proxy_url`` (optional, may hold proxy credentials: they are
    masked and never appear in errors or logs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from pmp.connections import mask
from pmp.http import IsoHttpError, SharedPacer, redact_url, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection
from pmp.isos.caiso.oasis import (
    GROUPZIP_PROCESSING,
    TRANSIENT,
    OasisErrorInfo,
    check_window,
    csv_members,
    oasis_error,
    request_time,
)
from pmp.payload import html_title, is_zip

log = logging.getLogger(__name__)

OASIS_BASE_URL = "https://oasis.caiso.com"
WWW_BASE_URL = "https://www.caiso.com"
OASIS_PATH = "/oasisapi"
OASIS_MARGIN_SECONDS = 0.5  # default ``request_margin_seconds``: send-time vs arrival-time jitter


class OasisError(IsoHttpError):
    """OASIS answered with an error file (HTTP 200, XML inside the zip) that retrying will not fix."""

    def __init__(self, what: str, info: OasisErrorInfo, url: str) -> None:
        super().__init__(f"{what}: {info} ({redact_url(url)})", 200)
        self.code = info.code
        self.info = info


class CaisoHook(IsoHttpHook):
    conn_name_attr = "caiso_conn_id"
    default_conn_name = "caiso_default"
    conn_type = "caiso"
    hook_name = "CAISO (OASIS and Today's Outlook)"
    summary = "OASIS and Today's Outlook (no login); `min_request_interval_seconds` (1 request / 5 s)"
    extras = (
        Extra("oasis_base_url", str, OASIS_BASE_URL, show=True),
        Extra("www_base_url", str, WWW_BASE_URL, show=True),
        Extra("min_request_interval_seconds", float, 5.0, show=True, example=5),
        Extra("request_margin_seconds", float, OASIS_MARGIN_SECONDS),
        Extra("www_min_request_interval_seconds", float, 1.0),
        Extra("retry_backoff_seconds", float, 5.0),
        Extra("max_attempts", int, 5),
        Extra("groupzip_max_polls", int, 24),
        Extra("verify_ssl", bool, True),
        Extra("proxy_url", str, None, secret=True, url_schemes=("http", "https", "socks5", "socks5h")),
        # lmp_dam route (adapter._dam_lmp_route): SingleZip within its retention, GroupZip before
        Extra("dam_lmp_route", str, "auto", choices=("auto", "singlezip", "groupzip")),
        Extra("singlezip_retention_days", int, 1095, minimum=1),
    )
    hidden_fields = ("schema", "port", "host", "login", "password")
    local = LocalConnection(
        comment="CAISO: OASIS (1 request per 5 s, enforced with 429) and the Today's Outlook CSVs.",
        extra={"oasis_base_url": "{sim}/caiso/oasis", "www_base_url": "{sim}/caiso/www",
               "min_request_interval_seconds": 5, "retry_backoff_seconds": 0.5},
    )
    pools = {"caiso_oasis": (1, "CAISO OASIS and Outlook (one request per 5 seconds across all tasks)")}
    # Six real-time datasets come due at the same */5 tick (four OASIS queries, two Outlook CSVs).
    # With one slot they ran one after another, ~15 s each, so the sixth committed ~90 s after
    # publication; three slots overlap their task start-up, parsing and loading while the OASIS
    # pacer (one request per 5 s, real time first) still sends the requests one at a time.
    realtime_slots = {"caiso_oasis": 3}

    def __init__(self, caiso_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(caiso_conn_id, **kwargs)

    # -- configuration -------------------------------------------------------------------
    def configure(self) -> dict[str, Any]:
        proxy = self.extra("proxy_url")
        if proxy:
            mask(urlsplit(proxy).password)
        oasis, www = self.base_url("oasis_base_url"), self.base_url("www_base_url")
        return {
            "oasis": oasis,
            "www": www,
            "oasis_pacer": SharedPacer(self.extra("min_request_interval_seconds"), f"caiso-oasis {oasis}",
                                       margin=self.extra("request_margin_seconds")),
            "www_pacer": SharedPacer(self.extra("www_min_request_interval_seconds"), f"caiso-www {www}"),
            "backoff": self.extra("retry_backoff_seconds"),
            "max_attempts": self.extra("max_attempts"),
            "groupzip_max_polls": self.extra("groupzip_max_polls"),
            "verify": self.extra("verify_ssl"),
            "proxy": proxy,
        }

    def configure_session(self, session: Any) -> None:
        session.verify = self.cfg["verify"]
        if self.cfg["proxy"]:
            session.proxies = {"http": self.cfg["proxy"], "https": self.cfg["proxy"]}

    # -- OASIS -----------------------------------------------------------------------------
    def oasis_url(self, endpoint: str, params: Mapping[str, str]) -> str:
        """The request URL (OASIS takes ``:`` and ``,`` unescaped, as its documentation shows them)."""
        return f"{self.cfg['oasis']}{OASIS_PATH}/{endpoint}?{urlencode(dict(params), safe=':,')}"

    @staticmethod
    def single_zip_params(queryname: str, version: str, start: datetime, end: datetime,
                          **params: str) -> dict[str, str]:
        check_window(start, end)
        return {"queryname": queryname, "startdatetime": request_time(start),
                "enddatetime": request_time(end), "version": str(version), **params, "resultformat": "6"}

    @staticmethod
    def group_zip_params(groupid: str, version: str, start: datetime, end: datetime) -> dict[str, str]:
        check_window(start, end)
        return {"groupid": groupid, "startdatetime": request_time(start), "enddatetime": request_time(end),
                "version": str(version), "resultformat": "6"}

    def single_zip(self, queryname: str, version: str, start: datetime, end: datetime, **params: str) -> bytes | None:
        """A zip of CSV for one query window, or None when OASIS has no data for it."""
        query = self.single_zip_params(queryname, version, start, end, **params)
        return self.get_oasis("SingleZip", query, what=f"CAISO OASIS {queryname}")

    def group_zip(self, groupid: str, version: str, start: datetime, end: datetime) -> bytes | None:
        """GroupZip bundle (e.g. ``DAM_LMP_GRP``), polling while OASIS prepares it (error 1015)."""
        query = self.group_zip_params(groupid, version, start, end)
        return self.get_oasis("GroupZip", query, what=f"CAISO OASIS GroupZip {groupid}")

    def get_oasis(self, endpoint: str, query: Mapping[str, str], *, what: str) -> bytes | None:
        """One OASIS request, answered with raw zip bytes (None = OASIS error 1000/1001, no data).

        HTTP 429 (the "Acceptable Use Policy Violation" page), 5xx and connection errors are retried
        by :func:`pmp.http.request` with the limiter's interval between attempts. HTTP 200 answers
        are inspected: an XML error file means no data (1000/1001), "GroupZip still processing"
        (1015, polled again), a transient failure (1003/1010, retried) or a clear failure
        (:class:`OasisError`, e.g. 1004 window too long, 1017 too many nodes).
        """
        c = self.cfg
        url = self.oasis_url(endpoint, query)
        polls = transient = 0
        while True:
            resp = request(
                self.get_conn(), "GET", url, pacer=c["oasis_pacer"], what=what,
                backoff=c["backoff"], max_attempts=c["max_attempts"], timeout=300,
            )
            payload = resp.content
            if (title := html_title(payload)) is not None:  # a maintenance page served with 200: no markup
                raise IsoHttpError(f"{what}: expected a zip from {redact_url(url)}, got an HTML page ({title!r}); "
                                   "nothing was staged, a retry asks again", resp.status_code, html=True)
            if not is_zip(payload):
                body = payload[:120].decode("utf-8", "replace").replace("\n", " ")
                raise IsoHttpError(f"{what}: expected a zip from {redact_url(url)}, got "
                                   f"{resp.headers.get('Content-Type', '?')}: {body!r}", resp.status_code)
            err = oasis_error(payload)
            if err is None:
                if not csv_members(payload):
                    raise IsoHttpError(f"{what}: zip from {redact_url(url)} holds no CSV (resultformat=6?)")
                return payload
            if err.no_data:
                log.info("%s: %s for %s..%s", what, err, query.get("startdatetime"), query.get("enddatetime"))
                return None
            if err.code == GROUPZIP_PROCESSING and polls < c["groupzip_max_polls"]:
                polls += 1
                delay = c["backoff"]
            elif err.code in TRANSIENT and transient < c["max_attempts"] - 1:
                transient += 1
                delay = c["backoff"] * 2 ** (transient - 1)
            else:
                raise OasisError(what, err, url)
            log.info("%s: %s; asking again in %.1fs", what, err, delay)
            time.sleep(delay)

    # -- Today's Outlook ----------------------------------------------------------------------
    def outlook_url(self, name: str, day: date | None) -> str:
        folder = f"history/{day:%Y%m%d}" if day else "current"
        return f"{self.cfg['www']}/outlook/{folder}/{name}.csv"

    def outlook(self, name: str, day: date | None) -> bytes:
        """``fuelsource`` / ``demand`` CSV of a past day (``history/YYYYMMDD``) or of today
        (``current``). The ``?_=`` cache buster is required: CloudFront serves stale copies of an
        unchanged URL."""
        c = self.cfg
        resp = request(
            self.get_conn(), "GET", self.outlook_url(name, day), params={"_": int(time.time() * 1000)},
            pacer=c["www_pacer"], what=f"CAISO Outlook {name}", backoff=c["backoff"],
            max_attempts=c["max_attempts"],
        )
        ctype = resp.headers.get("Content-Type", "")
        if "html" in ctype.lower() or not resp.content.strip():
            raise IsoHttpError(f"CAISO Outlook {name}: no CSV at {redact_url(resp.url)} ({ctype or 'empty'})")
        return resp.content
