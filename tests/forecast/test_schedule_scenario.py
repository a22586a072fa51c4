"""Dated base rates, quarter shares and scenario files."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from models.forecast import RateSchedule, Scenario, load_scenario
from models.forecast.schedule import day_fraction_from


def test_rate_in_force_is_a_lookup_by_date(hm) -> None:
    assert hm.SCHEDULE.rate_on(date(2024, 12, 31)) == 10_000.0
    assert hm.SCHEDULE.rate_on(date(2025, 1, 1)) == 10_500.0
    days = pd.Series(pd.to_datetime(["2023-06-01", "2025-06-01"]))
    assert hm.SCHEDULE.rates_on(days).tolist() == [10_000.0, 10_500.0]


def test_a_change_inside_a_quarter_counts_by_days(hm) -> None:
    schedule = hm.SCHEDULE.changed_from(date(2026, 2, 15), yuan=11_550.0)
    quarters = pd.period_range("2026Q1", "2026Q2", freq="Q")
    shares = schedule.quarter_weights(quarters)
    after = (pd.Timestamp("2026-03-31") - pd.Timestamp("2026-02-15")).days + 1
    assert shares.loc[quarters[0], 11_550.0] == pytest.approx(after / 90)
    assert shares.loc[quarters[1]].to_dict() == {10_500.0: 0.0, 11_550.0: 1.0}
    assert day_fraction_from(date(2026, 2, 15), quarters) == pytest.approx([after / 90, 1.0])


def test_schedule_rejects_nonsense(hm) -> None:
    with pytest.raises(ValueError, match="increasing"):
        RateSchedule((date(2025, 1, 1), date(2024, 1, 1)), (1.0, 2.0))
    with pytest.raises(ValueError, match="either yuan or change"):
        hm.SCHEDULE.changed_from(date(2026, 1, 1))


def test_scenario_factors_select_leaves_and_dates(hm) -> None:
    scenario = Scenario(
        volume=[{"department": "cardiology", "adrg": "FM1", "change": 0.10}],
        cost=[{"department": "orthopaedics", "change": -0.05, "effective_from": date(2026, 4, 1)}],
    )
    quarters = pd.period_range("2026Q1", periods=2, freq="Q")
    volume = scenario.volume_factor(hm.LEAVES, quarters)
    cost = scenario.cost_factor(hm.LEAVES, quarters)
    assert volume[:, 0].tolist() == [1.1, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert np.allclose(cost[hm.LEAVES["department"] == "orthopaedics"], [[1.0, 0.95]])
    assert scenario.unmatched(hm.LEAVES) == []
    assert Scenario(cost=[{"department": "cardiolgy", "change": 0.1}]).unmatched(hm.LEAVES) == [
        "department 'cardiolgy'"
    ]


def test_scenario_file_errors_name_the_entry(hm, tmp_path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        'name = "rate"\n[[base_rate]]\neffective_from = 2026-01-01\nchange = 0.05\n', encoding="utf-8"
    )
    assert load_scenario(good).schedule(hm.SCHEDULE).rate_on(date(2026, 1, 1)) == pytest.approx(11_025.0)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[cost]]\ndepartment = "icu"\nchange = -2\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.toml: invalid scenario: cost\.0\.change"):
        load_scenario(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[cost]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read scenario"):
        load_scenario(broken)
