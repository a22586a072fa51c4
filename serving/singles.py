"""One-case prediction requests, scored together in micro-batches (``serving.batching``).

A request's case is scored with its patient's stays from the case store as history (the store's
prepared ``StayIndex``); a request that sends its own history is scored alone (its history must not
reach anyone else's case). A batch that cannot be scored as a whole, whatever the reason, is scored
case by case by the micro-batcher, so only the bad case's request fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from contract.errors import StateError
from contract.fields import canonical_records
from features.history import StayIndex
from serving.explain import Language
from serving.predictions import payloads, score
from serving.registry import ServedModel


class ModelUnavailable(StateError):
    """The task's model was unloaded between the request and its batch (answered as 503)."""


@dataclass(frozen=True)
class CaseRequest:
    case: BaseModel
    language: Language
    top: int
    show_history: bool = True  # whether the explanation may name features from stored history


Outcome = tuple[ServedModel, dict[str, Any]] | Exception


def score_requests(
    requests: list[CaseRequest],
    model: Callable[[], ServedModel | None],
    history: Callable[[pd.DataFrame], pd.DataFrame | StayIndex | None],
    tables: Path | None = None,
) -> Sequence[Outcome]:
    """Each request's (model, prediction payload); raises when the requests cannot be scored together."""
    served = model()
    if served is None:
        return [ModelUnavailable("the model is no longer loaded")] * len(requests)
    frame = canonical_records([r.case.model_dump() for r in requests])
    scored = score(served, frame, history(frame), tables=tables)
    outcomes: list[Any] = [None] * len(requests)

    def wording(i: int) -> tuple[str, int, bool]:
        return requests[i].language, requests[i].top, requests[i].show_history

    for (language, top, show_history), group in groupby(sorted(range(len(requests)), key=wording), wording):
        rows = list(group)
        withheld = frozenset() if show_history else served.model.history_features
        worded = payloads(scored.rows(rows), language, top, withheld)  # type: ignore[arg-type]
        for row, payload in zip(rows, worded, strict=True):
            outcomes[row] = (served, payload)
    return outcomes
