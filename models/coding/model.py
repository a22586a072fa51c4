"""The coding-error estimator: P(error) from audited cases, and the likely error type.

Trained on audited abstracts only (audited-but-correct is the negative class). Audits sample more of
the high-risk abstracts (an MCC, a coder with many errors), but what drives the sampling is among the
features, so P(error | features) learned on audits carries over to unaudited cases. A second LightGBM
classifies the error type among the audited errors; ``p_<type>`` = P(error) × P(type | error).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from contract.fields import AUDIT_ERROR_TYPES
from models import lgbm

LABEL = "coding_error"
ERROR_TYPES = tuple(AUDIT_ERROR_TYPES)
MIN_TYPE_CASES = 5  # error types with fewer training errors get their share as a constant


class CodingModel:
    """Probability of a coding error and of each error type, from the coding features."""

    def __init__(self, lightgbm: dict[str, Any]) -> None:
        self.lightgbm = lightgbm

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> CodingModel:
        y = labels[LABEL].astype(int)
        self.classifier_ = lgbm.classifier(self.lightgbm, objective="binary").fit(X, y)
        types = (
            labels["error_type"] if "error_type" in labels.columns else pd.Series(None, index=labels.index)
        )
        errors = types[y.to_numpy() == 1]
        counts = errors.value_counts()
        # Without typed errors (a prepared table has no error types) every type is equally likely.
        shares = counts / counts.sum() if len(counts) else pd.Series(1 / len(ERROR_TYPES), index=ERROR_TYPES)
        self.type_share_ = shares.reindex(list(ERROR_TYPES), fill_value=0.0)
        typed = errors.isin(counts[counts >= MIN_TYPE_CASES].index).to_numpy()
        self.type_classifier_ = None
        if errors[typed].nunique() > 1:
            params = {**self.lightgbm, "n_estimators": min(self.lightgbm.get("n_estimators", 100), 150)}
            self.type_classifier_ = lgbm.classifier(params, objective="multiclass").fit(
                X[y.to_numpy() == 1][typed], errors[typed]
            )
        return self

    def type_probabilities(self, X: pd.DataFrame) -> pd.DataFrame:
        """P(type | error) per case, one column per error type."""
        shares = pd.DataFrame(
            np.tile(self.type_share_.to_numpy(), (len(X), 1)), index=X.index, columns=ERROR_TYPES
        )
        if self.type_classifier_ is None:
            return shares
        modelled = list(self.type_classifier_.classes_)
        found = lgbm.class_probabilities(self.type_classifier_, X, modelled)
        weight = self.type_share_[modelled].sum()
        shares[modelled] = found.to_numpy() * weight
        return shares

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        p = lgbm.predict_proba(self.classifier_, X)[:, 1]
        types = self.type_probabilities(X)
        out = pd.DataFrame({"error_probability": p}, index=X.index)
        out["error_type"] = types.idxmax(axis=1).to_numpy()
        for name in ERROR_TYPES:
            out[f"p_{name}"] = p * types[name].to_numpy()
        return out

    @property
    def explained(self) -> object:
        """The tree model SHAP explains: the error classifier (log-odds)."""
        return self.classifier_
