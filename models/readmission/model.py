"""The readmission estimator: LightGBM and a logistic regression on discharge-time features, both
calibrated on the validation period; the one with the better validation Brier score is served.

Boosted trees rank well but their probabilities drift from observed rates (they are fit to the training
period and shrink towards it), and a readmission risk is read as a probability by clinicians and by the
quality office, so scores are recalibrated on the later validation period: Platt scaling (default; a
logistic on the score's log-odds, steady on a small validation period, and a linear map of the
log-odds, so the explanation stays exact on the calibrated scale) or isotonic regression (monotone, no
shape assumed, but a step function: its explanation stays on the uncalibrated score).

A logistic regression on the same features is the strongest simple model a practitioner would fit, and
on the demo hospital it ranks as well as the trees. It is not only reported: it competes. The served
model is picked on the validation period, never the test period, by the Brier score of its calibrated
probability with the calibration cross-fitted (each fold calibrated on the others), so neither model
gains from being calibrated and judged on the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from contract.errors import ConfigError
from models import lgbm
from models.metrics import ranking_metrics
from models.readmission.labels import LABEL

Method = Literal["isotonic", "platt"]
CANDIDATES = ("lightgbm", "logistic")
SELECTION_FOLDS = 5
RARE_LEVEL = 20  # category levels with fewer training cases are pooled into one "infrequent" column


@dataclass
class Calibrator:
    """Maps a classifier's log-odds score to an observed rate, fitted on held-out (validation) cases."""

    method: Method = "platt"
    model_: Any = field(default=None, init=False, repr=False)

    def fit(self, score: np.ndarray, actual: np.ndarray) -> Calibrator:
        if (
            self.method == "isotonic"
        ):  # monotone in the score, so fitting on log-odds or probability is the same
            self.model_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(score, actual)
        elif self.method == "platt":
            self.model_ = LogisticRegression(C=1e6).fit(np.asarray(score)[:, None], actual)
        else:
            raise ConfigError(f"calibration must be 'isotonic' or 'platt', not {self.method!r}")
        return self

    @property
    def linear(self) -> tuple[float, float] | None:
        """(slope, intercept) of calibrated log-odds = slope × score + intercept; None for isotonic."""
        if self.method != "platt":
            return None
        return float(self.model_.coef_[0, 0]), float(self.model_.intercept_[0])

    def transform(self, score: np.ndarray) -> np.ndarray:
        linear = self.linear
        if linear is None:
            return self.model_.predict(score)
        return expit(linear[0] * np.asarray(score) + linear[1])


