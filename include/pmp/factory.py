"""DAG factory: one daily history DAG per registry entry, a monthly history DAG where the ISO serves
history in monthly bulk (:mod:`pmp.history`), plus a */5 DAG for real-time datasets.

DAG files only call :func:`build_dags`; task bodies live in :mod:`pmp.pipeline` and do all I/O
at run time (nothing here touches the network or a database while the file is parsed).
"""

from __future__ import annotations

import fnmatch
import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import (
    DAG,
    AsyncCallback,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    dag,
    get_parsing_context,
    task,
)
from airflow.sdk.definitions.param import Param

from pmp import alerts, assets, history, registry, triggers, validate
from pmp.registry import DatasetSpec
from pmp.validate import setting

log = logging.getLogger(__name__)

# Every PMP_* value is checked when a DAG file imports the factory: a bad one is the file's import
# error, one sentence naming the variable, its value and what is accepted (pmp.validate).
validate.require_settings()

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "pmp",
    "retries": setting("PMP_TASK_RETRIES"),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}


# Real-time tasks go first wherever they still meet history tasks (the executor's parallelism,
# default_pool): history tasks keep the default weight 1.
REALTIME_PRIORITY = 100


def history_cpu_priority(context: Any = None) -> None:
    """``pre_execute`` of every history task: the task process lowers its own CPU priority
    (``PMP_HISTORY_NICE``, default 10) before it runs. Pools and the pacer keep history out of real
    time's slots and requests, but on a busy worker (two cores: scheduler, api-server, a month of
    archives being parsed) both kinds of task still share the CPU; the kernel then gives a real-time
    task (niceness 0) about nine times the CPU time of a history task at 10, while history gets
    every cycle real time leaves. Each task runs in a process of its own (forked for the task), so
    this never reaches a later task; the Rust processor and other children inherit it."""
    import os

    nice = int(setting("PMP_HISTORY_NICE"))
    current = os.nice(0)
    if nice > current:
        os.nice(min(nice, 19) - current)
        log.info("history task: CPU niceness %d (real-time tasks first; PMP_HISTORY_NICE)", os.nice(0))


# history DAGs' task defaults: the common ones and the lower CPU priority
HISTORY_ARGS: dict[str, Any] = DEFAULT_ARGS | {"pre_execute": history_cpu_priority}


def _catchup() -> bool:
    """History DAGs catch up from their first date. ``PMP_CATCHUP=false`` turns that off (local demos
    load history with ``airflow backfill create`` instead of thousands of scheduled runs)."""
    return bool(setting("PMP_CATCHUP"))


def _deadlines() -> bool:
    """Deadline Alerts are on unless ``PMP_DEADLINES=false``. The test suite turns them off:
    ``dag.test()`` of Airflow 3.3 fails at the end of a run of a DAG that has ``deadline=``
    (``'dict' object has no attribute 'hex'`` in ``DagRun.update_state``, whatever the deadline
    reference: our own ``MarketDayDeadline`` does not change that); the scheduler is fine."""
    return bool(setting("PMP_DEADLINES"))


def _deadline_text(spec: DatasetSpec, *, realtime: bool) -> str:
    """The DAG's deadline rules for its ``doc_md``: the texts the UI shows (``pmp.alerts``)."""
    rules = [alerts.realtime_name(spec)] if realtime else [alerts.market_day_name(spec), alerts.history_name(spec)]
    return "\n".join(f"* {rule}" for rule in rules)


def deadline(spec: DatasetSpec, *, realtime: bool) -> list[DeadlineAlert] | None:
    """When a run's intervals must be in the warehouse (see :mod:`pmp.alerts`): one rule for a
    real-time DAG; for a daily DAG one for the current market day and one for history runs
    (each run gets the one that is its own)."""
    if not _deadlines():
        return None

    def alert(name: str, reference: Any, interval: timedelta, **kwargs: Any) -> DeadlineAlert:
        kwargs = {"dataset": spec.key, "expectation": name, **kwargs}
        return DeadlineAlert(reference=reference, interval=interval, name=name,
                             callback=AsyncCallback(alerts.CALLBACK, kwargs=kwargs))

    if realtime:
        return [alert(alerts.realtime_name(spec), DeadlineReference.DAGRUN_QUEUED_AT, alerts.realtime_deadline())]
    current, history = alerts.MarketDayDeadline.market_day(spec), alerts.MarketDayDeadline.history(spec)
    return [alert(alerts.market_day_name(spec), current, current.run_time),
            alert(alerts.history_name(spec), history, history.run_time, history=True)]


