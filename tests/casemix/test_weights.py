"""Weight calibration, its fallbacks for small DRGs, and the editable CSV round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.casemix.weights import Calibration, calibrate_weights, read_weights, trim_mask, write_weights


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


def test_rw_is_mean_cost_over_overall_mean_with_credibility_fallback() -> None:
    table = calibrate_weights(history(FOUR_DRGS), Calibration(min_cases=30))
    overall = (40 * 10000 + 40 * 30000 + 10 * 20000 + 3 * 50000) / 93
    overall_los = (40 * 5 + 40 * 10 + 10 * 8 + 3 * 20) / 93
    assert table.loc["AA11", "rw"] == pytest.approx(10000 / overall)
    assert table.loc["BB11", "rw"] == pytest.approx(30000 / overall)
    # BB15 has 10 of 30 cases: a third its own mean, two thirds its ADRG's (BB1 has 50 cases).
    bb1 = (40 * 30000 + 10 * 20000) / 50
    assert table.loc["BB15", "mean_cost"] == pytest.approx(20000 / 3 + 2 * bb1 / 3)
    assert table.loc["BB15", "mean_los"] == pytest.approx(8 / 3 + 2 * ((40 * 10 + 10 * 8) / 50) / 3)
    # CC19 and its ADRG have 3 cases: both shrink with weight 0.1 on their own mean.
    cc1 = 0.1 * 50000 + 0.9 * overall
    assert table.loc["CC19", "mean_cost"] == pytest.approx(0.1 * 50000 + 0.9 * cc1)
    assert table.loc["CC19", "mean_los"] == pytest.approx(0.1 * 20 + 0.9 * (0.1 * 20 + 0.9 * overall_los))
    assert table.loc["CC19", "rw"] == pytest.approx(table.loc["CC19", "mean_cost"] / overall)
    assert table["source"].to_dict() == {"AA11": "drg", "BB11": "drg", "BB15": "adrg", "CC19": "shrunk"}
    assert table["n_cases"].tolist() == [40, 40, 10, 3]


def test_reference_cost_expresses_weights_in_regional_terms() -> None:
    table = calibrate_weights(history(FOUR_DRGS[:2]), Calibration(reference_cost=8000.0))
    assert table["rw"].tolist() == pytest.approx([10000 / 8000, 30000 / 8000])
    assert table["mean_cost"].tolist() == pytest.approx([10000.0, 30000.0])


def test_ungrouped_cases_do_not_count() -> None:
    frame = history(FOUR_DRGS[:2])
    noise = history([("0000", "00", 5, 1e6, 1)]).assign(status="ungroupable")
    table = calibrate_weights(pd.concat([frame, noise], ignore_index=True))
    assert list(table.index) == ["AA11", "BB11"]
    assert table.loc["AA11", "rw"] == pytest.approx(0.5)


def test_iqr_trimming_drops_an_extreme_case_only() -> None:
    costs = pd.Series([*np.linspace(9000, 11000, 40), 100_000.0, 1.0])
    keep = trim_mask(costs, pd.Series("AA11", index=costs.index), Calibration(trim="iqr", k=3))
    assert keep.sum() == 40 and not keep.iloc[-2] and not keep.iloc[-1]


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


def test_csv_round_trip_is_identical(tmp_path: Path) -> None:
    table = calibrate_weights(history(FOUR_DRGS))
    table.loc["AA11", "name"] = "颅内手术，伴严重并发症"
    path = write_weights(table, tmp_path / "weights" / "rw.csv")
    pd.testing.assert_frame_equal(read_weights(path), table)


def test_a_minimal_insurer_table_reads(tmp_path: Path) -> None:
    path = tmp_path / "rw.csv"
    path.write_text("drg,rw\nGZ13,0.85\nFM19,1.5\n", encoding="utf-8")
    table = read_weights(path)
    assert table["rw"].to_dict() == {"GZ13": 0.85, "FM19": 1.5}
    assert table["source"].tolist() == ["table", "table"]
    assert table["mean_cost"].isna().all() and table["name"].tolist() == [None, None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drg,rw\nGZ13,-1\n", "rw"),
        ("drg,rw\nGZ13,1\nGZ13,2\n", "GZ13"),
        ("drg,weight\nGZ13,1\n", "needs columns"),
        ("drg,rw,colour\nGZ13,1,red\n", "unknown"),
    ],
)
def test_bad_weight_tables_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rw.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_weights(path)


def test_calibration_without_grouped_cases_is_an_error() -> None:
    with pytest.raises(ValueError, match="no grouped case"):
        calibrate_weights(history(FOUR_DRGS).assign(status="invalid"))
