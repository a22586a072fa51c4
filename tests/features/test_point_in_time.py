"""Point-in-time correctness: a case's features use only what was recorded before its moment."""

from __future__ import annotations

import pandas as pd
import pytest

from contract.fields import fields_known_at
from features.pipeline import CaseFeatures

STAGES = ("admission", "discharge")


def _features(stage: str, cases: pd.DataFrame, fitted_on: pd.DataFrame, history: pd.DataFrame | None = None):
    model = CaseFeatures(stage, min_category_count=1).fit(fitted_on)
    return model.transform(cases, history=history)


def test_same_day_rule_windows_and_self_exclusion(make_case, case_frame) -> None:
    cases = case_frame(
        make_case("a", "p", "2024-01-01", "2024-01-05", total_cost=1000.0, admission_source=1),
        make_case(
            "b", "p", "2024-01-05", "2024-01-05", total_cost=2000.0
        ),  # admitted the day a ends; same-day stay
        make_case(
            "c", "p", "2024-01-04", "2024-01-20", total_cost=4000.0
        ),  # admitted before a was discharged
        make_case(
            "d", "p", "2024-04-04", "2024-04-06", total_cost=8000.0
        ),  # 90 days after a and b, 75 after c
        make_case("e", "q", "2024-04-04", "2024-04-05"),
    )
    x = _features("admission", cases, cases).set_axis(cases["case_id"])
    assert x.loc["a", "prior_admissions"] == 0
    assert x.loc["b", "prior_admissions"] == 1  # a (same-day rule), never b itself
    assert x.loc["b", "days_since_last_discharge"] == 0
    assert x.loc["b", "prior_emergency_admissions_90d"] == 1
    assert x.loc["c", "prior_admissions"] == 0  # a was still in hospital on c's admission day
    assert x.loc["d", "prior_admissions"] == 3
    assert x.loc["d", "prior_admissions_90d"] == 3  # discharged exactly 90 days before counts
    assert x.loc["d", "prior_cost_90d"] == 7000.0
    assert x.loc["d", "days_since_last_discharge"] == 75
    assert x.loc["d", "prior_readmissions_365d"] == 1  # b was admitted 0 days after a's discharge
    assert x.loc["d", "prior_charlson_index"] == 3  # I21 + E11.9 + I50 in earlier stays
    assert x.loc["e", "prior_admissions"] == 0
    moved = cases.assign(
        admission_date=cases["admission_date"].where(cases["case_id"] != "d", pd.Timestamp("2024-04-05"))
    )
    later = _features("admission", moved, cases).set_axis(cases["case_id"])
    assert later.loc["d", "prior_admissions_90d"] == 1  # a and b are now 91 days back; c remains


def _patient_with_stays(cases: pd.DataFrame, at_least: int) -> str:
    counts = cases["patient_id"].value_counts()
    return str(counts[counts >= at_least].index[0])


def _change_the_future(cases: pd.DataFrame, patient: str) -> tuple[pd.DataFrame, pd.Series]:
    """Move, change, delete and add admissions of ``patient`` after its second admission.

    Returns the changed frame and which of its cases are untouched and admitted no later than the cut.
    """
    own = cases[cases["patient_id"] == patient].sort_values("admission_date")
    cut = own["admission_date"].iloc[1]
    future = own[own["admission_date"] > cut]
    assert len(future) >= 2
    changed = cases.copy()
    moved, deleted = future.index[0], future.index[1]
    changed.loc[moved, ["admission_date", "discharge_date"]] += pd.Timedelta(days=40)
    changed.loc[moved, ["principal_diagnosis", "other_diagnoses"]] = ["C34.900", "C78.000|N18.500"]
    changed.loc[moved, "total_cost"] = 999_999.0
    changed = changed.drop(index=deleted)
    added = changed.loc[[moved]].assign(
        case_id="NEW", admission_date=cut + pd.Timedelta(days=1), discharge_date=cut + pd.Timedelta(days=2)
    )
    changed = pd.concat([changed, added])
    keep = (changed["patient_id"] != patient) | (changed["admission_date"] <= cut)
    return changed, keep & ~changed.index.isin([moved]) & (changed["case_id"] != "NEW")


