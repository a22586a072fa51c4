"""The calibrated readmission model, its metrics, and one training run through the framework."""

from __future__ import annotations

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


def test_benchmark_trains_through_the_framework_at_toy_size(tmp_path, settings):
    from experiments.benchmarks.readmission import run

    results = tmp_path / "readmission.md"
    report = run(2_000, results, min_rows=10)
    assert results.read_text(encoding="utf-8") == report
    assert (tmp_path / "readmission_calibration.png").stat().st_size > 0
    for row in (
        "| LightGBM, calibrated (the model) |",
        "| LACE index",
        "| logistic regression |",
        "| oracle",
    ):
        assert row in report
    assert "## By age band" in report and "nproc" in report
