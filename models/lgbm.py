"""LightGBM estimators built the same way for every task, from the ``lightgbm`` table of train.toml.

``predict`` and ``predict_proba`` give exactly what the estimators' own methods give, without
LightGBM's per-call pandas conversion: it copies the frame and maps every category column through
pandas ``apply``/``replace``, which costs milliseconds per call whatever the row count — more than the
trees themselves when the service scores one case with three models.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import Booster, LGBMClassifier, LGBMModel, LGBMRegressor

from features.view import FEW_ROWS

QUIET = {"verbose": -1}
# The Dask client LightGBM fits go to (None: this process); set by ``on_cluster``.
_CLUSTER: ContextVar[Any] = ContextVar("lightgbm_cluster", default=None)


@contextmanager
def on_cluster(client: Any) -> Iterator[None]:
    """Every model :func:`regressor` and :func:`classifier` build inside the block trains on the Dask
    cluster of ``client`` (``lightgbm.dask``) and comes back a plain LightGBM model
    (:mod:`models.lgbm_dask`)."""
    token = _CLUSTER.set(client)
    try:
        yield
    finally:
        _CLUSTER.reset(token)


def regressor(params: dict[str, Any], **overrides: Any) -> LGBMRegressor:
    return _placed(LGBMRegressor(**{**QUIET, **params, **overrides}))


def classifier(params: dict[str, Any], **overrides: Any) -> LGBMClassifier:
    return _placed(LGBMClassifier(**{**QUIET, **params, **overrides}))


def _placed(model: LGBMModel) -> Any:
    """``model`` itself, or inside ``on_cluster`` the same model to be fitted on the cluster."""
    client = _CLUSTER.get()
    if client is None:
        return model
    from models.lgbm_dask import ClusterFit

    return ClusterFit(model, client)


def subsample(n_rows: int, max_rows: int | None, seed: int = 0) -> np.ndarray:
    """Positions of at most ``max_rows`` rows, for sub-models whose cost grows with classes × rows."""
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def class_probabilities(model: LGBMClassifier, X: pd.DataFrame, classes: list[object]) -> pd.DataFrame:
    """Probability of each of ``classes`` (0 for a class the model never saw), one column per class."""
    proba = pd.DataFrame(predict_proba(model, X), index=X.index, columns=list(model.classes_))
    return proba.reindex(columns=classes, fill_value=0.0)


# The frame whose conversions are shared inside ``one_conversion`` and them, by categories' id.
_SHARED: ContextVar[tuple[pd.DataFrame, dict[int, tuple[Any, np.ndarray | None]]] | None] = ContextVar(
    "lightgbm_shared_conversion", default=None
)


@contextmanager
def one_conversion(X: pd.DataFrame) -> Iterator[None]:
    """Inside the block, every model fitted on ``X``'s features converts it once between them: a
    model's predictions and its SHAP values of one feature frame (which must not change inside)."""
    token = _SHARED.set((X, {}))
    try:
        yield
    finally:
        _SHARED.reset(token)


def frame_matrix(X: pd.DataFrame, categories: list[list[Any]] | None) -> np.ndarray | None:
    """The float64 matrix LightGBM's own pandas conversion makes of ``X``, or None to let it convert.

    ``categories`` is the booster's ``pandas_categorical`` (the training categories of each category
    column, in order). For the frames the features give (float64 numbers, category columns) this is
    the same matrix: numbers as they are, categories as their codes in the training categories,
    missing or unseen as NaN. Anything else (other dtypes, a category count mismatch, no rows, no
    float64 column, where LightGBM would convert to float32) goes through LightGBM unchanged.
    Inside :func:`one_conversion` of ``X`` the matrix is made once.
    """
    shared = _SHARED.get()
    if shared is None or shared[0] is not X:
        return _frame_matrix(X, categories)
    found = shared[1].get(id(categories))
    if found is None:  # (the categories are kept with the matrix, so their id is not reused)
        found = shared[1][id(categories)] = (categories, _frame_matrix(X, categories))
    return found[1]