@pytest.mark.parametrize("stage", STAGES)
def test_future_stays_do_not_change_earlier_features(hospital: pd.DataFrame, stage: str) -> None:
    patient = _patient_with_stays(hospital, 4)
    changed, untouched = _change_the_future(hospital, patient)
    before = _features(stage, hospital, hospital)
    after = _features(stage, changed, hospital)
    compared = changed.index[untouched]
    pd.testing.assert_frame_equal(after.loc[compared], before.loc[compared])
    own_later = changed.index[(changed["patient_id"] == patient) & ~untouched]
    assert not after.loc[own_later].equals(before.reindex(own_later))  # the test does move something


def test_admission_features_ignore_the_case_own_discharge_fields(hospital: pd.DataFrame) -> None:
    rows = hospital.index[::7]
    changed = hospital.copy()
    changed.loc[rows, "discharge_date"] += pd.Timedelta(days=10)
    changed.loc[rows, "los_days"] += 10
    changed.loc[rows, ["principal_diagnosis", "other_diagnoses"]] = ["C34.900", "C78.000|B20.000"]
    changed.loc[rows, "total_cost"] = 1.0
    model = CaseFeatures("admission", min_category_count=1).fit(hospital)
    for row in rows[:8]:
        alone = changed.loc[[row]]
        pd.testing.assert_frame_equal(model.transform(alone), model.transform(hospital.loc[[row]]))
    # and inside the full table each changed case keeps its own features
    pd.testing.assert_frame_equal(
        model.transform(changed).loc[rows, ["prior_admissions", "admission_diagnosis_category"]],
        model.transform(hospital).loc[rows, ["prior_admissions", "admission_diagnosis_category"]],
    )


@pytest.mark.parametrize("stage", STAGES)
def test_case_with_its_history_equals_case_within_the_full_table(hospital: pd.DataFrame, stage: str) -> None:
    model = CaseFeatures(stage, min_category_count=1).fit(hospital)
    full = model.transform(hospital)
    many = hospital["patient_id"].value_counts().index[:2]
    for row in hospital.index[hospital["patient_id"].isin(many)]:
        patient = hospital.loc[row, "patient_id"]
        history = hospital[(hospital["patient_id"] == patient) & (hospital.index != row)]
        alone = model.transform(hospital.loc[[row]], history=history)
        pd.testing.assert_frame_equal(alone, full.loc[[row]])


def test_pre_admission_request_needs_admission_columns_only(hospital: pd.DataFrame) -> None:
    model = CaseFeatures("admission", min_category_count=1).fit(hospital)
    request = hospital[[c for c in fields_known_at("admission") if c in hospital.columns]]
    assert "discharge_date" not in request.columns
    history = hospital.iloc[:0]
    pd.testing.assert_frame_equal(
        model.transform(request.iloc[:50], history=hospital),
        model.transform(hospital.iloc[:50], history=hospital),
    )
    optional_missing = request.drop(columns=["planned_procedure"]).iloc[:5]
    assert model.transform(optional_missing, history=history)["has_planned_procedure"].eq(0).all()


@pytest.mark.parametrize("stage", STAGES)
def test_demo_hospital_history_path_and_shape(demo_hospital, stage: str) -> None:
    cases = demo_hospital.cases
    model = CaseFeatures(stage).fit(cases)
    full = model.transform(cases)
    assert len(full) == len(cases) and full.index.equals(cases.index)
    assert full["prior_admissions"].gt(0).any() and full["days_since_last_discharge"].notna().any()
    frequent = cases["patient_id"].value_counts().index[0]
    rows = cases.index[cases["patient_id"] == frequent]
    alone = model.transform(cases.loc[rows], history=cases[cases["patient_id"] == frequent].iloc[:0])
    with_history = model.transform(cases.loc[rows[-1:]], history=cases.loc[rows[:-1]])
    pd.testing.assert_frame_equal(alone, full.loc[rows])
    pd.testing.assert_frame_equal(with_history, full.loc[rows[-1:]])
    if stage == "discharge":
        assert full["grouped"].mean() > 0.9
