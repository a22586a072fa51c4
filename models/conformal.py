"""Split-conformal calibration of quantile intervals (CQR), per group where groups are large enough.

Quantile regressors alone under-cover out of sample; widening them by the validation period's
conformity scores gives intervals whose coverage holds on a later period as long as the case mix is
exchangeable within a group (Mondrian: per department, since departments differ most in spread).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The finite-sample ⌈(n+1)·level⌉-th smallest score (infinite when n is too small)."""
    n = len(scores)
    rank = int(np.ceil((n + 1) * level))
    return float(np.inf) if rank > n else float(np.sort(scores)[rank - 1])


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
