"""Per-key budgets of stored-history look-ups: how many patients' earlier stays a key may read a minute.

A prediction without its own ``history`` reads the patient's stays from the case store. Audited
one by one, that is still a way to sweep the store (500 patients in one batch took 0.3 s), so each
key gets a sliding one-minute budget of patients; a request that would exceed it is refused whole
(429, with ``Retry-After``), before anything is read. The count is per worker process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class HistoryBudget:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, deque[tuple[float, int]]] = defaultdict(deque)  # key → (time, patients)

    def take(self, key_id: str, patients: int) -> float | None:
        """Spend ``patients`` look-ups of ``key_id``; None when allowed, else seconds until they would be."""
        if patients <= 0:
            return None
        with self._lock:
            now = self.clock()
            spent = self._spent[key_id]
            while spent and spent[0][0] <= now - WINDOW_SECONDS:
                spent.popleft()
            used = sum(n for _, n in spent)
            if used + patients <= self.per_minute:
                spent.append((now, patients))
                return None
            if patients > self.per_minute:
                return WINDOW_SECONDS  # never fits: the caller must split the batch
            freed, wait = used, WINDOW_SECONDS
            for at, n in spent:  # the earliest moment enough of the window's look-ups expire
                freed -= n
                if freed + patients <= self.per_minute:
                    wait = at + WINDOW_SECONDS - now
                    break
            return max(math.ceil(wait), 1)
