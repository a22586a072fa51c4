"""Cases from the store by case or patient id: the pages' cases and every prediction's history context.

The canonical store is read once, on first use, and indexed by case and patient id so a page costs
two dictionary look-ups, not a scan; ``reset`` (called on model reload) re-reads it. Its discharged
stays are also prepared once as a :class:`features.history.StayIndex`, so a request's history
features are binary searches rather than a fresh pass over the patient's stays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from contract.errors import StateError
from contract.settings import Settings
from features.history import StayIndex
from pipelines.store import StoreError, read_cases


class CasesUnavailable(StateError):
    """There is no case store to read (answered as 503)."""


class CaseIndex:
    def __init__(self, load: Callable[[], pd.DataFrame]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._frame: pd.DataFrame | None = None
        self._by_case: dict[str, int] = {}
        self._by_patient: dict[str, np.ndarray] = {}
        self._stays: StayIndex | None = None

    def reset(self) -> None:
        with self._lock:
            self._frame = None

    def frame(self) -> pd.DataFrame:
        """Every stored case (read on first use)."""
        return self._ready()

    def _ready(self) -> pd.DataFrame:
        with self._lock:
            if self._frame is None:
                frame = self._load().reset_index(drop=True)
                self._by_case = {c: i for i, c in enumerate(frame["case_id"])}
                self._by_patient = frame.groupby("patient_id", sort=False).indices
                self._stays = StayIndex(frame)
                self._frame = frame
            return self._frame

    def stay_index(self) -> StayIndex:
        """Every stored discharged stay, prepared for history look-ups (built with the frame)."""
        self._ready()
        assert self._stays is not None
        return self._stays

    def stays_of(self, patient_ids: list[str]) -> pd.DataFrame:
        """Every stored stay of these patients: the history context of a prediction request."""
        frame = self._ready()
        rows = [self._by_patient[p] for p in dict.fromkeys(patient_ids) if p in self._by_patient]
        return frame.iloc[np.concatenate(rows) if rows else []].reset_index(drop=True)

    def __call__(self, case_id: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The case as a one-row frame and the patient's other stays, or None when the id is unknown."""
        frame = self._ready()
        row = self._by_case.get(case_id)
        if row is None:
            return None
        case = frame.iloc[[row]]
        stays = self._by_patient.get(case["patient_id"].iloc[0], np.array([], dtype=int))
        return case.reset_index(drop=True), frame.iloc[stays[stays != row]].reset_index(drop=True)


def store_cases(settings: Settings) -> CaseIndex:
    """A CaseIndex over the canonical store written by ingestion."""

    def load() -> pd.DataFrame:
        try:
            return read_cases(settings.store_dir)
        except StoreError as error:
            raise CasesUnavailable(str(error)) from error

    return CaseIndex(load)
