"""What users and other systems see of a run, with ``dag.test()`` (in-process tasks): the pipeline
metrics through Airflow's own Stats client to a StatsD receiver on loopback UDP, and the asset event
a load records in the metadata database. The same through the real scheduler (the downstream DAG
triggered by the event, lineage events): tests/test_live_observability.py."""

from __future__ import annotations

import json
from datetime import date

import psycopg
import pytest
from helpers import run_daily
from statsd_receiver import StatsdReceiver

from pmp import metrics, pipeline, registry
from pmp.staging import open_store
from pmp.timeutil import market_day_bounds

pytestmark = pytest.mark.integration

DAY = date(2024, 3, 12)  # an ordinary 24-hour day, served by the simulator's Public API archive


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch):
    """Airflow's Stats client configured as the task runner configures it ([metrics] from the
    environment), sending to a receiver on loopback with InfluxDB-style tags."""
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    with StatsdReceiver() as rx:
        for key, value in {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(rx.port),
                           "STATSD_PREFIX": "airflow", "STATSD_INFLUXDB_ENABLED": "True"}.items():
            monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
        stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
        yield rx
    for key in ("STATSD_ON", "STATSD_HOST", "STATSD_PORT", "STATSD_PREFIX", "STATSD_INFLUXDB_ENABLED"):
        monkeypatch.delenv(f"AIRFLOW__METRICS__{key}")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)  # metrics off again


def _wait_for(rx: StatsdReceiver, name: str, **tags: str) -> list[float]:
    import time

    for _ in range(50):  # UDP is delivered asynchronously to the receiver thread
        if values := rx.values(name, **tags):
            return values
        time.sleep(0.1)
    return []


def test_a_daily_run_sends_every_pipeline_metric_tagged_with_iso_and_dataset(env, private_warehouse, dagbag,
                                                                          statsd) -> None:
    spec = registry.get("ercot", "lmp_dam")
    sim = env["sim"]()
    sim.sim.faults["rate_limit"] = 2  # the first two API calls answer 429 with Retry-After: 1
    run_daily(dagbag, spec, DAY)
    tags = {"iso": "ercot", "dataset": "lmp_dam"}
    p = "airflow."
    docs = _wait_for(statsd, p + "pmp.documents_fetched", **tags)
    assert docs and sum(docs) >= 1
    ok = statsd.values(p + "pmp.http_requests", status="200", **tags)
    assert sum(ok) >= sum(docs)  # at least one successful request per document (plus discovery, token)
    assert sum(statsd.values(p + "pmp.http_requests", status="429", **tags)) == 2
    waits = statsd.values(p + "pmp.rate_limit_waits", reason="retry_after", **tags)
    assert waits == [1000.0, 1000.0]  # milliseconds, as Retry-After said
    latency = statsd.matching(p + "pmp.http_request_latency", status="200", **tags)
    assert latency and all(m.kind == "ms" and 0 < m.value < 60_000 for m in latency)
    start, end = market_day_bounds(DAY, spec.timezone)
    with psycopg.connect(private_warehouse) as conn:
        rows = conn.execute("SELECT count(*) FROM lmp WHERE iso = 'ERCOT' AND market = 'DAM' AND interval_start >= %s"
                            " AND interval_start < %s", (start, end)).fetchone()[0]
        # this test's own warehouse: every document in it was fetched by this run
        raw = [u for (u,) in conn.execute("SELECT raw_uri FROM ingest_log WHERE lower(iso) = 'ercot' AND dataset = 'lmp_dam'")]
    assert rows > 0 and sum(statsd.values(p + "pmp.rows_loaded", **tags)) == rows
    store = open_store()
    assert len(raw) == sum(docs)  # documents fetched = documents loaded (one new day)
    assert sum(statsd.values(p + "pmp.bytes_fetched", **tags)) == sum(
        len(store.get(u.removeprefix(store.uri("")))) for u in raw)  # bytes = the raw objects' sizes
    (load,) = statsd.matching(p + "pmp.load_duration", **tags)
    assert load.kind == "ms" and load.value > 0 and load.tags["path"] in ("copy", "upsert")
    assert statsd.values(p + "pmp.check_failures", **tags) == []  # the day is complete
    assert {n.removeprefix(p) for n in statsd.names(p + "pmp.")} <= set(metrics.METRICS)


