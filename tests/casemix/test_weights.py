"""Weight calibration from own history: trimming, 非稳定组, the adjustment step and the net-of-除外 cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from casemix.engine import CasemixEngine
from casemix.payment import PaymentRules, price_cases
from casemix.rw_table import ESTIMATED, weights_source
from casemix.weights import Calibration, calibrate_weights, trim_mask
from contract.fields import COST_CATEGORIES


def history(groups: list[tuple[str, str, int, float, int]]) -> pd.DataFrame:
    """Cases from (drg, adrg, n, cost, los) with identical cases inside a group."""
    rows = [
        {"status": "grouped", "drg": drg, "adrg": adrg, "total_cost": cost, "los_days": los}
        for drg, adrg, n, cost, los in groups
        for _ in range(n)
    ]
    return pd.DataFrame(rows)


FOUR_DRGS = [
    ("AA11", "AA1", 40, 10000.0, 5),
    ("BB11", "BB1", 40, 30000.0, 10),
    ("BB15", "BB1", 10, 20000.0, 8),
    ("CC19", "CC1", 3, 50000.0, 20),
]
OVERALL = (40 * 10000 + 40 * 30000 + 10 * 20000 + 3 * 50000) / 93
OVERALL_LOS = (40 * 5 + 40 * 10 + 10 * 8 + 3 * 20) / 93


def test_unstable_groups_take_their_adrg_or_no_weight() -> None:
    table = calibrate_weights(history(FOUR_DRGS), Calibration(min_cases=30, unstable="adrg"))
    assert table.loc["AA11", "rw"] == pytest.approx(10000 / OVERALL)
    assert table.loc["BB11", "rw"] == pytest.approx(30000 / OVERALL)
    # BB15 has 10 < 30 cases: its ADRG BB1 has 50, so BB15 takes BB1's mean cost and stay.
    assert table.loc["BB15", "mean_cost"] == pytest.approx((40 * 30000 + 10 * 20000) / 50)
    assert table.loc["BB15", "mean_los"] == pytest.approx((40 * 10 + 10 * 8) / 50)
    assert table.loc["BB15", "rw"] == pytest.approx(28000 / OVERALL)
    # CC19's ADRG has 3 cases too: no weight, so the payment rules settle it by item.
    assert list(table.index) == ["AA11", "BB11", "BB15"]
    assert table["source"].tolist() == ["drg", "drg", "adrg"]
    assert table["stable"].tolist() == [True, True, False]
    assert weights_source(table) == ESTIMATED


def test_unstable_groups_paid_by_item_get_no_weight() -> None:
    table = calibrate_weights(history(FOUR_DRGS), Calibration(min_cases=30, unstable="by_item"))
    assert list(table.index) == ["AA11", "BB11"]
    assert table["rw"].tolist() == pytest.approx([10000 / OVERALL, 30000 / OVERALL])


def test_shrink_blends_by_credibility() -> None:
    table = calibrate_weights(history(FOUR_DRGS), Calibration(min_cases=30, unstable="shrink"))
    # BB15 has 10 of 30 cases: a third its own mean, two thirds its ADRG's (BB1 has 50 cases).
    bb1 = (40 * 30000 + 10 * 20000) / 50
    assert table.loc["BB15", "mean_cost"] == pytest.approx(20000 / 3 + 2 * bb1 / 3)
    assert table.loc["BB15", "mean_los"] == pytest.approx(8 / 3 + 2 * ((40 * 10 + 10 * 8) / 50) / 3)
    # CC19 and its ADRG have 3 cases: both shrink with weight 0.1 on their own mean.
    cc1 = 0.1 * 50000 + 0.9 * OVERALL
    assert table.loc["CC19", "mean_cost"] == pytest.approx(0.1 * 50000 + 0.9 * cc1)
    assert table.loc["CC19", "mean_los"] == pytest.approx(0.1 * 20 + 0.9 * (0.1 * 20 + 0.9 * OVERALL_LOS))
    assert table.loc["CC19", "rw"] == pytest.approx(table.loc["CC19", "mean_cost"] / OVERALL)
    assert table["source"].to_dict() == {"AA11": "drg", "BB11": "drg", "BB15": "adrg", "CC19": "shrunk"}
    assert table["n_cases"].tolist() == [40, 40, 10, 3]


def test_a_too_variable_drg_is_unstable() -> None:
    # DD11: 30 cases at 1,000 and 10 at 30,000 — mean 8,250, SD √(6,307,500,000 / 39) ≈ 12,717, CV ≈ 1.54.
    frame = history(
        [("DD11", "DD1", 30, 1000.0, 3), ("DD11", "DD1", 10, 30000.0, 9), ("DD13", "DD1", 60, 5000.0, 4)]
    )
    calibration = Calibration(trim="none", min_cases=30, max_cv=1.0, unstable="adrg")
    table = calibrate_weights(frame, calibration)
    assert table.loc["DD11", "cv"] == pytest.approx((6_307_500_000 / 39) ** 0.5 / 8250)
    assert not table.loc["DD11", "stable"] and table.loc["DD13", "stable"]
    pooled = (30 * 1000 + 10 * 30000 + 60 * 5000) / 100
    assert table.loc["DD11", "mean_cost"] == pytest.approx(pooled)
    assert table.loc["DD11", "mean_los"] == pytest.approx((30 * 3 + 10 * 9 + 60 * 4) / 100)
    lenient = calibrate_weights(frame, calibration.model_copy(update={"max_cv": 2.0}))
    assert lenient.loc["DD11", "mean_cost"] == pytest.approx(8250.0)


def test_reference_cost_expresses_weights_in_regional_terms() -> None:
    table = calibrate_weights(history(FOUR_DRGS[:2]), Calibration(reference_cost=8000.0))
    assert table["rw"].tolist() == pytest.approx([10000 / 8000, 30000 / 8000])
    assert table["mean_cost"].tolist() == pytest.approx([10000.0, 30000.0])


def test_adjustment_to_a_mean_rw_of_one_or_a_budget() -> None:
    frame = history(FOUR_DRGS[:2])  # RW 1.25 and 3.75 against 8,000: mean RW 2.5, Σ RW 200
    mean_one = calibrate_weights(frame, Calibration(reference_cost=8000.0, adjust="mean_rw"))
    assert mean_one["rw"].tolist() == pytest.approx([0.5, 1.5])
    budget = Calibration(reference_cost=8000.0, adjust="budget", budget_yuan=1_000_000.0, base_rate=10_000.0)
    scaled = calibrate_weights(frame, budget)  # 1,000,000 / (10,000 × 200) = 0.5
    assert scaled["rw"].tolist() == pytest.approx([0.625, 1.875])
    assert scaled["mean_cost"].tolist() == pytest.approx([10000.0, 30000.0])  # the standards stay in yuan


def test_budget_adjustment_needs_its_budget() -> None:
    with pytest.raises(ValidationError, match="budget_yuan and base_rate"):
        Calibration(adjust="budget", budget_yuan=1e6)


def test_ungrouped_cases_do_not_count() -> None:
    frame = history(FOUR_DRGS[:2])
    noise = history([("0000", "00", 5, 1e6, 1)]).assign(status="ungroupable")
    table = calibrate_weights(pd.concat([frame, noise], ignore_index=True))
    assert list(table.index) == ["AA11", "BB11"]
    assert table.loc["AA11", "rw"] == pytest.approx(0.5)


def test_iqr_fence_is_q3_plus_k_iqr() -> None:
    # 100 … 900 and 1,800: Q1 = 325, Q3 = 775 (linear interpolation), IQR = 450. The upper fence is
    # 775 + 1.5 × 450 = 1,450 with k = 1.5, 775 + 3 × 450 = 2,125 with k = 3.
    costs = pd.Series([100.0, 200, 300, 400, 500, 600, 700, 800, 900, 1800])
    groups = pd.Series("AA11", index=costs.index)
    assert trim_mask(costs, groups, Calibration(trim="iqr", k=1.5)).tolist() == [True] * 9 + [False]
    assert trim_mask(costs, groups, Calibration(trim="iqr", k=3.0)).all()
    assert trim_mask(costs, groups, Calibration(trim="none")).all()


def test_iqr_trimming_drops_an_extreme_case_only() -> None:
    costs = pd.Series([*np.linspace(9000, 11000, 40), 100_000.0, 1.0])
    keep = trim_mask(costs, pd.Series("AA11", index=costs.index), Calibration(trim="iqr", k=3))
    assert keep.sum() == 40 and not keep.iloc[-2] and not keep.iloc[-1]


@pytest.mark.parametrize("trim", ["iqr", "percentile"])
def test_quantile_fences_are_each_drgs_own_and_a_case_without_drg_is_dropped(trim: str) -> None:
    """Fences come from each DRG's own costs (on a string index, DRGs interleaved); a case without
    a DRG has no fences and is not kept."""
    costs = pd.Series([100.0, 10_000, 110, 10_500, 120, 11_000, 130, 50.0], index=list("abcdefgh"))
    groups = pd.Series(["A", "B"] * 3 + ["A", None], index=costs.index)
    calibration = Calibration(trim=trim, k=1.5, lower=0.25, upper=0.75)
    expected = {"a": trim == "iqr", "b": trim == "iqr", "c": True, "d": True, "e": True}
    expected |= {"f": trim == "iqr", "g": trim == "iqr", "h": False}
    assert trim_mask(costs, groups, calibration).to_dict() == expected


def test_percentile_trimming_drops_the_tails() -> None:
    costs = pd.Series(np.arange(1.0, 101.0))
    keep = trim_mask(
        costs, pd.Series("X", index=costs.index), Calibration(trim="percentile", lower=0.05, upper=0.95)
    )
    assert costs[keep].min() == pytest.approx(6.0) and costs[keep].max() == pytest.approx(95.0)


def test_log_sd_trimming_is_per_drg_and_drops_zero_cost() -> None:
    rng = np.random.default_rng(0)
    costs = pd.Series([*np.exp(rng.normal(9, 0.3, 200)), 1e7, 0.0, *[500.0] * 5])
    groups = pd.Series(["A"] * 202 + ["B"] * 5)
    keep = trim_mask(costs, groups, Calibration(trim="log_sd", k=3))
    assert not keep.iloc[200] and not keep.iloc[201]
    assert keep.iloc[-5:].all()  # a DRG with identical costs keeps them all
    assert keep.iloc[:200].mean() > 0.98


def test_trimming_changes_the_weight() -> None:
    frame = history([("AA11", "AA1", 40, 10000.0, 5), ("BB11", "BB1", 40, 10000.0, 5)])
    frame.loc[0, "total_cost"] = 1_000_000.0
    table = calibrate_weights(frame)
    assert table["rw"].tolist() == pytest.approx([1.0, 1.0])
    assert table.loc["AA11", "n_cases"] == 39


def test_calibration_without_grouped_cases_is_an_error() -> None:
    with pytest.raises(ValueError, match="no grouped case"):
        calibrate_weights(history(FOUR_DRGS).assign(status="invalid"))


def test_negotiated_drugs_are_paid_once() -> None:
    """Weights estimated on cost net of 除外: a case costing its DRG's mean is paid exactly its cost.

    40 cases of 12,000, of which 2,000 negotiated drugs paid outside the DRG. With RW = mean cost /
    10,000 and a base rate of 10,000 the standard is the mean cost inside the DRG, 10,000, and the
    payment 10,000 + 2,000 = 12,000. Weights on the total cost would make it 12,000 + 2,000 = 14,000.
    """
    frame = history([("AA11", "AA1", 40, 12000.0, 5)]).assign(
        department="内科", discharge_date=pd.Timestamp("2024-06-01"), **dict.fromkeys(COST_CATEGORIES, 0.0)
    )
    frame = frame.assign(
        cost_general_services=10000.0, cost_western_drugs=2000.0, cost_negotiated_drugs=2000.0
    )
    default = PaymentRules.load()
    own_history = default.calibration.model_copy(update={"rw_table": None, "reference_cost": 10000.0})
    rules = default.model_copy(update={"calibration": own_history})
    weights = CasemixEngine(rules=rules).weights(frame)
    assert weights.loc["AA11", "mean_cost"] == pytest.approx(10000.0)
    priced = price_cases(frame, rules, weights)
    assert priced["drg_payment"].tolist() == pytest.approx([12000.0] * 40)
    assert priced["margin"].abs().max() == pytest.approx(0.0)


@pytest.mark.filterwarnings("error")  # (pandas warns on grouping by categories without ``observed``)
@pytest.mark.parametrize("unstable", ["adrg", "by_item", "shrink"])
def test_labels_as_categories_calibrate_as_text(unstable: str) -> None:
    """DRG and ADRG labels held as categories (``caselens group`` keeps them so for the writer), with
    a DRG of the tables no case has among the categories, give the weights their text gives, and
    no warning."""
    cases = history(FOUR_DRGS)
    coded = cases.assign(
        drg=pd.Categorical(cases["drg"], categories=["AA11", "BB11", "BB15", "CC19", "ZZ19"]),
        adrg=pd.Categorical(cases["adrg"], categories=["AA1", "BB1", "CC1", "ZZ1"]),
    )
    calibration = Calibration(min_cases=30, unstable=unstable)
    expected = calibrate_weights(cases, calibration)
    pd.testing.assert_frame_equal(calibrate_weights(coded, calibration), expected)
