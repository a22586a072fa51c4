"""The demo region written hospital by hospital: bounded memory, the single-process demo kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.demo import generate_demo
from pipelines.demo.partitioned import hospital_sizes, write_region


def test_one_hospital_region_is_the_single_process_demo(tmp_path: Path) -> None:
    files = list(write_region(tmp_path, 500, years=1, seed=3, hospital_cases=1_000))
    assert [f.name for f in files] == ["cases-0000.parquet"]
    expected = generate_demo(500, 1, 3).cases.drop(columns="los_days")
    pd.testing.assert_frame_equal(pd.read_parquet(files[0]), expected)


def test_hospitals_have_their_own_ids_and_patients(tmp_path: Path) -> None:
    files = list(write_region(tmp_path, 900, years=1, seed=3, hospital_cases=400))
    assert [len(pd.read_parquet(f)) for f in files] == [400, 400, 100]
    cases = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert cases["case_id"].is_unique
    assert cases.groupby("patient_id")["hospital_id"].nunique().max() == 1
    assert cases["hospital_id"].nunique() == 3
    pd.testing.assert_frame_equal(
        pd.read_parquet(files[0]), generate_demo(400, 1, 3).cases.drop(columns="los_days")
    )
    oracle = pd.read_parquet(tmp_path / "oracle-0001.parquet")
    assert oracle["case_id"].isin(pd.read_parquet(files[1])["case_id"]).all()


def test_sizes() -> None:
    assert hospital_sizes(1_000, 400) == [400, 400, 200]
    assert hospital_sizes(800, 400) == [400, 400]
    with pytest.raises(ValueError):
        hospital_sizes(0, 400)
