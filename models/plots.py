"""Figures logged with every run (matplotlib Agg: no display needed on a server)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

SHAP_ROWS = 2000


def shap_sample(X: pd.DataFrame) -> pd.DataFrame:
    """The rows a SHAP summary is drawn over (at most ``SHAP_ROWS``, the same rows every run)."""
    return X.sample(min(len(X), SHAP_ROWS), random_state=0)


def shap_summary(model: object, X: pd.DataFrame, title: str, class_index: int | None = None) -> Figure:
    """SHAP beeswarm of a tree model over a sample of ``X`` (a class's values for a multi-output model)."""
    import shap  # slow to import: only when a run draws it

    sample = shap_sample(X)
    with warnings.catch_warnings():  # shap's notice of its output for binary LightGBM, handled below
        warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer")
        values = shap.TreeExplainer(model).shap_values(sample)
    if isinstance(values, list):
        values = values[class_index or 0]
    elif values.ndim == 3:
        values = values[:, :, class_index or 0]
    return contributions_summary(values, sample, title)


def contributions_summary(values: np.ndarray, sample: pd.DataFrame, title: str) -> Figure:
    """SHAP beeswarm of given contributions (n × features) of the rows of ``sample``."""
    import shap

    shap.summary_plot(values, sample, show=False, max_display=20)
    figure = plt.gcf()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def actual_vs_predicted(actual: pd.Series, predicted: pd.Series, title: str, log: bool) -> Figure:
    """Scatter of predicted against actual with the identity line, and residuals against predicted."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.scatter(predicted, actual, s=3, alpha=0.3)
    limits = [min(actual.min(), predicted.min()), max(actual.max(), predicted.max())]
    left.plot(limits, limits, color="black", linewidth=1)
    left.set(xlabel="predicted", ylabel="actual", title=title)
    right.scatter(predicted, actual - predicted, s=3, alpha=0.3)
    right.axhline(0, color="black", linewidth=1)
    right.set(xlabel="predicted", ylabel="actual − predicted", title="residuals")
    if log:
        for axis in (left, right):
            axis.set_xscale("log")
        left.set_yscale("log")
    figure.tight_layout()
    return figure


def reliability(curves: dict[str, tuple[pd.Series, pd.Series]], title: str, bins: int = 10) -> Figure:
    """Reliability diagram: observed rate against mean probability per equal-mass bin, one line per curve.

    Equal-mass bins (each ``1/bins`` of the cases) put a point wherever the cases are, so a risk
    model whose cases are mostly below 10% is judged there rather than by one crowded bin.
    """
    figure, axis = plt.subplots(figsize=(5.5, 5.5))
    top = 0.0
    for name, (actual, probability) in curves.items():
        frame = pd.DataFrame({"p": np.asarray(probability, float), "y": np.asarray(actual, float)})
        frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
        points = frame.groupby("bin")[["p", "y"]].mean()
        axis.plot(points["p"], points["y"], marker="o", label=name)
        top = max(top, points.to_numpy().max())
    top = min(1.0, top * 1.1 + 0.01)
    axis.plot([0, top], [0, top], color="black", linewidth=1, linestyle="--")
    axis.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel=f"mean predicted probability ({bins} equal-mass bins)",
        ylabel="observed rate",
        title=title,
    )
    axis.legend()
    figure.tight_layout()
    return figure


def calibration(actual: pd.Series, probability: pd.Series, title: str) -> Figure:
    """Reliability diagram of one probability."""
    return reliability({"model": (actual, probability)}, title)


def coverage_by_group(table: pd.DataFrame, level: float, title: str) -> Figure:
    """Interval coverage per group against the nominal level."""
    figure, axis = plt.subplots(figsize=(8, max(3, 0.3 * len(table))))
    axis.barh(table.index.astype(str), table["coverage"])
    axis.axvline(level, color="black", linewidth=1)
    axis.set(xlim=(0, 1), xlabel="coverage", title=title)
    axis.invert_yaxis()
    figure.tight_layout()
    return figure


def close(figures: dict[str, Figure]) -> None:
    for figure in figures.values():
        plt.close(figure)
