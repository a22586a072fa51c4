"""The demo hospital's figures stay inside the ranges docs/demo-hospital.md states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casemix.grouper import Grouper
from casemix.indicators import casemix_indicators
from casemix.payment import PaymentRules, price_cases
from casemix.rw_table import read_weights
from contract.fields import COST_CATEGORIES
from contract.settings import CASEMIX_TABLES
from pipelines.demo import generate_demo
from pipelines.demo.catalog import load_catalog
from pipelines.demo.coding import fingerprint_failures, fingerprints


@pytest.fixture(scope="module")
def frame(demo_hospital):
    return demo_hospital.cases.assign(
        case_type=demo_hospital.oracle["case_type"].to_numpy(),
        stay_kind=demo_hospital.oracle["stay_kind"].to_numpy(),
    )


def test_grouping_rate_with_the_real_grouper(demo_hospital):
    grouped = Grouper().group_frame(demo_hospital.cases)
    assert (grouped["status"] == "grouped").mean() >= 0.95
    assert (demo_hospital.oracle["true_drg"] != "0000").mean() >= 0.98


def test_unplanned_30_day_readmission_rate(frame):
    s = frame.sort_values(["patient_id", "admission_date"])
    following = s.groupby("patient_id")["admission_date"].shift(-1)
    next_kind = s.groupby("patient_id")["stay_kind"].shift(-1)
    unplanned = ((following - s["discharge_date"]).dt.days <= 30) & (next_kind == "readmission")
    assert 0.06 <= unplanned.mean() <= 0.12
    assert 0.04 <= frame["readmission_plan_31d"].mean() <= 0.25
    cycles = frame[frame["stay_kind"] == "cycle"]
    assert cycles["principal_diagnosis"].str.startswith("Z51.1").mean() > 0.85


def test_deaths_transfers_newborns(frame):
    assert 0.003 <= (frame["discharge_disposition"] == 5).mean() <= 0.02
    assert 0.01 <= frame["discharge_disposition"].isin([2, 3]).mean() <= 0.05
    newborn = (frame["age_years"] == 0) & (frame["age_days"] <= 28)
    assert newborn.any()
    assert frame.loc[newborn, "birth_weight_g"].between(1000, 4500).all()
    assert frame.loc[~newborn, "birth_weight_g"].isna().all()


def test_costs_add_up_and_shares(frame):
    parts = frame[list(COST_CATEGORIES)].sum(axis=1)
    assert np.allclose(parts, frame["total_cost"], atol=0.011)
    assert (frame["cost_negotiated_drugs"] <= frame["cost_western_drugs"]).all()
    total = frame["total_cost"].sum()
    drugs = (frame["cost_western_drugs"] + frame["cost_chinese_drugs"]).sum() / total
    assert 0.25 <= drugs <= 0.38
    assert 0.2 <= frame["cost_consumables"].sum() / total <= 0.4
    fracture = frame[frame["case_type"] == "femoral_fracture_surgery"]
    assert 0.38 <= (fracture["cost_consumables"] / fracture["total_cost"]).mean() <= 0.5


def test_median_cost_of_known_groups(frame):
    median = frame.groupby("case_type")["total_cost"].median()
    assert 13_000 <= median["ami_medical"] <= 25_000
    assert 55_000 <= median["lung_cancer_surgery"] <= 90_000
    assert median["vaginal_delivery"] < median["caesarean"] < median["hip_knee_replacement"]
    assert median["chemotherapy"] < median["lung_cancer_surgery"]


def test_heavier_severity_costs_more(demo_hospital):
    level = demo_hospital.oracle["true_cc_level"].to_numpy()
    ratio = demo_hospital.cases["total_cost"] / demo_hospital.oracle["expected_cost"]
    by_level = demo_hospital.oracle.groupby(level)["expected_cost"].median()
    assert by_level[0] < by_level[1] < by_level[2]
    assert 0.85 <= ratio.mean() <= 1.15
    assert 0.4 <= (level > 0).mean() <= 0.65


@pytest.fixture(scope="module")
def larger():
    """Seasonality and error traces need more stays than the shared 4,000 (about 1,200 planted errors)."""
    return generate_demo(20_000, 3, 21)


def test_winter_peak_and_growth(larger):
    cases = larger.cases
    month = cases.loc[cases["department"] == "respiratory", "admission_date"].dt.month
    assert month.isin([12, 1, 2]).sum() > 1.4 * month.isin([6, 7, 8]).sum()
    year = cases["discharge_date"].dt.year.value_counts()
    assert year[2025] > year[2023] * 1.05


def test_coding_errors_and_audits(demo_hospital):
    cases, oracle = demo_hospital.cases, demo_hospital.oracle
    error = oracle["true_error_type"].notna()
    assert 0.03 <= error.mean() <= 0.12
    by_coder = error.groupby(cases["coder_id"]).mean()
    assert by_coder["coder_10"] > by_coder["coder_01"]
    audited = cases["audited"].astype(bool)
    assert 0.12 <= audited.mean() <= 0.25
    found = cases["audit_error"].fillna(False).astype(bool)
    assert (found == (audited & error)).all()
    assert cases.loc[found, "corrected_diagnoses"].notna().all()
    assert (cases.loc[found, "audit_error_type"] == oracle.loc[found, "true_error_type"]).all()
    missed = oracle["true_error_type"] == "missed_cc_mcc"
    assert (oracle.loc[missed, "true_cc_level"] > 0).all()


def test_chronic_conditions_persist_across_admissions(frame):
    repeat = frame[frame["patient_id"].duplicated(keep=False) & frame["other_diagnoses"].notna()]
    hypertension = repeat["other_diagnoses"].str.contains("I10.x00x002", regex=False)
    per_patient = hypertension.groupby(repeat["patient_id"]).agg(["any", "all"])
    assert per_patient["any"].sum() > 0
    assert (per_patient["all"].sum() / per_patient["any"].sum()) > 0.5


def test_settlement_pays_the_regional_weight_and_negotiated_drugs_once(frame):
    """A normal case of a DRG is paid RW × base rate, RW from the city's published table (calibrated on
    the region's cost net of negotiated drugs; ¥10,000 per RW before 2025-01-01, ¥10,500 after), plus its
    negotiated drugs, paid once outside the DRG; the fund and the patient share that payment."""
    table = read_weights(PaymentRules.load().calibration.rw_table)
    paid = frame[(frame["insurer_payment"] > 0) & frame["settled_drg"].notna()]
    drg_payment = (paid["insurer_payment"] + paid["self_pay"] - paid["cost_negotiated_drugs"]).round(0)
    for drg in paid["settled_drg"].value_counts().index[:3]:
        standard = drg_payment[paid["settled_drg"] == drg]
        after = paid.loc[standard.index, "discharge_date"] >= pd.Timestamp("2025-01-01")
        assert standard[~after].mode()[0] == pytest.approx(table.loc[drg, "rw"] * 10_000, abs=1)
        assert standard[after].mode()[0] == pytest.approx(table.loc[drg, "rw"] * 10_500, abs=1)
    assert (frame["insurer_payment"].dropna() >= 0).all()


@pytest.mark.parametrize(("payer", "deductible", "fund_ratio"), [(1, 1000.0, 0.85), (2, 800.0, 0.70)])
def test_patients_pay_the_schemes_share_of_the_charges(frame, payer, deductible, fund_ratio):
    """The patient's part is the fund formula of the city's rules, by hand: 全自费 + 先自付 items, the
    deductible (at most what is left) and the scheme's share of the rest — an employee ≈ 1/4, a
    resident ≈ 2/5 of the charges, as the schemes' reported actual reimbursement (about 75%, 60%)."""
    settled = frame[frame["settlement_date"].notna() & (frame["insurance_type"] == payer)]
    first = settled["cost_self_funded"] + settled["cost_first_self_paid"]
    policy = settled["total_cost"] - first
    deducted = np.minimum(deductible, policy)
    expected = first + deducted + (policy - deducted) * (1 - fund_ratio)
    assert np.allclose(settled["self_pay"], expected, atol=0.01)
    share = (settled["self_pay"] / settled["total_cost"]).median()
    assert (0.20 <= share <= 0.32) if payer == 1 else (0.33 <= share <= 0.48)
    assert (settled["insurer_payment"] >= 0).all()


