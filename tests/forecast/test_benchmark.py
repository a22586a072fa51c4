"""The forecast benchmark runs end to end at toy size."""

from __future__ import annotations

from pathlib import Path

from experiments.benchmarks.forecast import run


def test_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "forecast.md"
    run(cases=2000, horizon=2, origins=4, draws=100, seed=1, output=out)
    text = out.read_text(encoding="utf-8")
    assert "--cases 2000" in text and "Peak memory" in text and "| hospital |" in text
    assert "| 2026Q1 | 10,500 |" in text
