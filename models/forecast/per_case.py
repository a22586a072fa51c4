"""Per-case payment and cost of each leaf (department × DRG), and the DRG mix inside each ADRG cell.

Payment per case is the recent mean of the history *re-priced* at a given base rate, so the forecast
for a quarter uses the rate in force in that quarter whatever rate the history was paid at. Cost and
payment per case are the leaf's recent mean moved along its department's index: the department's
cost (or payment) over what its cases would have come to at each leaf's average (mix-adjusted, so a
shift towards heavier DRGs is not mistaken for inflation), log-linear in time, with the hospital's
quarter-of-year effects when two years or more show them. Payment has an index too because part
of it follows charges (high outliers, by-item stays, payments outside the DRG), so it drifts up
with prices even at a fixed base rate. "Recent" is the last ``window`` quarters; a leaf with no
case there falls back on all history.

Each index also says how uncertain it is: its residuals and how each history quarter's residual
moves the recent level and the slope, so the simulation can give every draw its own level and slope
(:meth:`Trend.error`), an error that grows with the distance from the recent quarters. The leaves'
quarter-to-quarter errors the simulation resamples are out of sample (see :func:`per_case_values`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

MAX_TREND = 0.05  # per quarter: a department's index may not be extrapolated faster than this
MIN_TREND_QUARTERS = 6
MIN_SEASON_QUARTERS = 8
MIN_LOOK_BACK = 4  # quarters of history before the first quarter whose per-case errors are out of sample
SEASON_TEST = 0.05  # significance level at which the hospital's quarter-of-year effects are used


@dataclass(frozen=True)
class Trend:
    """A log-linear index per department, and the parts of its fit the simulation perturbs."""

    fit: pd.DataFrame  # per department: slope, t0 and quarter-of-year effects q1..q4
    residuals: pd.DataFrame  # departments × history quarters: log index − fit, NaN where not fitted
    slope_weights: pd.DataFrame  # departments × history quarters: d slope / d log index of that quarter
    season_residuals: pd.Series  # history quarters: the hospital's log index − its fit, NaN where none
    season_weights: pd.DataFrame  # q1..q4 × history quarters: d effect / d hospital log index

    def index(self, departments: pd.Series, quarters: pd.PeriodIndex) -> np.ndarray:
        """exp(slope × t + quarter-of-year effect), leaves (rows) × quarters (columns)."""
        rows = self.fit.reindex(departments.to_numpy())
        slope = rows["slope"].to_numpy()[:, None]
        season = rows[[f"q{q}" for q in quarters.quarter]].to_numpy()
        return np.exp(slope * (ordinal(quarters)[None, :] - rows["t0"].to_numpy()[:, None]) + season)

    def relative(
        self, departments: pd.Series, recent: pd.PeriodIndex, quarters: pd.PeriodIndex
    ) -> np.ndarray:
        """The index in ``quarters`` over its geometric mean in the recent quarters (where the level is)."""
        centre = np.log(self.index(departments, recent)).mean(axis=1)
        return self.index(departments, quarters) / np.exp(centre)[:, None]

    def error(
        self, departments: pd.Series, recent: pd.PeriodIndex, future: pd.PeriodIndex, multipliers: np.ndarray
    ) -> np.ndarray:
        """Log error of the fitted index, leaves × draws × future quarters, for history-quarter multipliers.

        A Gaussian multiplier (wild) bootstrap of the fit: history quarter t's residual is scaled by
        ``multipliers[t, draw]``, the same for every department, so their errors move together as they
        did in history. The recent level is the mean of the recent quarters, so its error is the mean
        of their scaled residuals; the slope is a linear fit, so its error is the slope weights applied
        to them, and it counts for as many quarters as the future lies beyond the recent centre. The
        hospital's quarter-of-year effects, shared by every department, move with the hospital's own
        scaled residuals.
        """
        residuals = np.nan_to_num(self.residuals.to_numpy())
        in_recent = np.isin(self.residuals.columns, recent)[None, :] & self.residuals.notna().to_numpy()
        level_weights = in_recent / np.maximum(in_recent.sum(axis=1, keepdims=True), 1)
        level = (residuals * level_weights) @ multipliers
        slope = (residuals * self.slope_weights.to_numpy()) @ multipliers
        distance = ordinal(future) - ordinal(recent).mean()
        season = (
            self.season_weights.to_numpy() * np.nan_to_num(self.season_residuals.to_numpy())
        ) @ multipliers
        rows = self.fit.index.get_indexer(departments.to_numpy())
        return (
            level[rows, :, None]
            + slope[rows, :, None] * distance[None, None, :]
            + season[future.quarter - 1].T[None, :, :]
        )


@dataclass(frozen=True)
class PerCase:
    """Leaf-level values; rows follow ``leaves``."""

    leaves: pd.DataFrame  # department, adrg, drg
    share: np.ndarray  # leaf's share of its cell's recent cases
    payment: dict[float, np.ndarray]  # base rate → recent payment per case at that rate
    cost_level: np.ndarray  # mean cost per case over the recent quarters
    cost_trend: Trend
    pay_trend: Trend
    recent: pd.PeriodIndex
    pay_residuals: np.ndarray  # leaves × history quarters, relative, 0 where no case
    cost_residuals: np.ndarray

    def payment_at(self, weights: pd.DataFrame) -> np.ndarray:
        """Payment per case, leaves × quarters, given each quarter's day shares per rate (rows: quarters)."""
        at_rates = sum(np.outer(self.payment[rate], weights[rate].to_numpy()) for rate in weights.columns)
        return at_rates * self.pay_trend.relative(self.leaves["department"], self.recent, weights.index)

    def cost_at(self, quarters: pd.PeriodIndex) -> np.ndarray:
        """Cost per case, leaves × quarters: the recent level moved along the department's cost index."""
        return self.cost_level[:, None] * self.cost_trend.relative(
            self.leaves["department"], self.recent, quarters
        )


