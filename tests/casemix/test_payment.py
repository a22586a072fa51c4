"""Payment rules on handmade cases: every edge of the default rules and of the alternatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from casemix.payment import (
    POINT_CITY_RULES,
    PRICED_COLUMNS,
    CostToCharge,
    LowRule,
    PaymentRules,
    PointValue,
    point_value_from_budget,
    price_cases,
)
from contract.fields import COST_CATEGORIES

# Binary-exact weights, one per RW band of the default rules: standard 5,000 / 15,000 / 40,000 yuan in 2024,
# and two on the band edges (RW 1.0 and 2.0). GZ15's average cost (6,000) differs from its standard.
WEIGHTS = pd.DataFrame(
    {
        "rw": [0.5, 1.5, 4.0, 1.0, 2.0],
        "mean_cost": [6000.0, 15000.0, 40000.0, 10000.0, 20000.0],
        "mean_los": [4.0, 8.0, 12.0, 6.0, 9.0],
    },
    index=pd.Index(["GZ15", "FM19", "AA19", "FR29", "FM29"], name="drg"),
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
    insurance_type: int = 1,
    **extra: object,
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
        "insurance_type": insurance_type,
        **extra,
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
    assert (rules.long_stay.above_days, rules.short_stay.max_days) == (60, 2)
    assert [(s.name, s.insurance_types) for s in rules.schemes] == [
        ("职工医保", [1]),
        ("居民医保", [2, 3, 4]),
    ]


def test_the_point_city_example_loads() -> None:
    rules = PaymentRules.load(POINT_CITY_RULES)
    assert (rules.method, rules.point_conversion_yuan, rules.outliers.base) == (
        "point",
        110.0,
        "drg_mean_cost",
    )
    assert rules.readmission is not None and rules.readmission.earlier_factor == 0.5


def test_normal_case_is_paid_the_standard() -> None:
    priced = price(case(total_cost=6000.0))
    row = priced.iloc[0]
    assert set(PRICED_COLUMNS) <= set(priced.columns)
    assert (row.rw, row.base_rate, row.standard_payment) == (0.5, 10000.0, 5000.0)
    assert np.isnan(row.point_value)
    assert (row.payment_method, row.outlier) == ("rate", "normal") and pd.isna(row.by_item_reason)
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
    assert pd.isna(row.outlier) and row.overrun is pd.NA
    assert row.drg_payment == 70000.0 and row.margin == 0.0


def test_sixty_days_is_still_paid_by_drg() -> None:
    assert price(case(los_days=60)).iloc[0].payment_method == "rate"


def test_listed_drg_is_paid_by_item() -> None:
    rules = PaymentRules.load()
    listed = rules.model_copy(update={"by_item": rules.by_item.model_copy(update={"drgs": ["FM19"]})})
    first, second = price(case(drg="FM19"), case(drg="GZ15"), rules=listed).itertuples()
    assert first.by_item_reason == "listed_drg" and pd.isna(second.by_item_reason)


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


def point_rules(budget: float, budget_of: str = "total", **update: object) -> PaymentRules:
    """The default rules on the point method, 100 yuan a point (so nominal yuan equal the rate method's)."""
    return with_(
        PaymentRules.load(),
        method="point",
        point_conversion_yuan=100.0,
        point_values=[{"year": 2024, "budget_yuan": budget, "budget_of": budget_of}],
        **update,
    )


# A point-method year: nominal yuan at 100 yuan a point, by hand.
#   GZ15 normal, cost 5,000            -> 5,000 yuan      ->  50 points
#   FM19 high, cost 40,000 (thr 30,000)-> 15,000 + 10,000 x 0.9 = 24,000 -> 240 points
#   GZ15 low, cost 1,000 (< 2,000)     -> 1,000 by item   ->  10 points
#   ungroupable, cost 3,000            -> 3,000 by item   ->  30 points
#   GZ15 normal + 2,000 negotiated     -> 5,000 + 2,000   ->  70 points
#   self-paying patient, cost 9,000    -> at charges, no points
# All points: 400. Budget 60,000 -> point value 150; the five insured cases are paid 60,000.
YEAR = (
    case(5000.0, discharge="2024-01-15"),
    case(40000.0, drg="FM19", discharge="2024-03-02"),
    case(1000.0, discharge="2024-06-30"),
    case(3000.0, status="ungroupable", discharge="2024-09-09"),
    case(7000.0, negotiated=2000.0, discharge="2024-12-31"),
    case(9000.0, insurance_type=7, discharge="2024-07-01"),
)


def test_point_method_closes_its_budget_to_the_yuan() -> None:
    priced = price(*YEAR, rules=point_rules(60000.0))
    assert priced["points"].iloc[:5].tolist() == [50.0, 240.0, 10.0, 30.0, 70.0]
    assert priced["point_value"].iloc[0] == 150.0
    assert priced["drg_payment"].tolist() == [7500.0, 36000.0, 1500.0, 4500.0, 10500.0, 9000.0]
    insured = priced["payment_method"] != "charges"
    assert priced.loc[insured, "drg_payment"].sum() == 60000.0
    assert priced["standard_payment"].iloc[0] == 0.5 * 100 * 150.0


def test_point_method_fund_budget_closes_the_fund_payments() -> None:
    # Employee scheme (deductible 1,000, fund 85%): patients pay 1,000 + 15% of the rest of the charges,
    # 1,600 / 6,850 / 1,000 / 1,300 / 1,900 = 12,650; fund budget 47,350 + 12,650 = 60,000 over 400
    # points -> 150 again, and the fund pays out its 47,350.
    priced = price(*YEAR, rules=point_rules(47350.0, budget_of="fund"))
    assert priced["patient_payment"].iloc[:5].tolist() == pytest.approx(
        [1600.0, 6850.0, 1000.0, 1300.0, 1900.0]
    )
    assert priced["point_value"].iloc[0] == pytest.approx(150.0)
    assert priced["fund_payment"].iloc[:5].sum() == pytest.approx(47350.0, abs=0.005)


def test_point_method_budget_of_a_region_uses_its_points() -> None:
    rules = with_(
        point_rules(1.0),
        point_values=[PointValue(year=2024, budget_yuan=40000.0, total_points=800.0)],
    )
    assert price(case(), rules=rules)["point_value"].iloc[0] == 50.0


def test_point_method_outside_the_budget_pays_outside_costs_in_yuan() -> None:
    rules = point_rules(12000.0)
    separate = with_(rules, outside_drg={**rules.outside_drg.model_dump(), "in_budget": False})
    # 50 points inside the budget alone: point value 240, plus the 2,000 negotiated drugs in yuan.
    row = price(case(7000.0, negotiated=2000.0), rules=separate).iloc[0]
    assert (row.points, row.point_value, row.drg_payment) == (50.0, 240.0, 50 * 240.0 + 2000.0)


def test_a_regional_budget_cannot_be_the_fund_alone() -> None:
    with pytest.raises(ValidationError, match="regional budget"):
        PointValue(year=2024, budget_yuan=1.0, total_points=1.0, budget_of="fund")


def test_point_method_from_a_budget_needs_a_conversion() -> None:
    with pytest.raises(ValidationError, match="point_conversion_yuan"):
        with_(point_rules(1.0), point_conversion_yuan=None)


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
        (
            'name = "x"\nmethod = "rate"\n'
            + RATE
            + BAND
            + "[settlement]\nsurplus_kept = [{ share = 1.0 }, { share = 0.5 }]\n",
            "surplus_kept: up_to must increase",
        ),
        (
            'name = "x"\nmethod = "rate"\n'
            + RATE
            + BAND
            + "[[schemes]]\nname = 'a'\ninsurance_types = [0]\nfund_ratio = 1\n",
            "schemes.0.insurance_types.0",
        ),
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
        ValueError,
        match=r"row 0: cost_negotiated_drugs \(paid outside the DRG\) exceeds total_cost",
    ):
        price(case(total_cost=100.0, negotiated=200.0))
    with pytest.raises(ValueError, match=r"missing columns \['los_days'\]"):
        price_cases(pd.DataFrame([case()]).drop(columns="los_days"), PaymentRules.load(), WEIGHTS)


