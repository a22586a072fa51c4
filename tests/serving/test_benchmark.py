"""The serving and explainer benchmarks run end to end at toy size and write their reports."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_serving_benchmark_at_toy_size(tmp_path, monkeypatch):
    import typer

    from experiments.benchmarks import serving

    # Empty (not unset) so monkeypatch puts it back after MLflow has exported the benchmark's store in it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    runner = CliRunner()
    command = typer.Typer()
    command.command()(serving.run)
    out = tmp_path / "serving.md"
    result = runner.invoke(
        command,
        [
            "--cases",
            "2000",
            "--trees",
            "10",
            "--workers",
            "1",
            "--rate",
            "20",
            "--seconds",
            "1",
            "--clients",
            "2",
            "--batch",
            "200",
            "--no-mlflow-serve",
            "--output",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = out.read_text(encoding="utf-8")
    assert "| caselens, 1 worker, paced 20/s | 20 | 0 |" in report
    assert "| caselens, 1 worker, 2 clients |" in report
    assert "batch of 200 with explanations" in report and "(HTTP 200)" in report
    assert "`nproc` = " in report and "One case inside the service's code" in report
    assert "TreeExplainer" not in report  # the explainer study has its own benchmark


def test_explainer_benchmark_at_toy_size(tmp_path):
    import typer

    from experiments.benchmarks import explainers

    command = typer.Typer()
    command.command()(explainers.run)
    out = tmp_path / "explainers.md"
    arguments = ["--cases", "1500", "--trees", "10", "--batch", "300", "--output", str(out)]
    result = CliRunner().invoke(command, arguments)
    assert result.exit_code == 0, result.output
    report = out.read_text(encoding="utf-8")
    rows = [line for line in report.splitlines() if line.startswith(("| 1 case |", "| 300 cases |"))]
    assert len(rows) == 2
    for row in rows:  # both explainers give the same values
        difference = float(row.strip("|").split("|")[4])
        assert difference < 1e-6, row
    assert "Fastest here — 1 case: " in report and "`nproc` = " in report
