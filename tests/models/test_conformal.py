"""Interval calibration: the conformal quantile and the cost model's coverage on a later period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.conformal import MondrianCQR, conformal_quantile, cross_fitted
from models.tasks.cost import CostModel

LGBM = {"n_estimators": 40, "learning_rate": 0.1, "num_leaves": 15, "n_jobs": 1, "verbose": -1}
SPREAD = {"a": 0.2, "b": 0.4, "c": 0.8}


def _cases(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    department = rng.choice(list(SPREAD), n)
    x = rng.normal(size=n)
    cost = np.exp(8 + 0.6 * x + rng.normal(size=n) * pd.Series(department).map(SPREAD).to_numpy())
    X = pd.DataFrame({"x": x, "department": pd.Categorical(department, categories=list(SPREAD))})
    return X, pd.DataFrame({"cost": cost})


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    scores = np.arange(1.0, 10.0)  # 9 scores: rank ceil(10 * 0.8) = 8
    assert conformal_quantile(scores, 0.8) == 8.0
    assert conformal_quantile(np.array([1.0, 2.0]), 0.9) == np.inf


def test_small_groups_fall_back_to_the_pooled_widening() -> None:
    actual = pd.Series(np.zeros(300))
    lower, upper = pd.Series(np.full(300, 1.0)), pd.Series(np.full(300, 2.0))
    groups = pd.Series(["big"] * 290 + ["small"] * 10)
    cqr = MondrianCQR(0.8, min_group=100).fit(actual, lower, upper, groups)
    assert set(cqr.by_group_) == {"big"}
    expected = [cqr.by_group_["big"], cqr.pooled_, cqr.pooled_, cqr.pooled_]
    groups = pd.Series(["big", "small", "unseen", None])
    assert cqr.margins(groups, 4).tolist() == expected
    categories = groups.astype(pd.CategoricalDtype(["small", "big", "unseen"]))
    assert cqr.margins(categories, 4).tolist() == expected
    assert cqr.margins(None, 2).tolist() == [cqr.pooled_] * 2


@pytest.mark.parametrize("level", [0.8, 0.9])
def test_interval_coverage_on_held_out_data_is_near_nominal(level: float) -> None:
    X, labels = _cases(3000, 0)
    X_val, labels_val = _cases(2000, 1)
    X_test, labels_test = _cases(4000, 2)
    model = CostModel(LGBM, level=level, mondrian_min_group=200).fit(X, labels, X_val, labels_val)
    predicted = model.predict(X_test)
    inside = (labels_test["cost"] >= predicted["cost_lower"]) & (
        labels_test["cost"] <= predicted["cost_upper"]
    )
    assert level - 0.04 <= inside.mean() <= level + 0.04
    by_department = inside.groupby(X_test["department"], observed=True).mean()
    assert by_department.between(level - 0.07, level + 0.07).all(), by_department


def test_cross_fitted_bands_come_from_models_that_never_saw_the_row() -> None:
    X = pd.DataFrame({"x": np.arange(50.0)})
    seen: list[bool] = []

    def band(X_fit: pd.DataFrame, y_fit: np.ndarray, X_held: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        seen.append(bool(X_held.index.isin(X_fit.index).any()))
        return np.full(len(X_held), y_fit.min()), np.full(len(X_held), y_fit.max())

    lower, upper = cross_fitted(band, X, X["x"].to_numpy(), folds=5)
    assert seen == [False] * 5 and (lower <= upper).all()


def test_departments_hold_their_coverage_when_the_validation_period_is_small() -> None:
    """Weak quantile models miss the departments' spreads; 150 validation cases leave every department
    under ``min_group`` (pooled widening), so only the training cases' cross-fitted scores can give each
    department its own widening."""
    weak = {**LGBM, "n_estimators": 3}
    X, labels = _cases(6000, 0)
    X_val, labels_val = _cases(150, 1)
    X_test, labels_test = _cases(6000, 2)
    coverage = {}
    for folds in (1, 5):
        model = CostModel(weak, mondrian_min_group=100, conformal_folds=folds).fit(
            X, labels, X_val, labels_val
        )
        predicted = model.predict(X_test)
        inside = (labels_test["cost"] >= predicted["cost_lower"]) & (
            labels_test["cost"] <= predicted["cost_upper"]
        )
        coverage[folds] = inside.groupby(X_test["department"], observed=True).mean()
    assert not coverage[1].between(0.75, 0.85).all(), coverage[1]  # validation only: pooled widening
    assert coverage[5].between(0.75, 0.85).all(), coverage[5]


def test_training_report_flags_departments_outside_the_band() -> None:
    from experiments.benchmarks.training import coverage_table

    table = pd.DataFrame(
        {"cases": [900, 400, 40], "coverage": [0.80, 0.72, 0.60], "width_median": 1.0, "mae": 1.0},
        index=pd.Index(["oncology", "icu", "rare"], name="department"),
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in coverage_table(table) if line.startswith("| ")}
    assert rows["oncology"].endswith("| yes |") and rows["icu"].endswith("| **no** |")
    assert rows["rare"].endswith("| too few cases |")


def test_predict_columns_are_the_prediction_frame_by_name() -> None:
    """The in-stay model puts its overrun probability beside the cost model's columns in one frame:
    the same numbers and names as ``predict``'s frame, with or without an interval."""
    X, labels = _cases(600, 0)
    X_val, labels_val = _cases(400, 1)
    X_test = _cases(30, 2)[0].set_axis(range(100, 130))
    for level in (0.8, None):
        model = CostModel(LGBM, level=level, mondrian_min_group=50).fit(X, labels, X_val, labels_val)
        frame = model.predict(X_test)
        columns = model.predict_columns(X_test)
        assert (
            list(columns)
            == list(frame.columns)
            == (["cost", "cost_lower", "cost_upper"] if level else ["cost"])
        )
        pd.testing.assert_frame_equal(pd.DataFrame(columns, index=X_test.index), frame)