def cross_fitted_brier(method: Method, score: np.ndarray, actual: np.ndarray) -> float:
    """Brier score of calibrated scores where each fold is calibrated on the other folds.

    With too few readmissions for folds (a toy validation period) it is scored in-sample.
    """
    folds = min(SELECTION_FOLDS, int(np.bincount(actual.astype(int), minlength=2).min()))
    if folds < 2:
        calibrated = Calibrator(method).fit(score, actual).transform(score)
        return float(np.mean((calibrated - actual) ** 2))
    calibrated = np.empty(len(score))
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=0).split(score[:, None], actual):
        calibrated[held] = Calibrator(method).fit(score[fit], actual[fit]).transform(score[held])
    return float(np.mean((calibrated - actual) ** 2))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Category columns as text for one-hot encoding; a missing level is its own level."""
    return frame.astype(object).where(frame.notna(), "missing").astype(str)


def logistic_regression(X: pd.DataFrame, C: float = 1.0) -> Pipeline:
    """Median-imputed (with missing indicators), standardised numbers and one-hot categories with rare
    levels pooled, into an L2 logistic regression."""
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
                    FunctionTransformer(_as_text),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=RARE_LEVEL),
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(C=C, max_iter=2000))


def _owners(columns: ColumnTransformer, features: list[str]) -> np.ndarray:
    """For each encoded column, the position in ``features`` of the input feature it comes from."""
    position = {name: i for i, name in enumerate(features)}
    owners = np.full(sum(s.stop - s.start for s in columns.output_indices_.values()), -1, dtype=np.int64)
    for name, pipeline, selected in columns.transformers_:
        out = columns.output_indices_[name]
        if name == "remainder" or out.stop == out.start:
            continue
        selected = list(selected)
        if name == "numeric":
            indicator = pipeline[0].indicator_
            found = selected + [selected[i] for i in (indicator.features_ if indicator is not None else [])]
        else:  # per category: a column per frequent level, and one for the pooled rare levels if any
            encoder = pipeline[-1]
            rare = getattr(encoder, "infrequent_categories_", [None] * len(selected))
            widths = [
                len(c) - (0 if r is None else len(r) - 1)
                for c, r in zip(encoder.categories_, rare, strict=True)
            ]
            found = list(np.repeat(selected, widths))
        owners[out] = [position[f] for f in found]
    if (owners < 0).any():
        raise ValueError("an encoded column of the logistic regression traces back to no input feature")
    return owners


class LogisticModel:
    """The logistic regression with its preprocessing, and its exact SHAP values.

    For a linear model of (assumed independent) encoded columns the SHAP value of a column is
    coef × (value − training mean) in log-odds, and a feature's value is the sum over its encoded
    columns (a category's one-hot columns, a number and its missing indicator), so the base value is
    intercept + coef · mean and base + Σ values is the log-odds exactly (what shap's LinearExplainer
    gives on the encoded columns, summed per feature).
    """

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: pd.DataFrame, y: pd.Series) -> LogisticModel:
        self.pipeline_ = logistic_regression(X, self.C).fit(X, y)
        columns, regression = self.pipeline_[0], self.pipeline_[-1]
        encoded = columns.transform(X)
        mean = np.asarray(encoded.mean(axis=0)).ravel()
        coef = regression.coef_[0]
        owners = _owners(columns, list(X.columns))
        self.weights_ = np.zeros((len(coef), X.shape[1]))  # encoded column → feature, times its coef
        self.weights_[np.arange(len(coef)), owners] = coef
        self.offset_ = np.bincount(owners, coef * mean, minlength=X.shape[1])
        self.base_ = float(regression.intercept_[0] + coef @ mean)
        return self

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of a readmission."""
        return self.pipeline_.decision_function(X)

    def contributions(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values (n × features) and base (n) in log-odds; base + Σ values = :meth:`score`."""
        values = np.asarray(self.pipeline_[0].transform(X) @ self.weights_) - self.offset_
        return values, np.full(len(X), self.base_)


class ReadmissionModel:
    """Calibrated probability of an unplanned readmission from the model that wins on validation."""

    def __init__(
        self, lightgbm: dict[str, Any], calibration: Method = "platt", logistic_c: float = 1.0
    ) -> None:
        self.lightgbm = lightgbm
        self.calibration = calibration
        self.logistic_c = logistic_c

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> ReadmissionModel:
        y, y_val = labels[LABEL].astype(int), labels_val[LABEL].astype(int).to_numpy()
        self.classifier_ = lgbm.classifier(self.lightgbm, objective="binary").fit(X, y)
        self.logistic_ = LogisticModel(self.logistic_c).fit(X, y)
        scores = {name: self._score(name, X_val) for name in CANDIDATES}
        self.calibrators_ = {name: Calibrator(self.calibration).fit(s, y_val) for name, s in scores.items()}
        self.validation_metrics_: dict[str, float] = {}
        for name, score in scores.items():
            ranking = ranking_metrics(pd.Series(y_val), pd.Series(expit(score)))
            self.validation_metrics_[f"{name}_auroc"] = ranking["auroc"]
            self.validation_metrics_[f"{name}_brier"] = cross_fitted_brier(self.calibration, score, y_val)
        self.served_ = min(CANDIDATES, key=lambda name: self.validation_metrics_[f"{name}_brier"])
        served = scores[self.served_]
        self.validation_brier_ = {
            "raw": float(np.mean((expit(served) - y_val) ** 2)),
            "calibrated": float(np.mean((self.calibrators_[self.served_].transform(served) - y_val) ** 2)),
        }
        return self

    def _score(self, name: str, X: pd.DataFrame) -> np.ndarray:
        if name == "lightgbm":
            return lgbm.predict(self.classifier_, X, raw_score=True)
        return self.logistic_.score(X)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """The served model's calibrated and raw probability, and each candidate's calibrated one."""
        scores = {name: self._score(name, X) for name in CANDIDATES}
        calibrated = {name: self.calibrators_[name].transform(s) for name, s in scores.items()}
        return pd.DataFrame(
            {
                "readmission_probability": calibrated[self.served_],
                "readmission_probability_raw": expit(scores[self.served_]),
                "lightgbm_probability": calibrated["lightgbm"],
                "logistic_probability": calibrated["logistic"],
            },
            index=X.index,
        )

    @property
    def explains(self) -> str:
        """What the contributions add up to: the prediction (Platt) or the uncalibrated score (isotonic)."""
        return "prediction" if self.calibrators_[self.served_].linear is not None else "uncalibrated score"

    def contributions(self, X: pd.DataFrame, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Exact SHAP values (n × features) and base (n) of the served model on the calibrated log-odds.

        Platt calibration is slope × log-odds + intercept, so the served model's SHAP values times the
        slope, with the base value moved to slope × base + intercept, add up to the calibrated log-odds
        exactly. Under isotonic calibration they stay on the uncalibrated log-odds (see ``explains``).
        """
        if self.served_ == "lightgbm":
            values, base = lgbm.contributions(self.classifier_, X, threads)
        else:
            values, base = self.logistic_.contributions(X)
        linear = self.calibrators_[self.served_].linear
        if linear is None:
            return values, base
        slope, intercept = linear
        return values * slope, base * slope + intercept
