"""30-day unplanned readmission at discharge: calibrated LightGBM or logistic regression, beside LACE.

Labels follow :mod:`models.readmission.labels` (planned, died, transferred and censored stays are not
labels); the LACE score rides along as a helper label, so the framework's group-mean baseline over
``lace_score`` is LACE calibrated on the training period. The served model is whichever of LightGBM and
the logistic regression wins on the validation period; both candidates (calibrated) and the served
model's uncalibrated score are judged on the test period with it. On the demo hospital the oracle's
true probability is scored too: the ceiling on these labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from contract.fields import INSURANCE_TYPES, SEXES
from models import plots
from models.metrics import by_group
from models.readmission.evaluation import probability_scores
from models.readmission.labels import LABEL, readmission_labels
from models.readmission.lace import lace
from models.readmission.model import ReadmissionModel
from models.task import Evaluation, Output, Task

ORACLE_COLUMN = "true_readmission_prob"
PROBABILITY = "readmission_probability"
COMPARISONS = {
    "readmission_probability_raw": "uncalibrated",
    "lightgbm_probability": "lightgbm",
    "logistic_probability": "logistic",
}
AGE_BANDS = {"0-17": 0, "18-44": 18, "45-64": 45, "65-79": 65, "80+": 80}
BREAKDOWNS = ("department", "age_band", "sex", "insurance_type")


def age_band(age_years: pd.Series) -> pd.Series:
    """Age band of the report (0-17, 18-44, 45-64, 65-79, 80+) of each age in years."""
    edges = [*AGE_BANDS.values(), np.inf]
    return pd.cut(pd.to_numeric(age_years, errors="coerce"), edges, right=False, labels=list(AGE_BANDS))


class ReadmissionTask(Task):
    name = "readmission"
    title = "30-day unplanned readmission at discharge"
    stage = "discharge"
    label_column = LABEL
    output = Output(
        "readmission_probability",
        link="logit",
        unit="probability",
        zh="30天非计划再入院风险",
        en="30-day unplanned readmission risk",
        summary="Calibrated probability of an unplanned readmission within 30 days of discharge.",
    )
    primary_metric = "brier"
    greater_is_better = False
    baseline_levels = (("lace_score",),)
    partial_labels = True

    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        from casemix.engine import CasemixEngine

        adrg = CasemixEngine.from_settings(settings).group(cases)["adrg"]
        found = readmission_labels(cases, adrg=adrg)
        return found[[LABEL]].join(lace(cases)).join(found.drop(columns=LABEL))

    def context(self, inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        context = pd.DataFrame(index=inputs.index)
        for column, names in (("department", None), ("sex", SEXES), ("insurance_type", INSURANCE_TYPES)):
            if column in inputs.columns:
                values = inputs[column]
                context[column] = (
                    values if names is None else values.map({k: en for k, (_, en) in names.items()})
                )
        if "age_years" in inputs.columns:
            context["age_band"] = age_band(inputs["age_years"])
        if "lace_score" in labels.columns:
            context["lace_score"] = labels["lace_score"]
        return context

    def estimator(self, params: dict[str, Any]) -> ReadmissionModel:
        return ReadmissionModel(params["lightgbm"], params["calibration"], params["logistic_c"])

    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({PROBABILITY: labels[LABEL]})

    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        frame = context.assign(
            actual=labels[LABEL].to_numpy(), probability=predictions[PROBABILITY].to_numpy()
        )
        compared = {name: column for column, name in COMPARISONS.items() if column in predictions.columns}
        for name, column in compared.items():
            frame[name] = predictions[column].to_numpy()
        has_oracle = ORACLE_COLUMN in frame.columns

        def scores(sub: pd.DataFrame) -> dict[str, float]:
            found = probability_scores(sub["actual"], sub["probability"])
            for name in compared:
                found |= {f"{name}_{k}": v for k, v in probability_scores(sub["actual"], sub[name]).items()}
            if has_oracle:
                oracle = probability_scores(sub["actual"], sub[ORACLE_COLUMN])
                found |= {f"oracle_{k}": v for k, v in oracle.items() if k != "prevalence"}
                found["mae_vs_oracle"] = float(np.mean(np.abs(sub["probability"] - sub[ORACLE_COLUMN])))
            return found

        tables = {f"by_{g}": by_group(frame, g, scores) for g in BREAKDOWNS if g in frame.columns}
        return Evaluation(scores(frame), tables)

    def plots(
        self, estimator: ReadmissionModel, X: pd.DataFrame, labels: pd.DataFrame, predictions: pd.DataFrame
    ) -> dict[str, Figure]:
        actual = labels[LABEL].reset_index(drop=True)
        curves = {f"served ({estimator.served_})": (actual, predictions[PROBABILITY])}
        curves |= {name: (actual, predictions[c]) for c, name in COMPARISONS.items() if c in predictions}
        # SHAP first: shap draws on the current figure, which must not be the calibration plot.
        sample = plots.shap_sample(X)
        values, _ = estimator.contributions(sample)
        shap = plots.contributions_summary(
            values, sample, f"SHAP ({estimator.served_}): calibrated log-odds of readmission"
        )
        calibration = plots.reliability(curves, "30-day unplanned readmission: calibration (test)")
        return {"shap_summary.png": shap, "calibration.png": calibration}


TASK = ReadmissionTask()
