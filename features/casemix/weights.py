"""Relative weights (RW, 权重) per DRG: read an insurer's table, or calibrate one from history.

A weight table is a DataFrame indexed by ``drg`` with columns ``rw`` (the DRG's mean cost over the mean
cost of all cases), ``name``, ``n_cases``, ``mean_cost`` (the DRG's standard cost, cost inside the DRG)
and ``mean_los`` (standard length of stay) — the last two are what the cost and time consumption
indices compare against — and ``source`` (``drg``, ``adrg`` or ``shrunk``: where a calibrated weight
came from; ``table`` when read from a table that does not say). It is written as an editable CSV
and read back identically.

Calibration follows the insurers' recipe: trim outlier cases within each DRG, then divide each DRG's
mean cost by the mean cost of all kept cases — or by ``reference_cost``, the region's mean cost per
case, when the insurer's weights are regional and the hospital's own history is all there is (a
hospital dearer than its region then has a CMI above 1, and RW × base rate stays in regional yuan).

Trimming defaults to ``iqr`` (keep [Q1 − k·IQR, Q3 + k·IQR], k = 3) because quartiles are not moved
by the very outliers being removed (a standard deviation is) and, unlike fixed percentiles, a DRG
with clean costs loses no cases. ``percentile`` and ``log_sd`` (log cost within mean ± k·SD;
zero-cost cases are dropped) are there for cities whose rules use them.

Small DRGs borrow strength (limited-fluctuation credibility): a DRG with n < min_cases kept cases gets
weight n / min_cases on its own mean and the rest on its ADRG's mean, and the ADRG's mean is itself
blended the same way with the overall mean of the kept cases (RW 1.0 without a reference cost). A DRG
with no history at all is not in the table; the payment rules settle its cases by item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

WEIGHT_COLUMNS: tuple[str, ...] = ("rw", "name", "n_cases", "mean_cost", "mean_los", "source")

WEIGHT_SCHEMA = pa.DataFrameSchema(
    {
        "rw": pa.Column(float, pa.Check.gt(0)),
        "name": pa.Column(object, nullable=True),
        "n_cases": pa.Column("Int64", pa.Check.ge(0), nullable=True),
        "mean_cost": pa.Column(float, pa.Check.ge(0), nullable=True),
        "mean_los": pa.Column(float, pa.Check.gt(0), nullable=True),
        "source": pa.Column(object, pa.Check.isin(["drg", "adrg", "shrunk", "table"]), nullable=True),
    },
    index=pa.Index(str, name="drg", unique=True, nullable=False),
    strict=True,
    ordered=True,
)


class Calibration(BaseModel):
    """How weights are calibrated from history (the ``[calibration]`` section of the payment rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trim: Literal["iqr", "percentile", "log_sd"] = "iqr"
    k: PositiveFloat = 3.0
    lower: float = Field(0.05, ge=0, lt=1)
    upper: float = Field(0.95, gt=0, le=1)
    min_cases: PositiveInt = 30
    reference_cost: PositiveFloat | None = None

    @model_validator(mode="after")
    def _ordered_quantiles(self) -> Calibration:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        return self


def trim_mask(cost: pd.Series, groups: pd.Series, calibration: Calibration) -> pd.Series:
    """True for the cases kept after trimming outliers within each group (DRG)."""
    by = cost.groupby(groups, sort=False)
    if calibration.trim == "iqr":
        q1, q3 = groups.map(by.quantile(0.25)), groups.map(by.quantile(0.75))
        low, high = q1 - calibration.k * (q3 - q1), q3 + calibration.k * (q3 - q1)
        return cost.between(low, high)
    if calibration.trim == "percentile":
        low, high = groups.map(by.quantile(calibration.lower)), groups.map(by.quantile(calibration.upper))
        return cost.between(low, high)
    log_cost = np.log(cost.where(cost > 0))
    by_log = log_cost.groupby(groups, sort=False)
    mean, sd = by_log.transform("mean"), by_log.transform("std").fillna(0.0)
    return log_cost.between(mean - calibration.k * sd, mean + calibration.k * sd)


def calibrate_weights(
    frame: pd.DataFrame, calibration: Calibration | None = None, cost: pd.Series | None = None
) -> pd.DataFrame:
    """A weight table from grouped history.

    ``frame`` needs ``status``, ``drg``, ``adrg``, ``los_days`` and, unless ``cost`` is given,
    ``total_cost``; pass ``cost`` (e.g. ``payment.drg_cost``) to calibrate on the cost inside the DRG.
    """
    calibration = calibration or Calibration()
    cost = frame["total_cost"] if cost is None else cost
    grouped = frame["status"].eq("grouped") & cost.notna()
    if not grouped.any():
        raise ValueError("no grouped case with a cost: cannot calibrate weights")
    data = pd.DataFrame(
        {
            "drg": frame["drg"],
            "adrg": frame["adrg"],
            "cost": cost.astype(float),
            "los": frame["los_days"].astype(float),
        }
    )[grouped]
    data = data[trim_mask(data["cost"], data["drg"], calibration)]
    overall_cost, overall_los = data["cost"].mean(), data["los"].mean()
    stats = {"n": ("cost", "size"), "cost": ("cost", "mean"), "los": ("los", "mean")}
    by_drg = data.groupby("drg").agg(adrg=("adrg", "first"), **stats)
    by_adrg = data.groupby("adrg").agg(**stats).reindex(by_drg["adrg"].to_numpy())
    by_adrg.index = by_drg.index

    def credible(n: pd.Series) -> pd.Series:
        return (n / calibration.min_cases).clip(upper=1.0)

    w_adrg, w_drg = credible(by_adrg["n"]), credible(by_drg["n"])
    adrg_cost = w_adrg * by_adrg["cost"] + (1 - w_adrg) * overall_cost
    adrg_los = w_adrg * by_adrg["los"] + (1 - w_adrg) * overall_los
    mean_cost = w_drg * by_drg["cost"] + (1 - w_drg) * adrg_cost
    mean_los = w_drg * by_drg["los"] + (1 - w_drg) * adrg_los
    source = np.where(w_drg >= 1, "drg", np.where(w_adrg >= 1, "adrg", "shrunk"))
    table = pd.DataFrame(
        {
            "rw": mean_cost / (calibration.reference_cost or overall_cost),
            "name": pd.Series(None, index=by_drg.index, dtype=object),
            "n_cases": by_drg["n"].astype("Int64"),
            "mean_cost": mean_cost,
            "mean_los": mean_los,
            "source": pd.Series(source, index=by_drg.index, dtype=object),
        }
    )
    table.index = table.index.astype(object).rename("drg")
    return WEIGHT_SCHEMA.validate(table)


def write_weights(table: pd.DataFrame, path: Path) -> Path:
    """Write a weight table as an editable UTF-8 CSV (floats at full precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.reset_index().to_csv(path, index=False, encoding="utf-8")
    return path


def read_weights(path: Path) -> pd.DataFrame:
    """Read a weight table CSV; only ``drg`` and ``rw`` are required, the other columns may be absent."""
    path = Path(path)
    raw = pd.read_csv(path, dtype={"drg": str, "name": str, "source": str}, encoding="utf-8")
    missing = {"drg", "rw"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: weight table needs columns {sorted(missing)}")
    unknown = set(raw.columns) - {"drg", *WEIGHT_COLUMNS}
    if unknown:
        raise ValueError(f"{path}: unknown weight table columns {sorted(unknown)}")
    table = raw.set_index("drg").reindex(columns=list(WEIGHT_COLUMNS))
    if "source" not in raw.columns:
        table["source"] = "table"
    table = table.astype({"rw": float, "n_cases": "Int64", "mean_cost": float, "mean_los": float})
    for column in ("name", "source"):
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    try:
        return WEIGHT_SCHEMA.validate(table, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases[["column", "check", "index", "failure_case"]].head(5)
        detail = cases.to_string(index=False)
        raise ValueError(f"{path}: invalid weight table (index = drg):\n{detail}") from None
