from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from contract.fields import COLUMNS, FIELD_BY_NAME
from pipelines.ingest import ingest_file
from pipelines.mapping import check_columns, load_mapping, presets, to_canonical
from pipelines.readers import TEXT, InputError
from pipelines.store import read_cases


def test_presets_are_shipped() -> None:
    assert {"canonical", "cn-abstract"} <= set(presets())
    assert load_mapping().name == "canonical"


def test_canonical_mapping_gives_contract_types(cases: pd.DataFrame) -> None:
    typed, problems = to_canonical(cases.astype(TEXT), load_mapping())
    assert problems.empty
    assert list(typed.columns) == list(COLUMNS)
    for name in COLUMNS:
        assert typed[name].dtype == FIELD_BY_NAME[name].nullable_dtype, name
    assert typed["other_diagnoses"].iloc[0] == "I10.x00|E11.900"
    assert typed["planned_procedure"].iloc[0] is None


@pytest.mark.parametrize("text", ["2024-01-05", "2024/1/5", "20240105", "2024-01-05 08:30:00"])
def test_dates_in_usual_export_forms(cases: pd.DataFrame, text: str) -> None:
    cases.loc[0, "admission_date"] = text
    typed, problems = to_canonical(cases.astype(TEXT), load_mapping())
    assert problems.empty
    assert typed.loc[0, "admission_date"] == pd.Timestamp("2024-01-05")


def _ingest_cn(path: Path) -> pd.DataFrame:
    result = ingest_file(path, "cn-abstract")
    assert (result.rows_read, result.rejected) == (8, 0), result.by_reason
    return read_cases()


def _expected(cases: pd.DataFrame) -> pd.DataFrame:
    return cases.sort_values("case_id").reset_index(drop=True)


def test_cn_preset_on_gb18030_csv(tmp_path: Path, settings, cases: pd.DataFrame, to_cn_export) -> None:
    path = tmp_path / "病案首页.csv"
    to_cn_export(cases).to_csv(path, index=False, encoding="gb18030")
    stored = _ingest_cn(path).sort_values("case_id").reset_index(drop=True)
    expected = _expected(cases)
    assert stored["sex"].tolist() == expected["sex"].astype(int).tolist()
    assert stored["department"].tolist() == ["内科"] * 8
    assert stored["admission_date"].dt.strftime("%Y-%m-%d").tolist() == expected["admission_date"].tolist()
    assert stored["discharge_date"].dt.strftime("%Y-%m-%d").tolist() == expected["discharge_date"].tolist()
    assert stored["other_diagnoses"].fillna("").tolist() == expected["other_diagnoses"].tolist()
    assert stored["cost_blood"].tolist() == expected["cost_blood"].astype(float).tolist()
    assert stored["discharge_disposition"].eq(1).all() and not stored["readmission_plan_31d"].any()


def test_cn_preset_on_excel(tmp_path: Path, settings, cases: pd.DataFrame, to_cn_export) -> None:
    path = tmp_path / "病案首页.xlsx"
    to_cn_export(cases).to_excel(path, index=False)
    stored = _ingest_cn(path)
    assert stored["case_id"].sort_values().tolist() == cases["case_id"].tolist()
    assert stored["total_cost"].sum() == pytest.approx(cases["total_cost"].astype(float).sum())


def test_custom_toml_mapping(tmp_path: Path, settings, cases: pd.DataFrame, to_cn_export) -> None:
    export = to_cn_export(cases).rename(columns={"住院号": "住院流水号", "性别": "患者性别"})
    export["患者性别"] = export["患者性别"].map({"男": "M", "女": "F"})
    export["入院日期"] = pd.to_datetime(cases["admission_date"]).dt.strftime("%d.%m.%Y")
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    mapping = tmp_path / "my-hospital.toml"
    mapping.write_text(
        'extends = "cn-abstract"\nname = "my-hospital"\n'
        'date_formats = ["%d.%m.%Y", "ISO8601", "%Y%m%d"]\n'
        '[columns]\ncase_id = "住院流水号"\nsex = "患者性别"\n'
        "[values.sex]\nM = 1\nF = 2\n",
        encoding="utf-8",
    )
    result = ingest_file(path, mapping)
    assert result.rejected == 0, result.by_reason
    stored = read_cases().sort_values("case_id").reset_index(drop=True)
    assert stored["sex"].tolist() == cases["sex"].astype(int).tolist()
    assert stored["admission_date"].dt.strftime("%Y-%m-%d").tolist() == cases["admission_date"].tolist()
    assert result.manifest["last_ingest"]["mapping"] == "my-hospital"


def test_wide_columns_join_in_number_order(cases: pd.DataFrame, tmp_path: Path) -> None:
    mapping = tmp_path / "wide.toml"
    mapping.write_text('[wide]\nother_diagnoses = "dx"\n', encoding="utf-8")
    export = cases.drop(columns="other_diagnoses").assign(dx10="C", dx2="B", dx1="A")
    export.loc[1, "dx2"] = " "
    typed, _ = to_canonical(export.astype(TEXT), load_mapping(mapping))
    assert typed["other_diagnoses"].tolist()[:2] == ["A|B|C", "A|C"]


def test_missing_required_column_names_it_and_how_to_map_it(cases: pd.DataFrame) -> None:
    with pytest.raises(InputError) as error:
        check_columns(cases.drop(columns=["admission_date"]).columns, load_mapping(), "export.csv")
    assert (
        "missing required column 'admission_date' (入院日期): add `admission_date = \"<your column>\"` "
        "to your mapping file's [columns]"
    ) in str(error.value)


def test_missing_summed_charge_item_is_named(cases: pd.DataFrame, to_cn_export) -> None:
    export = to_cn_export(cases).drop(columns=["血费"])
    with pytest.raises(InputError, match="'血费' for cost_blood"):
        check_columns(export.columns, load_mapping("cn-abstract"), "export.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[columns]\nnot_a_field = "x"\n', "unknown canonical field"),
        ('[columns]\nsex = ["a", "b"]\n', "only an amount field"),
        ('[wide]\nsex = "x"\n', "only a code-list field"),
        ("[columns\n", "cannot read mapping"),
        ('extends = "no-such-preset"\n', "unknown mapping"),
    ],
)
def test_bad_mapping_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_mapping(path)


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="unknown mapping 'nope'"):
        load_mapping("nope")
