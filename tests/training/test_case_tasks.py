"""Cost and margin trained on the demo hospital's canonical cases, as `caselens train` does."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from contract.fields import fields_known_at
from models.tasks import get_task
from models.tasks.margin import discharge_margin
from pipelines.training.data import case_data
from pipelines.training.run import train

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


@pytest.fixture(scope="module")
def larger_hospital():
    """A larger demo hospital than the session's: on 4,000 stays (about 330 in the test quarter) the
    margin, little of which is knowable at admission, is too noisy for the model to beat the baseline
    (MAE ¥5,507 vs ¥5,455, loss AUROC 0.53–0.55 vs 0.545), and a readmission Brier score is a tie
    within noise (about 30 readmissions); on 15,000 stays both comparisons mean something."""
    from pipelines.demo import generate_demo

    return generate_demo(15_000, 3, 7)


def test_margin_model_from_canonical_cases(larger_hospital, config, tracking) -> None:
    task = get_task("margin")
    result = train(task, case_data(task, larger_hospital.cases, tracking), config, tracking)
    assert {"margin_mae", "loss_auroc", "loss_auprc", "drg_top1_accuracy", "high_outlier_auroc"} <= set(
        result.metrics
    )
    # better than the baseline on both the amount and the chance of a loss...
    assert result.metrics["margin_mae"] < result.baseline_metrics["margin_mae"]
    assert result.metrics["loss_auroc"] > result.baseline_metrics["loss_auroc"] + 0.02

    test = larger_hospital.cases[larger_hospital.cases["discharge_date"] >= "2025-10-01"]
    # ...but no better than the oracle, who knows the payment and the stay's expected charges: a model
    # that beat it would be reading the label
    priced = discharge_margin(larger_hospital.cases, tracking).loc[test.index]  # weights from every case
    expected = test[["case_id"]].merge(larger_hospital.oracle, on="case_id")["expected_cost"].to_numpy()
    oracle_mae = float(np.mean(np.abs(priced["margin"] - (priced["drg_payment"] - expected))))
    assert oracle_mae < result.metrics["margin_mae"]
    # the registered model, given the same history as training, reproduces the logged test MAE
    champion = mlflow.pyfunc.load_model("models:/caselens-margin@champion").unwrap_python_model()
    again = champion.predict_frame(test[list(champion.dtypes)], larger_hospital.cases)
    served_error = again["expected_margin"].to_numpy() - priced["margin"].to_numpy()
    assert np.mean(np.abs(served_error)) == pytest.approx(result.metrics["margin_mae"], rel=1e-6)
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


def test_readmission_model_from_canonical_cases(larger_hospital, config, tracking) -> None:
    """Scored beside LACE and the generator's true probability, not only for keys and ranges."""
    task = get_task("readmission")
    data = case_data(task, larger_hospital.cases, tracking, oracle=larger_hospital.oracle)
    result = train(task, data, config, tracking)
    model, baseline = result.metrics, result.baseline_metrics
    # closer to the true probability of each case than LACE's rate, and ranking better
    assert model["mae_vs_oracle"] < baseline["mae_vs_oracle"]
    assert model["auroc"] > baseline["auroc"] and model["brier"] < baseline["brier"]
    # the truth is the ceiling: beating it on these cases would mean the label leaked into the features
    assert model["auroc"] <= model["oracle_auroc"] + 0.01 and model["brier"] >= model["oracle_brier"] - 1e-3
