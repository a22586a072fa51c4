"""Category limits learned on training data, unseen levels, pickling and input errors."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from features.encoding import OTHER, apply_levels, encode_levels, factorize_column, learn_levels
from features.pipeline import CaseFeatures, FeatureInputError
from features.view import FEW_ROWS


def test_levels_keep_frequent_values_only() -> None:
    train = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] + [None] * 4)
    assert learn_levels(train, min_count=3) == ["a", "b"]
    encoded = apply_levels(pd.Series(["b", "c", "z", None, "a"], index=[9, 8, 7, 6, 5]), ["a", "b"])
    assert list(encoded.cat.categories) == ["a", "b", OTHER]
    assert encoded.astype(object).tolist()[:3] == ["b", OTHER, OTHER]
    assert pd.isna(encoded.iloc[3]) and encoded.iloc[4] == "a"
    assert list(encoded.index) == [9, 8, 7, 6, 5]


def test_case_features_learn_levels_on_training_cases_only(hospital: pd.DataFrame) -> None:
    train = hospital.assign(department=np.where(np.arange(len(hospital)) % 10 == 0, "罕见科", "心内科"))
    model = CaseFeatures("admission", min_category_count=100).fit(train)
    scored = train.head(4).assign(department=["心内科", "罕见科", "新科室", None])
    x = model.transform(scored)
    assert list(x["department"].cat.categories) == ["心内科", OTHER]
    assert x["department"].astype(object).tolist()[:3] == ["心内科", OTHER, OTHER]
    assert pd.isna(x["department"].iloc[3])
    assert list(x.columns) == list(model.get_feature_names_out())
    kinds = model.catalog.set_index("feature")["kind"]
    for column in x.columns:
        expected = "category" if kinds[column] == "categorical" else "float64"
        assert str(x[column].dtype) == expected, column


def test_transform_keeps_index_and_order(hospital: pd.DataFrame) -> None:
    model = CaseFeatures("admission", min_category_count=1).fit(hospital)
    shuffled = hospital.sample(frac=1.0, random_state=3)
    x = model.transform(shuffled)
    pd.testing.assert_frame_equal(x, model.transform(hospital).loc[shuffled.index])
    labelled = model.transform(shuffled.set_axis([f"r{i}" for i in range(len(shuffled))]))
    assert list(labelled.index) == [f"r{i}" for i in range(len(shuffled))]
    np.testing.assert_array_equal(labelled["prior_cost_365d"].to_numpy(), x["prior_cost_365d"].to_numpy())


@pytest.mark.parametrize("stage", ["admission", "discharge"])
def test_fitted_features_pickle(hospital: pd.DataFrame, stage: str) -> None:
    model = CaseFeatures(stage, min_category_count=2).fit(hospital)
    expected = model.transform(hospital.head(30))
    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(restored.transform(hospital.head(30)), expected)
    assert len(pickle.dumps(restored)) < 200_000  # the grouper's lookups are rebuilt, not shipped


def test_bad_input_names_the_field_and_row(hospital: pd.DataFrame) -> None:
    model = CaseFeatures("discharge", min_category_count=1).fit(hospital)
    with pytest.raises(FeatureInputError, match=r"required column.*total_cost"):
        model.transform(hospital.drop(columns=["total_cost"]))
    broken = hospital.head(5).copy()
    broken["admission_date"] = broken["admission_date"].astype(object)
    broken.iloc[3, broken.columns.get_loc("admission_date")] = "not a date"
    with pytest.raises(FeatureInputError, match="admission_date of row 3"):
        model.transform(broken)
    early = hospital.head(5).copy()
    early.iloc[2, early.columns.get_loc("discharge_date")] = pd.Timestamp("1999-01-01")
    with pytest.raises(FeatureInputError, match="discharge_date is before admission_date in row 2"):
        model.transform(early)
    with pytest.raises(FeatureInputError, match="patient_id is missing in row 1"):
        model.transform(hospital.head(3).assign(patient_id=["a", None, "b"]))
    with pytest.raises(FeatureInputError, match=r"case_id of row 2 \(index 2\) repeats"):
        model.transform(hospital.head(3).assign(case_id=["a", "b", "a"]))
    with pytest.raises(ValueError, match="stage"):
        CaseFeatures("settlement").fit(hospital)


@pytest.mark.parametrize("dtype", [object, "float64", "string[pyarrow]"])
def test_levels_of_any_column_without_pandas_deprecations(dtype) -> None:
    """A NumPy-backed column's ``.array`` is a wrapper pandas deprecates factorizing (a FutureWarning on
    every training run of the demo): the codes must come without it, the same as from the Series."""
    values = pd.Series(["1", "2", None, "1"] if dtype != "float64" else [1.0, 2.0, None, 1.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        codes, distinct = factorize_column(values)
        encoded = encode_levels(values, ["1", "1.0"])
    expected_codes, expected = pd.factorize(values, use_na_sentinel=True)
    assert codes.tolist() == expected_codes.tolist() and list(distinct) == list(expected)
    first = "1.0" if dtype == "float64" else "1"
    assert [str(v) for v in encoded] == [first, OTHER, "nan", first]


@pytest.mark.parametrize(
    "values",
    [
        np.array(["I21", None, "J18", "", "zz", np.nan, "I21"], dtype=object),
        np.array([1.0, np.nan, 2.0, 3.5], dtype=np.float64),
        np.array([1, 2, 7], dtype=np.int64),
        pd.array(["I21", None, "J18"], dtype="string[pyarrow]"),
        pd.array([1, None, 2], dtype="Int64"),
        np.array([pd.NA, pd.NaT, True, "1"], dtype=object),
    ],
)
def test_a_few_values_encode_as_many_do(values) -> None:
    """A request's few values are looked up one by one (no factorize): the same codes as the
    factorized path every longer column takes, missing values included."""
    levels = ["I21", "J18", "1", "2", "1.0", "True"]
    few = encode_levels(values, levels)
    many = encode_levels(pd.Series(values).repeat(10).array, levels)  # past the few
    assert len(values) <= FEW_ROWS < len(many)
    assert few.dtype == many.dtype
    assert np.repeat(few.codes, 10).tolist() == many.codes.tolist()
    assert (few.codes == -1).tolist() == pd.isna(np.asarray(values, dtype=object)).tolist()