def _frame_matrix(X: pd.DataFrame, categories: list[list[Any]] | None) -> np.ndarray | None:
    """:func:`frame_matrix` of a frame not converted yet."""
    if not isinstance(X, pd.DataFrame) or len(X) == 0 or categories is None:
        return None
    dtypes = list(X.dtypes)
    listed = [j for j, dtype in enumerate(dtypes) if isinstance(dtype, pd.CategoricalDtype)]
    numbers = [j for j, dtype in enumerate(dtypes) if not isinstance(dtype, pd.CategoricalDtype)]
    if not numbers or len(listed) != len(categories) or any(dtypes[j] != np.float64 for j in numbers):
        return None
    if len(X) <= FEW_ROWS:  # a request's rows: read as values, without a Series per column
        return _few_rows_matrix(X, listed, categories)
    out = np.empty(X.shape, dtype=np.float64)
    # The number columns in one take (a Series per column costs a fresh one-row frame more than the
    # copy), then each category column's codes.
    out[:, numbers] = X.iloc[:, numbers].to_numpy(dtype=np.float64)
    for j, levels in zip(listed, categories, strict=True):
        values = X[X.columns[j]].array
        if not _same_categories(dtypes[j], levels):
            values = values.set_categories(levels)
        codes = values.codes
        out[:, j] = np.where(codes == -1, np.nan, codes)
    return out


def _few_rows_matrix(X: pd.DataFrame, listed: list[int], categories: list[list[Any]]) -> np.ndarray:
    """:func:`frame_matrix` of a few rows, from their values: each category value at its position
    in the training categories (the code ``set_categories`` gives), missing or unseen NaN."""
    out = X.to_numpy(dtype=object)
    for j, levels in zip(listed, categories, strict=True):
        position = _positions(levels)
        out[:, j] = [position.get(value, np.nan) for value in out[:, j]]
    return out.astype(np.float64)


_POSITIONS: dict[int, tuple[list[Any], dict[Any, int]]] = {}


def _positions(categories: list[Any]) -> dict[Any, int]:
    """Each training category's position, made once per booster's list (kept with it, so its id is
    not reused while the entry exists)."""
    found = _POSITIONS.get(id(categories))
    if found is None:
        found = (categories, {value: i for i, value in enumerate(categories)})
        if len(_POSITIONS) < 4096:
            _POSITIONS[id(categories)] = found
    return found[1]


_VERIFIED: dict[tuple[int, int], tuple[object, object]] = {}


def _same_categories(dtype: pd.CategoricalDtype, categories: list[Any]) -> bool:
    """Whether ``dtype`` has exactly ``categories``; remembered per pair of objects.

    The features build one dtype object per level list and a booster keeps its category lists, so
    the comparison (a list of every level) runs once per model rather than per call. The entry holds
    both objects, so their ids cannot be reused while it exists.
    """
    key = (id(dtype), id(categories))
    if key in _VERIFIED:
        return True
    same = list(dtype.categories) == list(categories)
    if same and len(_VERIFIED) < 4096:
        _VERIFIED[key] = (dtype, categories)
    return same


def prepared(X: pd.DataFrame | np.ndarray, model: LGBMModel) -> pd.DataFrame | np.ndarray:
    """``X`` converted once for several models fitted on the same feature frame (else ``X`` itself)."""
    if isinstance(X, np.ndarray):
        return X
    matrix = frame_matrix(X, model.booster_.pandas_categorical)
    return X if matrix is None or X.shape[1] != model.booster_.num_feature() else matrix


def predict(model: LGBMModel, X: pd.DataFrame | np.ndarray, **options: Any) -> np.ndarray:
    """``model.predict(X, **options)``: the same numbers, by the fast conversion when it applies.

    ``X`` may be what :func:`prepared` made of the frame for a model fitted on the same features.
    """
    data = prepared(X, model)
    if not isinstance(data, np.ndarray):
        return model.predict(data, **options)
    return model.booster_.predict(data, num_threads=_threads(model.n_jobs), **options)


def predict_proba(model: LGBMClassifier, X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """``model.predict_proba(X)``: n × classes, in ``model.classes_`` order (``X`` as for predict)."""
    data = prepared(X, model)
    if not isinstance(data, np.ndarray):
        return model.predict_proba(data)
    found = predict(model, data)
    return found if found.ndim == 2 else np.column_stack([1.0 - found, found])


def contributions(
    model: LGBMModel | Booster, X: pd.DataFrame, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Exact TreeSHAP values of the model's raw output (n × features) and the base value (n).

    LightGBM's ``pred_contrib`` gives the same numbers as shap's TreeExplainer (tree-path-dependent)
    and is the faster of the two for one case; base + Σ values = the raw score.
    """
    booster = model if isinstance(model, Booster) else model.booster_
    matrix = frame_matrix(X, booster.pandas_categorical)
    contrib = booster.predict(X if matrix is None else matrix, pred_contrib=True, num_threads=threads)
    return contrib[:, :-1], contrib[:, -1]


def _threads(n_jobs: int | None) -> int:
    """LightGBM's scikit-learn rule for ``n_jobs``: None → OpenMP's default (0), −1 → all cores, …"""
    if n_jobs is None:
        return 0
    return n_jobs if n_jobs > 0 else max((os.cpu_count() or 1) + 1 + n_jobs, 1)
