from __future__ import annotations

from pathlib import Path

from experiments.benchmarks.ingest import run


def test_benchmark_runs_at_toy_size(tmp_path: Path) -> None:
    results = tmp_path / "ingest.md"
    report = run(2_000, tmp_path, results)
    assert results.read_text(encoding="utf-8") == report
    assert "| csv | first |" in report and "| parquet | re-ingest |" in report
    assert "nproc" in report