def ordinal(quarters: pd.PeriodIndex) -> np.ndarray:
    return (quarters.year * 4 + quarters.quarter - 1).to_numpy(dtype=float)


def per_case_values(
    panel: pd.DataFrame, rate_columns: dict[float, str], reference: float, window: int
) -> PerCase:
    """Leaf values from a leaf × quarter panel holding ``n``, ``cost`` and one payment column per rate.

    Each history quarter's per-case errors are out of sample: its leaf means against what the
    values fitted on the quarters before it foretold (from ``MIN_LOOK_BACK`` quarters on). Errors
    around a level and index fitted on those very quarters were too small: a step in the cost index
    was mostly absorbed by the fit, and the hospital's surplus bands covered 61% / 44% / 67% of the
    60,000-case demo's backtest quarters at seeds 1 / 2 / 3 (72% / 50% / 78% out of sample).
    """
    values, typical = _fitted_values(panel, rate_columns, reference, window)
    wide = panel.unstack("quarter", fill_value=0)
    quarters = pd.PeriodIndex(wide["n"].columns)
    n_all = wide["n"].to_numpy(dtype=float)
    expected_pay, expected_cost = np.full_like(n_all, np.nan), np.full_like(n_all, np.nan)
    for t in range(MIN_LOOK_BACK, len(quarters)):
        before = panel[panel.index.get_level_values("quarter").isin(quarters[:t])]
        then, _ = _fitted_values(before, rate_columns, reference, window)
        rows = wide.index.get_indexer(pd.MultiIndex.from_frame(then.leaves))
        at = pd.PeriodIndex([quarters[t]])
        relative = then.pay_trend.relative(then.leaves["department"], then.recent, at)[:, 0]
        expected_pay[rows, t] = then.payment[reference] * relative
        expected_cost[rows, t] = then.cost_at(at)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        pay_ratio = wide[rate_columns[reference]].to_numpy(dtype=float) / n_all / expected_pay
        cost_ratio = wide["cost"].to_numpy(dtype=float) / n_all / expected_cost
    # A quarter's mean over n cases deviates about sqrt(typical / n) times as much as a mean over the
    # leaf's typical quarter: rescale, so one odd case in a quiet quarter does not count as a trend.
    scale = np.sqrt(n_all / typical[:, None])
    return replace(
        values,
        pay_residuals=np.nan_to_num(np.where(n_all > 0, (pay_ratio - 1.0) * scale, 0.0)),
        cost_residuals=np.nan_to_num(np.where(n_all > 0, (cost_ratio - 1.0) * scale, 0.0)),
    )


