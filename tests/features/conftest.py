"""Small canonical case frames for the feature tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.fields import COST_CATEGORIES
from experiments.benchmarks.features import synthetic_cases


def _make_case(
    case_id: str, patient_id: str, admitted: str, discharged: str, **fields: object
) -> dict[str, object]:
    """One canonical stay with plausible defaults; ``fields`` override any column."""
    cost = float(fields.pop("total_cost", 10_000.0))
    case: dict[str, object] = {
        "case_id": case_id,
        "patient_id": patient_id,
        "department": "心内科",
        "admission_date": pd.Timestamp(admitted),
        "admission_source": 2,
        "admission_type": 1,
        "sex": 1,
        "age_years": 70,
        "insurance_type": 1,
        "admission_diagnosis": "I21.000",
        "planned_procedure": None,
        "discharge_date": pd.Timestamp(discharged),
        "principal_diagnosis": "I21.000",
        "other_diagnoses": "E11.900|I50.900",
        "principal_procedure": "36.0600",
        "other_procedures": None,
        "discharge_disposition": 1,
        "total_cost": cost,
        **{c: cost / len(COST_CATEGORIES) for c in COST_CATEGORIES},
    }
    case.update(fields)
    return case


def _frame(*cases: dict[str, object]) -> pd.DataFrame:
    out = pd.DataFrame(list(cases))
    out["admission_date"] = out["admission_date"].astype("datetime64[ns]")
    out["discharge_date"] = out["discharge_date"].astype("datetime64[ns]")
    out["los_days"] = (out["discharge_date"] - out["admission_date"]).dt.days.clip(lower=1).astype(np.int64)
    return out


@pytest.fixture(scope="session")
def make_case():
    """Build one stay: ``make_case(case_id, patient_id, admitted, discharged, **overrides)``."""
    return _make_case


@pytest.fixture(scope="session")
def case_frame():
    """Build a canonical frame (dates typed, los_days derived) from ``make_case`` dicts."""
    return _frame


@pytest.fixture(scope="session")
def hospital() -> pd.DataFrame:
    """About 600 stays of 200 patients with several stays each, codes from the CHS-DRG dictionaries."""
    return synthetic_cases(600, seed=7)
