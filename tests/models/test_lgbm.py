"""The fast prediction path gives exactly the estimators' own numbers, whatever the frame holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import lgbm

TINY = {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5, "n_jobs": 1}


def frame(n: int, seed: int, categories: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    dept = pd.Categorical(rng.choice(categories, size=n), categories=sorted(set(categories)))
    return pd.DataFrame({"x": x, "dept": dept, "age": rng.integers(0, 90, n).astype("float64")})


@pytest.fixture(scope="module")
def train() -> tuple[pd.DataFrame, np.ndarray]:
    X = frame(400, 0, ["a", "b", "c"])
    y = X["x"].fillna(0).to_numpy() + (X["dept"] == "b") * 2 + X["age"] / 50
    return X, y


def scoring_frames() -> list[pd.DataFrame]:
    unseen = frame(50, 1, ["a", "b", "zz"])  # an unseen category and other category order
    one_row = frame(1, 2, ["c"])
    missing_dept = frame(5, 3, ["a"]).assign(dept=pd.Categorical([None] * 5, categories=["a", "b", "c"]))
    int_column = frame(5, 4, ["a"]).astype({"age": "int64"})  # not the features' dtypes: LightGBM converts
    few_unseen = frame(8, 5, ["b", "zz", "a"])  # a request's few rows (read as values), one unseen
    return [unseen, one_row, missing_dept, int_column, few_unseen]


@pytest.mark.parametrize("X", scoring_frames())
def test_regressor_predictions_equal_lightgbm(train, X) -> None:
    model = lgbm.regressor(TINY).fit(*train)
    np.testing.assert_array_equal(lgbm.predict(model, X), model.predict(X))
    np.testing.assert_array_equal(
        lgbm.predict(model, X, pred_contrib=True), model.predict(X, pred_contrib=True)
    )


@pytest.mark.parametrize("X", scoring_frames())
def test_classifier_probabilities_equal_lightgbm(train, X) -> None:
    Xt, y = train
    binary = lgbm.classifier(TINY).fit(Xt, y > np.median(y))
    np.testing.assert_array_equal(lgbm.predict_proba(binary, X), binary.predict_proba(X))
    three = lgbm.classifier(TINY).fit(Xt, np.digitize(y, np.quantile(y, [0.33, 0.66])))
    np.testing.assert_array_equal(lgbm.predict_proba(three, X), three.predict_proba(X))


def test_frame_matrix_declines_what_it_cannot_convert(train) -> None:
    model = lgbm.regressor(TINY).fit(*train)
    categories = model.booster_.pandas_categorical
    assert lgbm.frame_matrix(train[0].iloc[:0], categories) is None
    assert lgbm.frame_matrix(train[0].astype({"age": "int64"}), categories) is None
    assert lgbm.frame_matrix(train[0].drop(columns="dept"), categories) is None
    matrix = lgbm.frame_matrix(train[0], categories)
    assert matrix is not None and matrix.dtype == np.float64 and matrix.shape == train[0].shape


def test_one_conversion_shares_the_matrix_of_that_frame_only(train) -> None:
    """Predictions and SHAP values of one feature frame convert it once inside ``one_conversion``; a
    frame changed after the block, or another frame, is converted afresh."""
    model = lgbm.regressor(TINY).fit(*train)
    categories = model.booster_.pandas_categorical
    X = frame(20, 5, ["a", "b"])
    other = frame(20, 6, ["c"])
    with lgbm.one_conversion(X):
        first = lgbm.frame_matrix(X, categories)
        assert lgbm.frame_matrix(X, categories) is first
        assert lgbm.frame_matrix(other, categories) is not lgbm.frame_matrix(other, categories)
        np.testing.assert_array_equal(lgbm.predict(model, X), model.predict(X))
        np.testing.assert_array_equal(
            lgbm.contributions(model, X)[0], model.predict(X, pred_contrib=True)[:, :-1]
        )
    assert lgbm.frame_matrix(X, categories) is not first
    X["x"] = 0.0
    np.testing.assert_array_equal(lgbm.predict(model, X), model.predict(X))
