"""The calibrated readmission model, its metrics, and one training run through the framework."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from models.readmission.evaluation import probability_scores
from models.readmission.labels import LABEL
from models.readmission.model import Calibrator, LogisticModel, ReadmissionModel

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


def test_probability_scores_report_equal_width_and_equal_mass_ece():
    actual = pd.Series([0, 0, 1, 1] * 25)
    scores = probability_scores(actual, pd.Series(np.linspace(0.3, 0.7, 100)))
    assert {"ece", "ece_mass_10", "ece_mass_20"} <= set(scores)
    assert scores["ece_mass_20"] >= 0 and scores["ece"] >= 0


def linear_world(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Risk linear in the log-odds of many numbers and a category, some values missing."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)})
    X["ward"] = pd.Categorical(rng.choice(["a", "b", "c", "rare"], n, p=[0.4, 0.3, 0.298, 0.002]))
    logit = -2 + X.iloc[:, :8].to_numpy() @ np.linspace(0.6, -0.4, 8) + X["ward"].map({"a": 0.5}).fillna(0)
    X.loc[rng.random(n) < 0.1, "x0"] = np.nan
    return X, pd.DataFrame({LABEL: (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)})


def interaction_world(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Risk driven by an interaction no linear model can draw (high when the signs agree)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = np.where(X["a"] * X["b"] > 0, 0.5, -3.0)
    return X, pd.DataFrame({LABEL: (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)})


@pytest.mark.parametrize(("world", "winner"), [(linear_world, "logistic"), (interaction_world, "lightgbm")])
def test_the_served_model_is_the_one_that_wins_on_validation(world, winner):
    X, y = world(5000, 0)
    X_val, y_val = world(3000, 1)
    model = ReadmissionModel(TINY, "platt").fit(X, y, X_val, y_val)
    brier = model.validation_metrics_
    assert model.served_ == winner
    assert brier[f"{winner}_brier"] == min(brier["lightgbm_brier"], brier["logistic_brier"])
    predicted = model.predict(X_val)
    assert predicted["readmission_probability"].equals(predicted[f"{winner}_probability"])


def test_logistic_contributions_are_shap_values_of_the_linear_model():
    import shap

    X, y = linear_world(3000, 0)
    model = LogisticModel().fit(X, y[LABEL])
    values, base = model.contributions(X.head(50))
    assert values.shape == (50, X.shape[1])
    np.testing.assert_allclose(base + values.sum(axis=1), model.score(X.head(50)), atol=1e-9)
    # shap's own LinearExplainer on the encoded columns, summed per input feature, gives the same.
    columns, regression = model.pipeline_[0], model.pipeline_[-1]
    encoded = columns.transform(X)
    encoded = encoded.toarray() if hasattr(encoded, "toarray") else encoded
    explainer = shap.LinearExplainer(regression, shap.maskers.Independent(encoded, max_samples=len(encoded)))
    per_column = explainer.shap_values(encoded[:50])
    np.testing.assert_allclose(per_column @ (model.weights_ != 0), values, atol=1e-9)
    # A level unseen in training reads as the pooled rare levels and still adds up.
    unseen = X.head(3).assign(ward=pd.Categorical(["new"] * 3))
    values, base = model.contributions(unseen)
    np.testing.assert_allclose(base + values.sum(axis=1), model.score(unseen), atol=1e-9)


@pytest.mark.parametrize("served", ["lightgbm", "logistic"])
def test_contributions_add_up_to_the_calibrated_log_odds(served):
    X, y = shifted(4000, 0, base=-2.5)
    X_val, y_val = shifted(2000, 1, base=-1.5)
    model = ReadmissionModel(TINY, calibration="platt").fit(X, y, X_val, y_val)
    model.served_ = served
    values, base = model.contributions(X_val.head(40))
    calibrated = model.predict(X_val.head(40))["readmission_probability"].to_numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-(base + values.sum(axis=1)))), calibrated, atol=1e-9)
    assert model.explains == "prediction"
    isotonic = ReadmissionModel(TINY, calibration="isotonic").fit(X, y, X_val, y_val)
    values, base = isotonic.contributions(X_val.head(40))
    raw = isotonic.predict(X_val.head(40))["readmission_probability_raw"].to_numpy()
    np.testing.assert_allclose(1 / (1 + np.exp(-(base + values.sum(axis=1)))), raw, atol=1e-9)
    assert isotonic.explains == "uncalibrated score"


def test_benchmark_trains_through_the_framework_at_toy_size(tmp_path, settings):
    from experiments.benchmarks.readmission import run

    results = tmp_path / "readmission.md"
    report = run(2_000, results, min_rows=10)
    assert results.read_text(encoding="utf-8") == report
    assert (tmp_path / "readmission_calibration.png").stat().st_size > 0
    for row in (
        "| LightGBM, calibrated",
        "| LACE index",
        "| logistic regression, calibrated",
        "| oracle",
    ):
        assert row in report
    assert "ece_mass_10" in report and "served on validation" in report
    # The served model is the one with the lower validation Brier score the report quotes.
    served = re.search(r"Model served on validation: \*\*(.+?)\*\*", report).group(1)
    brier = dict(re.findall(r"(LightGBM|logistic regression) (\d\.\d+) \(AUROC", report))
    assert float(brier[served]) == min(float(b) for b in brier.values())  # as printed: ties allowed
    assert f"| {served}, calibrated (served) |" in report
    assert "## By age band" in report and "nproc" in report
