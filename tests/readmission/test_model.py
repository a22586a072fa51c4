"""The calibrated readmission model, its metrics, and one training run through the framework."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.readmission.evaluation import expected_calibration_error
from models.readmission.labels import LABEL
from models.readmission.model import Calibrator, ReadmissionModel

TINY = {
    "n_estimators": 40,
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 20,
    "n_jobs": 1,
    "verbose": -1,
}


def shifted(n: int, seed: int, base: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and labels whose base rate moves between periods (the trees learn the old rate)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(size=n),
            "severity": rng.normal(size=n),
            "department": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        }
    )
    p = 1 / (1 + np.exp(-(base + 0.8 * X["age"] + 0.5 * X["severity"])))
    return X, pd.DataFrame({LABEL: (rng.random(n) < p).astype(float)})


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_improves_brier_on_the_validation_period(method):
    X, y = shifted(4000, 0, base=-2.5)
    X_val, y_val = shifted(2000, 1, base=-1.5)
    model = ReadmissionModel(TINY, calibration=method).fit(X, y, X_val, y_val)
    assert model.validation_brier_["calibrated"] < model.validation_brier_["raw"]
    X_test, y_test = shifted(2000, 2, base=-1.5)  # the later period keeps the new rate
    predicted = model.predict(X_test)
    brier = {c: np.mean((predicted[c] - y_test[LABEL]) ** 2) for c in predicted.columns}
    assert brier["readmission_probability"] < brier["readmission_probability_raw"]
    assert predicted["readmission_probability"].between(0, 1).all()


def test_unknown_calibration_is_refused():
    with pytest.raises(ValueError, match="isotonic' or 'platt"):
        Calibrator("beta").fit(np.array([0.1, 0.9]), np.array([0, 1]))


def test_expected_calibration_error():
    actual = pd.Series([0, 0, 1, 1] * 25)
    assert expected_calibration_error(actual, pd.Series([0.5] * 100)) == pytest.approx(0.0)
    assert expected_calibration_error(actual, pd.Series([0.9] * 100)) == pytest.approx(0.4)


@pytest.fixture
def tracking(settings, tmp_path_factory):
    """A fresh MLflow SQLite store under the test's data_dir (tables created once per session)."""
    template = tmp_path_factory.getbasetemp() / "readmission-mlflow.db"
    if not template.exists():
        mlflow.set_tracking_uri(f"sqlite:///{template}")
        mlflow.search_experiments()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, settings.data_dir / "mlflow.db")
    return settings


def tiny_config() -> dict:
    from models.config import load_config

    config = load_config()
    config["split"]["min_rows"] = 20
    config["tasks"]["readmission"]["lightgbm"] = TINY
    return config


def test_trains_through_the_framework_against_the_oracle(demo_hospital, tracking):
    from models.tasks import get_task
    from pipelines import train as training

    task = get_task("readmission")
    data = training.case_data(task, demo_hospital.cases, tracking, demo_hospital.oracle)
    assert data.labels[LABEL].notna().all() and len(data.history) == len(demo_hospital.cases)
    result = training.train(task, data, tiny_config(), tracking)
    assert result.model_version == "1" and result.promoted
    for name in ("auroc", "auprc", "brier", "ece", "logistic_auroc", "oracle_auroc", "mae_vs_oracle"):
        assert np.isfinite(result.metrics[name]), name
    assert result.metrics["auroc"] > 0.6
    run = mlflow.get_run(result.run_id)
    assert {"plots/calibration.png", "evaluation/by_age_band.csv"} <= {
        a.path
        for folder in ("plots", "evaluation")
        for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, folder)
    }
