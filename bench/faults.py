"""Fault-injection harness over the whole data path (issue 14).

Drives the real path (``pmp.pipeline.run_window``, the functions ``pmp download`` and the DAG tasks
run) against the ISO simulator, the local TimescaleDB and SeaweedFS. A golden run of clean days
(including the DST days 2024-03-10 and 2024-11-03) is compared with each scenario's result. Each
scenario runs in a database and staging prefix of its own: the fault is injected, the run is
tried; when it fails, the run is tried once more with the fault gone (a task retry or a new run).

Scores per scenario: ``survived`` (the day's rows equal the golden rows after at most one retry),
``clear`` (it failed with an error naming what and where, and nothing of the day committed), or
``silent`` (anything else: wrong rows, a half load, an unclear error). Across all: rows lost and
extra against golden, values different from golden (a clear failure's missing day is not counted
as lost: nothing was committed and the error says what to fix).

Scenarios are rows of :data:`SCENARIOS`; a fault the simulator cannot make is added by the harness
(``pg_terminate_backend`` from a second connection, the staging endpoint at a closed loopback port,
a SIGKILLed worker process, a client timeout shorter than a stall, a loopback HTTP proxy that resets
the connection or stalls in the middle of a body (:class:`FaultProxy`), a loopback listener that
never completes the handshake: a connect timeout).

    .venv/bin/python bench/faults.py [--only NAME[,NAME...]] [--fast]

Last line: ``faults: injected=<n> survived=<n> clear=<n> silent=<n> lost=<rows> extra=<rows> value_diffs=<n>``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="pmp-faults-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import psycopg  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from pmp import airflow_settings, registry  # noqa: E402

KEY = "ercot.lmp_dam"  # most scenarios; the per-ISO ones use each ISO's day-ahead LMPs
ISOS = ("ercot", "caiso", "nyiso", "isone", "pjm", "miso", "spp")
# ISOs whose published_at is when the API served the rows (PJM Data Miner has no publication time:
# the response's Date): it differs between any two runs, so it is not compared with golden
SERVED_AT_PUBLISHED = {"pjm"}
SPRING, FALL, PLAIN = date(2024, 3, 10), date(2024, 11, 3), date(2024, 11, 4)
GOLDEN_DAYS = (SPRING, FALL, PLAIN)
CONNS = airflow_settings.connections()
PG, S3 = CONNS["tsdb"], CONNS["pmp_s3"]
RUN = uuid.uuid4().hex[:6]


# -- environment ---------------------------------------------------------------------------------
def _admin() -> dict[str, Any]:
    return {"host": PG["host"], "port": PG["port"], "user": PG["login"], "password": PG["password"]}


@contextmanager
def database(name: str) -> Iterator[str]:
    """A database of its own, wired to the ``tsdb`` connection; dropped afterwards."""
    with psycopg.connect(**_admin(), dbname=PG["schema"], autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    os.environ["AIRFLOW_CONN_TSDB"] = json.dumps(dict(PG, schema=name))
    try:
        yield make_conninfo(**_admin(), dbname=name)
    finally:
        with psycopg.connect(**_admin(), dbname=PG["schema"], autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def staging(name: str, endpoint: str | None = None) -> None:
    s3 = json.loads(json.dumps(S3))
    if endpoint:
        s3["extra"]["endpoint_url"] = endpoint
    os.environ["AIRFLOW_CONN_PMP_S3"] = json.dumps(s3)
    os.environ["PMP_STAGING_URL"] = f"s3://{os.environ.get('PMP_S3_BUCKET', 'pmp-staging')}/faults-{RUN}/{name}/"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def point_isos_at(url: str) -> None:
    from live import SIM_CONNECTIONS, sim_conn

    # CAISO OASIS keeps its declared pacing (one request per 5 s): the simulator enforces it with 429,
    # and a retry run right after a failed one must wait its turn like a real task retry
    paced = {"caiso_default": {"min_request_interval_seconds": 5}}
    for conn_id in SIM_CONNECTIONS:
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(sim_conn(conn_id, url, **paced.get(conn_id, {})))


def day_window(key: str, day: date) -> tuple[str, str]:
    from pmp.timeutil import market_day_bounds

    start, end = market_day_bounds(day, registry.get(*key.split(".")).timezone)
    return start.isoformat(), end.isoformat()


def rows_of(dsn: str, key: str, day: date) -> dict[tuple, tuple]:
    """The day's rows of dataset ``key``: primary key -> the other stored values (not ingested_at)."""
    spec = registry.get(*key.split("."))
    start, end = day_window(key, day)
    cols = [c for c in spec.schema.columns if c not in spec.schema.key
            and not (c == "published_at" and spec.iso in SERVED_AT_PUBLISHED)]
    filters = {"iso": spec.iso.upper(), **spec.filters}
    with psycopg.connect(dsn) as c:
        found = c.execute(
            f"SELECT {', '.join(spec.schema.key)}, {', '.join(cols)} FROM {spec.table} WHERE "
            + "".join(f"{column} = %s AND " for column in filters) + "interval_start >= %s AND interval_start < %s",
            (*filters.values(), start, end),
        ).fetchall()
    n = len(spec.schema.key)
    return {r[:n]: r[n:] for r in found}


