"""Year-end settlement on small hospital-years worked out by hand (结余留用, 超支分担, 质量保证金, 预拨)."""

from __future__ import annotations

import pandas as pd
import pytest

from casemix.payment import POINT_CITY_RULES, PaymentRules, Tier, price_cases
from casemix.settlement import (
    SETTLEMENT_COLUMNS,
    expected_point_values,
    monthly_prepayment,
    settle_year,
    tiered,
)
from tests.casemix.test_payment import WEIGHTS, YEAR, case, point_rules, with_


def priced_case(
    hospital: str,
    discharged: str,
    charges: float,
    payment: float,
    patient: float,
    method: str = "rate",
    deduction: float = 0.0,
) -> dict:
    """A case as ``price_cases`` leaves it, with only what settlement reads."""
    return {
        "hospital_id": hospital,
        "discharge_date": pd.Timestamp(discharged),
        "payment_method": method,
        "total_cost": charges,
        "drg_payment": payment,
        "patient_payment": patient,
        "fund_payment": payment - patient,
        "points": float("nan"),
        "point_value": float("nan"),
        "review_deduction": deduction,
    }


# H1 2024: charges 100,000, DRG payment 120,000 (surplus 20%), patients 30,000, fund 90,000,
#          a review deduction of 1,000, and a self-paying case (at charges, not settled).
# H2 2024: charges 100,000, DRG payment 75,000 (overrun 25%), patients 20,000, fund 55,000.
HOSPITAL_YEAR = [
    priced_case("H1", "2024-01-20", 40000.0, 50000.0, 10000.0),
    priced_case("H1", "2024-02-10", 60000.0, 70000.0, 20000.0, deduction=1000.0),
    priced_case("H1", "2024-02-11", 9000.0, 9000.0, 9000.0, method="charges"),
    priced_case("H2", "2024-03-05", 100000.0, 75000.0, 20000.0),
]


def settle(rules: PaymentRules | None = None, scores: dict | None = None) -> pd.DataFrame:
    table = settle_year(pd.DataFrame(HOSPITAL_YEAR), rules or PaymentRules.load(), scores)
    return table.set_index("hospital_id")


def test_surplus_is_kept_in_full_up_to_ten_percent_and_half_beyond() -> None:
    h1 = settle(scores={"H1": 80.0}).loc["H1"]
    assert (h1.cases, h1.insured_cases, h1.charges, h1.drg_due) == (3, 2, 100000.0, 120000.0)
    assert (h1.balance, h1.balance_rate) == (20000.0, 0.2)
    assert (h1.surplus_kept, h1.surplus_withheld) == (15000.0, 5000.0)
    # Fund: 90,000 - 5,000 = 85,000; 5% withheld (4,250), 80% of it returned (3,400); 1,000 deducted.
    assert h1.quality_withheld == pytest.approx(4250.0)
    assert h1.quality_returned == pytest.approx(3400.0)
    assert h1.review_deductions == 1000.0
    assert h1.fund_final == pytest.approx(83150.0)
    # Prepaid 90% of each month's fund payment: 0.9 x (40,000 + 50,000).
    assert h1.prepaid == pytest.approx(81000.0)
    assert h1.cleared == pytest.approx(2150.0)
    assert h1.settled_margin == pytest.approx(30000.0 + 83150.0 - 100000.0)


def test_overrun_is_shared_by_slice_out_of_a_short_risk_reserve() -> None:
    h2 = settle().loc["H2"]
    assert (h2.balance, h2.overrun) == (-25000.0, 25000.0)
    # Asked: 10,000 x 70% + 10,000 x 50% + 5,000 x 0 = 12,000; reserve 3% x (90,000 + 55,000) = 4,350.
    assert h2.overrun_shared == pytest.approx(4350.0)
    assert h2.fund_final == pytest.approx(55000.0 + 4350.0)  # quality reserve returned in full
    assert h2.cleared == pytest.approx(59350.0 - 0.9 * 55000.0)


def test_overrun_is_shared_in_full_when_the_reserve_suffices() -> None:
    rules = PaymentRules.load()
    rich = with_(rules, settlement={**rules.settlement.model_dump(), "risk_reserve_share": 0.10})
    assert settle(rich).loc["H2"].overrun_shared == pytest.approx(12000.0)


def test_tiers_on_both_sides_of_a_slice_edge() -> None:
    tiers = [Tier(up_to=0.10, share=1.0), Tier(share=0.5)]
    base = pd.Series([100000.0, 100000.0])
    assert tiered(pd.Series([10000.0, 10001.0]), base, tiers, 1.0).tolist() == [10000.0, 10000.5]
    assert tiered(pd.Series([5.0]), pd.Series([1.0]), [], 0.0).tolist() == [0.0]


