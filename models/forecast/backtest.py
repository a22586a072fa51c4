"""Rolling-origin backtest: forecast from each of the last quarters of history as if it were today.

At an origin the forecast sees only cases discharged before the origin quarter (the volume models,
per-case values, trends and bootstrap pool are all re-learnt), and is scored on the quarters that
follow against two baselines finance would otherwise use: the same quarter last year (seasonal
naive) and the last quarter (naive).

The simulation's intervals hold the quarter-to-quarter noise of every part and the uncertainty of
the fitted cost and payment indices, but not every way a model can be wrong (a cost season too
weak to detect in two years of history, say), so the backtest also calibrates them: per level, the
factor by which the surplus intervals must be widened around the point forecast to cover their
nominal share of the backtest's actuals (never narrowed). Coverage is reported for both, the
calibrated bands' as they could have been known at the time: each origin is scored with the factor
learnt only from strictly earlier origins' forecasts of quarters that had ended before it (the
first origin, with nothing to learn from, keeps the simulation's bands). Learning it from the other
origins, later ones included, would let an origin's band be widened by errors of the very quarters
it forecasts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from contract.errors import InputError
from models.forecast.levels import LEVELS, level_forecast, level_history, top_drgs
from models.forecast.panel import complete_quarters, leaf_panel, quarter_of
from models.forecast.schedule import RateSchedule
from models.forecast.simulate import Reprice, SurplusForecast, forecast_surplus

OnForecast = Callable[[pd.Period, SurplusForecast], None]
"""Called with each origin's forecast, so other scores (the loss risk's) share the backtest's forecasts."""


def backtest(
    cases: pd.DataFrame,
    reprice: Reprice,
    schedule: RateSchedule,
    horizon: int,
    *,
    origins: int = 6,
    quarters: pd.PeriodIndex | None = None,
    n_draws: int = 500,
    seed: int = 0,
    top: int = 10,
    on_forecast: OnForecast | None = None,
    **options: float,
) -> pd.DataFrame:
    """One row per level, key, origin and forecast quarter: forecast, interval, actual and baselines."""
    if quarters is None:
        quarters = complete_quarters(cases["discharge_date"])
    if origins < 1 or len(quarters) <= origins + 1:
        raise InputError(f"{len(quarters)} quarters of history are too few for {origins} backtest origins")
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
        if on_forecast is not None:
            on_forecast(origin, base)
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
    )
    summary = frame.groupby("level", sort=False).agg(
        n=("actual", "size"),
        mape=("ape_forecast", "mean"),
        mape_seasonal_naive=("ape_seasonal_naive", "mean"),
        mape_naive=("ape_naive", "mean"),
        mae=("ae_forecast", "mean"),
        mae_seasonal_naive=("ae_seasonal_naive", "mean"),
        mae_naive=("ae_naive", "mean"),
    )
    summary = summary.join(coverage(scores, ["level"])).join(interval_scales(scores))
    return summary.reindex([lv for lv in LEVELS if lv in summary.index])


def coverage(scores: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Share of actuals inside the simulation's 80% and 95% bands, and inside the calibrated bands
    (each origin widened by the factor known at it: see :func:`known_at`), grouped ``by`` (e.g. level, h)."""
    covered = _covered(scores)
    return covered.groupby(by, sort=False)[
        ["coverage80", "coverage95", "coverage80_calibrated", "coverage95_calibrated"]
    ].mean()


BANDS: dict[str, tuple[str, str, float]] = {"80": ("lo80", "hi80", 0.80), "95": ("lo95", "hi95", 0.95)}


def interval_scales(scores: pd.DataFrame) -> pd.DataFrame:
    """Per level, the factor (≥ 1) widening each surplus band to cover its nominal share of actuals."""
    rows = {}
    for level, group in scores.dropna(subset=["actual"]).groupby("level", sort=False):
        rows[level] = {
            f"scale{name}": _scale(group, lo, hi, share) for name, (lo, hi, share) in BANDS.items()
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def widen(table: pd.DataFrame, scales: pd.Series, point: str, prefix: str) -> pd.DataFrame:
    """``table`` with bands ``{prefix}lo80`` … moved away from ``point`` by ``scale80`` and ``scale95``."""
    moved = table.copy()
    for name, (lo, hi, _) in BANDS.items():
        factor = float(scales[f"scale{name}"])
        for side in (lo, hi):
            column = f"{prefix}{side}"
            moved[column] = table[point] + factor * (table[column] - table[point])
    moved[f"{prefix}lo95"] = np.fmin(moved[f"{prefix}lo95"], moved[f"{prefix}lo80"])  # keep 95% around 80%
    moved[f"{prefix}hi95"] = np.fmax(moved[f"{prefix}hi95"], moved[f"{prefix}hi80"])
    return moved


def _scale(group: pd.DataFrame, lo: str, hi: str, share: float) -> float:
    """How far (in half-widths, on the side the actual fell) the nominal share of actuals lies."""
    error = group["actual"] - group["forecast"]
    half = np.where(error >= 0, group[hi] - group["forecast"], group["forecast"] - group[lo])
    ratio = np.abs(error) / np.maximum(half, 1e-9)
    return float(max(1.0, np.quantile(ratio, share, method="higher"))) if len(ratio) else 1.0


def known_at(scores: pd.DataFrame, origin: str) -> pd.DataFrame:
    """The backtest rows a forecaster standing at ``origin`` could have scored: made from strictly
    earlier origins, for quarters that ended before ``origin`` (origins and quarters are "2025Q1" text)."""
    return scores[(scores["origin"] < origin) & (scores["quarter"] < origin)]


def _covered(scores: pd.DataFrame) -> pd.DataFrame:
    """Scored rows flagged in or out of each band: raw, and calibrated with what was known at their origin."""
    rows = []
    for origin in scores["origin"].unique():
        earlier, own = known_at(scores, origin), scores[scores["origin"] == origin]
        for level, group in own.groupby("level", sort=False):
            scales = interval_scales(earlier[earlier["level"] == level])
            scales = (
                scales.loc[level] if level in scales.index else pd.Series({"scale80": 1.0, "scale95": 1.0})
            )
            moved = widen(group, scales, "forecast", "")
            rows.append(
                group.assign(
                    coverage80=group["actual"].between(group["lo80"], group["hi80"]),
                    coverage95=group["actual"].between(group["lo95"], group["hi95"]),
                    coverage80_calibrated=moved["actual"].between(moved["lo80"], moved["hi80"]),
                    coverage95_calibrated=moved["actual"].between(moved["lo95"], moved["hi95"]),
                )
            )
    return pd.concat(rows).dropna(subset=["actual"])
