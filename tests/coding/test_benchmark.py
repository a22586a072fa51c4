"""The coding benchmark end to end at toy size: framework run, queue yields, what-if money, report."""

from __future__ import annotations


def test_benchmark_runs_at_toy_size(tmp_path, settings):
    from experiments.benchmarks.coding import run

    results = tmp_path / "coding.md"
    report = run(3_000, results, min_rows=10)
    assert results.read_text(encoding="utf-8") == report
    for row in ("| LightGBM coding model |", "| coding-team rules", "| oracle: true error probability |"):
        assert row in report
    assert "**The queue's yield**" in report and "nproc" in report
