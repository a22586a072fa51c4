"""The forecast benchmark runs end to end at toy size, and its figures are the hospital's."""

from __future__ import annotations

import re
from pathlib import Path

from experiments.benchmarks.forecast import run
from pipelines.demo import generate_demo
from pipelines.forecast import price_history


def test_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "forecast.md"
    run(cases=2000, horizon=2, origins=4, draws=100, seed=1, output=out)
    text = out.read_text(encoding="utf-8")
    assert "--cases 2000" in text and "Peak memory" in text
    assert "| 2026Q1 | 10,500 |" in text

    # the backtest's actual surplus is the demo hospital's, summed from its priced cases (¥10k)
    priced = price_history(generate_demo(2000, 3, 1).cases).cases
    last = priced[priced["discharge_date"] >= "2025-10-01"]
    surplus = f"{(last['payment'] - last['cost']).sum() / 1e4:,.0f}"
    assert f"| 2025Q4 | 2025Q4 | {surplus} |" in text

    # the hospital's raw 80% coverage is the share of its forecasts inside their band
    inside = re.findall(r"^\| 20\d\dQ\d \| 20\d\dQ\d \|.* \| (yes|no) \|", text, flags=re.MULTILINE)
    hospital = re.search(r"^\| hospital \| (\d+) \|(?:[^|]*\|){7} (\d+)% \|", text, flags=re.MULTILINE)
    # 4 origins × 2 quarters, less the one past the history's end
    assert hospital is not None and int(hospital.group(1)) == len(inside) == 4 * 2 - 1
    assert int(hospital.group(2)) == round(100 * inside.count("yes") / len(inside))
