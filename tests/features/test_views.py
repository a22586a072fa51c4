"""Feature declarations: stage guard, registry and names."""

from __future__ import annotations

import pandas as pd
import pytest

from contract.errors import ConfigError, InputError
from contract.fields import STAGE_ORDER
from features.catalog import VIEWS
from features.pipeline import CaseFeatures
from features.view import (
    Columns,
    Feature,
    FeatureContext,
    FeatureStageError,
    FeatureView,
    field_stage,
    table_column,
    table_index,
    table_length,
)


def _empty(cases: Columns, context: FeatureContext) -> Columns:
    return {}


def test_a_feature_reading_a_later_field_fails_at_declaration() -> None:
    leaking = Feature("cost_so_far", "费用", "charges", ("total_cost",))
    with pytest.raises(FeatureStageError, match=r"cost_so_far.*total_cost.*discharge"):
        FeatureView("leak", "case", "admission", "leaks", (leaking,), _empty)
    with pytest.raises(FeatureStageError, match="los_days"):
        FeatureView(
            "leak", "case", "admission", "leaks", (Feature("los", "天数", "days", ("los_days",)),), _empty
        )
    with pytest.raises(FeatureStageError, match="not a field"):
        FeatureView(
            "typo", "case", "admission", "typo", (Feature("x", "x", "x", ("admision_date",)),), _empty
        )
    with pytest.raises(FeatureStageError, match="timed by 'discharge_date'"):
        FeatureView("late", "case", "admission", "late", (), _empty, timestamp="discharge_date")


def test_earlier_stays_discharge_fields_are_allowed_at_admission() -> None:
    prior_cost = Feature(
        "prior_cost", "既往费用", "earlier charges", ("patient_id",), prior_sources=("total_cost",)
    )
    view = FeatureView("ok", "patient", "admission", "ok", (prior_cost,), _empty)
    assert (view.stage, view.timestamp) == ("admission", "admission_date")  # timed by its stage's date
    assert FeatureView("ok", "case", "discharge", "ok", (Feature("c", "c", "c", ("total_cost",)),), _empty)


def test_registered_views_respect_their_stage_and_names_are_unique() -> None:
    catalog = CaseFeatures("discharge").catalog
    assert catalog["feature"].is_unique
    assert catalog["zh"].str.len().gt(0).all() and catalog["en"].str.len().gt(0).all()
    for view in VIEWS.values():
        for source in view.sources:
            assert STAGE_ORDER[field_stage(source)] <= STAGE_ORDER[view.stage]
    admission = CaseFeatures("admission").catalog
    assert set(admission["stage"]) == {"admission"}
    assert set(admission["feature"]) < set(catalog["feature"])
    assert "prior_admissions_365d" in set(admission["feature"])
    row = admission.set_index("feature").loc["prior_admissions_365d"]
    assert (row["zh"], row["en"]) == ("既往365天住院次数", "admissions in previous 365 days")


def test_registering_a_taken_name_fails() -> None:
    clash = FeatureView(
        "again", "case", "admission", "x", (Feature("age_years", "年龄", "age", ("age_years",)),), _empty
    )
    with pytest.raises(ValueError, match="age_years"):
        VIEWS.register(clash)


def test_views_only_see_columns_of_their_stage(
    hospital: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, set[str]] = {}
    for name in ("demographics", "costs"):
        view = VIEWS[name]

        def spy(cases: Columns, context: FeatureContext, view: FeatureView = view) -> Columns:
            seen[view.name] = set(cases)
            return view.compute(cases, context)

        monkeypatch.setitem(
            VIEWS, name, FeatureView(view.name, view.entity, view.stage, "spy", view.features, spy)
        )
    CaseFeatures("discharge", min_category_count=1).fit_transform(hospital.head(50))
    assert "discharge_date" not in seen["demographics"] and "total_cost" not in seen["demographics"]
    assert {"total_cost", "los_days", "admission_date"} <= seen["costs"]


def test_calendar_fields_are_pandas_own_on_every_kind_of_day() -> None:
    """The calendar view reads month, quarter and weekday off day numbers (cheaper for one case than a
    DatetimeIndex): the same as pandas' fields, before 1970, on 29 February, year ends and missing."""
    days = pd.Series(
        pd.to_datetime(["1969-12-31", "1900-02-28", "2000-02-29", "2024-03-31", "2025-12-28", None])
    )
    days = pd.concat([days, pd.Series(pd.date_range("2023-12-25", periods=400, freq="D"))], ignore_index=True)
    calendar = next(v for v in VIEWS.at("admission") if v.name == "calendar")
    got = pd.DataFrame(calendar.compute({"admission_date": days.to_numpy()}, FeatureContext()))
    index = pd.DatetimeIndex(days)
    expected = pd.DataFrame(
        {
            "admission_month": index.month.astype("float64"),
            "admission_quarter": index.quarter.astype("float64"),
            "admission_weekday": index.weekday.astype("float64"),
        }
    )
    pd.testing.assert_frame_equal(got, expected)


def test_cases_given_as_columns_get_the_features_of_their_frame(hospital: pd.DataFrame) -> None:
    """A request's rows may reach the features as columns (:data:`features.view.Table`, no frame
    built around them): the same features, indexed 0..n-1, with text dates parsed and bad ones named."""
    cases = hospital.head(60).set_axis(range(100, 160))
    features = CaseFeatures("discharge", min_category_count=1).fit(cases)
    columns = {name: cases[name].array for name in cases.columns}
    assert table_length(columns) == len(cases) and list(table_index(columns)) == list(range(len(cases)))
    assert table_length(cases) == len(cases) and table_index(cases).equals(cases.index)
    assert table_column(cases, "case_id").tolist() == columns["case_id"].tolist()
    expected = features.transform(cases, history=hospital).reset_index(drop=True)
    pd.testing.assert_frame_equal(features.transform(columns, history=hospital), expected)
    as_text = {**columns, "admission_date": cases["admission_date"].dt.strftime("%Y-%m-%d").to_numpy(object)}
    pd.testing.assert_frame_equal(features.transform(as_text, history=hospital), expected)
    as_text["admission_date"][3] = "not a day"
    with pytest.raises(InputError, match=r"admission_date of row 3 \(index 3\) is not a date"):
        features.transform(as_text)


def test_excluding_every_view_is_refused_by_name(hospital: pd.DataFrame) -> None:
    every = tuple(v.name for v in VIEWS.at("admission"))
    with pytest.raises(ConfigError, match="exclude leaves no feature view"):
        CaseFeatures("admission", exclude=every).fit(hospital)
