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

import contextlib
import functools
import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
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
from contract.fields import ADMISSION_TYPES, COST_CATEGORIES, INSURANCE_TYPES, coded_text

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

    def applies(self, frame: pd.DataFrame) -> np.ndarray:
        """Which cases the rule catches (a case without an admission type is not exempt)."""
        short = _numbers(frame["los_days"]) <= self.max_days
        if self.exempt_admission_types and "admission_type" in frame.columns:
            at = np.flatnonzero(short)  # (only the short stays' types matter)
            types = _Codes(frame["admission_type"], at)
            short[at] = ~types.take(types.among(self.exempt_admission_types), False)
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
    return pd.Series(_drg_cost(frame, rules), index=frame.index, name="drg_cost")


def price_cases(frame: pd.DataFrame, rules: PaymentRules, weights: pd.DataFrame) -> pd.DataFrame:
    """The grouped frame with the payment columns of ``PRICED_COLUMNS`` added.

    ``weights`` is a weight table (see ``casemix.weights``). Outlier and overrun are only
    defined for cases settled by DRG: they are missing for cases paid by item or at charges. Without
    an ``insurance_type`` column (or without schemes in the rules) the payer is unknown: every case is
    settled by DRG and the fund/patient split is missing. The optional columns ``cost_self_funded``
    (全自费), ``cost_first_self_paid`` (先自付), ``cost_new_technology`` and ``special_review`` are 0 /
    false when absent.

    One stay in hospital and a city's million go through the same code, on NumPy arrays: each column
    is read into an array once, text columns (DRG, status, payer) are factorised once and a value per
    distinct code (weight, coefficient, listing, scheme) is taken by code, so neither pandas'
    per-operation overhead (one row) nor repeated hashing of text (a million) dominates.
    """
    return _with_columns(frame, priced_columns(frame, rules, weights))


def priced_columns(frame: pd.DataFrame, rules: PaymentRules, weights: pd.DataFrame) -> dict[str, object]:
    """:func:`price_cases`' payment columns by name, without the frame around them (a caller reading
    one or two columns of a stay's price skips copying the grouped frame's)."""
    _check_input(frame, rules)
    cost = _floats(frame["total_cost"])
    inside = _drg_cost(frame, rules)
    outside_names = "+".join(rules.outside_drg.columns)
    _raise_on(frame, inside < 0, outside_names, "(paid outside the DRG) exceeds total_cost")
    drgs = _Codes(frame["drg"])
    by_code = _weights_by_code(weights, drgs)
    by_drg_table = {column: drgs.take(values, np.nan) for column, values in by_code.items()}
    rw = by_drg_table["rw"]
    scheme = _scheme(frame, rules)
    insured = (scheme >= 0) | ("insurance_type" not in frame.columns) | (not rules.schemes)
    short = rules.short_stay.applies(frame)
    reason, reasons = _by_item_reason(frame, rules, drgs, rw, short)
    charges = ~insured
    reason[charges] = -1
    by_drg = (reason < 0) & insured
    coefficient = _coefficients(frame, rules, drgs)

    year = _years(frame) if rules.method == "point" else None  # (point values are by year)
    base_rate, conversion = _unit_prices(frame, rules, year)
    unit = base_rate if rules.method == "rate" else rules.points_per_rw * conversion
    standard = rw * unit
    standard *= coefficient
    inside_pay, outlier = _inside_payment(
        frame, rules, by_drg_table, inside, standard, short, (reason, reasons), by_drg, (drgs, by_code["rw"])
    )
    readmitted, known = _readmitted(frame, rules, by_drg)
    if _factor(rules) != 1.0:
        inside_pay[readmitted] *= _factor(rules)
    outside_pay = _outside_payment(frame, rules)
    patient = _patient_share(frame, rules, scheme)

    if rules.method == "rate":
        points = point_value = conversion  # (NaN under the rate method)
        payment = inside_pay
        payment += outside_pay
        standard_paid = standard
    else:
        points = inside_pay + (outside_pay if rules.outside_drg.in_budget else 0.0)
        points /= conversion
        points[charges] = np.nan
        point_value = _point_values(rules, points, patient, year)
        payment = points * point_value
        if rules.outside_drg.in_budget:
            outside_pay /= conversion
            outside_pay *= point_value
        else:
            payment += outside_pay
        standard_paid = rw * rules.points_per_rw
        standard_paid *= coefficient
        standard_paid *= point_value
    # the arrays computed here are this call's own: the few cases set apart are set in place
    payment[charges] = cost[charges]
    outside_pay[charges] = 0.0
    fund = payment - patient
    if not rules.allow_negative_fund:
        fund[fund < 0.0] = 0.0  # (a missing fund stays missing)
    if rules.cost_to_charge is not None:
        estimated = _estimated_cost(frame, rules.cost_to_charge)
        margin_on_cost = payment - estimated
    else:  # (missing: the NaN column of the method not in use, not one more million NaNs)
        estimated = margin_on_cost = conversion if rules.method == "rate" else base_rate
    with np.errstate(divide="ignore", invalid="ignore"):
        cost_to_standard = inside / standard_paid
    return {
        "rw": rw,
        "scheme": coded_text([*(s.name for s in rules.schemes), None], scheme),
        "payment_method": coded_text(
            [rules.method, "by_item", "charges"], (~by_drg).astype(np.int8) + charges
        ),
        "by_item_reason": coded_text(reasons, reason),
        "base_rate": base_rate,
        "point_value": point_value,
        "standard_payment": standard_paid,
        "standard_cost": by_drg_table["mean_cost"],
        "standard_los": by_drg_table["mean_los"],
        "drg_cost": inside,
        "outlier": coded_text([*OUTLIERS, None], outlier),
        "readmitted": pd.arrays.BooleanArray(readmitted, ~known),
        "outside_payment": outside_pay,
        "points": points,
        "drg_payment": payment,
        "patient_payment": patient,
        "fund_payment": fund,
        "margin": payment - cost,
        "cost_to_standard": cost_to_standard,
        "overrun": pd.arrays.BooleanArray(inside > rules.overrun.threshold * standard_paid, ~by_drg),
        "estimated_cost": estimated,
        "margin_on_cost": margin_on_cost,
    }