# --- RW band edges: RW 1.0 and 2.0 sit on a boundary -------------------------------------------------


@pytest.mark.parametrize(
    ("drg", "inclusive", "high_multiple"),
    [("FR29", True, 3.0), ("FR29", False, 2.0), ("FM29", True, 2.0), ("FM29", False, 1.5)],
)
def test_a_weight_on_a_band_edge_follows_the_boundary_side(
    drg: str, inclusive: bool, high_multiple: float
) -> None:
    rules = PaymentRules.load()
    rules = with_(rules, outliers={**rules.outliers.model_dump(), "rw_upper_inclusive": inclusive})
    standard = WEIGHTS.loc[drg, "rw"] * 10000.0
    at, above = price(
        case(high_multiple * standard, drg), case(high_multiple * standard + 1.0, drg), rules=rules
    )["outlier"]
    assert (at, above) == ("normal", "high")


def test_weights_just_inside_a_band_do_not_depend_on_the_boundary_side() -> None:
    rules = PaymentRules.load()
    exclusive = with_(rules, outliers={**rules.outliers.model_dump(), "rw_upper_inclusive": False})
    # RW 1.5 is inside the middle band either way: 2 x 15,000.
    for r in (rules, exclusive):
        assert price(case(30000.0, "FM19"), case(30001.0, "FM19"), rules=r)["outlier"].tolist() == [
            "normal",
            "high",
        ]


