"""Judging a warning rule on replayed days: precision and recall over stays, lead time to the day the
charges passed the payment, money in the warned stays."""

from __future__ import annotations

import pandas as pd
import pytest

from contract.fields import COST_CATEGORIES
from models.watch_replay import crossing_days, judge


def _charges() -> pd.DataFrame:
    days = pd.date_range("2025-10-01", periods=5)
    rows = []
    for case, daily in (("A", 300.0), ("B", 100.0), ("C", 50.0)):
        for day in days:
            rows.append({"case_id": case, "charge_date": day, **dict.fromkeys(COST_CATEGORIES, daily / 10)})
    return pd.DataFrame(rows)


def test_crossing_day_is_the_first_day_charges_pass_the_payment() -> None:
    crossing = crossing_days(_charges(), pd.Series({"A": 700.0, "B": 1000.0, "C": 100.0}))
    assert crossing.to_dict() == {"A": pd.Timestamp("2025-10-03"), "C": pd.Timestamp("2025-10-03")}


def test_judge_counts_stays_and_lead_time() -> None:
    outcome = pd.DataFrame(
        {
            "overrun": [True, False, True],
            "final_cost": [1500.0, 500.0, 250.0],
            "final_payment": [700.0, 1000.0, 100.0],
        },
        index=["A", "B", "C"],
    )
    crossing = crossing_days(_charges(), outcome["final_payment"])
    rows = pd.DataFrame(
        {
            "case_id": ["A", "B", "C", "A", "B", "C"],
            "as_of_date": pd.to_datetime(["2025-10-01"] * 3 + ["2025-10-02"] * 3),
        }
    )
    warns = pd.Series([False, True, False, True, True, False])  # A warned on day 2, B on day 1, C never
    found = judge(rows, warns, outcome, crossing)
    assert found["warned"] == 2 and found["stays"] == 3
    assert found["precision"] == pytest.approx(0.5) and found["recall"] == pytest.approx(0.5)
    assert found["lead_days_median"] == 1.0 and found["warned_before_crossing"] == 1.0
    assert found["overrun_yuan_warned"] == 800.0 and found["overrun_yuan_all"] == 950.0