def _tasks_doc(spec: DatasetSpec, kind: str) -> str:
    if kind == "real time":
        wait = (f"\nThe task starts in the triggerer and waits there (state *deferred*, no worker) until "
                f"{spec.iso.upper()} lists a new document, at most {triggers.wait_seconds() / 60:.0f} min "
                "(`PMP_REALTIME_WAIT_MINUTES`); then it runs on a worker." if triggers.watched(spec) else "")
        return ("Task: `ingest` (`RealtimeIngestOperator`): discover → fetch → stage → normalize → load → "
                "check in one task; a run that finds nothing new only checks freshness." + wait)
    rust = " (Rust bulk processor)" if spec.bulk_processor else ""
    return f"Tasks: `discover` → `fetch` (mapped per batch) → `stage` → `normalize`{rust} → `load` → `check`."


def _doc(spec: DatasetSpec, kind: str) -> str:
    pool = spec.realtime_pool if kind == "real time" else spec.pool
    return f"""### {spec.title} — {kind}

* **Source:** {spec.iso.upper()} `{spec.source}` → table `{spec.table}`{f", market `{spec.market}`" if spec.market else ""}
* **Intervals:** {spec.interval_minutes} min, stored as UTC `[interval_start, interval_end)`
* **Market day:** local `{spec.timezone}` midnight to midnight (23 h / 25 h on DST days)
* **Pool:** `{pool}` (the ISO API's rate limit)

{_tasks_doc(spec, kind)}
Raw files are kept under `raw/{spec.iso}/{spec.dataset}/…`, normalized Parquet under
`normalized/…`; loads are idempotent and a re-run never duplicates. Load history with
`airflow backfill create --dag-id {spec.daily_dag_id} --from-date … --to-date …`.

Deadline alerts (`pmp.alerts`; a run's deadline in the UI carries its rule's name):

{_deadline_text(spec, realtime=kind == "real time")}
"""


def check_conf(dag_run: Any, dag: Any) -> None:
    """A run's ``conf`` key that no param declares (``relaod``) fails the run at once, naming it
    (Airflow checks declared params' types when a run is triggered, and passes other keys on)."""
    if dag_run is None or dag is None:  # the callable called outside a run (tests)
        return
    try:
        validate.dag_run_conf(getattr(dag_run, "conf", None), getattr(dag, "params", {}), dag_id=dag.dag_id)
    except validate.InputError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None  # bad input: no retries


