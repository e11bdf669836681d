"""SPP hook: the Integrated Marketplace portal (``https://portal.spp.org``), no account needed.

* file browser: ``GET {portal}/file-browser-api/download/{folder}?path={path}`` returns the file as
  published; a file SPP does not have (yet, or ever: some 5-minute interval files are simply missing)
  answers ``404`` with an empty body, and :meth:`SppHook.download` returns ``None`` for it.
* chart API: ``GET {portal}/chart-api/gen-mix/asChart`` (the rolling two-hour generation mix, JSON).

Connection ``spp_default`` (type ``spp``):
  * extra.portal_base_url: defaults to the real host ``https://portal.spp.org``; point it at
    ``pmp simulate`` (``http://127.0.0.1:58080/spp/portal``) for offline runs
  * extra.requests_per_minute (default 120): client-side politeness pacing (SPP documents no limit;
    its interface guide discourages heavy use of the portal internals)
  * extra.retry_backoff_seconds (default 2): first back-off of the retry schedule (429, 5xx, resets)
  * extra.ui_token (optional, secret): sent as ``X-SPP-UI-Token`` when set. In 2026-09 the file browser
    was seen refusing anonymous callers and the portal's own pages sending this header; the captures
    of 2026-04 and 2026-07 were anonymous. Masked, never in logs or errors.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pmp.http import IsoHttpError, last_modified, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection

log = logging.getLogger(__name__)

PORTAL_BASE_URL = "https://portal.spp.org"
TOKEN_HEADER = "X-SPP-UI-Token"


class SppHook(IsoHttpHook):
    conn_name_attr = "spp_conn_id"
    default_conn_name = "spp_default"
    conn_type = "spp"
    hook_name = "SPP (Integrated Marketplace file browser)"
    summary = "Marketplace portal file browser and chart API (no login; optional `extra.ui_token`)"
    extras = (
        Extra("portal_base_url", str, PORTAL_BASE_URL, show=True),
        Extra("requests_per_minute", float, 120.0, show=True, example=120),
        Extra("retry_backoff_seconds", float, 2.0, show=True, example=2),
        Extra("ui_token", str, None, secret=True),
    )
    hidden_fields = ("schema", "port", "host", "login", "password")
    local = LocalConnection(
        comment="SPP: the Integrated Marketplace portal file browser and chart API (anonymous).",
        extra={"portal_base_url": "{sim}/spp/portal", "requests_per_minute": 600, "retry_backoff_seconds": 0.5},
    )
    pools = {"spp_portal": (3, "SPP marketplace portal (file browser, chart API)")}

    def __init__(self, spp_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(spp_conn_id, **kwargs)

    def configure(self) -> dict[str, Any]:
        return {
            "base": self.base_url("portal_base_url"),
            "pacer": self.per_minute("requests_per_minute"),
            "backoff": self.extra("retry_backoff_seconds"),
            "token": self.extra("ui_token"),
        }

    def configure_session(self, session: Any) -> None:
        if self.cfg["token"]:
            session.headers[TOKEN_HEADER] = self.cfg["token"]

    def file_url(self, folder: str, path: str) -> str:
        return f"{self.cfg['base']}/file-browser-api/download/{folder}?path={quote(path, safe='/')}"

    def _call(self, method: str, url: str, what: str) -> Any:
        return request(self.get_conn(), method, url, pacer=self.cfg["pacer"], what=what,
                       backoff=self.cfg["backoff"], timeout=300)

    def download(self, folder: str, path: str) -> tuple[bytes, datetime | None] | None:
        """A file's bytes as published and its ``Last-Modified`` (UTC) when sent; ``None`` when SPP has
        no such file (404). Other errors raise :class:`pmp.http.IsoHttpError`."""
        name = path.rsplit("/", 1)[-1]
        try:
            resp = self._call("GET", self.file_url(folder, path), f"SPP file browser {folder} {name}")
        except IsoHttpError as exc:
            if exc.status == 404:
                return None
            raise
        return resp.content, last_modified(resp.headers)

    def exists(self, folder: str, path: str) -> bool:
        """Whether SPP has the file (a ``HEAD`` request; 404 = no)."""
        name = path.rsplit("/", 1)[-1]
        try:
            self._call("HEAD", self.file_url(folder, path), f"SPP file browser {folder} {name} (HEAD)")
        except IsoHttpError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def chart(self, name: str) -> bytes:
        """A chart-API feed as served, e.g. ``gen-mix`` -> ``/chart-api/gen-mix/asChart``."""
        return self._call("GET", f"{self.cfg['base']}/chart-api/{name}/asChart", f"SPP chart API {name}").content
