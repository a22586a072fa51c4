"""One-case prediction requests, scored together in micro-batches (``serving.batching``).

A request's case is scored with its patient's stays from the case store as history (the store's
prepared ``StayIndex``); a request that sends its own history is scored alone (its history must not
reach anyone else's case). A batch the
model cannot score as a whole is scored case by case, so only the bad case's request answers 422.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from features.history import StayIndex
from serving.explain import Language
from serving.frames import cases_frame
from serving.predictions import ScoringError, payloads, score
from serving.registry import ServedModel


class ModelUnavailable(LookupError):
    """The task's model was unloaded between the request and its batch (answered as 503)."""


@dataclass(frozen=True)
class CaseRequest:
    case: BaseModel
    language: Language
    top: int


Outcome = tuple[ServedModel, dict[str, Any]] | Exception


def score_requests(
    requests: list[CaseRequest],
    model: Callable[[], ServedModel | None],
    history: Callable[[pd.DataFrame], pd.DataFrame | StayIndex | None],
    tables: Path | None = None,
) -> Sequence[Outcome]:
    """Each request's (model, prediction payload), or the error that request answers with."""
    served = model()
    if served is None:
        return [ModelUnavailable("the model is no longer loaded")] * len(requests)
    frame = cases_frame([r.case for r in requests])
    try:
        scored = score(served, frame, history(frame), tables=tables)
    except ScoringError as error:
        if len(requests) == 1:
            return [error]
        return [outcome for r in requests for outcome in score_requests([r], model, history, tables)]
    outcomes: list[Outcome] = [ScoringError("not scored")] * len(requests)
    by_wording = sorted(range(len(requests)), key=lambda i: (requests[i].language, requests[i].top))
    for (language, top), group in groupby(by_wording, key=lambda i: (requests[i].language, requests[i].top)):
        rows = list(group)
        for row, payload in zip(rows, payloads(scored.rows(rows), language, top), strict=True):
            outcomes[row] = (served, payload)
    return outcomes