def _with_columns(frame: pd.DataFrame, added: dict[str, object]) -> pd.DataFrame:
    """``frame.assign(**added)`` built in one step (assigning column by column cost more than pricing
    one row): a column already in ``frame`` (a frame priced before) is replaced where it stands, and
    ``frame``'s columns are copied, as ``assign`` does, unless copy-on-write makes that needless (under
    ``caselens group`` the copy of a million wide rows cost more than their pricing)."""
    if not frame.columns.is_unique:
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InputError(f"cannot price cases: repeated columns {repeated}")
    copy = pd.get_option("mode.copy_on_write") is not True
    return pd.DataFrame({**dict(frame.items()), **added}, index=frame.index, copy=copy)


OUTLIERS = ("normal", "high", "low")
# Reasons for paying by item besides the grouper's status (the status itself is the reason then).
BY_ITEM_REASONS = ("special_review", "ambiguous", "listed_drg", "no_weight", "long_stay", "short_stay")


class _Codes:
    """A column (or the ``rows`` of it) factorised once: a value per distinct entry (``per_code``) is
    spread to the rows by ``take``; a missing entry (code -1) takes the ``missing`` value."""

    def __init__(self, values: pd.Series, rows: np.ndarray | None = None) -> None:
        array = _values(values)
        codes, uniques = pd.factorize(array if rows is None else array[rows])
        self.codes = codes
        self.uniques = np.asarray(uniques, dtype=object)

    def take(self, per_code: np.ndarray, missing: object) -> np.ndarray:
        return np.append(per_code, np.array([missing], dtype=per_code.dtype))[self.codes]

    def among(self, values: list) -> np.ndarray:
        """Whether each distinct entry is one of ``values``."""
        return np.array([u in values for u in self.uniques], dtype=bool)

    def lookup(self, table: dict, default: float) -> np.ndarray:
        """``table[value]`` per row, ``default`` where the value is not in it (or missing)."""
        found = np.array([table.get(u, default) for u in self.uniques], dtype=np.float64)
        return self.take(found, default)


