"""What a practitioner would fit on a prepared table in ten lines, reported beside the model.

A hospital judging caselens on its own table compares it with plain LightGBM (its defaults, every text
column a pandas categorical) and a logistic regression (one-hot, rare levels pooled); amounts are fit
on the log scale, as anyone would for costs. Both see the same training rows as the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

from models import lgbm
from models.readmission.model import logistic_regression
from models.task import Evaluation, Task


def plain_frames(train: pd.DataFrame, *others: pd.DataFrame) -> list[pd.DataFrame]:
    """Numbers as floats, text as pandas categoricals of the training levels (unseen: missing)."""
    text = [c for c in train.columns if not _is_number(train[c])]
    levels = {c: pd.Index(train[c].dropna().astype(str).unique()).sort_values() for c in text}

    def convert(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                c: pd.Categorical(
                    frame[c].astype("string").astype(object).where(frame[c].notna(), None),
                    categories=levels[c],
                )
                if c in levels
                else pd.to_numeric(frame[c], errors="coerce").astype("float64")
                for c in train.columns
            },
            index=frame.index,
        )

    return [convert(train), *(convert(f) for f in others)]


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _binary(y: pd.Series) -> bool:
    return set(pd.unique(pd.to_numeric(y, errors="coerce").dropna())) <= {0.0, 1.0}


def _log_scale(y: pd.Series) -> bool:
    return bool((y >= 0).all()) and float(y.skew()) > 1


def _fit_predict(
    kind: str, X: pd.DataFrame, y: pd.Series, X_test: pd.DataFrame, logistic_c: float
) -> np.ndarray:
    """One comparison's predictions of one target: probability for 0/1, amount otherwise."""
    y = pd.to_numeric(y, errors="coerce").astype("float64")
    if _binary(y):
        if kind == "lightgbm":
            return lgbm.classifier({}).fit(X, y.astype(int)).predict_proba(X_test)[:, 1]
        return logistic_regression(X, logistic_c).fit(X, y.astype(int)).predict_proba(X_test)[:, 1]
    log = _log_scale(y)
    target = np.log1p(y) if log else y
    if kind == "lightgbm":
        found = lgbm.regressor({}).fit(X, target).predict(X_test)
    else:
        model = logistic_regression(X).set_params(logisticregression=Ridge(alpha=1.0))
        found = model.fit(X, target).predict(X_test)
    return np.expm1(found) if log else found


def table_comparisons(
    task: Task,
    train: pd.DataFrame,
    labels: pd.DataFrame,
    test: pd.DataFrame,
    labels_test: pd.DataFrame,
    context_test: pd.DataFrame,
) -> dict[str, Evaluation]:
    """Plain LightGBM (defaults) and a logistic/linear regression, judged like the model on the test part."""
    X, X_test = plain_frames(train, test)
    targets = task.baseline_targets(labels)
    found = {}
    for name, kind in (("plain_lightgbm", "lightgbm"), ("logistic", "linear")):
        predictions = pd.DataFrame(
            {c: _fit_predict(kind, X, targets[c], X_test, 1.0) for c in targets.columns}
        )
        found[name] = task.evaluate(labels_test, predictions, context_test)
    return found


def explain_ms(model: Any, X: pd.DataFrame, repeats: int = 20) -> float:
    """Median milliseconds of one case's exact TreeSHAP values (what the service pays per answer)."""
    row = lgbm.prepared(X.head(1), model)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.booster_.predict(row, pred_contrib=True, num_threads=1)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def choose_depth(
    params: dict[str, Any],
    candidates: list[dict[str, Any]],
    budget_ms: float,
    fit_score: Callable[[dict[str, Any]], tuple[float, Any]],
    greater_is_better: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tree shape that scores best on validation among those explained within ``budget_ms``.

    ``fit_score(params)`` fits the task's estimator and returns (validation metric, milliseconds to
    explain one case). When no candidate is within budget, the fastest one wins.
    """
    tried = []
    for shape in candidates:
        trial = {**params, "lightgbm": {**params["lightgbm"], **shape}}
        value, ms = fit_score(trial)
        tried.append({**shape, "validation": value, "explain_ms": round(ms, 3)})
    within = [t for t in tried if t["explain_ms"] <= budget_ms] or [min(tried, key=lambda t: t["explain_ms"])]
    best = (max if greater_is_better else min)(within, key=lambda t: t["validation"])
    shape = {k: best[k] for k in candidates[0]}
    chosen = {**params, "lightgbm": {**params["lightgbm"], **shape}}
    return chosen, {"chosen": shape, "budget_ms": budget_ms, "candidates": tried}