def _fitted_values(
    panel: pd.DataFrame, rate_columns: dict[float, str], reference: float, window: int
) -> tuple[PerCase, np.ndarray]:
    """Leaf values without errors (zeros), and each leaf's cases in a typical recent quarter."""
    wide = panel.unstack("quarter", fill_value=0)
    quarters = pd.PeriodIndex(wide["n"].columns)
    recent = quarters[-window:]
    n_all = wide["n"].to_numpy(dtype=float)
    has_recent = wide["n"][recent].sum(axis=1).to_numpy() > 0
    pick = np.where(has_recent[:, None], np.isin(quarters, recent)[None, :], True)

    def recent_sum(column: str) -> np.ndarray:
        return (wide[column].to_numpy(dtype=float) * pick).sum(axis=1)

    n_recent = recent_sum("n")
    leaves = wide.index.to_frame(index=False)
    cell_total = pd.Series(n_recent).groupby([leaves["department"], leaves["adrg"]]).transform("sum")
    values = PerCase(
        leaves=leaves,
        share=n_recent / cell_total.to_numpy(),
        payment={rate: recent_sum(column) / n_recent for rate, column in rate_columns.items()},
        cost_level=recent_sum("cost") / n_recent,
        cost_trend=department_trend(panel, "cost"),
        pay_trend=department_trend(panel, rate_columns[reference]),
        recent=recent,
        pay_residuals=np.zeros_like(n_all),
        cost_residuals=np.zeros_like(n_all),
    )
    return values, n_recent / pick.sum(axis=1)


def department_trend(panel: pd.DataFrame, column: str) -> Trend:
    """Slope per quarter of each department's log index of ``column``, and quarter-of-year effects.

    The index of a quarter is the department's total over the total its cases would have had at each
    leaf's average per case. The quarter-of-year effects are the hospital's, fitted on its index when
    they are significant (a department's own, from two or three values per quarter of the year, would
    be mostly noise); each department's slope is fitted net of them. Departments with too short a
    history take the hospital's slope and its uncertainty.
    """
    n = panel["n"]
    leaves = list(panel.index.names[:-1])
    leaf_mean = panel[column].groupby(level=leaves).sum() / n.groupby(level=leaves).sum()
    frame = pd.DataFrame(
        {
            "actual": panel[column],
            "expected": n * leaf_mean.reindex(panel.index.droplevel("quarter")).to_numpy(),
        }
    )
    quarters = pd.PeriodIndex(panel.index.get_level_values("quarter").unique().sort_values())
    hospital = frame.groupby("quarter", observed=True).sum()
    hospital_log = np.log(hospital["actual"] / hospital["expected"])
    hospital_fit, hospital_residuals, hospital_weights = _fit(
        hospital_log, quarters, seasonal=_has_season(hospital_log)
    )
    season = pd.Series([hospital_fit[f"q{q}"] for q in (1, 2, 3, 4)], index=[1, 2, 3, 4])
    by_dept = frame.groupby(["department", "quarter"], observed=True).sum()
    by_dept = by_dept[(by_dept["actual"] > 0) & (by_dept["expected"] > 0)]
    log_index = np.log(by_dept["actual"] / by_dept["expected"])
    fits, residuals, weights = {}, {}, {}
    for department, series in log_index.groupby(level="department"):
        series = series.droplevel("department")
        adjusted = series - season.reindex(pd.PeriodIndex(series.index).quarter).to_numpy()
        fit, residual, weight = _fit(adjusted, quarters, seasonal=False)
        if len(series) < MIN_TREND_QUARTERS:
            fit["slope"] = hospital_fit["slope"]
            residual, weight = hospital_residuals, hospital_weights
        fit.update({f"q{q}": float(season[q]) for q in (1, 2, 3, 4)})
        fits[department], residuals[department], weights[department] = fit, residual, weight.loc["slope"]
    return Trend(
        fit=pd.DataFrame.from_dict(fits, orient="index"),
        residuals=pd.DataFrame.from_dict(residuals, orient="index"),
        slope_weights=pd.DataFrame.from_dict(weights, orient="index"),
        season_residuals=hospital_residuals,
        season_weights=hospital_weights.loc[["q1", "q2", "q3", "q4"]],
    )


