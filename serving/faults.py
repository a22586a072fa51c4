"""Faults: what the service answers and logs when something other than the caller's input goes wrong.

A fault answers 500 with the request id and nothing else: no exception text (it may quote case
contents or internals) reaches the caller, and the log gets only the exception's type and where it
was raised (file, line, function), never its message, arguments or locals. Tracebacks are not left
to the server to print: uvicorn's would carry the message (a ``ValueError`` quoting a diagnosis).
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.audit import current_caller
from serving.middleware import Metrics, route_template

log = logging.getLogger("caselens.serving.faults")


def describe(error: BaseException) -> str:
    """The exception's type and the frames it passed through, innermost last, without its message."""
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    cause = error.__cause__ or error.__context__
    tail = f"; from {type(cause).__name__}" if cause is not None else ""
    return f"{type(error).__name__} at {where or 'unknown'}{tail}"


def fault_detail() -> str:
    caller = current_caller()
    reference = f" (request {caller.request_id})" if caller else ""
    return f"internal error{reference}: the service could not answer; the fault is logged"


def report(what: str, error: BaseException) -> None:
    """Log a fault by type and location, with the request id to find it by."""
    caller = current_caller()
    log.error("%s: %s [request %s]", what, describe(error), caller.request_id if caller else "-")


class FaultBarrier:
    """ASGI middleware: any exception a route lets through is logged by ``report`` and answered 500.

    It sits inside the metrics middleware, which therefore counts the 500 (and ``caselens_faults``
    counts it by endpoint); the connection stays usable (the server sees a complete response).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception as error:
            report(f"{scope['method']} request failed", error)
            self.metrics.faults.labels(route_template(scope)).inc()
            if started:  # nothing more can be said on this response
                return
            body = ('{"detail":"' + fault_detail() + '"}').encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
