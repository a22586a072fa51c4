"""DRG payment: what the insurer's DRG settlement pays for each case, and the hospital's surplus.

All rules are data: ``PaymentRules`` is the pydantic model of a TOML file (the embedded default is
``config/payment.default.toml``, the demo hospital's city; another city's rules are another file).
``price_cases`` applies them to a grouped frame, vectorised, one pure function of a DataFrame so it
also runs per partition on Dask (``map_partitions(price_cases, rules, weights,
meta=price_cases(sample.iloc[:0], rules, weights))``; with the point method estimated from a budget,
give ``total_points`` in the rules so partitions agree).

The settlement of one case, in order:

1. by item (按项目付费) instead of by DRG when the grouper could not group it, the stay is longer than
   ``max_los_days``, the DRG is listed, or the DRG has no weight: pays cost × ratio;
2. otherwise the standard payment is RW × base rate in force on the discharge date (rate method), or
   RW × points_per_rw × the year's point value (point method);
3. the cost inside the DRG (total cost minus the 除外支付 categories) is compared with the standard:
   above the RW band's high multiple the case is ``high`` and pays
   standard + (cost − threshold) × ratio; under the low multiple it is ``low`` and pays by item,
   cost × ratio, capped at the standard; else ``normal`` and pays the standard;
4. the 除外支付 categories are paid on top at cost × ratio.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from features.casemix.weights import RULES_DIR, Calibration, pricing_weights
from pipelines.contract import COST_CATEGORIES

DEFAULT_RULES = Path(__file__).parent / "config" / "payment.default.toml"

CostColumn = Literal[(*COST_CATEGORIES, "cost_negotiated_drugs")]  # type: ignore[valid-type]
CostCategory = Literal[COST_CATEGORIES]  # type: ignore[valid-type]

PRICED_COLUMNS: tuple[str, ...] = (
    "rw",
    "payment_method",
    "by_item_reason",
    "base_rate",
    "point_value",
    "standard_payment",
    "standard_cost",
    "standard_los",
    "drg_cost",
    "outlier",
    "outside_payment",
    "drg_payment",
    "margin",
    "cost_to_standard",
    "overrun",
    "estimated_cost",
    "margin_on_cost",
)


class _Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BaseRate(_Rules):
    effective_from: date
    yuan: PositiveFloat


class PointValue(_Rules):
    """A settlement year's point value, given or estimated as budget_yuan / total_points."""

    year: int
    yuan: PositiveFloat | None = None
    budget_yuan: PositiveFloat | None = None
    total_points: PositiveFloat | None = None

    @model_validator(mode="after")
    def _given_or_budget(self) -> PointValue:
        if (self.yuan is None) == (self.budget_yuan is None):
            raise ValueError("give exactly one of yuan or budget_yuan")
        if self.total_points is not None and self.budget_yuan is None:
            raise ValueError("total_points only goes with budget_yuan")
        return self


class OutlierBand(_Rules):
    rw_below: PositiveFloat | None = None
    high_multiple: PositiveFloat
    low_multiple: NonNegativeFloat

    @model_validator(mode="after")
    def _low_under_high(self) -> OutlierBand:
        if self.low_multiple >= self.high_multiple:
            raise ValueError("low_multiple must be below high_multiple")
        return self


class HighRule(_Rules):
    ratio: NonNegativeFloat = 1.0


class LowRule(_Rules):
    ratio: NonNegativeFloat = 1.0
    cap_at_standard: bool = True


class Outliers(_Rules):
    bands: list[OutlierBand] = Field(min_length=1)
    high: HighRule = HighRule()
    low: LowRule = LowRule()

    @model_validator(mode="after")
    def _bands_cover_every_weight(self) -> Outliers:
        bounds = [b.rw_below for b in self.bands]
        if bounds[-1] is not None or None in bounds[:-1]:
            raise ValueError("every band but the last needs rw_below; the last has none")
        if bounds[:-1] != sorted(bounds[:-1]) or len(set(bounds[:-1])) != len(bounds) - 1:
            raise ValueError("rw_below must increase from band to band")
        return self


class ByItem(_Rules):
    statuses: list[Literal["ungroupable", "invalid"]] = ["ungroupable", "invalid"]
    max_los_days: PositiveInt | None = None
    drgs: list[str] = []
    ratio: NonNegativeFloat = 1.0


class OutsideDrg(_Rules):
    columns: list[CostColumn] = []
    ratio: NonNegativeFloat = 1.0


class Overrun(_Rules):
    threshold: PositiveFloat = 1.10


class CostToCharge(_Rules):
    """Cost-to-charge ratios: a department's ratio for a category wins over the category's, then default."""

    default: PositiveFloat = 1.0
    categories: dict[CostCategory, PositiveFloat] = {}
    departments: dict[str, dict[CostCategory, PositiveFloat]] = {}


