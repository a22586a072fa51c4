"""Sum leaves (department × DRG) to the levels finance reads, and summarise draws into intervals.

Every level is a sum over the same leaves, for the point forecast and for each draw, so departments
add up to the hospital and a department's DRGs to the department in every draw, not only on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.forecast.simulate import MEASURES, SurplusForecast

LEVELS: tuple[str, ...] = ("hospital", "department", "drg")
QUANTILES: dict[str, float] = {"lo95": 0.025, "lo80": 0.10, "hi80": 0.90, "hi95": 0.975}
ALL_MEASURES: tuple[str, ...] = (*MEASURES, "surplus")


def level_keys(leaves: pd.DataFrame, level: str) -> pd.Series:
    """The key of each leaf at a level ("hospital" has one key)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    return pd.Series("hospital", index=leaves.index) if level == "hospital" else leaves[level]


def aggregate(values: np.ndarray, keys: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """Sum the leaf axis (second to last) of ``values`` by key: (..., leaves, H) → (..., keys, H)."""
    codes, uniques = pd.factorize(keys, sort=True)
    indicator = np.zeros((len(uniques), len(keys)))
    indicator[codes, np.arange(len(keys))] = 1.0
    return pd.Index(uniques, name="key"), np.einsum("gl,...lh->...gh", indicator, values)


def level_forecast(forecast: SurplusForecast, level: str, keys: list[str] | None = None) -> pd.DataFrame:
    """Point forecast and 80%/95% intervals per key and forecast quarter, one row each."""
    leaf_keys = level_keys(forecast.leaves, level)
    frames = {}
    for measure in ALL_MEASURES:
        point, draws = _measure(forecast, measure)
        index, point_sum = aggregate(point, leaf_keys)
        _, draw_sum = aggregate(draws, leaf_keys)
        bands = np.quantile(draw_sum, list(QUANTILES.values()), axis=0)
        frames[measure] = point_sum
        for name, band in zip(QUANTILES, bands, strict=True):
            frames[f"{measure}_{name}"] = band
    rows = pd.MultiIndex.from_product([index, forecast.quarters], names=["key", "quarter"])
    table = pd.DataFrame({name: values.ravel() for name, values in frames.items()}, index=rows).reset_index()
    table["rate"] = table["quarter"].map(forecast.rate)
    return table if keys is None else table[table["key"].isin(keys)]


def level_history(history: pd.DataFrame, level: str, keys: list[str] | None = None) -> pd.DataFrame:
    """Actual volume, payment, cost and surplus per key and quarter from a leaf panel (n, payment, cost)."""
    history = history.reset_index()
    history["key"] = level_keys(history, level).to_numpy()
    table = history.groupby(["key", "quarter"], observed=True)[["n", "payment", "cost"]].sum()
    table = table.rename(columns={"n": "volume"}).reset_index()
    table["surplus"] = table["payment"] - table["cost"]
    return table if keys is None else table[table["key"].isin(keys)]


def level_table(forecast: SurplusForecast, level: str, keys: list[str] | None = None) -> pd.DataFrame:
    """History then forecast for one level: the CSV finance reads (``kind`` is actual or forecast)."""
    table = pd.concat(
        [
            level_history(forecast.history, level, keys).assign(kind="actual"),
            level_forecast(forecast, level, keys).assign(kind="forecast"),
        ],
        ignore_index=True,
    )
    table.insert(0, "level", level)
    return table.sort_values(["key", "quarter"], kind="stable").reset_index(drop=True)


def top_drgs(history: pd.DataFrame, n: int = 10, window: int = 4) -> list[str]:
    """The ``n`` DRGs with most cases and the ``n`` losing most over the last ``window`` quarters."""
    history = level_history(history, "drg")
    recent = history[history["quarter"].isin(sorted(history["quarter"].unique())[-window:])]
    totals = recent.groupby("key")[["volume", "surplus"]].sum()
    by_volume = totals["volume"].nlargest(n).index
    by_loss = totals.loc[totals["surplus"] < 0, "surplus"].nsmallest(n).index
    return sorted({*by_volume, *by_loss})


def _measure(forecast: SurplusForecast, measure: str) -> tuple[np.ndarray, np.ndarray]:
    if measure == "surplus":
        return (
            forecast.point["payment"] - forecast.point["cost"],
            forecast.draws["payment"] - forecast.draws["cost"],
        )
    return forecast.point[measure], forecast.draws[measure]


def difference(scenario: SurplusForecast, base: SurplusForecast) -> SurplusForecast:
    """Scenario minus base, draw by draw (both simulated with the same seed, so only the scenario differs)."""
    return SurplusForecast(
        name=f"{scenario.name} − {base.name}",
        leaves=base.leaves,
        history=base.history.iloc[0:0],
        quarters=base.quarters,
        rate=scenario.rate - base.rate,
        point={m: scenario.point[m] - base.point[m] for m in MEASURES},
        draws={m: scenario.draws[m] - base.draws[m] for m in MEASURES},
    )
