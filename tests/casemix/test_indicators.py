"""Casemix indicators on handmade priced frames whose CMI, CCI and TCI are worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casemix.indicators import INDICATOR_COLUMNS, casemix_indicators
from casemix.payment import PaymentRules, price_cases
from contract.fields import COST_CATEGORIES

WEIGHTS = pd.DataFrame(
    {"rw": [0.5, 1.5], "mean_cost": [5000.0, 15000.0], "mean_los": [4.0, 8.0]},
    index=pd.Index(["GZ15", "FM19"], name="drg"),
)


def case(department: str, discharged: str, drg: str | None, cost: float, los: int) -> dict:
    return {
        "hospital_id": "H1",
        "department": department,
        "status": "grouped" if drg else "ungroupable",
        "drg": drg or "0000",
        "adrg": drg[:3] if drg else "00",
        "discharge_date": pd.Timestamp(discharged),
        "los_days": los,
        "total_cost": cost,
        **dict.fromkeys(COST_CATEGORIES, 0.0),
        "cost_general_services": cost,
        "cost_negotiated_drugs": 0.0,
    }


@pytest.fixture
def priced() -> pd.DataFrame:
    cases = [
        case("内科", "2024-02-10", "GZ15", 6000.0, 5),  # normal, pays 5,000, overrun (> 5,500)
        case("内科", "2024-03-01", "FM19", 12000.0, 6),  # normal, pays 15,000
        case("内科", "2024-03-20", None, 3000.0, 2),  # ungroupable, pays 3,000 by item
        case("内科", "2024-05-05", "GZ15", 16000.0, 10),  # high (> 15,000), pays 5,000 + 1,000 x 0.9
        case("外科", "2024-02-02", "FM19", 5000.0, 3),  # low (< 5,250), pays 5,000 by item
    ]
    return price_cases(pd.DataFrame(cases), PaymentRules.load(), WEIGHTS)


def test_by_department_and_quarter(priced: pd.DataFrame) -> None:
    table = casemix_indicators(priced, by=("department",), period="quarter")
    assert list(table.columns) == ["department", "period", *INDICATOR_COLUMNS]
    assert table[["department", "period"]].values.tolist() == [
        ["内科", "2024Q1"],
        ["内科", "2024Q2"],
        ["外科", "2024Q1"],
    ]
    q1 = table.iloc[0]
    assert q1.cases == 3
    assert q1.grouping_rate == pytest.approx(2 / 3)
    assert q1.cmi == pytest.approx((0.5 + 1.5) / 2)
    # k = own cost / regional mean per case: GZ15 6,000 / 5,000 = 1.2, FM19 12,000 / 15,000 = 0.8.
    assert q1.cci == pytest.approx((1.2 + 0.8) / 2)
    assert q1.tci == pytest.approx((5 / 4 + 6 / 8) / 2)
    assert q1.cci_cost_weighted == pytest.approx((6000 + 12000) / (5000 + 15000))
    assert q1.tci_days_weighted == pytest.approx((5 + 6) / (4 + 8))
    assert (q1.payment, q1.cost, q1.surplus) == (23000.0, 21000.0, 2000.0)
    assert q1.payment_per_case == pytest.approx(23000 / 3)
    assert q1.surplus_rate == pytest.approx(2000 / 23000)
    assert (q1.high_share, q1.low_share, q1.overrun_share) == (0.0, 0.0, 0.5)
    assert q1.by_item_share == pytest.approx(1 / 3)
    assert np.isnan(q1.surplus_on_cost)
    q2, surgery = table.iloc[1], table.iloc[2]
    assert (q2.high_share, q2.payment, q2.cci) == (1.0, 5900.0, pytest.approx(16000 / 5000))
    assert (surgery.low_share, surgery.surplus) == (1.0, 0.0)


def test_hospital_year_is_case_mix_weighted(priced: pd.DataFrame) -> None:
    (row,) = casemix_indicators(priced, by=("hospital_id",), period="year").itertuples()
    assert (row.hospital_id, row.period, row.cases) == ("H1", "2024", 5)
    assert row.cmi == pytest.approx(4.0 / 4)
    # GZ15: 2 cases, mean 11,000 against 5,000 (k = 2.2); FM19: 2 cases, mean 8,500 against 15,000.
    assert row.cci == pytest.approx((2.2 * 2 + 8500 / 15000 * 2) / 4)
    assert row.tci == pytest.approx((7.5 / 4 * 2 + 4.5 / 8 * 2) / 4)
    assert row.cci_cost_weighted == pytest.approx(
        (6000 + 12000 + 16000 + 5000) / (5000 + 15000 + 5000 + 15000)
    )
    assert row.tci_days_weighted == pytest.approx((5 + 6 + 10 + 3) / (4 + 8 + 4 + 8))
    assert row.grouping_rate == pytest.approx(4 / 5)


def test_by_drg_per_month_and_without_period(priced: pd.DataFrame) -> None:
    monthly = casemix_indicators(priced, by=("drg",), period="month")
    assert ("GZ15", "2024-05") in set(map(tuple, monthly[["drg", "period"]].values.tolist()))
    overall = casemix_indicators(priced, by=("drg",), period=None).set_index("drg")
    assert overall.loc["GZ15", "cases"] == 2
    assert overall.loc["GZ15", "cci"] == pytest.approx((6000 + 16000) / 2 / 5000)
    assert np.isnan(overall.loc["0000", "cmi"])


def test_no_keys_is_an_error(priced: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="grouping column"):
        casemix_indicators(priced, by=(), period=None)


def test_the_toy_example_case_weighted_against_cost_weighted() -> None:
    """Four cases of a light DRG at 0.7 of the region's mean and one of a heavy DRG at 3.06 of it.

    Case-weighted (the performance-evaluation formula): (4 × 0.7 + 1 × 3.06) / 5 = 1.172.
    Cost-weighted: (4 × 3,500 + 61,200) / (4 × 5,000 + 20,000) = 75,200 / 40,000 = 1.880 — the one dear
    case in the heavy DRG dominates. Stays: 4 days against 5 (0.8) and 20 against 10 (2.0), so TCI is
    (4 × 0.8 + 2) / 5 = 1.04 and the days-weighted (16 + 20) / (20 + 10) = 1.2.
    """
    weights = pd.DataFrame(
        {"rw": [0.5, 2.0], "mean_cost": [5000.0, 20000.0], "mean_los": [5.0, 10.0]},
        index=pd.Index(["GZ15", "FM19"], name="drg"),
    )
    cases = [case("内科", "2024-03-01", "GZ15", 3500.0, 4) for _ in range(4)]
    cases.append(case("内科", "2024-03-02", "FM19", 61200.0, 20))
    priced = price_cases(pd.DataFrame(cases), PaymentRules.load(), weights)
    (row,) = casemix_indicators(priced, by=("hospital_id",), period=None).itertuples()
    assert row.cci == pytest.approx(1.172)
    assert row.cci_cost_weighted == pytest.approx(1.880)
    assert row.tci == pytest.approx(1.04)
    assert row.tci_days_weighted == pytest.approx(1.2)
    assert row.cmi == pytest.approx((4 * 0.5 + 2.0) / 5)
