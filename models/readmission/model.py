"""The readmission estimator: LightGBM on discharge-time features, calibrated on the validation period.

Boosted trees rank well but their probabilities drift from observed rates (they are fit to the training
period and shrink towards it), and a readmission risk is read as a probability by clinicians and by the
quality office, so the trees' scores are recalibrated on the later validation period: isotonic
regression (default; monotone, no shape assumed) or Platt scaling (a logistic on the score's log-odds,
steadier on a small validation period). A plain logistic regression on the same features is fitted
beside it as the transparent comparison every model review asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from models import lgbm
from models.readmission.labels import LABEL

Method = Literal["isotonic", "platt"]
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass
class Calibrator:
    """Maps a classifier's probability to an observed rate, fitted on held-out (validation) cases."""

    method: Method = "isotonic"
    model_: Any = field(default=None, init=False, repr=False)

    def fit(self, probability: np.ndarray, actual: np.ndarray) -> Calibrator:
        if self.method == "isotonic":
            self.model_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                probability, actual
            )
        elif self.method == "platt":
            self.model_ = LogisticRegression(C=1e6).fit(_logit(probability)[:, None], actual)
        else:
            raise ValueError(f"calibration must be 'isotonic' or 'platt', not {self.method!r}")
        return self

    def transform(self, probability: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return self.model_.predict(probability)
        return self.model_.predict_proba(_logit(probability)[:, None])[:, 1]


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Category columns as text for one-hot encoding; a missing level is its own level."""
    return frame.astype(object).where(frame.notna(), "missing").astype(str)


def logistic_regression(X: pd.DataFrame, C: float = 1.0) -> Pipeline:
    """Median-imputed, standardised numbers and one-hot categories into an L2 logistic regression."""
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    columns = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                    StandardScaler(),
                ),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    FunctionTransformer(_as_text), OneHotEncoder(handle_unknown="ignore", min_frequency=20)
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(C=C, max_iter=2000))


class ReadmissionModel:
    """Calibrated LightGBM probability of an unplanned readmission, with the logistic comparison."""

    link = "logit"

    def __init__(
        self, lightgbm: dict[str, Any], calibration: Method = "isotonic", logistic_c: float = 1.0
    ) -> None:
        self.lightgbm = lightgbm
        self.calibration = calibration
        self.logistic_c = logistic_c

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> ReadmissionModel:
        y, y_val = labels[LABEL].astype(int), labels_val[LABEL].astype(int).to_numpy()
        self.classifier_ = lgbm.classifier(self.lightgbm, objective="binary").fit(X, y)
        raw_val = lgbm.predict_proba(self.classifier_, X_val)[:, 1]
        self.calibrator_ = Calibrator(self.calibration).fit(raw_val, y_val)
        self.validation_brier_ = {
            "raw": float(np.mean((raw_val - y_val) ** 2)),
            "calibrated": float(np.mean((self.calibrator_.transform(raw_val) - y_val) ** 2)),
        }
        self.logistic_ = logistic_regression(X, self.logistic_c).fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = lgbm.predict_proba(self.classifier_, X)[:, 1]
        return pd.DataFrame(
            {
                "readmission_probability": self.calibrator_.transform(raw),
                "readmission_probability_raw": raw,
                "logistic_probability": self.logistic_.predict_proba(X)[:, 1],
            },
            index=X.index,
        )

    @property
    def explained(self) -> object:
        """The tree model SHAP explains (log-odds of the uncalibrated score)."""
        return self.classifier_
