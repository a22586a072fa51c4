"""Explanations in words a clinician or coder reads: the wording of a model's SHAP values.

The numbers (contributions, and their effects on the prediction's own scale) are the model's
(:meth:`models.pyfunc.CaseModel.explain_frame`, :mod:`models.explain`); this module only picks the
largest, names them and writes the sentences, in the order the page's waterfall draws them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from features.view import FEW_ROWS
from models.explain import Explained

Language = Literal["zh", "en"]
RAW_SCALE: dict[str, str] = {"identity": "yuan", "log": "log yuan", "logit": "log-odds"}


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Per row, the k largest contributions by size, largest first."""
    k = min(k, values.shape[1])
    if k == 0:
        return np.zeros((len(values), 0), dtype=np.intp)
    part = np.argpartition(-np.abs(values), k - 1, axis=1)[:, :k]
    order = np.argsort(-np.abs(np.take_along_axis(values, part, axis=1)), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def display_value(value: Any, language: Language) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "缺失" if language == "zh" else "missing"
    if isinstance(value, bool | np.bool_):
        return ("是" if value else "否") if language == "zh" else ("yes" if value else "no")
    if isinstance(value, float | np.floating):
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def reason(name: str, value: str, effect: float, unit: str, subject: str, language: Language) -> str:
    """One plain sentence, e.g. "Admissions in the last 365 days (3) raised the expected cost by ¥2,400"."""
    up = effect >= 0
    amount = f"¥{abs(effect):,.0f}" if unit == "yuan" else f"{abs(effect) * 100:.1f}"
    if language == "zh":
        verb = ("增加" if up else "减少") if unit == "yuan" else ("升高" if up else "降低")
        return f"{name}（{value}）使{subject}{verb}{amount}" + ("" if unit == "yuan" else "个百分点")
    verb = "raised" if up else "lowered"
    return f"{name} ({value}) {verb} the {subject} by {amount}" + (
        "" if unit == "yuan" else " percentage points"
    )


def explanations(
    explained: Explained,
    *,
    names: dict[str, dict[str, str]],
    language: Language,
    top: int,
    withheld: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Per case, the explanation payload (see serving.schemas.Explanation) with the ``top`` largest parts.

    ``withheld`` features are never listed, whatever their size: their contributions are in ``rest``.
    """
    contributions, output, X = explained.contributions, explained.output, explained.X
    unit, subject = output.unit, output.zh if language == "zh" else output.en
    listable = np.array([j for j, f in enumerate(contributions.features) if f not in withheld], dtype=np.intp)
    idx = listable[top_indices(contributions.values[:, listable], top)]
    picked = np.take_along_axis(contributions.values, idx, axis=1)
    start, picked_effects, rest_effect = explained.effects(picked)
    rest = contributions.values.sum(axis=1) - picked.sum(axis=1)
    labels = [names.get(f, {language: f})[language] for f in contributions.features]
    columns: dict[int, list[Any]] = {}  # only the listed features' values are read
    shown_of: dict[tuple[int, Any], str] = {}  # each distinct value of a feature is worded once
    few = len(X) <= FEW_ROWS  # a request's rows: each listed value read alone, no column made

    def shown(j: int, row: int) -> str:
        if few:  # (the contributions' features are X's columns, in order)
            value = X.iat[row, j]
        else:
            if j not in columns:
                columns[j] = X[contributions.features[j]].to_numpy(dtype=object).tolist()
            value = columns[j][row]
        try:
            return shown_of[j, value]
        except KeyError:
            shown_of[j, value] = text = display_value(value, language)
            return text
        except TypeError:  # an unhashable value: worded each time
            return display_value(value, language)

    # Python lists, not numpy rows: iterating numpy scalars costs more than building the answer.
    rows = zip(
        idx.tolist(),
        picked.tolist(),
        picked_effects.tolist(),
        contributions.base.tolist(),
        contributions.raw.tolist(),
        start.tolist(),
        rest.tolist(),
        rest_effect.tolist(),
        strict=True,
    )
    out = []
    for row, (features, values, steps, base, raw, first, left, left_effect) in enumerate(rows):
        parts, reasons = [], []
        for j, value, effect in zip(features, values, steps, strict=True):
            text = shown(j, row)
            parts.append(
                {
                    "feature": contributions.features[j],
                    "name": labels[j],
                    "value": text,
                    "contribution": value,
                    "effect": effect,
                }
            )
            reasons.append(reason(labels[j], text, effect, unit, subject, language))
        out.append(
            {
                "raw_scale": RAW_SCALE[output.link],
                "base_value": base,
                "raw_output": raw,
                "base_prediction": first,
                "contributions": parts,
                "rest": left,
                "rest_effect": left_effect,
                "reasons": reasons,
                "explains": explained.explains,
            }
        )
    return out
