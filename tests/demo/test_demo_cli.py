"""`caselens demo-data` writes the files it promises and explains bad options."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()


def test_writes_cases_oracle_and_manifest(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(
        app,
        [
            "demo-data",
            "--cases",
            "600",
            "--years",
            "1",
            "--seed",
            "3",
            "--dirty",
            "--out",
            str(out),
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"cases.csv", "oracle.parquet", "manifest.parquet"}
    assert {p.name for p in out.iterdir()} >= {"charges.csv", "inpatients.csv"}
    assert len(pd.read_csv(out / "cases.csv", dtype=str)) == 600
    assert "corrupted rows" in result.output


def test_default_folder_is_under_the_data_dir(settings):
    result = runner.invoke(app, ["demo-data", "--cases", "300", "--years", "1"])
    assert result.exit_code == 0, result.output
    assert (settings.data_dir / "demo" / "cases.parquet").exists()


def test_unknown_format_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["demo-data", "--cases", "10", "--format", "xlsx", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "xlsx" in result.output and "zh-csv" in result.output


def test_help_explains_the_command():
    result = runner.invoke(app, ["demo-data", "--help"])
    assert result.exit_code == 0
    assert "oracle" in result.output and "--dirty" in result.output
