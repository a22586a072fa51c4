"""The daily charges feed and in-stay records go through ingestion like the abstract: mapping,
validation naming row and field, a rejects file, and a keyed upsert into their own store tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from contract.errors import InputError
from contract.fields import COST_CATEGORIES
from pipelines.ingest import ingest_file
from pipelines.store import read_table, table_path


def _charges(rows: int = 6) -> pd.DataFrame:
    days = pd.date_range("2024-12-30", periods=rows, freq="D")  # spans a new year: two partitions
    frame = pd.DataFrame({"case_id": "C00001", "charge_date": days.strftime("%Y-%m-%d")})
    for i, name in enumerate(COST_CATEGORIES):
        frame[name] = [f"{(i + 1) * 10 + d}.5" for d in range(rows)]
    return frame


def test_charges_feed_rejects_name_row_and_field(settings, tmp_path: Path) -> None:
    frame = _charges()
    frame.loc[1, "charge_date"] = "2024-02-30"
    frame.loc[2, "cost_consumables"] = "lots"
    frame.loc[3, "case_id"] = ""
    frame.loc[4, list(COST_CATEGORIES)] = ""
    frame.loc[5, "cost_diagnostics"] = ""  # a group not charged that day: kept, stored as 0
    path = tmp_path / "charges.csv"
    frame.to_csv(path, index=False)

    result = ingest_file(path, kind="charges")

    assert (result.rows_read, result.accepted, result.rejected) == (6, 2, 4)
    rejects = pd.read_csv(result.reports_dir / "rejects.csv", encoding="utf-8-sig", dtype=str)
    assert rejects[["row", "field"]].values.tolist() == [
        ["2", "charge_date"],
        ["3", "cost_consumables"],
        ["4", "case_id"],
        ["5", "cost_general_services"],
    ]
    assert rejects.loc[1, "value"] == "lots"
    rows = pd.read_csv(result.reports_dir / "rejected_rows.csv", encoding="utf-8-sig", dtype=str)
    assert rows["row"].tolist() == ["2", "3", "4", "5"]
    stored = read_table("charges")
    assert stored["charge_date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-12-30", "2025-01-04"]
    assert stored.loc[1, "cost_diagnostics"] == 0.0
    assert stored["cost_other"].tolist() == [100.5, 105.5]
    years = sorted(p.name for p in table_path("charges").iterdir())
    assert years == ["charge_year=2024", "charge_year=2025"]


def test_a_day_sent_again_replaces_the_day(settings, tmp_path: Path) -> None:
    frame = _charges(3)
    frame.to_csv(tmp_path / "a.csv", index=False)
    ingest_file(tmp_path / "a.csv", kind="charges")
    again = frame.iloc[[1]].assign(cost_blood="999")
    again.to_csv(tmp_path / "b.csv", index=False)
    result = ingest_file(tmp_path / "b.csv", kind="charges")
    assert (result.new, result.updated, result.store_rows) == (0, 1, 3)
    assert read_table("charges")["cost_blood"].tolist() == [80.5, 999.0, 82.5]


def test_a_day_twice_in_one_file_is_rejected(settings, tmp_path: Path) -> None:
    frame = pd.concat([_charges(2), _charges(2).iloc[[0]]], ignore_index=True)
    frame.to_csv(tmp_path / "c.csv", index=False)
    result = ingest_file(tmp_path / "c.csv", kind="charges")
    assert (result.accepted, result.rejected) == (1, 2)


def test_inpatients_are_in_stay_records(settings, tmp_path: Path, make_cases) -> None:
    cases = make_cases(3)
    records = cases[[c for c in cases.columns if c in _admission_columns()]].assign(
        recorded_date=cases["admission_date"],
        working_diagnoses=["J18.900|I10.x00", "K35.800", "NOPE.1"],
        procedures_so_far=["", "47.0900", ""],
    )
    records.loc[1, "recorded_date"] = "2020-01-01"
    records.to_csv(tmp_path / "in.csv", index=False)
    result = ingest_file(tmp_path / "in.csv", kind="inpatients")
    assert (result.accepted, result.rejected, result.warnings) == (2, 1, 1)
    rejects = pd.read_csv(result.reports_dir / "rejects.csv", encoding="utf-8-sig", dtype=str)
    assert rejects[["row", "field"]].values.tolist() == [["2", "recorded_date"]]
    stored = read_table("inpatients")
    assert stored["working_diagnoses"].tolist() == ["J18.900|I10.x00", "NOPE.1"]
    assert stored["procedures_so_far"].isna().all()
    with pytest.raises(Exception, match="no case store"):
        from pipelines.store import read_cases

        read_cases()  # the abstracts' store is untouched


def test_unknown_kind_and_missing_columns_are_input_errors(settings, tmp_path: Path) -> None:
    _charges(2).drop(columns="charge_date").to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(InputError, match="charge_date"):
        ingest_file(tmp_path / "d.csv", kind="charges")
    with pytest.raises(InputError, match="unknown kind"):
        ingest_file(tmp_path / "d.csv", kind="orders")


def test_cli_ingests_charges(settings, tmp_path: Path) -> None:
    _charges(2).to_csv(tmp_path / "e.csv", index=False)
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "e.csv"), "--kind", "charges"])
    assert result.exit_code == 0, result.output
    assert len(read_table("charges")) == 2


def _admission_columns() -> set[str]:
    from contract.instay import INSTAY_FIELDS

    return {f.name for f in INSTAY_FIELDS}


def test_chinese_presets_read_daily_exports(settings, tmp_path: Path, to_cn_export, make_cases) -> None:
    from contract.fields import FIELD_BY_NAME

    charges = _charges(2).rename(
        columns={"case_id": "住院号", "charge_date": "费用日期"}
        | {name: FIELD_BY_NAME[name].zh.split("（")[0] for name in COST_CATEGORIES}
    )
    charges.to_csv(tmp_path / "费用明细.csv", index=False, encoding="gb18030")
    result = ingest_file(tmp_path / "费用明细.csv", "cn-charges", kind="charges")
    assert (result.accepted, result.rejected) == (2, 0)
    assert read_table("charges")["cost_treatment"].tolist() == [30.5, 31.5]

    export = to_cn_export(make_cases(2)).assign(
        记录日期=["2024-03-02", "2024-03-05"], 在院诊断编码=["J18.900|I10.x00", ""], 已行手术操作编码=""
    )
    export["入院日期"] = "2024/3/1"
    export.to_csv(tmp_path / "在院.csv", index=False)
    result = ingest_file(tmp_path / "在院.csv", "cn-inpatients", kind="inpatients")
    assert (result.accepted, result.rejected) == (2, 0)
    stored = read_table("inpatients")
    assert stored["working_diagnoses"].tolist()[0] == "J18.900|I10.x00" and stored["sex"].tolist() == [1, 2]
