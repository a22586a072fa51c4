"""Case cost before admission: a LightGBM point forecast and a conformalized 80% interval.

Costs are right-skewed, so every model works on log cost: a point model (mean of log cost, back-
transformed with Duan's smearing factor estimated on the validation period) and two quantile models
whose band is widened per department by conformal calibration (CQR) on the validation period's scores
and the training cases' cross-fitted ones (:mod:`models.conformal` says why both), so the interval's
coverage is honest on the later test period in each department, not only overall.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models import lgbm, plots
from models.conformal import MondrianCQR, cross_fitted
from models.metrics import by_group, interval_metrics, regression_metrics
from models.task import Evaluation, Output, Task

ORACLE_COLUMN = "expected_cost"


class CostModel:
    """Point and interval forecast of an amount from features; ``group_column`` names the Mondrian groups.

    ``level=None`` fits the point model only (the margin model needs no cost interval).
    """

    def __init__(
        self,
        lightgbm: dict[str, Any],
        level: float | None = 0.8,
        mondrian_min_group: int = 100,
        group_column: str = "department",
        target: str = "cost",
        conformal_folds: int = 5,
    ) -> None:
        self.lightgbm = lightgbm
        self.level = level
        self.mondrian_min_group = mondrian_min_group
        self.conformal_folds = conformal_folds
        self.group_column = group_column
        self.target = target

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> CostModel:
        y, y_val = np.log1p(labels[self.target]), np.log1p(labels_val[self.target])
        self.point_ = lgbm.regressor(self.lightgbm, objective="regression").fit(X, y)
        self.smearing_ = float(np.mean(np.exp(y_val - lgbm.predict(self.point_, X_val))))
        if self.level is None:
            return self
        self.lower_, self.upper_ = self._quantile_models(X, y.to_numpy())
        lower, upper = self._log_band(X_val)
        actual, groups = [y_val.to_numpy()], [self._groups(X_val)]
        if self.conformal_folds > 1:
            train_lower, train_upper = cross_fitted(
                self._held_out_band, X, y.to_numpy(), self.conformal_folds
            )
            lower, upper = np.r_[lower, train_lower], np.r_[upper, train_upper]
            actual.append(y.to_numpy())
            groups.append(self._groups(X))
        self.conformal_ = MondrianCQR(self.level, self.mondrian_min_group).fit(
            pd.Series(np.concatenate(actual)),
            pd.Series(lower),
            pd.Series(upper),
            None if groups[0] is None else pd.Series(pd.concat(groups, ignore_index=True)),
        )
        return self

    def _quantile_models(self, X: pd.DataFrame, y: np.ndarray) -> tuple[Any, Any]:
        tail = (1 - self.level) / 2  # type: ignore[operator]
        lower = lgbm.regressor(self.lightgbm, objective="quantile", alpha=tail).fit(X, y)
        upper = lgbm.regressor(self.lightgbm, objective="quantile", alpha=1 - tail).fit(X, y)
        return lower, upper

    def _held_out_band(
        self, X: pd.DataFrame, y: np.ndarray, X_held: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]:
        return _band(*self._quantile_models(X, y), X_held)

    def predict(self, X: pd.DataFrame, data: pd.DataFrame | np.ndarray | None = None) -> pd.DataFrame:
        """Point forecast and interval; the interval is widened to hold the point when skew puts the
        mean outside the quantile band (widening only raises coverage). ``data``: ``X`` as
        :func:`models.lgbm.prepared` converted it already for a model fitted on the same features."""
        return pd.DataFrame(self.predict_columns(X, data), index=X.index)

    def predict_columns(
        self, X: pd.DataFrame, data: pd.DataFrame | np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """:meth:`predict`'s columns by name, before they make a frame: for a model that puts its own
        outputs beside them in one frame (``InstayModel``; a one-stay request paid for the insert)."""
        if data is None:
            data = lgbm.prepared(X, self.point_)  # one conversion for the three models
        point = np.expm1(lgbm.predict(self.point_, data)) * self.smearing_
        if self.level is None:
            return {self.target: point}
        lower, upper = self._log_band(data)
        widen = self.conformal_.margins(self._groups(X), len(X))
        lower = np.minimum(np.expm1(lower - widen).clip(min=0), point)
        upper = np.maximum(np.expm1(upper + widen), point)
        names = (self.target, f"{self.target}_lower", f"{self.target}_upper")
        return dict(zip(names, (point, lower, upper), strict=True))

    @property
    def explained(self) -> object:
        """The tree model SHAP explains: the point model (its values are on the log-cost scale)."""
        return self.point_

    def _log_band(self, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _band(self.lower_, self.upper_, X)

    def _groups(self, X: pd.DataFrame) -> pd.Series | None:
        return X[self.group_column] if self.group_column in X.columns else None


def _band(lower: Any, upper: Any, X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two quantile models' predictions as (lower, upper), in order even where they cross."""
    low, high = lgbm.predict(lower, X), lgbm.predict(upper, X)
    return np.minimum(low, high), np.maximum(low, high)


