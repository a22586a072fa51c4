"""A validated request becomes exactly the frame the case store gives for the same cases."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from contract.fields import canonical_records
from pipelines.demo.generate import generate_demo
from pipelines.store import read_cases, write_cases
from serving.schemas import CASE_MODELS


@pytest.mark.parametrize("stage", sorted(CASE_MODELS))
def test_request_frame_equals_store_frame(tmp_path, stage) -> None:
    write_cases(generate_demo(300, 1, seed=3).cases, tmp_path)
    stored = read_cases(tmp_path)
    model = CASE_MODELS[stage]
    records = json.loads(stored.to_json(orient="records", date_format="iso"))
    validated = [
        model.model_validate({k: v for k, v in r.items() if k in model.model_fields}) for r in records
    ]
    frame = canonical_records([v.model_dump() for v in validated])
    expected = stored[list(frame.columns)].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert "los_days" in frame.columns or stage == "admission"
