"""How a risk probability is judged: ranking (AUROC, AUPRC), accuracy (Brier), calibration (ECE, plot).

The demo hospital knows each stay's true probability, so every score is also computed for the truth
itself (the ceiling any model can reach on these labels) and the model's mean distance from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.metrics import ranking_metrics

CALIBRATION_BINS = 10


def expected_calibration_error(
    actual: pd.Series, probability: pd.Series, bins: int = CALIBRATION_BINS
) -> float:
    """ECE (Guo et al. 2017): Σ over equal-width probability bins of bin share × |mean probability − rate|."""
    p, y = np.asarray(probability, float), np.asarray(actual, float)
    if not len(p):
        return float("nan")
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(which, p, minlength=bins) - np.bincount(which, y, minlength=bins))
    return float(gap.sum() / len(p))


def probability_scores(actual: pd.Series, probability: pd.Series) -> dict[str, float]:
    """AUROC, AUPRC, Brier, ECE and prevalence of one probability against 0/1 outcomes."""
    return ranking_metrics(actual, probability) | {"ece": expected_calibration_error(actual, probability)}


def reliability(curves: dict[str, tuple[pd.Series, pd.Series]], title: str) -> Figure:
    """Calibration plot: observed rate against mean probability per equal-count bin, one line per curve."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5.5))
    top = 0.0
    for name, (actual, probability) in curves.items():
        frame = pd.DataFrame({"p": np.asarray(probability, float), "y": np.asarray(actual, float)})
        frame["bin"] = pd.qcut(frame["p"].rank(method="first"), CALIBRATION_BINS, labels=False)
        points = frame.groupby("bin")[["p", "y"]].mean()
        axis.plot(points["p"], points["y"], marker="o", label=name)
        top = max(top, points.to_numpy().max())
    top = min(1.0, top * 1.1 + 0.01)
    axis.plot([0, top], [0, top], color="black", linewidth=1, linestyle="--")
    axis.set(
        xlim=(0, top), ylim=(0, top), xlabel="mean predicted probability", ylabel="observed rate", title=title
    )
    axis.legend()
    figure.tight_layout()
    return figure