class PaymentRules(_Rules):
    """A city's DRG payment rules (see config/payment.default.toml for every field explained)."""

    name: str
    method: Literal["rate", "point"]
    points_per_rw: PositiveFloat = 100.0
    base_rates: list[BaseRate] = []
    point_values: list[PointValue] = []
    outliers: Outliers
    by_item: ByItem = ByItem()
    outside_drg: OutsideDrg = OutsideDrg()
    overrun: Overrun = Overrun()
    calibration: Calibration = Calibration()
    cost_to_charge: CostToCharge | None = None

    @model_validator(mode="after")
    def _prices_for_method(self) -> PaymentRules:
        if self.method == "rate" and not self.base_rates:
            raise ValueError("method 'rate' needs at least one [[base_rates]] entry")
        if self.method == "point" and not self.point_values:
            raise ValueError("method 'point' needs at least one [[point_values]] entry")
        if len({r.effective_from for r in self.base_rates}) != len(self.base_rates):
            raise ValueError("two base_rates take effect on the same date")
        if len({p.year for p in self.point_values}) != len(self.point_values):
            raise ValueError("two point_values for the same year")
        return self

    @classmethod
    def load(cls, path: Path | str | None = None) -> PaymentRules:
        """Rules from a TOML file; ``None`` loads the embedded default. Bad fields raise a pydantic
        ``ValidationError`` naming them; bad TOML syntax a ``ValueError`` naming the file."""
        path = Path(path) if path is not None else DEFAULT_RULES
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML: {err}") from None
        return cls.model_validate(data, context={RULES_DIR: path.parent})


def point_value_from_budget(budget: float, total_points: float) -> float:
    """点数法: the value of one point is the fund budget divided by all points settled in the year."""
    if not total_points > 0:
        raise ValueError(f"total_points must be positive to share a budget, got {total_points}")
    if budget < 0:
        raise ValueError(f"budget must not be negative, got {budget}")
    return budget / total_points


def drg_cost(frame: pd.DataFrame, rules: PaymentRules) -> pd.Series:
    """Cost inside the DRG: total cost less the categories paid outside it (除外支付)."""
    outside = frame[rules.outside_drg.columns].fillna(0.0).sum(axis=1) if rules.outside_drg.columns else 0.0
    return (frame["total_cost"] - outside).rename("drg_cost")


def weights_for_pricing(grouped: pd.DataFrame, rules: PaymentRules) -> pd.DataFrame:
    """The insurer's RW table the rules name, else weights estimated from the grouped cases on the cost
    inside the DRG (``drg_cost``: net of 除外, the cost ``price_cases`` compares with the standard)."""
    return pricing_weights(grouped, rules.calibration, cost=drg_cost(grouped, rules))


def price_cases(frame: pd.DataFrame, rules: PaymentRules, weights: pd.DataFrame) -> pd.DataFrame:
    """The grouped frame with the payment columns of ``PRICED_COLUMNS`` added.

    ``weights`` is a weight table (see ``features.casemix.weights``). Outlier and overrun are only
    defined for cases settled by DRG: they are missing for cases paid by item.
    """
    _check_input(frame, rules)
    cost = frame["total_cost"].astype(float)
    inside = drg_cost(frame, rules)
    outside = "+".join(rules.outside_drg.columns)
    _raise_on(frame, inside < 0, outside, "(paid outside the DRG) exceeds total_cost")
    rw = frame["drg"].map(weights["rw"]).astype(float)
    reason = _by_item_reason(frame, rules, rw)
    by_drg = reason.isna()

    base_rate, point_value = _prices(frame, rules, rw.where(by_drg))
    standard = rw * (base_rate if rules.method == "rate" else rules.points_per_rw * point_value)

    bands = rules.outliers.bands
    band = np.searchsorted([b.rw_below for b in bands[:-1]], rw.fillna(0).to_numpy(), side="right")
    high_threshold = np.array([b.high_multiple for b in bands])[band] * standard
    low_threshold = np.array([b.low_multiple for b in bands])[band] * standard
    high = by_drg & (inside > high_threshold)
    low = by_drg & ~high & (inside < low_threshold)
    outlier = pd.Series(
        np.where(high, "high", np.where(low, "low", "normal")), index=frame.index, dtype=object
    )

    low_pay = inside * rules.outliers.low.ratio
    if rules.outliers.low.cap_at_standard:
        low_pay = low_pay.clip(upper=standard)
    inside_pay = np.select(
        [~by_drg, high, low],
        [
            inside * rules.by_item.ratio,
            standard + (inside - high_threshold) * rules.outliers.high.ratio,
            low_pay,
        ],
        default=standard,
    )
    outside_pay = (cost - inside) * rules.outside_drg.ratio
    payment = inside_pay + outside_pay
    estimated = _estimated_cost(frame, rules.cost_to_charge)
    return frame.assign(
        rw=rw,
        payment_method=pd.Series(np.where(by_drg, rules.method, "by_item"), index=frame.index, dtype=object),
        by_item_reason=reason,
        base_rate=base_rate,
        point_value=point_value,
        standard_payment=standard,
        standard_cost=frame["drg"].map(weights["mean_cost"]).astype(float),
        standard_los=frame["drg"].map(weights["mean_los"]).astype(float),
        drg_cost=inside,
        outlier=outlier.where(by_drg, None),
        outside_payment=outside_pay,
        drg_payment=payment,
        margin=payment - cost,
        cost_to_standard=inside / standard,
        overrun=(inside > rules.overrun.threshold * standard).astype("boolean").where(by_drg, pd.NA),
        estimated_cost=estimated,
        margin_on_cost=payment - estimated,
    )