def _select(conditions: list[np.ndarray], choices: list, default: object) -> np.ndarray:
    """``np.select``: the choice of the first condition that holds, by ``np.where`` from the last one
    (``np.select``'s set-up costs more than the work on one row, and no less on a million)."""
    chosen = default
    for condition, choice in zip(reversed(conditions), reversed(choices), strict=True):
        chosen = np.where(condition, choice, chosen)
    return np.asarray(chosen)


def _values(values: pd.Series) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """The column's own array, without a Series around it (pandas' functions on a Series cost several
    times their work on one row) nor a conversion (Arrow text stays Arrow)."""
    return values.array if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) else values.to_numpy()


def _numeric(values: pd.Series) -> bool:
    """A NumPy number or flag column: converting it needs no look for pandas' missing values."""
    return isinstance(values.dtype, np.dtype) and values.dtype.kind in "fiub"


def _floats(values: pd.Series, fill: float = np.nan) -> np.ndarray:
    """The column as float64, missing values as ``fill``."""
    if not _numeric(values):
        return values.to_numpy(dtype=np.float64, na_value=fill)
    array = values.to_numpy(dtype=np.float64)
    if np.isnan(fill):
        return array
    missing = np.isnan(array)
    return np.where(missing, fill, array) if missing.any() else array


def _numbers(values: pd.Series) -> np.ndarray:
    """The column to compare with a number: integers as they are (a float copy of a million costs
    more than the comparison), anything else as ``_floats`` (missing as NaN, which compares false)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        return values.to_numpy()
    return _floats(values)


def _missing(values: pd.Series) -> np.ndarray:
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)  # (NumPy integers and flags have no missing value)
    if _numeric(values):
        return np.isnan(values.to_numpy(dtype=np.float64))
    return np.asarray(
        _values(values).isna()
        if isinstance(values.dtype, pd.api.extensions.ExtensionDtype)
        else pd.isna(values.to_numpy())
    )


def _flags(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A yes/no column as bool, missing (or an absent column) as false."""
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[column].to_numpy(dtype=bool, na_value=False)


def _dates(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype="datetime64[ns]")


def _years(frame: pd.DataFrame) -> np.ndarray:
    """The discharge year of each case (no date missing): the first year plus the new years begun by
    the discharge, found among the few new years' days (a calendar conversion of every date took
    three times as long)."""
    dates = _dates(frame, "discharge_date")
    if not len(dates):
        return np.empty(0, dtype=np.int64)
    first, last = np.array([dates.min(), dates.max()]).astype("datetime64[Y]").astype(np.int64)
    new_years = np.arange(first + 1, last + 1).astype("datetime64[Y]").astype("datetime64[ns]")
    return first + 1970 + np.searchsorted(new_years, dates, side="right")


def _by_year(years: np.ndarray, values: dict[int, float]) -> np.ndarray:
    """``values[year]`` per case (NaN for a year without one)."""
    if not len(years):
        return np.empty(0)
    first = int(years.min())
    table = np.full(int(years.max()) - first + 1, np.nan)
    for year, value in values.items():
        if first <= year < first + len(table):
            table[year - first] = value
    return table[years - first]


def _weights_by_code(weights: pd.DataFrame, drgs: _Codes) -> dict[str, np.ndarray]:
    """The weight table's RW, average cost and stay (those it has) of each distinct DRG, NaN for a DRG
    it lacks: one look-up per distinct DRG."""
    position = _positions(weights.index, drgs.uniques)
    return {
        column: np.append(weights[column].to_numpy(np.float64, na_value=np.nan), np.nan)[position]
        for column in ("rw", "mean_cost", "mean_los")
        if column in weights.columns
    }


def _drg_cost(frame: pd.DataFrame, rules: PaymentRules) -> np.ndarray:
    columns = [c for c in rules.outside_drg.columns if c in frame.columns or c not in OUTSIDE_COLUMNS]
    inside = _floats(frame["total_cost"])
    for column in columns:
        inside = inside - _floats(frame[column], fill=0.0)
    return inside


