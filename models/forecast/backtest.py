"""Rolling-origin backtest: forecast from each of the last quarters of history as if it were today.

At an origin the forecast sees only cases discharged before the origin quarter (the volume models,
per-case values, trends and bootstrap pool are all re-learnt), and is scored on the quarters that
follow against two baselines finance would otherwise use: the same quarter last year (seasonal
naive) and the last quarter (naive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.forecast.levels import LEVELS, level_forecast, level_history, top_drgs
from models.forecast.panel import complete_quarters, leaf_panel, quarter_of
from models.forecast.schedule import RateSchedule
from models.forecast.simulate import Reprice, forecast_surplus


def backtest(
    cases: pd.DataFrame,
    reprice: Reprice,
    schedule: RateSchedule,
    horizon: int,
    *,
    origins: int = 4,
    quarters: pd.PeriodIndex | None = None,
    n_draws: int = 500,
    seed: int = 0,
    top: int = 10,
    **options: float,
) -> pd.DataFrame:
    """One row per level, key, origin and forecast quarter: forecast, interval, actual and baselines."""
    if quarters is None:
        quarters = complete_quarters(cases["discharge_date"])
    if origins < 1 or len(quarters) <= origins + 1:
        raise ValueError(f"{len(quarters)} quarters of history are too few for {origins} backtest origins")
    discharged = quarter_of(cases["discharge_date"])
    actual = leaf_panel(cases, quarters, ["payment", "cost"])
    rows = []
    for origin in quarters[-origins:]:
        seen = quarters[quarters < origin]
        steps = min(horizon, int((quarters >= origin).sum()))
        base, _ = forecast_surplus(
            cases[discharged < origin],
            reprice,
            schedule,
            steps,
            quarters=seen,
            n_draws=n_draws,
            seed=seed,
            **options,
        )
        for level in LEVELS:
            keys = top_drgs(base.history, top) if level == "drg" else None
            predicted = level_forecast(base, level, keys)
            rows.append(_score(predicted, level_history(actual, level), quarters[0], origin, level))
    return pd.concat(rows, ignore_index=True)


def _score(
    predicted: pd.DataFrame, actual: pd.DataFrame, first: pd.Period, origin: pd.Period, level: str
) -> pd.DataFrame:
    series = actual.set_index(["key", "quarter"])["surplus"]
    keys, quarter = predicted["key"], predicted["quarter"]

    def lookup(at: pd.Series) -> np.ndarray:
        """Actual surplus of each key in quarter ``at``: 0 without cases, NaN before the history."""
        found = series.reindex(pd.MultiIndex.from_arrays([keys, at])).fillna(0.0).to_numpy()
        return np.where((at >= first).to_numpy(), found, np.nan)

    return pd.DataFrame(
        {
            "level": level,
            "key": keys.to_numpy(),
            "origin": str(origin),
            "quarter": quarter.astype(str).to_numpy(),
            "h": (quarter - origin).map(lambda d: d.n).to_numpy() + 1,
            "actual": lookup(quarter),
            "forecast": predicted["surplus"].to_numpy(),
            **{b: predicted[f"surplus_{b}"].to_numpy() for b in ("lo80", "hi80", "lo95", "hi95")},
            "seasonal_naive": lookup(quarter - 4),
            "naive": lookup(pd.Series(origin - 1, index=quarter.index)),
        }
    )


def backtest_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Per level: surplus MAPE and MAE of the forecast and both baselines, and interval coverage."""
    absolute = scores["actual"].abs().replace(0.0, np.nan)
    frame = scores.assign(
        **{
            f"ape_{m}": (scores[m] - scores["actual"]).abs() / absolute
            for m in ("forecast", "seasonal_naive", "naive")
        },
        **{f"ae_{m}": (scores[m] - scores["actual"]).abs() for m in ("forecast", "seasonal_naive", "naive")},
        in80=scores["actual"].between(scores["lo80"], scores["hi80"]),
        in95=scores["actual"].between(scores["lo95"], scores["hi95"]),
    )
    summary = frame.groupby("level", sort=False).agg(
        n=("actual", "size"),
        mape=("ape_forecast", "mean"),
        mape_seasonal_naive=("ape_seasonal_naive", "mean"),
        mape_naive=("ape_naive", "mean"),
        mae=("ae_forecast", "mean"),
        mae_seasonal_naive=("ae_seasonal_naive", "mean"),
        mae_naive=("ae_naive", "mean"),
        coverage80=("in80", "mean"),
        coverage95=("in95", "mean"),
    )
    return summary.reindex([lv for lv in LEVELS if lv in summary.index])
