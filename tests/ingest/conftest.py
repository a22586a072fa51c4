"""Small valid canonical cases, and helpers to write them as exports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import COST_CATEGORIES

# (sex, principal diagnosis, other diagnoses, principal procedure): all codes are in the CHS-DRG 1.1 dictionaries.
PROFILES = [
    (1, "J18.900", "I10.x00|E11.900", None),
    (2, "K35.800", None, "47.0900"),
    (1, "I21.900", "I10.x00", "36.0600"),
    (2, "S72.000", "E11.900|N18.500", "79.3500"),
]


def make_cases(n: int = 8, seed: int = 0) -> pd.DataFrame:
    """n valid cases in canonical text form, as an export would hold them."""
    rng = np.random.default_rng(seed)
    profile = [PROFILES[i % len(PROFILES)] for i in range(n)]
    admitted = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    stay = rng.integers(0, 12, n)
    costs = rng.integers(10, 3000, (n, len(COST_CATEGORIES))).astype(float)
    frame = pd.DataFrame({
        "case_id": [f"C{i:05d}" for i in range(n)],
        "patient_id": [f"P{i // 2:05d}" for i in range(n)],
        "hospital_id": "H1",
        "department": "内科",
        "admission_date": admitted.strftime("%Y-%m-%d"),
        "admission_source": "2",
        "admission_type": "1",
        "sex": [str(p[0]) for p in profile],
        "age_years": rng.integers(18, 90, n).astype(str),
        "age_days": "",
        "birth_weight_g": "",
        "insurance_type": "1",
        "admission_diagnosis": [p[1] for p in profile],
        "planned_procedure": "",
        "discharge_date": (admitted + pd.to_timedelta(stay, unit="D")).strftime("%Y-%m-%d"),
        "discharge_department": "内科",
        "principal_diagnosis": [p[1] for p in profile],
        "other_diagnoses": [p[2] or "" for p in profile],
        "principal_procedure": [p[3] or "" for p in profile],
        "other_procedures": "",
        "discharge_disposition": "1",
        "readmission_plan_31d": "false",
        "coder_id": "K01",
        "total_cost": costs.sum(axis=1).round(2).astype(str),
        **{name: costs[:, i].astype(str) for i, name in enumerate(COST_CATEGORIES)},
        "cost_negotiated_drugs": "0",
        "settlement_date": "",
        "settled_drg": "",
        "insurer_payment": "",
        "self_pay": "",
        "audited": "",
        "audit_date": "",
        "audit_error": "",
        "audit_error_type": "",
        "corrected_diagnoses": "",
        "corrected_procedures": "",
    })
    return frame


@pytest.fixture
def cases() -> pd.DataFrame:
    return make_cases()
