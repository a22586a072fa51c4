"""The time split: later periods test, earlier ones train, and bad period data is refused."""

from __future__ import annotations

import pandas as pd
import pytest

from models.errors import TrainingInputError
from models.split import TimeSplit


def _dates(n: int = 400, start: str = "2023-01-01", days: int = 730) -> pd.Series:
    offsets = pd.to_timedelta(pd.Series(range(n)) * days // n, unit="D")
    return (pd.Timestamp(start) + offsets).sample(frac=1, random_state=0).rename("discharge_date")


def test_no_test_case_is_earlier_than_a_training_case() -> None:
    dates = _dates()
    parts = TimeSplit(min_rows=10).assign(dates)
    assert dates[parts == "test"].min() > dates[parts == "validation"].max()
    assert dates[parts == "validation"].min() > dates[parts == "train"].max()
    assert set(dates[parts == "test"].dt.to_period("Q")) == {pd.Period("2024Q4")}


def test_periods_are_configurable() -> None:
    dates = _dates()
    parts = TimeSplit(freq="M", validation_periods=2, test_periods=3, min_rows=5).assign(dates)
    assert dates[parts == "test"].dt.to_period("M").nunique() == 3
    assert dates[parts == "validation"].dt.to_period("M").nunique() == 2


def test_a_group_column_orders_the_split_as_given() -> None:
    groups = pd.Series([3, 1, 2, 4, 4, 1, 2, 3] * 10, name="period")
    parts = TimeSplit(min_rows=5).assign(groups)
    assert set(groups[parts == "test"]) == {4} and set(groups[parts == "validation"]) == {3}


def test_too_few_periods_is_an_error_naming_them() -> None:
    dates = pd.Series(pd.to_datetime(["2024-01-05", "2024-04-05"] * 50), name="discharge_date")
    with pytest.raises(TrainingInputError, match=r"2 period\(s\).*needs at least 3"):
        TimeSplit(min_rows=1).assign(dates)


def test_a_thin_part_is_an_error_naming_it() -> None:
    dates = pd.Series(pd.to_datetime(["2024-01-05"] * 100 + ["2024-04-05"] * 100 + ["2024-07-05"] * 3))
    with pytest.raises(TrainingInputError, match=r"the test part \(2024Q3..2024Q3\) has 3 rows"):
        TimeSplit(min_rows=50).assign(dates.rename("discharge_date"))


def test_a_missing_period_names_the_row() -> None:
    dates = _dates()
    dates.iloc[7] = pd.NaT
    with pytest.raises(TrainingInputError, match=rf"row {dates.index[7]}"):
        TimeSplit(min_rows=10).assign(dates)
