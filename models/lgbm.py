"""LightGBM estimators built the same way for every task, from the ``lightgbm`` table of train.toml."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor

QUIET = {"verbose": -1}


def regressor(params: dict[str, Any], **overrides: Any) -> LGBMRegressor:
    return LGBMRegressor(**{**QUIET, **params, **overrides})


def classifier(params: dict[str, Any], **overrides: Any) -> LGBMClassifier:
    return LGBMClassifier(**{**QUIET, **params, **overrides})


def subsample(n_rows: int, max_rows: int | None, seed: int = 0) -> np.ndarray:
    """Positions of at most ``max_rows`` rows, for sub-models whose cost grows with classes × rows."""
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def class_probabilities(model: LGBMClassifier, X: pd.DataFrame, classes: list[object]) -> pd.DataFrame:
    """Probability of each of ``classes`` (0 for a class the model never saw), one column per class."""
    proba = pd.DataFrame(model.predict_proba(X), index=X.index, columns=list(model.classes_))
    return proba.reindex(columns=classes, fill_value=0.0)
