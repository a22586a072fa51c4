"""Payment rules on handmade cases: every edge of the default rules and of the alternatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.casemix.payment import (
    PRICED_COLUMNS,
    CostToCharge,
    LowRule,
    PaymentRules,
    PointValue,
    point_value_from_budget,
    price_cases,
)
from pipelines.contract import COST_CATEGORIES

# Binary-exact weights, one per RW band of the default rules: standard 5,000 / 15,000 / 40,000 yuan in 2024.
WEIGHTS = pd.DataFrame(
    {"rw": [0.5, 1.5, 4.0], "mean_cost": [5000.0, 15000.0, 40000.0], "mean_los": [4.0, 8.0, 12.0]},
    index=pd.Index(["GZ15", "FM19", "AA19"], name="drg"),
)
BANDS = [("GZ15", 5000.0, 3.0, 0.4), ("FM19", 15000.0, 2.0, 0.35), ("AA19", 40000.0, 1.5, 0.3)]


def case(
    total_cost: float = 5000.0,
    drg: str = "GZ15",
    status: str = "grouped",
    discharge: str = "2024-06-01",
    los_days: int = 5,
    negotiated: float = 0.0,
    department: str = "内科",
) -> dict:
    costs = dict.fromkeys(COST_CATEGORIES, 0.0)
    costs["cost_general_services"] = total_cost - negotiated
    costs["cost_western_drugs"] = negotiated
    return {
        "hospital_id": "H1",
        "department": department,
        "status": status,
        "drg": drg if status == "grouped" else "0000",
        "adrg": drg[:3] if status == "grouped" else "00",
        "discharge_date": pd.Timestamp(discharge),
        "los_days": los_days,
        "total_cost": total_cost,
        **costs,
        "cost_negotiated_drugs": negotiated,
    }


def price(*cases: dict, rules: PaymentRules | None = None) -> pd.DataFrame:
    return price_cases(pd.DataFrame(list(cases)), rules or PaymentRules.load(), WEIGHTS)


def with_(rules: PaymentRules, **update: object) -> PaymentRules:
    return PaymentRules.model_validate({**rules.model_dump(), **update})


def test_default_rules_are_the_demo_city() -> None:
    rules = PaymentRules.load()
    assert rules.method == "rate"
    assert [(str(r.effective_from), r.yuan) for r in rules.base_rates] == [
        ("2023-01-01", 10000.0),
        ("2025-01-01", 10500.0),
    ]
    assert [(b.high_multiple, b.low_multiple) for b in rules.outliers.bands] == [
        (3, 0.4),
        (2, 0.35),
        (1.5, 0.3),
    ]
    assert rules.outside_drg.columns == ["cost_negotiated_drugs"]
    assert rules.overrun.threshold == 1.10
    assert rules.by_item.max_los_days == 60


def test_normal_case_is_paid_the_standard() -> None:
    priced = price(case(total_cost=6000.0))
    row = priced.iloc[0]
    assert set(PRICED_COLUMNS) <= set(priced.columns)
    assert (row.rw, row.base_rate, row.standard_payment) == (0.5, 10000.0, 5000.0)
    assert np.isnan(row.point_value)
    assert (row.payment_method, row.outlier, row.by_item_reason) == ("rate", "normal", None)
    assert row.drg_payment == 5000.0
    assert row.margin == -1000.0
    assert row.cost_to_standard == pytest.approx(1.2)


@pytest.mark.parametrize(("drg", "standard", "high", "low"), BANDS)
def test_high_outlier_on_both_sides_of_the_threshold(
    drg: str, standard: float, high: float, low: float
) -> None:
    threshold = high * standard
    at, above = price(case(threshold, drg), case(threshold + 1.0, drg)).itertuples()
    assert at.outlier == "normal" and at.drg_payment == standard
    assert above.outlier == "high"
    assert above.drg_payment == pytest.approx(standard + 1.0 * 0.9)


@pytest.mark.parametrize(("drg", "standard", "high", "low"), BANDS)
def test_low_outlier_on_both_sides_of_the_threshold(
    drg: str, standard: float, high: float, low: float
) -> None:
    threshold = low * standard
    at, below = price(case(threshold, drg), case(threshold - 1.0, drg)).itertuples()
    assert at.outlier == "normal" and at.drg_payment == standard
    assert below.outlier == "low"
    assert below.drg_payment == pytest.approx(threshold - 1.0)


def test_zero_cost_case_is_low_and_paid_nothing() -> None:
    row = price(case(0.0)).iloc[0]
    assert (row.outlier, row.drg_payment, row.margin) == ("low", 0.0, 0.0)


def test_low_payment_is_capped_at_the_standard() -> None:
    rules = PaymentRules.load()
    generous = rules.model_copy(
        update={"outliers": rules.outliers.model_copy(update={"low": LowRule(ratio=3.0)})}
    )
    capped, uncapped = price(case(1900.0), case(1000.0), rules=generous).itertuples()
    assert capped.drg_payment == 5000.0
    assert uncapped.drg_payment == 3000.0


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"status": "ungroupable"}, "ungroupable"),
        ({"status": "invalid"}, "invalid"),
        ({"los_days": 61}, "long_stay"),
        ({"drg": "ZZ19"}, "no_weight"),
    ],
)
def test_excluded_cases_are_paid_by_item(kwargs: dict, reason: str) -> None:
    row = price(case(total_cost=70000.0, **kwargs)).iloc[0]
    assert (row.payment_method, row.by_item_reason) == ("by_item", reason)
    assert row.outlier is None and row.overrun is pd.NA
    assert row.drg_payment == 70000.0 and row.margin == 0.0


def test_sixty_days_is_still_paid_by_drg() -> None:
    assert price(case(los_days=60)).iloc[0].payment_method == "rate"


def test_listed_drg_is_paid_by_item() -> None:
    rules = PaymentRules.load()
    listed = rules.model_copy(update={"by_item": rules.by_item.model_copy(update={"drgs": ["FM19"]})})
    first, second = price(case(drg="FM19"), case(drg="GZ15"), rules=listed).itertuples()
    assert first.by_item_reason == "listed_drg" and second.by_item_reason is None


def test_outside_drg_costs_are_added_and_left_out_of_the_comparison() -> None:
    # 20,000 in all is above the 15,000 high threshold, but 10,000 are negotiated drugs paid outside.
    row = price(case(total_cost=20000.0, negotiated=10000.0)).iloc[0]
    assert (row.drg_cost, row.outlier, row.outside_payment) == (10000.0, "normal", 10000.0)
    assert (row.drg_payment, row.margin) == (15000.0, -5000.0)
    rules = PaymentRules.load()
    inside_only = rules.model_copy(
        update={"outside_drg": rules.outside_drg.model_copy(update={"columns": []})}
    )
    assert price(case(total_cost=20000.0, negotiated=10000.0), rules=inside_only).iloc[0].outlier == "high"


def test_base_rate_changes_on_the_policy_date() -> None:
    before, on = price(case(discharge="2024-12-31"), case(discharge="2025-01-01")).itertuples()
    assert (before.base_rate, before.standard_payment) == (10000.0, 5000.0)
    assert (on.base_rate, on.standard_payment) == (10500.0, 5250.0)


def test_case_before_the_first_base_rate_names_the_row() -> None:
    with pytest.raises(ValueError, match=r"row 1: discharge_date is before the first base rate"):
        price(case(), case(discharge="2022-12-31"))


def test_point_method_with_a_given_point_value() -> None:
    rules = with_(PaymentRules.load(), method="point", point_values=[{"year": 2024, "yuan": 95.0}])
    row = price(case(), rules=rules).iloc[0]
    assert (row.payment_method, row.point_value, row.standard_payment) == ("point", 95.0, 0.5 * 100 * 95.0)
    assert np.isnan(row.base_rate)


def test_point_value_from_budget() -> None:
    assert point_value_from_budget(1_000_000.0, 10_000.0) == 100.0
    with pytest.raises(ValueError, match="total_points"):
        point_value_from_budget(1_000_000.0, 0.0)


def test_point_method_estimates_the_point_value_from_the_budget() -> None:
    # Points settled by DRG in 2024: 0.5 x 100 + 1.5 x 100 = 200 (the ungroupable case has none).
    rules = with_(PaymentRules.load(), method="point", point_values=[{"year": 2024, "budget_yuan": 40000.0}])
    priced = price(case(), case(drg="FM19"), case(status="ungroupable"), rules=rules)
    assert priced["point_value"].tolist() == [200.0, 200.0, 200.0]
    assert priced["standard_payment"].iloc[:2].tolist() == [10000.0, 30000.0]
    regional = with_(rules, point_values=[PointValue(year=2024, budget_yuan=40000.0, total_points=400.0)])
    assert price(case(), rules=regional)["point_value"].iloc[0] == 100.0


def test_cost_to_charge_ratios_estimate_true_cost() -> None:
    ratios = CostToCharge(
        default=0.5,
        categories={"cost_western_drugs": 1.0},
        departments={"骨科": {"cost_general_services": 2.0}},
    )
    rules = with_(PaymentRules.load(), cost_to_charge=ratios)
    medicine, orthopaedics = price(
        case(6000.0, negotiated=1000.0), case(6000.0, negotiated=1000.0, department="骨科"), rules=rules
    ).itertuples()
    assert medicine.estimated_cost == 5000.0 * 0.5 + 1000.0
    assert orthopaedics.estimated_cost == 5000.0 * 2.0 + 1000.0
    assert medicine.margin_on_cost == medicine.drg_payment - 3500.0


def test_without_cost_to_charge_ratios_the_cost_columns_are_empty() -> None:
    row = price(case()).iloc[0]
    assert np.isnan(row.estimated_cost) and np.isnan(row.margin_on_cost)


def test_overrun_flag_above_110_percent_of_the_standard() -> None:
    priced = price(case(5500.0), case(5501.0))
    assert priced["overrun"].dtype == "boolean"
    assert priced["overrun"].tolist() == [False, True]


RATE = "[[base_rates]]\neffective_from = 2023-01-01\nyuan = 1\n"
BAND = "[[outliers.bands]]\nhigh_multiple = 2\nlow_multiple = 0.3\n"


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('name = "x"\nmethod = "rate"\n' + RATE.replace("yuan = 1", "yuan = -1") + BAND, "base_rates.0.yuan"),
        ('name = "x"\nmethod = "fee"\n' + BAND, "method"),
        ('name = "x"\nmethod = "rate"\nbase_rate = 1\n' + RATE + BAND, "base_rate"),
        (
            'name = "x"\nmethod = "rate"\n' + RATE + BAND + '[outside_drg]\ncolumns = ["cost_food"]\n',
            "outside_drg.columns.0",
        ),
        ('name = "x"\nmethod = "rate"\n' + RATE + BAND.replace("0.3", "3"), "outliers.bands.0"),
    ],
)
def test_bad_toml_names_the_field(tmp_path: Path, toml: str, field: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        PaymentRules.load(path)
    assert field in str(err.value)


def test_rate_method_without_rates_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'name = "x"\nmethod = "rate"\n[[outliers.bands]]\nhigh_multiple = 2\nlow_multiple = 0.3\n'
    )
    with pytest.raises(ValidationError, match="base_rates"):
        PaymentRules.load(path)


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = ", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.toml: not valid TOML"):
        PaymentRules.load(path)


def test_bad_input_names_row_and_field() -> None:
    with pytest.raises(ValueError, match=r"row 1: total_cost is missing or negative \(1 rows\)"):
        price(case(), case(total_cost=-5.0))
    with pytest.raises(
        ValueError, match=r"row 0: cost_negotiated_drugs \(paid outside the DRG\) exceeds total_cost"
    ):
        price(case(total_cost=100.0, negotiated=200.0))
    with pytest.raises(ValueError, match=r"missing columns \['los_days'\]"):
        price_cases(pd.DataFrame([case()]).drop(columns="los_days"), PaymentRules.load(), WEIGHTS)
