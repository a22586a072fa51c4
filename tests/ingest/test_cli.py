from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()


def test_ingest_prints_a_summary(settings, tmp_path: Path, cases: pd.DataFrame) -> None:
    cases.loc[1, "sex"] = "7"
    path = tmp_path / "export.csv"
    cases.to_csv(path, index=False)
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "rows read" in result.output and "rejected" in result.output
    assert "not an allowed code" in result.output
    assert "C00001" not in result.output, "no case ids on the console"


def test_missing_column_exits_2_with_one_message(settings, tmp_path: Path, cases: pd.DataFrame) -> None:
    path = tmp_path / "export.csv"
    cases.drop(columns="admission_date").to_csv(path, index=False)
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "missing required column 'admission_date' (入院日期)" in text
    assert "to your mapping file's [columns]" in text
    assert "Traceback" not in result.output


def test_unreadable_file_exits_2(settings, tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    result = runner.invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2
    assert "cannot read empty.xlsx" in result.output and "Traceback" not in result.output


def test_help_lists_presets() -> None:
    result = runner.invoke(app, ["ingest", "--help"])
    assert result.exit_code == 0
    assert "cn-abstract" in result.output
