"""PJM hook: Data Miner 2 (``https://api.pjm.com/api/v1/<feed>``), JSON pages, subscription key.

Connection ``pjm_default`` (type ``pjm``):
  * extra.subscription_key: the user's own Data Miner 2 key (free, from PJM's API portal), sent as
    ``Ocp-Apim-Subscription-Key``; masked, never in logs, XCom or errors
  * extra.api_base_url: defaults to the real host ``https://api.pjm.com/api/v1``; point it at
    ``pmp simulate`` (``http://127.0.0.1:58080/pjm/api/api/v1``) for offline runs
  * extra.requests_per_minute (default 6: PJM's limit for non-members; members may send 600):
    shared by every hook on the machine that calls the same base URL (``pmp.http.SharedPacer``),
    so the ``pjm_dataminer`` pool's tasks together stay under it. PJM counts per key: a deployment
    with several worker machines divides the limit between them
  * extra.row_count (default 50000, PJM's largest page): rows per page (``startRow``/``rowCount``,
    following ``links[rel=next]``)
  * extra.retry_backoff_seconds (default 2) and extra.max_attempts (default 5): retries of 429 (after
    its ``Retry-After``), 5xx and resets; PJM's API is known to be flaky
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pmp.http import IsoHttpError, redact_url, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection
from pmp.isos.pjm.dataminer import MAX_ROW_COUNT, read_page
from pmp.payload import html_title

log = logging.getLogger(__name__)

API_BASE_URL = "https://api.pjm.com/api/v1"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
NON_MEMBER_REQUESTS_PER_MINUTE = 6


@dataclass(frozen=True)
class ServedPage:
    body: bytes  # as served (content-decoded)
    rows: int
    total_rows: int | None
    served_at: datetime  # the response's Date header (UTC)


def _served_at(headers: Any) -> datetime:
    try:
        return parsedate_to_datetime(headers["Date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


class PjmHook(IsoHttpHook):
    conn_name_attr = "pjm_conn_id"
    default_conn_name = "pjm_default"
    conn_type = "pjm"
    hook_name = "PJM (Data Miner 2 API)"
    summary = "Data Miner 2 API: `extra.subscription_key` = the user's own key; paced to 6 requests/min by default"
    extras = (
        Extra("subscription_key", str, None, secret=True, show=True, example="<your Data Miner 2 key>"),
        Extra("api_base_url", str, API_BASE_URL, show=True),
        Extra("requests_per_minute", float, float(NON_MEMBER_REQUESTS_PER_MINUTE), show=True,
              example=NON_MEMBER_REQUESTS_PER_MINUTE),
        Extra("row_count", int, MAX_ROW_COUNT, minimum=1, maximum=MAX_ROW_COUNT),
        Extra("retry_backoff_seconds", float, 2.0),
        Extra("max_attempts", int, 5),
    )
    hidden_fields = ("schema", "port", "host", "login", "password")
    local = LocalConnection(
        comment="PJM: Data Miner 2 (JSON pages, subscription key; 6 requests/min for non-members, 600 for members).",
        extra={"subscription_key": "sim-pjm-key", "api_base_url": "{sim}/pjm/api/api/v1",
               "requests_per_minute": 300, "retry_backoff_seconds": 0.5},
    )
    pools = {"pjm_dataminer": (2, "PJM Data Miner 2 (paced per key across all tasks: 6/min non-members)")}

    def __init__(self, pjm_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(pjm_conn_id, **kwargs)

    def configure(self) -> dict[str, Any]:
        api = self.base_url("api_base_url")
        row_count = self.extra("row_count")  # 1 .. MAX_ROW_COUNT (checked with the other extras)
        return {
            "api": api,
            "key": self.extra("subscription_key"),
            "pacer": self.shared_per_minute(self.extra("requests_per_minute"), f"pjm-dataminer {api}"),
            "row_count": row_count,
            "backoff": self.extra("retry_backoff_seconds"),
            "max_attempts": self.extra("max_attempts"),
        }

    def _get(self, url: str, params: Mapping[str, Any] | None, what: str) -> Any:
        c = self.cfg
        if not c["key"]:
            raise IsoHttpError(f"{what}: connection {self.conn_id!r} has no extra.subscription_key (PJM Data "
                               "Miner 2 needs each user's own key)")
        try:
            return request(self.get_conn(), "GET", url, params=params, headers={KEY_HEADER: c["key"]},
                           pacer=c["pacer"], what=what, backoff=c["backoff"], max_attempts=c["max_attempts"],
                           timeout=300)
        except IsoHttpError as exc:
            if exc.status in (401, 403):
                raise IsoHttpError(f"{what}: HTTP {exc.status}: the subscription key of connection "
                                   f"{self.conn_id!r} was refused", exc.status) from None
            raise

    def pages(self, feed: str, filters: Mapping[str, str]) -> Iterator[ServedPage]:
        """Every page of one query, following ``links[rel=next]`` until ``totalRows`` are in."""
        c = self.cfg
        what = f"PJM Data Miner {feed}"
        url: str | None = f"{c['api']}/{feed}"
        params: dict[str, Any] | None = {"startRow": 1, "rowCount": c["row_count"], **filters}
        seen, expected_pages, n = 0, None, 0
        while url is not None:
            resp = self._get(url, params, what)
            if (title := html_title(resp.content)) is not None:
                # a maintenance page served with 200 would read as a CSV export of garbage rows and be
                # staged inside the query's zip: refused here, the task's retry asks again
                raise IsoHttpError(f"{what}: HTTP 200 from {redact_url(resp.url or url)} is an HTML page ({title!r}), "
                                   "not Data Miner's JSON; nothing was staged, a retry asks again", 200, html=True)
            page = read_page(f"{feed} page {n + 1}", resp.content)
            n += 1
            seen += len(page.items)
            yield ServedPage(resp.content, len(page.items), page.total_rows, _served_at(resp.headers))
            total = page.total_rows
            if total is None or seen >= total or not page.items:
                return
            expected_pages = expected_pages or math.ceil(total / c["row_count"])
            if n >= expected_pages + 1:
                raise IsoHttpError(f"{what}: {n} pages and still {total - seen} of {total} rows missing")
            if page.next_href and page.next_href.startswith(c["api"] + "/"):
                url, params = page.next_href, None
            else:  # no (or a foreign-host) next link: ask for the next rows ourselves
                if page.next_href:
                    log.info("%s: next link on another host (%s); paging with startRow", what,
                             redact_url(page.next_href))
                url, params = f"{c['api']}/{feed}", {"startRow": seen + 1, "rowCount": c["row_count"], **filters}
