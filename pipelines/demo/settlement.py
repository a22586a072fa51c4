"""Insurer settlement of the as-coded abstracts: group with the real grouper, price with the city rules.

The hospital settles through the same rules every caselens user prices with (the embedded payment
rules): the city's published RW table (``rw_table.demo-region.csv``, calibrated on the region's
claims by ``pipelines.demo.region``; this big-city tertiary hospital is dearer than its region and
treats heavier cases), RW × base rate by the rules' dates (¥10,000, ¥10,500 from 2025-01-01), the
outlier rules, and negotiated drugs paid outside the DRG — once: the regional weights are calibrated on
cost net of them.
Who pays and how much is the rules' too: payers in the rules' insured schemes (employee and resident
medical insurance) are settled by the insurer, which pays the fund's share (``fund_payment``: the
DRG payment less what the patient pays of the charges: 全自费 and 先自付 items, the deductible and the
scheme's share of the rest); the patient pays ``patient_payment``. Payers outside the schemes
(全自费, commercial, 全公费, other) pay their charges and are not settled by the insurer. The 15-day
readmission rule sees the patient and the dates. Settlement runs in the month after discharge, so
stays discharged late in the period are not settled yet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from casemix.cases import CANONICAL_INPUT_COLUMNS
from casemix.engine import CasemixEngine
from contract.fields import COST_CATEGORIES

# What grouping output must be joined to for weights and prices (the rules may ask for cost columns).
PRICING_COLUMNS = (
    "department",
    "discharge_date",
    "los_days",
    "total_cost",
    "insurance_type",
    "cost_self_funded",
    "cost_first_self_paid",
    "patient_id",
    "admission_date",
    "admission_type",
    "readmission_plan_31d",
)
INPUT_COLUMNS = tuple(
    dict.fromkeys((*CANONICAL_INPUT_COLUMNS, *PRICING_COLUMNS, *COST_CATEGORIES, "cost_negotiated_drugs"))
)


def settle(
    cases: pd.DataFrame, engine: CasemixEngine, end: np.datetime64, rng: np.random.Generator
) -> pd.DataFrame:
    """settled_drg, insurer_payment, self_pay and settlement_date for ``cases`` (``INPUT_COLUMNS``), and
    ``drg``: the group of every abstract as coded, settled or not, grouped and priced by ``engine`` (the
    city's payment rules)."""
    groups = engine.group(cases)
    rules = engine.rules
    pricing = [
        *PRICING_COLUMNS,
        *rules.outside_drg.columns,
        *(COST_CATEGORIES if rules.cost_to_charge else ()),
    ]
    grouped = pd.concat([cases[list(dict.fromkeys(pricing))], groups[["status", "drg", "adrg"]]], axis=1)
    priced = engine.price(grouped)
    n = len(cases)
    discharged = cases["discharge_date"].to_numpy().astype("datetime64[D]")
    next_month = (discharged.astype("datetime64[M]") + 2).astype("datetime64[D]") - 1
    when = next_month - rng.integers(0, 20, n).astype("timedelta64[D]")
    settled = when < end
    by_insurer = settled & (priced["payment_method"] != "charges").to_numpy()
    fund = np.round(priced["fund_payment"].to_numpy(dtype=float), 2)
    patient = np.round(priced["patient_payment"].to_numpy(dtype=float), 2)
    return pd.DataFrame(
        {
            "settlement_date": pd.Series(np.where(settled, when, np.datetime64("NaT"))).astype(
                "datetime64[ns]"
            ),
            "settled_drg": np.where(by_insurer & (grouped["status"] == "grouped"), grouped["drg"], None),
            "insurer_payment": np.where(by_insurer, fund, np.where(settled, 0.0, np.nan)),
            "self_pay": np.where(settled, patient, np.nan),
            "drg": grouped["drg"].to_numpy(),
        },
        index=cases.index,
    )
