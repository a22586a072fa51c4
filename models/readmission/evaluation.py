"""How a risk probability is judged: ranking (AUROC, AUPRC), accuracy (Brier), calibration (ECE).

ECE is reported three ways: over 10 equal-width bins (the usual figure, comparable with papers) and
over 10 and 20 equal-mass bins. Readmission risks are mostly small, so equal-width bins put about two
thirds of the cases in the first bin, where miscalibration averages out; equal-mass bins do not.
The demo hospital knows each stay's true probability, so every score is also computed for the truth
itself (the ceiling any model can reach on these labels) and the model's mean distance from it.
"""

from __future__ import annotations

import pandas as pd

from models.metrics import calibration_error, ranking_metrics

EQUAL_MASS_BINS = (10, 20)


def probability_scores(actual: pd.Series, probability: pd.Series) -> dict[str, float]:
    """AUROC, AUPRC, Brier, equal-width and equal-mass ECE and prevalence against 0/1 outcomes."""
    scores = ranking_metrics(actual, probability) | {"ece": calibration_error(actual, probability)}
    for bins in EQUAL_MASS_BINS:
        scores[f"ece_mass_{bins}"] = calibration_error(actual, probability, bins, equal_mass=True)
    return scores