def _scheme(frame: pd.DataFrame, rules: PaymentRules) -> np.ndarray:
    """The position in ``rules.schemes`` of the scheme settling each case; -1 for payers outside them
    (or an unknown payer)."""
    if "insurance_type" not in frame.columns or not rules.schemes:
        return np.full(len(frame), -1)
    position = {t: i for i, s in enumerate(rules.schemes) for t in s.insurance_types}
    payers = _Codes(frame["insurance_type"])
    return payers.take(np.array([position.get(u, -1) for u in payers.uniques], dtype=np.intp), -1)


def _positions(index: pd.Index, keys: np.ndarray) -> np.ndarray:
    """Where each key is in ``index`` (unique), -1 where it is not: a scalar look-up per distinct key
    is cheaper than ``get_indexer`` wrapping the keys in an Index (one row), and there are few keys."""
    if not index.is_unique:
        raise InputError("the weight table lists a DRG more than once")
    found = np.full(len(keys), -1, dtype=np.int64)
    for at, key in enumerate(keys):
        with contextlib.suppress(KeyError):
            found[at] = index.get_loc(key)
    return found


def _by_item_reason(
    frame: pd.DataFrame, rules: PaymentRules, drgs: _Codes, rw: np.ndarray, short: np.ndarray
) -> tuple[np.ndarray, list[str | None]]:
    """Why a case is paid by item, as a position in the reasons returned (-1, which is None, when it is
    paid by DRG); the first reason that applies wins. ``short``: the short-stay rule catches it."""
    item = rules.by_item
    los = _numbers(frame["los_days"])
    long_days = rules.long_stay.above_days if rules.long_stay.above_days is not None else np.inf
    marker = item.ambiguous_marker
    ambiguous = np.array([bool(marker) and marker in str(d) for d in drgs.uniques], dtype=bool)
    status = _Codes(frame["status"])
    applies = [
        status.take(status.among(item.statuses), False),
        _flags(frame, "special_review") if item.special_review else np.zeros(len(frame), dtype=bool),
        drgs.take(ambiguous, False),
        drgs.take(drgs.among(item.drgs), False),
        np.isnan(rw),
        los > long_days,
        short & (rules.short_stay.pay == "by_item"),
    ]
    first = len(BY_ITEM_REASONS)
    reason = np.full(len(frame), -1, dtype=np.int16)
    at = np.flatnonzero(
        functools.reduce(np.logical_or, applies)
    )  # (few are paid by item: choose on their rows)
    reason[at] = _select([a[at] for a in applies], [first + status.codes[at], *range(first)], default=-1)
    return reason, [*BY_ITEM_REASONS, *status.uniques, None]


def _coefficients(frame: pd.DataFrame, rules: PaymentRules, drgs: _Codes) -> np.ndarray | float:
    """机构系数 × the DRG's coefficient, 1.0 where the rules give none (a plain 1.0 when they give none at
    all: no array of ones to multiply a million standards by)."""
    found = rules.coefficients
    if not found.drgs and not found.hospitals:
        return 1.0
    drg = drgs.take(np.array([found.drgs.get(d, 1.0) for d in drgs.uniques], dtype=np.float64), 1.0)
    if not found.hospitals:
        return drg
    return drg * _Codes(frame["hospital_id"]).lookup(found.hospitals, 1.0)


