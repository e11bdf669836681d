"""Deadline alerts: what happens when a dataset's intervals are not in the warehouse on time.

Every DAG the factory builds carries an Airflow Deadline Alert (the Airflow 3 replacement of SLAs):

* daily history DAGs: the market day must be loaded ``DAILY_GRACE`` after the ISO has published
  it, i.e. ``logical date (local midnight) + 25 h + publication lag + grace``;
* real-time DAGs: a */5 run must finish ``REALTIME_DEADLINE`` after it was queued, or intervals are
  being missed.

When a deadline passes, Airflow's triggerer awaits :func:`deadline_missed` (an ``AsyncCallback``: it
must be importable where the triggerer runs, which the installed ``pmp`` package is). It logs one
``DEADLINE MISSED`` error line and, when a webhook is configured, POSTs a JSON alert to it:
``PMP_ALERT_WEBHOOK_URL`` in the environment, or the ``host`` of the Airflow connection
``pmp_alerts``. The webhook URL may hold a token: it is never logged.

History runs are not late: a backfill run, or a catch-up run of a day in 2019, was created long
after its deadline. A deadline that had passed more than ``HISTORY_AFTER`` before the run was queued
(or any backfill run) is logged at info level and not alerted; a run created late because the
scheduler was down yesterday still alerts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

DAILY_GRACE = timedelta(hours=3)
REALTIME_DEADLINE = timedelta(minutes=15)
HISTORY_AFTER = timedelta(days=2)
CALLBACK = "pmp.alerts.deadline_missed"
WEBHOOK_CONN_ID = "pmp_alerts"


def daily_deadline(publication_lag: timedelta) -> timedelta:
    """From the logical date (start of the local market day) to when its data must be loaded:
    the longest (25-hour) day, the ISO's publication lag, and the grace for retries."""
    return timedelta(hours=25) + publication_lag + DAILY_GRACE


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def alert_payload(dataset: str, expectation: str, context: dict[str, Any] | None) -> dict[str, Any] | None:
    """The alert for a missed deadline, or ``None`` when the run is a history run (see module doc)."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = _when((context.get("deadline") or {}).get("deadline_time"))
    queued = _when(run.get("queued_at"))
    if run.get("run_type") == "backfill" or (deadline and queued and deadline + HISTORY_AFTER <= queued):
        return None
    return {
        "alert": "deadline_missed",
        "dataset": dataset,
        "expectation": expectation,
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id") or run.get("run_id"),
        "data_interval_start": run.get("data_interval_start"),
        "data_interval_end": run.get("data_interval_end"),
        "state": run.get("state"),
        "deadline": deadline.isoformat() if deadline else None,
    }


async def _webhook_url() -> str | None:
    url = os.environ.get("PMP_ALERT_WEBHOOK_URL")
    if url:
        return url
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return (await BaseHook.aget_connection(WEBHOOK_CONN_ID)).host or None
    except AirflowNotFoundException:  # no such connection (the default): alerts go to the log only
        return None
    except Exception as exc:  # a broken connection must not silently turn the webhook off
        log.error("alert webhook: connection %r unreadable (%s); alert logged only", WEBHOOK_CONN_ID,
                  type(exc).__name__)
        return None


def _post(url: str, payload: dict[str, Any]) -> int:
    import requests

    from pmp.http import USER_AGENT

    resp = requests.post(url, data=json.dumps(payload), timeout=30,
                         headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
    return resp.status_code


async def deadline_missed(dataset: str, expectation: str, context: dict[str, Any] | None = None,
                          **_: Any) -> None:
    """Deadline Alert callback (awaited by the triggerer with the kwargs given in the factory and
    Airflow's simplified ``context``: the DAG run and the deadline)."""
    payload = alert_payload(dataset, expectation, context)
    if payload is None:
        run = (context or {}).get("dag_run") or {}
        log.info("%s: deadline passed for history run %s (backfill, or created days after its deadline): "
                 "no alert",
                 dataset, run.get("dag_run_id") or run.get("run_id"))
        return
    log.error("DEADLINE MISSED %s: %s (run %s, data %s .. %s, deadline %s)", dataset, expectation,
              payload["run_id"], payload["data_interval_start"], payload["data_interval_end"], payload["deadline"])
    url = await _webhook_url()
    if not url:
        return
    try:
        status = await asyncio.to_thread(_post, url, payload)
    except Exception as exc:  # the alert is logged above; a broken webhook must not hide it
        log.error("%s: alert webhook failed (%s)", dataset, type(exc).__name__)
        return
    if status >= 400:
        log.error("%s: alert webhook answered HTTP %d", dataset, status)
    else:
        log.info("%s: alert sent to the webhook (HTTP %d)", dataset, status)
