"""A lean HTTP/1.1 load generator on asyncio streams, for the serving benchmark.

The client shares the machine's 2 cores with the server, so it must cost far less per request than
the server does: requests are encoded once as bytes, connections are kept alive, and a response is
read by its Content-Length, with no HTTP library in between (httpx costs ~1–2 ms of CPU a request,
as much as the service itself). Two shapes of load:

* open loop (``paced``): request i is due at start + i / rate whatever happened before; its latency
  counts from when it was due, so a stalled server cannot hide its queue (wrk2's correction for
  coordinated omission). A due request takes the kept-alive connection idle longest, as requests
  from many ward PCs spread over a server's workers (taking the most recently idle one sent 70–100%
  of them to one worker of two); with no idle connection it opens a new one.
* closed loop (``saturate``): N connections send back to back; the request rate is the throughput.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

try:  # the service's own event loop; plain asyncio works too, a little slower
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    uvloop = None


@dataclass
class Load:
    """Latencies (ms) of the successful requests, the error count and the wall time of one load run."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    client_cpu_seconds: float = 0.0

    def record(self, status: int, started: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append((time.perf_counter() - started) * 1000)
        else:
            self.errors += 1

    def percentiles(self) -> tuple[float, float]:
        if not self.latencies:
            return float("nan"), float("nan")
        p50, p99 = np.percentile(self.latencies, [50, 99])
        return float(p50), float(p99)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else float("nan")

    def row(self) -> str:
        """The run's table row: p90 and the slowest beside p50 and p99 show the tail's shape (a few
        stalls, or a slow fifth of the requests)."""
        p50, p90, p99, slowest = np.percentile(self.latencies or [np.nan], [50, 90, 99, 100])
        codes = ", ".join(f"{k}×{v}" for k, v in sorted(self.statuses.items()))
        cpu = self.client_cpu_seconds / max(len(self.latencies) + self.errors, 1) * 1000
        return (
            f"| {self.name} | {len(self.latencies)} | {self.errors} | {p50:.1f} | {p90:.1f} | {p99:.1f} | "
            f"{slowest:.1f} | {self.rate:.0f} | {cpu:.2f} | {codes} |"
        )


HEADER = (
    "| run | ok | errors | p50 ms | p90 ms | p99 ms | max ms | req/s | client CPU ms/req | statuses |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def encode_posts(url: str, bodies: Sequence[Any], headers: dict[str, str]) -> list[bytes]:
    """One ready-to-send POST per JSON body."""
    parts = urlsplit(url)
    lines = [f"Host: {parts.netloc}", "Content-Type: application/json", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    out = []
    for body in bodies:
        payload = json.dumps(body, ensure_ascii=False).encode()
        head = "\r\n".join([f"POST {parts.path} HTTP/1.1", *lines, f"Content-Length: {len(payload)}"])
        out.append(head.encode() + b"\r\n\r\n" + payload)
    return out


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole response; the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _paced(url: str, requests: list[bytes], rate: float, seconds: float, name: str) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    load, idle = Load(name), deque([await _Connection.open(host, port) for _ in range(4)])
    total = int(rate * seconds)

    async def one(i: int, due: float) -> None:
        connection = idle.popleft() if idle else None
        status = 0
        for _ in range(2):  # a kept-alive connection the server has closed meanwhile: once more
            try:
                connection = connection or await _Connection.open(host, port)
                status = await connection.exchange(requests[i % len(requests)])
                break
            except (OSError, asyncio.IncompleteReadError, ValueError):
                if connection is not None:
                    connection.close()
                connection = None
        load.record(status, due)
        if connection is not None:
            idle.append(connection)

    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    load.seconds = time.perf_counter() - start
    for connection in idle:
        connection.close()
    return load


async def _saturate(url: str, requests: list[bytes], clients: int, seconds: float, name: str) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    load, counter = Load(name), iter(range(10**9))
    stop = time.perf_counter() + seconds

    async def client() -> None:
        connection = await _Connection.open(host, port)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                status = await connection.exchange(requests[next(counter) % len(requests)])
            except (OSError, asyncio.IncompleteReadError, ValueError):
                load.record(0, started)
                connection = await _Connection.open(host, port)
                continue
            load.record(status, started)
        connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    load.seconds = time.perf_counter() - start
    return load


def _run(coroutine: Any) -> Load:
    cpu = time.process_time()
    load = uvloop.run(coroutine) if uvloop is not None else asyncio.run(coroutine)
    load.client_cpu_seconds = time.process_time() - cpu
    return load


def paced(name: str, url: str, requests: list[bytes], rate: float, seconds: float) -> Load:
    """Open loop at ``rate`` requests/s for ``seconds``."""
    return _run(_paced(url, requests, rate, seconds, name))


def saturate(name: str, url: str, requests: list[bytes], clients: int, seconds: float) -> Load:
    """Closed loop: ``clients`` connections back to back for ``seconds``."""
    return _run(_saturate(url, requests, clients, seconds, name))
