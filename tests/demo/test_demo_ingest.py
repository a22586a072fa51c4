"""Demo files pass ingestion untouched; every deliberately corrupted row is caught by its check."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.demo import generate_demo
from pipelines.demo.dirty import CORRUPTIONS
from pipelines.ingest import ingest_file
from pipelines.mapping import load_mapping, to_canonical
from pipelines.readers import read_table
from pipelines.validate import Rules, merge_problems, validate_cases


@pytest.fixture(scope="module")
def small_hospital():
    return generate_demo(1200, 3, 11)


@pytest.fixture(scope="module")
def dirty_hospital():
    return generate_demo(2000, 3, 13, dirty=True)


def _problems(path, mapping=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = read_table(path)
    cases, unreadable = to_canonical(raw.frame, load_mapping(mapping))
    return cases, merge_problems(unreadable, validate_cases(cases, Rules()))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_clean_files_ingest_with_zero_rejects(fmt, small_hospital, tmp_path, settings):
    path = small_hospital.write(tmp_path / fmt, fmt)[0]
    result = ingest_file(path, store_dir=tmp_path / "store", reports_dir=tmp_path / "reports")
    assert (result.rows_read, result.accepted, result.rejected, result.warnings) == (1200, 1200, 0, 0)


def test_ingested_cases_equal_the_generated_ones(demo_hospital, tmp_path):
    path = demo_hospital.write(tmp_path, "parquet")[0]
    cases, problems = _problems(path)
    assert problems.empty
    expected = demo_hospital.cases.drop(columns="los_days")
    pd.testing.assert_frame_equal(cases.astype(object), expected.astype(object), check_dtype=False)


def test_zh_csv_round_trips_through_the_chinese_preset(small_hospital, tmp_path):
    hospital = small_hospital
    path = hospital.write(tmp_path, "zh-csv")[0]
    assert path.name == "cases.zh.csv"
    header = path.read_bytes().split(b"\\n", 1)[0].decode("gb18030")
    assert header.startswith("住院号,病案号")
    cases, problems = _problems(path, "cn-abstract")
    assert problems.empty
    expected = hospital.cases.drop(columns="los_days")
    pd.testing.assert_frame_equal(cases.astype(object), expected.astype(object), check_dtype=False)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_corruption_is_caught(fmt, dirty_hospital, tmp_path):
    hospital = dirty_hospital
    manifest = hospital.manifest
    assert set(manifest["check"]) == set(CORRUPTIONS)
    assert len(manifest) <= 0.03 * len(hospital.cases)
    _, problems = _problems(hospital.write(tmp_path, fmt)[0])
    errors = problems[problems["severity"] == "error"]
    for check, rows in manifest.groupby("check"):
        field = CORRUPTIONS[check][0]
        caught = problems[problems["field"] == field]  # an unknown code is a warning, the rest errors
        assert set(rows["row"]) <= set(caught["row"]), check
    assert set(problems["row"]) <= set(manifest["row"])
    assert set(manifest.loc[manifest["check"] != "unknown_code", "row"]) <= set(errors["row"])
