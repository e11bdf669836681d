"""ERCOT hook: MIS document list/download and the Public API (B2C token + subscription key).

Connection ``ercot_default`` (type ``ercot``):
  * login / password: ERCOT Public API account (only needed for the API routes)
  * extra.subscription_key: the API product key (``Ocp-Apim-Subscription-Key``)
  * extra.mis_base_url / api_base_url / token_url: default to the real ERCOT hosts; point them at
    ``pmp simulate`` for offline runs
  * extra.api_requests_per_minute (default 28, a little under ERCOT's published 30 per minute):
    shared by every hook on the machine that calls the same API base URL (``pmp.http.SharedPacer``
    with scope ``"ercot-api <api base url>"``, a lock file), so the ``ercot_api`` pool's tasks
    together stay under it, not each of them. ERCOT counts per subscription key, so a deployment
    whose workers run on several machines divides the limit between them (e.g. 14 each on two).
  * extra.mis_requests_per_minute (default 120, politeness; MIS documents no limit; per hook)
  * extra.archive_bundles (default false): serve days older than MIS from the API's monthly
    bundles (``GET /bundle/{emilId}``, one download per product and month) instead of the
    archive listing + bulk download; months without a bundle fall back to the listing
  * extra.retry_backoff_seconds (default 2): first back-off of 429/5xx retries, doubling

The same MIS host (``mis_base_url``) serves the dashboard JSON feeds
(``/api/1/services/read/dashboards/<name>.json``) and the fuel-mix workbooks
(``/gridinfo/generation`` page, ``/files/docs/...`` files); none of them needs credentials.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from pmp.connections import mask
from pmp.http import IsoHttpError, Pacer, redact_url, request
from pmp.isohook import Extra, IsoHttpHook, LocalConnection

log = logging.getLogger(__name__)

MIS_BASE_URL = "https://www.ercot.com"
API_BASE_URL = "https://api.ercot.com/api/public-reports"
TOKEN_URL = (
    "https://ercotb2c.b2clogin.com/ercotb2c.onmicrosoft.com/B2C_1_PUBAPI-ROPC-FLOW/oauth2/v2.0/token"
)
B2C_CLIENT_ID = "fec253ea-0d06-4272-a5e6-b478baeecd70"
TOKEN_LIFETIME_S = 3600
TOKEN_MARGIN_S = 300  # re-login 5 minutes before the hour is up
ARCHIVE_MAX_DOCS = 1000  # ERCOT caps bulk archive downloads at 1,000 documents per request
# ERCOT's limit is about 30 requests a minute; pacing a little under it keeps the jitter between
# our sending and ERCOT's counting from tripping a 429.
API_REQUESTS_PER_MINUTE = 28


class ErcotHook(IsoHttpHook):
    conn_name_attr = "ercot_conn_id"
    default_conn_name = "ercot_default"
    conn_type = "ercot"
    hook_name = "ERCOT (MIS and Public API)"
    summary = 'MIS (no login); Public API: login/password = ERCOT API account, `extra.subscription_key`'
    extras = (
        Extra("subscription_key", str, None, secret=True, show=True, example="<key>"),
        Extra("mis_base_url", str, MIS_BASE_URL, show=True),
        Extra("api_base_url", str, API_BASE_URL, show=True),
        Extra("token_url", str, TOKEN_URL),
        Extra("mis_requests_per_minute", float, 120.0),
        Extra("api_requests_per_minute", float, float(API_REQUESTS_PER_MINUTE)),
        Extra("retry_backoff_seconds", float, 2.0),
        Extra("archive_bundles", bool, False),
    )
    relabeling = {"login": "API username (email)", "password": "API password"}
    local = LocalConnection(
        login="sim-user", password="sim-pass",
        extra={
            "subscription_key": "sim-key",
            "mis_base_url": "{sim}/ercot/www",
            "api_base_url": "{sim}/ercot/api/api/public-reports",
            "token_url": "{sim}/ercot/b2c/ercotb2c.onmicrosoft.com/B2C_1_PUBAPI-ROPC-FLOW/oauth2/v2.0/token",
            "api_requests_per_minute": 28,
            "mis_requests_per_minute": 0,
            "retry_backoff_seconds": 0.5,
        },
    )
    pools = {"ercot_api": (4, "ERCOT MIS and Public API (the API allows about 30 requests/min)")}

    def __init__(self, ercot_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(ercot_conn_id, **kwargs)
        self._token: str | None = None
        self._token_at = 0.0

    # -- configuration -------------------------------------------------------------------
    def configure(self) -> dict[str, Any]:
        conn = self.connection
        api = self.base_url("api_base_url")
        return {
            "mis": self.base_url("mis_base_url"),
            "api": api,
            "token_url": self.extra("token_url"),
            "username": conn.login,
            "password": conn.password,
            "key": self.extra("subscription_key"),
            "mis_pacer": self.per_minute("mis_requests_per_minute"),
            "api_pacer": self.shared_per_minute(self.extra("api_requests_per_minute"), f"ercot-api {api}"),
            "retry_backoff": self.extra("retry_backoff_seconds"),
            "bundles": self.extra("archive_bundles"),
        }

    @property
    def use_bundles(self) -> bool:
        return bool(self.cfg["bundles"])

    @property
    def api_configured(self) -> bool:
        c = self.cfg
        return bool(c["username"] and c["password"] and c["key"])

    # -- MIS ------------------------------------------------------------------------------
    def list_documents(self, report_type_id: int) -> list[dict[str, Any]]:
        """MIS document list for a report type: list of the ``Document`` dicts, newest first."""
        url = f"{self.cfg['mis']}/misapp/servlets/IceDocListJsonWS"
        resp = request(
            self.get_conn(), "GET", url,
            params={"reportTypeId": report_type_id, "_": int(time.time() * 1000)},
            pacer=self.cfg["mis_pacer"], what=f"ERCOT MIS list {report_type_id}",
            backoff=self.cfg["retry_backoff"],
        )
        try:
            docs = resp.json()["ListDocsByRptTypeRes"]["DocumentList"]
        except (ValueError, KeyError, TypeError) as exc:
            raise IsoHttpError(f"ERCOT MIS list {report_type_id}: unexpected answer ({exc})") from exc
        return [d["Document"] for d in docs or []]

    def document_url(self, doc_id: str) -> str:
        """Where MIS serves a document (its ``doclookupId``)."""
        return f"{self.cfg['mis']}/misdownload/servlets/mirDownload?doclookupId={doc_id}"

    def download_document(self, doc_id: str) -> bytes:
        resp = request(
            self.get_conn(), "GET", self.document_url(doc_id),
            pacer=self.cfg["mis_pacer"], what=f"ERCOT MIS download {doc_id}",
            backoff=self.cfg["retry_backoff"],
        )
        return resp.content

    # -- Public API -----------------------------------------------------------------------
    def _login(self) -> str:
        c = self.cfg
        if not self.api_configured:
            raise IsoHttpError(
                f"ERCOT Public API needs login, password and extra.subscription_key on connection "
                f"{self.ercot_conn_id!r}"
            )
        resp = request(
            self.get_conn(), "POST", c["token_url"],
            data={
                "grant_type": "password", "username": c["username"], "password": c["password"],
                "response_type": "id_token", "scope": f"openid {B2C_CLIENT_ID} offline_access",
                "client_id": B2C_CLIENT_ID,
            },
            pacer=Pacer(None), what="ERCOT B2C token", backoff=c["retry_backoff"],
        )
        token = resp.json().get("id_token") or resp.json().get("access_token")
        if not token:
            raise IsoHttpError("ERCOT B2C token: answer without id_token")
        mask(token)
        self._token, self._token_at = token, time.monotonic()
        return token

    def _headers(self, *, force: bool = False) -> dict[str, str]:
        if force or not self._token or time.monotonic() - self._token_at > TOKEN_LIFETIME_S - TOKEN_MARGIN_S:
            self._login()
        return {"Authorization": f"Bearer {self._token}", "Ocp-Apim-Subscription-Key": self.cfg["key"]}

    def api(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        return request(
            self.get_conn(), method, f"{self.cfg['api']}/{path.lstrip('/')}",
            headers=self._headers(), pacer=self.cfg["api_pacer"], what=what,
            on_unauthorized=lambda: self._headers(force=True), backoff=self.cfg["retry_backoff"],
            **kwargs,
        )

    def query(self, endpoint: str, params: dict[str, Any], page_size: int = 100_000) -> Iterator[dict]:
        """Pages of a filterable query endpoint (e.g. ``np4-190-cd/dam_stlmnt_pnt_prices``)."""
        page = 1
        while True:
            body = self.api(
                "GET", endpoint, what=f"ERCOT API {endpoint}",
                params={**params, "size": page_size, "page": page},
            ).json()
            yield body
            meta = body.get("_meta", {})
            if page >= int(meta.get("totalPages") or 1):
                return
            page += 1

    def archive_list(self, emil_id: str, post_from: str, post_to: str) -> list[dict[str, Any]]:
        """Every archived document of a product posted in [post_from, post_to] (local, no offset)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.api(
                "GET", f"archive/{emil_id.lower()}", what=f"ERCOT API archive list {emil_id}",
                params={"postDatetimeFrom": post_from, "postDatetimeTo": post_to, "size": 1000, "page": page},
            ).json()
            out.extend(body.get("archives") or [])
            if page >= int(body.get("_meta", {}).get("totalPages") or 1):
                return out
            page += 1

    def archive_download(self, emil_id: str, doc_ids: list[str]) -> bytes:
        """Zip of zips (``<docId>.zip`` members) for up to 1,000 documents."""
        if len(doc_ids) > ARCHIVE_MAX_DOCS:
            raise ValueError(f"ERCOT archive downloads take at most {ARCHIVE_MAX_DOCS} documents per request")
        resp = self.api(
            "POST", f"archive/{emil_id.lower()}/download", what=f"ERCOT API archive download {emil_id}",
            json={"docIds": [int(d) if str(d).isdigit() else d for d in doc_ids]}, timeout=300,
        )
        return resp.content

    def bundle_list(self, emil_id: str) -> list[dict[str, Any]]:
        """Monthly bundles of a product (``docId`` negative, ``friendlyName`` ``<STEM>_YYYY-MM``)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.api(
                "GET", f"bundle/{emil_id.lower()}", what=f"ERCOT API bundle list {emil_id}",
                params={"page": page} if page > 1 else None,
            ).json()
            out.extend(body.get("bundles") or [])
            if page >= int(body.get("_meta", {}).get("totalPages") or 1):
                return out
            page += 1

    def bundle_download(self, emil_id: str, doc_id: str) -> bytes:
        """One monthly bundle: a zip holding each document's own zip."""
        resp = self.api(
            "POST", f"bundle/{emil_id.lower()}/download", what=f"ERCOT API bundle download {emil_id}",
            json={"docIds": [int(doc_id)]}, timeout=600,
        )
        return resp.content

    # -- www.ercot.com: dashboards and the fuel-mix workbooks -------------------------------
    def _www(self, url: str, what: str, **kwargs: Any) -> Any:
        return request(self.get_conn(), "GET", url, pacer=self.cfg["mis_pacer"], what=what,
                       backoff=self.cfg["retry_backoff"], **kwargs)

    def dashboard(self, name: str) -> bytes:
        """A dashboard feed as published, e.g. ``fuel-mix`` -> the bytes of ``fuel-mix.json``."""
        url = f"{self.cfg['mis']}/api/1/services/read/dashboards/{name}.json"
        resp = self._www(url, f"ERCOT dashboard {name}")
        if not resp.content.lstrip().startswith(b"{"):
            raise IsoHttpError(f"ERCOT dashboard {name}: not JSON from {redact_url(url)}: {resp.text[:80]!r}")
        return resp.content

    def fuel_workbooks(self) -> dict[int, str]:
        """Year -> URL of the latest ``IntGenbyFuelYYYY.xlsx`` listed on the generation page."""
        url = f"{self.cfg['mis']}/gridinfo/generation"
        html = self._www(url, "ERCOT generation page").text
        out: dict[int, str] = {}
        for href, year in re.findall(r'href="([^"]*?IntGenbyFuel(\d{4})\.xlsx)"', html, re.IGNORECASE):
            out.setdefault(int(year), href if "://" in href else f"{self.cfg['mis']}/{href.lstrip('/')}")
        return out

    def download_url(self, url: str) -> bytes:
        return self._www(url, f"ERCOT download {url.rsplit('/', 1)[-1]}", timeout=300).content