def _wire(spec: DatasetSpec) -> None:
    """A history run's tasks (the real-time DAG is one task: :func:`build_realtime`)."""
    key = spec.key

    @task(pool=spec.pool)
    def discover(data_interval_start: Any = None, data_interval_end: Any = None, params: Any = None,
                 dag_run: Any = None, dag: Any = None) -> list:
        from pmp import pipeline

        check_conf(dag_run, dag)

        start, end = data_interval_start, data_interval_end
        if params.get("reprocess"):  # re-derived from the raw stage by ``stage``: nothing to fetch
            return []
        try:
            return pipeline.discover(key, start.isoformat(), end.isoformat(), reload=bool(params.get("reload")))
        except pipeline.NotPublishedYet as exc:
            # e.g. a load report posted hours after the day: free the worker and the pool slot,
            # come back when it is due (no retry is used up)
            from airflow.sdk.exceptions import AirflowRescheduleException

            raise AirflowRescheduleException(exc.ready) from exc

    @task(pool=spec.pool, max_active_tis_per_dagrun=2)
    def fetch(batch: list) -> list:
        from pmp import pipeline

        return pipeline.fetch(key, batch)

    @task(trigger_rule="none_failed")
    def stage(fetched: Any, params: Any = None, data_interval_start: Any = None,
              data_interval_end: Any = None) -> dict:
        from pmp import pipeline

        if params.get("reprocess"):
            return pipeline.reprocess_manifest(key, data_interval_start.isoformat(), data_interval_end.isoformat())
        return pipeline.stage(key, list(fetched or []), reload=bool(params.get("reload")))

    # the CPU-heavy steps take a slot of the one history CPU pool (pmp.registry.HISTORY_POOL)
    @task(pool=registry.HISTORY_POOL)
    def normalize(manifest: dict) -> dict | None:
        from pmp import pipeline

        return pipeline.normalize(manifest)

    @task(outlets=[assets.asset(spec)], pool=registry.HISTORY_POOL)
    def load(normalized: dict | None, outlet_events: Any = None, params: Any = None) -> dict:
        from pmp import pipeline

        loaded = pipeline.load(normalized, reprocess=bool((params or {}).get("reprocess")))
        assets.record(outlet_events, spec, loaded)  # the asset event's extra: what landed (pmp.assets)
        return loaded

    @task(retries=0)
    def check(loaded: dict, data_interval_start: Any = None, data_interval_end: Any = None) -> dict:
        from pmp import pipeline

        return pipeline.check(key, data_interval_start.isoformat(), data_interval_end.isoformat())

    batches = discover()
    fetched = fetch.expand(batch=batches)
    staged = stage(fetched)
    if spec.bulk_processor:
        from pmp.operators import RustBulkProcessOperator

        normalized: Any = RustBulkProcessOperator(task_id="normalize", dataset_key=key, manifest=staged,
                                                         pool=registry.HISTORY_POOL).output
    else:
        normalized = normalize(staged)
    check(load(normalized))


def _daily_start(spec: DatasetSpec) -> pendulum.DateTime:
    """The daily DAG's first market day: the dataset's first day, or, catching up a dataset that has
    a monthly history DAG, the first day of the recent window (the history DAG takes the months
    before it: :mod:`pmp.history`)."""
    first = spec.first_date
    if _catchup() and history.has_history_dag(spec):
        first = history.cutoff(spec, pendulum.now(spec.timezone).date())
    return pendulum.datetime(first.year, first.month, first.day, tz=spec.timezone)


def _history_dag(spec: DatasetSpec, *, dag_id: str, kind: str, tag: str, cron: str, **kwargs: Any) -> DAG:
    """A history DAG of ``spec`` (daily or monthly runs): the pipeline's tasks over each run's data
    interval, checked per market day, then the Parquet lake's day files (:mod:`pmp.lake`)."""

    @dag(
        dag_id=dag_id,
        dag_display_name=f"{spec.iso.upper()} {spec.dataset} ({kind})",
        schedule=CronDataIntervalTimetable(cron, timezone=spec.timezone),
        catchup=_catchup(),
        max_active_runs=spec.max_active_runs,
        tags=["pmp", spec.iso, spec.dataset, spec.table, tag],
        doc_md=_doc(spec, kind),
        params={"reload": Param(False, type="boolean", description="Re-fetch documents already loaded"),
                "reprocess": Param(False, type="boolean",
                                   description="Re-normalize and reload the run's loaded documents from the raw "
                                               "stage, without downloading (after a normalizer fix)")},
        deadline=deadline(spec, realtime=False),
        **kwargs,
    )
    def _history() -> None:
        _wire(spec)
        from pmp import lake

        lake.wire_daily(spec)  # the Parquet lake's day files, after check (pmp.lake)

    return _history()


def build_daily(spec: DatasetSpec) -> DAG:
    return _history_dag(
        spec, dag_id=spec.daily_dag_id, kind="daily history", tag="daily", cron="0 0 * * *",
        description=f"{spec.title}: one run per local market day since {spec.first_date}",
        start_date=_daily_start(spec), default_args=HISTORY_ARGS,
    )


