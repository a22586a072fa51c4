"""The surplus forecast turned into the insurer's year-end settlement, on hand-computed figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casemix.payment import PaymentRules
from models.forecast.settlement import settlement_forecast

RULES = PaymentRules.load()  # 结余留用 100% to 10% then 50%; 超支分担 70% to 10%; reserve 3%; 5%; prepay 90%


def history(quarters: pd.PeriodIndex) -> pd.DataFrame:
    """Per quarter one insured case (charges 8,000, paid 10,000: patient 2,000, fund 8,000) and one
    self-paying case at its charges (2,000): insured share of charges 80%, patients 25% of it."""
    rows = []
    for q in quarters:
        day = q.start_time + pd.Timedelta(days=10)
        rows.append((day, 8000.0, 10000.0, 2000.0, 8000.0, "rate"))
        rows.append((day, 2000.0, 2000.0, 2000.0, 0.0, "charges"))
    frame = pd.DataFrame(
        rows,
        columns=[
            "discharge_date",
            "total_cost",
            "drg_payment",
            "patient_payment",
            "fund_payment",
            "payment_method",
        ],
    )
    return frame.assign(points=np.nan, point_value=np.nan)


def projected(
    quarters: int, payment: float, cost: float, factors: tuple[float, ...] = (1.0,)
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Whole-hospital point forecast per quarter (2 cases) and draws whose payment is × ``factors``."""
    point = {
        "volume": np.full(quarters, 2.0),
        "payment": np.full(quarters, payment),
        "cost": np.full(quarters, cost),
    }
    draws = {m: np.array([v * (f if m == "payment" else 1.0) for f in factors]) for m, v in point.items()}
    return point, draws


def test_a_forecast_year_with_a_surplus_keeps_the_tiers_share_and_clears_the_rest():
    """2025, four quarters each paid 12,000 for 10,000 of charges: the insured part is 12,000 − 2,000
    (the self-payers at charges) = 10,000 due on 8,000 charges. Year: due 40,000, charges 32,000,
    balance +8,000 (+25%); kept 3,200 + 4,800 × 50% = 5,600, 2,400 withheld; patients 8,000, fund due
    32,000, settled 29,600 (quality 5% withheld and returned at score 100); prepaid 90% × 32,000 =
    28,800; cleared 800; the hospital's income 37,600, settled margin 5,600."""
    past = pd.period_range("2024Q1", "2024Q4", freq="Q")
    future = pd.period_range("2025Q1", "2025Q4", freq="Q")
    point, draws = projected(4, 12000.0, 10000.0)
    (row,) = settlement_forecast(history(past), past, future, point, draws, RULES).itertuples()
    assert (row.year, row.quarters_actual, row.quarters_forecast) == (2025, 0, 4)
    assert row.cases == pytest.approx(8) and row.insured_cases == pytest.approx(4)
    assert (row.charges, row.drg_due, row.balance) == pytest.approx((32000, 40000, 8000))
    assert row.balance_rate == pytest.approx(0.25)
    assert (row.patient_share, row.fund_due) == pytest.approx((8000, 32000))
    assert (row.surplus_kept, row.surplus_withheld, row.overrun_shared) == pytest.approx((5600, 2400, 0))
    assert (row.quality_withheld, row.quality_returned) == pytest.approx((1480, 1480))
    assert (row.fund_final, row.prepaid, row.cleared) == pytest.approx((29600, 28800, 800))
    assert (row.hospital_income, row.settled_margin) == pytest.approx((37600, 5600))
    assert (row.cleared_lo80, row.cleared_hi80) == pytest.approx((800, 800))  # every draw is the point


def test_the_current_year_adds_its_settled_quarters_to_the_forecast_ones_and_shares_an_overrun():
    """History 2024Q1–Q2 (due 20,000 on 16,000, fund 16,000, prepaid 90% = 14,400); Q3–Q4 forecast
    at 7,000 for 10,000: due 5,000 on 8,000, fund 3,000 each. 2024: due 30,000 on 32,000, overrun
    2,000 (6.25%): the fund would share 70% = 1,400, but the reserve is 3% × 22,000 = 660; fund
    22,660 (quality withheld and returned 1,133); prepaid 14,400 + 5,400 = 19,800; cleared 2,860."""
    past = pd.period_range("2024Q1", "2024Q2", freq="Q")
    future = pd.period_range("2024Q3", "2025Q2", freq="Q")
    point, draws = projected(4, 7000.0, 10000.0, factors=(0.9, 1.0, 1.1))
    table = settlement_forecast(history(past), past, future, point, draws, RULES).set_index("year")
    now = table.loc[2024]
    assert (now.quarters_actual, now.quarters_forecast) == (2, 2)
    assert (now.charges, now.drg_due, now.overrun) == pytest.approx((32000, 30000, 2000))
    assert (now.fund_due, now.overrun_shared) == pytest.approx((22000, 660))
    assert (now.fund_final, now.prepaid, now.cleared) == pytest.approx((22660, 19800, 2860))
    assert now.balance_lo80 < now.balance < now.balance_hi80  # payment draws ±10%
    assert table.loc[2025].quarters_actual == 0 and table.loc[2025].quarters_forecast == 2


def test_without_the_fund_split_the_settlement_cannot_be_forecast():
    past = pd.period_range("2024Q1", "2024Q4", freq="Q")
    point, draws = projected(4, 12000.0, 10000.0)
    unknown = history(past).assign(fund_payment=np.nan)
    with pytest.raises(ValueError, match="insurance_type"):
        settlement_forecast(
            unknown, past, pd.period_range("2025Q1", periods=4, freq="Q"), point, draws, RULES
        )
