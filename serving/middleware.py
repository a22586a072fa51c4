"""ASGI middleware: request metrics and access lines by route template, the body size limit and the
security headers of every answer.

Metrics and access lines label requests by the route's template (``/cases/{case_id}``), never the
concrete path, so no case id reaches the metrics or the logs, and metric cardinality stays bounded.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("caselens.serving.access")

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_across_processes(directory: Path) -> None:
    """Make the worker processes started after this call keep their metric values in ``directory``.

    prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is imported, so this must run before the
    workers start. The folder is emptied first: values left by an earlier run would be added in.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_DIR] = str(directory)


class Metrics:
    """Prometheus collectors of one app.

    In one process they live in the app's own registry (several apps may share a process, as in
    tests). Under ``caselens serve --workers N`` every worker writes its values to files in the
    PROMETHEUS_MULTIPROC_DIR the serve command set, and ``exposition`` adds up all workers' files,
    whichever worker answers /metrics.
    """

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "caselens_requests",
            "HTTP requests by endpoint",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "caselens_micro_batch_cases",
            "one-case requests scored together, per micro-batch",
            ["task"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.faults = Counter(
            "caselens_faults",
            "requests that failed inside the service (answered 500, logged by type and place)",
            ["endpoint"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "caselens_request_seconds",
            "request latency by endpoint",
            ["method", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of this app, or of every worker of the service in multi-process mode."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        workers = CollectorRegistry()
        MultiProcessCollector(workers, path=self.multiprocess_dir)
        return generate_latest(workers)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}
        start = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - start
            endpoint, method = route_template(scope), scope["method"]
            self.metrics.requests.labels(method, endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(method, endpoint).observe(elapsed)
            log.info("%s %s %d %.1fms", method, endpoint, status["code"], elapsed * 1000)


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        received = 0

        async def counting_receive() -> Message:
            # A chunked body has no Content-Length: count it; the app's exception handler answers 413.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)


async def _too_large(send: Send, max_bytes: int) -> None:
    body = f'{{"detail":"request body larger than {max_bytes} bytes"}}'.encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Pages and docs use scripts and styles from this server only (inline styles: the pages' own sheet,
# ReDoc's generated styles); nothing may frame a page (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
STATIC_PREFIX = "/static/"


class SecurityHeaders:
    """Headers every answer carries unless the endpoint set its own.

    ``Cache-Control: no-store`` on everything but the static documentation assets: answers and pages
    hold patient data, which no browser or proxy cache may keep. HSTS only when served over TLS.
    """

    def __init__(self, app: ASGIApp, tls: bool = False) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),  # not no-referrer: browsers would then send Origin: null
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if tls:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers
        if not scope["path"].startswith(STATIC_PREFIX):
            extra = [*extra, (b"cache-control", b"no-store")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
