"""Small valid canonical cases and export helpers, as fixtures (test folders are not packages)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from contract.fields import COST_CATEGORIES
from pipelines.mapping import load_mapping, to_canonical
from pipelines.readers import TEXT

# (sex, principal diagnosis, other diagnoses, principal procedure), codes from the CHS-DRG 1.1 dictionaries.
PROFILES = [
    (1, "J18.900", "I10.x00|E11.900", None),
    (2, "K35.800", None, "47.0900"),
    (1, "I21.900", "I10.x00", "36.0600"),
    (2, "S72.000", "E11.900|N18.500", "79.3500"),
]


def _make_cases(n: int = 8, seed: int = 0) -> pd.DataFrame:
    """n valid cases in canonical text form, as an export would hold them."""
    rng = np.random.default_rng(seed)
    profile = [PROFILES[i % len(PROFILES)] for i in range(n)]
    admitted = pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    stay = rng.integers(0, 12, n)
    costs = rng.integers(10, 3000, (n, len(COST_CATEGORIES))).astype(float)
    frame = pd.DataFrame(
        {
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
        }
    )
    return frame


def _to_cn_export(frame: pd.DataFrame) -> pd.DataFrame:
    """The same cases as a 病案首页 export in the cn-abstract preset's layout and values."""
    mapping = load_mapping("cn-abstract")
    out = {}
    for name, source in mapping.columns.items():
        if isinstance(source, list):  # the charge group's amount in its first item, the others empty or 0
            out[source[0]] = frame[name]
            for i, item in enumerate(source[1:]):
                out[item] = "0" if i % 2 else ""
        else:
            out[source] = frame[name]
    for name, prefix in mapping.wide.items():
        parts = frame[name].str.split("|", expand=True).reindex(columns=range(3))
        for i in range(3):
            out[f"{prefix}{i + 1}"] = parts[i].fillna("")
    export = pd.DataFrame(out)
    export["性别"] = frame["sex"].map({"1": "男", "2": "女"})
    export["入院日期"] = pd.to_datetime(frame["admission_date"]).map(lambda d: f"{d.year}/{d.month}/{d.day}")
    export["出院日期"] = pd.to_datetime(frame["discharge_date"]).dt.strftime("%Y%m%d")
    export["是否有出院31天内再住院计划"] = "1"
    export["离院方式"] = "医嘱离院"
    return export


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical typed cases from export text (no problems expected)."""
    cases, problems = to_canonical(frame.astype(TEXT), load_mapping())
    assert problems.empty, problems
    return cases


@pytest.fixture
def cases() -> pd.DataFrame:
    return _make_cases()


@pytest.fixture
def make_cases():
    return _make_cases


@pytest.fixture
def to_cn_export():
    return _to_cn_export


@pytest.fixture
def canonical():
    return _canonical
