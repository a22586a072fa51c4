"""What a model's answer is: its features, outputs and exact SHAP values, read on the prediction's scale.

``booster.predict(X, pred_contrib=True)`` gives the exact TreeSHAP values (the same numbers as
shap's TreeExplainer with the default tree-path-dependent perturbation) and was the faster of the two
for a single case, the service's main load (experiments/results/serving.md), so it is the one used.
Contributions add up on the model's raw scale, its task's ``link`` (log yuan for the cost model,
log-odds for classifiers); :func:`effects` turns them into steps on the prediction itself, so
"raised the expected cost by ¥2,400" is in yuan and the steps add up to the prediction. The model
owns all of this (:meth:`models.pyfunc.CaseModel.explain_frame`); serving only words and draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import pandas as pd

from contract.fields import FIELD_BY_NAME
from models import lgbm
from models.task import Link, Output


@dataclass(frozen=True)
class Contributions:
    """SHAP values for a batch: ``values`` is n × features, ``base`` and ``raw`` are length n, and
    base + Σ values = raw, the model's output on its link's scale."""

    features: list[str]
    values: np.ndarray
    base: np.ndarray
    raw: np.ndarray

    @classmethod
    def of(cls, features: list[str], values: np.ndarray, base: np.ndarray) -> Contributions:
        return cls(features, values, base, values.sum(axis=1) + base)

    def rows(self, rows: list[int]) -> Contributions:
        return Contributions(self.features, self.values[rows], self.base[rows], self.raw[rows])


def tree_contributions(booster: lightgbm.Booster, X: pd.DataFrame, threads: int = 1) -> Contributions:
    """Exact per-feature SHAP values of the booster's raw output."""
    return Contributions.of(list(X.columns), *lgbm.contributions(booster, X, threads))


@dataclass(frozen=True)
class Explained:
    """A model's answer for a frame of cases, positionally aligned with it.

    ``X`` is the feature frame the estimator saw, ``outputs`` every output column, ``prediction`` the
    task's prediction (``output.column``) as floats, ``contributions`` its SHAP values; ``explains``
    says what they add up to ("prediction", or "uncalibrated score" under isotonic calibration) and
    ``level`` is the interval's coverage when the model gives one.
    """

    X: pd.DataFrame
    outputs: pd.DataFrame
    prediction: np.ndarray
    contributions: Contributions
    output: Output
    explains: str = "prediction"
    level: float | None = None

    def interval(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The prediction's (lower, upper) bounds, when the model gives an interval."""
        lower, upper = (self.outputs.get(f"{self.output.column}_{end}") for end in ("lower", "upper"))
        if lower is None or upper is None or self.level is None:
            return None
        return lower.to_numpy(dtype="float64"), upper.to_numpy(dtype="float64")

    def rows(self, rows: list[int]) -> Explained:
        """The same answer for the given rows only."""
        return Explained(
            self.X.iloc[rows],
            self.outputs.iloc[rows],
            self.prediction[rows],
            self.contributions.rows(rows),
            self.output,
            self.explains,
            self.level,
        )

    def effects(self, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``picked`` contributions (n × k, in the order they are shown) as steps on the prediction's scale.

        Returns the start (the base value read as a prediction), each step and the step of the remaining
        contributions, so start + Σ steps + rest = the prediction exactly: a waterfall and its reasons
        show the same amounts and they add up in yuan (or probability).
        """
        c = self.contributions
        path = c.base[:, None] + np.concatenate(
            [np.zeros((len(c.base), 1)), np.cumsum(picked, axis=1)], axis=1
        )
        path = np.concatenate([path, c.raw[:, None]], axis=1)
        read = output_scale(path, c.raw, self.prediction, self.output.link)
        steps = np.diff(read, axis=1)
        return read[:, 0], steps[:, :-1], steps[:, -1]


def output_scale(x: np.ndarray, raw: np.ndarray, prediction: np.ndarray, link: Link) -> np.ndarray:
    """Raw-scale values read on the prediction's scale, anchored so that ``raw`` reads as ``prediction``.

    The anchor keeps a log model's smearing factor; a classifier reads as the sigmoid of its log-odds
    (calibrated when the estimator explains on the calibrated scale, see ``Explained.explains``).
    """
    if link == "log":
        return prediction[:, None] * np.exp(x - raw[:, None])
    if link == "logit":
        return 1.0 / (1.0 + np.exp(-x))
    return x


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
