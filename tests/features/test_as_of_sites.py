"""Every point-in-time site built on ``as_of`` gives, on the demo hospital, what a plain join gives.

Each expected value is computed here independently: a self-join of the stays on the patient (or coder)
and a filter written from the site's documented rule, not through ``features.point_in_time``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.history import StayIndex
from models.coding.features import error_history
from models.readmission.labels import _count_within
from models.readmission.lace import ED_LOOKBACK_DAYS, EMERGENCY_SOURCE, EMERGENCY_TYPE, lace


@pytest.fixture(scope="module")
def stays(demo_hospital) -> pd.DataFrame:
    return demo_hospital.cases.reset_index(drop=True)


def _pairs(left: pd.DataFrame, right: pd.DataFrame, on: str) -> pd.DataFrame:
    """Every (query row, event row) of one ``on`` value: the query's row number as ``row``, the event's
    columns suffixed ``_e``."""
    right = right.rename(columns={c: f"{c}_e" for c in right.columns if c != on})
    return left.assign(row=np.arange(len(left))).merge(right, on=on)


def _per_row(values: pd.Series, n: int) -> np.ndarray:
    return values.reindex(np.arange(n), fill_value=0).to_numpy(np.float64)


def test_stay_index_equals_a_self_join(stays: pd.DataFrame) -> None:
    n = len(stays)
    events = stays[["case_id", "patient_id", "admission_date", "discharge_date", "total_cost", "los_days"]]
    events = events.assign(emergency=(stays["admission_source"] == 1).astype(float))
    pairs = _pairs(stays[["case_id", "patient_id", "admission_date"]], events, "patient_id")
    # Each earlier stay's own readmission flag: admitted within 30 days of a discharge on or before it.
    stay_pairs = _pairs(events[["case_id", "patient_id", "admission_date"]], events, "patient_id")
    gap = (stay_pairs["admission_date"] - stay_pairs["discharge_date_e"]).dt.days
    readmitted = stay_pairs[(stay_pairs["case_id"] != stay_pairs["case_id_e"]) & gap.between(0, 30)]
    flag = pd.Series(0.0, index=events["case_id"].to_numpy())
    flag[readmitted["case_id"].unique()] = 1.0
    pairs["readmission"] = flag.reindex(pairs["case_id_e"]).to_numpy()
    gap = (pairs["admission_date"] - pairs["discharge_date_e"]).dt.days
    prior = pairs[(pairs["case_id"] != pairs["case_id_e"]) & (gap >= 0)].assign(gap=gap)
    found = StayIndex(stays).features(stays)

    assert np.array_equal(found["prior_admissions"], _per_row(prior.groupby("row").size(), n))
    last = prior.groupby("row")["gap"].min().reindex(np.arange(n)).to_numpy(np.float64)
    np.testing.assert_array_equal(found["days_since_last_discharge"].to_numpy(), last)
    for window in (90, 365):
        inside = prior[prior["gap"] <= window].groupby("row")
        expected = {
            f"prior_admissions_{window}d": inside.size(),
            f"prior_cost_{window}d": inside["total_cost_e"].sum(),
            f"prior_los_days_{window}d": inside["los_days_e"].sum(),
            f"prior_readmissions_{window}d": inside["readmission"].sum(),
            f"prior_emergency_admissions_{window}d": inside["emergency_e"].sum(),
        }
        for name, values in expected.items():
            np.testing.assert_allclose(found[name].to_numpy(), _per_row(values, n), atol=1e-6, err_msg=name)
    assert found["prior_admissions"].gt(0).mean() > 0.2  # the demo has real histories to compare


def test_lace_emergency_visits_equal_a_self_join(stays: pd.DataFrame) -> None:
    emergency = (stays["admission_source"] == EMERGENCY_SOURCE) | (stays["admission_type"] == EMERGENCY_TYPE)
    visits = stays.loc[emergency.to_numpy(), ["patient_id", "admission_date"]]
    pairs = _pairs(stays[["patient_id", "admission_date"]], visits, "patient_id")
    back = (pairs["admission_date"] - pairs["admission_date_e"]).dt.days
    counted = pairs[(back > 0) & (back <= ED_LOOKBACK_DAYS)].groupby("row").size()
    expected = np.minimum(_per_row(counted, len(stays)), 4)
    found = lace(stays)["lace_e"].to_numpy()
    assert np.array_equal(found, expected) and (found > 0).any()


def test_readmission_windows_equal_a_self_join(stays: pd.DataFrame) -> None:
    block = pd.factorize(stays["patient_id"])[0].astype(np.int64)
    day = stays["admission_date"].to_numpy("datetime64[D]").astype(np.int64)
    lo = stays["discharge_date"].to_numpy("datetime64[D]").astype(np.int64)
    counted = np.random.default_rng(3).random(len(stays)) < 0.8
    found = _count_within(block, day, counted, lo, 30)

    frame = pd.DataFrame({"block": block, "day": day, "lo": lo})
    pairs = _pairs(frame, frame.assign(event=np.arange(len(frame)))[counted], "block")
    inside = (pairs["day_e"] >= pairs["lo"]) & (pairs["day_e"] <= pairs["lo"] + 30)
    expected = pairs[inside & (pairs["event_e"] != pairs["row"])].groupby("row").size()
    assert np.array_equal(found, _per_row(expected, len(stays))) and (found > 0).any()


def test_coder_error_history_equals_a_self_join(stays: pd.DataFrame) -> None:
    audits = stays.loc[stays["audit_date"].notna().to_numpy(), ["coder_id", "audit_date", "audit_error"]]
    found = error_history(stays, audits, "coder_id")
    audits = audits.assign(audit_error=audits["audit_error"].astype("boolean").fillna(False).astype(float))

    pairs = _pairs(stays[["coder_id", "discharge_date"]], audits, "coder_id")
    before = pairs[pairs["audit_date_e"] < pairs["discharge_date"]].groupby("row")
    count = _per_row(before.size(), len(stays))
    errors = _per_row(before["audit_error_e"].sum(), len(stays))
    every = _pairs(stays[["discharge_date"]].assign(k=0), audits.assign(k=0), "k")
    overall = every[every["audit_date_e"] < every["discharge_date"]].groupby("row")["audit_error_e"]
    rate = overall.mean().reindex(np.arange(len(stays))).to_numpy(np.float64)
    np.testing.assert_array_equal(found["coder_prior_audits"].to_numpy(), count)
    np.testing.assert_allclose(
        found["coder_prior_error_rate"].to_numpy(), (errors + 20 * rate) / (count + 20), rtol=1e-12
    )
    assert count.max() > 0
