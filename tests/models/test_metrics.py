"""Calibration error over equal-width and equal-mass bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import calibration_error


def test_equal_width_ece_is_the_binned_gap() -> None:
    actual = pd.Series([0, 0, 1, 1] * 25)
    assert calibration_error(actual, pd.Series([0.5] * 100)) == pytest.approx(0.0)
    assert calibration_error(actual, pd.Series([0.9] * 100)) == pytest.approx(0.4)


def test_equal_mass_bins_see_miscalibration_that_one_crowded_bin_averages_out() -> None:
    # 100 low risks: half predicted 0.02 (observed 0.10), half 0.08 (observed 0); 10 at 0.9 (observed 0.9).
    probability = np.r_[np.full(50, 0.02), np.full(50, 0.08), np.full(10, 0.9)]
    actual = np.r_[np.repeat([1, 0], [5, 45]), np.zeros(50), np.repeat([1, 0], [9, 1])]
    # Equal width: both low groups share the first bin, whose mean 0.05 equals its rate 0.05.
    assert calibration_error(actual, probability, 10) == pytest.approx(0.0)
    # Equal mass (11 cases a bin): the 0.02 bins hold all the low readmissions, the 0.08 bins none.
    order = np.argsort(probability, kind="stable")
    p, y = probability[order].reshape(10, 11), actual[order].reshape(10, 11)
    by_hand = np.abs(p.sum(axis=1) - y.sum(axis=1)).sum() / 110
    assert by_hand > 0.05
    assert calibration_error(actual, probability, 10, equal_mass=True) == pytest.approx(by_hand)


def test_equal_mass_bins_hold_equal_shares_of_the_cases() -> None:
    rng = np.random.default_rng(0)
    probability = rng.beta(1, 12, 1000)  # mostly small risks, like readmissions
    actual = (rng.random(1000) < probability).astype(float)
    wide = np.minimum((probability * 10).astype(int), 9)
    assert np.bincount(wide).max() > 600  # equal width: most cases in one bin
    for bins in (10, 20):
        ece = calibration_error(actual, probability, bins, equal_mass=True)
        assert 0 <= ece < 0.05  # calibrated by construction: only sampling noise
    assert np.isnan(calibration_error([], [], 10, equal_mass=True))
