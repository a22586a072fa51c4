"""Money at stake by regrouping, on handmade cases whose DRGs are known (CHS-DRG 1.1 tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from casemix.engine import CasemixEngine
from casemix.grouper import Grouper
from casemix.payment import PaymentRules
from models.coding.whatif import corrections, diagnosis_variants, heavier_drg

BASE_RATE = 10_000.0  # the embedded rules' rate for 2023-2024 discharges
RW = {"ES31": 1.6, "ES33": 1.2, "ES35": 0.8, "OB19": 1.1, "OZ19": 0.5, "EX25": 0.6, "FV25": 0.9}


@pytest.fixture(scope="module")
def grouper() -> Grouper:
    return Grouper()


@pytest.fixture
def weights() -> pd.DataFrame:
    table = pd.DataFrame({"rw": RW}).rename_axis("drg")
    return table.assign(mean_cost=table["rw"] * BASE_RATE, mean_los=5.0)


def case(principal, others=None, procedure=None, planned=None, sex=1, age=57) -> dict:
    return {
        "case_id": f"c{principal}",
        "sex": sex,
        "age_years": age,
        "age_days": pd.NA,
        "birth_weight_g": np.nan,
        "department": "respiratory",
        "principal_diagnosis": principal,
        "other_diagnoses": others,
        "principal_procedure": procedure,
        "other_procedures": None,
        "planned_procedure": planned,
        "discharge_date": pd.Timestamp("2024-06-01"),
        "admission_date": pd.Timestamp("2024-05-25"),
        "los_days": 7,
        "total_cost": 9_000.0,  # inside the normal band of every DRG above: paid the standard
        "cost_negotiated_drugs": 0.0,
    }


@pytest.fixture
def cases() -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            case("J18.000", "E87.200"),  # pneumonia with a CC: ES33; without it ES35
            case(
                "O34.200x002", planned="74.1x01", sex=2, age=27
            ),  # caesarean planned, not coded: OZ19 → OB19
            case("J20.902", "I10.x00x002", age=86),  # bronchitis EX25; hypertension as principal FV25
        ]
    )
    return frame.astype({"age_days": "Int64"})


def test_variants_drop_and_swap_each_secondary():
    frame = pd.DataFrame({"principal_diagnosis": ["A", "B"], "other_diagnoses": ["x|y", None]})
    variants = diagnosis_variants(frame)
    drop = variants[variants["kind"] == "drop"].set_index("position")["other_diagnoses"]
    swap = variants[variants["kind"] == "swap"].set_index("position")
    assert drop.to_dict() == {0: "y", 1: "x"}
    assert swap["principal_diagnosis"].to_dict() == {0: "x", 1: "y"}
    assert swap["other_diagnoses"].to_dict() == {0: "A|y", 1: "x|A"}


def test_heavier_drg_is_the_next_split_up(grouper):
    assert heavier_drg(pd.Series(["ES35", "ES33", "ES31", "OB19"]), grouper.tables).tolist() == [
        "ES33",
        "ES31",
        None,
        None,
    ]


def test_money_at_stake_of_each_correction(cases, grouper, weights):
    found = corrections(cases, CasemixEngine(grouper.tables, PaymentRules.load()), weights)
    assert found["coded_drg"].tolist() == ["ES33", "OZ19", "EX25"]
    pneumonia, caesarean, bronchitis = found.iloc[0], found.iloc[1], found.iloc[2]
    # unsupported CC: dropping E87.200 leaves ES35, paid 0.4 RW less
    assert pneumonia["unsupported_cc_mcc_drg"] == "ES35" and pneumonia["unsupported_cc_mcc_code"] == "E87.200"
    assert pneumonia["unsupported_cc_mcc_money"] == pytest.approx((1.2 - 0.8) * BASE_RATE)
    # missed MCC: the heavier split ES31 would pay 0.4 RW more (negative: the hospital is underpaid)
    assert pneumonia["missed_cc_mcc_drg"] == "ES31"
    assert pneumonia["missed_cc_mcc_money"] == pytest.approx((1.2 - 1.6) * BASE_RATE)
    # missing procedure: coding the planned caesarean moves OZ19 to OB19
    assert caesarean["missing_procedure_drg"] == "OB19" and caesarean["missing_procedure_code"] == "74.1x01"
    assert caesarean["missing_procedure_money"] == pytest.approx((0.5 - 1.1) * BASE_RATE)
    assert caesarean["unsupported_cc_mcc_money"] == 0.0  # no secondary diagnosis to drop
    # wrong principal: hypertension as principal groups to FV25
    assert bronchitis["wrong_principal_drg"] == "FV25"
    assert bronchitis["wrong_principal_money"] == pytest.approx((0.6 - 0.9) * BASE_RATE)
