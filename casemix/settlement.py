"""The hospital's settlement as the insurer computes it: monthly prepayment (预拨) and the year's clearing
(清算), from the cases ``payment.price_cases`` priced.

A hospital-year's insured cases (those settled by DRG or by item, not at charges) give its DRG payment
due and its charges; their difference over the charges is the 结算差额率. The year-end rules of the
``[settlement]`` section then apply, in order:

1. 结余留用: of a surplus (payment above charges) the hospital keeps a share per slice of the surplus
   rate (e.g. all of it up to 10% of charges, half beyond); the rest is not paid;
2. 超支分担: of an overrun (charges above payment) the fund pays a share per slice of the overrun rate,
   out of a risk-adjustment reserve (风险调剂金) of ``risk_reserve_share`` of the year's fund payments
   of every hospital in the frame, pro-rated when the shares asked exceed it;
3. 质量保证金: ``quality_reserve_share`` of the fund's payment is withheld and returned in proportion to
   the hospital's quality score (out of 100);
4. review deductions (审核扣款): each case's ``review_deduction``;

and the fund's final payment less what was prepaid month by month (``prepay_share`` of each month's
fund payment, at the provisional point value under the point method) is what the clearing pays
(or, negative, claws back). 特病单议, 新技术除外 and the readmission rule are per-case rules of
``price_cases``. Every figure is a sum over cases, so it reconciles with the case list.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from casemix.payment import PaymentRules, Tier
from contract.errors import InputError

SETTLEMENT_COLUMNS: tuple[str, ...] = (
    "cases",
    "insured_cases",
    "charges",
    "drg_due",
    "balance",
    "balance_rate",
    "patient_share",
    "fund_due",
    "surplus_kept",
    "surplus_withheld",
    "overrun",
    "overrun_shared",
    "quality_withheld",
    "quality_returned",
    "review_deductions",
    "fund_final",
    "prepaid",
    "cleared",
    "hospital_income",
    "settled_margin",
)
SUMMED_COLUMNS: tuple[str, ...] = (
    "cases",
    "insured_cases",
    "charges",
    "drg_due",
    "patient_share",
    "fund_due",
    "review_deductions",
    "prepaid",
)
SETTLED_FROM: tuple[str, ...] = (
    "discharge_date",
    "total_cost",
    "drg_payment",
    "patient_payment",
    "fund_payment",
    "points",
    "point_value",
)


def tiered(amount: pd.Series, base: pd.Series, tiers: list[Tier], default: float) -> pd.Series:
    """The part of ``amount`` that the tiers' shares give, each share applying to the slice of
    ``amount`` between its lower and upper rate × ``base``; ``default`` (no tiers) applies to all."""
    if not tiers:
        return amount * default
    total = pd.Series(0.0, index=amount.index)
    lower = 0.0
    for tier in tiers:
        upper = base * tier.up_to if tier.up_to is not None else np.inf
        in_slice = (amount.clip(upper=upper) - base * lower).clip(lower=0.0)
        total += in_slice * tier.share
        lower = tier.up_to if tier.up_to is not None else lower
    return total


def monthly_prepayment(priced: pd.DataFrame, rules: PaymentRules) -> pd.DataFrame:
    """Per hospital and discharge month: insured cases, the fund payment due, the fund payment at the
    provisional point value (the point method prepays before the year's value is known) and the
    prepayment, ``prepay_share`` of it."""
    insured = _insured(priced)
    provisional = _provisional_payment(insured, rules) - insured["patient_payment"]
    if not rules.allow_negative_fund:
        provisional = provisional.clip(lower=0.0)
    frame = pd.DataFrame(
        {
            "hospital_id": _hospital(insured),
            "month": insured["discharge_date"].dt.to_period("M"),
            "cases": 1,
            "fund_due": insured["fund_payment"],
            "fund_provisional": provisional,
        }
    )
    table = frame.groupby(["hospital_id", "month"], sort=True).sum().reset_index()
    return table.assign(prepaid=table["fund_provisional"] * rules.settlement.prepay_share)


def settle_year(
    priced: pd.DataFrame, rules: PaymentRules, quality_scores: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """One row of ``SETTLEMENT_COLUMNS`` per hospital and discharge year.

    ``quality_scores`` maps hospital_id to the year's quality score out of 100 (default 100: the
    quality reserve is returned in full).
    """
    return clear_years(year_sums(priced, rules), rules, quality_scores).reset_index()


def year_sums(priced: pd.DataFrame, rules: PaymentRules) -> pd.DataFrame:
    """Per hospital and discharge year (the index), what the clearing adds up: ``SUMMED_COLUMNS``.

    Every column is a sum over cases, so sums of parts of a year (months settled, quarters forecast)
    add up to the year's."""
    insured = _insured(priced)
    keys = pd.DataFrame({"hospital_id": _hospital(priced), "year": priced["discharge_date"].dt.year})
    cases = keys.groupby(["hospital_id", "year"]).size().rename("cases")
    sums = pd.DataFrame(
        {
            "hospital_id": _hospital(insured),
            "year": insured["discharge_date"].dt.year,
            "insured_cases": 1,
            "charges": insured["total_cost"].astype(float),
            "drg_due": insured["drg_payment"],
            "patient_share": insured["patient_payment"],
            "fund_due": insured["fund_payment"],
            "review_deductions": insured.get("review_deduction", pd.Series(0.0, index=insured.index))
            .fillna(0.0)
            .astype(float),
        }
    )
    year = sums.groupby(["hospital_id", "year"]).sum()
    prepay = monthly_prepayment(priced, rules)
    prepaid = prepay.groupby([prepay["hospital_id"], prepay["month"].dt.year.rename("year")])["prepaid"].sum()
    table = pd.concat([cases, year], axis=1).fillna(0.0)
    table["insured_cases"] = table["insured_cases"].astype(int)
    table["prepaid"] = prepaid.reindex(table.index, fill_value=0.0)
    return table[list(SUMMED_COLUMNS)]


