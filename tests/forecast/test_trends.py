"""What the point forecast learns about time: volume growth for short series, a cost season when clear."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forecast.panel import leaf_panel
from models.forecast.per_case import department_trend
from models.forecast.volume import forecast_volume
from tests.forecast.test_uncertainty import QUARTERS, two_departments


def test_same_quarter_last_year_is_grown_by_the_departments_growth() -> None:
    """Seven quarters are too few for MSTL: the forecast is last year's quarter times a year's growth."""
    quarters = QUARTERS[:7]
    season = np.array([1.2, 1.0, 0.9, 1.1] * 2)[:7]
    rows = {
        ("growing", "FM1"): 40 * season * 1.02 ** np.arange(7),
        ("growing", "FR1"): 10 * season * 1.02 ** np.arange(7),
        ("flat", "IC2"): 30 * season,
    }
    counts = pd.DataFrame(rows, index=quarters).T.rename_axis(["department", "adrg"])
    forecast = forecast_volume(counts, 4)
    assert set(forecast.model) == {"SeasonalNaive"}
    last_year = counts.iloc[:, 3:7].to_numpy()
    ratio = forecast.point.to_numpy() / last_year
    assert ratio[:2] == pytest.approx(np.full((2, 4), 1.02**4), rel=1e-9)
    assert ratio[2] == pytest.approx(np.ones(4))


def test_a_clear_cost_season_is_forecast_and_noise_is_not() -> None:
    bumped = two_departments(shock=0.0)
    q2 = bumped["discharge_date"].dt.quarter == 2
    bumped.loc[q2, "cost"] *= 1.04
    trend = department_trend(leaf_panel(bumped, QUARTERS[:8], ["cost"]), "cost")
    effects = trend.fit.loc["steady", ["q1", "q2", "q3", "q4"]].to_numpy()
    assert effects[1] - effects[[0, 2, 3]].mean() == pytest.approx(np.log(1.04), abs=2e-3)
    assert trend.fit.loc["erratic", "q2"] == trend.fit.loc["steady", "q2"]  # the hospital's season
    assert trend.fit.loc["steady", "slope"] == pytest.approx(0.01, abs=1e-3)
    noisy = department_trend(leaf_panel(two_departments(shock=0.05), QUARTERS[:8], ["cost"]), "cost")
    assert (noisy.fit[["q1", "q2", "q3", "q4"]] == 0.0).all().all()
