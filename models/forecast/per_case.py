"""Per-case payment and cost of each leaf (department × DRG), and the DRG mix inside each ADRG cell.

Payment per case is the recent mean of the history *re-priced* at a given base rate, so the forecast
for a quarter uses the rate in force in that quarter whatever rate the history was paid at. Cost per
case is the leaf's recent mean moved along its department's cost index: the department's cost over
what its cases would have cost at each leaf's average (mix-adjusted, so a shift towards heavier DRGs
is not mistaken for inflation), log-linear in time, with quarter-of-year effects once three years
are known. "Recent" is the last ``window`` quarters; a leaf with no case there falls back on all history.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

MAX_TREND = 0.05  # per quarter: a department's cost index may not be extrapolated faster than this
MIN_TREND_QUARTERS = 6
MIN_SEASON_QUARTERS = 12


@dataclass(frozen=True)
class PerCase:
    """Leaf-level values; rows follow ``leaves``."""

    leaves: pd.DataFrame  # department, adrg, drg
    share: np.ndarray  # leaf's share of its cell's recent cases
    payment: dict[float, np.ndarray]  # base rate → payment per case at that rate
    cost_level: np.ndarray  # mean cost per case over the recent quarters
    trend: pd.DataFrame  # per department: slope and quarter-of-year effects q1..q4
    recent: pd.PeriodIndex
    pay_residuals: np.ndarray  # leaves × history quarters, relative, 0 where no case
    cost_residuals: np.ndarray

    def payment_at(self, weights: pd.DataFrame) -> np.ndarray:
        """Payment per case, leaves × quarters, given each quarter's day shares per rate."""
        return sum(np.outer(self.payment[rate], weights[rate].to_numpy()) for rate in weights.columns)

    def cost_at(self, quarters: pd.PeriodIndex) -> np.ndarray:
        """Cost per case, leaves × quarters: the recent level moved along the department's cost index."""
        departments = self.leaves["department"]
        centre = np.log(cost_index(self.trend, departments, self.recent)).mean(axis=1)
        index = cost_index(self.trend, departments, quarters) / np.exp(centre)[:, None]
        return self.cost_level[:, None] * index


def ordinal(quarters: pd.PeriodIndex) -> np.ndarray:
    return (quarters.year * 4 + quarters.quarter - 1).to_numpy(dtype=float)


def per_case_values(
    panel: pd.DataFrame, rate_columns: dict[float, str], reference: float, window: int
) -> PerCase:
    """Leaf values from a leaf × quarter panel holding ``n``, ``cost`` and one payment column per rate."""
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
    payment = {rate: recent_sum(column) / n_recent for rate, column in rate_columns.items()}
    values = PerCase(
        leaves=leaves,
        share=n_recent / cell_total.to_numpy(),
        payment=payment,
        cost_level=recent_sum("cost") / n_recent,
        trend=department_trend(panel),
        recent=recent,
        pay_residuals=np.zeros_like(n_all),
        cost_residuals=np.zeros_like(n_all),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        pay_ratio = wide[rate_columns[reference]].to_numpy(dtype=float) / n_all / payment[reference][:, None]
        cost_ratio = wide["cost"].to_numpy(dtype=float) / n_all / values.cost_at(quarters)
    # A quarter's mean over n cases deviates about sqrt(typical / n) times as much as a mean over the
    # leaf's typical quarter: rescale, so one odd case in a quiet quarter does not count as a trend.
    typical = n_recent / pick.sum(axis=1)
    scale = np.sqrt(n_all / typical[:, None])
    return replace(
        values,
        pay_residuals=np.nan_to_num(np.where(n_all > 0, (pay_ratio - 1.0) * scale, 0.0)),
        cost_residuals=np.nan_to_num(np.where(n_all > 0, (cost_ratio - 1.0) * scale, 0.0)),
    )


def cost_index(trend: pd.DataFrame, departments: pd.Series, quarters: pd.PeriodIndex) -> np.ndarray:
    """exp(slope × t + quarter-of-year effect), leaves (rows) × quarters (columns)."""
    rows = trend.reindex(departments.to_numpy())
    slope = rows["slope"].to_numpy()[:, None]
    season = rows[[f"q{q}" for q in quarters.quarter]].to_numpy()
    return np.exp(slope * (ordinal(quarters)[None, :] - rows["t0"].to_numpy()[:, None]) + season)


def department_trend(panel: pd.DataFrame) -> pd.DataFrame:
    """Slope per quarter and centred quarter-of-year effects of each department's log cost index.

    The index of a quarter is the department's cost over the cost its cases would have had at each
    leaf's average cost per case. Departments with too short a history take the hospital's slope.
    """
    n = panel["n"]
    leaf_mean = (
        panel["cost"].groupby(level=list(panel.index.names[:-1])).sum()
        / n.groupby(level=list(panel.index.names[:-1])).sum()
    )
    frame = pd.DataFrame(
        {
            "cost": panel["cost"],
            "expected": n * leaf_mean.reindex(panel.index.droplevel("quarter")).to_numpy(),
        }
    )
    by_dept = frame.groupby(["department", "quarter"], observed=True).sum()
    by_dept = by_dept[(by_dept["cost"] > 0) & (by_dept["expected"] > 0)]
    log_index = np.log(by_dept["cost"] / by_dept["expected"])
    hospital = frame.groupby("quarter", observed=True).sum()
    hospital_slope = _fit(np.log(hospital["cost"] / hospital["expected"]))["slope"]
    rows = {}
    for department, series in log_index.groupby(level="department"):
        fit = _fit(series.droplevel("department"))
        if len(series) < MIN_TREND_QUARTERS:
            fit["slope"] = hospital_slope
        rows[department] = fit
    return pd.DataFrame.from_dict(rows, orient="index")


def _fit(log_index: pd.Series) -> dict[str, float]:
    """Least squares of a log index on time (and quarter of year once there are enough quarters)."""
    quarters = pd.PeriodIndex(log_index.index)
    t = ordinal(quarters)
    t0 = float(t.mean())
    effects = np.zeros(4)
    slope = 0.0
    if len(t) > 1:
        columns = [np.ones_like(t), t - t0]
        seasonal = len(t) >= MIN_SEASON_QUARTERS
        if seasonal:
            columns += [(quarters.quarter == q).astype(float) for q in (2, 3, 4)]
        coef = np.linalg.lstsq(np.column_stack(columns), log_index.to_numpy(), rcond=None)[0]
        slope = float(np.clip(coef[1], -MAX_TREND, MAX_TREND))
        if seasonal:
            effects = np.array([0.0, *coef[2:5]])
    effects -= effects.mean()
    return {"slope": slope, "t0": t0, **{f"q{q}": float(effects[q - 1]) for q in (1, 2, 3, 4)}}
