"""NYISO hook: the public MIS file tree (P-list index pages, daily CSVs, monthly ``_csv.zip``).

Connection ``nyiso_default`` (type ``nyiso``):
  * extra.mis_base_url: defaults to the real host ``https://mis.nyiso.com``; point it at
    ``pmp simulate`` (``http://127.0.0.1:58080/nyiso/mis``) for offline runs
  * extra.requests_per_minute (default 60): client-side politeness pacing; NYISO documents no limit
  * extra.retry_backoff_seconds (default 2): first back-off of the retry schedule (429, 5xx, resets)
  * login / password: optional HTTP basic auth for a mirror or proxy in front of MIS (NYISO itself
    needs none); the password is masked and never appears in logs or errors
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from pmp.http import HostBoundBasicAuth, IsoHttpError, last_modified, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection
from pmp.isos.nyiso.normalize import EASTERN, OFFSETS

log = logging.getLogger(__name__)

MIS_BASE_URL = "https://mis.nyiso.com"
_UPDATED = re.compile(r"(\d{2}/\d{2}/\d{4} \d{2}:\d{2}(?::\d{2})?)\s*(EDT|EST)?", re.IGNORECASE)


@dataclass(frozen=True)
class Listed:
    """One file on a P-list page."""

    name: str  # file name, e.g. 20241103damlbmp_zone.csv or 20241101damlbmp_zone_csv.zip
    url: str
    last_updated: datetime | None  # UTC; None when no cell of the row parses as a time
    row: str = ""  # the row's cell texts as shown on the page (for error messages)


class _Rows(HTMLParser):
    """Collects table rows: the cell texts and the links of each ``<tr>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[list[str], list[str]]] = []
        self._cells: list[str] | None = None
        self._links: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._cells, self._links = [], []
        elif tag in ("td", "th") and self._cells is not None:
            self._text = []
        elif tag == "a" and self._cells is not None:
            href = dict(attrs).get("href")
            if href:
                self._links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cells is not None and self._text is not None:
            self._cells.append(" ".join("".join(self._text).split()))
            self._text = None
        elif tag == "tr" and self._cells is not None:
            self.rows.append((self._cells, self._links))
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def parse_last_updated(text: str) -> datetime | None:
    """``11/03/2024 01:30:15 EST`` -> UTC. The EDT/EST suffix settles the repeated fall-back hour;
    without one the first (EDT) reading is taken."""
    m = _UPDATED.search(text)
    if not m:
        return None
    fmt = "%m/%d/%Y %H:%M:%S" if m.group(1).count(":") == 2 else "%m/%d/%Y %H:%M"
    naive = datetime.strptime(m.group(1), fmt)
    label = (m.group(2) or "").upper()
    for fold in (0, 1):
        aware = naive.replace(tzinfo=EASTERN, fold=fold)
        if not label or aware.utcoffset() == OFFSETS[label]:
            return aware.astimezone(UTC)
    return naive.replace(tzinfo=EASTERN).astimezone(UTC)


def parse_listing(page_url: str, html: str) -> list[Listed]:
    """Every CSV / zip link of a P-list page with its "Last Updated" time (the cell next to it)."""
    parser = _Rows()
    parser.feed(html)
    out: list[Listed] = []
    for cells, links in parser.rows:
        updated = next((t for c in cells if (t := parse_last_updated(c)) is not None), None)
        for href in links:
            name = href.rsplit("/", 1)[-1]
            if name.lower().endswith((".csv", "_csv.zip")):
                out.append(Listed(name, urljoin(page_url, href), updated, " | ".join(cells)))
    return out


class NyisoHook(IsoHttpHook):
    conn_name_attr = "nyiso_conn_id"
    default_conn_name = "nyiso_default"
    conn_type = "nyiso"
    hook_name = "NYISO (MIS public CSV files)"
    summary = 'MIS public CSV tree (no login)'
    extras = (
        Extra("mis_base_url", str, MIS_BASE_URL, show=True),
        Extra("requests_per_minute", float, 60.0, show=True, example=60),
        Extra("retry_backoff_seconds", float, 2.0, show=True, example=2),
    )
    relabeling = {"login": "Mirror/proxy user (optional)", "password": "Mirror/proxy password (optional)"}
    local = LocalConnection(
        comment="NYISO: the public MIS CSV tree (daily CSVs, monthly zips, P-list index pages).",
        extra={"mis_base_url": "{sim}/nyiso/mis", "requests_per_minute": 60, "retry_backoff_seconds": 0.5},
    )
    pools = {"nyiso_mis": (2, "NYISO MIS public CSV downloads")}

    def __init__(self, nyiso_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(nyiso_conn_id, **kwargs)

    # -- configuration -------------------------------------------------------------------
    def configure(self) -> dict[str, Any]:
        conn = self.connection
        return {
            "base": self.base_url("mis_base_url"),
            "pacer": self.per_minute("requests_per_minute"),
            "backoff": self.extra("retry_backoff_seconds"),
            "auth": (conn.login, conn.password) if conn.login and conn.password else None,
        }

    def configure_session(self, session: Any) -> None:
        if self.cfg["auth"]:  # a mirror's or proxy's login: never sent to a host of an absolute link
            session.auth = HostBoundBasicAuth(*self.cfg["auth"], self.cfg["base"])

    def url(self, path: str) -> str:
        return f"{self.cfg['base']}/public/{path.lstrip('/')}"

    def _get(self, url: str, what: str) -> Any:
        return request(self.get_conn(), "GET", url, pacer=self.cfg["pacer"], what=what,
                       backoff=self.cfg["backoff"], timeout=300)

    # -- MIS ------------------------------------------------------------------------------
    def listing(self, page: str) -> list[Listed]:
        """The files a P-list page (e.g. ``P-2A`` -> ``/public/P-2Alist.htm``) lists: the recent daily
        CSVs and the monthly archives, each with its "Last Updated" time."""
        url = self.url(f"{page}list.htm")
        resp = self._get(url, f"NYISO MIS {page}list")
        files = parse_listing(url, resp.text)
        if not files:
            raise IsoHttpError(f"NYISO MIS {page}list: no CSV or zip links on the page")
        return files

    def download(self, url: str, what: str) -> tuple[bytes, datetime | None]:
        """A file's bytes as served and its ``Last-Modified`` time (UTC) when the server sends one."""
        resp = self._get(url, what)
        return resp.content, last_modified(resp.headers)

    def daily_url(self, directory: str, suffix: str, day: date) -> str:
        return self.url(f"csv/{directory}/{day:%Y%m%d}{suffix}.csv")

    def monthly_url(self, directory: str, suffix: str, day: date) -> str:
        return self.url(f"csv/{directory}/{day:%Y%m}01{suffix}_csv.zip")
