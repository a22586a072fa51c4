"""The figures logged with every run."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from models.plots import shap_summary


def test_shap_summary_of_a_binary_lightgbm_prints_no_warning() -> None:
    """shap announces its changed output for binary LightGBM on every call; the summary handles both
    shapes, so training runs (and ``make demo``) do not print that notice once per classifier."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, (X["a"] > 0).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (what Python shows a user by default)
        figure = shap_summary(model, X, "SHAP: test")
    assert figure.axes
    plt.close(figure)