def clear_years(
    sums: pd.DataFrame,
    rules: PaymentRules,
    quality_scores: Mapping[str, float] | None = None,
    pooled_by: tuple[str, ...] = ("year",),
) -> pd.DataFrame:
    """The year-end clearing of ``year_sums``-like rows (an index with a ``hospital_id`` level): every
    ``SETTLEMENT_COLUMNS`` column. The risk reserve is shared among the rows with the same
    ``pooled_by`` index levels (the hospitals of a year; a simulated draw is a world of its own)."""
    rule = rules.settlement
    table = sums.copy()
    balance = table["drg_due"] - table["charges"]
    surplus, overrun = balance.clip(lower=0.0), (-balance).clip(lower=0.0)
    kept = tiered(surplus, table["charges"], rule.surplus_kept, 1.0)
    asked = tiered(overrun, table["charges"], rule.overrun_shared, 0.0)
    pool = list(pooled_by)
    reserve = rule.risk_reserve_share * table["fund_due"].groupby(level=pool).transform("sum")
    asked_all = asked.groupby(level=pool).transform("sum")
    shared = asked * np.minimum(1.0, reserve / asked_all.where(asked_all > 0, np.inf))
    fund_settled = table["fund_due"] - (surplus - kept) + shared
    withheld = rule.quality_reserve_share * fund_settled
    scores = table.index.get_level_values("hospital_id").map(dict(quality_scores or {})).astype(float)
    returned = withheld * np.nan_to_num(np.asarray(scores), nan=100.0) / 100.0
    fund_final = fund_settled - withheld + returned - table["review_deductions"]
    table = table.assign(
        balance=balance,
        balance_rate=balance / table["charges"].where(table["charges"] > 0),
        surplus_kept=kept,
        surplus_withheld=surplus - kept,
        overrun=overrun,
        overrun_shared=shared,
        quality_withheld=withheld,
        quality_returned=returned,
        fund_final=fund_final,
        cleared=fund_final - table["prepaid"],
        hospital_income=table["patient_share"] + fund_final,
    )
    table["settled_margin"] = table["hospital_income"] - table["charges"]
    return table[list(SETTLEMENT_COLUMNS)]


