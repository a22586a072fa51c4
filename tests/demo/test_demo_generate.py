"""The demo hospital's shape: exact size, canonical dtypes, determinism, files."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from contract.fields import COLUMNS, FIELDS, split_codes
from contract.settings import CASEMIX_TABLES
from pipelines.demo import generate_demo
from pipelines.demo.generate import ORACLE_COLUMNS

EXPECTED_DTYPES = {
    "str": "object",
    "codes": "object",
    "float": "float64",
    "bool": "boolean",
    "date": "datetime64[ns]",
}


def test_exact_size_and_canonical_columns(demo_hospital):
    cases = demo_hospital.cases
    assert len(cases) == 4000
    assert list(cases.columns) == [*COLUMNS, "los_days"]
    assert cases["case_id"].is_unique
    for f in FIELDS:
        expected = EXPECTED_DTYPES.get(f.kind) or ("int64" if f.required else "Int64")
        assert str(cases[f.name].dtype) == expected, f.name
        if f.required:
            assert cases[f.name].notna().all(), f.name
    assert str(cases["los_days"].dtype) == "int64"
    same_day = cases["discharge_date"] == cases["admission_date"]
    assert (cases.loc[same_day, "los_days"] == 1).all()
    stay = (cases["discharge_date"] - cases["admission_date"]).dt.days
    assert (cases.loc[~same_day, "los_days"] == stay[~same_day]).all()


def test_dates_inside_the_period(demo_hospital):
    cases = demo_hospital.cases
    assert cases["discharge_date"].min() >= pd.Timestamp("2023-01-01")
    assert cases["discharge_date"].max() < pd.Timestamp("2026-01-01")
    assert (cases["discharge_date"] >= cases["admission_date"]).all()
    settled = cases["settlement_date"].notna()
    assert (cases.loc[settled, "settlement_date"] > cases.loc[settled, "discharge_date"]).all()


def test_oracle_is_separate_and_aligned(demo_hospital):
    oracle = demo_hospital.oracle
    assert list(oracle.columns) == list(ORACLE_COLUMNS)
    assert (oracle["case_id"] == demo_hospital.cases["case_id"]).all()
    assert not set(oracle.columns) & (set(COLUMNS) - {"case_id"})
    assert oracle["true_readmission_prob"].between(0, 1).all()
    assert oracle["true_coding_error_prob"].between(0, 1).all()
    assert (oracle["expected_cost"] > 0).all()


def test_same_seed_same_data_and_bytes(tmp_path):
    first, second = generate_demo(1500, 2, 3), generate_demo(1500, 2, 3)
    pd.testing.assert_frame_equal(first.cases, second.cases)
    pd.testing.assert_frame_equal(first.oracle, second.oracle)
    a, b = first.write(tmp_path / "a"), second.write(tmp_path / "b")
    assert [p.name for p in a] == [
        "cases.parquet",
        "oracle.parquet",
        "charges.parquet",
        "inpatients.parquet",
        "in_hospital_final.parquet",
    ]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    other = generate_demo(1500, 2, 4)
    assert not other.cases["total_cost"].equals(first.cases["total_cost"])


def test_start_and_years_move_the_period():
    cases = generate_demo(500, 1, 5, start=date(2024, 7, 1)).cases
    assert cases["discharge_date"].min() >= pd.Timestamp("2024-07-01")
    assert cases["discharge_date"].max() < pd.Timestamp("2025-07-01")


@pytest.mark.parametrize("n_cases, years", [(0, 3), (10, 0)])
def test_bad_arguments_are_refused(n_cases, years):
    with pytest.raises(ValueError, match="at least one"):
        generate_demo(n_cases, years, 1)


def test_codes_exist_in_the_dictionaries(demo_hospital):
    dx = set(pd.read_csv(CASEMIX_TABLES / "diagnoses.tsv", sep="\t", dtype=str)["code"])
    px = set(pd.read_csv(CASEMIX_TABLES / "procedures.tsv", sep="\t", dtype=str)["code"])
    cases = demo_hospital.cases
    for name, known in [
        ("admission_diagnosis", dx),
        ("principal_diagnosis", dx),
        ("other_diagnoses", dx),
        ("corrected_diagnoses", dx),
        ("planned_procedure", px),
        ("principal_procedure", px),
        ("other_procedures", px),
        ("corrected_procedures", px),
    ]:
        codes = {c for cell in cases[name] for c in split_codes(cell)}
        assert codes <= known, (name, sorted(codes - known)[:5])
