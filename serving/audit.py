"""The audit log: who asked for what, one JSON object per line under data_dir.

This file is the ONE place the service writes case ids: an insurance office must be able to answer
"who looked at this patient's case". It never holds keys (only key ids) nor case contents. Everything
else the service logs (access lines, errors, metrics) carries route templates, never ids.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO | None = None  # opened on first use, kept open: one write per request

    def record(
        self,
        *,
        key_id: str | None,
        role: str | None,
        endpoint: str,
        case_ids: list[str] | None = None,
        outcome: str = "allowed",
    ) -> None:
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "key_id": key_id,
            "role": role,
            "endpoint": endpoint,
            "outcome": outcome,
            "case_ids": [c for c in case_ids or [] if c is not None],
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            if self._handle is None or self._handle.closed:
                self._handle = self.path.open("a", encoding="utf-8", buffering=1)  # line-buffered
            self._handle.write(line)