def _by_item_reason(frame: pd.DataFrame, rules: PaymentRules, rw: pd.Series) -> pd.Series:
    """Why a case is paid by item (None when it is paid by DRG); the first reason that applies wins."""
    item = rules.by_item
    max_los = item.max_los_days if item.max_los_days is not None else np.inf
    reasons = [
        (frame["status"].isin(item.statuses), frame["status"]),
        (frame["los_days"] > max_los, "long_stay"),
        (frame["drg"].isin(item.drgs), "listed_drg"),
        (rw.isna(), "no_weight"),
    ]
    labels = np.select(
        [applies.to_numpy() for applies, _ in reasons],
        [np.asarray(lb, dtype=object) for _, lb in reasons],
        default=None,
    )
    return pd.Series(labels, index=frame.index, dtype=object)


def _prices(frame: pd.DataFrame, rules: PaymentRules, paid_rw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Base rate and point value in force for each case (NaN for the method not in use)."""
    discharged = frame["discharge_date"]
    nan = pd.Series(np.nan, index=frame.index)
    if rules.method == "rate":
        rates = sorted(rules.base_rates, key=lambda r: r.effective_from)
        starts = np.array([r.effective_from for r in rates], dtype="datetime64[ns]")
        position = np.searchsorted(starts, discharged.to_numpy(dtype="datetime64[ns]"), side="right") - 1
        _raise_on(
            frame,
            pd.Series(position < 0, index=frame.index),
            "discharge_date",
            f"is before the first base rate ({rates[0].effective_from})",
        )
        return pd.Series(np.array([r.yuan for r in rates])[position], index=frame.index), nan
    year = discharged.dt.year
    values = {p.year: p for p in rules.point_values}
    _raise_on(frame, ~year.isin(list(values)), "discharge_date", "falls in a year with no point value")
    case_points = (paid_rw * rules.points_per_rw).groupby(year).sum()
    by_year = {
        y: p.yuan
        if p.yuan is not None
        else point_value_from_budget(p.budget_yuan, p.total_points or float(case_points.get(y, 0.0)))
        for y, p in values.items()
    }
    return nan, year.map(by_year).astype(float)


def _estimated_cost(frame: pd.DataFrame, ratios: CostToCharge | None) -> pd.Series:
    """True cost estimated from charges by cost-to-charge ratios; NaN when the rules give none."""
    if ratios is None:
        return pd.Series(np.nan, index=frame.index)
    total = pd.Series(0.0, index=frame.index)
    for category in COST_CATEGORIES:
        own = {d: r[category] for d, r in ratios.departments.items() if category in r}
        fallback = ratios.categories.get(category, ratios.default)
        ratio = frame["department"].map(own).astype(float).fillna(fallback)
        total += frame[category].astype(float) * ratio
    return total


def _check_input(frame: pd.DataFrame, rules: PaymentRules) -> None:
    needed = ["status", "drg", "department", "discharge_date", "los_days", "total_cost"]
    needed += rules.outside_drg.columns
    if rules.cost_to_charge is not None:
        needed += COST_CATEGORIES
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot price cases: missing columns {missing}")
    _raise_on(frame, frame["discharge_date"].isna(), "discharge_date", "is missing")
    _raise_on(frame, frame["los_days"].isna(), "los_days", "is missing")
    cost = frame["total_cost"]
    _raise_on(frame, cost.isna() | (cost < 0), "total_cost", "is missing or negative")


def _raise_on(frame: pd.DataFrame, bad: pd.Series, field: str, problem: str) -> None:
    """A clear error naming the first bad row (index label) and field, and how many rows share it."""
    if bad.any():
        first = frame.index[np.flatnonzero(bad.to_numpy())[0]]
        raise ValueError(f"row {first}: {field} {problem} ({int(bad.sum())} rows)")
