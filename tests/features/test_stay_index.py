"""A StayIndex prepared once over a case store gives the same features as the per-request join."""

from __future__ import annotations

import pandas as pd
import pytest

from contract.fields import fields_known_at
from features.history import StayIndex
from features.pipeline import CaseFeatures
from pipelines.demo.generate import generate_demo


@pytest.fixture(scope="module")
def store() -> pd.DataFrame:
    return generate_demo(2000, 2, seed=5).cases


@pytest.mark.parametrize("stage", ["admission", "discharge"])
def test_prepared_index_equals_the_frame_join(store: pd.DataFrame, stage: str) -> None:
    columns = list(fields_known_at(stage)) + (["los_days"] if stage == "discharge" else [])
    features = CaseFeatures(stage).fit(store[columns], history=store)
    # One case per patient, as the service batches them; many patients have earlier stays.
    requests = store.sort_values("admission_date").groupby("patient_id").tail(1).head(300)
    assert (store["patient_id"].isin(requests["patient_id"]).sum()) > len(requests)  # history exists
    # A new patient with no stay in the store, and a new case of a known patient (not yet stored).
    new_patient = requests.iloc[[0]].assign(case_id="NEW-1", patient_id="NEW-PATIENT")
    new_case = requests.iloc[[1]].assign(
        case_id="NEW-2",
        admission_date=requests["discharge_date"].iloc[1] + pd.Timedelta(days=10),
        discharge_date=requests["discharge_date"].iloc[1] + pd.Timedelta(days=15),
    )
    requests = pd.concat([requests.iloc[2:], new_patient, new_case], ignore_index=True)
    expected = features.transform(requests[columns], history=store)
    prepared = features.transform(requests[columns], history=StayIndex(store))
    pd.testing.assert_frame_equal(prepared, expected)
    assert prepared["prior_admissions"].gt(0).any() and prepared["prior_admissions"].iloc[-2] == 0
    assert prepared["prior_admissions"].iloc[-1] >= 1  # the new case sees its patient's stored stays


def test_history_of_a_patient_depends_on_that_patient_only(store: pd.DataFrame) -> None:
    """Exactly, to the last bit: a Dask partition holding whole patients must give the store's answer.

    Window sums are differences of running sums over every patient's stays; in floats they carried
    the rounding of the patients sorted before (a cost of 6.5e-11 instead of 0).
    """
    from features.history import history_features

    whole = history_features(store, store)
    patients = store["patient_id"].drop_duplicates()
    mine = store["patient_id"].isin(patients.iloc[1::3]).to_numpy()
    alone = history_features(store[mine], store[mine])
    assert (alone["prior_cost_365d"] > 0).sum() > 50
    pd.testing.assert_frame_equal(alone, whole[mine], check_exact=True)