def test_payers_outside_the_schemes_pay_their_charges(frame):
    """全自费, commercial, 全公费 and other payers are not in the city's schemes: at charges, nothing from
    the insurer, no DRG settled."""
    outside = frame[frame["settlement_date"].notna() & frame["insurance_type"].isin([5, 6, 7, 8, 9])]
    assert len(outside) > 0
    assert outside["settled_drg"].isna().all()
    assert (outside["insurer_payment"] == 0).all()
    assert np.allclose(outside["self_pay"], outside["total_cost"])


def test_the_hospital_is_measured_against_its_region(demo_hospital):
    """The regional table is not the hospital's own history: this tertiary hospital is dearer than its
    region and treats heavier cases, so its CMI and CCI are above 1 rather than 1 by construction."""
    rules = PaymentRules.load()
    cases = demo_hospital.cases
    grouped = cases.join(Grouper().group_frame(cases)[["status", "drg", "adrg"]])
    priced = price_cases(grouped.assign(hospital_id="H"), rules, read_weights(rules.calibration.rw_table))
    (row,) = casemix_indicators(priced, by=("hospital_id",), period=None).itertuples()
    assert 1.05 < row.cci < 1.6 and 1.05 < row.cmi < 2.5
    assert 0.8 < row.tci < 1.3


