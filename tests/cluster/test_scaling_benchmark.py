"""The scaling benchmark at toy size: both paths run every stage and the page reports them."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.benchmarks.scaling import STAGES, commands, measure, report, sweep

pytestmark = pytest.mark.slow


def test_scaling_benchmark_at_toy_size(tmp_path: Path) -> None:
    rows = measure(
        [2_000], workers=2, memory_limit="1GiB", hospital_cases=1_000, row_group_rows=400, folder=tmp_path
    )
    (row,) = rows
    assert row["cases"] == 2_000
    for stage in STAGES:
        assert row["pandas"][stage]["seconds"] > 0 and row["pandas"][stage]["process"] > 50
        workers = [v for k, v in row["dask"][stage].items() if k.startswith("worker")]
        assert len(workers) == 2 and min(workers) > 50
    # the workers wrote parts of the size asked (not their own default): the store was really split
    assert row["dask"]["partitions"] >= 2_000 // 400
    parts = sweep(2_000, [200, 800], memory_limit="1GiB", hospital_cases=1_000)
    assert [r["row_group_rows"] for r in parts] == [200, 800]
    assert parts[0]["dask"]["partitions"] > parts[1]["dask"]["partitions"] >= 2_000 // 800
    page = "\n".join(report(rows, 2, "1GiB", commands(rows, "1GiB"), parts))
    assert page.count("| 2,000 |") == len(STAGES)
    assert "| 200 | " in page and "| 800 | " in page  # the part-size sweep's rows
