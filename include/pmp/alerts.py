"""Deadline alerts: what happens when a dataset's intervals are not in the warehouse on time.

Every DAG the factory builds carries Airflow Deadline Alerts (the Airflow 3 replacement of SLAs),
one rule per kind of run, each computed here together with the text the Airflow UI shows for it:

* a daily DAG's **current market day**: loaded by ``25 h + publication lag + grace`` after the
  day's local midnight (the longest, 25-hour day, then the ISO's publication lag, then
  :func:`grace` for retries), and never sooner than :func:`daily_run_time` after the run was queued
  (a run created late, e.g. after the scheduler was down, still gets the time a run needs);
* a daily DAG's **history run** (a backfill run, or a catch-up run queued more than
  ``HISTORY_AFTER`` after its day's deadline): finishes :func:`history_run_time` after its turn,
  i.e. after it was queued plus that time again for every ``max_active_runs`` runs ahead of it in
  its backfill (a backfill queues all its runs at once). A miss is shown in the UI and logged,
  not alerted: the day is old, only the load is slow;
* a **real-time** run: finishes successfully within :func:`realtime_deadline` of being queued.

No deadline is earlier than "queued + the time such a run needs", so no run is missed the moment
it is created. The two daily rules are one custom deadline reference, :class:`MarketDayDeadline`
(registered with Airflow by the ``pmp_deadlines`` plugin in ``plugins/``, so the scheduler and
``airflow backfill create`` can evaluate it); each rule's reference yields no deadline for the
runs of the other kind, so every run has exactly one, named after its rule.

When a deadline passes, Airflow's triggerer awaits :func:`deadline_missed` (an ``AsyncCallback``: it
must be importable where the triggerer runs, which the installed ``pmp`` package is). It logs one
``DEADLINE MISSED`` error line and, when a webhook is configured, POSTs a JSON alert to it:
``PMP_ALERT_WEBHOOK_URL`` in the environment, or the ``host`` of the Airflow connection
``pmp_alerts``. The webhook URL may hold a token: it is never logged.

The times are read when the DAG files are parsed (so the UI text and the evaluation agree):
``PMP_DEADLINE_GRACE_MINUTES`` (180), ``PMP_DAILY_RUN_MINUTES`` (60), ``PMP_HISTORY_RUN_MINUTES``
(180), ``PMP_REALTIME_DEADLINE_MINUTES`` (15).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.definitions.deadline import BaseDeadlineReference, deadline_reference

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

HISTORY_AFTER = timedelta(days=2)
LONGEST_DAY = timedelta(hours=25)
CALLBACK = "pmp.alerts.deadline_missed"
WEBHOOK_CONN_ID = "pmp_alerts"
MARKET_DAY, HISTORY = "market_day", "history"


def _minutes(name: str) -> timedelta:
    """A ``PMP_*_MINUTES`` setting (declared with its default in ``pmp.validate.SETTINGS``)."""
    from pmp.validate import setting

    return timedelta(minutes=setting(name))


def grace() -> timedelta:
    """Time for retries after the ISO has published the last interval of a day."""
    return _minutes("PMP_DEADLINE_GRACE_MINUTES")


def daily_run_time() -> timedelta:
    """The time a daily run needs once queued (discovery, mapped fetches, load, checks, retries)."""
    return _minutes("PMP_DAILY_RUN_MINUTES")


def history_run_time() -> timedelta:
    """A reasonable time for one history run once its turn has come (pools are shared with real time)."""
    return _minutes("PMP_HISTORY_RUN_MINUTES")


def realtime_deadline() -> timedelta:
    """A real-time run must finish successfully this long after it was queued."""
    return _minutes("PMP_REALTIME_DEADLINE_MINUTES")


def daily_deadline(publication_lag: timedelta) -> timedelta:
    """From the start of the local market day (its midnight) to when its data must be loaded:
    the longest (25-hour) day, the ISO's publication lag, and the grace for retries."""
    return LONGEST_DAY + publication_lag + grace()