def build_history(spec: DatasetSpec) -> DAG:
    """One run per calendar month (local market time) for an ISO whose adapter declares
    ``history_window = "month"`` (:mod:`pmp.history`): the daily DAG's tasks over a month's data
    interval, checked per day."""
    cutoff = history.cutoff(spec, pendulum.now(spec.timezone).date())
    # the last month whose archive is complete: the month before the cutoff (inclusive end_date)
    end = pendulum.datetime(cutoff.year, cutoff.month, cutoff.day, tz=spec.timezone).subtract(days=1)
    return _history_dag(
        spec, dag_id=history.history_dag_id(spec), kind="monthly history", tag="history", cron="0 0 1 * *",
        description=f"{spec.title}: one run per calendar month (every market day checked), "
                    f"{spec.first_date} to the recent window",
        start_date=pendulum.datetime(spec.first_date.year, spec.first_date.month, 1, tz=spec.timezone),
        end_date=end if _catchup() else None,
        default_args=HISTORY_ARGS | {"execution_timeout": timedelta(hours=3)},
    )


def build_realtime(spec: DatasetSpec) -> DAG:
    @dag(
        dag_id=spec.realtime_dag_id,
        dag_display_name=f"{spec.iso.upper()} {spec.dataset} (real time)",
        description=f"{spec.title}: new documents every 5 minutes",
        # */5; a watched dataset's run then waits in the triggerer for its next document (pmp.triggers)
        schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS | {"retries": min(1, DEFAULT_ARGS["retries"]), "retry_delay": timedelta(minutes=1)},
        dagrun_timeout=timedelta(minutes=30),
        tags=["pmp", spec.iso, spec.dataset, spec.table, "realtime"],
        doc_md=_doc(spec, "real time"),
        params={
            "lookback_minutes": Param(180, type="integer", minimum=5, description="Discovery window"),
            "max_lag_minutes": Param(60, type="integer", minimum=5, description="Freshness alert threshold"),
            "reload": Param(False, type="boolean"),
        },
        deadline=deadline(spec, realtime=True),
    )
    def _realtime() -> None:
        from pmp.operators import RealtimeIngestOperator

        # one task start per run, not six (pmp.operators): its own pool, first in the ISO's pacer;
        # a watched dataset's task starts in the triggerer and runs when a new document is listed
        RealtimeIngestOperator(task_id="ingest", dataset_key=spec.key, pool=spec.realtime_pool,
                               priority_weight=REALTIME_PRIORITY, weight_rule="absolute",
                               outlets=[assets.asset(spec)], watch=triggers.watched(spec))

    return _realtime()


def _selected(dag_id: str) -> bool:
    """``PMP_DAGS`` (comma-separated glob patterns of DAG ids, default all) chooses which DAGs this
    deployment builds, e.g. ``PMP_DAGS='ercot_*,caiso_lmp_*'``."""
    patterns = setting("PMP_DAGS")
    return not patterns or any(fnmatch.fnmatchcase(dag_id, p) for p in patterns)


def build_dags(iso: str) -> dict[str, DAG]:
    """All DAGs of one ISO. Only the DAG being executed is built when a worker parses for a task."""
    validate.require_settings()  # a bad PMP_* value: this file's import error, in one sentence
    current = get_parsing_context().dag_id
    if current is None:
        for problem in validate.misspelt_settings() + validate.dag_selection_problems(iso=iso):
            log.warning("%s", problem)
    out: dict[str, DAG] = {}
    for spec in registry.datasets(iso):
        wanted = [(spec.daily_dag_id, build_daily)]
        if history.has_history_dag(spec):
            wanted.append((history.history_dag_id(spec), build_history))
        if spec.realtime:
            wanted.append((spec.realtime_dag_id, build_realtime))
        for dag_id, builder in wanted:
            if (current is None or current == dag_id) and _selected(dag_id):
                out[dag_id] = builder(spec)
    return out
