"""The champion protocol: challenger and champion are compared only on periods neither has seen."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from models.tasks import get_task
from models.tracking import after
from pipelines.training.data import table_data
from pipelines.training.run import train

from .conftest import cost_table

pytestmark = pytest.mark.slow
COST = get_task("cost")


def _train(table: pd.DataFrame, config: dict, settings) -> object:
    return train(COST, table_data(COST, table, "cost", "quarter"), config, settings)


def test_after_compares_periods_by_time_number_or_text() -> None:
    quarters = pd.Series(pd.PeriodIndex(["2025Q2", "2025Q3", "2025Q4"], freq="Q"))
    assert after(quarters, "2025Q3").tolist() == [False, False, True]
    assert after(quarters, "2025-08").tolist() == [False, False, True]  # a champion split by month
    assert after(pd.Series([8, 9, 10]), "9").tolist() == [False, False, True]  # 10 > 9, not "10" < "9"
    assert after(pd.Series(["2024Q1", "2024Q2"]), "2024Q1").tolist() == [False, True]
    with pytest.raises(ValueError):  # a table's block number is no calendar period: decide_champion
        after(quarters, "block 7")  # then compares on the whole test period and says so


def test_a_champion_that_saw_the_test_period_is_not_compared_on_it(config, tracking) -> None:
    """A champion trained on a longer extract trained and calibrated on the challenger's test
    quarter: scoring it there would flatter it, so there is no comparison and it stays."""
    longer = cost_table(n=4000, quarters=8)
    shorter = longer[longer["quarter"] <= "2024Q2"]  # 6 quarters: test 2024Q2, which the first one trained on
    champion = _train(longer, config, tracking)
    assert champion.split["validation_periods"] == "2024Q3..2024Q3"
    challenger = _train(shorter, config, tracking)
    assert challenger.split["test_periods"] == "2024Q2..2024Q2"
    assert not challenger.promoted
    assert "up to 2024Q3" in challenger.reason and "no period neither model has seen" in challenger.reason
    current = MlflowClient().get_model_version_by_alias("caselens-cost", "champion")
    assert str(current.version) == champion.model_version


def test_a_later_challenger_is_compared_on_its_own_test_period(config, tracking, shrink) -> None:
    """The usual case: the champion was trained on an earlier extract; both are scored on the new
    test quarter, which neither saw, and the reason names it."""
    longer = cost_table(n=4000, quarters=8)
    first = _train(longer[longer["quarter"] <= "2024Q2"], shrink(config, n_estimators=2), tracking)
    second = _train(longer, config, tracking)
    assert first.promoted and second.promoted
    assert "beats champion v1" in second.reason and second.reason.endswith("on 2024Q4..2024Q4")
    assert second.metrics["mae"] < second.baseline_metrics["mae"]