def test_thresholds_on_the_drg_average_cost() -> None:
    # GZ15: standard 5,000 but average cost 6,000 -> high above 18,000, low under 2,400.
    rules = PaymentRules.load()
    on_mean = with_(rules, outliers={**rules.outliers.model_dump(), "base": "drg_mean_cost"})
    priced = price(case(18000.0), case(18001.0), case(2400.0), case(2399.0), rules=on_mean)
    assert priced["outlier"].tolist() == ["normal", "high", "normal", "low"]
    assert priced["drg_payment"].tolist() == [5000.0, pytest.approx(5000.0 + 0.9), 5000.0, 2399.0]
    # On the standard (the default), 16,000 is already high: above 15,000.
    assert price(case(16000.0))["outlier"].iloc[0] == "high"


def test_thresholds_on_the_average_cost_need_it_in_the_weights() -> None:
    rules = PaymentRules.load()
    on_mean = with_(rules, outliers={**rules.outliers.model_dump(), "base": "drg_mean_cost"})
    weights = WEIGHTS.assign(mean_cost=[np.nan, 15000.0, 40000.0, 10000.0, 20000.0])
    with pytest.raises(ValueError, match=r"row 0: standard_cost .* is missing"):
        price_cases(pd.DataFrame([case()]), on_mean, weights)


# --- stays -----------------------------------------------------------------------------------------


def test_stays_of_two_days_are_paid_by_item_and_three_by_drg() -> None:
    two, three = price(case(4000.0, los_days=2), case(4000.0, los_days=3)).itertuples()
    assert (two.payment_method, two.by_item_reason, two.drg_payment) == ("by_item", "short_stay", 4000.0)
    assert (three.payment_method, three.drg_payment) == ("rate", 5000.0)


def test_day_cases_are_exempt_from_the_short_stay_rule() -> None:
    day_case, elective = price(
        case(4000.0, los_days=1, admission_type=3), case(4000.0, los_days=1, admission_type=1)
    ).itertuples()
    assert (day_case.payment_method, day_case.drg_payment) == ("rate", 5000.0)
    assert (elective.by_item_reason, elective.drg_payment) == ("short_stay", 4000.0)


def test_short_stays_as_low_cost_cases() -> None:
    rules = with_(PaymentRules.load(), short_stay={"max_days": 2, "pay": "low"})
    cheap, dear, longer = price(
        case(4000.0, los_days=2), case(6000.0, los_days=2), case(4000.0, los_days=3), rules=rules
    ).itertuples()
    assert (cheap.outlier, cheap.drg_payment) == ("low", 4000.0)
    assert (dear.outlier, dear.drg_payment) == ("low", 5000.0)  # capped at the standard
    assert (longer.outlier, longer.drg_payment) == ("normal", 5000.0)


def test_long_stays_per_diem() -> None:
    rules = with_(
        PaymentRules.load(), long_stay={"above_days": 60, "pay": "per_diem", "per_diem_yuan": 800.0}
    )
    sixty, sixty_one = price(case(70000.0, los_days=60), case(70000.0, los_days=61), rules=rules).itertuples()
    assert (sixty.payment_method, sixty.outlier) == ("rate", "high")
    assert (sixty_one.by_item_reason, sixty_one.drg_payment) == ("long_stay", 61 * 800.0)


def test_per_diem_needs_a_price() -> None:
    with pytest.raises(ValidationError, match="per_diem_yuan"):
        with_(PaymentRules.load(), long_stay={"above_days": 60, "pay": "per_diem"})


