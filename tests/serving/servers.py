"""A real uvicorn server in a thread, with everything any logger writes while it runs."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.serving.ports import free_port

CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own HTTP client logs the URLs it asks for


def serve_logged(app: Any) -> Iterator[tuple[str, io.StringIO]]:
    """Serve ``app`` on a free loopback port as ``caselens serve`` does (uvicorn's own access lines, which
    hold query strings, off: the app logs its own by route template); yields its URL and the log
    (tracebacks too) until done."""
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.addFilter(
        lambda record: not record.name.startswith(CLIENT_LOGGERS)
    )  # the test's, not the server's
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level="debug", access_log=False
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        running.should_exit = True
        thread.join(30)
        root.removeHandler(handler)
        root.setLevel(level)


logged_server = contextmanager(serve_logged)  # the same in a ``with`` block, for a test's own server
