"""A StatsD receiver on loopback UDP for tests: collects every metric line it is sent.

    with StatsdReceiver() as rx:   # rx.port: point [metrics] statsd_port at it
        ...
        rx.values("airflow.pmp.rows_loaded", iso="ercot")   # [1234.0, ...]

Lines are parsed in the InfluxDB-tag form Airflow sends with ``statsd_influxdb_enabled``:
``name,tag=value,…:value|type`` (``|@rate`` ignored).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    tags: dict[str, str]
    value: float
    kind: str  # c, g, ms


def parse(line: str) -> Metric | None:
    head, sep, rest = line.partition(":")
    if not sep or "|" not in rest:
        return None
    value, kind = rest.split("|")[:2]
    name, *pairs = head.split(",")
    tags = dict(p.split("=", 1) for p in pairs if "=" in p)
    try:
        return Metric(name, tags, float(value), kind)
    except ValueError:
        return None


class StatsdReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.metrics: list[Metric] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="statsd-receiver", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            got = [m for line in data.decode(errors="replace").splitlines() if (m := parse(line))]
            with self._lock:
                self.metrics.extend(got)

    def matching(self, name: str, **tags: str) -> list[Metric]:
        with self._lock:
            return [m for m in self.metrics if m.name == name and all(m.tags.get(k) == v for k, v in tags.items())]

    def values(self, name: str, **tags: str) -> list[float]:
        return [m.value for m in self.matching(name, **tags)]

    def names(self, prefix: str = "") -> set[str]:
        with self._lock:
            return {m.name for m in self.metrics if m.name.startswith(prefix)}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> StatsdReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
