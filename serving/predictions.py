"""Predict and explain a frame of canonical cases with one served model: shared by the API and pages.

Scoring (features, predictions, SHAP values) and wording (the payload in one language with the top
contributions) are separate steps, so a micro-batch of requests asking in different languages is
scored once and worded per request.

Only errors the input explains (a feature that cannot be built from the case, named by row and field)
are :class:`ScoringError`, answered 422; anything else is the service's fault and propagates, to be
answered 500 and logged without its message (:mod:`serving.faults`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from casemix.dictionaries import CODE_DICTIONARIES, known_codes
from contract.errors import InputError
from contract.fields import FIELD_BY_NAME
from features.history import StayIndex
from features.pipeline import FeatureInputError
from features.view import FeatureStageError
from models.explain import Explained
from serving.explain import Language, explanations
from serving.registry import ServedModel
from serving.roles import HISTORY_ROLES
from serving.schemas import OPTIONAL_IDS

log = logging.getLogger(__name__)

INPUT_ERRORS = (FeatureInputError, FeatureStageError)  # the errors whose cause is the case itself


class ScoringError(InputError):
    """Valid-looking input the model could not score (answered as 422, the message says which part)."""


class ScoringFault(RuntimeError):
    """The model answered something unusable for valid input: the service's fault (answered 500)."""


@dataclass(frozen=True)
class Scored:
    """One model's answer for a frame of cases (:class:`models.explain.Explained`), with the cases' ids
    and their codes the dictionaries do not hold, row by row."""

    model: ServedModel
    case_ids: list[Any]
    explained: Explained
    unknown_codes: list[list[tuple[str, str]]]  # per case: (field, code) not in the code dictionaries

    def rows(self, rows: list[int]) -> Scored:
        """The same answer for the given rows only."""
        return Scored(
            self.model,
            [self.case_ids[r] for r in rows],
            self.explained.rows(rows),
            [self.unknown_codes[r] for r in rows],
        )


def score(
    model: ServedModel,
    cases: pd.DataFrame,
    history: pd.DataFrame | StayIndex | None = None,
    threads: int = 1,
    tables: Path | None = None,
) -> Scored:
    """The model's features, predictions and SHAP values of ``cases`` (``CaseModel.explain_frame``).

    Raises :class:`ScoringError` when the cases cannot be turned into features (the message names row
    and field, never values); any other exception is a fault and propagates as it is. With ``tables``
    (the casemix tables folder), codes missing from its dictionaries are noted per case: they are
    scored like any level unseen in training, and the answer says so, as ingestion's warnings do.
    """
    case_ids = cases["case_id"].tolist() if "case_id" in cases.columns else [None] * len(cases)
    try:
        explained = model.model.explain_frame(with_request_ids(cases), history, threads)
    except INPUT_ERRORS as error:
        log.info("%s could not score a request: %s", model.name, type(error).__name__)
        raise ScoringError(f"{model.name} v{model.version} could not score these cases: {error}") from error
    if not np.isfinite(explained.prediction).all():
        raise ScoringFault(f"{model.name} v{model.version} gave a prediction that is not a finite number")
    return Scored(model, case_ids, explained, unknown_codes(cases, tables))


def with_request_ids(cases: pd.DataFrame) -> pd.DataFrame:
    """``cases`` with a missing case or patient id replaced by one of this request's own.

    The schema lets a pre-admission enquiry leave both out, but features place a case by them. A
    fresh random id can match no stored case or patient, so such a case is scored as a first stay
    with no history (its answer keeps ``case_id`` null).
    """
    missing = {c: cases[c].isna().to_numpy() for c in OPTIONAL_IDS if c in cases.columns}
    if not any(flags.any() for flags in missing.values()):
        return cases
    cases = cases.copy()
    for column, flags in missing.items():
        values = cases[column].to_numpy(dtype=object, copy=True)
        values[flags] = [f"unsaved-{uuid.uuid4().hex}" for _ in range(int(flags.sum()))]
        cases[column] = values
    return cases


def unknown_codes(cases: pd.DataFrame, tables: Path | None) -> list[list[tuple[str, str]]]:
    """Per case (by position), its (field, code) pairs that the code dictionaries do not hold."""
    found: list[list[tuple[str, str]]] = [[] for _ in range(len(cases))]
    if tables is None:
        return found
    for names, dictionary in CODE_DICTIONARIES:
        known = known_codes(tables / dictionary)
        for name in (n for n in names if n in cases.columns):
            for row, value in enumerate(cases[name].tolist()):
                for code in (value or "").split("|"):
                    if code and code not in known:
                        found[row].append((name, code))
    return found


def code_warning(field: str, code: str, language: Language) -> str:
    label = FIELD_BY_NAME[field]
    if language == "zh":
        return f"{label.zh} {code} 不在编码字典中，按训练中未见的编码处理"
    return f"{label.en}: code {code} is not in the code dictionaries; scored as a code unseen in training"


def payloads(
    scored: Scored, language: Language = "zh", top: int = 8, withheld: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """One prediction payload (see serving.schemas.Prediction) per scored case, in order.

    ``withheld`` features are never named: their contributions count in ``rest`` (see
    :func:`withheld_features`).
    """
    explained = scored.explained
    texts = explanations(
        explained, names=scored.model.model.names, language=language, top=top, withheld=withheld
    )
    outputs = explained.outputs
    numeric = {c: outputs[c].to_numpy(dtype="float64") for c in outputs.select_dtypes("number").columns}
    bounds, unit = explained.interval(), explained.output.unit
    predictions = []
    for row, explanation in enumerate(texts):
        interval = None
        if bounds is not None:
            lower, upper = float(bounds[0][row]), float(bounds[1][row])
            interval = {"lower": lower, "upper": upper, "level": explained.level}
        predictions.append(
            {
                "case_id": scored.case_ids[row],
                "value": float(explained.prediction[row]),
                "unit": unit,
                "interval": interval,
                "outputs": {c: float(a[row]) for c, a in numeric.items() if np.isfinite(a[row])},
                "explanation": explanation,
                "warnings": [code_warning(f, c, language) for f, c in scored.unknown_codes[row]],
            }
        )
    return predictions


def predict_explained(
    model: ServedModel,
    cases: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    language: Language = "zh",
    top: int = 8,
    threads: int = 1,
    tables: Path | None = None,
    withheld: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """One prediction payload per row of ``cases``, in order."""
    return payloads(score(model, cases, history, threads, tables), language, top, withheld)


def withheld_features(model: ServedModel, role: str, stored_history: bool) -> frozenset[str]:
    """The features an explanation must not name to ``role``.

    A role outside ``HISTORY_ROLES`` is never told what the patient's *stored* stays hold (earlier
    admissions, their costs, days since the last discharge, earlier diagnoses in the Charlson index):
    those features still count in the prediction, but only as part of ``rest``. History the caller
    sent in the request is its own knowledge and is named to any role.
    """
    if not stored_history or role in HISTORY_ROLES:
        return frozenset()
    return model.model.history_features
