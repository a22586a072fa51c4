"""The training benchmark runs end to end at toy size and writes its report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from experiments.benchmarks import training as benchmark
from models.config import DEFAULT_CONFIG
from pipelines.demo import generate_demo

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

    # the oracle's error is the demo generator's, recomputed here from its test quarter
    demo = generate_demo(2000, 3, 11)
    test = demo.cases[demo.cases["discharge_date"] >= "2025-10-01"]
    expected = test[["case_id"]].merge(demo.oracle, on="case_id")["expected_cost"].to_numpy()
    oracle_mae = float(np.mean(np.abs(test["total_cost"].to_numpy() - expected)))
    assert f"| oracle_mae | {oracle_mae:,.4g} | {oracle_mae:,.4g} |" in report
    assert f"test 2025Q4..2025Q4 ({len(test):,})" in report