# --- by item: reasons and their ratios ------------------------------------------------------------


def test_ambiguous_group_is_paid_at_its_discount_and_others_at_the_common_ratio() -> None:
    qy, ungroupable = price(case(10000.0, drg="FQY"), case(10000.0, status="ungroupable")).itertuples()
    assert (qy.by_item_reason, qy.drg_payment) == ("ambiguous", 8000.0)
    assert (ungroupable.by_item_reason, ungroupable.drg_payment) == ("ungroupable", 10000.0)


def test_special_review_cases_are_paid_by_item() -> None:
    approved, usual = price(
        case(70000.0, special_review=True), case(70000.0, special_review=False)
    ).itertuples()
    assert (approved.by_item_reason, approved.drg_payment) == ("special_review", 70000.0)
    assert usual.outlier == "high"


def test_new_technology_is_paid_outside_the_drg_at_its_own_ratio() -> None:
    rules = PaymentRules.load()
    both = {"columns": ["cost_negotiated_drugs", "cost_new_technology"]}
    new_technology = with_(rules, outside_drg=both)
    half = with_(rules, outside_drg={**both, "ratios": {"cost_new_technology": 0.5}})
    row = price(case(8000.0, cost_new_technology=3000.0), rules=new_technology).iloc[0]
    assert (row.drg_cost, row.outlier, row.drg_payment) == (5000.0, "normal", 8000.0)
    assert price(case(8000.0, cost_new_technology=3000.0), rules=half).iloc[0].drg_payment == 6500.0
    # Not listed (the default city): new technology is inside the DRG, 8,000 against 5,000.
    assert price(case(8000.0, cost_new_technology=3000.0)).iloc[0].drg_payment == 5000.0


# --- coefficients ----------------------------------------------------------------------------------


def test_hospital_and_drg_coefficients_multiply_the_standard() -> None:
    rules = with_(PaymentRules.load(), coefficients={"hospitals": {"H1": 1.25}, "drgs": {"GZ15": 0.75}})
    first, other_drg, other_hospital = price(
        case(6000.0), case(15000.0, "FM19"), case(6000.0, hospital_id="H2"), rules=rules
    ).itertuples()
    assert first.standard_payment == 0.5 * 10000.0 * 1.25 * 0.75
    assert first.drg_payment == 4687.5
    assert other_drg.drg_payment == 15000.0 * 1.25
    assert other_hospital.drg_payment == 5000.0 * 0.75  # H2 has no coefficient: 1.0


# --- the readmission rule -------------------------------------------------------------------------


def stay(
    admitted: str, discharged: str, drg: str = "GZ15", patient: str | None = "P1", **extra: object
) -> dict:
    return case(
        6000.0,
        drg=drg,
        discharge=discharged,
        patient_id=patient,
        admission_date=pd.Timestamp(admitted),
        **extra,
    )


def test_the_earlier_stay_of_a_readmission_within_fifteen_days_is_halved() -> None:
    rules = with_(PaymentRules.load(), readmission={"within_days": 15, "same": "adrg", "earlier_factor": 0.5})
    priced = price(
        stay("2024-05-27", "2024-06-01"),
        stay("2024-06-16", "2024-06-20"),  # 15 days after the first discharge: caught
        stay("2024-07-06", "2024-07-10"),  # 16 days after the second: not caught
        stay("2024-05-27", "2024-06-01", patient="P2"),
        stay("2024-06-05", "2024-06-09", drg="FM19", patient="P2"),  # another ADRG
        stay("2024-05-27", "2024-06-01", patient="P3", readmission_plan_31d=True),
        stay("2024-06-05", "2024-06-09", patient="P3"),  # planned
        stay("2024-05-27", "2024-06-01", patient=None),
        stay("2024-06-05", "2024-06-09", patient=None),  # unknown patients are not one patient
        rules=rules,
    )
    assert priced["readmitted"].tolist() == [True] + [False] * 8
    assert priced["drg_payment"].tolist()[:3] == [2500.0, 5000.0, 5000.0]


def test_without_patient_ids_the_readmission_flag_is_missing_and_a_factor_is_an_error() -> None:
    assert price(case())["readmitted"].isna().all()
    rules = with_(PaymentRules.load(), readmission={"earlier_factor": 0.5})
    with pytest.raises(ValueError, match=r"missing columns \['patient_id', 'admission_date'\]"):
        price(case(), rules=rules)


