"""The coding benchmark end to end at toy size: framework run, queue yields, what-if money, report."""

from __future__ import annotations

import re


def test_benchmark_runs_at_toy_size(tmp_path, settings):
    from experiments.benchmarks.coding import run

    results = tmp_path / "coding.md"
    report = run(3_000, results, min_rows=10)
    assert results.read_text(encoding="utf-8") == report
    for row in ("| LightGBM coding model |", "| coding-team rules", "| oracle: true error probability |"):
        assert row in report
    assert "**The queue's yield**" in report and "nproc" in report
    differs = re.search(r"\| wrong_principal_category_differs \| ([\d.]+)% \| <= 75% \|", report)
    assert differs is not None and 0 < float(differs.group(1)) < 100
    rows = dict(
        re.findall(
            r"^\| (any error|wrong_principal|unsupported_cc_mcc) \| \d+ \| ([\d.]+|nan) \|", report, re.M
        )
    )
    assert set(rows) == {"any error", "wrong_principal", "unsupported_cc_mcc"}
    assert (
        0.5 < float(rows["any error"]) <= 1
    )  # the model's AUROC for any error beats chance even at toy size
