"""Predict and explain a frame of canonical cases with one served model: shared by the API and pages."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from serving.explain import Language, explanations
from serving.registry import ServedModel

log = logging.getLogger(__name__)


class ScoringError(ValueError):
    """Valid-looking input the model could not score (answered as 422, the message says which part)."""


def predict_explained(
    model: ServedModel,
    cases: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    language: Language = "zh",
    top: int = 8,
) -> list[dict[str, Any]]:
    """One prediction payload (see serving.schemas.Prediction) per row of ``cases``, in order."""
    try:
        X = model.features_for(cases, history)
        outputs = model.predict(X)
        explained = model.explain(X)
    except Exception as error:  # whatever a model cannot score is the input's answer (422), never a 500
        # Only the error type is logged: its message may quote case contents.
        log.warning("%s could not score a request: %s", model.name, type(error).__name__)
        raise ScoringError(f"{model.name} v{model.version} could not score these cases: {error}") from error
    value_column = (
        model.task.value_column if model.task.value_column in outputs.columns else outputs.columns[0]
    )
    values = outputs[value_column].to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise ScoringError(f"{model.name} v{model.version} gave no finite prediction for some of these cases")
    lower, upper = outputs.get(f"{value_column}_lower"), outputs.get(f"{value_column}_upper")
    task = model.task
    texts = explanations(
        explained,
        X,
        values,
        link=model.link,
        unit=task.unit,
        subject=task.zh if language == "zh" else task.en,
        names=model.names,
        language=language,
        top=top,
    )
    numeric = outputs.select_dtypes("number").astype("float64")
    records = numeric.where(np.isfinite(numeric), None).to_dict("records")
    case_ids = cases["case_id"].tolist() if "case_id" in cases.columns else [None] * len(cases)
    predictions = []
    for row, explanation in enumerate(texts):
        interval = None
        if lower is not None and upper is not None and model.level is not None:
            interval = {
                "lower": float(lower.iloc[row]),
                "upper": float(upper.iloc[row]),
                "level": float(model.level),
            }
        predictions.append(
            {
                "case_id": case_ids[row],
                "value": float(values[row]),
                "unit": task.unit,
                "interval": interval,
                "outputs": {k: v for k, v in records[row].items() if v is not None},
                "explanation": explanation,
            }
        )
    return predictions
