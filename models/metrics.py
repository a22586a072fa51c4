"""Metrics shared by tasks: point and interval accuracy for amounts, ranking and calibration of risks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, mean_absolute_error, r2_score, roc_auc_score


def regression_metrics(actual: pd.Series, predicted: pd.Series) -> dict[str, float]:
    """MAE, MAPE (over cases with a non-zero actual) and R² of a point forecast."""
    nonzero = actual != 0
    return {
        "mae": float(mean_absolute_error(actual, predicted)),
        "mape": float(np.mean(np.abs((actual[nonzero] - predicted[nonzero]) / actual[nonzero]))),
        "r2": float(r2_score(actual, predicted)),
    }


def interval_metrics(actual: pd.Series, lower: pd.Series, upper: pd.Series) -> dict[str, float]:
    """Share of actuals inside [lower, upper] and the interval's mean and median width."""
    width = upper - lower
    return {
        "coverage": float(((actual >= lower) & (actual <= upper)).mean()),
        "width_mean": float(width.mean()),
        "width_median": float(width.median()),
    }


def ranking_metrics(actual: pd.Series, probability: pd.Series) -> dict[str, float]:
    """AUROC, AUPRC and Brier score of a probability; NaN ranks when the actual has one class only."""
    two_classes = actual.nunique() == 2
    return {
        "auroc": float(roc_auc_score(actual, probability)) if two_classes else float("nan"),
        "auprc": float(average_precision_score(actual, probability)) if two_classes else float("nan"),
        "brier": float(np.mean((probability - actual) ** 2)),
        "prevalence": float(actual.mean()),
    }


def calibration_error(
    actual: pd.Series | np.ndarray,
    probability: pd.Series | np.ndarray,
    bins: int = 10,
    equal_mass: bool = False,
) -> float:
    """ECE (Guo et al. 2017): Σ over bins of bin share × |mean probability − observed rate|.

    Equal-width bins (``equal_mass=False``) are the usual definition, but when most risks are small
    they put most cases in the first bin and hide miscalibration inside it; equal-mass bins (each
    ``1/bins`` of the cases, by rank of the probability) judge every part of the distribution alike.
    """
    p, y = np.asarray(probability, float), np.asarray(actual, float)
    if not len(p):
        return float("nan")
    if equal_mass:
        which = np.empty(len(p), dtype=np.int64)
        which[np.argsort(p, kind="stable")] = np.arange(len(p)) * bins // len(p)
    else:
        which = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(which, p, minlength=bins) - np.bincount(which, y, minlength=bins))
    return float(gap.sum() / len(p))


def by_group(
    frame: pd.DataFrame, group: str, metrics: Callable[[pd.DataFrame], dict[str, float]], min_count: int = 20
) -> pd.DataFrame:
    """``metrics(sub_frame)`` for every value of ``group`` with at least ``min_count`` rows."""
    rows = {
        key: {"cases": len(sub), **metrics(sub)}
        for key, sub in frame.groupby(group, observed=True)
        if len(sub) >= min_count
    }
    if not rows:
        return pd.DataFrame({"cases": pd.Series(dtype="int64")}).rename_axis(group)
    return (
        pd.DataFrame.from_dict(rows, orient="index").rename_axis(group).sort_values("cases", ascending=False)
    )
