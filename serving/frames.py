"""Validated request cases → a canonical frame with the dtypes ``pipelines.store.read_cases`` gives.

The models were trained on store frames, so a request must look exactly like one: each column is cast
by the contract's ``canonical_column`` (what ``canonical_frame`` applies to a frame) straight from the
request's values, and ``los_days`` is derived as ingestion derives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from pydantic import BaseModel

from contract.fields import FIELD_BY_NAME, canonical_column, los_days


def cases_frame(cases: Sequence[BaseModel | dict[str, Any]]) -> pd.DataFrame:
    """One canonical row per case, columns in contract order (only fields the request schema has)."""
    records = [c.model_dump() if isinstance(c, BaseModel) else c for c in cases]
    names = list(dict.fromkeys(name for record in records for name in record))
    frame = pd.DataFrame(
        {name: canonical_column([r.get(name) for r in records], FIELD_BY_NAME[name]) for name in names},
        index=pd.RangeIndex(len(records)),
    )
    if {"admission_date", "discharge_date"} <= set(frame.columns):
        frame["los_days"] = los_days(frame["admission_date"], frame["discharge_date"])
    return frame
