"""A grouped frame reaching every pricing rule's branch, the rule variants it is priced under, and the
stored expectations of ``price_cases`` on them (``tests/data/pricing/``).

The expectations were written by the pricing code as it was before pricing moved from pandas Series
chains to NumPy arrays, so the equivalence test pins behaviour, not a re-statement of it. Regenerate
them (``.venv/bin/python -m tests.casemix.pricing_cases``) only when a rule is meant to change, and
say so in the commit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from casemix.payment import (
    DEFAULT_RULES,
    POINT_CITY_RULES,
    PRICED_COLUMNS,
    CostToCharge,
    PaymentRules,
    price_cases,
)
from contract.fields import COST_CATEGORIES, TEXT

FIXTURES = Path(__file__).parents[1] / "data" / "pricing"
N_CASES = 1500
# RW on and around the default bands' edges (1.0, 2.0), 歧义组 (FQY), a DRG listed for by-item payment
# in one variant (RE19) and one the weight table lacks (ZZ19: no weight).
DRGS = ["GZ15", "FM19", "AA19", "FR29", "FM29", "ES23", "BR25", "IC29", "RE19", "FQY", "ZZ19"]
RWS = [0.5, 1.5, 4.0, 1.0, 2.0, 0.8, 2.6, 1.2, 0.9, 1.1]
# optional columns priced as 0 / false when absent: the ``bare`` variant drops them
OPTIONAL = [
    "insurance_type",
    "special_review",
    "admission_type",
    "cost_self_funded",
    "cost_first_self_paid",
    "cost_new_technology",
    "readmission_plan_31d",
]


def weights() -> pd.DataFrame:
    """A weight table: RW, average cost (differs from the standard) and stay per DRG."""
    rw = np.array(RWS)
    return pd.DataFrame(
        {"rw": rw, "mean_cost": rw * 11_500.0, "mean_los": 3.0 + 4.0 * rw},
        index=pd.Index(DRGS[:-1], name="drg", dtype=object),
    )


def cases(n: int = N_CASES, seed: int = 16) -> pd.DataFrame:
    """``n`` grouped stays over 2023–2025 with the canonical store's dtypes: statuses, DRGs in every band,
    short/long/day-case stays, costs from 2% to 5× the standard, payers in and out of the schemes, the
    optional cost columns partly missing, and patients with stays days apart (readmissions)."""
    rng = np.random.default_rng(seed)
    status = rng.choice(np.array(["grouped", "ungroupable", "invalid"], dtype=object), n, p=[0.9, 0.06, 0.04])
    drg = np.array(DRGS, dtype=object)[rng.integers(0, len(DRGS), n)]
    drg = np.where(status == "grouped", drg, "0000").astype(object)
    adrg = np.array([d[:3] if d != "0000" else "00" for d in drg], dtype=object)
    adrg[rng.random(n) < 0.1] = "FM1"  # some ADRGs shared across DRGs (same MDC F, different ADRG)
    rw = pd.Series(drg).map(dict(zip(DRGS, RWS, strict=False))).fillna(1.0).to_numpy()
    total = np.round(rw * 10_000.0 * np.exp(rng.uniform(np.log(0.02), np.log(5.0), n)), 2)
    total[rng.random(n) < 0.01] = 0.0
    los = rng.choice(np.array([0, 1, 2, 3, 5, 8, 14, 30, 60, 61, 90]), n)
    patients = rng.integers(0, n // 3, n)
    hospital = rng.choice(np.array(["H1", "H2", "H3"], dtype=object), n, p=[0.6, 0.3, 0.1])
    discharge = np.datetime64("2023-01-05") + rng.integers(0, 3 * 365 - 10, n).astype("timedelta64[D]")
    # a third of the stays follow the same patient's previous stay by 0–30 days, mostly at the same
    # hospital for the same DRG
    order = np.argsort(patients, kind="stable")
    follow, same = rng.random(n) < 0.35, rng.random(n) < 0.7
    for a, b in itertools.pairwise(order):
        if patients[a] == patients[b] and follow[b]:
            gap = rng.integers(0, 31)
            discharge[b] = discharge[a] + np.timedelta64(int(gap + los[b]), "D")
            if same[b]:
                hospital[b], status[b], drg[b], adrg[b] = hospital[a], status[a], drg[a], adrg[a]
    discharge = np.minimum(discharge, np.datetime64("2025-12-31"))
    share = rng.dirichlet(np.ones(len(COST_CATEGORIES)), n)
    frame = pd.DataFrame(
        {
            "hospital_id": hospital,
            "department": rng.choice(np.array(["心内科", "骨科", "普外科", "儿科"], dtype=object), n),
            "status": status,
            "drg": drg,
            "adrg": adrg,
            "admission_date": pd.to_datetime(discharge - los.astype("timedelta64[D]")).as_unit("ns"),
            "discharge_date": pd.to_datetime(discharge).as_unit("ns"),
            "los_days": los.astype(np.int64),
            "admission_type": pd.array(rng.choice([1, 2, 3, None], n, p=[0.5, 0.3, 0.15, 0.05]), "Int64"),
            "patient_id": pd.Series(patients).map("P{:05d}".format).astype(object),
            "insurance_type": rng.choice(
                np.array([1, 2, 3, 4, 5, 6, 7, 9]), n, p=[0.4, 0.3, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
            ),
            "readmission_plan_31d": pd.array(
                rng.choice([True, False, None], n, p=[0.1, 0.8, 0.1]), "boolean"
            ),
            "special_review": pd.array(rng.choice([True, False, None], n, p=[0.04, 0.86, 0.1]), "boolean"),
            "total_cost": total,
            **{c: total * share[:, i] for i, c in enumerate(COST_CATEGORIES)},
        }
    )
    frame["cost_negotiated_drugs"] = np.where(rng.random(n) < 0.3, frame["cost_western_drugs"], 0.0)
    frame.loc[rng.random(n) < 0.05, "cost_negotiated_drugs"] = np.nan
    frame["cost_new_technology"] = np.where(rng.random(n) < 0.1, 0.2 * frame["cost_treatment"], 0.0)
    frame["cost_self_funded"] = np.where(rng.random(n) < 0.5, 0.05 * total, 0.0)
    frame["cost_first_self_paid"] = np.where(rng.random(n) < 0.5, 0.1 * total, np.nan)
    return frame.set_axis(pd.RangeIndex(1000, 1000 + n))


def _update(rules: PaymentRules, **sections: dict) -> PaymentRules:
    data = rules.model_dump()
    for name, update in sections.items():
        data[name] = (
            {**data[name], **update}
            if isinstance(data.get(name), dict) and isinstance(update, dict)
            else update
        )
    return PaymentRules.model_validate(data)


def _rate_extras() -> PaymentRules:
    """The default rules with every rule the shipped file leaves off switched on."""
    rules = PaymentRules.load(DEFAULT_RULES)
    return _update(
        rules,
        coefficients={"hospitals": {"H1": 1.05, "H2": 0.95}, "drgs": {"GZ15": 0.9, "FM29": 1.1}},
        by_item={"drgs": ["RE19"], "ratios": {"ambiguous": 0.8, "listed_drg": 0.9, "long_stay": 0.95}},
        short_stay={"max_days": 1, "pay": "low", "exempt_admission_types": []},
        long_stay={"above_days": 60, "pay": "per_diem", "per_diem_yuan": 800.0},
        outliers={
            **rules.outliers.model_dump(),
            "base": "drg_mean_cost",
            "rw_upper_inclusive": False,
            "low": {"ratio": 0.9, "cap_at_standard": False},
            "high": {"ratio": 0.8},
        },
        outside_drg={
            "columns": ["cost_negotiated_drugs", "cost_new_technology"],
            "ratios": {"cost_new_technology": 0.7},
        },
        readmission={"within_days": 10, "same": "mdc", "earlier_factor": 0.5},
        allow_negative_fund=True,
        cost_to_charge=CostToCharge(
            default=0.8,
            categories={"cost_western_drugs": 0.95, "cost_consumables": 0.9},
            departments={"骨科": {"cost_consumables": 0.7, "cost_treatment": 0.6}},
        ).model_dump(),
    )


def _point_extras() -> PaymentRules:
    """The point-city rules with a given point value, a fund's budget and outside payment off budget."""
    rules = PaymentRules.load(POINT_CITY_RULES)
    return _update(
        rules,
        point_values=[
            {"year": 2023, "yuan": 92.0},
            {"year": 2024, "budget_yuan": 3.0e7, "budget_of": "fund"},
            {"year": 2025, "budget_yuan": 2.5e7},
        ],
        outside_drg={"in_budget": False, "ratio": 0.9},
        readmission={"within_days": 20, "same": "any", "earlier_factor": 0.6},
        allow_negative_fund=False,
        short_stay={"max_days": 2, "pay": "by_item", "exempt_admission_types": [3]},
        long_stay={"above_days": 60, "pay": "by_item"},
        by_item={"special_review": False, "ratio": 0.95},
        outliers={
            **rules.outliers.model_dump(),
            "base": "standard",
            "low": {"ratio": 1.0, "cap_at_standard": True},
        },
    )


