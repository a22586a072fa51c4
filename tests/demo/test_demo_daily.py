"""The demo hospital's daily tables: charges that add up to each stay's groups to the fen, shaped like a
ward's (bed every day, the operation on the surgery day), coding that grows, and stays still in hospital
on the last day cut there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contract.fields import COST_CATEGORIES, split_codes
from pipelines.demo import DemoHospital, generate_demo
from pipelines.demo.daily import largest_remainder
from pipelines.ingest import ingest_file

GROUPS = list(COST_CATEGORIES)


@pytest.fixture(scope="module")
def hospital() -> DemoHospital:
    return generate_demo(2500, 2, 17)


def test_days_add_up_to_every_charge_group_to_the_fen(hospital: DemoHospital) -> None:
    days = hospital.charges.groupby("case_id")[GROUPS].sum()
    cases = hospital.cases.set_index("case_id")[GROUPS]
    fen = np.round(days.loc[cases.index].to_numpy() * 100) - np.round(cases.to_numpy() * 100)
    assert np.abs(fen).max() == 0
    per_day = hospital.charges[GROUPS].to_numpy() * 100
    assert np.allclose(per_day, np.round(per_day)), "whole fen every day"


def test_a_stay_is_charged_on_each_of_its_days(hospital: DemoHospital) -> None:
    counts = hospital.charges.groupby("case_id").size()
    cases = hospital.cases.set_index("case_id")
    assert (counts.loc[cases.index] == cases["los_days"]).all()
    first = hospital.charges.groupby("case_id")["charge_date"].min().loc[cases.index]
    assert (first == cases["admission_date"]).all()
    assert (hospital.charges["cost_general_services"] > 0).mean() > 0.95, "bed and nursing every day"


def test_surgery_day_carries_the_consumables(hospital: DemoHospital) -> None:
    cases = hospital.cases
    long = cases[cases["principal_procedure"].notna() & (cases["los_days"] >= 4)]["case_id"]
    days = hospital.charges[hospital.charges["case_id"].isin(long)]
    peak = days.groupby("case_id")["cost_consumables"].transform("max") == days["cost_consumables"]
    share = (
        days.loc[peak].groupby("case_id")["cost_consumables"].sum()
        / days.groupby("case_id")["cost_consumables"].sum().loc[days.loc[peak, "case_id"].unique()]
    )
    assert share.median() > 0.6
    # the same day in the inpatients table is the one the procedures appear on
    records = hospital.inpatients[hospital.inpatients["case_id"].isin(long)]
    operated = records[records["procedures_so_far"].notna()].groupby("case_id")["recorded_date"].min()
    peak_day = days.loc[peak].groupby("case_id")["charge_date"].min()
    assert (operated.loc[peak_day.index] == peak_day).mean() > 0.9


def test_coding_grows_towards_the_abstract(hospital: DemoHospital) -> None:
    records = hospital.inpatients[hospital.inpatients["case_id"].isin(hospital.cases["case_id"])]
    first = records.groupby("case_id").head(1).set_index("case_id")
    last = records.groupby("case_id").tail(1).set_index("case_id")
    cases = hospital.cases.set_index("case_id")
    assert (first["recorded_date"] == cases.loc[first.index, "admission_date"]).all()
    admitted = first["working_diagnoses"].map(lambda v: split_codes(v)[0])
    assert (admitted == first["admission_diagnosis"]).mean() > 0.5
    final = cases.loc[last.index]
    expected = [
        "|".join([p, *split_codes(o)])
        for p, o in zip(final["principal_diagnosis"], final["other_diagnoses"], strict=True)
    ]
    assert (last["working_diagnoses"].to_numpy() == np.array(expected, dtype=object)).all()
    assert records.groupby("case_id").size().mean() > 1.5, "codes join on days of their own"


def test_stays_in_hospital_on_the_last_day_are_cut_there(hospital: DemoHospital) -> None:
    last_day = hospital.cases["discharge_date"].max()
    staying = hospital.in_hospital
    assert len(staying) > 10
    assert (staying["admission_date"] <= last_day).all() and (staying["discharge_date"] > last_day).all()
    assert not set(staying["case_id"]) & set(hospital.cases["case_id"])
    assert set(staying["patient_id"]) - set(hospital.cases["patient_id"]) != set(staying["patient_id"])
    charged = hospital.charges[hospital.charges["case_id"].isin(staying["case_id"])]
    assert charged["charge_date"].max() <= last_day
    to_date = charged.groupby("case_id")[GROUPS].sum()
    final = staying.set_index("case_id").loc[to_date.index, GROUPS]
    assert (to_date.to_numpy() <= final.to_numpy() + 1e-6).all()
    before = to_date.sum(axis=1) < final.sum(axis=1) - 0.005
    assert before.mean() > 0.8, "the days after the last one are not there (unless discharged next day)"
    assert set(staying["case_id"]) <= set(hospital.inpatients["case_id"])


def test_largest_remainder_is_exact_and_proportional() -> None:
    stay = np.array([0, 0, 0, 1, 1, 2])
    parts = largest_remainder(np.array([100, 7, 0]), np.array([1.0, 1.0, 1.0, 3.0, 1.0, 2.0]), stay)
    assert parts.tolist() == [34, 33, 33, 5, 2, 0]


def test_same_seed_same_daily_tables() -> None:
    first, second = generate_demo(600, 1, 3), generate_demo(600, 1, 3)
    pd.testing.assert_frame_equal(first.charges, second.charges)
    pd.testing.assert_frame_equal(first.inpatients, second.inpatients)


def test_written_daily_tables_ingest_without_rejects(settings, tmp_path: Path) -> None:
    paths = generate_demo(600, 1, 5).write(tmp_path, "csv")
    assert {p.name for p in paths} >= {"charges.csv", "inpatients.csv", "in_hospital_final.parquet"}
    for kind in ("charges", "inpatients"):
        result = ingest_file(tmp_path / f"{kind}.csv", kind=kind)
        assert result.rejected == 0 and result.accepted == result.rows_read > 0
