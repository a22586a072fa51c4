"""The coding-review queue as the service shows it: ranked once, then filtered and sorted per request.

The ranking is ``models.review_queue.coding_queue`` (the same as ``caselens queue coding``) over the
case store with the served coding model. It scores every case of the period and regroups the likely
corrections, far too slow for a request, so the ranked frame is cached and recomputed on first use
after a model reload.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pandas as pd

from contract.errors import StateError
from models.review_queue import QUEUE_COLUMNS, coding_queue
from serving.cases import CaseIndex, CasesUnavailable
from serving.registry import ModelRegistry

SORTABLE = ("rank", "department", "error_type", "error_probability", "money_at_stake", "expected_value")


class QueueUnavailable(StateError):
    """No queue can be ranked yet (answered as 503 with the message)."""


class ReviewQueue:
    def __init__(self, compute: Callable[[], pd.DataFrame]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._frame: pd.DataFrame | None = None
        self._weights_source: str | None = None

    def reset(self) -> None:
        with self._lock:
            self._frame = None
            self._weights_source = None

    def frame(self) -> pd.DataFrame:
        with self._lock:
            if self._frame is None:
                frame = self._compute()
                missing = [c for c in QUEUE_COLUMNS if c not in frame.columns]
                if missing:
                    raise QueueUnavailable(f"the ranked queue lacks columns {missing}")
                self._frame = frame.loc[:, list(QUEUE_COLUMNS)].reset_index(drop=True)
                sources = frame["weights_source"].dropna() if "weights_source" in frame else ()
                self._weights_source = str(sources.iloc[0]) if len(sources) else None
            return self._frame

    def weights_source(self) -> str | None:
        """Where the money at stake's weights came from: 'insurer table' or 'estimated from own
        history' (None when the ranking did not say)."""
        self.frame()
        return self._weights_source

    def view(
        self,
        *,
        department: str | None = None,
        error_type: str | None = None,
        sort: str = "rank",
        descending: bool = False,
        limit: int = 100,
    ) -> pd.DataFrame:
        """The queue filtered by department and likely error type, sorted by ``sort``, ``limit`` rows."""
        frame = self.frame()
        keep = pd.Series(True, index=frame.index)
        if department:
            keep &= frame["department"] == department
        if error_type:
            keep &= frame["error_type"] == error_type
        view = frame[keep].sort_values([sort, "rank"], ascending=[not descending, True], kind="stable")
        return view.head(limit)

    def choices(self) -> dict[str, list[str]]:
        """Distinct departments and error types, for the page's filters."""
        frame = self.frame()
        return {c: sorted(frame[c].dropna().astype(str).unique()) for c in ("department", "error_type")}


def store_queue(registry: ModelRegistry, cases: CaseIndex, period: str | None) -> Callable[[], pd.DataFrame]:
    """The ranking of ``period``'s unaudited cases (None: the latest discharge quarter in the store)."""

    def compute() -> pd.DataFrame:
        model = registry.models.get("coding")
        if model is None:
            raise QueueUnavailable("the coding model (caselens-coding) is not loaded")
        try:
            frame = cases.frame()
        except CasesUnavailable as error:
            raise QueueUnavailable(str(error)) from error
        chosen = period or str(frame["discharge_date"].max().to_period("Q"))
        try:
            return coding_queue(frame, model.model, chosen)
        except ValueError as error:  # e.g. no unaudited case in the period
            raise QueueUnavailable(str(error)) from error

    return compute
