"""The in-stay serving benchmark runs end to end at toy size: a trained champion served by
`caselens serve` over HTTP, the in-process timings and the per-stage profile, written as its report.

It runs as its own process, as a user runs it: MLflow keeps the tracking and registry URIs other tests
set in module state, which the benchmark's in-process training would otherwise register into."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_instay_serving_benchmark_at_toy_size(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CASELENS_"))}
    env["CASELENS_DATA_DIR"] = str(tmp_path / "unused")
    out = tmp_path / "instay_serving.md"
    arguments = ["--cases", "2500", "--single", "3", "--batch-stays", "20", "--rate", "10", "--seconds", "1"]
    arguments += ["--workers", "1", "--output", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "experiments.benchmarks.instay_serving", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert "| caselens, 1 worker, paced 10/s |" in text and "200×" in text  # answered over HTTP
    assert "| pregroup |" in text and "| explain_frame (features + predict + shap) |" in text
