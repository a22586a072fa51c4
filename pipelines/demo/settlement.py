"""Insurer settlement of the as-coded abstracts: group with the real grouper, price with the city rules.

The hospital settles through the same rules every caselens user prices with (the embedded payment
rules): the city's published RW table (``rw_table.demo-region.csv``, calibrated on the region's
claims by ``pipelines.demo.region``; this big-city tertiary hospital is dearer than its region and
treats heavier cases), RW × base rate by the rules' dates (¥10,000, ¥10,500 from 2025-01-01), the
outlier rules, and negotiated drugs paid outside the DRG — once: the regional weights are calibrated on
cost net of them.
The insurer pays the DRG payment less the patient's self-paid share of the charges; self-paying
patients (payer 7) are not settled by the insurer. Settlement runs in the month after discharge, so
stays discharged late in the period are not settled yet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.casemix.cases import CANONICAL_INPUT_COLUMNS
from features.casemix.grouper import Grouper
from features.casemix.payment import PaymentRules, price_cases, weights_for_pricing
from pipelines.contract import COST_CATEGORIES
from pipelines.demo.patients import SELF_PAY_SHARE

INPUT_COLUMNS = (
    *CANONICAL_INPUT_COLUMNS,
    "department",
    "discharge_date",
    "los_days",
    "insurance_type",
    "total_cost",
    *COST_CATEGORIES,
    "cost_negotiated_drugs",
)
# What grouping output must be joined to for weights and prices (the rules may ask for cost columns).
PRICING_COLUMNS = ("department", "discharge_date", "los_days", "total_cost")
SELF_PAYING = 7


def settle(
    cases: pd.DataFrame,
    grouper: Grouper,
    end: np.datetime64,
    rng: np.random.Generator,
    rules: PaymentRules | None = None,
) -> pd.DataFrame:
    """settled_drg, insurer_payment, self_pay and settlement_date for ``cases`` (``INPUT_COLUMNS``), and
    ``drg``: the group of every abstract as coded, settled or not. ``rules`` default to the embedded
    payment rules."""
    groups = grouper.group_frame(cases)
    rules = rules or PaymentRules.load()
    pricing = [
        *PRICING_COLUMNS,
        *rules.outside_drg.columns,
        *(COST_CATEGORIES if rules.cost_to_charge else ()),
    ]
    grouped = pd.concat([cases[list(dict.fromkeys(pricing))], groups[["status", "drg", "adrg"]]], axis=1)
    weights = weights_for_pricing(grouped, rules)
    priced = price_cases(grouped, rules, weights)
    n = len(cases)
    discharged = cases["discharge_date"].to_numpy().astype("datetime64[D]")
    next_month = (discharged.astype("datetime64[M]") + 2).astype("datetime64[D]") - 1
    when = next_month - rng.integers(0, 20, n).astype("timedelta64[D]")
    settled = when < end
    share = cases["insurance_type"].map(SELF_PAY_SHARE).to_numpy()
    self_pay = np.round(cases["total_cost"].to_numpy() * share, 2)
    by_insurer = settled & (cases["insurance_type"].to_numpy() != SELF_PAYING)
    payment = np.round(np.maximum(priced["drg_payment"].to_numpy() - self_pay, 0.0), 2)
    return pd.DataFrame(
        {
            "settlement_date": pd.Series(np.where(settled, when, np.datetime64("NaT"))).astype(
                "datetime64[ns]"
            ),
            "settled_drg": np.where(by_insurer & (grouped["status"] == "grouped"), grouped["drg"], None),
            "insurer_payment": np.where(by_insurer, payment, np.where(settled, 0.0, np.nan)),
            "self_pay": np.where(settled, np.where(by_insurer, self_pay, cases["total_cost"]), np.nan),
            "drg": grouped["drg"].to_numpy(),
        },
        index=cases.index,
    )
