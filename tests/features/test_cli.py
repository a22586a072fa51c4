"""``caselens features build`` over a case store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from cli.app import app
from pipelines.store import write_cases


def test_build_writes_one_feature_row_per_stored_case(demo_hospital, tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_cases(demo_hospital.cases.head(300), store)
    output = tmp_path / "features.parquet"
    result = CliRunner().invoke(
        app, ["features", "build", "--store", str(store), "-o", str(output), "--stage", "discharge"]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(output)
    assert len(table) == 300 and table["case_id"].is_unique
    assert {"prior_admissions_365d", "drg", "charlson_index"} <= set(table.columns)


def test_build_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["features", "build", "--store", str(tmp_path / "none"), "-o", "x.parquet"]
    )
    assert result.exit_code == 2
    assert "error" in result.output and "Traceback" not in result.output
