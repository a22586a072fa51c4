"""Fit the parts of the surplus forecast and simulate it, with or without a scenario.

The errors come from history, whole quarters at a time: for each of the last few history quarters we
have, for every cell at once, the volume model's one-step error (in cases) and the relative deviation
of each leaf's per-case payment and cost from its value, both as foretold by what was fitted on the
quarters before it (out of sample: in-sample errors were half as large). A draw for a forecast quarter is a
random combination of those historical error vectors with standard normal weights (a Gaussian
multiplier bootstrap): it has the same covariance across departments, DRGs and between volume and
cost as history, so the hospital's interval is as wide as history says rather than narrowed by a
false independence, yet it takes continuous values even though only a handful of quarters exist.
Each leaf's errors are centred over the pool first (the point forecast carries the level; in-sample
bias such as a seasonal naive lagging growth would otherwise widen every interval in one direction).
The volume error is widened by the volume model's own horizon spread. On top of that quarter noise,
every draw has its own fitted cost and payment indices: their recent level, slope and season are
re-estimated from history quarters reweighted by one more set of normal multipliers
(:meth:`models.forecast.per_case.Trend.error`), so the band grows with the horizon as far as the
slope is uncertain. Point forecasts are the product of the point parts and add up exactly across
levels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from contract.errors import InputError
from models.forecast.panel import CELL, check_cases, complete_quarters, leaf_panel, quarter_of
from models.forecast.per_case import PerCase, per_case_values
from models.forecast.scenario import Scenario
from models.forecast.schedule import RateSchedule
from models.forecast.volume import SEASON, VolumeForecast, forecast_volume

Reprice = Callable[[pd.DataFrame, float], pd.Series]
"""Payment of each case if every case were paid at one base rate (the casemix rules, re-applied)."""

MEASURES: tuple[str, ...] = ("volume", "payment", "cost")
BOOTSTRAP_QUARTERS = 8


@dataclass(frozen=True)
class Fitted:
    """Everything the simulation needs, learnt from history up to the end of ``quarters``."""

    quarters: pd.PeriodIndex
    future: pd.PeriodIndex
    history: pd.DataFrame  # leaf × quarter actuals: n, payment, cost
    cell_of_leaf: np.ndarray
    volume: VolumeForecast
    per_case: PerCase
    pool: np.ndarray  # positions of the history quarters whose errors are resampled


@dataclass(frozen=True)
class SurplusForecast:
    """Point forecasts (leaves × quarters) and draws (draws × leaves × quarters) per measure."""

    name: str
    leaves: pd.DataFrame
    history: pd.DataFrame
    quarters: pd.PeriodIndex
    rate: pd.Series  # mean base rate in force per forecast quarter
    point: dict[str, np.ndarray]
    draws: dict[str, np.ndarray]


def fit(
    cases: pd.DataFrame,
    reprice: Reprice,
    rates: set[float],
    horizon: int,
    quarters: pd.PeriodIndex | None = None,
    window: int = 4,
    min_mean: float = 5.0,
) -> Fitted:
    """Learn volume models and per-case values from the cases discharged in ``quarters``."""
    check_cases(cases)
    if horizon < 1:
        raise InputError("horizon must be at least one quarter")
    if quarters is None:
        quarters = complete_quarters(cases["discharge_date"])
    cases = cases[quarter_of(cases["discharge_date"]).isin(quarters)]
    columns = {rate: f"payment_at_{i}" for i, rate in enumerate(sorted(rates))}
    priced = cases.assign(**{column: reprice(cases, rate).to_numpy() for rate, column in columns.items()})
    panel = leaf_panel(priced, quarters, ["payment", "cost", *columns.values()])
    reference = max(rates)
    per_case = per_case_values(panel, columns, reference, window)
    counts = panel["n"].groupby([*CELL, "quarter"], observed=True).sum().unstack("quarter", fill_value=0)
    counts = counts.reindex(columns=quarters, fill_value=0)
    cells = pd.MultiIndex.from_frame(per_case.leaves[list(CELL)])
    positions = np.arange(len(quarters))
    pool = positions[SEASON:] if len(quarters) > 2 * SEASON else positions
    return Fitted(
        quarters=quarters,
        future=pd.period_range(quarters[-1] + 1, periods=horizon, freq="Q"),
        history=panel[["n", "payment", "cost"]],
        cell_of_leaf=counts.index.get_indexer(cells),
        volume=forecast_volume(counts, horizon, min_mean),
        per_case=per_case,
        pool=pool[-BOOTSTRAP_QUARTERS:],
    )


def simulate(
    fitted: Fitted,
    schedule: RateSchedule,
    scenario: Scenario | None = None,
    n_draws: int = 500,
    seed: int = 0,
) -> SurplusForecast:
    """Point forecast and ``n_draws`` joint draws; the same seed gives the same draws in every scenario."""
    future, leaves, per_case = fitted.future, fitted.per_case.leaves, fitted.per_case
    scenario = scenario or Scenario(name="base")
    rates = scenario.schedule(schedule)
    shares = rates.quarter_weights(future)
    volume_scale = per_case.share[:, None] * scenario.volume_factor(leaves, future)  # cell cases → leaf cases
    volume_point = fitted.volume.point.to_numpy()[fitted.cell_of_leaf] * volume_scale
    pay_point = per_case.payment_at(shares)
    cost_point = per_case.cost_at(future) * scenario.cost_factor(leaves, future)

    rng = np.random.default_rng(seed)
    # Variance over the pool with its mean removed is the sample variance: divide by K − 1, not K.
    multipliers = rng.standard_normal((len(fitted.pool), n_draws, len(future))) / np.sqrt(
        max(len(fitted.pool) - 1, 1)
    )

    def error(residuals: np.ndarray) -> np.ndarray:
        """leaves × draws × quarters: random combinations of the pooled quarters' error vectors."""
        pooled = residuals[:, fitted.pool]
        centred = pooled - pooled.mean(axis=1, keepdims=True)  # the spread only: the point is the level
        return np.einsum("lk,kdh->ldh", centred, multipliers)

    # Every draw also gets its own fitted cost and payment indices (level, slope, season), from one set of
    # history-quarter multipliers shared by cost and payment: their errors are mostly the same charges.
    history_multipliers = rng.standard_normal((len(fitted.quarters), n_draws))
    departments = leaves["department"]
    pay_trend = per_case.pay_trend.error(departments, per_case.recent, future, history_multipliers)
    cost_trend = per_case.cost_trend.error(departments, per_case.recent, future, history_multipliers)

    volume_residuals = fitted.volume.residuals.to_numpy()[fitted.cell_of_leaf]
    spread = fitted.volume.spread.to_numpy()[fitted.cell_of_leaf][:, None, :]
    volume_error = error(volume_residuals) * spread * volume_scale[:, None, :]
    volume = volume_point[:, None, :] * mean_one(np.clip(volume_point[:, None, :] + volume_error, 0.0, None))
    pay_noise = mean_one(np.clip(1.0 + error(per_case.pay_residuals), 0.0, None))
    cost_noise = mean_one(np.clip(1.0 + error(per_case.cost_residuals), 0.0, None))
    payment = volume * pay_point[:, None, :] * mean_one(np.exp(pay_trend)) * pay_noise
    cost = volume * cost_point[:, None, :] * mean_one(np.exp(cost_trend)) * cost_noise
    return SurplusForecast(
        name=scenario.name,
        leaves=leaves,
        history=fitted.history,
        quarters=future,
        rate=pd.Series(shares.to_numpy() @ shares.columns.to_numpy(dtype=float), index=future),
        point={
            "volume": volume_point,
            "payment": volume_point * pay_point,
            "cost": volume_point * cost_point,
        },
        draws={name: np.moveaxis(a, 1, 0) for name, a in zip(MEASURES, (volume, payment, cost), strict=True)},
    )


