"""The demo-data benchmark runs end to end at toy size."""

from __future__ import annotations

from pathlib import Path

from experiments.benchmarks.demo_data import run


def test_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "demo_data.md"
    run(cases=2000, output=out)
    text = out.read_text(encoding="utf-8")
    assert "--cases 2000" in text and "`generate_demo`" in text and "Peak memory" in text
    assert "| charge groups add up to total | True |" in text
