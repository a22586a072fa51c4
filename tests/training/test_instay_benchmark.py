"""The in-stay benchmark (train, replay the test quarter beside the 90% rule, time the watch list) runs
end to end at toy size."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.benchmarks.instay import run

pytestmark = pytest.mark.slow


def test_benchmark_writes_its_results(settings, tmp_path: Path) -> None:
    out = tmp_path / "instay.md"
    run(cases=2500, min_rows=20, speed_stays=100, output=out)
    text = out.read_text(encoding="utf-8")
    assert "--cases 2500" in text and "## Replay" in text
    assert "rule: charges to date ≥ 90% of the standard (watch)" in text
    assert "model: level watch or overrun (default policy)" in text
    assert "watch list of 100 stays" in text
