"""The loss-risk benchmark runs end to end at toy size, and its figures are the backtest's."""

from __future__ import annotations

import re
from pathlib import Path

from experiments.benchmarks.loss_risk import backtest_seed, run
from models.forecast.loss_risk import brier


def test_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "loss_risk.md"
    run(cases=2000, seeds="1", horizon=2, origins=3, draws=60, output=out)
    text = out.read_text(encoding="utf-8")
    assert "--cases 2000 --seeds 1" in text and "Peak memory" in text and "## Reliability" in text

    # the naive rule's Brier score in the file is the demo's, recomputed from the same backtest
    scores, _ = backtest_seed(2000, 1, 2, 3, 60)
    row = re.search(
        r"^\| all cells \| ([\d,]+) \| [\d.]+% \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", text, re.M
    )
    assert row is not None
    assert int(row.group(1).replace(",", "")) == len(scores)
    assert float(row.group(4)) == round(brier(scores["naive"], scores["lost"]), 4)
    assert float(row.group(3)) == round(brier(scores["p_loss_simulated"], scores["lost"]), 4)