def docs_logged(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as c:
        return [r[0] for r in c.execute("SELECT count(*) FROM ingest_log GROUP BY iso, dataset, source_id")]


# -- injections the simulator cannot make ---------------------------------------------------------
def _patch(obj: Any, name: str, value: Any, stack: ExitStack) -> None:
    old = getattr(obj, name)
    setattr(obj, name, value)
    stack.callback(setattr, obj, name, old)


def _terminate_own_backend(cur: Any) -> None:
    pid = cur.connection.info.backend_pid
    with psycopg.connect(**_admin(), dbname=PG["schema"], autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))


def kill_db_during_copy(stack: ExitStack) -> None:
    from pmp import loader

    real = loader._copy

    def copy(cur: Any, *args: Any) -> None:
        _terminate_own_backend(cur)  # the COPY then meets a dead connection, inside the transaction
        real(cur, *args)

    _patch(loader, "_copy", copy, stack)


def kill_db_after_commit(stack: ExitStack) -> None:
    from pmp import loader, pipeline

    real = loader.load_batch

    def load_batch(conn: Any, **kw: Any) -> Any:
        result = real(conn, **kw)
        with conn.cursor() as cur:
            _terminate_own_backend(cur)  # committed: the connection dies before the task reports
        return result

    _patch(pipeline, "load_batch", load_batch, stack)


def s3_down(stack: ExitStack) -> None:
    staging(f"s3down-{uuid.uuid4().hex[:4]}", endpoint=f"http://127.0.0.1:{closed_port()}")


def s3_slow(stack: ExitStack) -> None:
    from pmp import staging as st

    real = st.open_store

    def slow_store() -> Any:
        store = real()
        put = store.put

        def slow_put(key: str, data: bytes, *, immutable: bool) -> bool:
            threading.Event().wait(1.5)
            return put(key, data, immutable=immutable)

        store.put = slow_put
        return store

    for module in (st, sys.modules["pmp.pipeline"]):
        _patch(module, "open_store", slow_store, stack)


def short_client_timeout(stack: ExitStack) -> None:
    """A stall is ended by the client's read timeout: the hooks' 300 s, cut to 2 s for the harness."""
    from pmp import http

    real = http.request

    def request(*args: Any, **kw: Any) -> Any:
        kw["timeout"] = 2
        return real(*args, **kw)

    for name, module in list(sys.modules.items()):
        if name.startswith("pmp.isos.") and getattr(module, "request", None) is real:
            _patch(module, "request", request, stack)


# -- a loopback HTTP proxy for faults the simulator cannot make ---------------------------------
SIM_URL = ""  # the simulator's base URL (set by main)