def _bare() -> PaymentRules:
    """Default rules without schemes or a readmission rule (priced on a frame without optional columns)."""
    return _update(PaymentRules.load(DEFAULT_RULES), schemes=[], readmission=None)


def _dates() -> PaymentRules:
    """Default rules with a third base rate mid-2024 (the rate looked up by discharge date)."""
    rules = PaymentRules.load(DEFAULT_RULES)
    rates = [*rules.model_dump()["base_rates"], {"effective_from": date(2024, 7, 1), "yuan": 10_200.0}]
    return _update(rules, base_rates=rates)


VARIANTS: dict[str, Callable[[], PaymentRules]] = {
    "default": lambda: PaymentRules.load(DEFAULT_RULES),
    "point_city": lambda: PaymentRules.load(POINT_CITY_RULES),
    "rate_extras": _rate_extras,
    "point_extras": _point_extras,
    "bare": _bare,
    "dates": _dates,
}


def variant_cases(name: str) -> pd.DataFrame:
    """The stored frame (as ``cases`` built it), without the optional columns for ``bare``."""
    frame = pd.read_parquet(FIXTURES / "cases.parquet")
    return frame.drop(columns=OPTIONAL) if name == "bare" else frame


def priced(name: str) -> pd.DataFrame:
    """The priced columns of the variant's frame under its rules."""
    return price_cases(variant_cases(name), VARIANTS[name](), weights())[list(PRICED_COLUMNS)]


def expected(name: str) -> pd.DataFrame:
    """The stored pricing; its text columns, written when ``price_cases`` gave Python objects, in the
    Arrow-backed dtype it gives them now (the same values)."""
    frame = pd.read_parquet(FIXTURES / f"{name}.parquet")
    return frame.astype({c: TEXT for c in ("scheme", "payment_method", "by_item_reason", "outlier")})


def write_expectations() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    cases().to_parquet(FIXTURES / "cases.parquet")
    for name in VARIANTS:
        priced(name).to_parquet(FIXTURES / f"{name}.parquet")


if __name__ == "__main__":
    write_expectations()
