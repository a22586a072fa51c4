"""Coding errors at discharge, before claim submission: P(error), the likely type, and the money at stake.

Labels are the coding audits: an audited abstract with an error is 1, audited and correct is 0, an
unaudited abstract is no label (``partial_labels``). Helper labels carry what the evaluation needs:
the audit's error type, the rules a coding team checks (``rule_pattern``, the baseline: each
pattern's error rate among training audits) and the money the error put at stake (payment as coded
minus payment under the audit's corrected codes, by regrouping). The worklist is judged by how much of
the errors and of that money the top 5%, 10% and 20% of cases hold; on the demo hospital the oracle's
true error probability is ranked the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from contract.fields import principal_and_others
from models import plots
from models.coding.evaluation import SHARES, top_share_yield
from models.coding.features import CodingFeatures
from models.coding.model import LABEL, CodingModel
from models.coding.rules import rule_flags, rule_pattern
from models.metrics import by_group, ranking_metrics
from models.task import Evaluation, Output, Task

if TYPE_CHECKING:
    from casemix.engine import CasemixEngine

ORACLE_COLUMN = "true_coding_error_prob"
PROBABILITY = "error_probability"


def audit_labels(cases: pd.DataFrame) -> pd.DataFrame:
    """``coding_error`` (1.0 error found, 0.0 audited and correct, NaN not audited) and ``error_type``."""
    audited = cases["audited"].astype("boolean").fillna(False).to_numpy(bool)
    error = cases["audit_error"].astype("boolean").fillna(False).to_numpy(float)
    return pd.DataFrame(
        {
            LABEL: np.where(audited, error, np.nan),
            "error_type": cases["audit_error_type"].where(audited & (error == 1)),
        },
        index=cases.index,
    )


def corrected_money(cases: pd.DataFrame, engine: CasemixEngine, weights: pd.DataFrame) -> pd.Series:
    """Payment as coded minus payment under the audit's corrected codes (0 where nothing was corrected).

    ``corrected_diagnoses`` lists the right diagnoses, principal first; ``corrected_procedures`` the right
    procedures (missing: the procedures as coded stand).
    """
    from models.coding.whatif import price_drgs

    fixed = cases["corrected_diagnoses"].notna().to_numpy()
    rows = np.flatnonzero(fixed)
    money = np.zeros(len(cases))
    if not len(rows):
        return pd.Series(money, index=cases.index)
    sub = cases.iloc[rows]
    principal, others = principal_and_others(sub["corrected_diagnoses"])
    procedure, other_procedures = principal_and_others(sub["corrected_procedures"])
    given = sub["corrected_procedures"].notna()
    corrected = sub.assign(
        principal_diagnosis=principal,
        other_diagnoses=others,
        principal_procedure=procedure.where(given, sub["principal_procedure"]),
        other_procedures=other_procedures.where(given, sub["other_procedures"]),
    )
    before, after = engine.group(sub), engine.group(corrected)
    positions = np.arange(len(sub))
    paid = price_drgs(sub, positions, before["status"], before["drg"], engine, weights)
    right = price_drgs(sub, positions, after["status"], after["drg"], engine, weights)
    money[rows] = paid - right
    return pd.Series(money, index=cases.index)


class CodingTask(Task):
    name = "coding"
    title = "coding error before claim submission"
    stage = "discharge"
    label_column = LABEL
    output = Output(
        "error_probability",
        link="logit",
        unit="probability",
        zh="编码错误风险",
        en="coding error risk",
        summary="Probability that the coded abstract holds a coding error, before claim submission.",
    )
    primary_metric = "auprc"
    greater_is_better = True
    baseline_levels = (("rule_pattern",),)
    partial_labels = True

    def labels(self, cases: pd.DataFrame, settings: Any) -> pd.DataFrame:
        from casemix.engine import CasemixEngine

        engine = CasemixEngine.from_settings(settings)
        grouped = cases.join(engine.group(cases))
        weights = engine.weights(grouped)
        labels = audit_labels(cases)
        labels["rule_pattern"] = rule_pattern(rule_flags(cases, grouped["mcc_count"]))
        labels["money_at_stake"] = corrected_money(cases, engine, weights).where(labels[LABEL] == 1, 0.0)
        return labels

    def features(self) -> CodingFeatures:
        return CodingFeatures()

    def context(self, inputs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
        context = pd.DataFrame(index=inputs.index)
        for column in ("department", "coder_id"):
            if column in inputs.columns:
                context[column] = inputs[column]
        for column in ("rule_pattern", "error_type", "money_at_stake"):
            if column in labels.columns:
                context[column] = labels[column]
        return context

    def estimator(self, params: dict[str, Any]) -> CodingModel:
        return CodingModel(params["lightgbm"])

    def baseline_targets(self, labels: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({PROBABILITY: labels[LABEL]})

    def evaluate(self, labels: pd.DataFrame, predictions: pd.DataFrame, context: pd.DataFrame) -> Evaluation:
        frame = context.assign(
            actual=labels[LABEL].to_numpy(), probability=predictions[PROBABILITY].to_numpy()
        )
        money = labels["money_at_stake"].to_numpy(float) if "money_at_stake" in labels.columns else None
        has_oracle = ORACLE_COLUMN in frame.columns

        def scores(sub: pd.DataFrame) -> dict[str, float]:
            return ranking_metrics(sub["actual"], sub["probability"])

        metrics = scores(frame) | top_share_yield(frame["probability"], frame["actual"], money, SHARES)
        if "error_type" in predictions.columns and "error_type" in labels.columns:
            errors = labels["error_type"].notna().to_numpy()
            if errors.any():
                hit = predictions["error_type"].to_numpy()[errors] == labels["error_type"].to_numpy()[errors]
                metrics["error_type_accuracy"] = float(hit.mean())
        if has_oracle:
            oracle = frame[ORACLE_COLUMN]
            metrics |= {
                f"oracle_{k}": v
                for k, v in ranking_metrics(frame["actual"], oracle).items()
                if k != "prevalence"
            }
            metrics |= {
                f"oracle_{k}": v for k, v in top_share_yield(oracle, frame["actual"], money, SHARES).items()
            }
            metrics["mae_vs_oracle"] = float(np.mean(np.abs(frame["probability"] - oracle)))
        tables = {
            f"by_{g}": by_group(frame, g, scores) for g in ("department", "coder_id") if g in frame.columns
        }
        return Evaluation(metrics, tables)

    def plots(
        self, estimator: CodingModel, X: pd.DataFrame, labels: pd.DataFrame, predictions: pd.DataFrame
    ) -> dict[str, Figure]:
        actual = labels[LABEL].reset_index(drop=True)
        return {
            "shap_summary.png": plots.shap_summary(
                estimator.explained, X, "SHAP: log-odds of a coding error"
            ),
            "calibration.png": plots.calibration(
                actual, predictions[PROBABILITY], "P(coding error) calibration"
            ),
        }


TASK = CodingTask()
