"""Every check with a failing row (row 1) and passing rows (the others)."""

from __future__ import annotations

import pandas as pd
import pytest

from contract.fields import COST_CATEGORIES
from pipelines.mapping import load_mapping, to_canonical
from pipelines.readers import TEXT
from pipelines.validate import Rules, check_sex_specific, merge_problems, validate_cases

BAD = 1


def _problems(frame: pd.DataFrame, rules: Rules = Rules()) -> pd.DataFrame:
    cases, unreadable = to_canonical(frame.astype(TEXT), load_mapping())
    return merge_problems(unreadable, validate_cases(cases, rules))


def _errors(frame: pd.DataFrame, rules: Rules = Rules()) -> pd.DataFrame:
    problems = _problems(frame, rules)
    return problems[problems["severity"] == "error"]


def test_valid_cases_have_no_problems(cases: pd.DataFrame) -> None:
    assert _problems(cases).empty


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"department": ""}, "department", "required value missing"),
        ({"case_id": " "}, "case_id", "required value missing"),
        ({"age_years": "forty"}, "age_years", "not a whole number"),
        ({"age_years": "40.5"}, "age_years", "not a whole number"),
        ({"total_cost": "12,5x"}, "total_cost", "not a number"),
        ({"readmission_plan_31d": "maybe"}, "readmission_plan_31d", "not a yes/no value"),
        ({"admission_date": "2024-02-30"}, "admission_date", "not a date"),
        ({"age_years": "131"}, "age_years", "outside 0–130"),
        ({"age_years": "-1"}, "age_years", "outside 0–130"),
        ({"birth_weight_g": "150"}, "birth_weight_g", "outside 200–8000"),
        ({"age_years": "0", "age_days": "400"}, "age_days", "outside 0–365"),
        ({"sex": "0"}, "sex", "not an allowed code (1 男 male, 2 女 female)"),
        ({"admission_source": "5"}, "admission_source", "not an allowed code"),
        ({"admission_type": "4"}, "admission_type", "not an allowed code"),
        ({"insurance_type": "0"}, "insurance_type", "not an allowed code"),
        ({"discharge_disposition": "6"}, "discharge_disposition", "not an allowed code"),
        (
            {"audited": "true", "audit_error": "true", "audit_error_type": "typo"},
            "audit_error_type",
            "not an allowed code",
        ),
        (
            {"discharge_date": "2024-01-01", "admission_date": "2024-01-02"},
            "discharge_date",
            "before admission",
        ),
        ({"age_years": "0"}, "age_days", "age_days required when age_years is 0"),
        ({"audit_error": "true"}, "audit_error", "audited is not true"),
        (
            {"audited": "true", "audit_error": "false", "audit_error_type": "wrong_principal"},
            "audit_error_type",
            "audit_error is not true",
        ),
        ({"cost_negotiated_drugs": "1e6"}, "cost_negotiated_drugs", "more than cost_western_drugs"),
        (
            {"cost_self_funded": "1e6", "cost_first_self_paid": "1"},
            "cost_self_funded",
            "cost_first_self_paid more than total_cost",
        ),
        ({"cost_new_technology": "1e7"}, "cost_new_technology", "more than total_cost"),
        ({"case_id": "C00000"}, "case_id", "appears more than once"),
        ({"sex": "2", "principal_diagnosis": "N40.x00"}, "principal_diagnosis", "limited to the other sex"),
        ({"sex": "1", "other_diagnoses": "I10.x00|O80.000"}, "other_diagnoses", "limited to the other sex"),
        ({"sex": "1", "principal_diagnosis": "D25.900"}, "principal_diagnosis", "limited to the other sex"),
    ],
)
def test_failing_row_is_reported(cases: pd.DataFrame, changes: dict, field: str, reason: str) -> None:
    for column, value in changes.items():
        cases.loc[BAD, column] = value
    errors = _errors(cases)
    hit = errors[(errors["field"] == field) & errors["reason"].str.contains(reason, regex=False)]
    assert not hit.empty, errors
    duplicate = reason == "appears more than once"
    assert set(errors["row"]) == ({0, BAD} if duplicate else {BAD})


def test_negative_charge_group(cases: pd.DataFrame) -> None:
    cases.loc[BAD, "cost_tcm"] = "-5"
    cases.loc[BAD, "total_cost"] = str(cases.loc[BAD, list(COST_CATEGORIES)].astype(float).sum())
    errors = _errors(cases)
    assert errors[["row", "field", "reason"]].values.tolist() == [[BAD, "cost_tcm", "below 0"]]


def test_duplicate_case_id_rejects_every_copy(cases: pd.DataFrame) -> None:
    cases.loc[3, "case_id"] = cases.loc[5, "case_id"]
    errors = _errors(cases)
    assert sorted(errors.loc[errors["field"] == "case_id", "row"]) == [3, 5]


def test_passing_values_of_the_same_checks(cases: pd.DataFrame) -> None:
    cases.loc[0, ["age_years", "age_days", "birth_weight_g"]] = ["0", "12", "3200"]
    cases.loc[1, ["audited", "audit_error", "audit_error_type"]] = ["true", "true", "missed_cc_mcc"]
    cases.loc[2, ["sex", "principal_diagnosis", "other_diagnoses"]] = ["2", "D25.900", "O80.000"]
    cases.loc[3, ["sex", "principal_diagnosis"]] = ["1", "N40.x00"]
    cases.loc[4, "discharge_date"] = cases.loc[4, "admission_date"]
    cases.loc[5, "readmission_plan_31d"] = "1"
    assert _problems(cases).empty


def test_cost_tolerance_is_max_of_yuan_and_share(cases: pd.DataFrame) -> None:
    total = float(cases.loc[BAD, "total_cost"])
    cases.loc[BAD, "total_cost"] = str(total + 0.9)  # within 1 yuan
    assert _errors(cases).empty
    cases.loc[BAD, "total_cost"] = str(total * 1.004 + 1)  # within 0.5 % of the total (totals > 250 yuan)
    assert _errors(cases).empty
    cases.loc[BAD, "total_cost"] = str(total * 1.02 + 2)
    errors = _errors(cases)
    assert errors["field"].tolist() == ["total_cost"] and "do not add up" in errors["reason"].iloc[0]
    assert _errors(cases, Rules(cost_tolerance_share=0.05)).empty


def test_unknown_codes_are_warnings_not_errors(cases: pd.DataFrame) -> None:
    cases.loc[BAD, "principal_diagnosis"] = "ZZZ.999"
    cases.loc[BAD, "other_procedures"] = "99.9999x999|47.0900"
    problems = _problems(cases)
    assert set(problems["severity"]) == {"warning"}
    assert sorted(problems["value"]) == ["99.9999x999", "ZZZ.999"]
    assert set(problems["row"]) == {BAD}


def test_sex_specific_ranges_expand_by_trailing_digits(cases: pd.DataFrame, canonical) -> None:
    typed = canonical(cases)
    typed.loc[BAD, ["sex", "principal_diagnosis"]] = [2, "D07.500"]  # D07.4-D07.6 male only
    typed.loc[2, ["sex", "principal_diagnosis"]] = [2, "D07.300"]  # D07.0-D07.3 female only
    found = check_sex_specific(typed)
    assert found["row"].tolist() == [BAD]
    assert "male only" in found["value"].iloc[0]


def test_a_wrongly_typed_column_is_a_bug_not_a_reject(cases: pd.DataFrame, canonical) -> None:
    typed = canonical(cases).assign(age_years=lambda f: f["age_years"].astype(str))
    with pytest.raises(TypeError, match="age_years"):
        validate_cases(typed)
