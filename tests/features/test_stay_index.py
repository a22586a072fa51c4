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


def test_feature_columns_are_the_features_by_name_of_queries_given_by_column(store: pd.DataFrame) -> None:
    """What the feature views read (no frame): the same numbers as :meth:`StayIndex.features`, from the
    queries' columns as arrays as from their frame."""
    index = StayIndex(store)
    queries = store.sample(200, random_state=1)[["case_id", "patient_id", "admission_date"]]
    expected = index.features(queries)
    got = index.feature_columns({name: queries[name].to_numpy() for name in queries.columns})
    assert list(got) == list(expected.columns)
    pd.testing.assert_frame_equal(pd.DataFrame(got, index=queries.index), expected, check_exact=True)
    assert expected["prior_admissions"].gt(0).any()
    # a request's one query at a time (looked up alone, not by get_indexer), unknown ones included
    seen = queries.loc[[expected["prior_admissions"].gt(0).idxmax()]]  # a patient with earlier stays
    strangers = pd.concat([seen, seen]).assign(
        case_id=["NEW-1", "NEW-2"], patient_id=[seen["patient_id"].iloc[0], "NEW"]
    )
    batch = pd.concat([queries.head(20), strangers])  # more than a few: get_indexer
    together = index.features(batch)
    for i in range(len(batch)):
        alone = index.feature_columns({name: batch[name].to_numpy()[i : i + 1] for name in batch.columns})
        pd.testing.assert_frame_equal(
            pd.DataFrame(alone, index=batch.index[i : i + 1]), together.iloc[i : i + 1]
        )
    assert together["prior_admissions"].iloc[-2] > together["prior_admissions"].iloc[-1] == 0


def test_canonical_columns_are_the_canonical_view_by_name(store: pd.DataFrame) -> None:
    """The feature views' input is the canonical view's columns, without the frame: same values, order
    and dtypes, absent optional columns as nulls, and the same errors."""
    from contract.errors import InputError
    from features.pipeline import canonical_columns, canonical_view

    cases = store.head(50).drop(columns=["birth_weight_g", "los_days"])
    wanted = ("case_id", "admission_date", "discharge_date", "los_days", "birth_weight_g", "department")
    view = canonical_view(cases, wanted, {"case_id"}, "cases")
    found = canonical_columns(cases, wanted, {"case_id"}, "cases")
    assert list(found) == list(view.columns)
    pd.testing.assert_frame_equal(pd.DataFrame(found, index=cases.index), view)
    assert view["birth_weight_g"].isna().all() and view["los_days"].notna().all()
    with pytest.raises(InputError, match="case_id is missing in row 3"):
        canonical_columns(
            cases.assign(case_id=cases["case_id"].where(cases.index != 3)), wanted, {"case_id"}, "cases"
        )
