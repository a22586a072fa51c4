"""docs/features.md is up to date; the benchmark runs at toy size."""

from __future__ import annotations

from pathlib import Path

from experiments.benchmarks import features as benchmark
from features.docs import DOCS_PATH, render


def test_feature_docs_are_up_to_date() -> None:
    document = DOCS_PATH.read_text(encoding="utf-8")
    assert render(document) == document, "run `caselens features docs` to regenerate docs/features.md"
    assert "`prior_admissions_365d`" in document and "既往365天住院次数" in document


def test_benchmark_runs_at_toy_size(tmp_path: Path) -> None:
    output = tmp_path / "features.md"
    benchmark.run(cases=2_000, output=output)
    text = output.read_text(encoding="utf-8")
    assert "2,000 synthetic cases" in text and "Peak memory" in text and "nproc" in text
