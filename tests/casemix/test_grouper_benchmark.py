"""The grouper benchmark runs end to end at toy size."""

from __future__ import annotations

from pathlib import Path

from experiments.benchmarks.grouper import benchmark_cases, run


def test_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "grouper.md"
    run(cases=2000, output=out, repeats=1)
    text = out.read_text(encoding="utf-8")
    assert "--cases 2000" in text and "cases per second" in text and "peak memory" in text and "nproc" in text
    assert "whole command, wall" in text and "of which start-up" in text
    assert "target (issue 18) | 300,000" in text
    assert "whole command over the reference" in text and "Parquet written" in text


def test_benchmark_cases_keep_the_principal_and_mix_secondaries() -> None:
    cases = benchmark_cases(3000)
    assert len(cases) == 3000 and not any(c.startswith("expected_") for c in cases.columns)
    assert (cases["diagnoses"] == "").sum() > 0  # the reference's records without diagnoses survive
    assert cases["diagnoses"].nunique() > 2500
