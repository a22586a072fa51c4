"""The table benchmark at toy size: the generated table is what it claims, and a figure reaches the report."""

from __future__ import annotations

import pytest

from experiments.benchmarks.table import CODE_COLUMNS, LABEL, ece_equal_mass, generate_table, run


def test_generated_table_has_realistic_code_columns_and_repeat_patients() -> None:
    table = generate_table(20_000)
    assert abs(table[LABEL].mean() - 0.10) < 0.015
    for column in CODE_COLUMNS:
        counts = table[column].value_counts()
        assert 300 <= len(counts) <= 1000
        assert counts.iloc[0] > 20 * counts.median()  # Zipf: a few codes are most of the rows
    assert table["patient_id"].duplicated().mean() > 0.2


def test_equal_mass_ece() -> None:
    import numpy as np

    p = np.linspace(0.01, 0.99, 1000)
    assert ece_equal_mass((p > 0.5).astype(float), p) > 0.1
    assert ece_equal_mass(np.tile([1.0] + [0.0] * 9, 100), np.full(1000, 0.1)) == pytest.approx(0.0)


@pytest.mark.slow
def test_benchmark_reports_caselens_beside_the_plain_recipes(tmp_path, settings) -> None:
    output = tmp_path / "table.md"
    figures = run(rows=3000, tune_seconds=0, output=output, min_rows=20, tasks="readmission")
    report = output.read_text(encoding="utf-8")
    found = figures["readmission"]["caselens defaults, --entity/--order"]
    assert 0.5 < found["auroc"] < 1 and 0 < found["brier"] < 0.2
    assert f"| caselens defaults, --entity/--order | {found['auroc']:.4f} |" in report
    for recipe in ("plain categorical, caselens params", "codes frequency-encoded", "+ history counts"):
        assert f"| {recipe} |" in report
