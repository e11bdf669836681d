"""Test environment: real services on loopback, a throwaway Airflow home, an isolated warehouse DB.

Environment is set before Airflow is imported. The services (PostgreSQL+TimescaleDB, SeaweedFS)
are started by ``scripts/services.sh start`` if they are not running, so ``pytest`` alone works.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_home = tempfile.mkdtemp(prefix="pmp-airflow-test-")
RUN_ID = uuid.uuid4().hex[:8]
TEST_DB = f"pmp_test_{RUN_ID}"

os.environ.update(
    {
        "AIRFLOW_HOME": _home,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PMP_CATCHUP": "false",
        "PMP_TASK_RETRIES": "0",  # dag.test() waits out retry delays: fail fast in tests
        # dag.test() of Airflow 3.3 fails on DAGs with deadline= (pmp.factory._deadlines);
        # tests/test_alerts.py builds the DAGs with their alerts and runs the callback for real
        "PMP_DEADLINES": "false",
        # ISO-NE's 403 wall meets clients that send > N requests in 10 s; sim_conn turns client
        # pacing off, so end-to-end runs would hit it. The wall's own tests set a small N.
        "PMP_SIM_ISONE_BURST": "100000",
        # dag.test() runs history tasks in the test process itself: their pre_execute would lower
        # the CPU priority of the pytest worker for good (tests/live.py sets the deployed 10)
        "PMP_HISTORY_NICE": "0",
    }
)

from pmp import airflow_settings  # noqa: E402  (after the env above)

CONNS = airflow_settings.connections(moved=False)  # as declared (sim_conn moves them)
PG = CONNS["tsdb"]
S3 = CONNS["pmp_s3"]


def _pg_up() -> bool:
    import psycopg

    try:
        psycopg.connect(host=PG["host"], port=PG["port"], user=PG["login"], password=PG["password"],
                        dbname=PG["schema"], connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def _s3_up() -> bool:
    import requests

    try:
        requests.get(S3["extra"]["endpoint_url"], timeout=2)
        return True
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def services() -> dict:
    """Start PostgreSQL+TimescaleDB and SeaweedFS if needed (idempotent)."""
    if not (_pg_up() and _s3_up()):
        subprocess.run([str(ROOT / "scripts" / "services.sh"), "start"], check=True)
    assert _pg_up(), "PostgreSQL did not come up"
    assert _s3_up(), "SeaweedFS S3 did not come up"
    return {"pg": PG, "s3": S3}


@pytest.fixture(scope="session")
def warehouse(services: dict) -> Iterator[str]:
    """A fresh database for this test session, wired to the ``tsdb`` connection."""
    import psycopg

    admin = dict(host=PG["host"], port=PG["port"], user=PG["login"], password=PG["password"])
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{TEST_DB}"')
    conn_json = dict(PG, schema=TEST_DB)
    os.environ["AIRFLOW_CONN_TSDB"] = json.dumps(conn_json)
    from psycopg.conninfo import make_conninfo

    dsn = make_conninfo(**admin, dbname=TEST_DB)
    yield dsn
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')


@contextlib.contextmanager
def migrated_database(name: str) -> Iterator[str]:
    """A new database ``name`` in the shared PostgreSQL with the warehouse schema migrated; its DSN,
    and the database dropped afterwards (modules that need a warehouse of their own)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from pmp import db

    admin = dict(host=PG["host"], port=PG["port"], user=PG["login"], password=PG["password"])
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_conninfo(**admin, dbname=name)
    try:
        with psycopg.connect(dsn) as conn:
            db.migrate(conn)
        yield dsn
    finally:
        with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_warehouse(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database of this test's own, for assertions over the whole warehouse (the catalog's first
    interval, row counts, missing intervals) that other tests' loads in the session database would
    change; test order (and pytest-xdist's distribution) must not matter."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"{TEST_DB}_{uuid.uuid4().hex[:6]}"
    admin = dict(host=PG["host"], port=PG["port"], user=PG["login"], password=PG["password"])
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("AIRFLOW_CONN_TSDB", json.dumps(dict(PG, schema=name)))
    yield make_conninfo(**admin, dbname=name)
    with psycopg.connect(**admin, dbname=PG["schema"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def staging(services: dict) -> str:
    """Staging on the real S3 endpoint, under a prefix unique to this session."""
    os.environ["AIRFLOW_CONN_PMP_S3"] = json.dumps(S3)
    url = f"s3://{os.environ.get('PMP_S3_BUCKET', 'pmp-staging')}/test-{RUN_ID}/"
    os.environ["PMP_STAGING_URL"] = url
    return url


# The ISO connections pointed at a simulator (shared with tests/live.py, the local-Airflow harness).
from live import SIM_CONNECTIONS, SIM_DEFAULT_URL, sim_conn  # noqa: E402, F401


def ercot_conn(sim_url: str, **extra: object) -> dict:
    return sim_conn("ercot_default", sim_url, **extra)


@pytest.fixture
def use_simulator(monkeypatch: pytest.MonkeyPatch):
    """Start a simulator (optionally at a fixed clock) and point every ISO connection at it.

    ``extra`` maps a connection id to extra fields to override, e.g.
    ``use_simulator(now=..., extra={"caiso_default": {"min_request_interval_seconds": 5}})``.
    """
    from pmp.simulator.server import start_simulator

    started = []

    def _start(now=None, extra: dict[str, dict] | None = None):
        handle = start_simulator(now=now)
        started.append(handle)
        for conn_id in SIM_CONNECTIONS:
            conn = sim_conn(conn_id, handle.url, **(extra or {}).get(conn_id, {}))
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return handle

    yield _start
    for h in started:
        h.stop()


@pytest.fixture(autouse=True)
def _dag_test_builds_only_its_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dag.test()`` re-parses and re-serializes the whole DAG bundle on every call
    (apache/airflow#64884): ~95 DAGs, 3 s a call. While a test runs a DAG, the bundle builds only
    that DAG (the factory's ``PMP_DAGS`` selection), which changes nothing else about the run."""
    from airflow.sdk import DAG

    original = DAG.test

    def test(self: DAG, *args: object, **kwargs: object) -> object:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PMP_DAGS", self.dag_id)
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DAG, "test", test)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def dagbag(airflow_db: None):
    """Every DAG of the bundle, parsed once for the session (tests look DAGs up by id).
    ``DagBag.get_dag`` reads the metadata DB's ``dag`` table, so the DB is made first: a test
    that only looks a DAG up must not depend on an end-to-end test having run before it."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def env(warehouse: str, staging: str, airflow_db: None, use_simulator) -> dict:
    """End-to-end environment: the warehouse DSN and a simulator starter."""
    return {"dsn": warehouse, "sim": use_simulator}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "live: starts a real local Airflow (tests/live.py): scheduler, "
                            "triggerer, dag-processor, api-server")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` for pytest 9: each worker names a grouped test ``<nodeid>@<group>``.

    pytest-xdist 3.8 writes that suffix to ``item._nodeid``, but pytest 9 reads a node's id from
    ``item._id``, so the suffix never reached the scheduler: the tests of the "live-airflow" group
    (each starts a local Airflow) ran on every worker at once, competing for the two cores, and a
    module's tests spread over the workers set its module fixtures up once on each (the deadline
    scenario three times). This does what xdist meant, where its own suffix did not arrive.
    """
    if not hasattr(config, "workerinput") or not getattr(config.option, "loadgroup", False):
        return  # a worker of --dist loadgroup only (xdist sets the option there; its "dist" is "no")
    from _pytest.nodeid import NodeId

    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})
        nodeid = item.nodeid
        if not groups or nodeid.rfind("@") > nodeid.rfind("]"):
            continue  # not grouped, or xdist's suffix is there already
        item._id = NodeId.parse(f"{nodeid}@{'_'.join(groups)}")