def expected_point_values(priced: pd.DataFrame, rules: PaymentRules, years: list[int]) -> dict[int, float]:
    """The point value to expect in future ``years`` under the point method: the year's budget over the
    points expected then, not last year's value carried forward.

    The points of the last 12 months of discharges grow at their growth over the 12 months before
    (flat with less history), compounded to the middle of each year, so a year in progress counts as
    a year. A year without a budget in the rules keeps the last budget given (or, where the last year's
    value was given, that value × the points of the last 12 months). A budget of the fund alone is
    topped up with the patients' shares, grown like the points.
    """
    if rules.method != "point":
        raise ValueError("expected point values are for the point method")
    insured = priced[priced["payment_method"] != "charges"]
    end = insured["discharge_date"].max()
    year_ago, two_years_ago = end - pd.DateOffset(years=1), end - pd.DateOffset(years=2)
    recent = insured["discharge_date"] > year_ago
    before = (insured["discharge_date"] > two_years_ago) & ~recent
    points, patients = insured.loc[recent, "points"].sum(), insured.loc[recent, "patient_payment"].sum()
    if not points > 0:
        raise InputError("no points in the last 12 months of discharges: cannot expect a point value")
    earlier = insured.loc[before, "points"].sum()
    covered = insured["discharge_date"].min() <= two_years_ago + pd.Timedelta(days=31)
    growth = points / earlier if covered and earlier > 0 else 1.0
    given = {p.year: p for p in rules.point_values}
    budgets = [p for p in rules.point_values if p.budget_yuan is not None and p.year <= end.year]
    latest = given.get(end.year)
    if (latest is not None and latest.yuan is not None) or not budgets:
        value = (
            latest.yuan if latest is not None and latest.yuan is not None else insured["point_value"].iloc[-1]
        )
        budget, of = float(value) * points, "total"
    else:
        last = max(budgets, key=lambda p: p.year)
        budget, of = float(last.budget_yuan), last.budget_of  # type: ignore[arg-type]
    middle = year_ago + (end - year_ago) / 2
    values = {}
    for year in years:
        entry = given.get(year)
        if entry is not None and entry.yuan is not None:
            values[year] = entry.yuan
            continue
        ahead = growth ** ((pd.Timestamp(year, 7, 1) - middle).days / 365.25)
        total, whose = (entry.budget_yuan, entry.budget_of) if entry is not None else (budget, of)
        total += patients * ahead if whose == "fund" else 0.0
        values[year] = total / (points * ahead)
    return values


def _insured(priced: pd.DataFrame) -> pd.DataFrame:
    """The columns settlement reads, for the cases the insurer settles (not priced at charges); they
    need their fund/patient split."""
    wanted = [c for c in (*SETTLED_FROM, "review_deduction", "hospital_id") if c in priced.columns]
    insured = priced.loc[priced["payment_method"] != "charges", wanted]
    missing = insured["fund_payment"].isna()
    if missing.any():
        raise InputError(
            f"row {insured.index[np.flatnonzero(missing.to_numpy())[0]]}: fund_payment is missing "
            "(settlement needs insurance_type and the rules' schemes to split fund and patient)"
        )
    return insured


def _hospital(frame: pd.DataFrame) -> pd.Series:
    """The hospital of each case; a store without hospital_id is one hospital."""
    if "hospital_id" in frame.columns:
        return frame["hospital_id"].fillna("").astype(str)
    return pd.Series("", index=frame.index, dtype=object)


def _provisional_payment(insured: pd.DataFrame, rules: PaymentRules) -> pd.Series:
    """Each case's payment at the provisional point value of its year (the final payment under the rate
    method or where no provisional value is given)."""
    if rules.method != "point":
        return insured["drg_payment"]
    provisional = {p.year: p.provisional_yuan for p in rules.point_values if p.provisional_yuan is not None}
    value = insured["discharge_date"].dt.year.map(provisional).astype(float).fillna(insured["point_value"])
    return insured["drg_payment"] + insured["points"] * (value - insured["point_value"])