def duration_text(td: timedelta) -> str:
    """``28 h 20 min``, ``3 h``, ``15 min`` (whole minutes, no days: deadlines read as hours)."""
    hours, mins = divmod(int(td.total_seconds() // 60), 60)
    return " ".join(p for p in (f"{hours} h" if hours else "", f"{mins} min" if mins else "") if p) or "0 min"


# ---------------------------------------------------------------- the rules (time and text together)
def is_history(run_type: str | None, queued_at: datetime, day_deadline: datetime | None) -> bool:
    """A backfill run, a run of no market day, or one queued long after its day's deadline."""
    return run_type == "backfill" or day_deadline is None or queued_at >= day_deadline + HISTORY_AFTER


def deadline_time(rule: str, *, offset: timedelta, run_time: timedelta, run_type: str | None,
                  queued_at: datetime, day_start: datetime | None, ahead: int = 0,
                  slots: int = 1) -> datetime | None:
    """When a run must be done under ``rule``, or ``None`` when the rule is not the run's.

    ``day_start``: the market day's local midnight (the run's data interval start); ``ahead``: runs
    of the same backfill queued before this one, ``slots`` of them running at a time."""
    day_deadline = day_start + offset if day_start is not None else None
    history = is_history(run_type, queued_at, day_deadline)
    if rule == MARKET_DAY:
        if history:
            return None
        assert day_deadline is not None
        return max(day_deadline, queued_at + run_time)
    if rule == HISTORY:
        return queued_at + run_time * (1 + ahead // max(1, slots)) if history else None
    raise ValueError(f"unknown deadline rule {rule!r}")


def label(spec: Any) -> str:
    return f"{spec.iso.upper()} {spec.dataset}"


def market_day_name(spec: Any) -> str:
    """The current-day rule as the UI and the alert state it."""
    offset = daily_deadline(spec.publication_lag)
    return (f"{label(spec)} market day loaded by {duration_text(offset)} after local midnight "
            f"(25 h + publication lag {duration_text(spec.publication_lag)} + grace {duration_text(grace())}), "
            f"and not sooner than {duration_text(daily_run_time())} after the run is queued")


def history_name(spec: Any) -> str:
    return (f"{label(spec)} history run (backfill or catch-up) finishes within {duration_text(history_run_time())} "
            f"of its turn; shown and logged, not alerted")


def realtime_name(spec: Any) -> str:
    return f"{label(spec)} real-time run finishes successfully within {duration_text(realtime_deadline())} of being queued"


@deadline_reference
@dataclass(eq=False)  # the base class compares and hashes the serialized form
class MarketDayDeadline(BaseDeadlineReference):
    """Custom deadline reference of the daily DAGs (see module doc). Airflow adds the alert's
    interval to what :meth:`_evaluate_with` returns; the alert's interval is ``run_time``, so the
    reference yields ``deadline - run_time``. ``text`` is the reference as the UI names it
    ("Must complete within <interval> of <text>")."""

    rule: str = MARKET_DAY
    offset_seconds: int = 0  # local midnight -> publication deadline (market-day rule)
    run_seconds: int = 3600  # the alert's interval: the time such a run needs
    text: str = ""

    required_kwargs: ClassVar[set[str]] = {"dag_id", "run_id"}

    @classmethod
    def market_day(cls, spec: Any) -> MarketDayDeadline:
        offset, run_time = daily_deadline(spec.publication_lag), daily_run_time()
        return cls(MARKET_DAY, int(offset.total_seconds()), int(run_time.total_seconds()),
                   f"the later of queue time and {duration_text(offset - run_time)} after local midnight "
                   f"of the market day")

    @classmethod
    def history(cls, spec: Any) -> MarketDayDeadline:
        run_time = history_run_time()
        return cls(HISTORY, int(daily_deadline(spec.publication_lag).total_seconds()), int(run_time.total_seconds()),
                   f"its turn in the queue (queue time, plus {duration_text(run_time)} for each max-active-runs "
                   f"batch of its backfill ahead of it)")

    @property
    def run_time(self) -> timedelta:
        return timedelta(seconds=self.run_seconds)

    def serialize_reference(self) -> dict[str, Any]:
        return {"reference_type": self.text or self.reference_name, "rule": self.rule,
                "offset_seconds": self.offset_seconds, "run_seconds": self.run_seconds}

    @classmethod
    def deserialize_reference(cls, reference_data: dict[str, Any]) -> MarketDayDeadline:
        return cls(reference_data["rule"], int(reference_data["offset_seconds"]),
                   int(reference_data["run_seconds"]), reference_data.get("reference_type", ""))

    def _evaluate_with(self, *, session: Session, **kwargs: Any) -> datetime | None:
        """In the scheduler (or ``airflow backfill create``) when a run is created."""
        from airflow.models.backfill import Backfill
        from airflow.models.dagrun import DagRun
        from sqlalchemy import func, select

        run = session.scalar(select(DagRun).where(DagRun.dag_id == kwargs["dag_id"],
                                                  DagRun.run_id == kwargs["run_id"]))
        if run is None:
            log.warning("deadline: no run %s of %s", kwargs["run_id"], kwargs["dag_id"])
            return None
        ahead, slots = 0, 1
        if run.backfill_id is not None:
            # the runs of this backfill created before this one (backfills create them in the order
            # they run); by dag_id first, which is indexed, so a 2,900-day backfill stays quick
            ahead = session.scalar(select(func.count()).select_from(DagRun).where(
                DagRun.dag_id == run.dag_id, DagRun.backfill_id == run.backfill_id, DagRun.id < run.id)) or 0
            slots = session.scalar(select(Backfill.max_active_runs).where(Backfill.id == run.backfill_id)) or 1
        when = deadline_time(self.rule, offset=timedelta(seconds=self.offset_seconds), run_time=self.run_time,
                             run_type=str(run.run_type.value if hasattr(run.run_type, "value") else run.run_type),
                             queued_at=run.queued_at or datetime.now(UTC), day_start=run.data_interval_start,
                             ahead=ahead, slots=slots)
        return when - self.run_time if when is not None else None


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def alert_payload(dataset: str, expectation: str, context: dict[str, Any] | None, *,
                  history: bool = False) -> dict[str, Any] | None:
    """The alert for a missed deadline, or ``None`` for a history run (the history rule's deadline,
    any backfill run, or a run queued long after its deadline: see module doc)."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = _when((context.get("deadline") or {}).get("deadline_time"))
    queued = _when(run.get("queued_at"))
    if history or run.get("run_type") == "backfill" or (deadline and queued and deadline + HISTORY_AFTER <= queued):
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
    from pmp.connections import mask_url
    from pmp.validate import setting

    url = setting("PMP_ALERT_WEBHOOK_URL")
    if url:
        mask_url(url)
        return url
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        host = (await BaseHook.aget_connection(WEBHOOK_CONN_ID)).host or None
        mask_url(host)
        return host
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
                          history: bool = False, **_: Any) -> None:
    """Deadline Alert callback (awaited by the triggerer with the kwargs given in the factory and
    Airflow's simplified ``context``: the DAG run and the deadline)."""
    payload = alert_payload(dataset, expectation, context, history=history)
    if payload is None:
        run = (context or {}).get("dag_run") or {}
        log.warning("%s: history run %s is slower than expected (%s): no alert, the day is not late",
                    dataset, run.get("dag_run_id") or run.get("run_id"), expectation)
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