def test_case_types_land_in_their_adrg(demo_hospital):
    """The catalog's code pools are chosen so a type's true codes group into its ADRG."""
    adrg = load_catalog(CASEMIX_TABLES).types.set_index("key")["adrg"]
    oracle = demo_hospital.oracle
    intended = oracle["case_type"].map(adrg)
    assert (oracle["true_drg"].str[:3] == intended).mean() >= 0.97


def test_planted_errors_leave_no_fingerprints(larger):
    """Wrong principals are not always of another category than the admission's, clean stays leave planned
    procedures uncoded too, and swapped-in principals are principals the case type really has."""
    figures = fingerprints(larger.cases, larger.oracle)
    assert fingerprint_failures(figures) == []
    assert 0.08 <= figures["clean_admission_category_differs"] <= 0.3


def test_wrong_principal_and_unsupported_codes_come_from_the_stay_and_its_type(larger):
    cases, oracle = larger.cases, larger.oracle
    kind = oracle["true_error_type"]
    swapped = kind == "wrong_principal"
    own = [
        p in (others or "").split("|") and truth in (coded or "").split("|")
        for p, others, truth, coded in zip(
            cases.loc[swapped, "principal_diagnosis"],
            oracle.loc[swapped, "true_other_diagnoses"],
            oracle.loc[swapped, "true_principal_diagnosis"],
            cases.loc[swapped, "other_diagnoses"],
            strict=True,
        )
    ]
    assert swapped.sum() > 100 and all(own)
    # An unsupported CC/MCC is one that correctly coded stays of the same type carry as well.
    seen = (
        cases.loc[kind.isna(), "other_diagnoses"]
        .str.split("|")
        .explode()
        .to_frame("code")
        .assign(case_type=oracle["case_type"])
        .dropna()
    )
    known = set(zip(seen["case_type"], seen["code"], strict=True))
    unsupported = kind == "unsupported_cc_mcc"
    added = [
        set((coded or "").split("|")) - set((truth or "").split("|"))
        for coded, truth in zip(
            cases.loc[unsupported, "other_diagnoses"],
            oracle.loc[unsupported, "true_other_diagnoses"],
            strict=True,
        )
    ]
    assert all(len(codes) == 1 for codes in added)
    types = oracle.loc[unsupported, "case_type"]
    # Rare types have not shown every CC/MCC they may carry in 20,000 stays.
    assert np.mean([(t, next(iter(c))) in known for t, c in zip(types, added, strict=True)]) > 0.75
    # No more MCCs, nor CC/MCC codes, than correctly coded abstracts carry.
    vocabulary = load_catalog(CASEMIX_TABLES).diagnoses
    level = dict(zip(vocabulary.codes, vocabulary.level, strict=True))
    codes = cases["other_diagnoses"].fillna("").str.split("|")
    mccs = codes.map(lambda row: sum(level.get(c, 0) == 2 for c in row))
    leveled = codes.map(lambda row: sum(level.get(c, 0) > 0 for c in row))
    assert mccs[unsupported].max() <= mccs[kind.isna()].max()
    assert leveled[unsupported].max() <= leveled[kind.isna()].max()