# --- who pays: schemes, charges and the fund/patient split ------------------------------------------


@pytest.mark.parametrize("payer", [5, 6, 7, 8, 9])
def test_payers_outside_the_insured_schemes_are_priced_at_charges(payer: int) -> None:
    row = price(case(70000.0, insurance_type=payer)).iloc[0]
    assert row.payment_method == "charges" and pd.isna(row.scheme) and pd.isna(row.outlier)
    assert (row.drg_payment, row.margin) == (70000.0, 0.0)
    assert (row.patient_payment, row.fund_payment) == (70000.0, 0.0)


def test_self_paying_cases_without_a_weight_are_at_charges_whatever_the_threshold_base() -> None:
    rules = PaymentRules.load()
    on_mean = with_(rules, outliers={**rules.outliers.model_dump(), "base": "drg_mean_cost"})
    row = price(case(16000.0, status="ungroupable", insurance_type=7), rules=on_mean).iloc[0]
    assert (row.payment_method, row.drg_payment) == ("charges", 16000.0)


def test_fund_and_patient_split_of_an_employee_case() -> None:
    # 6,000 charges: 500 self-funded, 300 paid first, policy-scope 5,200; deductible 1,000; 15% of 4,200.
    row = price(case(6000.0, cost_self_funded=500.0, cost_first_self_paid=300.0)).iloc[0]
    assert row.scheme == "职工医保"
    assert row.patient_payment == pytest.approx(500.0 + 300.0 + 1000.0 + 4200.0 * 0.15)
    assert row.fund_payment == pytest.approx(5000.0 - 2430.0)


def test_fund_and_patient_split_of_a_resident_case() -> None:
    row = price(case(6000.0, insurance_type=2)).iloc[0]
    assert (row.scheme, row.patient_payment) == ("居民医保", pytest.approx(800.0 + 5200.0 * 0.3))
    assert row.fund_payment == pytest.approx(5000.0 - 2360.0)


def test_a_deductible_above_the_charges_leaves_the_fund_nothing_to_add() -> None:
    row = price(case(600.0)).iloc[0]  # low case, paid 600; all under the 1,000 deductible
    assert (row.drg_payment, row.patient_payment, row.fund_payment) == (600.0, 600.0, 0.0)


def test_negative_fund_payments_only_where_the_city_allows_them() -> None:
    # Paid 5,000; the patient owes 4,000 self-funded + 1,000 + 9,000 x 0.15 = 6,350.
    heavy = case(14000.0, cost_self_funded=4000.0)
    assert price(heavy).iloc[0].fund_payment == 0.0
    allowed = with_(PaymentRules.load(), allow_negative_fund=True)
    assert price(heavy, rules=allowed).iloc[0].fund_payment == pytest.approx(-1350.0)


def test_without_a_payer_every_case_is_settled_by_drg_and_the_split_is_missing() -> None:
    row = price_cases(
        pd.DataFrame([case()]).drop(columns="insurance_type"), PaymentRules.load(), WEIGHTS
    ).iloc[0]
    assert (row.payment_method, row.drg_payment) == ("rate", 5000.0)
    assert np.isnan(row.fund_payment) and np.isnan(row.patient_payment)


def test_bad_payer_fields_name_row_and_field() -> None:
    with pytest.raises(ValueError, match=r"row 1: insurance_type is missing"):
        price(case(), case(insurance_type=None))
    with pytest.raises(ValueError, match=r"row 0: cost_self_funded\+cost_first_self_paid exceeds total_cost"):
        price(case(1000.0, cost_self_funded=800.0, cost_first_self_paid=300.0))
    with pytest.raises(ValidationError, match="two schemes"):
        with_(PaymentRules.load(), schemes=[{"name": "a", "insurance_types": [1], "fund_ratio": 0.5}] * 2)


@pytest.mark.parametrize(("same", "caught"), [("adrg", False), ("mdc", False), ("any", True)])
def test_the_readmission_rule_compares_the_group_it_names(same: str, caught: bool) -> None:
    rules = with_(PaymentRules.load(), readmission={"same": same, "earlier_factor": 0.5})
    first, _ = price(
        stay("2024-05-27", "2024-06-01"), stay("2024-06-05", "2024-06-09", drg="FM19"), rules=rules
    )["readmitted"]
    assert bool(first) is caught
