"""Casemix indicators over priced cases: what the insurance office and finance report each period.

Pure functions of the frame ``payment.price_cases`` returns, so the same numbers feed the report
command, the forecasts and the serving layer. Every indicator is a ratio of sums over cases, so it
aggregates over any grouping the way the insurer's reports do:

- ``grouping_rate``: grouped cases / cases (入组率);
- ``cmi``: mean RW of the cases with a weight;
- ``cci`` and ``tci`` (费用 / 时间消耗指数), the performance-evaluation formula Σ(kᵢ·nᵢ) / Σnᵢ, with
  kᵢ the hospital's mean cost (or stay) in DRG i over the region's mean for DRG i (the weight table's
  ``mean_cost``, ``mean_los``: the insurer's regional means when the table is the insurer's) and nᵢ
  its cases — weighted by case count, so a few very dear cases in a heavy DRG count as few cases,
  not as much money. Since Σ kᵢ·nᵢ = Σ over cases of cost / regional mean, it is the mean of that
  per-case ratio. 1.0 is the region's level, above is worse. Cost is the cost inside the DRG (net of
  除外), the basis the regional means are on;
- ``cci_cost_weighted`` and ``tci_days_weighted``: the alternative Σ actual / Σ regional mean, which
  weights each DRG by its money (or days) and so lets heavy DRGs dominate;
- ``surplus_rate``: surplus / payment; ``surplus_on_cost`` uses the estimated true cost;
- ``high_share``, ``low_share``, ``overrun_share``: among the cases settled by DRG;
  ``by_item_share``: among all cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

Period = Literal["month", "quarter", "year"]
PERIOD_FREQUENCIES: dict[str, str] = {"month": "M", "quarter": "Q", "year": "Y"}

INDICATOR_COLUMNS: tuple[str, ...] = (
    "cases",
    "grouping_rate",
    "cmi",
    "cci",
    "tci",
    "cci_cost_weighted",
    "tci_days_weighted",
    "payment",
    "payment_per_case",
    "cost",
    "cost_per_case",
    "surplus",
    "surplus_rate",
    "surplus_on_cost",
    "high_share",
    "low_share",
    "overrun_share",
    "by_item_share",
)


def period_of(dates: pd.Series, period: Period) -> pd.Series:
    """Label each date with its period: ``2025-01``, ``2025Q1`` or ``2025``."""
    return dates.dt.to_period(PERIOD_FREQUENCIES[period]).rename("period")


def casemix_indicators(
    priced: pd.DataFrame, by: Sequence[str] = ("department",), period: Period | None = "quarter"
) -> pd.DataFrame:
    """One row of ``INDICATOR_COLUMNS`` per group of ``by`` columns (and discharge period).

    ``by`` names columns of ``priced`` (e.g. ``hospital_id``, ``department``, ``drg``); with
    ``period`` the discharge date's month, quarter or year is added as the last key ``period``.
    """
    return indicators_from_sums(indicator_sums(priced, by, period))


def indicator_sums(
    priced: pd.DataFrame, by: Sequence[str] = ("department",), period: Period | None = "quarter"
) -> pd.DataFrame:
    """The per-group sums every indicator is a ratio of. Sums of parts of the cases add up to the
    whole's (``add_sums``), so a cluster reports from its partitions' sums without the cases."""
    keys = [priced[c] for c in by]
    if period is not None:
        keys.append(period_of(priced["discharge_date"], period))
    if not keys:
        raise ValueError("give at least one grouping column or a period")
    has_cost = priced["standard_cost"].notna()
    has_los = priced["standard_los"].notna()
    by_drg = priced["outlier"].notna()
    parts = pd.DataFrame(
        {
            "cases": 1,
            "grouped": priced["status"].eq("grouped"),
            "rw": priced["rw"],
            "weighted": priced["rw"].notna(),
            "cost_cases": has_cost,
            "cost_k": (priced["drg_cost"] / priced["standard_cost"]).where(has_cost, 0.0),
            "cost_actual": priced["drg_cost"].where(has_cost, 0.0),
            "cost_expected": priced["standard_cost"].where(has_cost, 0.0),
            "los_cases": has_los,
            "los_k": (priced["los_days"] / priced["standard_los"]).where(has_los, 0.0),
            "los_actual": priced["los_days"].where(has_los, 0).astype(float),
            "los_expected": priced["standard_los"].where(has_los, 0.0),
            "payment": priced["drg_payment"],
            "cost": priced["total_cost"],
            "surplus": priced["margin"],
            "surplus_on_cost": priced["margin_on_cost"],
            "by_drg": by_drg,
            "high": priced["outlier"].eq("high"),
            "low": priced["outlier"].eq("low"),
            "overrun": priced["overrun"].fillna(False).astype(bool),
        },
        index=priced.index,
    )
    sums = parts.groupby(keys, dropna=False, observed=True, sort=True).sum(min_count=1)
    sums.index = sums.index.set_names([*by, "period"] if period is not None else list(by))
    if period is not None:
        sums = sums.rename(index=str, level="period") if sums.index.nlevels > 1 else sums.rename(index=str)
    return sums


def add_sums(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``indicator_sums`` of several parts of the cases added up: those of all the cases."""
    frame = pd.concat(parts)
    return frame.groupby(level=list(range(frame.index.nlevels)), dropna=False, sort=True).sum(min_count=1)


def indicators_from_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """One row of ``INDICATOR_COLUMNS`` per group from its ``indicator_sums``."""
    return pd.DataFrame(
        {
            "cases": sums["cases"].astype("int64"),
            "grouping_rate": _ratio(sums["grouped"], sums["cases"]),
            "cmi": _ratio(sums["rw"], sums["weighted"]),
            "cci": _ratio(sums["cost_k"], sums["cost_cases"]),
            "tci": _ratio(sums["los_k"], sums["los_cases"]),
            "cci_cost_weighted": _ratio(sums["cost_actual"], sums["cost_expected"]),
            "tci_days_weighted": _ratio(sums["los_actual"], sums["los_expected"]),
            "payment": sums["payment"],
            "payment_per_case": _ratio(sums["payment"], sums["cases"]),
            "cost": sums["cost"],
            "cost_per_case": _ratio(sums["cost"], sums["cases"]),
            "surplus": sums["surplus"],
            "surplus_rate": _ratio(sums["surplus"], sums["payment"]),
            "surplus_on_cost": sums["surplus_on_cost"],
            "high_share": _ratio(sums["high"], sums["by_drg"]),
            "low_share": _ratio(sums["low"], sums["by_drg"]),
            "overrun_share": _ratio(sums["overrun"], sums["by_drg"]),
            "by_item_share": _ratio(sums["cases"] - sums["by_drg"], sums["cases"]),
        }
    ).reset_index()


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN where the denominator is zero or missing."""
    denominator = denominator.astype(float)
    return numerator.astype(float) / denominator.where(denominator != 0)
