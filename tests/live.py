"""A real local Airflow for tests and benchmarks: api-server, scheduler, dag-processor and triggerer
with LocalExecutor, on a free loopback port, with its own AIRFLOW_HOME and its own metadata database.

    from live import LiveAirflow, sim_conn

    with LiveAirflow(dags="nyiso_lmp_dam_daily", sim_url=sim.url) as af:
        af.unpause("nyiso_lmp_dam_daily")
        run_id = af.trigger("nyiso_lmp_dam_daily", logical_date=...)
        run = af.wait_run("nyiso_lmp_dam_daily", run_id)
        assert run["state"] == "success", af.diagnose()

* Configuration comes from ``scripts/airflow.sh env`` (the one definition of a local Airflow's
  settings), with a temporary ``PMP_HOME``, a free port and a unique metadata DB name; the harness
  adds only what makes a test Airflow quick on two shared cores (one api-server worker, one parsing
  process, short refresh intervals).
* The metadata database is created in the shared local PostgreSQL (credentials: the ``tsdb``
  connection of ``airflow_settings.yaml``) as a copy of a migrated template kept per Airflow version
  (``airflow db migrate`` of an empty database takes 30-50 s on this machine, a copy about 1 s), and
  dropped at the end.
* DAGs come from this checkout's ``dags/``, restricted by ``PMP_DAGS``; plugins from ``plugins/``;
  pools from ``airflow_settings.yaml`` (created through the REST API); connections are
  ``AIRFLOW_CONN_*`` variables: the declared ones, the ISO connections pointed at ``sim_url`` when
  given, and whatever the caller's environment or ``connections=`` sets (``tsdb``, ``pmp_s3`` of a
  test session).
* Every component runs in its own process group; :meth:`stop` (also on ``__exit__``, at interpreter
  exit and on a failed start) ends each group, removes the home and drops the database.

Side-effect free to import (bench scripts add ``tests/`` to ``sys.path``): it imports no Airflow.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import requests

from pmp import airflow_settings

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SH = ROOT / "scripts" / "airflow.sh"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = ("success", "failed")

CONNS = airflow_settings.connections(moved=False)  # as declared (sim_conn moves them)
SIM_DEFAULT_URL = "http://127.0.0.1:58080"  # where airflow_settings.yaml points the ISO connections


def _points_at_simulator(conn: dict) -> bool:
    return any(isinstance(v, str) and v.startswith(SIM_DEFAULT_URL) for v in (conn.get("extra") or {}).values())


# Every ISO connection whose local default is the simulator (one per ISO package).
SIM_CONNECTIONS = sorted(cid for cid, c in CONNS.items() if _points_at_simulator(c))


def sim_conn(conn_id: str, sim_url: str, **extra: object) -> dict:
    """The declared connection, pointed at a simulator on ``sim_url``, with client-side pacing,
    retry back-off and session reuse across hooks turned down (the simulator still enforces the
    ISO's limits)."""
    conn = json.loads(json.dumps(CONNS[conn_id]))
    ex = conn.setdefault("extra", {})
    for key, value in list(ex.items()):
        if isinstance(value, str) and value.startswith(SIM_DEFAULT_URL):
            ex[key] = sim_url + value[len(SIM_DEFAULT_URL):]
        elif key.endswith(("_per_minute", "_interval_seconds")):
            ex[key] = 0
        elif key.endswith("backoff_seconds"):
            ex[key] = 0.05
        elif key.endswith("_reuse_seconds"):
            ex[key] = 0  # each hook its own ISO Express session: tests count the requests they cause
    ex.update(extra)
    return conn


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_admin() -> dict[str, Any]:
    pg = CONNS["tsdb"]
    return {"host": pg["host"], "port": pg["port"], "user": pg["login"], "password": pg["password"],
            "dbname": pg["schema"], "connect_timeout": 5}


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


class AirflowError(RuntimeError):
    """The local Airflow did not do what was asked; the message carries the component logs' tails."""


@dataclass
class WebhookReceiver:
    """An HTTP receiver on a free loopback port that records every POST (arrival time, path, JSON).

    ``url`` carries a secret-looking path so tests can check it never reaches a log."""

    token: str = "s3cr3t-token"
    received: list[tuple[datetime, str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload: Any = json.loads(body)
                except ValueError:
                    payload = body.decode(errors="replace")
                owner.received.append((datetime.now(UTC), self.path, payload))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}/hooks/{self.token}"

    @property
    def payloads(self) -> list[Any]:
        return [p for _, _, p in self.received]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_LIVE: set[LiveAirflow] = set()


@atexit.register
def _stop_all() -> None:  # a test process that dies between start and stop leaves nothing behind
    for af in list(_LIVE):
        af.stop()


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, ``kill``) stops every local Airflow first: the components run in
    their own sessions, so nothing else would end them. Then the process ends as SIGTERM would."""
    _stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _handle_sigterm() -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _seal_template(template: str) -> None:
    """No connections to the metadata DB template: a copy needs the template to itself, and
    TimescaleDB's launcher (``shared_preload_libraries``) starts a scheduler in every database that
    allows connections when PostgreSQL starts, which stays connected to it, so after a restart of
    PostgreSQL every copy failed with "source database is being accessed by other users"."""
    with psycopg.connect(**_pg_admin(), autocommit=True) as conn:
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (template,)).fetchone()
        if row and row[0]:
            conn.execute(f'ALTER DATABASE "{template}" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (template,))


class LiveAirflow:
    """One local Airflow (see module doc). Use as a context manager, or call start()/stop()."""

    def __init__(self, dags: str | Iterable[str], *, sim_url: str | None = None,
                 connections: Mapping[str, Mapping[str, Any]] | None = None,
                 env: Mapping[str, str] | None = None, parallelism: int = 4,
                 start_timeout: float = 180, login: tuple[str, str] | None = None,
                 pool_slots: Mapping[str, int] | None = None) -> None:
        self.dags = dags if isinstance(dags, str) else ",".join(dags)
        self.sim_url = sim_url
        self.connections = dict(connections or {})
        self.extra_env = dict(env or {})
        self.parallelism = parallelism
        self.pool_slots = dict(pool_slots or {})  # pool -> slots instead of airflow_settings.yaml's
        self.start_timeout = start_timeout
        self.port = 0
        self.db = f"airflow_live_{uuid.uuid4().hex[:10]}"
        self.home: Path | None = None
        self.env: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None
        self.login = login  # (user, password) where the env turns the all-admins mode off
        self._http = requests.Session()
        self._db_created = False

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LiveAirflow:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> Path:
        assert self.home is not None
        return self.home / "logs"

    def start(self) -> LiveAirflow:
        _handle_sigterm()
        _LIVE.add(self)
        try:
            self._start()
        except BaseException:
            diag = self.diagnose() if self.home else ""
            self.stop()
            if diag:
                raise AirflowError(f"local Airflow did not start\n{diag}")  # noqa: B904 (chained anyway)
            raise
        return self

    def _start(self) -> None:
        started = time.monotonic()
        self.home = Path(tempfile.mkdtemp(prefix="pmp-live-airflow-"))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = self._environment()
        # Written before any component starts: four components generating airflow.cfg at once race
        # (a triggerer that read it half-written had an empty Fernet key and died on its first trigger).
        cfg = Path(self.env["AIRFLOW_HOME"]) / "airflow.cfg"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text("# all settings come from AIRFLOW__* variables (tests/live.py)\n[core]\n")
        self._create_db()
        for comp in COMPONENTS:
            args = ["airflow", comp]
            if comp == "api-server":
                args += ["--host", "127.0.0.1", "--port", str(self.port)]
            elif comp in ("scheduler", "triggerer"):
                # the log servers listen on fixed ports (8793/8794) of every interface; the api-server
                # reads this home's log files directly
                args.append("--skip-serve-logs")
            with open(self.logs / f"airflow-{comp}.log", "ab") as out:
                self.procs[comp] = subprocess.Popen(args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                                    cwd=self.home)
        deadline = started + self.start_timeout
        while not self._healthy():
            self._check_alive()
            if time.monotonic() > deadline:
                raise AirflowError(f"the api-server did not answer on {self.url} in {self.start_timeout:.0f}s")
            time.sleep(0.5)
        for name, pool in airflow_settings.pools().items():
            pool = {**pool, "slots": self.pool_slots.get(name, pool["slots"])}
            self.api("POST", "/api/v2/pools", json={"name": name, **pool})

    def _environment(self) -> dict[str, str]:
        """``scripts/airflow.sh env`` evaluated by bash for this Airflow, plus the test tuning."""
        assert self.home is not None
        base = {k: v for k, v in os.environ.items()
                if not (k.startswith("AIRFLOW__") or k == "AIRFLOW_HOME" or k.startswith("_AIRFLOW"))}
        base.update(PMP_HOME=str(self.home), PMP_AIRFLOW_PORT=str(self.port), PMP_AIRFLOW_DB=self.db,
                    PMP_PG_PORT=str(CONNS["tsdb"]["port"]), PMP_PG_PASSWORD=str(CONNS["tsdb"]["password"]))
        out = subprocess.run(["bash", "-c", 'eval "$("$0" env)" && env -0', str(AIRFLOW_SH)], env=base,
                             check=True, capture_output=True).stdout
        env = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
        env.update({
            # quick on two shared cores: one api worker, one parsing process, frequent bundle refresh
            "AIRFLOW__API__WORKERS": "1",
            # the PostgreSQL is shared by every checkout's Airflows and tests (100 connections)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "4",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # task processes talk to the api-server over HTTP: on two busy cores a call can take more
            # than the 5 s default, and a timed-out start fails the task (seen under a full test load)
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "PMP_DAGS": self.dags,
            "PMP_TASK_RETRIES": "0",
            "PMP_DEADLINES": "true",  # as deployed (the test session turns them off for dag.test())
            "PMP_HISTORY_NICE": "10",  # as deployed (the test session keeps its dag.test() process at 0)
            "PYTHONUNBUFFERED": "1",
        })
        for cid, conn in CONNS.items():
            env.setdefault(f"AIRFLOW_CONN_{cid.upper()}", json.dumps(conn))
        if self.sim_url:
            for cid in SIM_CONNECTIONS:
                env[f"AIRFLOW_CONN_{cid.upper()}"] = json.dumps(sim_conn(cid, self.sim_url))
        for cid, conn in self.connections.items():
            env[f"AIRFLOW_CONN_{cid.upper()}"] = json.dumps(dict(conn))
        env.update(self.extra_env)
        return env

    def _create_db(self) -> None:
        """The metadata DB: a copy of the migrated template of this Airflow version (made once)."""
        template = "pmp_airflow_tmpl_" + re.sub(r"\W", "_", _airflow_version())
        with psycopg.connect(**_pg_admin(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone()
        if not exists:
            self._make_template(template)
        _seal_template(template)
        # another checkout may be copying the same template right now (a copy needs the template to
        # itself): with several helpers' live tests starting at once, 20 quick tries were not enough
        deadline = time.monotonic() + 300
        attempt = 0
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(**_pg_admin(), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{self.db}" TEMPLATE "{template}"')
                self._db_created = True
                return
            except psycopg.errors.ObjectInUse:
                attempt += 1
                time.sleep(min(0.5 + attempt * 0.2, 3.0) + random.random())
        raise AirflowError(f"could not copy the metadata DB template {template}")

    def _make_template(self, template: str) -> None:
        """``airflow db migrate`` into a fresh database, then rename it (atomic: a concurrent
        maker loses the rename and drops its copy)."""
        scratch = f"{template}_build_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(**_pg_admin(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        env = dict(self.env, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.env[
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[0] + "/" + scratch)
        try:
            with open(self.logs / "airflow-db-migrate.log", "ab") as out:
                subprocess.run(["airflow", "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT,
                               check=True, timeout=600)
            with psycopg.connect(**_pg_admin(), autocommit=True) as conn:
                try:
                    conn.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{template}"')
                    scratch = ""
                except psycopg.errors.DuplicateDatabase:
                    pass
        finally:
            if scratch:
                with psycopg.connect(**_pg_admin(), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')

    def _healthy(self) -> bool:
        try:
            return self._http.get(f"{self.url}/api/v2/monitor/health", timeout=2).ok
        except requests.RequestException:
            return False

    # The scheduler's loop can die while its process lives on (it then waits for the executor's
    # workers to end): seen once after a UniqueViolation on dag_run, a scheduled run and a backfill
    # inserting the same logical date. Nothing is scheduled after that, so it counts as exited.
    SCHEDULER_LOOP_DIED = "Exception when executing SchedulerJob._run_scheduler_loop"

    def _scheduler_loop_died(self) -> bool:
        """Whether the scheduler's log says so; reads only what was written since the last look."""
        path = self.logs / "airflow-scheduler.log"
        if not path.exists():
            return False
        offset, tail = getattr(self, "_scheduler_log_seen", (0, b""))
        with path.open("rb") as fh:
            fh.seek(offset)
            new = fh.read()
        self._scheduler_log_seen = (offset + len(new), (tail + new)[-len(self.SCHEDULER_LOOP_DIED):])
        return self.SCHEDULER_LOOP_DIED.encode() in tail + new

    def _check_alive(self) -> None:
        dead = [f"{c} (exit {p.returncode})" for c, p in self.procs.items() if p.poll() is not None]
        if "scheduler" in self.procs and self._scheduler_loop_died():
            dead.append("scheduler (its loop died: see its log)")
        if dead:
            raise AirflowError("Airflow component(s) exited: " + ", ".join(dead) + "\n" + self.diagnose())

    def stop(self) -> None:
        """End every component's process group, drop the metadata DB, remove the home. Idempotent."""
        for comp in reversed(COMPONENTS):
            proc = self.procs.get(comp)
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for comp in reversed(COMPONENTS):
            proc = self.procs.pop(comp, None)
            if proc is None:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):  # what is left of the group (task runners)
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if self._db_created:
            with contextlib.suppress(psycopg.Error), psycopg.connect(**_pg_admin(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            self._db_created = False
        if self.home is not None and not os.environ.get("PMP_LIVE_KEEP_HOME"):
            for _ in range(5):  # a task process still exiting may write its log once more
                shutil.rmtree(self.home, ignore_errors=True)
                time.sleep(0.5)
                if not self.home.exists():
                    break
        self._http.close()
        _LIVE.discard(self)

    # ------------------------------------------------------------------ REST API, CLI, metadata DB
    def token(self) -> str:
        """A JWT from the SimpleAuthManager (``/auth/token``: all users are admins locally, or the
        ``login`` user's)."""
        if self._token is None:
            resp = (self._http.post(f"{self.url}/auth/token", timeout=30,
                                    json={"username": self.login[0], "password": self.login[1]})
                    if self.login else self._http.get(f"{self.url}/auth/token", timeout=30))
            resp.raise_for_status()
            self._token = resp.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, *, ok: Iterable[int] = (), **kwargs: Any) -> Any:
        """Call the REST API (``/api/v2/...``, or the UI's ``/ui/...``); JSON answer, or an error
        naming the status and body (``ok`` lists statuses accepted besides 2xx, e.g. 409). A GET
        answered 5xx is tried again twice (a database shared by several Airflows can be busy)."""
        kwargs.setdefault("timeout", 60)
        for attempt in range(3):
            resp = self._http.request(method, self.url + path,
                                      headers={"Authorization": f"Bearer {self.token()}"}, **kwargs)
            if resp.status_code < 500 or method != "GET" or attempt == 2:
                break
            time.sleep(1 + attempt)
        if not resp.ok and resp.status_code not in set(ok):
            tail = "\n".join(self.component_log("api-server").splitlines()[-30:]) if resp.status_code >= 500 else ""
            raise AirflowError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:2000]}\n{tail}")
        return resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else None

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        """Run the ``airflow`` CLI against this Airflow (its environment, its metadata DB)."""
        proc = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.home)
        if check and proc.returncode != 0:
            raise AirflowError(f"airflow {' '.join(args)} exited {proc.returncode}:\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def sql(self, query: str, params: Any = None) -> list[tuple]:
        """Rows from the metadata database."""
        url = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")
        with psycopg.connect(url, connect_timeout=10) as conn:
            return conn.execute(query, params).fetchall()

    # ------------------------------------------------------------------ DAGs and runs
    def wait_serialized(self, dag_ids: Iterable[str], timeout: float = 150) -> None:
        """Until the dag-processor has serialized every DAG in ``dag_ids`` (an import error or a
        dead component fails at once)."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while True:
            have = {r[0] for r in self.sql("SELECT dag_id FROM serialized_dag WHERE dag_id = ANY(%s)",
                                            (list(wanted),))}
            if have >= wanted:
                return
            errors = self.sql("SELECT filename, stacktrace FROM import_error")
            if errors:
                raise AirflowError("DAG import errors:\n" + "\n".join(f"{f}:\n{s}" for f, s in errors))
            self._check_alive()
            if time.monotonic() > deadline:
                raise AirflowError(f"DAGs not serialized after {timeout:.0f}s: {sorted(wanted - have)}\n"
                                   + self.diagnose())
            time.sleep(1)

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, *, logical_date: datetime | None = None, conf: dict | None = None,
                run_id: str | None = None) -> str:
        """A manual run (``logical_date=None``: a run without logical date); returns its run id."""
        body: dict[str, Any] = {"logical_date": logical_date.isoformat() if logical_date else None,
                                "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return str(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def backfill(self, dag_id: str, from_date: str, to_date: str, *, max_active_runs: int = 2,
                 reprocess: str = "completed", via: str = "cli") -> list[str]:
        """``airflow backfill create`` (or the REST API, ``via="api"``); returns the run ids created."""
        if via == "cli":
            self.cli("backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date,
                     "--max-active-runs", str(max_active_runs), "--reprocess-behavior", reprocess)
        else:
            self.api("POST", "/api/v2/backfills", json={
                "dag_id": dag_id, "from_date": from_date, "to_date": to_date, "max_active_runs": max_active_runs,
                "reprocess_behavior": reprocess})
        return [r["dag_run_id"] for r in self.runs(dag_id) if r["run_type"] == "backfill"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG as the REST API gives it (oldest logical date / run_after first)."""
        out = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})
        return list(out["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def wait_runs(self, dag_id: str, run_ids: Iterable[str] | None = None, *, timeout: float = 300,
                  until: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Until every listed run (default: every run of the DAG) satisfies ``until`` (default:
        finished, success or failed); returns them. A timeout raises with the states and log tails."""
        until = until or (lambda r: r["state"] in FINISHED)
        ids = list(run_ids) if run_ids is not None else None
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in self.runs(dag_id) if ids is None or r["dag_run_id"] in ids]
            if runs and (ids is None or len(runs) == len(ids)) and all(until(r) for r in runs):
                return runs
            self._check_alive()
            if time.monotonic() > deadline:
                states = ", ".join(f"{r['dag_run_id']}={r['state']}" for r in runs)
                raise AirflowError(f"{dag_id}: runs not done after {timeout:.0f}s ({states})\n" + self.diagnose())
            time.sleep(1)

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float = 300) -> dict[str, Any]:
        return self.wait_runs(dag_id, [run_id], timeout=timeout)[0]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` (``task_id[map_index]`` for mapped ones) -> state, from the REST API."""
        out = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return {ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""): ti["state"]
                for ti in out["task_instances"]}

    def deadlines(self, dag_id: str, run_id: str = "~") -> list[dict[str, Any]]:
        """A DAG's deadlines (every run, or one), as the UI's deadline panel reads them."""
        out = self.api("GET", f"/ui/dags/{dag_id}/dagRuns/{run_id}/deadlines", params={"limit": 100})
        return list(out["deadlines"])

    def deadline_alerts(self, dag_id: str) -> list[dict[str, Any]]:
        """The Deadline Alerts defined on a DAG (the UI's rule texts: name, reference type, interval)."""
        return list(self.api("GET", f"/ui/dags/{dag_id}/deadlineAlerts")["deadline_alerts"])

    # ------------------------------------------------------------------ logs
    def component_log(self, comp: str) -> str:
        path = self.logs / f"airflow-{comp}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def task_logs(self, dag_id: str | None = None) -> str:
        """Every task log file under this home (of one DAG), concatenated with their paths."""
        root = self.home / "airflow" / "logs" if self.home else None
        if root is None or not root.exists():
            return ""
        parts = []
        for path in sorted(root.rglob("*.log")):
            if dag_id is None or f"dag_id={dag_id}" in str(path):
                parts.append(f"==> {path.relative_to(root)}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def diagnose(self, lines: int = 40) -> str:
        """The last lines of every component log and of failed task logs (for assertion messages)."""
        out = []
        for comp in COMPONENTS:
            tail = self.component_log(comp).splitlines()[-lines:]
            out.append(f"--- {comp} ---\n" + "\n".join(tail))
        failed = [t for t in self.task_logs().split("==> ") if '"level":"error"' in t or "ERROR" in t]
        for t in failed[-3:]:
            out.append("--- task log ==> " + "\n".join(t.splitlines()[-lines:]))
        return "\n".join(out)


@contextlib.contextmanager
def scratch_warehouse(prefix: str = "pmp_live_wh") -> Iterator[tuple[dict[str, Any], str]]:
    """A fresh, empty warehouse database in the shared PostgreSQL for one local Airflow (its
    ``tsdb`` connection, and a DSN to read it), dropped afterwards: runs of several tests never
    see each other's loads. The schema is created by the first task that connects."""
    from psycopg.conninfo import make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin()
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield dict(CONNS["tsdb"], schema=name), make_conninfo(**dict(admin, dbname=name))
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def live_airflow(dags: str | Iterable[str], **kwargs: Any) -> Iterator[LiveAirflow]:
    """``with live_airflow("ercot_*", sim_url=...) as af:`` (same as ``with LiveAirflow(...)``)."""
    with LiveAirflow(dags, **kwargs) as af:
        yield af


_OUTCOMES: dict[str, dict[str, Any]] = {}


def once_per_worker(name: str, scenario: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``scenario()``'s outcome (plain data gathered while a local Airflow ran), computed once per
    test process. pytest-xdist tears a module's fixtures down whenever its worker runs out of queued
    tests, and the "live-airflow" group's modules reach their worker in several batches, so a
    module-scoped fixture that starts an Airflow was set up again (about 240 s each time) for the
    next test of the same module. A scenario that failed is reported again, not run again."""
    if name not in _OUTCOMES:
        try:
            _OUTCOMES[name] = scenario()
        except Exception as exc:
            _OUTCOMES[name] = {"__error__": f"{type(exc).__name__}: {exc}"}
            raise
    if "__error__" in _OUTCOMES[name]:
        import pytest

        pytest.fail(f"scenario {name} failed in an earlier setup: {_OUTCOMES[name]['__error__'][:2000]}")
    return _OUTCOMES[name]

