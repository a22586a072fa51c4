"""Relative weights (RW, 权重) per DRG: the insurer's table when the rules name one, else an estimate.

The insurer's published table is the primary input (``casemix.rw_table``). Without it,
caselens estimates one from the hospital's own grouped history the way insurers calibrate theirs, and
labels it "estimated from own history" wherever it shows — the standard is then the hospital's own
mean cost, so its surplus mostly restates this calibration.

The recipe, each step a setting of ``[calibration]``:

1. cost: the cost inside the DRG (total less the 除外支付 items paid outside it), so nothing is paid
   twice;
2. trimming within each DRG: ``iqr`` keeps [Q1 − k·IQR, Q3 + k·IQR] (k = 1.5, the common choice: the
   upper fence is Q3 + 1.5·IQR; quartiles are not moved by the outliers being removed),
   ``percentile`` keeps [lower, upper] quantiles, ``log_sd`` keeps log cost within mean ± k·SD (zero
   cost dropped), ``none`` keeps all;
3. 非稳定组: a DRG is unstable with fewer than ``min_cases`` kept cases or a coefficient of variation
   above ``max_cv``. ``unstable = "adrg"`` gives it its ADRG's mean over the ADRG's kept cases (or no
   weight, so paid by item, when the ADRG too has fewer than ``min_cases``); ``"by_item"`` gives it
   no weight; ``"shrink"`` blends its mean with its ADRG's by credibility n / min_cases (0 when the CV
   is too high), the ADRG's mean itself blended with the overall mean the same way;
4. RW = mean cost / the mean cost of all kept cases, or / ``reference_cost`` (the region's mean
   cost per case, when weights must be in regional terms);
5. adjustment: ``mean_rw`` scales RW so the mean RW of the calibration cases is 1 (the region's CMI
   is 1); ``budget`` scales it so Σ RW × ``base_rate`` over those cases equals ``budget_yuan``.

An insurer's table is used as published; with ``unstable = "by_item"`` its DRGs flagged unstable
(``stable`` false) get no weight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from casemix.rw_table import weight_schema
from contract.errors import InputError
from contract.fields import TEXT

RULES_DIR = "rules_dir"  # validation context key: the folder of the rules file, for relative paths


class Calibration(BaseModel):
    """Where weights come from (the ``[calibration]`` section of the payment rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rw_table: Path | None = None
    trim: Literal["iqr", "percentile", "log_sd", "none"] = "iqr"
    k: PositiveFloat = 1.5
    lower: float = Field(0.05, ge=0, lt=1)
    upper: float = Field(0.95, gt=0, le=1)
    min_cases: PositiveInt = 30
    max_cv: PositiveFloat | None = 1.0
    unstable: Literal["adrg", "by_item", "shrink"] = "adrg"
    reference_cost: PositiveFloat | None = None
    adjust: Literal["none", "mean_rw", "budget"] = "none"
    budget_yuan: PositiveFloat | None = None
    base_rate: PositiveFloat | None = None

    @field_validator("rw_table")
    @classmethod
    def _beside_the_rules(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """A relative ``rw_table`` is relative to the rules file that names it."""
        base = (info.context or {}).get(RULES_DIR)
        return Path(base) / path if path is not None and base is not None and not path.is_absolute() else path

    @model_validator(mode="after")
    def _consistent(self) -> Calibration:
        if self.lower >= self.upper:
            raise ValueError(f"lower ({self.lower}) must be below upper ({self.upper})")
        if (self.adjust == "budget") != (self.budget_yuan is not None and self.base_rate is not None):
            raise ValueError("adjust = 'budget' needs budget_yuan and base_rate, and only it uses them")
        return self


def trim_mask(cost: pd.Series, groups: pd.Series, calibration: Calibration) -> pd.Series:
    """True for the cases kept after trimming outliers within each group (DRG)."""
    if calibration.trim == "none":
        return cost.notna()
    if calibration.trim == "iqr":
        q1, q3 = _group_quantiles(cost, groups, [0.25, 0.75])
        low, high = q1 - calibration.k * (q3 - q1), q3 + calibration.k * (q3 - q1)
        return cost.between(low, high)
    if calibration.trim == "percentile":
        low, high = _group_quantiles(cost, groups, [calibration.lower, calibration.upper])
        return cost.between(low, high)
    log_cost = np.log(cost.where(cost > 0))
    by_log = log_cost.groupby(groups, sort=False)
    mean, sd = by_log.transform("mean"), by_log.transform("std").fillna(0.0)
    return log_cost.between(mean - calibration.k * sd, mean + calibration.k * sd)


def _group_quantiles(cost: pd.Series, groups: pd.Series, quantiles: list[float]) -> list[pd.Series]:
    """Each case's group's ``quantiles`` of ``cost`` (NaN for a case without a group). The groups are
    factorised once and every quantile comes from one grouped pass: each pass sorts all the costs, and
    mapping group names back to a million cases hashed them again (0.35 s of calibrating on 1M)."""
    codes, names = pd.factorize(groups)
    by_code = cost.groupby(codes).quantile(quantiles).unstack()
    present = codes >= 0
    spread = []
    for q in quantiles:
        values = np.full(len(cost), np.nan)
        values[present] = by_code[q].reindex(range(len(names))).to_numpy()[codes[present]]
        spread.append(pd.Series(values, index=cost.index))
    return spread


def _text(labels: pd.Series) -> pd.Series:
    """Labels as text: grouped by as categories, every DRG the tables have would be a group."""
    return labels.astype(TEXT) if isinstance(labels.dtype, pd.CategoricalDtype) else labels


def calibrate_weights(
    frame: pd.DataFrame, calibration: Calibration | None = None, cost: pd.Series | None = None
) -> pd.DataFrame:
    """A weight table estimated from grouped history (the module docstring gives the recipe).

    ``frame`` needs ``status``, ``drg``, ``adrg``, ``los_days`` and, unless ``cost`` is given,
    ``total_cost``; pass ``cost`` (``payment.drg_cost``) to calibrate on the cost inside the DRG.
    """
    calibration = calibration or Calibration()
    cost = frame["total_cost"] if cost is None else cost
    # (isin hashes the statuses: eq compared a million objects one by one, 5x slower)
    grouped = frame["status"].isin(["grouped"]) & cost.notna()
    if not grouped.any():
        raise InputError("no grouped case with a cost: cannot calibrate weights")
    cases = pd.DataFrame(
        {
            "drg": _text(frame["drg"]),
            "adrg": _text(frame["adrg"]),
            "cost": cost.astype(float),
            "los": frame["los_days"].astype(float),
        }
    )[grouped]
    kept = cases[trim_mask(cases["cost"], cases["drg"], calibration)]
    stats = {"n": ("cost", "size"), "cost": ("cost", "mean"), "los": ("los", "mean")}
    by_drg = kept.groupby("drg").agg(adrg=("adrg", "first"), sd=("cost", "std"), **stats)
    by_adrg = kept.groupby("adrg").agg(**stats).reindex(by_drg["adrg"].to_numpy())
    by_adrg.index = by_drg.index
    cv = (by_drg["sd"] / by_drg["cost"]).fillna(0.0)
    too_variable = cv > (calibration.max_cv if calibration.max_cv is not None else np.inf)
    stable = (by_drg["n"] >= calibration.min_cases) & ~too_variable
    if calibration.unstable == "shrink":
        mean_cost, mean_los, source = _shrunk(by_drg, by_adrg, kept, calibration, too_variable)
    else:
        from_adrg = ~stable & (by_adrg["n"] >= calibration.min_cases) & (calibration.unstable == "adrg")
        mean_cost = by_drg["cost"].where(stable, by_adrg["cost"].where(from_adrg))
        mean_los = by_drg["los"].where(stable, by_adrg["los"].where(from_adrg))
        source = pd.Series(np.where(stable, "drg", "adrg"), index=by_drg.index)
    table = pd.DataFrame(
        {
            "rw": mean_cost / (calibration.reference_cost or kept["cost"].mean()),
            "name": pd.Series(None, index=by_drg.index, dtype=object),
            "n_cases": by_drg["n"].astype("Int64"),
            "mean_cost": mean_cost,
            "mean_los": mean_los,
            "cv": cv,
            "stable": stable.astype("boolean"),
            "source": source.astype(object),
        }
    ).dropna(subset=["rw"])
    if table.empty:
        raise InputError(
            f"no DRG has {calibration.min_cases} kept cases (min_cases) for a weight of its own or its "
            "ADRG's: give the insurer's RW table, lower min_cases or set unstable = 'shrink'"
        )
    table["rw"] *= _adjustment(table["rw"], cases["drg"], calibration)
    table.index = table.index.astype(object).rename("drg")
    return weight_schema().validate(table)


def _shrunk(
    by_drg: pd.DataFrame,
    by_adrg: pd.DataFrame,
    kept: pd.DataFrame,
    calibration: Calibration,
    too_variable: pd.Series,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Limited-fluctuation credibility: a DRG's mean weighted n / min_cases (0 when too variable)
    against its ADRG's, the ADRG's against the overall mean of the kept cases."""

    def credible(n: pd.Series) -> pd.Series:
        return (n / calibration.min_cases).clip(upper=1.0)

    w_adrg, w_drg = credible(by_adrg["n"]), credible(by_drg["n"]).where(~too_variable, 0.0)
    adrg_cost = w_adrg * by_adrg["cost"] + (1 - w_adrg) * kept["cost"].mean()
    adrg_los = w_adrg * by_adrg["los"] + (1 - w_adrg) * kept["los"].mean()
    mean_cost = w_drg * by_drg["cost"] + (1 - w_drg) * adrg_cost
    mean_los = w_drg * by_drg["los"] + (1 - w_drg) * adrg_los
    source = np.where(w_drg >= 1, "drg", np.where(w_adrg >= 1, "adrg", "shrunk"))
    return mean_cost, mean_los, pd.Series(source, index=by_drg.index)


def _adjustment(rw: pd.Series, drgs: pd.Series, calibration: Calibration) -> float:
    """The factor the adjustment step multiplies every RW by, from the calibration cases' RW."""
    if calibration.adjust == "none":
        return 1.0
    case_rw = drgs.map(rw).dropna()
    if calibration.adjust == "mean_rw":
        return 1.0 / case_rw.mean()
    return calibration.budget_yuan / (calibration.base_rate * case_rw.sum())
