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

    # the oracle's row is the demo's true error probability scored on the test quarter's audits,
    # recomputed here from the generated hospital (a misaligned label or score would not match)
    from sklearn.metrics import average_precision_score, roc_auc_score

    from experiments.benchmarks.coding import SEED
    from pipelines.demo import generate_demo

    demo = generate_demo(3_000, 3, SEED)
    audited = demo.cases["audited"].astype("boolean").fillna(False).to_numpy(bool)
    test = demo.cases[audited & (demo.cases["discharge_date"] >= "2025-10-01").to_numpy()]
    truth = test[["case_id"]].merge(demo.oracle, on="case_id")["true_coding_error_prob"]
    error = test["audit_error"].astype("boolean").fillna(False).astype(int)
    expected = f"| {average_precision_score(error, truth):.3f} | {roc_auc_score(error, truth):.3f} |"
    assert f"| oracle: true error probability {expected}" in report
