"""The registered model takes a request's rows as columns (``features.view.Table``) as it takes a frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.view import Table, table_length
from models.pyfunc import CaseModel


class _Seen:
    """Features that keep what they were given."""

    def transform(self, frame: Table, history: Any = None) -> pd.DataFrame:
        self.frame = frame
        return pd.DataFrame({"x": np.zeros(table_length(frame))})


def test_rows_given_as_columns_are_cast_to_the_training_dtypes_as_a_frame_is() -> None:
    seen = _Seen()
    model = CaseModel(
        seen, estimator=None, output=None, dtypes={"age_days": pd.Int64Dtype(), "sex": np.dtype("int64")}
    )
    columns = {
        "age_days": np.array([3.0, np.nan]),  # a float column where training had nullable integers
        "sex": np.array([1, 2]),
        "department": np.array(["a", "b"], dtype=object),
    }
    model.features_of(columns)
    as_columns = seen.frame
    assert isinstance(as_columns, dict) and list(as_columns) == list(columns)
    assert as_columns["sex"] is columns["sex"] and as_columns["department"] is columns["department"]
    assert as_columns["age_days"].dtype == pd.Int64Dtype() and as_columns["age_days"].isna().tolist() == [
        False,
        True,
    ]
    model.features_of(pd.DataFrame(columns))
    pd.testing.assert_frame_equal(pd.DataFrame(as_columns), seen.frame)
