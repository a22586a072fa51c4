"""Validated request cases → a canonical frame with the dtypes ``pipelines.store.read_cases`` gives.

The models were trained on store frames, so a request must look exactly like one: dates
datetime64[ns], required ints int64, optional ints Int64, floats float64, bools boolean, strings and
code lists object with None for missing, and the derived ``los_days``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from pipelines.contract import FIELD_BY_NAME


def cases_frame(cases: Sequence[BaseModel | dict[str, Any]]) -> pd.DataFrame:
    """One canonical row per case, columns in contract order (only fields the request schema has)."""
    records = [c.model_dump() if isinstance(c, BaseModel) else c for c in cases]
    frame = pd.DataFrame.from_records(records)
    for name in frame.columns:
        frame[name] = _canonical(frame[name], name)
    if {"admission_date", "discharge_date"} <= set(frame.columns):
        days = (frame["discharge_date"] - frame["admission_date"]).dt.days
        frame["los_days"] = np.maximum(days, 1).astype("int64")
    return frame


def _canonical(column: pd.Series, name: str) -> pd.Series:
    field = FIELD_BY_NAME[name]
    if field.kind == "date":
        return pd.to_datetime(column).astype("datetime64[ns]")
    if field.kind == "int":
        return column.astype("int64") if field.required and column.notna().all() else column.astype("Int64")
    if field.kind == "float":
        return column.astype("float64")
    if field.kind == "bool":
        return column.astype("boolean")
    return column.astype(object).where(column.notna(), None)
