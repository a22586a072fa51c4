"""DRG payment: what the insurer's DRG settlement pays for each case, who pays it, and the surplus.

All rules are data: ``PaymentRules`` is the pydantic model of a TOML file (the embedded default is
``config/payment.default.toml``, the demo hospital's city on the rate method; ``config/
payment.point-city.toml`` is a point-method city; another city's rules are another file, every rule
with its setting and a worked example in ``docs/payment.md``). ``price_cases`` applies them to a
grouped frame, vectorised, one pure function of a DataFrame. Two rules look across cases: the point
value estimated from a budget (give ``total_points`` in the rules so partitions agree) and the
readmission rule (partition by patient) — so on Dask, partition by hospital and year.

The settlement of one case, in order:

1. who pays: a case whose payer (``insurance_type``) is in no insured scheme of the rules is priced
   at its charges, not by DRG (全自费 and payers outside the basic schemes);
2. by item (按项目付费) instead of by DRG when the grouper could not group it, the DRG is 歧义组 (QY),
   listed or has no weight, the stay is very short or very long, or the case is 特病单议: cost × the
   reason's ratio (long stays may be paid per diem instead);
3. otherwise the standard payment is RW × base rate in force on the discharge date (rate method), or
   RW × points_per_rw points (point method), times the hospital's and the DRG's coefficients;
4. the cost inside the DRG (total cost minus the 除外支付 categories) is compared with multiples of the
   standard (or of the DRG's average cost) in the case's RW band: above the high multiple the case
   is ``high`` and pays standard + (cost − threshold) × ratio; under the low multiple (or a short
   stay the rules treat as low) it is ``low`` and pays by item, cost × ratio, capped at the
   standard; else ``normal`` and pays the standard;
5. an earlier stay followed by a readmission for the same condition within the rule's days is paid
   at the rule's factor (some cities halve it);
6. the 除外支付 categories (negotiated drugs, new technology) are paid on top at each one's ratio;
7. point method: every yuan-priced part is converted into points at ``point_conversion_yuan`` (yuan
   per point), so the whole payout is points, and a point is worth the year's point value
   (given, or budget / all points: the budget closes to the yuan);
8. the payment is split into the fund's (统筹基金) and the patient's share: the patient pays the
   self-funded items (全自费), the items paid first (先自付), the deductible (起付线) and the
   scheme's share of the rest of the charges; the fund pays the payment less that.
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
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from casemix.weights import RULES_DIR, Calibration
from contract.errors import ConfigError, InputError
from contract.fields import ADMISSION_TYPES, COST_CATEGORIES, INSURANCE_TYPES

DEFAULT_RULES = Path(__file__).parent / "config" / "payment.default.toml"
POINT_CITY_RULES = Path(__file__).parent / "config" / "payment.point-city.toml"

OUTSIDE_COLUMNS: tuple[str, ...] = ("cost_negotiated_drugs", "cost_new_technology")
CostColumn = Literal[(*COST_CATEGORIES, *OUTSIDE_COLUMNS)]  # type: ignore[valid-type]
CostCategory = Literal[COST_CATEGORIES]  # type: ignore[valid-type]
ByItemReason = Literal[
    "ungroupable",
    "invalid",
    "ambiguous",
    "listed_drg",
    "no_weight",
    "short_stay",
    "long_stay",
    "special_review",
]
InsuranceType = Literal[tuple(INSURANCE_TYPES)]  # type: ignore[valid-type]

# Every input column ``price_cases`` and the weights' calibration may read (besides the grouper's
# columns): a batch command converts only these (and the grouper's) to pandas and passes the rest
# through as Arrow. A rule reading a new column must name it here.
PRICING_INPUT_COLUMNS: tuple[str, ...] = (
    "department",
    "admission_date",
    "discharge_date",
    "los_days",
    "admission_type",
    "patient_id",
    "hospital_id",
    "insurance_type",
    "readmission_plan_31d",
    "special_review",
    "total_cost",
    *COST_CATEGORIES,
    *OUTSIDE_COLUMNS,
    "cost_self_funded",
    "cost_first_self_paid",
)

PRICED_COLUMNS: tuple[str, ...] = (
    "rw",
    "scheme",
    "payment_method",
    "by_item_reason",
    "base_rate",
    "point_value",
    "standard_payment",
    "standard_cost",
    "standard_los",
    "drg_cost",
    "outlier",
    "readmitted",
    "outside_payment",
    "points",
    "drg_payment",
    "patient_payment",
    "fund_payment",
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
    """A settlement year's point value, given (yuan) or closing a budget: budget / total points.

    ``budget_of`` says whose money the budget is: ``total`` (the DRG payment of the insured cases)
    or ``fund`` (统筹基金 only; the patients' shares of the priced cases are added to it before
    dividing, so the fund's payout equals the budget). ``provisional_yuan`` is the value months are
    prepaid at (预拨) before the year is cleared; without it they are prepaid at the final value.
    """

    year: int
    yuan: PositiveFloat | None = None
    budget_yuan: PositiveFloat | None = None
    budget_of: Literal["total", "fund"] = "total"
    total_points: PositiveFloat | None = None
    provisional_yuan: PositiveFloat | None = None

    @model_validator(mode="after")
    def _given_or_budget(self) -> PointValue:
        if (self.yuan is None) == (self.budget_yuan is None):
            raise ValueError("give exactly one of yuan or budget_yuan")
        if self.total_points is not None and self.budget_yuan is None:
            raise ValueError("total_points only goes with budget_yuan")
        if self.total_points is not None and self.budget_of == "fund":
            raise ValueError(
                "a regional budget (total_points) is the total: the region's patients are unknown"
            )
        return self


class OutlierBand(_Rules):
    rw_upper: PositiveFloat | None = None
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
    """高/低倍率: thresholds are multiples of ``base`` (the standard payment or the DRG's average cost,
    次均费用, the weight table's ``mean_cost``) in the band of the DRG's RW; a band holds RWs up to its
    ``rw_upper``, inclusive (RW ≤ bound) or exclusive (RW < bound) as ``rw_upper_inclusive`` says."""

    base: Literal["standard", "drg_mean_cost"] = "standard"
    rw_upper_inclusive: bool = True
    bands: list[OutlierBand] = Field(min_length=1)
    high: HighRule = HighRule()
    low: LowRule = LowRule()

    @model_validator(mode="after")
    def _bands_cover_every_weight(self) -> Outliers:
        bounds = [b.rw_upper for b in self.bands]
        if bounds[-1] is not None or None in bounds[:-1]:
            raise ValueError("every band but the last needs rw_upper; the last has none")
        if bounds[:-1] != sorted(bounds[:-1]) or len(set(bounds[:-1])) != len(bounds) - 1:
            raise ValueError("rw_upper must increase from band to band")
        return self


class ByItem(_Rules):
    """Cases paid by item (cost × ratio) instead of by DRG; ``ratios`` overrides ``ratio`` per reason
    (歧义组 at a discount, for instance)."""

    statuses: list[Literal["ungroupable", "invalid"]] = ["ungroupable", "invalid"]
    drgs: list[str] = []
    ambiguous_marker: str | None = "QY"
    special_review: bool = True
    ratio: NonNegativeFloat = 1.0
    ratios: dict[ByItemReason, NonNegativeFloat] = {}

    def ratio_for(self, reason: str) -> float:
        return self.ratios.get(reason, self.ratio)  # type: ignore[call-overload]


class ShortStay(_Rules):
    """Stays of at most ``max_days`` days: paid by item, or as a low-cost case (by item, capped); day
    cases (日间, ``admission_type`` 3) and the like can be exempt by admission type."""

    max_days: NonNegativeInt = 0
    pay: Literal["by_item", "low"] = "by_item"
    exempt_admission_types: list[Literal[tuple(ADMISSION_TYPES)]] = []  # type: ignore[valid-type]

    def applies(self, frame: pd.DataFrame) -> pd.Series:
        """Which cases the rule catches (a case without an admission type is not exempt)."""
        short = frame["los_days"] <= self.max_days
        if self.exempt_admission_types and "admission_type" in frame.columns:
            short &= ~frame["admission_type"].isin(self.exempt_admission_types)
        return short


class LongStay(_Rules):
    """Stays longer than ``above_days``: paid by item, or per diem (床日) at ``per_diem_yuan`` a day."""

    above_days: PositiveInt | None = None
    pay: Literal["by_item", "per_diem"] = "by_item"
    per_diem_yuan: PositiveFloat | None = None

    @model_validator(mode="after")
    def _per_diem_has_a_price(self) -> LongStay:
        if self.pay == "per_diem" and self.per_diem_yuan is None:
            raise ValueError("pay 'per_diem' needs per_diem_yuan")
        return self


class OutsideDrg(_Rules):
    """除外支付: categories paid on top at cost × ratio (``ratios`` per column override ``ratio``);
    under the point method they are points inside the budget unless ``in_budget`` is false."""

    columns: list[CostColumn] = []
    ratio: NonNegativeFloat = 1.0
    ratios: dict[CostColumn, NonNegativeFloat] = {}
    in_budget: bool = True


class Scheme(_Rules):
    """An insured scheme settled by DRG, and its fund formula (统筹基金支付)."""

    name: str
    insurance_types: list[InsuranceType] = Field(min_length=1)
    deductible_yuan: NonNegativeFloat = 0.0
    fund_ratio: float = Field(ge=0, le=1)


class Readmission(_Rules):
    """15-day rule: a stay followed, within ``within_days`` of its discharge, by another admission of the
    same patient at the same hospital in the same ADRG/MDC (``same``) is ``readmitted``; its DRG payment
    is multiplied by ``earlier_factor`` (1.0 flags only). A stay with a planned readmission is exempt."""

    within_days: PositiveInt = 15
    same: Literal["adrg", "mdc", "any"] = "adrg"
    earlier_factor: NonNegativeFloat = 1.0


class Coefficients(_Rules):
    """机构系数 by hospital_id and per-DRG adjustment coefficients; missing ones are 1.0."""

    hospitals: dict[str, PositiveFloat] = {}
    drgs: dict[str, PositiveFloat] = {}


class Grouping(_Rules):
    """How cases are grouped before they are priced: ``ambiguous_groups`` sends a case whose OR procedure
    fits none of its MDC's procedure ADRGs to the MDC's 歧义组 ``{letter}QY`` (paid as ``by_item``
    reason ``ambiguous``); off, it falls into a medical ADRG or 0000, as the CHS-DRG 1.1 reference
    grouper does."""

    ambiguous_groups: bool = False


class Overrun(_Rules):
    """超支预警: a case is an overrun above ``threshold`` × its standard; during the stay the watch list
    warns (``watch``) from ``watch`` × the standard of the DRG pre-grouped so far."""

    threshold: PositiveFloat = 1.10
    watch: PositiveFloat = 0.90

    @model_validator(mode="after")
    def _watch_before_overrun(self) -> Overrun:
        if self.watch > self.threshold:
            raise ValueError(
                f"overrun.watch ({self.watch}) must not exceed overrun.threshold ({self.threshold})"
            )
        return self


class CostToCharge(_Rules):
    """Cost-to-charge ratios: a department's ratio for a category wins over the category's, then default."""

    default: PositiveFloat = 1.0
    categories: dict[CostCategory, PositiveFloat] = {}
    departments: dict[str, dict[CostCategory, PositiveFloat]] = {}


class Tier(_Rules):
    """A slice of a rate (share of charges) up to ``up_to`` (the last slice has none), and the share
    that applies to the money in that slice."""

    up_to: PositiveFloat | None = None
    share: float = Field(ge=0, le=1)


class Settlement(_Rules):
    """Year-end settlement (清算) of a hospital's insured cases; see ``casemix.settlement``."""

    prepay_share: float = Field(1.0, ge=0, le=1)
    surplus_kept: list[Tier] = []
    overrun_shared: list[Tier] = []
    risk_reserve_share: float = Field(0.0, ge=0, lt=1)
    quality_reserve_share: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _tiers_increase(self) -> Settlement:
        for name in ("surplus_kept", "overrun_shared"):
            bounds = [t.up_to for t in getattr(self, name)]
            if bounds and (
                bounds[-1] is not None or None in bounds[:-1] or bounds[:-1] != sorted(bounds[:-1])
            ):
                raise ValueError(f"{name}: up_to must increase and only the last tier has none")
        return self


class PaymentRules(_Rules):
    """A city's DRG payment rules (see config/payment.default.toml for every field explained)."""

    name: str
    method: Literal["rate", "point"]
    points_per_rw: PositiveFloat = 100.0
    point_conversion_yuan: PositiveFloat | None = None
    base_rates: list[BaseRate] = []
    point_values: list[PointValue] = []
    schemes: list[Scheme] = []
    allow_negative_fund: bool = False
    coefficients: Coefficients = Coefficients()
    outliers: Outliers
    by_item: ByItem = ByItem()
    short_stay: ShortStay = ShortStay()
    long_stay: LongStay = LongStay()
    outside_drg: OutsideDrg = OutsideDrg()
    readmission: Readmission | None = None
    grouping: Grouping = Grouping()
    overrun: Overrun = Overrun()
    settlement: Settlement = Settlement()
    calibration: Calibration = Calibration()
    cost_to_charge: CostToCharge | None = None

    @model_validator(mode="after")
    def _prices_for_method(self) -> PaymentRules:
        if self.method == "rate" and not self.base_rates:
            raise ValueError("method 'rate' needs at least one [[base_rates]] entry")
        if self.method == "point" and not self.point_values:
            raise ValueError("method 'point' needs at least one [[point_values]] entry")
        budgeted = any(p.yuan is None for p in self.point_values)
        if self.method == "point" and self.point_conversion_yuan is None and budgeted:
            raise ValueError("a point value from a budget needs point_conversion_yuan")
        if len({r.effective_from for r in self.base_rates}) != len(self.base_rates):
            raise ValueError("two base_rates take effect on the same date")
        if len({p.year for p in self.point_values}) != len(self.point_values):
            raise ValueError("two point_values for the same year")
        paid = [t for s in self.schemes for t in s.insurance_types]
        if len(set(paid)) != len(paid):
            raise ValueError("an insurance_type belongs to two schemes")
        return self

    @classmethod
    def load(cls, path: Path | str | None = None) -> PaymentRules:
        """Rules from a TOML file; ``None`` loads the embedded default. Bad fields raise a pydantic
        ``ValidationError`` naming them; bad TOML syntax a ``ConfigError`` naming the file."""
        path = Path(path) if path is not None else DEFAULT_RULES
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such payment rules file") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from None
        return cls.model_validate(data, context={RULES_DIR: path.parent})


def point_value_from_budget(budget: float, total_points: float) -> float:
    """点数法: the value of one point is the fund budget divided by all points settled in the year."""
    if not total_points > 0:
        raise ConfigError(f"total_points must be positive to share a budget, got {total_points}")
    if budget < 0:
        raise ConfigError(f"budget must not be negative, got {budget}")
    return budget / total_points


def drg_cost(frame: pd.DataFrame, rules: PaymentRules) -> pd.Series:
    """Cost inside the DRG: total cost less the categories paid outside it (除外支付)."""
    columns = [c for c in rules.outside_drg.columns if c in frame.columns or c not in OUTSIDE_COLUMNS]
    outside = frame[columns].fillna(0.0).sum(axis=1) if columns else 0.0
    return (frame["total_cost"] - outside).rename("drg_cost")


def price_cases(frame: pd.DataFrame, rules: PaymentRules, weights: pd.DataFrame) -> pd.DataFrame:
    """The grouped frame with the payment columns of ``PRICED_COLUMNS`` added.

    ``weights`` is a weight table (see ``casemix.weights``). Outlier and overrun are only
    defined for cases settled by DRG: they are missing for cases paid by item or at charges. Without
    an ``insurance_type`` column (or without schemes in the rules) the payer is unknown: every case is
    settled by DRG and the fund/patient split is missing. The optional columns ``cost_self_funded``
    (全自费), ``cost_first_self_paid`` (先自付), ``cost_new_technology`` and ``special_review`` are 0 /
    false when absent.
    """
    _check_input(frame, rules)
    cost = frame["total_cost"].astype(float)
    inside = drg_cost(frame, rules)
    outside_names = "+".join(rules.outside_drg.columns)
    _raise_on(frame, inside < 0, outside_names, "(paid outside the DRG) exceeds total_cost")
    scheme = _scheme(frame, rules)
    insured = scheme.notna() | ("insurance_type" not in frame.columns) | (not rules.schemes)
    rw = frame["drg"].map(weights["rw"]).astype(float)
    reason = _by_item_reason(frame, rules, rw).where(insured, None)
    by_drg = reason.isna() & insured
    coefficient = _coefficients(frame, rules)

    base_rate, conversion = _unit_prices(frame, rules)
    unit = base_rate if rules.method == "rate" else rules.points_per_rw * conversion
    standard = rw * unit * coefficient
    inside_pay, outlier = _inside_payment(frame, rules, weights, inside, standard, reason, by_drg)
    readmitted = _readmitted(frame, rules, by_drg)
    inside_pay = inside_pay * np.where(readmitted.fillna(False).to_numpy(dtype=bool), _factor(rules), 1.0)
    outside_pay = _outside_payment(frame, rules)
    patient = _patient_share(frame, rules, scheme)

    if rules.method == "rate":
        points = pd.Series(np.nan, index=frame.index)
        point_value = pd.Series(np.nan, index=frame.index)
        payment = inside_pay + outside_pay
        standard_paid = standard
    else:
        in_budget = inside_pay + (outside_pay if rules.outside_drg.in_budget else 0.0)
        points = (in_budget / conversion).where(insured)
        point_value = _point_values(frame, rules, points, patient)
        if rules.outside_drg.in_budget:
            outside_pay = outside_pay / conversion * point_value
        payment = points * point_value + (0.0 if rules.outside_drg.in_budget else outside_pay)
        standard_paid = rw * rules.points_per_rw * coefficient * point_value
    payment = payment.where(insured, cost)
    fund = payment - patient
    if not rules.allow_negative_fund:
        fund = fund.clip(lower=0.0)
    estimated = _estimated_cost(frame, rules.cost_to_charge)
    method = np.where(~insured, "charges", np.where(by_drg, rules.method, "by_item"))
    return frame.assign(
        rw=rw,
        scheme=scheme,
        payment_method=pd.Series(method, index=frame.index, dtype=object),
        by_item_reason=reason,
        base_rate=base_rate,
        point_value=point_value,
        standard_payment=standard_paid,
        standard_cost=frame["drg"].map(weights["mean_cost"]).astype(float),
        standard_los=frame["drg"].map(weights["mean_los"]).astype(float),
        drg_cost=inside,
        outlier=outlier.where(by_drg, None),
        readmitted=readmitted,
        outside_payment=outside_pay.where(insured, 0.0),
        points=points,
        drg_payment=payment,
        patient_payment=patient,
        fund_payment=fund,
        margin=payment - cost,
        cost_to_standard=inside / standard_paid,
        overrun=(inside > rules.overrun.threshold * standard_paid).astype("boolean").where(by_drg, pd.NA),
        estimated_cost=estimated,
        margin_on_cost=payment - estimated,
    )


def _scheme(frame: pd.DataFrame, rules: PaymentRules) -> pd.Series:
    """The insured scheme settling each case; None for payers outside them (or an unknown payer)."""
    if "insurance_type" not in frame.columns or not rules.schemes:
        return pd.Series(None, index=frame.index, dtype=object)
    names = {t: s.name for s in rules.schemes for t in s.insurance_types}
    return frame["insurance_type"].map(names).astype(object).where(lambda x: x.notna(), None)


def _by_item_reason(frame: pd.DataFrame, rules: PaymentRules, rw: pd.Series) -> pd.Series:
    """Why a case is paid by item (None when it is paid by DRG); the first reason that applies wins."""
    item = rules.by_item
    los = frame["los_days"]
    long_days = rules.long_stay.above_days if rules.long_stay.above_days is not None else np.inf
    short = rules.short_stay.applies(frame) & (rules.short_stay.pay == "by_item")
    marker = item.ambiguous_marker
    ambiguous = frame["drg"].isin([d for d in frame["drg"].unique() if marker and marker in str(d)])
    special = (
        frame["special_review"].fillna(False).astype(bool)
        if item.special_review and "special_review" in frame.columns
        else pd.Series(False, index=frame.index)
    )
    reasons = [
        (frame["status"].isin(item.statuses), frame["status"]),
        (special, "special_review"),
        (ambiguous, "ambiguous"),
        (frame["drg"].isin(item.drgs), "listed_drg"),
        (rw.isna(), "no_weight"),
        (los > long_days, "long_stay"),
        (short, "short_stay"),
    ]
    labels = np.select(
        [applies.to_numpy(dtype=bool) for applies, _ in reasons],
        [np.asarray(lb, dtype=object) for _, lb in reasons],
        default=None,
    )
    return pd.Series(labels, index=frame.index, dtype=object)


def _coefficients(frame: pd.DataFrame, rules: PaymentRules) -> pd.Series:
    """机构系数 × the DRG's coefficient, 1.0 where the rules give none."""
    found = rules.coefficients
    drg = frame["drg"].map(found.drgs).astype(float).fillna(1.0)
    if not found.hospitals:
        return drg
    return drg * frame["hospital_id"].map(found.hospitals).astype(float).fillna(1.0)


def _unit_prices(frame: pd.DataFrame, rules: PaymentRules) -> tuple[pd.Series, pd.Series]:
    """Base rate in force for each case (rate method) or the yuan per point at which yuan amounts become
    points (point method); NaN for the method not in use."""
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
    conversion = {y: rules.point_conversion_yuan or p.yuan for y, p in values.items()}
    return nan, year.map(conversion).astype(float)


def _inside_payment(
    frame: pd.DataFrame,
    rules: PaymentRules,
    weights: pd.DataFrame,
    inside: pd.Series,
    standard: pd.Series,
    reason: pd.Series,
    by_drg: pd.Series,
) -> tuple[pd.Series, pd.Series]:
    """Payment for the cost inside the DRG (in yuan, before any conversion to points), and the outlier
    class of each case; ``reason`` is why a case is paid by item, ``by_drg`` whether it is paid by DRG
    (cases at charges are neither)."""
    outliers = rules.outliers
    if outliers.base == "standard":
        base = standard
    else:
        base = (
            frame["drg"].map(weights["mean_cost"]).astype(float)
            if "mean_cost" in weights
            else standard * np.nan
        )
        _raise_on(
            frame,
            by_drg & base.isna(),
            "standard_cost",
            "(the DRG's mean_cost in the weight table) is missing; outliers.base = 'drg_mean_cost' needs it",
        )
    bands = outliers.bands
    side = "left" if outliers.rw_upper_inclusive else "right"
    rw = frame["drg"].map(weights["rw"]).astype(float).fillna(0.0).to_numpy()
    band = np.searchsorted([b.rw_upper for b in bands[:-1]], rw, side=side)
    high_threshold = np.array([b.high_multiple for b in bands])[band] * base
    low_threshold = np.array([b.low_multiple for b in bands])[band] * base
    short_low = rules.short_stay.applies(frame) & (rules.short_stay.pay == "low")
    high = by_drg & (inside > high_threshold)
    low = by_drg & ~high & ((inside < low_threshold) | short_low)
    outlier = pd.Series(
        np.where(high, "high", np.where(low, "low", "normal")), index=frame.index, dtype=object
    )

    low_pay = inside * outliers.low.ratio
    if outliers.low.cap_at_standard:
        low_pay = low_pay.clip(upper=standard)
    item_ratio = reason.map({r: rules.by_item.ratio_for(r) for r in reason.dropna().unique()}).astype(float)
    long = rules.long_stay
    per_diem = (reason == "long_stay") & (long.pay == "per_diem")
    pay = np.select(
        [per_diem, reason.notna(), high, low],
        [
            frame["los_days"].astype(float) * (long.per_diem_yuan or 0.0),
            inside * item_ratio,
            standard + (inside - high_threshold) * outliers.high.ratio,
            low_pay,
        ],
        default=standard,
    )
    return pd.Series(pay, index=frame.index), outlier


def _readmitted(frame: pd.DataFrame, rules: PaymentRules, by_drg: pd.Series) -> pd.Series:
    """Stays settled by DRG that the readmission rule catches: the same patient is admitted again at
    the same hospital, for the same ADRG or MDC, within the rule's days of this discharge, unplanned.
    Missing when the rules have no such rule or the frame cannot tell (no patient_id/admission_date)."""
    rule = rules.readmission
    if rule is None or not {"patient_id", "admission_date"} <= set(frame.columns):
        return pd.Series(pd.NA, index=frame.index, dtype="boolean")
    keys = ["patient_id", *(["hospital_id"] if "hospital_id" in frame.columns else [])]
    codes = [pd.factorize(frame[k])[0] for k in keys]  # -1 where missing: links no stays
    admitted = frame["admission_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    discharged = frame["discharge_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    order = np.lexsort((discharged, admitted, *reversed(codes)))  # patient, hospital, then dates
    stay, following = order[:-1], order[1:]
    caught = np.logical_and.reduce([(c[stay] == c[following]) & (c[stay] >= 0) for c in codes])
    gap_days = (admitted[following] - discharged[stay]) / 86_400e9
    caught &= (gap_days >= 0) & (gap_days <= rule.within_days)
    if rule.same != "any":
        adrg, uniques = pd.factorize(frame["adrg"])
        if rule.same == "mdc":  # an ADRG code's first letter is its MDC
            adrg = pd.factorize(pd.Index(uniques).astype(str).str[0])[0][adrg]
        caught &= adrg[stay] == adrg[following]
    if "readmission_plan_31d" in frame.columns:
        caught &= ~frame["readmission_plan_31d"].fillna(False).to_numpy(dtype=bool)[stay]
    flags = np.zeros(len(frame), dtype=bool)
    flags[stay[caught]] = True
    return pd.Series(flags & by_drg.to_numpy(dtype=bool), index=frame.index, dtype="boolean")


def _factor(rules: PaymentRules) -> float:
    return rules.readmission.earlier_factor if rules.readmission is not None else 1.0


def _outside_payment(frame: pd.DataFrame, rules: PaymentRules) -> pd.Series:
    """除外支付 in yuan: each outside column at its own ratio (the common ratio where none is given)."""
    item = rules.outside_drg
    total = pd.Series(0.0, index=frame.index)
    for column in item.columns:
        if column in frame.columns:
            total += frame[column].fillna(0.0).astype(float) * item.ratios.get(column, item.ratio)
    return total


def _patient_share(frame: pd.DataFrame, rules: PaymentRules, scheme: pd.Series) -> pd.Series:
    """What the patient pays of an insured case's charges (全自费 + 先自付 + 起付线 + the scheme's share of
    the rest); all the charges for payers outside the schemes; NaN when the payer is unknown."""
    if "insurance_type" not in frame.columns or not rules.schemes:
        return pd.Series(np.nan, index=frame.index)
    cost = frame["total_cost"].astype(float)
    zero = pd.Series(0.0, index=frame.index)
    self_funded = frame.get("cost_self_funded", zero).fillna(0.0).astype(float)
    first = frame.get("cost_first_self_paid", zero).fillna(0.0).astype(float)
    policy = cost - self_funded - first
    _raise_on(frame, policy < -1e-9, "cost_self_funded+cost_first_self_paid", "exceeds total_cost")
    by_name = {s.name: s for s in rules.schemes}
    deductible = scheme.map({n: s.deductible_yuan for n, s in by_name.items()}).astype(float)
    ratio = scheme.map({n: s.fund_ratio for n, s in by_name.items()}).astype(float)
    deducted = np.minimum(deductible, policy.clip(lower=0.0))
    share = self_funded + first + deducted + (policy - deducted) * (1.0 - ratio)
    return share.where(scheme.notna(), cost)


def _point_values(
    frame: pd.DataFrame, rules: PaymentRules, points: pd.Series, patient: pd.Series
) -> pd.Series:
    """Each case's point value: the year's given value or its budget / all points (the budget plus the
    patients' shares when the budget is the fund's alone)."""
    year = frame["discharge_date"].dt.year
    by_year = points.groupby(year).sum()
    patients = patient.where(points.notna(), 0.0).fillna(0.0).groupby(year).sum()
    values = {}
    for p in rules.point_values:
        if p.year not in by_year.index:
            continue
        if p.yuan is not None:
            values[p.year] = p.yuan
            continue
        budget = p.budget_yuan + (float(patients.get(p.year, 0.0)) if p.budget_of == "fund" else 0.0)
        values[p.year] = point_value_from_budget(budget, p.total_points or float(by_year.get(p.year, 0.0)))
    return year.map(values).astype(float)


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
    needed += [c for c in rules.outside_drg.columns if c not in OUTSIDE_COLUMNS]
    if rules.cost_to_charge is not None:
        needed += COST_CATEGORIES
    if rules.coefficients.hospitals:
        needed.append("hospital_id")
    if rules.readmission is not None and rules.readmission.earlier_factor != 1.0:
        needed += ["patient_id", "admission_date", "adrg"]
    if any(p.budget_of == "fund" for p in rules.point_values) and rules.method == "point":
        needed.append("insurance_type")
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise InputError(f"cannot price cases: missing columns {missing}")
    _raise_on(frame, frame["discharge_date"].isna(), "discharge_date", "is missing")
    _raise_on(frame, frame["los_days"].isna(), "los_days", "is missing")
    cost = frame["total_cost"]
    _raise_on(frame, cost.isna() | (cost < 0), "total_cost", "is missing or negative")
    if "insurance_type" in frame.columns and rules.schemes:
        _raise_on(frame, frame["insurance_type"].isna(), "insurance_type", "is missing")


def _raise_on(frame: pd.DataFrame, bad: pd.Series, field: str, problem: str) -> None:
    """A clear error naming the first bad row (index label) and field, and how many rows share it."""
    if bad.any():
        first = frame.index[np.flatnonzero(bad.to_numpy())[0]]
        raise InputError(f"row {first}: {field} {problem} ({int(bad.sum())} rows)")
