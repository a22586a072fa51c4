"""Quarterly case volume per department × ADRG from statsforecast's seasonal models.

Series with more than two full seasons of history and enough cases get MSTL: a seasonal-trend
decomposition (season length 4) whose seasonally adjusted part is forecast by AutoETS with an
additive trend (damped if that fits better) and no seasonal term, so growth is extrapolated and the
seasonal shape repeated. (AutoETS with its own seasonal term needs more quarters than two or three
years give; left to choose, it mostly drops the trend; with exactly two seasons MSTL's trend fit
fails: each of these ends in a forecast a year of growth behind, about 5% low in the backtest.)
Sparse or shorter series get seasonal naive (same quarter last year) grown by their department's
year-on-year growth, so they do not lag a growing hospital either; too-short ones get naive.
Besides the point forecast we keep what the simulation needs: each series' one-step errors (in
cases: relative errors of sparse series are mostly noise around a fitted value near zero), and how
much wider the model's 80% interval is at horizon h than at horizon 1. The one-step errors are out
of sample: each history quarter is forecast by the same procedure from the quarters before it only.
In-sample residuals would understate them: with two or three seasons MSTL's decomposition nearly
interpolates the history (on the 60,000-case demo its in-sample residuals were half its one-step
forecast errors, and below the cells' Poisson noise), so the hospital's bands came out too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL, AutoETS, Naive, SeasonalNaive

SEASON = 4
MAX_GROWTH = 0.25  # a year: a small department's odd year is not extrapolated beyond this


@dataclass(frozen=True)
class VolumeForecast:
    """Point forecast, horizon spread and residuals (cases), each indexed by cell."""

    point: pd.DataFrame  # cells × forecast quarters
    spread: pd.DataFrame  # cells × forecast quarters, 1.0 at the first
    residuals: pd.DataFrame  # cells × history quarters: one-step out-of-sample errors (cases), 0.0 where none
    model: pd.Series  # the model each cell got


def choose_model(counts: pd.DataFrame, min_mean: float) -> pd.Series:
    """MSTL for long, busy series; seasonal naive for sparse or shorter ones; naive for short ones."""
    recent_mean = counts.iloc[:, -SEASON:].mean(axis=1)
    n_quarters = counts.shape[1]
    if n_quarters < SEASON:
        return pd.Series("Naive", index=counts.index)
    busy = (recent_mean >= min_mean) & (n_quarters > 2 * SEASON)
    return pd.Series(np.where(busy, "MSTL", "SeasonalNaive"), index=counts.index)


def forecast_volume(counts: pd.DataFrame, horizon: int, min_mean: float = 5.0) -> VolumeForecast:
    """Forecast ``horizon`` quarters for every row of ``counts`` (cells × consecutive quarters)."""
    point, spread, chosen = _forecast(counts, horizon, min_mean)
    return VolumeForecast(point, spread, one_step_errors(counts, min_mean), chosen)


def one_step_errors(counts: pd.DataFrame, min_mean: float = 5.0) -> pd.DataFrame:
    """Actual − forecast cases of each history quarter from a season or more of the quarters before it
    (the procedure re-run as it would have been then); 0.0 for the first season, which has none."""
    errors = pd.DataFrame(0.0, index=counts.index, columns=counts.columns)
    for t in range(SEASON, counts.shape[1]):
        point, _, _ = _forecast(counts.iloc[:, :t], 1, min_mean)
        errors.iloc[:, t] = counts.iloc[:, t].to_numpy() - point.iloc[:, 0].to_numpy()
    return errors


def _forecast(
    counts: pd.DataFrame, horizon: int, min_mean: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Point forecast (≥ 0, seasonal-naive cells grown), horizon spread and the model of each cell."""
    history = pd.PeriodIndex(counts.columns)
    future = pd.period_range(history[-1] + 1, periods=horizon, freq="Q")
    chosen = choose_model(counts, min_mean)
    parts = [
        _run(counts.loc[chosen == name], name, horizon) for name in chosen.unique() if (chosen == name).any()
    ]
    point = pd.concat([p[0] for p in parts]).reindex(counts.index)
    spread = pd.concat([p[1] for p in parts]).reindex(counts.index)
    point.columns, spread.columns = future, future
    seasonal_naive = (chosen == "SeasonalNaive").to_numpy()[:, None]
    years = np.ceil(np.arange(1, horizon + 1) / SEASON)[None, :]
    point = point * np.where(seasonal_naive, department_growth(counts)[:, None] ** years, 1.0)
    return point.clip(lower=0.0), spread, chosen


def department_growth(counts: pd.DataFrame) -> np.ndarray:
    """Per row, its department's cases in the last (up to four) quarters over the same quarters a year
    before: the growth a same-quarter-last-year forecast has missed. 1 with less than five quarters."""
    overlap = min(counts.shape[1] - SEASON, SEASON)
    if overlap < 1:
        return np.ones(len(counts))
    departments = counts.groupby(level="department").sum()
    later = departments.iloc[:, -overlap:].sum(axis=1)
    earlier = departments.iloc[:, -overlap - SEASON : -SEASON].sum(axis=1)
    growth = (later / earlier.replace(0, np.nan)).fillna(1.0).clip(1 - MAX_GROWTH, 1 + MAX_GROWTH)
    return growth.reindex(counts.index.get_level_values("department")).to_numpy()


def _run(counts: pd.DataFrame, name: str, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = {
        "MSTL": MSTL(season_length=SEASON, trend_forecaster=AutoETS(model="ZAN")),
        "SeasonalNaive": SeasonalNaive(SEASON),
        "Naive": Naive(),
    }[name]
    ids = np.arange(len(counts)).astype(str)
    long = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, counts.shape[1]),
            "ds": np.tile(pd.PeriodIndex(counts.columns).start_time, len(counts)),
            "y": counts.to_numpy(dtype=float).ravel(),
        }
    )
    engine = StatsForecast(models=[model], freq="QS", n_jobs=1, fallback_model=SeasonalNaive(SEASON))
    out = engine.forecast(df=long, h=horizon, level=[80])
    alias = str(model)
    by_id = out.assign(step=out.groupby("unique_id").cumcount())
    point = by_id.pivot(index="unique_id", columns="step", values=alias).loc[ids]
    width = (
        by_id.assign(w=by_id[f"{alias}-hi-80"] - by_id[f"{alias}-lo-80"])
        .pivot(index="unique_id", columns="step", values="w")
        .loc[ids]
    )
    first = width.iloc[:, 0].replace(0.0, np.nan)
    spread = width.div(first, axis=0).fillna(1.0).clip(lower=1.0)
    return point.set_axis(counts.index, axis=0), spread.set_axis(counts.index, axis=0)
