"""Conformal calibration of quantile intervals (CQR), per group where groups are large enough.

Quantile regressors alone under-cover out of sample; widening them by out-of-sample conformity scores
gives intervals whose coverage holds on a later period as long as the case mix is exchangeable within
a group (Mondrian: per department, since departments differ most in spread).

Which scores calibrate matters per department. One validation quarter is one season and, on a small
hospital, a hundred or so cases of a department: its case mix (a winter peak of respiratory stays,
say) and its sampling noise carry straight into that department's widening, and departments missed
75-85% on the next quarter although the pooled coverage was 80%. So the calibration scores are the
validation period's (later than training: drift counts) together with cross-fitted scores of every
training case (each from quantile models fitted without its fold: out of sample, every season, many
cases per department). :func:`cross_fitted` makes the latter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

Band = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], tuple[np.ndarray, np.ndarray]]


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The finite-sample ⌈(n+1)·level⌉-th smallest score (infinite when n is too small)."""
    n = len(scores)
    rank = int(np.ceil((n + 1) * level))
    return float(np.inf) if rank > n else float(np.sort(scores)[rank - 1])


def cross_fitted(
    band: Band, X: pd.DataFrame, y: np.ndarray, folds: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's (lower, upper) from ``band(X_fit, y_fit, X_held)`` fitted on the other folds."""
    lower, upper = np.empty(len(X)), np.empty(len(X))
    for fit, held in KFold(folds, shuffle=True, random_state=seed).split(X):
        lower[held], upper[held] = band(X.iloc[fit], y[fit], X.iloc[held])
    return lower, upper


@dataclass
class MondrianCQR:
    """Widening of [lower, upper] on a transformed scale, learned per group with a pooled fallback."""

    level: float = 0.8
    min_group: int = 100

    def fit(
        self, actual: pd.Series, lower: pd.Series, upper: pd.Series, groups: pd.Series | None
    ) -> MondrianCQR:
        scores = np.maximum(lower - actual, actual - upper)
        self.pooled_ = conformal_quantile(scores.to_numpy(), self.level)
        self.by_group_: dict[object, float] = {}
        if groups is not None:
            for key, group_scores in scores.groupby(groups, observed=True):
                if len(group_scores) >= self.min_group:
                    self.by_group_[key] = conformal_quantile(group_scores.to_numpy(), self.level)
        return self

    def margins(self, groups: pd.Series | None, n: int) -> np.ndarray:
        """The widening for each of ``n`` rows: its group's when calibrated, else the pooled one.

        A category column is looked up once per category, not per row (one case costs one lookup).
        """
        if groups is None:
            return np.full(n, self.pooled_)
        if isinstance(groups.dtype, pd.CategoricalDtype):
            codes = groups.array.codes
            per_category = np.array(
                [self.by_group_.get(c, self.pooled_) for c in groups.cat.categories] + [self.pooled_]
            )
            return per_category[codes]  # code -1 (missing) reads the pooled widening
        return groups.map(self.by_group_).astype("float64").fillna(self.pooled_).to_numpy()