def test_without_year_end_rules_the_fund_pays_what_is_due() -> None:
    plain = with_(PaymentRules.load(), settlement={})
    table = settle(plain)
    assert list(table.reset_index().columns) == ["hospital_id", "year", *SETTLEMENT_COLUMNS]
    assert table["fund_final"].tolist() == [89000.0, 55000.0]  # H1 less its 1,000 deduction
    assert table["cleared"].tolist() == [-1000.0, 0.0]


def test_settlement_needs_the_fund_split() -> None:
    unknown = pd.DataFrame(HOSPITAL_YEAR).assign(fund_payment=float("nan"))
    with pytest.raises(ValueError, match=r"row 0: fund_payment is missing"):
        settle_year(unknown, PaymentRules.load())


# --- the point method: prepaid at the provisional value, cleared at the final one -----------------


def test_point_year_is_prepaid_at_the_provisional_value_and_cleared_to_its_budget() -> None:
    # The five insured cases of test_payment.YEAR: 400 points, fund budget 47,350 -> 150 a point.
    rules = point_rules(47350.0, budget_of="fund")
    rules = with_(
        rules,
        point_values=[{**rules.point_values[0].model_dump(), "provisional_yuan": 100.0}],
        settlement={"prepay_share": 0.85},
    )
    priced = price_cases(pd.DataFrame(list(YEAR)), rules, WEIGHTS)
    months = monthly_prepayment(priced, rules)
    # January: 50 points x 100 - 1,600 patient = 3,400 provisional, 85% prepaid.
    january = months.iloc[0]
    assert (january.fund_due, january.fund_provisional, january.prepaid) == (5900.0, 3400.0, 2890.0)
    # Provisional fund: 400 x 100 - 12,650 = 27,350; prepaid 85% of it; cleared up to the budget.
    (year,) = settle_year(priced, rules).itertuples()
    assert year.fund_final == pytest.approx(47350.0, abs=0.005)
    assert year.prepaid == pytest.approx(0.85 * 27350.0)
    assert year.prepaid + year.cleared == pytest.approx(47350.0)


def test_forecast_point_value_moves_with_total_points() -> None:
    # 2023: 200 points; 2024: 250 points at a 60,000 budget (240 a point). Points grow 25% a year, the
    # budget is carried: 2025 expects 60,000 / 312.5 = 192 and 2026 60,000 / 390.625 = 153.6, not
    # 240 carried forward (the years are counted from the middle of the last 12 months, 2024-07-01).
    cases = [case(5000.0, discharge="2023-01-15")] * 4 + [case(5000.0, discharge="2024-12-31")] * 5
    rules = with_(
        point_rules(60000.0),
        point_values=[{"year": 2023, "yuan": 100.0}, {"year": 2024, "budget_yuan": 60000.0}],
    )
    priced = price_cases(pd.DataFrame(cases), rules, WEIGHTS)
    assert priced["point_value"].iloc[-1] == 240.0
    expected = expected_point_values(priced, rules, [2025, 2026])
    assert expected == {2025: pytest.approx(192.0, rel=1e-3), 2026: pytest.approx(153.6, rel=1e-3)}


def test_forecast_point_value_is_flat_without_a_year_of_growth_to_measure() -> None:
    cases = [case(5000.0, discharge="2024-06-30")] * 5
    rules = with_(point_rules(60000.0), point_values=[{"year": 2024, "budget_yuan": 60000.0}])
    priced = price_cases(pd.DataFrame(cases), rules, WEIGHTS)
    assert expected_point_values(priced, rules, [2025]) == {2025: pytest.approx(240.0)}


def test_the_point_city_example_settles_a_year() -> None:
    # 2024: ¥1.2e9 over the region's 1.2e7 points -> ¥100 a point. Three RW 0.5 cases of ¥5,000 (under
    # 3 x the ¥6,000 average cost) earn 0.5 x 100 = 50 points each; patients pay 800 + 4,200 x 15%.
    rules = PaymentRules.load(POINT_CITY_RULES)
    cases = [
        case(5000.0, discharge="2024-03-01", patient_id=f"P{i}", admission_date=pd.Timestamp("2024-02-25"))
        for i in range(3)
    ]
    priced = price_cases(pd.DataFrame(cases), rules, WEIGHTS)
    assert priced["drg_payment"].tolist() == [5000.0] * 3
    (year,) = settle_year(priced, rules).itertuples()
    assert year.fund_due == pytest.approx(3 * (5000.0 - 1430.0))
    # Prepaid at ¥95 a point: 85% of 3 x (50 x 95 - 1,430).
    assert year.prepaid == pytest.approx(0.85 * 3 * (4750.0 - 1430.0))