class FaultProxy:
    """A loopback HTTP proxy in front of the simulator, one request per connection (it asks for
    ``Connection: close``), that breaks the answers to requests whose path contains ``path`` (the
    first ``times`` of them, -1 = all) in ways the simulator's HTTP server cannot:

    * ``reset``: the headers and half the body are relayed, then the connection is reset (RST,
      ``SO_LINGER`` 0), not closed: the client's read fails with ``ConnectionResetError``;
    * ``stall``: the headers and half the body are relayed, then nothing more until the client
      gives up: a read timeout in the middle of the body, not before the first byte.

    Every other request is relayed unchanged."""

    def __init__(self, target: str, mode: str, path: str, times: int = 1) -> None:
        from urllib.parse import urlsplit

        t = urlsplit(target)
        self.target = (t.hostname or "127.0.0.1", int(t.port or 80))
        self.mode, self.path, self.left = mode, path, times
        self.fired = 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, name="faults-proxy", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop_event.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _fires(self, request_line: bytes) -> bool:
        with self.lock:
            if self.path.encode() not in request_line or self.left == 0:
                return False
            self.left -= 1 if self.left > 0 else 0
            self.fired += 1
            return True

    @staticmethod
    def _head(sock: socket.socket) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    @staticmethod
    def _length(head: bytes) -> int:
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return int(value.strip())
        return 0

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target, timeout=30) as upstream:
            head, body = self._head(client)
            if not head:
                return
            while len(body) < self._length(head):
                body += client.recv(65536)
            lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
            upstream.sendall(b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body)
            broken = self._fires(lines[0])
            answer_head, answer = self._head(upstream)
            want = self._length(answer_head)
            while len(answer) < want and (chunk := upstream.recv(65536)):
                answer += chunk
            if not broken:
                client.sendall(answer_head + b"\r\n\r\n" + answer)
                return
            client.sendall(answer_head + b"\r\n\r\n" + answer[: len(answer) // 2])
            if self.mode == "stall":
                self.stop_event.wait(600)  # never more: the client's read timeout ends it
            else:  # reset: RST instead of FIN
                import struct

                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def stop(self) -> None:
        self.stop_event.set()
        self.server.close()
        self.thread.join(timeout=5)


def via_proxy(mode: str, path: str, times: int = 1, *, short_timeout: bool = False) -> Callable[[ExitStack], None]:
    """The ISOs reached through a :class:`FaultProxy` for the attempt (the retry goes direct)."""

    def inject(stack: ExitStack) -> None:
        proxy = FaultProxy(SIM_URL, mode, path, times)

        def fired() -> None:  # a fault that never met a request would score as survived: a harness bug
            if not proxy.fired:
                raise RuntimeError(f"proxy fault {mode} never fired: no request path contained {path!r}")

        stack.callback(fired)
        stack.callback(point_isos_at, SIM_URL)
        stack.callback(proxy.stop)
        point_isos_at(proxy.url)
        if short_timeout:
            short_client_timeout(stack)

    return inject


def connect_timeout(stack: ExitStack) -> None:
    """A host that never completes the TCP handshake: a loopback listener that never accepts, its
    one-connection backlog already taken, so the kernel drops further SYNs and the client's
    connect timeout (cut to 2 s, :func:`short_client_timeout`) ends each try."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    fillers = []
    for _ in range(3):  # fill the accept queue (backlog 0 holds one, the kernel allows one more)
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(listener.getsockname())
        fillers.append(f)
    stack.callback(point_isos_at, SIM_URL)
    for sock in (listener, *fillers):
        stack.callback(sock.close)
    point_isos_at(url)
    short_client_timeout(stack)


def full_staging_disk(stack: ExitStack) -> None:
    from pmp import staging as st

    real = st.open_store

    def full_store() -> Any:
        store = real()

        def put(key: str, data: bytes, *, immutable: bool) -> bool:
            raise OSError(28, f"No space left on device: staging {key}")

        store.put = put
        return store

    for module in (st, sys.modules["pmp.pipeline"]):
        _patch(module, "open_store", full_store, stack)


def _rewrite_csv(payload: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """``payload`` (a CSV, or a zip of CSVs) with ``edit`` applied to each CSV."""
    import io
    import zipfile

    from pmp.payload import is_zip

    if not is_zip(payload):
        return edit(payload)
    src, buf = zipfile.ZipFile(io.BytesIO(payload)), io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, edit(data) if info.filename.lower().endswith(".csv") else data)
    return buf.getvalue()


def served_as(edit: Callable[[bytes], bytes]) -> Callable[[ExitStack], None]:
    """The ISO serves every document of the day changed by ``edit`` (drift, an error inside a zip)."""

    def inject(stack: ExitStack) -> None:
        adapter = registry.adapter("ercot")
        real = type(adapter).fetch

        def fetch(self: Any, spec: Any, refs: Any, *, hook: Any) -> Iterator[Any]:
            for doc in real(self, spec, refs, hook=hook):
                yield registry.FetchedDocument(doc.ref, doc.name, edit(doc.payload))

        _patch(type(adapter), "fetch", fetch, stack)

    return inject


def header_edit(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(payload: bytes) -> bytes:
        def csv(data: bytes) -> bytes:
            head, _, rest = data.partition(b"\n")
            return head.replace(old, new) + b"\n" + rest
        return _rewrite_csv(payload, csv)
    return edit


def drop_last_column(payload: bytes) -> bytes:
    def csv(data: bytes) -> bytes:
        return b"\n".join(line.rsplit(b",", 1)[0] if line else line for line in data.split(b"\n"))
    return _rewrite_csv(payload, csv)


def xml_error_in_zip(payload: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("error.xml", b'<?xml version="1.0"?><error><code>1000</code><message>No data</message></error>')
    return buf.getvalue()


def sigkill_at(point: str) -> Callable[[ExitStack], None]:
    """The worker dies (SIGKILL, no clean-up) at ``point``: the attempt runs in a forked process."""

    def inject(stack: ExitStack) -> None:
        from pmp import loader, pipeline
        from pmp import staging as st

        die = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731

        if point == "mid_download":
            real_fetch = pipeline.fetch

            def fetch(key: str, batch: list) -> list:
                adapter = registry.adapter(key.split(".")[0])
                next(iter(adapter.fetch(registry.get(*key.split(".")), [registry.DocumentRef.from_dict(batch[0])],
                                        hook=adapter.hook())))
                die()
                return real_fetch(key, batch)

            _patch(pipeline, "fetch", fetch, stack)
        elif point == "after_raw_write":
            real = st.open_store

            def store_then_die() -> Any:
                store = real()
                put = store.put

                def put_die(key: str, data: bytes, *, immutable: bool) -> bool:
                    written = put(key, data, immutable=immutable)
                    if key.startswith("raw/"):
                        die()
                    return written

                store.put = put_die
                return store

            _patch(pipeline, "open_store", store_then_die, stack)
        elif point == "during_copy":
            real_copy = loader._copy

            def copy(cur: Any, *args: Any) -> None:
                die()
                real_copy(cur, *args)

            _patch(loader, "_copy", copy, stack)
        elif point == "after_commit":
            real_load = loader.load_batch

            def load_die(conn: Any, **kw: Any) -> Any:
                real_load(conn, **kw)
                die()

            _patch(pipeline, "load_batch", load_die, stack)

    inject.forked = True  # type: ignore[attr-defined]
    return inject


# -- scenarios -----------------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    day: date = FALL
    key: str = KEY  # the dataset run (registry key)
    sim_faults: dict[str, int] = field(default_factory=dict)
    inject: Callable[[ExitStack], None] | None = None
    concurrent: int = 1  # runs of the same day at once
    runs: int = 1  # clean re-runs after the first (idempotence)
    fast: bool = False  # in tests/test_faults.py's CI subset


def _faults(**f: int) -> dict[str, int]:
    return dict(f)


# Where each ISO's day-ahead LMP documents are served (the simulator's html_200:<path> fault): the
# ISOs whose run asks for something else first (a listing, a token, a HEAD).
HTML_DOCUMENT_PATHS = {
    "ercot": "/misdownload/",
    "nyiso": "/csv/damlbmp/",
    "isone": "/histRpts/da-lmp/",
    "miso": "/marketreports/",
}


SCENARIOS: list[Scenario] = [
    Scenario("http_500_once", sim_faults=_faults(server_error=1), fast=True),
    Scenario("http_500_always", sim_faults=_faults(server_error=-1)),
    Scenario("http_500_spring_forward", day=SPRING, sim_faults=_faults(server_error=2)),
    Scenario("http_429_retry_after", sim_faults=_faults(rate_limit=1), fast=True),
    Scenario("http_429_plain_day", day=PLAIN, sim_faults=_faults(rate_limit=2)),
    Scenario("token_expired", sim_faults=_faults(token_expired=1)),
    Scenario("corrupt_zip_once", sim_faults=_faults(corrupt_zip=1), fast=True),
    Scenario("corrupt_zip_always", sim_faults=_faults(corrupt_zip=-1)),
    Scenario("html_200_once", sim_faults=_faults(html_200=1), fast=True),
    Scenario("html_200_always", sim_faults=_faults(html_200=-1)),
    Scenario("html_200_spring_forward", day=SPRING, sim_faults=_faults(html_200=-1)),
    Scenario("empty_body_always", sim_faults=_faults(empty_body=-1)),
    Scenario("body_cut_mid_transfer", sim_faults=_faults(cut_body=1), fast=True),
    Scenario("body_cut_always", sim_faults=_faults(cut_body=-1)),
    Scenario("read_timeout_stall", sim_faults=_faults(stall=1), inject=short_client_timeout),
    Scenario("slow_server", sim_faults=_faults(slow=2)),
    Scenario("withheld_day", sim_faults={"withhold:/public-reports/": -1}),
    Scenario("db_killed_during_copy", inject=kill_db_during_copy, fast=True),
    Scenario("db_killed_after_commit", inject=kill_db_after_commit),
    Scenario("s3_down_during_stage", inject=s3_down),
    Scenario("s3_slow_during_stage", inject=s3_slow),
    Scenario("full_staging_disk", inject=full_staging_disk),
    Scenario("sigkill_mid_download", inject=sigkill_at("mid_download")),
    Scenario("sigkill_after_raw_write", inject=sigkill_at("after_raw_write")),
    Scenario("sigkill_during_copy", inject=sigkill_at("during_copy")),
    Scenario("sigkill_after_commit", inject=sigkill_at("after_commit")),
    Scenario("two_concurrent_runs", concurrent=2, fast=True),
    Scenario("three_concurrent_runs_fall_back", concurrent=3),
    Scenario("rerun_is_idempotent", runs=1),
    Scenario("rerun_spring_forward", day=SPRING, runs=1),
    Scenario("drift_column_renamed", inject=served_as(header_edit(b"SettlementPointPrice", b"SPPrice"))),
    Scenario("drift_column_added", inject=served_as(header_edit(b"DSTFlag", b"DSTFlag,Extra"))),
    Scenario("drift_column_dropped", inject=served_as(drop_last_column)),
    Scenario("xml_error_inside_zip", inject=served_as(xml_error_in_zip)),
    # a server-side truncation at a row boundary (the simulator's truncated_csv: still a valid zip)
    Scenario("truncated_rows", sim_faults=_faults(truncated_csv=-1), fast=True),
    Scenario("truncated_rows_spring_forward", day=SPRING, sim_faults=_faults(truncated_csv=1)),
    # the same faults on the DST days and a plain day
    Scenario("corrupt_zip_spring_forward", day=SPRING, sim_faults=_faults(corrupt_zip=-1)),
    Scenario("body_cut_fall_back", sim_faults=_faults(cut_body=2)),
    Scenario("body_cut_plain_day", day=PLAIN, sim_faults=_faults(cut_body=1)),
    Scenario("empty_body_spring_forward", day=SPRING, sim_faults=_faults(empty_body=1)),
    Scenario("token_expired_spring_forward", day=SPRING, sim_faults=_faults(token_expired=1)),
    Scenario("db_killed_during_copy_spring_forward", day=SPRING, inject=kill_db_during_copy),
    Scenario("db_killed_after_commit_spring_forward", day=SPRING, inject=kill_db_after_commit),
    Scenario("sigkill_during_copy_spring_forward", day=SPRING, inject=sigkill_at("during_copy")),
    Scenario("sigkill_after_commit_plain_day", day=PLAIN, inject=sigkill_at("after_commit")),
    Scenario("two_concurrent_runs_spring_forward", day=SPRING, concurrent=2),
    # through the harness's loopback proxy: what the simulator's HTTP server cannot do
    Scenario("proxy_reset_mid_body", inject=via_proxy("reset", "/misdownload/"), fast=True),
    Scenario("proxy_reset_mid_body_always", inject=via_proxy("reset", "/misdownload/", -1)),
    Scenario("proxy_reset_mid_body_nyiso", key="nyiso.lmp_dam", inject=via_proxy("reset", "/csv/damlbmp/", 2)),
    Scenario("proxy_stall_mid_body", inject=via_proxy("stall", "/misdownload/", short_timeout=True)),
    Scenario("proxy_stall_mid_body_spring_forward", day=SPRING,
             inject=via_proxy("stall", "/misdownload/", short_timeout=True)),
    Scenario("connect_timeout", inject=connect_timeout, fast=True),
    # an HTML page with 200 for every ISO: for every request of the run (listings, tokens, files) ...
    *(Scenario(f"html_200_{iso}", key=f"{iso}.lmp_dam", sim_faults=_faults(html_200=-1), fast=iso == "nyiso")
      for iso in ISOS),
    # ... and for the documents themselves, past a listing or a HEAD that answered as usual
    *(Scenario(f"html_200_document_{iso}", key=f"{iso}.lmp_dam", sim_faults={f"html_200:{path}": -1})
      for iso, path in HTML_DOCUMENT_PATHS.items()),
]


# -- running ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    name: str
    score: str
    lost: int = 0
    extra: int = 0
    value_diffs: int = 0
    errors: list[str] = field(default_factory=list)


def _attempt(key: str, day: date) -> str | None:
    """One run of the day (the real path): None on success, else the error's message."""
    from pmp import pipeline

    start, end = day_window(key, day)
    try:
        pipeline.run_window(key, start, end)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _forked_attempt(key: str, day: date, inject: Callable[[ExitStack], None]) -> str | None:
    ctx = multiprocessing.get_context("fork")

    def child() -> None:
        with ExitStack() as stack:
            inject(stack)
            os._exit(0 if _attempt(key, day) is None else 1)

    p = ctx.Process(target=child)
    p.start()
    p.join()
    return None if p.exitcode == 0 else f"worker exited with {p.exitcode} (killed)"


def _clear(message: str, key: str, day: date) -> bool:
    """An error that names what and where: the dataset, the document or the endpoint."""
    iso = key.split(".")[0]
    needles = (iso, iso.upper(), str(day), "raw/", "http://", "connection", "terminat", "killed", "No space",
               ".csv", ".zip", ", line ", "field ")
    return bool(message) and any(n in message for n in needles)


def run_scenario(s: Scenario, sim: Any, golden: dict[tuple[str, date], dict[tuple, tuple]]) -> Outcome:
    from pmp import db

    db._MIGRATED.clear()
    name = f"pmp_faults_{RUN}_{s.name}"[:63]
    with database(name) as dsn, ExitStack() as stack:
        with psycopg.connect(dsn) as c:
            db.migrate(c)  # the warehouse exists before the fault (a run may fail before it connects)
        staging(s.name)
        sim.set_now(datetime.combine(s.day + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=18))
        sim.set_faults(s.sim_faults)
        errors: list[str] = []
        if s.inject is not None and getattr(s.inject, "forked", False):
            first = _forked_attempt(s.key, s.day, s.inject)
        else:
            if s.inject is not None:
                s.inject(stack)
            if s.concurrent > 1:
                results: list[str | None] = []
                threads = [threading.Thread(target=lambda: results.append(_attempt(s.key, s.day))) for _ in range(s.concurrent)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                first = next((r for r in results if r), None)
            else:
                first = _attempt(s.key, s.day)
        stack.close()  # the fault is gone for the retry
        sim.set_faults({k: 0 for k in s.sim_faults})
        staging(s.name)
        partial = retry_failed = False
        if first:
            errors.append(first)
            got = rows_of(dsn, s.key, s.day)
            partial = bool(got) and got != golden[s.key, s.day]
            second = _attempt(s.key, s.day)
            if second:
                errors.append(second)
                retry_failed = True
        for _ in range(s.runs):
            again = _attempt(s.key, s.day)
            if again:
                errors.append(again)
        got, want = rows_of(dsn, s.key, s.day), golden[s.key, s.day]
        lost = len(want.keys() - got.keys())
        extra = len(got.keys() - want.keys())
        diffs = sum(1 for k in want.keys() & got.keys() if got[k] != want[k])
        one_log_row = all(n == 1 for n in docs_logged(dsn))
        if not lost and not extra and not diffs and not partial and one_log_row and not retry_failed:
            score = "survived"
        elif errors and all(_clear(e, s.key, s.day) for e in errors) and not partial and not extra and not diffs:
            score = "clear"
        else:
            score = "silent"
        return Outcome(s.name, score, lost, extra, diffs, errors)


def golden_rows(sim: Any, scenarios: list[Scenario]) -> dict[tuple[str, date], dict[tuple, tuple]]:
    """The clean runs: ERCOT's golden days and each other (dataset, day) a scenario runs."""
    from pmp import db

    db._MIGRATED.clear()
    out = {}
    wanted = [(KEY, day) for day in GOLDEN_DAYS]
    wanted += sorted({(s.key, s.day) for s in scenarios} - set(wanted))
    with database(f"pmp_faults_{RUN}_golden") as dsn:
        staging("golden")
        for key, day in wanted:
            sim.set_now(datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=18))
            err = _attempt(key, day)
            if err:
                raise RuntimeError(f"golden run of {key} {day} failed: {err}")
            out[key, day] = rows_of(dsn, key, day)
            if not out[key, day]:
                raise RuntimeError(f"golden run of {key} {day} loaded no rows")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--fast", action="store_true", help="the CI subset (tests/test_faults.py)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    chosen = SCENARIOS
    if args.fast:
        chosen = [s for s in chosen if s.fast]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {s.name for s in SCENARIOS}
        if unknown:
            ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        chosen = [s for s in chosen if s.name in wanted]
    if args.list:
        print("\n".join(s.name for s in chosen))
        return 0
    subprocess.run([str(ROOT / "scripts" / "services.sh"), "start"], check=True, stdout=subprocess.DEVNULL)
    import logging

    logging.disable(logging.WARNING)  # retries log warnings by design; the table below is the output
    from pmp.simulator.server import start_simulator

    with start_simulator(now=datetime(2024, 11, 6, 18, tzinfo=UTC)) as sim:
        global SIM_URL
        SIM_URL = sim.url
        point_isos_at(sim.url)
        golden = golden_rows(sim, chosen)
        outcomes = []
        for s in chosen:
            try:
                o = run_scenario(s, sim, golden)
            except Exception:
                o = Outcome(s.name, "silent", errors=[traceback.format_exc()])
            outcomes.append(o)
            first = (o.errors[0] if o.errors else "").replace("\n", " ")[-200 if o.score == "silent" else 0:][:200]
            print(f"{o.name:34} {o.score:9} lost={o.lost} extra={o.extra} value_diffs={o.value_diffs}  {first}",
                  flush=True)
    n = {k: sum(o.score == k for o in outcomes) for k in ("survived", "clear", "silent")}
    counted = [o for o in outcomes if o.score != "clear"]
    print(f"faults: injected={len(outcomes)} survived={n['survived']} clear={n['clear']} silent={n['silent']} "
          f"lost={sum(o.lost for o in counted)} extra={sum(o.extra for o in counted)} "
          f"value_diffs={sum(o.value_diffs for o in counted)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
