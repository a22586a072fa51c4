"""The readmission label rules on handmade histories: planned, death, transfer, censoring, split flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.readmission.labels import LABEL, ReadmissionRules, readmission_labels

END = "2024-12-31"


def stay(
    patient,
    admitted,
    discharged,
    principal="I50.900",
    admission_type=2,
    disposition=1,
    plan=False,
    department="cardiology",
):
    return {
        "patient_id": patient,
        "admission_date": pd.Timestamp(admitted),
        "discharge_date": pd.Timestamp(discharged),
        "department": department,
        "principal_diagnosis": principal,
        "admission_type": admission_type,
        "discharge_disposition": disposition,
        "readmission_plan_31d": plan,
    }


def labels(*stays, adrg=None, **kwargs):
    cases = pd.DataFrame(list(stays))
    cases["readmission_plan_31d"] = cases["readmission_plan_31d"].astype("boolean")
    return readmission_labels(cases, data_end=pd.Timestamp(END), adrg=adrg, **kwargs)


def test_unplanned_readmission_within_30_days_counts_and_day_31_does_not():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05"),
        stay("a", "2024-02-04", "2024-02-08"),  # 30 days after discharge: counts
        stay("b", "2024-01-01", "2024-01-05"),
        stay("b", "2024-02-05", "2024-02-08"),  # 31 days: does not
        stay("c", "2024-03-01", "2024-03-05"),
        stay("c", "2024-03-05", "2024-03-06"),  # admitted on the discharge day: counts
    )
    assert found[LABEL].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_planned_care_principal_is_not_a_readmission():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05", principal="C34.101"),
        stay("a", "2024-01-26", "2024-01-28", principal="Z51.104", admission_type=1),  # chemotherapy cycle
        stay("b", "2024-01-01", "2024-01-05"),
        stay("b", "2024-01-20", "2024-01-30", principal="Z50.000"),  # planned rehabilitation
    )
    assert found[LABEL].iloc[[0, 2]].tolist() == [0.0, 0.0]


def test_plan_flag_covers_elective_returns_but_not_emergencies():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05", plan=True),
        stay("a", "2024-01-20", "2024-01-22", principal="M17.100", admission_type=1),  # staged, elective
        stay("b", "2024-01-01", "2024-01-05", plan=True),
        stay("b", "2024-01-12", "2024-01-20", admission_type=2),  # emergency before the planned return
    )
    assert found[LABEL].iloc[[0, 2]].tolist() == [0.0, 1.0]


def test_death_and_transfer_are_not_labels_but_community_transfer_is():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05", disposition=5),
        stay("b", "2024-01-01", "2024-01-05", disposition=2),
        stay("b", "2024-01-10", "2024-01-15"),
        stay("c", "2024-01-01", "2024-01-05", disposition=3),
        stay("c", "2024-01-10", "2024-01-15"),
    )
    assert found["label_status"].tolist() == ["died", "transferred", "label", "label", "label"]
    assert np.isnan(found[LABEL].iloc[0]) and np.isnan(found[LABEL].iloc[1])
    assert found[LABEL].iloc[3] == 1.0


def test_stays_without_30_days_of_follow_up_are_censored():
    found = labels(
        stay("a", "2024-11-25", "2024-12-01"),  # 30 days later is exactly the data's end: a label
        stay("b", "2024-11-25", "2024-12-02"),  # one day short: censored
    )
    assert found["label_status"].tolist() == ["label", "censored"]
    assert np.isnan(found[LABEL].iloc[1])


def test_default_end_is_the_last_discharge():
    cases = pd.DataFrame([stay("a", "2024-01-01", "2024-01-05"), stay("b", "2024-01-20", "2024-01-25")])
    cases["readmission_plan_31d"] = cases["readmission_plan_31d"].astype("boolean")
    assert readmission_labels(cases)["label_status"].tolist() == ["censored", "censored"]


def test_other_departments_count_hospital_wide_but_not_same_department():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05", department="orthopaedics"),
        stay("a", "2024-01-15", "2024-01-20", department="cardiology"),
    )
    assert found[LABEL].iloc[0] == 1.0
    assert found["readmitted_same_department"].iloc[0] == 0.0


def test_split_hospitalisation_flag_needs_same_adrg_within_15_days():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05"),
        stay("a", "2024-01-20", "2024-01-25"),  # 15 days, same ADRG: flagged
        stay("b", "2024-01-01", "2024-01-05"),
        stay("b", "2024-01-21", "2024-01-25"),  # 16 days: not
        stay("c", "2024-01-01", "2024-01-05"),
        stay("c", "2024-01-08", "2024-01-12"),  # other ADRG: not
        adrg=pd.Series(["FR2", "FR2", "FR2", "FR2", "FR2", "ES3"]),
    )
    assert found["split_suspect_15d"].tolist() == [True, False, False, False, False, False]


def test_rules_are_configurable():
    found = labels(
        stay("a", "2024-01-01", "2024-01-05"),
        stay("a", "2024-01-25", "2024-01-30"),
        rules=ReadmissionRules(window_days=14),
    )
    assert found[LABEL].iloc[0] == 0.0


def test_missing_dates_name_the_row():
    cases = pd.DataFrame([stay("a", "2024-01-01", "2024-01-05")])
    cases.loc[0, "discharge_date"] = pd.NaT
    with pytest.raises(ValueError, match="row 0: discharge_date is missing"):
        readmission_labels(cases)


def test_labels_on_the_demo_hospital_match_the_oracle_rate(demo_hospital):
    found = readmission_labels(demo_hospital.cases)
    labelled = found["label_status"] == "label"
    rate = found.loc[labelled, LABEL].mean()
    truth = demo_hospital.oracle.loc[labelled.to_numpy(), "true_readmission_prob"].mean()
    assert abs(rate - truth) < 0.03
    assert (
        found.loc[demo_hospital.cases["discharge_disposition"].eq(5).to_numpy(), "label_status"] == "died"
    ).all()
