"""The group-mean baseline and its fallbacks."""

from __future__ import annotations

import pandas as pd

from models.baselines import GroupMeanBaseline


def test_falls_back_from_group_to_department_to_overall() -> None:
    context = pd.DataFrame(
        {"department": ["A"] * 6 + ["B"] * 6, "category": ["x"] * 3 + ["y"] * 3 + ["z"] * 6}
    )
    targets = pd.DataFrame({"cost": [1.0, 1, 1, 3, 3, 3, 10, 10, 10, 10, 10, 10]})
    baseline = GroupMeanBaseline((("department", "category"), ("department",)), min_count=3).fit(
        context, targets
    )
    query = pd.DataFrame(
        {"department": ["A", "A", "B", "C"], "category": ["y", "new", "z", "x"]}, index=[5, 6, 7, 8]
    )
    predicted = baseline.predict(query)
    assert predicted.index.tolist() == [5, 6, 7, 8]
    assert predicted["cost"].tolist() == [3.0, 2.0, 10.0, targets["cost"].mean()]


def test_levels_whose_columns_are_absent_are_skipped() -> None:
    context = pd.DataFrame({"other": [1, 2]})
    baseline = GroupMeanBaseline((("department",),)).fit(context, pd.DataFrame({"cost": [2.0, 4.0]}))
    assert baseline.predict(context)["cost"].tolist() == [3.0, 3.0]
