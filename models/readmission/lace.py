"""The LACE index (van Walraven et al., CMAJ 2010): the readmission score a hospital can compute by hand.

L, length of stay: < 1 day 0, 1 → 1, 2 → 2, 3 → 3, 4-6 → 4, 7-13 → 5, ≥ 14 → 7 points.
A, acuity: an emergency admission (入院途径 1 急诊, or 入院类型 2 急诊) → 3 points.
C, comorbidity: Charlson index of the stay's ICD-10 codes (Quan 2005 coding, ``features.comorbidity``):
0-3 → the same points, ≥ 4 → 5.
E, emergency-department visits in the 6 months before admission, at most 4 points. The abstracts have
no ED table, so, as in ``features.history``, these are the patient's earlier admissions through the
emergency route admitted in the 182 days before this admission.

The score is turned into a probability by the training period's readmission rate per score (the
framework's group-mean baseline over ``lace_score``), which is how LACE is calibrated in practice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.comorbidity import charlson_index, condition_masks
from features.point_in_time import Timeline, as_of, day_numbers

ED_LOOKBACK_DAYS = 182
EMERGENCY_SOURCE = 1
EMERGENCY_TYPE = 2


def _los_points(los: np.ndarray) -> np.ndarray:
    return np.select([los < 1, los <= 3, los <= 6, los <= 13], [0, los, 4, 5], 7).astype(np.int64)


def _emergency_visits(cases: pd.DataFrame, emergency: np.ndarray) -> np.ndarray:
    """Emergency admissions of the same patient admitted in the lookback window before each admission."""
    patient = pd.factorize(cases["patient_id"])[0].astype(np.int64)
    day = day_numbers(cases["admission_date"])
    visits = Timeline.of(patient[emergency], day[emergency])
    lo, hi = as_of(visits, patient, day, rule="before", lookback=ED_LOOKBACK_DAYS)
    return hi - lo


def lace(cases: pd.DataFrame) -> pd.DataFrame:
    """LACE points of each case (``lace_l``, ``lace_a``, ``lace_c``, ``lace_e``) and ``lace_score``.

    ``cases`` are canonical stays; earlier stays of the patients must be among them for E to count.
    """
    los = pd.to_numeric(cases["los_days"], errors="coerce").fillna(0).to_numpy(np.int64)
    emergency = (
        (pd.to_numeric(cases["admission_source"], errors="coerce") == EMERGENCY_SOURCE)
        | (pd.to_numeric(cases["admission_type"], errors="coerce") == EMERGENCY_TYPE)
    ).to_numpy()
    charlson = charlson_index(condition_masks(cases["principal_diagnosis"], cases["other_diagnoses"]))
    points = pd.DataFrame(
        {
            "lace_l": _los_points(los),
            "lace_a": np.where(emergency, 3, 0),
            "lace_c": np.where(charlson >= 4, 5, charlson).astype(np.int64),
            "lace_e": np.minimum(_emergency_visits(cases, emergency), 4),
        },
        index=cases.index,
    )
    return points.assign(lace_score=points.sum(axis=1))
