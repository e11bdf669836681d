"""Shared HTTP behaviour of every ISO hook (``pmp.http``), over real HTTP on loopback: Retry-After
honoured, a Retry-After of minutes fails at once instead of holding the pool slot, and the
machine-wide pacer spaces the requests of separate processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pmp.http import IsoHttpError, Pacer, SharedPacer, new_session, request


class _Server(BaseHTTPRequestHandler):
    plan: list[tuple[int, dict[str, str]]] = []
    hits: list[float] = []

    def do_GET(self) -> None:
        _Server.hits.append(time.time())
        status, headers = _Server.plan.pop(0) if _Server.plan else (200, {})
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Server.plan, _Server.hits = [], []
    yield f"http://127.0.0.1:{srv.server_port}/api/data?key=s3cr3t"
    srv.shutdown()


def test_retry_after_is_waited_out(server: str) -> None:
    _Server.plan = [(429, {"Retry-After": "1"})]
    started = time.monotonic()
    resp = request(new_session(), "GET", server, pacer=Pacer(None), what="test", backoff=0.01)
    assert resp.status_code == 200 and len(_Server.hits) == 2
    assert time.monotonic() - started >= 1.0


def test_a_retry_after_of_minutes_fails_at_once_without_the_query(server: str) -> None:
    _Server.plan = [(429, {"Retry-After": "3600"})]
    started = time.monotonic()
    with pytest.raises(IsoHttpError, match="asks to wait 3600s") as err:
        request(new_session(), "GET", server, pacer=Pacer(None), what="test", backoff=0.01)
    assert time.monotonic() - started < 5 and len(_Server.hits) == 1
    assert err.value.status == 429 and "s3cr3t" not in str(err.value)


def test_no_sleep_after_the_last_attempt(server: str) -> None:
    _Server.plan = [(503, {}), (503, {})]
    slept: list[float] = []
    with pytest.raises(IsoHttpError, match="giving up after 2 attempts"):
        request(new_session(), "GET", server, pacer=Pacer(None), what="test", max_attempts=2, backoff=0.5,
                sleep=slept.append)
    assert slept == [0.5]  # one wait between the two attempts, none after the second


_CHILD = """
import sys, time
sys.path.insert(0, {include!r})
from pmp.http import SharedPacer
pacer = SharedPacer({interval!r}, {scope!r})
for _ in range(3):
    pacer.wait()
    print(time.time(), flush=True)
"""


def test_shared_pacer_spaces_requests_of_separate_processes() -> None:
    """Two processes (as two Airflow tasks are) pacing the same scope: every pair of the six
    requests, whichever process sent it, is at least the interval apart."""
    from helpers import ROOT

    interval, scope = 0.3, f"test {uuid.uuid4()}"
    code = _CHILD.format(include=str(ROOT / "include"), interval=interval, scope=scope)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    stamps = sorted(float(line) for p in procs for line in p.communicate(timeout=60)[0].split())
    assert len(stamps) == 6
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= interval - 0.01, gaps
    # and a scope of its own is not held back by them
    other = SharedPacer(interval, f"other {uuid.uuid4()}")
    started = time.monotonic()
    other.wait()
    assert time.monotonic() - started < interval


_PRIORITY_CHILD = """
import sys, time
sys.path.insert(0, {include!r})
from pmp.http import SharedPacer, realtime_priority
pacer = SharedPacer({interval!r}, {scope!r})
realtime = {realtime!r}
print("ask", time.time(), flush=True)
if realtime:
    with realtime_priority():
        for _ in range({n}):
            pacer.wait()
            print("grant", time.time(), flush=True)
else:
    for _ in range({n}):
        pacer.wait()
        print("grant", time.time(), flush=True)
"""


def test_shared_pacer_serves_a_realtime_caller_before_history() -> None:
    """Issue 12.1: a history process keeps the ISO's shared pacer busy; a real-time process that
    comes in meanwhile gets its three requests one after the other, no history request between them
    (before, the two took turns or history kept the lock), and the spacing still holds for all."""
    from helpers import ROOT

    interval, scope = 0.4, f"test {uuid.uuid4()}"

    def child(realtime: bool, n: int) -> subprocess.Popen:
        code = _PRIORITY_CHILD.format(include=str(ROOT / "include"), interval=interval, scope=scope,
                                      realtime=realtime, n=n)
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)

    history = child(False, 14)
    assert history.stdout is not None
    assert history.stdout.readline().startswith("ask")
    assert history.stdout.readline().startswith("grant")  # history is under way
    realtime = child(True, 3)
    rt_out = realtime.communicate(timeout=120)[0].split("\n")
    hist_out = history.communicate(timeout=120)[0].split("\n")
    rt = [float(line.split()[1]) for line in rt_out if line.startswith("grant")]
    hist = [float(line.split()[1]) for line in hist_out if line.startswith("grant")]
    assert len(rt) == 3 and len(hist) == 13
    assert rt[-1] < hist[-1]  # history was still loading when real time was served
    assert [h for h in hist if rt[0] < h < rt[-1]] == [], (rt, hist)
    stamps = sorted(rt + hist)
    assert min(b - a for a, b in zip(stamps, stamps[1:], strict=False)) >= interval - 0.01


def test_realtime_pool_slots_overlap_runs_not_requests() -> None:
    """CAISO's real-time pool has three slots (its six real-time datasets come due at one tick),
    its history pool one: three real-time processes at once, as three slots run them, still send
    their requests at least the OASIS interval apart through the shared pacer."""
    from helpers import ROOT

    from pmp.isos.caiso.hook import CaisoHook

    pools = CaisoHook.all_pools()
    assert pools["caiso_oasis"][0] == 1 and pools["caiso_oasis_realtime"][0] == 3

    interval, scope = 0.3, f"test {uuid.uuid4()}"
    code = _PRIORITY_CHILD.format(include=str(ROOT / "include"), interval=interval, scope=scope, realtime=True, n=2)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
             for _ in range(pools["caiso_oasis_realtime"][0])]
    stamps = sorted(float(line.split()[1]) for p in procs for line in p.communicate(timeout=60)[0].split("\n")
                    if line.startswith("grant"))
    assert len(stamps) == 6
    assert min(b - a for a, b in zip(stamps, stamps[1:], strict=False)) >= interval - 0.01
