"""The grouper agrees with the reference CHS-DRG 1.1 grouper on every one of its 5,000 cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from casemix.grouper import OUTPUT_COLUMNS, REFERENCE_STATUS, Grouper, GroupResult
from contract.fields import REPEAT_BLOCK, TEXT, coded_text, repeated_text

EXPECTED = ["expected_status", "expected_mdc", "expected_adrg", "expected_drg"]


def _answers(result: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "expected_status": result["status"].map(REFERENCE_STATUS),
            "expected_mdc": result["mdc"],
            "expected_adrg": result["adrg"],
            "expected_drg": result["drg"],
        }
    )


def _assert_agrees(reference: pd.DataFrame, answers: pd.DataFrame) -> None:
    differ = (answers[EXPECTED] != reference[EXPECTED]).any(axis=1)
    assert not differ.any(), (
        reference.loc[differ, ["case_id", *EXPECTED]].join(answers, rsuffix="_ours").head()
    )


def test_group_frame_agrees_on_every_reference_case(grouper: Grouper, reference_cases: pd.DataFrame) -> None:
    result = grouper.group_frame(reference_cases)
    assert list(result.columns) == list(OUTPUT_COLUMNS)
    assert result.index.equals(reference_cases.index)
    _assert_agrees(reference_cases, _answers(result))
    assert (result.loc[result["status"] == "grouped", "reason"] == "").all()
    assert (result.loc[result["status"] != "grouped", "reason"] != "").all()


def test_group_case_agrees_on_every_reference_case(
    group_reference_case: Callable[[Any], GroupResult], reference_cases: pd.DataFrame
) -> None:
    rows = [group_reference_case(case) for case in reference_cases.itertuples()]
    answers = _answers(pd.DataFrame([r.model_dump(exclude={"trace"}) for r in rows]))
    _assert_agrees(reference_cases, answers)
    assert all(r.trace for r in rows)


def test_canonical_columns_give_the_same_answers(grouper: Grouper, reference_cases: pd.DataFrame) -> None:
    diagnoses = reference_cases["diagnoses"].str.split("|", n=1)
    procedures = reference_cases["procedures"].str.split("|", n=1)
    canonical = pd.DataFrame(
        {
            "sex": pd.to_numeric(reference_cases["sex"]).astype("Int64"),
            "age_years": pd.to_numeric(reference_cases["age_years"]).astype("int64"),
            "age_days": pd.to_numeric(reference_cases["age_days"]).astype("Int64"),
            "birth_weight_g": pd.to_numeric(reference_cases["birth_weight_g"]).astype("float64"),
            "principal_diagnosis": diagnoses.str[0].replace("", None),
            "other_diagnoses": diagnoses.str[1],
            "principal_procedure": procedures.str[0].replace("", None),
            "other_procedures": procedures.str[1],
        }
    ).set_axis(reference_cases.index + 100)
    result = grouper.group_frame(canonical)
    assert result.index.equals(canonical.index)
    _assert_agrees(reference_cases, _answers(result.set_axis(reference_cases.index)))


def test_arrow_table_in_gives_arrow_table_out(grouper: Grouper, reference_cases: pd.DataFrame) -> None:
    sample = reference_cases.head(300)
    table = grouper.group_frame(pa.Table.from_pandas(sample, preserve_index=False))
    assert isinstance(table, pa.Table)
    assert table.column_names[: len(OUTPUT_COLUMNS)] == list(OUTPUT_COLUMNS)
    assert table.column("drg").to_pylist() == sample["expected_drg"].tolist()


def test_grouper_pickles_and_runs_per_dask_partition(grouper: Grouper, reference_cases: pd.DataFrame) -> None:
    import pickle

    import dask.dataframe as dd

    copy = pickle.loads(pickle.dumps(grouper))
    sample = reference_cases.head(600)
    meta = grouper.group_frame(sample.head(0))
    lazy = dd.from_pandas(sample, npartitions=3).map_partitions(copy.group_frame, meta=meta)
    result = lazy.compute(scheduler="sync")
    assert result.index.equals(sample.index)
    _assert_agrees(sample, _answers(result))


def test_text_outputs_are_arrow_backed(grouper: Grouper, reference_cases: pd.DataFrame) -> None:
    """Status, reason and the groups reach Arrow (a Parquet write) without a conversion per string."""
    result = grouper.group_frame(reference_cases)
    table = pa.Table.from_pandas(result, preserve_index=False)
    for name in ("status", "reason", "mdc", "adrg", "drg"):
        assert result[name].dtype == TEXT, name
        assert table.schema.field(name).type == pa.large_string(), name


def test_coded_text_takes_labels_by_code_as_numpy_indexing_does() -> None:
    codes = np.array([0, 2, -1, 1, -3])
    labels = ["a", None, "c"]
    got = coded_text(labels, codes)
    assert got.dtype == TEXT
    assert [None if pd.isna(v) else v for v in got] == [labels[c] for c in codes]


@pytest.mark.parametrize("rows", [0, 1, REPEAT_BLOCK, REPEAT_BLOCK + 3, 2 * REPEAT_BLOCK])
def test_repeated_text_is_coded_text_of_one_label(rows: int) -> None:
    """A column of one label (the priced file's weights_source) is what coded_text gives, shared in
    blocks, and reaches Arrow with the same type and values."""
    got = repeated_text("insurer RW table", rows)
    want = coded_text(["insurer RW table"], np.zeros(rows, dtype=np.int64))
    assert got.dtype == TEXT
    arrow = pa.array(got)
    arrow = arrow if isinstance(arrow, pa.ChunkedArray) else pa.chunked_array([arrow])
    assert arrow.num_chunks == -(-rows // REPEAT_BLOCK)
    assert arrow.equals(pa.chunked_array([pa.array(want)]))