def test_a_failed_check_is_sent(private_warehouse, statsd) -> None:
    with pytest.raises(pipeline.IncompleteDataError):
        pipeline.check("nyiso.lmp_dam", "2019-06-01T04:00:00+00:00", "2019-06-02T04:00:00+00:00")  # nothing loaded
    assert _wait_for(statsd, "airflow.pmp.check_failures", iso="nyiso", dataset="lmp_dam", kind="daily") == [1.0]
    with pytest.raises(pipeline.IncompleteDataError):
        pipeline.check("nyiso.fuel_mix", "2019-06-02T04:00:00+00:00", "2019-06-02T04:00:00+00:00", realtime=True)
    assert _wait_for(statsd, "airflow.pmp.check_failures", iso="nyiso", dataset="fuel_mix", kind="realtime") == [1.0]


def test_an_undeclared_metric_is_an_error() -> None:
    with pytest.raises(KeyError, match="undeclared metric"):
        metrics.incr("pmp.rows_lodaed")


def test_the_readme_lists_every_metric() -> None:
    from helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    assert [name for name in metrics.METRICS if f"| `{name}` |" not in readme] == []


def test_a_load_records_its_asset_event_and_the_summary_reads_it(env, private_warehouse, dagbag) -> None:
    from airflow.utils.session import create_session
    from sqlalchemy import text

    spec = registry.get("ercot", "lmp_dam")
    env["sim"]()
    dr = run_daily(dagbag, spec, DAY)
    with create_session() as session:
        events = session.execute(text(
            "SELECT a.name, a.uri, e.extra, e.source_task_id FROM asset_event e JOIN asset a ON a.id = e.asset_id"
            " WHERE e.source_dag_id = :dag AND e.source_run_id = :run"), {"dag": spec.daily_dag_id, "run": dr.run_id}
        ).fetchall()
    assert len(events) == 1, events
    name, uri, extra, task_id = events[0]
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert (name, task_id) == ("pmp.ercot.lmp_dam", "load")
    assert uri == "postgres://warehouse:5432/pmp/public/lmp?dataset=lmp_dam&iso=ercot"
    start, end = market_day_bounds(DAY, spec.timezone)
    assert extra["market_days"] == [DAY.isoformat()] and extra["rows"] > 0 and extra["documents"] >= 1
    assert (extra["interval_start"], extra["interval_end"]) == (start.isoformat(), end.isoformat())
    assert extra["iso"] == "ercot" and extra["table"] == "lmp"

    # what hub_price_summary does with that event: the day's hubs, over the whole local day
    from pmp import summary

    # a run that was not handed the event (Airflow links events to runs by time: one recorded while
    # another load's queue entry was waiting goes to no run) still summarizes the loaded day, once
    stranded = summary.run([])["summarized"]
    assert list(stranded) == ["ercot.lmp_dam"] and list(stranded["ercot.lmp_dam"]) == [DAY.isoformat()], stranded
    assert stranded["ercot.lmp_dam"][DAY.isoformat()] >= 2
    assert summary.run([]) == {"summarized": {}}  # summarized after its load: not again

    out = summary.run([(uri, extra)])
    assert out["summarized"]["ercot.lmp_dam"][DAY.isoformat()] >= 2
    with psycopg.connect(private_warehouse) as conn:
        hubs = {loc: (n, lo, mean, hi) for loc, n, lo, mean, hi in conn.execute(
            "SELECT location, intervals, lmp_min, lmp_mean, lmp_max FROM hub_price_daily WHERE iso = 'ERCOT'"
            " AND market = 'DAM' AND market_day = %s", (DAY,))}
    assert {"HB_HOUSTON", "HB_NORTH"} <= set(hubs) and all(h.startswith("HB_") for h in hubs)
    assert all(n == 24 and lo <= mean <= hi for n, lo, mean, hi in hubs.values()), hubs
    assert summary.run([(uri, dict(extra, rows=0))]) == {"summarized": {}}  # a load that found nothing new
