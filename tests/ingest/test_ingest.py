from __future__ import annotations

import hashlib
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pytest

from contract.fields import los_days, store_dtypes
from pipelines.ingest import ingest_file
from pipelines.readers import InputError
from pipelines.store import fingerprint, read_cases, read_manifest


@pytest.fixture
def dirty_export(tmp_path: Path, make_cases) -> Path:
    """12 cases: rows 3, 5 and 9 (1-based) fail, row 7 has an unknown code."""
    cases = make_cases(12)
    cases.loc[2, "sex"] = "3"
    cases.loc[4, ["admission_date", "department"]] = ["2024-13-45", ""]
    cases.loc[6, "principal_diagnosis"] = "ZZZ.999"
    cases.loc[8, "discharge_date"] = "2024-01-01"
    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    return path


def test_accepted_plus_rejected_is_input(settings, dirty_export: Path) -> None:
    result = ingest_file(dirty_export)
    assert (result.rows_read, result.accepted, result.rejected, result.warnings) == (12, 9, 3, 1)
    assert result.accepted + result.rejected == result.rows_read
    assert len(read_cases()) == 9


def test_rejects_file_lists_every_problem(settings, dirty_export: Path) -> None:
    result = ingest_file(dirty_export)
    raw = (result.reports_dir / "rejects.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM so Excel shows Chinese"
    rejects = pd.read_csv(result.reports_dir / "rejects.csv", encoding="utf-8-sig", dtype=str)
    assert list(rejects.columns) == ["row", "case_id", "field", "column", "value", "reason"]
    assert rejects[["row", "case_id", "field"]].values.tolist() == [
        ["3", "C00002", "sex"],
        ["5", "C00004", "department"],
        ["5", "C00004", "admission_date"],
        ["9", "C00008", "discharge_date"],
    ]
    assert rejects["value"].tolist()[2] == "2024-13-45"
    assert rejects["reason"].str.len().gt(0).all()


def test_rejected_rows_are_kept_as_read(settings, dirty_export: Path) -> None:
    result = ingest_file(dirty_export)
    rows = pd.read_csv(
        result.reports_dir / "rejected_rows.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    original = pd.read_csv(dirty_export, dtype=str, keep_default_na=False)
    assert rows["row"].tolist() == ["3", "5", "9"]
    pd.testing.assert_frame_equal(rows.drop(columns="row"), original.iloc[[2, 4, 8]].reset_index(drop=True))


def test_unknown_code_is_a_warning_and_the_row_is_kept(settings, dirty_export: Path) -> None:
    result = ingest_file(dirty_export)
    warnings = pd.read_csv(result.reports_dir / "warnings.csv", encoding="utf-8-sig", dtype=str)
    assert warnings[["row", "case_id", "field", "value"]].values.tolist() == [
        ["7", "C00006", "principal_diagnosis", "ZZZ.999"]
    ]
    assert "C00006" in set(read_cases(columns=["case_id"])["case_id"])


def test_reingest_is_idempotent(settings, dirty_export: Path) -> None:
    first = ingest_file(dirty_export)
    before, stored = fingerprint(), read_cases()
    again = ingest_file(dirty_export)
    assert (again.new, again.updated, again.store_rows) == (0, first.accepted, first.store_rows)
    assert fingerprint() == before
    pd.testing.assert_frame_equal(read_cases(), stored)


def test_reingest_replaces_changed_cases_even_across_years(
    settings, tmp_path: Path, cases: pd.DataFrame
) -> None:
    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    ingest_file(path)
    changed = cases.iloc[[0, 1]].copy()
    changed["department"] = "外科"
    changed.loc[changed.index[0], ["admission_date", "discharge_date"]] = ["2023-06-01", "2023-06-03"]
    changed.to_csv(path, index=False)
    result = ingest_file(path)
    assert (result.new, result.updated, result.store_rows) == (0, 2, len(cases))
    stored = read_cases().set_index("case_id")
    assert stored.loc[["C00000", "C00001"], "department"].tolist() == ["外科", "外科"]
    assert sorted(fingerprint()["rows_by_year"]) == ["2023", "2024"]


def test_store_dtypes_and_los(settings, tmp_path: Path, cases: pd.DataFrame) -> None:
    cases.loc[0, "discharge_date"] = cases.loc[0, "admission_date"]
    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    ingest_file(path)
    stored = read_cases()
    assert {c: stored[c].dtype for c in stored.columns} == {
        c: pd.api.types.pandas_dtype(d) for c, d in store_dtypes().items()
    }
    same_day = stored.set_index("case_id").loc["C00000", "los_days"]
    assert same_day == 1
    expected = los_days(pd.to_datetime(cases["admission_date"]), pd.to_datetime(cases["discharge_date"]))
    assert sorted(stored["los_days"]) == sorted(expected)
    assert read_cases(columns=["case_id", "los_days"]).shape == (len(cases), 2)


def test_dask_reads_the_store_as_is(settings, tmp_path: Path, cases: pd.DataFrame) -> None:
    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    ingest_file(path)
    lazy = dd.read_parquet(settings.store_dir)
    assert int(lazy["total_cost"].count().compute()) == len(cases)


def test_manifest_records_the_input_and_the_store(settings, dirty_export: Path) -> None:
    ingest_file(dirty_export)
    manifest = read_manifest()
    last = manifest["last_ingest"]
    assert last["input"]["sha256"] == hashlib.sha256(dirty_export.read_bytes()).hexdigest()
    assert (last["rows_read"], last["accepted"], last["rejected"]) == (12, 9, 3)
    assert manifest["store"] == fingerprint()
    ingest_file(dirty_export)
    assert len(read_manifest()["ingests"]) == 2


def test_empty_file_is_a_clear_error(settings, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        ingest_file(path)


def test_every_planted_error_of_the_dirty_demo_is_caught(settings, tmp_path: Path) -> None:
    from pipelines.demo import generate_demo

    hospital = generate_demo(1_000, years=1, seed=3, dirty=True)
    path = tmp_path / "dirty.csv"
    hospital.cases.drop(columns="los_days").to_csv(path, index=False, date_format="%Y-%m-%d")
    result = ingest_file(path)
    flagged = pd.concat(
        [
            pd.read_csv(result.reports_dir / name, encoding="utf-8-sig")
            for name in ("rejects.csv", "warnings.csv")
        ]
    )
    planted = hospital.manifest
    assert set(flagged["row"]) == set(planted["row"] + 1)
    warned = planted.loc[planted["check"] == "unknown_code", "row"] + 1
    assert result.rejected == planted["row"].nunique() - len(warned)
