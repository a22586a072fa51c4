"""The audit log: who asked for what, one JSON object per line under data_dir.

This file is the ONE place the service writes case and patient ids: an insurance office must be able
to answer "who looked at this patient's case" and "whose stored history did this key read". It never
holds keys (only key ids) nor case contents. Everything else the service logs (access lines, errors,
metrics) carries route templates, never ids.

Every entry names the request (its id, also sent back as ``X-Request-ID``) and the client address,
taken from the request being served (:class:`RequestContext`), so the routers need not pass them. The
file is created 0600, reopened when log rotation moves it away, and each entry stays on one line
whatever the ids hold (U+2028/2029 and U+0085 are escaped as JSON escapes).
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # a caller's own request id is kept when it looks like one
# Line breaks JSON leaves as they are (it escapes only U+0000-U+001F): a reader splitting lines
# (Python's splitlines, JavaScript) would otherwise cut one entry in two.
_LINE_BREAKS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


@dataclass(frozen=True)
class Caller:
    request_id: str
    client: str | None


_CURRENT: ContextVar[Caller | None] = ContextVar("caselens_request", default=None)


def current_caller() -> Caller | None:
    """The request being served (None outside a request, e.g. at start-up)."""
    return _CURRENT.get()


class RequestContext:
    """ASGI middleware: gives every request an id (the caller's ``X-Request-ID`` when well formed) and
    notes its client address, for the audit log and for fault reports; the id is sent back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = sent if _CALLER_ID.fullmatch(sent) else uuid.uuid4().hex
        client = scope.get("client")
        token = _CURRENT.set(Caller(request_id, client[0] if client else None))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _CURRENT.reset(token)


class AuditLog:
    """Appends entries to ``path``; a write that fails raises (an unaudited data access must not pass).

    Not :class:`logging.handlers.WatchedFileHandler`, which reopens the same way but swallows write
    errors: here they must reach the request (and /readyz).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: TextIO | None = None  # opened on first use, kept open: one write per request
        self._identity: tuple[int, int] | None = None

    def record(
        self,
        *,
        key_id: str | None,
        role: str | None,
        endpoint: str,
        case_ids: list[str] | None = None,
        outcome: str = "allowed",
        patient_ids: list[str] | None = None,
    ) -> None:
        """One entry; ``patient_ids`` are the patients whose stored stays were read for the request."""
        caller = current_caller()
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "request_id": caller.request_id if caller else None,
            "client": caller.client if caller else None,
            "key_id": key_id,
            "role": role,
            "endpoint": endpoint,
            "outcome": outcome,
            "case_ids": [c for c in case_ids or [] if c is not None],
        }
        if patient_ids is not None:
            entry["history_patient_ids"] = [p for p in patient_ids if p is not None]
        line = json.dumps(entry, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"
        with self._lock:
            handle = self._open()
            # A lone surrogate cannot be UTF-8: written as its JSON escape, never an encoding error.
            handle.write(line.encode("utf-8", "backslashreplace").decode("utf-8"))
            handle.flush()

    def writable(self) -> bool:
        """Whether an entry could be written now (the file opens, or reopens after rotation)."""
        try:
            with self._lock:
                self._open()
            return os.access(self.path, os.W_OK)
        except OSError:
            return False

    def _open(self) -> TextIO:
        """The open file, reopened when it was moved or deleted (log rotation) since it was opened."""
        try:
            stat = os.stat(self.path)
            current: tuple[int, int] | None = (stat.st_dev, stat.st_ino)
        except FileNotFoundError:
            current = None
        if self._handle is not None and not self._handle.closed and current == self._identity:
            return self._handle
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # also a file an earlier version created world-readable
        self._handle = os.fdopen(fd, "a", encoding="utf-8")
        stat = os.fstat(fd)
        self._identity = (stat.st_dev, stat.st_ino)
        return self._handle
