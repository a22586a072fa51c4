"""In-stay early warning (事中预警): at the end of day d of a stay, its final cost and the risk it ends
above its DRG payment.

Trained on past stays cut at a day drawn per stay (:func:`features.instay.sample_cuts`; the inputs are
:func:`features.instay.cut_stays` frames, labels the stay's final abstract) and split by discharge
period like the other tasks. The final cost is :class:`models.tasks.cost.CostModel` on the in-stay
features (log scale, smearing, conformalized interval per department), the overrun a LightGBM
classifier of ``final cost > final DRG payment`` (the payment the rules give the case as finally coded,
outlier rules included: :func:`models.tasks.margin.discharge_margin`). Both see charges to date, so
the baseline to beat is what a ward has without a model: the training mean per pre-grouped DRG.
SHAP explains the overrun classifier, so reasons say which charge groups and codes push the risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models import lgbm, plots
from models.metrics import by_group, interval_metrics, ranking_metrics, regression_metrics
from models.task import Evaluation, Output, Task
from models.tasks.cost import CostModel

LABEL = "final_cost"


class InstayModel:
    """Final cost with an interval, and the probability of an overrun, from in-stay features."""

    def __init__(
        self,
        lightgbm: dict[str, Any],
        overrun_lightgbm: dict[str, Any],
        level: float = 0.8,
        mondrian_min_group: int = 100,
        conformal_folds: int = 5,
    ) -> None:
        self.lightgbm = lightgbm
        self.overrun_lightgbm = overrun_lightgbm
        self.level = level
        self.mondrian_min_group = mondrian_min_group
        self.conformal_folds = conformal_folds

    def fit(
        self, X: pd.DataFrame, labels: pd.DataFrame, X_val: pd.DataFrame, labels_val: pd.DataFrame
    ) -> InstayModel:
        self.cost_ = CostModel(
            self.lightgbm,
            level=self.level,
            mondrian_min_group=self.mondrian_min_group,
            target=LABEL,
            conformal_folds=self.conformal_folds,
        ).fit(X, labels, X_val, labels_val)
        overrun = labels["overrun"].astype(int)
        self.overrun_ = lgbm.classifier(self.overrun_lightgbm).fit(X, overrun)
        return self

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        data = lgbm.prepared(X, self.overrun_)  # one conversion for the four models (same features)
        columns = self.cost_.predict_columns(X, data)
        columns["p_overrun"] = lgbm.predict_proba(self.overrun_, data)[:, 1]
        return pd.DataFrame(columns, index=X.index)

    @property
    def explained(self) -> object:
        """The tree model SHAP explains: the overrun classifier (log-odds of ending above the payment)."""
        return self.overrun_


def final_outcome(cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
    """Final cost, final DRG payment, overrun (cost above payment) and final DRG of discharged cases."""
    from models.tasks.margin import discharge_margin

    priced = discharge_margin(cases, settings)
    return pd.DataFrame(
        {
            LABEL: cases["total_cost"].astype("float64"),
            "final_payment": priced["drg_payment"].astype("float64"),
            "overrun": (priced["margin"] < 0).astype("float64"),
            "final_drg": priced["drg"],
        },
        index=cases.index,
    )


class InstayTask(Task):
    name = "instay"
    title = "final cost and overrun during the stay"
    stage = "in_stay"
    label_column = LABEL
    output = Output(
        "p_overrun",
        link="logit",
        unit="probability",
        zh="超支风险",
        en="overrun risk",
        summary="Probability that the stay's final cost ends above its final DRG payment; the predicted "
        "final cost and its 80% interval are among the outputs.",
    )
    primary_metric = "mae"
    greater_is_better = False
    baseline_levels = (("pregroup_drg",), ("department",))

    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        """The final outcome of each stay (cut rows take their stay's: ``pipelines.instay``)."""
        return final_outcome(cases, settings)

    def features(self) -> Any:
        from features.instay import InstayFeatures

        return InstayFeatures()

    def context(self, inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        context = pd.DataFrame(index=inputs.index)
        for column in ("department", "pregroup_drg", "day_of_stay"):
            if column in inputs.columns:
                context[column] = inputs[column]
        if "pregroup_drg" not in inputs.columns and "pregroup_drg" in labels.columns:
            context["pregroup_drg"] = labels["pregroup_drg"]
        return context

    def estimator(self, params: dict[str, Any]) -> InstayModel:
        return InstayModel(
            params["lightgbm"],
            params["overrun"]["lightgbm"],
            level=params["interval_level"],
            mondrian_min_group=params["mondrian_min_group"],
            conformal_folds=params["conformal_folds"],
        )

    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({LABEL: labels[LABEL], "p_overrun": labels["overrun"]})

    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        frame = context.assign(
            actual=labels[LABEL].to_numpy(),
            overrun=labels["overrun"].to_numpy(),
            predicted=predictions[LABEL].to_numpy(),
            p_overrun=predictions["p_overrun"].to_numpy(),
        )
        has_interval = f"{LABEL}_lower" in predictions.columns
        if has_interval:
            frame = frame.assign(
                lower=predictions[f"{LABEL}_lower"].to_numpy(), upper=predictions[f"{LABEL}_upper"].to_numpy()
            )

        def scores(sub: pd.DataFrame) -> dict[str, float]:
            found = regression_metrics(sub["actual"], sub["predicted"])
            if has_interval:
                found |= interval_metrics(sub["actual"], sub["lower"], sub["upper"])
            risk = ranking_metrics(sub["overrun"], sub["p_overrun"])
            return found | {f"overrun_{k}": v for k, v in risk.items()}

        metrics = scores(frame)
        tables = {f"by_{g}": by_group(frame, g, scores) for g in ("department",) if g in frame.columns}
        if "day_of_stay" in frame.columns:
            days = frame.assign(day_band=pd.cut(frame["day_of_stay"], [0, 2, 5, 10, np.inf]).astype(str))
            tables["by_day_of_stay"] = by_group(days, "day_band", scores)
        return Evaluation(metrics, tables)

    def plots(
        self, estimator: InstayModel, X: pd.DataFrame, labels: pd.DataFrame, predictions: pd.DataFrame
    ) -> dict[str, Figure]:
        actual = labels[LABEL].reset_index(drop=True)
        return {
            "shap_summary.png": plots.shap_summary(estimator.explained, X, "SHAP: log-odds of overrun"),
            "final_cost.png": plots.actual_vs_predicted(
                actual, predictions[LABEL], "final cost (yuan)", log=True
            ),
            "overrun_calibration.png": plots.calibration(
                labels["overrun"].reset_index(drop=True), predictions["p_overrun"], "overrun probability"
            ),
        }


TASK = InstayTask()


def top_reasons(values: np.ndarray, X: pd.DataFrame, catalog: pd.DataFrame, k: int = 3) -> list[str]:
    """Per row, the ``k`` features pushing the overrun risk most (``values``: the model's SHAP values,
    log-odds), as "name = value (+effect)" in the catalog's English and Chinese names, largest first."""
    names = catalog.drop_duplicates("feature").set_index("feature")
    label = [f"{names.at[f, 'en']} {names.at[f, 'zh']}" if f in names.index else f for f in X.columns]
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    rows = np.arange(len(X))[:, None]
    shown = X.to_numpy(dtype=object)[rows, order]
    effects = values[rows, order]
    return [
        "; ".join(
            f"{label[j]} = {_shown(value)} ({effect:+.2f})"
            for j, value, effect in zip(picked, row_values, row_effects, strict=True)
            if effect != 0
        )
        for picked, row_values, row_effects in zip(order, shown, effects, strict=True)
    ]


def _shown(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "missing" if np.isnan(value) else f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)
