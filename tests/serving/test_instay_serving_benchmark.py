"""The in-stay serving benchmark runs end to end at toy size: a trained champion served by
`caselens serve` over HTTP, the in-process timings and the per-stage profile, written as its report."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from experiments.benchmarks import instay_serving

pytestmark = pytest.mark.slow


def test_instay_serving_benchmark_at_toy_size(tmp_path, monkeypatch):
    # Empty (not unset) so monkeypatch puts them back after the benchmark points them at its store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.setenv("CASELENS_DATA_DIR", str(tmp_path / "unused"))
    command = typer.Typer()
    command.command()(instay_serving.run)
    out = tmp_path / "instay_serving.md"
    arguments = ["--cases", "2500", "--single", "3", "--batch-stays", "20", "--rate", "10", "--seconds", "1"]
    result = CliRunner().invoke(command, [*arguments, "--workers", "1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "| caselens, 1 worker, paced 10/s |" in text and "200×" in text  # answered over HTTP
    assert "| pregroup |" in text and "| explain_frame (features + predict + shap) |" in text