def admission_category(cases: pd.DataFrame) -> pd.Series:
    """The admission diagnosis's 3-character ICD-10 category (the baseline's diagnosis group)."""
    return cases["admission_diagnosis"].str[:3]


def case_context(inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Department, admission category and (when labelled) ADRG and oracle columns present in the data."""
    context = pd.DataFrame(index=inputs.index)
    if "department" in inputs.columns:
        context["department"] = inputs["department"]
    if "admission_diagnosis" in inputs.columns:
        context["admission_category"] = admission_category(inputs)
    for column in ("adrg", ORACLE_COLUMN):
        if column in labels.columns:
            context[column] = labels[column]
    return context


class CostTask(Task):
    name = "cost"
    title = "case cost before admission"
    stage = "admission"
    label_column = "cost"
    output = Output(
        "cost",
        link="log",
        unit="yuan",
        zh="预计住院费用",
        en="expected cost",
        summary="Expected case cost before admission, with an 80% interval.",
    )
    primary_metric = "mae"
    greater_is_better = False
    baseline_levels = (("department", "admission_category"), ("department",))

    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        """Total charges, and the ADRG the case grouped to (only to break the evaluation down by)."""
        from casemix.engine import CasemixEngine

        adrg = CasemixEngine.from_settings(settings).group(cases)["adrg"]
        return pd.DataFrame({self.label_column: cases["total_cost"].astype("float64"), "adrg": adrg})

    def context(self, inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        return case_context(inputs, labels)

    def estimator(self, params: dict[str, Any]) -> CostModel:
        return CostModel(
            params["lightgbm"],
            level=params["interval_level"],
            mondrian_min_group=params["mondrian_min_group"],
            conformal_folds=params["conformal_folds"],
        )

    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        return labels[[self.label_column]]

    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        frame = context.assign(actual=labels[self.label_column], predicted=predictions["cost"].to_numpy())
        has_interval = "cost_lower" in predictions.columns
        if has_interval:
            frame = frame.assign(
                lower=predictions["cost_lower"].to_numpy(), upper=predictions["cost_upper"].to_numpy()
            )

        def scores(sub: pd.DataFrame) -> dict[str, float]:
            found = regression_metrics(sub["actual"], sub["predicted"])
            if has_interval:
                found |= interval_metrics(sub["actual"], sub["lower"], sub["upper"])
            return found

        metrics = scores(frame)
        if ORACLE_COLUMN in frame.columns:
            oracle = frame[ORACLE_COLUMN]
            metrics["mae_vs_oracle"] = float((frame["predicted"] - oracle).abs().mean())
            metrics["oracle_mae"] = float((frame["actual"] - oracle).abs().mean())
        tables = {f"by_{g}": by_group(frame, g, scores) for g in ("department", "adrg") if g in frame.columns}
        return Evaluation(metrics, tables)

    def plots(
        self, estimator: CostModel, X: pd.DataFrame, labels: pd.DataFrame, predictions: pd.DataFrame
    ) -> dict[str, Figure]:
        actual = labels[self.label_column].reset_index(drop=True)
        figures = {
            "shap_summary.png": plots.shap_summary(estimator.explained, X, "SHAP: log cost"),
            "residuals.png": plots.actual_vs_predicted(actual, predictions["cost"], "cost (yuan)", log=True),
        }
        return figures


TASK = CostTask()