def _unit_prices(
    frame: pd.DataFrame, rules: PaymentRules, year: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Base rate in force for each case (rate method) or the yuan per point at which yuan amounts become
    points (point method: ``year`` is each case's discharge year); NaN for the method not in use."""
    nan = np.full(len(frame), np.nan)
    if rules.method == "rate":
        rates = sorted(rules.base_rates, key=lambda r: r.effective_from)
        starts = np.array([r.effective_from for r in rates], dtype="datetime64[ns]")
        position = np.searchsorted(starts, _dates(frame, "discharge_date"), side="right")
        position -= 1
        _raise_on(
            frame,
            position < 0,
            "discharge_date",
            f"is before the first base rate ({rates[0].effective_from})",
        )
        return np.array([r.yuan for r in rates])[position], nan
    values = {p.year: p for p in rules.point_values}
    _raise_on(frame, ~np.isin(year, list(values)), "discharge_date", "falls in a year with no point value")
    return nan, _by_year(year, {y: rules.point_conversion_yuan or p.yuan for y, p in values.items()})


def _inside_payment(
    frame: pd.DataFrame,
    rules: PaymentRules,
    by_drg_table: dict[str, np.ndarray],
    inside: np.ndarray,
    standard: np.ndarray,
    short: np.ndarray,
    reasons: tuple[np.ndarray, np.ndarray],
    by_drg: np.ndarray,
    weights: tuple[_Codes, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Payment for the cost inside the DRG (in yuan, before any conversion to points), and the outlier
    class of each case (a position in ``OUTLIERS``, -1 when it is not settled by DRG); ``by_drg_table``
    is the weight table's columns by case, ``short`` whether the short-stay rule catches it,
    ``reasons`` why it is paid by item (see ``_by_item_reason``), ``by_drg`` whether it is paid by DRG
    (cases at charges are neither), ``weights`` the DRG codes and the RW of each distinct DRG.

    The standard is every case's payment but for the few outliers and cases paid by item: those are
    computed on their rows alone and put in place, highest precedence last (per diem, by item, then
    the outliers), rather than every formula computed for every case and chosen from."""
    outliers = rules.outliers
    if outliers.base == "standard":
        base = standard
    else:
        base = by_drg_table.get("mean_cost", np.full(len(frame), np.nan))
        _raise_on(
            frame,
            by_drg & np.isnan(base),
            "standard_cost",
            "(the DRG's mean_cost in the weight table) is missing; outliers.base = 'drg_mean_cost' needs it",
        )
    high_threshold, low_threshold = _band_multiples(outliers, *weights)
    high_threshold *= base
    low_threshold *= base
    high = by_drg & (inside > high_threshold)
    low = by_drg & ~high & (inside < low_threshold)
    if rules.short_stay.pay == "low":
        low |= by_drg & ~high & short
    outlier = by_drg.astype(np.int8) - 1
    outlier[high] = OUTLIERS.index("high")
    outlier[low] = OUTLIERS.index("low")

    pay = standard.copy()
    at = np.flatnonzero(high)
    pay[at] = standard[at] + (inside[at] - high_threshold[at]) * outliers.high.ratio
    at = np.flatnonzero(low)
    pay[at] = inside[at] * outliers.low.ratio
    if outliers.low.cap_at_standard:
        pay[at] = np.fmin(pay[at], standard[at])  # (no cap where the standard is missing)
    reason, labels = reasons
    ratios = np.array([rules.by_item.ratio_for(r) for r in labels[:-1]])
    at = np.flatnonzero(reason >= 0)
    pay[at] = inside[at] * ratios[reason[at]]
    long = rules.long_stay
    if long.pay == "per_diem":
        at = at[reason[at] == BY_ITEM_REASONS.index("long_stay")]
        pay[at] = _numbers(frame["los_days"])[at] * (long.per_diem_yuan or 0.0)
    return pay, outlier


def _band_multiples(outliers: Outliers, drgs: _Codes, rw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The high and low multiples of each case's RW band: the band is found per distinct DRG (``rw``
    by code) and spread by code; a DRG without a weight is in the first band."""
    bands = outliers.bands
    side = "left" if outliers.rw_upper_inclusive else "right"
    band = np.searchsorted([b.rw_upper for b in bands[:-1]], np.where(np.isnan(rw), 0.0, rw), side=side)
    high = np.array([b.high_multiple for b in bands])
    low = np.array([b.low_multiple for b in bands])
    return drgs.take(high[band], high[0]), drgs.take(low[band], low[0])


def _readmitted(
    frame: pd.DataFrame, rules: PaymentRules, by_drg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stays settled by DRG that the readmission rule catches: the same patient is admitted again at
    the same hospital, for the same ADRG or MDC, within the rule's days of this discharge, unplanned;
    and whether that is known (not when the rules have no such rule or the frame cannot tell: no
    patient_id/admission_date).

    Only stays of a patient (at a hospital) with another stay can be caught, so only those are sorted
    and compared: most patients have one stay, and the sort was most of the pricing of a million."""
    rule = rules.readmission
    flags = np.zeros(len(frame), dtype=bool)
    if rule is None or not {"patient_id", "admission_date"} <= set(frame.columns):
        return flags, flags
    known = np.ones(len(frame), dtype=bool)
    if len(frame) < 2:  # (one stay is followed by none)
        return flags, known
    patient = _id_codes(frame["patient_id"])  # -1 where missing: links no stays
    rows = _repeated(patient)
    key = patient[rows]
    if "hospital_id" in frame.columns and len(rows) and not _one_id(frame["hospital_id"]):
        hospital = pd.factorize(_values(frame["hospital_id"])[rows])[0]
        key = np.where(hospital >= 0, key * (int(hospital.max()) + 1) + hospital, -1)
        again = _repeated(key)
        rows, key = rows[again], key[again]
    if not len(rows):
        return flags, known
    admitted = _dates(frame, "admission_date").view(np.int64)[rows]
    discharged = _dates(frame, "discharge_date").view(np.int64)[rows]
    order = _sorted_stays(key, admitted, discharged)
    stay, following = order[:-1], order[1:]
    # each test on the pairs the tests before kept: few stays are followed within days
    pair = np.flatnonzero(key[stay] == key[following])
    stay, following = stay[pair], following[pair]
    gap_days = (admitted[following] - discharged[stay]) / 86_400e9
    near = (gap_days >= 0) & (gap_days <= rule.within_days)
    stay, following = rows[stay[near]], rows[following[near]]
    if rule.same != "any":
        stay = stay[_same_condition(frame, rule.same, stay, following)]
    flags[stay[~_flags(frame, "readmission_plan_31d")[stay]]] = True
    return flags & by_drg, known


def _same_condition(frame: pd.DataFrame, same: str, stay: np.ndarray, following: np.ndarray) -> np.ndarray:
    """Whether each stay and its following stay (rows of ``frame``) share the ADRG (``same`` "adrg") or
    the MDC ("mdc"); two missing ADRGs count as the same."""
    adrg, uniques = pd.factorize(_values(frame["adrg"])[np.concatenate([stay, following])])
    if same == "mdc":  # an ADRG code's first letter is its MDC (a missing ADRG: none)
        mdc = pd.factorize(pd.Index(uniques).astype(str).str[0])[0]
        adrg = np.where(adrg >= 0, mdc[adrg], -1)
    return adrg[: len(stay)] == adrg[len(stay) :]


def _sorted_stays(key: np.ndarray, admitted: np.ndarray, discharged: np.ndarray) -> np.ndarray:
    """The stable order by patient (and hospital) ``key``, then admission, then discharge.

    Where they fit in 63 bits, the key, the admission, the stay's length (which orders discharges of
    one admission as the discharge does) and the position are packed in one integer and its values
    sorted (``np.sort`` is vectorised: 5 ms where ``np.lexsort`` took 210 ms on half a million stays);
    dates count in days when they are whole days, as in an abstract. Otherwise ``np.lexsort``."""
    day = 86_400 * 10**9
    unit = day if not (admitted % day).any() and not (discharged % day).any() else 1
    days = (admitted - admitted.min()) // unit
    length = (discharged - admitted) // unit
    length -= length.min()
    widths = [int(v.max()).bit_length() for v in (days, length)]
    position = (len(key) - 1).bit_length()
    if int(key.max()).bit_length() + sum(widths) + position > 63:
        return np.lexsort((discharged, admitted, key))
    packed = key
    for values, width in ((days, widths[0]), (length, widths[1]), (np.arange(len(key)), position)):
        packed = (packed << width) | values
    return np.sort(packed) & ((1 << position) - 1)


def _id_codes(ids: pd.Series) -> np.ndarray:
    """Codes of an id column: equal exactly where the ids are, -1 where missing, non-negative and under
    4 × the number of ids (so ``np.bincount`` counts them), as ``pd.factorize``'s codes are.

    Hashing a million patient ids was a quarter of pricing a million stays (0.11 s). Ids that are
    64-bit integers as they stand (see ``_fixed_width_keys``) need no hashing: digits are their number
    (less the smallest), when that is dense enough (0.02 s); other such keys are numbered by sorting
    them (0.05 s). Other ids are factorised."""
    keys = _fixed_width_keys(_values(ids))
    if keys is None:
        return pd.factorize(_values(ids))[0]
    numbers = _decimal(keys)
    if numbers is not None:
        numbers -= numbers.min()
        if numbers.max() < 4 * len(numbers):
            return numbers
    order = np.argsort(keys)
    ordered = keys[order]
    new = np.empty(len(keys), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    numbered = np.cumsum(new)
    numbered -= 1
    codes = np.empty(len(keys), dtype=np.int64)
    codes[order] = numbered
    return codes


def _one_id(ids: pd.Series) -> bool:
    """Whether an id column holds one id throughout, none missing (a hospital's own file), told from
    Arrow ids' bytes without factorising them; False when it cannot tell."""
    keys = _fixed_width_keys(_values(ids))
    return keys is not None and bool((keys == keys[0]).all())


def _decimal(keys: np.ndarray) -> np.ndarray | None:
    """The number each key's 8 bytes write in ASCII digits (first byte first); None unless all are
    digits."""
    digits = keys.view(np.uint8).reshape(-1, 8) - np.uint8(ord("0"))
    if (digits > 9).any():
        return None
    number = np.zeros(len(keys), dtype=np.int64)
    for column in digits.T:
        number *= 10
        number += column
    return number


def _fixed_width_keys(values: np.ndarray | pd.api.extensions.ExtensionArray) -> np.ndarray | None:
    """Arrow text ids, none missing and all of one width (in bytes), as 64-bit integers equal exactly
    where the ids are: each id's bytes when it has 8 or fewer (after ASCII zeros to make 8), else its
    last 8 bytes when the bytes before them are the same in every id (a shared prefix, as in
    "P00012345"). None for other ids."""
    if not hasattr(values, "__arrow_array__"):
        return None
    text = pa.array(values)
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)) or text.null_count:
        return None
    n = len(text)
    if not n:
        return None
    offset_type = np.dtype(np.int64 if pa.types.is_large_string(text.type) else np.int32)
    offsets = np.frombuffer(text.buffers()[1], offset_type, n + 1, text.offset * offset_type.itemsize)
    start, width = int(offsets[0]), int(offsets[1] - offsets[0])
    if int(offsets[-1]) - start != width * n or (np.diff(offsets) != width).any():
        return None
    if width <= 8:
        padded = np.full((n, 8), ord("0"), dtype=np.uint8)
        if width:  # (empty ids have no data buffer to read)
            padded[:, 8 - width :] = np.frombuffer(text.buffers()[2], np.uint8, width * n, start).reshape(
                n, width
            )
        return padded.view(np.uint64).ravel()
    data = np.frombuffer(text.buffers()[2], np.uint8, width * n, start).reshape(n, width)
    prefix = data[:, : width - 8]
    if (prefix != prefix[0]).any():
        return None
    return np.ndarray((n,), np.uint64, text.buffers()[2], start + width - 8, (width,)).copy()


def _repeated(codes: np.ndarray) -> np.ndarray:
    """The positions of the codes (not missing, -1) that occur more than once."""
    present = codes >= 0
    if present.all():  # (no id missing: no copy of the present ones)
        return np.flatnonzero((np.bincount(codes) > 1)[codes])
    counts = np.bincount(codes[present])
    present[present] = counts[codes[present]] > 1
    return np.flatnonzero(present)


def _factor(rules: PaymentRules) -> float:
    return rules.readmission.earlier_factor if rules.readmission is not None else 1.0


def _outside_payment(frame: pd.DataFrame, rules: PaymentRules) -> np.ndarray:
    """除外支付 in yuan: each outside column at its own ratio (the common ratio where none is given)."""
    item = rules.outside_drg
    total = None
    for column in item.columns:
        if column in frame.columns:
            paid = _floats(frame[column], fill=0.0) * item.ratios.get(column, item.ratio)
            total = paid if total is None else total + paid
    return total if total is not None else np.zeros(len(frame))


def _patient_share(frame: pd.DataFrame, rules: PaymentRules, scheme: np.ndarray) -> np.ndarray:
    """What the patient pays of an insured case's charges (全自费 + 先自付 + 起付线 + the scheme's share of
    the rest); all the charges for payers outside the schemes; NaN when the payer is unknown."""
    if "insurance_type" not in frame.columns or not rules.schemes:
        return np.full(len(frame), np.nan)
    cost = _floats(frame["total_cost"])
    zero = np.zeros(len(frame))
    self_funded = _floats(frame["cost_self_funded"], 0.0) if "cost_self_funded" in frame.columns else zero
    first = _floats(frame["cost_first_self_paid"], 0.0) if "cost_first_self_paid" in frame.columns else zero
    policy = cost - self_funded
    policy -= first
    _raise_on(frame, policy < -1e-9, "cost_self_funded+cost_first_self_paid", "exceeds total_cost")
    deductible = np.array([*(s.deductible_yuan for s in rules.schemes), np.nan])
    patients_ratio = np.array([*(1.0 - s.fund_ratio for s in rules.schemes), np.nan])
    # self_funded + first + deducted + (policy - deducted) × the patient's ratio, in place and each
    # scheme's figure taken by case only when used (a million cases: each array is 8 MB to write)
    deducted = np.maximum(policy, 0.0)
    np.minimum(deductible[scheme], deducted, out=deducted)
    share = self_funded + first
    share += deducted
    policy -= deducted
    policy *= patients_ratio[scheme]
    share += policy
    outside = scheme < 0
    share[outside] = cost[outside]
    return share


def _point_values(
    rules: PaymentRules, points: np.ndarray, patient: np.ndarray, year: np.ndarray
) -> np.ndarray:
    """Each case's point value (``year`` its discharge year): the year's given value or its budget / all
    points (the budget plus the patients' shares when the budget is the fund's alone)."""
    priced = ~np.isnan(points)
    values = {}
    for p in rules.point_values:
        in_year = year == p.year
        if not in_year.any():
            continue
        if p.yuan is not None:
            values[p.year] = p.yuan
            continue
        patients = float(np.nansum(patient[in_year & priced])) if p.budget_of == "fund" else 0.0
        total = p.total_points or float(np.nansum(points[in_year]))
        values[p.year] = point_value_from_budget(p.budget_yuan + patients, total)
    return _by_year(year, values)


def _estimated_cost(frame: pd.DataFrame, ratios: CostToCharge) -> np.ndarray:
    """True cost estimated from charges by cost-to-charge ratios."""
    departments = _Codes(frame["department"]) if ratios.departments else None
    total = np.zeros(len(frame))
    for category in COST_CATEGORIES:
        fallback = ratios.categories.get(category, ratios.default)
        own = {d: r[category] for d, r in ratios.departments.items() if category in r}
        ratio = departments.lookup(own, fallback) if departments is not None else fallback
        total = total + _floats(frame[category]) * ratio
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
    _raise_on(frame, np.isnat(_dates(frame, "discharge_date")), "discharge_date", "is missing")
    _raise_on(frame, _missing(frame["los_days"]), "los_days", "is missing")
    cost = _floats(frame["total_cost"])
    _raise_on(frame, np.isnan(cost) | (cost < 0), "total_cost", "is missing or negative")
    if "insurance_type" in frame.columns and rules.schemes:
        _raise_on(frame, _missing(frame["insurance_type"]), "insurance_type", "is missing")


def _raise_on(frame: pd.DataFrame, bad: np.ndarray, field: str, problem: str) -> None:
    """A clear error naming the first bad row (index label) and field, and how many rows share it."""
    if bad.any():
        first = frame.index[np.flatnonzero(bad)[0]]
        raise InputError(f"row {first}: {field} {problem} ({int(bad.sum())} rows)")
