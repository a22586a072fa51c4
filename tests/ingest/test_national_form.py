"""The national 病案首页 has no 入院类型: an export ingests with the type derived from 入院途径."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from contract.fields import FIELDS
from pipelines.ingest import ingest_file
from pipelines.mapping import check_columns, load_mapping, to_canonical
from pipelines.readers import TEXT
from pipelines.store import read_cases


def test_export_without_admission_type_ingests_with_a_warning(
    tmp_path: Path, settings, cases: pd.DataFrame, to_cn_export
) -> None:
    export = to_cn_export(cases).drop(columns=["入院类型"])
    export["入院途径"] = ["急诊", "门诊", "其他医疗机构转入", "1", "2", "急诊", "9", "门诊"]
    path = tmp_path / "病案首页.csv"
    export.to_csv(path, index=False, encoding="utf-8")

    result = ingest_file(path, "cn-abstract")

    assert (result.accepted, result.rejected) == (8, 0), result.by_reason
    assert result.warnings >= 8
    derived = result.by_reason[result.by_reason["field"] == "admission_type"]
    assert derived["severity"].eq("warning").all() and derived["rows"].sum() == 8
    assert "derived from 入院途径" in derived["reason"].iloc[0]
    warnings = pd.read_csv(result.reports_dir / "warnings.csv", encoding="utf-8-sig")
    assert (warnings["field"] == "admission_type").sum() == 8
    stored = read_cases().set_index("case_id").loc[cases["case_id"]]
    assert stored["admission_type"].tolist() == [2, 1, 1, 2, 1, 2, 1, 1]


def test_a_given_admission_type_is_kept_and_not_warned(cases: pd.DataFrame) -> None:
    typed, problems = to_canonical(cases.assign(admission_source="1").astype(TEXT), load_mapping())
    assert problems.empty and typed["admission_type"].eq(1).all()


def test_only_fields_of_the_national_form_are_required(cases: pd.DataFrame, to_cn_export) -> None:
    check_columns(
        to_cn_export(cases).drop(columns=["入院类型"]).columns, load_mapping("cn-abstract"), "x.csv"
    )
    required = {f.name for f in FIELDS if f.required}
    assert "admission_type" not in required
    assert {"admission_source", "admission_diagnosis", "principal_diagnosis", "total_cost"} <= required
