"""Cost and margin trained on the demo hospital's canonical cases, as `caselens train` does."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.tasks import get_task
from models.tasks.margin import discharge_margin
from pipelines.contract import fields_known_at
from pipelines.train import case_data, train

pytestmark = pytest.mark.slow


def test_cost_model_from_canonical_cases(demo_hospital, config, tracking) -> None:
    task = get_task("cost")
    data = case_data(task, demo_hospital.cases, tracking, oracle=demo_hospital.oracle)
    assert set(data.inputs.columns) <= set(fields_known_at("admission"))
    result = train(task, data, config, tracking)

    assert result.split["test_periods"] == "2025Q4..2025Q4"
    assert {"mae", "mape", "r2", "coverage", "width_mean", "mae_vs_oracle", "oracle_mae"} <= set(
        result.metrics
    )
    assert 0.6 <= result.metrics["coverage"] <= 0.95
    assert result.metrics["r2"] > 0.3 and result.metrics["mae_vs_oracle"] < result.metrics["mae"]
    features = mlflow.artifacts.load_text(f"runs:/{result.run_id}/features.csv")
    assert "expected_cost" not in features and "total_cost" not in features.split("\n")[0]
    by_department = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/evaluation/by_department.csv")
    )
    assert {"department", "cases", "mae", "coverage"} <= set(by_department.columns)
    tables = {a.path for a in MlflowClient().list_artifacts(result.run_id, "evaluation")}
    assert {"evaluation/by_adrg.csv", "evaluation/baseline_by_department.csv"} <= tables

    test = demo_hospital.cases[demo_hospital.cases["discharge_date"] >= "2025-10-01"]
    admission_only = test[list(data.inputs.columns)]
    loaded = mlflow.pyfunc.load_model("models:/caselens-cost@champion")
    served = loaded.predict(admission_only)
    direct = loaded.unwrap_python_model().predict_frame(admission_only)
    pd.testing.assert_frame_equal(served, direct)
    assert served["cost"].gt(0).all() and len(served) == len(test)


def test_margin_model_from_canonical_cases(demo_hospital, config, tracking) -> None:
    task = get_task("margin")
    result = train(task, case_data(task, demo_hospital.cases, tracking), config, tracking)
    assert {"margin_mae", "loss_auroc", "loss_auprc", "drg_top1_accuracy", "high_outlier_auroc"} <= set(
        result.metrics
    )
    assert {"margin_mae", "loss_auroc"} <= set(result.baseline_metrics)

    test = demo_hospital.cases[demo_hospital.cases["discharge_date"] >= "2025-10-01"]
    predicted = mlflow.pyfunc.load_model("models:/caselens-margin@champion").predict(test)
    assert list(predicted.columns[:2]) == ["expected_margin", "p_loss"]
    assert predicted[["p_loss", "p_high_outlier", "p_low_outlier"]].stack().between(0, 1).all()
    assert predicted["expected_payment"].gt(0).all() and predicted["expected_cost"].gt(0).all()
    plots = {a.path for a in MlflowClient().list_artifacts(result.run_id, "plots")}
    assert {"plots/shap_summary.png", "plots/calibration_loss.png", "plots/residuals.png"} <= plots


def test_discharge_margin_is_payment_minus_cost(demo_hospital, tracking) -> None:
    priced = discharge_margin(demo_hospital.cases.head(500), tracking)
    np.testing.assert_allclose(priced["margin"], priced["drg_payment"] - priced["total_cost"])
    by_drg = priced["payment_method"].isin(["rate", "point"])  # not by item, not at charges (self-pay)
    assert set(priced.loc[by_drg, "outlier"]) <= {"high", "low", "normal"}
    assert priced.loc[~by_drg, "outlier"].isna().all()
    # The label is the insurer's settlement: the city's RW table.
    assert set(priced["weights_source"]) == {"insurer table"}