def mean_one(draws: np.ndarray) -> np.ndarray:
    """``draws`` (leaves × draws × quarters, ≥ 0) over their mean across draws: a factor of mean 1.

    The errors are symmetric, but what becomes of them is not: volumes and noise factors are cut at
    zero (a sparse cell or leaf often has errors larger than its level) and the index errors enter
    through exp(). Left so, they lifted every leaf's mean above its point forecast, cost more than
    payment, so the hospital's surplus band sat about 0.4 of its spread on the loss side of the
    point forecast (60,000-case demo, 2024Q3 origin: median of the draws ¥6.15M against ¥5.94M
    lost). Each factor keeps its spread but is moved back to the point: a level of zero stays zero.
    """
    mean = draws.mean(axis=1, keepdims=True)
    return np.divide(draws, mean, out=np.zeros_like(draws), where=mean > 0)


def needed_rates(schedule: RateSchedule, future: pd.PeriodIndex, scenario: Scenario | None) -> set[float]:
    """Every base rate in force during the forecast quarters, in the base case and the scenario."""
    schedules = [schedule] if scenario is None else [schedule, scenario.schedule(schedule)]
    return {float(rate) for s in schedules for rate in s.quarter_weights(future).columns}


def forecast_surplus(
    cases: pd.DataFrame,
    reprice: Reprice,
    schedule: RateSchedule,
    horizon: int,
    *,
    quarters: pd.PeriodIndex | None = None,
    scenario: Scenario | None = None,
    n_draws: int = 500,
    seed: int = 0,
    window: int = 4,
    min_mean: float = 5.0,
) -> tuple[SurplusForecast, SurplusForecast | None]:
    """The base forecast and, when a scenario is given, the same draws under the scenario."""
    if quarters is None:
        quarters = complete_quarters(cases["discharge_date"])
    future = pd.period_range(quarters[-1] + 1, periods=horizon, freq="Q")
    fitted = fit(
        cases, reprice, needed_rates(schedule, future, scenario), horizon, quarters, window, min_mean
    )
    base = simulate(fitted, schedule, None, n_draws, seed)
    return base, (simulate(fitted, schedule, scenario, n_draws, seed) if scenario is not None else None)
