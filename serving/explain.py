"""SHAP explanations from LightGBM's own tree contributions, in words a clinician or coder reads.

``booster.predict(X, pred_contrib=True)`` gives the exact TreeSHAP values (the same numbers as
shap's TreeExplainer with the default tree-path-dependent perturbation) and was the faster of the two
for a single case, the service's main load (experiments/results/serving.md), so it is the one used.
Contributions add up on the model's raw scale (log yuan for the cost model, log-odds for
classifiers); each listed feature also gets its
``effect`` on the prediction itself — its step when the contributions are added largest first — so
"raised the expected cost by ¥2,400" is in yuan, and the steps add up to the prediction, exactly as
the page's waterfall draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import lightgbm
import numpy as np
import pandas as pd

from contract.fields import FIELD_BY_NAME
from models import lgbm

Link = Literal["identity", "log", "logit"]
Language = Literal["zh", "en"]
RAW_SCALE: dict[str, str] = {"identity": "yuan", "log": "log yuan", "logit": "log-odds"}


@dataclass(frozen=True)
class Explained:
    """Contributions for a batch: ``values`` is n × features, ``base`` and ``raw`` are length n."""

    features: list[str]
    values: np.ndarray
    base: np.ndarray
    raw: np.ndarray


def tree_contributions(booster: lightgbm.Booster, X: pd.DataFrame, threads: int = 1) -> Explained:
    """Exact per-feature SHAP values of the booster's raw output; base + Σ values = raw output."""
    values, base = lgbm.contributions(booster, X, threads)
    return Explained(list(X.columns), values, base, values.sum(axis=1) + base)


def output_scale(x: np.ndarray, raw: np.ndarray, prediction: np.ndarray, link: Link) -> np.ndarray:
    """Raw-scale values read on the prediction's scale, anchored so that ``raw`` reads as ``prediction``.

    The anchor keeps a log model's smearing factor; a classifier reads as the sigmoid of its log-odds
    (calibrated when the estimator explains on the calibrated scale, see ``Explanation.explains``).
    """
    if link == "log":
        return prediction[:, None] * np.exp(x - raw[:, None])
    if link == "logit":
        return _sigmoid(x)
    return x


def effects(
    picked: np.ndarray, base: np.ndarray, raw: np.ndarray, prediction: np.ndarray, link: Link
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contributions as steps on the prediction's scale, taken in the given order (largest first).

    Returns the start (the base value read as a prediction), each step and the step of the remaining
    contributions, so start + Σ steps + rest = the prediction exactly: the waterfall and the reasons
    show the same amounts and they add up in yuan (or probability).
    """
    path = base[:, None] + np.concatenate([np.zeros((len(base), 1)), np.cumsum(picked, axis=1)], axis=1)
    path = np.concatenate([path, raw[:, None]], axis=1)
    read = output_scale(path, raw, prediction, link)
    steps = np.diff(read, axis=1)
    return read[:, 0], steps[:, :-1], steps[:, -1]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Per row, the k largest contributions by size, largest first."""
    k = min(k, values.shape[1])
    if k == 0:
        return np.zeros((len(values), 0), dtype=np.intp)
    part = np.argpartition(-np.abs(values), k - 1, axis=1)[:, :k]
    order = np.argsort(-np.abs(np.take_along_axis(values, part, axis=1)), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def feature_names(catalog: Any, features: list[str]) -> dict[str, dict[str, str]]:
    """Readable zh/en name per feature: the feature catalog's, else the contract field's, else the column.

    The catalog is a frame with ``feature``, ``zh`` and ``en`` columns (``features.pipeline.CaseFeatures``);
    a prepared table's columns that are contract fields still read as their abstract labels.
    """
    named: dict[str, dict[str, str]] = {}
    if isinstance(catalog, pd.DataFrame) and {"feature", "zh", "en"} <= set(catalog.columns):
        named = {r.feature: {"zh": str(r.zh), "en": str(r.en)} for r in catalog.itertuples() if r.zh and r.en}
    out = {}
    for feature in features:
        field = FIELD_BY_NAME.get(feature)
        fallback = {"zh": field.zh, "en": field.en} if field else {"zh": feature, "en": feature}
        out[feature] = named.get(feature, fallback)
    return out


# Feature views that read the patient's earlier stays from the history given to the features.
PATIENT_HISTORY_VIEWS = ("patient_history", "comorbidity")


def patient_history_features(catalog: Any) -> frozenset[str]:
    """Features computed from the patient's earlier stays: a catalog row of a history-reading view
    with ``prior_sources`` (the comorbidity view's this-stay-only count is not one)."""
    if not isinstance(catalog, pd.DataFrame) or not {"feature", "view", "prior_sources"} <= set(
        catalog.columns
    ):
        return frozenset()
    reads_prior = catalog["view"].isin(PATIENT_HISTORY_VIEWS) & catalog["prior_sources"].fillna("").ne("")
    return frozenset(catalog.loc[reads_prior, "feature"])


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
    X: pd.DataFrame,
    prediction: np.ndarray,
    *,
    link: Link,
    unit: str,
    subject: str,
    names: dict[str, dict[str, str]],
    language: Language,
    top: int,
    withheld: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Per case, the explanation payload (see serving.schemas.Explanation) with the ``top`` largest parts.

    ``withheld`` features are never listed, whatever their size: their contributions are in ``rest``.
    """
    listable = np.array([j for j, f in enumerate(explained.features) if f not in withheld], dtype=np.intp)
    idx = listable[top_indices(explained.values[:, listable], top)]
    picked = np.take_along_axis(explained.values, idx, axis=1)
    start, picked_effects, rest_effect = effects(picked, explained.base, explained.raw, prediction, link)
    rest = explained.values.sum(axis=1) - picked.sum(axis=1)
    labels = [names.get(f, {language: f})[language] for f in explained.features]
    columns: dict[int, list[Any]] = {}  # only the listed features' values are read
    shown_of: dict[tuple[int, Any], str] = {}  # each distinct value of a feature is worded once

    def shown(j: int, row: int) -> str:
        if j not in columns:
            columns[j] = X[explained.features[j]].to_numpy(dtype=object).tolist()
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
        explained.base.tolist(),
        explained.raw.tolist(),
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
                    "feature": explained.features[j],
                    "name": labels[j],
                    "value": text,
                    "contribution": value,
                    "effect": effect,
                }
            )
            reasons.append(reason(labels[j], text, effect, unit, subject, language))
        out.append(
            {
                "raw_scale": RAW_SCALE[link],
                "base_value": base,
                "raw_output": raw,
                "base_prediction": first,
                "contributions": parts,
                "rest": left,
                "rest_effect": left_effect,
                "reasons": reasons,
            }
        )
    return out
