"""ISO simulator: a loopback HTTP server that speaks each ISO's wire format, with switchable faults.

Each ISO module registers a :class:`Plugin` per real host under a URL prefix, e.g. ERCOT's
``www.ercot.com`` is served at ``/ercot/www`` and the rest of the path is the real path. Adding an
ISO adds a module to :data:`PLUGIN_MODULES`' package and nothing else.

Admin endpoints: ``GET|POST /__sim/faults`` (JSON ``{"name": count}``, -1 = always) and
``POST /__sim/now`` (JSON ``{"now": ISO-8601}``).

Fault ``withhold:<text>`` (any ISO): every request whose path contains ``<text>`` answers 404 as
if the ISO had not published it, e.g. ``withhold:/csv/realtime/`` stops NYISO's RTD LBMP files
while every other dataset keeps flowing, ``withhold:/damlbmp/20241105`` one day's DAM files.
Fault ``html_200:<text>`` (any ISO): the answer to a request whose path contains ``<text>`` is the
maintenance page with status 200 (like ``html_200``, which hits whatever request comes next: often a
listing), e.g. ``html_200:/csv/damlbmp/`` for NYISO's DAM files themselves. A HEAD still answers as
usual: the page is what a download receives.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("pmp.simulator")

# Faults every plugin can fire; ISO modules add their own with :func:`register_faults`.
FAULTS: list[str] = ["server_error", "rate_limit", "corrupt_zip", "slow", "token_expired", "stall", "html_200",
                     "cut_body", "empty_body", "truncated_csv"]
# ``stall``: the request is read and never answered for this long (or until the simulator stops):
# longer than any client timeout, so the client's read timeout is what ends it.
STALL_SECONDS = 600.0
MAINTENANCE_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Site Maintenance</title></head><body><h1>We'll be back "
                    b"soon</h1><p>The site is undergoing scheduled maintenance.</p></body></html>\n")
WITHHOLD = "withhold:"  # fault name prefix: withhold:<path fragment>
HTML_200_AT = "html_200:"  # fault name prefix: html_200:<path fragment>


def truncated_csv(body: bytes, content_type: str) -> bytes | None:
    """Fault ``truncated_csv``: every CSV of ``body`` (a CSV, or CSV members of a zip, zips of zips
    too) cut after half its lines, at a row boundary: a server-side truncation of a file without an
    end marker, still a valid CSV in a valid zip. None when ``body`` holds no CSV (the shot is kept)."""
    import io
    import zipfile

    if body[:4] != b"PK\x03\x04":
        if "csv" not in content_type.lower():
            return None
        lines = body.split(b"\n")
        return b"\n".join(lines[: max(len(lines) // 2, 1)]) + b"\n"
    src, buf, cut = zipfile.ZipFile(io.BytesIO(body)), io.BytesIO(), False
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            lower = info.filename.lower()
            new = truncated_csv(data, "text/csv" if lower.endswith(".csv") else "") if not info.is_dir() else None
            cut = cut or new is not None
            out.writestr(info, data if new is None else new)
    return buf.getvalue() if cut else None


def register_faults(*names: str) -> None:
    """Declare ISO-specific fault switches (e.g. an ISO's own error page)."""
    for name in names:
        if name not in FAULTS:
            FAULTS.append(name)


@dataclass
class Request:
    method: str
    path: str  # real path after the plugin prefix
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    sim: Simulator
    client: str = "127.0.0.1"  # the caller's address (per-client limits, e.g. ISO-NE's 403 wall)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, **headers: str) -> Response:
        return cls(status, json.dumps(obj).encode(), "application/json", dict(headers))


Handler = Callable[[Request], Response]
PLUGINS: dict[str, Handler] = {}  # URL prefix -> handler


def plugin(prefix: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        PLUGINS[prefix] = fn
        return fn

    return register


def _load_plugins() -> None:
    import pmp.simulator as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "server":
            importlib.import_module(f"pmp.simulator.{info.name}")


class Simulator:
    """Shared state: the simulated clock, fault switches and a request log."""

    def __init__(self, now: datetime | None = None, speed: float = 1.0, faults: dict[str, int] | None = None):
        self._base = now
        self._started = time.monotonic()
        self.speed = speed
        self.faults: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self.faults.update(faults or {})
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {}  # per-plugin state (tokens, rate-limit windows)
        self.stopping = threading.Event()  # set by SimHandle.stop: ends stalled requests

    def now(self) -> datetime:
        if self._base is None:
            return datetime.now(UTC)
        from datetime import timedelta

        return self._base + timedelta(seconds=(time.monotonic() - self._started) * self.speed)

    def set_now(self, now: datetime | None) -> None:
        self._base, self._started = now, time.monotonic()

    def withheld(self, path: str) -> bool:
        """A ``withhold:<text>`` fault matches ``path`` (and fires)."""
        return self.fires_at(WITHHOLD, path)

    def fires_at(self, prefix: str, path: str) -> bool:
        """A ``<prefix><text>`` fault (``withhold:``, ``html_200:``) matches ``path`` (and fires)."""
        names = [n for n in list(self.faults) if n.startswith(prefix) and n[len(prefix):] in path]
        return any(self.fire(n) for n in names)

    def fire(self, name: str) -> bool:
        """Consume one shot of a fault; True when it fires."""
        with self.lock:
            left = self.faults.get(name, 0)
            if left == 0:
                return False
            if left > 0:
                self.faults[name] = left - 1
            return True


def _make_handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, resp: Response, faults: bool = True) -> None:
            if faults and resp.status == 200 and self.command != "HEAD" and resp.body and sim.fire("cut_body"):
                # the whole Content-Length announced, half the body sent, then the connection closed
                self.send_response(200)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body[: len(resp.body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if (faults and resp.status == 200 and resp.body and sim.faults.get("truncated_csv")
                    and (cut := truncated_csv(resp.body, resp.content_type)) is not None and sim.fire("truncated_csv")):
                resp = Response(200, cut, resp.content_type, resp.headers)
            if faults and resp.status == 200 and (sim.fire("html_200") or (
                    self.command != "HEAD" and sim.fires_at(HTML_200_AT, self.path))):
                # a maintenance page served as success
                resp = Response(200, MAINTENANCE_PAGE, "text/html")
            elif faults and resp.status == 200 and sim.fire("empty_body"):
                resp = Response(200, b"", resp.content_type, resp.headers)
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

        def _admin(self, path: str, body: bytes) -> Response:
            if path == "/__sim/faults":
                if self.command == "POST":
                    with sim.lock:
                        sim.faults.update({k: int(v) for k, v in json.loads(body or b"{}").items()})
                return Response.json(sim.faults)
            if path == "/__sim/now" and self.command == "POST":
                value = json.loads(body or b"{}").get("now")
                sim.set_now(datetime.fromisoformat(value) if value else None)
                return Response.json({"now": sim.now().isoformat()})
            return Response.json({"error": "unknown admin endpoint"}, 404)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if parts.path.startswith("/__sim/"):
                self._send(self._admin(parts.path, body), faults=False)
                return
            with sim.lock:
                sim.requests.append((self.command, self.path))
            if sim.fire("slow"):
                time.sleep(2)
            if sim.fire("stall"):
                sim.stopping.wait(STALL_SECONDS)
                self.close_connection = True
                return
            if sim.fire("server_error"):
                self._send(Response(500, b"<html><body>500 Internal Server Error</body></html>", "text/html"))
                return
            if sim.withheld(parts.path):
                self._send(Response(404, b"Not Found", "text/plain"))
                return
            prefix = max((p for p in PLUGINS if parts.path.startswith(p + "/")), key=len, default=None)
            if prefix is None:
                self._send(Response(404, b"Not Found", "text/plain"))
                return
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            req = Request(self.command, parts.path[len(prefix):], query, dict(self.headers.items()), body, sim,
                          self.client_address[0])
            try:
                resp = PLUGINS[prefix](req)
            except Exception as exc:  # a simulator bug must surface as a 500, not a hang
                log.exception("simulator error on %s", self.path)
                resp = Response(500, f"simulator error: {exc}".encode(), "text/plain")
            self._send(resp)

        do_GET = do_POST = do_HEAD = _handle

    return H


class SimHandle:
    def __init__(self, server: ThreadingHTTPServer, sim: Simulator, thread: threading.Thread) -> None:
        self.server, self.sim, self.thread = server, sim, thread
        host, port = server.server_address[:2]
        self.port = int(port)
        self.url = f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self.sim.requests

    def set_faults(self, faults: dict[str, int]) -> None:
        with self.sim.lock:
            self.sim.faults.update(faults)

    def set_now(self, now: datetime | None) -> None:
        self.sim.set_now(now)

    def stop(self) -> None:
        self.sim.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> SimHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    host: str = "127.0.0.1", port: int = 0, now: datetime | None = None, speed: float = 1.0,
    faults: dict[str, int] | None = None,
) -> SimHandle:
    _load_plugins()
    sim = Simulator(now, speed, faults)
    server = ThreadingHTTPServer((host, port), _make_handler(sim))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="pmp-simulator", daemon=True)
    thread.start()
    return SimHandle(server, sim, thread)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=58080)
    ap.add_argument("--now", help="fixed simulated clock (ISO 8601 with offset); default: wall clock")
    ap.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    ap.add_argument("--fault", action="append", default=[], help="NAME[=N] (N=-1: always)")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    _load_plugins()
    faults = {}
    for f in args.fault:
        name, _, n = f.partition("=")
        if name not in FAULTS and not any(name.startswith(p) and len(name) > len(p) for p in (WITHHOLD, HTML_200_AT)):
            raise SystemExit(f"pmp simulate: unknown fault {name!r}; known: {', '.join(FAULTS)}")
        faults[name] = int(n or 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    handle = start_simulator(args.host, args.port, datetime.fromisoformat(args.now) if args.now else None,
                             args.speed, faults)
    print(f"simulator listening on {handle.url} (ISO prefixes: {', '.join(sorted(PLUGINS))})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    handle.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pmp simulate", description="ISO simulator on loopback")
    add_arguments(ap)
    return run(ap.parse_args(argv))