def _has_season(log_index: pd.Series) -> bool:
    """Whether quarter-of-year effects explain the hospital's log index beyond its trend (F-test at
    ``SEASON_TEST`` with two years or more): with few quarters, effects fitted from noise would add
    error, as the backtest showed on the demo hospital at 60,000 and 300,000 cases."""
    if len(log_index) < MIN_SEASON_QUARTERS:
        return False
    observed = pd.PeriodIndex(log_index.index)
    t = ordinal(observed)
    trend = np.column_stack([np.ones_like(t), t - t.mean()])
    seasonal = np.column_stack([trend, *[(observed.quarter == q).astype(float) for q in (2, 3, 4)]])
    y = log_index.to_numpy()
    rss = [float(np.sum((y - x @ np.linalg.lstsq(x, y, rcond=None)[0]) ** 2)) for x in (trend, seasonal)]
    dof = len(y) - seasonal.shape[1]
    statistic = (rss[0] - rss[1]) / 3 / max(rss[1] / dof, 1e-300)
    return bool(stats.f.sf(statistic, 3, dof) < SEASON_TEST)


def _fit(
    log_index: pd.Series, quarters: pd.PeriodIndex, seasonal: bool
) -> tuple[dict[str, float], pd.Series, pd.DataFrame]:
    """Least squares of a log index on time (and quarter of year if ``seasonal``).

    Returns the fit; its residuals over ``quarters``, inflated by sqrt(n / (n − parameters)) so that
    resampling them is not narrower than the noise they estimate (NaN where the series has no value,
    or too few to leave any residual); and the weights (rows slope, q1..q4; 0 where no value) by which
    each quarter's log index moves the slope and the centred quarter-of-year effects.
    """
    observed = pd.PeriodIndex(log_index.index)
    t = ordinal(observed)
    t0 = float(t.mean())
    columns = [np.ones_like(t), t - t0]
    if seasonal:
        columns += [(observed.quarter == q).astype(float) for q in (2, 3, 4)]
    design = np.column_stack(columns)
    coef = np.zeros(design.shape[1])
    weights = np.zeros((5, len(t)))
    residuals = np.full(len(t), np.nan)
    if len(t) > design.shape[1]:
        pseudo_inverse = np.linalg.pinv(design)
        coef = pseudo_inverse @ log_index.to_numpy()
        residuals = (log_index.to_numpy() - design @ coef) * np.sqrt(len(t) / (len(t) - design.shape[1]))
        weights[0] = pseudo_inverse[1]
        if seasonal:
            effects = np.vstack([np.zeros(len(t)), pseudo_inverse[2:5]])  # q1 is the reference quarter
            weights[1:] = effects - effects.mean(axis=0)
    effects = np.array([0.0, *coef[2:5]]) if seasonal else np.zeros(4)
    effects -= effects.mean()
    fit = {
        "slope": float(np.clip(coef[1], -MAX_TREND, MAX_TREND)),
        "t0": t0,
        **{f"q{q}": float(effects[q - 1]) for q in (1, 2, 3, 4)},
    }
    return (
        fit,
        pd.Series(residuals, index=observed).reindex(quarters),
        pd.DataFrame(weights, index=["slope", "q1", "q2", "q3", "q4"], columns=observed).reindex(
            columns=quarters, fill_value=0.0
        ),
    )
