"""LACE points on handmade stays."""

from __future__ import annotations

import pandas as pd

from models.readmission.lace import lace


def test_lace_points():
    cases = pd.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b"],
            "admission_date": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-05-01", "2024-05-01"]),
            "admission_source": [1, 1, 2, 2],
            "admission_type": [2, 2, 1, 1],
            "los_days": [1, 5, 14, 3],
            # I50 heart failure (1) + E11.2 diabetes with complications (2) + C78 metastasis (6)
            "principal_diagnosis": ["I50.900", "I50.900", "C34.101", "K35.800"],
            "other_diagnoses": [None, "E11.200", "C78.000|I50.900", None],
        }
    )
    points = lace(cases)
    assert points["lace_l"].tolist() == [1, 4, 7, 3]
    assert points["lace_a"].tolist() == [3, 3, 0, 0]
    assert points["lace_e"].tolist() == [0, 1, 2, 0]  # earlier emergency admissions in 182 days
    assert points["lace_c"].tolist()[0] == 1 and points["lace_c"].tolist()[2] == 5
    assert (points["lace_score"] == points[["lace_l", "lace_a", "lace_c", "lace_e"]].sum(axis=1)).all()
