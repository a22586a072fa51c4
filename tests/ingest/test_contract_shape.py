"""The contract owns the data's shape: field dtypes, the one canonical cast, length of stay, code lists."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from contract.fields import (
    FIELD_BY_NAME,
    STORE_COLUMNS,
    Field,
    arrow_schema,
    canonical_column,
    canonical_frame,
    code_lists,
    join_codes,
    los_days,
    principal_and_others,
    split_codes,
    store_dtypes,
)
from pipelines.ingest import finalise
from pipelines.mapping import load_mapping, to_canonical
from pipelines.readers import TEXT
from pipelines.store import read_cases, write_cases

# (kind, required) → (pandas dtype, Arrow type): what every reader of the store relies on.
SHAPES = [
    ("str", True, object, pa.string()),
    ("str", False, object, pa.string()),
    ("codes", False, object, pa.string()),
    ("int", True, "int64", pa.int64()),
    ("int", False, "Int64", pa.int64()),
    ("float", True, "float64", pa.float64()),
    ("float", False, "float64", pa.float64()),
    ("bool", False, "boolean", pa.bool_()),
    ("date", True, "datetime64[ns]", pa.timestamp("ns")),
    ("date", False, "datetime64[ns]", pa.timestamp("ns")),
]


@pytest.mark.parametrize(("kind", "required", "dtype", "arrow"), SHAPES)
def test_a_field_carries_its_pandas_and_arrow_types(kind, required, dtype, arrow) -> None:
    field = Field("x", kind, "admission", required, "", "")
    assert field.dtype == dtype
    assert field.arrow_type == arrow
    assert field.arrow_field.nullable is not required


def test_before_validation_a_required_whole_number_may_be_missing() -> None:
    required = Field("x", "int", "admission", True, "", "")
    assert required.nullable_dtype == "Int64"
    assert Field("y", "float", "admission", True, "", "").nullable_dtype == "float64"


def test_the_store_schema_is_the_fields_types() -> None:
    schema = arrow_schema()
    assert schema.names == list(STORE_COLUMNS)
    assert schema.field("age_years") == pa.field("age_years", pa.int64(), nullable=False)
    assert schema.field("los_days") == pa.field("los_days", pa.int64(), nullable=False)
    assert schema.field("audit_date").type == pa.timestamp("ns")


def test_canonical_frame_casts_contract_columns_and_leaves_others() -> None:
    frame = pd.DataFrame(
        {
            "age_years": np.array([30.0, 41.0]),
            "age_days": [None, 12],
            "admission_date": ["2024-01-05", "2024-02-29"],
            "special_review": [True, None],
            "other_diagnoses": pd.array(["I10.x00|E11.900", None], dtype="string"),
            "note": ["kept", "as is"],
        }
    )
    cast = canonical_frame(frame)
    assert {c: str(cast[c].dtype) for c in cast.columns} == {
        "age_years": "int64",
        "age_days": "Int64",
        "admission_date": "datetime64[ns]",
        "special_review": "boolean",
        "other_diagnoses": "object",
        "note": "object",
    }
    assert cast["other_diagnoses"].iloc[1] is None
    assert cast["admission_date"].iloc[1] == pd.Timestamp("2024-02-29")
    assert frame["age_years"].dtype == "float64", "the input frame is not changed"


def test_a_required_whole_number_still_missing_stays_nullable() -> None:
    cast = canonical_frame(pd.DataFrame({"age_years": [30, None]}))
    assert str(cast["age_years"].dtype) == "Int64"
    assert cast["age_years"].isna().tolist() == [False, True]


def test_canonical_column_casts_a_request_s_values() -> None:
    age, days, cost = (FIELD_BY_NAME[n] for n in ("age_years", "age_days", "total_cost"))
    assert canonical_column([30, 41], age).dtype == "int64"
    assert str(canonical_column([30, None], age).dtype) == "Int64"
    assert str(canonical_column([12, 3], days).dtype) == "Int64"
    assert np.isnan(canonical_column([12.5, None], cost)[1])
    with pytest.raises(TypeError):
        canonical_column([30, 40.5], age)  # never truncated to a whole number
    admitted = FIELD_BY_NAME["admission_date"]
    for values in ([dt.date(2024, 2, 29), None], ["2024-02-29", None], [pd.Timestamp("2024-02-29"), None]):
        found = canonical_column(values, admitted)  # a request's dates, text or timestamps: one answer
        assert found.dtype == "datetime64[ns]" and str(found[0])[:10] == "2024-02-29" and np.isnat(found[1])


def test_store_round_trip_keeps_every_dtype(cases: pd.DataFrame, tmp_path: Path) -> None:
    typed, problems = to_canonical(cases.astype(TEXT), load_mapping())
    assert problems.empty
    written = finalise(typed)
    assert {c: written[c].dtype for c in STORE_COLUMNS} == {
        c: pd.api.types.pandas_dtype(d) for c, d in store_dtypes().items()
    }
    write_cases(written, tmp_path)
    read = read_cases(tmp_path)
    expected = written[list(STORE_COLUMNS)].sort_values("case_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(read.sort_values("case_id").reset_index(drop=True), expected)
    assert read["settlement_date"].isna().all(), "an all-empty optional column keeps its type"


@pytest.mark.parametrize(
    ("admitted", "discharged", "days"),
    [
        ("2024-03-01", "2024-03-01", 1),  # same day counts one
        ("2024-03-01", "2024-03-02", 1),
        ("2024-03-01", "2024-03-04", 3),
        ("2024-02-28", "2024-03-01", 2),  # leap day
        ("2023-12-30", "2024-01-02", 3),
    ],
)
def test_los_days_rule(admitted: str, discharged: str, days: int) -> None:
    stay = los_days(pd.Series(pd.to_datetime([admitted])), pd.Series(pd.to_datetime([discharged])))
    assert stay.tolist() == [days]
    assert stay.dtype == "int64"


def test_los_days_keeps_the_index_and_marks_missing_dates() -> None:
    admitted = pd.Series(pd.to_datetime(["2024-01-01", None]), index=[7, 9])
    discharged = pd.Series(pd.to_datetime(["2024-01-05", "2024-01-05"]), index=[7, 9])
    stay = los_days(admitted, discharged)
    assert stay.index.tolist() == [7, 9]
    assert str(stay.dtype) == "Int64" and stay.isna().tolist() == [False, True]
    arrays = los_days(admitted.to_numpy(), discharged.to_numpy())
    assert arrays.isna().tolist() == [False, True] and arrays.iloc[0] == 4


STAYS = pd.DataFrame(
    {
        "admission_date": pd.to_datetime(["2024-03-01", "2024-02-28", "2023-12-30", "2024-05-01"]),
        "discharge_date": pd.to_datetime(["2024-03-01", "2024-03-01", "2024-01-02", "2024-05-31"]),
    }
)


def _ingest(stays: pd.DataFrame) -> pd.Series:
    return finalise(stays)["los_days"]


def _serving(stays: pd.DataFrame) -> pd.Series:
    from contract.fields import canonical_records

    records = [{k: v.date() for k, v in row.items()} for row in stays.to_dict("records")]
    return canonical_records(records)["los_days"]


def _features(stays: pd.DataFrame) -> pd.Series:
    from features.pipeline import canonical_view

    return canonical_view(stays, ("admission_date", "discharge_date", "los_days"), set(), "test")["los_days"]


def _whatif(stays: pd.DataFrame) -> pd.Series:
    from models.coding.whatif import with_los_days

    return with_los_days(stays)["los_days"]


@pytest.mark.parametrize("site", [_ingest, _serving, _features, _whatif])
def test_every_stay_length_follows_the_contract(site) -> None:
    expected = los_days(STAYS["admission_date"], STAYS["discharge_date"])
    assert site(STAYS.copy()).astype("int64").tolist() == expected.tolist() == [1, 2, 3, 30]


def test_casemix_input_file_gets_the_contract_stay_length(tmp_path: Path) -> None:
    from cli.casemix import _read_input

    path = tmp_path / "cases.csv"
    STAYS.to_csv(path, index=False)
    assert _read_input(path)["los_days"].tolist() == [1, 2, 3, 30]


def test_demo_cases_follow_the_contract_stay_length() -> None:
    from pipelines.demo.generate import generate_demo

    cases = generate_demo(200, 1, seed=5).cases
    expected = los_days(cases["admission_date"], cases["discharge_date"])
    pd.testing.assert_series_equal(cases["los_days"], expected, check_names=False)
    assert {c: cases[c].dtype for c in STORE_COLUMNS} == {
        c: pd.api.types.pandas_dtype(d) for c, d in store_dtypes().items()
    }


CODE_CELLS = pd.Series(["I10.x00|E11.900", None, "", "J18.900||N18.500"], dtype=object)
CODE_PAIRS = [(0, "I10.x00"), (0, "E11.900"), (3, "J18.900"), (3, "N18.500")]


def test_code_lists_split_each_cell() -> None:
    assert code_lists(CODE_CELLS).to_pylist() == [
        ["I10.x00", "E11.900"],
        None,
        [""],
        ["J18.900", "", "N18.500"],
    ]


def test_join_codes_is_the_inverse_of_split_codes() -> None:
    assert join_codes(["I10.x00", "", "E11.900"]) == "I10.x00|E11.900"
    assert join_codes([]) is None
    assert split_codes(join_codes(["I10.x00", "E11.900"])) == ["I10.x00", "E11.900"]


def test_principal_and_others_split_a_list_as_the_contract_stores_it() -> None:
    cells = pd.Series(["J18.900|E87.200|I10.x00", "J18.900", None, "", "|E11.900"], index=[5, 6, 7, 8, 9])
    principal, others = principal_and_others(cells)
    assert principal.tolist() == ["J18.900", "J18.900", None, None, "E11.900"]
    assert others.tolist() == ["E87.200|I10.x00", None, None, None, None]
    assert principal.index.equals(cells.index) and others.index.equals(cells.index)


def _validation(cells: pd.Series) -> list[tuple[int, str]]:
    from contract.fields import DIAGNOSIS_FIELDS, PROCEDURE_FIELDS
    from pipelines.validate import exploded_codes

    frame = pd.DataFrame(dict.fromkeys((*DIAGNOSIS_FIELDS, *PROCEDURE_FIELDS), None), index=cells.index)
    codes = exploded_codes(frame.assign(other_diagnoses=cells))["other_diagnoses"]
    return list(zip(codes.index.tolist(), codes.tolist(), strict=True))


def _feature_codes(cells: pd.Series) -> list[tuple[int, str]]:
    from features.codes import explode_codes

    rows, codes = explode_codes(cells)
    return list(zip(rows.tolist(), list(codes), strict=True))


def _whatif_secondaries(cells: pd.Series) -> list[tuple[int, str]]:
    from models.coding.whatif import _secondaries

    long = _secondaries(pd.DataFrame({"other_diagnoses": cells}))
    return list(zip(long["row"].tolist(), long["code"].tolist(), strict=True))


@pytest.mark.parametrize("site", [_validation, _feature_codes, _whatif_secondaries])
def test_every_code_split_reads_cells_alike(site) -> None:
    assert site(CODE_CELLS) == CODE_PAIRS
