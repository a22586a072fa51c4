"""DRG margin: expected at admission, and exact at discharge from the casemix engine.

At admission the DRG is not known yet, so the expected payment is Σ p(drg) × standard payment over a
LightGBM classifier of the likely DRG (rare DRGs pooled) and the expected cost comes from the cost
model. The expected margin is learned directly rather than taken as their difference: outlier rules
pay part of a high cost back, so E[margin] is not E[payment at standard] − E[cost], and the
difference of two large noisy forecasts is the noisier estimate. Classifiers give the probability of
a loss and of becoming a high- or low-cost outlier case. At discharge the margin is deterministic:
group the case and apply the payment rules (:func:`discharge_margin`), which is also the label the
admission model learns. On a prepared table (no DRG labels) only margin and loss are learned.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models import lgbm, plots
from models.errors import TrainingInputError
from models.metrics import by_group, ranking_metrics, regression_metrics
from models.task import Evaluation, Output, Task
from models.tasks.cost import CostModel, case_context

POOLED = "other"
OUTLIERS = ("low", "high")


def discharge_margin(cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
    """Grouping and payment of discharged cases: ``price_cases`` columns beside the grouper's.

    Weights are the insurer's RW table the payment rules name (``[calibration] rw_table``), so the
    label is the margin the insurer's settlement gives; only rules without one fall back to weights
    estimated from the cases themselves, and then the label is partly the calibration's own echo
    (column ``weights_source`` says which).
    """
    from casemix.engine import CasemixEngine

    engine = CasemixEngine.from_settings(settings)
    grouped = cases.join(engine.group(cases))
    return engine.price_labelled(grouped)


class MarginModel:
    """Expected payment, cost and margin, and loss and outlier probabilities, from admission features."""

    def __init__(
        self,
        lightgbm: dict[str, Any],
        cost: dict[str, Any],
        drg_min_cases: int = 30,
        drg_max_classes: int = 60,
        drg_max_rows: int | None = 200_000,
        drg_n_estimators: int = 100,
    ) -> None:
        self.lightgbm = lightgbm
        self.cost = cost
        self.drg_min_cases = drg_min_cases
        self.drg_max_classes = drg_max_classes
        self.drg_max_rows = drg_max_rows
        self.drg_n_estimators = drg_n_estimators

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> MarginModel:
        loss = labels["margin"] < 0
        if loss.nunique() < 2:
            raise TrainingInputError(
                f"every training case {'made' if loss.iloc[0] else 'made no'} a loss: "
                "the loss classifier needs both"
            )
        self.loss_ = lgbm.classifier(self.lightgbm, objective="binary").fit(X, loss)
        self.margin_ = lgbm.regressor(self.lightgbm, objective="regression").fit(X, labels["margin"])
        self.decomposed_ = "drg" in labels.columns
        if self.decomposed_:
            self._fit_payment(X, labels, labels_val)
            self.cost_ = CostModel(self.cost["lightgbm"], level=None).fit(X, labels, X_val, labels_val)
            outlier = labels["outlier"].fillna("by_item")
            self.outlier_ = lgbm.classifier(self.lightgbm).fit(X, outlier) if outlier.nunique() > 1 else None
        return self

    def _fit_payment(self, X: pd.DataFrame, labels: pd.DataFrame, labels_val: pd.DataFrame) -> None:
        """DRG classifier over frequent DRGs, and the standard payment of each of its classes."""
        counts = labels["drg"].value_counts()
        kept = counts[counts >= self.drg_min_cases].index[: self.drg_max_classes]
        drg_class = labels["drg"].where(labels["drg"].isin(kept), POOLED)
        # Payment per RW in force at the end of the data (the latest base rate or point value).
        latest = pd.concat([labels, labels_val]).dropna(subset=["rw", "standard_payment"])
        per_rw = latest["standard_payment"].iloc[-1] / latest["rw"].iloc[-1]
        self.payment_ = labels["rw"].fillna(0).groupby(drg_class).mean() * per_rw
        rows = lgbm.subsample(len(X), self.drg_max_rows)
        drg = lgbm.classifier(self.lightgbm, n_estimators=self.drg_n_estimators)
        self.drg_ = drg.fit(X.iloc[rows], drg_class.iloc[rows])

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(index=X.index)
        out["expected_margin"] = lgbm.predict(self.margin_, X)
        out["p_loss"] = lgbm.predict_proba(self.loss_, X)[:, 1]
        if self.decomposed_:
            proba = lgbm.class_probabilities(self.drg_, X, list(self.payment_.index))
            out["expected_payment"] = proba.to_numpy() @ self.payment_.to_numpy()
            out["expected_cost"] = self.cost_.predict(X)["cost"]
            out["likely_drg"] = proba.idxmax(axis=1)
            out["likely_drg_probability"] = proba.max(axis=1)
            for kind in OUTLIERS:
                out[f"p_{kind}_outlier"] = (
                    lgbm.class_probabilities(self.outlier_, X, [kind])[kind]
                    if self.outlier_ is not None
                    else 0.0
                )
        return out

    @property
    def explained(self) -> object:
        """The tree model SHAP explains: the expected-margin regressor (yuan, identity link)."""
        return self.margin_


class MarginTask(Task):
    name = "margin"
    title = "DRG margin before admission"
    stage = "admission"
    label_column = "margin"
    output = Output(
        "expected_margin",
        link="identity",
        unit="yuan",
        zh="预计DRG结余",
        en="expected DRG surplus",
        summary="Expected DRG surplus (payment − cost) before admission.",
    )
    primary_metric = "margin_mae"
    greater_is_better = False
    baseline_levels = (("admission_category",),)

    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        priced = discharge_margin(cases, settings)
        labels = priced[["margin", "drg", "adrg", "rw", "standard_payment", "outlier", "total_cost"]]
        return labels.rename(columns={"total_cost": "cost"})

    def context(self, inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        return case_context(inputs, labels)

    def estimator(self, params: dict[str, Any]) -> MarginModel:
        return MarginModel(
            params["lightgbm"],
            params["cost"],
            params["drg_min_cases"],
            params["drg_max_classes"],
            params["drg_max_rows"],
            params["drg_n_estimators"],
        )

    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        margin = labels[self.label_column]
        return pd.DataFrame({"expected_margin": margin, "p_loss": (margin < 0).astype("float64")})

    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        frame = context.assign(
            actual=labels[self.label_column],
            loss=(labels[self.label_column] < 0).astype(int),
            predicted=predictions["expected_margin"].to_numpy(),
            p_loss=predictions["p_loss"].to_numpy(),
        )

        def scores(sub: pd.DataFrame) -> dict[str, float]:
            margin = {
                f"margin_{k}": v for k, v in regression_metrics(sub["actual"], sub["predicted"]).items()
            }
            loss = {f"loss_{k}": v for k, v in ranking_metrics(sub["loss"], sub["p_loss"]).items()}
            return {k: v for k, v in (margin | loss).items() if k != "margin_mape"}

        metrics = scores(frame)
        if "likely_drg" in predictions.columns and "drg" in labels.columns:
            metrics["drg_top1_accuracy"] = float(
                np.mean(predictions["likely_drg"].to_numpy() == labels["drg"].to_numpy())
            )
            for kind in OUTLIERS:
                actual = labels["outlier"].eq(kind).fillna(False).astype(int).reset_index(drop=True)
                found = ranking_metrics(actual, predictions[f"p_{kind}_outlier"])
                metrics |= {f"{kind}_outlier_{k}": v for k, v in found.items()}
        tables = {f"by_{g}": by_group(frame, g, scores) for g in ("department", "adrg") if g in frame.columns}
        return Evaluation(metrics, tables)

    def plots(
        self, estimator: MarginModel, X: pd.DataFrame, labels: pd.DataFrame, predictions: pd.DataFrame
    ) -> dict[str, Figure]:
        actual = labels[self.label_column].reset_index(drop=True)
        loss = (actual < 0).astype(int)
        return {
            "shap_summary.png": plots.shap_summary(estimator.loss_, X, "SHAP: log-odds of a loss"),
            "calibration_loss.png": plots.calibration(loss, predictions["p_loss"], "P(loss) calibration"),
            "residuals.png": plots.actual_vs_predicted(
                actual, predictions["expected_margin"], "margin (yuan)", log=False
            ),
        }


TASK = MarginTask()
