"""The training benchmark runs end to end at toy size and writes its report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.benchmarks import training as benchmark
from models.config import DEFAULT_CONFIG

pytestmark = pytest.mark.slow


def test_benchmark_writes_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "train.toml"
    text = re.sub(r"n_estimators = \d+", "n_estimators = 5", DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config.write_text(text.replace("min_rows = 50", "min_rows = 20"), encoding="utf-8")
    out = tmp_path / "training.md"
    benchmark.main(cases=2000, out=out, tasks="cost,margin", config=config)
    report = out.read_text(encoding="utf-8")
    assert "## cost" in report and "## margin" in report
    assert "| mae |" in report and "| loss_auroc |" in report and "Peak memory" in report
