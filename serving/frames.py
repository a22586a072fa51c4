"""Validated request cases → a canonical frame with the dtypes ``pipelines.store.read_cases`` gives.

The models were trained on store frames, so a request must look exactly like one: dates
datetime64[ns], required ints int64, optional ints Int64, floats float64, bools boolean, strings and
code lists object with None for missing, and the derived ``los_days``. Each column is built straight
from the request's values: a one-case request is the service's main load, and converting through
pandas Series costs more per column than the values themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipelines.contract import FIELD_BY_NAME, Field


def cases_frame(cases: Sequence[BaseModel | dict[str, Any]]) -> pd.DataFrame:
    """One canonical row per case, columns in contract order (only fields the request schema has)."""
    records = [c.model_dump() if isinstance(c, BaseModel) else c for c in cases]
    names = list(dict.fromkeys(name for record in records for name in record))
    frame = pd.DataFrame(
        {name: _canonical([r.get(name) for r in records], FIELD_BY_NAME[name]) for name in names},
        index=pd.RangeIndex(len(records)),
    )
    if {"admission_date", "discharge_date"} <= set(frame.columns):
        days = (frame["discharge_date"] - frame["admission_date"]).dt.days
        frame["los_days"] = np.maximum(days, 1).astype("int64")
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _canonical(values: list[Any], field: Field) -> Any:
    if field.kind == "date":
        return pd.to_datetime(values).astype("datetime64[ns]")
    if field.kind == "int":
        if field.required and not any(_missing(v) for v in values):
            return np.array(values, dtype="int64")
        return pd.array([None if _missing(v) else v for v in values], dtype="Int64")
    if field.kind == "float":
        return np.array([np.nan if v is None else v for v in values], dtype="float64")
    if field.kind == "bool":
        return pd.array([None if _missing(v) else v for v in values], dtype="boolean")
    column = np.empty(len(values), dtype=object)
    column[:] = [None if _missing(v) else v for v in values]
    return column
