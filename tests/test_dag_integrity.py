"""DAG bundle integrity: parses cleanly without I/O, ids/tags/retries, pools and connections declared."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pmp import airflow_settings, alerts, assets, history, registry, summary, triggers

ROOT = Path(__file__).resolve().parents[1]


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_one_daily_dag_per_dataset_and_realtime_where_declared(dagbag) -> None:
    expected = set()
    for spec in registry.datasets():
        expected.add(spec.daily_dag_id)
        if history.has_history_dag(spec):
            expected.add(history.history_dag_id(spec))
        if spec.realtime:
            expected.add(spec.realtime_dag_id)
    assert set(dagbag.dag_ids) == expected | {summary.DAG_ID}  # + the example scheduled on Assets
    assert {"ercot_lmp_dam_daily", "ercot_lmp_rt15m_daily", "ercot_lmp_rt5m_daily",
            "ercot_lmp_rt15m_realtime", "ercot_lmp_rt5m_realtime"} <= expected
    # a monthly history DAG per dataset of every ISO (pmp.history: each adapter's history_window)
    assert {f"{iso}_lmp_dam_history" for iso in registry.isos()} <= expected
    assert set(registry.isos()) == {"caiso", "ercot", "isone", "miso", "nyiso", "pjm", "spp"}


def _iso_dags(dagbag) -> dict:
    return {k: v for k, v in dagbag.dags.items() if k != summary.DAG_ID}


def test_ids_tags_retries_and_schedules(dagbag) -> None:
    for dag_id, dag in _iso_dags(dagbag).items():
        assert re.fullmatch(r"[a-z0-9]+_[a-z0-9_]+_(daily|realtime|history)", dag_id), dag_id
        assert "pmp" in dag.tags and dag_id.split("_")[0] in dag.tags
        assert dag.doc_md and "###" in dag.doc_md
        for t in dag.tasks:  # PMP_TASK_RETRIES=0 in tests; the default is checked below
            assert t.retries == 0, (dag_id, t.task_id)
        if dag_id.endswith("_realtime"):  # issue 12.3: one task start per real-time run, not six
            (ingest,) = dag.tasks
            assert ingest.task_id == "ingest" and type(ingest).__name__ == "RealtimeIngestOperator"
        else:  # history keeps its separate (mapped) tasks, then the Parquet lake's day files (pmp.lake)
            assert [t.task_id for t in dag.topological_sort()] == [
                "discover", "fetch", "stage", "normalize", "load", "check", "lake"]
        if dag_id.endswith("_daily"):
            spec = registry.get(dag_id.split("_")[0], dag_id.split("_", 1)[1].removesuffix("_daily"))
            assert dag.catchup is False  # PMP_CATCHUP=false in the test env; default True (below)
            assert dag.start_date.date() == spec.first_date
            assert dag.max_active_runs == spec.max_active_runs
            assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
            assert dag.timetable.expression == "0 0 * * *"
            assert str(getattr(dag.timetable.timezone, "name", dag.timetable.timezone)) == spec.timezone
        elif dag_id.endswith("_history"):  # one run per calendar month (pmp.history)
            spec = registry.get(dag_id.split("_")[0], dag_id.split("_", 1)[1].removesuffix("_history"))
            assert dag.catchup is False and dag.end_date is None  # PMP_CATCHUP=false: backfill any month
            assert dag.start_date.date() == spec.first_date.replace(day=1)
            assert dag.timetable.expression == "0 0 1 * *"
            assert str(getattr(dag.timetable.timezone, "name", dag.timetable.timezone)) == spec.timezone
        else:
            assert dag.max_active_runs == 1 and dag.catchup is False
            spec = registry.get(dag_id.split("_")[0], dag_id.split("_", 1)[1].removesuffix("_realtime"))
            assert dag.timetable.expression == "*/5 * * * *"
            ingest = dag.get_task("ingest")
            # a watched dataset's task starts in the triggerer and waits for a new document there
            assert ingest.start_from_trigger is triggers.watched(spec), dag_id
            if triggers.watched(spec):
                args = ingest.start_trigger_args
                assert args.trigger_cls == "pmp.triggers.NewDocumentTrigger"
                assert args.next_method == "execute_complete" and hasattr(ingest, "execute_complete")
                assert args.trigger_kwargs == triggers.waiting_kwargs(spec)
                assert args.trigger_kwargs["max_events"] == 1 and args.trigger_kwargs["remember"] is True
                assert 0 < args.trigger_kwargs["wait_seconds"] < alerts.realtime_deadline().total_seconds()


def test_catchup_is_on_by_default() -> None:
    code = ("import os; os.environ.pop('PMP_CATCHUP', None);"
            "from pmp import registry; from pmp.factory import build_dags;"
            "d = {k: v for iso in registry.isos() for k, v in build_dags(iso).items()};"
            "print(all(x.catchup for k, x in d.items() if k.endswith('_daily')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_default_retries_with_backoff() -> None:
    code = ("import os; os.environ.pop('PMP_TASK_RETRIES', None);"
            "from pmp import registry; from pmp.factory import build_dags;"
            "d = {k: v for iso in registry.isos() for k, v in build_dags(iso).items()};"
            "print(sorted({(t.task_id, t.retries, t.retry_exponential_backoff) for x in d.values() for t in x.tasks}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pairs = eval(out.stdout.strip().splitlines()[-1])  # list of tuples printed by the child
    assert ("check", 0, 2.0) in pairs
    assert all(r >= 1 and b == 2.0 for task, r, b in pairs if task != "check")


def test_every_pool_declared(dagbag) -> None:
    declared = set(airflow_settings.pools())
    used = {t.pool for dag in dagbag.dags.values() for t in dag.tasks}
    assert used - {"default_pool"} <= declared, used - declared
    assert set(registry.pools()) <= declared


def test_realtime_tasks_use_pools_no_history_task_uses(dagbag) -> None:
    """Issue 12.1: a real-time run never waits behind a backfill for the ISO's pool slot: its task
    takes the ISO's real-time pool (declared, with slots), which no history task takes, and goes
    first where both still meet (priority weight)."""
    realtime = {t.pool for d, dag in dagbag.dags.items() if d.endswith("_realtime") for t in dag.tasks}
    history = {t.pool for d, dag in dagbag.dags.items() if not d.endswith("_realtime") for t in dag.tasks}
    assert realtime and not realtime & history, realtime & history
    declared = airflow_settings.pools()
    for spec in registry.datasets():
        if spec.realtime:
            (ingest,) = dagbag.dags[spec.realtime_dag_id].tasks
            assert ingest.pool == f"{spec.pool}_realtime" and declared[ingest.pool]["slots"] >= 1
            assert ingest.priority_weight > max(t.priority_weight for t in dagbag.dags[spec.daily_dag_id].tasks)


def test_history_cpu_steps_share_one_pool_across_isos(dagbag) -> None:
    """Issue 12: history's CPU-heavy steps (normalize, the Rust operator, load, lake) of every ISO
    take a slot of pmp_history, declared with fewer slots than this machine's two cores, so a month
    being parsed and loaded leaves a core to real time; fetches keep the ISO's rate-limit pool and
    no real-time task takes pmp_history."""
    declared = airflow_settings.pools()
    assert 1 <= declared[registry.HISTORY_POOL]["slots"] < 2
    seen = set()
    for dag_id, dag in _iso_dags(dagbag).items():
        pools = {t.task_id: t.pool for t in dag.tasks}
        if dag_id.endswith("_realtime"):
            assert registry.HISTORY_POOL not in pools.values(), dag_id
            continue
        heavy = {k: v for k, v in pools.items() if k in ("normalize", "load", "lake")}
        assert set(heavy) >= {"normalize", "load"} and set(heavy.values()) == {registry.HISTORY_POOL}, (dag_id, pools)
        assert pools["fetch"] != registry.HISTORY_POOL, dag_id
        seen.add(dag_id.split("_")[0])
    assert seen == set(registry.isos())


def test_history_tasks_lower_their_cpu_priority_realtime_tasks_do_not(dagbag) -> None:
    """Every task of a daily or monthly history DAG (the Rust operator and the lake task too) runs
    pmp.factory.history_cpu_priority before it executes; the real-time ingest task does not."""
    from pmp.factory import history_cpu_priority

    for dag_id, dag in _iso_dags(dagbag).items():
        hooks = {t.task_id: t.partial_kwargs.get("pre_execute") if hasattr(t, "partial_kwargs")  # mapped
                 else getattr(t, "_pre_execute_hook", None) for t in dag.tasks}
        if dag_id.endswith("_realtime"):
            assert set(hooks.values()) == {None}, (dag_id, hooks)
        else:
            assert set(hooks.values()) == {history_cpu_priority}, (dag_id, hooks)


def test_history_cpu_priority_lowers_the_process_niceness() -> None:
    """In a process of its own (as a task process is): niceness 0 -> PMP_HISTORY_NICE; never raised
    back (a process already nicer stays so); 0 leaves it unchanged."""
    from helpers import ROOT

    code = ("import os, sys; sys.path.insert(0, {inc!r}); from pmp.factory import history_cpu_priority; "
            "os.nice({start}); history_cpu_priority(); print(os.nice(0))")
    for setting, start, want in (("10", 0, 10), ("10", 15, 15), ("0", 0, 0), ("25", 0, 19)):
        env = {**os.environ, "PMP_HISTORY_NICE": setting}
        out = subprocess.run([sys.executable, "-c", code.format(inc=str(ROOT / "include"), start=start)], env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        assert int(out[-1]) == want, (setting, start, out)


def test_every_connection_declared() -> None:
    from pmp.settings import Settings

    declared = set(airflow_settings.connections())
    cfg = Settings.from_env()
    hooks = set()
    for iso in registry.isos():
        hook = registry.adapter(iso).hook()
        hooks.add(getattr(hook, type(hook).conn_name_attr))
    assert {cfg.db_conn_id, cfg.s3_conn_id} | hooks <= declared, (hooks | {cfg.db_conn_id}) - declared


def test_provider_registers_every_iso_hook() -> None:
    """The connection forms in the UI come from the provider entry point: one per ISO hook."""
    from pmp.provider import get_provider_info

    types = {c["connection-type"]: c["hook-class-name"] for c in get_provider_info()["connection-types"]}
    for iso in registry.isos():
        cls = type(registry.adapter(iso).hook())
        assert types.get(cls.conn_type) == f"{cls.__module__}.{cls.__name__}", iso
        assert cls.default_conn_name in airflow_settings.connections()


def test_dag_files_parse_without_io() -> None:
    """No network or DB at parse time: every DAG file parses with the warehouse pointed at a closed
    loopback port, and an audit hook fails the parse at the first socket connect or name lookup."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    code = textwrap.dedent("""
        import glob, runpy, sys
        def audit(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
                raise RuntimeError(f"I/O at parse time: {event} {args!r}")
        sys.addaudithook(audit)
        files = sorted(glob.glob("dags/*.py"))
        for f in files:
            runpy.run_path(f)
        print(len(files))
    """)
    env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": "/nonexistent-airflow-home",
           "PMP_PG_DSN": f"host=127.0.0.1 port={closed}"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == len(list((ROOT / "dags").glob("*.py")))


def test_pmp_dags_selects_which_dags_are_built() -> None:
    code = ("import os; os.environ['PMP_DAGS'] = 'ercot_lmp_*_daily, nyiso_fuel_mix_*';"
            "from pmp import registry; from pmp.factory import build_dags;"
            "print(sorted(k for iso in registry.isos() for k in build_dags(iso)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    built = eval(out.stdout.strip().splitlines()[-1])
    assert built == sorted(["ercot_lmp_dam_daily", "ercot_lmp_rt15m_daily", "ercot_lmp_rt5m_daily",
                            "nyiso_fuel_mix_daily", "nyiso_fuel_mix_history", "nyiso_fuel_mix_realtime"])


def test_catching_up_the_history_dag_takes_old_months_and_the_daily_dag_the_recent_days() -> None:
    """PMP_CATCHUP=true: every market day from the first one to yesterday is one DAG's, exactly once:
    the monthly history DAG's (whole months before the recent window) or the daily DAG's."""
    code = ("import os, json; os.environ['PMP_CATCHUP'] = 'true';"
            "from pmp.factory import build_dags; d = build_dags('nyiso');"
            "h, y = d['nyiso_lmp_dam_history'], d['nyiso_lmp_dam_daily'];"
            "print(json.dumps([h.start_date.isoformat(), h.end_date.isoformat(), y.start_date.isoformat(),"
            " h.catchup, y.catchup]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import json
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    h_start, h_end, d_start, h_catchup, d_catchup = json.loads(out.stdout.strip().splitlines()[-1])
    assert h_catchup and d_catchup
    spec = registry.get("nyiso", "lmp_dam")
    et = ZoneInfo(spec.timezone)
    today = datetime.now(et).date()
    first_daily = datetime.fromisoformat(d_start).astimezone(et).date()
    assert first_daily == history.cutoff(spec, today) and first_daily.day == 1
    assert (today - first_daily).days >= history.RECENT_DAYS  # the recent window stays daily
    assert datetime.fromisoformat(h_start).astimezone(et).date() == date(2019, 1, 1)
    # inclusive end_date: the last history run is the month before the daily DAG's first day
    assert datetime.fromisoformat(h_end).astimezone(et).date() == first_daily - timedelta(days=1)


def test_day_published_hours_later_is_rescheduled_not_failed(dagbag) -> None:
    """A daily run whose documents come out hours after the day (ERCOT actual load, ~6 h) gives its
    worker back and is rescheduled for the publication time, instead of failing and retrying."""
    from datetime import UTC, datetime, timedelta

    from airflow.sdk.exceptions import AirflowRescheduleException

    spec = next(s for s in registry.datasets() if s.publication_lag > timedelta(hours=1))
    discover = dagbag.dags[spec.daily_dag_id].get_task("discover")
    end = datetime.now(UTC).replace(microsecond=0)
    with pytest.raises(AirflowRescheduleException) as exc:
        discover.python_callable(data_interval_start=end - timedelta(days=1), data_interval_end=end,
                                 params={"reload": False})
    assert exc.value.reschedule_date == end + spec.publication_lag


def test_every_load_task_declares_its_datasets_asset(dagbag) -> None:
    """One Asset per ISO dataset, named ``pmp.<iso>.<dataset>``, its URI in the Postgres provider's
    scheme naming the table and the ISO; the daily and the real-time DAG's load tasks update the same one."""
    from airflow.sdk import Asset

    seen: dict[str, set[str]] = {}
    for dag_id, dag in _iso_dags(dagbag).items():
        iso, rest = dag_id.split("_", 1)
        spec = registry.get(iso, rest.rsplit("_", 1)[0])
        outlets = {t.task_id: [o for o in t.outlets if isinstance(o, Asset)] for t in dag.tasks}
        loader = "ingest" if dag_id.endswith("_realtime") else "load"  # a real-time run is one task
        assert [k for k, v in outlets.items() if v] == [loader], (dag_id, outlets)
        (a,) = outlets[loader]
        assert a.name == f"pmp.{spec.iso}.{spec.dataset}" and a.group == "pmp"
        assert a.uri == f"postgres://warehouse:5432/pmp/public/{spec.table}?dataset={spec.dataset}&iso={spec.iso}"
        assert a.extra["table"] == spec.table and a.extra["iso"] == spec.iso
        seen.setdefault(a.uri, set()).add(dag_id)
    assert len(seen) == len(registry.datasets())
    assert seen[assets.uri(registry.get("ercot", "lmp_rt5m"))] == {
        "ercot_lmp_rt5m_daily", "ercot_lmp_rt5m_history", "ercot_lmp_rt5m_realtime"}  # history: pmp.history


def test_asset_uri_names_the_configured_warehouse() -> None:
    code = ("import os; os.environ['PMP_ASSET_WAREHOUSE'] = 'postgresql://tsdb.internal:6432/market';"
            "from pmp import assets, registry; print(assets.asset(registry.get('caiso', 'lmp_dam')).uri)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "postgres://tsdb.internal:6432/market/public/lmp?dataset=lmp_dam&iso=caiso"


def test_hub_price_summary_is_scheduled_on_the_day_ahead_price_assets(dagbag) -> None:
    dag = dagbag.dags[summary.DAG_ID]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    names = {a.name for a in dag.timetable.asset_condition.objects}  # AssetAny: any one of them
    assert names == {f"pmp.{iso}.lmp_dam" for iso in registry.isos()}
    assert dag.doc_md and "###" in dag.doc_md
